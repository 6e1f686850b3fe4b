//! Slack's Web API answers in the shapes Slack documents, for the tests' and benchmarks' Slack
//! stand-ins: whole objects, not the fields our code happens to read.

use serde_json::{json, Value};

/// A message the bot posted, as Slack echoes it back in `message`.
pub fn bot_message(body: &Value, ts: &str) -> Value {
    json!({
        "type": "message", "subtype": "bot_message", "bot_id": "B0E2EBOT1", "app_id": "A0E2EAPP1", "user": "U0E2EBOT1",
        "team": "T0E2E", "ts": ts, "text": body["text"], "blocks": body.get("blocks").cloned().unwrap_or_else(|| json!([])),
    })
}

/// `chat.postMessage`'s success: `ok`, `channel` (a DM lands in a `D…` channel), `ts`, `message`.
pub fn posted(body: &Value, ts: &str) -> Value {
    let to = body["channel"].as_str().unwrap_or_default();
    let channel = match to.strip_prefix('U') {
        Some(rest) => format!("D{rest}"),
        None => to.to_string(),
    };
    json!({"ok": true, "channel": channel, "ts": ts, "message": bot_message(body, ts)})
}

/// `chat.update`'s success: `ok`, `channel`, `ts`, `text`, `message`.
pub fn updated(body: &Value) -> Value {
    let ts = body["ts"].as_str().unwrap_or_default();
    json!({"ok": true, "channel": body["channel"], "ts": ts, "text": body["text"], "message": bot_message(body, ts)})
}

/// `users.info`'s success for a person: the whole user object with its profile.
pub fn user_info(id: &str, name: &str, email: Option<&str>, deleted: bool) -> Value {
    let mut profile = json!({
        "title": "", "phone": "", "skype": "", "real_name": name, "real_name_normalized": name,
        "display_name": name, "display_name_normalized": name, "status_text": "", "status_emoji": "",
        "avatar_hash": "ge3b51ca72de", "image_24": "https://a.slack-edge.com/24.png", "image_72": "https://a.slack-edge.com/72.png",
        "team": "T0E2E",
    });
    if let Some(email) = email {
        profile["email"] = email.into();
    }
    json!({"ok": true, "user": {
        "id": id, "team_id": "T0E2E", "name": name, "deleted": deleted, "color": "9f69e7", "real_name": name,
        "tz": "Europe/Berlin", "tz_label": "Central European Time", "tz_offset": 3600, "profile": profile,
        "is_admin": false, "is_owner": false, "is_primary_owner": false, "is_restricted": false, "is_ultra_restricted": false,
        "is_bot": false, "is_app_user": false, "updated": 1733320000, "has_2fa": false
    }})
}

/// A Web API error answer (`{"ok": false, "error": …}`, HTTP 200 as Slack sends it).
pub fn error(code: &str) -> Value {
    json!({"ok": false, "error": code})
}

/// `auth.test`'s success for a bot token: who the token is, in which workspace.
pub fn auth_test() -> Value {
    json!({
        "ok": true, "url": "https://e2e.slack.com/", "team": "E2E", "user": "iaas", "team_id": "T0E2E",
        "user_id": "U0E2EBOT1", "bot_id": "B0E2EBOT1", "is_enterprise_install": false,
    })
}
