//! Slack's interaction payloads (button presses), read as Slack documents them and built the
//! same way for `iaas slash --press`, the tests' Slack stand-ins and the benchmarks.
//!
//! The parts the bot reads use slack-morphism's models (`user`, `team`, `channel`, `actions`).
//! `message`, `view` and `state` are accepted and not read: parsing every Block Kit element in
//! them strictly would turn a block type a model does not know yet into a refused press.

use serde::Deserialize;
use serde_json::{json, Value};
use slack_morphism::prelude::{SlackBasicChannelInfo, SlackBasicTeamInfo, SlackBasicUserInfo, SlackInteractionActionInfo};

/// An interaction payload: a `block_actions` press, or another kind the bot does not handle
/// (shortcuts, modal submissions, …), which is acknowledged and ignored.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type")]
pub enum Interaction {
    #[serde(rename = "block_actions")]
    BlockActions(BlockActions),
    #[serde(other)]
    Other,
}

/// A `block_actions` interaction. Only the presser's id is required; unknown fields are ignored.
#[derive(Debug, Clone, Deserialize)]
pub struct BlockActions {
    pub user: SlackBasicUserInfo,
    /// `null` for an org-wide install on Enterprise Grid.
    #[serde(default)]
    pub team: Option<SlackBasicTeamInfo>,
    /// Absent for presses in a modal or App Home.
    #[serde(default)]
    pub channel: Option<SlackBasicChannelInfo>,
    #[serde(default)]
    pub container: Container,
    /// Absent for presses in a modal.
    #[serde(default)]
    pub response_url: Option<String>,
    #[serde(default)]
    pub actions: Vec<SlackInteractionActionInfo>,
}

/// Where the pressed element was. slack-morphism's container enum has no `message_attachment`
/// kind (legacy attachments), so this reads the fields directly.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Container {
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub channel_id: Option<String>,
    #[serde(default)]
    pub message_ts: Option<String>,
    #[serde(default)]
    pub is_ephemeral: bool,
}

/// Why a payload could not be read.
#[derive(Debug, thiserror::Error)]
pub enum InteractionError {
    #[error("the form has no `payload` field")]
    NoPayload,
    #[error("the payload is not an interaction: {0}")]
    Json(#[from] serde_json::Error),
}

#[derive(Deserialize)]
struct Form {
    payload: String,
}

impl Interaction {
    /// Reads the urlencoded form Slack posts to an app's interactivity Request URL.
    pub fn from_form(body: &[u8]) -> Result<Interaction, InteractionError> {
        let form: Form = serde_urlencoded::from_bytes(body).map_err(|_| InteractionError::NoPayload)?;
        Interaction::from_json(form.payload.as_bytes())
    }

    /// Reads the JSON payload itself (as Socket Mode carries it).
    pub fn from_json(json: &[u8]) -> Result<Interaction, InteractionError> {
        Ok(serde_json::from_slice(json)?)
    }
}

impl BlockActions {
    /// The presser's display name: `username` (`name` is its legacy twin, sent alongside).
    pub fn user_name(&self) -> &str {
        self.user.username.as_deref().or(self.user.name.as_deref()).unwrap_or_default()
    }

    /// The presser's workspace: the user's, else the payload's team.
    pub fn team_id(&self) -> &str {
        self.user.team_id.as_ref().or(self.team.as_ref().map(|t| &t.id)).map(|t| t.0.as_str()).unwrap_or_default()
    }

    /// The channel the press came from (`channel`, else the container's).
    pub fn channel_id(&self) -> &str {
        self.channel.as_ref().map(|c| c.id.0.as_str()).or(self.container.channel_id.as_deref()).unwrap_or_default()
    }

    pub fn channel_name(&self) -> &str {
        self.channel.as_ref().and_then(|c| c.name.as_deref()).unwrap_or_default()
    }

