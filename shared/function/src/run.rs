//! Every function binary's `main`: settings, serve (OpenFaaS/HTTP or Lambda), log out.

use std::process::ExitCode;
use std::sync::Arc;

use axum::Router;

use crate::Context;

/// Runs the function `name` until SIGTERM; a bad setting stops it with one line on stderr.
pub async fn run(name: &str, router: fn(Arc<Context>) -> Router) -> ExitCode {
    iaas_runtime::init_tracing();
    let ctx = match Context::from_env(None).await {
        Ok(ctx) => Arc::new(ctx),
        Err(e) => {
            eprintln!("{name}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let served = iaas_runtime::serve(router(ctx.clone())).await;
    ctx.vcenter.logout().await;
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: {e}");
            ExitCode::FAILURE
        }
    }
}
