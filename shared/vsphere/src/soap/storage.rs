//! Datastores for storage moves: which ones a VM's host reaches (with capacity and free
//! space from `Datastore.summary`), which VMs live on one, a VM's committed storage, and
//! RelocateVM_Task to move a VM's files.

use std::time::Duration;

use tokio::time::Instant;

use super::envelope::{moref, PropSpec};
use super::inventory::ObjectContent;
use super::xml::{MoRef, Node};
use super::Core;
use crate::Moref;
use crate::{DatastoreInfo, Placement, PlacementStorage, VcError, VcResult, VmRef};

/// A storage vMotion copies every disk; it may take far longer than one SOAP call.
const RELOCATE_WAIT: Duration = Duration::from_secs(30 * 60);

impl Core {
    /// Reads `paths` of one object; `None` when vCenter does not know it.
    pub(crate) async fn read_one(&self, obj: &MoRef, paths: &[&str], what: &str) -> VcResult<Option<ObjectContent>> {
        let read = self
            .with_session(|s| async move {
                let spec = PropSpec { ty: &obj.ty, paths };
                self.retrieve_objects(&s, &[spec], std::slice::from_ref(obj)).await
            })
            .await;
        match read {
            Err(e) if e.fault().is_some_and(|f| f.is("ManagedObjectNotFound")) => Ok(None),
            other => Ok(other.map_err(|e| e.into_vc(&obj.value, what))?.into_iter().next()),
        }
    }

    pub(crate) async fn used_bytes(&self, vm: &VmRef) -> VcResult<u64> {
        let obj = MoRef::new("VirtualMachine", &vm.moref);
        let o = self
            .read_one(&obj, &["summary.storage"], "reading a VM's storage use")
            .await?
            .ok_or_else(|| VcError::NotFound { name: vm.name.to_string() })?;
        // vCenter fills summary.storage a little after a VM appears; until then it uses nothing.
        Ok(o.props
            .get("summary.storage")
            .and_then(|s| s.text_of("committed"))
            .and_then(|c| c.parse::<i64>().ok())
            .map_or(0, |c| c.max(0) as u64))
    }

