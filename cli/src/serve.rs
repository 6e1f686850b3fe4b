//! `iaas serve`: the gateway and every function in one process, dispatching in-process.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use axum::Router;
use iaas_config::{ConfigError, Secret};
use iaas_function::Context;
use iaas_gateway::console::{Console, ConsoleSettings};
use iaas_gateway::{GatewaySettings, LocalDispatch};
use iaas_slack::Responder;

use crate::local;

#[derive(clap::Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free one; the chosen address is printed). Default
    /// 127.0.0.1:3000, or 127.0.0.1:$PORT when PORT is set; --listen wins over PORT.
    #[arg(long)]
    listen: Option<SocketAddr>,
}

/// Where `iaas serve` listens: `--listen`, else loopback on `$PORT`, else on 3000 (what `iaas
/// slash` calls by default). Loopback, because the all-in-one is for a laptop or sits behind a
/// TLS proxy on the same host; `--listen 0.0.0.0:3000` exposes it.
fn listen_addr(flag: Option<SocketAddr>, notes: &mut Vec<String>) -> Result<SocketAddr, ConfigError> {
    let port = iaas_config::parse_var::<u16>("PORT", "a port number (1-65535)")?;
    match (flag, port) {
        (Some(addr), Some(port)) => {
            notes.push(format!("PORT={port} is ignored: --listen {addr} wins"));
            Ok(addr)
        }
        (Some(addr), None) => Ok(addr),
        (None, port) => Ok(SocketAddr::from(([127, 0, 0, 1], port.unwrap_or(local::DEFAULT_PORT)))),
    }
}

/// `iaas serve` always runs the functions in this process. `IAAS_DISPATCH=local` says just that;
/// anything else (malformed, or a remote platform this process cannot use) stops start-up
/// rather than being ignored.
fn check_dispatch() -> Result<(), ConfigError> {
    let Some(raw) = iaas_config::var("IAAS_DISPATCH") else {
        return Ok(());
    };
    match iaas_gateway::DispatchTarget::parse(raw.trim())? {
        iaas_gateway::DispatchTarget::Local => Ok(()),
        _ => Err(ConfigError::new(
            "IAAS_DISPATCH",
            format!("{raw:?} needs the iaas-gateway binary; iaas serve runs every function in this process"),
            "Unset IAAS_DISPATCH (or set it to local) for iaas serve.",
        )),
    }
}

/// The functions this process runs, by deployable name.
fn function_routers(ctx: &Arc<Context>) -> Vec<(&'static str, Router)> {
    vec![
        (iaas_power::NAME, iaas_power::router(ctx.clone())),
        (iaas_inventory::NAME, iaas_inventory::router(ctx.clone())),
        (iaas_create::NAME, iaas_create::router(ctx.clone())),
        (iaas_clone::NAME, iaas_clone::router(ctx.clone())),
        (iaas_resize::NAME, iaas_resize::router(ctx.clone())),
        (iaas_delete::NAME, iaas_delete::router(ctx.clone())),
        (iaas_expire::NAME, iaas_expire::router(ctx.clone())),
        (iaas_expire::events::NAME, iaas_expire::events::router(ctx.clone())),
        (iaas_expire::SWEEP_NAME, iaas_expire::sweep_router(ctx.clone())),
        (iaas_decommission::NAME, iaas_decommission::router(ctx.clone())),
        (iaas_decommission::RESUME_NAME, iaas_decommission::resume_router(ctx.clone())),
        // VEBA's CloudEvents (vCenter alarms), posted with IAAS_EVENTS_TOKEN.
        (iaas_scale::NAME, iaas_scale::router(ctx.clone())),
        (iaas_storage_move::NAME, iaas_storage_move::router(ctx.clone())),
    ]
}

