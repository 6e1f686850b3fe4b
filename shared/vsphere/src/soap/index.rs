//! The VM index: every VM's and template's name by managed-object id, as the last
//! WaitForUpdatesEx said (watch.rs keeps it current). It answers "which moref is called X",
//! "which names match", "is this name taken" without asking vCenter; whoever acts on an
//! answer confirms it with one read of that VM first (inventory.rs).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::xml::{MoRef, Node};
use crate::VmRef;

/// What the index asks the property collector for, per VM.
pub(crate) const INDEX_PATHS: &[&str] = &["name", "config.template"];

#[derive(Debug, Clone, Default, PartialEq)]
struct Entry {
    /// None until vCenter reports one (a VM being created may have none yet).
    name: Option<String>,
    template: bool,
}

#[derive(Debug, Default)]
pub(crate) struct VmIndex {
    by_moref: HashMap<String, Entry>,
    /// name → morefs with it; sorted, so listing and matching come out in name order.
    by_name: BTreeMap<String, BTreeSet<String>>,
}

/// One `ObjectUpdate` of a `PropertyFilterUpdate`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Update {
    /// `enter` or `modify`: the properties that changed (None = removed/unset).
    Set { moref: String, name: Option<Option<String>>, template: Option<bool> },
    /// `leave`: the VM is gone (deleted, unregistered, or out of the view).
    Gone { moref: String },
}

impl VmIndex {
    pub fn apply(&mut self, update: Update) {
        match update {
            Update::Gone { moref } => self.forget(&moref),
            Update::Set { moref, name, template } => {
                let mut entry = self.by_moref.get(&moref).cloned().unwrap_or_default();
                if let Some(name) = name {
                    entry.name = name;
                }
                if let Some(template) = template {
                    entry.template = template;
                }
                self.put(moref, entry);
            }
        }
    }

    /// What one read of the VM just said, which is newer than the index: its name now, or
    /// (None) that vCenter no longer has it.
    pub fn correct(&mut self, moref: &str, seen: Option<(String, bool)>) {
        match seen {
            Some((name, template)) => self.put(moref.to_owned(), Entry { name: Some(name), template }),
            None => self.forget(moref),
        }
    }

    fn put(&mut self, moref: String, entry: Entry) {
        self.unlink(&moref);
        if let Some(name) = &entry.name {
            self.by_name.entry(name.clone()).or_default().insert(moref.clone());
        }
        self.by_moref.insert(moref, entry);
    }

    fn forget(&mut self, moref: &str) {
        self.unlink(moref);
        self.by_moref.remove(moref);
    }

    fn unlink(&mut self, moref: &str) {
        let Some(Some(old)) = self.by_moref.get(moref).map(|e| e.name.clone()) else { return };
        if let Some(set) = self.by_name.get_mut(&old) {
            set.remove(moref);
            if set.is_empty() {
                self.by_name.remove(&old);
            }
        }
    }

    /// The moref of a VM (or, with `template`, a template) called exactly `name`.
    pub fn lookup(&self, name: &str, template: bool) -> Option<String> {
        self.by_name.get(name)?.iter().find(|m| self.by_moref.get(*m).is_some_and(|e| e.template == template)).cloned()
    }

    /// Whether any VM or template is called `name`.
    pub fn taken(&self, name: &str) -> bool {
        self.by_name.contains_key(name)
    }

    /// VMs (templates excluded) whose name matches, sorted by name.
    pub fn matching(&self, matches: &dyn Fn(&str) -> bool) -> Vec<VmRef> {
        self.by_name
            .iter()
            .filter(|(name, _)| matches(name))
            .flat_map(|(name, morefs)| {
                morefs
                    .iter()
                    .filter(|m| self.by_moref.get(*m).is_some_and(|e| !e.template))
                    .map(move |m| VmRef::new(m.clone(), name.clone()))
            })
            .collect()
    }

    /// Every VM name (templates excluded), sorted, each once.
    pub fn vm_names(&self) -> Vec<String> {
        self.by_name
            .iter()
            .filter(|(_, morefs)| morefs.iter().any(|m| self.by_moref.get(m).is_some_and(|e| !e.template)))
            .map(|(name, _)| name.clone())
            .collect()
    }

    pub fn len(&self) -> usize {
        self.by_moref.len()
    }

    /// Heap bytes held, roughly (strings, plus each map slot's own size), for the benchmark.
    pub fn approx_bytes(&self) -> usize {
        let strings: usize = self.by_moref.iter().map(|(m, e)| 2 * m.len() + e.name.as_ref().map_or(0, |n| 2 * n.len())).sum::<usize>();
        let slots = self.by_moref.capacity() * (std::mem::size_of::<String>() + std::mem::size_of::<Entry>() + 8)
            + self.by_moref.len() * 3 * (std::mem::size_of::<String>() + 16);
        strings + slots
    }
}

