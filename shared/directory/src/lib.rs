//! Who is this person in the directory, and which groups are they in?
//!
//! [`Directory`] maps a mail address (what Slack's `users.info` gives us) to an Active
//! Directory / LDAP account ([`DirectoryUser`]) and to the transitive set of groups it belongs to,
//! checks that a policy's group DNs exist ([`Directory::resolve_group`]), and verifies a login and
//! password ([`Directory::authenticate`]) for HTTP Basic on the REST API.
//!
//! Invariants:
//! - Every operation opens its own connection and binds as the service account; every bind's
//!   result code is checked (ldap3 returns `Ok` even for a failed bind). No connection is reused,
//!   so there is no stale-connection state to get wrong; the price is one TCP (+TLS) handshake
//!   and one bind per call, negligible at chat-ops rates.
//! - Connect (TCP + TLS + StartTLS) is bounded by `connect_timeout`, every LDAP operation by
//!   `op_timeout`.
//! - TLS always verifies the server: against `ca_file` when set, else the system roots.
//! - Filter values are escaped (`ldap_escape`); searches from the base DN are paged, with a page
//!   size that adapts to the server's limit (smaller pages, then no paging, when refused).
//! - An account is refused ([`Standing`]) when disabled (AD `userAccountControl`), expired (AD
//!   `accountExpires`) or locked out (AD `lockoutTime` within the domain's `lockoutDuration`,
//!   OpenLDAP ppolicy `pwdAccountLockedTime`).
//! - Group membership is found by walking `memberOf` upwards (user → groups → their groups …) with
//!   a visited set and a depth bound. AD's LDAP_MATCHING_RULE_IN_CHAIN is deliberately not used:
//!   OpenLDAP silently matches nothing for it. As with AD's own `memberOf`, the primary group
//!   (`primaryGroupID`, usually Domain Users) is not included.
//! - Group DNs are returned exactly as the server spells them (e.g. OpenLDAP writes
//!   `cn=Ops\2C Tier (2),…` for `cn=Ops\, Tier (2),…`); [`Directory::resolve_group`] gives a policy
//!   DN the same spelling, so the two can be compared as strings.

mod error;

use std::collections::{BTreeSet, HashSet};
use std::fmt;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use ldap3::adapters::PagedResults;
use ldap3::{ldap_escape, Ldap, LdapConnAsync, LdapConnSettings, LdapError, LdapResult, ResultEntry, Scope, SearchEntry};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};

pub use error::DirectoryError;

/// Default bound on how many levels of group nesting [`Directory::groups_of`] follows.
pub const DEFAULT_MAX_GROUP_DEPTH: usize = 10;

/// The first page size asked for; a server with a lower limit gets smaller pages (see
/// [`Directory::search_people`]).
const PAGE_SIZE: i32 = 500;
/// Page sizes tried after the server refused a bigger one with adminLimitExceeded or
/// sizeLimitExceeded; 0 means a search without the paged-results control.
const SMALLER_PAGES: &[i32] = &[100, 10, 0];
/// userAccountControl flag ACCOUNTDISABLE.
const UAC_ACCOUNTDISABLE: i64 = 0x2;
const USER_ATTRS: &[&str] = &[
    "mail",
    "displayName",
    "cn",
    "memberOf",
    "userAccountControl",
    "accountExpires",
    "lockoutTime",
    "pwdAccountLockedTime",
    "objectClass",
];
/// 100-ns intervals between 1601-01-01 (AD's epoch) and 1970-01-01.
const FILETIME_UNIX_EPOCH: i64 = 116_444_736_000_000_000;
/// Object classes [`Directory::resolve_group`] accepts as "a group".
const GROUP_CLASSES: &[&str] = &["group", "groupOfNames", "groupOfUniqueNames", "groupOfURLs"];

/// How to reach the directory. `Debug` never prints the bind password.
#[derive(Clone)]
pub struct DirectoryConfig {
    /// `ldap://host[:port]` or `ldaps://host[:port]`.
    pub url: String,
    /// The service account (a DN; AD also accepts `user@domain`).
    pub bind_dn: String,
    pub bind_password: String,
    /// Where users are searched (subtree).
    pub base_dn: String,
    /// PEM file with the CA certificate(s) to trust for LDAPS/StartTLS; `None` = system roots.
    pub ca_file: Option<PathBuf>,
    /// Upgrade an `ldap://` connection with StartTLS.
    pub starttls: bool,
    /// Bound on TCP connect + TLS handshake (+ StartTLS).
    pub connect_timeout: Duration,
    /// Bound on each LDAP operation (bind, search, each page/entry of a search).
    pub op_timeout: Duration,
    /// Levels of group nesting followed by [`Directory::groups_of`]; at least 1.
    pub max_group_depth: usize,
}

