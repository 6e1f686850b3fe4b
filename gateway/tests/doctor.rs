//! `/iaas doctor` at a deployed gateway (OpenFaaS dispatch): acked at once, the checks posted
//! to the response_url, ephemeral: the gateway's own peers checked (here the OpenFaaS stand-in,
//! answering OpenFaaS's documented shapes), vCenter, DNS, webhooks and VEBA's credentials
//! skipped with where to check them, and no secret in the answer.

mod common;

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::Path;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use common::{NOW, SHARED, SIGNING};
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use iaas_config::DispatchTarget;
use iaas_gateway::{router, Gateway, OpenFaasDispatch};
use iaas_slack::{Message, Responder, SlashCommand};
use tower::ServiceExt;

/// OpenFaaS: `/healthz`, and `/system/function/<name>`: 200 with the function, 404 for iaas-expire.
async fn openfaas() -> String {
    let app = axum::Router::new().route("/healthz", get(|| async { "OK" })).route(
        "/system/function/{name}",
        get(|Path(name): Path<String>| async move {
            if name == "iaas-expire" {
                return (StatusCode::NOT_FOUND, "function not found").into_response();
            }
            axum::Json(serde_json::json!({"name": name, "image": "ghcr.io/x/y", "replicas": 1, "availableReplicas": 1})).into_response()
        }),
    );
    iaas_tests::serve(app).await
}

#[tokio::test]
async fn a_deployed_gateway_checks_its_own_peers_and_says_where_to_check_the_rest() {
    let faas = openfaas().await;
    let answers: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
    let slack = iaas_tests::serve(axum::Router::new().route(
        "/commands/{team}/{n}/{secret}",
        post({
            let answers = answers.clone();
            move |axum::Json(body): axum::Json<serde_json::Value>| async move {
                answers.lock().unwrap().push(body);
                "ok"
            }
        }),
    ))
    .await;
    let gw = Arc::new(Gateway {
        responder: Responder::new(Some(&format!("{slack}/api"))),
        doctor: iaas_doctor::Options {
            scope: iaas_doctor::Scope::Gateway,
            user: None,
            dispatch: Some(DispatchTarget::OpenFaas { gateway: faas.clone() }),
        },
        ..common::gateway(Arc::new(OpenFaasDispatch::new(faas)))
    });
    let form = SlashCommand {
        team_id: "T1".into(),
        channel_id: "C1".into(),
        user_id: "U1".into(),
        user_name: "ann".into(),
        command: "/iaas".into(),
        text: "doctor".into(),
        response_url: format!("{slack}/commands/T1/1/abc"),
        ..Default::default()
    }
    .to_form();
    let request = Request::post("/slack/commands")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-slack-request-timestamp", NOW.to_string())
        .header("x-slack-signature", iaas_slack::sign(SIGNING.as_bytes(), NOW, form.as_bytes()))
        .body(Body::from(form))
        .unwrap();
    let response = router(gw).oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let request_id =
        response.headers().get(iaas_gateway::REQUEST_ID_HEADER).expect("the ack carries the request id").to_str().unwrap().to_string();
    let ack: Message = serde_json::from_slice(&response.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert!(ack.text.contains("Accepted `doctor`"), "{}", ack.text);

    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    let answer = loop {
        if let Some(a) = answers.lock().unwrap().first().cloned() {
            break a;
        }
        assert!(tokio::time::Instant::now() < deadline, "no answer on the response_url");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(answer["response_type"], "ephemeral");
    let short = format!("request {}", iaas_invocation::short_id(&request_id));
    assert!(answer.to_string().contains(&short), "the answer carries the ack's request id ({short}): {answer}");
    let text = answer.to_string();
    for expected in [
        "*vcenter* vCenter is checked where the functions run: `iaas doctor` with their settings",
        "*dns* DNS is checked where the functions run",
        "iaas-power is deployed on OpenFaaS (1 replica(s) available)",
        "iaas-expire is not deployed on OpenFaaS",
        "faas-cli deploy",
    ] {
        assert!(text.contains(expected), "the answer does not say {expected:?}: {text}");
    }
    assert!(!text.contains(SIGNING) && !text.contains(SHARED), "a secret in the answer: {text}");
}
