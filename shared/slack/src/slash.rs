//! The form Slack posts for a slash command.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SlashCommand {
    pub team_id: String,
    pub team_domain: String,
    pub channel_id: String,
    pub channel_name: String,
    pub user_id: String,
    pub user_name: String,
    pub command: String,
    pub text: String,
    pub response_url: String,
    pub trigger_id: String,
    pub api_app_id: String,
    /// Slack's periodic certificate check; answered with an empty 200.
    pub ssl_check: String,
}

impl SlashCommand {
    /// Parses a urlencoded form body; `None` when it is not one or lacks the user or command.
    pub fn parse(body: &[u8]) -> Option<SlashCommand> {
        let cmd: SlashCommand = serde_urlencoded::from_bytes(body).ok()?;
        (!cmd.user_id.is_empty() && !cmd.command.is_empty()).then_some(cmd)
    }

    pub fn is_ssl_check(body: &[u8]) -> bool {
        serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
            .map(|pairs| pairs.iter().any(|(k, v)| k == "ssl_check" && v == "1"))
            .unwrap_or(false)
    }

    /// The urlencoded body, as Slack would send it (used by `iaas slash` and tests).
    pub fn to_form(&self) -> String {
        serde_urlencoded::to_string(self).unwrap_or_default()
    }
}
