//! What the gateway's tests share: one way to build a [`Gateway`], and an audit entry.

#![allow(dead_code)] // each test binary uses its part

use std::sync::Arc;

use iaas_config::Secret;
use iaas_gateway::{Dispatch, Gateway};
use iaas_slack::Responder;
use iaas_store::AuditEntry;

pub const SIGNING: &str = "8f742231b10e8888abcd99yyyzzz85a5";
pub const SHARED: &str = "shared-secret-for-tests";
pub const NOW: i64 = 1_700_000_000;

/// A gateway handing commands to `dispatcher`, with these secrets, its clock stopped at [`NOW`],
/// and nothing else: no roles, REST API, audit trail, replay store or Slack API. A test sets
/// what it needs on top: `Gateway { audit: …, ..gateway(dispatcher) }`.
pub fn gateway(dispatcher: Arc<dyn Dispatch>) -> Gateway {
    Gateway {
        signing_secret: Secret::new(SIGNING),
        shared_secret: Secret::new(SHARED),
        dispatcher,
        responder: Responder::new(None),
        clock: Arc::new(|| NOW),
        access: None,
        api: None,
        audit: None,
        replays: iaas_gateway::replay::Replays::new(None),
        socket: Default::default(),
        doctor: Default::default(),
    }
}

/// The gateway's `allowed` decision on a `vm list`, request `req-<i>`.
pub fn audit_entry(i: usize) -> AuditEntry {
    AuditEntry {
        at_ms: NOW * 1000,
        request_id: format!("req-{i}"),
        actor: "U1".into(),
        command: "vm list".into(),
        vm: None,
        stage: "gateway".into(),
        decision: "allowed".into(),
        reason: "handed to iaas-inventory".into(),
        duration_ms: None,
    }
}