impl DirectoryConfig {
    /// A configuration with defaults: system CA roots, no StartTLS, 5 s connect timeout, 10 s
    /// operation timeout, group depth [`DEFAULT_MAX_GROUP_DEPTH`].
    pub fn new(
        url: impl Into<String>,
        bind_dn: impl Into<String>,
        bind_password: impl Into<String>,
        base_dn: impl Into<String>,
    ) -> DirectoryConfig {
        DirectoryConfig {
            url: url.into(),
            bind_dn: bind_dn.into(),
            bind_password: bind_password.into(),
            base_dn: base_dn.into(),
            ca_file: None,
            starttls: false,
            connect_timeout: Duration::from_secs(5),
            op_timeout: Duration::from_secs(10),
            max_group_depth: DEFAULT_MAX_GROUP_DEPTH,
        }
    }
}

impl fmt::Debug for DirectoryConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DirectoryConfig")
            .field("url", &self.url)
            .field("bind_dn", &self.bind_dn)
            .field("bind_password", &"***")
            .field("base_dn", &self.base_dn)
            .field("ca_file", &self.ca_file)
            .field("starttls", &self.starttls)
            .field("connect_timeout", &self.connect_timeout)
            .field("op_timeout", &self.op_timeout)
            .field("max_group_depth", &self.max_group_depth)
            .finish()
    }
}

/// A person's directory account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryUser {
    /// The entry's DN as the server spells it.
    pub dn: String,
    /// The matched mail address (the server's value; the first one when found by login).
    pub mail: String,
    /// `displayName`, else `cn`.
    pub display_name: Option<String>,
    /// Direct groups (`memberOf`), as the server spells them.
    pub member_of: Vec<String>,
    /// When the account expires (AD `accountExpires`), if it is set to: nothing may remember
    /// the account as usable past it.
    pub expires: Option<SystemTime>,
}

/// Whether a directory account may be used, from its own attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Standing {
    Active,
    /// AD `userAccountControl` has ACCOUNTDISABLE.
    Disabled,
    /// AD `accountExpires` is past.
    Expired,
    /// OpenLDAP ppolicy `pwdAccountLockedTime` is present: locked (a permanent admin lock or a
    /// lockout the next successful bind clears; the bot never binds as the person, so it
    /// cannot tell a lapsed one and refuses, failing closed).
    Locked,
    /// AD `lockoutTime` is non-zero (a FILETIME): locked unless the domain's lockout duration
    /// has passed since, which needs the domain entry's `lockoutDuration`.
    LockedAt(i64),
}

/// A handle on the directory. Cheap to clone; every call opens its own connection.
#[derive(Clone)]
pub struct Directory {
    inner: Arc<Inner>,
}

struct Inner {
    cfg: DirectoryConfig,
    tls: Option<Arc<ClientConfig>>,
    /// The page size this server accepted last (0 = no paging), so a server with a low limit
    /// is asked what it takes straight away after the first refusal.
    page_size: AtomicI32,
}

impl fmt::Debug for Directory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Directory").field("cfg", &self.inner.cfg).finish()
    }
}

#[derive(Clone, Copy)]
enum Phase {
    Connect,
    Op,
}

impl Directory {
    /// Checks the configuration and loads the CA file; does not touch the network.
    pub fn new(cfg: DirectoryConfig) -> Result<Directory, DirectoryError> {
        let problem = |p: String| Err(DirectoryError::Config { problem: p });
        let lower = cfg.url.trim().to_ascii_lowercase();
        let ldaps = if let Some(rest) = lower.strip_prefix("ldaps://") {
            if rest.trim_end_matches('/').is_empty() {
                return problem(format!("the directory URL {:?} names no host", cfg.url));
            }
            true
        } else if let Some(rest) = lower.strip_prefix("ldap://") {
            if rest.trim_end_matches('/').is_empty() {
                return problem(format!("the directory URL {:?} names no host", cfg.url));
            }
            false
        } else {
            return problem(format!("the directory URL {:?} must start with ldap:// or ldaps://", cfg.url));
        };
        if cfg.bind_dn.trim().is_empty() {
            return problem("the service account's bind DN is empty".into());
        }
        if cfg.bind_password.is_empty() {
            return problem(
                "the service account's bind password is empty; LDAP treats a bind with a DN and an empty \
                 password as an unauthenticated bind that \"succeeds\" without checking anything, so it is refused"
                    .into(),
            );
        }
        if cfg.base_dn.trim().is_empty() {
            return problem("the base DN is empty".into());
        }
        if ldaps && cfg.starttls {
            return problem("starttls is set on an ldaps:// URL; use one or the other".into());
        }
        if cfg.connect_timeout.is_zero() || cfg.op_timeout.is_zero() {
            return problem("the directory connect and operation timeouts must be greater than zero".into());
        }
        if cfg.max_group_depth == 0 {
            return problem("max_group_depth must be at least 1".into());
        }
        let tls = if ldaps || cfg.starttls {
            Some(tls_config(cfg.ca_file.as_ref())?)
        } else {
            if let Some(ca) = &cfg.ca_file {
                return problem(format!(
                    "a CA file ({}) is configured but the URL is plain ldap:// without starttls, so it would \
                     never be used; use ldaps:// or turn on starttls",
                    ca.display()
                ));
            }
            tracing::warn!(
                url = %cfg.url,
                "directory connection is plain LDAP without TLS: the service account's password crosses the network in clear text"
            );
            None
        };
        Ok(Directory { inner: Arc::new(Inner { cfg, tls, page_size: AtomicI32::new(PAGE_SIZE) }) })
    }

