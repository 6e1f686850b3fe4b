//! vCenter alarms fixing themselves, end to end: VEBA-shaped CloudEvents (built from the
//! reference sample, in all three shapes VEBA sends) posted to `iaas serve`'s
//! /function/iaas-scale and /function/iaas-storage-move, acting on vcsim, with notices
//! checked at the Slack stand-in's chat.postMessage.

mod common;

use common::{start_on, Serve};
use iaas_tests::vcsim::Vcsim;
use iaas_vsphere::soap::SoapClient;
use iaas_vsphere::{PowerOp, Vcenter};
use serde_json::{json, Value};

const SAMPLE: &str = include_str!("../../shared/events/fixtures/veba-alarm-event.json");
const TOKEN: &str = "e2e-events-token";
const CHANNEL: &str = "C0ALARMS";
const SOURCE: &str = "https://vcsim.e2e/sdk";

/// How an event travels, as the three VEBA flavours send it.
#[derive(Clone, Copy)]
enum Shape {
    Structured,
    Binary,
    PlainJson,
}

/// The reference sample turned into an alarm on `entity` (and on `vm` when given).
fn alarm(id: &str, alarm: &str, from: &str, to: &str, entity: (&str, &str, &str), vm: Option<(&str, &str)>) -> Value {
    let mut e: Value = serde_json::from_str(SAMPLE).unwrap();
    e["id"] = id.into();
    e["source"] = SOURCE.into();
    let d = &mut e["data"];
    d["Alarm"]["Name"] = alarm.into();
    d["From"] = from.into();
    d["To"] = to.into();
    d["Entity"] = json!({"Name": entity.2, "Entity": {"Type": entity.0, "Value": entity.1}});
    d["Vm"] = match vm {
        Some((moref, name)) => json!({"Name": name, "Vm": {"Type": "VirtualMachine", "Value": moref}}),
        None => Value::Null,
    };
    e
}

fn vm_alarm(id: &str, name: &str, vm: &iaas_vsphere::VmRef) -> Value {
    alarm(id, name, "green", "red", ("VirtualMachine", &vm.moref, &vm.name), Some((&vm.moref, &vm.name)))
}

async fn send(serve: &Serve, function: &str, event: &Value, shape: Shape, token: &str) -> (u16, Value) {
    let auth = ("authorization", format!("Bearer {token}"));
    let (headers, body) = match shape {
        Shape::Structured => (vec![auth, ("content-type", "application/cloudevents+json".to_string())], event.to_string()),
        Shape::PlainJson => (vec![auth, ("content-type", "application/json".to_string())], event.to_string()),
        Shape::Binary => {
            let class = event["subject"].as_str().unwrap();
            (
                vec![
                    auth,
                    ("content-type", "application/json".to_string()),
                    ("ce-specversion", "1.0".to_string()),
                    ("ce-id", event["id"].as_str().unwrap().to_string()),
                    ("ce-source", event["source"].as_str().unwrap().to_string()),
                    ("ce-type", format!("com.vmware.vsphere.{class}.v0")),
                ],
                event["data"].to_string(),
            )
        }
    };
    let (status, text) = serve.post_function(function, &headers, body.into_bytes()).await;
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

async fn start(policy: &str) -> (Vcsim, SoapClient, Serve) {
    let sim = Vcsim::start().await.expect("vcsim");
    let (serve, vc) = start_on(&sim, policy, &[("IAAS_EVENTS_TOKEN", TOKEN), ("SLACK_NOTIFY_CHANNEL", CHANNEL)]).await;
    (sim, vc, serve)
}

async fn size(vc: &SoapClient, name: &str) -> (u32, u64) {
    let d = vc.vm_details(&vc.find_vm(name).await.unwrap()).await.unwrap();
    (d.summary.cpus, d.summary.memory_mb)
}

/// The text of every notice posted so far.
fn notices(serve: &Serve) -> Vec<String> {
    serve.posts_to(CHANNEL).iter().map(|p| p["text"].as_str().unwrap_or_default().to_string()).collect()
}

#[tokio::test]
async fn cpu_and_memory_alarms_scale_a_hot_add_vm_once() {
    let (_sim, vc, serve) = start("").await;
    let web = vc.find_vm("app-web-01").await.unwrap();
    let cpu = vm_alarm("e-cpu-1", "VM CPU Usage", &web);

    assert_eq!(send(&serve, "iaas-scale", &cpu, Shape::Structured, "wrong").await.0, 401);
    assert_eq!(size(&vc, "app-web-01").await, (2, 4096), "a refused event changes nothing");

    let (status, body) = send(&serve, "iaas-scale", &cpu, Shape::Structured, TOKEN).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("done")), "{body}");
    assert_eq!(size(&vc, "app-web-01").await, (3, 4096));
    assert!(notices(&serve).iter().any(|t| t.contains("app-web-01") && t.contains("1 vCPU (2 → 3)")), "{:?}", notices(&serve));

    // VEBA redelivers: the same id and source do nothing again.
    let (status, body) = send(&serve, "iaas-scale", &cpu, Shape::Structured, TOKEN).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("duplicate")), "{body}");
    // A new red within the cooldown changes nothing either, and says so.
    let (status, _) = send(&serve, "iaas-scale", &vm_alarm("e-cpu-2", "VM CPU Usage", &web), Shape::Structured, TOKEN).await;
    assert_eq!(status, 200);
    assert_eq!(size(&vc, "app-web-01").await, (3, 4096));
    assert!(notices(&serve).iter().any(|t| t.contains("scaled up recently")), "{:?}", notices(&serve));

    // Memory cools down apart from CPU; binary mode as Knative-based VEBA sends it.
    let mem = vm_alarm("e-mem-1", "Virtual machine memory usage", &web);
    let (status, body) = send(&serve, "iaas-scale", &mem, Shape::Binary, TOKEN).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("done")), "{body}");
    assert_eq!(size(&vc, "app-web-01").await, (3, 6144));

    // Not for us: green → yellow, an unknown VM, an alarm not in the policy.
    let posted = notices(&serve).len();
    let yellow =
        alarm("e-y", "VM CPU Usage", "green", "yellow", ("VirtualMachine", &web.moref, "app-web-01"), Some((&web.moref, "app-web-01")));
    let ghost = alarm("e-g", "VM CPU Usage", "green", "red", ("VirtualMachine", "vm-424242", "ghost"), Some(("vm-424242", "ghost")));
    let host = alarm("e-h", "cluster-cpu-above-80", "green", "red", ("HostSystem", "host-21", "h"), None);
    for event in [&yellow, &ghost, &host] {
        let (status, body) = send(&serve, "iaas-scale", event, Shape::PlainJson, TOKEN).await;
        assert_eq!((status, body["status"].as_str()), (200, Some("ignored")), "{body}");
    }
    assert_eq!(size(&vc, "app-web-01").await, (3, 6144));
    assert_eq!(notices(&serve).len(), posted, "ignored events are not announced");
}

