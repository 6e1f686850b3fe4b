//! `[decommission]`: how `/iaas decommission` retires VMs — how many at once, how long a guest
//! may take to shut down, what "delete" means, and the steps each OS family goes through.

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DecommissionPolicy {
    /// VMs of one request worked on at the same time.
    pub workers: usize,
    /// How long `guest_shutdown` waits for the guest before it powers the VM off.
    pub shutdown_timeout_secs: u64,
    /// What `delete_vm` does: delete the VM and its disks, or move it to
    /// `decommissioned_folder` and unregister it (files kept).
    pub delete_mode: DeleteMode,
    /// A VM folder's name (or path, as `placement.folder`) under the vm folder of the VM's
    /// datacenter; required by `move_and_unregister`, which fails a VM's step if it is missing.
    pub decommissioned_folder: Option<String>,
    /// A worker holds its request this long, renewing as it goes; a crashed worker's request
    /// is resumed once its lease lapses.
    pub lease_secs: u64,
    /// How often `iaas serve` looks for requests to resume (the platforms schedule it).
    pub resume_interval_secs: u64,
    /// How often a running request checks whether it was cancelled.
    pub cancel_poll_ms: u64,
    /// The steps per OS family, run in order.
    pub plans: DecommissionPlans,
}

impl Default for DecommissionPolicy {
    fn default() -> Self {
        DecommissionPolicy {
            workers: 5,
            shutdown_timeout_secs: 300,
            delete_mode: DeleteMode::Delete,
            decommissioned_folder: None,
            lease_secs: 120,
            resume_interval_secs: 60,
            cancel_poll_ms: 1000,
            plans: DecommissionPlans::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeleteMode {
    Delete,
    MoveAndUnregister,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DecommissionPlans {
    pub linux: Vec<PlanStep>,
    pub windows: Vec<PlanStep>,
    /// Any guest OS that is neither Linux nor Windows (or unknown).
    pub other: Vec<PlanStep>,
}

impl Default for DecommissionPlans {
    fn default() -> Self {
        let plan = || {
            vec![
                PlanStep::builtin(StepKind::GuestShutdown, OnFailure::Stop),
                PlanStep::builtin(StepKind::DeleteVm, OnFailure::Stop),
                PlanStep::builtin(StepKind::SlackNotify, OnFailure::Warn),
            ]
        };
        DecommissionPlans { linux: plan(), windows: plan(), other: plan() }
    }
}

impl DecommissionPlans {
    /// The plan for `linux`, `windows` or anything else (`other`).
    pub fn for_family(&self, family: &str) -> &[PlanStep] {
        match family {
            "linux" => &self.linux,
            "windows" => &self.windows,
            _ => &self.other,
        }
    }
}

/// One step instance: a kind, a name unique in its plan, what a failure does, and the kind's
/// own keys (`channel` for slack_notify, a zone for dns, …) kept as a table.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct PlanStep {
    pub kind: StepKind,
    /// Defaults to the kind.
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub on_failure: OnFailure,
    #[serde(flatten)]
    pub settings: toml::Table,
}

impl PlanStep {
    pub fn builtin(kind: StepKind, on_failure: OnFailure) -> PlanStep {
        PlanStep { kind, name: kind.as_str().to_string(), on_failure, settings: toml::Table::new() }
    }
}

crate::text_enum! {
    /// A request: pending_confirmation → running → done | failed | cancelled (a request
    /// cancelled before its confirmation never runs).
    pub enum DecommissionState as "request state" {
        PendingConfirmation = "pending_confirmation",
        Running = "running",
        Done = "done",
        Failed = "failed",
        Cancelled = "cancelled",
    }
}

crate::text_enum! {
    /// What a decommission step does; `steps::build` in iaas-decommission has one arm each.
    pub enum StepKind as "decommission step kind" {
        GuestShutdown = "guest_shutdown",
        PowerOff = "power_off",
        DeleteVm = "delete_vm",
        SlackNotify = "slack_notify",
        Dns = "dns",
        DirectoryComputer = "directory_computer",
        Webhook = "webhook",
    }
}

impl StepKind {
    /// The keys a step of this kind may have besides kind, name and on_failure; None = any
    /// (kinds whose settings their own crate checks).
    fn allowed_keys(self) -> Option<&'static [&'static str]> {
        match self {
            StepKind::GuestShutdown | StepKind::PowerOff | StepKind::DeleteVm => Some(&[]),
            StepKind::SlackNotify => Some(&["channel"]),
            StepKind::Dns | StepKind::DirectoryComputer | StepKind::Webhook => None,
        }
    }
}

crate::text_enum! {
    /// What a failed step does to the rest of its VM's plan.
    #[derive(Default)]
    pub enum OnFailure as "on_failure value" {
        /// The VM's later steps do not run; the request ends failed.
        #[default]
        Stop = "stop",
        /// Recorded as a warning; the next step runs.
        Warn = "warn",
    }
}

impl DecommissionPolicy {
    /// Fills default names and refuses what cannot work, with the key at fault.
    pub(crate) fn check(&mut self) -> Result<(), String> {
        if self.workers == 0 {
            return Err("decommission.workers must be at least 1".into());
        }
        if self.lease_secs < 2 || self.resume_interval_secs == 0 || self.cancel_poll_ms == 0 {
            return Err("decommission.lease_secs must be at least 2, resume_interval_secs and cancel_poll_ms at least 1".into());
        }
        if self.delete_mode == DeleteMode::MoveAndUnregister && self.decommissioned_folder.as_deref().is_none_or(|f| f.trim().is_empty()) {
            return Err("decommission.delete_mode \"move_and_unregister\" needs decommission.decommissioned_folder".into());
        }
        for (family, plan) in [("linux", &mut self.plans.linux), ("windows", &mut self.plans.windows), ("other", &mut self.plans.other)] {
            let mut names = std::collections::BTreeSet::new();
            for step in plan.iter_mut() {
                if step.name.trim().is_empty() {
                    step.name = step.kind.as_str().to_string();
                }
                if !names.insert(step.name.clone()) {
                    return Err(format!("decommission.plans.{family} has two steps named {:?}; give each its own name", step.name));
                }
                if let Some(allowed) = step.kind.allowed_keys() {
                    if let Some(extra) = step.settings.keys().find(|k| !allowed.contains(&k.as_str())) {
                        return Err(format!(
                            "decommission.plans.{family}: step {:?} ({}) has an unknown key {extra:?}",
                            step.name,
                            step.kind.as_str()
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::DeleteMode;
    use crate::Policy;

    #[test]
    fn plans_parse_with_names_failure_policies_and_kind_keys() {
        let p = Policy::parse(
            r#"
            [decommission]
            workers = 2
            [decommission.plans]
            linux = [{ kind = "power_off" }, { kind = "delete_vm", on_failure = "warn" }, { kind = "dns", name = "dns-a", zone = "corp.example." }]
            windows = [{ kind = "slack_notify", name = "tell-ops", channel = "C0OPS" }]
            "#,
        )
        .unwrap();
        let d = &p.decommission;
        assert_eq!(d.workers, 2);
        assert_eq!(d.plans.linux[0].name, "power_off");
        assert_eq!(d.plans.linux[1].on_failure.as_str(), "warn");
        assert_eq!(d.plans.linux[2].settings["zone"].as_str(), Some("corp.example."));
        assert_eq!(d.plans.for_family("windows")[0].settings["channel"].as_str(), Some("C0OPS"));
        assert_eq!(d.plans.for_family("beos").len(), 3, "other keeps its default plan");
    }

    #[test]
    fn bad_plans_are_refused() {
        let bad = |t: &str| Policy::parse(t).unwrap_err();
        assert!(bad("[decommission.plans]\nlinux = [{ kind = \"format_c\" }]").contains("format_c"));
        assert!(bad("[decommission.plans]\nlinux = [{ kind = \"power_off\", force = true }]").contains("unknown key \"force\""));
        assert!(bad("[decommission.plans]\nlinux = [{ kind = \"power_off\" }, { kind = \"power_off\" }]").contains("two steps named"));
        assert!(bad("[decommission]\nworkers = 0").contains("workers"));
        assert!(bad("[decommission]\ndelete_mode = \"move_and_unregister\"").contains("decommissioned_folder"));
        assert!(bad("[decommission]\nwrokers = 3").contains("unknown field"));
    }

    #[test]
    fn move_and_unregister_needs_a_folder() {
        let bad = |t: &str| Policy::parse(t).unwrap_err();
        for text in [
            "[decommission]\ndelete_mode = \"move_and_unregister\"",
            "[decommission]\ndelete_mode = \"move_and_unregister\"\ndecommissioned_folder = \"  \"",
        ] {
            let why = bad(text);
            assert_eq!(why, "decommission.delete_mode \"move_and_unregister\" needs decommission.decommissioned_folder");
            assert!(!why.contains('\n'), "one line");
        }
        assert!(bad("[decommission]\ndelete_mode = \"archive\"").contains("archive"));
        let p = Policy::parse("[decommission]\ndelete_mode = \"move_and_unregister\"\ndecommissioned_folder = \"decommissioned\"").unwrap();
        assert_eq!(p.decommission.delete_mode, DeleteMode::MoveAndUnregister);
        assert_eq!(p.decommission.decommissioned_folder.as_deref(), Some("decommissioned"));
        // A folder without the mode is allowed (and unused).
        let p = Policy::parse("[decommission]\ndecommissioned_folder = \"decommissioned\"").unwrap();
        assert_eq!(p.decommission.delete_mode, DeleteMode::Delete);
    }
}
