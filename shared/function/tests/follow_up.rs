//! A task that outlives the function's bound is still reported: the function answers "still
//! running", and a follow-up waits for vCenter, records owner and lease, and answers in Slack.
//! The demo inventory's slow tasks stand in for a long clone (vcsim finishes tasks at once).

mod common;

use std::sync::Arc;
use std::time::Duration;

use iaas_config::Policy;
use iaas_function::provision::{self, NewVm};
use iaas_invocation::{Command, Invocation, SlackChannel, SlackUser};
use iaas_store::Usage;
use iaas_vsphere::demo::DemoInventory;
use iaas_vsphere::{CreateSpec, Placement, ATTR_OWNER};

#[tokio::test]
async fn a_task_past_the_bound_is_reported_by_a_follow_up() {
    let demo = Arc::new(DemoInventory::new().with_slow_tasks(3));
    let (ctx, response_url, mut rx) = common::context(demo, Policy::parse("[create]\ntask_wait_secs = 0").unwrap()).await;
    let inv = Invocation {
        id: "inv-follow-up".into(),
        command: Command::Create { name: "slow-01".into(), size: None, os: None, days: None },
        user: SlackUser { id: "U1".into(), ..Default::default() },
        channel: SlackChannel { id: "C1".into(), ..Default::default() },
        response_url: Some(response_url),
        issued_at: 0,
        caller: Default::default(),
        traceparent: None,
    };
    let spec = CreateSpec {
        name: "slow-01".into(),
        guest_id: "ubuntu64Guest".into(),
        cpus: 1,
        memory_mb: 2048,
        disk_gb: 20,
        placement: Placement::default(),
    };
    let task = ctx.vcenter.begin_create(&spec).await.unwrap();
    let new = NewVm {
        name: "slow-01".into(),
        source: "create".into(),
        doing: "Creating slow-01".into(),
        lease_days: 30,
        reserved: Usage { vms: 1, cpus: 1, memory_mb: 2048 },
    };

    let first = provision::finish(&ctx, &inv, new, task).await;
    assert!(first.message.text.contains("still running in vCenter (50% done)"), "{}", first.message.text);
    let vm = ctx.vcenter.find_vm("slow-01").await.unwrap();
    assert!(ctx.store.lease(&vm.moref).await.unwrap().is_none(), "nothing recorded before the task finished");

    let later = tokio::time::timeout(Duration::from_secs(20), rx.recv()).await.expect("the follow-up answered").unwrap();
    assert!(later.readable().contains("*slow-01* is ready"), "{}", later.readable());
    assert!(ctx.store.lease(&vm.moref).await.unwrap().is_some());
    assert_eq!(ctx.vcenter.vm_details(&vm).await.unwrap().attributes.get(ATTR_OWNER).map(String::as_str), Some("U1"));
}
