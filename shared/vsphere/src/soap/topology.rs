//! Reading the inventory placement needs ([`Topology`]) in one RetrievePropertiesEx that walks
//! from the root folder (see `envelope::retrieve_tree`).

use std::collections::HashMap;

use super::envelope::{self, PropSpec};
use super::inventory::ObjectContent;
use super::xml::{MoRef, Node};
use super::Core;
use crate::placement::{Child, Compute, Datacenter, Host, Network, NetworkBacking, Obj, Topology};
use crate::VcResult;

const SPECS: &[PropSpec<'static>] = &[
    PropSpec { ty: "Datacenter", paths: &["name", "vmFolder", "hostFolder", "datastore", "network"] },
    PropSpec { ty: "Folder", paths: &["name", "parent"] },
    PropSpec { ty: "ComputeResource", paths: &["name", "parent", "resourcePool", "host"] },
    // Only for drsConfig.enabled; a nested path into it is not valid for a plain
    // ComputeResource, so the whole (small) object is read.
    PropSpec { ty: "ClusterComputeResource", paths: &["configurationEx"] },
    PropSpec { ty: "ResourcePool", paths: &["name", "parent"] },
    PropSpec { ty: "HostSystem", paths: &["name", "datastore", "runtime.connectionState", "runtime.inMaintenanceMode"] },
    PropSpec { ty: "Datastore", paths: &["name"] },
    PropSpec { ty: "Network", paths: &["name"] },
    PropSpec { ty: "DistributedVirtualPortgroup", paths: &["key", "config.distributedVirtualSwitch"] },
    PropSpec { ty: "DistributedVirtualSwitch", paths: &["uuid"] },
];

impl Core {
    pub(crate) async fn topology(&self) -> VcResult<Topology> {
        let objects = self
            .with_session(|s| async move {
                let content = self.content().await?;
                let request = envelope::retrieve_tree(&content.property_collector, &content.root_folder, SPECS);
                self.retrieve_all(&s, request).await
            })
            .await
            .map_err(|e| e.into_vc("", "reading the inventory"))?;
        Ok(build(&objects))
    }
}

fn refs(o: &ObjectContent, path: &str) -> Vec<String> {
    o.props.get(path).map(|v| v.children.iter().filter_map(Node::moref).map(|r| r.value).collect()).unwrap_or_default()
}

fn one_ref(o: &ObjectContent, path: &str) -> Option<String> {
    o.props.get(path).and_then(Node::moref).map(|r| r.value)
}

fn obj(o: &ObjectContent) -> Obj {
    Obj::new(&o.obj.ty, &o.obj.value, o.text("name").unwrap_or(""))
}

/// Sorts objects into a [`Topology`] by type. Types it does not know are left out.
fn build(objects: &[ObjectContent]) -> Topology {
    let switch_uuids: HashMap<&MoRef, &str> = objects.iter().filter_map(|o| Some((&o.obj, o.text("uuid")?))).collect();
    let mut t = Topology::default();
    for o in objects {
        match o.obj.ty.as_str() {
            "Datacenter" => t.datacenters.push(Datacenter {
                name: o.text("name").unwrap_or("").to_owned(),
                vm_folder: one_ref(o, "vmFolder").unwrap_or_default(),
                host_folder: one_ref(o, "hostFolder").unwrap_or_default(),
                datastores: refs(o, "datastore"),
                networks: refs(o, "network"),
            }),
            "Folder" | "StoragePod" => t.folders.push(Child { obj: obj(o), parent: one_ref(o, "parent") }),
            "ComputeResource" | "ClusterComputeResource" => t.computes.push(Compute {
                obj: obj(o),
                parent: one_ref(o, "parent"),
                root_pool: one_ref(o, "resourcePool"),
                hosts: refs(o, "host"),
                drs: o.props.get("configurationEx").and_then(|c| c.child("drsConfig")).and_then(|d| d.text_of("enabled")) == Some("true"),
            }),
            "ResourcePool" | "VirtualApp" => t.pools.push(Child { obj: obj(o), parent: one_ref(o, "parent") }),
            "HostSystem" => t.hosts.push(Host {
                obj: obj(o),
                datastores: refs(o, "datastore"),
                usable: o.text("runtime.connectionState") == Some("connected") && o.text("runtime.inMaintenanceMode") != Some("true"),
            }),
            "Datastore" => t.datastores.push(obj(o)),
            "Network" | "DistributedVirtualPortgroup" | "OpaqueNetwork" => {
                let backing = match o.obj.ty.as_str() {
                    "Network" => NetworkBacking::Standard,
                    "DistributedVirtualPortgroup" => {
                        let switch = o.props.get("config.distributedVirtualSwitch").and_then(Node::moref);
                        match (o.text("key"), switch.and_then(|s| switch_uuids.get(&s).copied())) {
                            (Some(key), Some(uuid)) => {
                                NetworkBacking::Distributed { portgroup_key: key.to_owned(), switch_uuid: uuid.to_owned() }
                            }
                            _ => NetworkBacking::Other,
                        }
                    }
                    _ => NetworkBacking::Other,
                };
                t.networks.push(Network { obj: obj(o), backing });
            }
            _ => {}
        }
    }
    t
}
