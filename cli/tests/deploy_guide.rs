//! deploy/README.md quotes deploy/openfaas/stack.yml and deploy/lambda/template.yaml: the
//! timeouts, the secrets to create, the vCenter set in one place. This reads all three and
//! holds the guide to the files.

use std::collections::{BTreeMap, BTreeSet};

use serde_yaml::Value;

const GUIDE: &str = include_str!("../../deploy/README.md");
const STACK: &str = include_str!("../../deploy/openfaas/stack.yml");
const TEMPLATE: &str = include_str!("../../deploy/lambda/template.yaml");

fn stack() -> Value {
    let mut stack: Value = serde_yaml::from_str(STACK).expect("stack.yml is YAML");
    // faas-cli (go-yaml) applies `<<` merge keys; so must we.
    stack.apply_merge().expect("merge keys");
    for f in stack["functions"].as_mapping_mut().unwrap().values_mut() {
        f.apply_merge().unwrap();
        f["environment"].apply_merge().unwrap();
    }
    stack
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        // CloudFormation's short forms (!Sub, !Ref) come as tags around the value.
        Value::Tagged(t) => text(&t.value),
        other => panic!("not a scalar: {other:?}"),
    }
}

/// OpenFaaS: function → (exec_timeout, secrets).
fn openfaas() -> BTreeMap<String, (String, BTreeSet<String>)> {
    let stack = stack();
    stack["functions"]
        .as_mapping()
        .unwrap()
        .iter()
        .map(|(name, f)| {
            let secrets = f["secrets"].as_sequence().unwrap().iter().map(text).collect();
            (text(name), (text(&f["environment"]["exec_timeout"]), secrets))
        })
        .collect()
}

/// Lambda: function (as named in FunctionName after the stack prefix) → Timeout in seconds, and
/// every Secrets Manager key the template resolves.
fn lambda() -> (BTreeMap<String, String>, BTreeSet<String>) {
    let template: Value = serde_yaml::from_str(TEMPLATE).expect("template.yaml is YAML");
    let default_timeout = text(&template["Globals"]["Function"]["Timeout"]);
    let mut timeouts = BTreeMap::new();
    for resource in template["Resources"].as_mapping().unwrap().values() {
        if resource["Type"].as_str() != Some("AWS::Serverless::Function") {
            continue;
        }
        let props = &resource["Properties"];
        let name = text(&props["FunctionName"]).split_once("}-").expect("FunctionName is ${AWS::StackName}-<name>").1.to_string();
        let timeout = props.get("Timeout").map(text).unwrap_or_else(|| default_timeout.clone());
        timeouts.insert(name, timeout);
    }
    let keys = TEMPLATE
        .split("SecretString:")
        .skip(1)
        .map(|rest| rest.split("}}").next().unwrap().to_string())
        .filter(|k| !k.contains('$'))
        .collect();
    (timeouts, keys)
}

/// The guide's timeout table: function → (OpenFaaS, Lambda).
fn guide_timeouts() -> BTreeMap<String, (String, String)> {
    let section = GUIDE.split("## Timeouts").nth(1).expect("a Timeouts section");
    section
        .lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l.trim().strip_prefix('|')?.strip_suffix('|')?.split('|').map(str::trim).collect();
            let name = cells.first()?.strip_prefix('`')?.strip_suffix('`')?;
            Some((name.to_string(), (cells[1].to_string(), cells[2].trim_end_matches(" s").to_string())))
        })
        .collect()
}

/// The words of the first code line of the guide that starts with `prefix`, through its `\`
/// continuations, up to `;` or `do`.
fn guide_list(prefix: &str) -> BTreeSet<String> {
    let start = GUIDE.find(prefix).unwrap_or_else(|| panic!("{prefix:?} in the guide"));
    let rest = &GUIDE[start + prefix.len()..];
    let end = rest.find(';').unwrap();
    rest[..end].split_whitespace().filter(|w| *w != "\\").map(str::to_string).collect()
}

