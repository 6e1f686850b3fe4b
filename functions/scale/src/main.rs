//! The `iaas-scale` function binary: OpenFaaS (HTTP on $PORT) or AWS Lambda.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    iaas_function::run(iaas_scale::NAME, iaas_scale::router).await
}
