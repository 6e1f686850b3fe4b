//! The `iaas-gateway` binary: HTTP on $PORT, or AWS Lambda behind a function URL.

use std::process::ExitCode;
use std::sync::Arc;

#[tokio::main]
async fn main() -> ExitCode {
    iaas_runtime::init_tracing();
    let gateway = match iaas_gateway::GatewaySettings::from_env().await {
        Ok(settings) => settings.into_gateway().await,
        Err(e) => Err(e),
    };
    let gateway = match gateway {
        Ok(g) => Arc::new(g),
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
