//! VM leases end to end with the clock override: `iaas expire sweep --as-of --yes` against the
//! store, vcsim and a Slack stand-in; the lease seen in Slack, in the CLI and on the VM agree.
//! `--dry-run` leaves all three untouched.

mod common;

use chrono::{DateTime, Duration, Utc};
use common::{ldap_env, start_on, Serve};
use iaas_store::UserId;
use iaas_store::{AuditFilter, DecommissionFilter, Lease, LeaseFilter, LeaseState, Store, Usage};
use iaas_tests::slapd::Slapd;
use iaas_tests::vcsim::Vcsim;
use iaas_vsphere::soap::SoapClient;
use iaas_vsphere::{PowerState, VcError, Vcenter, VmDetails, ATTR_EXPIRES};

const POLICY: &str = r#"
[lease]
default_days = 10
max_days = 15
extend_days = 30
max_total_days = 20
reminder_days = [7, 1]
min_notice_hours = 24
grace_days = 3
alert_channel = "C0ADMINS"
exclude_names = ["keep-*"]

[protection]
name_patterns = ["guard-*"]
"#;

async fn start() -> (Vcsim, Serve, SoapClient) {
    start_with(POLICY).await
}

async fn start_with(policy: &str) -> (Vcsim, Serve, SoapClient) {
    let vcsim = Vcsim::start().await.unwrap();
    let (serve, reader) = start_on(&vcsim, policy, &[]).await;
    (vcsim, serve, reader)
}

/// Sweeps for real as of `created + offset` and returns the report line.
async fn sweep_at(serve: &Serve, created: DateTime<Utc>, offset: Duration) -> String {
    let at = (created + offset).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    serve.cli(&["expire", "sweep", "--as-of", &at, "--yes"]).await
}

/// A dry-run sweep as of `created + offset`: its output.
async fn dry_run_at(serve: &Serve, created: DateTime<Utc>, offset: Duration) -> String {
    let at = (created + offset).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    serve.cli(&["expire", "sweep", "--dry-run", "--as-of", &at]).await
}

/// Everything a sweep may change: each lease with its reminders and its VM in vCenter, U1's
/// quota, the audit trail, decommission requests, and the posts to the Slack stand-in.
#[derive(Debug, PartialEq)]
struct Snapshot {
    leases: Vec<LeaseSeen>,
    usage: Usage,
    audit: usize,
    decommissions: usize,
    posts: usize,
}

/// A lease, its first reminder, whether the 7- and 1-day reminders were sent, and its VM.
#[derive(Debug, PartialEq)]
struct LeaseSeen {
    lease: Lease,
    first_reminder: Option<i64>,
    reminded: (bool, bool),
    vm: Result<VmDetails, String>,
}

async fn snapshot(serve: &Serve, reader: &SoapClient) -> Snapshot {
    let store = store(serve).await;
    let mut leases = Vec::new();
    for l in store.leases(&LeaseFilter { include_finished: true, ..Default::default() }, 1000).await.unwrap() {
        let first = store.first_reminder(&l.vm_moref, l.expires_at_ms).await.unwrap();
        let seven = store.reminder_sent(&l.vm_moref, l.expires_at_ms, 7).await.unwrap();
        let one = store.reminder_sent(&l.vm_moref, l.expires_at_ms, 1).await.unwrap();
        let vm = reader.vm_details(&l.vm()).await.map_err(|e| e.to_string());
        leases.push(LeaseSeen { lease: l, first_reminder: first, reminded: (seven, one), vm });
    }
    Snapshot {
        leases,
        usage: store.quota_usage(&UserId::from("U1")).await.unwrap(),
        audit: store.audit_entries(&AuditFilter::default(), 100_000).await.unwrap().len(),
        decommissions: store.decommissions(&DecommissionFilter::default(), 1000, 0).await.unwrap().len(),
        posts: serve.posts.lock().unwrap().len(),
    }
}

/// Dry-runs as of `created + offset`, checks that nothing changed, and returns its output.
async fn dry_run_changes_nothing(serve: &Serve, reader: &SoapClient, created: DateTime<Utc>, offset: Duration) -> String {
    let before = snapshot(serve, reader).await;
    let out = dry_run_at(serve, created, offset).await;
    assert_eq!(snapshot(serve, reader).await, before, "a dry run changed something:\n{out}");
    assert!(out.contains("nothing is changed, sent or recorded"), "{out}");
    out
}