    pub(crate) async fn host_datastores(&self, vm: &VmRef) -> VcResult<Vec<DatastoreInfo>> {
        let obj = MoRef::new("VirtualMachine", &vm.moref);
        let this = self
            .read_one(&obj, &["runtime.host"], "reading a VM's host")
            .await?
            .ok_or_else(|| VcError::NotFound { name: vm.name.to_string() })?;
        let Some(host) = this.props.get("runtime.host").and_then(Node::moref) else {
            return Ok(Vec::new());
        };
        let host = self.read_one(&host, &["datastore"], "reading a host's datastores").await?;
        let refs: Vec<MoRef> =
            host.and_then(|h| h.props.get("datastore").map(|d| d.children.iter().filter_map(Node::moref).collect())).unwrap_or_default();
        let mut out = self.datastore_infos(&refs).await?;
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// One topology read resolves the placement; one read of the reachable datastores' summaries.
    pub(crate) async fn storage_for_placement(&self, placement: &Placement) -> VcResult<PlacementStorage> {
        let (target, reachable) = self.topology().await?.storage(placement)?;
        let mut refs: Vec<MoRef> = reachable.iter().map(|id| MoRef::new("Datastore", id)).collect();
        if !reachable.contains(&target) {
            refs.push(MoRef::new("Datastore", &target));
        }
        let mut infos = self.datastore_infos(&refs).await?;
        infos.sort_by(|a, b| a.name.cmp(&b.name));
        let target = infos
            .iter()
            .find(|d| d.moref == target)
            .cloned()
            .ok_or_else(|| VcError::Protocol(format!("datastore {target} has no readable summary")))?;
        infos.retain(|d| reachable.iter().any(|r| *r == d.moref));
        Ok(PlacementStorage { target, reachable: infos })
    }

    async fn datastore_infos(&self, refs: &[MoRef]) -> VcResult<Vec<DatastoreInfo>> {
        if refs.is_empty() {
            return Ok(Vec::new());
        }
        let objects = self
            .with_session(|s| async move {
                let spec = PropSpec { ty: "Datastore", paths: &["summary"] };
                self.retrieve_objects(&s, &[spec], refs).await
            })
            .await
            .map_err(|e| e.into_vc("", "reading datastores"))?;
        Ok(objects.iter().filter_map(datastore_info).collect())
    }

    pub(crate) async fn vms_with_files_on(&self, datastore: &Moref) -> VcResult<Vec<VmRef>> {
        let objects = self
            .with_session(|s| async move { self.retrieve_vm_view(&s, &["name", "config.template", "datastore"]).await })
            .await
            .map_err(|e| e.into_vc("", "listing a datastore's VMs"))?;
        let mut out: Vec<VmRef> = objects
            .iter()
            .filter(|o| o.text("config.template") != Some("true"))
            .filter(|o| o.props.get("datastore").is_some_and(|d| d.children.iter().filter_map(Node::moref).any(|r| r.value == *datastore)))
            .filter_map(|o| Some(VmRef::new(o.obj.value.clone(), o.text("name")?.to_owned())))
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    pub(crate) async fn relocate_to(&self, vm: &VmRef, datastore: &Moref) -> VcResult<()> {
        const LABEL: &str = "moving a VM to another datastore";
        let ds = MoRef::new("Datastore", datastore);
        // vcsim 0.24 crashes on a RelocateSpec naming an unknown datastore; vCenter faults.
        // Checking first gives both the same answer.
        // vCenter faults ManagedObjectNotFound on reading it (NotFound here); vcsim may leave it out.
        let known = match self.datastore_infos(std::slice::from_ref(&ds)).await {
            Ok(found) => !found.is_empty(),
            Err(VcError::NotFound { .. }) => false,
            Err(e) => return Err(e),
        };
        if !known {
            return Err(VcError::Fault {
                fault: "ManagedObjectNotFound".into(),
                message: format!("vCenter has no datastore {datastore}."),
            });
        }
        let target = MoRef::new("VirtualMachine", &vm.moref);
        let args = format!("<spec>{}</spec>", moref("datastore", &ds));
        let deadline = Instant::now() + RELOCATE_WAIT.max(self.cfg.timeout);
        let run = async {
            let task = self.start_task(&target, "RelocateVM_Task", &args).await?;
            self.await_task(&task, deadline).await
        };
        match run.await {
            Ok(_) => {
                tracing::info!(vm = %vm.name, moref = %vm.moref, %datastore, "VM relocated");
                Ok(())
            }
            Err(e) => Err(self.vm_error(vm, &target, LABEL, e).await),
        }
    }
}

/// A datastore from its `summary`; one missing its name or sizes is left out.
fn datastore_info(o: &ObjectContent) -> Option<DatastoreInfo> {
    let s = o.props.get("summary")?;
    let bytes = |field: &str| s.text_of(field).and_then(|v| v.parse::<i64>().ok()).map(|v| v.max(0) as u64);
    Some(DatastoreInfo {
        moref: o.obj.value.clone().into(),
        name: s.text_of("name")?.to_owned(),
        capacity_bytes: bytes("capacity")?,
        free_bytes: bytes("freeSpace")?,
        maintenance: s.text_of("maintenanceMode").is_some_and(|m| !m.is_empty() && m != "normal"),
        accessible: s.text_of("accessible") == Some("true"),
    })
}

#[cfg(test)]
mod tests {
    use super::super::xml::parse_body;
    use super::*;

    #[test]
    fn summary_becomes_datastore_info() {
        let text = r#"<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/"><e:Body><val><name>LocalDS_0</name><capacity>1000</capacity><freeSpace>250</freeSpace><accessible>true</accessible><maintenanceMode>enteringMaintenance</maintenanceMode></val></e:Body></e:Envelope>"#;
        let summary = parse_body(text).unwrap();
        let o = ObjectContent {
            obj: MoRef::new("Datastore", "datastore-7"),
            props: [("summary".to_string(), summary.clone())].into_iter().collect(),
        };
        let info = datastore_info(&o).unwrap();
        assert_eq!((info.name.as_str(), info.capacity_bytes, info.free_bytes), ("LocalDS_0", 1000, 250));
        assert!(info.maintenance && info.accessible);
        let mut partial = summary;
        partial.children.retain(|c| c.name != "freeSpace");
        let o =
            ObjectContent { obj: MoRef::new("Datastore", "datastore-7"), props: [("summary".to_string(), partial)].into_iter().collect() };
        assert_eq!(datastore_info(&o), None, "no free space, no decision");
    }
}
