//! Decommission end to end: `/iaas decommission` through `iaas serve` → SOAP → vcsim, with the
//! confirmation press, live progress, cancel, failure policies, and a worker killed mid-run
//! whose request another worker resumes.

mod common;

use iaas_store::InvocationId;
use std::time::Duration;

use common::decommission::{gone, record, request_id, step, store, until};
use common::{button_token, start_on, Serve};
use iaas_store::DecommissionDetail;
use iaas_tests::vcsim::{Vcsim, VcsimOptions};
use iaas_vsphere::soap::SoapClient;

const BASE: &str = r#"
[protection]
folders = ["Infrastructure"]

[decommission]
shutdown_timeout_secs = 5
cancel_poll_ms = 100
lease_secs = 2
resume_interval_secs = 1
"#;

/// `keys` go into `[decommission]`, `plans` into `[decommission.plans]`.
async fn start(vcsim: &Vcsim, keys: &str, plans: &str) -> (Serve, SoapClient) {
    start_on(vcsim, &format!("{BASE}{keys}\n[decommission.plans]\n{plans}\n"), &[]).await
}

/// The progress message posted to the channel the request was confirmed in, and the texts of
/// its updates so far.
fn progress(serve: &Serve) -> (serde_json::Value, Vec<String>) {
    let posted = serve.posts_to("C0E2E").into_iter().next().expect("a progress message in the channel");
    let updates =
        serve.updates.lock().unwrap().iter().filter(|u| u["ts"] == posted["ts"]).map(|u| u["text"].as_str().unwrap().to_string()).collect();
    (posted, updates)
}

