//! `iaas-inventory`: `/iaas vm list [pattern]`, `/iaas vm info <vm>`, `/iaas quota`, `/iaas audit`
//! and `/iaas capacity` — the reads, none of which changes anything.

use std::sync::Arc;

use axum::Router;
use iaas_function::capacity::{self, Weighed};
use iaas_function::{find_vm_details, quota, Context, Reply};
use iaas_invocation::{Command, Invocation, VmName};
use iaas_slack::message::{fields, section};
use iaas_slack::Message;
use iaas_store::AuditFilter;
use iaas_vsphere::{VmSummary, ATTR_CREATED, ATTR_EXPIRES, ATTR_OWNER};

pub const NAME: &str = "iaas-inventory";

pub fn router(ctx: Arc<Context>) -> Router {
    iaas_function::router(NAME, ctx, handle)
}

async fn handle(ctx: Arc<Context>, inv: Invocation) -> Reply {
    match inv.command.clone() {
        Command::VmList { pattern } => list(&ctx, pattern.as_deref()).await,
        Command::VmInfo { vm } => info(&ctx, &vm).await,
        Command::Audit { user, vm, since } => audit(&ctx, user, vm, since).await,
        Command::Capacity => capacity_rows(&ctx).await,
        Command::Quota => match ctx.store.quota_usage(&inv.user.id).await {
            Ok(used) => Reply::query(Message::new(format!("Your quota: {}.", quota::describe(used, quota::limits(&ctx, &inv))))),
            Err(e) => {
                tracing::error!(error = %e, "could not read quota usage");
                Reply::error("The bot's database is unreachable, so your quota cannot be shown. Please try again later.")
            }
        },
        _ => Reply::error("iaas-inventory received a command it does not run."),
    }
}

async fn list(ctx: &Context, pattern: Option<&str>) -> Reply {
    let matcher = match pattern.map(NameMatcher::new).transpose() {
        Ok(m) => m,
        Err(e) => return Reply::error(e),
    };
    let cap = ctx.policy.inventory.list_max_rows;
    // Only the rows shown are read from vCenter; the count comes with them.
    let page = match ctx.vcenter.find_vms(&move |name: &str| matcher.as_ref().is_none_or(|m| m.matches(name)), cap).await {
        Ok(page) => page,
        Err(e) => return e.into(),
    };
    let total = page.total.max(page.vms.len());
    let heading = match (pattern, total) {
        (Some(p), 0) => return Reply::query(Message::new(format!("No VM matches `{p}`."))),
        (None, 0) => return Reply::query(Message::new("There are no VMs.")),
        (Some(p), n) => format!("{n} VM{} matching `{p}`", plural(n)),
        (None, n) => format!("{n} VM{}", plural(n)),
    };
    let mut rows: Vec<String> = page.vms.iter().take(cap).map(row).collect();
    if total > rows.len() {
        rows.push(format!("…and {} more; narrow it with a pattern, e.g. `/iaas vm list app-*`.", total - rows.len()));
    }
    let text = format!("{heading}:\n{}", rows.join("\n"));
    // Each section holds at most 3000 characters: one block per chunk of rows.
    let mut message = Message { text: text.clone(), ..Message::new(format!("*{heading}*")) };
    for chunk in rows.chunks(20) {
        message = message.with_block(section(&chunk.join("\n")));
    }
    Reply::query(message)
}

fn row(s: &VmSummary) -> String {
    format!(
        "• *{}* — {} · {} · {} · {} vCPU · {}",
        s.vm.name,
        s.power_state,
        s.ip.as_deref().unwrap_or("no IP"),
        s.guest_os.as_deref().unwrap_or("unknown OS"),
        s.cpus,
        memory(s.memory_mb)
    )
}

async fn info(ctx: &Context, name: &VmName) -> Reply {
    let d = match find_vm_details(ctx, name).await {
        Ok(d) => d,
        Err(reply) => return reply,
    };
    let vm = &d.summary.vm;
    let s = &d.summary;
    let attr = |k: &str| d.attributes.get(k).cloned().unwrap_or_else(|| "—".into());
    let owner = d.attributes.get(ATTR_OWNER).map(|o| if o.starts_with('U') { format!("<@{o}>") } else { o.clone() });
    let pairs = [
        ("Power", s.power_state.to_string()),
        ("IP", s.ip.clone().unwrap_or_else(|| "—".into())),
        ("Guest OS", s.guest_os.clone().unwrap_or_else(|| "—".into())),
        ("CPU / memory", format!("{} vCPU · {}", s.cpus, memory(s.memory_mb))),
        ("Host", d.host.clone().unwrap_or_else(|| "—".into())),
        ("Datastores", if d.datastores.is_empty() { "—".into() } else { d.datastores.join(", ") }),
        ("Folder", d.folder.clone().unwrap_or_else(|| "—".into())),
        ("Owner", owner.unwrap_or_else(|| "—".into())),
        ("Created", attr(ATTR_CREATED)),
        ("Expires", attr(ATTR_EXPIRES)),
    ];
    let text = pairs.iter().map(|(k, v)| format!("{k}: {v}")).collect::<Vec<_>>().join("\n");
    let message = Message { text: format!("{} ({})\n{text}", vm.name, vm.moref), ..Message::new(format!("*{}* `{}`", vm.name, vm.moref)) }
        .with_block(fields(&pairs));
    Reply::query(message)
}

