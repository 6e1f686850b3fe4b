//! The REST API in process, with an in-memory store and a dispatcher that stands in for
//! iaas-decommission (it records the request the way the function does). The end-to-end run
//! against vcsim and OpenLDAP is cli/tests/api_e2e.rs.

mod common;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use axum::body::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use iaas_config::Policy;
use iaas_gateway::api::{served_routes, ApiAuth};
use iaas_gateway::dispatch::DispatchError;
use iaas_gateway::{router, Dispatch, Gateway};
use iaas_invocation::{Command, Invocation, SignedBody};
use iaas_store::{NewDecommission, NewDecommissionStep, NewDecommissionVm, Store};
use serde_json::{json, Value};
use tower::ServiceExt;

const TOKEN: &str = "cmdb-token-1";
const POLICY: &str = r#"
[api]
tokens = [{ name = "cmdb-sync", sha256 = "6cf4b64f193066093e8e33b76531bf14e6082efa620ec49a8ef23a973b04c400", roles = ["admins"] }]
"#;

/// Records what it is handed and, for a start, records the request like iaas-decommission.
struct FakeFunction {
    store: Store,
    sent: Mutex<Vec<Invocation>>,
}

#[async_trait]
impl Dispatch for FakeFunction {
    async fn dispatch(&self, function: &str, signed: SignedBody) -> Result<(), DispatchError> {
        assert_eq!(function, "iaas-decommission");
        let inv: Invocation = serde_json::from_slice(&signed.body).unwrap();
        if let Command::DecommissionStart { id, vms, ticket, reason } = &inv.command {
            let request = NewDecommission {
                id: id.clone(),
                requester: inv.user.id.clone(),
                ticket: ticket.clone().unwrap_or_default(),
                reason: reason.clone().unwrap_or_default(),
                channel: String::new(),
                response_url: String::new(),
                vms: vms
                    .iter()
                    .map(|v| NewDecommissionVm {
                        vm_moref: format!("vm-{v}").into(),
                        vm_name: v.clone(),
                        os_family: "linux".into(),
                        facts_json: "{}".into(),
                        steps: vec![NewDecommissionStep {
                            kind: iaas_config::StepKind::DeleteVm,
                            name: "delete_vm".into(),
                            on_failure: iaas_config::OnFailure::Stop,
                            config_json: "{}".into(),
                        }],
                    })
                    .collect(),
            };
            self.store.create_decommission(&request).await.unwrap();
        }
        self.sent.lock().unwrap().push(inv);
        Ok(())
    }
    fn describe(&self) -> String {
        "fake".into()
    }
}

async fn gateway() -> (Arc<Gateway>, Arc<FakeFunction>) {
    let store = Store::connect("sqlite::memory:").await.unwrap();
    let fake = Arc::new(FakeFunction { store: store.clone(), sent: Mutex::default() });
    let policy = Policy::parse(POLICY).unwrap();
    let gw = Arc::new(Gateway {
        clock: iaas_gateway::system_clock(),
        audit: Some(iaas_gateway::audit::AuditLog::new(store.clone())),
        replays: iaas_gateway::replay::Replays::new(Some(store)),
        api: Some(Arc::new(ApiAuth::new(&policy, None))),
        ..common::gateway(fake.clone())
    });
    (gw, fake)
}

async fn call(gw: &Arc<Gateway>, method: &str, path: &str, auth: Option<&str>, body: Body) -> (StatusCode, http::HeaderMap, Value) {
    let mut req = Request::builder().method(method).uri(path).header("content-type", "application/json");
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    let res = router(gw.clone()).oneshot(req.body(body).unwrap()).await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    (status, headers, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

fn json_body(v: Value) -> Body {
    Body::from(v.to_string())
}

#[tokio::test]
async fn openapi_lists_exactly_the_routes_served() {
    let (gw, _) = gateway().await;
    let (status, _, doc) = call(&gw, "GET", "/api/v1/openapi.json", None, Body::empty()).await;
    assert_eq!(status, StatusCode::OK);
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.insert((method.to_uppercase(), path.clone()));
        }
    }
    let served: BTreeSet<(String, String)> = served_routes().into_iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
    assert_eq!(documented, served);
    for (method, path) in &served {
        let (status, _, _) = call(&gw, method, &path.replace("{id}", "x"), None, Body::empty()).await;
        assert!(status != StatusCode::NOT_FOUND && status != StatusCode::METHOD_NOT_ALLOWED, "{method} {path}: {status}");
    }
}

