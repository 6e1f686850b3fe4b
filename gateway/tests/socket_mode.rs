//! The stand-alone `iaas-gateway` in Socket Mode: an envelope from the stand-in is acked with
//! the HTTP ack's answer and handed to OpenFaaS; a bad token, or Lambda, stops start-up in one line.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::Path;
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use iaas_tests::socket_mode::{envelope_id, slash_envelope, SocketMode};

const APP_TOKEN: &str = "xapp-1-A0GW-1733320000-gateway";

fn gateway(api_url: &str, dispatch: &str, extra: &[(&str, &str)]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_iaas-gateway"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUST_LOG", "warn")
        .env("SLACK_SIGNING_SECRET", "s")
        .env("IAAS_SHARED_SECRET", "h")
        .env("IAAS_ALLOW_EVERYONE", "true")
        .env("IAAS_DISPATCH", format!("openfaas:{dispatch}"))
        .env("SLACK_API_URL", api_url)
        .envs(extra.iter().copied())
        .stdout(Stdio::null())
        .kill_on_drop(true);
    cmd
}

#[tokio::test]
async fn an_envelope_is_acked_and_handed_to_openfaas() {
    let socket = SocketMode::start(APP_TOKEN).await;
    let slack = iaas_tests::serve(socket.router()).await;
    let handed: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let sink = handed.clone();
    let openfaas = iaas_tests::serve(Router::new().route(
        "/async-function/{name}",
        post(move |Path(name): Path<String>, body: String| async move {
            sink.lock().unwrap().push((name, body));
            StatusCode::ACCEPTED
        }),
    ))
    .await;
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port().to_string();
    let _gateway = gateway(&format!("{slack}/api"), &openfaas, &[("SLACK_APP_TOKEN", APP_TOKEN), ("PORT", &port)])
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();

    let connections = socket.connections(2).await;
    let id = envelope_id();
    socket.send(connections[1], slash_envelope(&id, "U1", "power off app-web-01", &format!("{slack}/commands/T0/1/x")));
    let (_, ack) = socket.ack(&id).await;
    assert!(ack["payload"].to_string().contains("Accepted `power off app-web-01`"), "{ack}");
    let handed = handed.lock().unwrap().clone();
    assert_eq!(handed.len(), 1, "{handed:?}");
    assert_eq!(handed[0].0, "iaas-power");
    assert!(handed[0].1.contains("app-web-01"), "{}", handed[0].1);

    // Socket Mode connects before the HTTP listener is bound: wait for the listener.
    let mut ready = None;
    for _ in 0..100 {
        if let Ok(r) = reqwest::get(format!("http://127.0.0.1:{port}/_/ready")).await {
            ready = Some(r);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(ready.expect("the gateway listens").status(), 200);
}

#[tokio::test]
async fn a_refused_token_or_lambda_stops_start_up_in_one_line() {
    let socket = SocketMode::start(APP_TOKEN).await;
    let slack = iaas_tests::serve(socket.router()).await;
    for (env, says) in [
        (vec![("SLACK_APP_TOKEN", "xapp-1-A0GW-wrong")], "iaas-gateway: SLACK_APP_TOKEN: Slack refused it (invalid_auth)."),
        (vec![("SLACK_APP_TOKEN", "xoxb-bot")], "iaas-gateway: SLACK_APP_TOKEN: is not an app-level token"),
        (
            vec![("SLACK_APP_TOKEN", APP_TOKEN), ("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9")],
            "iaas-gateway: SLACK_APP_TOKEN: Socket Mode needs a long-running process, and a Lambda function cannot hold a WebSocket.",
        ),
    ] {
        let out = tokio::time::timeout(Duration::from_secs(30), gateway(&format!("{slack}/api"), "http://127.0.0.1:9", &env).output())
            .await
            .expect("stops within 30 s")
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{env:?} started");
        assert!(stderr.lines().last().unwrap_or_default().starts_with(says), "{env:?}: {stderr}");
        assert!(!stderr.contains(env[0].1), "the token is never printed: {stderr}");
    }
}
