//! iaas-directory against a real OpenLDAP (one throwaway slapd per test, seeded from
//! tests/slapd/seed.ldif). Needs Debian's slapd, ldap-utils and openssl.

#[allow(dead_code)]
#[path = "../../../tests/src/slapd.rs"]
mod slapd;

use std::collections::BTreeSet;
use std::time::Duration;

use iaas_directory::{Directory, DirectoryConfig, DirectoryError, DirectoryUser};
use slapd::Slapd;

fn config(url: &str) -> DirectoryConfig {
    let mut cfg = DirectoryConfig::new(url, slapd::SVC_DN, slapd::SVC_PASSWORD, slapd::BASE_DN);
    cfg.connect_timeout = Duration::from_secs(5);
    cfg.op_timeout = Duration::from_secs(5);
    cfg
}

fn directory(s: &Slapd) -> Directory {
    Directory::new(config(&s.url)).expect("valid config")
}

async fn seeded() -> (Slapd, Directory) {
    let s = Slapd::start_seeded().await.expect("slapd starts");
    let d = directory(&s);
    (s, d)
}

fn group(cn: &str) -> String {
    format!("cn={cn},ou=groups,dc=example,dc=test")
}

fn set(items: &[String]) -> BTreeSet<String> {
    items.iter().cloned().collect()
}

#[tokio::test]
async fn nested_three_deep_makes_bob_an_admin() {
    let (_s, d) = seeded().await;
    let bob = d.find_user_by_mail("bob@example.test").await.unwrap();
    assert_eq!(bob.dn, "uid=bob,ou=people,dc=example,dc=test");
    assert_eq!(bob.display_name.as_deref(), Some("Bob Example"));
    assert_eq!(bob.member_of, vec![group("ops-team")]);
    let groups = d.groups_of(&bob).await.unwrap();
    assert_eq!(groups, set(&[group("ops-team"), group("platform"), group("iaas-admins")]));
}

#[tokio::test]
async fn max_group_depth_bounds_the_walk() {
    let s = Slapd::start_seeded().await.unwrap();
    let mut cfg = config(&s.url);
    cfg.max_group_depth = 2;
    let d = Directory::new(cfg).unwrap();
    let bob = d.find_user_by_mail("bob@example.test").await.unwrap();
    let groups = d.groups_of(&bob).await.unwrap();
    assert_eq!(groups, set(&[group("ops-team"), group("platform")]));
}

#[tokio::test]
async fn group_cycle_terminates_with_both_groups() {
    let (_s, d) = seeded().await;
    let carol = d.find_user_by_mail("carol@example.test").await.unwrap();
    let groups = d.groups_of(&carol).await.unwrap();
    assert_eq!(groups, set(&[group("cyc-a"), group("cyc-b")]));
}

#[tokio::test]
async fn group_with_escaped_comma_resolves_and_is_found() {
    let (_s, d) = seeded().await;
    let spelled = d.resolve_group(r"cn=Ops\, Tier (2),ou=groups,dc=example,dc=test").await.unwrap();
    // OpenLDAP's own spelling of the escaped comma.
    assert_eq!(spelled, r"cn=Ops\2C Tier (2),ou=groups,dc=example,dc=test");
    // Any equivalent spelling resolves to the same string.
    let again = d.resolve_group(r"CN=ops\2c tier (2), OU=Groups, DC=Example, DC=Test").await.unwrap();
    assert_eq!(again, spelled);

    let gina = d.find_user_by_mail("gina@example.test").await.unwrap();
    let groups = d.groups_of(&gina).await.unwrap();
    assert!(groups.contains(&spelled), "{groups:?}");
    // ...and the walk continues upwards through it.
    assert_eq!(groups, set(&[spelled.clone(), group("tier-parent")]));
}

#[tokio::test]
async fn duplicate_mail_is_ambiguous() {
    let (_s, d) = seeded().await;
    let err = d.find_user_by_mail("dup@example.test").await.unwrap_err();
    assert_eq!(err, DirectoryError::Ambiguous { mail: "dup@example.test".into(), count: 2 });
    assert!(err.to_string().contains("2 directory accounts share"), "{err}");
}

