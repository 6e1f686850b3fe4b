//! Decommission with the step kinds that reach beyond vCenter, end to end: `/iaas decommission`
//! through `iaas serve` → vcsim, a real BIND 9 (TSIG dynamic update), a real slapd (computer
//! objects) and a local webhook receiver standing in for a CMDB.

mod common;

use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, StatusCode};
use axum::routing::any;
use axum::Router;
use common::decommission::{gone, record, request_id, step, store, until};
use common::{button_token, start_on, Serve};
use iaas_store::DecommissionDetail;
use iaas_tests::bind::Bind;
use iaas_tests::slapd::{Slapd, COMPUTERS_DN};
use iaas_tests::vcsim::Vcsim;
use iaas_vsphere::soap::SoapClient;

const CMDB_TOKEN: &str = "cmdb-e2e-token";

/// (path, authorization header, body) of each call the receiver got.
type Calls = Arc<Mutex<Vec<(String, Option<String>, String)>>>;

/// A CMDB stand-in: records every call; paths under /fail answer 500, the rest 200.
async fn receiver() -> (String, Calls) {
    let calls: Calls = Arc::default();
    let seen = calls.clone();
    let app = Router::new().fallback(any(move |uri: axum::http::Uri, headers: HeaderMap, body: String| {
        let seen = seen.clone();
        async move {
            let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).map(str::to_owned);
            seen.lock().unwrap().push((uri.path().to_owned(), auth, body));
            if uri.path().starts_with("/fail") {
                (StatusCode::INTERNAL_SERVER_ERROR, "cmdb is down")
            } else {
                (StatusCode::OK, "ok")
            }
        }
    }));
    let url = iaas_tests::serve(app).await;
    (url, calls)
}

fn webhook(name: &str, url: &str, on_failure: &str) -> String {
    format!(
        r#"{{ kind = "webhook", name = "{name}", on_failure = "{on_failure}", url = "{url}/{{{{name}}}}", secret_env = "IAAS_E2E_CMDB_TOKEN", retries = 0, timeout_secs = 5, body = '{{"vm": "{{{{name}}}}", "ip": "{{{{ip}}}}", "ticket": "{{{{ticket}}}}"}}' }}"#
    )
}

async fn start(vcsim: &Vcsim, plans: &str, env: &[(&str, &str)]) -> (Serve, SoapClient) {
    let policy = format!("[decommission]\nshutdown_timeout_secs = 5\ncancel_poll_ms = 100\n\n[decommission.plans]\n{plans}\n");
    let mut all = vec![("IAAS_E2E_CMDB_TOKEN", CMDB_TOKEN)];
    all.extend_from_slice(env);
    start_on(vcsim, &policy, &all).await
}

/// Confirms a decommission of `vms` and waits for the final message containing `end`.
async fn decommission(serve: &Serve, vms: &str, end: &str) -> (DecommissionDetail, Vec<String>) {
    let prompt = serve.run("U1", &format!("decommission {vms} --ticket CHG-9 --reason \"e2e\"")).await;
    let id = request_id(&prompt.readable());
    assert_eq!(serve.press("U1", "decommission.confirm", &button_token(&prompt)).await, 200);
    let seen = until(serve, &[end]).await;
    (record(&store(serve).await, &id).await, seen)
}

