//! VM lifecycle end to end: create, clone, deploy, resize and delete through `iaas serve` →
//! SOAP → vcsim, guard rails included, with vcsim's state read back through its own session.

mod common;

use common::{button_token, start_on, Serve};
use iaas_tests::vcsim::Vcsim;
use iaas_vsphere::soap::SoapClient;
use iaas_vsphere::{PowerState, VcError, Vcenter, VmDetails, ATTR_EXPIRES, ATTR_OWNER};

const POLICY: &str = r#"
[templates]
allowed = ["tmpl-ubuntu-*"]

[placement]
folder = "iaas"

[resize]
max_cpus = 8
max_memory_gb = 16

[protection]
folders = ["Infrastructure"]

[lease]
default_days = 30
max_days = 60
"#;

async fn start(policy: &str) -> (Vcsim, Serve, SoapClient) {
    let vcsim = Vcsim::start().await.unwrap();
    let (serve, reader) = start_on(&vcsim, policy, &[]).await;
    (vcsim, serve, reader)
}

async fn details(reader: &SoapClient, name: &str) -> Result<VmDetails, VcError> {
    let vm = reader.find_vm(name).await?;
    reader.vm_details(&vm).await
}

async fn vm_count(reader: &SoapClient) -> usize {
    reader.list_vms().await.unwrap().len()
}

#[tokio::test]
async fn create_makes_the_policy_vm_with_owner_and_lease() {
    let (_vcsim, serve, reader) = start(POLICY).await;
    let answer = serve.run("U1", "create web-07 --size medium --days 14").await.readable();
    assert!(answer.contains("*web-07* is ready with 2 vCPU and 4 GB"), "{answer}");
    let d = details(&reader, "web-07").await.unwrap();
    assert_eq!((d.summary.cpus, d.summary.memory_mb), (2, 4096));
    assert_eq!(d.summary.power_state, PowerState::PoweredOff);
    assert_eq!(d.folder.as_deref(), Some("iaas"));
    assert_eq!(d.attributes.get(ATTR_OWNER).map(String::as_str), Some("U1"));
    let expected = (chrono::Utc::now() + chrono::Duration::days(14)).format("%Y-%m-%d").to_string();
    assert_eq!(d.attributes.get(ATTR_EXPIRES), Some(&expected));
}

#[tokio::test]
async fn create_guard_rails_refuse_and_change_nothing() {
    let (_vcsim, serve, reader) = start(POLICY).await;
    let before = vm_count(&reader).await;
    for (command, expected) in [
        ("create app-web-01", "A VM named app-web-01 already exists"),
        ("create web-08 --size huge", "`huge` is not a size IT offers; choose one of large, medium, small"),
        ("create web-08 --os beos", "`beos` is not an OS family"),
        ("create web-08 --days 61", "61 days is longer than IT allows (60 days at most)"),
        ("create Web_08", "does not follow IT's naming rule"),
        ("create averyveryverylongname", "longer than 15 characters"),
    ] {
        let answer = serve.run("U1", command).await;
        assert!(answer.readable().contains(expected), "{command}: {}", answer.readable());
        assert_eq!(answer.response_type.as_deref(), Some("ephemeral"));
    }
    assert_eq!(vm_count(&reader).await, before);
}

#[tokio::test]
async fn clone_and_deploy_from_an_allowed_template() {
    let (_vcsim, serve, reader) = start(POLICY).await;
    let answer = serve.run("U1", "clone app-db-01 app-db-02").await.readable();
    assert!(answer.contains("*app-db-02* is ready"), "{answer}");
    let clone = details(&reader, "app-db-02").await.unwrap();
    assert_eq!((clone.summary.cpus, clone.summary.memory_mb), (4, 16384));
    assert_eq!(clone.attributes.get(ATTR_OWNER).map(String::as_str), Some("U1"));

    let answer = serve.run("U2", "clonetemplate web-09 tmpl-ubuntu-22").await.readable();
    assert!(answer.contains("*web-09* is ready"), "{answer}");
    let deployed = details(&reader, "web-09").await.unwrap();
    assert_eq!(deployed.attributes.get(ATTR_OWNER).map(String::as_str), Some("U2"));
    assert!(matches!(reader.find_template("web-09").await, Err(VcError::NotFound { .. })), "a deployed VM is not a template");

    let before = vm_count(&reader).await;
    let refused = serve.run("U1", "deploy tmpl-win-2022 win-09").await.readable();
    assert!(refused.contains("`tmpl-win-2022` is not a template IT allows for deploy; choose one of tmpl-ubuntu-22"), "{refused}");
    let missing = serve.run("U1", "clone app-web-1 web-10").await.readable();
    assert!(missing.contains("did you mean app-web-01"), "{missing}");
    assert_eq!(vm_count(&reader).await, before);
}

