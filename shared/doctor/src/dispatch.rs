//! Dispatch: where the gateway hands commands. Local (`iaas serve`): every function is in
//! the process. OpenFaaS: the gateway answers `/healthz` and each function is deployed
//! (`GET /system/function/<name>`, OpenFaaS's documented API: 200 with the function, 404 when
//! it is not deployed). Lambda: `GetFunction` per function.

use std::time::Duration;

use iaas_config::DispatchTarget;
use iaas_invocation::commands::GATEWAY;
use iaas_invocation::COMMANDS;

use crate::Check;

const PEER: &str = "dispatch";
const TIMEOUT: Duration = Duration::from_secs(5);

/// The functions the gateway dispatches to, by name (the gateway itself left out).
pub fn deployed_functions() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = COMMANDS.iter().map(|s| s.function).filter(|f| *f != GATEWAY).collect();
    names.sort_unstable();
    names.dedup();
    names
}

pub(crate) async fn checks(target: Option<DispatchTarget>) -> Vec<Check> {
    let target = match target {
        Some(t) => t,
        None => match iaas_config::var("IAAS_DISPATCH") {
            None => DispatchTarget::Local,
            Some(raw) => match DispatchTarget::parse(raw.trim()) {
                Ok(t) => t,
                Err(e) => return vec![Check::config(PEER, e)],
            },
        },
    };
    match target {
        DispatchTarget::Local => {
            vec![Check::ok(PEER, "local: `iaas serve` runs every function in its own process, nothing to reach")]
        }
        DispatchTarget::OpenFaas { gateway } => {
            let password = match iaas_config::secret("IAAS_OPENFAAS_PASSWORD") {
                Ok(p) => p,
                Err(e) => return vec![Check::config(PEER, e)],
            };
            let user = iaas_config::var("IAAS_OPENFAAS_USER").unwrap_or_else(|| "admin".into());
            openfaas_functions(&gateway, &deployed_functions(), password.map(|p| (user, p.expose().to_string()))).await
        }
        DispatchTarget::Lambda { prefix } => lambda(&prefix).await,
    }
}

/// The OpenFaaS gateway at `gateway` answers, and each of `functions` is deployed there.
/// `credentials` (user, password) are sent to the `/system` API when given.
pub async fn openfaas_functions(gateway: &str, functions: &[&str], credentials: Option<(String, String)>) -> Vec<Check> {
    let gateway = gateway.trim_end_matches('/');
    let client = match reqwest::Client::builder().timeout(TIMEOUT).redirect(reqwest::redirect::Policy::none()).build() {
        Ok(c) => c,
        Err(_) => return vec![Check::fail(PEER, "no HTTP client could be set up", "")],
    };
    let host = reqwest::Url::parse(gateway).ok().and_then(|u| u.host_str().map(str::to_string)).unwrap_or_else(|| gateway.to_string());
    match client.get(format!("{gateway}/healthz")).send().await {
        Ok(r) if r.status().is_success() => {}
        Ok(r) => {
            return vec![Check::fail(
                PEER,
                format!("the OpenFaaS gateway {host} answered {} to /healthz", r.status()),
                "Check that IAAS_DISPATCH names the OpenFaaS gateway and that it is healthy.",
            )]
        }
        Err(e) => {
            let why = if e.is_timeout() { "did not answer in time" } else { "could not be reached" };
            return vec![Check::fail(
                PEER,
                format!("the OpenFaaS gateway {host} {why}"),
                "Check IAAS_DISPATCH's URL and the network from the gateway to OpenFaaS.",
            )];
        }
    }
    let mut out = vec![Check::ok(PEER, format!("the OpenFaaS gateway {host} is healthy"))];
    for name in functions {
        let mut request = client.get(format!("{gateway}/system/function/{name}"));
        if let Some((user, password)) = &credentials {
            request = request.basic_auth(user, Some(password));
        }
        let check = match request.send().await {
            Ok(r) if r.status().is_success() => {
                let body: serde_json::Value = r.json().await.unwrap_or_default();
                match body["availableReplicas"].as_u64() {
                    Some(0) => Check::fail(
                        PEER,
                        format!("{name} is deployed on OpenFaaS but has no replica available"),
                        format!("Check `faas-cli describe {name}` and its pods' logs."),
                    ),
                    Some(n) => Check::ok(PEER, format!("{name} is deployed on OpenFaaS ({n} replica(s) available)")),
                    None => Check::ok(PEER, format!("{name} is deployed on OpenFaaS")),
                }
            }
            Ok(r) if r.status() == reqwest::StatusCode::NOT_FOUND => Check::fail(
                PEER,
                format!("{name} is not deployed on OpenFaaS"),
                format!("Deploy it: `faas-cli deploy -f deploy/openfaas/stack.yml --filter {name}`."),
            ),
            Ok(r) if r.status() == reqwest::StatusCode::UNAUTHORIZED => {
                out.push(Check::fail(
                    PEER,
                    format!("the OpenFaaS gateway {host} wants credentials to say which functions are deployed"),
                    "Set IAAS_OPENFAAS_PASSWORD (and IAAS_OPENFAAS_USER unless it is admin) to the gateway's basic-auth credentials.",
                ));
                return out;
            }
            Ok(r) => Check::fail(PEER, format!("asking OpenFaaS about {name} got {}", r.status()), ""),
            Err(_) => Check::fail(PEER, format!("asking OpenFaaS about {name} got no answer"), "Check the OpenFaaS gateway."),
        };
        out.push(check);
    }
    out
}

