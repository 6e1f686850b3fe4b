//! The stand-alone gateway fronts a real vCenter's functions: without roles it refuses to start
//! unless IAAS_ALLOW_EVERYONE=true says every Slack user may change VMs.

use std::process::{Command, Stdio};

fn gateway(extra: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_iaas-gateway"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUST_LOG", "warn")
        .env("SLACK_SIGNING_SECRET", "s")
        .env("IAAS_SHARED_SECRET", "h")
        .env("IAAS_DISPATCH", "openfaas:http://127.0.0.1:9")
        .envs(extra.iter().copied())
        .stdout(Stdio::null());
    cmd
}

#[test]
fn no_roles_without_consent_is_refused_in_one_line() {
    let out = gateway(&[]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    let line = stderr.lines().last().unwrap_or_default();
    assert!(line.starts_with("iaas-gateway: IAAS_CONFIG: no roles defined"), "{stderr}");
    assert!(line.contains("IAAS_ALLOW_EVERYONE=true to accept that every Slack user may change VMs"), "{stderr}");
}

#[test]
fn consent_lets_it_start() {
    // A free port, so the gateway listens; it is stopped as soon as it has.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port().to_string();
    let mut child = gateway(&[("IAAS_ALLOW_EVERYONE", "true"), ("PORT", &port)]).stderr(Stdio::null()).spawn().unwrap();
    let up = (0..100).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(100));
        std::net::TcpStream::connect(format!("127.0.0.1:{port}")).is_ok()
    });
    let exited = child.try_wait().unwrap();
    child.kill().ok();
    child.wait().ok();
    assert!(up && exited.is_none(), "the gateway did not start with IAAS_ALLOW_EVERYONE=true (exit: {exited:?})");
}

#[test]
fn a_database_that_cannot_be_opened_is_said_once() {
    let dir = std::env::temp_dir().join(format!("iaas-gateway-startup-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // A file where the database's directory should be.
    std::fs::write(dir.join("not-a-dir"), "").unwrap();
    let url = format!("sqlite://{}/not-a-dir/iaas.db", dir.display());
    let out = gateway(&[("IAAS_ALLOW_EVERYONE", "true"), ("DATABASE_URL", &url)]).output().unwrap();
    std::fs::remove_dir_all(&dir).ok();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    let line = stderr.lines().last().unwrap_or_default();
    assert!(line.starts_with("iaas-gateway: DATABASE_URL: Cannot open the state database"), "{stderr}");
    assert_eq!(line.matches("Cannot open").count(), 1, "{line}");
    assert!(!line.contains(".."), "{line}");
}
