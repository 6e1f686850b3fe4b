//! Reading VMs: the ContainerView, RetrievePropertiesEx (with continuation tokens), and
//! turning property sets into [`VmSummary`] / [`VmDetails`].

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::envelope::{self, PropSpec};
use super::fault::{Error, Fault};
use super::xml::{MoRef, Node};
use super::{Core, Session};
use crate::{PowerState, VcError, VcResult, VmDetails, VmRef, VmSummary};

/// What a list row needs (plus `config.template`, to leave templates out), then `$more`.
macro_rules! summary_paths {
    ($($more:literal),*) => {
        &[
            "name",
            "runtime.powerState",
            "guest.ipAddress",
            "guest.guestFullName",
            "config.guestFullName",
            "config.hardware.numCPU",
            "config.hardware.memoryMB",
            "config.template",
            $($more),*
        ]
    };
}

const SUMMARY_PATHS: &[&str] = summary_paths!();

const FIND_PATHS: &[&str] = &["name", "config.template"];

const DETAIL_PATHS: &[&str] = summary_paths!(
    "runtime.host",
    "datastore",
    "parent",
    "guest.toolsRunningStatus",
    "customValue",
    "config.cpuHotAddEnabled",
    "config.memoryHotAddEnabled",
    "config.uuid"
);

/// One object's properties from RetrievePropertiesEx.
pub(crate) struct ObjectContent {
    pub obj: MoRef,
    pub props: HashMap<String, Node>,
}

impl ObjectContent {
    pub(crate) fn text(&self, path: &str) -> Option<&str> {
        self.props.get(path).map(|v| v.text.as_str()).filter(|t| !t.is_empty())
    }

    pub(crate) fn is_template(&self) -> bool {
        self.text("config.template") == Some("true")
    }
}

impl Core {
    pub(crate) async fn list_summaries(&self) -> VcResult<Vec<VmSummary>> {
        let objects = self
            .with_session(|s| async move { self.retrieve_vm_view(&s, SUMMARY_PATHS).await })
            .await
            .map_err(|e| e.into_vc("", "listing VMs"))?;
        let mut vms: Vec<VmSummary> = objects.iter().filter(|o| !o.is_template()).filter_map(summary).collect();
        vms.sort_by(|a, b| a.vm.name.cmp(&b.vm.name));
        Ok(vms)
    }

