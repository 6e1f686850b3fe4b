//! Starts the vcsim launcher (`tests/vcsim/`) for a test: one fresh simulator per [`Vcsim`],
//! killed when it is dropped.
//!
//! The launcher is built on first use in each test process (`build.sh` is a no-op when the
//! binary is newer than `main.go`). Each instance gets its own TMPDIR, where vcsim keeps its
//! datastore files; it is removed on drop.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use iaas_vsphere::soap::SoapConfig;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// Credentials the tests use (vcsim accepts any non-empty pair).
pub const USER: &str = "iaas";
pub const PASSWORD: &str = "secret";

const START_TIMEOUT: Duration = Duration::from_secs(60);

const SM: &str = r#"<_this type="SessionManager">SessionManager</_this>"#;

/// How to start the simulator.
#[derive(Debug, Clone, Default)]
pub struct VcsimOptions {
    /// Extra powered-on VMs named `bench-vm-001`…
    pub extra_vms: usize,
    /// Per-method delays, e.g. `("RetrievePropertiesEx", 2000)`, in milliseconds.
    pub delays: Vec<(String, u64)>,
    /// Like `delays`, but only for calls over HTTP: the launcher's own changes (`rename_vm`,
    /// `destroy_vm`, `create_vm`) are not slowed.
    pub http_delays: Vec<(String, u64)>,
    /// Tasks of these methods read as running for this many milliseconds after the call
    /// returns (the change itself is made at once), like a real vCenter's long tasks.
    pub task_holds: Vec<(String, u64)>,
    /// Serve HTTPS with a fresh self-signed certificate (see [`Vcsim::cert_path`]).
    pub tls: bool,
}

pub struct Vcsim {
    /// e.g. `http://127.0.0.1:40915/sdk`
    pub url: String,
    child: Child,
    // Held so the launcher sees its stdin close (and exits) when this is dropped.
    _stdin: Option<ChildStdin>,
    _stdout: BufReader<ChildStdout>,
    workdir: PathBuf,
    cert: Option<PathBuf>,
}

impl Vcsim {
    pub async fn start() -> Result<Vcsim> {
        Self::start_with(VcsimOptions::default()).await
    }

    pub async fn start_with(opts: VcsimOptions) -> Result<Vcsim> {
        let binary = tokio::task::spawn_blocking(launcher_binary).await??;
        let workdir = fresh_workdir()?;
        let cert = opts.tls.then(|| workdir.join("server.pem"));

        let mut cmd = Command::new(&binary);
        cmd.arg("-listen").arg("127.0.0.1:0").arg("-vms").arg(opts.extra_vms.to_string());
        for (flag, spec) in [("-delay", &opts.delays), ("-http-delay", &opts.http_delays), ("-task-hold", &opts.task_holds)] {
            if !spec.is_empty() {
                let spec: Vec<String> = spec.iter().map(|(m, ms)| format!("{m}={ms}")).collect();
                cmd.arg(flag).arg(spec.join(","));
            }
        }
        if let Some(cert) = &cert {
            cmd.arg("-tls").arg("-cert-out").arg(cert);
        }
        let log = std::fs::File::create(workdir.join("vcsim.log"))?;
        cmd.env("TMPDIR", &workdir).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::from(log)).kill_on_drop(true);
        let mut child = cmd.spawn().with_context(|| format!("spawning {}", binary.display()))?;

