//! The gateway's Slack edge, driven through its router with real signatures: what is refused
//! (and that nothing is dispatched then), what is answered directly, and what is handed over.

mod common;

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use axum::body::Body;
use common::{NOW, SHARED, SIGNING};
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use iaas_gateway::dispatch::DispatchError;
use iaas_gateway::{router, Dispatch, Gateway, REQUEST_ID_HEADER};
use iaas_invocation::{Command, Invocation, PowerAction, SignedBody};
use iaas_slack::{Message, Press, SlashCommand};
use tower::ServiceExt;

#[derive(Default)]
struct Recorder {
    sent: Mutex<Vec<(String, SignedBody)>>,
    fail: bool,
}

#[async_trait]
impl Dispatch for Recorder {
    async fn dispatch(&self, function: &str, signed: SignedBody) -> Result<(), DispatchError> {
        if self.fail {
            return Err(DispatchError("queue is down".into()));
        }
        self.sent.lock().unwrap().push((function.to_string(), signed));
        Ok(())
    }
    fn describe(&self) -> String {
        "recorder".into()
    }
}

fn gateway(recorder: Arc<Recorder>) -> Arc<Gateway> {
    Arc::new(common::gateway(recorder))
}

fn form(text: &str) -> String {
    SlashCommand {
        team_id: "T1".into(),
        channel_id: "C1".into(),
        user_id: "U1".into(),
        user_name: "ann".into(),
        command: "/iaas".into(),
        text: text.into(),
        response_url: "https://hooks.slack.com/commands/T1/1/abc".into(),
        ..Default::default()
    }
    .to_form()
}

fn signed_request(body: &str, ts: i64, secret: &str) -> Request<Body> {
    Request::post("/slack/commands")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-slack-request-timestamp", ts.to_string())
        .header("x-slack-signature", iaas_slack::sign(secret.as_bytes(), ts, body.as_bytes()))
        .body(Body::from(body.to_string()))
        .unwrap()
}

async fn send(gw: Arc<Gateway>, req: Request<Body>) -> (StatusCode, Option<String>, String) {
    let resp = router(gw).oneshot(req).await.unwrap();
    let status = resp.status();
    let id = resp.headers().get(REQUEST_ID_HEADER).map(|v| v.to_str().unwrap().to_string());
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, id, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn a_signed_command_is_acked_and_dispatched_signed() {
    let rec = Arc::new(Recorder::default());
    let (status, id, body) = send(gateway(rec.clone()), signed_request(&form("power off app-web-01"), NOW, SIGNING)).await;
    assert_eq!(status, StatusCode::OK);
    let ack: Message = serde_json::from_str(&body).unwrap();
    assert_eq!(ack.response_type.as_deref(), Some("ephemeral"));
    assert!(ack.text.contains("Accepted `power off app-web-01`"), "{}", ack.text);
    let id = id.expect("dispatched acks carry the request id");
    assert!(ack.readable().contains(iaas_invocation::short_id(&id)));

    let sent = rec.sent.lock().unwrap();
    assert_eq!(sent.len(), 1);
    let (function, signed) = &sent[0];
    assert_eq!(function, "iaas-power");
    iaas_invocation::verify(SHARED.as_bytes(), Some(&signed.timestamp.to_string()), Some(&signed.signature), &signed.body, NOW).unwrap();
    let inv: Invocation = serde_json::from_slice(&signed.body).unwrap();
    assert_eq!(inv.id, id);
    assert_eq!(inv.command, Command::Power { action: PowerAction::Off, vm: "app-web-01".into() });
    assert_eq!(inv.user.id, "U1");
    assert_eq!(inv.response_url.as_deref(), Some("https://hooks.slack.com/commands/T1/1/abc"));
}

#[tokio::test]
async fn forged_stale_future_and_unsigned_requests_get_401_and_dispatch_nothing() {
    let rec = Arc::new(Recorder::default());
    let body = form("power off app-web-01");
    let cases = [
        signed_request(&body, NOW, "wrong-secret"),
        signed_request(&body, NOW - 301, SIGNING),
        signed_request(&body, NOW + 301, SIGNING),
        Request::post("/slack/commands").body(Body::from(body.clone())).unwrap(),
        {
            // Signed for one body, sent with another.
            let mut req = signed_request(&body, NOW, SIGNING);
            *req.body_mut() = Body::from(form("power off app-db-01"));
            req
        },
    ];
    for req in cases {
        let (status, id, text) = send(gateway(rec.clone()), req).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{text}");
        assert!(id.is_none());
        assert!(!text.is_empty() && text.len() < 80, "{text}");
    }
    assert!(rec.sent.lock().unwrap().is_empty());
}

#[tokio::test]
async fn ssl_check_oversized_and_malformed_bodies() {
    let rec = Arc::new(Recorder::default());
    let (status, _, body) =
        send(gateway(rec.clone()), Request::post("/slack/commands").body(Body::from("ssl_check=1&token=x")).unwrap()).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, ""));

    let huge = format!("text={}", "a".repeat(iaas_gateway::BODY_LIMIT + 1));
    let (status, _, _) = send(gateway(rec.clone()), signed_request(&huge, NOW, SIGNING)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);

    // Correctly signed, but not a slash command form.
    let (status, _, _) = send(gateway(rec.clone()), signed_request("{\"json\":true}", NOW, SIGNING)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(rec.sent.lock().unwrap().is_empty());
}

