//! The `iaas-power` function binary: OpenFaaS (HTTP on $PORT) or AWS Lambda.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    iaas_function::run(iaas_power::NAME, iaas_power::router).await
}
