//! The typed commands functions receive. The gateway's command table parses Slack text into
//! these; each variant names the function that runs it.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", content = "args", rename_all = "snake_case")]
pub enum Command {
    Power { action: PowerAction, vm: String },
    VmList {
        #[serde(default)]
        pattern: Option<String>,
    },
    VmInfo { vm: String },
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

impl Command {
    /// The deployable function that runs this command.
    pub fn function(&self) -> &'static str {
        match self {
            Command::Power { .. } => "iaas-power",
            Command::VmList { .. } | Command::VmInfo { .. } => "iaas-inventory",
        }
    }

    /// Whether the command changes anything (its answer goes to the channel by default).
    pub fn mutates(&self) -> bool {
        match self {
            Command::Power { action, .. } => action.mutates(),
            Command::VmList { .. } | Command::VmInfo { .. } => false,
        }
    }

    /// How the command reads back to the user ("power off app-web-01").
    pub fn describe(&self) -> String {
        match self {
            Command::Power { action, vm } => format!("power {} {vm}", action.as_str()),
            Command::VmList { pattern: Some(p) } => format!("vm list {p}"),
            Command::VmList { pattern: None } => "vm list".to_string(),
            Command::VmInfo { vm } => format!("vm info {vm}"),
        }
    }
}
