//! The README's first two minutes: `iaas serve` on its embedded defaults (no Slack app, no
//! vCenter, no database settings) and `iaas slash` in a second terminal.

mod common;

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

fn iaas(dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_iaas"));
    cmd.env_clear().env("PATH", std::env::var("PATH").unwrap_or_default()).env("IAAS_STATE_DIR", dir).current_dir(dir).kill_on_drop(true);
    cmd
}

#[tokio::test]
async fn serve_on_defaults_then_slash_lists_the_demo_inventory() {
    let dir = std::env::temp_dir().join(format!("iaas-readme-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut serve = iaas(&dir).args(["serve", "--listen", "127.0.0.1:0"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut lines = BufReader::new(serve.stdout.take().unwrap()).lines();
    let url = common::listening(&mut lines).await;
    // Start-up says which defaults are in use.
    let mut errs = BufReader::new(serve.stderr.take().unwrap()).lines();
    let mut startup = String::new();
    while let Ok(Ok(Some(line))) = tokio::time::timeout(Duration::from_millis(500), errs.next_line()).await {
        startup.push_str(&line);
        startup.push('\n');
    }
    for expected in ["no SLACK_SIGNING_SECRET", "no VCENTER_URL", "demo inventory", "no DATABASE_URL", "Try it: iaas slash"] {
        assert!(startup.contains(expected), "{expected:?} missing from start-up:\n{startup}");
    }
    assert!(dir.join("iaas.db").exists(), "the default SQLite file is created in the working directory");

    let out = iaas(&dir).args(["slash", "--gateway", &url, "/iaas vm list"]).output().await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("Accepted `vm list`"), "{stdout}");
    for vm in ["app-web-01", "app-db-01", "win-app-01"] {
        assert!(stdout.contains(vm), "{vm} missing:\n{stdout}");
    }

    // A command that is answered straight away (no dispatch) ends at the ack.
    let out = iaas(&dir).args(["slash", "--gateway", &url, "/iaas help power"]).output().await.unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("poweroff"));

    // The operator's view of the same request: `iaas audit` reads the audit trail.
    let out = iaas(&dir).args(["audit", "--user", "U0LOCAL"]).output().await.unwrap();
    let audit = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(audit.contains("allowed") && audit.contains("gateway") && audit.contains("vm list"), "{audit}");
    assert!(audit.contains("done") && audit.contains("iaas-inventory"), "{audit}");

    serve.kill().await.ok();
    std::fs::remove_dir_all(&dir).ok();
}
