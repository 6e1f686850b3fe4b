//! Who is this Slack user, and what may they do? Fails closed.
//!
//! [`Access::identify`] turns a Slack user id into an [`Identity`]: an e-mail address (from the
//! policy's static `[identity.slack_users]` map, else Slack's `users.info`), the directory
//! account with that address, its transitive groups, and so the person's roles. The policy's
//! roles ([`Role`]) grant commands ([`Access::may_run`]), a scope over VMs
//! ([`Access::may_touch`]) and quotas ([`Access::quota`]); [`Access::rate_limit`] bounds how
//! often one person may run commands.
//!
//! Invariants:
//! - Fail closed. Any error while identifying is an `Err` (never an identity with guessed
//!   roles); the caller refuses the command and shows [`AccessError::fail_closed_message`].
//!   Roles unknown to the policy, an empty command and a person without roles are all refused.
//! - One `identify` is bounded by `[identity].deadline_ms` (default 2 s) in total, so a
//!   directory or Slack that accepts connections but never answers costs at most that, and the
//!   gateway still answers inside Slack's 3 s.
//! - With a directory configured, every person must have exactly one enabled directory account,
//!   even one granted a role directly through `slack_users` (someone who left is locked out
//!   everywhere). Without a directory (the embedded default), roles come only from the roles'
//!   `slack_users` lists and no network call is made.
//! - Every group DN in the policy is resolved once, at start-up ([`Access::new`]), to the
//!   server's spelling: a typo stops start-up with a sentence naming the role and the DN.
//!   Group DNs are compared case-insensitively in that spelling.
//! - Cache: a successful identity is remembered for `cache_ttl_secs` (so a changed group
//!   membership takes effect within it); a definite "no" (unknown, disabled, deactivated,
//!   ambiguous) for `negative_cache_ttl_secs` (default 30 s, at most the TTL); "could not check"
//!   (directory or Slack unavailable) is never remembered, and an expired identity is never
//!   served: when the directory is down, people whose entry expired are refused.
//! - Memory is bounded: the cache holds at most 10 000 people and the rate limiter forgets
//!   keys idle for a minute.

mod cache;
mod env;
mod error;
mod limit;
mod policy;
mod slack;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use iaas_directory::{Directory, DirectoryError};
use serde::{Deserialize, Serialize};

pub use env::{directory_from_env, slack_users_from_env};
pub use error::{AccessError, FAIL_CLOSED_MESSAGE};
pub use policy::{AccessPolicy, IdentityPolicy, Limits, Quota, Role, Scope};
pub use slack::SlackUsers;

use cache::Cache;
use limit::Limiter;
use policy::normalize_command;

pub use iaas_ids::UserId;

/// Who a Slack user is, as far as iaas is concerned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The Slack user id (`U…`/`W…`) the request came from (an API or console caller's
    /// e-mail address or `api:<token>`).
    pub slack_user: UserId,
    /// Their e-mail address: the directory's value when a directory is configured, else the
    /// static map's (or `None`).
    pub email: Option<String>,
    /// Their directory account's DN (server's spelling); `None` without a directory.
    pub dn: Option<String>,
    /// The names of the policy roles they have; may be empty.
    pub roles: BTreeSet<String>,
    /// Their transitive directory groups, as [`dn_key`]s; empty without a directory.
    #[serde(default)]
    pub groups: BTreeSet<String>,
}

impl Identity {
    /// Whether they are in the group `dn` (directly or through nested groups).
    pub fn member_of(&self, dn: &str) -> bool {
        self.groups.contains(&dn_key(dn))
    }
}

/// A DN in one spelling for comparisons: lower case, no spaces around the `,` and `=` that
/// separate its parts (`CN=Lab Admins, OU=Groups` and `cn=lab admins,ou=groups` are the same
/// group); escaped characters (`\,`) are kept as they are.
pub fn dn_key(dn: &str) -> String {
    let mut out = String::with_capacity(dn.len());
    let mut chars = dn.trim().chars();
    let mut skip_spaces = false;
    while let Some(c) = chars.next() {
        if skip_spaces && c == ' ' {
            continue;
        }
        skip_spaces = false;
        match c {
            '\\' => {
                out.push(c);
                out.extend(chars.next());
            }
            ',' | '=' => {
                out.truncate(out.trim_end_matches(' ').len());
                out.push(c);
                skip_spaces = true;
            }
            _ => out.push(c),
        }
    }
    out.to_lowercase()
}