#[tokio::test]
async fn resize_live_with_hot_add_or_after_a_confirmed_restart() {
    let (_vcsim, serve, reader) = start(POLICY).await;
    // app-web-01 has hot-add: changed while running.
    let answer = serve.run("U1", "resize app-web-01 --cpu 4 --memory 8").await.readable();
    assert!(answer.contains("*app-web-01* now has 4 vCPU and 8 GB"), "{answer}");
    let d = details(&reader, "app-web-01").await.unwrap();
    assert_eq!((d.summary.cpus, d.summary.memory_mb, d.summary.power_state), (4, 8192, PowerState::PoweredOn));

    // Beyond the policy's limits: refused, unchanged.
    let refused = serve.run("U1", "transform app-web-01 --cpu 64").await.readable();
    assert!(refused.contains("more than IT allows: at most 8 vCPUs and 16 GB"), "{refused}");
    assert_eq!(details(&reader, "app-web-01").await.unwrap().summary.cpus, 4);

    // app-web-02 has no hot-add: a button offers the power cycle; nothing changes until pressed.
    let prompt = serve.run("U1", "resize app-web-02 --cpu 3").await;
    assert!(prompt.readable().contains("CPU hot-add is not enabled"), "{}", prompt.readable());
    assert_eq!(details(&reader, "app-web-02").await.unwrap().summary.cpus, 2);
    assert_eq!(serve.press("U1", "resize.confirm", &button_token(&prompt)).await, 200);
    let done = serve.answer().await;
    assert!(done.readable().contains("now has 3 vCPU and 4 GB of memory after a restart"), "{}", done.readable());
    assert_eq!(done.replace_original, Some(true));
    let d = details(&reader, "app-web-02").await.unwrap();
    assert_eq!((d.summary.cpus, d.summary.power_state), (3, PowerState::PoweredOn));

    // --restart skips the question.
    let answer = serve.run("U1", "resize app-db-01 --memory 12 --restart").await.readable();
    assert!(answer.contains("now has 4 vCPU and 12 GB of memory after a restart"), "{answer}");
}

#[tokio::test]
async fn delete_only_after_the_requesters_confirmed_press() {
    let (_vcsim, serve, reader) = start(POLICY).await;
    let prompt = serve.run("U1", "nuke app-web-02").await;
    let text = prompt.readable();
    assert!(text.contains("Delete *app-web-02*?") && text.contains("10.20.0.12") && text.contains("powered on"), "{text}");
    assert_eq!(prompt.response_type.as_deref(), Some("ephemeral"));
    let danger = prompt.blocks.iter().find(|b| b["type"] == "actions").unwrap()["elements"][0].clone();
    assert_eq!(danger["style"], "danger");
    assert!(danger["confirm"].is_object(), "the Confirm button asks once more");
    let token = button_token(&prompt);
    assert!(details(&reader, "app-web-02").await.is_ok(), "nothing is deleted on the first message");

    // Another user's press is refused and leaves the buttons for the owner.
    assert_eq!(serve.press("U2", "delete.confirm", &token).await, 200);
    let refused = serve.answer().await;
    assert!(refused.readable().contains("Only <@U1>, who asked for this, can confirm"), "{}", refused.readable());
    assert_eq!(refused.replace_original, Some(false));
    assert!(details(&reader, "app-web-02").await.is_ok());

    // The requester's press deletes it (powered off first).
    assert_eq!(serve.press("U1", "delete.confirm", &token).await, 200);
    let deleted = serve.answer().await.readable();
    assert!(deleted.contains("*app-web-02* was deleted by <@U1>"), "{deleted}");
    assert!(matches!(details(&reader, "app-web-02").await, Err(VcError::NotFound { .. })));

    // A replayed press does nothing more.
    assert_eq!(serve.press("U1", "delete.confirm", &token).await, 200);
    assert!(serve.answer().await.readable().contains("already confirmed"));

    // Two questions about one VM: the second press finds it gone.
    let (first, second) = (serve.run("U1", "delete win-app-01").await, serve.run("U1", "delete win-app-01").await);
    assert_eq!(serve.press("U1", "delete.confirm", &button_token(&first)).await, 200);
    assert!(serve.answer().await.readable().contains("was deleted"));
    assert_eq!(serve.press("U1", "delete.confirm", &button_token(&second)).await, 200);
    assert!(serve.answer().await.readable().contains("win-app-01 no longer exists; nothing was deleted"));
}

