//! `iaas doctor` against the real peers (vcsim, slapd, PostgreSQL, and a Slack stand-in that
//! answers `auth.test` as Slack does): all green, then each peer broken in turn makes exactly
//! its line fail, with its fix, and the exit code says so.

mod common;

use std::process::Stdio;

use axum::http::{HeaderMap, HeaderValue};
use axum::response::IntoResponse;
use axum::routing::post;
use common::{ldap_env, policy_file, Database};
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
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/api", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
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

    let mut env: Vec<(String, String)> = ldap_env(&slapd).iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    env.extend(
        [
            ("IAAS_CONFIG", policy_file(&policy("")).display().to_string()),
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
    for expected in
        ["every migration applied", "logged in", "binds and searches", "group cn=iaas-admins", "ann@example.test is", "bot iaas in E2E"]
    {
        assert!(passed.iter().any(|p| p.contains(expected)), "no passing check says {expected:?}: {passed:#?}");
    }

    // Each broken in turn: exactly that line fails, with its fix.
    let broken = [
        (with(&env, "VCENTER_PASSWORD", "wrong"), "vcenter:", "VCENTER_USER and VCENTER_PASSWORD"),
        (with(&env, "SLACK_BOT_TOKEN", "xoxb-revoked"), "slack:", "invalid_auth"),
        (with(&env, "LDAP_BIND_PASSWORD", "wrong"), "directory:", "LDAP_BIND_PASSWORD"),
        (
            with(
                &env,
                "IAAS_CONFIG",
                &policy_file(&policy(
                    "\n[roles.ghosts]\ngroups = [\"cn=no-such-group,ou=groups,dc=example,dc=test\"]\ncommands = [\"quota\"]\n",
                ))
                .display()
                .to_string(),
            ),
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