/// The answer to "may they?". `Deny` carries a sentence for the person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny(String),
}

impl Decision {
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allow)
    }
}

/// A role with its names normalized, patterns compiled and group DNs resolved.
#[derive(Debug)]
struct CompiledRole {
    name: String,
    all_commands: bool,
    commands: BTreeSet<String>,
    scope: Scope,
    folders: Vec<glob::Pattern>,
    /// For sentences: the groups' `cn` values.
    group_names: Vec<String>,
    slack_users: BTreeSet<String>,
    quota: Option<Quota>,
}

/// The access checks. Cheap to clone (an `Arc`); `Send + Sync`.
#[derive(Clone)]
pub struct Access {
    inner: Arc<Inner>,
}

struct Inner {
    roles: BTreeMap<String, CompiledRole>,
    /// Lower-cased server spelling of a group DN → the roles it grants.
    group_roles: HashMap<String, BTreeSet<String>>,
    static_mail: BTreeMap<String, String>,
    directory: Option<Directory>,
    slack: Option<SlackUsers>,
    ttl: Duration,
    negative_ttl: Duration,
    deadline: Duration,
    cache: Mutex<Cache>,
    limiter: Mutex<Limiter>,
}

impl fmt::Debug for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Access")
            .field("roles", &self.inner.roles.keys().collect::<Vec<_>>())
            .field("directory", &self.inner.directory)
            .field("slack", &self.inner.slack)
            .field("ttl", &self.inner.ttl)
            .field("deadline", &self.inner.deadline)
            .finish()
    }
}

const PHASE_START: u8 = 0;
const PHASE_SLACK: u8 = 1;
const PHASE_DIRECTORY: u8 = 2;
const MAX_PER_MINUTE: u32 = 10_000;

