//! The peers every process shares: the store, the directory, Slack, and VEBA's credentials.

use iaas_config::Policy;

use crate::{Check, Scope};

/// The bot scopes the features need; `slack-manifest.yaml` asks for the same (a test compares).
pub const NEEDED_SCOPES: &[&str] = &["commands", "chat:write", "chat:write.public", "users:read", "users:read.email", "im:write"];

/// Reachable, every migration applied, a write read back (rolled back). A SQLite file that
/// is not there is said so, not created. A gateway without `DATABASE_URL` has no store.
pub(crate) async fn store(scope: Scope) -> Check {
    let url = match iaas_config::secret("DATABASE_URL") {
        Ok(Some(url)) => url.expose().to_string(),
        Ok(None) if scope == Scope::Gateway => {
            return Check::skip("store", "no DATABASE_URL: this gateway logs its decisions and the functions audit outcomes")
        }
        Ok(None) => iaas_function::DEFAULT_DATABASE_URL.to_string(),
        Err(e) => return Check::config("store", e),
    };
    if let Some(path) = iaas_function::sqlite_file(&url) {
        if !path.exists() {
            return Check::fail(
                "store",
                format!("the SQLite file {} does not exist yet", path.display()),
                "Start `iaas serve` or any function once with this DATABASE_URL: each creates and migrates it.",
            );
        }
    }
    let timeout = match iaas_store::statement_timeout_setting() {
        Ok(t) => t,
        Err(e) => return Check::config("store", e),
    };
    match iaas_store::Store::inspect(&url, timeout).await {
        Ok(pending) if pending.is_empty() => Check::ok("store", "reachable, every migration applied, a write read back"),
        Ok(pending) => Check::fail(
            "store",
            format!("{} migration(s) not applied: {}", pending.len(), pending.join(", ")),
            "Start `iaas serve` or any function once with this DATABASE_URL: each applies them at start-up.",
        ),
        Err(e) => Check::fail("store", e.to_string(), ""),
    }
}

/// A search as the service account, every group the roles name, and `--user` when given.
pub(crate) async fn directory(policy: &Policy, user: Option<&str>) -> Vec<Check> {
    let dir = match iaas_access::directory_from_env() {
        Ok(Some(dir)) => dir,
        Ok(None) => return vec![Check::skip("directory", "no LDAP_URL: roles come only from the policy's slack_users lists")],
        Err(e) => return vec![Check::config("directory", e)],
    };
    // A mail no one has: "no such user" proves the bind and the search work.
    match dir.find_user_by_mail("iaas-doctor-probe@invalid").await {
        Ok(_) | Err(iaas_directory::DirectoryError::NoSuchUser { .. }) => {}
        Err(e) => {
            return vec![Check::fail("directory", e.to_string(), "Check LDAP_URL, LDAP_BIND_DN, LDAP_BIND_PASSWORD and LDAP_BASE_DN.")]
        }
    }
    let mut checks = vec![Check::ok("directory", format!("{}: the service account binds and searches", dir.config().url))];
    for (role, groups) in role_groups(policy) {
        for dn in groups {
            checks.push(match dir.resolve_group(&dn).await {
                Ok(_) => Check::ok("directory", format!("role {role}: group {dn} found")),
                Err(e) => Check::fail("directory", format!("role {role}: {e}"), "Fix the DN in the policy's [roles] or create the group."),
            });
        }
    }
    if let Some(mail) = user {
        checks.push(match dir.find_user_by_mail(mail).await {
            Ok(found) => match dir.groups_of(&found).await {
                Ok(groups) => Check::ok("directory", format!("{mail} is {} in {} group(s)", found.dn, groups.len())),
                Err(e) => Check::fail("directory", format!("{mail}: {e}"), ""),
            },
            Err(e) => Check::fail("directory", format!("{mail}: {e}"), "Check the address, and that the account is enabled."),
        });
    }
    checks
}

/// Each role's `groups`, as the policy spells them.
fn role_groups(policy: &Policy) -> Vec<(String, Vec<String>)> {
    policy
        .roles
        .iter()
        .map(|(name, role)| {
            let groups = role.get("groups").and_then(|g| g.as_array());
            (name.clone(), groups.into_iter().flatten().filter_map(|v| v.as_str()).map(|s| s.trim().to_string()).collect())
        })
        .collect()
}

