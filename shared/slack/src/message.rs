//! Block Kit messages with a text fallback, as posted to a `response_url` or returned as an ack.
//! Plain serde types: the few block shapes we use don't justify a dependency.
//!
//! Every message leaves the bot made safe by [`neutralize`], applied when it is serialized (the
//! one way out): user-supplied text (a decommission reason, a VM name typed in a command, a
//! did-you-mean echo) can never make the bot say `@channel`, `@here`, ping a user group or
//! show a link whose label hides where it goes. The only markup that survives is what the bot
//! writes itself: a mention of a user or channel by its id.

use std::borrow::Cow;

use serde::{Deserialize, Serialize, Serializer};
use serde_json::{json, Value};

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
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
            lines.push(unescape(&self.text).into_owned());
        }
        lines.join("\n")
    }
}

/// The message as Slack gets it: `text` and every `mrkdwn` text in its blocks neutralized.
impl Serialize for Message {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Wire<'a> {
            #[serde(skip_serializing_if = "Option::is_none")]
            response_type: &'a Option<String>,
            text: Cow<'a, str>,
            #[serde(skip_serializing_if = "Vec::is_empty")]
            blocks: Vec<Cow<'a, Value>>,
            #[serde(skip_serializing_if = "Option::is_none")]
            replace_original: Option<bool>,
        }
        Wire {
            response_type: &self.response_type,
            text: neutralize(&self.text),
            blocks: self.blocks.iter().map(safe_block).collect(),
            replace_original: self.replace_original,
        }
        .serialize(serializer)
    }
}

/// A block with each `mrkdwn` text neutralized; borrowed when nothing needed it.
fn safe_block(block: &Value) -> Cow<'_, Value> {
    fn needs(value: &Value) -> bool {
        match value {
            Value::Object(map) => {
                let mrkdwn = map.get("type").and_then(Value::as_str) == Some("mrkdwn");
                map.iter().any(|(k, v)| match (k.as_str(), v) {
                    ("text", Value::String(t)) if mrkdwn => matches!(neutralize(t), Cow::Owned(_)),
                    _ => needs(v),
                })
            }
            Value::Array(items) => items.iter().any(needs),
            _ => false,
        }
    }
    fn fix(value: &mut Value) {
        match value {
            Value::Object(map) => {
                let mrkdwn = map.get("type").and_then(Value::as_str) == Some("mrkdwn");
                for (k, v) in map.iter_mut() {
                    match v {
                        Value::String(t) if mrkdwn && k == "text" => {
                            if let Cow::Owned(safe) = neutralize(t) {
                                *t = safe;
                            }
                        }
                        _ => fix(v),
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(fix),
            _ => {}
        }
    }
    if !needs(block) {
        return Cow::Borrowed(block);
    }
    let mut owned = block.clone();
    fix(&mut owned);
    Cow::Owned(owned)
}

/// Slack's three control characters escaped (`&` → `&amp;`, `<` → `&lt;`, `>` → `&gt;`): text
/// shown exactly as typed, never read as markup, mentions included. For user-supplied text the
/// bot places in a message ([`neutralize`] then leaves it alone).
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.contains(['&', '<', '>']) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// User-supplied text in a message: `Display` writes it [`escape`]d, so
/// `format!("reason: {}", UserText(reason))` cannot carry markup.
#[derive(Debug, Clone, Copy)]
pub struct UserText<'a>(pub &'a str);

impl std::fmt::Display for UserText<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&escape(self.0))
    }
}

/// Makes mrkdwn safe for the bot to post: every `&`, `<` and `>` is escaped except the markup
/// the bot writes itself — a mention of a user (`<@U…>`, `<@W…>`) or channel (`<#C…>`) by a
/// well-formed id, without a label — and the three entities already escaped, so applying it
/// twice changes nothing. `<!channel>`, `<!here>`, `<!subteam^…>` and `<url|label>` links never
/// survive, whoever wrote them.
pub fn neutralize(text: &str) -> Cow<'_, str> {
    if !text.contains(['&', '<', '>']) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        let kept = match c {
            '<' => bot_markup(rest),
            '&' => ["&amp;", "&lt;", "&gt;"].into_iter().find(|e| rest.starts_with(e)).map(str::len),
            _ => None,
        };
        if let Some(len) = kept {
            out.push_str(&rest[..len]);
            rest = &rest[len..];
            continue;
        }
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
        rest = &rest[c.len_utf8()..];
    }
    if out == text {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(out)
    }
}

/// The length of a bot mention at the start of `s` (`<@U0123ABC>`, `<#C0123ABC>`), if one is.
fn bot_markup(s: &str) -> Option<usize> {
    let kinds: &[u8] = match s.as_bytes().get(1)? {
        b'@' => b"UW",
        b'#' => b"C",
        _ => return None,
    };
    let body = &s[2..];
    let end = body.find('>')?;
    let id = &body[..end];
    let well_formed = (2..=24).contains(&id.len())
        && kinds.contains(&id.as_bytes()[0])
        && id.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
    well_formed.then_some(2 + end + 1)
}