    pub fn config(&self) -> &DirectoryConfig {
        &self.inner.cfg
    }

    /// The one person account whose `mail` equals `mail` (the server's matching rule, so
    /// case-insensitive for `mail`). Zero → `NoSuchUser`, several → `Ambiguous`, an account with
    /// userAccountControl ACCOUNTDISABLE → `Disabled`.
    pub async fn find_user_by_mail(&self, mail: &str) -> Result<DirectoryUser, DirectoryError> {
        let wanted = mail.trim();
        // Control characters never belong in a mail address, and some servers truncate at NUL
        // (OpenLDAP matches `ann@x\00` to `ann@x`), so they are refused before any search.
        if wanted.is_empty() || wanted.chars().any(char::is_control) {
            return Err(DirectoryError::NoSuchUser { mail: mail.to_owned() });
        }
        let filter = format!("(&(objectClass=person)(mail={}))", ldap_escape(wanted));
        let (user, standing) = match self.one_person_with_standing(&filter, wanted).await? {
            Ok(found) => found,
            Err(0) => return Err(DirectoryError::NoSuchUser { mail: wanted.to_owned() }),
            Err(count) => return Err(DirectoryError::Ambiguous { mail: wanted.to_owned(), count }),
        };
        refuse(standing, wanted)?;
        tracing::debug!(dn = %user.dn, groups = user.member_of.len(), "directory user found by mail");
        Ok(user)
    }

    /// Every group `user` belongs to, directly or through nesting, as DNs in the server's own
    /// spelling. Follows `memberOf` upwards at most `max_group_depth` levels; cycles end.
    pub async fn groups_of(&self, user: &DirectoryUser) -> Result<BTreeSet<String>, DirectoryError> {
        let mut ldap = self.service_conn().await?;
        let walked = self.walk_groups(&mut ldap, user).await;
        self.close(ldap).await;
        walked
    }

    /// Checks that `dn` names a group the service account can read and returns the DN as the
    /// server spells it (case, escaping). A typo → `NoSuchGroup`; an entry that is not a group →
    /// `Config`. Meant for start-up checks of a policy's group DNs.
    pub async fn resolve_group(&self, dn: &str) -> Result<String, DirectoryError> {
        let wanted = dn.trim();
        if wanted.is_empty() {
            return Err(DirectoryError::NoSuchGroup { dn: dn.to_owned() });
        }
        let mut ldap = self.service_conn().await?;
        let read = self.read_entry(&mut ldap, wanted, vec!["objectClass"]).await;
        self.close(ldap).await;
        let Some(entry) = read? else {
            return Err(DirectoryError::NoSuchGroup { dn: wanted.to_owned() });
        };
        let classes = values(&entry, "objectClass");
        if !classes.iter().any(|c| GROUP_CLASSES.iter().any(|g| g.eq_ignore_ascii_case(c))) {
            return Err(DirectoryError::Config {
                problem: format!("{} is not a group (its object classes are {})", entry.dn, classes.join(", ")),
            });
        }
        Ok(entry.dn)
    }

