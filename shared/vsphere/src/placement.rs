//! Turning a [`Placement`] (names from the policy) into the objects a create or clone needs.
//!
//! Both implementations resolve against a [`Topology`]: the SOAP client reads one from vCenter
//! in a single call, the demo holds a fixed one mirroring the vcsim launcher. Sharing the
//! resolver is what makes them refuse the same placements the same way.

use crate::{Placement, VcError, VcResult};

/// A managed object as placement sees it: its type, moref value and name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Obj {
    pub ty: String,
    pub id: String,
    pub name: String,
}

impl Obj {
    pub fn new(ty: &str, id: &str, name: &str) -> Obj {
        Obj { ty: ty.into(), id: id.into(), name: name.into() }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Datacenter {
    pub name: String,
    pub vm_folder: String,
    pub host_folder: String,
    /// Moref values of the datastores and networks the datacenter holds.
    pub datastores: Vec<String>,
    pub networks: Vec<String>,
}

/// A folder, compute resource or resource pool, with the moref value of its parent.
#[derive(Debug, Clone)]
pub(crate) struct Child {
    pub obj: Obj,
    pub parent: Option<String>,
}

/// A cluster or standalone host.
#[derive(Debug, Clone)]
pub(crate) struct Compute {
    pub obj: Obj,
    pub parent: Option<String>,
    pub root_pool: Option<String>,
    pub hosts: Vec<String>,
    /// DRS picks the host itself; without it CreateVM and CloneVM need one.
    pub drs: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct Host {
    pub obj: Obj,
    pub datastores: Vec<String>,
    /// Connected and not in maintenance mode.
    pub usable: bool,
}

/// How a NIC attaches to a network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NetworkBacking {
    /// A standard port group (type `Network`).
    Standard,
    /// A distributed port group: its key and its switch's UUID.
    Distributed { portgroup_key: String, switch_uuid: String },
    /// NSX opaque networks and anything else the client cannot attach to.
    Other,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Network {
    pub obj: Obj,
    pub backing: NetworkBacking,
}

/// The inventory objects placement needs, as one read returns them.
#[derive(Debug, Clone, Default)]
pub(crate) struct Topology {
    pub datacenters: Vec<Datacenter>,
    pub folders: Vec<Child>,
    pub computes: Vec<Compute>,
    pub pools: Vec<Child>,
    pub hosts: Vec<Host>,
    pub datastores: Vec<Obj>,
    pub networks: Vec<Network>,
}

/// A resolved placement.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Target {
    pub folder: Obj,
    pub pool: Obj,
    /// The host to pass to vCenter: only when the cluster has no DRS to choose one.
    pub host: Option<Obj>,
    /// The host the VM would land on if the client chose (the demo always does).
    pub chosen_host: Obj,
    pub datastore: Obj,
    pub network: Option<Network>,
}

impl Target {
    /// What `iaas doctor` checks privileges on: the folder, pool, datastore and network.
    pub fn objects(&self) -> Vec<crate::PlacedObject> {
        let placed =
            |what: &'static str, o: &Obj| crate::PlacedObject { what, name: o.name.clone(), moref_type: o.ty.clone(), moref: o.id.clone() };
        let mut out = vec![placed("folder", &self.folder), placed("resource pool", &self.pool), placed("datastore", &self.datastore)];
        if let Some(n) = &self.network {
            out.push(placed("network", &n.obj));
        }
        out
    }
}

fn not_found(what: &str, name: &str) -> VcError {
    VcError::PlacementNotFound { what: what.into(), name: name.into() }
}

fn unusable(message: String) -> VcError {
    VcError::Fault { fault: "NoCompatibleHost".into(), message }
}

/// `a/b//c/` → `["a", "b", "c"]`.
fn segments(path: &str) -> Vec<&str> {
    path.split('/').filter(|s| !s.is_empty()).collect()
}

fn by_name<'a, T>(items: impl Iterator<Item = &'a T>, name: impl Fn(&T) -> &str) -> Vec<&'a T>
where
    T: 'a,
{
    let mut items: Vec<&T> = items.collect();
    items.sort_by(|a, b| name(a).cmp(name(b)));
    items
}

impl Topology {
    pub fn resolve(&self, p: &Placement) -> VcResult<Target> {
        let dc = self.datacenter(p.datacenter.as_deref())?;
        let folder = self.folder(dc, p.folder.as_deref())?;
        let (compute, pool) = self.pool(dc, p.resource_pool.as_deref())?;

        let hosts: Vec<&Host> = by_name(self.hosts.iter().filter(|h| h.usable && compute.hosts.contains(&h.obj.id)), |h| &h.obj.name);
        let Some(first_host) = hosts.first() else {
            return Err(unusable(format!("no host in {} can take a new VM (all are disconnected or in maintenance).", compute.obj.name)));
        };

        let datastore = match p.datastore.as_deref() {
            Some(name) => self
                .datastores
                .iter()
                .find(|d| d.name == name && dc.datastores.contains(&d.id))
                .ok_or_else(|| not_found("datastore", name))?,
            None => by_name(self.datastores.iter().filter(|d| first_host.datastores.contains(&d.id)), |d| &d.name)
                .first()
                .copied()
                .ok_or_else(|| unusable(format!("host {} of {} has no datastore for a new VM.", first_host.obj.name, compute.obj.name)))?,
        };
        let chosen_host = hosts.iter().find(|h| h.datastores.contains(&datastore.id)).ok_or_else(|| {
            unusable(format!(
                "datastore {} is not mounted on any usable host of {}; an administrator must fix the policy.",
                datastore.name, compute.obj.name
            ))
        })?;

        let network = match p.network.as_deref() {
            Some(name) => Some(
                self.networks
                    .iter()
                    .find(|n| n.obj.name == name && dc.networks.contains(&n.obj.id))
                    .cloned()
                    .ok_or_else(|| not_found("network", name))?,
            ),
            None => None,
        };

        Ok(Target {
            folder: folder.clone(),
            pool: pool.clone(),
            host: (!compute.drs).then(|| chosen_host.obj.clone()),
            chosen_host: chosen_host.obj.clone(),
            datastore: datastore.clone(),
            network,
        })
    }

