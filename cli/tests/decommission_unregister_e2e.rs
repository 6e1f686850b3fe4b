//! Decommission with `delete_mode = "move_and_unregister"` end to end: `/iaas decommission`
//! through `iaas serve` → SOAP → vcsim, confirmed with the button press. The VM is moved to the
//! policy's decommissioned folder and unregistered (its files stay); a folder vCenter lacks
//! fails the step with a sentence naming it, and the VM stays where it was.

mod common;

use common::decommission::{record, request_id, step, store, until};
use common::{button_token, start_on, Serve};
use iaas_store::UserId;
use iaas_tests::vcsim::Vcsim;
use iaas_vsphere::soap::SoapClient;
use iaas_vsphere::{PowerState, VcError, Vcenter};

const BASE: &str = r#"
[protection]
folders = ["Infrastructure"]

[decommission]
shutdown_timeout_secs = 5
cancel_poll_ms = 100
delete_mode = "move_and_unregister"
"#;

/// `iaas serve` on vcsim with the policy's `decommissioned_folder`, and a SOAP reader.
async fn start(vcsim: &Vcsim, folder: &str) -> (Serve, SoapClient) {
    start_on(vcsim, &format!("{BASE}decommissioned_folder = \"{folder}\"\n"), &[]).await
}

/// Asks to decommission `vms` as U1, presses confirm, and waits for the final message.
async fn decommission(serve: &Serve, vms: &str, last: &str) -> (String, Vec<String>) {
    let prompt = serve.run("U1", &format!("decommission {vms} --ticket CHG-9")).await;
    let text = prompt.readable();
    assert!(text.contains("Steps: guest_shutdown → delete_vm → slack_notify (warn)"), "{text}");
    let id = request_id(&text);
    assert_eq!(serve.press("U1", "decommission.confirm", &button_token(&prompt)).await, 200);
    (id, until(serve, &[last]).await)
}

#[tokio::test]
async fn the_vms_are_moved_to_the_folder_and_unregistered() {
    let vcsim = Vcsim::start().await.unwrap();
    let (serve, reader) = start(&vcsim, "decommissioned").await;
    // A VM the bot makes counts against its owner's quota; retiring it gives that back.
    let made = serve.run("U1", "create web-09 --size small").await.readable();
    assert!(made.contains("*web-09* is ready"), "{made}");
    let web09 = reader.find_vm("web-09").await.unwrap();
    let store = store(&serve).await;
    assert_eq!(store.quota_usage(&UserId::from("U1")).await.unwrap().vms, 1);

    let (id, _) = decommission(&serve, "app-web-02 web-09", "Decommissioned 2 of 2 VMs.").await;
    for name in ["app-web-02", "web-09"] {
        assert_eq!(reader.find_vm(name).await, Err(VcError::NotFound { name: name.into() }));
    }
    let left: Vec<String> = reader.list_vms().await.unwrap().into_iter().map(|v| v.vm.name.into_string()).collect();
    assert_eq!(left, ["app-db-01", "app-web-01", "build-agent-07", "dc-01", "win-app-01"], "only those VMs left the inventory");
    let usage = store.quota_usage(&UserId::from("U1")).await.unwrap();
    assert_eq!((usage.vms, usage.cpus, usage.memory_mb), (0, 0, 0), "the quota is given back as by a delete");
    assert!(store.vm_record(&web09.moref).await.unwrap().unwrap().deleted_at_ms.is_some());

    let d = record(&store, &id).await;
    assert_eq!(d.request.state, "done");
    assert!(d.steps.iter().all(|s| s.state == "done" && s.attempts == 1), "{:#?}", d.steps);
    assert!(step(&d, "app-web-02", "guest_shutdown").message.contains("shut down"), "{:#?}", d.steps);
    for name in ["app-web-02", "web-09"] {
        assert_eq!(
            step(&d, name, "delete_vm").message,
            format!("{name} was moved to folder decommissioned and unregistered; its files are kept.")
        );
    }
    let status = serve.run("U1", &format!("decommission status {id}")).await.readable();
    assert!(status.contains("*done*") && status.contains("was moved to folder decommissioned and unregistered"), "{status}");
}

#[tokio::test]
async fn a_folder_vcenter_lacks_fails_the_step_and_keeps_the_vm() {
    let vcsim = Vcsim::start().await.unwrap();
    let (serve, reader) = start(&vcsim, "retired").await;
    let (id, seen) = decommission(&serve, "app-web-02", "Decommission failed for 1 of 1 VMs").await;

    let d = record(&store(&serve).await, &id).await;
    assert_eq!(d.request.state, "failed");
    assert_eq!(step(&d, "app-web-02", "guest_shutdown").state, "done");
    let delete = step(&d, "app-web-02", "delete_vm");
    assert_eq!(delete.state, "failed");
    assert!(
        delete.message.contains("could not be moved to folder retired and unregistered")
            && delete.message.contains("folder retired does not exist in vCenter"),
        "{}",
        delete.message
    );
    assert!(seen.iter().any(|m| m.contains("folder retired does not exist")), "{seen:#?}");
    // Shut down by the first step, but still registered where it was.
    let vm = reader.find_vm("app-web-02").await.expect("still in the inventory");
    let details = reader.vm_details(&vm).await.unwrap();
    assert_eq!((details.folder.as_deref(), details.summary.power_state), (Some("iaas"), PowerState::PoweredOff));
}

/// A worker that died after the VM left vCenter but before the quota was given back: the step
/// run again finds the VM gone and gives the owner's share back (once, as confirmed).
#[tokio::test]
async fn a_vm_gone_before_its_delete_step_gives_its_quota_back() {
    let vcsim = Vcsim::start().await.unwrap();
    let (serve, reader) = start(&vcsim, "decommissioned").await;
    let made = serve.run("U1", "create web-10 --size small").await.readable();
    assert!(made.contains("*web-10* is ready"), "{made}");
    let store = store(&serve).await;
    assert_eq!(store.quota_usage(&UserId::from("U1")).await.unwrap().vms, 1);

    let prompt = serve.run("U1", "decommission web-10").await;
    let id = request_id(&prompt.readable());
    let vm = reader.find_vm("web-10").await.unwrap();
    reader.destroy(&vm).await.unwrap();
    assert_eq!(store.quota_usage(&UserId::from("U1")).await.unwrap().vms, 1, "still charged");
    assert_eq!(serve.press("U1", "decommission.confirm", &button_token(&prompt)).await, 200);
    until(&serve, &["Decommissioned 1 of 1 VMs."]).await;

    let d = record(&store, &id).await;
    assert_eq!(step(&d, "web-10", "delete_vm").message, "web-10 was already gone.");
    let usage = store.quota_usage(&UserId::from("U1")).await.unwrap();
    assert_eq!((usage.vms, usage.cpus, usage.memory_mb), (0, 0, 0), "the share is given back");
    assert!(store.vm_record(&vm.moref).await.unwrap().unwrap().deleted_at_ms.is_some());
}
