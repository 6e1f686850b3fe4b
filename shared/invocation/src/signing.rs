//! Gateway → function trust: an HMAC over `v1:<timestamp>:<body>` with the shared secret,
//! a timestamp window, and a constant-time compare.

use hmac::{Hmac, Mac};
use sha2::Sha256;

pub const SIGNATURE_HEADER: &str = "x-iaas-signature";
pub const TIMESTAMP_HEADER: &str = "x-iaas-timestamp";
/// Queues (OpenFaaS/NATS, Lambda's event queue and its retries) may hold an invocation before
/// delivery; 30 minutes is also how long Slack's response_url lives. Replays inside the window
/// are harmless: functions act once per invocation id.
pub const MAX_SKEW_SECS: i64 = 30 * 60;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvocationAuthError {
    #[error("missing invocation signature headers")]
    Missing,
    #[error("malformed invocation timestamp")]
    BadTimestamp,
    #[error("stale or future invocation timestamp")]
    Stale,
    #[error("invalid invocation signature")]
    BadSignature,
}

/// A body with its signature headers, ready to send.
#[derive(Debug, Clone)]
pub struct SignedBody {
    pub body: bytes::Bytes,
    pub timestamp: i64,
    pub signature: String,
}

fn mac(secret: &[u8], timestamp: &str, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(b"v1:");
    mac.update(timestamp.as_bytes());
    mac.update(b":");
    mac.update(body);
    mac
}

pub fn sign(secret: &[u8], timestamp: i64, body: impl Into<bytes::Bytes>) -> SignedBody {
    let body = body.into();
    let signature = format!("v1={}", hex::encode(mac(secret, &timestamp.to_string(), &body).finalize().into_bytes()));
    SignedBody { body, timestamp, signature }
}

pub fn verify(secret: &[u8], timestamp: Option<&str>, signature: Option<&str>, body: &[u8], now: i64) -> Result<(), InvocationAuthError> {
    let (Some(ts), Some(sig)) = (timestamp, signature) else {
        return Err(InvocationAuthError::Missing);
    };
    let ts_num: i64 = ts.trim().parse().map_err(|_| InvocationAuthError::BadTimestamp)?;
    // abs_diff cannot overflow: a timestamp near i64::MIN or MAX is simply stale.
    if now.abs_diff(ts_num) > MAX_SKEW_SECS.unsigned_abs() {
        return Err(InvocationAuthError::Stale);
    }
    let raw = sig.strip_prefix("v1=").and_then(|h| hex::decode(h).ok()).ok_or(InvocationAuthError::BadSignature)?;
    mac(secret, ts.trim(), body).verify_slice(&raw).map_err(|_| InvocationAuthError::BadSignature)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_body_verifies_and_tampering_does_not() {
        let s = sign(b"k", 1000, &b"{\"a\":1}"[..]);
        let ts = s.timestamp.to_string();
        assert_eq!(verify(b"k", Some(&ts), Some(&s.signature), &s.body, 1000), Ok(()));
        assert_eq!(verify(b"k", Some(&ts), Some(&s.signature), b"{\"a\":2}", 1000), Err(InvocationAuthError::BadSignature));
        assert_eq!(verify(b"other", Some(&ts), Some(&s.signature), &s.body, 1000), Err(InvocationAuthError::BadSignature));
        assert_eq!(verify(b"k", Some("1001"), Some(&s.signature), &s.body, 1000), Err(InvocationAuthError::BadSignature));
        assert_eq!(verify(b"k", Some(&ts), Some(&s.signature), &s.body, 1000 + MAX_SKEW_SECS + 1), Err(InvocationAuthError::Stale));
        assert_eq!(verify(b"k", None, Some(&s.signature), &s.body, 1000), Err(InvocationAuthError::Missing));
        assert_eq!(verify(b"k", Some(&ts), Some("v0=00"), &s.body, 1000), Err(InvocationAuthError::BadSignature));
    }

    /// Timestamps at the ends of i64 are stale, not an overflow.
    #[test]
    fn extreme_timestamps_are_stale() {
        for (ts, now) in [(i64::MIN, 1000), (i64::MAX, 1000), (i64::MIN, i64::MAX), (i64::MAX, i64::MIN), (1000, i64::MIN)] {
            let s = sign(b"k", ts, &b"{}"[..]);
            assert_eq!(
                verify(b"k", Some(&ts.to_string()), Some(&s.signature), &s.body, now),
                Err(InvocationAuthError::Stale),
                "ts {ts} now {now}"
            );
        }
    }
}