    /// `(action_id, value)` of each pressed element.
    pub fn pressed(&self) -> impl Iterator<Item = (&str, &str)> {
        self.actions.iter().map(|a| (a.action_id.0.as_str(), a.value.as_deref().unwrap_or_default()))
    }
}

/// Who presses, where, and what: everything to build the payload Slack would send.
#[derive(Debug, Clone)]
pub struct Press {
    pub user_id: String,
    pub user_name: String,
    pub team_id: String,
    pub team_domain: String,
    pub channel_id: String,
    pub channel_name: String,
    pub response_url: String,
    pub action_id: String,
    pub value: String,
    /// The button's label and style (`primary`, `danger`), as on the message.
    pub label: String,
    pub style: Option<String>,
    /// The message the button is on, as Slack shows it (`ts`, `text`, `blocks`); `None` for an
    /// ephemeral message, which Slack does not echo back.
    pub message: Option<Value>,
    /// Enterprise Grid: `(enterprise id, name)` and whether the app is installed org-wide.
    pub enterprise: Option<(String, String, bool)>,
}

impl Press {
    /// The `block_actions` payload in the shape Slack documents (see Slack's reference for
    /// block_actions payloads): both user name fields, `container`, `team`, `enterprise`,
    /// `state`, and `message` only for a message in the channel.
    pub fn payload(&self) -> Value {
        let message_ts = self.message.as_ref().and_then(|m| m["ts"].as_str()).unwrap_or("1733320000.000200");
        let (enterprise, is_enterprise_install) = match &self.enterprise {
            Some((id, name, org_wide)) => (json!({"id": id, "name": name}), *org_wide),
            None => (Value::Null, false),
        };
        let mut payload = json!({
            "type": "block_actions",
            "user": {"id": self.user_id, "username": self.user_name, "name": self.user_name, "team_id": self.team_id},
            "api_app_id": "A0CA5APP1",
            "token": "legacy-verification-token-not-used",
            "container": {
                "type": "message",
                "message_ts": message_ts,
                "channel_id": self.channel_id,
                "is_ephemeral": self.message.is_none(),
            },
            "trigger_id": "12466734323.1395872398.a1b2c3d4e5f6",
            "team": {"id": self.team_id, "domain": self.team_domain},
            "enterprise": enterprise,
            "is_enterprise_install": is_enterprise_install,
            "channel": {"id": self.channel_id, "name": self.channel_name},
            "state": {"values": {}},
            "response_url": self.response_url,
            "actions": [{
                "type": "button",
                "block_id": "Zp3a",
                "action_id": self.action_id,
                "text": {"type": "plain_text", "text": self.label, "emoji": true},
                "value": self.value,
                "action_ts": "1733320005.123456",
            }],
        });
        if let Some(style) = &self.style {
            payload["actions"][0]["style"] = style.clone().into();
        }
        if let Some((id, name, _)) = &self.enterprise {
            payload["team"]["enterprise_id"] = id.clone().into();
            payload["team"]["enterprise_name"] = name.clone().into();
        }
        if let Some(message) = &self.message {
            payload["message"] = message.clone();
        }
        payload
    }