pub async fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let mut notes = Vec::new();
    let listen = listen_addr(args.listen, &mut notes)?;
    check_dispatch()?;
    let signing_secret = match iaas_config::secret("SLACK_SIGNING_SECRET")? {
        Some(s) => s,
        None => {
            let s = local::local_signing_secret()?;
            notes.push(format!("no SLACK_SIGNING_SECRET: generated one for local use at {}", local::signing_secret_path().display()));
            s
        }
    };
    // Read early: a malformed app token stops start-up before vCenter or the store is touched.
    let socket = iaas_gateway::SocketSettings::from_env()?;
    // Socket Mode carries real Slack's response_urls, so it is never local mode.
    let local_mode =
        iaas_config::var("SLACK_SIGNING_SECRET").is_none() && iaas_config::var("SLACK_SIGNING_SECRET_FILE").is_none() && socket.is_none();
    // In local mode only `iaas slash` on this machine can sign, so its loopback response_url is
    // allowed; with a real Slack app only Slack's host (or SLACK_API_URL's) is.
    let slack_api_url = iaas_config::var("SLACK_API_URL").or_else(|| local_mode.then(|| "http://127.0.0.1".to_string()));
    let shared_secret = match iaas_config::secret("IAAS_SHARED_SECRET")? {
        Some(s) => s,
        None => Secret::new(local::random_hex()),
    };

    let listener = tokio::net::TcpListener::bind(listen).await.map_err(|e| {
        ConfigError::new("--listen", format!("cannot listen on {listen}: {e}"), "Choose a free port with PORT or --listen.")
    })?;
    let addr = listener.local_addr()?;
    // The web console, at this address unless IAAS_CONSOLE_URL says where people open it.
    let console = ConsoleSettings::new(iaas_config::console_url()?.unwrap_or_else(|| format!("http://{addr}")))?;

    let mut ctx = Context::from_env(Some(shared_secret.clone())).await?;
    ctx.responder = Responder::new(slack_api_url.as_deref());
    ctx.console_url = Some(console.url.clone());
    let real_vcenter = iaas_config::var("VCENTER_URL").is_some();
    if real_vcenter {
        ctx.check_vcenter().await?;
    }
    let ctx = Arc::new(ctx);
    notes.push(format!("vCenter: {}", ctx.vcenter.describe()));
    notes.push(format!("store: {}", ctx.store.backend()));

    let functions = function_routers(&ctx);
    let dispatcher = Arc::new(LocalDispatch::durable(functions.iter().cloned().collect::<HashMap<_, _>>(), ctx.store.clone()));
    let access = iaas_gateway::access::access_from_env(&ctx.policy).await?;
    GatewaySettings::refuse_open_access(access.is_some(), real_vcenter)?;
    notes.push(match &access {
        Some(a) => format!("access: roles {}", a.role_names().collect::<Vec<_>>().join(", ")),
        None => "access: the policy defines no roles, so everyone may run everything (demo mode)".into(),
    });
    let settings = GatewaySettings {
        signing_secret,
        shared_secret,
        dispatch: iaas_gateway::DispatchTarget::Local,
        slack_api_url,
        access,
        audit: Some(ctx.store.clone()),
        api: iaas_gateway::api::ApiAuth::from_policy(&ctx.policy)?,
        policy: ctx.policy.clone(),
    };
    let gateway = Arc::new(settings.with_dispatcher(dispatcher.clone()));
    // Slack's Socket Mode besides HTTP, when SLACK_APP_TOKEN is set: only outbound connections.
    if let Some(socket) = socket {
        notes.push(format!("Socket Mode: {} connection(s) to {}", socket.connections, iaas_slack::host_of(&socket.api_url)));
        iaas_gateway::socket::start(gateway.clone(), socket).await?;
    }

    if console.secure_cookies && console.url.starts_with("http://") {
        notes.push(format!("console: {}/console needs https (its cookies are Secure off loopback); set IAAS_CONSOLE_URL to the https address of a TLS proxy", console.url));
    } else {
        notes.push(format!("console: {}/console", console.url));
    }
    let console = Console { gw: gateway.clone(), settings: console, vcenter: Some(ctx.vcenter.clone()), policy: ctx.policy.clone() };

    // OpenFaaS-style URLs work against the all-in-one too.
    let app = functions.into_iter().fold(iaas_gateway::router_with(gateway.clone(), ctx.readiness()), |app, (name, router)| {
        app.nest(&format!("/function/{name}"), router)
    });
    let app = app.merge(iaas_gateway::console::router(console));

    // The platforms schedule sweeps themselves; the all-in-one has a timer.
    tokio::spawn(sweep_every(ctx.clone()));
    // Decommissions a previous run left unfinished are resumed at once, then on a timer.
    tokio::spawn(resume_every(ctx.clone()));
    // So are hand-overs a crash cut short or kept from starting.
    tokio::spawn(recover_every(dispatcher.clone(), ctx.clone()));

    for note in &notes {
        tracing::info!("{note}");
    }
    // One line on stdout that scripts and tests read.
    println!("iaas serve listening on http://{addr}");
    eprintln!(
        "Try it: iaas slash{} \"/iaas vm list\"",
        if format!("http://{addr}") == local::default_gateway() { String::new() } else { format!(" --gateway http://{addr}") }
    );
    let served = iaas_runtime::serve_on(listener, app).await;
    // The gateway's audit entries are written by a task; let it finish before exiting.
    gateway.flush_audit().await;
    ctx.vcenter.logout().await;
    served?;
    Ok(ExitCode::SUCCESS)
}

/// Sweeps leases on the policy's interval (the first one a minute after start-up).
async fn sweep_every(ctx: Arc<Context>) {
    let slack = ctx.slack.clone();
    let every = std::time::Duration::from_secs(ctx.policy.lease.sweep_interval_secs);
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + std::time::Duration::from_secs(60), every);
    loop {
        ticks.tick().await;
        if let Err(e) = iaas_expire::sweep(&ctx, &slack, chrono::Utc::now()).await {
            tracing::error!(error = %e, "lease sweep failed; the next one retries");
        }
    }
}

/// Takes up the hand-overs a crash left behind (`LocalDispatch::recover`): at start-up, then
/// every claim lease, the time after which a silent worker counts as dead.
async fn recover_every(dispatcher: Arc<LocalDispatch>, ctx: Arc<Context>) {
    let mut ticks = tokio::time::interval(ctx.claim_lease);
    loop {
        ticks.tick().await;
        match dispatcher.recover(&ctx.shared_secret, &ctx.responder, ctx.claim_lease).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(taken_up = n, "took up hand-overs a previous run left unfinished"),
            Err(e) => tracing::error!(error = %e, "could not look for unfinished hand-overs; the next tick retries"),
        }
    }
}

/// Resumes decommission requests whose worker died (or that the lease sweep handed over): at
/// start-up, then on the policy's interval. Each resume runs its requests to the end in a task
/// of its own, so a long request does not hold up the next tick (claims keep them apart).
async fn resume_every(ctx: Arc<Context>) {
    let slack = ctx.slack.clone();
    let mut ticks = tokio::time::interval(std::time::Duration::from_secs(ctx.policy.decommission.resume_interval_secs));
    loop {
        ticks.tick().await;
        let (ctx, slack) = (ctx.clone(), slack.clone());
        tokio::spawn(async move {
            match iaas_decommission::runner::resume(ctx, slack).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(resumed = n, "resumed unfinished decommission requests"),
                Err(e) => tracing::error!(error = %e, "decommission resume sweep failed; the next one retries"),
            }
        });
    }
}
