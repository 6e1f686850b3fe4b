//! The TOML policy file (`IAAS_CONFIG`). `deploy/config/iaas.example.toml` documents every key;
//! a test parses it so the example cannot drift from the code.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::ConfigError;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Policy {
    pub slack: SlackPolicy,
    pub vcenter: VcenterPolicy,
    pub inventory: InventoryPolicy,
    pub naming: NamingPolicy,
    pub placement: PlacementPolicy,
    pub create: CreatePolicy,
    /// VM sizes by name (`small`, `medium`, …): the user picks a name, IT sets what it means.
    pub sizes: BTreeMap<String, Size>,
    /// Guest OS families by name (`linux`, `windows`): the vSphere guest id to create with.
    pub os: BTreeMap<String, OsFamily>,
    pub templates: TemplatePolicy,
    pub resize: ResizePolicy,
    pub protection: ProtectionPolicy,
    pub lease: LeasePolicy,
    pub confirm: ConfirmPolicy,
    /// How `/iaas decommission` retires VMs (`iaas-decommission`).
    pub decommission: crate::DecommissionPolicy,
    /// Vertical scaling when a VM's CPU or memory alarm turns red (`iaas-scale`).
    pub scale: ScalePolicy,
    /// Moving VMs off a datastore whose usage alarm turns red (`iaas-storage-move`).
    pub storage_move: StorageMovePolicy,
    /// The gateway's REST API (`/api/v1/…`): its bearer tokens.
    pub api: ApiPolicy,
    /// Who may do what: `[identity]`, `[roles.<name>]` and `[limits]`, read by `iaas-access`
    /// (kept as tables here so settings do not depend on the directory client).
    pub identity: toml::Table,
    pub roles: toml::Table,
    pub limits: toml::Table,
}

/// How answers appear in the channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseType {
    InChannel,
    Ephemeral,
}