/// `GetFunction` for each function, with the AWS settings the gateway's dispatcher uses
/// (the usual AWS environment).
async fn lambda(prefix: &str) -> Vec<Check> {
    let config = aws_config::load_from_env().await;
    let timeouts = aws_config::timeout::TimeoutConfig::builder().operation_timeout(TIMEOUT).build();
    let client = aws_sdk_lambda::Client::from_conf(aws_sdk_lambda::config::Builder::from(&config).timeout_config(timeouts).build());
    lambda_functions(&client, prefix, &deployed_functions()).await
}

/// `GetFunction` for `<prefix><function>`, one line each.
pub async fn lambda_functions(client: &aws_sdk_lambda::Client, prefix: &str, functions: &[&str]) -> Vec<Check> {
    let mut out = Vec::new();
    for function in functions {
        let name = format!("{prefix}{function}");
        out.push(match client.get_function().function_name(&name).send().await {
            Ok(found) => {
                let state = found.configuration().and_then(|c| c.state()).map(|s| s.as_str().to_string());
                match state.as_deref() {
                    None | Some("Active") => Check::ok(PEER, format!("{name} is deployed on Lambda")),
                    Some(state) => {
                        Check::fail(PEER, format!("{name} is deployed on Lambda but {state}"), "Check the function in the Lambda console.")
                    }
                }
            }
            Err(e) => match e.as_service_error() {
                Some(s) if s.is_resource_not_found_exception() => Check::fail(
                    PEER,
                    format!("{name} is not deployed on Lambda"),
                    "Deploy it (deploy/lambda/template.yaml), or fix IAAS_DISPATCH's prefix.",
                ),
                Some(s) => {
                    use aws_sdk_lambda::error::ProvideErrorMetadata;
                    let code = s.code().unwrap_or("an error");
                    Check::fail(
                        PEER,
                        format!("Lambda answered {code} when asked about {name}"),
                        "Check that the gateway's role may call lambda:GetFunction and lambda:InvokeFunction on it.",
                    )
                }
                None => Check::fail(
                    PEER,
                    format!("Lambda could not be asked about {name} (no answer, or no AWS credentials or region)"),
                    "Check AWS_REGION and the credentials in the environment.",
                ),
            },
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use axum::routing::get;

    use super::*;

    /// OpenFaaS's documented answers: 200 with the function's JSON, 404 when not deployed.
    async fn openfaas(deployed: &'static [&'static str]) -> String {
        let app = axum::Router::new().route("/healthz", get(|| async { "OK" })).route(
            "/system/function/{name}",
            get(move |axum::extract::Path(name): axum::extract::Path<String>| async move {
                if deployed.contains(&name.as_str()) {
                    axum::Json(serde_json::json!({"name": name, "image": "x", "replicas": 1, "availableReplicas": 1})).into_response()
                } else {
                    (axum::http::StatusCode::NOT_FOUND, "function not found").into_response()
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        url
    }

    use axum::response::IntoResponse;

    #[tokio::test]
    async fn openfaas_names_the_function_that_is_not_deployed() {
        let url = openfaas(&["iaas-power"]).await;
        let checks = openfaas_functions(&url, &["iaas-power", "iaas-create"], None).await;
        assert_eq!(checks.len(), 3, "{checks:?}");
        assert_eq!(checks[1].verdict, crate::Verdict::Ok, "{checks:?}");
        assert!(checks[1].detail.contains("iaas-power is deployed"), "{checks:?}");
        assert_eq!(checks[2].verdict, crate::Verdict::Fail);
        assert!(checks[2].detail.contains("iaas-create is not deployed") && checks[2].fix.contains("faas-cli deploy"), "{checks:?}");
    }

    /// OpenFaaS's `/system` API behind basic auth: 401 without credentials is one line that
    /// says which settings to set; with them the functions are listed.
    #[tokio::test]
    async fn openfaas_basic_auth_is_asked_for_and_used() {
        let app = axum::Router::new().route("/healthz", get(|| async { "OK" })).route(
            "/system/function/{name}",
            get(|headers: axum::http::HeaderMap, axum::extract::Path(name): axum::extract::Path<String>| async move {
                // admin:pw
                if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some("Basic YWRtaW46cHc=") {
                    return axum::http::StatusCode::UNAUTHORIZED.into_response();
                }
                axum::Json(serde_json::json!({"name": name, "availableReplicas": 2})).into_response()
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });

        let checks = openfaas_functions(&url, &["iaas-power", "iaas-create"], None).await;
        assert_eq!(checks.len(), 2, "one line for the refusal, not one per function: {checks:?}");
        assert!(checks[1].verdict == crate::Verdict::Fail && checks[1].fix.contains("IAAS_OPENFAAS_PASSWORD"), "{checks:?}");
        let checks = openfaas_functions(&url, &["iaas-power"], Some(("admin".into(), "pw".into()))).await;
        assert!(checks.iter().all(|c| c.verdict == crate::Verdict::Ok), "{checks:?}");
        assert!(checks[1].detail.contains("2 replica(s)"), "{checks:?}");
    }

    #[tokio::test]
    async fn an_openfaas_gateway_that_does_not_answer_is_one_line() {
        let checks = openfaas_functions("http://127.0.0.1:1", &["iaas-power"], None).await;
        assert_eq!(checks.len(), 1);
        assert!(checks[0].verdict == crate::Verdict::Fail && checks[0].detail.contains("could not be reached"), "{checks:?}");
    }

    /// Lambda's documented REST shapes for GetFunction (`GET /2015-03-31/functions/<name>`):
    /// 200 with `Configuration`, 404 with `x-amzn-errortype: ResourceNotFoundException`.
    #[tokio::test]
    async fn lambda_names_the_function_that_is_not_deployed() {
        let app = axum::Router::new().route(
            "/2015-03-31/functions/{name}",
            get(|axum::extract::Path(name): axum::extract::Path<String>| async move {
                if name == "prod-iaas-power" {
                    axum::Json(serde_json::json!({"Configuration": {"FunctionName": name, "State": "Active"}})).into_response()
                } else {
                    let body = serde_json::json!({"Type": "User", "message": format!("Function not found: {name}")});
                    (axum::http::StatusCode::NOT_FOUND, [("x-amzn-errortype", "ResourceNotFoundException")], axum::Json(body))
                        .into_response()
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        let config = aws_sdk_lambda::Config::builder()
            .behavior_version(aws_sdk_lambda::config::BehaviorVersion::latest())
            .region(aws_sdk_lambda::config::Region::new("eu-west-1"))
            .credentials_provider(aws_sdk_lambda::config::Credentials::new("AKIDTEST", "test", None, None, "test"))
            .endpoint_url(url)
            .build();
        let client = aws_sdk_lambda::Client::from_conf(config);
        let checks = lambda_functions(&client, "prod-", &["iaas-power", "iaas-create"]).await;
        assert_eq!(checks[0].verdict, crate::Verdict::Ok, "{checks:?}");
        assert!(
            checks[1].verdict == crate::Verdict::Fail && checks[1].detail == "prod-iaas-create is not deployed on Lambda",
            "{checks:?}"
        );
    }

    #[test]
    fn the_gateway_is_not_a_function_to_deploy() {
        let names = deployed_functions();
        assert!(names.contains(&"iaas-power") && !names.contains(&GATEWAY), "{names:?}");
    }
}
