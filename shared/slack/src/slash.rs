//! The form Slack posts for a slash command.
//!
//! The gateway reads this form once per command on Slack's 3 s clock, so it is decoded here by a
//! small single-pass `application/x-www-form-urlencoded` reader (the WHATWG rules `serde_urlencoded`
//! follows: `&`-separated, first `=` splits, `+` is a space, bad `%` escapes stay as they are,
//! invalid UTF-8 becomes U+FFFD) instead of serde's generic map machinery. The tests check it
//! against `serde_urlencoded` on awkward bodies.

use std::borrow::Cow;

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
    /// Slack's periodic certificate check; answered with an empty 200. Commands carry none.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub ssl_check: String,
}

impl SlashCommand {
    /// Parses a urlencoded form body; `None` when it is not one, names a field twice, or lacks
    /// the user or command. Fields we do not use (`token`, …) are skipped without decoding.
    pub fn parse(body: &[u8]) -> Option<SlashCommand> {
        let mut cmd = SlashCommand::default();
        let mut seen = 0u16;
        for (key, value) in pairs(body) {
            let key = decode(key);
            let (bit, field) = match &*key {
                "team_id" => (0, &mut cmd.team_id),
                "team_domain" => (1, &mut cmd.team_domain),
                "channel_id" => (2, &mut cmd.channel_id),
                "channel_name" => (3, &mut cmd.channel_name),
                "user_id" => (4, &mut cmd.user_id),
                "user_name" => (5, &mut cmd.user_name),
                "command" => (6, &mut cmd.command),
                "text" => (7, &mut cmd.text),
                "response_url" => (8, &mut cmd.response_url),
                "trigger_id" => (9, &mut cmd.trigger_id),
                "api_app_id" => (10, &mut cmd.api_app_id),
                "ssl_check" => (11, &mut cmd.ssl_check),
                _ => continue,
            };
            // serde refuses a duplicate field; so do we (Slack never sends one).
            if seen & (1 << bit) != 0 {
                return None;
            }
            seen |= 1 << bit;
            *field = decode(value).into_owned();
        }
        (!cmd.user_id.is_empty() && !cmd.command.is_empty()).then_some(cmd)
    }

    /// Whether the body is Slack's `ssl_check=1`; reads the raw bytes without allocating for a
    /// body whose field names are plain (Slack's always are).
    pub fn is_ssl_check(body: &[u8]) -> bool {
        pairs(body).any(|(k, v)| decodes_to(k, "ssl_check") && decodes_to(v, "1"))
    }

    /// The urlencoded body, as Slack would send it (used by `iaas slash` and tests).
    pub fn to_form(&self) -> String {
        serde_urlencoded::to_string(self).unwrap_or_default()
    }
}

/// The raw `name=value` pieces of a form body; empty pieces are skipped, a piece without `=`
/// has an empty value.
fn pairs(body: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    body.split(|&b| b == b'&').filter(|p| !p.is_empty()).map(|p| match p.iter().position(|&b| b == b'=') {
        Some(i) => (&p[..i], &p[i + 1..]),
        None => (p, &p[p.len()..]),
    })
}

/// Whether `raw` decodes to `want`, comparing bytes when there is nothing to decode.
fn decodes_to(raw: &[u8], want: &str) -> bool {
    if raw == want.as_bytes() {
        return true;
    }
    // Escapes only make a piece shorter; without them it decodes to itself.
    raw.len() > want.len() && raw.iter().any(|&b| b == b'%' || b == b'+') && decode(raw) == want
}

/// One form-urlencoded name or value: `+` → space, `%XX` → byte (a malformed escape is kept
/// literally), then UTF-8 with invalid sequences replaced. Borrows when nothing needs decoding.
fn decode(raw: &[u8]) -> Cow<'_, str> {
    if !raw.iter().any(|&b| b == b'%' || b == b'+') {
        return match std::str::from_utf8(raw) {
            Ok(s) => Cow::Borrowed(s),
            Err(_) => String::from_utf8_lossy(raw),
        };
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'+' => out.push(b' '),
            b'%' => match (raw.get(i + 1).and_then(|&h| hex(h)), raw.get(i + 2).and_then(|&l| hex(l))) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    match String::from_utf8(out) {
        Ok(s) => Cow::Owned(s),
        Err(e) => Cow::Owned(String::from_utf8_lossy(e.as_bytes()).into_owned()),
    }
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SLACK: &[u8] = b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=power+off+app-web-01&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";

    /// The reference: what serde_urlencoded (used before) makes of the same body.
    fn serde(body: &[u8]) -> Option<SlashCommand> {
        let cmd: SlashCommand = serde_urlencoded::from_bytes(body).ok()?;
        (!cmd.user_id.is_empty() && !cmd.command.is_empty()).then_some(cmd)
    }

    fn serde_ssl_check(body: &[u8]) -> bool {
        serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
            .map(|pairs| pairs.iter().any(|(k, v)| k == "ssl_check" && v == "1"))
            .unwrap_or(false)
    }

    #[test]
    fn slack_form_is_read() {
        let cmd = SlashCommand::parse(SLACK).unwrap();
        assert_eq!(cmd.user_id, "U2CERLKJA");
        assert_eq!(cmd.command, "/webhook-collect");
        assert_eq!(cmd.text, "power off app-web-01");
        assert_eq!(cmd.response_url, "https://hooks.slack.com/commands/T1DC2JH3J/397700885554/96rGlfmibIGlgcZRskXaIFfN");
        assert!(!SlashCommand::is_ssl_check(SLACK));
        assert_eq!(SlashCommand::parse(cmd.to_form().as_bytes()), Some(cmd));
    }

    #[test]
    fn same_as_serde_urlencoded_on_awkward_bodies() {
        let bodies: &[&[u8]] = &[
            SLACK,
            b"",
            b"&&&",
            b"user_id=U1&command=%2Fiaas",
            b"user_id=U1&command=/iaas&text=a%2",
            b"user_id=U1&command=/iaas&text=%zz%41%4",
            b"user_id=U1&command=/iaas&text=%E2%9C%93+ok%20done",
            b"user_id=U1&command=/iaas&text=%FF%FEbad+utf8",
            b"user_id=U1&command=/iaas&text=\xff\xfe",
            b"user_id=U1&command=/iaas&text=a=b=c&=x&novalue",
            b"user%5Fid=U1&command=/iaas&te+xt=x",
            b"user_id=&command=/iaas",
            b"user_id=U1",
            b"user_id=U1&command=/iaas&user_id=U2",
            b"user_id=U1&command=/iaas&token=a&token=b",
            b"user_id=U1&command=/iaas&ssl_check=1",
            b"ssl_check=1&token=x",
            b"ssl%5Fcheck=%31",
            b"ssl_check=1+",
            b"ssl_check",
            b"not a form at all",
        ];
        for body in bodies {
            let shown = String::from_utf8_lossy(body);
            assert_eq!(SlashCommand::parse(body), serde(body), "parse {shown:?}");
            assert_eq!(SlashCommand::is_ssl_check(body), serde_ssl_check(body), "ssl_check {shown:?}");
        }
        assert!(SlashCommand::is_ssl_check(b"ssl_check=1&token=x"));
        assert!(SlashCommand::is_ssl_check(b"ssl%5Fcheck=%31"));
        assert_eq!(SlashCommand::parse(b"user_id=U1&command=/iaas&user_id=U2"), None, "a duplicate field is refused");
    }
}
