//! `iaas serve` start-up as a new user meets it: every setting it is given is honoured or
//! refused with one line naming it, and `iaas slash` exits non-zero when the answer is a failure.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use iaas_tests::vcsim::Vcsim;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

/// A fresh directory for state, the SQLite file and the generated signing secret.
fn fresh_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("iaas-startup-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn iaas(dir: &Path, env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_iaas"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("IAAS_STATE_DIR", dir)
        .env("RUST_LOG", "warn")
        .envs(env.iter().copied())
        .current_dir(dir)
        .kill_on_drop(true);
    cmd
}

/// `iaas serve` with `env` that must refuse to start: its exit status and last stderr line.
async fn refused(env: &[(&str, &str)], args: &[&str]) -> String {
    let dir = fresh_dir();
    let out = tokio::time::timeout(Duration::from_secs(60), iaas(&dir, env).arg("serve").args(args).output())
        .await
        .expect("iaas serve should stop within 60 s")
        .unwrap();
    std::fs::remove_dir_all(&dir).ok();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "iaas serve started with {env:?}:\n{stderr}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("listening"), "{env:?}");
    let line = stderr.lines().last().unwrap_or_default().to_string();
    assert!(line.starts_with("iaas: "), "{stderr}");
    line
}

/// `iaas serve` with `env` that must start: the URL it listens on, and the process.
async fn started(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> (String, tokio::process::Child) {
    let mut child = iaas(dir, env).arg("serve").args(args).stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().unwrap();
    let url = common::listening(&mut BufReader::new(child.stdout.take().unwrap()).lines()).await;
    (url, child)
}

fn once(line: &str, part: &str) {
    assert_eq!(line.matches(part).count(), 1, "{part:?} once in: {line}");
}

#[tokio::test]
async fn a_database_that_cannot_be_opened_is_said_once() {
    let dir = fresh_dir();
    // A file where the database's directory should be: SQLite cannot create it.
    std::fs::write(dir.join("not-a-dir"), "").unwrap();
    let url = format!("sqlite://{}/not-a-dir/iaas.db", dir.display());
    let line = refused(&[("DATABASE_URL", &url)], &["--listen", "127.0.0.1:0"]).await;
    assert!(line.starts_with("iaas: DATABASE_URL: Cannot open the state database"), "{line}");
    once(&line, "Cannot open the state database");
    std::fs::remove_dir_all(&dir).ok();
}

/// The time-out settings are read at start-up, so a typo stops it instead of being ignored.
#[tokio::test]
async fn malformed_time_out_settings_are_named() {
    for name in ["DATABASE_STATEMENT_TIMEOUT_SECS", "IAAS_CLAIM_LEASE_SECS"] {
        let line = refused(&[(name, "5s")], &["--listen", "127.0.0.1:0"]).await;
        assert!(line.contains(name) && line.contains("\"5s\" is not a whole number of seconds"), "{line}");
    }
}

#[tokio::test]
async fn a_policy_type_error_names_its_line_and_key() {
    let dir = fresh_dir();
    let path = dir.join("policy.toml");
    std::fs::write(&path, "# sizes and limits\n[vcenter]\ntimeout_secs = 30\n\n[inventory]\nlist_max_rows = \"5\"\n").unwrap();
    let line = refused(&[("IAAS_CONFIG", path.to_str().unwrap())], &["--listen", "127.0.0.1:0"]).await;
    assert!(line.contains("line 6: inventory.list_max_rows: invalid type: string \"5\", expected usize"), "{line}");
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn missing_vcenter_settings_are_named_together() {
    let line = refused(&[("VCENTER_URL", "https://vc.example.test/sdk")], &["--listen", "127.0.0.1:0"]).await;
    assert!(line.contains("VCENTER_USER is not set") && line.contains("VCENTER_PASSWORD is not set"), "{line}");
    let line = refused(&[("VCENTER_URL", "vc.example.test"), ("VCENTER_PASSWORD", "x")], &["--listen", "127.0.0.1:0"]).await;
    assert!(line.contains("\"vc.example.test\" is not a vCenter SDK URL") && line.contains("VCENTER_USER is not set"), "{line}");
    assert!(!line.contains("VCENTER_PASSWORD is not set"), "{line}");
    // Credentials without a URL are not silently the demo.
    let line = refused(&[("VCENTER_USER", "svc"), ("VCENTER_PASSWORD", "x")], &["--listen", "127.0.0.1:0"]).await;
    assert!(line.starts_with("iaas: VCENTER_URL: is not set"), "{line}");
}

#[tokio::test]
async fn an_unreachable_vcenter_stops_start_up() {
    // A port nothing listens on: bind one, note it, let it go.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}/sdk");
    let env = [("VCENTER_URL", url.as_str()), ("VCENTER_USER", "svc"), ("VCENTER_PASSWORD", "x"), ("IAAS_ALLOW_EVERYONE", "true")];
    let line = refused(&env, &["--listen", "127.0.0.1:0"]).await;
    assert!(line.starts_with(&format!("iaas: VCENTER_URL: cannot reach {url}")), "{line}");
}

#[tokio::test]
async fn a_real_vcenter_without_roles_needs_consent() {
    let vcsim = Vcsim::start().await.unwrap();
    let env = [("VCENTER_URL", vcsim.url.as_str()), ("VCENTER_USER", "iaas"), ("VCENTER_PASSWORD", "secret")];
    let line = refused(&env, &["--listen", "127.0.0.1:0"]).await;
    assert!(line.starts_with("iaas: IAAS_CONFIG: no roles defined"), "{line}");
    assert!(line.contains("IAAS_ALLOW_EVERYONE=true to accept that every Slack user may change VMs"), "{line}");

    let dir = fresh_dir();
    let mut consent = env.to_vec();
    consent.push(("IAAS_ALLOW_EVERYONE", "true"));
    let (_, mut serve) = started(&dir, &consent, &["--listen", "127.0.0.1:0"]).await;
    serve.kill().await.ok();
    // The demo inventory needs no policy (readme_flow starts it so).
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn dispatch_and_port_are_honoured_or_refused() {
    let line = refused(&[("IAAS_DISPATCH", "bogus")], &["--listen", "127.0.0.1:0"]).await;
    assert!(line.starts_with("iaas: IAAS_DISPATCH: \"bogus\" is not a dispatch backend"), "{line}");
    let line = refused(&[("IAAS_DISPATCH", "openfaas:http://gateway:8080")], &["--listen", "127.0.0.1:0"]).await;
    assert!(line.contains("needs the iaas-gateway binary"), "{line}");
    let line = refused(&[("PORT", "eighty")], &[]).await;
    assert!(line.starts_with("iaas: PORT: \"eighty\" is not a port number"), "{line}");

    // PORT sets the port; `iaas slash` finds the gateway there too. IAAS_DISPATCH=local is what serve does.
    let dir = fresh_dir();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port().to_string();
    let env = [("PORT", port.as_str()), ("IAAS_DISPATCH", "local")];
    let (url, mut serve) = started(&dir, &env, &[]).await;
    assert_eq!(url, format!("http://127.0.0.1:{port}"));
    let out = iaas(&dir, &env).args(["slash", "/iaas help"]).output().await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serve.kill().await.ok();
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn slash_exits_non_zero_when_the_answer_is_a_failure() {
    let dir = fresh_dir();
    let (url, mut serve) = started(&dir, &[], &["--listen", "127.0.0.1:0"]).await;
    let out = iaas(&dir, &[]).args(["slash", "--gateway", &url, "/iaas power on no-such-vm"]).output().await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("No VM named no-such-vm"), "{stdout}");
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let out = iaas(&dir, &[]).args(["slash", "--gateway", &url, "/iaas power status app-web-01"]).output().await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    // Refused by the gateway itself (a typo): also a failure; help is not.
    let out = iaas(&dir, &[]).args(["slash", "--gateway", &url, "/iaas powr on app-web-01"]).output().await.unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stdout));
    let out = iaas(&dir, &[]).args(["slash", "--gateway", &url, "/iaas help"]).output().await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    serve.kill().await.ok();
    std::fs::remove_dir_all(&dir).ok();
}
