//! The gateway's REST API end to end through `iaas serve` with vcsim and OpenLDAP: a bearer
//! token creates and starts a decommission, HTTP Basic binds as the user, roles decide, list
//! filters and pages, cancel, and the OpenAPI document matches the routes served.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::decommission::gone;
use common::{ldap_env, start_on, Serve};
use iaas_tests::slapd::Slapd;
use iaas_tests::vcsim::{Vcsim, VcsimOptions};
use iaas_vsphere::soap::SoapClient;
use serde_json::{json, Value};

const ADMIN_TOKEN: &str = "cmdb-token-1";
const USERS_TOKEN: &str = "users-token-1";
/// May decommission, but only VMs it owns (none).
const RETIRER_TOKEN: &str = "retire-token-1";

const POLICY: &str = r#"
[decommission]
shutdown_timeout_secs = 5
cancel_poll_ms = 100
lease_secs = 2
resume_interval_secs = 1

[decommission.plans]
linux = [{ kind = "power_off" }, { kind = "delete_vm" }]

[api]
tokens = [
    { name = "cmdb-sync", sha256 = "6cf4b64f193066093e8e33b76531bf14e6082efa620ec49a8ef23a973b04c400", roles = ["admins"] },
    { name = "viewer", sha256 = "3cb6e28206eaec4042605a22c7c68f76d77af34fce81c773d8846b3a3aaa9e97", roles = ["users"] },
    { name = "retirer", sha256 = "2e17021ebe7e51820b5f854afd31f7575e2f4a3f28f426c41006bd5a1053056e", roles = ["retirers"] },
]

[roles.retirers]
commands = ["decommission"]
scope = "owned"

[roles.users]
groups = ["cn=iaas-users,ou=groups,dc=example,dc=test"]
commands = ["power", "vm list", "vm info", "decommission list", "decommission status"]
scope = "owned"

[roles.admins]
groups = ["cn=iaas-admins,ou=groups,dc=example,dc=test"]
commands = ["*"]
scope = "all"
"#;

async fn start() -> (Slapd, Vcsim, Serve, SoapClient) {
    let slapd = Slapd::start_seeded().await.unwrap();
    // power_off is slowed so a cancel can land while a request runs.
    let vcsim = Vcsim::start_with(VcsimOptions { delays: vec![("PowerOffVM_Task".into(), 1000)], ..Default::default() }).await.unwrap();
    let (serve, reader) = start_on(&vcsim, POLICY, &ldap_env(&slapd)).await;
    (slapd, vcsim, serve, reader)
}

enum Auth<'a> {
    None,
    Bearer(&'a str),
    Basic(&'a str, &'a str),
}

