//! The decommission plans' steps outside vCenter: each `dns` step's zones answer a signed
//! update that changes nothing (its key proven), each `webhook` step's URL resolves and
//! answers a HEAD. Steps are built from the plan exactly as the decommission function builds
//! them (`from_settings`); a step listed in several plans is checked once.

use iaas_config::{PlanStep, Policy, StepKind};
use iaas_steps::dns::DnsStep;
use iaas_steps::webhook::WebhookStep;

use crate::Check;

/// Each distinct step of `kind` across the plans: (where it is, its settings as JSON).
fn steps_of(policy: &Policy, kind: StepKind) -> Vec<(String, serde_json::Value)> {
    let plans = &policy.decommission.plans;
    let mut seen: Vec<serde_json::Value> = Vec::new();
    let mut out = Vec::new();
    for (family, plan) in [("linux", &plans.linux), ("windows", &plans.windows), ("other", &plans.other)] {
        for step in plan.iter().filter(|s: &&PlanStep| s.kind == kind) {
            let settings = serde_json::to_value(&step.settings).unwrap_or_default();
            if seen.contains(&settings) {
                continue;
            }
            seen.push(settings.clone());
            out.push((format!("step {} ({family})", step.name), settings));
        }
    }
    out
}

pub(crate) async fn dns(policy: &Policy) -> Vec<Check> {
    let steps = steps_of(policy, StepKind::Dns);
    if steps.is_empty() {
        return vec![Check::skip("dns", "no dns step in [decommission.plans]: DNS records are left alone")];
    }
    let mut out = Vec::new();
    for (step, settings) in steps {
        out.push(match DnsStep::from_settings(&settings) {
            Err(why) => Check::fail("dns", format!("{step}: {}", why.trim_end_matches('.')), "Fix the step in [decommission.plans]."),
            Ok(dns) => match dns.probe().await {
                Ok(said) => Check::ok("dns", format!("{step}: {}", said.join("; "))),
                Err(e) => Check::fail(
                    "dns",
                    format!("{step}: {}", e.0.trim_end_matches('.')),
                    "Check the step's server, key_name and the secret in its secret_env against the server's key and allow-update rule.",
                ),
            },
        });
    }
    out
}

pub(crate) async fn webhooks(policy: &Policy) -> Vec<Check> {
    let steps = steps_of(policy, StepKind::Webhook);
    if steps.is_empty() {
        return vec![Check::skip("webhook", "no webhook step in [decommission.plans]")];
    }
    let mut out = Vec::new();
    for (step, settings) in steps {
        out.push(match WebhookStep::from_settings(&settings) {
            Err(why) => Check::fail("webhook", format!("{step}: {}", why.trim_end_matches('.')), "Fix the step in [decommission.plans]."),
            Ok(hook) => match hook.probe().await {
                Ok(said) => Check::ok("webhook", format!("{step}: {said} (reachable)")),
                Err(e) => Check::fail(
                    "webhook",
                    format!("{step}: {}", e.0.trim_end_matches('.')),
                    "Check the step's url, that the service runs, and the network between the functions and it.",
                ),
            },
        });
    }
    out
}
