//! The access part of the policy file: `[identity]`, `[roles.<name>]` and `[limits]`.
//!
//! These structs only parse; [`crate::Access::new`] checks them (and resolves group DNs against
//! the directory) and refuses a policy it cannot apply with [`AccessError::Config`].
//!
//! ```toml
//! [identity]
//! cache_ttl_secs = 300
//! [identity.slack_users]
//! U0USER1 = "ann@example.test"
//!
//! [roles.users]
//! groups = ["cn=iaas-users,ou=groups,dc=example,dc=test"]
//! slack_users = ["U0USER1"]
//! commands = ["power", "vm list", "vm info", "create", "clone", "deploy", "resize", "delete"]
//! scope = "owned"
//! folders = ["Sandbox"]
//! quota = { vms = 5, cpus = 16, memory_gb = 64 }
//!
//! [roles.admins]
//! groups = ["cn=iaas-admins,ou=groups,dc=example,dc=test"]
//! commands = ["*"]
//! scope = "all"
//!
//! [limits]
//! per_user_per_minute = 30
//! [limits.per_command_per_minute]
//! create = 5
//! ```

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::AccessError;

/// `[identity]`, `[roles.<name>]` and `[limits]` together. The main policy embeds the three
/// pieces as tables of the same names; [`AccessPolicy::from_parts`] puts them back together.
/// It also deserializes on its own from a document holding just those tables.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccessPolicy {
    /// `[identity]`: how a Slack user id becomes an e-mail address, a directory account and roles.
    pub identity: IdentityPolicy,
    /// `[roles.<name>]`: who gets which commands and which VMs. No roles → nobody may do anything.
    pub roles: BTreeMap<String, Role>,
    /// `[limits]`: per-user rate limits.
    pub limits: Limits,
}

impl AccessPolicy {
    pub fn from_parts(identity: IdentityPolicy, roles: BTreeMap<String, Role>, limits: Limits) -> AccessPolicy {
        AccessPolicy { identity, roles, limits }
    }

    /// Checks that every command a role grants (other than `*`) and every command in
    /// `[limits.per_command_per_minute]` is one of `known` (the command table's names, e.g.
    /// `"vm list"`), so a typo fails start-up instead of silently granting or limiting nothing.
    /// Meant to be called by the gateway, which owns the command table.
    /// The `[identity]`, `[roles]` and `[limits]` tables of the main policy file.
    pub fn from_policy(policy: &iaas_config::Policy) -> Result<AccessPolicy, AccessError> {
        toml::Value::Table(policy.access_table()).try_into().map_err(|e: toml::de::Error| {
            AccessError::Config(format!("The policy's [identity], [roles] or [limits] is not valid: {}", e.message()))
        })
    }

    /// Whether the policy defines any role. Without roles, access control is off (the
    /// embedded demo default), and start-up says so.
    pub fn has_roles(&self) -> bool {
        !self.roles.is_empty()
    }

    pub fn check_commands(&self, known: &[&str]) -> Result<(), AccessError> {
        let known: BTreeSet<String> = known.iter().map(|c| normalize_command(c)).collect();
        let list = || known.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", ");
        for (name, role) in &self.roles {
            for c in &role.commands {
                let n = normalize_command(c);
                if n != "*" && !known.contains(&n) {
                    return Err(AccessError::Config(format!(
                        "Role `{name}` grants the command {c:?}, which does not exist. Check [roles.{name}].commands in the policy file; the commands are {} (or \"*\" for all).",
                        list()
                    )));
                }
            }
        }
        for c in self.limits.per_command_per_minute.keys() {
            if !known.contains(&normalize_command(c)) {
                return Err(AccessError::Config(format!(
                    "[limits.per_command_per_minute] limits the command {c:?}, which does not exist. The commands are {}.",
                    list()
                )));
            }
        }
        Ok(())
    }
}