    /// Every template, sorted by name.
    pub(crate) async fn templates(&self) -> VcResult<Vec<VmRef>> {
        let objects = self
            .with_session(|s| async move { self.retrieve_vm_view(&s, FIND_PATHS).await })
            .await
            .map_err(|e| e.into_vc("", "listing templates"))?;
        let mut out: Vec<VmRef> = objects
            .iter()
            .filter(|o| o.is_template())
            .filter_map(|o| Some(VmRef::new(o.obj.value.clone(), o.text("name")?.to_owned())))
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// The template called `name`, read from the whole view (when the index is unavailable).
    pub(crate) async fn scan_template(&self, name: &str) -> VcResult<VmRef> {
        self.templates().await?.into_iter().find(|t| t.name == name).ok_or_else(|| VcError::NotFound { name: name.to_owned() })
    }

    /// Whether any VM or template is called `name`, read from the whole view (when the index
    /// is unavailable).
    pub(crate) async fn scan_taken(&self, name: &str) -> VcResult<bool> {
        let objects = self
            .with_session(|s| async move { self.retrieve_vm_view(&s, FIND_PATHS).await })
            .await
            .map_err(|e| e.into_vc(name, "checking VM names"))?;
        Ok(objects.iter().any(|o| o.text("name") == Some(name)))
    }

    /// The VM called `name`, read from the whole view (when the index is unavailable).
    pub(crate) async fn scan_vm(&self, name: &str) -> VcResult<VmRef> {
        let objects = self
            .with_session(|s| async move { self.retrieve_vm_view(&s, FIND_PATHS).await })
            .await
            .map_err(|e| e.into_vc(name, "finding a VM"))?;
        objects
            .iter()
            .filter(|o| !o.is_template() && o.text("name") == Some(name))
            .map(|o| VmRef::new(o.obj.value.clone(), name.to_owned()))
            .next()
            .ok_or_else(|| VcError::NotFound { name: name.to_owned() })
    }

    /// Summaries of these VMs (templates and VMs vCenter no longer has left out), in one read.
    pub(crate) async fn summaries_of(&self, vms: &[VmRef]) -> VcResult<Vec<VmSummary>> {
        if vms.is_empty() {
            return Ok(Vec::new());
        }
        let objects: Vec<MoRef> = vms.iter().map(|v| MoRef::new("VirtualMachine", &v.moref)).collect();
        let read = self
            .with_session(|s| {
                let objects = &objects;
                async move {
                    let collector = &self.content().await?.property_collector;
                    let spec = PropSpec { ty: "VirtualMachine", paths: SUMMARY_PATHS };
                    self.retrieve_all(&s, envelope::retrieve_present(collector, &[spec], objects)).await
                }
            })
            .await
            .map_err(|e| e.into_vc("", "listing VMs"))?;
        Ok(read.iter().filter(|o| !o.is_template()).filter_map(summary).collect())
    }

    /// Two reads: the VM's own properties, then the names of what it points at (host,
    /// datastores, folder) together with the custom attribute definitions.
    pub(crate) async fn details(&self, vm: &VmRef) -> VcResult<VmDetails> {
        let vm_obj = MoRef::new("VirtualMachine", &vm.moref);
        let fail = |e: Error| e.into_vc(&vm.name, "reading VM details");
        let this = self
            .with_session(|s| {
                let vm_obj = &vm_obj;
                async move {
                    let spec = PropSpec { ty: "VirtualMachine", paths: DETAIL_PATHS };
                    self.retrieve_objects(&s, &[spec], std::slice::from_ref(vm_obj)).await
                }
            })
            .await
            .map_err(fail)?
            .into_iter()
            .next()
            .ok_or_else(|| VcError::NotFound { name: vm.name.to_string() })?;
        let summary = summary(&this).ok_or_else(|| VcError::NotFound { name: vm.name.to_string() })?;

        let host = this.props.get("runtime.host").and_then(Node::moref);
        let datastores: Vec<MoRef> =
            this.props.get("datastore").map(|v| v.children.iter().filter_map(Node::moref).collect()).unwrap_or_default();
        let folder = this.props.get("parent").and_then(Node::moref);
        let custom_values = custom_values(this.props.get("customValue"));

        let mut targets: Vec<MoRef> = host.iter().chain(&datastores).chain(&folder).cloned().collect();
        let fields_manager = match self.content().await {
            Ok(content) if !custom_values.is_empty() => content.custom_fields_manager.clone(),
            _ => None,
        };
        targets.extend(fields_manager.clone());

        let related = if targets.is_empty() {
            Vec::new()
        } else {
            self.with_session(|s| {
                let targets = &targets;
                async move {
                    let specs =
                        [PropSpec { ty: "ManagedEntity", paths: &["name"] }, PropSpec { ty: "CustomFieldsManager", paths: &["field"] }];
                    self.retrieve_objects(&s, &specs, targets).await
                }
            })
            .await
            .map_err(fail)?
        };
        let names: HashMap<&MoRef, &str> = related.iter().filter_map(|o| Some((&o.obj, o.text("name")?))).collect();
        let field_names: HashMap<String, String> = related
            .iter()
            .filter_map(|o| o.props.get("field"))
            .flat_map(|f| f.children.iter())
            .filter_map(|def| Some((def.text_of("key")?.to_owned(), def.text_of("name")?.to_owned())))
            .collect();

        let attributes: BTreeMap<String, String> =
            custom_values.into_iter().filter_map(|(key, value)| Some((field_names.get(&key)?.clone(), value))).collect();

        Ok(VmDetails {
            host: host.as_ref().and_then(|h| names.get(h)).map(|n| n.to_string()),
            datastores: datastores.iter().filter_map(|d| names.get(d)).map(|n| n.to_string()).collect(),
            folder: folder.as_ref().and_then(|f| names.get(f)).map(|n| n.to_string()),
            tools_running: this.text("guest.toolsRunningStatus") == Some("guestToolsRunning"),
            attributes,
            cpu_hot_add: this.text("config.cpuHotAddEnabled") == Some("true"),
            memory_hot_add: this.text("config.memoryHotAddEnabled") == Some("true"),
            uuid: this.text("config.uuid").map(str::to_owned),
            summary,
        })
    }

    /// `runtime.powerState` of one VM.
    pub(crate) async fn power_state(&self, vm: &MoRef) -> Result<Option<PowerState>, Error> {
        let objects = self
            .with_session(|s| async move {
                let spec = PropSpec { ty: "VirtualMachine", paths: &["runtime.powerState"] };
                self.retrieve_objects(&s, &[spec], std::slice::from_ref(vm)).await
            })
            .await?;
        Ok(objects.first().and_then(|o| o.text("runtime.powerState")).and_then(super::fault::parse_power_state))
    }

    /// The ContainerView over every VM, created once per session.
    pub(crate) async fn vm_view(&self, session: &Session) -> Result<MoRef, Error> {
        session
            .vm_view
            .get_or_try_init(|| async {
                let content = self.content().await?;
                let body = envelope::container_view(&content.view_manager, &content.root_folder, "VirtualMachine");
                let reply = self.post(body, Some(&session.cookie)).await?;
                reply
                    .body
                    .child("returnval")
                    .and_then(Node::moref)
                    .ok_or_else(|| Error::Vc(VcError::Protocol("CreateContainerView returned no view".into())))
            })
            .await
            .cloned()
    }

    pub(crate) async fn retrieve_vm_view(&self, session: &Arc<Session>, paths: &[&str]) -> Result<Vec<ObjectContent>, Error> {
        let view = self.vm_view(session).await?;
        let collector = &self.content().await?.property_collector;
        let spec = PropSpec { ty: "VirtualMachine", paths };
        self.retrieve_all(session, envelope::retrieve_view(collector, &view, &spec)).await
    }

    pub(crate) async fn retrieve_objects(
        &self,
        session: &Session,
        specs: &[PropSpec<'_>],
        objects: &[MoRef],
    ) -> Result<Vec<ObjectContent>, Error> {
        let collector = &self.content().await?.property_collector;
        self.retrieve_all(session, envelope::retrieve_objects(collector, specs, objects)).await
    }

    /// Sends a RetrievePropertiesEx and follows ContinueRetrievePropertiesEx tokens to the end.
    pub(crate) async fn retrieve_all(&self, session: &Session, request: String) -> Result<Vec<ObjectContent>, Error> {
        let collector = &self.content().await?.property_collector;
        let mut reply = self.post(request, Some(&session.cookie)).await?;
        let mut objects = Vec::new();
        loop {
            let token = parse_result(reply.body.child("returnval"), &mut objects)?;
            let Some(token) = token else {
                return Ok(objects);
            };
            reply = self.post(envelope::continue_retrieve(collector, &token), Some(&session.cookie)).await?;
        }
    }
}

/// Appends a RetrieveResult's objects; returns its continuation token. A property missing
/// because the session is gone (vcsim answers that way instead of faulting) is a fault.
fn parse_result(result: Option<&Node>, out: &mut Vec<ObjectContent>) -> Result<Option<String>, Error> {
    let Some(result) = result else {
        return Ok(None);
    };
    for object in result.children_named("objects") {
        let Some(obj) = object.child("obj").and_then(Node::moref) else {
            continue;
        };
        for missing in object.children_named("missingSet") {
            if let Some(fault) = missing.child("fault").map(Fault::from_localized) {
                if fault.is("NotAuthenticated") {
                    return Err(fault.into());
                }
            }
        }
        let props =
            object.children_named("propSet").filter_map(|p| Some((p.text_of("name")?.to_owned(), p.child("val")?.clone()))).collect();
        out.push(ObjectContent { obj, props });
    }
    Ok(result.text_of("token").filter(|t| !t.is_empty()).map(str::to_owned))
}

fn summary(o: &ObjectContent) -> Option<VmSummary> {
    let name = o.text("name")?;
    let power_state = o.text("runtime.powerState").and_then(super::fault::parse_power_state)?;
    let guest_os = o.text("guest.guestFullName").or_else(|| o.text("config.guestFullName"));
    Some(VmSummary {
        vm: VmRef::new(o.obj.value.clone(), name.to_owned()),
        power_state,
        ip: o.text("guest.ipAddress").map(str::to_owned),
        guest_os: guest_os.map(str::to_owned),
        cpus: o.text("config.hardware.numCPU").and_then(|n| n.parse().ok()).unwrap_or(0),
        memory_mb: o.text("config.hardware.memoryMB").and_then(|n| n.parse().ok()).unwrap_or(0),
    })
}

/// `(field key, value)` pairs with a non-empty value; a key set twice keeps its last value.
fn custom_values(value: Option<&Node>) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for v in value.map(|v| v.children.as_slice()).unwrap_or_default() {
        let (Some(key), Some(text)) = (v.text_of("key"), v.text_of("value")) else {
            continue;
        };
        out.retain(|(k, _)| k != key);
        if !text.is_empty() {
            out.push((key.to_owned(), text.to_owned()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::xml::parse_body;
    use super::*;

    const RESULT: &str = r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><RetrievePropertiesExResponse xmlns="urn:vim25"><returnval><token>t1</token><objects><obj type="VirtualMachine">vm-1</obj><propSet><name>name</name><val xsi:type="xsd:string">web</val></propSet><propSet><name>runtime.powerState</name><val xsi:type="VirtualMachinePowerState">suspended</val></propSet><propSet><name>guest.ipAddress</name><val xsi:type="xsd:string"></val></propSet><propSet><name>config.guestFullName</name><val xsi:type="xsd:string">Debian</val></propSet><propSet><name>config.hardware.numCPU</name><val xsi:type="xsd:int">3</val></propSet><propSet><name>customValue</name><val xsi:type="ArrayOfCustomFieldValue"><CustomFieldValue xsi:type="CustomFieldStringValue"><key>0</key><value>a</value></CustomFieldValue><CustomFieldValue xsi:type="CustomFieldStringValue"><key>1</key><value></value></CustomFieldValue><CustomFieldValue xsi:type="CustomFieldStringValue"><key>0</key><value>b</value></CustomFieldValue></val></propSet></objects></returnval></RetrievePropertiesExResponse></soapenv:Body></soapenv:Envelope>"#;

    #[test]
    fn parses_objects_token_and_summary() {
        let body = parse_body(RESULT).unwrap();
        let mut objects = Vec::new();
        let token = parse_result(body.child("returnval"), &mut objects).unwrap();
        assert_eq!(token.as_deref(), Some("t1"));
        let s = summary(&objects[0]).unwrap();
        assert_eq!(s.vm.name, "web");
        assert_eq!(s.power_state, PowerState::Suspended);
        assert_eq!(s.ip, None, "an empty IP is no IP");
        assert_eq!(s.guest_os.as_deref(), Some("Debian"), "falls back to config.guestFullName");
        assert_eq!((s.cpus, s.memory_mb), (3, 0));
        assert_eq!(custom_values(objects[0].props.get("customValue")), vec![("0".to_owned(), "b".to_owned())]);
    }

    #[test]
    fn missing_property_for_lack_of_session_is_not_authenticated() {
        let text = r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:X="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><R><returnval><objects><obj type="VirtualMachine">vm-49</obj><missingSet><path>name</path><fault><fault X:type="NotAuthenticated"><privilegeId>System.Read</privilegeId></fault></fault></missingSet></objects></returnval></R></soapenv:Body></soapenv:Envelope>"#;
        let body = parse_body(text).unwrap();
        let err = parse_result(body.child("returnval"), &mut Vec::new()).unwrap_err();
        assert!(err.fault().is_some_and(|f| f.is("NotAuthenticated")));
    }
}
