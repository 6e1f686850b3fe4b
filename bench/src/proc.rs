//! Child processes and their `/proc` figures (Linux only).

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use tokio::process::{Child, Command};

/// A free loopback port: bound to port 0, then released for a child to take (a small race,
/// acceptable on a machine where nothing else hands out ports).
pub fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("binding a free port")?;
    Ok(listener.local_addr()?.port())
}

pub fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// A binary next to this one (`target/release/<name>`), or in `dir` when given.
pub fn sibling_binary(dir: Option<&Path>, name: &str) -> Result<PathBuf> {
    let dir = match dir {
        Some(d) => d.to_path_buf(),
        None => std::env::current_exe()?.parent().context("current exe has no directory")?.to_path_buf(),
    };
    let path = dir.join(name);
    if !path.is_file() {
        bail!("{} is missing; build it first: cargo build --release -p iaas-gateway -p iaas-bench -p iaas-cli", path.display());
    }
    Ok(path)
}

/// A child process, killed when dropped; its stderr goes to `log`.
pub struct Proc {
    pub name: String,
    pub pid: u32,
    pub log: PathBuf,
    child: Child,
}

impl Proc {
    /// Spawns `bin` with exactly `env` (plus PATH), stdout discarded unless `piped_stdout`.
    pub fn spawn(name: &str, bin: &Path, args: &[&str], env: &[(&str, String)], log: PathBuf, piped_stdout: bool) -> Result<Proc> {
        let mut cmd = Command::new(bin);
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .stdin(Stdio::null())
            .stdout(if piped_stdout { Stdio::piped() } else { Stdio::null() })
            .stderr(Stdio::from(std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?))
            .kill_on_drop(true);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().with_context(|| format!("spawning {}", bin.display()))?;
        let pid = child.id().context("child has no pid")?;
        Ok(Proc { name: name.to_string(), pid, log, child })
    }

    pub fn child_mut(&mut self) -> &mut Child {
        &mut self.child
    }

    /// An error with the end of the child's log when it has exited.
    pub fn check_alive(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!("{} exited ({status}); log {}:\n{}", self.name, self.log.display(), log_tail(&self.log));
        }
        Ok(())
    }

    pub async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
    }
}

/// Drops a file's pages from the page cache, as on a fresh host or after the cache was
/// reclaimed: the next exec reads the binary from disk again (a cold start).
pub fn evict_from_page_cache(path: &Path) -> Result<()> {
    use std::os::fd::AsRawFd;
    let file = std::fs::File::open(path)?;
    // Pages still dirty (a binary just linked) cannot be dropped: write them back first.
    file.sync_all()?;
    // SAFETY: a valid open descriptor; the advice only affects caching.
    let rc = unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    if rc != 0 {
        bail!("posix_fadvise on {} failed ({rc})", path.display());
    }
    Ok(())
}

pub fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().rev().take(15).collect();
    lines.into_iter().rev().collect::<Vec<_>>().join("\n")
}

/// A `kB` field of `/proc/<pid>/status` (VmRSS, VmHWM, RssAnon…).
pub fn status_kb(pid: u32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines().find_map(|l| l.strip_prefix(field)?.strip_prefix(':')).and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// User + system CPU time of a whole process (all threads), in clock ticks.
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the `(comm)`; utime and stime are fields 14 and 15 of the whole line.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// Major page faults of a process so far (pages it had to wait for the disk for).
pub fn major_faults(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 1..];
    // majflt is field 12 of the whole line.
    rest.split_whitespace().nth(9)?.parse().ok()
}

/// Machine-wide CPU time from `/proc/stat`, in clock ticks summed over all cores.
#[derive(Debug, Clone, Copy, Default)]
pub struct SysCpu {
    /// user + nice + system: time charged to processes (ours and anyone else's).
    pub tasks: u64,
    /// irq + softirq (much of loopback TCP) + steal.
    pub other: u64,
    pub total: u64,
}

impl SysCpu {
    pub fn read() -> Option<SysCpu> {
        let text = std::fs::read_to_string("/proc/stat").ok()?;
        let line = text.lines().next()?.strip_prefix("cpu ")?;
        let v: Vec<u64> = line.split_whitespace().filter_map(|f| f.parse().ok()).collect();
        let at = |i: usize| v.get(i).copied().unwrap_or(0);
        // user nice system idle iowait irq softirq steal (guest time is already in user).
        Some(SysCpu { tasks: at(0) + at(1) + at(2), other: at(5) + at(6) + at(7), total: (0..8).map(at).sum() })
    }

    /// Share of the machine busy between `self` and a later reading.
    pub fn busy_until(&self, later: &SysCpu) -> f64 {
        let total = later.total.saturating_sub(self.total);
        if total == 0 {
            return f64::NAN;
        }
        (later.tasks + later.other).saturating_sub(self.tasks + self.other) as f64 / total as f64
    }
}

/// Waits (at most `max`) for the machine to be quiet — under 10 % busy over half a second —
/// so that other people's builds do not run during a measurement. Returns the last busy share.
pub async fn wait_quiet(max: Duration) -> f64 {
    let start = std::time::Instant::now();
    loop {
        let a = SysCpu::read();
        tokio::time::sleep(Duration::from_millis(500)).await;
        let busy = match (a, SysCpu::read()) {
            (Some(a), Some(b)) => a.busy_until(&b),
            _ => return f64::NAN,
        };
        if busy < 0.10 || start.elapsed() >= max {
            return busy;
        }
    }
}

pub fn clock_ticks_per_sec() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as u64
    } else {
        100
    }
}

/// One line describing the machine, for the report.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| t.lines().find_map(|l| l.strip_prefix("model name").map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())))
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mem_kb = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| l.strip_prefix("MemTotal:").map(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().unwrap_or(0)))
        })
        .unwrap_or(0);
    format!("{cores} cores ({cpu}), {} GiB RAM, Linux {}", mem_kb / 1024 / 1024, kernel.trim())
}
