//! The `iaas-expire-events` function binary: leases from VEBA's VM events.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    iaas_function::run(iaas_expire::events::NAME, iaas_expire::events::router).await
}