/// The store `iaas serve` uses.
async fn store(serve: &Serve) -> Store {
    Store::connect(&format!("sqlite://{}/iaas.db", serve.dir.display())).await.unwrap()
}

/// Creates `name` for U1 and `keep-<name>` (no lease, same size, still in U1's quota), powers
/// `name` on and sweeps until it is powered off on expiry; returns U1's usage with both VMs.
async fn expired_and_powered_off(serve: &Serve, name: &str, created: DateTime<Utc>) -> Usage {
    assert!(serve.run("U1", &format!("create {name}")).await.readable().contains("expires"));
    assert!(serve.run("U1", &format!("create keep-{name}")).await.readable().contains("excluded by policy"));
    serve.run("U1", &format!("power on {name}")).await;
    let usage = store(serve).await.quota_usage(&UserId::from("U1")).await.unwrap();
    assert_eq!(usage.vms, 2, "{usage:?}");
    assert!(sweep_at(serve, created, Duration::days(4)).await.contains("1 reminded"));
    assert!(sweep_at(serve, created, Duration::days(10) + Duration::hours(1)).await.contains("1 powered off"));
    usage
}

/// What one of two same-sized VMs holds.
fn half(u: Usage) -> Usage {
    Usage { vms: u.vms / 2, cpus: u.cpus / 2, memory_mb: u.memory_mb / 2 }
}

async fn state(reader: &SoapClient, name: &str) -> Result<PowerState, VcError> {
    let vm = reader.find_vm(name).await?;
    Ok(reader.vm_details(&vm).await?.summary.power_state)
}

#[tokio::test]
async fn reminders_once_then_power_off_grace_and_delete() {
    let (_vcsim, serve, reader) = start().await;
    let created = Utc::now();
    assert!(serve.run("U1", "create lease-01").await.readable().contains("expires"));
    serve.run("U1", "power on lease-01").await;

    assert!(sweep_at(&serve, created, Duration::days(2)).await.contains("0 reminded"));
    assert!(serve.posts_to("U1").is_empty());

    // Seven days before expiry: one DM with an Extend button; a second sweep sends nothing more.
    assert!(sweep_at(&serve, created, Duration::days(4)).await.contains("1 reminded"));
    assert!(sweep_at(&serve, created, Duration::days(4) + Duration::hours(1)).await.contains("0 reminded"));
    let dms = serve.posts_to("U1");
    assert_eq!(dms.len(), 1);
    assert!(dms[0]["text"].as_str().unwrap().contains("Your VM *lease-01* expires on"));
    assert_eq!(dms[0]["blocks"][1]["elements"][0]["action_id"], "expire.extend");

    // One day before: the second reminder, once.
    assert!(sweep_at(&serve, created, Duration::days(9) + Duration::hours(12)).await.contains("1 reminded"));
    assert!(sweep_at(&serve, created, Duration::days(9) + Duration::hours(13)).await.contains("0 reminded"));
    assert_eq!(serve.posts_to("U1").len(), 2);
    assert_eq!(state(&reader, "lease-01").await.unwrap(), PowerState::PoweredOn);

    // Expired: powered off, with a final notice.
    assert!(sweep_at(&serve, created, Duration::days(10) + Duration::hours(1)).await.contains("1 powered off"));
    assert_eq!(state(&reader, "lease-01").await.unwrap(), PowerState::PoweredOff);
    assert!(serve.posts_to("U1")[2]["text"].as_str().unwrap().contains("was powered off"));

    // Inside the grace period nothing more happens; after it, the VM is deleted.
    assert!(sweep_at(&serve, created, Duration::days(12)).await.contains("0 deleted"));
    assert!(state(&reader, "lease-01").await.is_ok());
    assert!(sweep_at(&serve, created, Duration::days(13) + Duration::hours(2)).await.contains("1 deleted"));
    assert!(matches!(state(&reader, "lease-01").await, Err(VcError::NotFound { .. })));
    assert!(serve.posts_to("U1")[3]["text"].as_str().unwrap().contains("was deleted"));
}