        let stdin = child.stdin.take();
        let mut stdout = BufReader::new(child.stdout.take().ok_or_else(|| anyhow!("no stdout pipe"))?);
        let url = match tokio::time::timeout(START_TIMEOUT, read_url(&mut stdout)).await {
            Ok(Ok(url)) => url,
            Ok(Err(e)) => bail!("vcsim did not start: {e}; log: {}", log_tail(&workdir)),
            Err(_) => bail!("vcsim printed no URL within {START_TIMEOUT:?}; log: {}", log_tail(&workdir)),
        };
        Ok(Vcsim { url, child, _stdin: stdin, _stdout: stdout, workdir, cert })
    }

    /// The server certificate (PEM) when started with `tls`.
    pub fn cert_path(&self) -> Option<&Path> {
        self.cert.as_deref()
    }

    /// A client configuration for this simulator, trusting its certificate when on TLS.
    /// Stops the simulator and waits until it is gone, so the next call finds nothing
    /// listening (dropping only starts the kill: a call may still meet a dying process).
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }

    pub fn config(&self) -> SoapConfig {
        SoapConfig {
            url: self.url.clone(),
            user: USER.into(),
            password: PASSWORD.into(),
            insecure: false,
            ca_file: self.cert.clone(),
            timeout: Duration::from_secs(10),
        }
    }

    /// SOAP calls the simulator has served, per method name (`GET /_stats`).
    pub async fn stats(&self) -> Result<HashMap<String, u64>> {
        let url = format!("{}/_stats", self.base_url());
        let stats = self.http()?.get(url).send().await?.error_for_status()?.json().await?;
        Ok(stats)
    }

    /// Request plus response body bytes of the SOAP calls served, per method (`GET /_bytes`).
    pub async fn bytes(&self) -> Result<HashMap<String, u64>> {
        let url = format!("{}/_bytes", self.base_url());
        let bytes = self.http()?.get(url).send().await?.error_for_status()?.json().await?;
        Ok(bytes)
    }

    /// Renames a VM behind the client's back (vcsim's own Rename_Task, so property
    /// collectors see it as they would on vCenter).
    pub async fn rename_vm(&self, name: &str, to: &str) -> Result<()> {
        self.change_vm(&[("op", "rename"), ("name", name), ("to", to)]).await
    }

    /// Powers off (if need be) and destroys a VM behind the client's back.
    pub async fn destroy_vm(&self, name: &str) -> Result<()> {
        self.change_vm(&[("op", "destroy"), ("name", name)]).await
    }

    /// Creates a powered-on VM in the bot's folder behind the client's back.
    pub async fn create_vm(&self, name: &str) -> Result<()> {
        self.change_vm(&[("op", "create"), ("name", name)]).await
    }

    async fn change_vm(&self, query: &[(&str, &str)]) -> Result<()> {
        let url = reqwest::Url::parse_with_params(&format!("{}/_vm", self.base_url()), query)?;
        let resp = self.http()?.post(url).send().await?;
        if !resp.status().is_success() {
            bail!("vcsim /_vm {query:?}: {}", resp.text().await?);
        }
        Ok(())
    }

    /// Ends every session but a fresh admin one, the way an administrator would on vCenter:
    /// Login, read SessionManager.sessionList, TerminateSession, Logout. Returns how many
    /// sessions were terminated. Costs one Login in [`Vcsim::stats`].
    pub async fn terminate_other_sessions(&self) -> Result<usize> {
        let http = self.http()?;
        let (cookie, own_key) = self.admin_login(&http).await?;

        let list = self
            .soap(
                &http,
                concat!(
                    r#"<RetrievePropertiesEx xmlns="urn:vim25"><_this type="PropertyCollector">propertyCollector</_this>"#,
                    "<specSet><propSet><type>SessionManager</type><pathSet>sessionList</pathSet></propSet>",
                    r#"<objectSet><obj type="SessionManager">SessionManager</obj></objectSet></specSet><options></options></RetrievePropertiesEx>"#
                ),
                Some(&cookie),
            )
            .await?
            .text()
            .await?;
        let others: Vec<String> = list
            .split("<key>")
            .skip(1)
            .filter_map(|rest| rest.split_once("</key>").map(|(key, _)| key.to_owned()))
            .filter(|key| *key != own_key)
            .collect();

        if !others.is_empty() {
            let ids: String = others.iter().map(|k| format!("<sessionId>{k}</sessionId>")).collect();
            let resp =
                self.soap(&http, &format!("<TerminateSession xmlns=\"urn:vim25\">{SM}{ids}</TerminateSession>"), Some(&cookie)).await?;
            if !resp.status().is_success() {
                bail!("TerminateSession failed: {}", resp.text().await?);
            }
        }
        self.admin_logout(&http, &cookie).await?;
        Ok(others.len())
    }

    /// One property of one managed object, as the raw XML of vcsim's answer, for checks the
    /// `Vcenter` API has no reader for (e.g. a VM's devices). Uses its own admin session:
    /// costs one Login in [`Vcsim::stats`].
    pub async fn property_xml(&self, ty: &str, moref: &str, path: &str) -> Result<String> {
        let http = self.http()?;
        let (cookie, _) = self.admin_login(&http).await?;
        let body = format!(
            concat!(
                r#"<RetrievePropertiesEx xmlns="urn:vim25"><_this type="PropertyCollector">propertyCollector</_this>"#,
                "<specSet><propSet><type>{ty}</type><pathSet>{path}</pathSet></propSet>",
                r#"<objectSet><obj type="{ty}">{moref}</obj></objectSet></specSet><options></options></RetrievePropertiesEx>"#
            ),
            ty = ty,
            path = path,
            moref = moref
        );
        let resp = self.soap(&http, &body, Some(&cookie)).await?;
        let ok = resp.status().is_success();
        let text = resp.text().await?;
        self.admin_logout(&http, &cookie).await?;
        if !ok {
            bail!("RetrievePropertiesEx failed: {text}");
        }
        Ok(text)
    }

    async fn soap(&self, http: &reqwest::Client, body: &str, cookie: Option<&str>) -> Result<reqwest::Response> {
        let mut req = http
            .post(&self.url)
            .header("Content-Type", "text/xml; charset=utf-8")
            .header("SOAPAction", "urn:vim25/6.5")
            .body(envelope(body));
        if let Some(cookie) = cookie {
            req = req.header("Cookie", cookie);
        }
        Ok(req.send().await?)
    }

    /// Logs in as an administrator; the session cookie and the session's key.
    async fn admin_login(&self, http: &reqwest::Client) -> Result<(String, String)> {
        let login = self
            .soap(http, &format!("<Login xmlns=\"urn:vim25\">{SM}<userName>{USER}</userName><password>{PASSWORD}</password></Login>"), None)
            .await?;
        let cookie = login
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(str::to_owned)
            .ok_or_else(|| anyhow!("admin login set no cookie"))?;
        let login_body = login.text().await?;
        let key = first_between(&login_body, "<key>", "</key>").ok_or_else(|| anyhow!("admin login returned no session key"))?.to_owned();
        Ok((cookie, key))
    }

    async fn admin_logout(&self, http: &reqwest::Client, cookie: &str) -> Result<()> {
        self.soap(http, &format!("<Logout xmlns=\"urn:vim25\">{SM}</Logout>"), Some(cookie)).await?;
        Ok(())
    }

    fn base_url(&self) -> &str {
        self.url.strip_suffix("/sdk").unwrap_or(&self.url)
    }

    fn http(&self) -> Result<reqwest::Client> {
        // Only for the harness's own calls; the client under test does its own TLS checks.
        Ok(reqwest::Client::builder().danger_accept_invalid_certs(true).timeout(Duration::from_secs(10)).build()?)
    }
}

