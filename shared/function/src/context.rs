//! What a function needs at run time, built once per process from the environment.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use iaas_config::{ConfigError, Policy, Secret};
use iaas_slack::{Responder, WebApi};
use iaas_store::Store;
use iaas_vsphere::demo::DemoInventory;
use iaas_vsphere::soap::{SoapClient, SoapConfig};
use iaas_vsphere::{VcError, Vcenter};

/// The SQLite file used when `DATABASE_URL` is unset.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://iaas.db";

#[derive(Clone)]
pub struct Context {
    pub vcenter: Arc<dyn Vcenter>,
    pub store: Store,
    pub responder: Responder,
    pub shared_secret: Secret,
    pub policy: Arc<Policy>,
    /// The second access check (the gateway made the first); `None` when the policy has no
    /// roles. Built without a directory: the caller's roles come signed in the invocation.
    pub access: Option<iaas_access::Access>,
    /// Who owns a VM, with their directory groups, for `lease.exclude_owner_groups`; `None`
    /// when that list is empty or no directory is configured. Unlike `access` it asks the directory (and Slack's
    /// `users.info`): an owner is not the caller, so nobody signed their groups in.
    pub owners: Option<iaas_access::Access>,
    /// How long a claim on an invocation lasts unrenewed; the worker holding it renews it while
    /// it runs, so a lapsed claim means the worker died (`IAAS_CLAIM_LEASE_SECS`, default 60).
    pub claim_lease: Duration,
    /// Slack's Web API as the bot (`SLACK_BOT_TOKEN`, `SLACK_API_URL`): reminders, notices and
    /// decommission progress. Without a token its calls fail with a sentence saying so.
    pub slack: WebApi,
    /// Where the web console is (`IAAS_CONSOLE_URL`): decommission progress links to each
    /// request's page there.
    pub console_url: Option<String>,
}

/// The claim lease when `IAAS_CLAIM_LEASE_SECS` is unset.
pub const DEFAULT_CLAIM_LEASE: Duration = Duration::from_secs(60);

/// Why a process cannot start. Each `Display` is the whole line: the inner errors are not also
/// kept as a `source`, so printing the error chain (`{:#}`) does not repeat them.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("DATABASE_URL: {0}")]
    Store(iaas_store::StoreError),
    #[error("IAAS_CONFIG: {0}")]
    Access(iaas_access::AccessError),
}

impl From<iaas_store::StoreError> for StartupError {
    fn from(e: iaas_store::StoreError) -> Self {
        StartupError::Store(e)
    }
}

impl From<iaas_access::AccessError> for StartupError {
    fn from(e: iaas_access::AccessError) -> Self {
        StartupError::Access(e)
    }
}

impl Context {
    /// A context over these peers with everything else off: no roles, no owner look-ups, no
    /// Slack token, no console, answers only to Slack's own origin. For tests and benchmarks;
    /// set fields afterwards for more.
    pub fn new(vcenter: Arc<dyn Vcenter>, store: Store, policy: Policy, shared_secret: Secret) -> Context {
        Context {
            vcenter,
            store,
            responder: Responder::new(None),
            shared_secret,
            policy: Arc::new(policy),
            access: None,
            owners: None,
            claim_lease: DEFAULT_CLAIM_LEASE,
            slack: WebApi::new(None, None),
            console_url: None,
        }
    }

