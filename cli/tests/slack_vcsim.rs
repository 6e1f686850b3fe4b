//! End to end as a user meets it: signed slash commands → `iaas serve` → SOAP → vcsim, with
//! the answer read from the response_url and vCenter's state read back from vcsim.

mod common;

use std::time::Duration;

use common::{Serve, SHARED_SECRET};
use iaas_invocation::{Command, PowerAction};
use iaas_tests::vcsim::Vcsim;
use iaas_vsphere::soap::SoapClient;
use iaas_vsphere::{PowerState, Vcenter};

/// A session of its own to read what vcsim now holds, independent of `iaas serve`'s.
fn reader(vcsim: &Vcsim) -> SoapClient {
    SoapClient::new(vcsim.config()).unwrap()
}

async fn power_state(reader: &SoapClient, name: &str) -> PowerState {
    let vm = reader.find_vm(name).await.unwrap();
    reader.vm_details(&vm).await.unwrap().summary.power_state
}

#[tokio::test]
async fn power_commands_change_vcsim_with_one_login() {
    let vcsim = Vcsim::start().await.unwrap();
    let serve = Serve::start(Some(&vcsim.url)).await;
    let reader = reader(&vcsim);

    let off = serve.run("U1", "power off app-web-01").await;
    assert!(off.readable().contains("app-web-01* is now powered off"), "{}", off.readable());
    assert_eq!(off.response_type.as_deref(), Some("in_channel"));
    assert_eq!(power_state(&reader, "app-web-01").await, PowerState::PoweredOff);

    let on = serve.run("U1", "poweron app-web-01").await;
    assert!(on.readable().contains("is now powered on"), "{}", on.readable());
    assert_eq!(power_state(&reader, "app-web-01").await, PowerState::PoweredOn);

    let reset = serve.run("U1", "power reset app-web-01").await;
    assert!(reset.readable().contains("was reset"), "{}", reset.readable());
    assert_eq!(power_state(&reader, "app-web-01").await, PowerState::PoweredOn);

    let suspend = serve.run("U1", "power suspend app-web-02").await;
    assert!(suspend.readable().contains("is now suspended"), "{}", suspend.readable());
    assert_eq!(power_state(&reader, "app-web-02").await, PowerState::Suspended);

    let shutdown = serve.run("U1", "power shutdown app-web-01").await;
    assert!(shutdown.readable().contains("asked to shut down"), "{}", shutdown.readable());
    assert_eq!(power_state(&reader, "app-web-01").await, PowerState::PoweredOff);

    // Debian's vcsim has no RebootGuest: the user gets a clear sentence, not a fault.
    let on = serve.run("U1", "power on app-web-01").await;
    assert!(on.readable().contains("is now powered on"));
    let reboot = serve.run("U1", "reboot app-web-01").await;
    assert!(reboot.readable().contains("does not support guest reboot"), "{}", reboot.readable());
    assert_eq!(reboot.response_type.as_deref(), Some("ephemeral"));

    let status = serve.run("U1", "power status app-db-01").await;
    assert!(status.readable().contains("app-db-01* is powered on"), "{}", status.readable());

    // Many commands, one vCenter session for the process (the readers above logged in on their own).
    let logins = vcsim.stats().await.unwrap().get("Login").copied().unwrap_or(0);
    assert_eq!(logins, 2, "one login for iaas serve, one for the test's reader");
}

#[tokio::test]
async fn wrong_state_unknown_vm_and_guest_without_tools_change_nothing() {
    let vcsim = Vcsim::start().await.unwrap();
    let serve = Serve::start(Some(&vcsim.url)).await;
    let reader = reader(&vcsim);

    let already = serve.run("U1", "power on app-web-02").await;
    assert!(already.readable().contains("app-web-02 is already powered on; nothing was changed."), "{}", already.readable());
    assert_eq!(already.response_type.as_deref(), Some("ephemeral"));

    let off = serve.run("U1", "power off win-app-01").await;
    assert!(off.readable().contains("win-app-01 is already powered off"), "{}", off.readable());

    let unknown = serve.run("U1", "power off app-web-1").await;
    assert!(unknown.readable().contains("No VM named app-web-1 — did you mean app-web-01?"), "{}", unknown.readable());
    assert_eq!(power_state(&reader, "app-web-01").await, PowerState::PoweredOn);

    let no_tools = serve.run("U1", "power shutdown app-db-01").await;
    assert!(no_tools.readable().contains("VMware Tools is not running in app-db-01"), "{}", no_tools.readable());
    assert_eq!(power_state(&reader, "app-db-01").await, PowerState::PoweredOn);
}

#[tokio::test]
async fn inventory_lists_and_describes_from_vcsim() {
    let vcsim = Vcsim::start().await.unwrap();
    let serve = Serve::start(Some(&vcsim.url)).await;

    let list = serve.run("U1", "vm list").await.readable();
    for expected in ["6 VMs", "app-web-01", "10.20.0.11", "Ubuntu Linux (64-bit)", "win-app-01", "build-agent-07", "suspended"] {
        assert!(list.contains(expected), "{expected} missing from:\n{list}");
    }
    let web = serve.run("U1", "vm list app-web-*").await.readable();
    assert!(web.contains("2 VMs matching") && web.contains("app-web-02") && !web.contains("app-db-01"), "{web}");
    let none = serve.run("U1", "vm list nothing-like-this").await.readable();
    assert!(none.contains("No VM matches"), "{none}");

    let info = serve.run("U1", "vm info app-web-01").await.readable();
    for expected in ["app-web-01", "10.20.0.11", "<@U0USER1>", "2026-01-15", "Host", "Datastores"] {
        assert!(info.contains(expected), "{expected} missing from:\n{info}");
    }
}