    /// Where a placement puts a VM's files and what else it could: the datastore
    /// [`Topology::resolve`] picks (refused the same way), and the moref values of every
    /// datastore of the placement's datacenter that a usable host of its cluster or host mounts.
    pub fn storage(&self, p: &Placement) -> VcResult<(String, Vec<String>)> {
        let target = self.resolve(p)?;
        let dc = self.datacenter(p.datacenter.as_deref())?;
        let (compute, _) = self.pool(dc, p.resource_pool.as_deref())?;
        let mut reachable: Vec<String> = self
            .hosts
            .iter()
            .filter(|h| h.usable && compute.hosts.contains(&h.obj.id))
            .flat_map(|h| h.datastores.iter())
            .filter(|d| dc.datastores.contains(d))
            .cloned()
            .collect();
        reachable.sort();
        reachable.dedup();
        Ok((target.datastore.id, reachable))
    }

    fn datacenter(&self, name: Option<&str>) -> VcResult<&Datacenter> {
        match name {
            Some(name) => self.datacenters.iter().find(|d| d.name == name).ok_or_else(|| not_found("datacenter", name)),
            None => by_name(self.datacenters.iter(), |d| &d.name)
                .first()
                .copied()
                .ok_or_else(|| unusable("vCenter has no datacenter to put a VM in.".into())),
        }
    }

