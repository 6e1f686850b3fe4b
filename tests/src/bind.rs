//! Starts a throwaway BIND 9 `named` for a test: one instance per [`Bind`], in its own temp
//! directory, on its own port, killed when dropped.
//!
//! Needs Debian's `bind9` (`named`), `bind9-utils` (`tsig-keygen`) and `bind9-dnsutils` (`dig`).
//! The instance serves two zones that accept RFC 2136 updates signed with the TSIG key
//! [`KEY_NAME`] (hmac-sha256, fresh per instance):
//! - `example.test.` with `app-web-01 A 10.20.0.11` (and `app-db-01 A 10.20.0.12`);
//! - `20.10.in-addr.arpa.` with the matching PTR records.
//!
//! `named` runs in the foreground (`-g`, log in `<dir>/named.log`) without an rndc listener
//! (`controls { };`), with `directory`, `pid-file` and `session-keyfile` in the temp dir, so
//! several instances can run side by side. Like `slapd.rs`, this file needs only `tokio` and
//! `anyhow` (and `start.rs` beside it, which it includes by path itself), so another crate's
//! tests can include it by path (`#[path = "../../../tests/src/bind.rs"] mod bind;`).
//! Environment override: `NAMED` (binary, default `/usr/sbin/named`).

// By path rather than `crate::start`, so that this file still works included alone; iaas-tests
// therefore loads start.rs twice (here and in the other harness), which is harmless.
#[allow(clippy::duplicate_mod)]
#[path = "start.rs"]
mod start;

use std::net::{SocketAddr, TcpListener as StdTcpListener, UdpSocket as StdUdpSocket};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use tokio::process::Command;

pub const KEY_NAME: &str = "iaas";
pub const ZONE: &str = "example.test.";
pub const REVERSE_ZONE: &str = "20.10.in-addr.arpa.";

const START_TIMEOUT: Duration = Duration::from_secs(10);
const START_ATTEMPTS: usize = 3;

const FORWARD_ZONE_FILE: &str = "$TTL 300
@           IN SOA  ns1.example.test. hostmaster.example.test. ( 1 3600 600 86400 300 )
            IN NS   ns1.example.test.
ns1         IN A    127.0.0.1
app-web-01  IN A    10.20.0.11
app-db-01   IN A    10.20.0.12
";

const REVERSE_ZONE_FILE: &str = "$TTL 300
@           IN SOA  ns1.example.test. hostmaster.example.test. ( 1 3600 600 86400 300 )
            IN NS   ns1.example.test.
11.0        IN PTR  app-web-01.example.test.
12.0        IN PTR  app-db-01.example.test.
";

pub struct Bind {
    /// `127.0.0.1:<port>`, UDP and TCP.
    pub addr: SocketAddr,
    pub key_name: String,
    /// The key's secret as `tsig-keygen` prints it (base64).
    pub key_secret_b64: String,
    process: start::Process,
}

impl Bind {
    /// A fresh instance with a fresh key and the seeded zones, answering queries.
    pub async fn start() -> Result<Bind> {
        let tempdir = start::fresh_tempdir("iaas-bind")?;
        let result = Self::launch_in(&tempdir).await;
        if result.is_err() {
            let _ = std::fs::remove_dir_all(&tempdir);
        }
        result
    }

    /// Kills named (the port closes), e.g. to simulate "DNS server down". Idempotent.
    pub async fn stop(&mut self) {
        self.process.stop().await
    }

    /// The instance's temp directory (config, zone files, journals, `named.log`).
    pub fn dir(&self) -> &Path {
        self.process.dir()
    }

    /// `dig @127.0.0.1 -p <port> +short <name> <rtype>`: the answer's data, one per record
    /// (empty for NXDOMAIN / no data / no answer). `name` may be relative to nothing: pass it
    /// fully qualified (`app-web-01.example.test.`).
    pub async fn query(&self, name: &str, rtype: &str) -> Vec<String> {
        match dig(self.addr.port(), name, rtype).await {
            Ok(lines) => lines,
            Err(e) => {
                eprintln!("dig {name} {rtype} failed: {e:#}");
                Vec::new()
            }
        }
    }

