//! The directory and Slack's `users.info` from the environment, for every process that must
//! know who a Slack user is (the gateway; the lease sweep for owner groups).

use std::path::PathBuf;

use iaas_config::ConfigError;
use iaas_directory::{Directory, DirectoryConfig};

use crate::SlackUsers;

/// The directory when `LDAP_URL` is set (`LDAP_BIND_DN`, `LDAP_BIND_PASSWORD[_FILE]`,
/// `LDAP_BASE_DN`, `LDAP_CA_FILE`, `LDAP_STARTTLS`). Nothing is contacted here.
pub fn directory_from_env() -> Result<Option<Directory>, ConfigError> {
    let Some(url) = iaas_config::var("LDAP_URL") else {
        return Ok(None);
    };
    let required = |name: &str, fix: &str| iaas_config::var(name).ok_or_else(|| ConfigError::new(name, "is not set", fix));
    let mut config = DirectoryConfig::new(
        url,
        required("LDAP_BIND_DN", "Set the service account's DN, e.g. cn=svc-iaas,ou=services,dc=example,dc=com.")?,
        iaas_config::required_secret("LDAP_BIND_PASSWORD")?.expose(),
        required("LDAP_BASE_DN", "Set where users are searched, e.g. dc=example,dc=com.")?,
    );
    config.ca_file = iaas_config::var("LDAP_CA_FILE").map(PathBuf::from);
    config.starttls = iaas_config::bool_var("LDAP_STARTTLS")?;
    let directory = Directory::new(config).map_err(|e| ConfigError::new("LDAP_URL", e.to_string(), "Check the LDAP_* settings."))?;
    Ok(Some(directory))
}

/// Slack's `users.info` (e-mail addresses of Slack users) when `SLACK_BOT_TOKEN` is set, at
/// `SLACK_API_URL` or Slack's own.
pub fn slack_users_from_env() -> Result<Option<SlackUsers>, ConfigError> {
    let Some(token) = iaas_config::secret("SLACK_BOT_TOKEN")? else {
        return Ok(None);
    };
    let base = iaas_config::var("SLACK_API_URL").unwrap_or_else(|| SlackUsers::DEFAULT_BASE_URL.to_string());
    let users = SlackUsers::new(base, token)
        .map_err(|e| ConfigError::new("SLACK_API_URL", e.to_string(), "Set SLACK_API_URL to Slack's API base URL."))?;
    Ok(Some(users))
}