/// The newest audit entries matching the filters, newest first.
async fn audit(ctx: &Context, user: Option<String>, vm: Option<String>, since: Option<i64>) -> Reply {
    const ROWS: u32 = 30;
    let filter = AuditFilter { actor: user, vm, since_ms: since.map(|s| s * 1000) };
    let entries = match ctx.store.audit_entries(&filter, ROWS).await {
        Ok(e) => e,
        Err(e) => {
            tracing::error!(error = %e, "could not read the audit trail");
            return Reply::error("The bot's database is unreachable, so the audit trail cannot be shown. Please try again later.");
        }
    };
    if entries.is_empty() {
        return Reply::query(Message::new("No audit entries match."));
    }
    let rows: Vec<String> = entries
        .iter()
        .map(|e| {
            let at = chrono::DateTime::from_timestamp_millis(e.at_ms).map(|t| t.format("%Y-%m-%d %H:%M").to_string()).unwrap_or_default();
            format!("• {at} · <@{}> · `{}` · {} at {} — {}", e.actor, e.command, e.decision, e.stage, e.reason)
        })
        .collect();
    let heading = format!(
        "Audit trail, newest first ({} entries{}):",
        entries.len(),
        if entries.len() as u32 == ROWS { ", narrow with --user, --vm or --since" } else { "" }
    );
    let mut message = Message { text: format!("{heading}\n{}", rows.join("\n")), ..Message::new(format!("*{heading}*")) };
    for chunk in rows.chunks(15) {
        message = message.with_block(section(&chunk.join("\n")));
    }
    Reply::query(message)
}

/// Each datastore the placement reaches: capacity, free, reserved in flight, headroom, and
/// whether new VMs may go there (and why not).
async fn capacity_rows(ctx: &Context) -> Reply {
    let (_, rows) = match capacity::weigh(ctx).await {
        Ok(weighed) => weighed,
        Err(reply) => return reply,
    };
    if rows.is_empty() {
        return Reply::query(Message::new("The placement reaches no datastore."));
    }
    let policy = &ctx.policy.placement;
    let headroom = policy.describe_headroom().map_or_else(|| "none set".to_string(), |h| format!("{h} free"));
    let heading = format!("Datastores for new VMs (headroom: {headroom})");
    let lines: Vec<String> = rows.iter().map(capacity_row).collect();
    let mut message = Message { text: format!("{heading}:\n{}", lines.join("\n")), ..Message::new(format!("*{heading}*")) };
    for chunk in lines.chunks(15) {
        message = message.with_block(section(&chunk.join("\n")));
    }
    Reply::query(message)
}

fn capacity_row(r: &Weighed) -> String {
    let d = &r.info;
    let verdict = if !d.accessible {
        "no: not accessible".to_string()
    } else if d.maintenance {
        "no: in maintenance".to_string()
    } else if !r.allowed {
        "no: not a datastore the placement policy picks".to_string()
    } else if r.room() <= 0 {
        "no: at or below its headroom".to_string()
    } else {
        format!("yes, up to {} more", capacity::gb(r.room() as u64))
    };
    format!(
        "• *{}* — {} capacity · {} free · {} reserved · headroom {} · new VMs: {verdict}",
        d.name,
        capacity::gb(d.capacity_bytes),
        capacity::gb(d.free_bytes),
        capacity::gb(r.reserved),
        capacity::gb(r.headroom),
    )
}

/// `app-*` style globs when the pattern has glob characters, else a case-insensitive substring.
enum NameMatcher {
    Glob(glob::Pattern),
    Substring(String),
}

impl NameMatcher {
    fn new(pattern: &str) -> Result<NameMatcher, String> {
        if pattern.contains(['*', '?', '[']) {
            glob::Pattern::new(&pattern.to_lowercase())
                .map(NameMatcher::Glob)
                .map_err(|e| format!("`{pattern}` is not a valid pattern ({e}). Use `*` and `?`, e.g. `app-*`."))
        } else {
            Ok(NameMatcher::Substring(pattern.to_lowercase()))
        }
    }

    fn matches(&self, name: &str) -> bool {
        let name = name.to_lowercase();
        match self {
            NameMatcher::Glob(p) => p.matches(&name),
            NameMatcher::Substring(s) => name.contains(s.as_str()),
        }
    }
}

fn memory(mb: u64) -> String {
    if mb.is_multiple_of(1024) {
        format!("{} GB", mb / 1024)
    } else {
        format!("{mb} MB")
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_glob_or_substring() {
        let g = NameMatcher::new("app-*-01").unwrap();
        assert!(g.matches("app-web-01") && g.matches("APP-db-01") && !g.matches("app-web-02"));
        let s = NameMatcher::new("WEB").unwrap();
        assert!(s.matches("app-web-02") && !s.matches("app-db-01"));
        assert!(NameMatcher::new("[a").is_err());
    }
}