impl Access {
    /// Checks `policy` and resolves every role's group DNs once through `directory` (to the
    /// server's spelling). A DN that does not exist → `Config` naming the role and the DN; a
    /// directory that cannot be reached → `DirectoryUnavailable`.
    ///
    /// `directory: None` → roles only from the roles' `slack_users` lists (the embedded
    /// default); group grants are ignored with a warning. `slack: None` → only the static
    /// `[identity.slack_users]` map gives e-mail addresses, so with a directory everybody else is
    /// refused (`UnknownUser`).
    pub async fn new(policy: AccessPolicy, directory: Option<Directory>, slack: Option<SlackUsers>) -> Result<Access, AccessError> {
        let AccessPolicy { identity, roles, limits } = policy;
        let config = |s: String| Err(AccessError::Config(s));

        if identity.deadline_ms == 0 {
            return config("[identity].deadline_ms must be greater than 0.".into());
        }
        if identity.deadline_ms > 2500 {
            tracing::warn!(
                deadline_ms = identity.deadline_ms,
                "[identity].deadline_ms is above 2500: a slow directory can make the gateway miss Slack's 3 s"
            );
        }
        for (id, mail) in &identity.slack_users {
            if !valid_slack_id(id) {
                return config(format!(
                    "[identity.slack_users] has the key {id:?}, which is not a Slack user id (U… or W…, capital letters and digits)."
                ));
            }
            if !slack::plausible_email(mail.trim()) {
                return config(format!("[identity.slack_users] maps {id} to {mail:?}, which is not an e-mail address."));
            }
        }
        let static_mail = identity.slack_users.iter().map(|(k, v)| (k.clone(), v.trim().to_owned())).collect();

        if limits.per_user_per_minute == 0 || limits.per_user_per_minute > MAX_PER_MINUTE {
            return config(format!(
                "[limits].per_user_per_minute is {}; it must be between 1 and {MAX_PER_MINUTE}.",
                limits.per_user_per_minute
            ));
        }
        let mut per_command = BTreeMap::new();
        for (c, &n) in &limits.per_command_per_minute {
            let key = normalize_command(c);
            if key.is_empty() || key == "*" {
                return config(format!("[limits.per_command_per_minute] has the key {c:?}; use a command name."));
            }
            if n == 0 || n > MAX_PER_MINUTE {
                return config(format!(
                    "[limits.per_command_per_minute] gives {c:?} the limit {n}; it must be between 1 and {MAX_PER_MINUTE} (to forbid a command, leave it out of the roles' commands)."
                ));
            }
            per_command.insert(key, n);
        }

        // Resolve each distinct group DN once.
        let mut resolved: HashMap<String, String> = HashMap::new();
        let mut group_roles: HashMap<String, BTreeSet<String>> = HashMap::new();
        let mut compiled = BTreeMap::new();
        for (name, role) in &roles {
            if name.trim().is_empty() || name.chars().any(char::is_control) {
                return config(format!("The role name {name:?} is not usable."));
            }
            let mut commands = BTreeSet::new();
            for c in &role.commands {
                let n = normalize_command(c);
                if n.is_empty() {
                    return config(format!("Role `{name}` has an empty command name in [roles.{name}].commands."));
                }
                commands.insert(n);
            }
            let all_commands = commands.remove("*");
            let mut folders = Vec::new();
            for f in &role.folders {
                let f = f.trim();
                match glob::Pattern::new(f) {
                    Ok(p) if !f.is_empty() => folders.push(p),
                    Ok(_) => return config(format!("Role `{name}` has an empty folder name in [roles.{name}].folders.")),
                    Err(e) => {
                        return config(format!("Role `{name}` has the folder pattern {f:?}, which is not a valid glob pattern ({e})."))
                    }
                }
            }
            if role.scope == Scope::All && !folders.is_empty() {
                tracing::warn!(role = %name, "scope is \"all\", so the role's folders are not needed");
            }
            let mut slack_users = BTreeSet::new();
            for u in &role.slack_users {
                let u = u.trim();
                if !valid_slack_id(u) {
                    return config(format!(
                        "Role `{name}` lists {u:?} in [roles.{name}].slack_users, which is not a Slack user id (U… or W…, capital letters and digits)."
                    ));
                }
                slack_users.insert(u.to_owned());
            }
            let mut group_names = Vec::new();
            for dn in &role.groups {
                let dn = dn.trim();
                if dn.is_empty() {
                    return config(format!("Role `{name}` has an empty group DN in [roles.{name}].groups."));
                }
                group_names.push(group_name(dn));
                let Some(dir) = &directory else { continue };
                let spelled = match resolved.get(&dn.to_lowercase()) {
                    Some(s) => s.clone(),
                    None => {
                        let s = dir.resolve_group(dn).await.map_err(|e| resolve_error(name, dn, e))?;
                        resolved.insert(dn.to_lowercase(), s.clone());
                        s
                    }
                };
                tracing::debug!(role = %name, policy = %dn, server = %spelled, "role group resolved");
                group_roles.entry(spelled.to_lowercase()).or_default().insert(name.clone());
            }
            if directory.is_none() && !role.groups.is_empty() {
                tracing::warn!(role = %name, "no directory is configured, so the role's groups grant nothing; only its slack_users have it");
            }
            compiled.insert(
                name.clone(),
                CompiledRole {
                    name: name.clone(),
                    all_commands,
                    commands,
                    scope: role.scope,
                    folders,
                    group_names,
                    slack_users,
                    quota: role.quota,
                },
            );
        }
        if compiled.is_empty() {
            tracing::warn!("the access policy has no roles: nobody may run any command");
        }
        if directory.is_some() && slack.is_none() {
            tracing::warn!("a directory is configured but no Slack client: only people in [identity.slack_users] can be identified");
        }
        let ttl = Duration::from_secs(identity.cache_ttl_secs);
        let negative_ttl = Duration::from_secs(identity.negative_cache_ttl_secs).min(ttl);
        tracing::info!(
            roles = compiled.len(),
            directory = directory.is_some(),
            slack = slack.is_some(),
            cache_ttl_secs = identity.cache_ttl_secs,
            "access checks ready"
        );
        Ok(Access {
            inner: Arc::new(Inner {
                roles: compiled,
                group_roles,
                static_mail,
                directory,
                slack,
                ttl,
                negative_ttl,
                deadline: Duration::from_millis(identity.deadline_ms),
                cache: Mutex::new(Cache::default()),
                limiter: Mutex::new(Limiter::new(limits.per_user_per_minute, per_command)),
            }),
        })
    }

