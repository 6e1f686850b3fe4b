//! The ceiling: a bare axum server on the same axum and tokio (multi-thread runtime, all cores)
//! as the gateway, answering `POST /slack/commands` with answer bytes the gateway sent in the
//! same run. It reads the body (any handler must) and does nothing else: no signature check, no
//! form parsing, no logging.
//!
//! Which answer: the `x-bench-answer: <n>` request header (the load client sets it on every
//! request, the gateway ignores it) picks `$ANSWERS/<n>.body` with the headers in
//! `$ANSWERS/<n>.head` (`name: value` lines); without the header, answer 0 (the dispatched ack).
//!
//! With DISPATCH_URL set it is the second ceiling, "bare + the same hand-over": before
//! answering it POSTs `$DISPATCH_BODY` (the invocation body the gateway itself dispatched in this
//! run, captured by the sink) to `$DISPATCH_URL/async-function/iaas-bench` with the same
//! client the gateway's OpenFaaS dispatch uses for a plain-HTTP gateway (hyper-util's pooled
//! legacy client, TCP_NODELAY, 256 idle connections kept 90 s, a 2 s bound, the answer read so
//! the connection is reused), with the same three headers, and needs a 2xx back.
//!
//! Environment: PORT (listens on 0.0.0.0:$PORT like the gateway), ANSWERS (directory),
//! DISPATCH_URL and DISPATCH_BODY (optional, together).

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};

/// The gateway's settings for its OpenFaaS hand-over (gateway/src/dispatch.rs).
const DISPATCH_TIMEOUT: Duration = Duration::from_secs(2);
const POOL_MAX_IDLE: usize = 256;
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);
const MAX_ANSWER: usize = 64 * 1024;

struct Answer {
    body: Bytes,
    headers: HeaderMap,
}

struct Dispatch {
    client: Client<HttpConnector, Full<Bytes>>,
    uri: http::Uri,
    body: Bytes,
}

struct Ack {
    answers: Vec<Answer>,
    dispatch: Option<Dispatch>,
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

/// One hand-over, as `OpenFaasDispatch::send_plain` makes it.
async fn hand_over(d: &Dispatch) -> bool {
    let mut request = http::Request::new(Full::new(d.body.clone()));
    *request.method_mut() = http::Method::POST;
    *request.uri_mut() = d.uri.clone();
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|t| t.as_secs() as i64).unwrap_or(0);
    let headers = request.headers_mut();
    headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert("x-iaas-timestamp", HeaderValue::from(now));
    // The gateway's is `v1=` and 64 hex digits: the same length.
    headers.insert(
        "x-iaas-signature",
        HeaderValue::from_maybe_shared(Bytes::from(format!("v1={:064x}", now))).expect("hex is a header value"),
    );
    let call = async {
        let Ok(response) = d.client.request(request).await else { return false };
        let ok = response.status().is_success();
        let _ = Limited::new(response.into_body(), MAX_ANSWER).collect().await;
        ok
    };
    tokio::time::timeout(DISPATCH_TIMEOUT, call).await.unwrap_or(false)
}

async fn ack(ack: Arc<Ack>, headers: HeaderMap, _request: Bytes) -> Response {
    if let Some(d) = &ack.dispatch {
        if !hand_over(d).await {
            return (StatusCode::BAD_GATEWAY, "dispatch failed\n").into_response();
        }
    }
    let n = headers.get("x-bench-answer").and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok()).unwrap_or(0);
    let Some(answer) = ack.answers.get(n) else {
        return (StatusCode::BAD_REQUEST, "no such answer\n").into_response();
    };
    let mut resp: Response = answer.body.clone().into_response();
    for (name, value) in &answer.headers {
        resp.headers_mut().insert(name.clone(), value.clone());
    }
    resp
}

fn read_answers(dir: &str) -> anyhow::Result<Vec<Answer>> {
    let mut answers = Vec::new();
    for n in 0.. {
        let body = std::path::Path::new(dir).join(format!("{n}.body"));
        if !body.exists() {
            break;
        }
        let mut headers = HeaderMap::new();
        for line in std::fs::read_to_string(std::path::Path::new(dir).join(format!("{n}.head")))?.lines() {
            if let Some((k, v)) = line.split_once(": ") {
                headers.insert(HeaderName::from_bytes(k.as_bytes())?, HeaderValue::from_str(v)?);
            }
        }
        answers.push(Answer { body: Bytes::from(std::fs::read(body)?), headers });
    }
    if answers.is_empty() {
        anyhow::bail!("no answers in {dir}");
    }
    Ok(answers)
}

async fn run() -> anyhow::Result<()> {
    let port: u16 = std::env::var("PORT")?.parse()?;
    let dispatch = match std::env::var("DISPATCH_URL") {
        Ok(base) => {
            let mut connector = HttpConnector::new();
            connector.set_nodelay(true);
            connector.set_connect_timeout(Some(DISPATCH_TIMEOUT));
            let client = Client::builder(TokioExecutor::new())
                .pool_timer(TokioTimer::new())
                .pool_idle_timeout(POOL_IDLE_TIMEOUT)
                .pool_max_idle_per_host(POOL_MAX_IDLE)
                .build(connector);
            let uri = format!("{}/async-function/iaas-bench", base.trim_end_matches('/')).parse()?;
            Some(Dispatch { client, uri, body: Bytes::from(std::fs::read(std::env::var("DISPATCH_BODY")?)?) })
        }
        Err(_) => None,
    };
    let state = Arc::new(Ack { answers: read_answers(&std::env::var("ANSWERS")?)?, dispatch });
    let app = Router::new()
        .route("/slack/commands", post(move |headers: HeaderMap, body: Bytes| ack(state.clone(), headers, body)))
        .route("/_/health", get(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind(("0.0.0.0", port)).await?;
    axum::serve(listener, app).await?;
    Ok(())
}
