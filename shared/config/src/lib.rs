//! Settings from the environment and the policy file.
//!
//! Secrets come from `NAME`, `NAME_FILE`, or OpenFaaS's `/var/openfaas/secrets/<name>`, and are
//! wrapped in [`Secret`] so they never reach logs. A missing or malformed setting is a
//! [`ConfigError`] whose `Display` is one line saying which setting and how to fix it.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::{env, fmt, fs};

mod decommission;
mod dispatch;
mod policy;
mod text_enum;
pub use decommission::{DecommissionPlans, DecommissionPolicy, DecommissionState, DeleteMode, OnFailure, PlanStep, StepKind};
pub use dispatch::DispatchTarget;
pub use policy::{DatastoreChoice, LeaseAction, PlacementPolicy, Policy, ResponseType};
pub use policy::{ScaleLimits, ScaleOverride, ScalePolicy, StorageMovePolicy, WhenCold};
#[doc(hidden)]
pub use serde as __serde;
pub use text_enum::UnknownValue;

/// Where OpenFaaS mounts secrets; overridable so tests need no root.
const OPENFAAS_SECRETS_DIR: &str = "/var/openfaas/secrets";

#[derive(Debug, thiserror::Error)]
pub struct ConfigError {
    pub name: String,
    pub problem: String,
    /// What to do; empty when `problem` is already a sentence that says it.
    pub fix: String,
}

/// `NAME: problem. Fix.` on one line, with no doubled full stop when `problem` ends in one.
impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let problem = self.problem.trim().trim_end_matches('.');
        write!(f, "{}: {problem}.", self.name)?;
        if !self.fix.trim().is_empty() {
            write!(f, " {}", self.fix.trim())?;
        }
        Ok(())
    }
}

impl ConfigError {
    pub fn new(name: &str, problem: impl Into<String>, fix: impl Into<String>) -> Self {
        ConfigError { name: name.into(), problem: problem.into(), fix: fix.into() }
    }
}

/// A secret value. `Debug` and `Display` print `***`; only [`Secret::expose`] reveals it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// A non-empty environment variable.
pub fn var(name: &str) -> Option<String> {
    env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// A variable parsed with `FromStr`; `what` describes the expected form for the error line.
pub fn parse_var<T: FromStr>(name: &str, what: &str) -> Result<Option<T>, ConfigError> {
    match var(name) {
        None => Ok(None),
        Some(raw) => raw
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| ConfigError::new(name, format!("{raw:?} is not {what}"), format!("Set {name} to {what}."))),
    }
}

/// `true/false/1/0/yes/no`, case-insensitive.
pub fn bool_var(name: &str) -> Result<bool, ConfigError> {
    match var(name).map(|v| v.trim().to_ascii_lowercase()) {
        None => Ok(false),
        Some(v) if matches!(v.as_str(), "1" | "true" | "yes" | "on") => Ok(true),
        Some(v) if matches!(v.as_str(), "0" | "false" | "no" | "off") => Ok(false),
        Some(v) => Err(ConfigError::new(name, format!("{v:?} is not a boolean"), format!("Set {name} to true or false."))),
    }
}

/// A secret from `NAME`, else the file named by `NAME_FILE`, else OpenFaaS's secret mount
/// (`/var/openfaas/secrets/<name-lowercase-dashed>`). A trailing newline in a file is dropped.
pub fn secret(name: &str) -> Result<Option<Secret>, ConfigError> {
    secret_from(name, Path::new(OPENFAAS_SECRETS_DIR))
}

fn secret_from(name: &str, openfaas_dir: &Path) -> Result<Option<Secret>, ConfigError> {
    if let Some(v) = var(name) {
        return Ok(Some(Secret(v)));
    }
    let file_var = format!("{name}_FILE");
    if let Some(path) = var(&file_var) {
        return read_secret_file(&file_var, Path::new(&path)).map(Some);
    }
    let mounted = openfaas_dir.join(name.to_ascii_lowercase().replace('_', "-"));
    if mounted.is_file() {
        return read_secret_file(name, &mounted).map(Some);
    }
    Ok(None)
}

/// A secret that must be present.
pub fn required_secret(name: &str) -> Result<Secret, ConfigError> {
    secret(name)?.ok_or_else(|| ConfigError::new(name, "is not set", format!("Set {name}, or {name}_FILE to a file holding it.")))
}

