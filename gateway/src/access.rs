//! The first of the two access checks: who the Slack user is and whether they may run the
//! command, decided before the ack, so a denial is immediate and nothing is dispatched.

use std::time::Instant;

use iaas_access::{Access, AccessError, AccessPolicy, Decision};
use iaas_config::{ConfigError, Policy};
use iaas_invocation::{Caller, Command};

use iaas_invocation::COMMANDS;

/// The access checks the policy asks for, or `None` when it defines no roles (the embedded
/// demo default: everyone may run everything, and start-up says so).
pub async fn access_from_env(policy: &Policy) -> Result<Option<Access>, ConfigError> {
    let config_err = |e: iaas_access::AccessError| {
        ConfigError::new("IAAS_CONFIG", e.to_string(), "Fix the policy file's [identity], [roles] or [limits].")
    };
    let access_policy = AccessPolicy::from_policy(policy).map_err(config_err)?;
    if !access_policy.has_roles() {
        tracing::warn!("the policy defines no [roles]: every Slack user may run every command (demo mode)");
        return Ok(None);
    }
    let names: Vec<&str> = COMMANDS.iter().map(|c| c.name).collect();
    access_policy.check_commands(&names).map_err(config_err)?;
    let directory = iaas_access::directory_from_env()?;
    if directory.is_none() {
        tracing::info!("no LDAP_URL: roles come only from the policy's slack_users lists");
    }
    let slack = iaas_access::slack_users_from_env()?;
    let access = Access::new(access_policy, directory, slack)
        .await
        .map_err(|e| ConfigError::new("IAAS_CONFIG", e.to_string(), "Fix the policy or the directory settings (LDAP_*)."))?;
    Ok(Some(access))
}

/// Identifies the caller and checks the command and the rate limits. `Err` is the sentence
/// to show; it means nothing will run.
pub async fn authorize(access: &Access, slack_user: &str, command: &Command) -> Result<Caller, String> {
    let who = access.identify(slack_user).await.map_err(|e| {
        tracing::warn!(error = %e, slack_user, "could not identify the caller");
        refused(match &e {
            AccessError::DirectoryUnavailable(_) => "directory_unavailable",
            AccessError::SlackUnavailable(_) => "slack_unavailable",
            AccessError::UnknownUser(_) => "unknown_user",
            AccessError::Disabled(_) => "disabled",
            AccessError::Ambiguous(_) => "ambiguous",
            AccessError::Config(_) => "policy",
        });
        e.fail_closed_message()
    })?;
    if let Decision::Deny(sentence) = access.may_run(&who, command.name()) {
        refused("command_not_allowed");
        return Err(sentence);
    }
    access.rate_limit(slack_user, command.name(), Instant::now()).map_err(|secs| {
        refused("rate_limited");
        format!("You have sent many commands in the last minute; try again in {secs} s. Nothing was run.")
    })?;
    Ok(Caller { email: who.email, dn: who.dn, roles: who.roles.into_iter().collect() })
}

fn refused(reason: &'static str) {
    metrics::counter!("iaas_access_refusals_total", "stage" => "gateway", "reason" => reason).increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_policy_roles_name_real_commands() {
        let policy = Policy::parse(include_str!("../../deploy/config/iaas.example.toml")).unwrap();
        let access = AccessPolicy::from_policy(&policy).unwrap();
        assert!(access.has_roles());
        let names: Vec<&str> = COMMANDS.iter().map(|c| c.name).collect();
        access.check_commands(&names).unwrap();
        // A role naming a command the table lacks is refused.
        let typo = Policy::parse("[roles.x]\ncommands = [\"powr\"]").unwrap();
        assert!(AccessPolicy::from_policy(&typo).unwrap().check_commands(&names).is_err());
    }
}
