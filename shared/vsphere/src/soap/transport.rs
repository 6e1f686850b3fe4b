//! One SOAP round trip over reqwest, and how HTTP-level failures become [`VcError`]s.

use std::time::Duration;

use reqwest::header::{HeaderMap, CONTENT_TYPE, COOKIE, SET_COOKIE};

use super::fault::{Error, Fault};
use super::xml::{self, Node};
use super::Core;
use crate::VcError;

/// vim25 namespace and version for SOAPAction. Pinned to 6.5: every vCenter from 6.5 to 8
/// serves it, and it keeps responses free of types this client never asked for.
const SOAP_ACTION: &str = "urn:vim25/6.5";
const SESSION_COOKIE: &str = "vmware_soap_session";

/// A successful response: the element inside `Body`, and the session cookie if one was set.
pub(crate) struct Reply {
    pub body: Node,
    pub cookie: Option<String>,
}

impl Core {
    /// Posts one envelope. SOAP faults come back as `Error::Fault`.
    pub(crate) async fn post(&self, envelope: String, cookie: Option<&str>) -> Result<Reply, Error> {
        self.post_within(envelope, cookie, None).await
    }

    /// [`Core::post`] with its own time-out instead of the configured one (a long poll). Every
    /// call is counted and timed by its vSphere method (`iaas_vcenter_*` metrics).
    pub(crate) async fn post_within(&self, envelope: String, cookie: Option<&str>, timeout: Option<Duration>) -> Result<Reply, Error> {
        let method = method_of(&envelope).to_string();
        let started = std::time::Instant::now();
        let result = self.round_trip(envelope, cookie, timeout).await;
        let outcome = match &result {
            Ok(_) => "ok",
            Err(Error::Fault(fault)) => {
                let kind = bounded(&fault.kind).to_string();
                metrics::counter!("iaas_vcenter_faults_total", "method" => method.clone(), "fault" => kind).increment(1);
                "fault"
            }
            Err(Error::Vc(VcError::Timeout { .. })) => "timeout",
            Err(Error::Vc(VcError::Unreachable { .. })) => "unreachable",
            Err(Error::Vc(_)) => "protocol",
        };
        metrics::histogram!("iaas_vcenter_call_duration_seconds", "method" => method.clone()).record(started.elapsed().as_secs_f64());
        metrics::counter!("iaas_vcenter_calls_total", "method" => method, "outcome" => outcome).increment(1);
        result
    }

    async fn round_trip(&self, envelope: String, cookie: Option<&str>, timeout: Option<Duration>) -> Result<Reply, Error> {
        let mut request =
            self.http.post(&self.cfg.url).header(CONTENT_TYPE, "text/xml; charset=utf-8").header("SOAPAction", SOAP_ACTION).body(envelope);
        if let Some(cookie) = cookie {
            request = request.header(COOKIE, cookie);
        }
        if let Some(timeout) = timeout {
            request = request.timeout(timeout);
        }
        let response = request.send().await.map_err(|e| self.transport_error(e))?;
        let status = response.status();
        let cookie = session_cookie(response.headers());
        let text = response.text().await.map_err(|e| self.transport_error(e))?;

        let body = match xml::parse_body(&text) {
            Ok(body) => body,
            // A proxy's error page or an empty 503 says more through its status than its body.
            Err(_) if !status.is_success() => return Err(VcError::Protocol(format!("HTTP {status}")).into()),
            Err(e) => return Err(e.into()),
        };
        if body.name == "Fault" {
            return Err(Fault::from_soap(&body).into());
        }
        if !status.is_success() {
            return Err(VcError::Protocol(format!("HTTP {status}")).into());
        }
        Ok(Reply { body, cookie })
    }

    fn transport_error(&self, e: reqwest::Error) -> Error {
        if e.is_timeout() {
            return VcError::Timeout { secs: self.timeout_secs() }.into();
        }
        // Only a failed connect proves nothing was sent; a request broken after that may have
        // reached vCenter, and is told as an answer that could not be read.
        if e.is_connect() {
            return VcError::Unreachable { detail: root_cause(&e) }.into();
        }
        VcError::Protocol(root_cause(&e)).into()
    }

    /// The configured timeout in whole seconds, rounded up so "0 s" is never shown.
    pub(crate) fn timeout_secs(&self) -> u64 {
        let ms = self.cfg.timeout.as_millis() as u64;
        ms.div_ceil(1000).max(1)
    }
}

/// The vSphere method an envelope calls: the first element inside `soapenv:Body`.
fn method_of(envelope: &str) -> &str {
    let Some((_, body)) = envelope.split_once("<soapenv:Body><") else { return "unknown" };
    bounded(body.split([' ', '>', '/']).next().unwrap_or_default())
}

/// A metric label from a name vCenter or the code spells: a plain identifier, else `other`.
fn bounded(name: &str) -> &str {
    if !name.is_empty() && name.len() <= 64 && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        name
    } else {
        "other"
    }
}

/// The innermost error message: "Connection refused (os error 111)", or rustls's
/// "invalid peer certificate: UnknownIssuer", rather than reqwest's generic wrapper.
fn root_cause(e: &reqwest::Error) -> String {
    let mut cause: &dyn std::error::Error = e;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
}

/// `vmware_soap_session=...` from Set-Cookie, as the `name=value` pair to send back verbatim
/// (real vCenter quotes the value; vcsim does not).
fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers.get_all(SET_COOKIE).iter().find_map(|value| {
        let pair = value.to_str().ok()?.split(';').next()?.trim();
        let (name, _) = pair.split_once('=')?;
        (name.trim() == SESSION_COOKIE).then(|| pair.to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn picks_the_session_cookie() {
        let mut headers = HeaderMap::new();
        headers.append(SET_COOKIE, HeaderValue::from_static("other=1; Path=/"));
        headers.append(SET_COOKIE, HeaderValue::from_static(r#"vmware_soap_session="52a1-f0"; Path=/; HttpOnly; Secure;"#));
        assert_eq!(session_cookie(&headers).as_deref(), Some(r#"vmware_soap_session="52a1-f0""#));
        assert_eq!(session_cookie(&HeaderMap::new()), None);
    }

    #[test]
    fn metric_labels_are_the_method_or_other() {
        let this = super::super::xml::MoRef::new("VirtualMachine", "vm-1");
        assert_eq!(method_of(&super::super::envelope::call("PowerOffVM_Task", &this, "")), "PowerOffVM_Task");
        assert_eq!(method_of("<not soap/>"), "unknown");
        assert_eq!(bounded("Invalid Power<State>"), "other");
        assert_eq!(bounded(&"x".repeat(65)), "other");
    }
}