#[tokio::test]
async fn help_and_mistakes_are_answered_without_dispatch() {
    let rec = Arc::new(Recorder::default());
    for (text, expect) in [
        ("help", "/iaas power on|off"),
        ("", "/iaas vm list"),
        ("powr off app-web-01", "did you mean `power`"),
        ("power sideways app-web-01", "Usage: `/iaas power"),
    ] {
        let (status, id, body) = send(gateway(rec.clone()), signed_request(&form(text), NOW, SIGNING)).await;
        assert_eq!(status, StatusCode::OK);
        assert!(id.is_none());
        let ack: Message = serde_json::from_str(&body).unwrap();
        assert!(ack.readable().contains(expect), "{text:?} → {}", ack.readable());
    }
    assert!(rec.sent.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_foreign_response_url_is_never_dispatched() {
    let rec = Arc::new(Recorder::default());
    let body = form("vm list").replace("hooks.slack.com", "evil.example");
    let (status, id, text) = send(gateway(rec.clone()), signed_request(&body, NOW, SIGNING)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(id.is_none());
    assert!(text.contains("no Slack response address"), "{text}");
    assert!(rec.sent.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_failed_dispatch_is_told_in_the_ack() {
    let rec = Arc::new(Recorder { fail: true, ..Default::default() });
    let (status, id, body) = send(gateway(rec), signed_request(&form("vm list"), NOW, SIGNING)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(id.is_none());
    assert!(body.contains("could not be handed to iaas-inventory (queue is down)"), "{body}");
}

/// Slack's documented press on an ephemeral message (the reference fixture, as Slack sends it:
/// `user` carries both `username` and `name`, plus `container`, `team`, `enterprise: null`, …).
const DOCUMENTED_PRESS: &str = include_str!("../../shared/slack/tests/fixtures/block_actions_ephemeral.json");

/// A press in the documented shape, built the way `iaas slash --press` and the e2e Slack
/// stand-in build theirs.
fn documented(action_id: &str, user: &str) -> Press {
    Press {
        user_id: user.into(),
        user_name: "bob".into(),
        team_id: "T1".into(),
        team_domain: "acme".into(),
        channel_id: "C1".into(),
        channel_name: "ops".into(),
        response_url: "https://hooks.slack.com/actions/T1/1/xyz".into(),
        action_id: action_id.into(),
        value: "tok-123".into(),
        label: "Delete app-web-01".into(),
        style: Some("danger".into()),
        message: None,
        enterprise: None,
    }
}

fn press(action_id: &str, user: &str) -> String {
    documented(action_id, user).to_form()
}

fn interaction_request(body: &str, secret: &str) -> Request<Body> {
    let mut req = signed_request(body, NOW, secret);
    *req.uri_mut() = "/slack/interactions".parse().unwrap();
    req
}

#[tokio::test]
async fn a_button_press_is_dispatched_as_the_presser() {
    let rec = Arc::new(Recorder::default());
    let (status, _, _) = send(gateway(rec.clone()), interaction_request(&press("delete.confirm", "U2"), SIGNING)).await;
    assert_eq!(status, StatusCode::OK);
    let sent = rec.sent.lock().unwrap();
    let (function, signed) = &sent[0];
    assert_eq!(function, "iaas-delete");
    let inv: Invocation = serde_json::from_slice(&signed.body).unwrap();
    assert_eq!(inv.command, Command::Confirm { of: iaas_invocation::Confirmable::Delete, token: "tok-123".into(), confirmed: true });
    assert_eq!(inv.user.id, "U2", "the presser, not the asker, is who the function checks");
    assert_eq!(inv.response_url.as_deref(), Some("https://hooks.slack.com/actions/T1/1/xyz"));
}

/// Slack's own example payload reaches the function, as the person who pressed.
#[tokio::test]
async fn the_documented_press_payload_is_dispatched() {
    let rec = Arc::new(Recorder::default());
    let body = iaas_slack::interaction::form(&serde_json::from_str(DOCUMENTED_PRESS).unwrap());
    let (status, _, _) = send(gateway(rec.clone()), interaction_request(&body, SIGNING)).await;
    assert_eq!(status, StatusCode::OK);
    let sent = rec.sent.lock().unwrap();
    assert_eq!(sent.len(), 1, "the documented press was not dispatched");
    let inv: Invocation = serde_json::from_slice(&sent[0].1.body).unwrap();
    assert_eq!(
        inv.command,
        Command::Confirm { of: iaas_invocation::Confirmable::Delete, token: "token-value-from-the-message".into(), confirmed: true }
    );
    assert_eq!((inv.user.id.as_str(), inv.user.name.as_str(), inv.user.team_id.as_str()), ("U0CA5XYZ1", "amy.mcgee", "T0CAG1234"));
    assert_eq!((inv.channel.id.as_str(), inv.channel.name.as_str()), ("C0CA5GEN1", "general"));
}

/// A press on a message in the channel (Slack echoes the whole message, Block Kit and all) and
/// one from an Enterprise Grid org-wide install (`enterprise` set, `team` null) both act.
#[tokio::test]
async fn in_channel_and_enterprise_grid_presses_are_dispatched() {
    let message = serde_json::json!({
        "type": "message", "subtype": "bot_message", "bot_id": "B1", "app_id": "A0CA5APP1", "ts": "1733320000.000300",
        "text": "Delete app-web-01?",
        "blocks": [
            {"type": "section", "block_id": "s", "text": {"type": "mrkdwn", "text": "Delete *app-web-01*?", "verbatim": false}},
            {"type": "actions", "block_id": "Zp3a", "elements": [
                {"type": "button", "action_id": "delete.confirm", "value": "tok-123", "style": "danger", "text": {"type": "plain_text", "text": "Delete app-web-01", "emoji": true}},
                {"type": "button", "action_id": "delete.cancel", "value": "tok-123", "text": {"type": "plain_text", "text": "Cancel", "emoji": true}}
            ]}
        ]
    });
    let in_channel = Press { message: Some(message), ..documented("delete.confirm", "U2") };
    let grid = Press { enterprise: Some(("E0GRID".into(), "Acme Group".into(), true)), ..documented("delete.cancel", "U3") };
    let mut grid_payload = grid.payload();
    grid_payload["team"] = serde_json::Value::Null;
    let rec = Arc::new(Recorder::default());
    for body in [in_channel.to_form(), iaas_slack::interaction::form(&grid_payload)] {
        let (status, _, _) = send(gateway(rec.clone()), interaction_request(&body, SIGNING)).await;
        assert_eq!(status, StatusCode::OK);
    }
    let sent = rec.sent.lock().unwrap();
    let invs: Vec<Invocation> = sent.iter().map(|(_, s)| serde_json::from_slice(&s.body).unwrap()).collect();
    assert_eq!(invs.len(), 2, "both presses dispatched");
    assert_eq!((invs[0].user.id.as_str(), invs[1].user.id.as_str()), ("U2", "U3"));
    assert_eq!(invs[1].user.team_id, "T1", "the Grid user's own team");
    assert!(matches!(invs[1].command, Command::Confirm { confirmed: false, .. }));
}

/// A slash command with every field Slack documents, Enterprise Grid's included.
#[tokio::test]
async fn the_documented_slash_command_form_is_dispatched() {
    let body =
        "token=gIkuvaNzQIHg97ATvDxqgjtO&team_id=T0001&team_domain=example&enterprise_id=E0001&enterprise_name=Globular%20Construct%20Inc\
        &channel_id=C2147483705&channel_name=test&user_id=U2147483697&user_name=Steve&command=%2Fiaas&text=power+status+app-web-01\
        &response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2F1234%2F5678&trigger_id=13345224609.738474920.8088930838d88f008e0\
        &api_app_id=A123456&is_enterprise_install=false";
    let rec = Arc::new(Recorder::default());
    let (status, id, text) = send(gateway(rec.clone()), signed_request(body, NOW, SIGNING)).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(id.is_some(), "{text}");
    let sent = rec.sent.lock().unwrap();
    let inv: Invocation = serde_json::from_slice(&sent[0].1.body).unwrap();
    assert_eq!(inv.command, Command::Power { action: PowerAction::Status, vm: "app-web-01".into() });
    assert_eq!((inv.user.name.as_str(), inv.channel.name.as_str()), ("Steve", "test"));
}

#[tokio::test]
async fn forged_foreign_and_malformed_presses_dispatch_nothing() {
    let rec = Arc::new(Recorder::default());
    let (status, _, _) = send(gateway(rec.clone()), interaction_request(&press("delete.confirm", "U2"), "wrong")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, _) = send(gateway(rec.clone()), interaction_request(&press("something.else", "U2"), SIGNING)).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = send(gateway(rec.clone()), interaction_request("payload=%7Bnot-json", SIGNING)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let foreign = press("delete.confirm", "U2").replace("hooks.slack.com", "evil.example");
    let (status, _, _) = send(gateway(rec.clone()), interaction_request(&foreign, SIGNING)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(rec.sent.lock().unwrap().is_empty());
}

/// Gateway decisions reach the audit trail through the writer task: after a flush, every
/// command handed over has its `allowed` row, once, with its request id.
#[tokio::test]
async fn handed_over_commands_are_audited_after_the_flush() {
    let store = iaas_store::Store::connect("sqlite::memory:").await.unwrap();
    let rec = Arc::new(Recorder::default());
    let gw = Arc::new(Gateway { audit: Some(iaas_gateway::audit::AuditLog::queued(store.clone())), ..common::gateway(rec.clone()) });
    let mut ids = Vec::new();
    for vm in ["app-web-01", "app-web-02", "app-db-01"] {
        let (status, id, body) = send(gw.clone(), signed_request(&form(&format!("power off {vm}")), NOW, SIGNING)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        ids.push(id.expect("handed over"));
    }
    gw.flush_audit().await;
    let rows = store.audit_entries(&iaas_store::AuditFilter::default(), 50).await.unwrap();
    for id in &ids {
        let mine: Vec<_> = rows.iter().filter(|r| &r.request_id == id).collect();
        assert_eq!(mine.len(), 1, "{rows:?}");
        assert_eq!((mine[0].stage.as_str(), mine[0].decision.as_str(), mine[0].actor.as_str()), ("gateway", "allowed", "U1"));
        assert_eq!(mine[0].reason, "handed to iaas-power");
        assert!(mine[0].command.starts_with("power off app-"), "{:?}", mine[0]);
    }
}

/// Many decisions queued at once are written in batches, and a flush waits for all of them.
#[tokio::test]
async fn a_burst_of_decisions_is_written_in_full() {
    let store = iaas_store::Store::connect("sqlite::memory:").await.unwrap();
    let log = Arc::new(iaas_gateway::audit::AuditLog::queued(store.clone()));
    let n = iaas_gateway::audit::BATCH * 3 + 7;
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let log = log.clone();
            tokio::spawn(async move { log.record(common::audit_entry(i)).await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    log.flush().await;
    let rows = store.audit_entries(&iaas_store::AuditFilter::default(), 10_000).await.unwrap();
    assert_eq!(rows.len(), n);
    let mut ids: Vec<_> = rows.iter().map(|r| r.request_id.clone()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), n, "each entry exactly once");
}

/// A captured command or press sent again inside Slack's window acts once (#15.2): the store
/// remembers it, so a second gateway replica on the same store refuses it too, and the refusal
/// is audited.
#[tokio::test]
async fn a_replayed_command_or_press_is_refused_and_dispatches_nothing() {
    let store = iaas_store::Store::connect("sqlite::memory:").await.unwrap();
    let rec = Arc::new(Recorder::default());
    let replica = |audit: bool| {
        Arc::new(Gateway {
            audit: audit.then(|| iaas_gateway::audit::AuditLog::write_through(store.clone())),
            replays: iaas_gateway::replay::Replays::new(Some(store.clone())),
            ..common::gateway(rec.clone())
        })
    };
    let (one, two) = (replica(true), replica(false));
    let command = form("power reset app-web-01");
    let (status, id, body) = send(one.clone(), signed_request(&command, NOW, SIGNING)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(id.is_some());
    for gw in [one.clone(), two.clone(), one.clone()] {
        let (status, id, body) = send(gw, signed_request(&command, NOW, SIGNING)).await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        assert!(id.is_none() && body.contains("already received"), "{body}");
    }
    let pressed = press("delete.confirm", "U2");
    assert_eq!(send(two.clone(), interaction_request(&pressed, SIGNING)).await.0, StatusCode::OK);
    assert_eq!(send(one.clone(), interaction_request(&pressed, SIGNING)).await.0, StatusCode::CONFLICT);
    assert_eq!(rec.sent.lock().unwrap().len(), 2, "one reset and one press dispatched");
    let rows = store.audit_entries(&iaas_store::AuditFilter::default(), 50).await.unwrap();
    let refused: Vec<_> = rows.iter().filter(|r| r.command == "replayed request").collect();
    assert_eq!(refused.len(), 3, "{rows:?}");
    assert!(refused.iter().all(|r| r.decision == "denied"), "{refused:?}");
    assert_eq!(refused.iter().filter(|r| r.actor == "U1").count(), 2, "the replayed command's user");
    assert_eq!(refused.iter().filter(|r| r.actor == "U2").count(), 1, "the replayed press's user");
}

/// Without a database the gateway remembers in memory: a replay to the same process is refused.
#[tokio::test]
async fn without_a_store_a_replay_is_refused_in_memory() {
    let rec = Arc::new(Recorder::default());
    let gw = gateway(rec.clone());
    let command = form("power reset app-web-01");
    assert_eq!(send(gw.clone(), signed_request(&command, NOW, SIGNING)).await.0, StatusCode::OK);
    assert_eq!(send(gw.clone(), signed_request(&command, NOW, SIGNING)).await.0, StatusCode::CONFLICT);
    // The same text sent again by Slack is a new request (a new timestamp): it runs.
    assert_eq!(send(gw, signed_request(&command, NOW + 1, SIGNING)).await.0, StatusCode::OK);
    assert_eq!(rec.sent.lock().unwrap().len(), 2);
}