async fn call(
    serve: &Serve,
    method: reqwest::Method,
    path: &str,
    auth: Auth<'_>,
    body: Option<Value>,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let client = reqwest::Client::new();
    let mut req = client.request(method, format!("{}{path}", serve.url));
    req = match auth {
        Auth::None => req,
        Auth::Bearer(t) => req.bearer_auth(t),
        Auth::Basic(u, p) => req.basic_auth(u, Some(p)),
    };
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let text = res.text().await.unwrap();
    (status, headers, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

async fn until_state(serve: &Serve, id: &str, states: &[&str]) -> Value {
    for _ in 0..300 {
        let (status, _, d) =
            call(serve, reqwest::Method::GET, &format!("/api/v1/decommissions/{id}"), Auth::Bearer(ADMIN_TOKEN), None).await;
        assert_eq!(status, 200, "{d}");
        if states.contains(&d["state"].as_str().unwrap()) {
            return d;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("request {id} never reached {states:?}");
}

#[tokio::test]
async fn rest_api_creates_lists_cancels_and_checks_who_calls() {
    let (_slapd, _vcsim, serve, reader) = start().await;
    use reqwest::Method;

    // Authentication: none, a wrong password, a bad token → 401 with the Basic challenge.
    let (status, headers, body) = call(&serve, Method::GET, "/api/v1/decommissions", Auth::None, None).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(headers["www-authenticate"], "Basic realm=\"iaas\"");
    assert!(body["error"].is_string());
    let (status, _, body) = call(&serve, Method::GET, "/api/v1/decommissions", Auth::Basic("bob", "wrong"), None).await;
    assert_eq!(status, 401, "{body}");
    let (status, _, _) = call(&serve, Method::GET, "/api/v1/decommissions", Auth::Bearer("nope"), None).await;
    assert_eq!(status, 401);
    // Right passwords: bob is an admin (nested groups), ann a user who may list but not decommission.
    let (status, _, body) = call(&serve, Method::GET, "/api/v1/decommissions", Auth::Basic("bob", "bob-password"), None).await;
    assert_eq!(status, 200, "{body}");
    let (status, _, body) = call(&serve, Method::GET, "/api/v1/decommissions", Auth::Basic("ann@example.test", "ann-password"), None).await;
    assert_eq!(status, 200, "{body}");
    let (status, _, body) =
        call(&serve, Method::POST, "/api/v1/decommissions", Auth::Basic("ann", "ann-password"), Some(json!({"vms": ["app-web-01"]}))).await;
    assert_eq!(status, 403, "{body}");
    assert!(body["error"].as_str().unwrap().contains("decommission"), "{body}");
    let (status, _, body) =
        call(&serve, Method::POST, "/api/v1/decommissions", Auth::Bearer(USERS_TOKEN), Some(json!({"vms": ["app-web-01"]}))).await;
    assert_eq!(status, 403, "{body}");
    // Allowed the command, but not this VM: the function's refusal is the answer, as a 403.
    let (status, _, body) =
        call(&serve, Method::POST, "/api/v1/decommissions", Auth::Bearer(RETIRER_TOKEN), Some(json!({"vms": ["app-web-01"]}))).await;
    assert_eq!(status, 403, "{body}");
    assert!(body["error"].as_str().unwrap().contains("Nothing was changed on app-web-01"), "{body}");
    assert!(!gone(&reader, "app-web-01").await);

    // Bad bodies: 400, never a panic.
    let client = reqwest::Client::new();
    let res = client.post(format!("{}/api/v1/decommissions", serve.url)).bearer_auth(ADMIN_TOKEN).body("{not json").send().await.unwrap();
    assert_eq!(res.status().as_u16(), 400);
    assert!(res.json::<Value>().await.unwrap()["error"].is_string());
    let (status, _, _) = call(&serve, Method::POST, "/api/v1/decommissions", Auth::Bearer(ADMIN_TOKEN), Some(json!({"vms": []}))).await;
    assert_eq!(status, 400);
    let res = client
        .post(format!("{}/api/v1/decommissions", serve.url))
        .bearer_auth(ADMIN_TOKEN)
        .body(vec![b' '; 200 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 413);
    // An unknown VM: the function's refusal, nothing recorded.
    let (status, _, body) =
        call(&serve, Method::POST, "/api/v1/decommissions", Auth::Bearer(ADMIN_TOKEN), Some(json!({"vms": ["no-such-vm"]}))).await;
    assert_eq!(status, 422, "{body}");

    // Create with the token: 202 with the id and the plan; it runs; the VM is gone.
    let (status, headers, created) = call(
        &serve,
        Method::POST,
        "/api/v1/decommissions",
        Auth::Bearer(ADMIN_TOKEN),
        Some(json!({"vms": ["app-web-01"], "ticket": "CHG-9", "reason": "cmdb"})),
    )
    .await;
    assert_eq!(status, 202, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(headers["location"], format!("/api/v1/decommissions/{id}").as_str());
    assert_eq!(created["requester"], "api:cmdb-sync");
    let plan: Vec<&str> = created["vm_plans"][0]["steps"].as_array().unwrap().iter().map(|s| s["kind"].as_str().unwrap()).collect();
    assert_eq!(plan, ["power_off", "delete_vm"], "{created}");
    let done = until_state(&serve, &id, &["done", "failed"]).await;
    assert_eq!(done["state"], "done", "{done}");
    assert!(done["vm_plans"][0]["steps"].as_array().unwrap().iter().all(|s| s["state"] == "done"), "{done}");
    assert!(gone(&reader, "app-web-01").await);
    assert_eq!(done["ticket"], "CHG-9");

    // Cancel: a finished one → 409; a running one → 202 and it stops; unknown → 404.
    let (status, _, _) = call(&serve, Method::POST, &format!("/api/v1/decommissions/{id}/cancel"), Auth::Bearer(ADMIN_TOKEN), None).await;
    assert_eq!(status, 409);
    let (status, _, _) = call(&serve, Method::POST, "/api/v1/decommissions/nope/cancel", Auth::Bearer(ADMIN_TOKEN), None).await;
    assert_eq!(status, 404);
    let (status, _, second) =
        call(&serve, Method::POST, "/api/v1/decommissions", Auth::Basic("bob", "bob-password"), Some(json!({"vms": ["app-web-02"]}))).await;
    assert_eq!(status, 202, "{second}");
    let second_id = second["id"].as_str().unwrap().to_string();
    assert_eq!(second["requester"], "bob@example.test");
    let (status, _, body) =
        call(&serve, Method::POST, &format!("/api/v1/decommissions/{second_id}/cancel"), Auth::Bearer(USERS_TOKEN), None).await;
    assert_eq!(status, 403, "{body}");
    let (status, _, body) =
        call(&serve, Method::POST, &format!("/api/v1/decommissions/{second_id}/cancel"), Auth::Basic("bob", "bob-password"), None).await;
    assert!(status == 202 || status == 200, "{status} {body}");
    let stopped = until_state(&serve, &second_id, &["cancelled", "done", "failed"]).await;
    assert_eq!(stopped["state"], "cancelled", "{stopped}");

    // List: filters and pagination.
    let get = |q: String| {
        let serve = &serve;
        async move { call(serve, Method::GET, &format!("/api/v1/decommissions{q}"), Auth::Bearer(ADMIN_TOKEN), None).await }
    };
    let (status, _, page) = get("?limit=1".into()).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert_eq!(page["next_offset"], 1);
    assert_eq!(page["items"][0]["id"], second_id.as_str(), "newest first");
    let (_, _, page2) = get("?limit=1&offset=1".into()).await;
    assert_eq!(page2["items"][0]["id"], id.as_str());
    assert!(page2["next_offset"].is_null(), "{page2}");
    let (_, _, by_vm) = get("?vm=app-web-01".into()).await;
    assert_eq!(by_vm["items"].as_array().unwrap().len(), 1);
    let (_, _, by_requester) = get("?requester=api:cmdb-sync&state=done".into()).await;
    assert_eq!(by_requester["items"].as_array().unwrap().len(), 1, "{by_requester}");
    let (_, _, by_state) = get("?state=cancelled".into()).await;
    assert_eq!(by_state["items"][0]["id"], second_id.as_str());
    let (_, _, future) = get("?since=2999-01-01T00:00:00Z".into()).await;
    assert!(future["items"].as_array().unwrap().is_empty());
    let (status, _, _) = get("?limit=abc".into()).await;
    assert_eq!(status, 400);
    let (status, _, _) = get("/nope".into()).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn openapi_document_matches_the_routes_served() {
    let (_slapd, _vcsim, serve, _reader) = start().await;
    let (status, _, doc) = call(&serve, reqwest::Method::GET, "/api/v1/openapi.json", Auth::None, None).await;
    assert_eq!(status, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if ["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                documented.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    let served: BTreeSet<(String, String)> =
        iaas_gateway::api::served_routes().into_iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
    assert_eq!(documented, served);
    // Each documented route is really routed (not 404/405) by the running server.
    for (method, path) in &documented {
        let url = format!("{}{}", serve.url, path.replace("{id}", "x"));
        let res = reqwest::Client::new().request(method.parse().unwrap(), url).send().await.unwrap();
        assert!(![404, 405].contains(&res.status().as_u16()), "{method} {path}: {}", res.status());
    }
    // The security schemes and schemas are there.
    assert!(doc["components"]["securitySchemes"]["basic"].is_object());
    assert!(doc["components"]["schemas"]["DecommissionView"].is_object());
}