    /// Who `slack_user` is. Served from the cache when fresh; otherwise e-mail from the static
    /// map or Slack's `users.info`, then the directory account and its transitive groups — all
    /// within `[identity].deadline_ms`. Any failure is an `Err`: refuse the command.
    pub async fn identify(&self, slack_user: &str) -> Result<Identity, AccessError> {
        let id = slack_user.trim();
        if !valid_slack_id(id) {
            return Err(AccessError::UnknownUser("This request does not carry a valid Slack user id, so nothing was run.".into()));
        }
        let inner = &self.inner;
        if let Some(hit) = lock(&inner.cache).get(id, Instant::now()) {
            tracing::debug!(slack_user = %id, ok = hit.is_ok(), "identity from cache");
            return hit;
        }
        let phase = AtomicU8::new(PHASE_START);
        // Cache entries count from here: the facts are at least this old when stored.
        let started = Instant::now();
        let deadline = tokio::time::Instant::now() + inner.deadline;
        let mut valid_for = inner.ttl;
        let result = match tokio::time::timeout_at(deadline, self.lookup(id, &phase, deadline)).await {
            Ok(Ok((who, expires))) => {
                // An account that expires within the TTL is remembered only until it expires.
                if let Some(at) = expires {
                    valid_for = valid_for.min(at.duration_since(std::time::SystemTime::now()).unwrap_or(Duration::ZERO));
                }
                Ok(who)
            }
            Ok(Err(e)) => Err(e),
            Err(_) => {
                let ms = inner.deadline.as_millis();
                Err(match phase.load(Ordering::Relaxed) {
                    PHASE_SLACK => {
                        AccessError::SlackUnavailable(format!("Slack's users.info did not answer within the access check's {ms} ms."))
                    }
                    _ => AccessError::DirectoryUnavailable(format!("The directory did not answer within the access check's {ms} ms.")),
                })
            }
        };
        match &result {
            Ok(who) => {
                tracing::debug!(slack_user = %id, roles = ?who.roles, "identified");
                lock(&inner.cache).put(id, result.clone(), valid_for, started);
            }
            Err(e) if e.is_transient() => {
                tracing::warn!(slack_user = %id, error = %e, "access could not be checked; refusing");
            }
            Err(e) => {
                tracing::info!(slack_user = %id, error = %e, "person not identified; refusing");
                lock(&inner.cache).put(id, result.clone(), inner.negative_ttl, started);
            }
        }
        result
    }

    /// The identity, and when the directory account expires if it does.
    async fn lookup(
        &self,
        id: &str,
        phase: &AtomicU8,
        deadline: tokio::time::Instant,
    ) -> Result<(Identity, Option<std::time::SystemTime>), AccessError> {
        let inner = &self.inner;
        let mut roles: BTreeSet<String> = inner.roles.values().filter(|r| r.slack_users.contains(id)).map(|r| r.name.clone()).collect();
        let static_mail = inner.static_mail.get(id).cloned();
        let Some(dir) = &inner.directory else {
            return Ok((Identity { slack_user: id.into(), email: static_mail, dn: None, roles, groups: BTreeSet::new() }, None));
        };
        let email = match static_mail {
            Some(m) => m,
            None => match &inner.slack {
                Some(slack) => {
                    phase.store(PHASE_SLACK, Ordering::Relaxed);
                    slack.email_of(id, deadline).await?
                }
                None => {
                    return Err(AccessError::UnknownUser(format!(
                        "iaas does not know the e-mail address of the Slack user {id}, so it cannot find you in the directory. Ask IT to add you to the policy's [identity.slack_users]."
                    )))
                }
            },
        };
        phase.store(PHASE_DIRECTORY, Ordering::Relaxed);
        let user = dir.find_user_by_mail(&email).await.map_err(from_directory)?;
        let groups = dir.groups_of(&user).await.map_err(from_directory)?;
        for g in &groups {
            if let Some(rs) = inner.group_roles.get(&g.to_lowercase()) {
                roles.extend(rs.iter().cloned());
            }
        }
        let groups = groups.iter().map(|g| dn_key(g)).collect();
        Ok((Identity { slack_user: id.into(), email: Some(user.mail), dn: Some(user.dn), roles, groups }, user.expires))
    }

