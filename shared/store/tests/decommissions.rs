//! Decommission requests: recording, listing, step states, cancel, and claims so one worker at a
//! time runs a request (and a crashed worker's request is resumed), on both backends.

#[macro_use]
mod common;

use iaas_store::UserId;
use iaas_store::{Moref, RequestId, VmName, VmRef};
use std::sync::Arc;

use common::Db;
use iaas_store::{
    CancelOutcome, DecommissionFilter, DecommissionState, DecommissionStepState, DecommissionVmState, LeaseState, NewDecommission,
    NewDecommissionStep, NewDecommissionVm,
};

test_both_backends!(
    request_round_trips_with_steps,
    list_filters_and_pages,
    cancel_before_and_during_run,
    claims_are_exclusive_and_lapse,
    concurrent_sweeps_claim_once,
    an_expired_lease_is_handed_over_once
);

fn step(kind: &str, on_failure: &str) -> NewDecommissionStep {
    NewDecommissionStep {
        kind: kind.parse().unwrap(),
        name: kind.replace('_', "-"),
        on_failure: on_failure.parse().unwrap(),
        config_json: "{}".into(),
    }
}

fn request(id: &str, requester: &str, vms: &[&str]) -> NewDecommission {
    NewDecommission {
        id: id.into(),
        requester: requester.into(),
        ticket: "CHG-1".into(),
        reason: "retired".into(),
        channel: "C1".into(),
        response_url: "https://hooks.slack.com/x".into(),
        vms: vms
            .iter()
            .enumerate()
            .map(|(i, name)| NewDecommissionVm {
                vm_moref: format!("vm-{i}").into(),
                vm_name: VmName::from(name.to_string()),
                os_family: "linux".into(),
                facts_json: "{\"ip\":\"10.0.0.1\"}".into(),
                steps: vec![step("guest_shutdown", "stop"), step("delete_vm", "stop"), step("slack_notify", "warn")],
            })
            .collect(),
    }
}

async fn request_round_trips_with_steps(db: Db) {
    let s = &db.store;
    s.create_decommission(&request("d1", "U1", &["web-1", "web-2"])).await.unwrap();
    let d = s.decommission(&RequestId::from("d1")).await.unwrap().unwrap();
    assert_eq!(d.request.state, "pending_confirmation");
    assert_eq!(d.request.vm_names, ["web-1", "web-2"]);
    assert_eq!(d.vms.len(), 2);
    assert_eq!(d.steps.len(), 6);
    assert_eq!(d.steps_of(1).map(|s| s.kind.as_str()).collect::<Vec<_>>(), ["guest_shutdown", "delete_vm", "slack_notify"]);
    assert!(s.decommission(&RequestId::from("nope")).await.unwrap().is_none());

    assert!(s.start_decommission(&RequestId::from("d1")).await.unwrap());
    assert!(!s.start_decommission(&RequestId::from("d1")).await.unwrap(), "a second confirmation does not start it again");
    s.start_decommission_step(&RequestId::from("d1"), 0, 0, 100).await.unwrap();
    s.finish_decommission_step(&RequestId::from("d1"), 0, 0, DecommissionStepState::Done, "Shut down.", 200).await.unwrap();
    s.start_decommission_step(&RequestId::from("d1"), 0, 1, 300).await.unwrap();
    s.set_decommission_vm_state(&RequestId::from("d1"), 0, DecommissionVmState::Running).await.unwrap();
    let d = s.decommission(&RequestId::from("d1")).await.unwrap().unwrap();
    let first = &d.steps[0];
    assert_eq!(
        (first.state.as_str(), first.message.as_str(), first.started_at_ms, first.finished_at_ms, first.attempts),
        ("done", "Shut down.", Some(100), Some(200), 1)
    );
    assert_eq!((d.steps[1].state.as_str(), d.steps[1].finished_at_ms), ("running", None));
    assert_eq!(d.vms[0].state, "running");
    s.finish_decommission(&RequestId::from("d1"), DecommissionState::Done).await.unwrap();
    let d = s.decommission(&RequestId::from("d1")).await.unwrap().unwrap();
    assert_eq!(d.request.state, "done");
    assert!(d.request.finished_at_ms.is_some());
}