#[tokio::test]
async fn extend_never_shortens_stops_at_the_cap_and_everyone_sees_the_same_date() {
    let (_vcsim, serve, reader) = start().await;
    serve.run("U1", "create lease-02").await;
    let created = Utc::now();
    let cap = (created + Duration::days(20)).format("%Y-%m-%d").to_string();

    let extended = serve.run("U1", "expire extend lease-02").await.readable();
    assert!(extended.contains(&format!("now expires on {cap}")), "{extended}");
    let again = serve.run("U1", "expire extend lease-02").await.readable();
    assert!(again.contains("cannot be extended further"), "{again}");
    // Another user may not extend it.
    let other = serve.run("U2", "expire extend lease-02").await.readable();
    assert!(!other.contains("now expires"), "{other}");

    // Slack, the CLI and the VM's attribute agree.
    let shown = serve.run("U1", "expire show lease-02").await.readable();
    assert!(shown.contains(&format!("expires {cap}")), "{shown}");
    assert!(serve.cli(&["expire", "show", "lease-02"]).await.contains(&format!("expires {cap}")));
    let vm = reader.find_vm("lease-02").await.unwrap();
    assert_eq!(reader.vm_details(&vm).await.unwrap().attributes.get(ATTR_EXPIRES), Some(&cap));

    // An admin may shorten it with set; the attribute follows.
    serve.cli(&["expire", "set", "lease-02", "2030-01-31"]).await;
    assert_eq!(reader.vm_details(&vm).await.unwrap().attributes.get(ATTR_EXPIRES).map(String::as_str), Some("2030-01-31"));
    let listed = serve.run("U1", "expire list --mine").await.readable();
    assert!(listed.contains("lease-02* expires 2030-01-31"), "{listed}");
}

#[tokio::test]
async fn an_undeliverable_reminder_holds_the_lease_and_alerts_admins() {
    let (_vcsim, serve, reader) = start().await;
    let created = Utc::now();
    serve.run("U0NODM", "create lease-03").await;
    serve.run("U0NODM", "power on lease-03").await;
    let report = sweep_at(&serve, created, Duration::days(4)).await;
    assert!(report.contains("1 held"), "{report}");
    let alerts = serve.posts_to("C0ADMINS");
    assert_eq!(alerts.len(), 1);
    assert!(alerts[0]["text"].as_str().unwrap().contains("lease-03") && alerts[0]["text"].as_str().unwrap().contains("held"));
    // Long after expiry the VM is untouched: held leases are never acted on.
    sweep_at(&serve, created, Duration::days(30)).await;
    assert_eq!(state(&reader, "lease-03").await.unwrap(), PowerState::PoweredOn);
    assert!(serve.cli(&["expire", "show", "lease-03"]).await.contains("held"));
}

#[tokio::test]
async fn a_protected_vm_is_never_powered_off_on_expiry() {
    let (_vcsim, serve, reader) = start().await;
    let created = Utc::now();
    serve.run("U1", "create guard-01").await;
    serve.run("U1", "power on guard-01").await;
    assert!(sweep_at(&serve, created, Duration::days(4)).await.contains("1 reminded"));
    // Expired with notice given, but IT protects it: held, the admins told, the VM untouched.
    let report = sweep_at(&serve, created, Duration::days(10) + Duration::hours(1)).await;
    assert!(report.contains("0 powered off") && report.contains("1 held"), "{report}");
    assert_eq!(state(&reader, "guard-01").await.unwrap(), PowerState::PoweredOn);
    let alerts = serve.posts_to("C0ADMINS");
    assert!(alerts.iter().any(|a| a["text"].as_str().unwrap().contains("guard-01") && a["text"].as_str().unwrap().contains("protected")));
    assert!(serve.cli(&["expire", "show", "guard-01"]).await.contains("held: the VM is protected"));
    sweep_at(&serve, created, Duration::days(30)).await;
    assert!(reader.find_vm("guard-01").await.is_ok());
}

#[tokio::test]
async fn excluded_vms_get_no_lease_and_are_untouched() {
    let (_vcsim, serve, reader) = start().await;
    let created = Utc::now();
    let made = serve.run("U1", "create keep-01").await.readable();
    assert!(made.contains("no expiry (excluded by policy)"), "{made}");
    sweep_at(&serve, created, Duration::days(60)).await;
    assert!(reader.find_vm("keep-01").await.is_ok());
    assert!(serve.run("U1", "expire show keep-01").await.readable().contains("has no lease"));
    assert!(serve.posts_to("U1").is_empty());
}

