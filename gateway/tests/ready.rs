//! The stand-alone gateway's probes: `/_/health` is liveness; `/_/ready` asks its store (the
//! audit trail) — it talks to no vCenter — and says which check it ran.

mod common;

use std::sync::Arc;

use axum::body::Body;
use http::Request;
use http_body_util::BodyExt;
use iaas_gateway::{router, Gateway, LocalDispatch};
use iaas_store::Store;
use tower::ServiceExt;

async fn get(gw: Arc<Gateway>, path: &str) -> (u16, String) {
    let resp = router(gw).oneshot(Request::get(path).body(Body::empty()).unwrap()).await.unwrap();
    let status = resp.status().as_u16();
    (status, String::from_utf8(resp.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap())
}

#[tokio::test]
async fn ready_asks_the_store() {
    let store = Store::connect("sqlite::memory:").await.unwrap();
    let gw = Arc::new(Gateway {
        clock: iaas_gateway::system_clock(),
        audit: Some(iaas_gateway::audit::AuditLog::write_through(store)),
        ..common::gateway(Arc::new(LocalDispatch::new(Default::default())))
    });
    let (status, body) = get(gw.clone(), "/_/ready").await;
    assert_eq!(status, 200, "{body}");
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    // Socket Mode is off, so its check passes.
    assert_eq!(body["checks"], serde_json::json!({"store": "ok", "slack_socket": "ok"}));
    assert_eq!(get(gw, "/_/health").await, (200, "ok".to_string()));
}
