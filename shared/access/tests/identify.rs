//! Access::identify and the decisions built on it, against a real OpenLDAP (one throwaway slapd
//! per test, seeded from tests/slapd/seed.ldif) and a local HTTP receiver standing in for Slack's
//! users.info. Needs Debian's slapd and ldap-utils.
//!
//! Seed people: ann (iaas-users), bob (ops-team ⊂ platform ⊂ iaas-admins), dave (disabled, in
//! iaas-users), erin (no group).

#[allow(dead_code)]
#[path = "../../../tests/src/slapd.rs"]
mod slapd;

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use iaas_access::{Access, AccessError, AccessPolicy, Decision, SlackUsers, FAIL_CLOSED_MESSAGE};
use iaas_config::Secret;
use iaas_directory::{Directory, DirectoryConfig};
use serde_json::json;
use slapd::Slapd;

const TOKEN: &str = "xoxb-test-token";

// ---- a stand-in for Slack's users.info ------------------------------------------------------

#[derive(Clone, Default)]
struct FakeSlack {
    calls: Arc<Mutex<Vec<String>>>,
}

impl FakeSlack {
    fn calls(&self, user: &str) -> usize {
        self.calls.lock().unwrap().iter().filter(|u| *u == user).count()
    }
    fn total(&self) -> usize {
        self.calls.lock().unwrap().len()
    }
}

fn profile(id: &str, email: &str, deleted: bool) -> Response {
    Json(json!({
        "ok": true,
        "user": { "id": id, "deleted": deleted, "is_bot": false, "profile": { "email": email } }
    }))
    .into_response()
}

fn rate_limited(secs: u64) -> Response {
    (StatusCode::TOO_MANY_REQUESTS, [("retry-after", secs.to_string())], Json(json!({"ok": false, "error": "ratelimited"}))).into_response()
}

async fn users_info(State(fake): State<FakeSlack>, headers: HeaderMap, Query(q): Query<HashMap<String, String>>) -> Response {
    let user = q.get("user").cloned().unwrap_or_default();
    let nth = {
        let mut calls = fake.calls.lock().unwrap();
        calls.push(user.clone());
        calls.iter().filter(|u| **u == user).count()
    };
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("");
    if auth != format!("Bearer {TOKEN}") {
        return Json(json!({"ok": false, "error": "invalid_auth"})).into_response();
    }
    match user.as_str() {
        "U0ANN" => profile("U0ANN", "ann@example.test", false),
        "U0BOB" => profile("U0BOB", "bob@example.test", false),
        "U0ERIN" => profile("U0ERIN", "erin@example.test", false),
        // Deactivated in Slack, though the directory account is fine.
        "U0GONE" => profile("U0GONE", "ann@example.test", true),
        "U0NOMAIL" => Json(json!({"ok": true, "user": {"id": "U0NOMAIL", "profile": {}}})).into_response(),
        "U0RATE" if nth == 1 => rate_limited(0),
        "U0RATE" => profile("U0RATE", "ann@example.test", false),
        "U0RATE2" => rate_limited(0),
        "U0RATELONG" => rate_limited(30),
        "U0FLAKY" if nth == 1 => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        "U0FLAKY" => profile("U0FLAKY", "ann@example.test", false),
        "U0SLOW" => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            profile("U0SLOW", "ann@example.test", false)
        }
        _ => Json(json!({"ok": false, "error": "user_not_found"})).into_response(),
    }
}

async fn fake_slack() -> (FakeSlack, SocketAddr) {
    let fake = FakeSlack::default();
    let app = Router::new().route("/api/users.info", get(users_info)).with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (fake, addr)
}

fn slack_client(addr: SocketAddr, token: &str) -> SlackUsers {
    SlackUsers::new(format!("http://{addr}/api"), Secret::new(token)).unwrap()
}

// ---- policy and directory -------------------------------------------------------------------

const POLICY: &str = r#"
[identity]
cache_ttl_secs = 300
[identity.slack_users]
U0STATIC = "ann@example.test"
U0ERINS = "erin@example.test"
U0DAVE = "dave@example.test"
U0GHOST = "ghost@example.test"

[roles.users]
groups = ["cn=iaas-users,ou=groups,dc=example,dc=test"]
commands = ["power", "vm list", "vm info", "create", "clone", "deploy", "resize", "delete"]
scope = "owned"
folders = ["Sandbox"]
quota = { vms = 5, cpus = 16, memory_gb = 64 }