/// Slack's entities back to characters, for reading a message outside Slack (`iaas slash`).
fn unescape(text: &str) -> Cow<'_, str> {
    if !text.contains('&') {
        return Cow::Borrowed(text);
    }
    Cow::Owned(text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&"))
}

/// Slack caps a section's text at 3000 characters.
const SECTION_MAX_CHARS: usize = 3000;

pub fn section(mrkdwn: &str) -> Value {
    json!({"type": "section", "text": {"type": "mrkdwn", "text": section_text(mrkdwn)}})
}

/// The text neutralized, then cut to Slack's limit — never inside an entity or a mention, which
/// would come out longer when neutralized again on the way out.
fn section_text(mrkdwn: &str) -> Cow<'_, str> {
    let safe = neutralize(mrkdwn);
    let Some((end, _)) = safe.char_indices().nth(SECTION_MAX_CHARS) else { return safe };
    let mut cut = &safe[..end];
    if let Some(open) = cut.rfind(['&', '<']) {
        if !cut[open..].contains([';', '>']) {
            cut = &cut[..open];
        }
    }
    Cow::Owned(cut.to_string())
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
    string(&mut out, &neutralize(text));
    out.extend_from_slice(br#","blocks":[{"text":{"text":"#);
    string(&mut out, &section_text(text));
    out.extend_from_slice(br#","type":"mrkdwn"},"type":"section"},{"elements":[{"text":"#);
    string(&mut out, &neutralize(context));
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
                    out.push(unescape(text).into_owned());
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

    const HOSTILE: &str =
        "<!channel> urgent <https://evil.example/login|re-authenticate here> <!here> <!subteam^S1|@admins> <@U0BOSS|boss> a&b <b>";

    #[test]
    fn broadcasts_and_disguised_links_are_escaped_and_bot_mentions_kept() {
        let safe = neutralize(HOSTILE);
        for gone in ["<!channel>", "<!here>", "<!subteam", "<https://", "<@U0BOSS|", "<b>"] {
            assert!(!safe.contains(gone), "{gone:?} survived: {safe}");
        }
        assert!(safe.starts_with("&lt;!channel&gt; urgent &lt;https://evil.example/login|re-authenticate here&gt;"), "{safe}");
        assert!(safe.contains("a&amp;b"), "{safe}");
        let bot = "Owner <@U0123ABC>, see <#C0456DEF>; asked by <@W0789>. 1 &lt; 2 &amp; 3 &gt; 2";
        assert_eq!(neutralize(bot), bot, "the bot's own mentions and escaped entities stay");
        for text in [HOSTILE, bot, "<", "&", "<@", "<@U1", "<@u123>", "<#C>", "&amp", "é<é>é"] {
            assert_eq!(neutralize(&neutralize(text)), neutralize(text), "twice changes nothing: {text:?}");
        }
        assert_eq!(escape("<@U0123ABC> & <!here>"), "&lt;@U0123ABC&gt; &amp; &lt;!here&gt;");
        assert_eq!(format!("reason: {}", UserText("<!channel>")), "reason: &lt;!channel&gt;");
    }

    /// Whatever builds the message — `new`, a raw block, fields, a context line, a struct
    /// literal — what goes out is neutralized, and reads back as typed.
    #[test]
    fn every_text_is_neutralized_on_the_way_out() {
        let message = Message::new(format!("Decommission requested: {HOSTILE}"))
            .with_context(HOSTILE)
            .with_block(fields(&[("Reason", HOSTILE.to_string())]))
            .with_block(json!({"type": "actions", "elements": [{"type": "button", "value": "<tok>",
                "confirm": {"text": {"type": "mrkdwn", "text": HOSTILE}}}]}));
        let literal = Message { text: HOSTILE.into(), ..Default::default() };
        for m in [&message, &literal] {
            let wire = serde_json::to_string(m).unwrap();
            for gone in ["<!channel>", "<!here>", "<https://"] {
                assert!(!wire.contains(gone), "{gone:?} went out: {wire}");
            }
            let back: Message = serde_json::from_str(&wire).unwrap();
            assert_eq!(serde_json::to_string(&back).unwrap(), wire, "a message read back goes out unchanged");
            assert!(back.readable().contains("<!channel> urgent"), "{}", back.readable());
        }
        assert!(serde_json::to_string(&message).unwrap().contains(r#""value":"<tok>""#), "only mrkdwn text is touched");
        let ack = String::from_utf8(ephemeral_with_context_json(HOSTILE, HOSTILE)).unwrap();
        assert!(!ack.contains("<!channel>") && !ack.contains("<https://"), "{ack}");
    }

    #[test]
    fn a_long_section_is_cut_outside_entities() {
        let text = "<".repeat(2999) + "tail";
        let cut = section_text(&text);
        assert_eq!(cut.chars().count() % 4, 0, "whole entities only");
        assert!(cut.chars().count() <= SECTION_MAX_CHARS);
        assert_eq!(neutralize(&cut), cut);
    }
}
