//! What the decommission end-to-end tests share: the request a prompt names, the answers until
//! a sentence, the request as the store recorded it, and whether a VM has left vCenter.

use iaas_store::RequestId;
use iaas_store::{DecommissionDetail, DecommissionStep, Store};
use iaas_vsphere::soap::SoapClient;
use iaas_vsphere::{VcError, Vcenter};

use super::Serve;

/// Whether vCenter no longer knows a VM by that name.
pub async fn gone(reader: &SoapClient, name: &str) -> bool {
    matches!(reader.find_vm(name).await, Err(VcError::NotFound { .. }))
}

/// The request id the prompt names ("Request `abc…`").
pub fn request_id(prompt: &str) -> String {
    let start = prompt.find("Request `").expect("the prompt names its request") + "Request `".len();
    prompt[start..].split('`').next().unwrap().to_string()
}

/// Reads response_url messages until every needle has been seen; returns them all.
pub async fn until(serve: &Serve, needles: &[&str]) -> Vec<String> {
    let mut seen = Vec::new();
    while !needles.iter().all(|n| seen.iter().any(|m: &String| m.contains(n))) {
        assert!(seen.len() < 20, "never saw {needles:?} in {seen:#?}");
        seen.push(serve.answer().await.readable());
    }
    seen
}

/// The store `iaas serve` writes to.
pub async fn store(serve: &Serve) -> Store {
    Store::connect(&format!("sqlite://{}/iaas.db", serve.dir.display())).await.unwrap()
}

/// The request as recorded, with its VMs and steps.
pub async fn record(store: &Store, id: &str) -> DecommissionDetail {
    store.decommission(&RequestId::from(id)).await.unwrap().expect("the request is recorded")
}

/// The step called `name` of the VM called `vm`.
pub fn step<'a>(d: &'a DecommissionDetail, vm: &str, name: &str) -> &'a DecommissionStep {
    let index = d.vms.iter().find(|v| v.vm_name == vm).unwrap().vm_index;
    d.steps_of(index).find(|s| s.name == name).unwrap()
}
