//! The SOAP client's VM index against vcsim, with VMs renamed, made and destroyed behind its
//! back through the launcher (`POST /_vm`, vcsim's own methods): names are found as they are
//! now, changes are seen without a restart, and an action never lands on the wrong VM.

use std::time::Duration;

use iaas_tests::vcsim::{Vcsim, VcsimOptions};
use iaas_vsphere::soap::SoapClient;
use iaas_vsphere::{PowerOp, PowerState, VcError, Vcenter, VmRef};

fn client(sim: &Vcsim) -> SoapClient {
    SoapClient::new(sim.config()).expect("client")
}

async fn power_state(vc: &SoapClient, vm: &VmRef) -> PowerState {
    vc.vm_details(vm).await.expect("details").summary.power_state
}

/// Polls `vm_names` (the index alone: no sync, no lookup) until `ok` says yes, for at most
/// ten seconds; returns the last names seen.
async fn names_until(vc: &SoapClient, ok: impl Fn(&[String]) -> bool) -> Vec<String> {
    let mut names = Vec::new();
    for _ in 0..100 {
        names = vc.vm_names().await.expect("names");
        if ok(&names) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    names
}

#[tokio::test]
async fn a_vm_renamed_behind_the_back_is_found_by_its_new_name_only() {
    let sim = Vcsim::start().await.unwrap();
    let vc = client(&sim);
    let before = vc.find_vm("build-agent-07").await.unwrap();

    sim.rename_vm("build-agent-07", "build-agent-70").await.unwrap();

    let after = vc.find_vm("build-agent-70").await.expect("found by the new name");
    assert_eq!(after.moref, before.moref, "the same VM");
    assert_eq!(vc.find_vm("build-agent-07").await, Err(VcError::NotFound { name: "build-agent-07".into() }));
    let names = vc.vm_names().await.unwrap();
    assert!(names.contains(&"build-agent-70".to_owned()) && !names.contains(&"build-agent-07".to_owned()), "{names:?}");
    let page = vc.find_vms(&|n: &str| n.starts_with("build-"), 10).await.unwrap();
    assert_eq!(page.vms.iter().map(|s| s.vm.name.as_str()).collect::<Vec<_>>(), ["build-agent-70"]);
}

#[tokio::test]
async fn vms_made_and_destroyed_outside_are_seen_without_a_restart() {
    let sim = Vcsim::start().await.unwrap();
    let vc = client(&sim);
    assert!(!vc.vm_names().await.unwrap().contains(&"outside-01".to_owned()));

    sim.create_vm("outside-01").await.unwrap();
    let names = names_until(&vc, |n| n.iter().any(|n| n == "outside-01")).await;
    assert!(names.contains(&"outside-01".to_owned()), "the index never saw the new VM: {names:?}");
    let page = vc.find_vms(&|n: &str| n.starts_with("outside-"), 10).await.unwrap();
    assert_eq!((page.total, page.vms[0].power_state), (1, PowerState::PoweredOn));

    sim.destroy_vm("app-db-01").await.unwrap();
    let names = names_until(&vc, |n| !n.iter().any(|n| n == "app-db-01")).await;
    assert!(!names.contains(&"app-db-01".to_owned()), "the index still lists a destroyed VM: {names:?}");
    assert!(matches!(vc.find_vm("app-db-01").await, Err(VcError::NotFound { .. })));
}

/// WaitForUpdatesEx held back by vcsim, so the index is surely behind when the next command
/// looks the name up: the confirming read must catch it.
fn lagging() -> VcsimOptions {
    VcsimOptions { http_delays: vec![("WaitForUpdatesEx".into(), 1500)], ..VcsimOptions::default() }
}

#[tokio::test]
async fn a_vm_destroyed_and_made_again_under_its_name_is_the_one_acted_on() {
    let sim = Vcsim::start_with(lagging()).await.unwrap();
    let vc = client(&sim);
    let old = vc.find_vm("app-web-02").await.unwrap();

    sim.destroy_vm("app-web-02").await.unwrap();
    sim.create_vm("app-web-02").await.unwrap();

    let new = vc.find_vm("app-web-02").await.expect("the new VM");
    assert_ne!(new.moref, old.moref, "the index's stale entry was used");
    vc.power(&new, PowerOp::Off).await.unwrap();
    assert_eq!(power_state(&vc, &new).await, PowerState::PoweredOff);
    assert!(matches!(vc.vm_by_moref(&old.moref).await, Err(VcError::NotFound { .. })));
}

#[tokio::test]
async fn a_vm_renamed_away_and_replaced_is_never_acted_on() {
    let sim = Vcsim::start_with(lagging()).await.unwrap();
    let vc = client(&sim);
    let old = vc.find_vm("app-web-01").await.unwrap();

    // The old VM lives on under another name; a new one takes its name.
    sim.rename_vm("app-web-01", "app-web-01-old").await.unwrap();
    sim.create_vm("app-web-01").await.unwrap();

    let new = vc.find_vm("app-web-01").await.expect("the new VM");
    assert_ne!(new.moref, old.moref, "the renamed VM was taken for the new one");
    vc.power(&new, PowerOp::Off).await.unwrap();
    assert_eq!(power_state(&vc, &new).await, PowerState::PoweredOff);
    let renamed = VmRef::new(old.moref.clone(), "app-web-01-old");
    assert_eq!(power_state(&vc, &renamed).await, PowerState::PoweredOn, "the renamed VM was touched");
}

#[tokio::test]
async fn a_name_taken_outside_a_moment_ago_is_refused_for_a_create() {
    let sim = Vcsim::start().await.unwrap();
    let vc = client(&sim);
    vc.vm_names().await.unwrap(); // index built
    sim.create_vm("web-taken").await.unwrap();
    let spec = iaas_vsphere::CreateSpec {
        name: "web-taken".into(),
        guest_id: "ubuntu64Guest".into(),
        cpus: 1,
        memory_mb: 512,
        disk_gb: 0,
        placement: iaas_vsphere::Placement { folder: Some("iaas".into()), ..Default::default() },
    };
    assert_eq!(vc.begin_create(&spec).await, Err(VcError::DuplicateName { name: "web-taken".into() }));
}

#[tokio::test]
async fn warm_lookups_cost_one_small_read_whatever_the_inventory() {
    let sim = Vcsim::start_with(VcsimOptions { extra_vms: 300, ..VcsimOptions::default() }).await.unwrap();
    let vc = client(&sim);
    vc.find_vm("bench-vm-001").await.unwrap();
    let stats = vc.index_stats().expect("index built");
    assert_eq!(stats.entries, 308, "{stats:?}");

    let calls = sim.stats().await.unwrap();
    let bytes = sim.bytes().await.unwrap();
    vc.find_vm("bench-vm-250").await.unwrap();
    let calls2 = sim.stats().await.unwrap();
    let bytes2 = sim.bytes().await.unwrap();
    let diff = |a: &std::collections::HashMap<String, u64>, b: &std::collections::HashMap<String, u64>| -> u64 {
        b.iter().map(|(k, v)| v - a.get(k).copied().unwrap_or(0)).sum()
    };
    assert_eq!(
        calls2.get("RetrievePropertiesEx").copied().unwrap_or(0) - calls.get("RetrievePropertiesEx").copied().unwrap_or(0),
        1,
        "one confirming read: {calls2:?}"
    );
    // A read of all 308 names is about 60 KB; one VM's is about 1 KB.
    let moved = diff(&bytes, &bytes2)
        - (bytes2.get("WaitForUpdatesEx").copied().unwrap_or(0) - bytes.get("WaitForUpdatesEx").copied().unwrap_or(0));
    assert!(moved < 4_000, "a warm lookup moved {moved} bytes");
}

#[tokio::test]
async fn without_an_index_lookups_read_vcenter_directly() {
    // Every WaitForUpdatesEx outlasts the client's time-out: the index is never built.
    let sim =
        Vcsim::start_with(VcsimOptions { http_delays: vec![("WaitForUpdatesEx".into(), 3000)], ..VcsimOptions::default() }).await.unwrap();
    let mut cfg = sim.config();
    cfg.timeout = Duration::from_secs(1);
    let vc = SoapClient::new(cfg).unwrap();

    let web = vc.find_vm("app-web-01").await.expect("found without an index");
    assert_eq!(vc.vm_details(&web).await.unwrap().summary.vm.name, "app-web-01");
    assert!(matches!(vc.find_vm("no-such-vm").await, Err(VcError::NotFound { .. })));
    assert!(vc.vm_names().await.unwrap().contains(&"app-db-01".to_owned()));
    assert_eq!(vc.find_vms(&|n: &str| n.starts_with("app-"), 10).await.unwrap().total, 3);
    assert!(vc.index_stats().is_none(), "an index was built after all");
    let stats = sim.stats().await.unwrap();
    assert!(stats.get("WaitForUpdatesEx").copied().unwrap_or(0) >= 1, "the index was never tried: {stats:?}");
}
