//! Liveness and readiness, the same on every binary: `/_/health` answers while the process
//! serves (a restart is the only cure for its failure); `/_/ready` asks the peers the process
//! needs (the store, the vCenter session) and answers 200, or 503 with the check that failed,
//! so a platform routes no work to a replica that cannot do it. `/metrics` is served beside them.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

/// A stalled peer is as unready as a failed one; the platform's probe must not hang.
const CHECK_TIMEOUT: Duration = Duration::from_secs(3);

type CheckFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;
type Check = Arc<dyn Fn() -> CheckFuture + Send + Sync>;

/// The checks behind `/_/ready`, each with a short name (`store`, `vcenter`).
#[derive(Clone, Default)]
pub struct Readiness {
    checks: Vec<(&'static str, Check)>,
}

impl Readiness {
    pub fn new() -> Self {
        Readiness::default()
    }

    /// Adds a check; `Err` is a short sentence saying what is wrong (no secrets). A second
    /// check of the same name replaces the first.
    pub fn check<F, Fut>(mut self, name: &'static str, check: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        self.checks.retain(|(n, _)| *n != name);
        self.checks.push((name, Arc::new(move || Box::pin(check()))));
        self
    }

    /// Runs every check at once, each within [`CHECK_TIMEOUT`]: whether all passed, and each
    /// check's `"ok"` or what failed.
    pub async fn run(&self) -> (bool, serde_json::Map<String, serde_json::Value>) {
        let runs = self.checks.iter().map(|(name, check)| {
            let check = check.clone();
            async move {
                let result = match tokio::time::timeout(CHECK_TIMEOUT, check()).await {
                    Ok(result) => result,
                    Err(_) => Err(format!("no answer within {} s", CHECK_TIMEOUT.as_secs())),
                };
                (*name, result)
            }
        });
        let mut all_ok = true;
        let mut checks = serde_json::Map::new();
        for (name, result) in futures::future::join_all(runs).await {
            if let Err(why) = &result {
                tracing::warn!(check = name, %why, "not ready");
                all_ok = false;
            }
            checks.insert(name.to_string(), result.err().unwrap_or_else(|| "ok".to_string()).into());
        }
        (all_ok, checks)
    }

    async fn answer(self) -> Response {
        let (ready, checks) = self.run().await;
        let failed: Vec<&String> = checks.iter().filter(|(_, v)| *v != "ok").map(|(k, _)| k).collect();
        let body = serde_json::json!({"ready": ready, "failed": failed, "checks": checks});
        let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
        (status, Json(body)).into_response()
    }
}

/// `GET /_/health` (liveness: "ok"), `GET /_/ready` (the checks) and `GET /metrics`
/// (Prometheus), to merge into any router. Installs the metrics recorder, so what happens from
/// start-up on is counted.
pub fn probes<S: Clone + Send + Sync + 'static>(readiness: Readiness) -> Router<S> {
    crate::metrics::handle();
    Router::new()
        .route("/_/health", get(|| async { "ok" }))
        .route("/_/ready", get(move || readiness.clone().answer()))
        .route("/metrics", get(crate::metrics::render))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn ready_names_the_failed_check() {
        let readiness = Readiness::new().check("store", || async { Ok(()) }).check("vcenter", || async { Err("refused".to_string()) });
        let (ready, checks) = readiness.run().await;
        assert!(!ready);
        assert_eq!(checks["store"], "ok");
        assert_eq!(checks["vcenter"], "refused");
        let (ready, _) = Readiness::new().check("store", || async { Ok(()) }).run().await;
        assert!(ready);
    }
}
