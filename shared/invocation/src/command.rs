//! The typed commands functions receive. The gateway's command table parses Slack text into
//! these; each variant names the function that runs it.

use iaas_ids::{RequestId, VmName};
use serde::{Deserialize, Serialize};

use crate::commands::{self, Spec};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", content = "args", rename_all = "snake_case")]
pub enum Command {
    Power {
        action: PowerAction,
        vm: VmName,
    },
    VmList {
        #[serde(default)]
        pattern: Option<String>,
    },
    VmInfo {
        vm: VmName,
    },
    Create {
        name: VmName,
        #[serde(default)]
        size: Option<String>,
        #[serde(default)]
        os: Option<String>,
        #[serde(default)]
        days: Option<u32>,
    },
    Clone {
        source: VmName,
        name: VmName,
    },
    Deploy {
        template: String,
        name: VmName,
    },
    Resize {
        vm: VmName,
        #[serde(default)]
        cpus: Option<u32>,
        #[serde(default)]
        memory_gb: Option<u32>,
        #[serde(default)]
        restart: bool,
    },
    /// Asks for confirmation; the deletion itself runs on a [`Command::Confirm`] press.
    Delete {
        vm: VmName,
    },
    /// A Confirm or Cancel button press on a confirmation a function asked for.
    Confirm {
        of: Confirmable,
        token: String,
        confirmed: bool,
    },
    /// The caller's quota: usage and limits.
    Quota,
    /// Every peer this deployment reaches checked live (`iaas doctor`), answered to the
    /// caller only; run by the gateway itself.
    Doctor,
    /// Admins: the datastores new VMs may go to, with free space, reservations and headroom.
    Capacity,
    ExpireShow {
        vm: VmName,
    },
    ExpireList {
        #[serde(default)]
        mine: bool,
        #[serde(default)]
        days: Option<u32>,
    },
    /// Also what the Extend button on a reminder sends.
    ExpireExtend {
        vm: VmName,
    },
    /// Admins: a new expiry date (YYYY-MM-DD), which may shorten the lease.
    ExpireSet {
        vm: VmName,
        date: String,
    },
    /// Admins: the VM no longer expires.
    ExpireRemove {
        vm: VmName,
    },
    /// The audit trail, for admins.
    Audit {
        #[serde(default)]
        user: Option<String>,
        #[serde(default)]
        vm: Option<String>,
        /// Unix seconds.
        #[serde(default)]
        since: Option<i64>,
    },
    /// Asks to confirm retiring these VMs (one request); the work runs on a [`Command::Confirm`] press.
    Decommission {
        vms: Vec<VmName>,
        #[serde(default)]
        ticket: Option<String>,
        #[serde(default)]
        reason: Option<String>,
    },
    /// Stops a decommission request before its next step (the requester or an admin).
    DecommissionCancel {
        id: RequestId,
    },
    DecommissionList {
        #[serde(default)]
        mine: bool,
        #[serde(default)]
        state: Option<String>,
        #[serde(default)]
        vm: Option<String>,
        /// Unix seconds.
        #[serde(default)]
        since: Option<i64>,
    },
    /// One request: each VM's steps, their states, messages and timings.
    DecommissionStatus {
        id: RequestId,
    },
    /// Records and runs a decommission at once, with no button: the REST API caller's POST is
    /// the confirmation. `id` is chosen by the gateway so it can answer with it.
    DecommissionStart {
        id: RequestId,
        vms: Vec<VmName>,
        #[serde(default)]
        ticket: Option<String>,
        #[serde(default)]
        reason: Option<String>,
    },
}

/// The commands that ask for a button press before they act.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Confirmable {
    Delete,
    Resize,
    Decommission,
}

impl Confirmable {
    pub fn as_str(self) -> &'static str {
        match self {
            Confirmable::Delete => "delete",
            Confirmable::Resize => "resize",
            Confirmable::Decommission => "decommission",
        }
    }

    pub fn parse(word: &str) -> Option<Confirmable> {
        [Confirmable::Delete, Confirmable::Resize, Confirmable::Decommission].into_iter().find(|c| c.as_str() == word)
    }

    /// The Block Kit `action_id` of this confirmation's buttons: `delete.confirm`, `delete.cancel`.
    pub fn action_id(self, confirmed: bool) -> String {
        format!("{}.{}", self.as_str(), if confirmed { "confirm" } else { "cancel" })
    }

    /// Reads an `action_id` made by [`Confirmable::action_id`].
    pub fn from_action_id(action_id: &str) -> Option<(Confirmable, bool)> {
        let (of, choice) = action_id.split_once('.')?;
        let confirmed = match choice {
            "confirm" => true,
            "cancel" => false,
            _ => return None,
        };
        Some((Confirmable::parse(of)?, confirmed))
    }
}