async fn list_filters_and_pages(db: Db) {
    let s = &db.store;
    s.create_decommission(&request("a", "U1", &["web-1"])).await.unwrap();
    s.create_decommission(&request("b", "U2", &["db-1", "Web-2"])).await.unwrap();
    s.create_decommission(&request("c", "U1", &["web-2"])).await.unwrap();
    s.start_decommission(&RequestId::from("c")).await.unwrap();
    let all = DecommissionFilter::default();
    assert_eq!(s.decommissions(&all, 10, 0).await.unwrap().len(), 3);
    let mine = DecommissionFilter { requester: Some("U1".into()), ..Default::default() };
    let ids: Vec<String> = s.decommissions(&mine, 10, 0).await.unwrap().into_iter().map(|d| d.id.into_string()).collect();
    assert_eq!(ids.len(), 2);
    assert!(ids.contains(&"a".to_string()) && ids.contains(&"c".to_string()));
    let running = DecommissionFilter { state: Some(DecommissionState::Running), ..Default::default() };
    assert_eq!(s.decommissions(&running, 10, 0).await.unwrap().into_iter().map(|d| d.id).collect::<Vec<_>>(), ["c"]);
    let by_vm = DecommissionFilter { vm_name: Some("web-2".into()), ..Default::default() };
    let found = s.decommissions(&by_vm, 10, 0).await.unwrap();
    assert_eq!(found.len(), 2, "names match case-insensitively");
    assert!(found.iter().any(|d| d.vm_names == ["db-1", "Web-2"]));
    let either = DecommissionFilter { requesters: vec!["U1".into(), "ann@example.com".into()], ..Default::default() };
    assert_eq!(s.decommissions(&either, 10, 0).await.unwrap().len(), 2, "a person's Slack id or e-mail");
    let by_ticket = DecommissionFilter { ticket: Some("chg".into()), ..Default::default() };
    assert_eq!(s.decommissions(&by_ticket, 10, 0).await.unwrap().len(), 3, "part of the ticket, any case");
    let wildcard = DecommissionFilter { ticket: Some("%".into()), ..Default::default() };
    assert!(s.decommissions(&wildcard, 10, 0).await.unwrap().is_empty(), "LIKE's wildcards are matched literally");
    let future = DecommissionFilter { since_ms: Some(i64::MAX / 2), ..Default::default() };
    assert!(s.decommissions(&future, 10, 0).await.unwrap().is_empty());
    let page1 = s.decommissions(&all, 2, 0).await.unwrap();
    let page2 = s.decommissions(&all, 2, 2).await.unwrap();
    assert_eq!((page1.len(), page2.len()), (2, 1));
    assert!(page1.iter().all(|d| d.id != page2[0].id));
}

async fn cancel_before_and_during_run(db: Db) {
    let s = &db.store;
    s.create_decommission(&request("p", "U1", &["x"])).await.unwrap();
    assert_eq!(s.cancel_decommission(&RequestId::from("p")).await.unwrap(), CancelOutcome::Cancelled);
    assert!(!s.start_decommission(&RequestId::from("p")).await.unwrap(), "a cancelled request cannot be confirmed");
    assert_eq!(s.cancel_decommission(&RequestId::from("p")).await.unwrap(), CancelOutcome::Finished(DecommissionState::Cancelled));

    s.create_decommission(&request("r", "U1", &["y"])).await.unwrap();
    s.start_decommission(&RequestId::from("r")).await.unwrap();
    assert!(!s.decommission_cancel_requested(&RequestId::from("r")).await.unwrap());
    assert_eq!(s.cancel_decommission(&RequestId::from("r")).await.unwrap(), CancelOutcome::Requested);
    assert!(s.decommission_cancel_requested(&RequestId::from("r")).await.unwrap());
    assert_eq!(s.decommission(&RequestId::from("r")).await.unwrap().unwrap().request.state, "running", "the runner ends it");
    assert_eq!(s.cancel_decommission(&RequestId::from("zzz")).await.unwrap(), CancelOutcome::Unknown);
}