    /// Verifies `login` (mail, uid, sAMAccountName or userPrincipalName) and `password`: finds the
    /// account with the service account, then binds as it on a fresh connection. An unknown login,
    /// an empty password and a wrong password all give `BadCredentials`; a disabled account gives
    /// `Disabled` (only once the password was right).
    pub async fn authenticate(&self, login: &str, password: &str) -> Result<DirectoryUser, DirectoryError> {
        let login = login.trim();
        if login.is_empty() || login.chars().any(char::is_control) || password.is_empty() {
            // An empty password would be an unauthenticated bind, which servers accept.
            return Err(DirectoryError::BadCredentials);
        }
        let v = ldap_escape(login);
        let filter = format!("(&(objectClass=person)(|(mail={v})(uid={v})(sAMAccountName={v})(userPrincipalName={v})))");
        let (user, standing) = match self.one_person_with_standing(&filter, login).await? {
            Ok(found) => found,
            Err(0) => {
                tracing::debug!("authentication failed: no account for the login");
                return Err(DirectoryError::BadCredentials);
            }
            Err(count) => return Err(DirectoryError::Ambiguous { mail: login.to_owned(), count }),
        };

        let mut ldap = self.connect().await?;
        let bound = self.bind(&mut ldap, &user.dn, password).await;
        self.close(ldap).await;
        let res = bound?;
        match res.rc {
            0 => {}
            49 => {
                tracing::debug!(dn = %user.dn, detail = %describe(&res), "authentication failed: bind rejected");
                return Err(DirectoryError::BadCredentials);
            }
            _ => return Err(DirectoryError::Protocol { detail: format!("binding as {} failed: {}", user.dn, describe(&res)) }),
        }
        refuse(standing, &user.mail)?;
        Ok(user)
    }

    /// The one person `filter` finds (as the service account) with their account standing;
    /// `Err(count)` when it finds none or several.
    async fn one_person_with_standing(
        &self,
        filter: &str,
        wanted: &str,
    ) -> Result<Result<(DirectoryUser, Standing), usize>, DirectoryError> {
        let mut ldap = self.service_conn().await?;
        let found = self.search_people(&mut ldap, filter).await;
        let checked = match found.map(|found| one_person(found, wanted, SystemTime::now())) {
            Ok(Ok((user, standing))) => self.standing(&mut ldap, standing).await.map(|standing| Ok((user, standing))),
            Ok(Err(count)) => Ok(Err(count)),
            Err(e) => Err(e),
        };
        self.close(ldap).await;
        checked
    }

    // ---- connections -----------------------------------------------------------------------

    async fn connect(&self) -> Result<Ldap, DirectoryError> {
        let cfg = &self.inner.cfg;
        let mut settings = LdapConnSettings::new().set_conn_timeout(cfg.connect_timeout).set_starttls(cfg.starttls);
        if let Some(tls) = &self.inner.tls {
            settings = settings.set_config(tls.clone());
        }
        let (conn, ldap) = LdapConnAsync::with_settings(settings, cfg.url.trim()).await.map_err(|e| self.map_err(e, Phase::Connect))?;
        tokio::spawn(async move {
            if let Err(e) = conn.drive().await {
                tracing::debug!(error = %e, "directory connection ended with an error");
            }
        });
        Ok(ldap)
    }

    async fn bind(&self, ldap: &mut Ldap, dn: &str, password: &str) -> Result<LdapResult, DirectoryError> {
        ldap.with_timeout(self.inner.cfg.op_timeout).simple_bind(dn, password).await.map_err(|e| self.map_err(e, Phase::Op))
    }

    /// A fresh connection bound as the service account.
    async fn service_conn(&self) -> Result<Ldap, DirectoryError> {
        let cfg = &self.inner.cfg;
        let mut ldap = self.connect().await?;
        let res = match self.bind(&mut ldap, &cfg.bind_dn, &cfg.bind_password).await {
            Ok(res) => res,
            Err(e) => {
                self.close(ldap).await;
                return Err(e);
            }
        };
        if res.rc != 0 {
            self.close(ldap).await;
            tracing::warn!(bind_dn = %cfg.bind_dn, detail = %describe(&res), "directory service account bind rejected");
            return Err(DirectoryError::BindFailed { detail: describe(&res) });
        }
        Ok(ldap)
    }

    async fn close(&self, mut ldap: Ldap) {
        let _ = tokio::time::timeout(self.inner.cfg.op_timeout, ldap.unbind()).await;
    }

    // ---- reads -----------------------------------------------------------------------------

    /// Paged subtree search for people under the base DN; contacts (AD) are left out. A server
    /// whose paged-results limit is below the page size answers adminLimitExceeded (OpenLDAP's
    /// `limits … size.pr=`) or sizeLimitExceeded: the search is tried again with smaller pages,
    /// then without paging, and the size that worked is remembered.
    async fn search_people(&self, ldap: &mut Ldap, filter: &str) -> Result<Vec<SearchEntry>, DirectoryError> {
        let mut size = self.inner.page_size.load(Ordering::Relaxed);
        loop {
            match self.search_people_paged(ldap, filter, size).await? {
                Ok(people) => {
                    self.inner.page_size.store(size, Ordering::Relaxed);
                    return Ok(people);
                }
                Err(refused) => match SMALLER_PAGES.iter().copied().find(|&s| s < size || (size > 0 && s == 0)) {
                    Some(smaller) => {
                        tracing::info!(page_size = size, smaller, detail = %refused, "the directory refused the page size; asking for less");
                        size = smaller;
                    }
                    None => {
                        return Err(DirectoryError::Protocol { detail: format!("searching {}: {refused}", self.inner.cfg.base_dn) });
                    }
                },
            }
        }
    }