[roles.admins]
groups = ["cn=iaas-admins,ou=groups,dc=example,dc=test"]
commands = ["*"]
scope = "all"
"#;

fn policy() -> AccessPolicy {
    toml::from_str(POLICY).unwrap()
}

fn directory_at(url: &str) -> Directory {
    let mut cfg = DirectoryConfig::new(url, slapd::SVC_DN, slapd::SVC_PASSWORD, slapd::BASE_DN);
    cfg.connect_timeout = Duration::from_secs(5);
    cfg.op_timeout = Duration::from_secs(10);
    Directory::new(cfg).unwrap()
}

struct World {
    slapd: Slapd,
    fake: FakeSlack,
    access: Access,
}

async fn world_with(policy: AccessPolicy) -> World {
    let slapd = Slapd::start_seeded().await.expect("slapd starts");
    let (fake, addr) = fake_slack().await;
    let access = Access::new(policy, Some(directory_at(&slapd.url)), Some(slack_client(addr, TOKEN))).await.expect("access builds");
    World { slapd, fake, access }
}

async fn world() -> World {
    world_with(policy()).await
}

fn roles(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

fn denied(d: Decision) -> String {
    match d {
        Decision::Deny(why) => why,
        Decision::Allow => panic!("expected a denial"),
    }
}

// ---- tests ----------------------------------------------------------------------------------

#[tokio::test]
async fn ann_is_a_user_through_her_group_and_acts_on_her_own_vms() {
    let w = world().await;
    let ann = w.access.identify("U0ANN").await.unwrap();
    assert_eq!(ann.slack_user, "U0ANN");
    assert_eq!(ann.email.as_deref(), Some("ann@example.test"));
    assert_eq!(ann.dn.as_deref(), Some("uid=ann,ou=people,dc=example,dc=test"));
    assert_eq!(ann.roles, roles(&["users"]));
    assert_eq!(w.fake.calls("U0ANN"), 1);

    assert!(w.access.may_run(&ann, "power").is_allowed());
    assert!(w.access.may_run(&ann, "vm list").is_allowed());
    assert_eq!(
        denied(w.access.may_run(&ann, "scale")),
        "You may not run `scale`: ask IT for the `admins` role (the directory group iaas-admins)."
    );
    // Her own VM, anywhere.
    assert!(w.access.may_touch(&ann, Some("U0ANN"), Some("Prod")).is_allowed());
    // Someone else's VM outside her folders: a sentence.
    assert_eq!(
        denied(w.access.may_touch(&ann, Some("U0BOB"), Some("Prod"))),
        "You may act only on VMs you own and on VMs in the folder `Sandbox`, and this VM belongs to someone else. Ask its owner, or IT."
    );
    // Someone else's VM in an allowed folder.
    assert!(w.access.may_touch(&ann, Some("U0BOB"), Some("Sandbox")).is_allowed());
    assert_eq!(w.access.quota(&ann).vms, Some(5));
}

#[tokio::test]
async fn bob_is_an_admin_through_three_levels_of_nesting() {
    let w = world().await;
    let bob = w.access.identify("U0BOB").await.unwrap();
    assert_eq!(bob.roles, roles(&["admins"]));
    for c in ["power", "delete", "resize", "scale", "anything new"] {
        assert!(w.access.may_run(&bob, c).is_allowed(), "{c}");
    }
    assert!(w.access.may_touch(&bob, Some("U0ANN"), Some("Prod")).is_allowed());
    assert!(w.access.may_touch(&bob, None, None).is_allowed());
    assert_eq!(w.access.quota(&bob).vms, None);
}

#[tokio::test]
async fn a_person_in_no_group_has_no_roles_and_is_refused() {
    let w = world().await;
    for id in ["U0ERIN", "U0ERINS"] {
        let erin = w.access.identify(id).await.unwrap();
        assert_eq!(erin.dn.as_deref(), Some("uid=erin,ou=people,dc=example,dc=test"));
        assert!(erin.roles.is_empty());
        assert_eq!(
            denied(w.access.may_run(&erin, "power")),
            "You have no iaas role, so you may not run `power`: ask IT for the `users` role (the directory group iaas-users)."
        );
        assert!(!w.access.may_touch(&erin, Some(id), None).is_allowed());
    }
}

#[tokio::test]
async fn disabled_and_unknown_directory_accounts_are_refused() {
    let w = world().await;
    let err = w.access.identify("U0DAVE").await.unwrap_err();
    assert!(matches!(&err, AccessError::Disabled(s) if s.contains("disabled")), "{err:?}");
    assert!(err.fail_closed_message().contains("dave@example.test"));

    let err = w.access.identify("U0GHOST").await.unwrap_err();
    assert!(matches!(&err, AccessError::UnknownUser(s) if s.contains("ghost@example.test")), "{err:?}");

    // Slack does not know the id at all.
    let err = w.access.identify("U0NOSUCH").await.unwrap_err();
    assert!(matches!(err, AccessError::UnknownUser(_)), "{err:?}");

    // No e-mail on the Slack profile.
    let err = w.access.identify("U0NOMAIL").await.unwrap_err();
    assert!(matches!(&err, AccessError::UnknownUser(s) if s.contains("e-mail")), "{err:?}");
}

/// AD-shaped entries: an expired account and a locked-out one are refused like a disabled one;
/// an account that expires within the cache TTL is not remembered past its expiry.
#[tokio::test]
async fn expired_and_locked_out_accounts_are_refused_and_never_cached_past_expiry() {
    let mut p = policy();
    for uid in ["gone", "locked", "soon"] {
        p.identity.slack_users.insert(format!("U0{}", uid.to_uppercase()), format!("{uid}@example.test"));
    }
    let w = world_with(p).await;
    let filetime_in = |secs: i64| {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
        (now + secs + 11_644_473_600) * 10_000_000
    };
    for (uid, extra) in [
        ("gone", format!("accountExpires: {}", filetime_in(-60))),
        ("locked", format!("lockoutTime: {}", filetime_in(-60))),
        ("soon", format!("accountExpires: {}", filetime_in(2))),
    ] {
        w.slapd
            .ldapadd(&format!(
                "dn: uid={uid},ou=people,dc=example,dc=test\nobjectClass: inetOrgPerson\nobjectClass: iaasAdAccount\nuid: {uid}\n\
                 cn: {uid}\nsn: {uid}\nmail: {uid}@example.test\nuserAccountControl: 512\n{extra}\n\n\
                 dn: cn=iaas-users,ou=groups,dc=example,dc=test\nchangetype: modify\nadd: member\nmember: uid={uid},ou=people,dc=example,dc=test\n"
            ))
            .unwrap();
    }
    let err = w.access.identify("U0GONE").await.unwrap_err();
    assert!(matches!(&err, AccessError::Disabled(s) if s.contains("has expired")), "{err:?}");
    let err = w.access.identify("U0LOCKED").await.unwrap_err();
    assert!(matches!(&err, AccessError::Disabled(s) if s.contains("locked out")), "{err:?}");

    // Valid now, with a 300 s TTL; once the account has expired the cache does not answer.
    assert_eq!(w.access.identify("U0SOON").await.unwrap().roles, roles(&["users"]));
    tokio::time::sleep(Duration::from_millis(3100)).await;
    let err = w.access.identify("U0SOON").await.unwrap_err();
    assert!(matches!(&err, AccessError::Disabled(s) if s.contains("has expired")), "{err:?}");
}

#[tokio::test]
async fn a_direct_slack_users_grant_still_needs_an_enabled_directory_account() {
    let mut p = policy();
    p.roles.get_mut("users").unwrap().slack_users = vec!["U0DAVE".into()];
    let w = world_with(p).await;
    let err = w.access.identify("U0DAVE").await.unwrap_err();
    assert!(matches!(err, AccessError::Disabled(_)), "{err:?}");
}

#[tokio::test]
async fn a_deactivated_slack_user_is_refused_and_that_is_remembered_briefly() {
    let w = world().await;
    let err = w.access.identify("U0GONE").await.unwrap_err();
    assert!(matches!(&err, AccessError::Disabled(s) if s.contains("Slack account is deactivated")), "{err:?}");
    // A definite "no" is cached (negative_cache_ttl_secs, default 30 s).
    let again = w.access.identify("U0GONE").await.unwrap_err();
    assert_eq!(again, err);
    assert_eq!(w.fake.calls("U0GONE"), 1);
}

#[tokio::test]
async fn the_static_map_bypasses_users_info() {
    let w = world().await;
    let ann = w.access.identify("U0STATIC").await.unwrap();
    assert_eq!(ann.email.as_deref(), Some("ann@example.test"));
    assert_eq!(ann.roles, roles(&["users"]));
    assert_eq!(w.fake.total(), 0, "users.info must not be called");
}

#[tokio::test]
async fn within_the_ttl_no_slack_or_directory_call_is_made() {
    let mut w = world().await;
    let first = w.access.identify("U0ANN").await.unwrap();
    let second = w.access.identify("U0ANN").await.unwrap();
    assert_eq!(first, second);
    assert_eq!(w.fake.calls("U0ANN"), 1);

    // The directory goes away: the cached identity still resolves...
    w.slapd.stop().await;
    let third = w.access.identify("U0ANN").await.unwrap();
    assert_eq!(third, first);
    assert_eq!(w.fake.calls("U0ANN"), 1);
    // ...but nobody new gets in.
    let err = w.access.identify("U0BOB").await.unwrap_err();
    assert!(matches!(err, AccessError::DirectoryUnavailable(_)), "{err:?}");
    // forget() drops the cached entry: ann now fails closed too.
    w.access.forget("U0ANN");
    let err = w.access.identify("U0ANN").await.unwrap_err();
    assert!(matches!(err, AccessError::DirectoryUnavailable(_)), "{err:?}");
}

#[tokio::test]
async fn after_the_ttl_a_changed_group_membership_takes_effect() {
    let mut p = policy();
    p.identity.cache_ttl_secs = 1;
    let w = world_with(p).await;
    let ann = w.access.identify("U0ANN").await.unwrap();
    assert_eq!(ann.roles, roles(&["users"]));

    w.slapd
        .ldapmodify(
            "dn: cn=iaas-users,ou=groups,dc=example,dc=test\n\
             changetype: modify\n\
             delete: member\n\
             member: uid=ann,ou=people,dc=example,dc=test\n",
        )
        .unwrap();
    // Still cached.
    assert_eq!(w.access.identify("U0ANN").await.unwrap().roles, roles(&["users"]));
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let ann = w.access.identify("U0ANN").await.unwrap();
    assert!(ann.roles.is_empty(), "{ann:?}");
    assert!(!w.access.may_run(&ann, "power").is_allowed());
    assert_eq!(w.fake.calls("U0ANN"), 2);
}

#[tokio::test]
async fn a_directory_that_is_down_fails_closed() {
    let mut w = world().await;
    w.slapd.stop().await;
    let err = w.access.identify("U0STATIC").await.unwrap_err();
    assert!(matches!(err, AccessError::DirectoryUnavailable(_)), "{err:?}");
    assert_eq!(err.fail_closed_message(), FAIL_CLOSED_MESSAGE);
}

#[tokio::test]
async fn a_directory_that_never_answers_fails_closed_within_the_deadline() {
    // Accepts TCP connections (the kernel's backlog) but never reads or answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ldap://{}/", silent.local_addr().unwrap());
    // No group DNs: resolving them at start-up would hit the silent directory too.
    let mut p = policy();
    for r in p.roles.values_mut() {
        r.groups.clear();
    }
    p.roles.get_mut("users").unwrap().slack_users = vec!["U0STATIC".into()];
    let access = Access::new(p, Some(directory_at(&url)), None).await.unwrap();
    let started = Instant::now();
    let err = access.identify("U0STATIC").await.unwrap_err();
    let took = started.elapsed();
    assert!(matches!(&err, AccessError::DirectoryUnavailable(s) if s.contains("2000 ms")), "{err:?}");
    // The directory's own timeouts are 5 s (connect) and 10 s (operation); the 2 s deadline cut in.
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert_eq!(err.fail_closed_message(), FAIL_CLOSED_MESSAGE);
    drop(silent);
}

#[tokio::test]
async fn a_slack_that_never_answers_fails_closed_within_the_deadline() {
    let w = world().await;
    let started = Instant::now();
    let err = w.access.identify("U0SLOW").await.unwrap_err();
    assert!(matches!(err, AccessError::SlackUnavailable(_)), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
    assert_eq!(err.fail_closed_message(), FAIL_CLOSED_MESSAGE);
}

#[tokio::test]
async fn slack_rate_limits_get_one_bounded_retry() {
    let w = world().await;
    // 429 once with Retry-After: 0, then an answer.
    let who = w.access.identify("U0RATE").await.unwrap();
    assert_eq!(who.roles, roles(&["users"]));
    assert_eq!(w.fake.calls("U0RATE"), 2);
    // 429 every time: exactly one retry.
    let err = w.access.identify("U0RATE2").await.unwrap_err();
    assert!(matches!(err, AccessError::SlackUnavailable(_)), "{err:?}");
    assert_eq!(w.fake.calls("U0RATE2"), 2);
    // Retry-After longer than the deadline: no retry, no waiting.
    let started = Instant::now();
    let err = w.access.identify("U0RATELONG").await.unwrap_err();
    assert!(matches!(&err, AccessError::SlackUnavailable(s) if s.contains("30")), "{err:?}");
    assert_eq!(w.fake.calls("U0RATELONG"), 1);
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn could_not_check_is_never_cached() {
    let w = world().await;
    let err = w.access.identify("U0FLAKY").await.unwrap_err();
    assert!(matches!(err, AccessError::SlackUnavailable(_)), "{err:?}");
    let ok = w.access.identify("U0FLAKY").await.unwrap();
    assert_eq!(ok.roles, roles(&["users"]));
    assert_eq!(w.fake.calls("U0FLAKY"), 2);
}

#[tokio::test]
async fn a_wrong_slack_token_fails_closed() {
    let slapd = Slapd::start_seeded().await.unwrap();
    let (fake, addr) = fake_slack().await;
    let access = Access::new(policy(), Some(directory_at(&slapd.url)), Some(slack_client(addr, "xoxb-wrong"))).await.unwrap();
    let err = access.identify("U0ANN").await.unwrap_err();
    assert!(matches!(&err, AccessError::SlackUnavailable(s) if s.contains("invalid_auth")), "{err:?}");
    assert!(!err.to_string().contains("xoxb-wrong"));
    assert_eq!(fake.calls("U0ANN"), 1);
}

#[tokio::test]
async fn a_typo_in_a_group_dn_stops_start_up() {
    let slapd = Slapd::start_seeded().await.unwrap();
    let mut p = policy();
    p.roles.get_mut("users").unwrap().groups = vec!["cn=iaas-usres,ou=groups,dc=example,dc=test".into()];
    let err = Access::new(p, Some(directory_at(&slapd.url)), None).await.unwrap_err();
    let AccessError::Config(s) = &err else { panic!("expected Config, got {err:?}") };
    assert!(s.contains("Role `users`"), "{s}");
    assert!(s.contains("cn=iaas-usres,ou=groups,dc=example,dc=test"), "{s}");
}

#[tokio::test]
async fn a_group_dn_spelled_differently_in_the_policy_still_matches() {
    let mut p = policy();
    p.roles.get_mut("users").unwrap().groups = vec!["CN=IAAS-Users, OU=Groups, DC=Example, DC=Test".into()];
    let w = world_with(p).await;
    assert_eq!(w.access.identify("U0ANN").await.unwrap().roles, roles(&["users"]));
}

#[tokio::test]
async fn start_up_with_the_directory_down_fails() {
    let mut slapd = Slapd::start_seeded().await.unwrap();
    let url = slapd.url.clone();
    slapd.stop().await;
    let err = Access::new(policy(), Some(directory_at(&url)), None).await.unwrap_err();
    assert!(matches!(err, AccessError::DirectoryUnavailable(_)), "{err:?}");
}

#[tokio::test]
async fn without_a_directory_roles_come_from_slack_users_only() {
    let (fake, addr) = fake_slack().await;
    let mut p = policy();
    p.roles.get_mut("users").unwrap().slack_users = vec!["U0ANN".into()];
    p.roles.get_mut("admins").unwrap().slack_users = vec!["U0BOB".into()];
    let access = Access::new(p, None, Some(slack_client(addr, TOKEN))).await.unwrap();
    let ann = access.identify("U0ANN").await.unwrap();
    assert_eq!(ann.roles, roles(&["users"]));
    assert_eq!(ann.dn, None);
    assert!(access.may_touch(&ann, Some("U0ANN"), None).is_allowed());
    assert!(!access.may_touch(&ann, Some("U0BOB"), None).is_allowed());
    let bob = access.identify("U0BOB").await.unwrap();
    assert!(access.may_run(&bob, "delete").is_allowed());
    // The static map still supplies the e-mail; group membership grants nothing.
    let s = access.identify("U0STATIC").await.unwrap();
    assert_eq!(s.email.as_deref(), Some("ann@example.test"));
    assert!(s.roles.is_empty());
    assert_eq!(denied(access.may_run(&s, "power")), "You have no iaas role, so you may not run `power`: ask IT for the `users` role.");
    // No network at all without a directory.
    assert_eq!(fake.total(), 0);
}
