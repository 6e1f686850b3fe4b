//! The deployed binaries, as OpenFaaS runs them (HTTP on `$PORT` behind of-watchdog):
//! `iaas-decommission` takes signed invocations from the gateway — the request, then the
//! Confirm press — and retires a VM in vcsim; `iaas-decommission-resume` answers its schedule.

use std::process::Stdio;
use std::time::Duration;

use axum::routing::post;
use axum::{Json, Router};
use iaas_invocation::{Command, Confirmable, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use iaas_tests::vcsim::Vcsim;
use iaas_vsphere::soap::SoapClient;
use iaas_vsphere::{VcError, Vcenter};
use tokio::process::{Child, Command as Process};
use tokio::sync::mpsc;

const SECRET: &str = "decommission-http-test-secret";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A function binary on its own port, with the environment a deployment gives it.
async fn spawn(bin: &str, env: &[(&str, String)]) -> (Child, String) {
    let port = free_port();
    let child = Process::new(bin)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("PORT", port.to_string())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    for _ in 0..200 {
        if reqwest::get(format!("{url}/_/health")).await.is_ok_and(|r| r.status().is_success()) {
            return (child, url);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{bin} did not start");
}

fn invocation(id: &str, command: Command, response_url: &str) -> Vec<u8> {
    iaas_tests::invocation::encoded(id, command, Some(response_url))
}

/// Posts an invocation signed as the gateway signs it; returns the status and the outcome.
async fn invoke(url: &str, body: Vec<u8>, secret: &str) -> (u16, serde_json::Value) {
    let signed = iaas_invocation::sign(secret.as_bytes(), chrono::Utc::now().timestamp(), body);
    let resp = reqwest::Client::new()
        .post(url)
        .header(TIMESTAMP_HEADER, signed.timestamp.to_string())
        .header(SIGNATURE_HEADER, signed.signature)
        .header("content-type", "application/json")
        .body(signed.body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or_default())
}

#[tokio::test]
async fn the_deployed_functions_retire_a_vm_over_http() {
    let vcsim = Vcsim::start().await.unwrap();
    // Slack's response_url stand-in; SLACK_API_URL's host is the one the function may post to.
    let (tx, mut slack) = mpsc::channel::<serde_json::Value>(16);
    let receiver = Router::new().route(
        "/response",
        post(move |Json(m): Json<serde_json::Value>| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(m).await;
                "ok"
            }
        }),
    );
    let base = iaas_tests::serve(receiver).await;
    let response_url = format!("{base}/response");

    let dir = std::env::temp_dir().join(format!("iaas-decommission-http-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let env = [
        ("IAAS_SHARED_SECRET", SECRET.to_string()),
        ("DATABASE_URL", format!("sqlite://{}/state.db", dir.display())),
        ("SLACK_API_URL", format!("{base}/api")),
        ("VCENTER_URL", vcsim.url.clone()),
        ("VCENTER_USER", "iaas".to_string()),
        ("VCENTER_PASSWORD", "secret".to_string()),
    ];
    let (_function, url) = spawn(env!("CARGO_BIN_EXE_iaas-decommission"), &env).await;

    // Not signed by the gateway, or signed with another secret: 401, nothing recorded.
    let ask = Command::Decommission { vms: vec!["app-web-02".into()], ticket: Some("CHG-9".into()), reason: None };
    let unsigned = reqwest::Client::new().post(&url).body(invocation("inv-0", ask.clone(), &response_url)).send().await.unwrap();
    assert_eq!(unsigned.status().as_u16(), 401);
    assert_eq!(invoke(&url, invocation("inv-0", ask.clone(), &response_url), "another-secret").await.0, 401);

    // The request: facts and plan, with a Confirm button; nothing happens yet.
    let (status, outcome) = invoke(&url, invocation("inv-1", ask, &response_url), SECRET).await;
    assert_eq!(status, 200, "{outcome}");
    let prompt = tokio::time::timeout(Duration::from_secs(10), slack.recv()).await.unwrap().unwrap();
    assert!(prompt["text"].as_str().unwrap().contains("Decommission 1 VM?"), "{prompt}");
    let token = prompt["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|b| b["elements"].as_array().cloned().unwrap_or_default())
        .find(|e| e["action_id"] == "decommission.confirm")
        .and_then(|e| e["value"].as_str().map(str::to_string))
        .expect("a Confirm button");
    let reader = SoapClient::new(vcsim.config()).unwrap();
    assert!(reader.find_vm("app-web-02").await.is_ok());

    // The press, as the gateway dispatches it: the plan runs to its end inside this call.
    let press = Command::Confirm { of: Confirmable::Decommission, token, confirmed: true };
    let (status, outcome) = invoke(&url, invocation("inv-2", press, &response_url), SECRET).await;
    assert_eq!(status, 200, "{outcome}");
    assert!(outcome["text"].as_str().unwrap().contains("Decommissioned 1 of 1 VMs."), "{outcome}");
    assert!(matches!(reader.find_vm("app-web-02").await, Err(VcError::NotFound { .. })));

    // The schedule's function on the same store: nothing was left unfinished.
    let (_resume, resume_url) = spawn(env!("CARGO_BIN_EXE_iaas-decommission-resume"), &env).await;
    // Unsigned, the schedule's endpoint runs nothing; signed (as `iaas trigger` does) it runs.
    assert_eq!(reqwest::Client::new().post(&resume_url).send().await.unwrap().status().as_u16(), 401);
    let (status, answer) = invoke(&resume_url, Vec::new(), SECRET).await;
    assert_eq!(status, 200);
    assert_eq!(answer, serde_json::json!({"resumed": 0}));
    std::fs::remove_dir_all(&dir).ok();
}

/// `decommission list --state` from an invocation that did not pass the gateway's check: an
/// unknown state is a sentence listing the valid ones; a known one in any case filters.
#[tokio::test]
async fn a_list_with_an_unknown_state_is_a_sentence() {
    let dir = std::env::temp_dir().join(format!("iaas-decommission-http-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let env = [("IAAS_SHARED_SECRET", SECRET.to_string()), ("DATABASE_URL", format!("sqlite://{}/state.db", dir.display()))];
    let (_function, url) = spawn(env!("CARGO_BIN_EXE_iaas-decommission"), &env).await;
    let list = |id: &str, state: &str| {
        let command = Command::DecommissionList { mine: false, state: Some(state.into()), vm: None, since: None };
        iaas_tests::invocation::encoded(id, command, None)
    };
    let (status, outcome) = invoke(&url, list("inv-1", "finished"), SECRET).await;
    assert_eq!(status, 200, "{outcome}");
    assert_eq!(outcome["ok"], false, "{outcome}");
    assert_eq!(
        outcome["text"],
        "`finished` is not a request state; use one of pending_confirmation, running, done, failed, cancelled. Nothing was listed."
    );
    let (_, outcome) = invoke(&url, list("inv-2", "RUNNING"), SECRET).await;
    assert_eq!((outcome["ok"].as_bool(), outcome["text"].as_str()), (Some(true), Some("No decommission requests match.")), "{outcome}");
    std::fs::remove_dir_all(&dir).ok();
}
