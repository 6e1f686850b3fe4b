//! How every binary runs: on AWS Lambda through `lambda_http` when `AWS_LAMBDA_RUNTIME_API` is
//! set, otherwise as an HTTP server on `$PORT` (default 8082, of-watchdog's `upstream_url`
//! convention) that shuts down gracefully on SIGTERM, within [`HttpLimits`].

mod limits;
pub mod metrics;
pub mod otel;
mod probes;
mod server;

pub use limits::{open_files_limit, HttpLimits};
pub use probes::{probes, Readiness};
pub use server::serve_with;

use std::net::SocketAddr;

use axum::Router;
use tokio::net::TcpListener;

pub const DEFAULT_PORT: u16 = 8082;

/// Logs to stderr, filtered by `RUST_LOG` (default `info`); `LOG_FORMAT=json` for log shippers.
/// Colours only when stderr is a terminal: a log file or a container's log stream gets plain
/// text (no escape codes to strip, and less work per line).
/// With `OTEL_EXPORTER_OTLP_ENDPOINT` set, spans are also exported over OTLP ([`otel`]).
pub fn init_tracing() {
    use std::io::IsTerminal;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::{fmt, EnvFilter, Layer};
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = if std::env::var("LOG_FORMAT").is_ok_and(|f| f == "json") {
        fmt::layer().json().with_writer(std::io::stderr).boxed()
    } else {
        fmt::layer().compact().with_writer(std::io::stderr).with_ansi(std::io::stderr().is_terminal()).boxed()
    };
    // RUST_LOG filters the logs only: exported traces keep their info spans whatever is logged.
    let traces = otel::layer().map(|l| l.with_filter(tracing_subscriber::filter::LevelFilter::INFO));
    // A second init (tests) keeps the first subscriber.
    let _ = tracing_subscriber::registry().with(logs.with_filter(filter)).with(traces).try_init();
}

/// Whether this process is a Lambda function instance: read from the environment once, as
/// every setting is.
pub fn on_lambda() -> bool {
    static ON_LAMBDA: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON_LAMBDA.get_or_init(|| std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some())
}

/// Serves the router on Lambda or on `0.0.0.0:$PORT` until SIGTERM/Ctrl-C.
pub async fn serve(router: Router) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    if on_lambda() {
        return lambda_http::run(metrics::instrument(router)).await;
    }
    let limits = HttpLimits::from_env()?;
    let port = match std::env::var("PORT") {
        Ok(p) => p.parse::<u16>().map_err(|_| format!("PORT: {p:?} is not a port number. Set PORT to 1-65535."))?,
        Err(_) => DEFAULT_PORT,
    };
    let listener = TcpListener::bind(SocketAddr::from(([0, 0, 0, 0], port)))
        .await
        .map_err(|e| format!("PORT: cannot listen on {port}: {e}. Choose a free port with PORT."))?;
    tracing::info!(addr = %listener.local_addr()?, "listening");
    let served = serve_with(listener, router, limits, shutdown_signal()).await;
    otel::flush();
    Ok(served?)
}

/// Serves on an already-bound listener (tests bind port 0) within the `IAAS_HTTP_*` limits,
/// with graceful shutdown; a bad limit is an `InvalidInput` error naming the setting.
pub async fn serve_on(listener: TcpListener, router: Router) -> std::io::Result<()> {
    let limits = HttpLimits::from_env().map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let served = serve_with(listener, router, limits, shutdown_signal()).await;
    otel::flush();
    served
}

/// Resolves on SIGTERM (OpenFaaS, Kubernetes, systemd) or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}

/// On Lambda, the caller's address as the function URL's front end saw it (there is no peer
/// socket there); `None` elsewhere.
pub fn lambda_source_ip(extensions: &axum::http::Extensions) -> Option<std::net::IpAddr> {
    match extensions.get::<lambda_http::request::RequestContext>()? {
        lambda_http::request::RequestContext::ApiGatewayV2(ctx) => ctx.http.source_ip.as_deref()?.parse().ok(),
        _ => None,
    }
}
