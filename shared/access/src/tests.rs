//! Decisions without any network: the embedded default (no directory).

use super::*;

fn role(commands: &[&str], scope: Scope, folders: &[&str], users: &[&str]) -> Role {
    Role {
        groups: vec![],
        slack_users: users.iter().map(|s| s.to_string()).collect(),
        commands: commands.iter().map(|s| s.to_string()).collect(),
        scope,
        folders: folders.iter().map(|s| s.to_string()).collect(),
        quota: None,
    }
}

fn who(u: &str, roles: &[&str]) -> Identity {
    Identity {
        slack_user: u.into(),
        email: None,
        dn: None,
        roles: roles.iter().map(|s| s.to_string()).collect(),
        groups: Default::default(),
    }
}

async fn access(roles: Vec<(&str, Role)>) -> Access {
    let roles = roles.into_iter().map(|(n, r)| (n.to_owned(), r)).collect();
    Access::new(AccessPolicy::from_parts(IdentityPolicy::default(), roles, Limits::default()), None, None).await.unwrap()
}

async fn standard() -> Access {
    let mut users = role(&["power", "VM  List", "vm info", "create", "delete"], Scope::Owned, &["Sandbox", "team-*"], &["U0ANN"]);
    users.groups = vec!["cn=iaas-users,ou=groups,dc=example,dc=test".into()];
    users.quota = Some(Quota { vms: Some(5), cpus: Some(16), memory_gb: None });
    let mut admins = role(&["*"], Scope::All, &[], &["U0BOB"]);
    admins.groups = vec!["cn=iaas-admins,ou=groups,dc=example,dc=test".into()];
    access(vec![("users", users), ("admins", admins), ("readers", role(&["vm list"], Scope::Owned, &[], &[]))]).await
}

#[tokio::test]
async fn may_run_is_the_union_and_normalizes_names() {
    let a = standard().await;
    let ann = who("U0ANN", &["users"]);
    assert!(a.may_run(&ann, "power").is_allowed());
    assert!(a.may_run(&ann, " vm   LIST ").is_allowed());
    let Decision::Deny(why) = a.may_run(&ann, "resize") else { panic!("resize allowed") };
    assert_eq!(why, "You may not run `resize`: ask IT for the `admins` role.");
    let both = who("U0X", &["readers", "users"]);
    assert!(a.may_run(&both, "delete").is_allowed());
    let bob = who("U0BOB", &["admins"]);
    for c in ["power", "resize", "anything new"] {
        assert!(a.may_run(&bob, c).is_allowed(), "{c}");
    }
    // Not a command, even for an admin.
    assert!(!a.may_run(&bob, "*").is_allowed());
    assert!(!a.may_run(&bob, "  ").is_allowed());
}

#[tokio::test]
async fn no_role_or_unknown_role_is_refused_with_a_hint() {
    let a = standard().await;
    for nobody in [who("U0ERIN", &[]), who("U0ERIN", &["ghosts"])] {
        let Decision::Deny(why) = a.may_run(&nobody, "vm list") else { panic!("allowed") };
        // The narrowest explicit grant is suggested.
        assert_eq!(why, "You have no iaas role, so you may not run `vm list`: ask IT for the `readers` role.");
        assert!(!a.may_touch(&nobody, Some("U0ERIN"), None).is_allowed());
        assert_eq!(a.quota(&nobody).vms, Some(0));
    }
    let only_users = access(vec![("users", role(&["power"], Scope::Owned, &[], &[]))]).await;
    let Decision::Deny(why) = only_users.may_run(&who("U1", &["users"]), "delete") else { panic!() };
    assert_eq!(why, "You may not run `delete`: no iaas role allows it.");
}

