//! iaas-scale's own HTTP interface through its router: the demo inventory, an in-memory
//! store, and a local stand-in for Slack's chat.postMessage.

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use http_body_util::BodyExt;
use iaas_config::{Policy, Secret};
use iaas_events::{EventAuth, EventSettings, Notifier};
use iaas_function::Context;
use iaas_vsphere::demo::DemoInventory;
use iaas_vsphere::Vcenter;
use serde_json::{json, Value};
use tower::ServiceExt;

const SAMPLE: &str = include_str!("../../../shared/events/fixtures/veba-alarm-event.json");

type Posts = Arc<Mutex<Vec<Value>>>;

async fn setup(policy: &str) -> (Router, Arc<DemoInventory>, Posts) {
    let posts: Posts = Arc::default();
    let recorded = posts.clone();
    let slack = Router::new().route(
        "/api/chat.postMessage",
        post(move |Json(body): Json<Value>| {
            let recorded = recorded.clone();
            async move {
                let answer = iaas_tests::slack::posted(&body, "1700000000.000100");
                recorded.lock().unwrap().push(body);
                Json(answer)
            }
        }),
    );
    let api = format!("{}/api", iaas_tests::serve(slack).await);

    let demo = Arc::new(DemoInventory::new());
    let ctx = Context::new(
        demo.clone(),
        iaas_store::Store::connect("sqlite::memory:").await.unwrap(),
        Policy::parse(policy).unwrap(),
        Secret::new("unused"),
    );
    let settings = EventSettings { auth: EventAuth::token("t0ken"), notifier: Some(Notifier::new(Some(&api), "xoxb-test", "C0OPS")) };
    (iaas_scale::router_with(Arc::new(ctx), settings), demo, posts)
}

fn cpu_red(id: &str, moref: &str, name: &str) -> Value {
    let mut e: Value = serde_json::from_str(SAMPLE).unwrap();
    e["id"] = id.into();
    e["data"]["Alarm"]["Name"] = "VM CPU Usage".into();
    e["data"]["Vm"] = json!({"Name": name, "Vm": {"Type": "VirtualMachine", "Value": moref}});
    e["data"]["Entity"] = json!({"Name": name, "Entity": {"Type": "VirtualMachine", "Value": moref}});
    e
}

async fn post_event(app: &Router, auth: &str, event: &Value) -> (StatusCode, Value) {
    let req = Request::post("/")
        .header("authorization", auth)
        .header("content-type", "application/cloudevents+json")
        .body(Body::from(event.to_string()))
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

async fn cpus(demo: &DemoInventory, name: &str) -> u32 {
    demo.vm_details(&demo.find_vm(name).await.unwrap()).await.unwrap().summary.cpus
}

#[tokio::test]
async fn a_red_cpu_alarm_adds_one_vcpu_once_and_tells_slack() {
    let (app, demo, posts) = setup("").await;
    let web = demo.find_vm("app-web-01").await.unwrap();
    let event = cpu_red("ev-1", &web.moref, &web.name);

    let (status, _) = post_event(&app, "Bearer nope", &event).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = post_event(&app, "", &event).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(cpus(&demo, "app-web-01").await, 2);

    let (status, body) = post_event(&app, "Bearer t0ken", &event).await;
    assert_eq!((status, body["status"].as_str()), (StatusCode::OK, Some("done")), "{body}");
    assert_eq!(cpus(&demo, "app-web-01").await, 3);
    let (_, again) = post_event(&app, "Bearer t0ken", &event).await;
    assert_eq!(again["status"], "duplicate");
    assert_eq!(cpus(&demo, "app-web-01").await, 3);

    let posts = posts.lock().unwrap().clone();
    assert_eq!(posts.len(), 1, "{posts:?}");
    assert_eq!(posts[0]["channel"], "C0OPS");
    assert!(posts[0]["text"].as_str().unwrap().contains("added 1 vCPU (2 → 3)"), "{posts:?}");
}

#[tokio::test]
async fn notify_policy_leaves_a_running_vm_without_hot_add_alone() {
    let (app, demo, posts) = setup("[scale]\nwhen_cold = \"notify\"\n").await;
    let db = demo.find_vm("app-db-01").await.unwrap();
    let (status, body) = post_event(&app, "Bearer t0ken", &cpu_red("ev-2", &db.moref, &db.name)).await;
    assert_eq!((status, body["ok"].as_bool()), (StatusCode::OK, Some(true)), "{body}");
    assert_eq!(cpus(&demo, "app-db-01").await, 4);
    let text = posts.lock().unwrap()[0]["text"].as_str().unwrap().to_string();
    assert!(text.contains("runs without CPU hot-add") && text.contains("Nothing was changed"), "{text}");
}

#[tokio::test]
async fn malformed_and_foreign_events_are_answered_without_acting() {
    let (app, demo, posts) = setup("").await;
    let req = Request::post("/").header("authorization", "Bearer t0ken").body(Body::from("{}")).unwrap();
    assert_eq!(app.clone().oneshot(req).await.unwrap().status(), StatusCode::BAD_REQUEST);
    let mut other = cpu_red("ev-3", "vm-101", "app-web-01");
    other["subject"] = "VmCreatedEvent".into();
    let (status, body) = post_event(&app, "Bearer t0ken", &other).await;
    assert_eq!((status, body["status"].as_str()), (StatusCode::OK, Some("ignored")));
    assert_eq!(cpus(&demo, "app-web-01").await, 2);
    assert!(posts.lock().unwrap().is_empty());
}