    /// The vm folder itself, or the folder `path` names under it.
    fn folder(&self, dc: &Datacenter, path: Option<&str>) -> VcResult<&Obj> {
        let root = self
            .folders
            .iter()
            .find(|f| f.obj.id == dc.vm_folder)
            .ok_or_else(|| VcError::Protocol(format!("vm folder of {} not readable", dc.name)))?;
        let Some(path) = path else {
            return Ok(&root.obj);
        };
        let mut current = root;
        for segment in segments(path) {
            current = self
                .folders
                .iter()
                .find(|f| f.parent.as_deref() == Some(&current.obj.id) && f.obj.name == segment)
                .ok_or_else(|| not_found("folder", path))?;
        }
        Ok(&current.obj)
    }

    /// The folder `path` names under the vm folder of the datacenter that holds the folder
    /// `parent` (a VM's parent): where a retired VM goes. Unknown → `PlacementNotFound`.
    pub fn vm_folder_near(&self, parent: &str, path: &str) -> VcResult<&Obj> {
        let dc = self.datacenters.iter().find(|d| self.under(Some(parent), &d.vm_folder)).ok_or_else(|| VcError::Fault {
            fault: "NotSupported".into(),
            message: format!("the VM is not in a datacenter's VM folder (folder {parent}), so it cannot be moved to folder {path}."),
        })?;
        self.folder(dc, Some(path))
    }

    /// The compute resource and pool: the first cluster's root pool, or `cluster[/pool...]`.
    fn pool(&self, dc: &Datacenter, path: Option<&str>) -> VcResult<(&Compute, &Obj)> {
        let in_dc: Vec<&Compute> =
            by_name(self.computes.iter().filter(|c| c.root_pool.is_some() && self.under(c.parent.as_deref(), &dc.host_folder)), |c| {
                &c.obj.name
            });
        let root_of = |c: &Compute| c.root_pool.as_deref().and_then(|id| self.pools.iter().find(|p| p.obj.id == id));
        let Some(path) = path else {
            // Clusters first: a standalone host is only the default when there is no cluster.
            let compute = in_dc
                .iter()
                .find(|c| c.obj.ty == "ClusterComputeResource")
                .or(in_dc.first())
                .ok_or_else(|| unusable(format!("datacenter {} has no cluster or host to run a VM on.", dc.name)))?;
            let pool = root_of(compute).ok_or_else(|| VcError::Protocol(format!("root pool of {} not readable", compute.obj.name)))?;
            return Ok((compute, &pool.obj));
        };
        let segs = segments(path);
        let missing = || not_found("resource pool", path);
        let first = segs.first().ok_or_else(missing)?;
        let compute = in_dc.iter().find(|c| c.obj.name == *first).ok_or_else(missing)?;
        let mut current = root_of(compute).ok_or_else(missing)?;
        for segment in &segs[1..] {
            current =
                self.pools.iter().find(|p| p.parent.as_deref() == Some(&current.obj.id) && p.obj.name == *segment).ok_or_else(missing)?;
        }
        Ok((compute, &current.obj))
    }

