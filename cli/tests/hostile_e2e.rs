//! Hostile input at the edge, through `iaas serve` on the demo inventory: what a signed but
//! malicious user can send, and what the bot must refuse or neutralise.

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use common::{button_token, start_on, Serve};
use iaas_tests::vcsim::Vcsim;
use iaas_vsphere::Vcenter;

/// A resize's Confirm token sent as a delete press (signed, by the asker) is refused with a
/// sentence and deletes nothing; the token still works for the resize it was made for.
#[tokio::test]
async fn a_confirmation_token_works_only_for_its_own_action() {
    // vcsim's app-web-02 has no hot-add, so a resize asks before its power cycle.
    let vcsim = Vcsim::start().await.unwrap();
    let (serve, reader) = start_on(&vcsim, "", &[]).await;
    let prompt = serve.run("U1", "resize app-web-02 --cpu 3").await;
    assert!(prompt.readable().contains("hot-add"), "{}", prompt.readable());
    let token = button_token(&prompt);

    assert_eq!(serve.press("U1", "delete.confirm", &token).await, 200);
    let refused = serve.answer().await.readable();
    assert!(refused.contains("That button was made for another request, not a delete; nothing was changed."), "{refused}");
    assert!(reader.find_vm("app-web-02").await.is_ok(), "the VM was not deleted");

    // Nor as a decommission press.
    assert_eq!(serve.press("U1", "decommission.confirm", &token).await, 200);
    assert!(serve.answer().await.readable().contains("made for another request"));

    // The refused presses did not use it up: the resize it was asked for still goes through.
    assert_eq!(serve.press("U1", "resize.confirm", &token).await, 200);
    let done = serve.answer().await.readable();
    assert!(done.contains("now has 3 vCPU"), "{done}");
}

/// An answer Slack refuses (a bare 500: it may have been acted on) is posted once, not again,
/// and lands in the audit trail the admins read, not only in a log.
#[tokio::test]
async fn an_undeliverable_answer_is_posted_once_and_audited() {
    let (app, posts) = counting("/response", axum::http::StatusCode::INTERNAL_SERVER_ERROR);
    let base = iaas_tests::serve(app).await;

    let api = format!("{base}/api");
    let serve = Serve::start_with(None, &[("SLACK_API_URL", api.as_str())]).await;
    let (status, _) = slash_to(&serve, "U1", "vm list", &format!("{base}/response")).await;
    assert_eq!(status, 200);

    let audit = audit_once_it_says(&serve, "Answer not delivered").await;
    let line = audit.lines().find(|l| l.contains("Answer not delivered")).unwrap_or_else(|| panic!("no undelivered entry:\n{audit}"));
    assert!(line.contains("failed") && line.contains("slack") && line.contains("vm list") && line.contains("Slack answered 500"), "{line}");
    assert!(!line.contains(&base), "the audit trail never carries the response_url: {line}");
    assert_eq!(posts.load(Ordering::SeqCst), 1, "never posted twice");
    // And counted where the admins' dashboards look.
    let metrics = reqwest::get(format!("{}/metrics", serve.url)).await.unwrap().text().await.unwrap();
    assert!(metrics.lines().any(|l| l.starts_with("iaas_slack_undelivered_total{function=\"iaas-inventory\"} 1")), "{metrics}");
}

/// `/iaas <text>` from `user`, signed like Slack, with a response_url of the test's choosing.
async fn slash_to(serve: &Serve, user: &str, text: &str, response_url: &str) -> (u16, iaas_slack::Message) {
    let form = iaas_slack::SlashCommand {
        team_id: "T0E2E".into(),
        channel_id: "C0E2E".into(),
        user_id: user.into(),
        command: "/iaas".into(),
        text: text.into(),
        response_url: response_url.into(),
        ..Default::default()
    }
    .to_form();
    let ts = chrono::Utc::now().timestamp();
    let resp = reqwest::Client::new()
        .post(format!("{}/slack/commands", serve.url))
        .header("x-slack-request-timestamp", ts.to_string())
        .header("x-slack-signature", iaas_slack::sign(common::SIGNING_SECRET.as_bytes(), ts, form.as_bytes()))
        .body(form)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap_or_default())
}

const BROADCAST: &str = "<!channel> urgent <https://evil.example/login|re-authenticate here>";

/// A message as it arrived, before anything re-serialises it: its text and blocks.
fn wire(m: &iaas_slack::Message) -> String {
    format!("{} {}", m.text, serde_json::Value::Array(m.blocks.clone()))
}

fn assert_inert(what: &str, raw: &str) {
    for markup in ["<!channel>", "<!here>", "<https://evil", "<@U0BOSS>"] {
        assert!(!raw.contains(markup), "{what} carried {markup:?} as markup: {raw}");
    }
}

