//! Readiness: `/_/ready` asks the store and vCenter on `iaas serve`, on a Slack function's router
//! and on an event function's router (one shared check), and names what failed; `/_/health`
//! stays liveness.

mod common;

use std::time::Duration;

use common::start_on;
use iaas_tests::vcsim::Vcsim;

/// `GET <url>`: status and JSON body.
async fn get(url: &str) -> (u16, serde_json::Value) {
    let resp = reqwest::get(url).await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or_default())
}

const PROBED: [&str; 3] = ["", "/function/iaas-power", "/function/iaas-scale"];

#[tokio::test]
async fn ready_checks_the_store_and_vcenter_and_names_what_failed() {
    let vcsim = Vcsim::start().await.unwrap();
    let (serve, _reader) = start_on(&vcsim, "", &[]).await;
    for prefix in PROBED {
        let (status, body) = get(&format!("{}{prefix}/_/ready", serve.url)).await;
        assert_eq!(status, 200, "{prefix}: {body}");
        assert_eq!(body["checks"]["store"], "ok", "{prefix}: {body}");
        assert_eq!(body["checks"]["vcenter"], "ok", "{prefix}: {body}");
    }

    drop(vcsim);
    let mut last = (0, serde_json::Value::Null);
    for _ in 0..50 {
        last = get(&format!("{}/_/ready", serve.url)).await;
        if last.0 == 503 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, body) = last;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["failed"], serde_json::json!(["vcenter"]), "{body}");
    assert_eq!(body["checks"]["store"], "ok", "{body}");
    assert!(body["checks"]["vcenter"].as_str().unwrap_or_default().to_lowercase().contains("vcenter"), "{body}");
    for prefix in &PROBED[1..] {
        let (status, body) = get(&format!("{}{prefix}/_/ready", serve.url)).await;
        assert_eq!((status, &body["failed"]), (503, &serde_json::json!(["vcenter"])), "{prefix}: {body}");
    }
    // Liveness does not depend on the peers.
    assert!(serve.healthy().await);
    assert_eq!(reqwest::get(format!("{}/function/iaas-power/_/health", serve.url)).await.unwrap().status(), 200);
}
