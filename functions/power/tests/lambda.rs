//! The `iaas-power` binary on AWS Lambda: it is run against a Lambda Runtime API served by this
//! test, fed function-URL events exactly as the gateway's `lambda` dispatch builds them, and
//! its answers are read back from the runtime API. Uses the demo inventory.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use iaas_invocation::{Command, PowerAction};
use tokio::sync::{mpsc, Mutex as AsyncMutex};

const SECRET: &str = "lambda-test-shared-secret";

struct RuntimeApi {
    events: AsyncMutex<mpsc::Receiver<Vec<u8>>>,
    responses: mpsc::Sender<serde_json::Value>,
    counter: Mutex<u32>,
}

async fn next(State(api): State<Arc<RuntimeApi>>) -> impl IntoResponse {
    let event = api.events.lock().await.recv().await.unwrap_or_default();
    let id = {
        let mut n = api.counter.lock().unwrap();
        *n += 1;
        format!("req-{n}")
    };
    let mut headers = HeaderMap::new();
    headers.insert("lambda-runtime-aws-request-id", HeaderValue::from_str(&id).unwrap());
    let deadline = chrono::Utc::now().timestamp_millis() + 60_000;
    headers.insert("lambda-runtime-deadline-ms", HeaderValue::from_str(&deadline.to_string()).unwrap());
    headers.insert(
        "lambda-runtime-invoked-function-arn",
        HeaderValue::from_static("arn:aws:lambda:eu-west-1:123456789012:function:iaas-power"),
    );
    headers.insert("lambda-runtime-trace-id", HeaderValue::from_static("Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1"));
    (headers, event)
}

async fn respond(State(api): State<Arc<RuntimeApi>>, Path((_id, kind)): Path<(String, String)>, body: Bytes) -> &'static str {
    let mut value: serde_json::Value = serde_json::from_slice(&body).unwrap_or(serde_json::json!({"raw": String::from_utf8_lossy(&body)}));
    value["_kind"] = kind.into();
    let _ = api.responses.send(value).await;
    "ok"
}

fn invocation(id: &str, action: PowerAction) -> Vec<u8> {
    iaas_tests::invocation::encoded(id, Command::Power { action, vm: "app-web-01".into() }, None)
}

#[tokio::test]
async fn power_function_runs_on_the_lambda_runtime_api() {
    let (event_tx, event_rx) = mpsc::channel(8);
    let (resp_tx, mut resp_rx) = mpsc::channel(8);
    let api = Arc::new(RuntimeApi { events: AsyncMutex::new(event_rx), responses: resp_tx, counter: Mutex::new(0) });
    let app = Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route("/2018-06-01/runtime/invocation/{id}/{kind}", post(respond))
        .route(
            "/2018-06-01/runtime/init/error",
            post(|body: Bytes| async move { eprintln!("init error: {}", String::from_utf8_lossy(&body)) }),
        )
        .with_state(api);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let runtime_api = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let dir = std::env::temp_dir().join(format!("iaas-power-lambda-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_iaas-power"))
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", &runtime_api)
        .env("AWS_LAMBDA_FUNCTION_NAME", "iaas-power")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/iaas-power")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "test")
        .env("IAAS_SHARED_SECRET", SECRET)
        .env("DATABASE_URL", format!("sqlite://{}/state.db", dir.display()))
        .kill_on_drop(true)
        .spawn()
        .unwrap();

    async fn call(tx: &mpsc::Sender<Vec<u8>>, rx: &mut mpsc::Receiver<serde_json::Value>, event: Vec<u8>) -> serde_json::Value {
        tx.send(event).await.unwrap();
        tokio::time::timeout(Duration::from_secs(30), rx.recv()).await.expect("the function answered").unwrap()
    }
    let now = chrono::Utc::now().timestamp();
    let signed = |body: Vec<u8>| iaas_gateway::dispatch::function_url_event(&iaas_invocation::sign(SECRET.as_bytes(), now, body));

    // A signed power-off acts, and is answered as an HTTP 200 with the outcome.
    let first = call(&event_tx, &mut resp_rx, signed(invocation("inv-1", PowerAction::Off))).await;
    assert_eq!(first["_kind"], "response");
    assert_eq!(first["statusCode"], 200, "{first}");
    let body: serde_json::Value = serde_json::from_str(first["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["status"], "done");
    assert_eq!(body["ok"], true);
    assert!(body["text"].as_str().unwrap().contains("app-web-01* is now powered off"), "{body}");

    // The same invocation again (Lambda retries async events): the recorded outcome, no action.
    let again = call(&event_tx, &mut resp_rx, signed(invocation("inv-1", PowerAction::Off))).await;
    let body: serde_json::Value = serde_json::from_str(again["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["status"], "duplicate");
    assert!(body["text"].as_str().unwrap().contains("is now powered off"), "{body}");

    // A new invocation sees the state the first one left.
    let status = call(&event_tx, &mut resp_rx, signed(invocation("inv-2", PowerAction::Off))).await;
    let body: serde_json::Value = serde_json::from_str(status["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["ok"], false);
    assert!(body["text"].as_str().unwrap().contains("already powered off"), "{body}");

    // Tampered: signed for one body, carrying another.
    let mut event: serde_json::Value = serde_json::from_slice(&signed(invocation("inv-3", PowerAction::On))).unwrap();
    event["body"] = String::from_utf8(invocation("inv-4", PowerAction::Reset)).unwrap().into();
    let refused = call(&event_tx, &mut resp_rx, serde_json::to_vec(&event).unwrap()).await;
    assert_eq!(refused["statusCode"], 401, "{refused}");

    child.kill().await.ok();
    std::fs::remove_dir_all(&dir).ok();
}
