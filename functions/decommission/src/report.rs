//! How a request reads in Slack: progress, the summary, the status record, and list rows.

use iaas_slack::UserText;
use iaas_store::{Decommission, DecommissionDetail, DecommissionStep};

fn icon(state: &str) -> &'static str {
    match state {
        "done" => "✅",
        "running" => "⏳",
        "skipped" => "➖",
        "warning" => "⚠️",
        "failed" => "❌",
        "cancelled" => "🚫",
        _ => "◻️",
    }
}

fn time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string()).unwrap_or_default()
}

fn header(r: &Decommission) -> String {
    let mut out = format!("Decommission request `{}` by {}: *{}*", r.id, mention(&r.requester), r.state.replace('_', " "));
    if r.state == "running" && r.cancel_requested {
        out.push_str(" (cancelling)");
    }
    if !r.ticket.is_empty() {
        out.push_str(&format!(" · ticket {}", UserText(&r.ticket)));
    }
    if !r.reason.is_empty() {
        out.push_str(&format!(" · {}", UserText(&r.reason)));
    }
    out
}

/// One line per VM: each step's icon and name.
pub fn status_text(d: &DecommissionDetail) -> String {
    let mut lines = vec![header(&d.request)];
    for vm in &d.vms {
        let steps: Vec<String> = d.steps_of(vm.vm_index).map(|s| format!("{} {}", icon(&s.state), s.name)).collect();
        lines.push(format!("• *{}* ({}): {}", vm.vm_name, vm.state, steps.join(" → ")));
    }
    lines.join("\n")
}

fn step_line(s: &DecommissionStep) -> String {
    let took = match (s.started_at_ms, s.finished_at_ms) {
        (Some(a), Some(b)) => format!(" ({:.1} s)", (b - a) as f64 / 1000.0),
        (Some(a), None) => format!(" (since {})", time(a)),
        _ => String::new(),
    };
    let again = if s.attempts > 1 { format!(" · {} attempts", s.attempts) } else { String::new() };
    let warn = if s.on_failure == "warn" { " · on failure: warn" } else { "" };
    let message = if s.message.is_empty() { String::new() } else { format!(" — {}", s.message) };
    format!("    {} {} `{}` {}{took}{again}{warn}{message}", icon(&s.state), s.name, s.kind, s.state)
}

/// The full record: every step of every VM with its state, message and timing.
pub fn detail_text(d: &DecommissionDetail) -> String {
    let r = &d.request;
    let mut lines = vec![
        header(r),
        format!("Asked {}{}", time(r.created_at_ms), r.finished_at_ms.map(|f| format!(", ended {}", time(f))).unwrap_or_default()),
    ];
    for vm in &d.vms {
        lines.push(format!("• *{}* ({}, {} plan): {}", vm.vm_name, vm.vm_moref, vm.os_family, vm.state));
        lines.extend(d.steps_of(vm.vm_index).map(step_line));
    }
    lines.join("\n")
}

/// The final message: what happened, and what did not run.
pub fn summary_text(d: &DecommissionDetail) -> String {
    let r = &d.request;
    let done = d.vms.iter().filter(|v| v.state == "done").count();
    let warnings = d.steps.iter().filter(|s| s.state == "warning").count();
    let lead = match r.state.as_str() {
        "done" if warnings > 0 => {
            format!("Decommission finished for {done} of {} VMs, but {warnings} step(s) failed with a warning.", d.vms.len())
        }
        "done" => format!("Decommissioned {done} of {} VMs.", d.vms.len()),
        "cancelled" => {
            format!("Decommission cancelled: {done} of {} VMs were finished before it stopped; nothing was rolled back.", d.vms.len())
        }
        _ => format!(
            "Decommission failed for {} of {} VMs; the steps after a failure did not run.",
            d.vms.iter().filter(|v| v.state == "failed").count(),
            d.vms.len()
        ),
    };
    format!("{lead}\n{}", detail_text(d))
}

/// A requester as Slack shows them: a user id becomes a mention; the REST API's callers
/// (`api:<token>`, an e-mail) and the lease sweep (`iaas-expire`) are shown as they are.
pub fn mention(requester: &str) -> String {
    if is_slack_user(requester) {
        format!("<@{requester}>")
    } else {
        format!("`{requester}`")
    }
}

pub fn is_slack_user(id: &str) -> bool {
    id.len() >= 2 && (id.starts_with('U') || id.starts_with('W')) && id.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

pub fn list_row(r: &Decommission) -> String {
    let ticket = if r.ticket.is_empty() { String::new() } else { format!(" · {}", UserText(&r.ticket)) };
    format!(
        "• `{}` {} {} · {} · {}{ticket} · {}",
        r.id,
        icon(&r.state),
        r.state,
        r.vm_names.join(", "),
        mention(&r.requester),
        time(r.created_at_ms)
    )
}
