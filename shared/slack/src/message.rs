//! Block Kit messages with a text fallback, as posted to a `response_url` or returned as an ack.
//! Plain serde types: the few block shapes we use don't justify a dependency.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Message {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_type: Option<String>,
    /// Fallback for notifications and clients that can't render blocks.
    pub text: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blocks: Vec<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replace_original: Option<bool>,
}

impl Message {
    /// A message whose single section block repeats the text as mrkdwn.
    pub fn new(text: impl Into<String>) -> Self {
        let text = text.into();
        Message { blocks: vec![section(&text)], text, ..Default::default() }
    }

    pub fn ephemeral(text: impl Into<String>) -> Self {
        Message::new(text).response_type("ephemeral")
    }

    pub fn response_type(mut self, kind: &str) -> Self {
        self.response_type = Some(kind.to_string());
        self
    }

    /// For answers to a button press: replace the message with the buttons, or add a new one.
    pub fn replace_original(mut self, replace: bool) -> Self {
        self.replace_original = Some(replace);
        self
    }

    pub fn with_block(mut self, block: Value) -> Self {
        self.blocks.push(block);
        self
    }

    /// Adds a small grey line under the message (request id, who asked).
    pub fn with_context(self, text: &str) -> Self {
        self.with_block(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}))
    }

    /// Everything a person would read, blocks included, as plain lines (for `iaas slash`).
    pub fn readable(&self) -> String {
        let mut lines: Vec<String> = Vec::new();
        for block in &self.blocks {
            collect_text(block, &mut lines);
        }
        if lines.is_empty() {
            lines.push(self.text.clone());
        }
        lines.join("\n")
    }
}

/// Slack caps a section's text at 3000 characters.
const SECTION_MAX_CHARS: usize = 3000;

pub fn section(mrkdwn: &str) -> Value {
    json!({"type": "section", "text": {"type": "mrkdwn", "text": section_text(mrkdwn)}})
}

fn section_text(mrkdwn: &str) -> &str {
    match mrkdwn.char_indices().nth(SECTION_MAX_CHARS) {
        Some((end, _)) => &mrkdwn[..end],
        None => mrkdwn,
    }
}

/// `Message::ephemeral(text).with_context(context)` as JSON, byte for byte what `serde_json`
/// makes of that message, written directly instead of through a tree of `Value` maps: it is
/// the gateway's ack, built once per command on Slack's 3 s clock.
pub fn ephemeral_with_context_json(text: &str, context: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 * text.len() + context.len() + 160);
    let string = |out: &mut Vec<u8>, s: &str| {
        // Writing a &str into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, s);
    };
    out.extend_from_slice(br#"{"response_type":"ephemeral","text":"#);
    string(&mut out, text);
    out.extend_from_slice(br#","blocks":[{"text":{"text":"#);
    string(&mut out, section_text(text));
    out.extend_from_slice(br#","type":"mrkdwn"},"type":"section"},{"elements":[{"text":"#);
    string(&mut out, context);
    out.extend_from_slice(br#","type":"mrkdwn"}],"type":"context"}]}"#);
    out
}

pub fn fields(pairs: &[(&str, String)]) -> Value {
    let fields: Vec<Value> = pairs
        .iter()
        .take(10) // Slack's limit per section
        .map(|(k, v)| json!({"type": "mrkdwn", "text": format!("*{k}*\n{v}")}))
        .collect();
    json!({"type": "section", "fields": fields})
}

fn collect_text(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let (Some(Value::String(kind)), Some(Value::String(text))) = (map.get("type"), map.get("text")) {
                if kind == "mrkdwn" || kind == "plain_text" {
                    out.push(text.clone());
                    return;
                }
            }
            for key in ["text", "fields", "elements"] {
                if let Some(v) = map.get(key) {
                    collect_text(v, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_text(v, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn direct_ack_json_is_the_serde_json_of_the_message() {
        let long = "é".repeat(3100);
        for (text, context) in [
            ("Accepted `power status app-web-01`. I'll answer here when it's done.", "request 01a2021e"),
            ("quotes \" and \\ backslash, <tags> & \u{1} control\n newline, ✓ unicode", "ctx \"q\""),
            ("", ""),
            (long.as_str(), "request x"),
        ] {
            let via_serde = serde_json::to_vec(&Message::ephemeral(text).with_context(context)).unwrap();
            assert_eq!(String::from_utf8(ephemeral_with_context_json(text, context)).unwrap(), String::from_utf8(via_serde).unwrap());
        }
    }
}
