//! `dns`: removes the VM's A record and the PTR of its address by a TSIG-signed dynamic
//! update (`iaas_steps::dns::DnsStep`).
//!
//! Keys: `server` (`ip[:port]`, the zones' primary; port 53 by default), `zone`,
//! `reverse_zone` (optional; without it PTR records are left alone), `key_name`, `secret_env`
//! (the variable holding the base64 TSIG secret, as `tsig-keygen` prints it), `timeout_secs`
//! (default 5).

use std::net::{IpAddr, SocketAddr};

use async_trait::async_trait;
use base64::Engine;
use iaas_config::StepKind;
use iaas_steps::dns::DnsStep;
use tokio_util::sync::CancellationToken;

use super::external::{self, Settings};
use super::{Step, StepContext, StepError, StepOutcome};
use crate::VmFacts;

pub struct Dns(DnsStep);

const KEYS: [&str; 6] = ["server", "zone", "reverse_zone", "key_name", "secret_env", "timeout_secs"];

pub fn build(settings: &serde_json::Value) -> Result<Dns, String> {
    let s = Settings::new("dns", settings, &KEYS)?;
    let server_text = s.required("server")?;
    let server = server_text
        .parse::<SocketAddr>()
        .or_else(|_| server_text.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
        .map_err(|_| format!("The dns step's server {server_text:?} is not an IP address (with an optional :port)"))?;
    let secret = s.secret(true)?.expect("required");
    let key_secret = base64::engine::general_purpose::STANDARD
        .decode(secret.expose().trim())
        .map_err(|_| "The dns step's TSIG secret is not base64 (use the secret tsig-keygen prints)".to_string())?;
    Ok(Dns(DnsStep {
        server,
        zone: s.required("zone")?,
        reverse_zone: s.text("reverse_zone")?,
        key_name: s.required("key_name")?,
        key_secret,
        timeout: s.timeout(5)?,
    }))
}

#[async_trait]
impl Step for Dns {
    fn kind(&self) -> StepKind {
        StepKind::Dns
    }

    async fn run(&self, _sc: &StepContext, vm: &VmFacts, cancel: &CancellationToken) -> Result<StepOutcome, StepError> {
        let facts = external::facts(vm);
        external::run(cancel, self.0.run(&facts)).await
    }
}
