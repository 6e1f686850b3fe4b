//! The `iaas-gateway` binary: HTTP on $PORT, or AWS Lambda behind a function URL; with
//! `SLACK_APP_TOKEN`, Slack's Socket Mode besides HTTP (not on Lambda).

use std::process::ExitCode;
use std::sync::Arc;

use iaas_gateway::console::{Console, ConsoleSettings};

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
    let (gateway, console) = gateway;
    let mut app = iaas_gateway::router(gateway.clone());
    if let Some(console) = console {
        app = app.merge(iaas_gateway::console::router(console));
    }
    let served = iaas_runtime::serve(app).await;
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

/// The gateway from the environment, its Socket Mode connections started when configured, and
/// its web console when `IAAS_CONSOLE_URL` says where people open it.
async fn start() -> Result<(Arc<iaas_gateway::Gateway>, Option<Console>), iaas_gateway::SettingsError> {
    let settings = iaas_gateway::GatewaySettings::from_env().await?;
    // Read before building: a malformed setting stops start-up before anything is spawned.
    let socket = iaas_gateway::SocketSettings::from_env()?;
    let console = iaas_config::console_url()?.map(ConsoleSettings::new).transpose()?;
    // The console searches vCenter and shows plans when the gateway is given vCenter's settings.
    let vcenter = match (&console, iaas_config::var("VCENTER_URL")) {
        (Some(_), Some(_)) => Some(iaas_function::vcenter_from_env(&settings.policy, None)?),
        _ => None,
    };
    let policy = settings.policy.clone();
    let gateway = Arc::new(settings.into_gateway().await?);
    if let Some(socket) = socket {
        iaas_gateway::socket::start(gateway.clone(), socket).await?;
    }
    let console = console.map(|settings| Console { gw: gateway.clone(), settings, vcenter, policy });
    Ok((gateway, console))
}