/// A VEBA event about a VM, in the structured CloudEvents shape.
fn vm_event(id: &str, class: &str, vm: &iaas_vsphere::VmRef) -> String {
    serde_json::json!({
        "specversion": "1.0", "id": id, "source": "https://vc.example.test/sdk", "type": "com.vmware.event.router/event",
        "subject": class, "datacontenttype": "application/json", "time": "2026-11-22T10:00:00Z",
        "data": {"Key": 1, "FullFormattedMessage": format!("{class} {}", vm.name), "Vm": {"Name": vm.name, "Vm": {"Type": "VirtualMachine", "Value": vm.moref}}}
    })
    .to_string()
}

#[tokio::test]
async fn vms_made_in_vcenter_get_leases_from_veba_events() {
    let vcsim = Vcsim::start().await.unwrap();
    let (serve, reader) = start_on(&vcsim, POLICY, &[("IAAS_EVENTS_TOKEN", "veba-token")]).await;
    let vm = reader.find_vm("win-app-01").await.unwrap();
    let auth = [("authorization", "Bearer veba-token".to_string()), ("content-type", "application/json".to_string())];

    let (status, _) = serve
        .post_function(
            "iaas-expire-events",
            &[("authorization", "Bearer wrong".to_string())],
            vm_event("e1", "VmCreatedEvent", &vm).into_bytes(),
        )
        .await;
    assert_eq!(status, 401);
    let (status, body) = serve.post_function("iaas-expire-events", &auth, vm_event("e1", "VmCreatedEvent", &vm).into_bytes()).await;
    assert_eq!(status, 200, "{body}");
    let expected = (Utc::now() + Duration::days(10)).format("%Y-%m-%d").to_string();
    assert_eq!(reader.vm_details(&vm).await.unwrap().attributes.get(ATTR_EXPIRES), Some(&expected));
    assert!(serve.cli(&["expire", "show", "win-app-01"]).await.contains(&format!("expires {expected}")));
    // The same event delivered again changes nothing.
    let (status, _) = serve.post_function("iaas-expire-events", &auth, vm_event("e1", "VmCreatedEvent", &vm).into_bytes()).await;
    assert_eq!(status, 200);
    // Removed from vCenter: the lease is closed, and sweeps leave it alone.
    let (status, _) = serve.post_function("iaas-expire-events", &auth, vm_event("e2", "VmRemovedEvent", &vm).into_bytes()).await;
    assert_eq!(status, 200);
    assert!(serve.cli(&["expire", "show", "win-app-01"]).await.contains("closed"));
}

#[tokio::test]
async fn a_scheduled_trigger_runs_a_sweep() {
    let (_vcsim, serve, _reader) = start().await;
    let body = serve.trigger("iaas-expire-sweep").await;
    assert!(body.contains("leases due"), "{body}");
}

