//! vCenter work per command as the inventory grows (issue 12): `iaas serve` against vcsim
//! with 8, 1,000 and 10,000 VMs; SOAP calls and bytes (request + response bodies, counted by
//! the launcher) per command, cold (the first pass: login, the VM index's build) and warm;
//! then the index's build time and size, measured in this process on the same vcsim.
//!
//! `cargo build --release -p iaas-cli -p iaas-bench && target/release/index-bench > index-results.md`

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Parser;
use iaas_bench::vcenter::{self, CommandCalls};
use iaas_tests::vcsim::{Vcsim, VcsimOptions};
use iaas_vsphere::soap::SoapClient;
use iaas_vsphere::Vcenter;

/// `{pass}` is the pass number: each pass creates a VM of its own name.
const COMMANDS: &[&str] =
    &["vm info app-web-01", "power off app-web-01", "power on app-web-01", "vm list app-web-*", "create idx-new-{pass}"];

/// The policy `iaas serve` runs with: what `create` needs (the lifecycle e2e test's, a template
/// pattern, the bot's folder, a lease), nothing else.
const POLICY: &str = r#"
[templates]
allowed = ["tmpl-ubuntu-*"]

[placement]
folder = "iaas"

[lease]
default_days = 30
max_days = 60
"#;

#[derive(Parser)]
struct Args {
    /// Total VMs and templates in vcsim per run (the 8 of the seed, then `bench-vm-NNN`).
    #[arg(long, value_delimiter = ',', default_value = "8,1000,10000")]
    sizes: Vec<usize>,
    /// Passes over the commands; the first is cold.
    #[arg(long, default_value_t = 2)]
    passes: usize,
    /// The `iaas` binary (release by default).
    #[arg(long, default_value = "target/release/iaas")]
    iaas: PathBuf,
}

struct Run {
    size: usize,
    start_secs: f64,
    commands: Vec<CommandCalls>,
    build_ms: f64,
    entries: usize,
    approx_bytes: usize,
    rss_delta: Option<i64>,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    if !args.iaas.exists() {
        bail!("{} not found; build it first (see the command at the top of this file)", args.iaas.display());
    }
    let workdir = std::env::temp_dir().join(format!("iaas-index-bench-{}", std::process::id()));
    std::fs::create_dir_all(&workdir)?;
    let mut runs = Vec::new();
    for &size in &args.sizes {
        let extra = size.saturating_sub(8);
        eprintln!("index-bench: {size} VMs: starting vcsim");
        let started = Instant::now();
        let vcsim = Vcsim::start_with(VcsimOptions { extra_vms: extra, ..VcsimOptions::default() }).await.context("starting vcsim")?;
        let start_secs = started.elapsed().as_secs_f64();
        let dir = workdir.join(size.to_string());
        std::fs::create_dir_all(&dir)?;
        let policy = dir.join("policy.toml");
        std::fs::write(&policy, POLICY)?;
        let env = [("IAAS_CONFIG", policy.display().to_string())];
        let report = vcenter::measure_on(&vcsim, &args.iaas, &dir, args.passes, COMMANDS, &env).await?;
        eprintln!("index-bench: {size} VMs: index in process");
        let (build_ms, entries, approx_bytes, rss_delta) = index_in_process(&vcsim).await?;
        runs.push(Run { size, start_secs, commands: report.commands, build_ms, entries, approx_bytes, rss_delta });
    }
    let _ = std::fs::remove_dir_all(&workdir);
    print!("{}", report(&runs));
    Ok(())
}

/// Builds an index with a client of this process: time to the first answer that needs it,
/// the index's own figures, and VmRSS before and after.
async fn index_in_process(vcsim: &Vcsim) -> Result<(f64, usize, usize, Option<i64>)> {
    let vc = SoapClient::new(vcsim.config())?;
    // Logged in, service content and the view read: only the index is left to make.
    vc.list_templates().await?;
    let before = rss_kb();
    let started = Instant::now();
    vc.vm_names().await?;
    let build_ms = started.elapsed().as_secs_f64() * 1000.0;
    let after = rss_kb();
    let stats = vc.index_stats().context("no index after vm_names")?;
    vc.logout().await;
    Ok((build_ms, stats.entries, stats.approx_bytes, before.zip(after).map(|(b, a)| a - b)))
}

fn rss_kb() -> Option<i64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find_map(|l| l.strip_prefix("VmRSS:")).and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

fn by_method(m: &BTreeMap<String, u64>) -> String {
    m.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", ")
}

fn kb(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / 1000.0)
}

fn report(runs: &[Run]) -> String {
    let mut out = String::new();
    out.push_str("| VMs | pass | command | calls | KB (req + resp) | calls by method | KB by method | ms to answer |\n");
    out.push_str("|---:|---:|---|---:|---:|---|---|---:|\n");
    for run in runs {
        for c in &run.commands {
            let kb_by: BTreeMap<String, u64> = c.bytes.clone();
            out.push_str(&format!(
                "| {} | {} | `{}` | {} | {} | {} | {} | {:.0} |\n",
                run.size,
                c.pass,
                c.text,
                c.total(),
                kb(c.total_bytes()),
                by_method(&c.calls),
                kb_by.iter().map(|(k, v)| format!("{k} {}", kb(*v))).collect::<Vec<_>>().join(", "),
                c.answer_ms
            ));
        }
    }
    out.push_str("\n| VMs | vcsim start s | index build ms (in process) | entries | index heap, approx. | VmRSS change while building |\n");
    out.push_str("|---:|---:|---:|---:|---:|---:|\n");
    for run in runs {
        out.push_str(&format!(
            "| {} | {:.1} | {:.0} | {} | {:.0} KB | {} |\n",
            run.size,
            run.start_secs,
            run.build_ms,
            run.entries,
            run.approx_bytes as f64 / 1000.0,
            run.rss_delta.map_or("n/a".into(), |d| format!("{d} kB"))
        ));
    }
    // Warm goal: bytes per command at the largest size within 2x of the smallest.
    let (Some(small), Some(large)) = (runs.first(), runs.last()) else { return out };
    out.push_str(&format!(
        "\n| command (warm, last pass) | KB at {} VMs | KB at {} VMs | ratio |\n|---|---:|---:|---:|\n",
        small.size, large.size
    ));
    let last = |run: &Run, text: &str| run.commands.iter().rev().find(|c| c.text == text).map(|c| c.total_bytes());
    let passes = runs.iter().flat_map(|r| r.commands.iter().map(|c| c.pass)).max().unwrap_or(1);
    for text in COMMANDS {
        let text = vcenter::command_text(text, passes);
        if let (Some(a), Some(b)) = (last(small, &text), last(large, &text)) {
            out.push_str(&format!("| `{text}` | {} | {} | {:.2}× |\n", kb(a), kb(b), b as f64 / a.max(1) as f64));
        }
    }
    out
}
