//! Custom attributes: CustomFieldsManager.AddCustomFieldDef (once per name) and SetField.
//!
//! vcsim's SetField appends a value instead of replacing it; the reader (inventory.rs,
//! `custom_values`) keeps the last value per key, so the observable result is vCenter's.

use super::envelope::{moref, text, PropSpec};
use super::fault::Error;
use super::inventory::ObjectContent;
use super::xml::{MoRef, Node};
use super::Core;
use crate::{VcError, VcResult, VmRef};

const OPERATION: &str = "custom attributes";

impl Core {
    /// The CustomFieldsManager; a vCenter without one cannot keep attributes.
    async fn fields_manager(&self, fail: impl FnOnce(Error) -> VcError) -> VcResult<MoRef> {
        self.content()
            .await
            .map_err(fail)?
            .custom_fields_manager
            .clone()
            .ok_or_else(|| VcError::NotSupported { operation: OPERATION.into() })
    }

    pub(crate) async fn set_custom_value(&self, vm: &VmRef, name: &str, value: &str) -> VcResult<()> {
        let fail = |e: Error| e.into_vc(&vm.name, OPERATION);
        let manager = self.fields_manager(fail).await?;
        let target = MoRef::new("VirtualMachine", &vm.moref);

        // One read for the definitions and the VM: a VM that is gone is NotFound here,
        // rather than a fault (or, on vcsim, a dropped connection) from SetField.
        let objects = self.read_fields(&manager, Some(&target)).await.map_err(fail)?;
        if !objects.iter().any(|o| o.obj == target) {
            return Err(VcError::NotFound { name: vm.name.to_string() });
        }
        let key = match field_key(&objects, name) {
            Some(key) => key,
            None => self.define_field(&manager, name).await.map_err(fail)?,
        };

        let args = moref("entity", &target) + &text("key", &key) + &text("value", value);
        self.with_session(|s| {
            let (manager, args) = (&manager, &args);
            async move { self.invoke(&s, "SetField", manager, args).await }
        })
        .await
        .map_err(fail)?;
        Ok(())
    }

    /// The names of the custom fields that apply to VMs (defined for VMs or for every type).
    pub(crate) async fn custom_field_names(&self) -> VcResult<Vec<String>> {
        let fail = |e: Error| e.into_vc("", OPERATION);
        let manager = self.fields_manager(fail).await?;
        let objects = self.read_fields(&manager, None).await.map_err(fail)?;
        Ok(objects
            .iter()
            .filter_map(|o| o.props.get("field"))
            .flat_map(|f| f.children.iter())
            .filter(|def| matches!(def.text_of("managedObjectType"), None | Some("") | Some("VirtualMachine")))
            .filter_map(|def| def.text_of("name").map(str::to_owned))
            .collect())
    }

    async fn read_fields(&self, manager: &MoRef, vm: Option<&MoRef>) -> Result<Vec<ObjectContent>, Error> {
        let mut objects = vec![manager.clone()];
        objects.extend(vm.cloned());
        self.with_session(|s| {
            let objects = &objects;
            async move {
                let specs =
                    [PropSpec { ty: "CustomFieldsManager", paths: &["field"] }, PropSpec { ty: "VirtualMachine", paths: &["name"] }];
                self.retrieve_objects(&s, &specs, objects).await
            }
        })
        .await
    }

    /// AddCustomFieldDef for VMs; the new key. If another caller defined it meanwhile
    /// (DuplicateName), reads the key back instead.
    async fn define_field(&self, manager: &MoRef, name: &str) -> Result<String, Error> {
        let args = text("name", name) + &text("moType", "VirtualMachine");
        let added = self
            .with_session(|s| {
                let args = &args;
                async move { self.invoke(&s, "AddCustomFieldDef", manager, args).await }
            })
            .await;
        match added {
            Ok(reply) => reply
                .child("returnval")
                .and_then(|def| def.text_of("key"))
                .map(str::to_owned)
                .ok_or_else(|| Error::Vc(VcError::Protocol("AddCustomFieldDef returned no key".into()))),
            Err(e) if e.fault().is_some_and(|f| f.is("DuplicateName")) => {
                let objects = self.read_fields(manager, None).await?;
                field_key(&objects, name).ok_or(e)
            }
            Err(e) => Err(e),
        }
    }
}

/// The key of the field `name` that applies to VMs (defined for VMs, or for every type).
fn field_key(objects: &[ObjectContent], name: &str) -> Option<String> {
    objects
        .iter()
        .filter_map(|o| o.props.get("field"))
        .flat_map(|f| f.children.iter())
        .find(|def| {
            def.text_of("name") == Some(name) && matches!(def.text_of("managedObjectType"), None | Some("") | Some("VirtualMachine"))
        })
        .and_then(|def: &Node| def.text_of("key"))
        .map(str::to_owned)
}
