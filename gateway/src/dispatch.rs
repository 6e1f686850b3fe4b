//! Handing a signed invocation to its function, asynchronously. The gateway waits only for the
//! platform to *accept* the work (a queue, an event invoke, a spawned task), never for the work.
//!
//! - `local`: in-process task calling the function's router (the all-in-one `iaas serve`).
//! - `openfaas:<url>`: `POST <url>/async-function/<name>`; OpenFaaS queues it on NATS.
//! - `lambda[:<prefix>]`: `Invoke` with `InvocationType::Event`, the body wrapped as a
//!   function-URL event so the function's `lambda_http` adapter reads it like any HTTP request.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client as LegacyClient;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use iaas_invocation::{SignedBody, SIGNATURE_HEADER, TIMESTAMP_HEADER};

/// Bound on handing over one invocation, well inside Slack's 3 s for the ack.
pub const DISPATCH_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DispatchError(pub String);

/// Why a hand-over did not happen.
pub(crate) enum HandOver {
    /// The platform refused or could not be reached: the work will not run.
    Failed(DispatchError),
    /// No answer within [`DISPATCH_TIMEOUT`]: the work may or may not run.
    TimedOut,
}

/// Hands `signed` to `function` within [`DISPATCH_TIMEOUT`], counting failures
/// (`iaas_dispatch_failures_total`): the one way the gateway hands work over.
pub(crate) async fn hand_over(dispatcher: &dyn Dispatch, function: &'static str, signed: SignedBody) -> Result<(), HandOver> {
    let outcome = match tokio::time::timeout(DISPATCH_TIMEOUT, dispatcher.dispatch(function, signed)).await {
        Ok(Ok(())) => return Ok(()),
        Ok(Err(e)) => HandOver::Failed(e),
        Err(_) => HandOver::TimedOut,
    };
    let reason = match outcome {
        HandOver::Failed(_) => "failed",
        HandOver::TimedOut => "timeout",
    };
    metrics::counter!("iaas_dispatch_failures_total", "function" => function, "reason" => reason).increment(1);
    Err(outcome)
}

#[async_trait]
pub trait Dispatch: Send + Sync + 'static {
    /// Returns once the platform has accepted the invocation for `function` (e.g. `iaas-power`).
    async fn dispatch(&self, function: &str, signed: SignedBody) -> Result<(), DispatchError>;
    fn describe(&self) -> String;
}

/// Which backend `IAAS_DISPATCH` names (parsed in iaas-config, so `iaas doctor` reads it the same way).
pub use iaas_config::DispatchTarget;

/// Idle keep-alive connections kept to the OpenFaaS gateway. Enough for a burst of commands
/// to reuse its connections (each hand-over holds one for a round trip), bounded so a burst does
/// not leave hundreds of idle sockets behind; they close after [`POOL_IDLE_TIMEOUT`].
pub const POOL_MAX_IDLE: usize = 256;
pub const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// An OpenFaaS answer body read at most (it is a short text or empty; read so the connection
/// can be reused).
const MAX_ANSWER: usize = 64 * 1024;

/// OpenFaaS's asynchronous invocation: the gateway queues the request and answers 202.
///
/// This is on the ack path of every command, so it is kept lean: the target URL of each
/// function is built and checked once, redirects are never followed (a 3xx is a refusal), and
/// a plain-HTTP gateway (the usual in-cluster `http://gateway.openfaas:8080`) is called through
/// hyper's pooled client directly, without reqwest's per-request URL parsing and layers; an
/// `https://` gateway goes through reqwest (rustls).
pub struct OpenFaasDispatch {
    gateway: String,
    transport: Transport,
    /// `<gateway>/async-function/<function>` per function, built on first use. Function names
    /// come from the code (`Command::function`), never from a request, so this stays small.
    targets: RwLock<HashMap<String, Target>>,
}

enum Transport {
    // Boxed: the pooled client is large next to reqwest's handle.
    Plain(Box<LegacyClient<HttpConnector, Full<Bytes>>>),
    Tls(reqwest::Client),
}

#[derive(Clone)]
enum Target {
    Plain(http::Uri),
    Tls(reqwest::Url),
}

