//! The TOML policy file (`IAAS_CONFIG`). `deploy/config/iaas.example.toml` documents every key;
//! a test parses it so the example cannot drift from the code.

use std::path::Path;

use serde::Deserialize;

use crate::ConfigError;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Policy {
    pub slack: SlackPolicy,
    pub vcenter: VcenterPolicy,
    pub inventory: InventoryPolicy,
}

/// How answers appear in the channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseType {
    InChannel,
    Ephemeral,
}

impl ResponseType {
    pub fn as_str(self) -> &'static str {
        match self {
            ResponseType::InChannel => "in_channel",
            ResponseType::Ephemeral => "ephemeral",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SlackPolicy {
    /// Answers to commands that changed something (power, …).
    pub response_type_changes: ResponseType,
    /// Answers to queries (list, info, status). Errors are always ephemeral.
    pub response_type_queries: ResponseType,
}

impl Default for SlackPolicy {
    fn default() -> Self {
        SlackPolicy { response_type_changes: ResponseType::InChannel, response_type_queries: ResponseType::Ephemeral }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VcenterPolicy {
    /// Bound on each vCenter call and on waiting for a task.
    pub timeout_secs: u64,
}

impl Default for VcenterPolicy {
    fn default() -> Self {
        VcenterPolicy { timeout_secs: 30 }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InventoryPolicy {
    /// `/iaas vm list` shows at most this many rows and says how many more matched.
    pub list_max_rows: usize,
}

impl Default for InventoryPolicy {
    fn default() -> Self {
        InventoryPolicy { list_max_rows: 50 }
    }
}

impl Policy {
    pub fn load(path: &Path) -> Result<Policy, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigError::new("IAAS_CONFIG", format!("cannot read {}: {e}", path.display()), "Point IAAS_CONFIG at a readable TOML policy file.")
        })?;
        Policy::parse(&text).map_err(|e| {
            ConfigError::new("IAAS_CONFIG", format!("{} is not a valid policy: {e}", path.display()), "See deploy/config/iaas.example.toml for every key.")
        })
    }

    pub fn parse(text: &str) -> Result<Policy, String> {
        let policy: Policy = toml::from_str(text).map_err(|e| e.message().to_string())?;
        if policy.vcenter.timeout_secs == 0 {
            return Err("vcenter.timeout_secs must be at least 1".into());
        }
        if policy.inventory.list_max_rows == 0 {
            return Err("inventory.list_max_rows must be at least 1".into());
        }
        Ok(policy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_policy_parses() {
        let text = include_str!("../../../deploy/config/iaas.example.toml");
        Policy::parse(text).expect("deploy/config/iaas.example.toml must stay a valid policy");
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused() {
        assert!(Policy::parse("[vcenter]\ntimeout = 3").unwrap_err().contains("unknown field"));
        assert!(Policy::parse("[vcenter]\ntimeout_secs = 0").is_err());
        assert!(Policy::parse("[slack]\nresponse_type_changes = \"loud\"").is_err());
        let p = Policy::parse("[slack]\nresponse_type_changes = \"ephemeral\"").unwrap();
        assert_eq!(p.slack.response_type_changes, ResponseType::Ephemeral);
        assert_eq!(p.vcenter.timeout_secs, 30);
    }
}
