//! Request bodies for the handful of vim25 methods the client uses.
//!
//! vCenter validates element order against the WSDL, so the builders emit fields in schema order.

use std::fmt::Write;

use super::xml::MoRef;

/// Escapes text for element content and attribute values.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// A complete envelope calling `method` on `this` with already-serialized arguments.
pub(crate) fn call(method: &str, this: &MoRef, args: &str) -> String {
    format!(
        concat!(
            r#"<?xml version="1.0" encoding="UTF-8"?>"#,
            r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" "#,
            r#"xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">"#,
            r#"<soapenv:Body><{method} xmlns="urn:vim25">{this}{args}</{method}></soapenv:Body></soapenv:Envelope>"#
        ),
        method = method,
        this = moref("_this", this),
        args = args,
    )
}

pub(crate) fn moref(element: &str, r: &MoRef) -> String {
    format!(r#"<{element} type="{}">{}</{element}>"#, escape(&r.ty), escape(&r.value))
}

pub(crate) fn text(element: &str, value: &str) -> String {
    format!("<{element}>{}</{element}>", escape(value))
}

pub(crate) fn login(session_manager: &MoRef, user: &str, password: &str) -> String {
    call("Login", session_manager, &(text("userName", user) + &text("password", password)))
}

pub(crate) fn container_view(view_manager: &MoRef, root: &MoRef, ty: &str) -> String {
    let args = moref("container", root) + &text("type", ty) + "<recursive>true</recursive>";
    call("CreateContainerView", view_manager, &args)
}

/// Which properties to read from objects of one type.
pub(crate) struct PropSpec<'a> {
    pub ty: &'a str,
    pub paths: &'a [&'a str],
}