async fn claims_are_exclusive_and_lapse(db: Db) {
    let s = &db.store;
    s.create_decommission(&request("c1", "U1", &["x"])).await.unwrap();
    assert!(!s.claim_decommission(&RequestId::from("c1"), "w1", 1_000, 2_000).await.unwrap(), "only running requests are claimed");
    s.start_decommission(&RequestId::from("c1")).await.unwrap();
    assert!(s.claim_decommission(&RequestId::from("c1"), "w1", 1_000, 2_000).await.unwrap());
    assert!(!s.claim_decommission(&RequestId::from("c1"), "w2", 1_500, 2_500).await.unwrap(), "a live claim is exclusive");
    assert!(s.claim_decommission(&RequestId::from("c1"), "w1", 1_500, 3_000).await.unwrap(), "the holder renews");
    assert_eq!(s.claim_unfinished_decommission("w2", 2_000, 4_000).await.unwrap(), None);
    // w1 crashed: once its lease lapses a sweep resumes the request.
    assert_eq!(s.claim_unfinished_decommission("w2", 3_001, 5_000).await.unwrap().as_deref(), Some("c1"));
    assert!(!s.claim_decommission(&RequestId::from("c1"), "w1", 3_002, 6_000).await.unwrap(), "the old holder lost it");
    s.release_decommission(&RequestId::from("c1"), "w2").await.unwrap();
    s.finish_decommission(&RequestId::from("c1"), DecommissionState::Done).await.unwrap();
    assert_eq!(s.claim_unfinished_decommission("w3", i64::MAX - 1, i64::MAX).await.unwrap(), None, "finished requests are not resumed");
}

async fn concurrent_sweeps_claim_once(db: Db) {
    let store = Arc::new(db.store.clone());
    for i in 0..3 {
        let id = format!("r{i}");
        store.create_decommission(&request(&id, "U1", &["x"])).await.unwrap();
        store.start_decommission(&id.as_str().into()).await.unwrap();
    }
    let sweeps = (0..12).map(|w| {
        let s = store.clone();
        tokio::spawn(async move { s.claim_unfinished_decommission(&format!("w{w}"), 10, 1_000_000).await.unwrap() })
    });
    let mut won = Vec::new();
    for sweep in sweeps {
        if let Some(id) = sweep.await.unwrap() {
            won.push(id);
        }
    }
    won.sort();
    assert_eq!(won, ["r0", "r1", "r2"], "each request claimed exactly once");
}

async fn an_expired_lease_is_handed_over_once(db: Db) {
    let s = &db.store;
    s.open_lease(&VmRef::new("vm-0", "web-1"), &UserId::from("U1"), 0, 1000, LeaseState::Active).await.unwrap();
    s.set_lease_state(&Moref::from("vm-0"), LeaseState::PoweredOff, "expired", 2000).await.unwrap();
    assert!(s.hand_lease_to_decommission(&request("x1", "iaas-expire", &["web-1"]), &Moref::from("vm-0"), 3000).await.unwrap());
    let d = s.decommission(&RequestId::from("x1")).await.unwrap().unwrap();
    assert_eq!((d.request.state.as_str(), d.steps.len()), ("running", 3), "no confirmation: the resume sweep runs it");
    let lease = s.lease(&Moref::from("vm-0")).await.unwrap().unwrap();
    assert_eq!((lease.state, lease.state_reason.as_str()), (LeaseState::Decommissioning, "x1"));
    // A second sweep (or a racing one) makes no second request, and records nothing.
    assert!(!s.hand_lease_to_decommission(&request("x2", "iaas-expire", &["web-1"]), &Moref::from("vm-0"), 4000).await.unwrap());
    assert!(s.decommission(&RequestId::from("x2")).await.unwrap().is_none());
    // Nor one whose lease was removed meanwhile.
    s.open_lease(&VmRef::new("vm-9", "web-9"), &UserId::from("U1"), 0, 1000, LeaseState::Active).await.unwrap();
    s.set_lease_state(&Moref::from("vm-9"), LeaseState::Excluded, "removed", 2000).await.unwrap();
    assert!(!s.hand_lease_to_decommission(&request("x3", "iaas-expire", &["web-9"]), &Moref::from("vm-9"), 3000).await.unwrap());
    assert!(s.decommission(&RequestId::from("x3")).await.unwrap().is_none());
}
