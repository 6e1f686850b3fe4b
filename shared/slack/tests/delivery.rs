//! Delivery to Slack against a local stand-in: `Retry-After` in both forms, a bare 500, a
//! hanging server, redirects, a closed port. Each case counts the posts the stand-in took: an
//! answer is never posted twice, and nothing follows a redirect.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use iaas_slack::{DeliveryError, Limits, Message, RespondError, Responder, WebApi, WebApiError};

#[derive(Default)]
struct Stand {
    calls: AtomicU32,
    stolen: AtomicU32,
    /// When the rate-limited cases accept a post (they refuse earlier ones).
    not_before: Mutex<Option<SystemTime>>,
}

/// 429 with `Retry-After: 1`; a post before that second has passed is refused again.
async fn seconds(State(s): State<Arc<Stand>>) -> Response {
    s.calls.fetch_add(1, Ordering::SeqCst);
    let mut guard = s.not_before.lock().unwrap();
    match *guard {
        None => {
            *guard = Some(SystemTime::now() + Duration::from_secs(1));
            (StatusCode::TOO_MANY_REQUESTS, [(header::RETRY_AFTER, "1")]).into_response()
        }
        Some(t) if SystemTime::now() < t => (StatusCode::TOO_MANY_REQUESTS, "too early").into_response(),
        Some(_) => ok(),
    }
}

/// 429 with `Retry-After` as an HTTP-date two seconds on; earlier posts are refused again.
async fn date(State(s): State<Arc<Stand>>) -> Response {
    s.calls.fetch_add(1, Ordering::SeqCst);
    let mut guard = s.not_before.lock().unwrap();
    let at = *guard.get_or_insert_with(|| SystemTime::now() + Duration::from_secs(2));
    // What the header says, truncated to the second, is when a post is welcome.
    let said = httpdate::fmt_http_date(at);
    if SystemTime::now() < httpdate::parse_http_date(&said).unwrap() {
        return (StatusCode::TOO_MANY_REQUESTS, [(header::RETRY_AFTER, said)]).into_response();
    }
    ok()
}

fn ok() -> Response {
    // Both a response_url's "ok" and a Web API answer.
    axum::Json(serde_json::json!({"ok": true, "channel": "C1", "ts": "1.2"})).into_response()
}

async fn bare_500(State(s): State<Arc<Stand>>) -> Response {
    s.calls.fetch_add(1, Ordering::SeqCst);
    StatusCode::INTERNAL_SERVER_ERROR.into_response()
}

async fn long_503(State(s): State<Arc<Stand>>) -> Response {
    s.calls.fetch_add(1, Ordering::SeqCst);
    (StatusCode::SERVICE_UNAVAILABLE, [(header::RETRY_AFTER, "3600")]).into_response()
}

async fn hang(State(s): State<Arc<Stand>>) -> Response {
    s.calls.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(3600)).await;
    ok()
}

async fn stolen(State(s): State<Arc<Stand>>) -> Response {
    s.stolen.fetch_add(1, Ordering::SeqCst);
    ok()
}

/// The stand-in on one port, and a second server (another port) that its redirects point to.
async fn start() -> (String, Arc<Stand>) {
    let stand = Arc::new(Stand::default());
    let elsewhere = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let elsewhere_url = format!("http://{}/stolen", elsewhere.local_addr().unwrap());
    let other = Router::new().route("/stolen", post(stolen)).route("/stolen/chat.postMessage", post(stolen)).with_state(stand.clone());
    tokio::spawn(async move { axum::serve(elsewhere, other).await });

    let redirect = move || {
        let to = elsewhere_url.clone();
        async move { (StatusCode::TEMPORARY_REDIRECT, [(header::LOCATION, to)]).into_response() }
    };
    let app = Router::new()
        .route("/seconds", post(seconds))
        .route("/date", post(date))
        .route("/api/chat.postMessage", post(date))
        .route("/500", post(bare_500))
        .route("/503", post(long_503))
        .route("/hang", post(hang))
        .route("/redirect", post(redirect.clone()))
        .route("/redirect-api/chat.postMessage", post(redirect))
        .with_state(stand.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, stand)
}

fn limits() -> Limits {
    Limits { request_timeout: Duration::from_secs(1), ..Limits::default() }
}

fn calls(s: &Stand) -> u32 {
    s.calls.load(Ordering::SeqCst)
}