    /// One search with pages of `size` (0: no paging). `Ok(Err(why))` when the server refused
    /// the size: adminLimitExceeded or sizeLimitExceeded.
    async fn search_people_paged(
        &self,
        ldap: &mut Ldap,
        filter: &str,
        size: i32,
    ) -> Result<Result<Vec<SearchEntry>, String>, DirectoryError> {
        let cfg = &self.inner.cfg;
        let attrs = USER_ATTRS.to_vec();
        let searching = ldap.with_timeout(cfg.op_timeout);
        let started = if size > 0 {
            searching.streaming_search_with(PagedResults::new(size), cfg.base_dn.as_str(), Scope::Subtree, filter, attrs).await
        } else {
            searching.streaming_search(cfg.base_dn.as_str(), Scope::Subtree, filter, attrs).await
        };
        let mut stream = match started {
            Ok(stream) => stream,
            Err(LdapError::LdapResult { result }) if matches!(result.rc, 4 | 11) => return Ok(Err(describe(&result))),
            Err(e) => return Err(self.map_err(e, Phase::Op)),
        };
        let mut people = Vec::new();
        while let Some(re) = stream.next().await.map_err(|e| self.map_err(e, Phase::Op))? {
            if re.is_ref() || re.is_intermediate() {
                continue;
            }
            let entry = construct(re)?;
            if values(&entry, "objectClass").iter().any(|c| c.eq_ignore_ascii_case("contact")) {
                continue;
            }
            people.push(entry);
        }
        let res = stream.finish().await;
        match res.rc {
            0 => Ok(Ok(people)),
            // A sizeLimitExceeded with entries is a real limit on results, not on the page.
            4 if people.is_empty() => Ok(Err(describe(&res))),
            11 => Ok(Err(describe(&res))),
            32 => Err(DirectoryError::Config {
                problem: format!("the base DN {} does not exist (or the service account cannot see it)", cfg.base_dn),
            }),
            _ => Err(DirectoryError::Protocol { detail: format!("searching {}: {}", cfg.base_dn, describe(&res)) }),
        }
    }

    /// The account's standing once an AD lockout is weighed against the domain's
    /// `lockoutDuration` (read from the base DN's entry, the domain head in AD). A duration that
    /// cannot be read, or "until an admin unlocks", keeps the account locked.
    async fn standing(&self, ldap: &mut Ldap, standing: Standing) -> Result<Standing, DirectoryError> {
        let Standing::LockedAt(at) = standing else { return Ok(standing) };
        let base = self.inner.cfg.base_dn.clone();
        let duration = match self.read_entry(ldap, &base, vec!["lockoutDuration"]).await {
            Ok(Some(entry)) => values(&entry, "lockoutDuration").first().and_then(|v| v.trim().parse::<i64>().ok()),
            Ok(None) => None,
            Err(e) => {
                tracing::debug!(error = %e, "the domain's lockoutDuration cannot be read; a lockout stands");
                None
            }
        };
        Ok(match duration {
            // Negative 100-ns intervals; i64::MIN and 0 mean until an administrator unlocks.
            Some(d) if d < 0 && d != i64::MIN => {
                let until = at.saturating_add(d.unsigned_abs().min(i64::MAX as u64) as i64);
                if filetime(SystemTime::now()) >= until {
                    Standing::Active
                } else {
                    standing
                }
            }
            _ => standing,
        })
    }

    /// Base-scope read of one entry. `None` when the server says it does not exist, the DN is
    /// malformed, or it lies outside the server's naming contexts (referral).
    async fn read_entry(&self, ldap: &mut Ldap, dn: &str, attrs: Vec<&'static str>) -> Result<Option<SearchEntry>, DirectoryError> {
        let res = ldap
            .with_timeout(self.inner.cfg.op_timeout)
            .search(dn, Scope::Base, "(objectClass=*)", attrs)
            .await
            .map_err(|e| self.map_err(e, Phase::Op))?;
        let (entries, result) = (res.0, res.1);
        match result.rc {
            0 => {}
            10 | 32 | 34 => return Ok(None),
            _ => return Err(DirectoryError::Protocol { detail: format!("reading {dn}: {}", describe(&result)) }),
        }
        for re in entries {
            if !re.is_ref() && !re.is_intermediate() {
                return Ok(Some(construct(re)?));
            }
        }
        Ok(None)
    }