impl OpenFaasDispatch {
    pub fn new(gateway: String) -> Self {
        let gateway = gateway.trim_end_matches('/').to_string();
        let transport = if gateway.starts_with("http://") {
            let mut connector = HttpConnector::new();
            connector.set_nodelay(true);
            connector.set_connect_timeout(Some(DISPATCH_TIMEOUT));
            Transport::Plain(Box::new(
                LegacyClient::builder(TokioExecutor::new())
                    .pool_timer(TokioTimer::new())
                    .pool_idle_timeout(POOL_IDLE_TIMEOUT)
                    .pool_max_idle_per_host(POOL_MAX_IDLE)
                    .build(connector),
            ))
        } else {
            Transport::Tls(
                reqwest::Client::builder()
                    .timeout(DISPATCH_TIMEOUT)
                    .redirect(reqwest::redirect::Policy::none())
                    .pool_idle_timeout(POOL_IDLE_TIMEOUT)
                    .pool_max_idle_per_host(POOL_MAX_IDLE)
                    .build()
                    .unwrap_or_default(),
            )
        };
        OpenFaasDispatch { gateway, transport, targets: RwLock::default() }
    }

    fn target(&self, function: &str) -> Result<Target, DispatchError> {
        if let Some(t) = self.targets.read().unwrap_or_else(|e| e.into_inner()).get(function) {
            return Ok(t.clone());
        }
        let url = format!("{}/async-function/{function}", self.gateway);
        let bad = |e: &dyn std::fmt::Display| DispatchError(format!("{url} is not a usable OpenFaaS address ({e})"));
        let target = match self.transport {
            Transport::Plain(_) => Target::Plain(url.parse::<http::Uri>().map_err(|e| bad(&e))?),
            Transport::Tls(_) => Target::Tls(reqwest::Url::parse(&url).map_err(|e| bad(&e))?),
        };
        self.targets.write().unwrap_or_else(|e| e.into_inner()).insert(function.to_string(), target.clone());
        Ok(target)
    }

    fn unreachable(&self, reason: impl std::fmt::Display) -> DispatchError {
        DispatchError(format!("OpenFaaS at {} could not be reached ({reason})", self.gateway))
    }

    async fn send_plain(
        &self,
        client: &LegacyClient<HttpConnector, Full<Bytes>>,
        uri: http::Uri,
        signed: SignedBody,
    ) -> Result<http::StatusCode, DispatchError> {
        let mut request = http::Request::new(Full::new(signed.body));
        *request.method_mut() = http::Method::POST;
        *request.uri_mut() = uri;
        let headers = request.headers_mut();
        headers.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
        headers.insert(TIMESTAMP_HEADER, http::HeaderValue::from(signed.timestamp));
        headers.insert(
            SIGNATURE_HEADER,
            http::HeaderValue::from_maybe_shared(Bytes::from(signed.signature)).map_err(|e| DispatchError(e.to_string()))?,
        );
        let call = async {
            let response = client.request(request).await.map_err(|e| self.unreachable(error_chain(&e)))?;
            let status = response.status();
            // Read the (short) answer so the connection goes back to the pool.
            let _ = Limited::new(response.into_body(), MAX_ANSWER).collect().await;
            Ok(status)
        };
        tokio::time::timeout(DISPATCH_TIMEOUT, call).await.map_err(|_| self.unreachable("timed out"))?
    }

    async fn send_tls(&self, client: &reqwest::Client, url: reqwest::Url, signed: SignedBody) -> Result<http::StatusCode, DispatchError> {
        let resp = client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(TIMESTAMP_HEADER, signed.timestamp)
            .header(SIGNATURE_HEADER, signed.signature)
            .body(signed.body)
            .send()
            .await
            .map_err(|e| self.unreachable(without_url(&e)))?;
        Ok(resp.status())
    }
}

#[async_trait]
impl Dispatch for OpenFaasDispatch {
    async fn dispatch(&self, function: &str, signed: SignedBody) -> Result<(), DispatchError> {
        let status = match (&self.transport, self.target(function)?) {
            (Transport::Plain(client), Target::Plain(uri)) => self.send_plain(client, uri, signed).await?,
            (Transport::Tls(client), Target::Tls(url)) => self.send_tls(client, url, signed).await?,
            _ => return Err(DispatchError("internal error: dispatch target and transport differ".into())),
        };
        if status.is_success() {
            Ok(())
        } else {
            Err(DispatchError(format!("OpenFaaS answered {status} for {function}")))
        }
    }

