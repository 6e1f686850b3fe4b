//! The ceiling: a bare axum server on the same axum and tokio (multi-thread runtime, all cores)
//! as the gateway, answering `POST /slack/commands` with the ack bytes the gateway sent in the
//! same run. It reads the body (any handler must) and does nothing else: no signature check, no
//! form parsing, no logging.
//!
//! With DISPATCH_URL set it is the second ceiling, "bare + dispatch": before answering it POSTs
//! the body to `$DISPATCH_URL/async-function/iaas-bench` with a reqwest client built like the
//! gateway's OpenFaaS dispatcher, and needs a 2xx back — the hop every accepted command pays.
//!
//! Environment: PORT (listens on 0.0.0.0:$PORT like the gateway), ACK_FILE (the ack body),
//! ACK_CONTENT_TYPE (default application/json), ACK_REQUEST_ID (sent as x-iaas-request-id),
//! DISPATCH_URL (optional).

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

struct Ack {
    body: Bytes,
    content_type: HeaderValue,
    request_id: Option<HeaderValue>,
    dispatch: Option<(reqwest::Client, String)>,
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bare-ack: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn ack(ack: Arc<Ack>, request: Bytes) -> Response {
    if let Some((http, url)) = &ack.dispatch {
        let sent = http.post(url).header(reqwest::header::CONTENT_TYPE, "application/json").body(request).send().await;
        if !matches!(&sent, Ok(r) if r.status().is_success()) {
            return (StatusCode::BAD_GATEWAY, "dispatch failed\n").into_response();
        }
    }
    let mut resp: Response = ack.body.clone().into_response();
    resp.headers_mut().insert(CONTENT_TYPE, ack.content_type.clone());
    if let Some(id) = &ack.request_id {
        resp.headers_mut().insert(HeaderName::from_static("x-iaas-request-id"), id.clone());
    }
    resp
}

async fn run() -> anyhow::Result<()> {
    let port: u16 = std::env::var("PORT")?.parse()?;
    let dispatch = match std::env::var("DISPATCH_URL") {
        Ok(base) => {
            let http = reqwest::Client::builder().timeout(Duration::from_secs(2)).build()?;
            Some((http, format!("{}/async-function/iaas-bench", base.trim_end_matches('/'))))
        }
        Err(_) => None,
    };
    let state = Arc::new(Ack {
        body: Bytes::from(std::fs::read(std::env::var("ACK_FILE")?)?),
        content_type: HeaderValue::from_str(&std::env::var("ACK_CONTENT_TYPE").unwrap_or_else(|_| "application/json".into()))?,
        request_id: match std::env::var("ACK_REQUEST_ID") {
            Ok(id) => Some(HeaderValue::from_str(&id)?),
            Err(_) => None,
        },
        dispatch,
    });
    let app = Router::new()
        .route("/slack/commands", post(move |body: Bytes| ack(state.clone(), body)))
        .route("/_/health", get(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind(("0.0.0.0", port)).await?;
    axum::serve(listener, app).await?;
    Ok(())
}