#[tokio::test]
async fn may_touch_follows_scope() {
    let a = standard().await;
    let ann = who("U0ANN", &["users"]);
    assert!(a.may_touch(&ann, Some("U0ANN"), Some("Prod")).is_allowed());
    assert!(a.may_touch(&ann, Some("U0BOB"), Some("Sandbox")).is_allowed());
    assert!(a.may_touch(&ann, None, Some("team-blue")).is_allowed());
    let Decision::Deny(why) = a.may_touch(&ann, Some("U0BOB"), Some("Prod")) else { panic!() };
    assert_eq!(why, "You may act only on VMs you own and on VMs in the folders `Sandbox`, `team-*`, and this VM belongs to someone else. Ask its owner, or IT.");
    let Decision::Deny(why) = a.may_touch(&ann, None, None) else { panic!() };
    assert!(why.contains("no recorded owner"), "{why}");
    // Empty owner never matches; folder names are case-sensitive.
    assert!(!a.may_touch(&who("U0ANN", &["users"]), Some(""), Some("sandbox")).is_allowed());
    let reader = who("U0R", &["readers"]);
    let Decision::Deny(why) = a.may_touch(&reader, Some("U0X"), None) else { panic!() };
    assert!(why.starts_with("You may act only on VMs you own, and"), "{why}");
    // Widest scope wins.
    let both = who("U0ANN", &["users", "admins"]);
    assert!(a.may_touch(&both, Some("U0ZED"), None).is_allowed());
    assert!(a.may_touch(&who("U0BOB", &["admins"]), None, None).is_allowed());
}

#[tokio::test]
async fn quota_is_the_widest() {
    let a = standard().await;
    assert_eq!(a.quota(&who("U1", &["users"])), Quota { vms: Some(5), cpus: Some(16), memory_gb: None });
    // admins has no quota → no cap.
    assert_eq!(a.quota(&who("U1", &["users", "admins"])), Quota::default());
}

#[tokio::test]
async fn slack_users_only_identify_without_network() {
    let mut identity = IdentityPolicy::default();
    identity.slack_users.insert("U0ANN".into(), "ann@example.test".into());
    let roles = BTreeMap::from([
        ("users".to_owned(), role(&["power"], Scope::Owned, &[], &["U0ANN", "U0CAT"])),
        ("admins".to_owned(), role(&["*"], Scope::All, &[], &["U0CAT"])),
    ]);
    let a = Access::new(AccessPolicy::from_parts(identity, roles, Limits::default()), None, None).await.unwrap();
    let ann = a.identify("U0ANN").await.unwrap();
    assert_eq!(ann.email.as_deref(), Some("ann@example.test"));
    assert_eq!(ann.roles, BTreeSet::from(["users".to_owned()]));
    let cat = a.identify("U0CAT").await.unwrap();
    assert_eq!(cat.roles.len(), 2);
    let stranger = a.identify("U0NOBODY").await.unwrap();
    assert!(stranger.roles.is_empty());
    assert!(!a.may_run(&stranger, "power").is_allowed());
    for bad in ["", "u0ann", "B0BOT", "U0 ANN", "U0ANN\n\0", "U"] {
        assert!(matches!(a.identify(bad).await, Err(AccessError::UnknownUser(_))), "{bad:?}");
    }
}

#[tokio::test]
async fn bad_policies_are_refused() {
    type Change = Box<dyn Fn(&mut AccessPolicy)>;
    let cases: Vec<(&str, Change)> = vec![
        ("zero deadline", Box::new(|p| p.identity.deadline_ms = 0)),
        (
            "bad static id",
            Box::new(|p| {
                p.identity.slack_users.insert("ann".into(), "ann@x".into());
            }),
        ),
        (
            "bad static mail",
            Box::new(|p| {
                p.identity.slack_users.insert("U1".into(), "ann".into());
            }),
        ),
        ("zero per user", Box::new(|p| p.limits.per_user_per_minute = 0)),
        (
            "zero per command",
            Box::new(|p| {
                p.limits.per_command_per_minute.insert("create".into(), 0);
            }),
        ),
        (
            "bad role user",
            Box::new(|p| {
                p.roles.insert("r".into(), role(&[], Scope::Owned, &[], &["ann"]));
            }),
        ),
        (
            "bad folder glob",
            Box::new(|p| {
                p.roles.insert("r".into(), role(&[], Scope::Owned, &["[x"], &[]));
            }),
        ),
        (
            "empty command",
            Box::new(|p| {
                p.roles.insert("r".into(), role(&[" "], Scope::Owned, &[], &[]));
            }),
        ),
    ];
    for (name, change) in cases {
        let mut p = AccessPolicy::default();
        change(&mut p);
        match Access::new(p, None, None).await {
            Err(AccessError::Config(s)) => assert!(s.ends_with('.'), "{name}: {s}"),
            other => panic!("{name}: expected Config, got {other:?}"),
        }
    }
}

