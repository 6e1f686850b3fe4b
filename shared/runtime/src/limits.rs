//! How long a client may take and how many may be connected at once, on every HTTP listener
//! (`/slack/*`, `/api/*`, `/function/*`). Read once at start-up from `IAAS_HTTP_*`; a bad value
//! stops start-up.

use std::time::Duration;

/// The limits of one listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// From the moment the server waits for a request to its last header byte. It is also the
    /// keep-alive idle time: hyper starts the clock as soon as a connection waits for its next
    /// request, so an idle connection and a half-sent header are closed alike.
    pub header_timeout: Duration,
    /// The whole body, however slowly it trickles in.
    pub body_timeout: Duration,
    /// The whole request, handler included: above the longest synchronous function run
    /// (OpenFaaS `exec_timeout` 15m for create/clone, Lambda's 900 s).
    pub request_timeout: Duration,
    /// Connections held at once; beyond it new ones get a 503 and are closed. Lowered further
    /// to fit the open-files limit, so the listener never runs out of file descriptors.
    pub max_connections: usize,
    /// The largest body read; larger ones get a 413.
    pub max_body: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(960),
            max_connections: 512,
            max_body: 2 * 1024 * 1024,
        }
    }
}

impl HttpLimits {
    /// The defaults, overridden by `IAAS_HTTP_HEADER_TIMEOUT_SECS`, `IAAS_HTTP_BODY_TIMEOUT_SECS`,
    /// `IAAS_HTTP_REQUEST_TIMEOUT_SECS` and `IAAS_HTTP_MAX_CONNECTIONS`.
    pub fn from_env() -> Result<HttpLimits, String> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<HttpLimits, String> {
        let d = HttpLimits::default();
        let secs = |name: &str, default: Duration| -> Result<Duration, String> {
            match var(name) {
                None => Ok(default),
                Some(v) => match v.trim().parse::<u64>() {
                    Ok(n) if (1..=86_400).contains(&n) => Ok(Duration::from_secs(n)),
                    _ => {
                        Err(format!("{name}: {v:?} is not a number of seconds. Set it to 1-86400, or unset it for {}.", default.as_secs()))
                    }
                },
            }
        };
        let max_connections = match var("IAAS_HTTP_MAX_CONNECTIONS") {
            None => d.max_connections,
            Some(v) => match v.trim().parse::<usize>() {
                Ok(n) if (1..=1_000_000).contains(&n) => n,
                _ => {
                    return Err(format!(
                        "IAAS_HTTP_MAX_CONNECTIONS: {v:?} is not a connection count. Set it to 1-1000000, or unset it for {}.",
                        d.max_connections
                    ))
                }
            },
        };
        Ok(HttpLimits {
            header_timeout: secs("IAAS_HTTP_HEADER_TIMEOUT_SECS", d.header_timeout)?,
            body_timeout: secs("IAAS_HTTP_BODY_TIMEOUT_SECS", d.body_timeout)?,
            request_timeout: secs("IAAS_HTTP_REQUEST_TIMEOUT_SECS", d.request_timeout)?,
            max_connections,
            max_body: d.max_body,
        })
    }

    /// `max_connections`, lowered so the connections, the shed answers and the process's own
    /// files (store, vCenter, Slack) fit under the open-files limit.
    pub fn connection_cap(&self) -> usize {
        match open_files_limit() {
            Some(limit) => self.max_connections.min(limit.saturating_sub((limit / 4).max(64) + crate::server::SHEDDING).max(1)),
            None => self.max_connections,
        }
    }
}

/// The soft `RLIMIT_NOFILE`, when there is one.
pub fn open_files_limit() -> Option<usize> {
    let mut rlim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes only into the struct we pass.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rlim) } == 0;
    (ok && rlim.rlim_cur != libc::RLIM_INFINITY).then(|| usize::try_from(rlim.rlim_cur).unwrap_or(usize::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(pairs: &[(&str, &str)]) -> Result<HttpLimits, String> {
        HttpLimits::from_lookup(|name| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string()))
    }

    #[test]
    fn defaults_and_overrides() {
        assert_eq!(with(&[]).unwrap(), HttpLimits::default());
        let l = with(&[("IAAS_HTTP_HEADER_TIMEOUT_SECS", "3"), ("IAAS_HTTP_MAX_CONNECTIONS", "40")]).unwrap();
        assert_eq!((l.header_timeout, l.max_connections), (Duration::from_secs(3), 40));
    }

    #[test]
    fn a_bad_value_is_one_sentence_naming_the_setting() {
        for (name, value) in [
            ("IAAS_HTTP_HEADER_TIMEOUT_SECS", "ten"),
            ("IAAS_HTTP_BODY_TIMEOUT_SECS", "0"),
            ("IAAS_HTTP_REQUEST_TIMEOUT_SECS", "-5"),
            ("IAAS_HTTP_MAX_CONNECTIONS", "0"),
        ] {
            let e = with(&[(name, value)]).unwrap_err();
            assert!(e.starts_with(name) && !e.contains('\n'), "{e}");
        }
    }
}
