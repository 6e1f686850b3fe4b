//! `/metrics` after a known set of commands through `iaas serve` (vcsim, OpenLDAP): commands by
//! name and outcome, function run time, vCenter calls by method, access refusals by reason —
//! and no user or VM names in any label.

mod common;

use common::{ldap_env, start_on, Serve};
use iaas_tests::slapd::Slapd;
use iaas_tests::vcsim::Vcsim;

// The seed's app-web-01 belongs to U0USER1 and app-db-01 to U0ADMIN (iaas.owner).
const POLICY: &str = r#"
[identity.slack_users]
U0USER1 = "ann@example.test"     # iaas-users
U0DAVE = "dave@example.test"     # disabled in the directory
U0GINA = "gina@example.test"     # in a group no role uses

[roles.users]
groups = ["cn=iaas-users,ou=groups,dc=example,dc=test"]
commands = ["power", "vm list", "vm info", "create", "quota", "decommission"]
scope = "owned"
quota = { vms = 1, cpus = 16, memory_gb = 64 }

[decommission.plans]
linux = [{ kind = "power_off" }, { kind = "delete_vm" }]
"#;

/// The value of the sample `name` whose labels include every pair in `labels`.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|line| {
        let (series, value) = line.rsplit_once(' ')?;
        let (metric, rest) = series.split_once('{').unwrap_or((series, "}"));
        let matches = metric == name && labels.iter().all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")));
        if matches {
            value.parse().ok()
        } else {
            None
        }
    })
}

async fn scrape(serve: &Serve) -> String {
    let resp = reqwest::get(format!("{}/metrics", serve.url)).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    resp.text().await.unwrap()
}

#[tokio::test]
async fn metrics_count_a_known_set_of_commands() {
    let slapd = Slapd::start_seeded().await.unwrap();
    let vcsim = Vcsim::start().await.unwrap();
    let (serve, _reader) = start_on(&vcsim, POLICY, &ldap_env(&slapd)).await;

    assert!(serve.run("U0USER1", "power off app-web-01").await.readable().contains("powered off"));
    assert!(serve.run("U0USER1", "vm list").await.readable().contains("app-web-01"));
    // Refused in the function: not her VM.
    serve.run("U0USER1", "power off app-db-01").await;
    // Refused at the gateway: a command her role lacks, no role at all, a disabled account.
    for (user, text) in [("U0USER1", "delete app-web-01"), ("U0GINA", "vm list"), ("U0DAVE", "vm list")] {
        let (status, _ack, id) = serve.slash(user, text).await;
        assert_eq!((status, id), (200, None), "`{text}` by {user}");
    }

    assert!(serve.trigger("iaas-expire-sweep").await.contains("leases due"));
    // One VM fits her quota, the second does not.
    assert!(serve.run("U0USER1", "create metrics-01").await.readable().contains("metrics-01"));
    assert!(serve.run("U0USER1", "create metrics-02").await.readable().contains("quota"));
    // A decommission of her VM: two steps, both done.
    let prompt = serve.run("U0USER1", "decommission app-web-01").await;
    assert_eq!(serve.press("U0USER1", "decommission.confirm", &common::button_token(&prompt)).await, 200);
    let mut done = String::new();
    for _ in 0..100 {
        done = serve.answer().await.readable();
        if done.contains("Decommissioned 1 of 1 VM") {
            break;
        }
    }
    assert!(done.contains("Decommissioned 1 of 1 VM"), "{done}");

    let text = scrape(&serve).await;
    let count = |name: &str, labels: &[(&str, &str)]| sample(&text, name, labels).unwrap_or(0.0);
    assert_eq!(count("iaas_commands_total", &[("command", "power"), ("outcome", "done")]), 1.0, "{text}");
    assert_eq!(count("iaas_commands_total", &[("command", "power"), ("outcome", "denied")]), 1.0, "{text}");
    assert_eq!(count("iaas_commands_total", &[("command", "vm list"), ("outcome", "done")]), 1.0, "{text}");
    assert_eq!(count("iaas_function_duration_seconds_count", &[("function", "iaas-power"), ("outcome", "done")]), 1.0, "{text}");
    assert_eq!(count("iaas_function_duration_seconds_count", &[("function", "iaas-inventory"), ("outcome", "done")]), 1.0, "{text}");
    assert_eq!(count("iaas_access_refusals_total", &[("stage", "gateway"), ("reason", "command_not_allowed")]), 2.0, "{text}");
    assert_eq!(count("iaas_access_refusals_total", &[("stage", "gateway"), ("reason", "disabled")]), 1.0, "{text}");
    assert_eq!(count("iaas_access_refusals_total", &[("stage", "function"), ("reason", "vm_not_allowed")]), 1.0, "{text}");
    assert_eq!(count("iaas_vcenter_calls_total", &[("method", "PowerOffVM_Task"), ("outcome", "ok")]), 1.0, "{text}");
    assert!(count("iaas_vcenter_call_duration_seconds_count", &[("method", "RetrievePropertiesEx")]) >= 1.0, "{text}");
    assert!(count("iaas_lease_sweeps_total", &[]) >= 1.0, "{text}");
    assert_eq!(count("iaas_quota_refusals_total", &[]), 1.0, "{text}");
    assert_eq!(count("iaas_decommission_steps_total", &[("kind", "power_off"), ("state", "done")]), 1.0, "{text}");
    assert_eq!(count("iaas_decommission_steps_total", &[("kind", "delete_vm"), ("state", "done")]), 1.0, "{text}");
    assert_eq!(count("iaas_dispatch_failures_total", &[]), 0.0, "every hand-over worked: {text}");
    // Every Slack request is counted by its route; the gateway's answer to it is the ack.
    assert!(count("iaas_http_requests_total", &[("route", "/slack/commands"), ("status", "200")]) >= 6.0, "{text}");
    assert!(count("iaas_http_request_duration_seconds_count", &[("route", "/slack/commands")]) >= 6.0, "{text}");
    // The scrape itself is in flight while the page is rendered.
    assert!(count("iaas_http_requests_in_flight", &[]) >= 1.0, "{text}");
    assert!(text.contains("# TYPE iaas_function_duration_seconds histogram"), "{text}");
    for unbounded in ["app-web", "app-db", "metrics-0", "U0USER1", "U0GINA", "U0DAVE", "ann@"] {
        assert!(!text.contains(unbounded), "{unbounded} in a label:\n{text}");
    }
}
