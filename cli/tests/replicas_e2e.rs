//! Several replicas on one PostgreSQL database: lease sweeps run at the same time by two
//! processes remind, power off and delete each VM once (claims per lease), against vcsim.

mod common;

use chrono::{Duration, Utc};
use common::start_on;
use iaas_tests::vcsim::Vcsim;
use iaas_vsphere::{VcError, Vcenter};
use sqlx::Connection;

const POLICY: &str = r#"
[lease]
default_days = 10
max_days = 15
reminder_days = [7]
min_notice_hours = 24
grace_days = 3
"#;

#[tokio::test]
async fn two_sweeps_at_once_act_once_per_vm() {
    let admin_url = std::env::var("IAAS_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let mut admin = sqlx::PgConnection::connect(&admin_url).await.expect("PostgreSQL for the tests");
    let name = format!("iaas_replicas_{}", std::process::id());
    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut admin).await;
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut admin).await.unwrap();
    let db_url = format!("{}/{name}", admin_url.rsplit_once('/').unwrap().0);

    let vcsim = Vcsim::start().await.unwrap();
    let (serve, reader) = start_on(&vcsim, POLICY, &[("DATABASE_URL", &db_url)]).await;
    let created = Utc::now();
    let vms = ["rep-01", "rep-02", "rep-03"];
    for vm in vms {
        assert!(serve.run("U1", &format!("create {vm}")).await.readable().contains("expires"));
        serve.run("U1", &format!("power on {vm}")).await;
    }
    let before = vcsim.stats().await.unwrap();
    let count = |stats: &std::collections::HashMap<String, u64>, m: &str| stats.get(m).copied().unwrap_or(0);

    // Two replicas sweep at the same moment, three times over a lease's life.
    for offset in [Duration::days(4), Duration::days(10) + Duration::hours(1), Duration::days(13) + Duration::hours(2)] {
        let at = (created + offset).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let args = ["expire", "sweep", "--as-of", at.as_str(), "--yes"];
        let (a, b) = tokio::join!(serve.cli(&args), serve.cli(&args));
        assert!(!a.is_empty() && !b.is_empty());
    }

    let reminders: Vec<_> =
        serve.posts_to("U1").into_iter().filter(|p| p["text"].as_str().is_some_and(|t| t.contains("expires on"))).collect();
    assert_eq!(reminders.len(), vms.len(), "one reminder per VM: {reminders:#?}");
    let after = vcsim.stats().await.unwrap();
    assert_eq!(count(&after, "PowerOffVM_Task") - count(&before, "PowerOffVM_Task"), vms.len() as u64, "one power-off per VM");
    assert_eq!(count(&after, "Destroy_Task") - count(&before, "Destroy_Task"), vms.len() as u64, "one delete per VM");
    for vm in vms {
        assert!(matches!(reader.find_vm(vm).await, Err(VcError::NotFound { .. })), "{vm} was not deleted");
    }
    let quota = serve.run("U1", "quota").await.readable();
    assert!(!quota.contains("3 VM"), "deleted VMs still count against the quota: {quota}");

    drop((serve, reader, vcsim));
    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut admin).await;
}
