//! The DNS step against a real BIND 9 (see `tests/src/bind.rs`).

#[allow(dead_code)]
#[path = "../../../tests/src/bind.rs"]
mod bind;

use std::time::Duration;

use base64::Engine;
use bind::Bind;
use iaas_steps::dns::DnsStep;
use iaas_steps::{StepOutcome, VmFacts};

fn vm() -> VmFacts {
    VmFacts {
        name: "app-web-01".into(),
        moref: "vm-42".into(),
        uuid: None,
        ip: Some("10.20.0.11".into()),
        os_family: "linux".into(),
        owner: None,
        ticket: None,
        reason: None,
    }
}

fn step(bind: &Bind) -> DnsStep {
    DnsStep {
        server: bind.addr,
        zone: bind::ZONE.into(),
        reverse_zone: Some(bind::REVERSE_ZONE.into()),
        key_name: bind.key_name.clone(),
        key_secret: base64::engine::general_purpose::STANDARD.decode(&bind.key_secret_b64).expect("tsig-keygen's secret is base64"),
        timeout: Duration::from_secs(3),
    }
}

#[tokio::test]
async fn removes_a_and_ptr_then_already_done() {
    let bind = Bind::start().await.expect("named starts");
    assert_eq!(bind.query("app-web-01.example.test.", "A").await, ["10.20.0.11"]);
    assert_eq!(bind.query("11.0.20.10.in-addr.arpa.", "PTR").await, ["app-web-01.example.test."]);

    let out = step(&bind).run(&vm()).await.expect("first run succeeds");
    assert!(matches!(out, StepOutcome::Done(_)), "{out:?}");
    assert!(bind.query("app-web-01.example.test.", "A").await.is_empty());
    assert!(bind.query("11.0.20.10.in-addr.arpa.", "PTR").await.is_empty());
    // The neighbour is untouched.
    assert_eq!(bind.query("app-db-01.example.test.", "A").await, ["10.20.0.12"]);
    assert_eq!(bind.query("12.0.20.10.in-addr.arpa.", "PTR").await, ["app-db-01.example.test."]);

    let again = step(&bind).run(&vm()).await.expect("second run succeeds");
    assert!(matches!(again, StepOutcome::AlreadyDone(_)), "{again:?}");
}

#[tokio::test]
async fn wrong_key_is_an_error_and_changes_nothing() {
    let bind = Bind::start().await.expect("named starts");
    let mut s = step(&bind);
    s.key_secret = b"this is not the key named knows!".to_vec();
    let err = s.run(&vm()).await.expect_err("a wrong key must fail");
    let msg = err.to_string();
    assert!(!msg.contains(&bind.key_secret_b64), "{msg}");
    assert_eq!(bind.query("app-web-01.example.test.", "A").await, ["10.20.0.11"]);
    assert_eq!(bind.query("11.0.20.10.in-addr.arpa.", "PTR").await, ["app-web-01.example.test."]);

    // Unknown key name: same.
    let mut s = step(&bind);
    s.key_name = "not-iaas".into();
    s.run(&vm()).await.expect_err("an unknown key must fail");
    assert_eq!(bind.query("app-web-01.example.test.", "A").await, ["10.20.0.11"]);
}

#[tokio::test]
async fn server_down_is_an_error() {
    let mut bind = Bind::start().await.expect("named starts");
    let mut s = step(&bind);
    s.timeout = Duration::from_millis(500);
    bind.stop().await;
    let err = s.run(&vm()).await.expect_err("no server, no success");
    assert!(err.to_string().contains("did not answer") || err.to_string().contains("could not"), "{err}");
}

#[tokio::test]
async fn ptr_of_a_reused_address_is_left_alone() {
    let bind = Bind::start().await.expect("named starts");
    // A VM whose recorded IP now belongs to app-db-01: its own A goes, app-db-01's PTR stays.
    let mut v = vm();
    v.ip = Some("10.20.0.12".into());
    let out = step(&bind).run(&v).await.expect("run succeeds");
    assert!(matches!(out, StepOutcome::Done(_)), "{out:?}");
    assert!(bind.query("app-web-01.example.test.", "A").await.is_empty());
    // Its A pointed at 10.20.0.11, so that PTR (which names it) went too.
    assert!(bind.query("11.0.20.10.in-addr.arpa.", "PTR").await.is_empty());
    assert_eq!(bind.query("12.0.20.10.in-addr.arpa.", "PTR").await, ["app-db-01.example.test."]);
}

#[tokio::test]
async fn bad_names_are_errors_not_panics() {
    let bind = Bind::start().await.expect("named starts");
    for name in ["", " ", "a b", "..", "app-web-01.other.test"] {
        let mut v = vm();
        v.name = name.into();
        let r = step(&bind).run(&v).await;
        assert!(r.is_err() || matches!(r, Ok(StepOutcome::AlreadyDone(_))), "{name:?}: {r:?}");
    }
}

/// `probe` proves the key on both zones and changes nothing; a wrong key or an unknown key
/// name fails it.
#[tokio::test]
async fn probe_proves_the_key_and_changes_nothing() {
    let bind = Bind::start().await.expect("named starts");
    let soa_before = bind.query("example.test.", "SOA").await;
    assert_eq!(soa_before.len(), 1, "{soa_before:?}");
    let said = step(&bind).probe().await.expect("the right key is accepted");
    assert_eq!(said.len(), 2, "{said:?}");
    assert!(said[0].contains("example.test.") && said[1].contains("20.10.in-addr.arpa."), "{said:?}");
    assert_eq!(bind.query("app-web-01.example.test.", "A").await, ["10.20.0.11"]);
    assert_eq!(bind.query("example.test.", "SOA").await, soa_before, "the zone's serial did not move: nothing was changed");

    let mut wrong = step(&bind);
    wrong.key_secret = b"this is not the key named knows!".to_vec();
    let e = wrong.probe().await.expect_err("a wrong secret is refused");
    assert!(e.0.contains("TSIG") || e.0.contains("key"), "{e}");
    let mut unknown = step(&bind);
    unknown.key_name = "someone-else".into();
    assert!(unknown.probe().await.is_err(), "an unknown key name is refused");
}
