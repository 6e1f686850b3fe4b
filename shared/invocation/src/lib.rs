//! What the gateway sends a function: the [`Invocation`] envelope (typed [`Command`], who asked,
//! where to answer) and its signature, `X-Iaas-Signature: v1=hex(HMAC-SHA256(secret,
//! "v1:<timestamp>:<body>"))` with `X-Iaas-Timestamp`. Functions trust nothing unsigned.

pub use iaas_ids::{InvocationId, RequestId, UserId, VmName};
use serde::{Deserialize, Serialize};

mod command;
pub mod commands;
mod signing;

pub use command::{Command, Confirmable, PowerAction, EXTEND_ACTION, STOP_DECOMMISSION_ACTION};
pub use commands::{Effect, Spec, COMMANDS};
pub use signing::{sign, verify, InvocationAuthError, SignedBody, MAX_SKEW_SECS, SIGNATURE_HEADER, TIMESTAMP_HEADER};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invocation {
    /// Unique per request; also the idempotency key for at-least-once delivery.
    pub id: InvocationId,
    #[serde(flatten)]
    pub command: Command,
    pub user: SlackUser,
    pub channel: SlackChannel,
    /// Where the function posts its answer; absent for scheduled or API work.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_url: Option<String>,
    /// Unix seconds when the gateway accepted the request.
    pub issued_at: i64,
    /// Who the gateway found the caller to be; signed with the rest, so functions check the
    /// same identity again against the VM they are about to touch.
    #[serde(default)]
    pub caller: Caller,
    /// The gateway's trace context (W3C `traceparent`) when traces are exported, so the
    /// function's spans join the same trace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
}

/// The caller as the directory (or the policy's Slack user list) knows them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Caller {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dn: Option<String>,
    #[serde(default)]
    pub roles: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlackUser {
    pub id: UserId,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub team_id: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlackChannel {
    pub id: String,
    #[serde(default)]
    pub name: String,
}

impl Invocation {
    /// The short form shown to users ("request 1a2b3c4d").
    pub fn short_id(&self) -> &str {
        short_id(&self.id)
    }
}

/// The last 8 characters of an id, shown to users and found in logs inside the full id. Ids are
/// UUID v7: their first digits are the time and repeat for about a minute, their last 8 are
/// random (32 bits), so the tail tells requests apart.
pub fn short_id(id: &str) -> &str {
    id.get(id.len().saturating_sub(8)..).unwrap_or(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_round_trips_with_typed_arguments() {
        let inv = Invocation {
            id: "0192f0c1-aaaa-7bbb-8ccc-000000000001".into(),
            command: Command::Power { action: PowerAction::Off, vm: "app-web-01".into() },
            user: SlackUser { id: "U1".into(), name: "ann".into(), team_id: "T1".into() },
            channel: SlackChannel { id: "C1".into(), name: "ops".into() },
            response_url: Some("https://hooks.slack.com/commands/T1/1/x".into()),
            issued_at: 1_700_000_000,
            caller: Caller { email: Some("ann@example.test".into()), dn: None, roles: vec!["users".into()] },
            traceparent: None,
        };
        let json = serde_json::to_value(&inv).unwrap();
        assert_eq!(json["command"], "power");
        assert_eq!(json["args"]["action"], "off");
        assert_eq!(json["args"]["vm"], "app-web-01");
        let back: Invocation = serde_json::from_value(json).unwrap();
        assert_eq!(back, inv);
        assert_eq!(inv.short_id(), "00000001");
    }

    #[test]
    fn short_ids_of_ids_made_together_differ() {
        let ids: Vec<String> = (0..200).map(|_| uuid::Uuid::now_v7().to_string()).collect();
        let shorts: std::collections::HashSet<&str> = ids.iter().map(|id| short_id(id)).collect();
        assert_eq!(shorts.len(), ids.len(), "{ids:?}");
        assert!(ids.iter().all(|id| id.contains(short_id(id))));
        assert_eq!(short_id("abc"), "abc");
    }

    #[test]
    fn confirmation_action_ids_round_trip() {
        for of in [Confirmable::Delete, Confirmable::Resize, Confirmable::Decommission] {
            for confirmed in [true, false] {
                assert_eq!(Confirmable::from_action_id(&of.action_id(confirmed)), Some((of, confirmed)));
            }
        }
        assert_eq!(Confirmable::from_action_id("delete.maybe"), None);
        assert_eq!(Confirmable::from_action_id("power.confirm"), None);
        let press = Command::Confirm { of: Confirmable::Delete, token: "t".into(), confirmed: true };
        assert_eq!(press.function(), "iaas-delete");
        let press = Command::from_action("decommission.confirm", "tok").unwrap();
        assert_eq!(press, Command::Confirm { of: Confirmable::Decommission, token: "tok".into(), confirmed: true });
        assert_eq!((press.function(), press.name()), ("iaas-decommission", "decommission"));
        // The Cancel button on a running request's progress message is the cancel command.
        let stop = Command::from_action(STOP_DECOMMISSION_ACTION, "abc123").unwrap();
        assert_eq!(stop, Command::DecommissionCancel { id: "abc123".into() });
        assert_eq!((stop.function(), stop.name()), ("iaas-decommission", "decommission cancel"));
    }
}
