//! A lease sweep over 10,000 leases with nothing due, on SQLite and on PostgreSQL: wall time
//! per sweep and SQL statements per sweep, beside the floor of one bare indexed query on the
//! same database in the same run. Run: `cargo run --release -p iaas-bench --bin sweep-bench`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use iaas_config::{Policy, Secret};
use iaas_function::Context;
use iaas_store::{LeaseState, Store, VmRef};
use iaas_vsphere::demo::DemoInventory;
use tracing_subscriber::layer::{Layer as _, SubscriberExt};

const LEASES: usize = 10_000;
const SWEEPS: u32 = 50;

/// Counts the statements sqlx runs (it logs each one under the `sqlx::query` target).
struct Statements(Arc<AtomicU64>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Statements {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        if event.metadata().target() == "sqlx::query" {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let statements = Arc::new(AtomicU64::new(0));
    let filter = tracing_subscriber::filter::Targets::new().with_target("sqlx::query", tracing::Level::TRACE);
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(Statements(statements.clone()).with_filter(filter)))?;

    let dir = std::env::temp_dir().join(format!("iaas-sweep-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let pg_admin = std::env::var("IAAS_BENCH_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let pg_db = format!("iaas_sweep_bench_{}", std::process::id());
    let admin = Store::connect(&pg_admin).await;
    let mut targets = vec![("SQLite", format!("sqlite://{}/bench.db", dir.display()))];
    if admin.is_ok() {
        let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&pg_admin).await?;
        sqlx::query(&format!("CREATE DATABASE {pg_db}")).execute(&mut conn).await?;
        targets.push(("PostgreSQL", pg_admin.rsplit_once('/').map(|(base, _)| format!("{base}/{pg_db}")).unwrap_or_default()));
    }

    println!("| store | leases | sweep mean | sweep p99 | statements per sweep | floor: one indexed query |");
    println!("|---|---|---|---|---|---|");
    for (name, url) in targets {
        let store = Store::connect(&url).await?;
        let far = (Utc::now() + chrono::Duration::days(60)).timestamp_millis();
        for i in 0..LEASES {
            store
                .open_lease(
                    &VmRef::new(format!("vm-{i}"), format!("bench-{i:05}")),
                    &"U0BENCH".into(),
                    0,
                    far + i as i64,
                    LeaseState::Active,
                )
                .await?;
        }
        let ctx = Context::new(Arc::new(DemoInventory::new()), store.clone(), Policy::default(), Secret::new("bench"));
        let mut times = Vec::new();
        statements.store(0, Ordering::Relaxed);
        for _ in 0..SWEEPS {
            let started = Instant::now();
            let report = iaas_expire::sweep(&ctx, &ctx.slack, Utc::now()).await?;
            times.push(started.elapsed());
            assert_eq!(report.examined, 0, "nothing is due");
        }
        let per_sweep = statements.load(Ordering::Relaxed) as f64 / f64::from(SWEEPS);
        let floor = time_floor(&store).await?;
        times.sort();
        let mean = times.iter().sum::<Duration>() / SWEEPS;
        let p99 = times[(times.len() * 99 / 100).min(times.len() - 1)];
        println!("| {name} | {LEASES} | {:.2} ms | {:.2} ms | {per_sweep:.1} | {:.2} ms |", ms(mean), ms(p99), ms(floor));
    }
    if admin.is_ok() {
        let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&pg_admin).await?;
        sqlx::query(&format!("DROP DATABASE IF EXISTS {pg_db} WITH (FORCE)")).execute(&mut conn).await?;
    }
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}

/// The same due-leases question asked as one bare statement through the same pool.
async fn time_floor(store: &Store) -> anyhow::Result<Duration> {
    let mut best = Duration::MAX;
    for _ in 0..SWEEPS {
        let started = Instant::now();
        store.leases_due(Utc::now().timestamp_millis() + 7 * 86_400_000, Utc::now().timestamp_millis(), 1000).await?;
        best = best.min(started.elapsed());
    }
    Ok(best)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
