//! Slack's v0 request signing: `v0=hex(HMAC-SHA256(secret, "v0:<ts>:<raw body>"))`.
//! Ours rather than a framework's: it must see the raw bytes and take an injected clock.

use hmac::{Hmac, Mac};
use sha2::Sha256;

pub const SIGNATURE_HEADER: &str = "x-slack-signature";
pub const TIMESTAMP_HEADER: &str = "x-slack-request-timestamp";
/// Slack's recommended replay window, both ways (clock skew).
pub const MAX_SKEW_SECS: i64 = 5 * 60;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("missing Slack signature headers")]
    MissingHeaders,
    #[error("malformed Slack timestamp")]
    BadTimestamp,
    #[error("stale or future Slack timestamp")]
    Stale,
    #[error("invalid Slack signature")]
    BadSignature,
}

fn mac(secret: &[u8], timestamp: &str, body: &[u8]) -> Hmac<Sha256> {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(b"v0:");
    mac.update(timestamp.as_bytes());
    mac.update(b":");
    mac.update(body);
    mac
}

/// The `X-Slack-Signature` value Slack would send for this body.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    format!("v0={}", hex::encode(mac(secret, &timestamp.to_string(), body).finalize().into_bytes()))
}

/// Checks both headers against the raw body at time `now` (unix seconds).
pub fn verify(secret: &[u8], timestamp: Option<&str>, signature: Option<&str>, body: &[u8], now: i64) -> Result<(), VerifyError> {
    let (Some(ts), Some(sig)) = (timestamp, signature) else {
        return Err(VerifyError::MissingHeaders);
    };
    let ts_num: i64 = ts.trim().parse().map_err(|_| VerifyError::BadTimestamp)?;
    // abs_diff cannot overflow: a timestamp near i64::MIN or MAX is simply stale.
    if now.abs_diff(ts_num) > MAX_SKEW_SECS.unsigned_abs() {
        return Err(VerifyError::Stale);
    }
    let hex_sig = sig.strip_prefix("v0=").ok_or(VerifyError::BadSignature)?;
    let raw = hex::decode(hex_sig).map_err(|_| VerifyError::BadSignature)?;
    // verify_slice compares in constant time.
    mac(secret, ts.trim(), body).verify_slice(&raw).map_err(|_| VerifyError::BadSignature)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Slack's published example (../shared/reference/README.md).
    const SECRET: &[u8] = b"8f742231b10e8888abcd99yyyzzz85a5";
    const TS: i64 = 1531420618;
    const BODY: &[u8] = b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    const SIG: &str = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";

    fn check(ts: Option<&str>, sig: Option<&str>, body: &[u8], now: i64) -> Result<(), VerifyError> {
        verify(SECRET, ts, sig, body, now)
    }

    #[test]
    fn slack_published_vector_is_accepted() {
        assert_eq!(sign(SECRET, TS, BODY), SIG);
        assert_eq!(check(Some("1531420618"), Some(SIG), BODY, TS + 10), Ok(()));
    }

    #[test]
    fn tampering_and_wrong_secret_are_rejected() {
        let mut body = BODY.to_vec();
        body[10] ^= 1;
        assert_eq!(check(Some("1531420618"), Some(SIG), &body, TS), Err(VerifyError::BadSignature));
        assert_eq!(verify(b"another-secret", Some("1531420618"), Some(SIG), BODY, TS), Err(VerifyError::BadSignature));
        // Same signature, different timestamp header: the timestamp is signed too.
        assert_eq!(check(Some("1531420619"), Some(SIG), BODY, TS), Err(VerifyError::BadSignature));
        assert_eq!(check(Some("1531420618"), Some("v1=abcd"), BODY, TS), Err(VerifyError::BadSignature));
        assert_eq!(check(Some("1531420618"), Some("v0=zz"), BODY, TS), Err(VerifyError::BadSignature));
        assert_eq!(check(Some("1531420618"), Some("v0=a2114d"), BODY, TS), Err(VerifyError::BadSignature));
    }

    #[test]
    fn stale_future_and_missing_are_rejected() {
        assert_eq!(check(Some("1531420618"), Some(SIG), BODY, TS + MAX_SKEW_SECS + 1), Err(VerifyError::Stale));
        assert_eq!(check(Some("1531420618"), Some(SIG), BODY, TS - MAX_SKEW_SECS - 1), Err(VerifyError::Stale));
        assert_eq!(check(Some("1531420618"), Some(SIG), BODY, TS + MAX_SKEW_SECS), Ok(()));
        assert_eq!(check(None, Some(SIG), BODY, TS), Err(VerifyError::MissingHeaders));
        assert_eq!(check(Some("1531420618"), None, BODY, TS), Err(VerifyError::MissingHeaders));
        assert_eq!(check(Some("yesterday"), Some(SIG), BODY, TS), Err(VerifyError::BadTimestamp));
    }

    /// Timestamps at the ends of i64 are stale, not an overflow (a panic in debug builds, a
    /// wrapped difference that could pass the window in release).
    #[test]
    fn extreme_timestamps_are_stale() {
        for (ts, now) in [(i64::MIN, TS), (i64::MAX, TS), (i64::MIN, i64::MAX), (i64::MAX, i64::MIN), (i64::MIN, 0), (TS, i64::MIN)] {
            assert_eq!(check(Some(&ts.to_string()), Some(SIG), BODY, now), Err(VerifyError::Stale), "ts {ts} now {now}");
        }
    }
}
