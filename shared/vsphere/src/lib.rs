//! vCenter access behind one trait, [`Vcenter`], with two implementations:
//! [`soap::SoapClient`] speaks vim25 SOAP at `/sdk` (real vCenter, govmomi's vcsim) and
//! [`demo::DemoInventory`] is the in-memory default used when no vCenter is configured.
//! One contract test suite (`tests/contract.rs`) runs against both, so the demo behaves like vCenter.

use std::collections::BTreeMap;
use std::fmt;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub mod demo;
pub mod soap;

/// Custom attribute names the bot owns on every VM it manages.
pub const ATTR_OWNER: &str = "iaas.owner";
pub const ATTR_CREATED: &str = "iaas.created";
pub const ATTR_EXPIRES: &str = "iaas.expires";

/// A VM as vCenter identifies it: the managed-object id (e.g. `vm-42`) plus its display name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmRef {
    pub moref: String,
    pub name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum PowerState {
    PoweredOn,
    PoweredOff,
    Suspended,
}

impl fmt::Display for PowerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PowerState::PoweredOn => "powered on",
            PowerState::PoweredOff => "powered off",
            PowerState::Suspended => "suspended",
        })
    }
}

/// What `/iaas vm list` shows per row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VmSummary {
    pub vm: VmRef,
    pub power_state: PowerState,
    pub ip: Option<String>,
    pub guest_os: Option<String>,
    pub cpus: u32,
    pub memory_mb: u64,
}

/// What `/iaas vm info` shows: the summary plus placement and the bot's attributes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VmDetails {
    pub summary: VmSummary,
    pub host: Option<String>,
    pub datastores: Vec<String>,
    pub folder: Option<String>,
    pub tools_running: bool,
    /// Custom attributes by name (e.g. `iaas.owner`), only those with a value.
    pub attributes: BTreeMap<String, String>,
}

/// The power operations `/iaas power` offers. `Off` and `Reset` are hard; `Shutdown` and
/// `Reboot` go through the guest and need VMware Tools.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PowerOp {
    On,
    Off,
    Shutdown,
    Reboot,
    Reset,
    Suspend,
}

impl PowerOp {
    pub fn as_str(self) -> &'static str {
        match self {
            PowerOp::On => "on",
            PowerOp::Off => "off",
            PowerOp::Shutdown => "shutdown",
            PowerOp::Reboot => "reboot",
            PowerOp::Reset => "reset",
            PowerOp::Suspend => "suspend",
        }
    }
}

/// Errors from vCenter, typed so callers can turn them into sentences.
/// `Display` is already a sentence a user can read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum VcError {
    #[error("No VM named {name}.")]
    NotFound { name: String },
    #[error("{vm} is {current}; that operation needs a different power state.")]
    InvalidPowerState { vm: String, current: PowerState },
    #[error("VMware Tools is not running in {vm}, so the guest cannot be asked to do that; use a hard power operation instead.")]
    ToolsUnavailable { vm: String },
    #[error("vCenter rejected the bot's credentials; an administrator must fix VCENTER_USER/VCENTER_PASSWORD.")]
    InvalidLogin,
    #[error("This vCenter does not support {operation}.")]
    NotSupported { operation: String },
    #[error("vCenter did not answer in {secs} s; nothing was changed.")]
    Timeout { secs: u64 },
    #[error("vCenter could not be reached ({detail}); nothing was changed.")]
    Unreachable { detail: String },
    /// Any other vSphere fault, with vCenter's own localized message.
    #[error("vCenter refused: {message}")]
    Fault { fault: String, message: String },
    /// vCenter answered something the client could not read.
    #[error("vCenter sent an answer the bot could not read ({0}).")]
    Protocol(String),
}

pub type VcResult<T> = Result<T, VcError>;

#[async_trait]
pub trait Vcenter: Send + Sync + 'static {
    /// A short label for logs and start-up messages, e.g. `demo inventory` or the vCenter URL.
    fn describe(&self) -> String;

    /// Every VM (templates excluded), sorted by name.
    async fn list_vms(&self) -> VcResult<Vec<VmSummary>>;

    /// The VM with exactly this name, or `VcError::NotFound`.
    async fn find_vm(&self, name: &str) -> VcResult<VmRef>;

    async fn vm_details(&self, vm: &VmRef) -> VcResult<VmDetails>;

    /// Runs the power operation and waits for it to finish.
    async fn power(&self, vm: &VmRef, op: PowerOp) -> VcResult<()>;

    /// Ends the session (called on shutdown). Never fails loudly.
    async fn logout(&self) {}
}