#[tokio::test]
async fn at_the_folder_maximum_nothing_changes_and_slack_is_told() {
    let (_sim, vc, serve) = start("[scale.folders.iaas]\nmax_cpus = 2\n").await;
    let web = vc.find_vm("app-web-01").await.unwrap();
    let (status, body) = send(&serve, "iaas-scale", &vm_alarm("e-max", "VM CPU Usage", &web), Shape::PlainJson, TOKEN).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("done")), "{body}");
    assert_eq!(size(&vc, "app-web-01").await, (2, 4096));
    let told = notices(&serve);
    assert!(told.iter().any(|t| t.contains("app-web-01") && t.contains("most vCPUs the policy allows (2)")), "{told:?}");
}

#[tokio::test]
async fn a_vm_without_hot_add_gets_its_change_when_powered_off() {
    let (_sim, vc, serve) = start("").await;
    let web2 = vc.find_vm("app-web-02").await.unwrap();
    let (status, _) = send(&serve, "iaas-scale", &vm_alarm("e-cold", "VM CPU Usage", &web2), Shape::PlainJson, TOKEN).await;
    assert_eq!(status, 200);
    assert_eq!(size(&vc, "app-web-02").await, (2, 4096), "no hot-add: nothing changes while it runs");
    assert!(notices(&serve).iter().any(|t| t.contains("next time it is powered off")), "{:?}", notices(&serve));

    vc.power(&web2, PowerOp::Off).await.unwrap();
    let mut off: Value = serde_json::from_str(SAMPLE).unwrap();
    off["id"] = "e-off".into();
    off["source"] = SOURCE.into();
    off["subject"] = "VmPoweredOffEvent".into();
    off["data"] = json!({"Key": 9, "Vm": {"Name": "app-web-02", "Vm": {"Type": "VirtualMachine", "Value": web2.moref}}, "FullFormattedMessage": "app-web-02 is powered off"});
    let (status, body) = send(&serve, "iaas-scale", &off, Shape::Binary, TOKEN).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("done")), "{body}");
    assert_eq!(size(&vc, "app-web-02").await, (3, 4096));
    // The change was made once: the next power-off has nothing waiting.
    off["id"] = "e-off-2".into();
    let (_, body) = send(&serve, "iaas-scale", &off, Shape::Binary, TOKEN).await;
    assert_eq!(body["status"].as_str(), Some("ignored"), "{body}");
}

