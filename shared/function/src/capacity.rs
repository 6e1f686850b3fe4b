//! Datastore headroom for new VMs (`[placement] min_free_percent`, `min_free_gb`): where a
//! create, clone or deploy may put its disks, and the space reserved for it in the store until
//! the VM exists, so two requests in flight cannot both take the last space. Also what
//! `/iaas capacity` shows.

use std::time::Duration;

use iaas_config::{DatastoreChoice, PlacementPolicy};
use iaas_invocation::Invocation;
use iaas_store::SpaceRequest;
use iaas_vsphere::{DatastoreInfo, Placement};

use crate::{Context, Reply};

const GIB: u64 = 1024 * 1024 * 1024;

/// A reservation outlives the longest a function waits before the VM exists or the request
/// fails: a start's time-out, then the task wait (or looking for the VM as long), plus slack.
/// A follow-up that waits longer extends it ([`extend`]).
fn lease(ctx: &Context) -> Duration {
    Duration::from_secs(ctx.policy.create.task_wait_secs + 2 * ctx.policy.vcenter.timeout_secs + 60)
}

/// "60 GB", "12.5 GB" (GiB, as vCenter's client shows them).
pub fn gb(bytes: u64) -> String {
    let tenths = (u128::from(bytes) * 10 / u128::from(GIB)) as u64;
    if tenths % 10 == 0 {
        format!("{} GB", tenths / 10)
    } else {
        format!("{}.{} GB", tenths / 10, tenths % 10)
    }
}

/// One datastore as the headroom weighs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Weighed {
    pub info: DatastoreInfo,
    /// Reserved for VMs being made, not yet counted by vCenter.
    pub reserved: u64,
    /// What it must keep free.
    pub headroom: u64,
    /// Whether the policy lets new VMs go there (the named one, the default one, or a candidate
    /// of `"auto"` or the list), and it is usable (accessible, not in maintenance).
    pub allowed: bool,
}

impl Weighed {
    /// What it may still give a new VM: free less reserved less headroom (negative when below).
    pub fn room(&self) -> i64 {
        let free = i128::from(self.info.free_bytes) - i128::from(self.reserved) - i128::from(self.headroom);
        free.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
    }

    /// What the store may still reserve there: free less headroom (the reservations are counted by the store).
    fn allowance(&self) -> i64 {
        (i128::from(self.info.free_bytes) - i128::from(self.headroom)).clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
    }

    fn usable(&self) -> bool {
        self.info.accessible && !self.info.maintenance
    }
}

/// The policy's placement, and every datastore it reaches, weighed, sorted by name.
pub async fn weigh(ctx: &Context) -> Result<(Placement, Vec<Weighed>), Reply> {
    let p = &ctx.policy.placement;
    let placement = crate::provision::placement(&ctx.policy);
    let storage = ctx.vcenter.placement_storage(&placement).await.map_err(Reply::from)?;
    let reserved = ctx.store.space_reserved().await.map_err(|e| {
        tracing::error!(error = %e, "could not read datastore reservations");
        Reply::error(
            "The bot's database is unreachable, so datastore space cannot be checked; nothing was changed. Please try again later.",
        )
    })?;
    let mut rows: Vec<Weighed> = storage
        .reachable
        .iter()
        .map(|d| Weighed {
            info: d.clone(),
            reserved: reserved.get(d.moref.as_str()).copied().unwrap_or(0),
            headroom: p.headroom_bytes(d.capacity_bytes),
            allowed: false,
        })
        .collect();
    if !rows.iter().any(|r| r.info.moref == storage.target.moref) {
        let d = &storage.target;
        rows.push(Weighed {
            info: d.clone(),
            reserved: reserved.get(d.moref.as_str()).copied().unwrap_or(0),
            headroom: p.headroom_bytes(d.capacity_bytes),
            allowed: false,
        });
        rows.sort_by(|a, b| a.info.name.cmp(&b.info.name));
    }
    for r in &mut rows {
        r.allowed = r.usable() && p.datastore.allows(&r.info.name, &storage.target.name);
    }
    Ok((placement, rows))
}

/// Where a new VM needing `need` bytes goes: the datastore the policy names (or the default
/// one), or with `"auto"` or a list the allowed one with the most room; its space is reserved
/// for `inv` before this returns. Refused with a sentence when no datastore keeps its headroom.
///
/// A policy with neither headroom setting and a single (or default) datastore checks nothing
/// here, as before there was a headroom: vCenter's own task refuses disks that do not fit.
pub async fn reserve(ctx: &Context, inv: &Invocation, need: u64) -> Result<Placement, Reply> {
    let policy = &ctx.policy.placement;
    if policy.describe_headroom().is_none() && !policy.datastore.picks() {
        return Ok(crate::provision::placement(&ctx.policy));
    }
    let (mut placement, mut rows) = weigh(ctx).await?;
    let mut order: Vec<usize> = (0..rows.len()).filter(|i| rows[*i].allowed).collect();
    // Most room first; by name among equals, so the choice does not depend on listing order.
    order.sort_by(|a, b| rows[*b].room().cmp(&rows[*a].room()).then(rows[*a].info.name.cmp(&rows[*b].info.name)));
    let lease_ms = lease(ctx).as_millis() as i64;
    let mut raced = false;
    for c in order.iter().map(|i| &rows[*i]) {
        if c.room() < i64::try_from(need).unwrap_or(i64::MAX) {
            continue;
        }
        let request = SpaceRequest { holder: &inv.id, datastore: &c.info.moref, bytes: need, allowance: c.allowance(), lease_ms };
        match ctx.store.reserve_space(&request).await {
            Ok(true) => {
                tracing::info!(datastore = %c.info.name, need, "datastore space reserved");
                placement.datastore = Some(c.info.name.clone());
                return Ok(placement);
            }
            // Another request took the space since it was read: the next candidate, if any.
            Ok(false) => raced = true,
            Err(e) => {
                tracing::error!(error = %e, "could not reserve datastore space");
                return Err(Reply::error(
                    "The bot's database is unreachable, so datastore space cannot be reserved; nothing was created. Please try again later.",
                ));
            }
        }
    }
    if raced {
        // Say what the store counted, not what was read before another request reserved.
        if let Ok(reserved) = ctx.store.space_reserved().await {
            for r in &mut rows {
                r.reserved = reserved.get(r.info.moref.as_str()).copied().unwrap_or(0);
            }
        }
    }
    let candidates: Vec<&Weighed> = order.iter().map(|i| &rows[*i]).collect();
    Err(refusal(policy, &rows, &candidates, need))
}