fn read_secret_file(name: &str, path: &Path) -> Result<Secret, ConfigError> {
    let raw = fs::read_to_string(path)
        .map_err(|e| ConfigError::new(name, format!("cannot read {}: {e}", path.display()), "Check the path and its permissions."))?;
    let value = raw.trim_end_matches(['\r', '\n']).to_string();
    if value.is_empty() {
        return Err(ConfigError::new(name, format!("{} is empty", path.display()), "Put the secret in that file."));
    }
    Ok(Secret(value))
}

/// The policy file named by `IAAS_CONFIG`, or the built-in defaults.
pub fn load_policy() -> Result<(Policy, Option<PathBuf>), ConfigError> {
    match var("IAAS_CONFIG") {
        None => Ok((Policy::default(), None)),
        Some(path) => {
            let path = PathBuf::from(path);
            Ok((Policy::load(&path)?, Some(path)))
        }
    }
}

/// Where people open the web console (`IAAS_CONSOLE_URL`, without a trailing `/`), when set:
/// the gateway serves it there and decommission progress in Slack links to it.
pub fn console_url() -> Result<Option<String>, ConfigError> {
    let Some(raw) = var("IAAS_CONSOLE_URL") else { return Ok(None) };
    let url = raw.trim().trim_end_matches('/').to_string();
    let (scheme, rest) = url.split_once("://").unwrap_or(("", ""));
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if !matches!(scheme, "http" | "https") || host.is_empty() || host.contains('@') || rest.contains(['?', '#']) {
        return Err(ConfigError::new(
            "IAAS_CONSOLE_URL",
            format!("{url:?} is not an http(s) URL with a host"),
            "Use e.g. https://iaas.example.com.",
        ));
    }
    Ok(Some(url))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_never_prints() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?} {s}"), "*** ***");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn secret_sources_in_order() {
        let dir = std::env::temp_dir().join(format!("iaas-config-test-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("iaas-test-secret-a"), "from-openfaas\n").unwrap();
        // Mounted secret is found when neither NAME nor NAME_FILE is set.
        assert_eq!(secret_from("IAAS_TEST_SECRET_A", &dir).unwrap().unwrap().expose(), "from-openfaas");
        // NAME_FILE wins over the mount.
        let file = dir.join("file");
        fs::write(&file, "from-file\r\n").unwrap();
        env::set_var("IAAS_TEST_SECRET_A_FILE", &file);
        assert_eq!(secret_from("IAAS_TEST_SECRET_A", &dir).unwrap().unwrap().expose(), "from-file");
        // NAME wins over both.
        env::set_var("IAAS_TEST_SECRET_A", "from-env");
        assert_eq!(secret_from("IAAS_TEST_SECRET_A", &dir).unwrap().unwrap().expose(), "from-env");
        // Nothing set, nothing mounted.
        assert!(secret_from("IAAS_TEST_SECRET_NONE", &dir).unwrap().is_none());
        // An unreadable file is a one-line error naming the variable.
        env::set_var("IAAS_TEST_SECRET_B_FILE", dir.join("missing"));
        let err = secret_from("IAAS_TEST_SECRET_B", &dir).unwrap_err().to_string();
        assert!(err.starts_with("IAAS_TEST_SECRET_B_FILE: cannot read"), "{err}");
        assert!(!err.contains('\n'));
    }

    #[test]
    fn an_error_is_one_line_without_doubled_stops() {
        let e = ConfigError::new("DATABASE_URL", "Cannot open it. Check that PostgreSQL is running.", "");
        assert_eq!(e.to_string(), "DATABASE_URL: Cannot open it. Check that PostgreSQL is running.");
        let e = ConfigError::new("PORT", "\"x\" is not a port number", "Set PORT to 1-65535.");
        assert_eq!(e.to_string(), "PORT: \"x\" is not a port number. Set PORT to 1-65535.");
    }

    #[test]
    fn bool_and_parse_errors_name_the_setting() {
        env::set_var("IAAS_TEST_BOOL", "maybe");
        assert!(bool_var("IAAS_TEST_BOOL").unwrap_err().to_string().starts_with("IAAS_TEST_BOOL:"));
        env::set_var("IAAS_TEST_PORT", "eighty");
        let err = parse_var::<u16>("IAAS_TEST_PORT", "a port number").unwrap_err().to_string();
        assert_eq!(err, "IAAS_TEST_PORT: \"eighty\" is not a port number. Set IAAS_TEST_PORT to a port number.");
    }
}
