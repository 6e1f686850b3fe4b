//! Socket Mode (#11) end to end: `iaas serve` with `SLACK_APP_TOKEN` opens WebSockets to the
//! Socket Mode stand-in (`iaas_tests::socket_mode`), acts on vcsim, and answers on response_url.

mod common;

use std::time::Duration;

use common::{button_token, Serve, APP_TOKEN};
use iaas_slack::Message;
use iaas_tests::socket_mode::{envelope_id, interactive_envelope, slash_envelope};
use iaas_tests::vcsim::{Vcsim, VcsimOptions};
use iaas_vsphere::soap::SoapClient;
use iaas_vsphere::{PowerState, VcError, Vcenter};

async fn start(vcsim: &Vcsim) -> (Serve, SoapClient) {
    let serve = Serve::start_with(Some(&vcsim.url), &[("SLACK_APP_TOKEN", APP_TOKEN)]).await;
    (serve, SoapClient::new(vcsim.config()).unwrap())
}

async fn power_state(reader: &SoapClient, name: &str) -> PowerState {
    let vm = reader.find_vm(name).await.unwrap();
    reader.vm_details(&vm).await.unwrap().summary.power_state
}

/// The ephemeral answer an ack carries, as the user would read it.
fn ack_text(ack: &serde_json::Value) -> String {
    serde_json::from_value::<Message>(ack["payload"].clone()).map(|m| m.readable()).unwrap_or_default()
}