/// The computer objects under ou=computers (cn values), read with ldapsearch.
fn computers(slapd: &Slapd) -> Vec<String> {
    let out = std::process::Command::new("ldapsearch")
        .args([
            "-x",
            "-LLL",
            "-H",
            &slapd.url,
            "-D",
            &slapd.admin_dn,
            "-w",
            &slapd.admin_password,
            "-b",
            COMPUTERS_DN,
            "(objectClass=device)",
            "cn",
        ])
        .env("LDAPNOINIT", "1")
        .output()
        .expect("ldapsearch runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut cns: Vec<String> =
        String::from_utf8_lossy(&out.stdout).lines().filter_map(|l| l.strip_prefix("cn: ").map(str::to_string)).collect();
    cns.sort();
    cns
}

#[tokio::test]
async fn every_step_kind_retires_linux_and_windows_vms() {
    let vcsim = Vcsim::start().await.unwrap();
    let bind = Bind::start().await.expect("named starts");
    let slapd = Slapd::start_seeded().await.expect("slapd starts");
    slapd.add_computers(&["app-web-01", "win-app-01", "app-db-01"]).expect("computers load");
    let (hook, calls) = receiver().await;
    let dns = format!(
        r#"{{ kind = "dns", server = "{}", zone = "{}", reverse_zone = "{}", key_name = "{}", secret_env = "IAAS_E2E_TSIG", timeout_secs = 5 }}"#,
        bind.addr,
        iaas_tests::bind::ZONE,
        iaas_tests::bind::REVERSE_ZONE,
        bind.key_name
    );
    let dir = format!(
        r#"{{ kind = "directory_computer", url = "{}", bind_dn = "{}", secret_env = "IAAS_E2E_LDAP_PASSWORD", base_dn = "{COMPUTERS_DN}", object_class = "device", timeout_secs = 5 }}"#,
        slapd.url, slapd.admin_dn
    );
    let plan = format!(r#"[{{ kind = "power_off" }}, {dns}, {dir}, {}, {{ kind = "delete_vm" }}]"#, webhook("cmdb", &hook, "stop"));
    let (serve, reader) = start(
        &vcsim,
        &format!("linux = {plan}\nwindows = {plan}"),
        &[("IAAS_E2E_TSIG", &bind.key_secret_b64), ("IAAS_E2E_LDAP_PASSWORD", &slapd.admin_password)],
    )
    .await;
    assert_eq!(bind.query("app-web-01.example.test.", "A").await, ["10.20.0.11"]);

    let (d, _) = decommission(&serve, "app-web-01 win-app-01", "Decommissioned 2 of 2 VMs.").await;
    assert_eq!(d.request.state, "done", "{:#?}", d.steps);
    assert!(d.steps.iter().all(|s| s.state == "done"), "{:#?}", d.steps);
    assert!(gone(&reader, "app-web-01").await && gone(&reader, "win-app-01").await);

    // DNS: app-web-01's A and PTR are gone, its neighbour's are untouched.
    assert!(bind.query("app-web-01.example.test.", "A").await.is_empty());
    assert!(bind.query("11.0.20.10.in-addr.arpa.", "PTR").await.is_empty());
    assert_eq!(bind.query("app-db-01.example.test.", "A").await, ["10.20.0.12"]);
    assert_eq!(bind.query("12.0.20.10.in-addr.arpa.", "PTR").await, ["app-db-01.example.test."]);
    // win-app-01 never had records: already done, with the step's own sentence.
    assert!(!step(&d, "win-app-01", "dns").message.is_empty());

    // Directory: both computer objects are gone, the neighbour stays.
    assert_eq!(computers(&slapd), ["app-db-01"]);

    // Webhook: one call per VM, with the bearer token and the VM's facts.
    let calls = calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 2, "{calls:#?}");
    let web = calls.iter().find(|c| c.0 == "/app-web-01").expect("app-web-01 was reported");
    assert_eq!(web.1.as_deref(), Some(format!("Bearer {CMDB_TOKEN}").as_str()));
    let body: serde_json::Value = serde_json::from_str(&web.2).unwrap();
    assert_eq!(body, serde_json::json!({"vm": "app-web-01", "ip": "10.20.0.11", "ticket": "CHG-9"}));
    let win = calls.iter().find(|c| c.0 == "/win-app-01").expect("win-app-01 was reported");
    assert_eq!(serde_json::from_str::<serde_json::Value>(&win.2).unwrap()["vm"], "win-app-01");
}

/// A Linux VM whose webhook answers 500 (no retries) between power_off and delete_vm.
async fn failing_webhook(on_failure: &str, end: &str) -> (DecommissionDetail, Vec<String>, bool, usize) {
    let vcsim = Vcsim::start().await.unwrap();
    let (hook, calls) = receiver().await;
    let plan = format!(
        r#"linux = [{{ kind = "power_off" }}, {}, {{ kind = "delete_vm" }}]"#,
        webhook("cmdb", &format!("{hook}/fail"), on_failure)
    );
    let (serve, reader) = start(&vcsim, &plan, &[]).await;
    let (d, seen) = decommission(&serve, "app-web-01", end).await;
    let n = calls.lock().unwrap().len();
    (d, seen, gone(&reader, "app-web-01").await, n)
}

#[tokio::test]
async fn a_failing_webhook_under_stop_keeps_the_vm() {
    let (d, seen, gone, calls) = failing_webhook("stop", "Decommission failed for 1 of 1 VMs").await;
    assert_eq!(calls, 1);
    assert_eq!(d.request.state, "failed", "{seen:#?}");
    assert_eq!(step(&d, "app-web-01", "power_off").state, "done");
    let hook = step(&d, "app-web-01", "cmdb");
    assert_eq!(hook.state, "failed");
    assert!(hook.message.contains("500"), "{}", hook.message);
    assert!(!hook.message.contains(CMDB_TOKEN));
    assert_eq!(step(&d, "app-web-01", "delete_vm").state, "pending", "stop: later steps do not run");
    assert!(!gone, "the VM is still in vCenter");
}

#[tokio::test]
async fn a_failing_webhook_under_warn_lets_the_plan_go_on() {
    let (d, seen, gone, calls) = failing_webhook("warn", "but 1 step(s) failed with a warning").await;
    assert_eq!(calls, 1);
    assert_eq!(d.request.state, "done", "{seen:#?}");
    assert_eq!(step(&d, "app-web-01", "cmdb").state, "warning");
    assert_eq!(step(&d, "app-web-01", "delete_vm").state, "done");
    assert!(gone);
}