    /// Forgets what the cache knows about `slack_user` (e.g. after an admin changed their groups).
    pub fn forget(&self, slack_user: &str) {
        lock(&self.inner.cache).remove(slack_user.trim());
    }

    /// Forgets everybody.
    pub fn forget_all(&self) {
        lock(&self.inner.cache).clear();
    }

    /// May `who` run `command` (the command table's name: `"power"`, `"vm list"`, …)? Allowed
    /// when one of their roles lists it or `"*"`.
    pub fn may_run(&self, who: &Identity, command: &str) -> Decision {
        let command = normalize_command(command);
        if command.is_empty() || command == "*" {
            return Decision::Deny("That is not a command, so nothing was run.".into());
        }
        let mine: Vec<&CompiledRole> = self.my_roles(who).collect();
        if mine.iter().any(|r| r.all_commands || r.commands.contains(&command)) {
            return Decision::Allow;
        }
        let hint = self.grant_hint(&command);
        Decision::Deny(match (mine.is_empty(), hint) {
            (true, Some(h)) => {
                format!("You have no iaas role, so you may not run `{command}`: ask IT for {h}.")
            }
            (false, Some(h)) => format!("You may not run `{command}`: ask IT for {h}."),
            (_, None) => format!("You may not run `{command}`: no iaas role allows it."),
        })
    }

    /// May `who` act on a VM whose `iaas.owner` attribute is `vm_owner` and whose parent folder
    /// is named `vm_folder`? A role with scope `all` may act on every VM; scope `owned` on VMs
    /// whose owner is `who.slack_user` and on VMs in one of the role's `folders`.
    pub fn may_touch(&self, who: &Identity, vm_owner: Option<&str>, vm_folder: Option<&str>) -> Decision {
        let mine: Vec<&CompiledRole> = self.my_roles(who).collect();
        if mine.is_empty() {
            return Decision::Deny("You have no iaas role, so you may not act on this VM. Ask IT for access.".into());
        }
        if mine.iter().any(|r| r.scope == Scope::All) {
            return Decision::Allow;
        }
        let owner = vm_owner.map(str::trim).filter(|o| !o.is_empty());
        if owner.is_some() && owner == Some(who.slack_user.trim()) {
            return Decision::Allow;
        }
        let folder = vm_folder.map(str::trim).filter(|f| !f.is_empty());
        if let Some(folder) = folder {
            if mine.iter().any(|r| r.folders.iter().any(|p| p.matches(folder))) {
                return Decision::Allow;
            }
        }
        let folders: BTreeSet<&str> = mine.iter().flat_map(|r| r.folders.iter().map(|p| p.as_str())).collect();
        let allowed = if folders.is_empty() {
            "only on VMs you own".to_owned()
        } else {
            let list = folders.iter().map(|f| format!("`{f}`")).collect::<Vec<_>>().join(", ");
            let s = if folders.len() == 1 { "" } else { "s" };
            format!("only on VMs you own and on VMs in the folder{s} {list}")
        };
        let why = if owner.is_some() { "this VM belongs to someone else" } else { "this VM has no recorded owner" };
        Decision::Deny(format!("You may act {allowed}, and {why}. Ask its owner, or IT."))
    }

    /// The caps that apply to `who`, widest wins: a field is `None` (no cap) when any of their
    /// roles has no quota or leaves that field out, else the largest of their roles' values.
    /// Someone with no role gets zero everywhere.
    pub fn quota(&self, who: &Identity) -> Quota {
        let mine: Vec<&CompiledRole> = self.my_roles(who).collect();
        if mine.is_empty() {
            return Quota { vms: Some(0), cpus: Some(0), memory_gb: Some(0) };
        }
        let widest = |f: fn(&Quota) -> Option<u32>| -> Option<u32> {
            let mut max = 0;
            for r in &mine {
                match r.quota.as_ref().and_then(f) {
                    Some(v) => max = max.max(v),
                    None => return None,
                }
            }
            Some(max)
        };
        Quota { vms: widest(|q| q.vms), cpus: widest(|q| q.cpus), memory_gb: widest(|q| q.memory_gb) }
    }