#[test]
fn check_commands_catches_typos() {
    let mut p = AccessPolicy::default();
    p.roles.insert("users".into(), role(&["power", "VM list", "*"], Scope::Owned, &[], &[]));
    let known = ["power", "vm list", "create"];
    p.check_commands(&known).unwrap();
    p.limits.per_command_per_minute.insert("create".into(), 5);
    p.check_commands(&known).unwrap();
    p.limits.per_command_per_minute.insert("craete".into(), 5);
    let err = p.check_commands(&known).unwrap_err();
    assert!(err.to_string().contains("\"craete\""), "{err}");
    p.limits.per_command_per_minute.remove("craete");
    p.roles.insert("ops".into(), role(&["powr"], Scope::Owned, &[], &[]));
    let err = p.check_commands(&known).unwrap_err();
    assert!(err.to_string().contains("Role `ops`"), "{err}");
}

#[test]
fn fail_closed_messages() {
    let down = AccessError::DirectoryUnavailable("ldap://10.0.0.1 timed out".into());
    assert_eq!(down.fail_closed_message(), FAIL_CLOSED_MESSAGE);
    assert!(!down.fail_closed_message().contains("10.0.0.1"));
    assert_eq!(
        AccessError::SlackUnavailable("x".into()).fail_closed_message(),
        "Your access could not be checked right now, so nothing was run. Please try again in a minute."
    );
    assert_eq!(AccessError::Disabled("Your account is disabled.".into()).fail_closed_message(), "Your account is disabled.");
    assert!(!AccessError::Config("role x dn y".into()).fail_closed_message().contains("dn y"));
}

#[test]
fn group_names_for_sentences() {
    assert_eq!(group_name("cn=iaas-users,ou=groups,dc=x"), "iaas-users");
    assert_eq!(group_name(r"CN=Ops\, Tier (2),ou=g"), "Ops, Tier (2)");
    assert_eq!(group_name("ou=x,dc=y"), "ou=x,dc=y");
    assert_eq!(group_name("c"), "c");
}

#[test]
fn access_is_send_sync_and_identify_is_send() {
    fn sync<T: Send + Sync + Clone>() {}
    fn send<T: Send>(_: &T) {}
    sync::<Access>();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let a = rt.block_on(access(vec![]));
    send(&a.identify("U1"));
}

#[test]
fn dn_keys_ignore_case_and_spaces_around_separators_but_keep_escapes() {
    assert_eq!(dn_key("CN=Lab Admins, OU=Groups ,DC=example"), "cn=lab admins,ou=groups,dc=example");
    assert_eq!(dn_key(r"cn=Ops\, Tier (2),ou=groups"), r"cn=ops\, tier (2),ou=groups");
    assert_ne!(dn_key(r"cn=Ops\, Tier"), dn_key("cn=Ops,Tier"));
    let who = Identity { groups: [dn_key("cn=lab,ou=groups,dc=x")].into(), ..who("U1", &[]) };
    assert!(who.member_of("CN=Lab, OU=Groups, DC=X"));
    assert!(!who.member_of("cn=lab2,ou=groups,dc=x"));
}
