//! The `iaas-expire-sweep` function binary: a schedule posts to it and one sweep runs.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    iaas_function::run(iaas_expire::SWEEP_NAME, iaas_expire::sweep_router).await
}
