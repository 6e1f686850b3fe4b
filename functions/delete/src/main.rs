//! The `iaas-delete` function binary: OpenFaaS (HTTP on $PORT) or AWS Lambda.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    iaas_function::run(iaas_delete::NAME, iaas_delete::router).await
}