    async fn launch_in(dir: &Path) -> Result<Bind> {
        let key_conf = tsig_keygen().await?;
        let key_secret_b64 = parse_secret(&key_conf)?;
        std::fs::write(dir.join("example.test.zone"), FORWARD_ZONE_FILE)?;
        std::fs::write(dir.join("20.10.in-addr.arpa.zone"), REVERSE_ZONE_FILE)?;
        let binary = start::binary("NAMED", "named");

        // A free port can be taken between our probe and named's bind; retry with new ports.
        let mut last_err = anyhow!("named was not started");
        for _ in 0..START_ATTEMPTS {
            let port = free_port()?;
            let conf = named_conf(dir, port, &key_conf);
            let conf_path = dir.join("named.conf");
            std::fs::write(&conf_path, conf)?;
            let log = dir.join("named.log");
            let mut cmd = Command::new(&binary);
            cmd.arg("-4").arg("-g").arg("-c").arg(&conf_path);
            let mut child = start::spawn(&mut cmd, &log, "Debian's bind9")?;
            let ready = || answers(port);
            match start::wait_ready(&mut child, "named", &log, START_TIMEOUT, Duration::from_millis(50), ready).await {
                Ok(()) => {
                    return Ok(Bind {
                        addr: SocketAddr::from(([127, 0, 0, 1], port)),
                        key_name: KEY_NAME.into(),
                        key_secret_b64,
                        process: start::Process::new(child, dir),
                    })
                }
                Err(e) => {
                    let _ = child.kill().await;
                    last_err = e;
                }
            }
        }
        Err(last_err)
    }
}

fn named_conf(dir: &Path, port: u16, key_conf: &str) -> String {
    let d = dir.display();
    format!(
        r#"{key_conf}
options {{
    directory "{d}";
    pid-file "{d}/named.pid";
    session-keyfile "{d}/session.key";
    managed-keys-directory "{d}";
    listen-on port {port} {{ 127.0.0.1; }};
    listen-on-v6 {{ none; }};
    recursion no;
    dnssec-validation no;
    notify no;
    allow-query {{ 127.0.0.1; }};
}};
controls {{ }};
zone "example.test" {{
    type primary;
    file "{d}/example.test.zone";
    allow-update {{ key "{KEY_NAME}"; }};
}};
zone "20.10.in-addr.arpa" {{
    type primary;
    file "{d}/20.10.in-addr.arpa.zone";
    allow-update {{ key "{KEY_NAME}"; }};
}};
"#
    )
}

async fn tsig_keygen() -> Result<String> {
    let out = Command::new("tsig-keygen")
        .args(["-a", "hmac-sha256", KEY_NAME])
        .stdin(Stdio::null())
        .output()
        .await
        .context("running tsig-keygen (is Debian's bind9-utils installed?)")?;
    if !out.status.success() {
        bail!("tsig-keygen failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8(out.stdout)?)
}

/// The base64 between the quotes of `secret "…";`.
fn parse_secret(key_conf: &str) -> Result<String> {
    key_conf
        .lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix("secret"))
        .and_then(|rest| rest.split('"').nth(1))
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("no secret in tsig-keygen's output"))
}

async fn dig(port: u16, name: &str, rtype: &str) -> Result<Vec<String>> {
    let out = Command::new("dig")
        .args(["@127.0.0.1", "-p", &port.to_string(), "+short", "+time=2", "+tries=1", name, rtype])
        .stdin(Stdio::null())
        .output()
        .await
        .context("running dig (is Debian's bind9-dnsutils installed?)")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!("dig exited with {}: {}", out.status, stdout.trim());
    }
    Ok(stdout.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with(';')).map(str::to_owned).collect())
}

/// Whether named answers the forward zone's SOA.
async fn answers(port: u16) -> Result<bool> {
    Ok(dig(port, ZONE, "SOA").await.is_ok_and(|lines| !lines.is_empty()))
}

/// A port free on 127.0.0.1 for both TCP and UDP (named listens on both).
fn free_port() -> Result<u16> {
    for _ in 0..20 {
        let port = StdTcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        if StdUdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    bail!("no port free for both TCP and UDP on 127.0.0.1")
}
