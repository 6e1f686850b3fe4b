//! `iaas doctor` against the real peers (vcsim, slapd, PostgreSQL, BIND 9, a webhook receiver,
//! and a Slack stand-in that answers `auth.test` as Slack does): all green, then each peer
//! broken in turn makes exactly its line fail, with its fix, and the exit code says so.

mod common;

use std::process::Stdio;

use axum::http::{HeaderMap, HeaderValue};
use axum::response::IntoResponse;
use axum::routing::post;
use common::{ldap_env, policy_file};
use iaas_tests::bind::Bind;
use iaas_tests::postgres::Database;
use iaas_tests::slapd::Slapd;
use iaas_tests::vcsim::Vcsim;
use serde_json::Value;

const GOOD_TOKEN: &str = "xoxb-e2e-good";

/// Roles whose groups exist in the seeded directory, plus `extra` lines.
fn policy(extra: &str) -> String {
    format!(
        "[roles.users]\ngroups = [\"cn=iaas-users,ou=groups,dc=example,dc=test\"]\ncommands = [\"vm list\"]\n\n\
         [roles.admins]\ngroups = [\"cn=iaas-admins,ou=groups,dc=example,dc=test\"]\ncommands = [\"*\"]\nscope = \"all\"\n{extra}"
    )
}

/// The peers the decommission plan and placement name: a placement vcsim has (`folder` given),
/// a dns step on `dns` and a webhook step to `hook` (a URL template).
fn peers(folder: &str, dns: &str, hook: &str) -> String {
    peers_archiving_to("decommissioned", folder, dns, hook)
}

/// [`peers`] with retired VMs moved to the folder `archive` (`move_and_unregister`).
fn peers_archiving_to(archive: &str, folder: &str, dns: &str, hook: &str) -> String {
    format!(
        "\n[placement]\ndatacenter = \"DC0\"\nfolder = \"{folder}\"\nresource_pool = \"DC0_C0\"\ndatastore = \"LocalDS_1\"\nnetwork = \"VM Network\"\n\n\
         [decommission]\ndelete_mode = \"move_and_unregister\"\ndecommissioned_folder = \"{archive}\"\n\n\
         [decommission.plans]\nlinux = [\n  {{ kind = \"dns\", server = \"{dns}\", zone = \"example.test.\", reverse_zone = \"20.10.in-addr.arpa.\", key_name = \"iaas\", secret_env = \"IAAS_E2E_TSIG\" }},\n  \
         {{ kind = \"webhook\", url = \"{hook}\", method = \"DELETE\" }},\n]\n"
    )
}

/// A CMDB stand-in: any method on `/cmdb/<name>` answers 204 (HEAD included).
async fn cmdb() -> String {
    let app = axum::Router::new().route("/cmdb/{name}", axum::routing::any(|| async { axum::http::StatusCode::NO_CONTENT }));
    iaas_tests::serve(app).await
}

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Slack's `auth.test`: the good token gets the manifest's scopes in `x-oauth-scopes`, any
/// other `invalid_auth` (HTTP 200, as Slack answers).
async fn slack() -> String {
    let app = axum::Router::new().route(
        "/api/auth.test",
        post(|headers: HeaderMap| async move {
            let good = headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(&format!("Bearer {GOOD_TOKEN}"));
            if !good {
                return axum::Json(iaas_tests::slack::error("invalid_auth")).into_response();
            }
            let mut response = axum::Json(iaas_tests::slack::auth_test()).into_response();
            let scopes = "commands,chat:write,chat:write.public,users:read,users:read.email,im:write";
            response.headers_mut().insert("x-oauth-scopes", HeaderValue::from_static(scopes));
            response
        }),
    );
    format!("{}/api", iaas_tests::serve(app).await)
}

/// Runs `iaas doctor --json` with exactly `env`; its exit success and its checks.
async fn doctor(env: &[(String, String)]) -> (bool, Vec<Value>) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_iaas"))
        .args(["doctor", "--json", "--user", "ann@example.test"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().cloned())
        .stderr(Stdio::inherit())
        .output()
        .await
        .unwrap();
    let checks = String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    (out.status.success(), checks)
}

