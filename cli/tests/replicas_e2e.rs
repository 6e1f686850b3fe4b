//! Several replicas on one PostgreSQL database: lease sweeps run at the same time by two
//! processes remind, power off and delete each VM once (claims per lease); two `iaas serve`
//! resuming the same decommission requests run each step once (claims per request), against
//! vcsim and a webhook receiver that counts its calls.

mod common;

use std::sync::{Arc, Mutex};

use chrono::{Duration, Utc};
use common::start_on;
use iaas_tests::postgres::Database;
use iaas_tests::vcsim::Vcsim;
use iaas_vsphere::{VcError, Vcenter};

const POLICY: &str = r#"
[lease]
default_days = 10
max_days = 15
reminder_days = [7]
min_notice_hours = 24
grace_days = 3
"#;

#[tokio::test]
async fn two_sweeps_at_once_act_once_per_vm() {
    let db = Database::create("replicas").await;
    let db_url = db.url.clone();

    let vcsim = Vcsim::start().await.unwrap();
    let (serve, reader) = start_on(&vcsim, POLICY, &[("DATABASE_URL", &db_url)]).await;
    let created = Utc::now();
    let vms = ["rep-01", "rep-02", "rep-03"];
    for vm in vms {
        assert!(serve.run("U1", &format!("create {vm}")).await.readable().contains("expires"));
        serve.run("U1", &format!("power on {vm}")).await;
    }
    let before = vcsim.stats().await.unwrap();
    let count = |stats: &std::collections::HashMap<String, u64>, m: &str| stats.get(m).copied().unwrap_or(0);

    // Two replicas sweep at the same moment, three times over a lease's life.
    for offset in [Duration::days(4), Duration::days(10) + Duration::hours(1), Duration::days(13) + Duration::hours(2)] {
        let at = (created + offset).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let args = ["expire", "sweep", "--as-of", at.as_str(), "--yes"];
        let (a, b) = tokio::join!(serve.cli(&args), serve.cli(&args));
        assert!(!a.is_empty() && !b.is_empty());
    }

    let reminders: Vec<_> =
        serve.posts_to("U1").into_iter().filter(|p| p["text"].as_str().is_some_and(|t| t.contains("expires on"))).collect();
    assert_eq!(reminders.len(), vms.len(), "one reminder per VM: {reminders:#?}");
    let after = vcsim.stats().await.unwrap();
    assert_eq!(count(&after, "PowerOffVM_Task") - count(&before, "PowerOffVM_Task"), vms.len() as u64, "one power-off per VM");
    assert_eq!(count(&after, "Destroy_Task") - count(&before, "Destroy_Task"), vms.len() as u64, "one delete per VM");
    for vm in vms {
        assert!(matches!(reader.find_vm(vm).await, Err(VcError::NotFound { .. })), "{vm} was not deleted");
    }
    let quota = serve.run("U1", "quota").await.readable();
    assert!(!quota.contains("3 VM"), "deleted VMs still count against the quota: {quota}");

    drop((serve, reader, vcsim));
    db.drop().await;
}

/// The paths a CMDB stand-in was called on, one entry per call.
async fn cmdb() -> (String, Arc<Mutex<Vec<String>>>) {
    let calls: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = calls.clone();
    let app = axum::Router::new().fallback(axum::routing::any(move |uri: axum::http::Uri| {
        let seen = seen.clone();
        async move {
            seen.lock().unwrap().push(uri.path().to_owned());
            "ok"
        }
    }));
    let url = iaas_tests::serve(app).await;
    (url, calls)
}

/// Expired leases handed to decommission, with two `iaas serve` on one database resuming the
/// requests every second and two scheduled triggers on top: each VM's webhook is called once
/// and each VM deleted once.
#[tokio::test]
async fn two_replicas_resume_each_decommission_step_once() {
    let db = Database::create("resume").await;
    let (hook, calls) = cmdb().await;
    let plan = format!(
        r#"[{{ kind = "power_off" }}, {{ kind = "webhook", name = "cmdb", url = "{hook}/{{{{name}}}}", retries = 0, timeout_secs = 5, body = '{{"vm": "{{{{name}}}}"}}' }}, {{ kind = "delete_vm" }}]"#
    );
    let policy = format!(
        "{POLICY}action = \"decommission\"\n\n[decommission]\nresume_interval_secs = 1\nshutdown_timeout_secs = 5\n\n[decommission.plans]\nlinux = {plan}\nwindows = {plan}\nother = {plan}\n"
    );
    let vcsim = Vcsim::start().await.unwrap();
    let env = [("DATABASE_URL", db.url.as_str())];
    let (one, reader) = start_on(&vcsim, &policy, &env).await;
    let created = Utc::now();
    let vms = ["dec-01", "dec-02", "dec-03"];
    for vm in vms {
        assert!(one.run("U1", &format!("create {vm}")).await.readable().contains("expires"));
    }
    for offset in [Duration::days(4), Duration::days(10) + Duration::hours(1)] {
        let at = (created + offset).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        one.cli(&["expire", "sweep", "--as-of", at.as_str(), "--yes"]).await;
    }
    let (two, _) = start_on(&vcsim, &policy, &env).await;
    let before = vcsim.stats().await.unwrap();

    // The hand-over: three requests recorded, which both replicas' resume loops then take up.
    let at = (created + Duration::days(13) + Duration::hours(2)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let report = one.cli(&["expire", "sweep", "--as-of", at.as_str(), "--yes"]).await;
    assert!(report.contains("3 decommissioned"), "{report}");
    tokio::join!(one.trigger("iaas-decommission-resume"), two.trigger("iaas-decommission-resume"));

    let store = iaas_store::Store::connect(&db.url).await.unwrap();
    let mut requests = Vec::new();
    for _ in 0..150 {
        requests = store.decommissions(&Default::default(), 10, 0).await.unwrap();
        if requests.len() == vms.len() && requests.iter().all(|r| r.finished_at_ms.is_some()) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(requests.len(), vms.len());
    assert!(requests.iter().all(|r| r.state == iaas_store::DecommissionState::Done), "{requests:#?}");

    let mut called = calls.lock().unwrap().clone();
    called.sort();
    assert_eq!(called, vms.iter().map(|vm| format!("/{vm}")).collect::<Vec<_>>(), "one webhook call per VM");
    let after = vcsim.stats().await.unwrap();
    let count = |stats: &std::collections::HashMap<String, u64>, m: &str| stats.get(m).copied().unwrap_or(0);
    assert_eq!(count(&after, "Destroy_Task") - count(&before, "Destroy_Task"), vms.len() as u64, "one delete per VM");
    for vm in vms {
        assert!(matches!(reader.find_vm(vm).await, Err(VcError::NotFound { .. })), "{vm} was not deleted");
    }

    drop((one, two, reader, vcsim));
    db.drop().await;
}
