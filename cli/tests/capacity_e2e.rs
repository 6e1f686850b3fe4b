//! Datastore headroom end to end through `iaas serve` → SOAP → vcsim (#12): creates and clones
//! refused before anything exists in vCenter, two creates in flight that fit only once,
//! `datastore = "auto"` taking the roomiest datastore, and `/iaas capacity` for admins only.
//!
//! The launcher seeds LocalDS_0 with 60 GB free of 500 and LocalDS_1 with 700 of 1000 (vcsim
//! takes a new VM's disk off its datastore's free space); the headroom is set tight against those.

mod common;

use common::{start_on, Serve};
use iaas_tests::vcsim::{Vcsim, VcsimOptions};
use iaas_vsphere::soap::SoapClient;
use iaas_vsphere::{VcError, Vcenter};

/// U0USER1 may make VMs; only U0ADMIN may see capacity. `placement` is the `[placement]` body.
fn policy(placement: &str) -> String {
    format!(
        r#"
[placement]
folder = "iaas"
{placement}

[sizes.small]
cpus = 1
memory_gb = 2
disk_gb = 20

[sizes.huge]
cpus = 2
memory_gb = 4
disk_gb = 690

[templates]
allowed = ["tmpl-ubuntu-*"]

[roles.users]
slack_users = ["U0USER1"]
commands = ["create", "clone", "deploy", "vm list", "vm info", "quota"]
scope = "all"

[roles.admins]
slack_users = ["U0ADMIN"]
commands = ["*"]
scope = "all"
"#
    )
}

async fn start(placement: &str, opts: VcsimOptions) -> (Vcsim, Serve, SoapClient) {
    let vcsim = Vcsim::start_with(opts).await.unwrap();
    let (serve, reader) = start_on(&vcsim, &policy(placement), &[]).await;
    (vcsim, serve, reader)
}

async fn names(reader: &SoapClient) -> Vec<String> {
    reader.list_vms().await.unwrap().into_iter().map(|v| v.vm.name.into_string()).collect()
}

async fn datastores_of(reader: &SoapClient, name: &str) -> Vec<String> {
    let vm = reader.find_vm(name).await.unwrap();
    reader.vm_details(&vm).await.unwrap().datastores
}

#[tokio::test]
async fn below_the_headroom_create_and_clone_are_refused_and_nothing_is_made() {
    // 10% of LocalDS_0's 500 GB is 50 GB: of its 60 GB free, 10 GB may still go.
    let (_vcsim, serve, reader) = start("datastore = \"LocalDS_0\"\nmin_free_percent = 10", VcsimOptions::default()).await;
    let before = names(&reader).await;

    let refused = serve.run("U0USER1", "create web-20 --size small").await;
    let text = refused.readable();
    for part in ["LocalDS_0 has 60 GB free of 500 GB", "need 20 GB", "10% of its capacity", "50 GB", "nothing was created"] {
        assert!(text.contains(part), "{part:?} missing from: {text}");
    }
    assert_eq!(refused.response_type.as_deref(), Some("ephemeral"));

    // A clone needs what its source's files take: app-web-01's 20 GB.
    let clone = serve.run("U0USER1", "clone app-web-01 web-21").await.readable();
    assert!(clone.contains("LocalDS_0 has 60 GB free") && clone.contains("need 20 GB"), "{clone}");
    assert_eq!(names(&reader).await, before, "nothing new in vCenter");
    assert!(matches!(reader.find_vm("web-20").await, Err(VcError::NotFound { .. })));

    // The 8 GB template fits in the 10 GB left: deploy goes ahead on LocalDS_0.
    let deployed = serve.run("U0USER1", "deploy tmpl-ubuntu-22 web-22").await.readable();
    assert!(deployed.contains("*web-22* is ready"), "{deployed}");
    assert_eq!(datastores_of(&reader, "web-22").await, ["LocalDS_0"]);
}

