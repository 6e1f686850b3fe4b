//! `iaas serve` against vcsim while VMs change behind its back (the launcher's `POST /_vm`):
//! the VM index answers by the names VMs have now, "did you mean" offers the new name, and
//! `vm list` shows VMs made outside the bot without a restart.

mod common;

use std::time::Duration;

use common::Serve;
use iaas_tests::vcsim::Vcsim;

#[tokio::test]
async fn a_renamed_vm_is_found_by_its_new_name_and_suggested_for_the_old() {
    let vcsim = Vcsim::start().await.unwrap();
    let serve = Serve::start(Some(&vcsim.url)).await;
    let info = serve.run("U1", "vm info build-agent-07").await.readable();
    assert!(info.contains("build-agent-07"), "{info}");

    vcsim.rename_vm("build-agent-07", "build-agent-70").await.unwrap();

    let info = serve.run("U1", "vm info build-agent-70").await.readable();
    assert!(info.contains("*build-agent-70*") && info.contains("suspended"), "{info}");
    let old = serve.run("U1", "power off build-agent-07").await.readable();
    assert!(old.contains("No VM named build-agent-07") && old.contains("did you mean build-agent-70?"), "{old}");
}

#[tokio::test]
async fn vm_list_shows_vms_made_and_destroyed_outside_the_bot() {
    let vcsim = Vcsim::start().await.unwrap();
    let serve = Serve::start(Some(&vcsim.url)).await;
    let first = serve.run("U1", "vm list outside-*").await.readable();
    assert!(first.contains("No VM matches"), "{first}");

    vcsim.create_vm("outside-01").await.unwrap();
    vcsim.destroy_vm("app-web-02").await.unwrap();
    // The index hears of it within a moment; a command never waits for that, so ask again.
    let mut last = String::new();
    for _ in 0..50 {
        last = serve.run("U1", "vm list").await.readable();
        if last.contains("outside-01") && !last.contains("app-web-02") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(last.contains("*outside-01*") && !last.contains("app-web-02"), "{last}");
    assert!(last.contains("6 VMs"), "{last}");
}
