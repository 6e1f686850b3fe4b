//! One request id follows a command: the ack (its header and its "request …" line), the audit
//! entries of the gateway and of the function, and the function's answer in Slack. The short
//! form tells apart requests made together (it used to be the time-ordered UUID's first digits,
//! the same for about a minute).

mod common;

use std::time::Duration;

use common::start_on;
use iaas_slack::Message;
use iaas_store::{AuditFilter, Store};
use iaas_tests::vcsim::Vcsim;

/// The id in a message's "request …" line.
fn shown_id(message: &Message) -> String {
    let text = message.readable();
    text.split("request ").nth(1).and_then(|rest| rest.split(|c: char| !c.is_ascii_alphanumeric()).next()).unwrap_or_default().to_string()
}

#[tokio::test]
async fn one_request_id_from_the_ack_to_the_audit_and_the_answer() {
    let vcsim = Vcsim::start().await.unwrap();
    let (serve, _reader) = start_on(&vcsim, "", &[]).await;
    // Two commands one right after the other: their full ids share the time prefix.
    let (s1, ack1, id1) = serve.slash("U1", "vm info win-app-01").await;
    let (s2, ack2, id2) = serve.slash("U1", "power status win-app-01").await;
    assert_eq!((s1, s2), (200, 200));
    let (id1, id2) = (id1.expect("dispatched"), id2.expect("dispatched"));
    let (short1, short2) = (shown_id(&ack1), shown_id(&ack2));
    assert_eq!(short1.len(), 8, "{}", ack1.readable());
    assert_ne!(short1, short2, "two requests made together got the same short id");
    assert!(id1.contains(&short1) && id2.contains(&short2), "{id1} {short1} / {id2} {short2}");

    // The answers in Slack name the same requests.
    let answers = [serve.answer().await, serve.answer().await];
    for (id, short, what) in [(&id1, &short1, "vm info"), (&id2, &short2, "power status")] {
        let answer = answers.iter().find(|a| shown_id(a) == *short).unwrap_or_else(|| panic!("no answer names request {short} ({id})"));
        assert!(answer.readable().contains(what), "{}", answer.readable());
    }

    // The gateway's decision and the function's outcome are audited under the full id.
    let store = Store::connect(&format!("sqlite://{}/iaas.db", serve.dir.display())).await.unwrap();
    let mut stages = Vec::new();
    for _ in 0..100 {
        let entries = store.audit_entries(&AuditFilter::default(), 1000).await.unwrap();
        stages = entries.iter().filter(|e| e.request_id == id1).map(|e| e.stage.clone()).collect::<Vec<_>>();
        stages.sort();
        if stages.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(stages, ["gateway", "iaas-inventory"], "audit entries of {id1}");
    // The audit CLI shows the short id the user saw.
    let audit = serve.cli(&["audit"]).await;
    assert!(audit.contains(&format!("[{short1}]")) && audit.contains(&format!("[{short2}]")), "{audit}");
}
