//! Stands in for the OpenFaaS gateway's `POST /async-function/<name>`: reads the body and
//! answers 202, as OpenFaaS does once the request is queued. `GET /_count` says how many
//! invocations it took, so the bench can check every ack was really dispatched.
//!
//! Environment: PORT (listens on 127.0.0.1:$PORT).

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dispatch-sink: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn accept(State(count): State<Arc<AtomicU64>>, _body: Bytes) -> StatusCode {
    count.fetch_add(1, Ordering::Relaxed);
    StatusCode::ACCEPTED
}

async fn run() -> anyhow::Result<()> {
    let port: u16 = std::env::var("PORT")?.parse()?;
    let count = Arc::new(AtomicU64::new(0));
    let app = Router::new()
        .route("/async-function/{name}", post(accept))
        .route("/_count", get(|State(count): State<Arc<AtomicU64>>| async move { count.load(Ordering::Relaxed).to_string() }))
        .with_state(count);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    axum::serve(listener, app).await?;
    Ok(())
}