#[tokio::test]
async fn expiry_can_hand_the_vm_to_decommission() {
    let (_vcsim, serve, reader) = start_with(
        r#"
[lease]
default_days = 10
max_days = 15
reminder_days = [7, 1]
min_notice_hours = 24
grace_days = 3
action = "decommission"

[decommission]
resume_interval_secs = 1
shutdown_timeout_secs = 5
"#,
    )
    .await;
    let created = Utc::now();
    serve.run("U1", "create lease-07").await;
    serve.run("U1", "power on lease-07").await;
    assert!(sweep_at(&serve, created, Duration::days(4)).await.contains("1 reminded"));
    assert!(sweep_at(&serve, created, Duration::days(10) + Duration::hours(1)).await.contains("1 powered off"));
    assert!(serve.posts_to("U1")[1]["text"].as_str().unwrap().contains("will be decommissioned"));
    // Inside the grace period the VM stays, powered off.
    assert!(sweep_at(&serve, created, Duration::days(12)).await.contains("0 decommissioned"));
    assert_eq!(state(&reader, "lease-07").await.unwrap(), PowerState::PoweredOff);

    // After it, a decommission request of IT's plan takes the VM; `iaas serve` resumes it. A dry
    // run first says so and hands nothing over.
    let out = dry_run_changes_nothing(&serve, &reader, created, Duration::days(13) + Duration::hours(2)).await;
    assert!(out.contains("would hand the VM to a decommission request") && out.contains("1 decommissioned"), "{out}");
    let report = sweep_at(&serve, created, Duration::days(13) + Duration::hours(2)).await;
    assert!(report.contains("1 decommissioned"), "{report}");
    let shown = serve.cli(&["expire", "show", "lease-07"]).await;
    let id =
        shown.split("decommission request `").nth(1).and_then(|r| r.split('`').next()).unwrap_or_else(|| panic!("{shown}")).to_string();
    let told = serve.posts_to("U1")[2]["text"].as_str().unwrap().to_string();
    assert!(told.contains("is being decommissioned") && told.contains(&id), "{told}");
    let mut status = String::new();
    for _ in 0..100 {
        status = serve.run("U1", &format!("decommission status {id}")).await.readable();
        if status.contains("*done*") || status.contains("*failed*") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(status.contains("*done*") && status.contains("`iaas-expire`"), "{status}");
    assert!(matches!(state(&reader, "lease-07").await, Err(VcError::NotFound { .. })));
    // A later sweep has nothing left to do, and makes no second request.
    assert!(sweep_at(&serve, created, Duration::days(20)).await.contains("0 decommissioned"));
    let listed = serve.run("U1", "decommission list --vm lease-07").await.readable();
    assert_eq!(listed.matches("• `").count(), 1, "{listed}");
}

#[tokio::test]
async fn owners_in_an_excluded_group_get_no_lease_and_every_sweep_asks_again() {
    let mut slapd = Slapd::start_seeded().await.unwrap();
    let vcsim = Vcsim::start().await.unwrap();
    // gina is in tier-parent through a nested group; ann and bob are not (yet).
    let (serve, reader) = start_on(
        &vcsim,
        r#"
[identity.slack_users]
U0USER1 = "ann@example.test"
U0ADMIN = "bob@example.test"
U0GINA = "gina@example.test"

[lease]
default_days = 10
max_days = 15
reminder_days = [7, 1]
min_notice_hours = 24
alert_channel = "C0ADMINS"
exclude_owner_groups = ["CN=tier-parent, OU=groups, DC=example, DC=test"]
"#,
        &ldap_env(&slapd),
    )
    .await;
    let created = Utc::now();

    let made = serve.run("U0GINA", "create lab-01").await.readable();
    assert!(made.contains("no expiry") && made.contains("tier-parent"), "{made}");
    assert!(serve.run("U0GINA", "expire show lab-01").await.readable().contains("has no lease"));
    assert!(serve.run("U0USER1", "create lease-05").await.readable().contains("expires"));
    assert!(serve.run("U0ADMIN", "create lease-06").await.readable().contains("expires"));

    // ann joins the group: the next sweep that looks at her lease ends it, on the VM too.
    slapd
        .ldapmodify(
            "dn: cn=tier-parent,ou=groups,dc=example,dc=test\nchangetype: modify\nadd: member\nmember: uid=ann,ou=people,dc=example,dc=test\n",
        )
        .unwrap();
    let report = sweep_at(&serve, created, Duration::days(4)).await;
    assert!(report.contains("1 reminded") && report.contains("1 excluded"), "{report}");
    let shown = serve.cli(&["expire", "show", "lease-05"]).await;
    assert!(shown.contains("does not expire"), "{shown}");
    let vm = reader.find_vm("lease-05").await.unwrap();
    let attr = reader.vm_details(&vm).await.unwrap().attributes.get(ATTR_EXPIRES).cloned().unwrap_or_default();
    assert_eq!(attr, "");
    assert!(serve.posts_to("U0USER1")[0]["text"].as_str().unwrap().contains("no longer expires"));
    // The lab VM was never swept: no DM to gina.
    assert!(serve.posts_to("U0GINA").is_empty());

    // With the directory down, bob's expired lease is left alone and the admins are told.
    let before = state(&reader, "lease-06").await.unwrap();
    slapd.stop().await;
    let report = sweep_at(&serve, created, Duration::days(11)).await;
    assert!(report.contains("1 deferred") && report.contains("0 powered off"), "{report}");
    assert_eq!(state(&reader, "lease-06").await.unwrap(), before);
    let alerts = serve.posts_to("C0ADMINS");
    assert!(alerts.iter().any(|p| p["text"].as_str().unwrap().contains("directory could not say")), "{alerts:?}");
}

/// A VM the sweep deletes no longer counts against its owner's quota; the owner's other VM
/// still does, and a sweep that goes over the same lease again gives nothing back twice.
#[tokio::test]
async fn a_vm_deleted_by_the_sweep_gives_its_quota_back_once() {
    let (_vcsim, serve, reader) = start().await;
    let created = Utc::now();
    let both = expired_and_powered_off(&serve, "lease-08", created).await;
    let report = sweep_at(&serve, created, Duration::days(13) + Duration::hours(2)).await;
    assert!(report.contains("1 deleted"), "{report}");
    assert!(matches!(state(&reader, "lease-08").await, Err(VcError::NotFound { .. })));
    let store = store(&serve).await;
    assert_eq!(store.quota_usage(&UserId::from("U1")).await.unwrap(), half(both), "only keep-lease-08 counts");

    // The same lease swept again (as a replayed sweep would): nothing more is given back.
    let vm_moref = store
        .leases(&LeaseFilter { include_finished: true, ..Default::default() }, 10)
        .await
        .unwrap()
        .into_iter()
        .find(|l| l.vm_name == "lease-08")
        .unwrap()
        .vm_moref;
    store.set_lease_state(&vm_moref, LeaseState::Deleting, "replayed", 0).await.unwrap();
    sweep_at(&serve, created, Duration::days(14)).await;
    assert_eq!(store.lease(&vm_moref).await.unwrap().unwrap().state, LeaseState::Deleted);
    assert_eq!(store.quota_usage(&UserId::from("U1")).await.unwrap(), half(both), "given back once");
}

/// A VM with another change in flight is left alone by the sweep (power-off and delete alike)
/// and acted on by the next sweep once the change is over.
#[tokio::test]
async fn a_vm_busy_with_another_change_waits_for_the_next_sweep() {
    let (_vcsim, serve, reader) = start().await;
    let created = Utc::now();
    serve.run("U1", "create lease-09").await;
    serve.run("U1", "power on lease-09").await;
    assert!(sweep_at(&serve, created, Duration::days(4)).await.contains("1 reminded"));
    let store = store(&serve).await;
    let lock = |store: Store| async move { store.lock_vm("lease-09", "resize-42", "resize lease-09", "U2", 3_600_000).await.unwrap() };

    assert!(lock(store.clone()).await.is_ok());
    let report = sweep_at(&serve, created, Duration::days(10) + Duration::hours(1)).await;
    assert!(report.contains("0 powered off") && report.contains("1 busy"), "{report}");
    assert_eq!(state(&reader, "lease-09").await.unwrap(), PowerState::PoweredOn);
    store.unlock_vm("lease-09", "resize-42").await.unwrap();
    let report = sweep_at(&serve, created, Duration::days(10) + Duration::hours(2)).await;
    assert!(report.contains("1 powered off") && report.contains("0 busy"), "{report}");
    assert_eq!(state(&reader, "lease-09").await.unwrap(), PowerState::PoweredOff);

    assert!(lock(store.clone()).await.is_ok());
    let report = sweep_at(&serve, created, Duration::days(13) + Duration::hours(3)).await;
    assert!(report.contains("0 deleted") && report.contains("1 busy"), "{report}");
    assert!(reader.find_vm("lease-09").await.is_ok());
    store.unlock_vm("lease-09", "resize-42").await.unwrap();
    let report = sweep_at(&serve, created, Duration::days(13) + Duration::hours(4)).await;
    assert!(report.contains("1 deleted"), "{report}");
    assert!(matches!(state(&reader, "lease-09").await, Err(VcError::NotFound { .. })));
    // The sweep let go of the lock: another change may take it.
    assert!(lock(store).await.is_ok());
}

/// A sweep that died after destroying the VM (its lease still deleting, the share recorded)
/// is finished by the next: the lease ends deleted and the share is given back, once.
#[tokio::test]
async fn a_delete_interrupted_after_the_destroy_is_settled_once() {
    let (_vcsim, serve, reader) = start().await;
    let created = Utc::now();
    let both = expired_and_powered_off(&serve, "lease-10", created).await;
    let store = store(&serve).await;
    let vm = reader.find_vm("lease-10").await.unwrap();
    assert!(store.begin_lease_delete(&vm.moref, half(both), 0).await.unwrap());
    reader.destroy(&vm).await.unwrap();
    assert_eq!(store.quota_usage(&UserId::from("U1")).await.unwrap(), both, "still charged: the worker died");

    let report = sweep_at(&serve, created, Duration::days(13) + Duration::hours(2)).await;
    assert!(report.contains("1 deleted"), "{report}");
    assert_eq!(store.lease(&vm.moref).await.unwrap().unwrap().state, LeaseState::Deleted);
    assert_eq!(store.quota_usage(&UserId::from("U1")).await.unwrap(), half(both));
    assert!(store.vm_record(&vm.moref).await.unwrap().unwrap().deleted_at_ms.is_some());
    let report = sweep_at(&serve, created, Duration::days(14)).await;
    assert!(report.contains("0 deleted"), "{report}");
    assert_eq!(store.quota_usage(&UserId::from("U1")).await.unwrap(), half(both), "given back once");
}

/// Each stage of a lease's end, dry-run first: the dry run prints what the real sweep then
/// does, and leaves the store, vCenter and Slack as they were — so the real reminders are
/// still sent after it (the rehearsal that used to record them is the bug this guards).
#[tokio::test]
async fn a_dry_run_shows_the_sweep_and_changes_nothing() {
    let (_vcsim, serve, reader) = start().await;
    let created = Utc::now();
    assert!(serve.run("U1", "create lease-11").await.readable().contains("expires"));
    serve.run("U1", "power on lease-11").await;

    let out = dry_run_changes_nothing(&serve, &reader, created, Duration::days(4)).await;
    assert!(
        out.contains("lease-11") && out.contains("would remind the owner by DM") && out.contains("would: 1 leases due: 1 reminded"),
        "{out}"
    );
    assert!(serve.posts_to("U1").is_empty());
    assert!(sweep_at(&serve, created, Duration::days(4)).await.contains("1 reminded"));
    assert_eq!(serve.posts_to("U1").len(), 1);

    let out = dry_run_changes_nothing(&serve, &reader, created, Duration::days(9) + Duration::hours(12)).await;
    assert!(out.contains("would remind the owner by DM (the reminder 1 day(s) before expiry)"), "{out}");
    assert!(sweep_at(&serve, created, Duration::days(9) + Duration::hours(12)).await.contains("1 reminded"));

    let out = dry_run_changes_nothing(&serve, &reader, created, Duration::days(10) + Duration::hours(1)).await;
    assert!(out.contains("would power the VM off") && out.contains("1 powered off"), "{out}");
    assert_eq!(state(&reader, "lease-11").await.unwrap(), PowerState::PoweredOn);
    assert!(sweep_at(&serve, created, Duration::days(10) + Duration::hours(1)).await.contains("1 powered off"));

    let out = dry_run_changes_nothing(&serve, &reader, created, Duration::days(13) + Duration::hours(2)).await;
    assert!(out.contains("would delete the VM") && out.contains("1 deleted"), "{out}");
    assert!(reader.find_vm("lease-11").await.is_ok());
    assert!(sweep_at(&serve, created, Duration::days(13) + Duration::hours(2)).await.contains("1 deleted"));
    assert!(matches!(state(&reader, "lease-11").await, Err(VcError::NotFound { .. })));
}

/// A protected VM and an owner who cannot be told: the dry run says it would hold them and
/// alert the admins, and neither holds nor alerts.
#[tokio::test]
async fn a_dry_run_names_the_holds_without_holding() {
    let (_vcsim, serve, reader) = start().await;
    let created = Utc::now();
    serve.run("U1", "create guard-02").await;
    assert!(sweep_at(&serve, created, Duration::days(4)).await.contains("1 reminded"));
    let out = dry_run_changes_nothing(&serve, &reader, created, Duration::days(10) + Duration::hours(1)).await;
    assert!(out.contains("guard-02") && out.contains("would hold the lease and alert the admins: the VM is protected"), "{out}");
    assert!(serve.posts_to("C0ADMINS").is_empty());
    let shown = serve.cli(&["expire", "show", "guard-02"]).await;
    assert!(shown.contains("expires") && !shown.contains("held"), "{shown}");
}

/// `--as-of` alone acts for real, so it is refused without `--yes`, before anything happens;
/// `--help` says so.
#[tokio::test]
async fn as_of_without_dry_run_needs_yes() {
    let (_vcsim, serve, reader) = start().await;
    let created = Utc::now();
    serve.run("U1", "create lease-12").await;
    let before = snapshot(&serve, &reader).await;
    let at = (created + Duration::days(4)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let out = serve.cli_output(&["expire", "sweep", "--as-of", &at]).await;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("--as-of acts for real") && err.contains("--dry-run") && err.contains("--yes"), "{err}");
    assert_eq!(snapshot(&serve, &reader).await, before);

    let help = serve.cli(&["expire", "sweep", "--help"]).await;
    assert!(help.contains("--dry-run") && help.contains("--yes") && help.contains("changes, sends and records nothing"), "{help}");
}
