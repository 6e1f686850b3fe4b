//! `iaas`: the all-in-one server and the tools a person uses to try and run the bot.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod audit;
mod doctor;
mod expire;
mod local;
mod serve;
mod slash;
mod trigger;

#[derive(Parser)]
#[command(name = "iaas", version, about = "Self-service for VMware vSphere from Slack")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the gateway and every function in one process (demo inventory and SQLite by default).
    Serve(serve::ServeArgs),
    /// Send a slash command to a gateway exactly as Slack does, and print the answers.
    Slash(slash::SlashArgs),
    /// Print the audit trail (DATABASE_URL, default the local SQLite file).
    Audit(audit::AuditArgs),
    /// Manage VM leases and run the expiry sweep.
    #[command(subcommand)]
    Expire(expire::ExpireCmd),
    /// Run a scheduled function now, signed with IAAS_SHARED_SECRET (for cron and OpenFaaS).
    Trigger(trigger::TriggerArgs),
    /// Check every configured peer (store, vCenter, directory, Slack, events, DNS, webhooks, dispatch) and say what to fix.
    Doctor(doctor::DoctorArgs),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Cmd::Serve(args) => {
            iaas_runtime::init_tracing();
            serve::run(args).await
        }
        Cmd::Slash(args) => slash::run(args).await,
        Cmd::Audit(args) => audit::run(args).await,
        Cmd::Expire(cmd) => {
            iaas_runtime::init_tracing();
            expire::run(cmd).await
        }
        Cmd::Trigger(args) => trigger::run(args).await,
        Cmd::Doctor(args) => doctor::run(args).await,
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("iaas: {}", one_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes on one line, leaving out a cause whose text is already there (an
/// error that shows its source in its own message would otherwise print it twice).
fn one_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if line.contains(text.trim()) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(text.trim());
    }
    line.replace('\n', " ")
}

#[cfg(test)]
mod tests {
    #[derive(Debug, thiserror::Error)]
    #[error("DATABASE_URL: {0}")]
    struct Echoes(#[from] std::io::Error);

    #[test]
    fn a_cause_already_in_the_message_is_not_repeated() {
        let e = anyhow::Error::from(Echoes(std::io::Error::other("Cannot open it.")));
        assert_eq!(super::one_line(&e), "DATABASE_URL: Cannot open it.");
        let e = anyhow::Error::from(std::io::Error::other("refused")).context("cannot reach the gateway");
        assert_eq!(super::one_line(&e), "cannot reach the gateway: refused");
    }
}