    /// Counts one `command` by `who` (a Slack user id) at `now` against `[limits]`: at most
    /// `per_user_per_minute` commands in any 60 s, and `per_command_per_minute[command]` of that
    /// command. `Err(n)`: refused (and not counted); a slot frees in `n` s (at least 1).
    pub fn rate_limit(&self, who: &str, command: &str, now: Instant) -> Result<(), u64> {
        let command = normalize_command(command);
        lock(&self.inner.limiter).check(who.trim(), &command, now)
    }

    /// The names of the policy's roles.
    /// How long an identity (account standing, groups, roles) may be trusted without asking the
    /// directory again (`[identity].cache_ttl_secs`).
    pub fn identity_ttl(&self) -> Duration {
        self.inner.ttl
    }

    /// The Slack user id of the person with this e-mail address, when Slack's Web API is
    /// configured (`users.lookupByEmail`): someone signed in elsewhere (the web console) then acts
    /// as the same person as in Slack (their requests and leases). `None` without Slack or when
    /// Slack knows nobody by it.
    pub async fn slack_user_by_email(&self, email: &str) -> Result<Option<String>, AccessError> {
        match &self.inner.slack {
            Some(slack) => slack.id_by_email(email).await,
            None => Ok(None),
        }
    }

    pub fn role_names(&self) -> impl Iterator<Item = &str> {
        self.inner.roles.keys().map(String::as_str)
    }

    fn my_roles<'a>(&'a self, who: &'a Identity) -> impl Iterator<Item = &'a CompiledRole> {
        who.roles.iter().filter_map(|r| self.inner.roles.get(r))
    }

    /// "the `users` role (the directory group iaas-users)" for the narrowest role that grants
    /// `command`, preferring explicit grants over `*`.
    fn grant_hint(&self, command: &str) -> Option<String> {
        let roles = self.inner.roles.values();
        let explicit = roles.clone().filter(|r| r.commands.contains(command)).min_by_key(|r| r.commands.len());
        let role = explicit.or_else(|| roles.clone().find(|r| r.all_commands))?;
        Some(match role.group_names.first() {
            Some(g) if self.inner.directory.is_some() => {
                format!("the `{}` role (the directory group {g})", role.name)
            }
            _ => format!("the `{}` role", role.name),
        })
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Slack user ids: `U` or `W` then capital letters and digits.
fn valid_slack_id(id: &str) -> bool {
    (2..=32).contains(&id.len())
        && matches!(id.as_bytes()[0], b'U' | b'W')
        && id.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

/// The `cn` of `cn=iaas-users,ou=…` (the whole DN when it does not start with `cn=`).
fn group_name(dn: &str) -> String {
    let Some(rest) = dn.get(..3).filter(|p| p.eq_ignore_ascii_case("cn=")).map(|_| &dn[3..]) else {
        return dn.to_owned();
    };
    let mut out = String::new();
    let mut escaped = false;
    for c in rest.chars() {
        if escaped {
            out.push(c);
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == ',' || c == '+' {
            break;
        } else {
            out.push(c);
        }
    }
    out
}

fn resolve_error(role: &str, dn: &str, e: DirectoryError) -> AccessError {
    match e {
        DirectoryError::NoSuchGroup { .. } => AccessError::Config(format!(
            "Role `{role}` names the group {dn:?}, which does not exist in the directory. Check [roles.{role}].groups in the policy file for a typo."
        )),
        DirectoryError::Config { problem } => AccessError::Config(format!(
            "Role `{role}` names the group {dn:?}, which cannot be used: {problem}. Check [roles.{role}].groups in the policy file."
        )),
        other => AccessError::DirectoryUnavailable(format!(
            "The group {dn:?} of role `{role}` could not be checked at start-up. {other}"
        )),
    }
}

fn from_directory(e: DirectoryError) -> AccessError {
    match e {
        DirectoryError::NoSuchUser { .. } => AccessError::UnknownUser(e.to_string()),
        // Expired and locked-out accounts are refused as disabled ones are, each with its sentence.
        DirectoryError::Disabled { .. } | DirectoryError::Expired { .. } | DirectoryError::LockedOut { .. } => {
            AccessError::Disabled(e.to_string())
        }
        DirectoryError::Ambiguous { .. } => AccessError::Ambiguous(e.to_string()),
        other => AccessError::DirectoryUnavailable(other.to_string()),
    }
}

#[cfg(test)]
mod tests;