/// `off` and `reset` are hard; `shutdown` and `reboot` ask the guest (VMware Tools).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PowerAction {
    On,
    Off,
    Shutdown,
    Reboot,
    Reset,
    Suspend,
    Status,
}

impl PowerAction {
    pub const ALL: [PowerAction; 7] = [
        PowerAction::On,
        PowerAction::Off,
        PowerAction::Shutdown,
        PowerAction::Reboot,
        PowerAction::Reset,
        PowerAction::Suspend,
        PowerAction::Status,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PowerAction::On => "on",
            PowerAction::Off => "off",
            PowerAction::Shutdown => "shutdown",
            PowerAction::Reboot => "reboot",
            PowerAction::Reset => "reset",
            PowerAction::Suspend => "suspend",
            PowerAction::Status => "status",
        }
    }

    pub fn parse(word: &str) -> Option<PowerAction> {
        PowerAction::ALL.into_iter().find(|a| a.as_str().eq_ignore_ascii_case(word))
    }

    /// Whether the action changes the VM (status only reads).
    pub fn mutates(self) -> bool {
        self != PowerAction::Status
    }
}

/// The `action_id` of the Extend button on lease reminders; its value is the VM's name.
pub const EXTEND_ACTION: &str = "expire.extend";
/// The Cancel button on a running decommission's progress message (value = request id).
pub const STOP_DECOMMISSION_ACTION: &str = "decommission.stop";

impl Command {
    /// The command a button press stands for: a confirmation's Confirm/Cancel (value = token),
    /// a reminder's Extend (value = VM name), or a running decommission's Cancel (value = id).
    pub fn from_action(action_id: &str, value: &str) -> Option<Command> {
        if action_id == EXTEND_ACTION {
            return Some(Command::ExpireExtend { vm: value.into() });
        }
        if action_id == STOP_DECOMMISSION_ACTION {
            return Some(Command::DecommissionCancel { id: value.into() });
        }
        let (of, confirmed) = Confirmable::from_action_id(action_id)?;
        Some(Command::Confirm { of, token: value.to_string(), confirmed })
    }