    fn describe(&self) -> String {
        format!("OpenFaaS async at {}", self.gateway)
    }
}

/// An error and its causes on one line ("client error (Connect): tcp connect error: Connection refused").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    msg
}

fn without_url(e: &reqwest::Error) -> String {
    let mut msg = e.to_string();
    if let Some(url) = e.url() {
        msg = msg.replace(&format!(" ({url})"), "");
    }
    if e.is_timeout() {
        "timed out".into()
    } else {
        msg
    }
}

/// AWS Lambda asynchronous invoke: Lambda queues the event and answers 202.
pub struct LambdaDispatch {
    client: aws_sdk_lambda::Client,
    prefix: String,
}

impl LambdaDispatch {
    /// Credentials and region come from the usual AWS environment (the Lambda role in production).
    pub async fn from_env(prefix: String) -> Self {
        let config = aws_config::load_from_env().await;
        let timeouts = aws_config::timeout::TimeoutConfig::builder().operation_timeout(DISPATCH_TIMEOUT).build();
        let lambda_config = aws_sdk_lambda::config::Builder::from(&config).timeout_config(timeouts).build();
        LambdaDispatch { client: aws_sdk_lambda::Client::from_conf(lambda_config), prefix }
    }
}

#[async_trait]
impl Dispatch for LambdaDispatch {
    async fn dispatch(&self, function: &str, signed: SignedBody) -> Result<(), DispatchError> {
        let name = format!("{}{function}", self.prefix);
        let payload = function_url_event(&signed);
        self.client
            .invoke()
            .function_name(&name)
            .invocation_type(aws_sdk_lambda::types::InvocationType::Event)
            .payload(aws_sdk_lambda::primitives::Blob::new(payload))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| DispatchError(format!("Lambda would not take {name}: {}", aws_sdk_lambda::error::DisplayErrorContext(&e))))
    }

    fn describe(&self) -> String {
        format!("AWS Lambda event invoke (function prefix {:?})", self.prefix)
    }
}

/// A Lambda function URL event (payload format 2.0) carrying the signed invocation, so the
/// function's HTTP router handles it exactly like an OpenFaaS or local delivery.
pub fn function_url_event(signed: &SignedBody) -> Vec<u8> {
    let now = chrono::Utc::now();
    serde_json::to_vec(&serde_json::json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/",
        "rawQueryString": "",
        "headers": {
            "content-type": "application/json",
            TIMESTAMP_HEADER: signed.timestamp.to_string(),
            SIGNATURE_HEADER: signed.signature,
        },
        "requestContext": {
            "accountId": "anonymous",
            "apiId": "iaas-gateway",
            "domainName": "iaas-gateway.lambda-url.local",
            "domainPrefix": "iaas-gateway",
            "http": {"method": "POST", "path": "/", "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "iaas-gateway"},
            "requestId": uuid::Uuid::new_v4().to_string(),
            "routeKey": "$default",
            "stage": "$default",
            "time": now.format("%d/%b/%Y:%H:%M:%S %z").to_string(),
            "timeEpoch": now.timestamp_millis(),
        },
        "body": String::from_utf8_lossy(&signed.body),
        "isBase64Encoded": false,
    }))
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dispatch_setting_parses() {
        assert_eq!(DispatchTarget::parse("local").unwrap(), DispatchTarget::Local);
        assert_eq!(DispatchTarget::parse("lambda").unwrap(), DispatchTarget::Lambda { prefix: String::new() });
        assert_eq!(DispatchTarget::parse("lambda:prod-").unwrap(), DispatchTarget::Lambda { prefix: "prod-".into() });
        assert_eq!(
            DispatchTarget::parse("openfaas:http://gateway.openfaas:8080/").unwrap(),
            DispatchTarget::OpenFaas { gateway: "http://gateway.openfaas:8080".into() }
        );
        let err = DispatchTarget::parse("openfaas:gateway").unwrap_err().to_string();
        assert!(err.starts_with("IAAS_DISPATCH: \"openfaas:gateway\" is not a dispatch backend."), "{err}");
        assert!(DispatchTarget::parse("kafka").is_err());
    }
}
