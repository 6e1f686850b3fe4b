//! Access::rate_limit with an injected clock.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use iaas_access::{Access, AccessPolicy, IdentityPolicy, Limits};

async fn access(per_user: u32, per_command: &[(&str, u32)]) -> Access {
    let limits =
        Limits { per_user_per_minute: per_user, per_command_per_minute: per_command.iter().map(|(c, n)| (c.to_string(), *n)).collect() };
    Access::new(AccessPolicy::from_parts(IdentityPolicy::default(), BTreeMap::new(), limits), None, None).await.unwrap()
}

#[tokio::test]
async fn n_allowed_then_refused_with_a_retry_then_recovers() {
    let a = access(3, &[]).await;
    let t0 = Instant::now();
    for i in 0..3 {
        a.rate_limit("U1", "power", t0 + Duration::from_secs(i)).unwrap();
    }
    let retry = a.rate_limit("U1", "vm list", t0 + Duration::from_secs(5)).unwrap_err();
    assert_eq!(retry, 55, "the oldest call leaves the window at t0+60");
    assert!(retry > 0);
    // Other people are not affected.
    a.rate_limit("U2", "power", t0 + Duration::from_secs(5)).unwrap();
    // Refused calls are not counted; after the window it recovers one slot at a time.
    assert!(a.rate_limit("U1", "power", t0 + Duration::from_secs(59)).is_err());
    a.rate_limit("U1", "power", t0 + Duration::from_secs(60)).unwrap();
    assert_eq!(a.rate_limit("U1", "power", t0 + Duration::from_secs(60)), Err(1));
    // A full minute after the last call everything is free again.
    for i in 0..3 {
        a.rate_limit("U1", "power", t0 + Duration::from_secs(121 + i)).unwrap();
    }
}

#[tokio::test]
async fn per_command_limits_are_independent_of_the_per_user_limit() {
    let a = access(10, &[("create", 2), ("VM  List", 1)]).await;
    let t = Instant::now();
    a.rate_limit("U1", "create", t).unwrap();
    a.rate_limit("U1", "Create", t).unwrap();
    let retry = a.rate_limit("U1", "create", t).unwrap_err();
    assert_eq!(retry, 60);
    // Other commands still run, within the per-user limit.
    a.rate_limit("U1", "power", t).unwrap();
    a.rate_limit("U1", "vm list", t).unwrap();
    assert!(a.rate_limit("U1", "vm   list", t).is_err(), "names are normalized");
    // Another person's create budget is their own.
    a.rate_limit("U2", "create", t).unwrap();
    // The per-user limit caps everything: U1 has used 4 of 10.
    for _ in 0..6 {
        a.rate_limit("U1", "power", t).unwrap();
    }
    assert!(a.rate_limit("U1", "power", t).is_err());
    // A minute later both windows have recovered.
    let later = t + Duration::from_secs(60);
    a.rate_limit("U1", "create", later).unwrap();
    a.rate_limit("U1", "create", later).unwrap();
    assert!(a.rate_limit("U1", "create", later).is_err());
}