    async fn walk_groups(&self, ldap: &mut Ldap, user: &DirectoryUser) -> Result<BTreeSet<String>, DirectoryError> {
        let max_depth = self.inner.cfg.max_group_depth;
        let mut groups = BTreeSet::new();
        // Keys are lower-cased server spellings: the server writes one DN one way, and the case
        // folding only guards against a DirectoryUser built by hand.
        let mut seen: HashSet<String> = HashSet::new();
        let mut frontier: Vec<String> = user.member_of.clone();
        let mut depth = 0;
        while !frontier.is_empty() {
            frontier.retain(|dn| !seen.contains(&dn.to_lowercase()));
            if frontier.is_empty() {
                break;
            }
            if depth == max_depth {
                tracing::warn!(
                    user = %user.dn,
                    max_depth,
                    skipped = ?frontier,
                    "group nesting is deeper than max_group_depth; the groups above it are ignored"
                );
                break;
            }
            depth += 1;
            let mut next = Vec::new();
            for dn in frontier {
                if !seen.insert(dn.to_lowercase()) {
                    continue;
                }
                match self.read_entry(ldap, &dn, vec!["memberOf"]).await? {
                    Some(entry) => {
                        seen.insert(entry.dn.to_lowercase());
                        next.extend(member_of(&entry));
                        groups.insert(entry.dn);
                    }
                    None => {
                        // memberOf names it, so the membership stands; we just cannot go higher.
                        tracing::debug!(group = %dn, "group in memberOf cannot be read; not following it upwards");
                        groups.insert(dn);
                    }
                }
            }
            frontier = next;
        }
        Ok(groups)
    }

    // ---- errors ----------------------------------------------------------------------------

    fn map_err(&self, e: LdapError, phase: Phase) -> DirectoryError {
        let cfg = &self.inner.cfg;
        match e {
            LdapError::Timeout { .. } => DirectoryError::Timeout {
                secs: ceil_secs(match phase {
                    Phase::Connect => cfg.connect_timeout,
                    Phase::Op => cfg.op_timeout,
                }),
            },
            LdapError::Io { source } => match find_rustls_error(&source) {
                Some(tls) => DirectoryError::Unreachable { detail: tls_detail(tls) },
                None => DirectoryError::Unreachable { detail: format!("{}: {}", cfg.url, source) },
            },
            LdapError::Rustls { source } => DirectoryError::Unreachable { detail: tls_detail(&source) },
            LdapError::DNSName { .. } => {
                DirectoryError::Config { problem: format!("the host in {} cannot be used as a TLS server name", cfg.url) }
            }
            LdapError::UrlParsing { source } => {
                DirectoryError::Config { problem: format!("the directory URL {:?} is not valid: {source}", cfg.url) }
            }
            LdapError::UnknownScheme(s) => DirectoryError::Config { problem: format!("the directory URL scheme {s:?} is not supported") },
            LdapError::OpSend { .. } | LdapError::ResultRecv { .. } | LdapError::EndOfStream => {
                DirectoryError::Unreachable { detail: format!("the connection to {} was closed", cfg.url) }
            }
            LdapError::LdapResult { result } => match phase {
                // The only LDAP result during connect is StartTLS's.
                Phase::Connect => DirectoryError::Protocol { detail: format!("the server refused StartTLS: {}", describe(&result)) },
                Phase::Op => DirectoryError::Protocol { detail: describe(&result) },
            },
            other => DirectoryError::Protocol { detail: other.to_string() },
        }
    }
}