#[tokio::test]
async fn mail_with_filter_metacharacters_is_found_exactly() {
    let (_s, d) = seeded().await;
    let weird = d.find_user_by_mail("we*ird)(x@example.test").await.unwrap();
    assert_eq!(weird.dn, "uid=weird,ou=people,dc=example,dc=test");
    assert_eq!(weird.mail, "we*ird)(x@example.test");
    // The same characters used as wildcards/injection match nothing.
    let err = d.find_user_by_mail("we*@example.test").await.unwrap_err();
    assert!(matches!(err, DirectoryError::NoSuchUser { .. }), "{err:?}");
}

#[tokio::test]
async fn filter_injection_finds_nothing() {
    let (_s, d) = seeded().await;
    for attempt in
        ["*", "ann@example.test)(mail=*", "ann@example.test)(|(mail=*", "*)(uid=*", "ann*", "ann@example.test\\", "ann@example.test\0"]
    {
        match d.find_user_by_mail(attempt).await {
            Err(DirectoryError::NoSuchUser { mail }) => assert_eq!(mail, attempt),
            other => panic!("{attempt:?}: expected NoSuchUser, got {other:?}"),
        }
        match d.authenticate(attempt, "ann-password").await {
            Err(DirectoryError::BadCredentials) => {}
            other => panic!("authenticate {attempt:?}: expected BadCredentials, got {other:?}"),
        }
    }
    // The server's matching rule for mail is case-insensitive.
    let ann = d.find_user_by_mail("ANN@Example.Test").await.unwrap();
    assert_eq!(ann.dn, "uid=ann,ou=people,dc=example,dc=test");
    assert_eq!(ann.mail, "ann@example.test");
}

#[tokio::test]
async fn disabled_account_is_refused() {
    let (_s, d) = seeded().await;
    let err = d.find_user_by_mail("dave@example.test").await.unwrap_err();
    assert_eq!(err, DirectoryError::Disabled { mail: "dave@example.test".into() });
    // 66048 = NORMAL_ACCOUNT | DONT_EXPIRE_PASSWORD: not disabled.
    assert!(d.find_user_by_mail("erin@example.test").await.is_ok());
}

/// AD's FILETIME (100-ns intervals since 1601) for `secs` from now.
fn filetime_in(secs: i64) -> i64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    (now + secs + 11_644_473_600) * 10_000_000
}

/// An AD-shaped person `uid` (mail `<uid>@example.test`, password `<uid>-password`) with
/// extra attribute lines.
fn person(s: &Slapd, uid: &str, extra: &str) {
    s.ldapadd(&format!(
        "dn: uid={uid},ou=people,dc=example,dc=test\nobjectClass: inetOrgPerson\nobjectClass: iaasAdAccount\nuid: {uid}\ncn: {uid}\nsn: {uid}\n\
         mail: {uid}@example.test\nuserPassword: {uid}-password\nuserAccountControl: 512\n{extra}\n"
    ))
    .unwrap();
}

#[tokio::test]
async fn expired_accounts_are_refused_like_disabled_ones() {
    let (s, d) = seeded().await;
    person(&s, "gone", &format!("accountExpires: {}", filetime_in(-3600)));
    person(&s, "later", &format!("accountExpires: {}", filetime_in(86_400)));
    person(&s, "never0", "accountExpires: 0");
    person(&s, "nevermax", "accountExpires: 9223372036854775807");
    assert_eq!(d.find_user_by_mail("gone@example.test").await.unwrap_err(), DirectoryError::Expired { mail: "gone@example.test".into() });
    assert_eq!(d.authenticate("gone", "gone-password").await.unwrap_err(), DirectoryError::Expired { mail: "gone@example.test".into() });
    let later = d.find_user_by_mail("later@example.test").await.unwrap();
    let left = later.expires.expect("the expiry is known").duration_since(std::time::SystemTime::now()).unwrap();
    assert!(left > Duration::from_secs(86_000) && left <= Duration::from_secs(86_400), "{left:?}");
    for never in ["never0", "nevermax"] {
        assert_eq!(d.find_user_by_mail(&format!("{never}@example.test")).await.unwrap().expires, None, "{never}");
    }
    let said = DirectoryError::Expired { mail: "gone@example.test".into() }.to_string();
    assert!(said.contains("has expired"), "{said}");
}

