//! What a function needs at run time, built once per process from the environment.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use iaas_config::{ConfigError, Policy, Secret};
use iaas_slack::Responder;
use iaas_store::Store;
use iaas_vsphere::demo::DemoInventory;
use iaas_vsphere::soap::{SoapClient, SoapConfig};
use iaas_vsphere::Vcenter;

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
}

/// The claim lease when `IAAS_CLAIM_LEASE_SECS` is unset.
pub const DEFAULT_CLAIM_LEASE: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("DATABASE_URL: {0}")]
    Store(#[from] iaas_store::StoreError),
    #[error("IAAS_CONFIG: {0}")]
    Access(#[from] iaas_access::AccessError),
}

impl Context {
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
        let vcenter = vcenter_from_env(&policy)?;
        let db_url = iaas_config::secret("DATABASE_URL")?;
        let store = match &db_url {
            Some(url) => Store::connect(url.expose()).await?,
            None => {
                tracing::info!(url = DEFAULT_DATABASE_URL, "no DATABASE_URL: using a local SQLite file");
                Store::connect(DEFAULT_DATABASE_URL).await?
            }
        };
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
        Ok(Context { vcenter, store, responder, shared_secret, policy: Arc::new(policy), access, owners, claim_lease })
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

/// The SOAP client when `VCENTER_URL` is set, else the embedded demo inventory.
pub fn vcenter_from_env(policy: &Policy) -> Result<Arc<dyn Vcenter>, ConfigError> {
    let Some(url) = iaas_config::var("VCENTER_URL") else {
        tracing::info!("no VCENTER_URL: using the embedded demo inventory");
        return Ok(Arc::new(DemoInventory::new()));
    };
    if !(url.starts_with("https://") || url.starts_with("http://")) || !url.trim_end_matches('/').ends_with("/sdk") {
        return Err(ConfigError::new(
            "VCENTER_URL",
            format!("{url:?} is not a vCenter SDK URL"),
            "Set it like https://vc.example.com/sdk.",
        ));
    }
    let user = iaas_config::var("VCENTER_USER")
        .ok_or_else(|| ConfigError::new("VCENTER_USER", "is not set", "Set the vCenter service account, e.g. svc-iaas@vsphere.local."))?;
    let password = iaas_config::required_secret("VCENTER_PASSWORD")?;
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