/// The gateway's hand-overs in the audit trail naming `needle`, once at least `expected` are
/// written (the audit writer is asynchronous), so a second one would be counted too.
async fn handed_over(serve: &Serve, needle: &str, expected: usize) -> usize {
    let mut count = 0;
    for _ in 0..100 {
        let audit = serve.cli(&["audit", "--limit", "500"]).await;
        count = audit.lines().filter(|l| l.contains("handed to") && l.contains(needle)).count();
        if count >= expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    count
}

#[tokio::test]
async fn a_slash_command_envelope_is_acked_with_its_id_and_powers_the_vm_off() {
    let vcsim = Vcsim::start().await.unwrap();
    let (serve, reader) = start(&vcsim).await;
    let connections = serve.socket.connections(2).await;
    assert_eq!(reqwest::get(format!("{}/_/ready", serve.url)).await.unwrap().status(), 200);

    let id = envelope_id();
    serve.socket.send(connections[0], slash_envelope(&id, "U1", "power off app-web-01", &serve.response_url()));
    let (on, ack) = serve.socket.ack(&id).await;
    assert_eq!(on, connections[0], "acked on the connection it came on");
    let text = ack_text(&ack);
    assert!(text.contains("Accepted `power off app-web-01`") && text.contains("request "), "the HTTP ack's answer: {ack}");

    let answer = serve.answer().await.readable();
    assert!(answer.contains("app-web-01* is now powered off"), "{answer}");
    assert_eq!(power_state(&reader, "app-web-01").await, PowerState::PoweredOff);

    // Help is answered in the ack itself, as over HTTP.
    let help = envelope_id();
    serve.socket.send(connections[1], slash_envelope(&help, "U1", "help", &serve.response_url()));
    assert!(ack_text(&serve.socket.ack(&help).await.1).contains("power"), "help in the ack");

    // HTTP stays on, signed and unchanged, while Socket Mode is on.
    let on = serve.run("U1", "power on app-web-01").await.readable();
    assert!(on.contains("is now powered on"), "{on}");
    assert_eq!(power_state(&reader, "app-web-01").await, PowerState::PoweredOn);
}

#[tokio::test]
async fn a_block_actions_envelope_confirms_a_delete() {
    let vcsim = Vcsim::start().await.unwrap();
    let (serve, reader) = start(&vcsim).await;
    let connections = serve.socket.connections(2).await;

    let ask = envelope_id();
    serve.socket.send(connections[0], slash_envelope(&ask, "U1", "delete app-web-02", &serve.response_url()));
    serve.socket.ack(&ask).await;
    let prompt = serve.answer().await;
    assert!(prompt.readable().contains("Delete *app-web-02*?"), "{}", prompt.readable());
    assert!(reader.find_vm("app-web-02").await.is_ok(), "nothing is deleted before the press");

    let press = envelope_id();
    serve.socket.send(connections[1], interactive_envelope(&press, serve.press_payload("U1", "delete.confirm", &button_token(&prompt))));
    let (_, ack) = serve.socket.ack(&press).await;
    assert!(ack.get("payload").is_none(), "a press is acked bare: {ack}");
    let deleted = serve.answer().await.readable();
    assert!(deleted.contains("*app-web-02* was deleted by <@U1>"), "{deleted}");
    assert!(matches!(reader.find_vm("app-web-02").await, Err(VcError::NotFound { .. })));
}

#[tokio::test]
async fn a_refresh_opens_the_new_connection_before_the_old_one_closes() {
    let vcsim = Vcsim::start().await.unwrap();
    let (serve, reader) = start(&vcsim).await;
    let before = serve.socket.connections(2).await;

    // Slack closes the refreshed socket some seconds after `disconnect`; long here, so a gateway
    // that waited for the close would not have its replacement while the old one is still up.
    serve.socket.disconnect(before[0], "refresh_requested", Duration::from_secs(25));
    let after = serve.socket.connections(2).await;
    let fresh = *after.iter().find(|c| !before.contains(c)).expect("a new connection");
    assert!(serve.socket.is_connected(before[0]), "the replacement said hello while the old socket was still open");

    let id = envelope_id();
    serve.socket.send(fresh, slash_envelope(&id, "U1", "power off app-db-01", &serve.response_url()));
    assert_eq!(serve.socket.ack(&id).await.0, fresh);
    assert!(serve.answer().await.readable().contains("app-db-01* is now powered off"));
    assert_eq!(power_state(&reader, "app-db-01").await, PowerState::PoweredOff);

    // A `warning` is handled the same way.
    serve.socket.disconnect(fresh, "warning", Duration::from_secs(25));
    let later = serve.socket.connections(2).await;
    assert!(later.iter().all(|c| *c != fresh && *c != before[0]));
}

#[tokio::test]
async fn a_socket_dropped_mid_burst_loses_nothing_and_runs_every_command_once() {
    const VMS: usize = 8;
    let vcsim = Vcsim::start_with(VcsimOptions { extra_vms: VMS, ..Default::default() }).await.unwrap();
    let (serve, reader) = start(&vcsim).await;
    let connections = serve.socket.connections(2).await;
    let names: Vec<String> = (1..=VMS).map(|n| format!("bench-vm-{n:03}")).collect();

    for (n, name) in names.iter().enumerate() {
        // Alternating, and only on the surviving connection once the other was dropped.
        let on = if n > VMS / 2 { connections[1] } else { connections[n % 2] };
        serve.socket.send(on, slash_envelope(&envelope_id(), "U1", &format!("power off {name}"), &serve.response_url()));
        if n == VMS / 2 {
            // Whatever this socket got and did not ack yet, Slack redelivers on the other one.
            serve.socket.drop_connection(connections[0]);
        }
    }
    serve.socket.all_acked().await;

    let mut answers = Vec::new();
    for _ in 0..VMS {
        answers.push(serve.answer().await.readable());
    }
    for name in &names {
        assert_eq!(answers.iter().filter(|a| a.contains(&format!("{name}* is now powered off"))).count(), 1, "{name}: {answers:#?}");
        assert_eq!(power_state(&reader, name).await, PowerState::PoweredOff);
        assert_eq!(handed_over(&serve, &format!("power off {name} "), 1).await, 1, "{name} handed over once");
    }
    assert_eq!(vcsim.stats().await.unwrap().get("PowerOffVM_Task").copied(), Some(VMS as u64));
}

#[tokio::test]
async fn the_same_envelope_delivered_twice_acts_once() {
    let vcsim = Vcsim::start().await.unwrap();
    let (serve, reader) = start(&vcsim).await;
    let connections = serve.socket.connections(2).await;

    let id = envelope_id();
    let envelope = slash_envelope(&id, "U1", "power off app-web-01", &serve.response_url());
    serve.socket.send(connections[0], envelope.clone());
    serve.socket.ack(&id).await;
    assert!(serve.answer().await.readable().contains("is now powered off"));
    serve.run("U1", "power on app-web-01").await;

    // Redelivered (say the first ack was lost), on the other connection.
    let mut again = envelope;
    again["retry_attempt"] = 1.into();
    again["retry_reason"] = "timeout".into();
    serve.socket.send(connections[1], again);
    let acks = loop {
        let acks = serve.socket.acks_for(&id);
        if acks.len() == 2 {
            break acks;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(acks[1].get("payload").is_none(), "the redelivery is acked and not run: {}", acks[1]);
    assert_eq!(power_state(&reader, "app-web-01").await, PowerState::PoweredOn, "the redelivered power-off did not run");
    assert_eq!(handed_over(&serve, "power off app-web-01", 1).await, 1);
    let audit = serve.cli(&["audit"]).await;
    assert_eq!(audit.matches("redelivered envelope").count(), 1, "{audit}");
}

#[tokio::test]
async fn unknown_envelope_types_are_acked_and_the_loop_goes_on() {
    let vcsim = Vcsim::start().await.unwrap();
    let (serve, _reader) = start(&vcsim).await;
    let connections = serve.socket.connections(2).await;

    let odd = envelope_id();
    serve.socket.send(connections[0], serde_json::json!({"envelope_id": odd, "type": "events_api", "accepts_response_payload": false, "payload": {"event": {"type": "app_mention"}}, "retry_attempt": 0}));
    let garbled = envelope_id();
    serve.socket.send(connections[0], serde_json::json!({"envelope_id": garbled, "type": "slash_commands", "payload": [1, 2, 3]}));
    assert!(serve.socket.ack(&odd).await.1.get("payload").is_none());
    assert!(serve.socket.ack(&garbled).await.1.get("payload").is_none());

    let id = envelope_id();
    serve.socket.send(connections[0], slash_envelope(&id, "U1", "vm list", &serve.response_url()));
    assert_eq!(serve.socket.ack(&id).await.0, connections[0], "the same connection still serves");
}

#[tokio::test]
async fn not_ready_while_no_connection_is_open() {
    let vcsim = Vcsim::start().await.unwrap();
    let (serve, _reader) = start(&vcsim).await;
    let connections = serve.socket.connections(2).await;
    let ready = || async { reqwest::get(format!("{}/_/ready", serve.url)).await.unwrap().status().as_u16() };
    assert_eq!(ready().await, 200);

    serve.socket.refuse_connections(true);
    for connection in connections {
        serve.socket.drop_connection(connection);
    }
    let mut status = 0;
    for _ in 0..300 {
        status = ready().await;
        if status == 503 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, 503, "not ready without a connection");
    assert_eq!(reqwest::get(format!("{}/_/health", serve.url)).await.unwrap().status(), 200, "alive all the same");

    serve.socket.refuse_connections(false);
    serve.socket.connections(1).await;
    for _ in 0..300 {
        status = ready().await;
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, 200, "ready again once a connection is open");
}

#[tokio::test]
async fn a_bad_app_token_stops_start_up_with_one_line() {
    let serve = Serve::start(None).await;
    for (token, says) in [
        ("xapp-1-A0E2EAPP1-wrong", "SLACK_APP_TOKEN: Slack refused it (invalid_auth)."),
        ("xoxb-a-bot-token", "SLACK_APP_TOKEN: is not an app-level token (those start with xapp-)."),
    ] {
        let out = serve.serve_output(&[("SLACK_APP_TOKEN", token)]).await;
        assert!(!out.status.success(), "{token}: iaas serve started");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let last = stderr.lines().last().unwrap_or_default();
        assert!(last.starts_with(&format!("iaas: {says}")), "{token}: {stderr}");
        assert!(!stderr.contains(token), "the token is never printed: {stderr}");
        assert!(!String::from_utf8_lossy(&out.stdout).contains("listening"), "{token}: it listened");
    }
}

/// The Socket Mode manifest is the HTTP one with Socket Mode on and no Request URLs.
#[test]
fn the_socket_mode_manifest_differs_from_the_http_one_only_in_socket_mode() {
    let read = |name: &str| -> serde_yaml::Value {
        serde_yaml::from_str(&std::fs::read_to_string(format!("{}/../{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()).unwrap()
    };
    let (mut http, socket) = (read("slack-manifest.yaml"), read("slack-manifest-socket.yaml"));
    assert_eq!(socket["settings"]["socket_mode_enabled"], serde_yaml::Value::Bool(true));
    http["settings"]["socket_mode_enabled"] = serde_yaml::Value::Bool(true);
    http["settings"]["interactivity"].as_mapping_mut().unwrap().remove("request_url");
    for command in http["features"]["slash_commands"].as_sequence_mut().unwrap() {
        command.as_mapping_mut().unwrap().remove("url");
    }
    assert_eq!(http, socket);
}
