//! Stands in for the OpenFaaS gateway's `POST /async-function/<name>`: reads the body and
//! answers 202, as OpenFaaS does once the request is queued. `GET /_count` says how many
//! invocations it took, so the bench can check every ack was really dispatched; `GET /_first`
//! gives back the first body it took (the gateway's invocation, which the "bare + the same
//! hand-over" ceiling then sends).
//!
//! Environment: PORT (listens on 127.0.0.1:$PORT).

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

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

#[derive(Default)]
struct Sink {
    count: AtomicU64,
    first: OnceLock<Bytes>,
}

async fn accept(State(sink): State<Arc<Sink>>, body: Bytes) -> StatusCode {
    if sink.count.fetch_add(1, Ordering::Relaxed) == 0 {
        let _ = sink.first.set(body);
    }
    StatusCode::ACCEPTED
}

async fn run() -> anyhow::Result<()> {
    let port: u16 = std::env::var("PORT")?.parse()?;
    let app = Router::new()
        .route("/async-function/{name}", post(accept))
        .route("/_count", get(|State(sink): State<Arc<Sink>>| async move { sink.count.load(Ordering::Relaxed).to_string() }))
        .route("/_first", get(|State(sink): State<Arc<Sink>>| async move { sink.first.get().cloned().unwrap_or_default() }))
        .with_state(Arc::new(Sink::default()));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    axum::serve(listener, app).await?;
    Ok(())
}
