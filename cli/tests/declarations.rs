//! The command declarations (`iaas_invocation::COMMANDS`) hold against the deployed functions:
//! every function a declaration names exists and is served, and every command declared to ask
//! first answers with its Confirm/Cancel buttons and changes nothing until one is pressed.

mod common;

use common::Serve;
use iaas_invocation::{Effect, COMMANDS};

/// The Slack-facing functions, by their crates' own `NAME`.
const FUNCTIONS: [&str; 8] = [
    iaas_power::NAME,
    iaas_inventory::NAME,
    iaas_create::NAME,
    iaas_clone::NAME,
    iaas_resize::NAME,
    iaas_delete::NAME,
    iaas_expire::NAME,
    iaas_decommission::NAME,
];

#[test]
fn every_declared_function_exists_and_every_function_runs_a_command() {
    for spec in COMMANDS {
        // The gateway answers `doctor` itself (iaas_invocation::commands::GATEWAY).
        let known = FUNCTIONS.contains(&spec.function) || spec.function == iaas_invocation::commands::GATEWAY;
        assert!(known, "`{}` names the unknown function {}", spec.name, spec.function);
    }
    for name in FUNCTIONS {
        assert!(COMMANDS.iter().any(|s| s.function == name), "no command runs in {name}");
    }
}

#[tokio::test]
async fn commands_declared_to_ask_first_answer_with_their_buttons_and_change_nothing() {
    let serve = Serve::start(None).await;
    for spec in COMMANDS {
        let Effect::AsksFirst(of) = spec.effect else { continue };
        let before = listing(&serve).await;
        let text = format!("{} {}", spec.name, spec.examples[0]);
        let prompt = serve.run("U1", &text).await;
        let buttons: Vec<String> = prompt
            .blocks
            .iter()
            .filter(|b| b["type"] == "actions")
            .flat_map(|b| b["elements"].as_array().cloned().unwrap_or_default())
            .filter_map(|e| e["action_id"].as_str().map(str::to_string))
            .collect();
        assert_eq!(buttons, [of.action_id(true), of.action_id(false)], "`{text}` answered: {}", prompt.readable());
        assert_eq!(listing(&serve).await, before, "`{text}` changed something before the press");
    }
}

/// `vm list`'s answer without its context line (each request has its own id).
async fn listing(serve: &Serve) -> String {
    let answer = serve.run("U1", "vm list").await.readable();
    answer.lines().filter(|l| !l.contains(" · request ")).collect::<Vec<_>>().join("\n")
}
