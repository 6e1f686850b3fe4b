//! The `iaas-storage-move` function binary: OpenFaaS (HTTP on $PORT) or AWS Lambda.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    iaas_function::run(iaas_storage_move::NAME, iaas_storage_move::router).await
}