    /// Whether the folder `start` is `ancestor` or lies below it.
    fn under(&self, start: Option<&str>, ancestor: &str) -> bool {
        let mut current = start;
        // Bounded: a malformed answer with a parent cycle must not hang the call.
        for _ in 0..=self.folders.len() {
            match current {
                Some(id) if id == ancestor => return true,
                Some(id) => current = self.folders.iter().find(|f| f.obj.id == id).and_then(|f| f.parent.as_deref()),
                None => return false,
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn child(ty: &str, id: &str, name: &str, parent: &str) -> Child {
        Child { obj: Obj::new(ty, id, name), parent: Some(parent.into()) }
    }

    fn host(id: &str, name: &str, ds: &[&str], usable: bool) -> Host {
        Host { obj: Obj::new("HostSystem", id, name), datastores: ds.iter().map(|s| s.to_string()).collect(), usable }
    }

    /// Two clusters (B has no DRS, a maintenance host, and a nested pool), a folder tree, a
    /// datastore only one host mounts, and a second datacenter's objects to ignore.
    fn topology() -> Topology {
        Topology {
            datacenters: vec![
                Datacenter {
                    name: "DC1".into(),
                    vm_folder: "f-vm".into(),
                    host_folder: "f-host".into(),
                    datastores: vec!["ds-a".into(), "ds-b".into(), "ds-solo".into()],
                    networks: vec!["net-1".into(), "pg-1".into()],
                },
                Datacenter {
                    name: "DC2".into(),
                    vm_folder: "f2-vm".into(),
                    host_folder: "f2-host".into(),
                    datastores: vec!["ds-x".into()],
                    networks: vec![],
                },
            ],
            folders: vec![
                child("Folder", "f-vm", "vm", "dc1"),
                child("Folder", "f-host", "host", "dc1"),
                child("Folder", "f-iaas", "iaas", "f-vm"),
                child("Folder", "f-web", "web", "f-iaas"),
                child("Folder", "f-lab", "lab", "f-host"),
                child("Folder", "f2-vm", "vm", "dc2"),
                child("Folder", "f2-host", "host", "dc2"),
            ],
            computes: vec![
                Compute {
                    obj: Obj::new("ClusterComputeResource", "c-b", "B"),
                    parent: Some("f-lab".into()),
                    root_pool: Some("rp-b".into()),
                    hosts: vec!["h-b1".into(), "h-b0".into()],
                    drs: false,
                },
                Compute {
                    obj: Obj::new("ClusterComputeResource", "c-a", "A"),
                    parent: Some("f-host".into()),
                    root_pool: Some("rp-a".into()),
                    hosts: vec!["h-a1".into(), "h-a0".into()],
                    drs: true,
                },
                Compute {
                    obj: Obj::new("ClusterComputeResource", "c-x", "X"),
                    parent: Some("f2-host".into()),
                    root_pool: Some("rp-x".into()),
                    hosts: vec![],
                    drs: true,
                },
            ],
            pools: vec![
                child("ResourcePool", "rp-a", "Resources", "c-a"),
                child("ResourcePool", "rp-b", "Resources", "c-b"),
                child("ResourcePool", "rp-b-gold", "gold", "rp-b"),
                child("ResourcePool", "rp-b-gold-web", "web", "rp-b-gold"),
            ],
            hosts: vec![
                host("h-a1", "a1", &["ds-a"], true),
                host("h-a0", "a0", &["ds-b", "ds-a"], true),
                host("h-b0", "b0", &["ds-a", "ds-solo"], false),
                host("h-b1", "b1", &["ds-a"], true),
            ],
            datastores: vec![
                Obj::new("Datastore", "ds-a", "alpha"),
                Obj::new("Datastore", "ds-b", "beta"),
                Obj::new("Datastore", "ds-solo", "solo"),
                Obj::new("Datastore", "ds-x", "other-dc"),
            ],
            networks: vec![
                Network { obj: Obj::new("Network", "net-1", "VM Network"), backing: NetworkBacking::Standard },
                Network {
                    obj: Obj::new("DistributedVirtualPortgroup", "pg-1", "web-pg"),
                    backing: NetworkBacking::Distributed { portgroup_key: "dvportgroup-1".into(), switch_uuid: "50 1a".into() },
                },
            ],
        }
    }

    fn placement(f: impl FnOnce(&mut Placement)) -> Placement {
        let mut p = Placement::default();
        f(&mut p);
        p
    }

    #[test]
    fn defaults_are_first_by_name() {
        let t = topology().resolve(&Placement::default()).unwrap();
        assert_eq!(t.folder.id, "f-vm");
        assert_eq!(t.pool.id, "rp-a", "cluster A sorts before B");
        assert_eq!(t.chosen_host.name, "a0");
        assert_eq!(t.datastore.name, "alpha", "first of a0's datastores by name");
        assert_eq!(t.host, None, "DRS chooses the host");
        assert_eq!(t.network, None);
    }

    #[test]
    fn paths_resolve_through_folders_and_pools() {
        let t = topology()
            .resolve(&placement(|p| {
                p.datacenter = Some("DC1".into());
                p.folder = Some("iaas/web/".into());
                p.resource_pool = Some("B/gold/web".into());
                p.network = Some("web-pg".into());
            }))
            .unwrap();
        assert_eq!(t.folder.id, "f-web");
        assert_eq!(t.pool.id, "rp-b-gold-web");
        assert_eq!(t.host.as_ref().map(|h| h.name.as_str()), Some("b1"), "no DRS: the usable host is passed");
        assert!(matches!(t.network.map(|n| n.backing), Some(NetworkBacking::Distributed { .. })));
    }

    #[test]
    fn unknown_names_say_which() {
        let t = topology();
        let cases = [
            (placement(|p| p.datacenter = Some("DC9".into())), "datacenter", "DC9"),
            (placement(|p| p.folder = Some("iaas/db".into())), "folder", "iaas/db"),
            (placement(|p| p.folder = Some("web".into())), "folder", "web"),
            (placement(|p| p.resource_pool = Some("C".into())), "resource pool", "C"),
            (placement(|p| p.resource_pool = Some("A/gold".into())), "resource pool", "A/gold"),
            (placement(|p| p.resource_pool = Some("X".into())), "resource pool", "X"),
            (placement(|p| p.datastore = Some("other-dc".into())), "datastore", "other-dc"),
            (placement(|p| p.network = Some("nope".into())), "network", "nope"),
        ];
        for (p, what, name) in cases {
            assert_eq!(t.resolve(&p), Err(VcError::PlacementNotFound { what: what.into(), name: name.into() }), "{p:?}");
        }
    }

    #[test]
    fn datastore_only_on_an_unusable_host_is_refused() {
        let err = topology()
            .resolve(&placement(|p| {
                p.resource_pool = Some("B".into());
                p.datastore = Some("solo".into());
            }))
            .unwrap_err();
        assert!(err.to_string().contains("solo is not mounted on any usable host of B"), "{err}");
    }

    #[test]
    fn storage_is_every_datastore_a_usable_host_of_the_cluster_mounts() {
        let t = topology();
        assert_eq!(t.storage(&Placement::default()), Ok(("ds-a".into(), vec!["ds-a".into(), "ds-b".into()])));
        // B's host b0 (the only one mounting solo) is in maintenance.
        assert_eq!(t.storage(&placement(|p| p.resource_pool = Some("B".into()))), Ok(("ds-a".into(), vec!["ds-a".into()])));
        assert_eq!(
            t.storage(&placement(|p| p.datastore = Some("beta".into()))).map(|(target, _)| target),
            Ok("ds-b".into()),
            "a named datastore is the target"
        );
        assert!(t.storage(&placement(|p| p.datastore = Some("other-dc".into()))).is_err());
    }

    #[test]
    fn empty_inventory_is_a_sentence_not_a_panic() {
        let err = Topology::default().resolve(&Placement::default()).unwrap_err();
        assert!(err.to_string().contains("no datacenter"), "{err}");
    }

    #[test]
    fn a_retired_vm_goes_to_a_folder_of_its_own_datacenter() {
        let t = topology();
        assert_eq!(t.vm_folder_near("f-web", "iaas").map(|f| f.id.as_str()), Ok("f-iaas"));
        assert_eq!(t.vm_folder_near("f-vm", "iaas/web").map(|f| f.id.as_str()), Ok("f-web"));
        assert_eq!(
            t.vm_folder_near("f2-vm", "iaas"),
            Err(VcError::PlacementNotFound { what: "folder".into(), name: "iaas".into() }),
            "DC2 has no iaas folder"
        );
        assert!(matches!(t.vm_folder_near("f-lab", "iaas"), Err(VcError::Fault { .. })), "a host folder holds no VMs");
    }

    #[test]
    fn parent_cycle_terminates() {
        let mut t = topology();
        t.folders.push(child("Folder", "loop1", "l1", "loop2"));
        t.folders.push(child("Folder", "loop2", "l2", "loop1"));
        assert!(!t.under(Some("loop1"), "f-host"));
    }
}