/// `auth.test` with the bot token, and the scopes Slack says it has (`x-oauth-scopes`).
pub(crate) async fn slack() -> Check {
    let token = match iaas_config::secret("SLACK_BOT_TOKEN") {
        Ok(Some(token)) => token,
        Ok(None) => return Check::skip("slack", "no SLACK_BOT_TOKEN: no reminders, notices, progress messages or users.info look-ups"),
        Err(e) => return Check::config("slack", e),
    };
    let base = iaas_config::var("SLACK_API_URL").unwrap_or_else(|| "https://slack.com/api".into());
    let url = format!("{}/auth.test", base.trim_end_matches('/'));
    let client = reqwest::Client::builder().timeout(std::time::Duration::from_secs(10)).redirect(reqwest::redirect::Policy::none()).build();
    let response = match client {
        Ok(client) => client.post(&url).bearer_auth(token.expose()).send().await,
        Err(e) => return Check::fail("slack", format!("no HTTP client: {e}"), ""),
    };
    let response = match response {
        Ok(r) => r,
        Err(e) => {
            return Check::fail(
                "slack",
                format!("{} did not answer ({})", host(&url), e.without_url()),
                "Check the network and SLACK_API_URL.",
            )
        }
    };
    let scopes: Vec<String> = response
        .headers()
        .get("x-oauth-scopes")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect())
        .unwrap_or_default();
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    if body["ok"].as_bool() != Some(true) {
        let error = body["error"].as_str().unwrap_or("an answer that is not Slack's");
        return Check::fail(
            "slack",
            format!("auth.test answered {error}"),
            "Check SLACK_BOT_TOKEN: the app's Bot User OAuth Token (xoxb-…).",
        );
    }
    let missing: Vec<&str> = NEEDED_SCOPES.iter().copied().filter(|s| !scopes.iter().any(|have| have == s)).collect();
    let who = format!("bot {} in {}", body["user"].as_str().unwrap_or("?"), body["team"].as_str().unwrap_or("?"));
    if missing.is_empty() {
        Check::ok("slack", format!("{who}, with every scope the features need"))
    } else {
        Check::fail(
            "slack",
            format!("{who} lacks the scope(s) {}", missing.join(", ")),
            "Add them from slack-manifest.yaml and reinstall the app.",
        )
    }
}

/// The host of a URL, for sentences (never the whole URL: it may carry a token).
fn host(url: &str) -> String {
    reqwest::Url::parse(url).ok().and_then(|u| u.host_str().map(str::to_string)).unwrap_or_else(|| "Slack".into())
}

/// The event functions refuse every event without credentials for VEBA's webhook.
pub(crate) fn events() -> Check {
    // A secret file that cannot be read is a failure to name, not "not set".
    let (token, password) = match (iaas_config::secret("IAAS_EVENTS_TOKEN"), iaas_config::secret("IAAS_EVENTS_PASSWORD")) {
        (Ok(token), Ok(password)) => (token, password),
        (Err(e), _) | (_, Err(e)) => return Check::config("events", e),
    };
    let basic = iaas_config::var("IAAS_EVENTS_USER").is_some() && password.is_some();
    if token.is_some() || basic {
        Check::ok("events", "VEBA's webhook credentials are set")
    } else {
        Check::skip(
            "events",
            "neither IAAS_EVENTS_TOKEN nor IAAS_EVENTS_USER/IAAS_EVENTS_PASSWORD is set: the event functions refuse every event",
        )
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn needed_scopes_match_the_manifest() {
        let manifest = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../slack-manifest.yaml")).unwrap();
        let bot = manifest.split("    bot:\n").nth(1).expect("the manifest lists bot scopes");
        let listed: Vec<&str> = bot
            .lines()
            .take_while(|l| l.trim_start().starts_with("- "))
            .map(|l| l.trim_start().trim_start_matches("- ").split_whitespace().next().unwrap())
            .collect();
        assert_eq!(listed, super::NEEDED_SCOPES);
    }
}