/// The sentence for a VM no allowed datastore has room for.
fn refusal(policy: &PlacementPolicy, rows: &[Weighed], candidates: &[&Weighed], need: u64) -> Reply {
    let headroom = policy.describe_headroom().map(|h| format!("IT's headroom of {h} free")).unwrap_or_else(|| "room for it".into());
    let state = |r: &Weighed| {
        let reserved = if r.reserved > 0 { format!(", {} of it reserved for VMs being made", gb(r.reserved)) } else { String::new() };
        format!("{} has {} free of {}{reserved}", r.info.name, gb(r.info.free_bytes), gb(r.info.capacity_bytes))
    };
    let text = match (&policy.datastore, candidates) {
        (DatastoreChoice::Default | DatastoreChoice::Named(_), [only]) => format!(
            "Datastore {}: this VM's disks need {}, which would leave it below {headroom} (at least {} must stay free); nothing was created. Ask IT for room.",
            state(only),
            gb(need),
            gb(only.headroom),
        ),
        (_, []) => {
            let names: Vec<String> = rows.iter().map(|r| r.info.name.clone()).collect();
            format!(
                "None of the datastores IT allows for new VMs is usable here (reached: {}); nothing was created. Ask IT to check the placement policy.",
                if names.is_empty() { "none".into() } else { names.join(", ") }
            )
        }
        (_, many) => {
            let states: Vec<String> = many.iter().map(|r| state(r)).collect();
            format!(
                "No datastore IT allows keeps {headroom} after this VM's disks ({}): {}; nothing was created. Ask IT for room.",
                gb(need),
                states.join("; ")
            )
        }
    };
    Reply::denied(text)
}

/// Gives back what `inv` reserved: the VM exists (vCenter counts it now) or the request failed.
/// An error is logged; the reservation then lapses with its lease.
pub async fn release(ctx: &Context, inv: &Invocation) {
    if let Err(e) = ctx.store.release_space(&inv.id).await {
        tracing::error!(error = %e, "could not release datastore space; it lapses with its lease");
    }
}

/// Keeps `inv`'s reservation for `how_long` more (a follow-up waiting for a long task).
pub async fn extend(ctx: &Context, inv: &Invocation, how_long: Duration) {
    if let Err(e) = ctx.store.extend_space(&inv.id, how_long.as_millis() as i64).await {
        tracing::warn!(error = %e, "could not extend a datastore space reservation");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gigabytes_read_plainly() {
        assert_eq!(gb(60 * GIB), "60 GB");
        assert_eq!(gb(GIB / 2 * 25), "12.5 GB");
        assert_eq!(gb(0), "0 GB");
    }

    fn weighed(free_gb: u64, reserved_gb: u64, headroom_gb: u64) -> Weighed {
        Weighed {
            info: DatastoreInfo {
                moref: "datastore-1".into(),
                name: "LocalDS_0".into(),
                capacity_bytes: 500 * GIB,
                free_bytes: free_gb * GIB,
                maintenance: false,
                accessible: true,
            },
            reserved: reserved_gb * GIB,
            headroom: headroom_gb * GIB,
            allowed: true,
        }
    }

    #[test]
    fn room_counts_reservations_and_headroom() {
        assert_eq!(weighed(60, 20, 30).room(), 10 * GIB as i64);
        assert_eq!(weighed(60, 0, 80).room(), -20 * GIB as i64);
        assert_eq!(weighed(60, 20, 30).allowance(), 30 * GIB as i64, "the store counts the reservations itself");
    }

    #[test]
    fn a_refusal_names_the_datastore_its_space_the_need_and_the_headroom() {
        let policy = PlacementPolicy { min_free_percent: Some(10), ..Default::default() };
        let only = weighed(60, 20, 50);
        let reply = refusal(&policy, std::slice::from_ref(&only), &[&only], 20 * GIB);
        let text = reply.message.text;
        for part in [
            "LocalDS_0 has 60 GB free of 500 GB",
            "20 GB of it reserved",
            "need 20 GB",
            "10% of its capacity",
            "50 GB",
            "nothing was created",
        ] {
            assert!(text.contains(part), "{part:?} missing from {text}");
        }
    }
}