    /// The urlencoded body Slack posts: one `payload` field holding the JSON.
    pub fn to_form(&self) -> String {
        form(&self.payload())
    }
}

/// The urlencoded form of an interaction payload, as Slack posts it.
pub fn form(payload: &Value) -> String {
    serde_urlencoded::to_string([("payload", payload.to_string())]).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Slack's documented example of a press on an ephemeral message
    /// (the reference's `slack-block-actions.json`).
    const DOCUMENTED: &str = include_str!("../tests/fixtures/block_actions_ephemeral.json");

    fn press() -> Press {
        Press {
            user_id: "U0CA5XYZ1".into(),
            user_name: "amy.mcgee".into(),
            team_id: "T0CAG1234".into(),
            team_domain: "acme-creamery".into(),
            channel_id: "C0CA5GEN1".into(),
            channel_name: "general".into(),
            response_url: "https://hooks.slack.com/actions/T0CAG1234/1509734234/abcdefghijklmnopqrstuvwx".into(),
            action_id: "delete.confirm".into(),
            value: "token-value-from-the-message".into(),
            label: "Delete app-web-01".into(),
            style: Some("danger".into()),
            message: None,
            enterprise: None,
        }
    }

    fn block_actions(i: Interaction) -> BlockActions {
        match i {
            Interaction::BlockActions(b) => b,
            Interaction::Other => panic!("not read as block_actions"),
        }
    }

    #[test]
    fn the_documented_payload_is_read_with_both_user_name_fields() {
        let b = block_actions(Interaction::from_json(DOCUMENTED.as_bytes()).unwrap());
        assert_eq!(b.user.id.0, "U0CA5XYZ1");
        assert_eq!(b.user_name(), "amy.mcgee");
        assert_eq!(b.team_id(), "T0CAG1234");
        assert_eq!((b.channel_id(), b.channel_name()), ("C0CA5GEN1", "general"));
        assert!(b.container.is_ephemeral);
        assert_eq!(b.response_url.as_deref(), Some("https://hooks.slack.com/actions/T0CAG1234/1509734234/abcdefghijklmnopqrstuvwx"));
        assert_eq!(b.pressed().collect::<Vec<_>>(), [("delete.confirm", "token-value-from-the-message")]);
    }

    #[test]
    fn the_builder_makes_the_documented_shape() {
        let documented: Value = serde_json::from_str(DOCUMENTED).unwrap();
        assert_eq!(press().payload(), documented);
        let form = press().to_form();
        let b = block_actions(Interaction::from_form(form.as_bytes()).unwrap());
        assert_eq!(b.pressed().next(), Some(("delete.confirm", "token-value-from-the-message")));
    }

    #[test]
    fn in_channel_enterprise_modal_and_other_kinds_are_read() {
        // In the channel: the whole message comes back, with Block Kit the bot never parses.
        let message = json!({
            "type": "message", "subtype": "bot_message", "bot_id": "B0CA5BOT1", "app_id": "A0CA5APP1", "team": "T0CAG1234",
            "user": "U0CA5BOT1", "ts": "1733320000.000300", "text": "Delete app-web-01?",
            "blocks": [
                {"type": "section", "block_id": "a1", "text": {"type": "mrkdwn", "text": "Delete *app-web-01*?", "verbatim": false}},
                {"type": "rich_text", "block_id": "r1", "elements": [{"type": "rich_text_section", "elements": [{"type": "text", "text": "x"}]}]},
                {"type": "some_future_block", "block_id": "f1"},
                {"type": "actions", "block_id": "Zp3a", "elements": [{"type": "button", "action_id": "delete.confirm", "value": "t", "text": {"type": "plain_text", "text": "Delete", "emoji": true}}]},
            ],
        });
        let in_channel = Press { message: Some(message), ..press() };
        let b = block_actions(Interaction::from_form(in_channel.to_form().as_bytes()).unwrap());
        assert!(!b.container.is_ephemeral);
        assert_eq!(b.container.message_ts.as_deref(), Some("1733320000.000300"));

        let grid = Press { enterprise: Some(("E0CAENT01".into(), "Acme Group".into(), true)), ..press() };
        let mut payload = grid.payload();
        assert_eq!(payload["is_enterprise_install"], true);
        let b = block_actions(Interaction::from_json(payload.to_string().as_bytes()).unwrap());
        assert_eq!(b.team_id(), "T0CAG1234");
        // An org-wide install may send no team at all; the user's team_id still says it.
        payload["team"] = Value::Null;
        let b = block_actions(Interaction::from_json(payload.to_string().as_bytes()).unwrap());
        assert_eq!(b.team_id(), "T0CAG1234");

        // A press in a modal: a view container, no channel, no response_url.
        let mut modal = press().payload();
        modal["container"] = json!({"type": "view", "view_id": "V0CA5VIEW"});
        modal["view"] = json!({"id": "V0CA5VIEW", "type": "modal", "blocks": [], "state": {"values": {}}});
        for key in ["channel", "response_url"] {
            modal.as_object_mut().unwrap().remove(key);
        }
        let b = block_actions(Interaction::from_json(modal.to_string().as_bytes()).unwrap());
        assert_eq!((b.channel_id(), b.response_url.as_deref()), ("", None));

        let shortcut = json!({"type": "shortcut", "callback_id": "x", "trigger_id": "t", "user": {"id": "U1"}, "team": {"id": "T1"}});
        assert!(matches!(Interaction::from_json(shortcut.to_string().as_bytes()).unwrap(), Interaction::Other));
    }

    #[test]
    fn what_is_not_an_interaction_is_an_error() {
        assert!(matches!(Interaction::from_form(b"token=x"), Err(InteractionError::NoPayload)));
        assert!(matches!(Interaction::from_form(b"payload=%7Bnot+json"), Err(InteractionError::Json(_))));
        // A press must say who pressed.
        let no_user = json!({"type": "block_actions", "actions": []});
        assert!(Interaction::from_json(no_user.to_string().as_bytes()).is_err());
    }
}
