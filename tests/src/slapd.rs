//! Starts a throwaway OpenLDAP `slapd` for a test: one instance per [`Slapd`], in its own temp
//! directory, killed when dropped.
//!
//! Needs Debian's `slapd` and `ldap-utils` (and `openssl` for [`Slapd::start_tls`]); install with
//! `slapd slapd/no_configuration boolean true` preseeded so the package creates no database.
//! The config (`tests/slapd/slapd.conf.in`, with the ppolicy overlay for `pwdAccountLockedTime`),
//! the AD account-state schema
//! (`tests/slapd/ad.schema`) and the seed directory (`tests/slapd/seed.ldif`) are compiled in, so
//! this file can also be included by path from another crate's tests
//! (`#[path = "../../../tests/src/slapd.rs"] mod slapd;`); it needs only `tokio` and `anyhow`
//! (and `start.rs` beside it, which it includes by path itself).
//!
//! The database is empty at start; [`Slapd::seed`] loads `seed.ldif` with `ldapadd` while slapd
//! runs (slapadd would bypass the memberof overlay, and memberOf would stay empty).
//! Environment overrides: `SLAPD` (binary, default `/usr/sbin/slapd`), `SLAPD_MODULEPATH`
//! (default `/usr/lib/ldap`).

// By path rather than `crate::start`, so that this file still works included alone; iaas-tests
// therefore loads start.rs twice (here and in the other harness), which is harmless.
#[allow(clippy::duplicate_mod)]
#[path = "start.rs"]
mod start;

use std::net::TcpListener as StdTcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context, Result};
use tokio::process::Command;

pub const BASE_DN: &str = "dc=example,dc=test";
pub const ADMIN_DN: &str = "cn=admin,dc=example,dc=test";
pub const ADMIN_PASSWORD: &str = "admin-Secret-1";
/// The read-only service account from `seed.ldif`.
pub const SVC_DN: &str = "cn=svc-iaas,ou=service,dc=example,dc=test";
pub const SVC_PASSWORD: &str = "svc-iaas-Secret-1";
/// The seed directory: see the comments in `tests/slapd/seed.ldif` for who is who. A user's
/// password is their uid followed by `-password` (e.g. `ann-password`).
pub const SEED_LDIF: &str = include_str!("../slapd/seed.ldif");
/// Where [`Slapd::add_computers`] puts computer accounts.
pub const COMPUTERS_DN: &str = "ou=computers,dc=example,dc=test";

const SLAPD_CONF_IN: &str = include_str!("../slapd/slapd.conf.in");
const AD_SCHEMA: &str = include_str!("../slapd/ad.schema");
const START_TIMEOUT: Duration = Duration::from_secs(10);
const START_ATTEMPTS: usize = 3;

pub struct Slapd {
    /// `ldap://127.0.0.1:<port>/` (StartTLS is offered here too when started with TLS).
    pub url: String,
    /// `ldaps://127.0.0.1:<port>/` when started with [`Slapd::start_tls`].
    pub ldaps_url: Option<String>,
    pub base_dn: String,
    pub admin_dn: String,
    pub admin_password: String,
    /// The test CA that signed the server certificate (SANs `IP:127.0.0.1`, `DNS:localhost`).
    pub ca_pem_path: Option<PathBuf>,
    process: start::Process,
}

impl Slapd {
    /// Plain LDAP only, empty database (see [`Slapd::seed`]).
    pub async fn start() -> Result<Slapd> {
        Self::launch(false, "").await
    }

    /// LDAP (with StartTLS) plus LDAPS, with a fresh test CA and server certificate.
    pub async fn start_tls() -> Result<Slapd> {
        Self::launch(true, "").await
    }

    /// [`Slapd::start_seeded`] with extra lines in the database section of slapd.conf, e.g.
    /// `limits * size.pr=100` for a server whose paged-results limit is low.
    pub async fn start_seeded_with(database_config: &str) -> Result<Slapd> {
        let slapd = Self::launch(false, database_config).await?;
        slapd.seed()?;
        Ok(slapd)
    }

    /// [`Slapd::start`] followed by [`Slapd::seed`].
    pub async fn start_seeded() -> Result<Slapd> {
        let slapd = Self::start().await?;
        slapd.seed()?;
        Ok(slapd)
    }

    /// Loads `tests/slapd/seed.ldif`.
    pub fn seed(&self) -> Result<()> {
        self.ldapadd(SEED_LDIF)
    }

