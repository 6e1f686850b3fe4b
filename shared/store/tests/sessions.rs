//! Web console sessions on both backends: found by their token's hash, idle and absolute ends,
//! logout.

#[macro_use]
mod common;

use common::Db;
use iaas_store::ConsoleSession;

test_both_backends!(a_session_lives_until_idle_expiry_or_logout);

fn session(token: &str, now: i64) -> ConsoleSession {
    ConsoleSession {
        token_sha256: token.into(),
        login: "ann@example.com".into(),
        identity_json: "{}".into(),
        csrf: "c".into(),
        created_at_ms: now,
        last_seen_ms: now,
        checked_at_ms: now,
        expires_at_ms: now + 10_000,
    }
}

async fn a_session_lives_until_idle_expiry_or_logout(db: Db) {
    let s = &db.store;
    let idle = 1_000;
    s.create_console_session(&session("a", 0), idle).await.unwrap();
    assert_eq!(s.console_session("a", 500, idle).await.unwrap().unwrap().login, "ann@example.com");
    assert_eq!(s.console_session("a", 1_400, idle).await.unwrap().unwrap().last_seen_ms, 1_400, "each use restarts the idle clock");
    assert!(s.console_session("b", 1_400, idle).await.unwrap().is_none(), "an unknown token");
    assert!(s.console_session("a", 2_400, idle).await.unwrap().is_none(), "idle too long");
    assert!(s.console_session("a", 2_500, 100_000).await.unwrap().is_none(), "and gone for good");

    s.create_console_session(&session("x", 0), 100_000).await.unwrap();
    for t in (900..10_000).step_by(900) {
        assert!(s.console_session("x", t, idle).await.unwrap().is_some());
    }
    assert!(s.console_session("x", 10_000, idle).await.unwrap().is_none(), "past its absolute end, however busy");

    s.create_console_session(&session("r", 0), idle).await.unwrap();
    s.recheck_console_session("r", r#"{"roles":[]}"#, 700).await.unwrap();
    let r = s.console_session("r", 800, idle).await.unwrap().unwrap();
    assert_eq!((r.identity_json.as_str(), r.checked_at_ms), (r#"{"roles":[]}"#, 700), "who the directory says they are now");

    s.create_console_session(&session("y", 0), idle).await.unwrap();
    s.end_console_session("y").await.unwrap();
    assert!(s.console_session("y", 1, idle).await.unwrap().is_none(), "logged out");
    s.end_console_session("y").await.unwrap();
}