async fn local_ds0(vc: &SoapClient) -> iaas_vsphere::Moref {
    let agent = vc.find_vm("build-agent-07").await.unwrap();
    vc.datastores_for(&agent).await.unwrap().into_iter().find(|d| d.name == "LocalDS_0").unwrap().moref
}

#[tokio::test]
async fn a_full_datastore_sheds_a_vm_to_the_roomiest_one() {
    let (_sim, vc, serve) = start("").await;
    let ds0 = local_ds0(&vc).await;
    let event = alarm("e-ds", "Datastore usage on disk", "yellow", "red", ("Datastore", &ds0, "LocalDS_0"), None);
    let (status, body) = send(&serve, "iaas-storage-move", &event, Shape::Structured, TOKEN).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("done")), "{body}");
    // The suspended build agent goes first (not running); one move per alarm by default.
    let agent = vc.vm_details(&vc.find_vm("build-agent-07").await.unwrap()).await.unwrap();
    assert_eq!(agent.datastores, ["LocalDS_1"]);
    let web = vc.vm_details(&vc.find_vm("app-web-01").await.unwrap()).await.unwrap();
    assert_eq!(web.datastores, ["LocalDS_0"]);
    assert!(notices(&serve).iter().any(|t| t.contains("moved build-agent-07 (10 GB) to LocalDS_1")), "{:?}", notices(&serve));
}

#[tokio::test]
async fn without_an_eligible_datastore_nothing_moves_and_slack_is_told() {
    let (_sim, vc, serve) = start("[storage_move]\nexclude_datastores = [\"LocalDS_1\"]\n").await;
    let ds0 = local_ds0(&vc).await;
    let event = alarm("e-ds", "Datastore usage on disk", "yellow", "red", ("Datastore", &ds0, "LocalDS_0"), None);
    let (status, body) = send(&serve, "iaas-storage-move", &event, Shape::Binary, TOKEN).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("done")), "{body}");
    for name in ["app-web-01", "app-web-02", "build-agent-07"] {
        let d = vc.vm_details(&vc.find_vm(name).await.unwrap()).await.unwrap();
        assert_eq!(d.datastores, ["LocalDS_0"], "{name} moved");
    }
    let told = notices(&serve);
    assert!(told.iter().any(|t| t.contains("no VM was moved") && t.contains("LocalDS_1 is excluded by policy")), "{told:?}");
}

/// VEBA delivers one alarm to every function that subscribes to its event class: each of them
/// handles it once, and neither takes the other's delivery for a duplicate — also when several
/// alarms arrive at both at once.
#[tokio::test]
async fn one_alarm_reaches_every_subscribed_function_once_each() {
    let (_sim, vc, serve) = start("").await;
    let ds0 = local_ds0(&vc).await;
    let event = alarm("e-both", "Datastore usage on disk", "yellow", "red", ("Datastore", &ds0, "LocalDS_0"), None);
    let (status, body) = send(&serve, "iaas-scale", &event, Shape::Structured, TOKEN).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ignored")), "scale: {body}");
    let (status, body) = send(&serve, "iaas-storage-move", &event, Shape::Structured, TOKEN).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("done")), "storage-move took scale's delivery for its own: {body}");
    let agent = vc.vm_details(&vc.find_vm("build-agent-07").await.unwrap()).await.unwrap();
    assert_eq!(agent.datastores, ["LocalDS_1"], "the alarm moved nothing");
    // A redelivery to either is a duplicate of its own first delivery only.
    for function in ["iaas-scale", "iaas-storage-move"] {
        let (_, body) = send(&serve, function, &event, Shape::Structured, TOKEN).await;
        assert_eq!(body["status"].as_str(), Some("duplicate"), "{function}: {body}");
    }

    // Six alarms delivered to both functions at the same time: none is lost to the other.
    let web = vc.find_vm("app-web-01").await.unwrap();
    let events: Vec<Value> = (0..6).map(|i| vm_alarm(&format!("e-burst-{i}"), "VM CPU Usage", &web)).collect();
    let sends = events.iter().flat_map(|e| ["iaas-scale", "iaas-storage-move"].map(|f| send(&serve, f, e, Shape::Structured, TOKEN)));
    for (status, body) in futures::future::join_all(sends).await {
        assert_eq!(status, 200, "{body}");
        assert!(!matches!(body["status"].as_str(), Some("duplicate" | "in_progress")), "{body}");
    }
}