fn tls_config(ca_file: Option<&PathBuf>) -> Result<Arc<ClientConfig>, DirectoryError> {
    let config_err = |problem: String| DirectoryError::Config { problem };
    let mut roots = RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let pem = std::fs::read(path).map_err(|e| config_err(format!("cannot read the CA file {}: {e}", path.display())))?;
            let mut added = 0;
            for cert in CertificateDer::pem_slice_iter(&pem) {
                let cert = cert.map_err(|e| config_err(format!("the CA file {} is not valid PEM: {e}", path.display())))?;
                roots.add(cert).map_err(|e| config_err(format!("a certificate in {} is not usable: {e}", path.display())))?;
                added += 1;
            }
            if added == 0 {
                return Err(config_err(format!("the CA file {} holds no PEM certificate", path.display())));
            }
        }
        None => {
            let native = rustls_native_certs::load_native_certs();
            for cert in native.certs {
                let _ = roots.add(cert);
            }
            if roots.is_empty() {
                return Err(config_err("TLS is on but no CA file is configured and no system CA certificates were found".into()));
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| config_err(format!("TLS set-up failed: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Picks the single person among `found`, with their standing at `now`; `Err(count)` when
/// there is not exactly one.
fn one_person(mut found: Vec<SearchEntry>, wanted_mail: &str, now: SystemTime) -> Result<(DirectoryUser, Standing), usize> {
    if found.len() != 1 {
        return Err(found.len());
    }
    let entry = found.remove(0);
    let mails = values(&entry, "mail");
    let mail = mails.iter().find(|m| m.eq_ignore_ascii_case(wanted_mail)).or_else(|| mails.first()).cloned().unwrap_or_default();
    let display_name = values(&entry, "displayName").into_iter().next().or_else(|| values(&entry, "cn").into_iter().next());
    let number = |name: &str| values(&entry, name).first().and_then(|v| v.trim().parse::<i64>().ok());
    // 0 and i64::MAX (0x7FFFFFFFFFFFFFFF) mean "never expires".
    let expires_at = number("accountExpires").filter(|&v| v != 0 && v != i64::MAX);
    let standing = if number("userAccountControl").is_some_and(|uac| uac & UAC_ACCOUNTDISABLE != 0) {
        Standing::Disabled
    } else if expires_at.is_some_and(|at| at <= filetime(now)) {
        Standing::Expired
    } else if !values(&entry, "pwdAccountLockedTime").is_empty() {
        Standing::Locked
    } else if let Some(at) = number("lockoutTime").filter(|&v| v != 0) {
        Standing::LockedAt(at)
    } else {
        Standing::Active
    };
    let member_of = member_of(&entry);
    let expires = expires_at.map(from_filetime);
    Ok((DirectoryUser { dn: entry.dn, mail, display_name, member_of, expires }, standing))
}

/// The refusal for an account that may not be used.
fn refuse(standing: Standing, mail: &str) -> Result<(), DirectoryError> {
    let mail = mail.to_owned();
    match standing {
        Standing::Active => Ok(()),
        Standing::Disabled => Err(DirectoryError::Disabled { mail }),
        Standing::Expired => Err(DirectoryError::Expired { mail }),
        Standing::Locked | Standing::LockedAt(_) => Err(DirectoryError::LockedOut { mail }),
    }
}

/// A time as AD's FILETIME (100-ns intervals since 1601-01-01 UTC), saturating.
fn filetime(t: SystemTime) -> i64 {
    let since_unix = match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_nanos() / 100).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_nanos() / 100).map(|v| -v).unwrap_or(i64::MIN),
    };
    since_unix.saturating_add(FILETIME_UNIX_EPOCH)
}

/// A FILETIME as a time (before 1970 saturates to the epoch: long past either way).
fn from_filetime(ft: i64) -> SystemTime {
    let since_unix = u64::try_from(ft.saturating_sub(FILETIME_UNIX_EPOCH)).unwrap_or(0);
    SystemTime::UNIX_EPOCH + Duration::from_nanos(since_unix.saturating_mul(100))
}

/// Values of `memberOf`. AD hands out very long lists in ranges (`memberOf;range=0-1499`); those
/// values are taken, but the rest of the range is not fetched.
fn member_of(entry: &SearchEntry) -> Vec<String> {
    let mut out = values(entry, "memberOf");
    for (name, vals) in &entry.attrs {
        if name.len() > 9 && name[..9].eq_ignore_ascii_case("memberOf;") {
            tracing::warn!(dn = %entry.dn, attribute = %name, "memberOf came back in ranges; only the first range is used");
            out.extend(vals.iter().cloned());
        }
    }
    out
}

/// An attribute's values, matching the name case-insensitively (servers may echo either case).
fn values(entry: &SearchEntry, name: &str) -> Vec<String> {
    entry.attrs.iter().filter(|(k, _)| k.eq_ignore_ascii_case(name)).flat_map(|(_, v)| v.iter().cloned()).collect()
}

/// `SearchEntry::construct` panics on a malformed entry; a server's bytes must not panic us.
fn construct(re: ResultEntry) -> Result<SearchEntry, DirectoryError> {
    std::panic::catch_unwind(AssertUnwindSafe(|| SearchEntry::construct(re)))
        .map_err(|_| DirectoryError::Protocol { detail: "the server sent a search result entry that could not be parsed".into() })
}

fn describe(res: &LdapResult) -> String {
    let name = match res.rc {
        0 => "success",
        1 => "operationsError",
        2 => "protocolError",
        3 => "timeLimitExceeded",
        4 => "sizeLimitExceeded",
        7 => "authMethodNotSupported",
        8 => "strongerAuthRequired",
        10 => "referral",
        11 => "adminLimitExceeded",
        12 => "unavailableCriticalExtension",
        13 => "confidentialityRequired",
        32 => "noSuchObject",
        34 => "invalidDNSyntax",
        48 => "inappropriateAuthentication",
        49 => "invalidCredentials",
        50 => "insufficientAccessRights",
        51 => "busy",
        52 => "unavailable",
        53 => "unwillingToPerform",
        80 => "other",
        _ => "",
    };
    let mut s = if name.is_empty() { format!("result code {}", res.rc) } else { format!("{name} ({})", res.rc) };
    let text = res.text.trim().trim_end_matches('\0');
    if !text.is_empty() {
        s.push_str(": ");
        s.push_str(text);
    }
    s
}

fn find_rustls_error(e: &std::io::Error) -> Option<&rustls::Error> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = e.get_ref().map(|inner| inner as _);
    while let Some(err) = cur {
        if let Some(tls) = err.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        cur = err.source();
    }
    None
}