/// A reason and a ticket made of Slack markup reach every message the bot posts — the prompt,
/// the channel's progress message and its updates, the requester's DMs, the answers — as text
/// the reader sees as typed, never as an @channel ping, a user ping or a disguised link.
#[tokio::test]
async fn user_text_never_becomes_slack_markup() {
    let vcsim = Vcsim::start().await.unwrap();
    let (serve, _reader) = start_on(&vcsim, "[decommission]\nshutdown_timeout_secs = 5\n", &[]).await;
    let prompt = serve.run("U1", &format!("decommission app-web-01 --ticket \"<!here> <@U0BOSS>\" --reason \"{BROADCAST}\"")).await;
    assert_inert("the prompt", &wire(&prompt));
    assert!(prompt.readable().contains(BROADCAST), "the reader sees the reason as typed: {}", prompt.readable());

    assert_eq!(serve.press("U1", "decommission.confirm", &button_token(&prompt)).await, 200);
    let seen = common::decommission::until(&serve, &["Decommissioned 1 of 1 VMs."]).await;
    assert!(seen.iter().any(|m| m.contains("<!here>")), "answers read as typed: {seen:#?}");
    let posts = serve.posts.lock().unwrap().clone();
    let updates = serve.updates.lock().unwrap().clone();
    assert!(!posts.is_empty(), "the progress message and DMs were posted");
    for p in posts.iter().chain(updates.iter()) {
        assert_inert("a chat.postMessage/chat.update", &p.to_string());
    }

    // A VM name typed by a user, echoed back ("no VM named …"), and an unknown command.
    let answer = serve.run("U1", "power status <!channel>").await;
    assert_inert("a not-found echo", &wire(&answer));
    let (_, ack, _) = serve.slash("U1", "<!here> <https://evil.example/x|click>").await;
    assert_inert("the gateway's ack", &wire(&ack));
    // The gateway's "Accepted `…`" ack: no broadcast or link survives the message layer. (A
    // typed user mention in it needs `UserText` where gateway/src/slack.rs writes the ack.)
    let (_, ack, _) = serve.slash("U1", &format!("decommission app-web-02 --ticket \"<!here>\" --reason \"{BROADCAST}\"")).await;
    assert_inert("the gateway's ack", &wire(&ack));
}

/// A response_url on another port of the allowed host is refused before anything runs, and a
/// 307 from the allowed address is not followed elsewhere with the answer.
#[tokio::test]
async fn response_urls_are_held_to_the_allowed_origin_and_redirects_are_not_followed() {
    // Elsewhere: another port on the same host, counting what reaches it.
    let (elsewhere, stolen) = counting("/steal", axum::http::StatusCode::OK);
    let steal = format!("{}/steal", iaas_tests::serve(elsewhere).await);

    // The allowed origin, whose response_url answers 307 to elsewhere.
    let to = steal.clone();
    let allowed = axum::Router::new().route(
        "/response",
        axum::routing::post(move || {
            let to = to.clone();
            async move { (axum::http::StatusCode::TEMPORARY_REDIRECT, [(axum::http::header::LOCATION, to)]) }
        }),
    );
    let base = iaas_tests::serve(allowed).await;

    let api = format!("{base}/api");
    let serve = Serve::start_with(None, &[("SLACK_API_URL", api.as_str())]).await;
    let (status, ack) = slash_to(&serve, "U1", "vm list", &steal).await;
    assert_eq!(status, 200);
    assert!(ack.readable().contains("no Slack response address"), "{}", ack.readable());

    let (status, _) = slash_to(&serve, "U1", "vm list", &format!("{base}/response")).await;
    assert_eq!(status, 200);
    let audit = audit_once_it_says(&serve, "Answer not delivered").await;
    assert!(audit.contains("Slack answered 307"), "{audit}");
    assert_eq!(stolen.load(Ordering::SeqCst), 0, "nothing reached another port");
}

/// A receiver at `path` that counts the posts it gets and answers `status`.
fn counting(path: &str, status: axum::http::StatusCode) -> (axum::Router, Arc<AtomicU32>) {
    let count = Arc::new(AtomicU32::new(0));
    let counted = count.clone();
    let app = axum::Router::new().route(
        path,
        axum::routing::post(move || {
            counted.fetch_add(1, Ordering::SeqCst);
            async move { status }
        }),
    );
    (app, count)
}

/// `iaas audit`'s output once it contains `needle` (or after 10 s, for the assertion to show).
async fn audit_once_it_says(serve: &Serve, needle: &str) -> String {
    let mut audit = String::new();
    for _ in 0..100 {
        audit = serve.cli(&["audit"]).await;
        if audit.contains(needle) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    audit
}
