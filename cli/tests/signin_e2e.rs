//! Brute force on the REST API (#15.3), end to end on `iaas serve` with OpenLDAP behind a TCP
//! proxy that counts connections (each password check opens one): wrong passwords for one user
//! are met with 429 and `Retry-After`, and the directory is not asked again during the
//! back-off; the right password from another address still works; wrong bearer tokens from one
//! address get 429 too. Addresses are told apart by `X-Forwarded-For` from a trusted proxy.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::{start_on, Serve};
use iaas_tests::slapd::{Slapd, BASE_DN, SVC_DN, SVC_PASSWORD};
use iaas_tests::vcsim::Vcsim;

const POLICY: &str = r#"
[api]
tokens = [{ name = "cmdb-sync", sha256 = "6cf4b64f193066093e8e33b76531bf14e6082efa620ec49a8ef23a973b04c400", roles = ["admins"] }]

[roles.admins]
groups = ["cn=iaas-admins,ou=groups,dc=example,dc=test"]
commands = ["*"]
scope = "all"
"#;

/// A TCP proxy to `target`; the number of connections it took.
async fn counting_proxy(target: String) -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ldap://{}/", listener.local_addr().unwrap());
    let count = Arc::new(AtomicUsize::new(0));
    let counted = count.clone();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            let target = target.clone();
            tokio::spawn(async move {
                if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    (url, count)
}

async fn call(
    serve: &Serve,
    from: &str,
    auth: impl FnOnce(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
) -> (u16, Option<u64>, String) {
    let req = reqwest::Client::new().get(format!("{}/api/v1/decommissions", serve.url)).header("x-forwarded-for", from);
    let res = auth(req).send().await.unwrap();
    let retry_after = res.headers().get("retry-after").map(|v| v.to_str().unwrap().parse().unwrap());
    (res.status().as_u16(), retry_after, res.text().await.unwrap())
}

#[tokio::test]
async fn password_and_token_guessing_is_held_back_before_the_directory() {
    let slapd = Slapd::start_seeded().await.unwrap();
    let (ldap_url, binds) = counting_proxy(slapd.url.trim_start_matches("ldap://").trim_end_matches('/').to_string()).await;
    let vcsim = Vcsim::start().await.unwrap();
    let env = [
        ("LDAP_URL", ldap_url.as_str()),
        ("LDAP_BIND_DN", SVC_DN),
        ("LDAP_BIND_PASSWORD", SVC_PASSWORD),
        ("LDAP_BASE_DN", BASE_DN),
        ("IAAS_TRUSTED_PROXIES", "127.0.0.1"),
    ];
    let (serve, _reader) = start_on(&vcsim, POLICY, &env).await;

    // Wrong passwords for bob from one address: 401 until the back-off starts, then 429.
    let mut refused = None;
    for _ in 0..8 {
        let (status, retry_after, body) = call(&serve, "198.51.100.7", |r| r.basic_auth("bob", Some("guess"))).await;
        match status {
            401 => assert!(refused.is_none(), "a 401 after the back-off started: {body}"),
            429 => {
                let wait = retry_after.expect("429 carries Retry-After");
                assert!(wait >= 1, "{wait}");
                assert!(body.contains("Too many failed sign-ins"), "{body}");
                refused.get_or_insert(binds.load(Ordering::SeqCst));
            }
            other => panic!("{other}: {body}"),
        }
    }
    let asked = refused.expect("the guesser was held back");
    // During the back-off the directory was not asked again, even with the right password.
    assert_eq!(call(&serve, "198.51.100.7", |r| r.basic_auth("bob", Some("bob-password"))).await.0, 429);
    assert_eq!(binds.load(Ordering::SeqCst), asked, "the directory was asked during the back-off");

    // Bob himself, from his own address, signs in.
    let (status, _, body) = call(&serve, "203.0.113.20", |r| r.basic_auth("bob", Some("bob-password"))).await;
    assert_eq!(status, 200, "{body}");

    // Wrong bearer tokens from one address: 429 with Retry-After; the right token from another
    // address works.
    let mut last = (0, None, String::new());
    for i in 0..12 {
        last = call(&serve, "198.51.100.9", |r| r.bearer_auth(format!("guess-{i}"))).await;
    }
    assert_eq!(last.0, 429, "{}", last.2);
    assert!(last.1.is_some());
    assert_eq!(call(&serve, "203.0.113.21", |r| r.bearer_auth("cmdb-token-1")).await.0, 200);

    // The failures are in the audit trail.
    let audit = serve.cli(&["audit"]).await;
    assert!(audit.contains("failed sign-in") && audit.contains("too many failed sign-ins"), "{audit}");
}
