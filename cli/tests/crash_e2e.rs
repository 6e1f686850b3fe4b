//! Nothing accepted is lost when `iaas serve` dies: a command cut short by `kill -9` is told to
//! its user after the restart (it may or may not have happened) and its VM lock released; a
//! hand-over accepted but never started runs after the restart. Against vcsim, with claims on
//! a short lease so the takeover comes within seconds.

mod common;

use iaas_store::InvocationId;
use std::time::Duration;

use common::decommission::store;
use common::Serve;
use iaas_invocation::{Command, Invocation, PowerAction, SlackChannel, SlackUser};
use iaas_store::ClaimState;
use iaas_tests::vcsim::{Vcsim, VcsimOptions};
use iaas_vsphere::soap::SoapClient;
use iaas_vsphere::{PowerState, Vcenter};

const LEASE: (&str, &str) = ("IAAS_CLAIM_LEASE_SECS", "2");

async fn power_state(vcsim: &Vcsim, name: &str) -> PowerState {
    let reader = SoapClient::new(vcsim.config()).unwrap();
    reader.vm_details(&reader.find_vm(name).await.unwrap()).await.unwrap().summary.power_state
}

#[tokio::test]
async fn a_command_cut_short_by_kill_9_is_told_after_the_restart_and_its_vm_unlocked() {
    let vcsim = Vcsim::start_with(VcsimOptions { delays: vec![("PowerOffVM_Task".into(), 4000)], ..Default::default() }).await.unwrap();
    let mut serve = Serve::start_with(Some(&vcsim.url), &[LEASE]).await;
    let (status, ack, id) = serve.slash("U1", "power off app-web-01").await;
    assert_eq!(status, 200);
    let id = InvocationId::from(id.unwrap_or_else(|| panic!("not dispatched: {}", ack.readable())));
    // Kill it while the function holds the claim (and the VM lock) and vCenter works.
    let db = store(&serve).await;
    for _ in 0..100 {
        if matches!(db.claim_state(&id).await.unwrap(), ClaimState::Running { .. }) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(matches!(db.claim_state(&id).await.unwrap(), ClaimState::Running { .. }), "the power-off never started");
    serve.restart().await;

    let told = serve.answer().await.readable();
    assert!(told.contains("may or may not have taken effect") && told.contains("`/iaas vm info app-web-01`"), "{told}");
    let record = db.invocation(&id).await.unwrap().unwrap();
    assert!(record.outcome.unwrap().text.contains("may or may not"), "the outcome is recorded");
    // The dead run's lock is gone: the next change to the VM is not refused as "in flight".
    let next = serve.run("U1", "power on app-web-01").await.readable();
    assert!(!next.contains("change in flight"), "{next}");
}

#[tokio::test]
async fn a_hand_over_accepted_but_never_started_runs_after_a_restart() {
    let vcsim = Vcsim::start().await.unwrap();
    let serve = Serve::start_with(Some(&vcsim.url), &[LEASE]).await;
    assert_eq!(power_state(&vcsim, "app-web-02").await, PowerState::PoweredOn);
    // What the in-process dispatch records before its ack, left behind by a process that died
    // before the function ran it.
    let inv = Invocation {
        id: "0193a7c2-0000-7000-8000-00000000c4a5".into(),
        command: Command::Power { action: PowerAction::Off, vm: "app-web-02".into() },
        user: SlackUser { id: "U1".into(), name: "u1".into(), team_id: "T0E2E".into() },
        channel: SlackChannel { id: "C0E2E".into(), name: "e2e".into() },
        response_url: Some(serve.response_url()),
        issued_at: chrono::Utc::now().timestamp(),
        caller: Default::default(),
        traceparent: None,
    };
    let db = store(&serve).await;
    db.record_dispatch(&inv.id, "iaas-power", &serde_json::to_string(&inv).unwrap()).await.unwrap();

    let answer = serve.answer().await.readable();
    assert!(answer.contains("app-web-02") && answer.contains("powered off"), "{answer}");
    assert_eq!(power_state(&vcsim, "app-web-02").await, PowerState::PoweredOff);
    assert_eq!(db.claim_state(&inv.id).await.unwrap(), ClaimState::Done);
    assert!(db.pending_dispatches(i64::MAX).await.unwrap().is_empty(), "the hand-over is forgotten once run");
}
