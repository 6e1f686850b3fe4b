//! Invocations as the gateway hands them to a function, for tests that play the gateway.

use std::time::{SystemTime, UNIX_EPOCH};

use iaas_invocation::{Command, Invocation, SlackChannel, SlackUser};

/// Invocation `id` of `command`, asked by Slack user U1 in channel C1 and issued now, as the
/// JSON body the gateway signs (`iaas_invocation::sign`); the function answers on
/// `response_url`, when given.
pub fn encoded(id: &str, command: Command, response_url: Option<&str>) -> Vec<u8> {
    serde_json::to_vec(&Invocation {
        id: id.into(),
        command,
        user: SlackUser { id: "U1".into(), ..Default::default() },
        channel: SlackChannel { id: "C1".into(), ..Default::default() },
        response_url: response_url.map(str::to_string),
        issued_at: SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64),
        caller: Default::default(),
        traceparent: None,
    })
    .expect("an invocation encodes")
}