#[tokio::test]
async fn two_creates_in_flight_that_fit_once_one_is_refused() {
    // 30 GB must stay free of LocalDS_0's 60: one 20 GB disk fits, two do not. vcsim shows each
    // create as running for a while, so the first one's space is still reserved (not yet
    // counted by vCenter) when the second asks.
    let held = VcsimOptions { task_holds: vec![("CreateVM_Task".into(), 5000)], ..Default::default() };
    let (_vcsim, serve, reader) = start("datastore = \"LocalDS_0\"\nmin_free_gb = 30", held).await;
    let before = names(&reader).await.len();

    let (a, b) = tokio::join!(serve.slash("U0USER1", "create web-31"), serve.slash("U0USER1", "create web-32"));
    assert!(a.2.is_some() && b.2.is_some(), "both dispatched");
    let answers = [serve.answer().await.readable(), serve.answer().await.readable()];
    let ready: Vec<&String> = answers.iter().filter(|t| t.contains("is ready")).collect();
    let refused: Vec<&String> = answers.iter().filter(|t| t.contains("nothing was created")).collect();
    assert_eq!((ready.len(), refused.len()), (1, 1), "{answers:?}");
    assert!(refused[0].contains("20 GB of it reserved for VMs being made") && refused[0].contains("30 GB"), "{}", refused[0]);

    let after = names(&reader).await;
    assert_eq!(after.len(), before + 1, "exactly one VM was made: {after:?}");
    assert_eq!(after.iter().filter(|n| *n == "web-31" || *n == "web-32").count(), 1);

    // The VM exists, so its reservation is gone: vCenter counts its disk from now on.
    let capacity = serve.run("U0ADMIN", "capacity").await.readable();
    assert!(capacity.contains("*LocalDS_0* — 500 GB capacity · 40 GB free · 0 GB reserved · headroom 30 GB"), "{capacity}");
}

#[tokio::test]
async fn auto_takes_the_roomiest_datastore_that_keeps_the_headroom() {
    let (_vcsim, serve, reader) = start("datastore = \"auto\"\nmin_free_percent = 10", VcsimOptions::default()).await;
    let made = serve.run("U0USER1", "create web-40").await.readable();
    assert!(made.contains("*web-40* is ready"), "{made}");
    assert_eq!(datastores_of(&reader, "web-40").await, ["LocalDS_1"], "700 GB free beats 60");

    // vCenter counts web-40's disk now (700 - 20 GB). 690 GB keeps 10% (100 GB) free on
    // neither: refused, with both datastores' space.
    let before = names(&reader).await;
    let refused = serve.run("U0USER1", "create web-41 --size huge").await.readable();
    for part in ["No datastore IT allows keeps", "690 GB", "LocalDS_0 has 60 GB free of 500 GB", "LocalDS_1 has 680 GB free of 1000 GB"] {
        assert!(refused.contains(part), "{part:?} missing from: {refused}");
    }
    assert_eq!(names(&reader).await, before);
}

#[tokio::test]
async fn capacity_shows_admins_every_reachable_datastore_and_refuses_others() {
    let (_vcsim, serve, _reader) =
        start("datastore = [\"LocalDS_1\"]\nmin_free_percent = 10\nmin_free_gb = 60", VcsimOptions::default()).await;
    let answer = serve.run("U0ADMIN", "capacity").await;
    let text = answer.readable();
    for part in [
        "headroom: 10% of its capacity and 60 GB free",
        "*LocalDS_0* — 500 GB capacity · 60 GB free · 0 GB reserved · headroom 60 GB · new VMs: no: not a datastore the placement policy picks",
        "*LocalDS_1* — 1000 GB capacity · 700 GB free · 0 GB reserved · headroom 100 GB · new VMs: yes, up to 600 GB more",
    ] {
        assert!(text.contains(part), "{part:?} missing from: {text}");
    }

    let (status, ack, id) = serve.slash("U0USER1", "capacity").await;
    assert_eq!(status, 200);
    assert!(id.is_none(), "a non-admin's capacity was dispatched: {}", ack.readable());
    assert!(ack.readable().contains("may not run `capacity`"), "{}", ack.readable());
    assert!(!ack.readable().contains("LocalDS"), "{}", ack.readable());
}