#[tokio::test]
async fn retry_after_in_seconds_is_waited_for() {
    let (base, stand) = start().await;
    let r = Responder::with_limits(Some(&base), limits());
    r.post(&format!("{base}/seconds"), &Message::new("hi")).await.unwrap();
    assert_eq!(calls(&stand), 2, "one refused post, one after the wait");
}

#[tokio::test]
async fn retry_after_as_an_http_date_is_waited_for() {
    let (base, stand) = start().await;
    let r = Responder::with_limits(Some(&base), limits());
    r.post(&format!("{base}/date"), &Message::new("hi")).await.unwrap();
    assert_eq!(calls(&stand), 2, "one refused post, one after the date");

    let (base, stand) = start().await;
    let api = WebApi::with_limits(Some(&format!("{base}/api")), Some("xoxb".into()), limits());
    assert_eq!(api.post_message("C1", &Message::new("hi")).await.unwrap(), "1.2");
    assert_eq!(calls(&stand), 2);
}

#[tokio::test]
async fn a_bare_500_is_not_posted_again() {
    let (base, stand) = start().await;
    let r = Responder::with_limits(Some(&base), limits());
    let err = r.post(&format!("{base}/500"), &Message::new("hi")).await.unwrap_err();
    assert_eq!(err, RespondError::Delivery(DeliveryError::Status { status: reqwest::StatusCode::INTERNAL_SERVER_ERROR }));
    assert_eq!(calls(&stand), 1, "the server may have acted on it");
}

#[tokio::test]
async fn a_wait_beyond_the_budget_ends_the_attempts() {
    let (base, stand) = start().await;
    let r = Responder::with_limits(Some(&base), limits());
    let err = r.post(&format!("{base}/503"), &Message::new("hi")).await.unwrap_err();
    assert_eq!(err, RespondError::Delivery(DeliveryError::WaitTooLong { wait: Duration::from_secs(3600) }));
    assert_eq!(calls(&stand), 1);
}

#[tokio::test]
async fn a_post_that_timed_out_is_not_sent_again() {
    let (base, stand) = start().await;
    let r = Responder::with_limits(Some(&base), limits());
    let err = r.post(&format!("{base}/hang"), &Message::new("hi")).await.unwrap_err();
    assert_eq!(err, RespondError::Delivery(DeliveryError::MaybeDelivered));
    assert_eq!(calls(&stand), 1, "it may have arrived: never twice");
    let said = err.to_string();
    assert!(!said.contains("reqwest") && !said.contains("127.0.0.1") && !said.contains("os error"), "{said}");
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let (base, stand) = start().await;
    let r = Responder::with_limits(Some(&base), limits());
    let err = r.post(&format!("{base}/redirect"), &Message::new("secret answer")).await.unwrap_err();
    assert_eq!(err, RespondError::Delivery(DeliveryError::Status { status: reqwest::StatusCode::TEMPORARY_REDIRECT }));
    let api = WebApi::with_limits(Some(&format!("{base}/redirect-api")), Some("xoxb".into()), limits());
    let err = api.post_message("C1", &Message::new("secret notice")).await.unwrap_err();
    assert_eq!(err, WebApiError::Delivery(DeliveryError::Status { status: reqwest::StatusCode::TEMPORARY_REDIRECT }));
    assert_eq!(stand.stolen.load(Ordering::SeqCst), 0, "nothing reached the redirect's target");
}

#[tokio::test]
async fn another_port_on_the_allowed_host_is_not_posted_to() {
    let (base, stand) = start().await;
    let r = Responder::with_limits(Some(&format!("{base}/api")), limits());
    // The allowed host, another port.
    let err = r.post("http://127.0.0.1:1/stolen/secret-token", &Message::new("hi")).await.unwrap_err();
    assert_eq!(err, RespondError::ForeignHost { host: "127.0.0.1".into() });
    assert!(!err.to_string().contains("secret-token"), "the error never carries the URL's path: {err}");
    assert_eq!(stand.stolen.load(Ordering::SeqCst) + calls(&stand), 0);
}

#[tokio::test]
async fn a_closed_port_is_tried_again_then_reported_as_a_sentence() {
    // Bound then dropped: nothing listens there.
    let port = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port();
    let base = format!("http://127.0.0.1:{port}");
    let r = Responder::with_limits(Some(&base), limits());
    let err = r.post(&format!("{base}/r"), &Message::new("hi")).await.unwrap_err();
    assert_eq!(err, RespondError::Delivery(DeliveryError::Unreachable));
    assert_eq!(err.to_string(), "Slack could not be reached, so the message was not delivered");
}
