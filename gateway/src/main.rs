//! The `iaas-gateway` binary: HTTP on $PORT, or AWS Lambda behind a function URL; with
//! `SLACK_APP_TOKEN`, Slack's Socket Mode besides HTTP (not on Lambda).

use std::process::ExitCode;
use std::sync::Arc;

#[tokio::main]
async fn main() -> ExitCode {
    iaas_runtime::init_tracing();
    let gateway = match start().await {
        Ok(g) => g,
        Err(e) => {
            eprintln!("iaas-gateway: {e}");
            return ExitCode::FAILURE;
        }
    };
    let served = iaas_runtime::serve(iaas_gateway::router(gateway.clone())).await;
    // Decisions still queued for the audit trail are written before the process exits.
    gateway.flush_audit().await;
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("iaas-gateway: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The gateway from the environment, its Socket Mode connections started when configured.
async fn start() -> Result<Arc<iaas_gateway::Gateway>, iaas_gateway::SettingsError> {
    let settings = iaas_gateway::GatewaySettings::from_env().await?;
    // Read before building: a malformed app token stops start-up before anything is spawned.
    let socket = iaas_gateway::SocketSettings::from_env()?;
    let gateway = Arc::new(settings.into_gateway().await?);
    if let Some(socket) = socket {
        iaas_gateway::socket::start(gateway.clone(), socket).await?;
    }
    Ok(gateway)
}