/// The updates of a WaitForUpdatesEx `UpdateSet` (its `returnval`), in order.
pub(crate) fn parse_update_set(set: &Node) -> Vec<Update> {
    let mut out = Vec::new();
    for filter in set.children_named("filterSet") {
        for object in filter.children_named("objectSet") {
            let Some(obj) = object.child("obj").and_then(Node::moref) else { continue };
            if obj.ty != "VirtualMachine" {
                continue;
            }
            out.push(object_update(object, obj));
        }
    }
    out
}

fn object_update(object: &Node, obj: MoRef) -> Update {
    if object.text_of("kind") == Some("leave") {
        return Update::Gone { moref: obj.value };
    }
    let (mut name, mut template) = (None, None);
    for change in object.children_named("changeSet") {
        let assigned = change.text_of("op") == Some("assign");
        let value = change.child("val").filter(|_| assigned).map(|v| v.text.clone());
        match change.text_of("name") {
            Some("name") => name = Some(value.filter(|n| !n.is_empty())),
            // Unset config (a VM being made or gone) reads as "not a template".
            Some("config.template") => template = Some(value.as_deref() == Some("true")),
            _ => {}
        }
    }
    Update::Set { moref: obj.value, name, template }
}

#[cfg(test)]
mod tests {
    use super::super::xml::parse_body;
    use super::*;

    fn set(moref: &str, name: &str, template: bool) -> Update {
        Update::Set { moref: moref.into(), name: Some(Some(name.into())), template: Some(template) }
    }

    #[test]
    fn renames_moves_the_name_and_leave_forgets() {
        let mut ix = VmIndex::default();
        ix.apply(set("vm-1", "web", false));
        ix.apply(set("vm-2", "tmpl", true));
        assert_eq!(ix.lookup("web", false).as_deref(), Some("vm-1"));
        assert_eq!(ix.lookup("tmpl", false), None, "a template is not a VM");
        assert_eq!(ix.lookup("tmpl", true).as_deref(), Some("vm-2"));
        ix.apply(Update::Set { moref: "vm-1".into(), name: Some(Some("web-new".into())), template: None });
        assert_eq!(ix.lookup("web", false), None);
        assert!(!ix.taken("web") && ix.taken("web-new") && ix.taken("tmpl"));
        assert_eq!(ix.vm_names(), vec!["web-new".to_owned()]);
        ix.apply(Update::Gone { moref: "vm-1".into() });
        assert_eq!(ix.len(), 1);
        assert!(ix.matching(&|_| true).is_empty());
    }

    #[test]
    fn a_read_corrects_the_index() {
        let mut ix = VmIndex::default();
        ix.apply(set("vm-1", "web", false));
        ix.correct("vm-1", Some(("db".into(), false)));
        assert_eq!(ix.lookup("db", false).as_deref(), Some("vm-1"));
        ix.correct("vm-1", None);
        assert_eq!(ix.len(), 0);
    }

    #[test]
    fn same_name_twice_and_sorted_matches() {
        let mut ix = VmIndex::default();
        for (m, n) in [("vm-3", "b"), ("vm-1", "a"), ("vm-2", "a")] {
            ix.apply(set(m, n, false));
        }
        let all: Vec<(String, String)> =
            ix.matching(&|n| n != "z").into_iter().map(|v| (v.name.into_string(), v.moref.into_string())).collect();
        assert_eq!(all, [("a", "vm-1"), ("a", "vm-2"), ("b", "vm-3")].map(|(a, b)| (a.to_owned(), b.to_owned())));
        ix.apply(Update::Gone { moref: "vm-1".into() });
        assert_eq!(ix.lookup("a", false).as_deref(), Some("vm-2"));
    }

    #[test]
    fn parses_enter_modify_and_leave() {
        let text = r#"<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/" xmlns:X="http://www.w3.org/2001/XMLSchema-instance"><e:Body><R><returnval><version>2</version><filterSet><filter type="PropertyFilter">f</filter>
<objectSet><kind>enter</kind><obj type="VirtualMachine">vm-1</obj><changeSet><name>config.template</name><op>assign</op><val X:type="xsd:boolean">false</val></changeSet><changeSet><name>name</name><op>assign</op><val X:type="xsd:string">a &amp; b</val></changeSet></objectSet>
<objectSet><kind>modify</kind><obj type="VirtualMachine">vm-2</obj><changeSet><name>config.template</name><op>indirectRemove</op></changeSet></objectSet>
<objectSet><kind>leave</kind><obj type="VirtualMachine">vm-3</obj></objectSet>
<objectSet><kind>enter</kind><obj type="Folder">group-1</obj></objectSet></filterSet></returnval></R></e:Body></e:Envelope>"#;
        let body = parse_body(text).unwrap();
        let updates = parse_update_set(body.child("returnval").unwrap());
        assert_eq!(
            updates,
            vec![
                Update::Set { moref: "vm-1".into(), name: Some(Some("a & b".into())), template: Some(false) },
                Update::Set { moref: "vm-2".into(), name: None, template: Some(false) },
                Update::Gone { moref: "vm-3".into() },
            ]
        );
    }
}
