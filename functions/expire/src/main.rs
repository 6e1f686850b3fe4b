//! The `iaas-expire` function binary: OpenFaaS (HTTP on $PORT) or AWS Lambda.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    iaas_function::run(iaas_expire::NAME, iaas_expire::router).await
}
