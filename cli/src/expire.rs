//! `iaas expire …`: the lease admin tool (like os-vm-expire's manage command). It acts as an
//! administrator on the same store and vCenter the functions use.

use std::process::ExitCode;

use anyhow::anyhow;
use chrono::{DateTime, Utc};
use iaas_config::Secret;
use iaas_expire::lease;
use iaas_function::Context;
use iaas_store::{LeaseFilter, LeaseState, UserId};
use iaas_vsphere::ATTR_EXPIRES;

#[derive(clap::Subcommand)]
pub enum ExpireCmd {
    /// Leases, soonest expiry first.
    List {
        /// Only this owner's (Slack user id).
        #[arg(long)]
        owner: Option<String>,
        /// Only those expiring within this many days.
        #[arg(long)]
        days: Option<i64>,
        /// Also deleted, closed and excluded leases.
        #[arg(long)]
        all: bool,
    },
    /// One VM's lease.
    Show { vm: String },
    /// Extend by the policy's extension period, up to its cap; never shortens.
    Extend { vm: String },
    /// Set the expiry date (YYYY-MM-DD); may shorten.
    Set { vm: String, date: String },
    /// The VM no longer expires.
    #[command(alias = "exclude")]
    Remove { vm: String },
    /// Run one sweep now: reminders, power-offs, deletions, decommission hand-overs.
    ///
    /// `--dry-run` prints what the sweep would do and changes, sends and records nothing.
    /// `--as-of` without `--dry-run` acts for real as of that time (sends the reminders due
    /// then and records them, powers off or deletes VMs), so it needs `--yes`.
    Sweep {
        /// Only print what a sweep would do: no message, no record, no vCenter change.
        #[arg(long)]
        dry_run: bool,
        /// Sweep as if it were this time (RFC 3339). Acts for real unless --dry-run; then --yes is required.
        #[arg(long)]
        as_of: Option<String>,
        /// Confirm that a sweep with --as-of acts for real.
        #[arg(long)]
        yes: bool,
    },
}

pub async fn run(cmd: ExpireCmd) -> anyhow::Result<ExitCode> {
    // Refused before connecting to anything: a rehearsal must never act by mistake.
    if let ExpireCmd::Sweep { dry_run: false, as_of: Some(_), yes: false } = &cmd {
        anyhow::bail!(
            "--as-of acts for real (reminders are sent and recorded, VMs powered off or deleted as of that time): add --dry-run to only see what it would do, or --yes to act"
        );
    }
    // The CLI invokes no function, so the shared secret is not used.
    let ctx = Context::from_env(Some(Secret::new("unused-by-the-cli"))).await?;
    let (store, vc, policy) = (&ctx.store, ctx.vcenter.as_ref(), &ctx.policy);
    match cmd {
        ExpireCmd::List { owner, days, all } => {
            let filter = LeaseFilter {
                owner: owner.map(UserId::from),
                expiring_before_ms: days.map(|d| (Utc::now() + chrono::Duration::days(d)).timestamp_millis()),
                include_finished: all,
            };
            for l in store.leases(&filter, 10_000).await? {
                println!(
                    "{:<24} {:<12} {:<12} {:<10} {}",
                    l.vm_name,
                    lease::date(l.expires_at_ms),
                    l.state.as_str(),
                    l.owner_user,
                    l.state_reason
                );
            }
        }
        ExpireCmd::Show { vm } => println!("{}", lease::describe(policy, &lease::find(store, vc, &vm).await.map_err(|e| anyhow!(e))?)),
        ExpireCmd::Extend { vm } => {
            let l = lease::find(store, vc, &vm).await.map_err(|e| anyhow!(e))?;
            let new = lease::extended_expiry(policy, &l, Utc::now()).map_err(|e| anyhow!(e))?;
            lease::set_expiry(store, vc, &l, new).await.map_err(|e| anyhow!(e))?;
            println!("{} now expires on {} (cap {}).", l.vm_name, lease::date(new), lease::date(lease::cap_ms(policy, &l)));
        }
        ExpireCmd::Set { vm, date } => {
            let l = lease::find(store, vc, &vm).await.map_err(|e| anyhow!(e))?;
            let at = lease::parse_date(&date).map_err(|e| anyhow!(e))?;
            lease::set_expiry(store, vc, &l, at).await.map_err(|e| anyhow!(e))?;
            println!("{} now expires on {}.", l.vm_name, lease::date(at));
        }
        ExpireCmd::Remove { vm } => {
            let l = lease::find(store, vc, &vm).await.map_err(|e| anyhow!(e))?;
            store.set_lease_state(&l.vm_moref, LeaseState::Excluded, "removed with the CLI", Utc::now().timestamp_millis()).await?;
            vc.set_attribute(&l.vm(), ATTR_EXPIRES, "").await?;
            println!("{} no longer expires.", l.vm_name);
        }
        ExpireCmd::Sweep { dry_run, as_of, yes: _ } => {
            let now = match as_of {
                Some(t) => DateTime::parse_from_rfc3339(&t)
                    .map_err(|_| anyhow!("--as-of {t:?} is not an RFC 3339 time like 2026-12-01T09:00:00Z"))?
                    .with_timezone(&Utc),
                None => Utc::now(),
            };
            if dry_run {
                let (planned, report) = iaas_expire::dry_run(&ctx, now).await?;
                println!("Dry run as of {}: nothing is changed, sent or recorded.", now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
                for p in planned.iter().filter(|p| p.action != iaas_expire::Action::Nothing) {
                    let owner = if p.lease.owner_user.is_empty() { "-" } else { &p.lease.owner_user };
                    println!("{:<24} {:<12} {:<12} would {}", p.lease.vm_name, owner, p.lease.state.as_str(), p.action);
                }
                println!("would: {report}");
            } else {
                let report = iaas_expire::sweep(&ctx, &ctx.slack, now).await?;
                println!("{report}");
            }
        }
    }
    ctx.vcenter.logout().await;
    Ok(ExitCode::SUCCESS)
}