/// Waits until an update of the progress message contains `needle`; returns the updates.
async fn progress_until(serve: &Serve, needle: &str) -> Vec<String> {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (_, updates) = progress(serve);
        if updates.iter().any(|u| u.contains(needle)) {
            return updates;
        }
        assert!(std::time::Instant::now() < deadline, "the progress message never said {needle:?}: {updates:#?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn linux_and_windows_vms_are_retired_in_one_request() {
    let vcsim = Vcsim::start().await.unwrap();
    let (serve, reader) = start(&vcsim, "", "").await;
    let prompt = serve.run("U1", "decommission app-web-01 win-app-01 --ticket CHG-7 --reason \"end of project\"").await;
    let text = prompt.readable();
    assert!(text.contains("Decommission 2 VMs?") && text.contains("CHG-7"), "{text}");
    assert!(text.contains("*app-web-01* — Ubuntu Linux (64-bit) (linux) · IP 10.20.0.11 · powered on"), "{text}");
    assert!(text.contains("*win-app-01* — Microsoft Windows Server 2022 (64-bit) (windows)"), "{text}");
    assert!(text.contains("Steps: guest_shutdown → delete_vm → slack_notify (warn)"), "{text}");
    let id = request_id(&text);
    assert!(!gone(&reader, "app-web-01").await, "nothing happens before the press");

    assert_eq!(serve.press("U2", "decommission.confirm", &button_token(&prompt)).await, 200);
    assert!(serve.answer().await.readable().contains("Only <@U1>"));
    assert_eq!(serve.press("U1", "decommission.confirm", &button_token(&prompt)).await, 200);
    let seen = until(&serve, &["Decommissioned 2 of 2 VMs."]).await;
    assert!(seen.len() <= 5, "at most five posts to one response_url: {seen:#?}");
    assert!(gone(&reader, "app-web-01").await && gone(&reader, "win-app-01").await);
    // One progress message in the channel, with a Cancel button while it runs, edited in place
    // (chat.update) until it shows the summary.
    let (posted, _) = progress(&serve);
    assert!(posted["text"].as_str().unwrap().contains(&format!("Decommission request `{id}`")), "{posted}");
    assert_eq!(posted["blocks"][1]["elements"][0]["action_id"], "decommission.stop");
    assert_eq!(posted["blocks"][1]["elements"][0]["value"], id.as_str());
    let updates = progress_until(&serve, "Decommissioned 2 of 2 VMs.").await;
    assert_eq!(serve.posts_to("C0E2E").len(), 1, "one progress message per request");
    assert!(updates.last().unwrap().contains("Decommissioned 2 of 2 VMs."), "the summary is the last word: {updates:#?}");

    let d = record(&store(&serve).await, &id).await;
    assert_eq!(d.request.state, "done");
    assert!(d.steps.iter().all(|s| s.state == "done" && s.attempts == 1 && s.finished_at_ms.is_some()), "{:#?}", d.steps);
    assert!(step(&d, "win-app-01", "guest_shutdown").message.contains("already powered off"));
    let dms = serve.posts_to("U1");
    assert_eq!(dms.len(), 2, "{dms:#?}");
    assert!(dms[0]["text"].as_str().unwrap().contains("CHG-7"));

    // list and status through Slack.
    let list = serve.run("U1", "decommission list --mine --state done").await.readable();
    assert!(list.contains(&id) && list.contains("app-web-01, win-app-01"), "{list}");
    assert!(serve.run("U2", "decommission list --mine").await.readable().contains("No decommission requests match"));
    let status = serve.run("U2", &format!("decommission status {id}")).await.readable();
    assert!(
        status.contains("*done*") && status.contains("delete_vm `delete_vm` done") && status.contains("was deleted with its disks"),
        "{status}"
    );
}

/// Every step except the ones a press ran may be pending: power_off is slowed so the cancel
/// lands while vCenter works on the first VM.
const SLOW_PLAN: &str = r#"linux = [{ kind = "power_off" }, { kind = "delete_vm" }, { kind = "slack_notify" }]"#;

fn slow_vcsim() -> VcsimOptions {
    VcsimOptions { delays: vec![("PowerOffVM_Task".into(), 1500)], ..Default::default() }
}

#[tokio::test]
async fn cancel_stops_mid_run_and_says_what_ran() {
    let vcsim = Vcsim::start_with(slow_vcsim()).await.unwrap();
    let (serve, reader) = start(&vcsim, "workers = 1", SLOW_PLAN).await;
    let prompt = serve.run("U1", "decommission app-web-01 app-web-02").await;
    let id = request_id(&prompt.readable());
    assert_eq!(serve.press("U1", "decommission.confirm", &button_token(&prompt)).await, 200);
    // Cancel while the first VM's (slowed) power-off is running, however busy the machine is.
    let store = store(&serve).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while step(&record(&store, &id).await, "app-web-01", "power_off").state != "running" {
        assert!(std::time::Instant::now() < deadline, "power_off never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The Cancel button on the progress message. Only the requester (or an admin) may cancel;
    // here everyone is an admin (no roles), so the refusal is not exercised — the cancel is.
    let (posted, _) = progress(&serve);
    let stop = &posted["blocks"][1]["elements"][0];
    assert_eq!(serve.press("U1", stop["action_id"].as_str().unwrap(), stop["value"].as_str().unwrap()).await, 200);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while record(&store, &id).await.request.state != "cancelled" {
        assert!(std::time::Instant::now() < deadline, "the request never ended cancelled");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Slack tells the truth: the cancel is acknowledged, the confirmation turns into the
    // summary, and the progress message ends with it too.
    let seen = until(&serve, &["Cancelling decommission request", "Decommission cancelled: 0 of 2 VMs were finished"]).await;
    assert!(seen.iter().any(|m| m.contains("nothing is rolled back")), "{seen:#?}");
    let updates = progress_until(&serve, "Decommission cancelled").await;
    assert!(updates.last().unwrap().contains("Interrupted by a cancel"), "{updates:#?}");

    let d = record(&store, &id).await;
    assert_eq!(d.request.state, "cancelled");
    let interrupted = step(&d, "app-web-01", "power_off");
    assert_eq!(interrupted.state, "failed");
    assert!(interrupted.message.contains("Interrupted by a cancel"), "{}", interrupted.message);
    assert_eq!(step(&d, "app-web-01", "delete_vm").state, "pending");
    let second = d.vms.iter().find(|v| v.vm_name == "app-web-02").unwrap().vm_index;
    let states: Vec<&str> = d.steps_of(second).map(|s| s.state.as_str()).collect();
    assert!(states.iter().all(|s| *s == "pending"), "the second VM never started: {states:?}");
    assert_eq!(d.vms.iter().map(|v| v.state.as_str()).collect::<Vec<_>>(), ["cancelled", "cancelled"]);
    assert!(!gone(&reader, "app-web-01").await && !gone(&reader, "app-web-02").await);
    assert!(serve.posts_to("U1").is_empty());
    // Cancelling again is refused; the function's recorded outcome says why.
    let (_, _, again) = serve.slash("U1", &format!("decommission cancel {id}")).await;
    let again = InvocationId::from(again.expect("dispatched"));
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let outcome = loop {
        if let Some(outcome) = store.invocation(&again).await.unwrap().and_then(|r| r.outcome) {
            break outcome;
        }
        assert!(std::time::Instant::now() < deadline, "the second cancel never finished");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(!outcome.ok && outcome.text.contains("has already ended (cancelled)"), "{outcome:?}");
}

/// dc-01 is a Windows VM in the protected Infrastructure folder: delete_vm fails for real.
async fn protected_delete(on_failure: &str) -> (Serve, DecommissionDetail, Vec<String>, Vcsim) {
    let vcsim = Vcsim::start().await.unwrap();
    let plan = format!(
        r#"windows = [{{ kind = "power_off" }}, {{ kind = "delete_vm", on_failure = "{on_failure}" }}, {{ kind = "slack_notify" }}]"#
    );
    let (serve, _reader) = start(&vcsim, "", &plan).await;
    let prompt = serve.run("U1", "decommission dc-01").await;
    assert!(
        prompt.readable().contains("protected (it is in the Infrastructure folder): its delete step will fail"),
        "{}",
        prompt.readable()
    );
    let id = request_id(&prompt.readable());
    assert_eq!(serve.press("U1", "decommission.confirm", &button_token(&prompt)).await, 200);
    let seen = until(&serve, &["dc-01 is protected"]).await;
    let d = record(&store(&serve).await, &id).await;
    (serve, d, seen, vcsim)
}

#[tokio::test]
async fn a_failing_step_under_stop_ends_the_vm() {
    let (serve, d, seen, vcsim) = protected_delete("stop").await;
    assert!(seen.last().unwrap().contains("Decommission failed for 1 of 1 VMs"), "{seen:#?}");
    assert_eq!(d.request.state, "failed");
    assert_eq!(step(&d, "dc-01", "power_off").state, "done");
    assert_eq!(step(&d, "dc-01", "delete_vm").state, "failed");
    assert_eq!(step(&d, "dc-01", "slack_notify").state, "pending", "stop: later steps do not run");
    assert!(serve.posts_to("U1").is_empty());
    let reader = SoapClient::new(vcsim.config()).unwrap();
    assert!(!gone(&reader, "dc-01").await);
}

#[tokio::test]
async fn a_failing_step_under_warn_lets_the_plan_go_on() {
    let (serve, d, seen, _vcsim) = protected_delete("warn").await;
    assert!(seen.last().unwrap().contains("but 1 step(s) failed with a warning"), "{seen:#?}");
    assert_eq!(d.request.state, "done");
    assert_eq!(step(&d, "dc-01", "delete_vm").state, "warning");
    assert_eq!(step(&d, "dc-01", "slack_notify").state, "done");
    assert_eq!(serve.posts_to("U1").len(), 1);
}

#[tokio::test]
async fn a_killed_worker_is_resumed_without_repeating_a_step() {
    let vcsim = Vcsim::start_with(slow_vcsim()).await.unwrap();
    let (mut serve, reader) = start(&vcsim, "workers = 1", SLOW_PLAN).await;
    let prompt = serve.run("U1", "decommission app-web-01 app-web-02 app-db-01").await;
    let id = request_id(&prompt.readable());
    assert_eq!(serve.press("U1", "decommission.confirm", &button_token(&prompt)).await, 200);
    let store = store(&serve).await;
    // Kill the worker while the second VM is being powered off.
    let before = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let d = record(&store, &id).await;
            if d.steps_of(1).any(|s| s.name == "power_off" && s.state == "running") {
                return d;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the second VM starts");
    serve.restart().await;
    let after = tokio::time::timeout(Duration::from_secs(90), async {
        loop {
            let d = record(&store, &id).await;
            if d.request.state != "running" {
                return d;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await
    .expect("another worker finishes the request");
    assert_eq!(after.request.state, "done", "{:#?}", after.steps);
    for s in &after.steps {
        assert_eq!(s.state, "done", "{s:?}");
        let interrupted = s.vm_index == 1 && s.name == "power_off";
        assert_eq!(s.attempts, if interrupted { 2 } else { 1 }, "only the interrupted step ran again: {s:?}");
    }
    for s in before.steps.iter().filter(|s| s.state == "done") {
        let now = after.steps.iter().find(|a| a.vm_index == s.vm_index && a.step_index == s.step_index).unwrap();
        assert_eq!(now.finished_at_ms, s.finished_at_ms, "a finished step is not run again");
    }
    assert_eq!(serve.posts_to("U1").len(), 3, "one notice per VM, none repeated");
    for vm in ["app-web-01", "app-web-02", "app-db-01"] {
        assert!(gone(&reader, vm).await, "{vm}");
    }
    // The scheduled resume function (cron-connector / EventBridge) finds nothing left to do.
    assert_eq!(serve.trigger("iaas-decommission-resume").await.trim(), r#"{"resumed":0}"#);
    // The resumed request goes on editing the same progress message, and ends it with the summary.
    progress_until(&serve, "Decommissioned 3 of 3 VMs.").await;
    assert_eq!(serve.posts_to("C0E2E").len(), 1, "no second progress message after the restart");
}