    /// Reads every setting a function uses. `shared_secret` is passed in when the caller already
    /// has it (the all-in-one generates one); otherwise `IAAS_SHARED_SECRET` is required.
    pub async fn from_env(shared_secret: Option<Secret>) -> Result<Context, StartupError> {
        let shared_secret = match shared_secret {
            Some(s) => s,
            None => iaas_config::required_secret("IAAS_SHARED_SECRET")?,
        };
        let (policy, policy_path) = iaas_config::load_policy()?;
        match policy_path {
            Some(p) => tracing::info!(path = %p.display(), "policy loaded"),
            None => tracing::info!("no IAAS_CONFIG: using the built-in default policy"),
        }
        let configured_db = iaas_config::secret("DATABASE_URL")?;
        // The settings first (cheap, each error names its variable), then what touches disk or
        // network: the store before the demo inventory, which is kept beside the store's file.
        check_vcenter_settings()?;
        if configured_db.is_none() {
            tracing::info!(url = DEFAULT_DATABASE_URL, "no DATABASE_URL: using a local SQLite file");
        }
        let db_url = configured_db.as_ref().map_or(DEFAULT_DATABASE_URL, |u| u.expose());
        let store = Store::connect_with(db_url, iaas_store::statement_timeout_setting()?).await?;
        let vcenter = vcenter_from_env(&policy, demo_file_for(db_url).as_deref())?;
        let responder = Responder::new(iaas_config::var("SLACK_API_URL").as_deref());
        let access_policy = iaas_access::AccessPolicy::from_policy(&policy)?;
        let access = match access_policy.has_roles() {
            true => Some(iaas_access::Access::new(access_policy, None, None).await?),
            false => None,
        };
        let owners = owners_from_env(&policy).await?;
        let claim_lease = iaas_config::parse_var::<u64>("IAAS_CLAIM_LEASE_SECS", "a whole number of seconds")?
            .filter(|secs| *secs > 0)
            .map_or(DEFAULT_CLAIM_LEASE, Duration::from_secs);
        let bot_token = iaas_config::secret("SLACK_BOT_TOKEN")?.map(|t| t.expose().to_string());
        let slack = WebApi::new(iaas_config::var("SLACK_API_URL").as_deref(), bot_token);
        let console_url = iaas_config::console_url()?;
        Ok(Context { vcenter, store, responder, shared_secret, policy: Arc::new(policy), access, owners, claim_lease, slack, console_url })
    }

    /// Asks vCenter once (logging in), so a wrong URL, an unreachable server or a rejected
    /// password stops start-up with one line instead of failing the first command. The probe
    /// reads one moref that does not exist: its cost does not grow with the inventory.
    pub async fn check_vcenter(&self) -> Result<(), ConfigError> {
        check_vcenter(&*self.vcenter).await
    }

    /// `/_/ready`'s checks for anything that uses this context: the store answers a query, and
    /// vCenter answers with the bot's session (logging in again if it lapsed).
    pub fn readiness(&self) -> iaas_runtime::Readiness {
        let (store, vcenter) = (self.store.clone(), self.vcenter.clone());
        iaas_runtime::Readiness::new()
            .check("store", move || {
                let store = store.clone();
                async move { store.ping().await.map_err(|e| e.to_string()) }
            })
            .check("vcenter", move || {
                let vcenter = vcenter.clone();
                async move { vcenter_answers(vcenter.as_ref()).await.map_err(|e| e.to_string()) }
            })
    }

    /// `/_/health` and `/_/ready` (see [`Context::readiness`]) for a function's router.
    pub fn probes<S: Clone + Send + Sync + 'static>(&self) -> axum::Router<S> {
        iaas_runtime::probes(self.readiness())
    }
}

/// [`Context::check_vcenter`] for any client (`iaas doctor` has no context): a failure is a
/// sentence naming the setting to fix.
pub async fn check_vcenter(vcenter: &dyn Vcenter) -> Result<(), ConfigError> {
    let url = iaas_config::var("VCENTER_URL").unwrap_or_default();
    match vcenter_answers(vcenter).await {
        Err(VcError::Unreachable { detail }) => Err(ConfigError::new(
            "VCENTER_URL",
            format!("cannot reach {url} ({detail})"),
            "Check the URL, the network, and VCENTER_CA_FILE or VCENTER_INSECURE for TLS.",
        )),
        Err(VcError::Timeout { secs }) => Err(ConfigError::new(
            "VCENTER_URL",
            format!("{url} did not answer within {secs} s"),
            "Check the URL and the network (vcenter.timeout_secs in the policy sets the wait).",
        )),
        Err(VcError::InvalidLogin) => Err(ConfigError::new(
            "VCENTER_USER",
            format!("{url} rejected the user or the password"),
            "Check VCENTER_USER and VCENTER_PASSWORD.",
        )),
        Err(VcError::Protocol(detail)) => Err(ConfigError::new(
            "VCENTER_URL",
            format!("{url} did not answer like vCenter's SDK ({detail})"),
            "Check that the URL is the vCenter's, ending in /sdk.",
        )),
        _ => Ok(()),
    }
}

