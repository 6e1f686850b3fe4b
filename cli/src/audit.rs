//! `iaas audit`: the audit trail from the store, for operators at a shell.

use std::process::ExitCode;

use anyhow::Context as _;
use iaas_store::{AuditFilter, Store};

#[derive(clap::Args)]
pub struct AuditArgs {
    /// Only this Slack user id.
    #[arg(long)]
    user: Option<String>,
    /// Only this VM.
    #[arg(long)]
    vm: Option<String>,
    /// Only entries since this RFC 3339 time or date (e.g. 2026-11-01).
    #[arg(long)]
    since: Option<String>,
    /// At most this many entries, newest first.
    #[arg(long, default_value_t = 50)]
    limit: u32,
}

pub async fn run(args: AuditArgs) -> anyhow::Result<ExitCode> {
    let url = iaas_config::secret("DATABASE_URL")?
        .map(|s| s.expose().to_string())
        .unwrap_or_else(|| iaas_function::DEFAULT_DATABASE_URL.to_string());
    let store = Store::connect(&url).await?;
    let since_ms = args.since.as_deref().map(parse_since).transpose()?;
    let entries = store.audit_entries(&AuditFilter { actor: args.user, vm: args.vm, since_ms }, args.limit).await?;
    for e in &entries {
        let at = chrono::DateTime::from_timestamp_millis(e.at_ms)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .unwrap_or_default();
        let took = e.duration_ms.map(|d| format!(" ({d} ms)")).unwrap_or_default();
        println!(
            "{at}  {:<10} {:<8} {:<14} {}  [{}]{took} {}",
            e.actor,
            e.decision,
            e.stage,
            e.command,
            iaas_invocation::short_id(&e.request_id),
            e.reason
        );
    }
    if entries.is_empty() {
        eprintln!("no audit entries match");
    }
    Ok(ExitCode::SUCCESS)
}

fn parse_since(text: &str) -> anyhow::Result<i64> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(t.timestamp_millis());
    }
    let date = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .with_context(|| format!("--since {text:?} is not an RFC 3339 time or a YYYY-MM-DD date"))?;
    Ok(date.and_hms_opt(0, 0, 0).map(|d| d.and_utc().timestamp_millis()).unwrap_or_default())
}
