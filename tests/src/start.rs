//! What the slapd and BIND harnesses share to run their server: a fresh temp directory, the
//! binary to run, spawning it logged, waiting until it answers (with the tail of its log in the
//! error), and killing it and removing the directory when done.
//!
//! `slapd.rs` and `bind.rs` include this file by path (`#[path = "start.rs"] mod start;`, which
//! resolves next to them however they are included), so other crates' tests can still include
//! them by path alone. Like them, it needs only `tokio` and `anyhow`.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use tokio::process::{Child, Command};

/// A started server: its process, killed, and its temp directory, removed, when dropped.
pub struct Process {
    child: Option<Child>,
    dir: PathBuf,
}

impl Process {
    pub fn new(child: Child, dir: &Path) -> Process {
        Process { child: Some(child), dir: dir.to_path_buf() }
    }

    /// Kills the server (its ports close). Idempotent.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A new, empty directory `<temp>/<prefix>-<pid>-<n>-<nanos>`.
pub fn fresh_tempdir(prefix: &str) -> Result<PathBuf> {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().subsec_nanos();
    let dir = std::env::temp_dir().join(format!("{prefix}-{}-{}-{nanos}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed)));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

/// The server binary: `$<env_var>`, else `/usr/sbin/<name>` when it exists, else `<name>`.
pub fn binary(env_var: &str, name: &str) -> String {
    std::env::var(env_var).unwrap_or_else(|_| {
        let sbin = format!("/usr/sbin/{name}");
        if Path::new(&sbin).exists() {
            sbin
        } else {
            name.into()
        }
    })
}

/// Spawns `cmd` without stdin, its stdout and stderr into `log`, killed when dropped.
/// `package` names what provides the binary, for the error.
pub fn spawn(cmd: &mut Command, log: &Path, package: &str) -> Result<Child> {
    let program = cmd.as_std().get_program().to_string_lossy().into_owned();
    let log = std::fs::File::create(log)?;
    cmd.stdin(Stdio::null())
        .stdout(Stdio::from(log.try_clone()?))
        .stderr(Stdio::from(log))
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("spawning {program} (is {package} installed?)"))
}

/// Until `ready` says the server answers, polling every `poll` and bounded by `timeout`; fails
/// early when `child` exits (bad config, port taken). `name` is the server's, `log` the file it
/// logs to, whose tail goes into the error.
pub async fn wait_ready<F, Fut>(child: &mut Child, name: &str, log: &Path, timeout: Duration, poll: Duration, mut ready: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<bool>>,
{
    let deadline = Instant::now() + timeout;
    let log_name = log.file_name().unwrap_or_default().to_string_lossy();
    loop {
        if let Some(status) = child.try_wait()? {
            bail!("{name} exited during start-up ({status}); {log_name}: {}", log_tail(log));
        }
        if ready().await? {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!("{name} did not answer within {timeout:?}; {log_name}: {}", log_tail(log));
        }
        tokio::time::sleep(poll).await;
    }
}

/// The last 20 lines of `log`.
fn log_tail(log: &Path) -> String {
    let log = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}
