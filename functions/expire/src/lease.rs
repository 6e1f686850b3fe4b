//! The lease rules, shared by Slack, the CLI and the sweep: extend never shortens and stops at
//! the cap; the date on the VM's `iaas.expires` attribute always follows the store.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use iaas_config::Policy;
use iaas_store::{Lease, LeaseState, Store, StoreError};
use iaas_vsphere::{VcError, Vcenter, ATTR_EXPIRES};

/// Why a lease change was refused, as a sentence.
pub type Refusal = String;

pub fn date(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms).map(|t| t.format("%Y-%m-%d").to_string()).unwrap_or_default()
}

/// The latest a lease can be extended to: creation + `max_total_days`.
pub fn cap_ms(policy: &Policy, lease: &Lease) -> i64 {
    lease.created_at_ms + Duration::days(i64::from(policy.lease.max_total_days)).num_milliseconds()
}

/// The new expiry for an extension at `now`, or why there is none.
pub fn extended_expiry(policy: &Policy, lease: &Lease, now: DateTime<Utc>) -> Result<i64, Refusal> {
    let cap = cap_ms(policy, lease);
    let wanted = (now + Duration::days(i64::from(policy.lease.extend_days))).timestamp_millis().min(cap);
    if wanted <= lease.expires_at_ms {
        return Err(if lease.expires_at_ms >= cap {
            format!(
                "{} already expires on {}, the latest IT allows (created {} + {} days); it cannot be extended further.",
                lease.vm_name,
                date(lease.expires_at_ms),
                date(lease.created_at_ms),
                policy.lease.max_total_days
            )
        } else {
            format!(
                "{} already expires on {}, later than an extension would give; nothing was changed.",
                lease.vm_name,
                date(lease.expires_at_ms)
            )
        });
    }
    Ok(wanted)
}

/// Moves the lease to `expires_at_ms` in the store and on the VM.
pub async fn set_expiry(store: &Store, vc: &dyn Vcenter, lease: &Lease, expires_at_ms: i64) -> Result<(), String> {
    store.set_lease_expiry(&lease.vm_moref, expires_at_ms).await.map_err(|e| e.to_string())?;
    let vm = lease.vm();
    match vc.set_attribute(&vm, ATTR_EXPIRES, &date(expires_at_ms)).await {
        Ok(()) => Ok(()),
        Err(e) => Err(format!("the lease was changed, but the VM's {ATTR_EXPIRES} attribute could not be set ({e})")),
    }
}

/// The lease of the VM with this name (found in vCenter, then by moref in the store).
pub async fn find(store: &Store, vc: &dyn Vcenter, name: &str) -> Result<Lease, Refusal> {
    let vm = match vc.find_vm(name).await {
        Ok(vm) => vm,
        Err(VcError::NotFound { .. }) => return Err(format!("No VM named {name}.")),
        Err(e) => return Err(e.to_string()),
    };
    match store.lease(&vm.moref).await {
        Ok(Some(lease)) => Ok(lease),
        Ok(None) => Err(format!("{name} has no lease: it does not expire.")),
        Err(e) => Err(db(e)),
    }
}

pub fn db(e: StoreError) -> String {
    tracing::error!(error = %e, "store failed");
    "The bot's database is unreachable; nothing was changed. Please try again later.".to_string()
}

/// One line about a lease, for show and list.
pub fn describe(policy: &Policy, lease: &Lease) -> String {
    let what = match lease.state {
        LeaseState::Active => format!("expires {}", date(lease.expires_at_ms)),
        LeaseState::PoweredOff => {
            format!("expired {}, powered off; deleted after {} days unless extended", date(lease.expires_at_ms), policy.lease.grace_days)
        }
        LeaseState::Held => format!("expires {}, held: {}", date(lease.expires_at_ms), lease.state_reason),
        LeaseState::Deleted => "deleted on expiry".into(),
        LeaseState::Deleting => format!("expired {}, being deleted", date(lease.expires_at_ms)),
        LeaseState::Excluded => "does not expire".into(),
        LeaseState::Closed => "closed (the VM is gone)".into(),
        LeaseState::Decommissioning => {
            format!("expired {}, handed to decommission request `{}`", date(lease.expires_at_ms), lease.state_reason)
        }
    };
    let owner = if lease.owner_user.is_empty() { "no owner".to_string() } else { format!("<@{}>", lease.owner_user) };
    format!("*{}* {what} · {owner} · can be extended up to {}", lease.vm_name, date(cap_ms(policy, lease)))
}

/// `YYYY-MM-DD` at the end of that day, UTC.
pub fn parse_date(text: &str) -> Result<i64, Refusal> {
    let d = NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| format!("`{text}` is not a date like 2026-12-31."))?;
    Ok(d.and_hms_opt(23, 59, 59).map(|t| t.and_utc().timestamp_millis()).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(created: DateTime<Utc>, expires: DateTime<Utc>) -> Lease {
        Lease {
            vm_moref: "vm-1".into(),
            vm_name: "web".into(),
            owner_user: "U1".into(),
            created_at_ms: created.timestamp_millis(),
            expires_at_ms: expires.timestamp_millis(),
            state: LeaseState::Active,
            state_reason: String::new(),
            powered_off_at_ms: None,
        }
    }

    #[test]
    fn extend_never_shortens_and_stops_at_the_cap() {
        let policy = Policy::default(); // extend 30 days, cap 180 days after creation
        let t0 = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        // Expiring in 5 days: extends to now + 30.
        let l = lease(t0, t0 + Duration::days(5));
        assert_eq!(extended_expiry(&policy, &l, t0).unwrap(), (t0 + Duration::days(30)).timestamp_millis());
        // Expiring in 60 days: an extension would shorten it, so it is refused.
        let l = lease(t0, t0 + Duration::days(60));
        assert!(extended_expiry(&policy, &l, t0).unwrap_err().contains("later than an extension would give"));
        // Near the cap: extends only to the cap, then refuses.
        let l = lease(t0, t0 + Duration::days(170));
        let now = t0 + Duration::days(165);
        assert_eq!(extended_expiry(&policy, &l, now).unwrap(), cap_ms(&policy, &l));
        let l = lease(t0, t0 + Duration::days(180));
        assert!(extended_expiry(&policy, &l, now).unwrap_err().contains("cannot be extended further"));
    }
}