#[tokio::test]
async fn locked_out_accounts_are_refused_until_the_lockout_lapses() {
    let (s, d) = seeded().await;
    // AD: lockoutTime set. Without a readable domain lockoutDuration, a lockout stands.
    person(&s, "locked", &format!("lockoutTime: {}", filetime_in(-7200)));
    person(&s, "fresh", &format!("lockoutTime: {}", filetime_in(-60)));
    person(&s, "unlocked", "lockoutTime: 0");
    let locked = |uid: &str| DirectoryError::LockedOut { mail: format!("{uid}@example.test") };
    assert_eq!(d.find_user_by_mail("locked@example.test").await.unwrap_err(), locked("locked"));
    assert_eq!(d.find_user_by_mail("fresh@example.test").await.unwrap_err(), locked("fresh"));
    assert!(d.find_user_by_mail("unlocked@example.test").await.is_ok());
    // The domain says lockouts last 30 minutes: the one two hours ago has lapsed.
    s.ldapmodify("dn: dc=example,dc=test\nchangetype: modify\nadd: objectClass\nobjectClass: iaasAdDomain\n-\nadd: lockoutDuration\nlockoutDuration: -18000000000\n")
        .unwrap();
    assert!(d.find_user_by_mail("locked@example.test").await.is_ok());
    assert_eq!(d.find_user_by_mail("fresh@example.test").await.unwrap_err(), locked("fresh"));

    // OpenLDAP ppolicy: pwdAccountLockedTime present (here the permanent admin lock).
    assert!(d.find_user_by_mail("ann@example.test").await.is_ok());
    s.ldapmodify(
        "dn: uid=ann,ou=people,dc=example,dc=test\nchangetype: modify\nadd: pwdAccountLockedTime\npwdAccountLockedTime: 000001010000Z\n",
    )
    .unwrap();
    assert_eq!(d.find_user_by_mail("ann@example.test").await.unwrap_err(), locked("ann"));
}

/// A server whose paged-results limit is below the bot's page size answers adminLimitExceeded
/// to every paged search; look-ups still work, by asking for smaller pages.
#[tokio::test]
async fn a_low_paged_results_limit_is_adapted_to() {
    let s = Slapd::start_seeded_with("limits * size.pr=100").await.unwrap();
    let d = directory(&s);
    assert_eq!(d.find_user_by_mail("ann@example.test").await.unwrap().dn, "uid=ann,ou=people,dc=example,dc=test");
    assert!(d.authenticate("bob", "bob-password").await.is_ok());
    // And one that takes no paging at all beyond a handful.
    let s = Slapd::start_seeded_with("limits * size.pr=5").await.unwrap();
    assert!(directory(&s).find_user_by_mail("ann@example.test").await.is_ok());
}

#[tokio::test]
async fn users_groups_direct_and_none() {
    let (_s, d) = seeded().await;
    let erin = d.find_user_by_mail("erin@example.test").await.unwrap();
    assert!(erin.member_of.is_empty());
    assert_eq!(d.groups_of(&erin).await.unwrap(), BTreeSet::new());
    let ann = d.find_user_by_mail("ann@example.test").await.unwrap();
    assert_eq!(d.groups_of(&ann).await.unwrap(), set(&[group("iaas-users")]));
}

#[tokio::test]
async fn unknown_mail_is_no_such_user() {
    let (_s, d) = seeded().await;
    let err = d.find_user_by_mail("nobody@example.test").await.unwrap_err();
    assert_eq!(err, DirectoryError::NoSuchUser { mail: "nobody@example.test".into() });
}

#[tokio::test]
async fn resolve_group_spelling_typos_and_non_groups() {
    let (_s, d) = seeded().await;
    assert_eq!(d.resolve_group("CN=IAAS-Admins,OU=Groups,DC=Example,DC=Test").await.unwrap(), group("iaas-admins"));
    let typo = "cn=iaas-admnis,ou=groups,dc=example,dc=test";
    assert_eq!(d.resolve_group(typo).await.unwrap_err(), DirectoryError::NoSuchGroup { dn: typo.into() });
    for bad in ["not a dn", "cn=iaas-admins,ou=groups,dc=exmaple,dc=test", ""] {
        assert!(matches!(d.resolve_group(bad).await, Err(DirectoryError::NoSuchGroup { .. })), "{bad:?}");
    }
    match d.resolve_group("uid=ann,ou=people,dc=example,dc=test").await {
        Err(DirectoryError::Config { problem }) => {
            assert!(problem.contains("not a group"), "{problem}")
        }
        other => panic!("expected Config (not a group), got {other:?}"),
    }
}

