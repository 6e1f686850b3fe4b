//! `iaas doctor`'s checks: every configured peer asked live, with the settings the runtime
//! reads (the same readers: `iaas_function::vcenter_from_env`, `iaas_access::directory_from_env`,
//! `iaas_steps::…::from_settings`, `IAAS_DISPATCH`), changing nothing. Each check is one
//! [`Check`]: what was checked, ok or not, and the fix.
//!
//! Used by the CLI (`iaas doctor`, every peer) and by the gateway for `/iaas doctor`: a process
//! checks only what its settings reach ([`Scope`]); a deployed gateway skips vCenter, DNS,
//! webhooks and the event credentials with a line saying where to run the rest.

use iaas_config::{ConfigError, DispatchTarget, Policy};
use serde::Serialize;

mod decommission;
mod dispatch;
mod peers;
mod vcenter;

pub use dispatch::{deployed_functions, lambda_functions, openfaas_functions};
pub use peers::NEEDED_SCOPES;
pub use vcenter::privileges_for;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Ok,
    Fail,
    /// Not configured or not reachable from here, so not checked; the line says why.
    Skip,
}

/// One line: the peer, the verdict, what was found (a sentence), what to do about a failure.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub peer: &'static str,
    pub verdict: Verdict,
    pub detail: String,
    /// Empty unless there is something to do.
    pub fix: String,
}

impl Check {
    pub fn ok(peer: &'static str, detail: impl Into<String>) -> Check {
        Check { peer, verdict: Verdict::Ok, detail: detail.into(), fix: String::new() }
    }
    pub fn skip(peer: &'static str, detail: impl Into<String>) -> Check {
        Check { peer, verdict: Verdict::Skip, detail: detail.into(), fix: String::new() }
    }
    pub fn fail(peer: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
        Check { peer, verdict: Verdict::Fail, detail: detail.into(), fix: fix.into() }
    }
    pub fn config(peer: &'static str, e: ConfigError) -> Check {
        Check::fail(peer, format!("{}: {}", e.name, e.problem.trim_end_matches('.')), e.fix)
    }

    /// `ok    vcenter    detail → fix`, as the CLI prints it.
    pub fn line(&self) -> String {
        let verdict = match self.verdict {
            Verdict::Ok => "ok  ",
            Verdict::Fail => "FAIL",
            Verdict::Skip => "skip",
        };
        let fix = if self.fix.is_empty() { String::new() } else { format!(" → {}", self.fix) };
        format!("{verdict}  {:<10} {}{fix}", self.peer, self.detail)
    }
}

/// Which peers this process can check: its settings decide.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scope {
    /// Every peer: `iaas doctor`, and `iaas serve` (every function runs in it).
    Everything,
    /// A deployed gateway: policy, store, directory, Slack and dispatch; vCenter, DNS,
    /// webhooks and the event credentials belong to the functions.
    #[default]
    Gateway,
}

#[derive(Debug, Clone, Default)]
pub struct Options {
    pub scope: Scope,
    /// Also look this person up in the directory by e-mail.
    pub user: Option<String>,
    /// How this process dispatches; `None` reads `IAAS_DISPATCH` (unset: local, `iaas serve`).
    pub dispatch: Option<DispatchTarget>,
}

/// Runs every check the scope allows, in a fixed order.
pub async fn run(opts: &Options) -> Vec<Check> {
    let mut checks = Vec::new();
    let policy = match iaas_config::load_policy() {
        Ok((policy, path)) => {
            checks.push(Check::ok(
                "policy",
                path.map_or("no IAAS_CONFIG: the built-in default policy".into(), |p| format!("{} read", p.display())),
            ));
            policy
        }
        Err(e) => {
            checks.push(Check::config("policy", e));
            Policy::default()
        }
    };
    checks.push(peers::store(opts.scope).await);
    let elsewhere = |peer: &'static str, what: &str| {
        Check::skip(peer, format!("{what} is checked where the functions run: `iaas doctor` with their settings"))
    };
    match opts.scope {
        Scope::Everything => checks.extend(vcenter::checks(&policy).await),
        Scope::Gateway => checks.push(elsewhere("vcenter", "vCenter")),
    }
    checks.extend(peers::directory(&policy, opts.user.as_deref()).await);
    checks.push(peers::slack().await);
    match opts.scope {
        Scope::Everything => {
            checks.push(peers::events());
            checks.extend(decommission::dns(&policy).await);
            checks.extend(decommission::webhooks(&policy).await);
        }
        Scope::Gateway => {
            checks.push(elsewhere("events", "VEBA's webhook credentials"));
            checks.push(elsewhere("dns", "DNS"));
            checks.push(elsewhere("webhook", "Each decommission webhook"));
        }
    }
    checks.extend(dispatch::checks(opts.dispatch.clone()).await);
    checks
}

/// Whether any check failed (the CLI's exit code).
pub fn failed(checks: &[Check]) -> bool {
    checks.iter().any(|c| c.verdict == Verdict::Fail)
}

/// The checks as Slack mrkdwn lines, failures first; the details hold no secrets (URLs are
/// hosts or redacted, errors are sentences).
pub fn slack_text(checks: &[Check]) -> String {
    let failures = checks.iter().filter(|c| c.verdict == Verdict::Fail).count();
    let mut text = if failures == 0 {
        "*iaas doctor*: every check passed.".to_string()
    } else {
        format!("*iaas doctor*: {failures} check(s) failed.")
    };
    let mut ordered: Vec<&Check> = checks.iter().collect();
    ordered.sort_by_key(|c| match c.verdict {
        Verdict::Fail => 0,
        Verdict::Ok => 1,
        Verdict::Skip => 2,
    });
    for c in ordered {
        let mark = match c.verdict {
            Verdict::Ok => "ok",
            Verdict::Fail => "FAIL",
            Verdict::Skip => "skip",
        };
        let fix = if c.fix.is_empty() { String::new() } else { format!(" → {}", c.fix) };
        text.push_str(&format!("\n`{mark}` *{}* {}{fix}", c.peer, c.detail));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slack_text_puts_failures_first_with_their_fix() {
        let checks = [
            Check::ok("store", "reachable"),
            Check::skip("dns", "no dns step"),
            Check::fail("vcenter", "cannot reach vc.example.test", "Check VCENTER_URL."),
        ];
        let text = slack_text(&checks);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "*iaas doctor*: 1 check(s) failed.");
        assert_eq!(lines[1], "`FAIL` *vcenter* cannot reach vc.example.test → Check VCENTER_URL.");
        assert!(lines[2].starts_with("`ok` *store*") && lines[3].starts_with("`skip` *dns*"), "{text}");
        assert!(failed(&checks));
        assert_eq!(checks[2].line(), "FAIL  vcenter    cannot reach vc.example.test → Check VCENTER_URL.");
    }
}