impl Drop for Vcsim {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        let _ = std::fs::remove_dir_all(&self.workdir);
    }
}

async fn read_url(stdout: &mut BufReader<ChildStdout>) -> Result<String> {
    let mut line = String::new();
    loop {
        line.clear();
        if stdout.read_line(&mut line).await? == 0 {
            bail!("launcher exited");
        }
        if let Some(url) = line.trim().strip_prefix("VCSIM_URL=") {
            return Ok(url.to_owned());
        }
    }
}

/// Builds the launcher once per process (build.sh itself skips work when up to date).
fn launcher_binary() -> Result<PathBuf> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("vcsim/build.sh");
            let out = std::process::Command::new("sh")
                .arg(&script)
                .stderr(Stdio::inherit())
                .output()
                .map_err(|e| format!("running {}: {e}", script.display()))?;
            if !out.status.success() {
                return Err(format!("{} failed ({})", script.display(), out.status));
            }
            let path = String::from_utf8_lossy(&out.stdout).lines().last().unwrap_or("").trim().to_owned();
            Ok(PathBuf::from(path))
        })
        .clone()
        .map_err(|e| anyhow!(e))
}

fn fresh_workdir() -> Result<PathBuf> {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!("iaas-vcsim-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed)));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

fn log_tail(workdir: &Path) -> String {
    let log = std::fs::read_to_string(workdir.join("vcsim.log")).unwrap_or_default();
    let lines: Vec<&str> = log.lines().rev().take(20).collect();
    lines.into_iter().rev().collect::<Vec<_>>().join("\n")
}

fn envelope(body: &str) -> String {
    format!(
        concat!(
            r#"<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" "#,
            r#"xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>{}</soapenv:Body></soapenv:Envelope>"#
        ),
        body
    )
}

fn first_between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let rest = &text[text.find(start)? + start.len()..];
    Some(&rest[..rest.find(end)?])
}