    /// The command's declaration: the one mapping from variant to [`COMMANDS`](crate::COMMANDS).
    /// A press counts as the command it confirms, the REST API's start as `decommission`.
    pub fn spec(&self) -> &'static Spec {
        match self {
            Command::Power { .. } => &commands::POWER,
            Command::VmList { .. } => &commands::VM_LIST,
            Command::VmInfo { .. } => &commands::VM_INFO,
            Command::Create { .. } => &commands::CREATE,
            Command::Clone { .. } => &commands::CLONE,
            Command::Deploy { .. } => &commands::DEPLOY,
            Command::Resize { .. } | Command::Confirm { of: Confirmable::Resize, .. } => &commands::RESIZE,
            Command::Delete { .. } | Command::Confirm { of: Confirmable::Delete, .. } => &commands::DELETE,
            Command::Quota => &commands::QUOTA,
            Command::Doctor => &commands::DOCTOR,
            Command::Capacity => &commands::CAPACITY,
            Command::Audit { .. } => &commands::AUDIT,
            Command::ExpireShow { .. } => &commands::EXPIRE_SHOW,
            Command::ExpireList { .. } => &commands::EXPIRE_LIST,
            Command::ExpireExtend { .. } => &commands::EXPIRE_EXTEND,
            Command::ExpireSet { .. } => &commands::EXPIRE_SET,
            Command::ExpireRemove { .. } => &commands::EXPIRE_REMOVE,
            Command::Decommission { .. } | Command::DecommissionStart { .. } | Command::Confirm { of: Confirmable::Decommission, .. } => {
                &commands::DECOMMISSION
            }
            Command::DecommissionCancel { .. } => &commands::DECOMMISSION_CANCEL,
            Command::DecommissionList { .. } => &commands::DECOMMISSION_LIST,
            Command::DecommissionStatus { .. } => &commands::DECOMMISSION_STATUS,
        }
    }

    /// The deployable function that runs this command.
    pub fn function(&self) -> &'static str {
        self.spec().function
    }

    /// The command's name in the command table, which roles grant.
    pub fn name(&self) -> &'static str {
        self.spec().name
    }

    /// The VM a command changes (by name), for one-change-per-VM locking; `Effect::ChangesVm`
    /// and `Effect::CreatesVm` declarations must name one (a test checks it). Every variant is
    /// listed, so a new one has to say. A press names its VM only through its confirmation,
    /// so its function locks that itself.
    pub fn target_vm(&self) -> Option<&VmName> {
        match self {
            Command::Power { action, vm } => action.mutates().then_some(vm),
            Command::Resize { vm, .. } => Some(vm),
            Command::Create { name, .. } | Command::Clone { name, .. } | Command::Deploy { name, .. } => Some(name),
            Command::VmList { .. }
            | Command::VmInfo { .. }
            | Command::Delete { .. }
            | Command::Confirm { .. }
            | Command::Quota
            | Command::Doctor
            | Command::Capacity
            | Command::ExpireShow { .. }
            | Command::ExpireList { .. }
            | Command::ExpireExtend { .. }
            | Command::ExpireSet { .. }
            | Command::ExpireRemove { .. }
            | Command::Audit { .. }
            | Command::Decommission { .. }
            | Command::DecommissionCancel { .. }
            | Command::DecommissionList { .. }
            | Command::DecommissionStatus { .. }
            | Command::DecommissionStart { .. } => None,
        }
    }

    /// How the command reads back to the user ("power off app-web-01").
    pub fn describe(&self) -> String {
        match self {
            Command::Power { action, vm } => format!("power {} {vm}", action.as_str()),
            Command::VmList { pattern: Some(p) } => format!("vm list {p}"),
            Command::VmList { pattern: None } => "vm list".to_string(),
            Command::VmInfo { vm } => format!("vm info {vm}"),
            Command::Create { name, size, os, days } => {
                let mut out = format!("create {name}");
                for (flag, value) in [("size", size.clone()), ("os", os.clone()), ("days", days.map(|d| d.to_string()))] {
                    if let Some(v) = value {
                        out.push_str(&format!(" --{flag} {v}"));
                    }
                }
                out
            }
            Command::Clone { source, name } => format!("clone {source} {name}"),
            Command::Deploy { template, name } => format!("deploy {template} {name}"),
            Command::Resize { vm, cpus, memory_gb, restart } => {
                let mut out = format!("resize {vm}");
                if let Some(c) = cpus {
                    out.push_str(&format!(" --cpu {c}"));
                }
                if let Some(m) = memory_gb {
                    out.push_str(&format!(" --memory {m}"));
                }
                if *restart {
                    out.push_str(" --restart");
                }
                out
            }
            Command::Delete { vm } => format!("delete {vm}"),
            Command::Confirm { of, confirmed, .. } => format!("{} {}", of.as_str(), if *confirmed { "confirmed" } else { "cancelled" }),
            Command::Quota => "quota".to_string(),
            Command::Doctor => "doctor".to_string(),
            Command::Capacity => "capacity".to_string(),
            Command::ExpireShow { vm } => format!("expire show {vm}"),
            Command::ExpireList { mine, days } => {
                let mut out = "expire list".to_string();
                if *mine {
                    out.push_str(" --mine");
                }
                if let Some(d) = days {
                    out.push_str(&format!(" --days {d}"));
                }
                out
            }
            Command::ExpireExtend { vm } => format!("expire extend {vm}"),
            Command::ExpireSet { vm, date } => format!("expire set {vm} {date}"),
            Command::ExpireRemove { vm } => format!("expire remove {vm}"),
            Command::Audit { user, vm, since } => {
                let mut out = "audit".to_string();
                for (flag, value) in [("user", user.clone()), ("vm", vm.clone()), ("since", since.map(|s| s.to_string()))] {
                    if let Some(v) = value {
                        out.push_str(&format!(" --{flag} {v}"));
                    }
                }
                out
            }
            Command::Decommission { vms, ticket, reason } => {
                let mut out = format!("decommission {}", vms.join(" "));
                if let Some(t) = ticket {
                    out.push_str(&format!(" --ticket {t}"));
                }
                if let Some(r) = reason {
                    out.push_str(&format!(" --reason \"{r}\""));
                }
                out
            }
            Command::DecommissionCancel { id } => format!("decommission cancel {id}"),
            Command::DecommissionList { mine, state, vm, since } => {
                let mut out = "decommission list".to_string();
                if *mine {
                    out.push_str(" --mine");
                }
                for (flag, value) in [("state", state.clone()), ("vm", vm.clone()), ("since", since.map(|s| s.to_string()))] {
                    if let Some(v) = value {
                        out.push_str(&format!(" --{flag} {v}"));
                    }
                }
                out
            }
            Command::DecommissionStatus { id } => format!("decommission status {id}"),
            Command::DecommissionStart { id, vms, .. } => format!("decommission start {id} {}", vms.join(" ")),
        }
    }
}