    /// Kills slapd (the ports close), e.g. to simulate "directory down". Idempotent.
    pub async fn stop(&mut self) {
        self.process.stop().await
    }

    /// `ldapadd` as the rootdn; records with an explicit `changetype` are honoured.
    pub fn ldapadd(&self, ldif: &str) -> Result<()> {
        self.ldap_tool("ldapadd", ldif)
    }

    /// The [`COMPUTERS_DN`] OU with a computer account (a `device`) for each of `names`, as a
    /// decommission's directory step finds them.
    pub fn add_computers(&self, names: &[&str]) -> Result<()> {
        let mut ldif = format!("dn: {COMPUTERS_DN}\nobjectClass: organizationalUnit\nou: computers\n");
        for name in names {
            ldif.push_str(&format!("\ndn: cn={name},{COMPUTERS_DN}\nobjectClass: device\ncn: {name}\n"));
        }
        self.ldapadd(&ldif)
    }

    /// `ldapmodify` as the rootdn.
    pub fn ldapmodify(&self, ldif: &str) -> Result<()> {
        self.ldap_tool("ldapmodify", ldif)
    }

    /// The instance's temp directory (config, database, certificates, `slapd.log`).
    pub fn dir(&self) -> &Path {
        self.process.dir()
    }

    /// A second, unrelated CA (PEM) that did not sign the server's certificate, for negative
    /// TLS tests. Written into the instance's temp directory.
    pub fn other_ca(&self) -> Result<PathBuf> {
        let dir = self.dir().join("other-ca");
        std::fs::create_dir_all(&dir)?;
        make_ca(&dir, "iaas unrelated test CA")?;
        Ok(dir.join("ca.pem"))
    }

    async fn launch(tls: bool, database_config: &str) -> Result<Slapd> {
        let tempdir = start::fresh_tempdir("iaas-slapd")?;
        let result = Self::launch_in(&tempdir, tls, database_config).await;
        if result.is_err() {
            let _ = std::fs::remove_dir_all(&tempdir);
        }
        result
    }

