//! Local mode: without a Slack app, `iaas serve` generates a signing secret and keeps it where
//! `iaas slash` on the same machine finds it.

use std::path::PathBuf;

use anyhow::Context as _;
use iaas_config::Secret;

/// Where `iaas serve` listens without `--listen` or `PORT`, and so where `iaas slash` calls.
pub const DEFAULT_PORT: u16 = 3000;

/// The address `iaas serve` listens on without `--listen`: loopback on `$PORT`, else 3000.
pub fn default_gateway() -> String {
    let port = iaas_config::var("PORT").and_then(|p| p.trim().parse::<u16>().ok()).unwrap_or(DEFAULT_PORT);
    format!("http://127.0.0.1:{port}")
}

/// `$IAAS_STATE_DIR`, else `$XDG_STATE_HOME/iaas`, else `~/.local/state/iaas`.
pub fn state_dir() -> PathBuf {
    if let Some(dir) = iaas_config::var("IAAS_STATE_DIR") {
        return PathBuf::from(dir);
    }
    let base = iaas_config::var("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| iaas_config::var("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("iaas")
}

pub fn signing_secret_path() -> PathBuf {
    state_dir().join("slack-signing-secret")
}

/// The local signing secret, created (mode 0600) on first use.
pub fn local_signing_secret() -> anyhow::Result<Secret> {
    let path = signing_secret_path();
    if let Ok(existing) = std::fs::read_to_string(&path) {
        if !existing.trim().is_empty() {
            return Ok(Secret::new(existing.trim()));
        }
    }
    std::fs::create_dir_all(state_dir()).with_context(|| format!("cannot create {}", state_dir().display()))?;
    let secret = random_hex();
    write_private(&path, &secret).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(Secret::new(secret))
}

/// The signing secret `iaas slash` signs with: `SLACK_SIGNING_SECRET`, else the local one.
pub fn signing_secret_for_client() -> anyhow::Result<Secret> {
    if let Some(s) = iaas_config::secret("SLACK_SIGNING_SECRET")? {
        return Ok(s);
    }
    let path = signing_secret_path();
    let value = std::fs::read_to_string(&path).with_context(|| {
        format!("no SLACK_SIGNING_SECRET and no local secret at {} — start `iaas serve` first, or set SLACK_SIGNING_SECRET", path.display())
    })?;
    Ok(Secret::new(value.trim()))
}

/// 256 random bits as hex (uuid v4 draws from the OS generator).
pub fn random_hex() -> String {
    format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple())
}

fn write_private(path: &std::path::Path, value: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(value.as_bytes())
}