#[test]
fn the_timeout_table_is_the_files() {
    let table = guide_timeouts();
    let (lambda, _) = lambda();
    let openfaas = openfaas();
    assert_eq!(table.keys().collect::<Vec<_>>(), openfaas.keys().collect::<Vec<_>>(), "the table lists every OpenFaaS function");
    for (name, (of_timeout, _)) in &openfaas {
        let (quoted_of, quoted_lambda) = &table[name];
        assert_eq!(quoted_of, of_timeout, "{name}: the guide says {quoted_of}, stack.yml {of_timeout}");
        let lambda_timeout = lambda.get(name).unwrap_or_else(|| panic!("{name} is not in template.yaml"));
        assert_eq!(quoted_lambda, lambda_timeout, "{name}: the guide says {quoted_lambda} s, template.yaml {lambda_timeout}");
    }
    assert_eq!(lambda.len(), openfaas.len(), "the same functions on both platforms");
}

#[test]
fn the_ack_wait_advice_exceeds_the_longest_openfaas_timeout() {
    let minutes = |t: &str| match t.strip_suffix('m') {
        Some(m) => m.parse::<u64>().unwrap(),
        None => t.trim_end_matches('s').parse::<u64>().unwrap().div_ceil(60),
    };
    let longest = openfaas().values().map(|(t, _)| minutes(t)).max().unwrap();
    let advice = GUIDE.split("queueWorker.ackWait: ").nth(1).expect("ackWait advice");
    let advised = minutes(advice.split('`').next().unwrap());
    assert!(advised > longest, "ackWait {advised}m must exceed the longest exec_timeout, {longest}m");
    assert!(STACK.contains(&format!("ackWait: {advised}m")), "stack.yml's header gives the same advice");
}

#[test]
fn the_secrets_to_create_are_the_ones_the_files_use() {
    let used: BTreeSet<String> = openfaas().into_values().flat_map(|(_, s)| s).collect();
    assert_eq!(guide_list("for s in "), used, "the guide creates exactly the secrets stack.yml mounts");
    let (_, keys) = lambda();
    let json = GUIDE.split("```json").nth(1).and_then(|b| b.split("```").next()).expect("the secrets.json example");
    let quoted: BTreeMap<String, String> = serde_json::from_str(&json.replace('…', "x")).expect("the example is JSON");
    assert_eq!(quoted.keys().cloned().collect::<BTreeSet<_>>(), keys, "secrets.json's keys are the ones template.yaml resolves");
    // One name per secret on both platforms.
    let missing: Vec<_> = keys.difference(&used).collect();
    assert!(missing.is_empty(), "Lambda keys that OpenFaaS names otherwise: {missing:?}");
}

#[test]
fn the_vcenter_is_set_in_one_place() {
    assert_eq!(STACK.matches("VCENTER_URL:").count(), 1, "stack.yml sets VCENTER_URL once");
    let stack = stack();
    let url = text(&stack["x-vcenter"]["VCENTER_URL"]);
    for (name, f) in stack["functions"].as_mapping().unwrap() {
        let secrets: Vec<String> = f["secrets"].as_sequence().unwrap().iter().map(text).collect();
        if secrets.contains(&"vcenter-password".to_string()) {
            assert_eq!(text(&f["environment"]["VCENTER_URL"]), url, "{}", text(name));
        }
        // Every process reads the policy: the gateway its roles, the functions their limits.
        assert_eq!(text(&f["environment"]["IAAS_CONFIG"]), "/var/openfaas/secrets/iaas-config", "{}", text(name));
        assert!(secrets.contains(&"iaas-config".to_string()), "{} mounts the policy", text(name));
    }
}

/// Every deployable's readiness is its own `/_/ready` (store and vCenter checks), not only the
/// watchdog's.
#[test]
fn every_function_is_probed_at_its_ready_path() {
    for (name, f) in stack()["functions"].as_mapping().unwrap() {
        assert_eq!(text(&f["environment"]["ready_path"]), "/_/ready", "{}", text(name));
        assert_eq!(text(&f["annotations"]["com.openfaas.ready.http.path"]), "/_/ready", "{}", text(name));
    }
}