fn prop_sets(specs: &[PropSpec<'_>]) -> String {
    let mut out = String::new();
    for spec in specs {
        out.push_str("<propSet>");
        out.push_str(&text("type", spec.ty));
        for path in spec.paths {
            out.push_str(&text("pathSet", path));
        }
        out.push_str("</propSet>");
    }
    out
}

fn retrieve(collector: &MoRef, spec_set: String) -> String {
    call("RetrievePropertiesEx", collector, &format!("<specSet>{spec_set}</specSet><options></options>"))
}

/// Properties of every object a ContainerView shows (the view itself is skipped).
pub(crate) fn retrieve_view(collector: &MoRef, view: &MoRef, spec: &PropSpec<'_>) -> String {
    retrieve(collector, prop_sets(std::slice::from_ref(spec)) + &view_object_set(view))
}

/// Properties of the given objects.
pub(crate) fn retrieve_objects(collector: &MoRef, specs: &[PropSpec<'_>], objects: &[MoRef]) -> String {
    retrieve(collector, object_specs(specs, objects))
}

/// Properties of the given objects, leaving out (rather than faulting on) those vCenter no
/// longer has: a list read from the VM index may name a VM deleted a moment ago.
pub(crate) fn retrieve_present(collector: &MoRef, specs: &[PropSpec<'_>], objects: &[MoRef]) -> String {
    retrieve(collector, object_specs(specs, objects) + "<reportMissingObjectsInResults>true</reportMissingObjectsInResults>")
}

fn object_specs(specs: &[PropSpec<'_>], objects: &[MoRef]) -> String {
    let mut spec_set = prop_sets(specs);
    for obj in objects {
        let _ = write!(spec_set, "<objectSet>{}</objectSet>", moref("obj", obj));
    }
    spec_set
}

/// The objects a ContainerView shows, seen through a view traversal (the view itself skipped).
fn view_object_set(view: &MoRef) -> String {
    format!(
        concat!(
            "<objectSet>{view}<skip>true</skip>",
            r#"<selectSet xsi:type="TraversalSpec"><name>view</name><type>ContainerView</type>"#,
            "<path>view</path><skip>false</skip></selectSet></objectSet>"
        ),
        view = moref("obj", view),
    )
}

/// CreateFilter on `collector`: `spec`'s properties of every object in `view`, reported in
/// full on each change (partialUpdates false).
pub(crate) fn create_view_filter(collector: &MoRef, view: &MoRef, spec: &PropSpec<'_>) -> String {
    let args =
        format!("<spec>{}{}</spec><partialUpdates>false</partialUpdates>", prop_sets(std::slice::from_ref(spec)), view_object_set(view));
    call("CreateFilter", collector, &args)
}

/// WaitForUpdatesEx from `version` ("" = everything as it is now); 0 s = one calculation.
pub(crate) fn wait_for_updates(collector: &MoRef, version: &str, max_wait_secs: u64) -> String {
    let args = text("version", version) + &format!("<options><maxWaitSeconds>{max_wait_secs}</maxWaitSeconds></options>");
    call("WaitForUpdatesEx", collector, &args)
}

/// How [`retrieve_tree`] walks the inventory: (name, type, path, specs applied next).
/// Virtual machines are passed through (vm folders hold them) but never read.
const TREE: &[(&str, &str, &str, &[&str])] = &[
    ("folder", "Folder", "childEntity", &["folder", "dcVm", "dcHost", "dcDs", "dcNet", "crHost", "crPool"]),
    ("dcVm", "Datacenter", "vmFolder", &["folder"]),
    ("dcHost", "Datacenter", "hostFolder", &["folder"]),
    ("dcDs", "Datacenter", "datastoreFolder", &["folder"]),
    ("dcNet", "Datacenter", "networkFolder", &["folder"]),
    ("crHost", "ComputeResource", "host", &[]),
    ("crPool", "ComputeResource", "resourcePool", &["pool"]),
    ("pool", "ResourcePool", "resourcePool", &["pool"]),
];

/// Properties of everything below `root` that [`TREE`] reaches (datacenters, folders,
/// clusters, hosts, pools, datastores, networks), in one call. Every TraversalSpec is
/// defined at the top so the nested ones can refer to it by name.
pub(crate) fn retrieve_tree(collector: &MoRef, root: &MoRef, specs: &[PropSpec<'_>]) -> String {
    let mut select = String::new();
    for (name, ty, path, next) in TREE {
        let _ = write!(
            select,
            r#"<selectSet xsi:type="TraversalSpec">{}{}{}<skip>false</skip>"#,
            text("name", name),
            text("type", ty),
            text("path", path)
        );
        for n in *next {
            let _ = write!(select, "<selectSet>{}</selectSet>", text("name", n));
        }
        select.push_str("</selectSet>");
    }
    let object_set = format!("<objectSet>{}<skip>false</skip>{select}</objectSet>", moref("obj", root));
    retrieve(collector, prop_sets(specs) + &object_set)
}

pub(crate) fn continue_retrieve(collector: &MoRef, token: &str) -> String {
    call("ContinueRetrievePropertiesEx", collector, &text("token", token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_credentials() {
        let body = login(&MoRef::new("SessionManager", "SessionManager"), "a<b", "p&\"'");
        assert!(body.contains("<userName>a&lt;b</userName>"));
        assert!(body.contains("<password>p&amp;&quot;&apos;</password>"));
        assert!(body.contains(r#"<_this type="SessionManager">SessionManager</_this>"#));
    }

    #[test]
    fn filter_and_wait_are_in_schema_order() {
        let pc = MoRef::new("PropertyCollector", "session[x]pc");
        let body = create_view_filter(&pc, &MoRef::new("ContainerView", "v"), &PropSpec { ty: "VirtualMachine", paths: &["name"] });
        let order = ["<spec>", "<propSet>", "<objectSet>", "<skip>true", "</spec>", "<partialUpdates>"];
        let positions: Vec<usize> = order.iter().map(|p| body.find(p).unwrap()).collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{body}");
        let wait = wait_for_updates(&pc, "1&2", 0);
        assert!(wait.contains("<version>1&amp;2</version><options><maxWaitSeconds>0</maxWaitSeconds></options>"), "{wait}");
        let present =
            retrieve_present(&pc, &[PropSpec { ty: "VirtualMachine", paths: &["name"] }], &[MoRef::new("VirtualMachine", "vm-1")]);
        assert!(present.find("</objectSet>").unwrap() < present.find("<reportMissingObjectsInResults>").unwrap(), "{present}");
    }

    #[test]
    fn view_spec_is_in_schema_order() {
        let body = retrieve_view(
            &MoRef::new("PropertyCollector", "propertyCollector"),
            &MoRef::new("ContainerView", "session[x]y"),
            &PropSpec { ty: "VirtualMachine", paths: &["name"] },
        );
        let order = ["<propSet>", "<objectSet>", "<skip>true", "<selectSet", "<options>"];
        let positions: Vec<usize> = order.iter().map(|p| body.find(p).unwrap()).collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{body}");
    }
}