#[tokio::test]
async fn delete_refuses_protected_cancelled_stale_and_vanished() {
    let (_vcsim, serve, reader) = start(&format!("{POLICY}\n[confirm]\nttl_secs = 1\n")).await;
    let protected = serve.run("U1", "delete dc-01").await;
    assert!(protected.readable().contains("dc-01 is protected (it is in the Infrastructure folder)"), "{}", protected.readable());
    assert!(protected.blocks.iter().all(|b| b["type"] != "actions"), "no buttons for a protected VM");

    // Cancel: nothing changes.
    let prompt = serve.run("U1", "delete app-db-01").await;
    assert_eq!(serve.press("U1", "delete.cancel", &button_token(&prompt)).await, 200);
    assert!(serve.answer().await.readable().contains("Deletion of app-db-01 cancelled"));
    assert!(details(&reader, "app-db-01").await.is_ok());

    // A press after the confirmation expired.
    let prompt = serve.run("U1", "delete app-db-01").await;
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(serve.press("U1", "delete.confirm", &button_token(&prompt)).await, 200);
    assert!(serve.answer().await.readable().contains("has expired; nothing was changed"));
    assert!(details(&reader, "app-db-01").await.is_ok());
}

/// Presses in every shape Slack documents confirm a delete end to end: on an ephemeral prompt
/// (Slack's own example payload, `user` with both `username` and `name`), on a prompt in the
/// channel (the whole message echoed back), and from an Enterprise Grid org-wide install.
#[tokio::test]
async fn documented_press_payloads_confirm_deletes() {
    let (_vcsim, serve, reader) = start(POLICY).await;
    let in_channel_message = |prompt: &iaas_slack::Message| {
        serde_json::json!({
            "type": "message", "subtype": "bot_message", "bot_id": "B0E2EBOT1", "app_id": "A0E2EAPP1", "ts": "1733320000.000300",
            "text": prompt.text, "blocks": prompt.blocks,
        })
    };
    let cases: [(&str, Box<dyn Fn(&mut iaas_slack::Press, &iaas_slack::Message)>); 3] = [
        ("app-web-02", Box::new(|_, _| {})),
        ("win-app-01", Box::new(move |p, prompt| p.message = Some(in_channel_message(prompt)))),
        ("app-db-01", Box::new(|p, _| p.enterprise = Some(("E0E2EGRID".into(), "E2E Group".into(), true)))),
    ];
    for (vm, shape) in cases {
        let prompt = serve.run("U1", &format!("delete {vm}")).await;
        let danger = prompt.blocks.iter().find(|b| b["type"] == "actions").unwrap()["elements"][0].clone();
        let status = serve
            .press_with("U1", danger["action_id"].as_str().unwrap(), danger["value"].as_str().unwrap(), |p| {
                p.label = danger["text"]["text"].as_str().unwrap().into();
                p.style = danger["style"].as_str().map(str::to_string);
                shape(p, &prompt);
            })
            .await;
        assert_eq!(status, 200, "{vm}");
        let deleted = serve.answer().await.readable();
        assert!(deleted.contains(&format!("*{vm}* was deleted by <@U1>")), "{vm}: {deleted}");
        assert!(matches!(details(&reader, vm).await, Err(VcError::NotFound { .. })), "{vm} is gone from vcsim");
    }
}
