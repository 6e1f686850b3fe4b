//! Finding VMs by name through the VM index, never trusting it blindly: a name it knows is
//! confirmed with one small read of that VM (its name and template flag now); a mismatch or
//! a VM vCenter no longer has corrects the entry, brings the index up to date, and looks
//! once more; twice wrong is [`VcError::Changed`]. A name it does not know is looked for
//! again after bringing the index up to date, so a VM made a moment ago is found. When there
//! is no index (vCenter refused the property filter, or it is being rebuilt), the whole view
//! is read as before the index existed.

use super::xml::MoRef;
use super::Core;
use crate::{check_name, NameMatch, VcError, VcResult, VmPage, VmRef, VmSummary};

impl Core {
    /// [`crate::Vcenter::find_vm`].
    pub(crate) async fn find_by_name(&self, name: &str) -> VcResult<VmRef> {
        match self.confirmed(name, false).await {
            Err(Fallback) => self.scan_vm(name).await,
            Ok(found) => found,
        }
    }

    /// [`crate::Vcenter::find_template`].
    pub(crate) async fn find_template_by_name(&self, name: &str) -> VcResult<VmRef> {
        match self.confirmed(name, true).await {
            Err(Fallback) => self.scan_template(name).await,
            Ok(found) => found,
        }
    }

    /// `DuplicateName` if any VM or template is called `name`. vcsim 0.24 happily creates a
    /// second VM of the same name (it only renames the directory), vCenter refuses one in
    /// the same folder; checking first gives both vCenter's answer, and the bot's VM names
    /// stay unique, which `find_vm` relies on. The index is brought up to date first.
    pub(crate) async fn check_unique(&self, name: &str) -> VcResult<()> {
        let taken = match self.sync_index().await {
            true => self.with_index(|ix| ix.taken(name)),
            false => None,
        };
        let taken = match taken {
            Some(taken) => taken,
            None => self.scan_taken(name).await?,
        };
        if taken {
            return Err(VcError::DuplicateName { name: name.to_owned() });
        }
        Ok(())
    }

    /// [`crate::Vcenter::find_vms`]: the index says which names match; only the first
    /// `limit` of them are read, in one call.
    pub(crate) async fn matching_summaries(&self, matches: &NameMatch, limit: usize) -> VcResult<VmPage> {
        let found = match self.index_ready().await {
            true => self.with_index(|ix| ix.matching(matches)),
            false => None,
        };
        let Some(found) = found else {
            let all: Vec<VmSummary> = self.list_summaries().await?.into_iter().filter(|s| matches(&s.vm.name)).collect();
            return Ok(VmPage { total: all.len(), vms: all.into_iter().take(limit).collect() });
        };
        let total = found.len();
        let wanted: Vec<VmRef> = found.into_iter().take(limit).collect();
        // A VM renamed since the index last heard is shown only if its name still matches.
        let mut vms: Vec<VmSummary> = self.summaries_of(&wanted).await?.into_iter().filter(|s| matches(&s.vm.name)).collect();
        vms.sort_by(|a, b| a.vm.name.cmp(&b.vm.name));
        Ok(VmPage { vms, total })
    }

    /// [`crate::Vcenter::vm_names`], from the index (no call) when there is one.
    pub(crate) async fn names(&self) -> VcResult<Vec<String>> {
        let names = match self.index_ready().await {
            true => self.with_index(|ix| ix.vm_names()),
            false => None,
        };
        match names {
            Some(names) => Ok(names),
            None => Ok(self.list_summaries().await?.into_iter().map(|s| s.vm.name.into_string()).collect()),
        }
    }

    /// The VM (or template) called `name`, confirmed; `Err(Fallback)` when the index cannot answer.
    async fn confirmed(&self, name: &str, template: bool) -> Result<VcResult<VmRef>, Fallback> {
        // A name vCenter could not have is not worth a sync.
        if check_name(name).is_err() {
            return Ok(Err(VcError::NotFound { name: name.to_owned() }));
        }
        if !self.index_ready().await {
            return Err(Fallback);
        }
        let mut synced = false;
        let mut confirms = 0;
        loop {
            let hit = self.with_index(|ix| ix.lookup(name, template)).ok_or(Fallback)?;
            let Some(moref) = hit else {
                if synced {
                    return Ok(Err(VcError::NotFound { name: name.to_owned() }));
                }
                // Perhaps made a moment ago: look again once the index has caught up.
                if !self.sync_index().await {
                    return Err(Fallback);
                }
                synced = true;
                continue;
            };
            confirms += 1;
            let seen = match self.read_name(&moref).await {
                Ok(seen) => seen,
                Err(e) => return Ok(Err(e)),
            };
            if seen.as_ref().is_some_and(|(n, t)| n == name && *t == template) {
                return Ok(Ok(VmRef::new(moref, name)));
            }
            tracing::info!(name, moref = %moref, now = ?seen, "VM index was behind vCenter; corrected");
            self.with_index_mut(|ix| ix.correct(&moref, seen));
            if confirms >= 2 {
                return Ok(Err(VcError::Changed { name: name.to_owned() }));
            }
            if !synced {
                if !self.sync_index().await {
                    return Err(Fallback);
                }
                synced = true;
            }
        }
    }

    /// One VM's name and template flag now; None when vCenter no longer has it.
    async fn read_name(&self, moref: &str) -> VcResult<Option<(String, bool)>> {
        let obj = MoRef::new("VirtualMachine", moref);
        let read = self.read_one(&obj, super::index::INDEX_PATHS, "finding a VM").await?;
        Ok(read.and_then(|o| Some((o.text("name")?.to_owned(), o.is_template()))))
    }
}

/// The index cannot answer; read vCenter directly.
struct Fallback;