    async fn launch_in(dir: &Path, tls: bool, database_config: &str) -> Result<Slapd> {
        std::fs::create_dir_all(dir.join("db"))?;
        std::fs::write(dir.join("ad.schema"), AD_SCHEMA)?;
        let tls_conf = if tls {
            make_ca(dir, "iaas test CA")?;
            make_server_cert(dir)?;
            format!(
                "TLSCACertificateFile {d}/ca.pem\nTLSCertificateFile {d}/server.pem\nTLSCertificateKeyFile {d}/server.key\n",
                d = dir.display()
            )
        } else {
            String::new()
        };
        let modulepath = std::env::var("SLAPD_MODULEPATH").unwrap_or_else(|_| "/usr/lib/ldap".into());
        let conf = SLAPD_CONF_IN
            .replace("@DIR@", &dir.display().to_string())
            .replace("@MODULEPATH@", &modulepath)
            .replace("@TLS@", &tls_conf)
            .replace("@DB_EXTRA@", database_config)
            .replace("@BASE@", BASE_DN)
            .replace("@ADMIN_DN@", ADMIN_DN)
            .replace("@ADMIN_PW@", ADMIN_PASSWORD);
        let conf_path = dir.join("slapd.conf");
        std::fs::write(&conf_path, conf)?;
        let binary = start::binary("SLAPD", "slapd");

        // A free port can be taken between our probe and slapd's bind; retry with new ports.
        let mut last_err = anyhow!("slapd was not started");
        for _ in 0..START_ATTEMPTS {
            let port = free_port()?;
            let url = format!("ldap://127.0.0.1:{port}/");
            let ldaps_url = if tls { Some(format!("ldaps://127.0.0.1:{}/", free_port()?)) } else { None };
            let listen = match &ldaps_url {
                Some(s) => format!("{url} {s}"),
                None => url.clone(),
            };
            let log = dir.join("slapd.log");
            let mut cmd = Command::new(&binary);
            cmd.arg("-f").arg(&conf_path).arg("-h").arg(&listen).arg("-d").arg("0");
            let mut child = start::spawn(&mut cmd, &log, "Debian's slapd")?;
            let ldaps_addr = ldaps_url.as_deref().map(|u| u.trim_start_matches("ldaps://").trim_end_matches('/'));
            let ready = || answers(&url, ldaps_addr);
            match start::wait_ready(&mut child, "slapd", &log, START_TIMEOUT, Duration::from_millis(25), ready).await {
                Ok(()) => {
                    return Ok(Slapd {
                        url,
                        ldaps_url,
                        base_dn: BASE_DN.into(),
                        admin_dn: ADMIN_DN.into(),
                        admin_password: ADMIN_PASSWORD.into(),
                        ca_pem_path: tls.then(|| dir.join("ca.pem")),
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

    fn ldap_tool(&self, tool: &str, ldif: &str) -> Result<()> {
        use std::io::Write;
        let mut child = std::process::Command::new(tool)
            .args(["-x", "-H", &self.url, "-D", &self.admin_dn, "-w", &self.admin_password])
            .env("LDAPNOINIT", "1") // ignore /etc/ldap/ldap.conf and ~/.ldaprc
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("spawning {tool} (is Debian's ldap-utils installed?)"))?;
        child.stdin.take().ok_or_else(|| anyhow!("no stdin pipe"))?.write_all(ldif.as_bytes())?;
        let out = child.wait_with_output()?;
        if !out.status.success() {
            bail!("{tool} failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr).trim());
        }
        Ok(())
    }
}

/// Whether slapd answers an authenticated whoami (and LDAPS, at `ldaps_addr`, accepts TCP).
async fn answers(url: &str, ldaps_addr: Option<&str>) -> Result<bool> {
    let whoami = Command::new("ldapwhoami")
        .args(["-x", "-H", url, "-D", ADMIN_DN, "-w", ADMIN_PASSWORD])
        .env("LDAPNOINIT", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
        .context("running ldapwhoami (is Debian's ldap-utils installed?)")?;
    let ldaps_ok = match ldaps_addr {
        Some(addr) => tokio::net::TcpStream::connect(addr).await.is_ok(),
        None => true,
    };
    Ok(whoami.success() && ldaps_ok)
}

/// `openssl req`'s arguments for a new P-256 key, unencrypted, written to the file named next.
const NEW_KEY: [&str; 6] = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout"];

/// A self-signed CA (`ca.pem`, `ca.key`) in `dir`.
fn make_ca(dir: &Path, cn: &str) -> Result<()> {
    std::fs::write(
        dir.join("ca.cnf"),
        format!(
            "[req]\ndistinguished_name = dn\nprompt = no\nx509_extensions = v3_ca\n[dn]\nCN = {cn}\n\
             [v3_ca]\nbasicConstraints = critical,CA:TRUE\nkeyUsage = critical,keyCertSign,cRLSign\n\
             subjectKeyIdentifier = hash\n"
        ),
    )?;
    openssl(dir, &[&["req", "-x509", "-new"][..], &NEW_KEY, &["ca.key", "-out", "ca.pem", "-days", "2", "-config", "ca.cnf"]].concat())
}

/// `server.pem`/`server.key` for 127.0.0.1 and localhost, signed by `ca.pem` in `dir`.
fn make_server_cert(dir: &Path) -> Result<()> {
    std::fs::write(
        dir.join("server.cnf"),
        "[req]\ndistinguished_name = dn\nprompt = no\n[dn]\nCN = localhost\n\
         [v3_srv]\nbasicConstraints = critical,CA:FALSE\nkeyUsage = critical,digitalSignature,keyEncipherment\n\
         extendedKeyUsage = serverAuth\nsubjectAltName = IP:127.0.0.1,DNS:localhost\n\
         subjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid\n",
    )?;
    openssl(dir, &[&["req", "-new"][..], &NEW_KEY, &["server.key", "-out", "server.csr", "-config", "server.cnf"]].concat())?;
    let serial = format!("0x{:x}", SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos());
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-set_serial",
            &serial,
            "-days",
            "2",
            "-out",
            "server.pem",
            "-extfile",
            "server.cnf",
            "-extensions",
            "v3_srv",
        ],
    )
}

fn openssl(dir: &Path, args: &[&str]) -> Result<()> {
    let out = std::process::Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .env("OPENSSL_CONF", "/dev/null")
        .stdin(Stdio::null())
        .output()
        .context("running openssl (is it installed?)")?;
    if !out.status.success() {
        bail!("openssl {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

fn free_port() -> Result<u16> {
    Ok(StdTcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}
