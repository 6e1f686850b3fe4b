//! Reading a decommission plan entry's own keys (kind, name and on_failure are the runner's):
//! unknown keys refused, typed values, the secret named by `secret_env`. Each step kind's
//! `from_settings` reads its keys with it, so the decommission function and `iaas doctor`
//! build a step from a plan entry the same way.

use std::time::Duration;

use iaas_config::Secret;

/// A plan entry's own keys (kind, name and on_failure are the runner's, not ours).
pub struct Settings<'a> {
    kind: &'static str,
    map: Option<&'a serde_json::Map<String, serde_json::Value>>,
}

const COMMON: [&str; 3] = ["kind", "name", "on_failure"];

impl<'a> Settings<'a> {
    /// Refuses keys the kind does not know, so a typo is not silently ignored.
    pub fn new(kind: &'static str, settings: &'a serde_json::Value, allowed: &[&str]) -> Result<Settings<'a>, String> {
        let map = settings.as_object();
        if let Some(extra) =
            map.into_iter().flat_map(|m| m.keys()).find(|k| !allowed.contains(&k.as_str()) && !COMMON.contains(&k.as_str()))
        {
            return Err(format!("The {kind} step has an unknown key {extra:?} (it knows {})", allowed.join(", ")));
        }
        Ok(Settings { kind, map })
    }

    fn get(&self, key: &str) -> Option<&'a serde_json::Value> {
        self.map.and_then(|m| m.get(key))
    }

    pub fn text(&self, key: &str) -> Result<Option<String>, String> {
        match self.get(key) {
            None => Ok(None),
            Some(serde_json::Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(serde_json::Value::String(s)) => Ok(Some(s.trim().to_string())),
            Some(_) => Err(format!("The {} step's {key} must be a string", self.kind)),
        }
    }

    pub fn required(&self, key: &str) -> Result<String, String> {
        self.text(key)?.ok_or_else(|| format!("The {} step needs a {key}", self.kind))
    }

    pub fn bool(&self, key: &str, default: bool) -> Result<bool, String> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v.as_bool().ok_or_else(|| format!("The {} step's {key} must be true or false", self.kind)),
        }
    }

    pub fn number(&self, key: &str, default: u64) -> Result<u64, String> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v.as_u64().ok_or_else(|| format!("The {} step's {key} must be a whole number", self.kind)),
        }
    }

    /// `timeout_secs`, at least 1.
    pub fn timeout(&self, default_secs: u64) -> Result<Duration, String> {
        match self.number("timeout_secs", default_secs)? {
            0 => Err(format!("The {} step's timeout_secs must be at least 1", self.kind)),
            n => Ok(Duration::from_secs(n)),
        }
    }

    pub fn statuses(&self, key: &str) -> Result<Option<Vec<u16>>, String> {
        let Some(v) = self.get(key) else { return Ok(None) };
        let bad = || format!("The {} step's {key} must be a list of HTTP status codes", self.kind);
        let list = v.as_array().ok_or_else(bad)?;
        list.iter()
            .map(|s| s.as_u64().filter(|n| (100..=599).contains(n)).map(|n| n as u16).ok_or_else(bad))
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    /// A table of strings (webhook headers), in key order.
    pub fn string_table(&self, key: &str) -> Result<Vec<(String, String)>, String> {
        let Some(v) = self.get(key) else { return Ok(Vec::new()) };
        let bad = || format!("The {} step's {key} must be a table of strings", self.kind);
        let table = v.as_object().ok_or_else(bad)?;
        table.iter().map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())).ok_or_else(bad)).collect()
    }

    /// The secret in the environment variable (or `<NAME>_FILE`, or the OpenFaaS secret
    /// mount) that `secret_env` names. The error names the variable, never the value.
    pub fn secret(&self, required: bool) -> Result<Option<Secret>, String> {
        let Some(var) = self.text("secret_env")? else {
            return if required {
                Err(format!("The {} step needs secret_env, the environment variable holding its secret", self.kind))
            } else {
                Ok(None)
            };
        };
        match iaas_config::secret(&var) {
            Ok(Some(s)) => Ok(Some(s)),
            Ok(None) => Err(format!("The {} step's secret {var} (or {var}_FILE) is not set", self.kind)),
            Err(e) => Err(format!("The {} step's secret {var} cannot be read: {e}", self.kind)),
        }
    }
}