/// Asks vCenter for one moref that does not exist (logging in if needed): its cost does not
/// grow with the inventory. Found, not found or any vSphere fault means vCenter answered and let
/// the bot in; the errors are those that mean it did not.
pub async fn vcenter_answers(vcenter: &dyn Vcenter) -> Result<(), VcError> {
    match vcenter.vm_by_moref(&"vm-iaas-startup-probe".into()).await {
        Err(e @ (VcError::Unreachable { .. } | VcError::Timeout { .. } | VcError::InvalidLogin | VcError::Protocol(_))) => Err(e),
        _ => Ok(()),
    }
}

/// The owner look-up for lease exclusion by group. It has no roles, so building it contacts
/// nothing: a directory that is down delays only the leases it must decide. Without a directory
/// it is `None` and only said here — every function shares the policy, and most never look at
/// owners; those that do defer (the sweep) or fall back to a lease (create), never guess.
async fn owners_from_env(policy: &Policy) -> Result<Option<iaas_access::Access>, StartupError> {
    if policy.lease.exclude_owner_groups.is_empty() {
        return Ok(None);
    }
    let Some(directory) = iaas_access::directory_from_env()? else {
        tracing::warn!("lease.exclude_owner_groups is set but LDAP_URL is not: owners' groups cannot be checked, so sweeps leave leases with owners alone");
        return Ok(None);
    };
    let identity = iaas_access::AccessPolicy::from_policy(policy)?.identity;
    let lookup = iaas_access::AccessPolicy::from_parts(identity, Default::default(), Default::default());
    Ok(Some(iaas_access::Access::new(lookup, Some(directory), iaas_access::slack_users_from_env()?).await?))
}

/// Where the demo inventory is kept: next to a SQLite file (`iaas.db` → `iaas.db-demo.json`), so
/// that VMs and their records (leases, decommissions, audit) survive a restart together. With
/// PostgreSQL or an in-memory database there is no such place, and the demo starts from its seed.
pub fn demo_file_for(database_url: &str) -> Option<PathBuf> {
    let path = sqlite_file(database_url)?;
    Some(PathBuf::from(format!("{}-demo.json", path.display())))
}

/// The file a `sqlite:` URL names; `None` for PostgreSQL and in-memory databases.
pub fn sqlite_file(database_url: &str) -> Option<PathBuf> {
    let path = database_url.strip_prefix("sqlite://").or_else(|| database_url.strip_prefix("sqlite:"))?;
    let path = path.split('?').next().unwrap_or_default();
    if path.is_empty() || path.contains(":memory:") || database_url.contains("mode=memory") {
        return None;
    }
    Some(PathBuf::from(path))
}

