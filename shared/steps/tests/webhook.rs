//! The webhook step against a local axum receiver (stands in for a CMDB).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::any;
use axum::Router;
use iaas_config::Secret;
use iaas_steps::webhook::WebhookStep;
use iaas_steps::{StepOutcome, VmFacts};

/// (path, authorization header, body) of the last call.
type Call = (String, Option<String>, String);
/// Status and delay (ms) for call n (1-based).
type Plan = fn(u32) -> (u16, u64);

#[derive(Clone, Default)]
struct Seen {
    calls: Arc<AtomicU32>,
    last: Arc<Mutex<Option<Call>>>,
}

/// `plan(n)` gives the status (and an optional delay) for call `n` (1-based).
async fn receiver(plan: Plan) -> (String, Seen) {
    let seen = Seen::default();
    let app = Router::new()
        .fallback(any(|State((seen, plan)): State<(Seen, Plan)>, uri: axum::http::Uri, headers: HeaderMap, body: String| async move {
            let n = seen.calls.fetch_add(1, Ordering::SeqCst) + 1;
            let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).map(str::to_owned);
            *seen.last.lock().unwrap() = Some((uri.path().to_owned(), auth, body));
            let (status, delay_ms) = plan(n);
            tokio::time::sleep(Duration::from_millis(delay_ms)).await;
            (StatusCode::from_u16(status).unwrap(), "receiver says so")
        }))
        .with_state((seen.clone(), plan));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), seen)
}

fn vm() -> VmFacts {
    VmFacts {
        name: "app-web-01".into(),
        moref: "vm-42".into(),
        uuid: Some("4210-abcd".into()),
        ip: Some("10.20.0.11".into()),
        os_family: "linux".into(),
        owner: Some("ann@example.test".into()),
        ticket: Some("CHG-1 \"urgent\"".into()),
        reason: None,
    }
}

fn step(base: &str) -> WebhookStep {
    let mut s = WebhookStep::new("POST", format!("{base}/ci/{{{{name}}}}/retire"));
    s.body_template = Some(r#"{"ci":"{{name}}","ip":"{{ip}}","ticket":"{{ticket}}","reason":"{{reason}}"}"#.into());
    s.secret = Some(Secret::new("cmdb-token-1"));
    s.timeout = Duration::from_secs(2);
    s.retries = 2;
    s.backoff = Duration::from_millis(10);
    s
}

#[tokio::test]
async fn renders_body_and_sends_bearer() {
    let (base, seen) = receiver(|_| (201, 0)).await;
    let out = step(&base).run(&vm()).await.unwrap();
    assert!(matches!(out, StepOutcome::Done(_)), "{out:?}");
    let (path, auth, body) = seen.last.lock().unwrap().clone().unwrap();
    assert_eq!(path, "/ci/app-web-01/retire");
    assert_eq!(auth.as_deref(), Some("Bearer cmdb-token-1"));
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["ip"], "10.20.0.11");
    assert_eq!(v["ticket"], "CHG-1 \"urgent\"");
    assert_eq!(v["reason"], "");
}

#[tokio::test]
async fn not_found_is_already_done() {
    let (base, seen) = receiver(|_| (404, 0)).await;
    let out = step(&base).run(&vm()).await.unwrap();
    assert!(matches!(out, StepOutcome::AlreadyDone(_)), "{out:?}");
    assert_eq!(seen.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn server_error_then_ok_is_done() {
    let (base, seen) = receiver(|n| if n == 1 { (500, 0) } else { (200, 0) }).await;
    let out = step(&base).run(&vm()).await.unwrap();
    assert!(matches!(out, StepOutcome::Done(_)), "{out:?}");
    assert_eq!(seen.calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn server_error_forever_fails_after_the_bound() {
    let (base, seen) = receiver(|_| (500, 0)).await;
    let err = step(&base).run(&vm()).await.unwrap_err();
    assert_eq!(seen.calls.load(Ordering::SeqCst), 3, "1 + retries(2)");
    let msg = err.to_string();
    assert!(msg.contains("500") && msg.contains("3 attempts"), "{msg}");
    assert!(!msg.contains("cmdb-token-1"), "{msg}");
}

#[tokio::test]
async fn client_error_is_not_retried() {
    let (base, seen) = receiver(|_| (400, 0)).await;
    step(&base).run(&vm()).await.unwrap_err();
    assert_eq!(seen.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn timeout_is_an_error() {
    let (base, seen) = receiver(|_| (200, 3_000)).await;
    let mut s = step(&base);
    s.timeout = Duration::from_millis(200);
    s.retries = 1;
    let err = s.run(&vm()).await.unwrap_err();
    assert!(err.to_string().contains("did not answer"), "{err}");
    assert_eq!(seen.calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn connection_refused_is_an_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut s = step(&format!("http://127.0.0.1:{port}"));
    s.retries = 0;
    let err = s.run(&vm()).await.unwrap_err();
    assert!(err.to_string().contains("could not be reached"), "{err}");
}