/// `[identity]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IdentityPolicy {
    /// How long (seconds) an identified person (e-mail, directory account, roles) is remembered.
    /// A changed group membership takes effect within this. `0` turns the cache off. Default 300.
    pub cache_ttl_secs: u64,
    /// How long (seconds) a definite "no" (unknown user, disabled or deactivated account,
    /// ambiguous e-mail address) is remembered; at most `cache_ttl_secs`. `0` = not remembered.
    /// "Could not check" (directory or Slack unavailable) is never remembered. Default 30.
    pub negative_cache_ttl_secs: u64,
    /// Bound (milliseconds) on identifying one person: Slack's `users.info` (with its one retry)
    /// and the directory together. Past it the check fails closed, so the gateway still answers
    /// inside Slack's 3 s. Default 2000; must be greater than 0.
    pub deadline_ms: u64,
    /// Static map of Slack user id (`U…`/`W…`) → e-mail address, used instead of Slack's
    /// `users.info` for the ids it lists (no Slack call is made for them). Default empty.
    pub slack_users: BTreeMap<String, String>,
}

impl Default for IdentityPolicy {
    fn default() -> Self {
        IdentityPolicy { cache_ttl_secs: 300, negative_cache_ttl_secs: 30, deadline_ms: 2000, slack_users: BTreeMap::new() }
    }
}

/// `[roles.<name>]`: one role. A person has every role whose `slack_users` lists their Slack id
/// or whose `groups` contain one of their (transitive) directory groups. Their commands are the
/// union of their roles' commands, and their scope the widest of their roles' scopes.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Role {
    /// Directory group DNs; members (directly or through nested groups) have the role. Checked
    /// against the directory at start-up: a DN that does not exist stops start-up. Ignored (with
    /// a warning) when no directory is configured. Default empty.
    pub groups: Vec<String>,
    /// Slack user ids (`U…`/`W…`) that have the role directly, without the directory (the
    /// embedded default). With a directory configured, these people must still have an enabled
    /// directory account. Default empty.
    pub slack_users: Vec<String>,
    /// Command names as in the command table (`"power"`, `"vm list"`, `"delete"`, …), or `"*"`
    /// for every command. Case and repeated spaces do not matter. Default empty (the role
    /// grants no command; it may still widen scope).
    pub commands: Vec<String>,
    /// Which VMs the role may act on. Default `owned`.
    pub scope: Scope,
    /// With `scope = "owned"`: VMs whose parent folder's name matches one of these (glob
    /// patterns such as `team-*`, case-sensitive) may be acted on too, whoever owns them.
    /// Default empty.
    pub folders: Vec<String>,
    /// Optional caps on what the role's members may hold (see [`crate::Access::quota`]).
    pub quota: Option<Quota>,
}

/// `scope` of a role.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Only VMs whose `iaas.owner` attribute is the person's Slack id, plus VMs in the role's
    /// `folders`.
    #[default]
    Owned,
    /// Every VM.
    All,
}

/// `quota = { vms = 5, cpus = 16, memory_gb = 64 }`. An absent field is not capped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Quota {
    /// Most VMs a person may own at once.
    pub vms: Option<u32>,
    /// Most vCPUs over all the VMs a person owns.
    pub cpus: Option<u32>,
    /// Most memory (GB) over all the VMs a person owns.
    pub memory_gb: Option<u32>,
}

/// `[limits]`: in-process rate limits per person (per gateway replica).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Commands one person may run in any 60 s, all commands together. 1..=10000; default 30.
    pub per_user_per_minute: u32,
    /// `[limits.per_command_per_minute]`: command name → times one person may run that command
    /// in any 60 s, on top of `per_user_per_minute`. 1..=10000 each (to forbid a command, leave
    /// it out of the roles' `commands`). Default empty.
    pub per_command_per_minute: BTreeMap<String, u32>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { per_user_per_minute: 30, per_command_per_minute: BTreeMap::new() }
    }
}

/// Lower case, surrounding whitespace removed, inner whitespace collapsed to one space:
/// `" VM   List"` → `"vm list"`.
pub(crate) fn normalize_command(c: &str) -> String {
    c.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
}
