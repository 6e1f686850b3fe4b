//! The `iaas-inventory` function binary: OpenFaaS (HTTP on $PORT) or AWS Lambda.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    iaas_function::run(iaas_inventory::NAME, iaas_inventory::router).await
}
