//! The `iaas-decommission` function binary: OpenFaaS (HTTP on $PORT) or AWS Lambda.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    iaas_function::run(iaas_decommission::NAME, iaas_decommission::router).await
}