#[tokio::test]
async fn token_callers_create_list_and_page_and_others_are_refused() {
    let (gw, fake) = gateway().await;
    let bearer = format!("Bearer {TOKEN}");
    let (status, headers, body) = call(&gw, "GET", "/api/v1/decommissions", None, Body::empty()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(headers["www-authenticate"], "Basic realm=\"iaas\"");
    assert!(body["error"].is_string());
    let (status, _, _) = call(&gw, "GET", "/api/v1/decommissions", Some("Bearer wrong"), Body::empty()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Basic without a directory cannot be checked.
    let (status, _, _) = call(&gw, "GET", "/api/v1/decommissions", Some("Basic Ym9iOmJvYi1wYXNzd29yZA=="), Body::empty()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let (status, _, body) = call(&gw, "POST", "/api/v1/decommissions", Some(&bearer), Body::from("{oops")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"].as_str().unwrap().contains("not a decommission request"));
    let (status, _, _) = call(&gw, "POST", "/api/v1/decommissions", Some(&bearer), json_body(json!({"vms": ["a"], "extra": 1}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _, _) = call(&gw, "POST", "/api/v1/decommissions", Some(&bearer), Body::from(vec![b' '; 100 * 1024])).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(fake.sent.lock().unwrap().is_empty());

    let mut ids = Vec::new();
    for vm in ["a", "b", "c"] {
        let (status, _, body) =
            call(&gw, "POST", "/api/v1/decommissions", Some(&bearer), json_body(json!({"vms": [vm], "ticket": "CHG-1"}))).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        assert_eq!(body["vm_plans"][0]["steps"][0]["kind"], "delete_vm");
        ids.push(body["id"].as_str().unwrap().to_string());
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    {
        let sent = fake.sent.lock().unwrap();
        assert_eq!(sent.len(), 3);
        assert_eq!(sent[0].user.id, "api:cmdb-sync");
        assert_eq!(sent[0].caller.roles, vec!["admins".to_string()]);
        assert!(sent[0].response_url.is_none());
    }
    let (status, _, page) = call(&gw, "GET", "/api/v1/decommissions?limit=2", Some(&bearer), Body::empty()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    assert_eq!(page["next_offset"], 2);
    let (_, _, last) = call(&gw, "GET", "/api/v1/decommissions?limit=2&offset=2", Some(&bearer), Body::empty()).await;
    assert_eq!(last["items"].as_array().unwrap().len(), 1);
    assert!(last["next_offset"].is_null());
    let (_, _, by_vm) = call(&gw, "GET", "/api/v1/decommissions?vm=b", Some(&bearer), Body::empty()).await;
    assert_eq!(by_vm["items"][0]["id"], ids[1].as_str());
    let (status, _, _) = call(&gw, "GET", "/api/v1/decommissions?offset=-1", Some(&bearer), Body::empty()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let (status, _, one) = call(&gw, "GET", &format!("/api/v1/decommissions/{}", ids[0]), Some(&bearer), Body::empty()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one["ticket"], "CHG-1");
    let (status, _, cancelled) = call(&gw, "POST", &format!("/api/v1/decommissions/{}/cancel", ids[0]), Some(&bearer), Body::empty()).await;
    assert_eq!(status, StatusCode::OK, "{cancelled}");
    assert_eq!(cancelled["outcome"], "cancelled");
    let (status, _, _) = call(&gw, "POST", &format!("/api/v1/decommissions/{}/cancel", ids[0]), Some(&bearer), Body::empty()).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _, _) = call(&gw, "GET", "/api/v1/decommissions/unknown", Some(&bearer), Body::empty()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// `state` is one of the request states: an unknown one is a 400 whose sentence lists them, and
/// the document lists the same values (both from `DecommissionState`).
#[tokio::test]
async fn the_state_filter_takes_only_request_states() {
    let (gw, _) = gateway().await;
    let bearer = format!("Bearer {TOKEN}");
    let (status, _, body) = call(&gw, "POST", "/api/v1/decommissions", Some(&bearer), json_body(json!({"vms": ["a"]}))).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let (status, _, page) = call(&gw, "GET", "/api/v1/decommissions?state=pending_confirmation", Some(&bearer), Body::empty()).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert_eq!(page["items"][0]["state"], "pending_confirmation");
    let (status, _, page) = call(&gw, "GET", "/api/v1/decommissions?state=done", Some(&bearer), Body::empty()).await;
    assert_eq!((status, page["items"].as_array().unwrap().len()), (StatusCode::OK, 0));

    let (status, _, body) = call(&gw, "GET", "/api/v1/decommissions?state=finished", Some(&bearer), Body::empty()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let error = body["error"].as_str().unwrap();
    assert!(
        error.contains("`finished` is not a request state; use one of pending_confirmation, running, done, failed, cancelled."),
        "{error}"
    );
    assert!(!error.contains(".."), "{error}");

    let (_, _, doc) = call(&gw, "GET", "/api/v1/openapi.json", None, Body::empty()).await;
    let names: Vec<Value> = iaas_store::DecommissionState::NAMES.iter().map(|n| json!(n)).collect();
    let list = &doc["paths"]["/api/v1/decommissions"]["get"]["parameters"];
    let state = list.as_array().unwrap().iter().find(|p| p["name"] == "state").expect("a state parameter");
    assert_eq!(state["schema"]["enum"].as_array().unwrap(), &names, "{state}");
    assert_eq!(doc["components"]["schemas"]["DecommissionSummary"]["properties"]["state"]["enum"].as_array().unwrap(), &names);
}
