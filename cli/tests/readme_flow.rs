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

/// The commands of the README's "Try it without Slack", as `iaas` argument lists (after
/// `cargo run --release --bin iaas --`).
fn readme_try_it() -> Vec<Vec<String>> {
    let readme = include_str!("../../README.md");
    let section = readme.split("## Try it without Slack").nth(1).expect("the README has a \"Try it without Slack\" section");
    let block = section.split("```sh").nth(1).and_then(|b| b.split("```").next()).expect("a sh block in it");
    block.lines().filter_map(|line| line.trim().strip_prefix("cargo run --release --bin iaas -- ")).map(shell_words).collect()
}

/// Splits a command line the way sh does for the README's lines: blanks, and double quotes.
fn shell_words(line: &str) -> Vec<String> {
    let (mut words, mut word, mut quoted, mut any) = (Vec::new(), String::new(), false, false);
    for c in line.chars() {
        match c {
            '"' => (quoted, any) = (!quoted, true),
            c if c.is_whitespace() && !quoted => {
                if any {
                    words.push(std::mem::take(&mut word));
                }
                any = false;
            }
            c => (word, any) = (word + &c.to_string(), true),
        }
    }
    if any {
        words.push(word);
    }
    words
}

#[tokio::test]
async fn the_readme_try_it_lines_press_buttons_end_to_end_and_survive_a_restart() {
    let dir = std::env::temp_dir().join(format!("iaas-readme-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let start = || async {
        let mut serve = iaas(&dir).args(["serve", "--listen", "127.0.0.1:0"]).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
        let url = common::listening(&mut BufReader::new(serve.stdout.take().unwrap()).lines()).await;
        (serve, url)
    };
    let (mut serve, url) = start().await;

    let lines = readme_try_it();
    assert!(lines.len() >= 5, "{lines:?}");
    let mut outputs = Vec::new();
    for mut args in lines {
        assert_eq!(args[0], "slash", "{args:?}");
        args.splice(1..1, ["--gateway".to_string(), url.clone()]);
        let out = iaas(&dir).args(&args).output().await.unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "iaas {args:?} failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
        outputs.push((args.last().unwrap().clone(), stdout));
    }
    let output =
        |command: &str| &outputs.iter().find(|(c, _)| c.starts_with(command)).unwrap_or_else(|| panic!("{command} not in the README")).1;
    assert!(output("/iaas reboot").contains("was asked to restart"), "{}", output("/iaas reboot"));
    let delete = output("/iaas delete build-agent-07");
    assert!(delete.contains("[1] Delete build-agent-07") && delete.contains("[2] Cancel"), "{delete}");
    assert!(delete.contains("build-agent-07* was deleted"), "{delete}");
    let decommission = output("/iaas decommission app-web-02");
    assert!(decommission.contains("Decommissioned 1 of 1 VMs"), "{decommission}");
    assert!(output("/iaas decommission list").contains("app-web-02"), "{}", output("/iaas decommission list"));

    // A failed answer is exit status 1.
    let out = iaas(&dir).args(["slash", "--gateway", &url, "/iaas reboot app-db-01"]).output().await.unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stdout));
    // Without --press and without a terminal, the buttons are listed and nothing is pressed.
    let out = iaas(&dir).args(["slash", "--gateway", &url, "/iaas delete app-web-01"]).output().await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && stdout.contains("--press <N>"), "{stdout}");
    // A button that is not there is said, and nothing is pressed.
    let out = iaas(&dir).args(["slash", "--gateway", &url, "--press", "3", "/iaas delete app-web-01"]).output().await.unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("there is no button 3"), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(1));

    // After a restart the demo inventory agrees with the records: the deleted VMs stay deleted.
    serve.kill().await.ok();
    serve.wait().await.ok();
    let (mut serve, url) = start().await;
    let out = iaas(&dir).args(["slash", "--gateway", &url, "/iaas vm list"]).output().await.unwrap();
    let list = String::from_utf8_lossy(&out.stdout);
    assert!(dir.join("iaas.db-demo.json").exists(), "the demo is kept next to iaas.db");
    assert!(list.contains("app-web-01") && list.contains("app-db-01"), "{list}");
    assert!(!list.contains("build-agent-07") && !list.contains("app-web-02"), "{list}");
    serve.kill().await.ok();
    std::fs::remove_dir_all(&dir).ok();
}

/// On a terminal (`script` gives it one), `iaas slash` asks which button to press, and asks
/// again after an answer that is not a button's number.
#[tokio::test]
async fn on_a_terminal_slash_asks_which_button() {
    let dir = std::env::temp_dir().join(format!("iaas-readme-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut serve = iaas(&dir).args(["serve", "--listen", "127.0.0.1:0"]).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let url = common::listening(&mut BufReader::new(serve.stdout.take().unwrap()).lines()).await;
    let slash = format!("{} slash --gateway {url} '/iaas delete app-web-01'", env!("CARGO_BIN_EXE_iaas"));
    let mut script = Command::new("script");
    script
        .args(["-qec", &slash, "/dev/null"])
        .env("IAAS_STATE_DIR", &dir)
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true);
    let mut child = script.spawn().expect("script (util-linux) gives slash a terminal");
    {
        use tokio::io::AsyncWriteExt;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"7\n2\n").await.unwrap();
    }
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output()).await.unwrap().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("Press which button (1-2, Enter for none)?"), "{stdout}");
    assert!(stdout.contains("\"7\" is not a number from 1 to 2"), "{stdout}");
    assert!(stdout.contains("Deletion of app-web-01 cancelled; nothing was changed."), "{stdout}");
    serve.kill().await.ok();
    std::fs::remove_dir_all(&dir).ok();
}