impl ResponseType {
    pub fn as_str(self) -> &'static str {
        match self {
            ResponseType::InChannel => "in_channel",
            ResponseType::Ephemeral => "ephemeral",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SlackPolicy {
    /// Answers to commands that changed something (power, …).
    pub response_type_changes: ResponseType,
    /// Answers to queries (list, info, status). Errors are always ephemeral.
    pub response_type_queries: ResponseType,
}

impl Default for SlackPolicy {
    fn default() -> Self {
        SlackPolicy { response_type_changes: ResponseType::InChannel, response_type_queries: ResponseType::Ephemeral }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VcenterPolicy {
    /// Bound on each vCenter call and on waiting for a task.
    pub timeout_secs: u64,
}

impl Default for VcenterPolicy {
    fn default() -> Self {
        VcenterPolicy { timeout_secs: 30 }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InventoryPolicy {
    /// `/iaas vm list` shows at most this many rows and says how many more matched.
    pub list_max_rows: usize,
}

impl Default for InventoryPolicy {
    fn default() -> Self {
        InventoryPolicy { list_max_rows: 50 }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NamingPolicy {
    /// A regular expression every new VM name must match (whole name).
    pub pattern: String,
    /// 15 keeps names valid as Windows (NetBIOS) computer names.
    pub max_length: usize,
}

impl Default for NamingPolicy {
    fn default() -> Self {
        NamingPolicy { pattern: "^[a-z][a-z0-9-]*[a-z0-9]$".into(), max_length: 15 }
    }
}

/// Where new VMs go; unset entries let vCenter's defaults apply (first datacenter, its VM
/// folder, first cluster's root pool, a datastore that cluster's host can reach).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PlacementPolicy {
    pub datacenter: Option<String>,
    /// Under the datacenter's VM folder, e.g. `iaas` or `iaas/self-service`.
    pub folder: Option<String>,
    /// A cluster name or `cluster/pool`.
    pub resource_pool: Option<String>,
    /// A datastore name, `"auto"`, or a list of names (see [`DatastoreChoice`]).
    pub datastore: DatastoreChoice,
    pub network: Option<String>,
    /// Free space a datastore keeps after a new VM's disks: at least this share of its capacity …
    pub min_free_percent: Option<u8>,
    /// … and at least this many GiB. Each one set must hold; none set means the disks must only fit.
    pub min_free_gb: Option<u64>,
}

/// Where a new VM's files go (`[placement] datastore`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum DatastoreChoice {
    /// Unset: the one vCenter's default placement takes (first datastore of the first usable host).
    #[default]
    Default,
    /// This datastore, and no other.
    Named(String),
    /// `"auto"`: the roomiest datastore the target cluster or host reaches that keeps the headroom.
    Auto,
    /// A list: the roomiest of these that the target reaches and that keeps the headroom.
    AnyOf(Vec<String>),
}

impl DatastoreChoice {
    /// Whether the choice picks among several datastores by free space.
    pub fn picks(&self) -> bool {
        matches!(self, DatastoreChoice::Auto | DatastoreChoice::AnyOf(_))
    }

    /// Whether a datastore of this name may take new VMs under this choice (`default` is the
    /// one the default placement takes).
    pub fn allows(&self, name: &str, default: &str) -> bool {
        match self {
            DatastoreChoice::Default => name == default,
            DatastoreChoice::Named(n) => n == name,
            DatastoreChoice::Auto => true,
            DatastoreChoice::AnyOf(names) => names.iter().any(|n| n == name),
        }
    }
}

impl<'de> Deserialize<'de> for DatastoreChoice {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            One(String),
            Many(Vec<String>),
        }
        let raw = Raw::deserialize(d)
            .map_err(|_| serde::de::Error::custom("expected a datastore name, \"auto\", or a list of datastore names"))?;
        match raw {
            Raw::One(s) if s.trim().is_empty() => Err(serde::de::Error::custom("a datastore name cannot be empty")),
            Raw::One(s) if s == "auto" => Ok(DatastoreChoice::Auto),
            Raw::One(s) => Ok(DatastoreChoice::Named(s)),
            Raw::Many(v) if v.is_empty() => Err(serde::de::Error::custom("a list of datastores needs at least one name")),
            Raw::Many(v) if v.iter().any(|s| s.trim().is_empty()) => Err(serde::de::Error::custom("a datastore name cannot be empty")),
            Raw::Many(v) => Ok(DatastoreChoice::AnyOf(v)),
        }
    }
}

const GIB: u64 = 1024 * 1024 * 1024;

impl PlacementPolicy {
    /// The free bytes a datastore of `capacity_bytes` must keep after a new VM: the larger of
    /// the headroom settings that are set (0 when none is).
    pub fn headroom_bytes(&self, capacity_bytes: u64) -> u64 {
        let by_percent = self.min_free_percent.map_or(0, |p| (u128::from(capacity_bytes) * u128::from(p) / 100) as u64);
        let by_size = self.min_free_gb.map_or(0, |gb| gb.saturating_mul(GIB));
        by_percent.max(by_size)
    }

    /// How the headroom reads in a sentence: "10% of its capacity and 30 GB", or None when unset.
    pub fn describe_headroom(&self) -> Option<String> {
        let parts: Vec<String> =
            [self.min_free_percent.map(|p| format!("{p}% of its capacity")), self.min_free_gb.map(|g| format!("{g} GB"))]
                .into_iter()
                .flatten()
                .collect();
        (!parts.is_empty()).then(|| parts.join(" and "))
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CreatePolicy {
    pub default_size: String,
    pub default_os: String,
    /// Power on VMs made by create, clone and deploy once they exist.
    pub power_on: bool,
    /// How long a function waits for a vCenter task (a clone can take minutes) before it says
    /// the task is still running and stops waiting. Keep it below the platform's timeout.
    pub task_wait_secs: u64,
}

impl Default for CreatePolicy {
    fn default() -> Self {
        CreatePolicy { default_size: "small".into(), default_os: "linux".into(), power_on: false, task_wait_secs: 240 }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Size {
    pub cpus: u32,
    pub memory_gb: u32,
    pub disk_gb: u32,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OsFamily {
    /// vSphere's `VirtualMachineGuestOsIdentifier`, e.g. `ubuntu64Guest`.
    pub guest_id: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TemplatePolicy {
    /// Glob patterns of the templates `/iaas deploy` may use.
    pub allowed: Vec<String>,
}

impl Default for TemplatePolicy {
    fn default() -> Self {
        TemplatePolicy { allowed: vec!["tmpl-*".into()] }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ResizePolicy {
    pub max_cpus: u32,
    pub max_memory_gb: u32,
}

impl Default for ResizePolicy {
    fn default() -> Self {
        ResizePolicy { max_cpus: 8, max_memory_gb: 32 }
    }
}

/// VMs the bot never deletes (and never resizes or powers through a delete flow).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProtectionPolicy {
    /// Glob patterns of VM names, e.g. `dc-*`.
    pub name_patterns: Vec<String>,
    /// Names of VM folders (the VM's parent folder), e.g. `Infrastructure`.
    pub folders: Vec<String>,
    /// A custom attribute that protects a VM when it has any non-empty value.
    pub attribute: String,
}

impl Default for ProtectionPolicy {
    fn default() -> Self {
        ProtectionPolicy { name_patterns: Vec::new(), folders: Vec::new(), attribute: "iaas.protected".into() }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LeasePolicy {
    /// Lease of a new VM when the user gives no `--days`.
    pub default_days: u32,
    /// The longest `--days` a user may ask for.
    pub max_days: u32,
    /// `/iaas expire extend` moves the expiry to today + this many days …
    pub extend_days: u32,
    /// … but never beyond creation + this many days (and it never shortens a lease).
    pub max_total_days: u32,
    /// Reminders go to the owner this many days before expiry, each once per term.
    pub reminder_days: Vec<u32>,
    /// A lease is acted on only if its owner got the first reminder at least this long before.
    pub min_notice_hours: u32,
    /// On expiry the VM is powered off; after `grace_days`, "power_off" deletes it,
    /// "decommission" hands it to a decommission request, "power_off_only" leaves it off.
    pub action: LeaseAction,
    /// Days between power-off and deletion.
    pub grace_days: u32,
    /// Slack channel for admin alerts (a reminder that could not be delivered holds its lease).
    pub alert_channel: Option<String>,
    /// VMs never given a lease: parent folder names, and name globs.
    pub exclude_folders: Vec<String>,
    pub exclude_names: Vec<String>,
    /// … and VMs whose owner is in one of these directory groups (DNs; membership is
    /// transitive and checked again by every sweep). Needs the directory (`LDAP_*`).
    pub exclude_owner_groups: Vec<String>,
    /// How often the all-in-one sweeps (the platforms schedule it themselves).
    pub sweep_interval_secs: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeaseAction {
    PowerOff,
    PowerOffOnly,
    Decommission,
}

impl Default for LeasePolicy {
    fn default() -> Self {
        LeasePolicy {
            default_days: 30,
            max_days: 90,
            extend_days: 30,
            max_total_days: 180,
            reminder_days: vec![7, 1],
            min_notice_hours: 24,
            action: LeaseAction::PowerOff,
            grace_days: 7,
            alert_channel: None,
            exclude_folders: Vec::new(),
            exclude_names: Vec::new(),
            exclude_owner_groups: Vec::new(),
            sweep_interval_secs: 3600,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConfirmPolicy {
    /// How long a Confirm button stays valid.
    pub ttl_secs: u64,
}

impl Default for ConfirmPolicy {
    fn default() -> Self {
        ConfirmPolicy { ttl_secs: 600 }
    }
}

/// What `iaas-scale` does when the VM runs and cannot take the change live (no hot-add).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WhenCold {
    /// Record the change and make it when vCenter reports the VM powered off.
    Pending,
    /// Only tell Slack.
    Notify,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScalePolicy {
    /// vCenter alarm names that add vCPUs when they turn red.
    pub cpu_alarms: Vec<String>,
    /// vCenter alarm names that add memory when they turn red.
    pub memory_alarms: Vec<String>,
    pub cpu_step: u32,
    pub max_cpus: u32,
    pub memory_step_gb: u32,
    pub max_memory_gb: u32,
    /// Change a running VM live when vCenter says it has CPU / memory hot-add.
    pub hot_add: bool,
    pub when_cold: WhenCold,
    /// After a change, the same resource of the same VM is left alone this long.
    pub cooldown_secs: u64,
    /// Steps and limits by VM folder name (the VM's parent folder), e.g. `[scale.folders.web]`.
    pub folders: BTreeMap<String, ScaleOverride>,
}

/// Per-folder steps and limits; unset keys fall back to `[scale]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScaleOverride {
    pub cpu_step: Option<u32>,
    pub max_cpus: Option<u32>,
    pub memory_step_gb: Option<u32>,
    pub max_memory_gb: Option<u32>,
}

/// The steps and limits that apply to one VM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScaleLimits {
    pub cpu_step: u32,
    pub max_cpus: u32,
    pub memory_step_gb: u32,
    pub max_memory_gb: u32,
}

impl Default for ScalePolicy {
    fn default() -> Self {
        ScalePolicy {
            cpu_alarms: vec!["Virtual machine CPU usage".into(), "VM CPU Usage".into()],
            memory_alarms: vec!["Virtual machine memory usage".into(), "VM Memory Usage".into()],
            cpu_step: 1,
            max_cpus: 8,
            memory_step_gb: 2,
            max_memory_gb: 32,
            hot_add: true,
            when_cold: WhenCold::Pending,
            cooldown_secs: 1800,
            folders: BTreeMap::new(),
        }
    }
}

impl ScalePolicy {
    /// `[scale]` with the VM folder's overrides applied.
    pub fn limits_for(&self, folder: Option<&str>) -> ScaleLimits {
        let o = folder.and_then(|f| self.folders.get(f)).cloned().unwrap_or_default();
        ScaleLimits {
            cpu_step: o.cpu_step.unwrap_or(self.cpu_step),
            max_cpus: o.max_cpus.unwrap_or(self.max_cpus),
            memory_step_gb: o.memory_step_gb.unwrap_or(self.memory_step_gb),
            max_memory_gb: o.max_memory_gb.unwrap_or(self.max_memory_gb),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageMovePolicy {
    /// Alarm names on a datastore (entity type Datastore) that trigger moves off it.
    pub datastore_alarms: Vec<String>,
    /// Alarm names on a VM that trigger moves off that VM's datastore.
    pub vm_alarms: Vec<String>,
    /// A target must keep at least this much of its capacity free after the move.
    pub headroom_percent: u8,
    /// VMs moved per alarm, one after the other.
    pub max_moves: usize,
    /// Pick powered-off (and suspended) VMs before running ones; largest first within each.
    pub powered_off_first: bool,
    /// Never move a running VM (storage vMotion) automatically.
    pub only_powered_off: bool,
    /// Glob patterns of datastore names never chosen as a target.
    pub exclude_datastores: Vec<String>,
}

impl Default for StorageMovePolicy {
    fn default() -> Self {
        StorageMovePolicy {
            datastore_alarms: vec!["Datastore usage on disk".into()],
            vm_alarms: vec!["VM Storage Usage".into()],
            headroom_percent: 20,
            max_moves: 1,
            powered_off_first: true,
            only_powered_off: false,
            exclude_datastores: Vec::new(),
        }
    }
}

fn default_sizes() -> BTreeMap<String, Size> {
    [("small", 1, 2, 20), ("medium", 2, 4, 40), ("large", 4, 16, 80)]
        .into_iter()
        .map(|(n, cpus, memory_gb, disk_gb)| (n.to_string(), Size { cpus, memory_gb, disk_gb }))
        .collect()
}

fn default_os() -> BTreeMap<String, OsFamily> {
    [("linux", "ubuntu64Guest"), ("windows", "windows2019srv_64Guest")]
        .into_iter()
        .map(|(n, id)| (n.to_string(), OsFamily { guest_id: id.to_string() }))
        .collect()
}

/// `[api]`: who may call the gateway's REST API with `Authorization: Bearer <token>` (HTTP
/// Basic callers are checked against the directory instead).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiPolicy {
    pub tokens: Vec<ApiToken>,
}

/// One API token: only its SHA-256 (hex) is stored; `roles` are policy role names.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiToken {
    pub name: String,
    pub sha256: String,
    #[serde(default)]
    pub roles: Vec<String>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            slack: SlackPolicy::default(),
            vcenter: VcenterPolicy::default(),
            inventory: InventoryPolicy::default(),
            naming: NamingPolicy::default(),
            placement: PlacementPolicy::default(),
            create: CreatePolicy::default(),
            sizes: default_sizes(),
            os: default_os(),
            templates: TemplatePolicy::default(),
            resize: ResizePolicy::default(),
            protection: ProtectionPolicy::default(),
            lease: LeasePolicy::default(),
            confirm: ConfirmPolicy::default(),
            decommission: crate::DecommissionPolicy::default(),
            scale: ScalePolicy::default(),
            storage_move: StorageMovePolicy::default(),
            api: ApiPolicy::default(),
            identity: toml::Table::new(),
            roles: toml::Table::new(),
            limits: toml::Table::new(),
        }
    }
}

impl Policy {
    /// The `[identity]`, `[roles]` and `[limits]` tables as one, for `iaas-access` to read.
    pub fn access_table(&self) -> toml::Table {
        let mut t = toml::Table::new();
        t.insert("identity".into(), toml::Value::Table(self.identity.clone()));
        t.insert("roles".into(), toml::Value::Table(self.roles.clone()));
        t.insert("limits".into(), toml::Value::Table(self.limits.clone()));
        t
    }

    pub fn load(path: &Path) -> Result<Policy, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigError::new(
                "IAAS_CONFIG",
                format!("cannot read {}: {e}", path.display()),
                "Point IAAS_CONFIG at a readable TOML policy file.",
            )
        })?;
        Policy::parse(&text).map_err(|e| {
            ConfigError::new(
                "IAAS_CONFIG",
                format!("{} is not a valid policy: {e}", path.display()),
                "See deploy/config/iaas.example.toml for every key.",
            )
        })
    }

    pub fn parse(text: &str) -> Result<Policy, String> {
        let mut policy: Policy = from_toml(text)?;
        policy.decommission.check()?;
        if policy.vcenter.timeout_secs == 0 {
            return Err("vcenter.timeout_secs must be at least 1".into());
        }
        if policy.inventory.list_max_rows == 0 {
            return Err("inventory.list_max_rows must be at least 1".into());
        }
        regex_lite::Regex::new(&policy.naming.pattern).map_err(|e| format!("naming.pattern is not a regular expression: {e}"))?;
        if !policy.sizes.contains_key(&policy.create.default_size) {
            return Err(format!("create.default_size {:?} is not one of [sizes]", policy.create.default_size));
        }
        if !policy.os.contains_key(&policy.create.default_os) {
            return Err(format!("create.default_os {:?} is not one of [os]", policy.create.default_os));
        }
        if policy.lease.default_days == 0 || policy.lease.default_days > policy.lease.max_days {
            return Err("lease.default_days must be between 1 and lease.max_days".into());
        }
        if policy.lease.max_total_days < policy.lease.max_days {
            return Err("lease.max_total_days must be at least lease.max_days".into());
        }
        if policy.lease.sweep_interval_secs == 0 {
            return Err("lease.sweep_interval_secs must be at least 1".into());
        }
        let scale =
            std::iter::once(policy.scale.limits_for(None)).chain(policy.scale.folders.keys().map(|f| policy.scale.limits_for(Some(f))));
        for limits in scale {
            if limits.cpu_step == 0 || limits.memory_step_gb == 0 {
                return Err("scale steps (cpu_step, memory_step_gb) must be at least 1".into());
            }
        }
        if policy.storage_move.headroom_percent > 95 {
            return Err("storage_move.headroom_percent must be at most 95".into());
        }
        if policy.placement.min_free_percent.is_some_and(|p| p > 95) {
            return Err("placement.min_free_percent must be at most 95".into());
        }
        if policy.placement.min_free_gb.is_some_and(|gb| gb > 1024 * 1024) {
            return Err("placement.min_free_gb must be at most 1048576 (1 PB)".into());
        }
        if policy.storage_move.max_moves == 0 {
            return Err("storage_move.max_moves must be at least 1".into());
        }
        for pattern in policy
            .templates
            .allowed
            .iter()
            .chain(&policy.protection.name_patterns)
            .chain(&policy.lease.exclude_names)
            .chain(&policy.storage_move.exclude_datastores)
        {
            glob::Pattern::new(pattern).map_err(|e| format!("{pattern:?} is not a glob pattern: {e}"))?;
        }
        Ok(policy)
    }
}

/// Deserializes TOML so that an error names the line and the key (`line 12: inventory.list_max_rows:
/// invalid type …`): toml's own message has neither without its multi-line snippet.
fn from_toml<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, String> {
    serde_path_to_error::deserialize(toml::Deserializer::new(text)).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let line = inner.span().map(|span| text[..span.start.min(text.len())].matches('\n').count() + 1);
        let mut out = String::new();
        if let Some(line) = line {
            out.push_str(&format!("line {line}: "));
        }
        if path != "." {
            out.push_str(&format!("{path}: "));
        }
        // toml puts "expected …" on a line of its own; the answer stays one line.
        out.push_str(&inner.message().trim_end().replace('\n', "; "));
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_errors_name_the_line_and_the_key() {
        let text = "[slack]\nresponse_type_changes = \"ephemeral\"\n\n[inventory]\nlist_max_rows = \"5\"\n";
        assert_eq!(Policy::parse(text).unwrap_err(), "line 5: inventory.list_max_rows: invalid type: string \"5\", expected usize");
        let err = Policy::parse("[lease]\nreminder_days = [7, \"x\"]").unwrap_err();
        assert!(err.starts_with("line 2: lease.reminder_days"), "{err}");
        let err = Policy::parse("[vcenter]\ntimeout = 3").unwrap_err();
        assert!(
            err.starts_with("line 2: vcenter.timeout: unknown field `timeout`") || err.starts_with("line 2: vcenter: unknown field"),
            "{err}"
        );
        // A syntax error has a line but no key.
        let err = Policy::parse("[vcenter\n").unwrap_err();
        assert!(err.starts_with("line 1: "), "{err}");
        assert!(!err.contains('\n'), "{err}");
    }

    #[test]
    fn example_policy_parses() {
        let text = include_str!("../../../deploy/config/iaas.example.toml");
        Policy::parse(text).expect("deploy/config/iaas.example.toml must stay a valid policy");
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused() {
        assert!(Policy::parse("[vcenter]\ntimeout = 3").unwrap_err().contains("unknown field"));
        assert!(Policy::parse("[vcenter]\ntimeout_secs = 0").is_err());
        assert!(Policy::parse("[slack]\nresponse_type_changes = \"loud\"").is_err());
        assert!(Policy::parse("[naming]\npattern = \"([\"").unwrap_err().contains("naming.pattern"));
        assert!(Policy::parse("[create]\ndefault_size = \"huge\"").unwrap_err().contains("default_size"));
        assert!(Policy::parse("[sizes.tiny]\ncpus = 1\nmemory_gb = 1").unwrap_err().contains("disk_gb"));
        assert!(Policy::parse("[protection]\nname_patterns = [\"[x\"]").is_err());
        let p = Policy::parse("[slack]\nresponse_type_changes = \"ephemeral\"").unwrap();
        assert_eq!(p.sizes["medium"].cpus, 2);
        assert_eq!(p.slack.response_type_changes, ResponseType::Ephemeral);
        assert_eq!(p.vcenter.timeout_secs, 30);
    }

    #[test]
    fn scale_limits_fall_back_per_key_and_bad_values_are_refused() {
        let p = Policy::parse("[scale]\nmax_cpus = 6\n[scale.folders.web]\nmax_cpus = 3\nmemory_step_gb = 4").unwrap();
        assert_eq!(p.scale.limits_for(Some("web")), ScaleLimits { cpu_step: 1, max_cpus: 3, memory_step_gb: 4, max_memory_gb: 32 });
        assert_eq!(p.scale.limits_for(Some("other")).max_cpus, 6);
        assert_eq!(p.scale.when_cold, WhenCold::Pending);
        assert!(Policy::parse("[scale]\nwhen_cold = \"later\"").is_err());
        assert!(Policy::parse("[scale.folders.web]\ncpu_step = 0").unwrap_err().contains("scale steps"));
        assert!(Policy::parse("[scale.folders.web]\nmax_cpu = 3").unwrap_err().contains("unknown field"));
        assert!(Policy::parse("[storage_move]\nheadroom_percent = 99").is_err());
        assert!(Policy::parse("[storage_move]\nexclude_datastores = [\"[x\"]").is_err());
        assert_eq!(Policy::default().storage_move.datastore_alarms, ["Datastore usage on disk"]);
    }

    #[test]
    fn placement_datastore_choice_and_headroom() {
        let p = Policy::parse("[placement]\ndatastore = \"auto\"\nmin_free_percent = 10\nmin_free_gb = 30").unwrap();
        assert_eq!(p.placement.datastore, DatastoreChoice::Auto);
        // 10% of 500 GiB is 50 GiB, more than 30 GiB: the larger holds.
        assert_eq!(p.placement.headroom_bytes(500 * GIB), 50 * GIB);
        assert_eq!(p.placement.headroom_bytes(100 * GIB), 30 * GIB);
        assert_eq!(p.placement.describe_headroom().unwrap(), "10% of its capacity and 30 GB");
        let p = Policy::parse("[placement]\ndatastore = [\"a\", \"b\"]").unwrap();
        assert_eq!(p.placement.datastore, DatastoreChoice::AnyOf(vec!["a".into(), "b".into()]));
        assert!(p.placement.datastore.allows("b", "a") && !p.placement.datastore.allows("c", "a"));
        assert_eq!(p.placement.headroom_bytes(500 * GIB), 0);
        assert_eq!(p.placement.describe_headroom(), None);
        let p = Policy::parse("[placement]\ndatastore = \"LocalDS_0\"").unwrap();
        assert_eq!(p.placement.datastore, DatastoreChoice::Named("LocalDS_0".into()));
        assert_eq!(Policy::default().placement.datastore, DatastoreChoice::Default);
        for bad in [
            "[placement]\nmin_free_percent = 96",
            "[placement]\nmin_free_percent = -1",
            "[placement]\nmin_free_gb = \"lots\"",
            "[placement]\ndatastore = []",
            "[placement]\ndatastore = \"\"",
            "[placement]\ndatastore = 3",
        ] {
            let err = Policy::parse(bad).unwrap_err();
            assert!(err.contains("placement") && !err.contains('\n'), "{bad}: {err}");
        }
    }
}
