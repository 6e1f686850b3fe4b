//! The `iaas-expire` function binary: OpenFaaS (HTTP on $PORT) or AWS Lambda.

use std::process::ExitCode;
use std::sync::Arc;

#[tokio::main]
async fn main() -> ExitCode {
    iaas_runtime::init_tracing();
    let ctx = match iaas_function::Context::from_env(None).await {
        Ok(ctx) => Arc::new(ctx),
        Err(e) => {
            eprintln!("iaas-expire: {e}");
            return ExitCode::FAILURE;
        }
    };
    let vcenter = ctx.vcenter.clone();
    let result = iaas_runtime::serve(iaas_expire::router(ctx)).await;
    vcenter.logout().await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("iaas-expire: {e}");
            ExitCode::FAILURE
        }
    }
}