/// The checks that failed, as "peer: detail → fix".
fn failures(checks: &[Value]) -> Vec<String> {
    checks
        .iter()
        .filter(|c| c["verdict"] == "fail")
        .map(|c| format!("{}: {} → {}", c["peer"].as_str().unwrap(), c["detail"].as_str().unwrap(), c["fix"].as_str().unwrap()))
        .collect()
}

fn with(env: &[(String, String)], name: &str, value: &str) -> Vec<(String, String)> {
    let mut env: Vec<_> = env.iter().filter(|(k, _)| k != name).cloned().collect();
    env.push((name.into(), value.into()));
    env
}

#[tokio::test]
async fn doctor_checks_each_peer_and_names_what_to_fix() {
    let slapd = Slapd::start_seeded().await.unwrap();
    let mut vcsim = Some(Vcsim::start().await.unwrap());
    let api = slack().await;
    let db = Database::create("doctor").await;
    let db_url = db.url.clone();
    let bind = Bind::start().await.unwrap();
    let dns = bind.addr.to_string();
    let hook = format!("{}/cmdb/{{{{name}}}}", cmdb().await);
    let good = policy(&peers("iaas", &dns, &hook));

    let mut env: Vec<(String, String)> = ldap_env(&slapd).iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    env.extend(
        [
            ("IAAS_CONFIG", policy_file(&good).display().to_string()),
            ("IAAS_E2E_TSIG", bind.key_secret_b64.clone()),
            ("VCENTER_URL", vcsim.as_ref().unwrap().url.clone()),
            ("VCENTER_USER", "iaas".into()),
            ("VCENTER_PASSWORD", "secret".into()),
            ("DATABASE_URL", db_url.clone()),
            ("SLACK_API_URL", api),
            ("SLACK_BOT_TOKEN", GOOD_TOKEN.into()),
            ("IAAS_EVENTS_TOKEN", "e2e-events".into()),
        ]
        .map(|(k, v)| (k.to_string(), v)),
    );

    // A database nothing has migrated yet: only the store fails, and doctor does not migrate it.
    let (ok, checks) = doctor(&env).await;
    let failed = failures(&checks);
    assert!(!ok);
    assert_eq!(failed.len(), 1, "{failed:#?}");
    assert!(failed[0].starts_with("store:") && failed[0].contains("not applied") && failed[0].contains("iaas serve"), "{failed:#?}");
    let (_, again) = doctor(&env).await;
    assert_eq!(failures(&again).len(), 1, "doctor changed the database");

    // Migrated: every check passes, each peer was really asked.
    drop(iaas_store::Store::connect(&db_url).await.unwrap());
    let (ok, checks) = doctor(&env).await;
    assert!(ok, "{:#?}", failures(&checks));
    let passed: Vec<String> = checks.iter().filter(|c| c["verdict"] == "ok").map(|c| c["detail"].as_str().unwrap().to_string()).collect();
    for expected in [
        "every migration applied",
        "logged in and answering (vSphere API ",
        "resolves to folder iaas, resource pool Resources, datastore LocalDS_1, network VM Network",
        "privilege(s) the enabled commands need on folder iaas",
        "decommission.decommissioned_folder decommissioned exists",
        "privilege(s) the enabled commands need on datastore LocalDS_1",
        "custom attributes iaas.owner",
        "binds and searches",
        "group cn=iaas-admins",
        "ann@example.test is",
        "bot iaas in E2E",
        "accepts updates for example.test. signed with key",
        "accepts updates for 20.10.in-addr.arpa.",
        "answered 204 No Content (reachable)",
        "local: `iaas serve` runs every function",
    ] {
        assert!(passed.iter().any(|p| p.contains(expected)), "no passing check says {expected:?}: {passed:#?}");
    }

    // Each broken in turn: exactly that line fails, with its fix.
    let with_policy = |extra: &str| with(&env, "IAAS_CONFIG", &policy_file(&policy(extra)).display().to_string());
    let other_key = "c2VjcmV0LXRoYXQtdGhlLXNlcnZlci1kb2VzLW5vdC1rbm93IQ==";
    let broken = [
        (with(&env, "IAAS_E2E_TSIG", other_key), "dns: step dns (linux)", "key_name"),
        (
            with_policy(&peers_archiving_to("no-such-archive", "iaas", &dns, &hook)),
            "vcenter: decommission.decommissioned_folder: The policy's folder no-such-archive does not exist",
            "decommission.decommissioned_folder",
        ),
        (
            with_policy(&peers("no-such-folder", &dns, &hook)),
            "vcenter: [placement]: The policy's folder no-such-folder does not exist",
            "[placement]",
        ),
        (
            with_policy(&peers("iaas", &dns, &format!("http://127.0.0.1:{}/cmdb/{{{{name}}}}", closed_port()))),
            "webhook: step webhook (linux): HEAD http://127.0.0.1:",
            "that the service runs",
        ),
        (with(&env, "VCENTER_PASSWORD", "wrong"), "vcenter:", "VCENTER_USER and VCENTER_PASSWORD"),
        (with(&env, "SLACK_BOT_TOKEN", "xoxb-revoked"), "slack:", "invalid_auth"),
        (with(&env, "LDAP_BIND_PASSWORD", "wrong"), "directory:", "LDAP_BIND_PASSWORD"),
        (
            with_policy(&format!(
                "\n[roles.ghosts]\ngroups = [\"cn=no-such-group,ou=groups,dc=example,dc=test\"]\ncommands = [\"quota\"]\n{}",
                peers("iaas", &dns, &hook)
            )),
            "directory: role ghosts",
            "Fix the DN",
        ),
    ];
    for (env, line, fix) in &broken {
        let (ok, checks) = doctor(env).await;
        let failed = failures(&checks);
        assert!(!ok, "{line}");
        assert_eq!(failed.len(), 1, "{line}: {failed:#?}");
        assert!(failed[0].starts_with(line) && failed[0].contains(fix), "{line}: {failed:#?}");
    }

    // vCenter gone: its line says it cannot be reached.
    vcsim.take().unwrap().stop().await;
    let (ok, checks) = doctor(&env).await;
    let failed = failures(&checks);
    assert!(!ok);
    assert_eq!(failed.len(), 1, "{failed:#?}");
    assert!(failed[0].starts_with("vcenter:") && failed[0].contains("cannot reach"), "{failed:#?}");

    db.drop().await;
}

