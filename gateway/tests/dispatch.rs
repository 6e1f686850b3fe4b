//! Remote dispatch backends against local stand-ins for the platforms' HTTP APIs: OpenFaaS's
//! `/async-function/<name>` and Lambda's `Invoke` (event invocation).

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use iaas_gateway::{Dispatch, LambdaDispatch, OpenFaasDispatch};

type Seen = Arc<Mutex<Vec<(String, HeaderMap, Bytes)>>>;

async fn receiver(status: StatusCode) -> (String, Seen) {
    let seen: Seen = Arc::default();
    let app = Router::new()
        .route("/async-function/{name}", post(record))
        .route("/2015-03-31/functions/{name}/invocations", post(record))
        .with_state((seen.clone(), status));
    let url = iaas_tests::serve(app).await;
    (url, seen)
}

async fn record(State((seen, status)): State<(Seen, StatusCode)>, Path(name): Path<String>, headers: HeaderMap, body: Bytes) -> StatusCode {
    seen.lock().unwrap().push((name, headers, body));
    status
}

fn signed() -> iaas_invocation::SignedBody {
    iaas_invocation::sign(b"k", 1_700_000_000, &b"{\"id\":\"x\"}"[..])
}

#[tokio::test]
async fn openfaas_async_function_gets_the_signed_body() {
    let (url, seen) = receiver(StatusCode::ACCEPTED).await;
    OpenFaasDispatch::new(url).dispatch("iaas-power", signed()).await.unwrap();
    let seen = seen.lock().unwrap();
    let (name, headers, body) = &seen[0];
    assert_eq!(name, "iaas-power");
    assert_eq!(headers["x-iaas-timestamp"], "1700000000");
    assert_eq!(headers["x-iaas-signature"], signed().signature.as_str());
    assert_eq!(&body[..], b"{\"id\":\"x\"}");
}

#[tokio::test]
async fn openfaas_refusal_and_absence_are_errors() {
    let (url, _) = receiver(StatusCode::NOT_FOUND).await;
    let err = OpenFaasDispatch::new(url).dispatch("iaas-power", signed()).await.unwrap_err();
    assert!(err.to_string().contains("OpenFaaS answered 404"), "{err}");
    let err = OpenFaasDispatch::new("http://127.0.0.1:1".into()).dispatch("iaas-power", signed()).await.unwrap_err();
    assert!(err.to_string().contains("could not be reached"), "{err}");
}

#[tokio::test]
async fn lambda_event_invoke_carries_a_function_url_event() {
    let (url, seen) = receiver(StatusCode::ACCEPTED).await;
    // Only this test binary's process sees these.
    std::env::set_var("AWS_ENDPOINT_URL_LAMBDA", &url);
    std::env::set_var("AWS_ACCESS_KEY_ID", "AKIDTEST");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "test");
    std::env::set_var("AWS_REGION", "eu-west-1");
    LambdaDispatch::from_env("prod-".into()).await.dispatch("iaas-power", signed()).await.unwrap();
    let seen = seen.lock().unwrap();
    let (name, headers, body) = &seen[0];
    assert_eq!(name, "prod-iaas-power");
    assert_eq!(headers["x-amz-invocation-type"], "Event");
    assert!(headers["authorization"].to_str().unwrap().starts_with("AWS4-HMAC-SHA256 Credential=AKIDTEST/"));
    let event: serde_json::Value = serde_json::from_slice(body).unwrap();
    assert_eq!(event["version"], "2.0");
    assert_eq!(event["requestContext"]["http"]["method"], "POST");
    assert_eq!(event["headers"]["x-iaas-signature"], signed().signature.as_str());
    assert_eq!(event["body"], "{\"id\":\"x\"}");
}