#[tokio::test]
async fn directory_down_is_unreachable() {
    let (mut s, d) = seeded().await;
    assert!(d.find_user_by_mail("ann@example.test").await.is_ok());
    s.stop().await;
    match d.find_user_by_mail("ann@example.test").await {
        Err(DirectoryError::Unreachable { detail }) => {
            assert!(detail.contains("127.0.0.1"), "{detail}")
        }
        other => panic!("expected Unreachable, got {other:?}"),
    }
    let ann = DirectoryUser {
        dn: "uid=ann,ou=people,dc=example,dc=test".into(),
        mail: "ann@example.test".into(),
        display_name: None,
        member_of: vec![group("iaas-users")],
        expires: None,
    };
    assert!(matches!(d.groups_of(&ann).await, Err(DirectoryError::Unreachable { .. })));
    assert!(matches!(d.authenticate("ann", "ann-password").await, Err(DirectoryError::Unreachable { .. })));
}

/// A TCP listener that accepts connections and never answers.
async fn silent_server() -> (u16, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = listener.accept().await {
            held.push(sock);
        }
    });
    (port, task)
}

#[tokio::test]
async fn silent_server_times_out() {
    let (port, task) = silent_server().await;
    let mut cfg = config(&format!("ldap://127.0.0.1:{port}/"));
    cfg.connect_timeout = Duration::from_secs(1);
    cfg.op_timeout = Duration::from_secs(1);
    let d = Directory::new(cfg).unwrap();
    // Plain LDAP: TCP connects, the bind never gets an answer.
    assert_eq!(d.find_user_by_mail("ann@example.test").await.unwrap_err(), DirectoryError::Timeout { secs: 1 });

    // LDAPS: the TLS handshake never completes (bounded by the connect timeout).
    let s = Slapd::start_tls().await.unwrap();
    let mut cfg = config(&format!("ldaps://127.0.0.1:{port}/"));
    cfg.ca_file = s.ca_pem_path.clone();
    cfg.connect_timeout = Duration::from_secs(1);
    cfg.op_timeout = Duration::from_secs(1);
    let d = Directory::new(cfg).unwrap();
    let err = d.resolve_group(&group("iaas-admins")).await.unwrap_err();
    assert_eq!(err, DirectoryError::Timeout { secs: 1 });
    assert!(err.to_string().contains("did not answer within 1 s"), "{err}");
    task.abort();
}

#[tokio::test]
async fn empty_bind_password_is_refused() {
    let mut cfg = config("ldap://127.0.0.1:389/");
    cfg.bind_password = String::new();
    match Directory::new(cfg) {
        Err(DirectoryError::Config { problem }) => {
            assert!(problem.contains("unauthenticated bind"), "{problem}")
        }
        other => panic!("expected Config, got {other:?}"),
    }
}

#[tokio::test]
async fn wrong_service_password_is_bind_failed() {
    let s = Slapd::start_seeded().await.unwrap();
    let mut cfg = config(&s.url);
    cfg.bind_password = "not-the-password".into();
    let d = Directory::new(cfg).unwrap();
    let err = d.find_user_by_mail("ann@example.test").await.unwrap_err();
    assert!(matches!(&err, DirectoryError::BindFailed { detail } if detail.contains("invalidCredentials (49)")), "{err:?}");
    assert!(!err.to_string().contains("not-the-password"));
    assert!(matches!(d.resolve_group(&group("iaas-admins")).await, Err(DirectoryError::BindFailed { .. })));

    // A service DN that does not exist is rejected the same way.
    let mut cfg = config(&s.url);
    cfg.bind_dn = "cn=svc-nobody,ou=service,dc=example,dc=test".into();
    let d = Directory::new(cfg).unwrap();
    assert!(matches!(d.find_user_by_mail("ann@example.test").await, Err(DirectoryError::BindFailed { .. })));
}

