//! The access policy tables parse from TOML, embed into a larger policy, and refuse unknown keys.

use std::collections::BTreeMap;

use iaas_access::{AccessPolicy, IdentityPolicy, Limits, Quota, Role, Scope};
use serde::Deserialize;

const EXAMPLE: &str = r#"
[identity]
cache_ttl_secs = 300            # a changed group membership takes effect within this
[identity.slack_users]          # static map Slack user id → e-mail (used instead of users.info when present)
U0USER1 = "ann@example.test"

[roles.users]
groups = ["cn=iaas-users,ou=groups,dc=example,dc=test"]   # directory group DNs (members, transitively)
slack_users = ["U0USER1"]       # Slack ids granted the role directly (the embedded default, no directory)
commands = ["power", "vm list", "vm info", "create", "clone", "deploy", "resize", "delete"]   # command names as in the command table; "*" = all
scope = "owned"                 # "owned": only VMs whose iaas.owner attribute is the caller's Slack id; "all"
folders = ["Sandbox"]           # with scope owned: VMs in these folders too
quota = { vms = 5, cpus = 16, memory_gb = 64 }   # optional; the lead implements reservation

[roles.admins]
groups = ["cn=iaas-admins,ou=groups,dc=example,dc=test"]
commands = ["*"]
scope = "all"

[limits]
per_user_per_minute = 30        # rate limit across commands
[limits.per_command_per_minute] # per user, per command
create = 5
"#;

#[test]
fn the_example_parses() {
    let p: AccessPolicy = toml::from_str(EXAMPLE).unwrap();
    assert_eq!(p.identity.cache_ttl_secs, 300);
    assert_eq!(p.identity.negative_cache_ttl_secs, 30);
    assert_eq!(p.identity.deadline_ms, 2000);
    assert_eq!(p.identity.slack_users["U0USER1"], "ann@example.test");
    let users = &p.roles["users"];
    assert_eq!(users.groups, ["cn=iaas-users,ou=groups,dc=example,dc=test"]);
    assert_eq!(users.slack_users, ["U0USER1"]);
    assert_eq!(users.commands.len(), 8);
    assert_eq!(users.scope, Scope::Owned);
    assert_eq!(users.folders, ["Sandbox"]);
    assert_eq!(users.quota, Some(Quota { vms: Some(5), cpus: Some(16), memory_gb: Some(64) }));
    let admins = &p.roles["admins"];
    assert_eq!(admins.commands, ["*"]);
    assert_eq!(admins.scope, Scope::All);
    assert!(admins.slack_users.is_empty() && admins.folders.is_empty() && admins.quota.is_none());
    assert_eq!(p.limits.per_user_per_minute, 30);
    assert_eq!(p.limits.per_command_per_minute, BTreeMap::from([("create".to_owned(), 5)]));
    p.check_commands(&["power", "vm list", "vm info", "create", "clone", "deploy", "resize", "delete"]).unwrap();
}

#[test]
fn the_tables_embed_into_a_larger_policy() {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields, default)]
    #[derive(Default)]
    struct Main {
        other: BTreeMap<String, String>,
        identity: IdentityPolicy,
        roles: BTreeMap<String, Role>,
        limits: Limits,
    }
    let doc = format!("[other]\nx = \"y\"\n{EXAMPLE}");
    let m: Main = toml::from_str(&doc).unwrap();
    assert_eq!(m.other["x"], "y");
    let p = AccessPolicy::from_parts(m.identity, m.roles, m.limits);
    assert_eq!(p.roles.len(), 2);
    // Absent tables give the defaults.
    let m: Main = toml::from_str("").unwrap();
    assert_eq!(m.identity.cache_ttl_secs, 300);
    assert!(m.roles.is_empty());
    assert_eq!(m.limits.per_user_per_minute, 30);
}

#[test]
fn defaults_apply_inside_a_role() {
    let p: AccessPolicy = toml::from_str("[roles.readers]\ncommands = [\"vm list\"]\n").unwrap();
    let r = &p.roles["readers"];
    assert_eq!(r.scope, Scope::Owned);
    assert!(r.groups.is_empty() && r.slack_users.is_empty() && r.quota.is_none());
    let q: AccessPolicy = toml::from_str("[roles.r]\nquota = { vms = 2 }\n").unwrap();
    assert_eq!(q.roles["r"].quota, Some(Quota { vms: Some(2), cpus: None, memory_gb: None }));
}

#[test]
fn unknown_keys_and_bad_values_are_refused() {
    let cases = [
        ("[identity]\ncache_ttl = 5\n", "cache_ttl"),
        ("[identity]\ncache_ttl_secs = -1\n", "cache_ttl_secs"),
        ("[identity.slack_users]\nU1 = 5\n", "U1"),
        ("[roles.users]\ncommand = [\"power\"]\n", "command"),
        ("[roles.users]\nscope = \"mine\"\n", "mine"),
        ("[roles.users]\nquota = { vms = 5, disks = 2 }\n", "disks"),
        ("[roles.users]\ngroups = \"cn=x\"\n", "groups"),
        ("[limits]\nper_minute = 3\n", "per_minute"),
        ("[limits.per_command_per_minute]\ncreate = \"five\"\n", "create"),
        ("[colour]\nx = 1\n", "colour"),
    ];
    for (doc, word) in cases {
        let err = toml::from_str::<AccessPolicy>(doc).expect_err(doc).to_string();
        assert!(err.contains(word), "{doc}: {err}");
    }
}