fn tls_detail(e: &rustls::Error) -> String {
    match e {
        rustls::Error::InvalidCertificate(why) => format!(
            "TLS: the server's certificate was not accepted ({why:?}); check that ca_file holds the CA that signed it and that the URL's host is in the certificate"
        ),
        other => format!("TLS handshake failed: {other}"),
    }
}

fn ceil_secs(d: Duration) -> u64 {
    let s = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    s.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> DirectoryConfig {
        DirectoryConfig::new("ldap://127.0.0.1:1/", "cn=svc,dc=example,dc=test", "pw", "dc=example,dc=test")
    }

    #[test]
    fn debug_hides_the_password() {
        let mut c = cfg();
        c.bind_password = "hunter2-very-secret".into();
        let dir = Directory::new(c.clone()).unwrap();
        assert!(!format!("{c:?}").contains("hunter2"));
        assert!(!format!("{dir:?}").contains("hunter2"));
        assert!(format!("{c:?}").contains("***"));
    }

    #[test]
    fn empty_bind_password_is_refused() {
        let mut c = cfg();
        c.bind_password = String::new();
        let err = Directory::new(c).unwrap_err();
        assert!(matches!(&err, DirectoryError::Config { problem } if problem.contains("password is empty")), "{err}");
    }

    #[test]
    fn bad_configs_are_refused() {
        type Change = Box<dyn Fn(&mut DirectoryConfig)>;
        let cases: Vec<(&str, Change)> = vec![
            ("http", Box::new(|c| c.url = "http://x/".into())),
            ("no host", Box::new(|c| c.url = "ldap://".into())),
            ("empty bind dn", Box::new(|c| c.bind_dn = " ".into())),
            ("empty base", Box::new(|c| c.base_dn = String::new())),
            (
                "ldaps+starttls",
                Box::new(|c| {
                    c.url = "ldaps://x/".into();
                    c.starttls = true;
                }),
            ),
            ("unused CA", Box::new(|c| c.ca_file = Some("/etc/hostname".into()))),
            (
                "missing CA",
                Box::new(|c| {
                    c.url = "ldaps://x/".into();
                    c.ca_file = Some("/nonexistent/ca.pem".into());
                }),
            ),
            (
                "CA without PEM",
                Box::new(|c| {
                    c.url = "ldaps://x/".into();
                    c.ca_file = Some("/etc/hostname".into());
                }),
            ),
            ("zero timeout", Box::new(|c| c.op_timeout = Duration::ZERO)),
            ("zero depth", Box::new(|c| c.max_group_depth = 0)),
        ];
        for (name, change) in cases {
            let mut c = cfg();
            change(&mut c);
            match Directory::new(c) {
                Err(DirectoryError::Config { .. }) => {}
                other => panic!("{name}: expected a Config error, got {other:?}"),
            }
        }
    }

    #[test]
    fn futures_are_send_and_directory_is_sync() {
        fn send<T: Send>(_: &T) {}
        fn sync<T: Send + Sync + Clone>() {}
        sync::<Directory>();
        let dir = Directory::new(cfg()).unwrap();
        let user = DirectoryUser { dn: String::new(), mail: String::new(), display_name: None, member_of: vec![], expires: None };
        send(&dir.find_user_by_mail("a"));
        send(&dir.groups_of(&user));
        send(&dir.resolve_group("a"));
        send(&dir.authenticate("a", "b"));
    }

    #[test]
    fn timeouts_round_up_to_whole_seconds() {
        let e = DirectoryError::Timeout { secs: ceil_secs(Duration::from_millis(300)) };
        assert!(e.to_string().contains("within 1 s"), "{e}");
        assert_eq!(ceil_secs(Duration::from_millis(1500)), 2);
    }
}