#[tokio::test]
async fn authenticate_checks_the_password() {
    let (_s, d) = seeded().await;
    let ann = d.authenticate("ann@example.test", "ann-password").await.unwrap();
    assert_eq!(ann.dn, "uid=ann,ou=people,dc=example,dc=test");
    assert_eq!(ann.member_of, vec![group("iaas-users")]);
    // by uid
    let bob = d.authenticate("bob", "bob-password").await.unwrap();
    assert_eq!(bob.mail, "bob@example.test");

    assert_eq!(d.authenticate("ann@example.test", "wrong").await.unwrap_err(), DirectoryError::BadCredentials);
    assert_eq!(d.authenticate("ann", "bob-password").await.unwrap_err(), DirectoryError::BadCredentials);
    // An empty password would be an unauthenticated bind, which slapd accepts: refused first.
    assert_eq!(d.authenticate("ann@example.test", "").await.unwrap_err(), DirectoryError::BadCredentials);
    assert_eq!(d.authenticate("nobody@example.test", "x").await.unwrap_err(), DirectoryError::BadCredentials);
    assert_eq!(d.authenticate("", "ann-password").await.unwrap_err(), DirectoryError::BadCredentials);
    // Disabled: only revealed once the password is right.
    assert_eq!(d.authenticate("dave", "wrong").await.unwrap_err(), DirectoryError::BadCredentials);
    assert_eq!(d.authenticate("dave", "dave-password").await.unwrap_err(), DirectoryError::Disabled { mail: "dave@example.test".into() });
    // Shared mail: cannot tell who it is.
    assert!(matches!(d.authenticate("dup@example.test", "dup1-password").await, Err(DirectoryError::Ambiguous { count: 2, .. })));
    // The service account is not a person and cannot log in as one.
    assert_eq!(d.authenticate("svc-iaas", slapd::SVC_PASSWORD).await.unwrap_err(), DirectoryError::BadCredentials);
}

#[tokio::test]
async fn ldaps_with_the_test_ca_works() {
    let s = Slapd::start_tls().await.unwrap();
    s.seed().unwrap();
    let mut cfg = config(s.ldaps_url.as_deref().unwrap());
    cfg.ca_file = s.ca_pem_path.clone();
    let d = Directory::new(cfg).unwrap();
    let bob = d.find_user_by_mail("bob@example.test").await.unwrap();
    assert!(d.groups_of(&bob).await.unwrap().contains(&group("iaas-admins")));
    assert!(d.authenticate("bob", "bob-password").await.is_ok());
}

#[tokio::test]
async fn ldaps_with_a_wrong_ca_fails() {
    let s = Slapd::start_tls().await.unwrap();
    s.seed().unwrap();
    let mut cfg = config(s.ldaps_url.as_deref().unwrap());
    cfg.ca_file = Some(s.other_ca().unwrap());
    let d = Directory::new(cfg).unwrap();
    match d.find_user_by_mail("ann@example.test").await {
        Err(DirectoryError::Unreachable { detail }) => {
            assert!(detail.contains("TLS"), "{detail}");
            assert!(detail.contains("UnknownIssuer"), "{detail}");
        }
        other => panic!("expected Unreachable (TLS), got {other:?}"),
    }
}

#[tokio::test]
async fn starttls_with_the_test_ca_works_and_a_wrong_ca_fails() {
    let s = Slapd::start_tls().await.unwrap();
    s.seed().unwrap();
    let mut cfg = config(&s.url);
    cfg.starttls = true;
    cfg.ca_file = s.ca_pem_path.clone();
    let d = Directory::new(cfg.clone()).unwrap();
    let ann = d.find_user_by_mail("ann@example.test").await.unwrap();
    assert_eq!(d.groups_of(&ann).await.unwrap(), set(&[group("iaas-users")]));

    cfg.ca_file = Some(s.other_ca().unwrap());
    let d = Directory::new(cfg).unwrap();
    match d.find_user_by_mail("ann@example.test").await {
        Err(DirectoryError::Unreachable { detail }) => assert!(detail.contains("TLS"), "{detail}"),
        other => panic!("expected Unreachable (TLS), got {other:?}"),
    }
}

#[tokio::test]
async fn starttls_refused_by_a_server_without_tls() {
    let s = Slapd::start_seeded().await.unwrap();
    let mut cfg = config(&s.url);
    cfg.starttls = true;
    cfg.ca_file = Some(s.other_ca().unwrap());
    let d = Directory::new(cfg).unwrap();
    match d.find_user_by_mail("ann@example.test").await {
        Err(DirectoryError::Protocol { detail }) => {
            assert!(detail.contains("StartTLS"), "{detail}")
        }
        other => panic!("expected Protocol (StartTLS refused), got {other:?}"),
    }
}