/// `/iaas doctor` from Slack: an admin gets the checks as an ephemeral answer on the
/// response_url (no secret in it; `iaas serve` checks every peer, vCenter included); a user
/// whose roles do not grant `doctor` is refused before anything runs.
#[tokio::test]
async fn slash_doctor_answers_admins_only_ephemeral_without_secrets() {
    let slapd = Slapd::start_seeded().await.unwrap();
    let vcsim = Vcsim::start().await.unwrap();
    let slack_policy = format!(
        "[identity.slack_users]\nU0USER1 = \"ann@example.test\"\nU0ADMIN = \"bob@example.test\"\n\n{}",
        policy("\n[placement]\nfolder = \"no-such-folder\"\n")
    );
    let (serve, _reader) = common::start_on(&vcsim, &slack_policy, &ldap_env(&slapd)).await;

    let (status, ack, id) = serve.slash("U0USER1", "doctor").await;
    assert_eq!(status, 200);
    assert!(id.is_none(), "a refused doctor dispatched something");
    assert!(ack.readable().contains("may not run `doctor`"), "{}", ack.readable());

    let (status, ack, id) = serve.slash("U0ADMIN", "doctor").await;
    assert_eq!(status, 200, "{}", ack.readable());
    assert!(ack.readable().contains("Accepted `doctor`") && id.is_some(), "{}", ack.readable());
    let answer = serve.answer().await;
    assert_eq!(answer.response_type.as_deref(), Some("ephemeral"));
    let text = serde_json::to_string(&answer).unwrap();
    assert!(text.contains("iaas doctor"), "{text}");
    assert!(text.contains("logged in and answering"), "vCenter was checked: {text}");
    assert!(text.contains("no-such-folder does not exist"), "the broken placement is named: {text}");
    assert!(text.contains("binds and searches"), "the directory was checked: {text}");
    assert!(text.contains("local: `iaas serve`"), "{text}");
    for secret in [common::SIGNING_SECRET, common::SHARED_SECRET, "e2e-bot-token", iaas_tests::slapd::SVC_PASSWORD] {
        assert!(!text.contains(secret), "the answer holds a secret ({secret}): {text}");
    }
}
