//! Prometheus metrics: one recorder per process (the `metrics` facade, rendered by
//! metrics-exporter-prometheus without its own listener), served at `GET /metrics` beside the
//! probes. Labels are bounded — command, function and vSphere method names, outcomes and
//! reasons the code spells out — never a user, a VM or an id.

use std::sync::OnceLock;
use std::time::Duration;

use axum::extract::{MatchedPath, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Seconds: from a vCenter read's milliseconds to a decommission's hour.
const BUCKETS: &[f64] = &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process's recorder on first use (every router's `probes` does, at start-up);
/// `None` when another recorder was installed first.
pub fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().set_buckets(BUCKETS).ok()?.build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok()?;
            describe();
            // Histogram samples wait in buckets until drained; drain them without a scrape too.
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                let upkeep = handle.clone();
                runtime.spawn(async move {
                    loop {
                        tokio::time::sleep(Duration::from_secs(5)).await;
                        upkeep.run_upkeep();
                    }
                });
            }
            Some(handle)
        })
        .as_ref()
}

/// `GET /metrics` in Prometheus's text format.
pub(crate) async fn render() -> Response {
    match handle() {
        Some(h) => ([(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], h.render()).into_response(),
        None => (StatusCode::SERVICE_UNAVAILABLE, "metrics are not recorded in this process\n").into_response(),
    }
}

/// Counts and times every request by its route (the gateway's `/slack/commands` time is the
/// ack's latency) and keeps a gauge of those in flight. The route template, not the path, is
/// the label, so ids in paths never become series. Every request also gets a tracing span with
/// its `x-request-id` (a proxy's, or a fresh UUID), echoed in the response, so a log line can be
/// matched with the proxy's and the client's.
pub(crate) fn instrument(router: Router) -> Router {
    use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
    use tower_http::trace::TraceLayer;
    let span = |request: &Request| {
        let id = request.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or_default();
        let route = request.extensions().get::<MatchedPath>().map_or("unmatched", |p| p.as_str());
        tracing::info_span!("http", method = %request.method(), route, request_id = %id)
    };
    router
        .layer(axum::middleware::from_fn(track))
        .layer(TraceLayer::new_for_http().make_span_with(span))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
}

async fn track(request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    // Decremented on drop too: a request whose client went away is no longer in flight.
    struct InFlight;
    impl Drop for InFlight {
        fn drop(&mut self) {
            metrics::gauge!("iaas_http_requests_in_flight").decrement(1.0);
        }
    }
    metrics::gauge!("iaas_http_requests_in_flight").increment(1.0);
    let in_flight = InFlight;
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    drop(in_flight);
    metrics::histogram!("iaas_http_request_duration_seconds", "route" => route.clone()).record(started.elapsed().as_secs_f64());
    metrics::counter!("iaas_http_requests_total", "route" => route, "status" => response.status().as_str().to_string()).increment(1);
    response
}

/// HELP lines for every metric the binaries record (names are the contract with dashboards).
fn describe() {
    use metrics::{describe_counter, describe_histogram, Unit};
    describe_counter!("iaas_http_requests_total", "HTTP requests by route template and status.");
    describe_histogram!(
        "iaas_http_request_duration_seconds",
        Unit::Seconds,
        "HTTP request latency by route template (/slack/commands: the ack)."
    );
    metrics::describe_gauge!("iaas_http_requests_in_flight", "HTTP requests being answered now.");
    describe_counter!("iaas_commands_total", "Slack commands run by a function, by command and outcome (done, failed, denied).");
    describe_histogram!(
        "iaas_function_duration_seconds",
        Unit::Seconds,
        "Time a function spent on one invocation or event, by function and outcome."
    );
    describe_counter!("iaas_vcenter_calls_total", "vCenter SOAP calls by method and outcome (ok, fault, timeout, unreachable, protocol).");
    describe_histogram!("iaas_vcenter_call_duration_seconds", Unit::Seconds, "vCenter SOAP call latency by method.");
    describe_counter!("iaas_vcenter_faults_total", "vCenter SOAP faults by method and fault type.");
    describe_counter!("iaas_lease_sweeps_total", "Lease sweeps finished.");
    describe_counter!(
        "iaas_lease_sweep_leases_total",
        "Leases a sweep acted on, by action (reminded, powered_off, deleted, held, busy, …)."
    );
    describe_counter!("iaas_access_refusals_total", "Requests refused by an access check, by stage (gateway, function) and reason.");
    describe_counter!("iaas_dispatch_failures_total", "Hand-overs to a function that failed or timed out, by function and reason.");
    describe_counter!(
        "iaas_decommission_steps_total",
        "Decommission steps finished, by step kind and state (done, skipped, warning, failed)."
    );
    describe_counter!("iaas_quota_refusals_total", "Requests refused because they would exceed the requester's quota.");
    describe_counter!("iaas_store_errors_total", "Database statements that failed, by operation.");
    describe_counter!("iaas_console_signins_total", "Web console sign-ins by outcome (ok, refused, limited).");
}
