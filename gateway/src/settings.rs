//! The gateway's settings from the environment.

use std::sync::Arc;

use iaas_config::{ConfigError, Secret};
use iaas_slack::Responder;

use crate::dispatch::{Dispatch, DispatchTarget, LambdaDispatch, OpenFaasDispatch};
use crate::{system_clock, Gateway};

pub type SettingsError = ConfigError;

/// The consent to run without roles against a real vCenter.
const ALLOW_EVERYONE: &str = "IAAS_ALLOW_EVERYONE";

pub struct GatewaySettings {
    pub signing_secret: Secret,
    pub shared_secret: Secret,
    pub dispatch: DispatchTarget,
    pub slack_api_url: Option<String>,
    pub access: Option<iaas_access::Access>,
    pub audit: Option<iaas_store::Store>,
    /// How REST API callers sign in: the policy's tokens and the directory.
    pub api: crate::api::ApiAuth,
    /// IT's policy as read at start-up (the console's plan preview reads it).
    pub policy: std::sync::Arc<iaas_config::Policy>,
}

impl GatewaySettings {
    /// Every gateway setting; for the stand-alone gateway all are required. The audit store is
    /// `DATABASE_URL` when set (decisions are then audited before the ack as well).
    pub async fn from_env() -> Result<GatewaySettings, ConfigError> {
        let (policy, _) = iaas_config::load_policy()?;
        let access = crate::access::access_from_env(&policy).await?;
        // The stand-alone gateway always fronts a real vCenter's functions (the demo runs in `iaas serve`).
        GatewaySettings::refuse_open_access(access.is_some(), true)?;
        let audit = match iaas_config::secret("DATABASE_URL")? {
            // The store's sentence already says what to check.
            Some(url) => Some(
                iaas_store::Store::connect_with(url.expose(), iaas_store::statement_timeout_setting()?)
                    .await
                    .map_err(|e| ConfigError::new("DATABASE_URL", e.to_string(), ""))?,
            ),
            None => {
                tracing::info!("no DATABASE_URL: gateway decisions are logged, and functions audit outcomes");
                None
            }
        };
        let dispatch = iaas_config::var("IAAS_DISPATCH").ok_or_else(|| {
            ConfigError::new("IAAS_DISPATCH", "is not set", "Use openfaas:<gateway-url> or lambda[:<prefix>] (local needs `iaas serve`).")
        })?;
        Ok(GatewaySettings {
            signing_secret: iaas_config::required_secret("SLACK_SIGNING_SECRET")?,
            shared_secret: iaas_config::required_secret("IAAS_SHARED_SECRET")?,
            dispatch: DispatchTarget::parse(dispatch.trim())?,
            slack_api_url: iaas_config::var("SLACK_API_URL"),
            access,
            audit,
            api: crate::api::ApiAuth::from_policy(&policy)?,
            policy: std::sync::Arc::new(policy),
        })
    }

    /// Without roles every Slack user may run every command. That is the demo's point, but in
    /// front of a real vCenter it must be asked for (`IAAS_ALLOW_EVERYONE=true`), not a WARN line.
    pub fn refuse_open_access(has_roles: bool, real_vcenter: bool) -> Result<(), ConfigError> {
        if has_roles || !real_vcenter || iaas_config::bool_var(ALLOW_EVERYONE)? {
            return Ok(());
        }
        Err(ConfigError::new(
            "IAAS_CONFIG",
            "no roles defined, so every Slack user could run every command on this vCenter",
            format!(
                "Set IAAS_CONFIG to a policy with [roles] (see deploy/config/iaas.example.toml), \
                 or {ALLOW_EVERYONE}=true to accept that every Slack user may change VMs."
            ),
        ))
    }

    /// Builds the gateway with a remote dispatcher (local dispatch is wired by `iaas serve`).
    /// Needs a Tokio runtime (the audit writer is spawned), as does [`with_dispatcher`](Self::with_dispatcher).
    pub async fn into_gateway(self) -> Result<Gateway, ConfigError> {
        let dispatcher: Arc<dyn Dispatch> = match &self.dispatch {
            DispatchTarget::OpenFaas { gateway } => Arc::new(OpenFaasDispatch::new(gateway.clone())),
            DispatchTarget::Lambda { prefix } => Arc::new(LambdaDispatch::from_env(prefix.clone()).await),
            DispatchTarget::Local => {
                return Err(ConfigError::new(
                    "IAAS_DISPATCH",
                    "local needs the functions in this process",
                    "Run `iaas serve`, or use openfaas:<url> or lambda.",
                ))
            }
        };
        Ok(self.with_dispatcher(dispatcher))
    }

    pub fn with_dispatcher(self, dispatcher: Arc<dyn Dispatch>) -> Gateway {
        tracing::info!(dispatch = %dispatcher.describe(), "gateway ready");
        // Local dispatch means every function runs in this process, with its settings.
        let scope = if self.dispatch == DispatchTarget::Local { iaas_doctor::Scope::Everything } else { iaas_doctor::Scope::Gateway };
        let doctor = iaas_doctor::Options { scope, user: None, dispatch: Some(self.dispatch.clone()) };
        Gateway {
            signing_secret: self.signing_secret,
            shared_secret: self.shared_secret,
            dispatcher,
            responder: Responder::new(self.slack_api_url.as_deref()),
            clock: system_clock(),
            access: self.access,
            replays: crate::replay::Replays::new(self.audit.clone()),
            audit: self.audit.map(crate::audit::AuditLog::new),
            api: Some(Arc::new(self.api)),
            socket: crate::socket::SocketStatus::default(),
            doctor,
        }
    }
}
