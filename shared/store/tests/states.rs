//! State columns take only their enums' values, on both backends, and the SQLite rebuild that
//! added the constraints keeps the data and indexes.

#[macro_use]
mod common;

use iaas_store::UserId;
use iaas_store::{Moref, RequestId, VmRef};
use std::borrow::Cow;

use common::{unique, Db};
use iaas_config::OnFailure;
use iaas_store::{DecommissionState, DecommissionStepState, DecommissionVmState, LeaseState, Store};
use sqlx::migrate::Migrator;

test_both_backends!(every_declared_state_is_accepted_and_others_are_refused);

async fn pool(db: &Db) -> sqlx::AnyPool {
    sqlx::any::install_default_drivers();
    sqlx::AnyPool::connect(&db.url).await.unwrap()
}

async fn every_declared_state_is_accepted_and_others_are_refused(db: Db) {
    let pool = pool(&db).await;
    sqlx::query(
        "INSERT INTO decommissions (id, requester, state, created_at_ms, updated_at_ms) VALUES ('d1', 'U1', 'pending_confirmation', 0, 0)",
    )
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query("INSERT INTO decommission_vms (request_id, vm_index, vm_moref, vm_name, os_family, facts_json, state) VALUES ('d1', 0, 'vm-1', 'web', 'linux', '{}', 'pending')")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO decommission_steps (request_id, vm_index, step_index, kind, name, on_failure, state) VALUES ('d1', 0, 0, 'power_off', 'power_off', 'stop', 'pending')")
        .execute(&pool)
        .await
        .unwrap();
    db.store.open_lease(&VmRef::new("vm-1", "web"), &UserId::from("U1"), 0, 1000, LeaseState::Active).await.unwrap();

    let set = |table: &'static str, column: &'static str, value: &'static str| {
        let pool = pool.clone();
        async move { sqlx::query(&format!("UPDATE {table} SET {column} = $1")).bind(value).execute(&pool).await.map(|_| ()) }
    };
    for (table, column, declared) in [
        ("decommissions", "state", DecommissionState::NAMES),
        ("decommission_vms", "state", DecommissionVmState::NAMES),
        ("decommission_steps", "state", DecommissionStepState::NAMES),
        ("decommission_steps", "on_failure", OnFailure::NAMES),
        ("leases", "state", LeaseState::NAMES),
    ] {
        for value in declared {
            set(table, column, value).await.unwrap_or_else(|e| panic!("{table}.{column} refused the declared {value}: {e}"));
        }
        for bad in ["", "Running", "finished", "powered-off"] {
            let refused = set(table, column, bad).await;
            assert!(refused.is_err(), "{table}.{column} took {bad:?}");
        }
    }
    // What is stored reads back as the enum, through the store.
    for state in LeaseState::ALL {
        db.store.set_lease_state(&Moref::from("vm-1"), *state, "", 1).await.unwrap();
        assert_eq!(db.store.lease(&Moref::from("vm-1")).await.unwrap().unwrap().state, *state);
    }
    let refused = sqlx::query("INSERT INTO leases (vm_moref, vm_name, owner_user, created_at_ms, expires_at_ms, state, updated_at_ms) VALUES ('vm-3', 'x', 'U1', 0, 0, 'gone', 0)")
        .execute(&pool)
        .await;
    assert!(refused.is_err(), "an INSERT with an unknown lease state is refused");
}

/// A database made before the constraints (one request with a VM and steps, and a lease) keeps
/// all of it, and its indexes, once migrated.
#[tokio::test]
async fn the_sqlite_rebuild_keeps_rows_and_indexes() {
    let dir = std::env::temp_dir().join(unique("iaas_states"));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.join("iaas.db").display());
    sqlx::any::install_default_drivers();
    {
        let pool = sqlx::AnyPool::connect(&url).await.unwrap();
        let mut before = Migrator::new(std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite"))).await.unwrap();
        let older: Vec<_> = before.migrations.iter().filter(|m| m.description != "state checks").cloned().collect();
        assert_eq!(older.len() + 1, before.migrations.len(), "the state checks migration exists");
        before.migrations = Cow::Owned(older);
        before.run(&pool).await.unwrap();
        for sql in [
            "INSERT INTO decommissions (id, requester, state, created_at_ms, updated_at_ms, progress_ts) VALUES ('d1', 'U1', 'running', 5, 6, '123.4')",
            "INSERT INTO decommission_vms (request_id, vm_index, vm_moref, vm_name, os_family, facts_json, state) VALUES ('d1', 0, 'vm-1', 'web', 'linux', '{}', 'running')",
            "INSERT INTO decommission_steps (request_id, vm_index, step_index, kind, name, on_failure, state, message, attempts) VALUES ('d1', 0, 0, 'power_off', 'off', 'warn', 'done', 'Powered off.', 2)",
            "INSERT INTO leases (vm_moref, vm_name, owner_user, created_at_ms, expires_at_ms, state, state_reason, powered_off_at_ms, updated_at_ms) VALUES ('vm-1', 'web', 'U1', 1, 2, 'powered_off', 'expired', 3, 4)",
        ] {
            sqlx::query(sql).execute(&pool).await.unwrap();
        }
        pool.close().await;
    }
    let store = Store::connect(&url).await.unwrap();
    let d = store.decommission(&RequestId::from("d1")).await.unwrap().expect("the request survived");
    assert_eq!((d.request.state, d.request.progress_ts.as_str()), (DecommissionState::Running, "123.4"));
    assert_eq!(d.vms.len(), 1);
    assert_eq!(d.vms[0].state, DecommissionVmState::Running);
    assert_eq!(d.steps.len(), 1);
    let s = &d.steps[0];
    assert_eq!((s.on_failure, s.state, s.message.as_str(), s.attempts), (OnFailure::Warn, DecommissionStepState::Done, "Powered off.", 2));
    let lease = store.lease(&Moref::from("vm-1")).await.unwrap().expect("the lease survived");
    assert_eq!((lease.state, lease.state_reason.as_str(), lease.powered_off_at_ms), (LeaseState::PoweredOff, "expired", Some(3)));

    let pool = sqlx::AnyPool::connect(&url).await.unwrap();
    let names: Vec<String> =
        sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'index' AND name NOT LIKE 'sqlite_%' ORDER BY name")
            .fetch_all(&pool)
            .await
            .unwrap();
    for index in [
        "decommission_vms_by_name",
        "decommissions_by_created",
        "decommissions_by_requester",
        "decommissions_by_state",
        "leases_by_expiry",
        "leases_by_name",
        "leases_by_owner",
    ] {
        assert!(names.iter().any(|n| n == index), "{index} is missing: {names:?}");
    }
    let leftovers: Vec<String> =
        sqlx::query_scalar("SELECT name FROM sqlite_master WHERE name LIKE '%_saved' OR name LIKE '%_new'").fetch_all(&pool).await.unwrap();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // The foreign keys still cascade from the rebuilt parent.
    sqlx::query("DELETE FROM decommissions").execute(&pool).await.unwrap();
    let steps: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM decommission_steps").fetch_one(&pool).await.unwrap();
    assert_eq!(steps, 0);
    let _ = std::fs::remove_dir_all(&dir);
}
