//! What create, clone and deploy share: the new name's checks, placement from policy, and
//! seeing a new VM through — waiting for vCenter's task with progress, recording the owner and
//! lease on the VM and in the store, and powering it on when the policy says so.

use std::time::{Duration, Instant};

use iaas_config::Policy;
use iaas_invocation::Invocation;
use iaas_slack::Message;
use iaas_store::VmRecord;
use iaas_vsphere::{Placement, PowerOp, TaskRef, TaskStatus, VcError, VcResult, VmName, VmRef, ATTR_CREATED, ATTR_EXPIRES, ATTR_OWNER};

use crate::{progress, Context, Reply};

/// How often the user hears that a long task is still running (a response_url takes five posts).
const PROGRESS_EVERY: Duration = Duration::from_secs(30);
const MAX_PROGRESS_POSTS: u32 = 3;

/// Checks a new VM's name against the policy and vCenter, before anything changes.
pub async fn check_new_name(ctx: &Context, name: &str) -> Result<(), Reply> {
    let naming = &ctx.policy.naming;
    if name.chars().count() > naming.max_length {
        return Err(Reply::error(format!("`{name}` is longer than {} characters; choose a shorter name.", naming.max_length)));
    }
    // The policy parser already checked the pattern compiles.
    let pattern = regex_lite::Regex::new(&naming.pattern).map_err(|_| Reply::error("IT's naming rule is broken; tell IT."))?;
    if !pattern.is_match(name) {
        return Err(Reply::error(format!("`{name}` does not follow IT's naming rule (`{}`); nothing was created.", naming.pattern)));
    }
    match ctx.vcenter.find_vm(name).await {
        Ok(_) => Err(Reply::error(format!("A VM named {name} already exists; choose another name. Nothing was created."))),
        Err(VcError::NotFound { .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// The lease a new VM gets: the days asked for, or the policy default, never above the maximum.
pub fn lease_days(policy: &Policy, asked: Option<u32>) -> Result<u32, Reply> {
    match asked {
        None => Ok(policy.lease.default_days),
        Some(d) if d <= policy.lease.max_days => Ok(d),
        Some(d) => {
            Err(Reply::error(format!("{d} days is longer than IT allows ({} days at most); nothing was created.", policy.lease.max_days)))
        }
    }
}

/// Whether the policy keeps this VM out of leases (by parent folder name or name glob).
pub fn lease_excluded(policy: &Policy, name: &str, folder: Option<&str>) -> bool {
    folder.is_some_and(|f| policy.lease.exclude_folders.iter().any(|x| x == f))
        || policy.lease.exclude_names.iter().any(|p| glob::Pattern::new(p).is_ok_and(|g| g.matches(name)))
}

/// The group of `lease.exclude_owner_groups` that `owner` (a Slack user id) is in, if any.
/// `Err` when the directory or Slack could not answer: the caller decides what "unknown" means.
/// An owner the directory does not know is in no group.
pub async fn owner_excluded(ctx: &Context, owner: &str) -> Result<Option<String>, iaas_access::AccessError> {
    let groups = &ctx.policy.lease.exclude_owner_groups;
    if groups.is_empty() || owner.trim().is_empty() {
        return Ok(None);
    }
    let Some(owners) = &ctx.owners else {
        return Err(iaas_access::AccessError::DirectoryUnavailable(
            "lease.exclude_owner_groups needs the directory, and LDAP_URL is not set".into(),
        ));
    };
    let who = match owners.identify(owner).await {
        Ok(who) => who,
        Err(e) if e.is_transient() => return Err(e),
        Err(e) => {
            tracing::info!(owner, error = %e, "lease owner not in the directory; no owner-group exclusion");
            return Ok(None);
        }
    };
    Ok(groups.iter().find(|g| who.member_of(g)).cloned())
}

/// The policy's placement as vCenter takes it: a named datastore is passed on; unset,
/// `"auto"` and lists leave it to [`crate::capacity::reserve`], which picks one.
pub fn placement(policy: &Policy) -> Placement {
    let p = &policy.placement;
    Placement {
        datacenter: p.datacenter.clone(),
        folder: p.folder.clone(),
        resource_pool: p.resource_pool.clone(),
        datastore: match &p.datastore {
            iaas_config::DatastoreChoice::Named(name) => Some(name.clone()),
            _ => None,
        },
        network: p.network.clone(),
    }
}

/// A VM being made by a vCenter task.
#[derive(Clone)]
pub struct NewVm {
    pub name: VmName,
    /// What the VM came from, for the store: `create`, `clone:<vm>`, `deploy:<template>`.
    pub source: String,
    /// What the user sees while waiting, e.g. "Cloning app-web-01 into app-web-03".
    pub doing: String,
    pub lease_days: u32,
    /// What was reserved against the caller's quota; given back if the task fails.
    pub reserved: iaas_store::Usage,
}

/// Handles the answer to the call that starts a create, clone or deploy. A task is waited for
/// ([`finish`]); a refusal made nothing, so the quota goes back; no clear answer (a time-out, a
/// broken answer) may still have made the VM, so the bot looks for it by name and adopts it —
/// owner, lease, record, quota — or, when it never appears, gives the quota back and says so.
/// No VM the bot asked for is left without its owner.
pub async fn started(ctx: &Context, inv: &Invocation, new: NewVm, begun: VcResult<TaskRef>) -> Reply {
    match begun {
        Ok(task) => finish(ctx, inv, new, task).await,
        Err(e @ (VcError::Timeout { .. } | VcError::Protocol(_))) => {
            tracing::warn!(error = ?e, vm = %new.name, "no clear answer to the start; looking for the VM");
            adopt(ctx, inv, new).await
        }
        Err(e) => {
            crate::quota::release(ctx, &inv.user.id, new.reserved).await;
            crate::capacity::release(ctx, inv).await;
            e.into()
        }
    }
}

/// How often [`adopt`] looks for the VM.
const ADOPT_EVERY: Duration = Duration::from_secs(2);

/// Looks for the VM a start without a clear answer may have made, within the policy's task
/// wait; found, it gets what [`finish`] gives a VM.
async fn adopt(ctx: &Context, inv: &Invocation, new: NewVm) -> Reply {
    let bound = Duration::from_secs(ctx.policy.create.task_wait_secs);
    let started = Instant::now();
    loop {
        match ctx.vcenter.find_vm(&new.name).await {
            Ok(vm) => {
                let made = complete(ctx, inv, &vm, &new).await;
                return Reply::changed(Message::new(format!("vCenter answered late, but the VM was made. {}", made.message.text)));
            }
            Err(e) if started.elapsed() >= bound => {
                crate::quota::release(ctx, &inv.user.id, new.reserved).await;
                crate::capacity::release(ctx, inv).await;
                let text = format!(
                    "vCenter did not answer, and {} has not appeared in {} s, so it was not created; nothing is charged to your quota. Check with `/iaas vm info {}` later; IT has been told.",
                    new.name,
                    bound.as_secs(),
                    new.name
                );
                tracing::error!(vm = %new.name, error = ?e, "a VM whose start got no answer did not appear; admins told through the audit trail");
                let entry = iaas_store::AuditEntry {
                    at_ms: chrono::Utc::now().timestamp_millis(),
                    request_id: inv.id.to_string(),
                    actor: inv.user.id.to_string(),
                    command: inv.command.describe(),
                    vm: Some(new.name.to_string()),
                    stage: "vcenter".into(),
                    decision: "failed".into(),
                    reason: format!("Unknown whether {} was created: if it appears, it has no owner or lease.", new.name),
                    duration_ms: None,
                };
                crate::once::audit(&ctx.store, &entry).await;
                return Reply::error(text);
            }
            Err(_) => tokio::time::sleep(ADOPT_EVERY).await,
        }
    }
}

/// Waits for the task (with progress posts, bounded by the policy), then records ownership and
/// the lease, and powers on if the policy says so. The reply says what exists now.
pub async fn finish(ctx: &Context, inv: &Invocation, new: NewVm, task: TaskRef) -> Reply {
    match wait(ctx, inv, &new, &task).await {
        Waited::Done(vm) => complete(ctx, inv, &vm, &new).await,
        Waited::Failed(reply) => {
            crate::quota::release(ctx, &inv.user.id, new.reserved).await;
            crate::capacity::release(ctx, inv).await;
            reply
        }
        Waited::StillRunning(reply) => {
            // The function answers now; a follow-up keeps waiting and reports the result.
            tokio::spawn(follow_up(ctx.clone(), inv.clone(), new, task));
            reply
        }
    }
}

/// How long a follow-up keeps waiting for a task after the function has answered.
const FOLLOW_UP_LIMIT: Duration = Duration::from_secs(60 * 60);

/// Waits for a task that outlived the function's bound, then does what `finish` would have
/// and answers in Slack. (On Lambda a frozen instance cannot wait: there the answer points the
/// user at `/iaas vm info`, and the lease sweep still finds the VM through vCenter's events.)
async fn follow_up(ctx: Context, inv: Invocation, new: NewVm, task: TaskRef) {
    // The space stays reserved while the task runs (a wait past this lets it lapse).
    crate::capacity::extend(&ctx, &inv, FOLLOW_UP_LIMIT + Duration::from_secs(60)).await;
    let reply = match ctx.vcenter.wait_task(&task, FOLLOW_UP_LIMIT).await {
        Ok(TaskStatus::Succeeded { vm }) => {
            let vm = match vm {
                Some(vm) => Ok(vm),
                None => ctx.vcenter.find_vm(&new.name).await,
            };
            match vm {
                Ok(vm) => complete(&ctx, &inv, &vm, &new).await,
                Err(e) => e.into(),
            }
        }
        Ok(TaskStatus::Failed(e)) => {
            crate::quota::release(&ctx, &inv.user.id, new.reserved).await;
            crate::capacity::release(&ctx, &inv).await;
            Reply::error(format!("{} failed: {e}", new.doing))
        }
        Ok(TaskStatus::Running { .. }) => {
            Reply::error(format!("{} is still running in vCenter after an hour (task {}); ask IT to look at it.", new.doing, task.moref))
        }
        Err(e) => e.into(),
    };
    tracing::info!(ok = reply.ok(), task = %task.moref, "follow-up finished");
    crate::endpoint::answer(&ctx, &inv, reply).await;
}

enum Waited {
    Done(VmRef),
    Failed(Reply),
    StillRunning(Reply),
}

/// Records ownership and the lease, powers on per policy, and says what exists now.
async fn complete(ctx: &Context, inv: &Invocation, vm: &VmRef, new: &NewVm) -> Reply {
    // The VM exists: vCenter counts its disks against the datastore from now on.
    crate::capacity::release(ctx, inv).await;
    let vm = vm.clone();
    let now = chrono::Utc::now();
    let expires = now + chrono::Duration::days(i64::from(new.lease_days));
    let mut notes = Vec::new();
    let folder = ctx.vcenter.vm_details(&vm).await.ok().and_then(|d| d.folder);
    // A directory that cannot answer gives the VM its lease; the sweep asks again before acting.
    let owner_group = owner_excluded(ctx, &inv.user.id).await.unwrap_or_else(|e| {
        tracing::warn!(error = %e, "could not check the owner's groups; the VM gets a lease");
        None
    });
    let leased = !lease_excluded(&ctx.policy, &vm.name, folder.as_deref()) && owner_group.is_none();
    if leased {
        if let Err(e) = ctx
            .store
            .open_lease(&vm, &inv.user.id, now.timestamp_millis(), expires.timestamp_millis(), iaas_store::LeaseState::Active)
            .await
        {
            tracing::error!(error = %e, "could not record the lease");
            notes.push("its lease could not be recorded".to_string());
        }
    }
    let expires_attr = if leased { expires.format("%Y-%m-%d").to_string() } else { String::new() };
    for (attr, value) in [
        (ATTR_OWNER, inv.user.id.to_string()),
        (ATTR_CREATED, now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        (ATTR_EXPIRES, expires_attr),
    ] {
        if value.is_empty() {
            continue;
        }
        if let Err(e) = ctx.vcenter.set_attribute(&vm, attr, &value).await {
            tracing::error!(error = %e, attr, "could not set a custom attribute");
            notes.push(format!("the {attr} attribute could not be set ({})", crate::reply::vc_sentence(&e)));
        }
    }
    let record = VmRecord {
        vm_moref: vm.moref.clone(),
        vm_name: vm.name.clone(),
        owner_user: inv.user.id.clone(),
        owner_email: None,
        created_at_ms: now.timestamp_millis(),
        expires_at_ms: leased.then(|| expires.timestamp_millis()),
        source: new.source.clone(),
        invocation_id: inv.id.clone(),
        deleted_at_ms: None,
    };
    if let Err(e) = ctx.store.record_vm(&record).await {
        tracing::error!(error = %e, "could not record the new VM");
        notes.push("the bot's database did not record it".to_string());
    }
    let mut power = "powered off";
    if ctx.policy.create.power_on {
        match ctx.vcenter.power(&vm, PowerOp::On).await {
            Ok(()) => power = "powered on",
            Err(e) => notes.push(format!("it could not be powered on ({})", crate::reply::vc_sentence(&e))),
        }
    }
    let details = ctx.vcenter.vm_details(&vm).await.ok();
    let size = details.as_ref().map(|d| format!(" with {} vCPU and {} GB", d.summary.cpus, d.summary.memory_mb / 1024)).unwrap_or_default();
    let lease = if leased {
        format!("expires {} ({} days)", expires.format("%Y-%m-%d"), new.lease_days)
    } else if let Some(group) = &owner_group {
        format!("no expiry (your group {group} is excluded from leases)")
    } else {
        "no expiry (excluded by policy)".to_string()
    };
    let mut text = format!("*{}* is ready{size}, {power}. Owner <@{}>; {lease}.", vm.name, inv.user.id);
    if !notes.is_empty() {
        text.push_str(&format!("\nBut {}.", notes.join("; ")));
    }
    Reply::changed(Message::new(text))
}

async fn wait(ctx: &Context, inv: &Invocation, new: &NewVm, task: &TaskRef) -> Waited {
    let bound = Duration::from_secs(ctx.policy.create.task_wait_secs);
    let started = Instant::now();
    let mut posts = 0;
    loop {
        let slice = PROGRESS_EVERY.min(bound.saturating_sub(started.elapsed()));
        match ctx.vcenter.wait_task(task, slice).await {
            Ok(TaskStatus::Succeeded { vm: Some(vm) }) => return Waited::Done(vm),
            Ok(TaskStatus::Succeeded { vm: None }) => {
                return match ctx.vcenter.find_vm(&new.name).await {
                    Ok(vm) => Waited::Done(vm),
                    Err(e) => Waited::Failed(e.into()),
                }
            }
            Ok(TaskStatus::Failed(e)) => return Waited::Failed(Reply::error(format!("{} failed: {e}", new.doing))),
            Err(e) => return Waited::Failed(e.into()),
            Ok(TaskStatus::Running { percent }) if started.elapsed() >= bound => {
                let at = percent.map(|p| format!(" ({p}% done)")).unwrap_or_default();
                return Waited::StillRunning(Reply::changed(Message::new(format!(
                    "{} is still running in vCenter{at} after {} s (task {}). I'll report here when it finishes.",
                    new.doing,
                    bound.as_secs(),
                    task.moref
                ))));
            }
            Ok(TaskStatus::Running { percent }) => {
                if posts < MAX_PROGRESS_POSTS {
                    posts += 1;
                    let at = percent.map(|p| format!(": {p}% done")).unwrap_or_default();
                    progress(ctx, inv, &format!("{}{at}…", new.doing)).await;
                }
            }
        }
    }
}
