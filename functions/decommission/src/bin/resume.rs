//! The `iaas-decommission-resume` function binary: a schedule posts to it and requests whose
//! worker died are resumed.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    iaas_function::run(iaas_decommission::RESUME_NAME, iaas_decommission::resume_router).await
}