/// `VCENTER_URL`, `VCENTER_USER` and `VCENTER_PASSWORD`, or `None` for the demo inventory. The
/// three are a group: every one missing or malformed is named in one error, not one per start.
fn vcenter_settings() -> Result<Option<(String, String, Secret)>, ConfigError> {
    let url = iaas_config::var("VCENTER_URL");
    let user = iaas_config::var("VCENTER_USER");
    let password = iaas_config::secret("VCENTER_PASSWORD")?;
    let Some(url) = url else {
        if user.is_some() || password.is_some() {
            return Err(ConfigError::new(
                "VCENTER_URL",
                "is not set, but VCENTER_USER or VCENTER_PASSWORD is",
                "Set VCENTER_URL like https://vc.example.com/sdk, or unset the other two to use the demo inventory.",
            ));
        }
        return Ok(None);
    };
    let mut problems = Vec::new();
    if !(url.starts_with("https://") || url.starts_with("http://")) || !url.trim_end_matches('/').ends_with("/sdk") {
        problems.push(format!("VCENTER_URL {url:?} is not a vCenter SDK URL"));
    }
    if user.is_none() {
        problems.push("VCENTER_USER is not set".to_string());
    }
    if password.is_none() {
        problems.push("VCENTER_PASSWORD is not set".to_string());
    }
    match (user, password, problems.is_empty()) {
        (Some(user), Some(password), true) => Ok(Some((url, user, password))),
        _ => Err(ConfigError::new(
            "vCenter settings",
            problems.join("; "),
            "Set VCENTER_URL (like https://vc.example.com/sdk), VCENTER_USER (e.g. svc-iaas@vsphere.local) and \
             VCENTER_PASSWORD (or VCENTER_PASSWORD_FILE) together, or none of them for the demo inventory.",
        )),
    }
}

/// Checks the vCenter settings without building anything.
fn check_vcenter_settings() -> Result<(), ConfigError> {
    vcenter_settings().map(|_| ())
}

/// The SOAP client when `VCENTER_URL` is set, else the embedded demo inventory (kept in
/// `demo_file` when given).
pub fn vcenter_from_env(policy: &Policy, demo_file: Option<&Path>) -> Result<Arc<dyn Vcenter>, ConfigError> {
    let Some((url, user, password)) = vcenter_settings()? else {
        let Some(file) = demo_file else {
            tracing::info!("no VCENTER_URL: using the embedded demo inventory, in memory (reset on restart)");
            return Ok(Arc::new(DemoInventory::new()));
        };
        let demo = DemoInventory::persisted(file).map_err(|e| {
            ConfigError::new("VCENTER_URL", format!("is not set, and the demo inventory {e}"), "Delete that file to start the demo afresh.")
        })?;
        tracing::info!(file = %file.display(), "no VCENTER_URL: using the embedded demo inventory, kept next to the database");
        return Ok(Arc::new(demo));
    };
    let config = SoapConfig {
        url: url.clone(),
        user,
        password: password.expose().to_string(),
        insecure: iaas_config::bool_var("VCENTER_INSECURE")?,
        ca_file: iaas_config::var("VCENTER_CA_FILE").map(PathBuf::from),
        timeout: Duration::from_secs(policy.vcenter.timeout_secs),
    };
    if config.insecure {
        tracing::warn!("VCENTER_INSECURE=true: vCenter's TLS certificate is not verified");
    }
    let client = SoapClient::new(config)
        .map_err(|e| ConfigError::new("VCENTER_CA_FILE", e.to_string(), "Point VCENTER_CA_FILE at a PEM CA certificate."))?;
    tracing::info!(%url, "using vCenter over SOAP");
    Ok(Arc::new(client))
}

#[cfg(test)]
mod tests {
    use super::demo_file_for;
    use std::path::PathBuf;

    #[test]
    fn the_demo_is_kept_next_to_a_sqlite_file_only() {
        assert_eq!(demo_file_for("sqlite://iaas.db"), Some(PathBuf::from("iaas.db-demo.json")));
        assert_eq!(demo_file_for("sqlite:///var/lib/iaas/iaas.db?mode=rwc"), Some(PathBuf::from("/var/lib/iaas/iaas.db-demo.json")));
        assert_eq!(demo_file_for("sqlite::memory:"), None);
        assert_eq!(demo_file_for("sqlite://x.db?mode=memory"), None);
        assert_eq!(demo_file_for("postgres://u@h/db"), None);
    }
}
