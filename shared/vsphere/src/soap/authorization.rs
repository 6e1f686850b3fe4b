//! What the bot's own session may do: AuthorizationManager.HasPrivilegeOnEntities with the
//! session's key (UserSession.key from Login), for `iaas doctor`. It needs only System.Read on
//! the entities asked about, which every vSphere role includes.
//!
//! govmomi's vcsim answers every privilege as granted, so the parsing of a refusal is tested
//! here on vCenter's documented answer shape.

use super::envelope::{moref, text};
use super::fault::Error;
use super::xml::{MoRef, Node};
use super::Core;
use crate::{PlacedObject, VcError, VcResult};

const OPERATION: &str = "checking privileges";

impl Core {
    pub(crate) async fn privileges_missing(&self, on: Option<&PlacedObject>, privileges: &[&str]) -> VcResult<Vec<String>> {
        let fail = |e: Error| e.into_vc("", OPERATION);
        let content = self.content().await.map_err(fail)?;
        let manager = content.authorization_manager.clone().ok_or_else(|| VcError::NotSupported { operation: OPERATION.into() })?;
        let entity = match on {
            Some(o) => MoRef::new(&o.moref_type, &o.moref),
            None => content.root_folder.clone(),
        };
        let reply = self
            .with_session(|s| {
                let (manager, entity) = (&manager, &entity);
                async move {
                    let key = s.key.clone().ok_or_else(|| Error::Vc(VcError::Protocol("Login returned no session key".into())))?;
                    let mut args = moref("entity", entity) + &text("sessionId", &key);
                    for p in privileges {
                        args += &text("privId", p);
                    }
                    self.invoke(&s, "HasPrivilegeOnEntities", manager, &args).await
                }
            })
            .await
            .map_err(fail)?;
        Ok(not_granted(&reply, privileges))
    }
}

/// The privileges of `asked` the answer does not grant; one the answer leaves out counts as
/// not granted.
fn not_granted(reply: &Node, asked: &[&str]) -> Vec<String> {
    let granted: Vec<&str> = reply
        .children_named("returnval")
        .flat_map(|r| r.children_named("privAvailability"))
        .filter(|a| a.text_of("isGranted") == Some("true"))
        .filter_map(|a| a.text_of("privId"))
        .collect();
    asked.iter().filter(|p| !granted.contains(p)).map(|p| p.to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::super::xml::parse_body;
    use super::*;

    #[test]
    fn a_privilege_not_granted_or_not_answered_is_missing() {
        let body = parse_body(
            r#"<?xml version="1.0"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>
            <HasPrivilegeOnEntitiesResponse xmlns="urn:vim25"><returnval><entity type="Folder">group-v3</entity>
            <privAvailability><privId>VirtualMachine.Inventory.Create</privId><isGranted>true</isGranted></privAvailability>
            <privAvailability><privId>VirtualMachine.Inventory.Delete</privId><isGranted>false</isGranted></privAvailability>
            </returnval></HasPrivilegeOnEntitiesResponse></soapenv:Body></soapenv:Envelope>"#,
        )
        .unwrap();
        let asked = ["VirtualMachine.Inventory.Create", "VirtualMachine.Inventory.Delete", "Resource.AssignVMToPool"];
        assert_eq!(not_granted(&body, &asked), ["VirtualMachine.Inventory.Delete", "Resource.AssignVMToPool"]);
    }
}
