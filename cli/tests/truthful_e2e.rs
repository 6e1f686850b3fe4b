//! Outcomes told truthfully when vCenter is slower than the bot waits (vcsim with slow methods):
//! "nothing was changed" only when nothing was sent; a change that may have happened says so;
//! a VM made after the bot stopped waiting still gets its owner, lease, record and quota; a task
//! that outlives the wait (vcsim holding it as running) is followed to its end.

mod common;

use std::time::Duration;

use common::start_on;
use iaas_tests::vcsim::{Vcsim, VcsimOptions};
use iaas_vsphere::soap::SoapClient;
use iaas_vsphere::{PowerState, Vcenter, ATTR_OWNER};

const POLICY: &str = "[vcenter]\ntimeout_secs = 1\n\n[create]\ntask_wait_secs = 30\n";

async fn slow(method: &str) -> Vcsim {
    Vcsim::start_with(VcsimOptions { delays: vec![(method.into(), 3000)], ..Default::default() }).await.unwrap()
}

async fn power(reader: &SoapClient, name: &str) -> PowerState {
    reader.vm_details(&reader.find_vm(name).await.unwrap()).await.unwrap().summary.power_state
}

#[tokio::test]
async fn a_power_off_vcenter_answers_too_late_is_not_told_as_unchanged() {
    let vcsim = slow("PowerOffVM_Task").await;
    let (serve, reader) = start_on(&vcsim, POLICY, &[]).await;
    let answer = serve.run("U1", "power off app-web-01").await.readable();
    assert!(!answer.contains("nothing was changed"), "told unchanged: {answer}");
    assert!(answer.contains("not known whether") && answer.contains("/iaas vm info"), "{answer}");
    // It was changed: vCenter finished the power-off after the bot stopped waiting.
    for _ in 0..50 {
        if power(&reader, "app-web-01").await == PowerState::PoweredOff {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("the slow power-off never happened, so the test proves nothing");
}

#[tokio::test]
async fn a_vm_made_after_the_bot_stopped_waiting_is_adopted() {
    let vcsim = slow("CreateVM_Task").await;
    let (serve, reader) = start_on(&vcsim, POLICY, &[]).await;
    let answer = serve.run("U1", "create web-late").await.readable();
    assert!(answer.contains("vCenter answered late, but the VM was made") && answer.contains("*web-late* is ready"), "{answer}");
    let made = reader.vm_details(&reader.find_vm("web-late").await.unwrap()).await.unwrap();
    assert_eq!(made.attributes.get(ATTR_OWNER).map(String::as_str), Some("U1"), "the late VM has its owner");
    let lease = serve.run("U1", "expire show web-late").await.readable();
    assert!(lease.contains("web-late") && lease.contains("expires"), "{lease}");
    let quota = serve.run("U1", "quota").await.readable();
    assert!(quota.contains("1 VM") || quota.contains("VMs: 1"), "the late VM counts against the quota: {quota}");
}

/// A task that outlives the bot's wait: the user is told it is still running, the VM stays
/// locked meanwhile, and the task's real end is posted when vCenter reports it.
#[tokio::test]
async fn a_task_outliving_the_wait_is_followed_to_its_end() {
    let held = VcsimOptions { task_holds: vec![("PowerOffVM_Task".into(), 4000)], ..Default::default() };
    let vcsim = Vcsim::start_with(held).await.unwrap();
    let (serve, _reader) = start_on(&vcsim, POLICY, &[]).await;
    let first = serve.run("U1", "power off app-web-01").await.readable();
    assert!(first.contains("still working on it") && !first.contains("nothing was changed"), "{first}");
    // The kit still holds the VM while it follows the task.
    let busy = serve.run("U1", "power on app-web-01").await.readable();
    assert!(busy.contains("has a change in flight"), "{busy}");
    let end = serve.answer().await.readable();
    assert!(end.contains("finished in vCenter"), "{end}");
}
