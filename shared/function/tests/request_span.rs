//! One request id inside a function: the invocation's id is on the span of everything the
//! handler logs (with the short form the user sees), and the Slack answer names that short form.

mod common;

use iaas_invocation::InvocationId;
use std::io::Write;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::Request;
use iaas_config::Policy;
use iaas_function::Reply;
use iaas_invocation::{Command, Invocation, PowerAction, SlackChannel, SlackUser, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use iaas_slack::Message;
use iaas_vsphere::demo::DemoInventory;
use tower::ServiceExt;

/// Log lines written to memory, for the test to read.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn the_handlers_logs_and_the_answer_carry_the_request_id() {
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt().json().with_current_span(true).with_writer(move || writer.clone()).finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let (ctx, response_url, mut rx) = common::context(Arc::new(DemoInventory::new()), Policy::default()).await;
    let ctx = Arc::new(ctx);
    let router = iaas_function::router("iaas-power", ctx, |_ctx, _inv| async {
        tracing::info!("handler ran");
        Reply::changed(Message::new("done"))
    });
    let id = uuid::Uuid::now_v7().to_string();
    let short = iaas_invocation::short_id(&id).to_string();
    let inv = Invocation {
        id: InvocationId::from(id.clone()),
        command: Command::Power { action: PowerAction::Status, vm: "app-web-01".into() },
        user: SlackUser { id: "U1".into(), ..Default::default() },
        channel: SlackChannel { id: "C1".into(), ..Default::default() },
        response_url: Some(response_url),
        issued_at: chrono::Utc::now().timestamp(),
        caller: Default::default(),
        traceparent: None,
    };
    let signed = iaas_invocation::sign(b"s", inv.issued_at, serde_json::to_vec(&inv).unwrap());
    let request = Request::post("/")
        .header(TIMESTAMP_HEADER, signed.timestamp.to_string())
        .header(SIGNATURE_HEADER, signed.signature)
        .body(Body::from(signed.body))
        .unwrap();
    assert_eq!(router.oneshot(request).await.unwrap().status(), 200);

    let answer = rx.recv().await.unwrap();
    assert!(answer.readable().contains(&format!("request {short}")), "{}", answer.readable());
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    let line = text.lines().find(|l| l.contains("handler ran")).unwrap_or_else(|| panic!("no handler log in:\n{text}"));
    let line: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(line["span"]["id"], id.as_str(), "{line}");
    assert_eq!(line["span"]["request"], short.as_str(), "{line}");
}
