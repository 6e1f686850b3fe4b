//! `iaas trigger <function>`: what a scheduler without a signing step (OpenFaaS's
//! cron-connector, a Kubernetes CronJob, cron) runs to start a scheduled function — an empty
//! body signed with the shared secret, posted to `<gateway>/function/<function>`.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context as _};
use iaas_invocation::{SIGNATURE_HEADER, TIMESTAMP_HEADER};

use crate::local;

/// The scheduled functions; anything else takes signed invocations from the gateway only.
const SCHEDULED: [&str; 2] = [iaas_expire::SWEEP_NAME, iaas_decommission::RESUME_NAME];

#[derive(clap::Args)]
pub struct TriggerArgs {
    /// The scheduled function to run: iaas-expire-sweep or iaas-decommission-resume.
    function: String,
    /// The base URL functions are reached under (`/function/<name>`): `iaas serve`'s address
    /// or the OpenFaaS gateway (default http://127.0.0.1:3000, or $PORT's like `iaas serve`).
    #[arg(long)]
    gateway: Option<String>,
    /// How long to wait for the run to finish, in seconds (a sweep may take minutes).
    #[arg(long, default_value_t = 900)]
    wait: u64,
}

pub async fn run(args: TriggerArgs) -> anyhow::Result<ExitCode> {
    if !SCHEDULED.contains(&args.function.as_str()) {
        bail!("{:?} is not a scheduled function. Choose one of: {}.", args.function, SCHEDULED.join(", "));
    }
    let secret = iaas_config::required_secret("IAAS_SHARED_SECRET")?;
    let signed = iaas_invocation::sign(secret.expose().as_bytes(), chrono::Utc::now().timestamp(), Vec::new());
    let url = format!("{}/function/{}", args.gateway.clone().unwrap_or_else(local::default_gateway).trim_end_matches('/'), args.function);
    let response = reqwest::Client::builder()
        .timeout(Duration::from_secs(args.wait))
        .build()?
        .post(&url)
        .header(TIMESTAMP_HEADER, signed.timestamp.to_string())
        .header(SIGNATURE_HEADER, signed.signature)
        .body(signed.body)
        .send()
        .await
        .with_context(|| format!("cannot reach {url}"))?;
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    println!("{}", body.trim_end());
    if !status.is_success() {
        bail!("{} answered {status}", args.function);
    }
    Ok(ExitCode::SUCCESS)
}
