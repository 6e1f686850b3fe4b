//! A captured slash command replayed inside Slack's window acts once (#15.2), end to end on
//! `iaas serve` and vcsim.

mod common;

use common::Serve;
use iaas_tests::vcsim::Vcsim;
use iaas_vsphere::soap::SoapClient;
use iaas_vsphere::{PowerState, Vcenter};

async fn power_state(reader: &SoapClient, name: &str) -> PowerState {
    let vm = reader.find_vm(name).await.unwrap();
    reader.vm_details(&vm).await.unwrap().summary.power_state
}

#[tokio::test]
async fn the_same_signed_command_three_times_acts_once() {
    let vcsim = Vcsim::start().await.unwrap();
    let serve = Serve::start(Some(&vcsim.url)).await;
    let reader = SoapClient::new(vcsim.config()).unwrap();

    let off = serve.capture("U1", "power off app-web-01");
    assert_eq!(serve.send_captured(&off).await, 200);
    assert!(serve.answer().await.readable().contains("is now powered off"));
    assert_eq!(serve.send_captured(&off).await, 409);
    assert_eq!(serve.send_captured(&off).await, 409);
    assert_eq!(power_state(&reader, "app-web-01").await, PowerState::PoweredOff);

    // Powered on again by a new command, the old one replayed would power it off: refused.
    serve.run("U1", "power on app-web-01").await;
    assert_eq!(serve.send_captured(&off).await, 409);
    assert_eq!(power_state(&reader, "app-web-01").await, PowerState::PoweredOn);
    let audit = serve.cli(&["audit"]).await;
    assert_eq!(audit.matches("replayed request").count(), 3, "{audit}");
}