#[tokio::test]
async fn unreachable_vcenter_is_told_and_nothing_crashes() {
    // Start-up checks vCenter (cli/tests/startup.rs), so it goes away after start-up.
    let vcsim = Vcsim::start().await.unwrap();
    let serve = Serve::start(Some(&vcsim.url)).await;
    vcsim.stop().await;
    let answer = serve.run("U1", "power off app-web-01").await.readable();
    assert!(answer.contains("vCenter could not be reached") && answer.contains("nothing was changed"), "{answer}");
    assert!(serve.healthy().await);
}

fn invocation(id: &str, action: PowerAction, response_url: &str) -> Vec<u8> {
    iaas_tests::invocation::encoded(id, Command::Power { action, vm: "app-web-01".into() }, Some(response_url))
}

#[tokio::test]
async fn functions_refuse_unsigned_and_act_once_per_invocation() {
    let vcsim = Vcsim::start().await.unwrap();
    let serve = Serve::start(Some(&vcsim.url)).await;
    let reader = reader(&vcsim);
    let body = invocation("0193a7c2-0000-7000-8000-00000000e2e1", PowerAction::Off, &serve.response_url());
    let ts = chrono::Utc::now().timestamp();
    let signed = iaas_invocation::sign(SHARED_SECRET.as_bytes(), ts, body.clone());
    let headers = vec![("x-iaas-timestamp", ts.to_string()), ("x-iaas-signature", signed.signature.clone())];

    // Unsigned, wrongly signed, stale, and tampered: 401, vcsim untouched.
    let (status, _) = serve.post_function("iaas-power", &[], body.clone()).await;
    assert_eq!(status, 401);
    let forged = iaas_invocation::sign(b"not-the-secret", ts, body.clone());
    let (status, _) = serve
        .post_function("iaas-power", &[("x-iaas-timestamp", ts.to_string()), ("x-iaas-signature", forged.signature)], body.clone())
        .await;
    assert_eq!(status, 401);
    let stale_ts = ts - 3600;
    let stale = iaas_invocation::sign(SHARED_SECRET.as_bytes(), stale_ts, body.clone());
    let (status, _) = serve
        .post_function("iaas-power", &[("x-iaas-timestamp", stale_ts.to_string()), ("x-iaas-signature", stale.signature)], body.clone())
        .await;
    assert_eq!(status, 401);
    let tampered = invocation("0193a7c2-0000-7000-8000-00000000e2e1", PowerAction::Reset, &serve.response_url());
    let (status, _) = serve.post_function("iaas-power", &headers, tampered).await;
    assert_eq!(status, 401);
    assert_eq!(power_state(&reader, "app-web-01").await, PowerState::PoweredOn);

    // Malformed but signed: a clear 400.
    let junk = iaas_invocation::sign(SHARED_SECRET.as_bytes(), ts, &b"{\"id\":1}"[..]);
    let (status, text) = serve
        .post_function("iaas-power", &[("x-iaas-timestamp", ts.to_string()), ("x-iaas-signature", junk.signature)], b"{\"id\":1}".to_vec())
        .await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("malformed invocation"));

    // Delivered twice (at-least-once queues): one power-off in vCenter, the same outcome twice.
    let before = vcsim.stats().await.unwrap().get("PowerOffVM_Task").copied().unwrap_or(0);
    let (status, first) = serve.post_function("iaas-power", &headers, body.clone()).await;
    assert_eq!(status, 200, "{first}");
    assert!(first.contains("\"status\":\"done\""), "{first}");
    let (status, second) = serve.post_function("iaas-power", &headers, body.clone()).await;
    assert_eq!(status, 200);
    assert!(second.contains("\"status\":\"duplicate\"") && second.contains("is now powered off"), "{second}");
    let after = vcsim.stats().await.unwrap().get("PowerOffVM_Task").copied().unwrap_or(0);
    assert_eq!(after - before, 1);
    assert!(serve.answer().await.readable().contains("is now powered off"));
}

#[tokio::test]
async fn a_second_change_to_a_vm_in_flight_is_refused() {
    // Slow power-offs keep the first change in flight while the second arrives.
    let opts = iaas_tests::vcsim::VcsimOptions { delays: vec![("PowerOffVM_Task".into(), 1500)], ..Default::default() };
    let vcsim = Vcsim::start_with(opts).await.unwrap();
    let serve = Serve::start(Some(&vcsim.url)).await;
    let (first, _, id) = serve.slash("U1", "power off app-web-01").await;
    assert_eq!(first, 200);
    assert!(id.is_some());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let second = serve.run("U2", "power reset app-web-01").await.readable();
    assert!(second.contains("app-web-01 has a change in flight (`power off app-web-01` by <@U1>"), "{second}");
    let first = serve.answer().await.readable();
    assert!(first.contains("is now powered off"), "{first}");
    // Once it has finished, the VM takes changes again.
    let again = serve.run("U2", "power on app-web-01").await.readable();
    assert!(again.contains("is now powered on"), "{again}");
}
