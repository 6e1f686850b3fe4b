//! The web console in a real browser (Debian's chromium driven through chromedriver) against
//! `iaas serve` with vcsim, OpenLDAP and the store: sign-in (a wrong password and a disabled
//! account refused), a request for two VMs found by typing part of their names, its steps
//! turning done without a reload, a second request cancelled mid-run, the history search, a
//! non-admin seeing only their own requests, and a form without its CSRF token refused.
//! Screenshots of the main pages go to `target/console-screenshots/`.

mod common;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use common::decommission::gone;
use common::{ldap_env, start_on, Serve};
use fantoccini::{Client, ClientBuilder, Locator};
use iaas_tests::slapd::Slapd;
use iaas_tests::vcsim::{Vcsim, VcsimOptions};
use serde_json::json;

const POLICY: &str = r#"
[identity.slack_users]
U0BOB = "bob@example.test"

[lease]
default_days = 10
max_days = 15
extend_days = 30
max_total_days = 20

[decommission]
shutdown_timeout_secs = 5
cancel_poll_ms = 100
lease_secs = 2
resume_interval_secs = 1

[decommission.plans]
linux = [{ kind = "power_off" }, { kind = "delete_vm" }]

[roles.users]
groups = ["cn=iaas-users,ou=groups,dc=example,dc=test"]
commands = ["vm list", "decommission list", "decommission status", "decommission cancel", "expire list"]
scope = "owned"

[roles.admins]
groups = ["cn=iaas-admins,ou=groups,dc=example,dc=test"]
commands = ["*"]
scope = "all"
"#;

/// chromedriver on a free port, stopped when dropped.
struct Driver {
    url: String,
    _child: tokio::process::Child,
}

impl Driver {
    async fn start() -> Driver {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = tokio::process::Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromedriver is not installed: run scripts/test (it installs Debian's chromium and chromium-driver)");
        let url = format!("http://127.0.0.1:{port}");
        for _ in 0..100 {
            if reqwest::get(format!("{url}/status")).await.is_ok() {
                return Driver { url, _child: child };
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("chromedriver did not start");
    }

    async fn browser(&self) -> Client {
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({"binary": chromium(), "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,1000"]}),
        );
        let http = hyper_util::client::legacy::connect::HttpConnector::new();
        ClientBuilder::new(http).capabilities(caps).connect(&self.url).await.expect("a browser session")
    }
}

fn chromium() -> &'static str {
    if std::path::Path::new("/usr/bin/chromium").exists() {
        "/usr/bin/chromium"
    } else {
        "/usr/bin/chromium-browser"
    }
}

fn screenshots() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/console-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn shoot(c: &Client, name: &str) {
    let png = c.screenshot().await.unwrap();
    std::fs::write(screenshots().join(format!("{name}.png")), png).unwrap();
}

/// Clicks what submits a form or follows a link, and waits until the next page replaced this one.
async fn click_and_load(c: &Client, what: Locator<'_>) {
    let old = c.find(Locator::Css("html")).await.unwrap();
    // A live part of the page may be replaced between finding and clicking: find it again.
    let mut clicked = false;
    for _ in 0..20 {
        if c.find(what).await.unwrap().click().await.is_ok() {
            clicked = true;
            break;
        }
    }
    assert!(clicked, "could not click {what:?}");
    for _ in 0..300 {
        if old.tag_name().await.is_err() {
            c.wait().for_element(Locator::Css("body")).await.unwrap();
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the page did not change");
}

async fn text(c: &Client, css: &str) -> String {
    match c.find(Locator::Css(css)).await {
        Ok(e) => e.text().await.unwrap(),
        Err(e) => panic!("no {css} ({e}) on {}: {}", c.current_url().await.unwrap(), c.source().await.unwrap()),
    }
}

async fn body(c: &Client) -> String {
    text(c, "body").await
}

async fn sign_in(c: &Client, serve: &Serve, login: &str, password: &str) {
    c.goto(&format!("{}/console", serve.url)).await.unwrap();
    assert!(c.current_url().await.unwrap().path().starts_with("/console/signin"), "signed out, the console asks to sign in");
    c.find(Locator::Id("login")).await.unwrap().send_keys(login).await.unwrap();
    c.find(Locator::Id("password")).await.unwrap().send_keys(password).await.unwrap();
    click_and_load(c, Locator::Css("form button[type=submit]")).await;
}

/// Waits (polling the page, never reloading it) until `check` holds on the page's text.
async fn until(c: &Client, what: &str, check: impl Fn(&str) -> bool) -> String {
    for _ in 0..300 {
        let now = body(c).await;
        if check(&now) {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the page never showed {what}: {}", body(c).await);
}

/// The states of the steps shown, in page order, read in one go inside the page (the live part
/// may be replaced between two WebDriver calls).
async fn step_states(c: &Client) -> Vec<String> {
    let states = c.execute("return [...document.querySelectorAll('tr[data-step]')].map(r => r.dataset.state);", vec![]).await.unwrap();
    serde_json::from_value(states).unwrap()
}

async fn request_id(c: &Client) -> String {
    let url = c.current_url().await.unwrap();
    url.path().strip_prefix("/console/requests/").expect("on a request's page").to_string()
}

/// Types into the VM search and adds each of `names` from what it finds.
async fn add_vms(c: &Client, typed: &str, names: &[&str]) {
    c.find(Locator::Id("vm-search")).await.unwrap().send_keys(typed).await.unwrap();
    for name in names {
        let css = format!("#vm-results button[data-add='{name}']");
        // The results are replaced while the answers to earlier keystrokes arrive: find again.
        let mut added = false;
        for _ in 0..20 {
            let Ok(button) = c.wait().at_most(Duration::from_secs(20)).for_element(Locator::Css(&css)).await else {
                panic!("the search for {typed:?} never offered {name}: {}", text(c, "#vm-results").await);
            };
            if button.click().await.is_ok() {
                added = true;
                break;
            }
        }
        assert!(added, "could not press Add for {name}");
    }
    let chosen = c.execute("return document.getElementById('vms').value;", vec![]).await.unwrap();
    for name in names {
        assert!(chosen.as_str().unwrap_or_default().lines().any(|l| l == *name), "{name} not added: {chosen}");
    }
}

#[tokio::test]
async fn it_people_decommission_watch_cancel_and_search_in_the_browser() {
    let slapd = Slapd::start_seeded().await.unwrap();
    // Slow power-offs, so a request can be watched and cancelled while it runs.
    let vcsim = Vcsim::start_with(VcsimOptions { delays: vec![("PowerOffVM_Task".into(), 1500)], ..Default::default() }).await.unwrap();
    let (serve, reader) = start_on(&vcsim, POLICY, &ldap_env(&slapd)).await;
    // bob makes a VM in Slack: it has a lease in his Slack name.
    assert!(serve.run("U0BOB", "create console-vm-01").await.readable().contains("expires"));
    let driver = Driver::start().await;
    let c = driver.browser().await;

    // Sign-in: a wrong password and a disabled account are refused with a sentence.
    sign_in(&c, &serve, "bob", "wrong").await;
    assert!(text(&c, ".error").await.contains("login or password is wrong"));
    shoot(&c, "01-signin-refused").await;
    sign_in(&c, &serve, "dave", "dave-password").await;
    assert!(text(&c, ".error").await.contains("login or password is wrong"), "dave's account is disabled");
    assert!(c.current_url().await.unwrap().path().starts_with("/console/signin"));

    // bob, an admin through nested groups, makes a request for two VMs found by typing.
    sign_in(&c, &serve, "bob", "bob-password").await;
    assert_eq!(text(&c, "h1").await, "My requests");
    c.goto(&format!("{}/console/new", serve.url)).await.unwrap();
    add_vms(&c, "app-web-0", &["app-web-01", "app-web-02"]).await;
    c.find(Locator::Id("ticket")).await.unwrap().send_keys("CHG-4711").await.unwrap();
    c.find(Locator::Id("reason")).await.unwrap().send_keys("retired with the old shop").await.unwrap();
    shoot(&c, "02-new-request").await;
    click_and_load(&c, Locator::Id("review")).await;
    let plan = until(&c, "the plan", |t| t.contains("Confirm the plan")).await;
    assert!(
        plan.contains("app-web-01") && plan.contains("app-web-02") && plan.contains("power_off") && plan.contains("delete_vm"),
        "{plan}"
    );
    assert!(!gone(&reader, "app-web-01").await, "nothing changes before the confirmation");
    shoot(&c, "03-plan").await;
    click_and_load(&c, Locator::Id("confirm")).await;
    let first = request_id(&c).await;
    // A marker in the page survives only if the page is never reloaded.
    c.execute("window.__stayed = true;", vec![]).await.unwrap();
    until(&c, "a step running or done", |t| t.contains("running") || t.contains("done")).await;
    for _ in 0..300 {
        let states = step_states(&c).await;
        if states.len() == 4 && states.iter().all(|s| s == "done") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(step_states(&c).await, ["done"; 4], "every step turned done in the page");
    assert_eq!(c.execute("return window.__stayed === true;", vec![]).await.unwrap(), json!(true), "without a reload");
    until(&c, "the request done", |t| t.contains("State: ✔ done") || t.contains("State: done")).await;
    assert!(gone(&reader, "app-web-01").await && gone(&reader, "app-web-02").await);
    shoot(&c, "04-request-done").await;

    // A second request, cancelled while its first step runs: nothing after it happens.
    c.goto(&format!("{}/console/new", serve.url)).await.unwrap();
    add_vms(&c, "db-0", &["app-db-01"]).await;
    c.find(Locator::Id("ticket")).await.unwrap().send_keys("CHG-4712").await.unwrap();
    click_and_load(&c, Locator::Id("review")).await;
    click_and_load(&c, Locator::Id("confirm")).await;
    let second = request_id(&c).await;
    c.wait().for_element(Locator::Id("cancel")).await.unwrap();
    click_and_load(&c, Locator::Id("cancel")).await;
    until(&c, "the request cancelled", |t| t.contains("cancelled")).await;
    assert!(!gone(&reader, "app-db-01").await, "the delete step never ran");
    shoot(&c, "05-request-cancelled").await;

    // History: by ticket, by VM, by state.
    c.goto(&format!("{}/console/requests?ticket=chg-4711", serve.url)).await.unwrap();
    let found = text(&c, "table").await;
    assert!(found.contains(&first) && !found.contains(&second), "{found}");
    c.goto(&format!("{}/console/requests?vm=app-db-01", serve.url)).await.unwrap();
    let found = text(&c, "table").await;
    assert!(found.contains(&second) && !found.contains(&first), "{found}");
    c.goto(&format!("{}/console/requests?state=cancelled", serve.url)).await.unwrap();
    assert!(text(&c, "table").await.contains(&second));
    c.goto(&format!("{}/console/requests?scope=all", serve.url)).await.unwrap();
    shoot(&c, "06-history").await;
    c.goto(&format!("{}/console/audit", serve.url)).await.unwrap();
    assert!(body(&c).await.contains("console sign-in"), "sign-ins are in the audit trail");
    shoot(&c, "07-audit").await;
    // In the console bob is the same person as in Slack (users.lookupByEmail): the VM he made
    // there is among his leases, and Extend asks the expire function, which answers.
    c.goto(&format!("{}/console/leases", serve.url)).await.unwrap();
    assert!(text(&c, "table").await.contains("console-vm-01"), "the Slack user's lease is bob's in the console");
    click_and_load(&c, Locator::Css("button[aria-label='Extend the lease of console-vm-01']")).await;
    let answer = text(&c, "[role=status]").await;
    assert!(answer.contains("console-vm-01") && answer.contains("expires"), "{answer}");
    shoot(&c, "08-leases").await;

    // Sign out; the old cookie signs nobody in.
    click_and_load(&c, Locator::Css("form.signout button")).await;
    assert!(c.current_url().await.unwrap().path().starts_with("/console/signin"));
    c.goto(&format!("{}/console/requests", serve.url)).await.unwrap();
    assert!(c.current_url().await.unwrap().path().starts_with("/console/signin"));

    // ann is no admin: her list has none of bob's requests, and his request's page is refused.
    sign_in(&c, &serve, "ann", "ann-password").await;
    assert_eq!(text(&c, "h1").await, "My requests");
    let mine = body(&c).await;
    assert!(!mine.contains(&first) && !mine.contains(&second), "{mine}");
    c.goto(&format!("{}/console/requests?scope=all", serve.url)).await.unwrap();
    assert!(!body(&c).await.contains(&first), "scope=all means nothing for a non-admin");
    c.goto(&format!("{}/console/requests/{first}", serve.url)).await.unwrap();
    assert!(body(&c).await.contains("only they and admins"));
    c.goto(&format!("{}/console/audit", serve.url)).await.unwrap();
    assert!(body(&c).await.contains("audit"), "the refusal names the command");

    // A POST with ann's session but without the CSRF token is refused, and changes nothing.
    let session = c.get_named_cookie("iaas_console").await.unwrap();
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let res = http
        .post(format!("{}/console/signout", serve.url))
        .header("cookie", format!("iaas_console={}", session.value()))
        .form(&[("csrf", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 403);
    assert!(res.text().await.unwrap().contains("security token"));
    c.refresh().await.unwrap();
    assert!(!c.current_url().await.unwrap().path().starts_with("/console/signin"), "still signed in: the forged sign-out did nothing");

    c.close().await.unwrap();
}

/// Without a browser: the cookies' attributes, the security headers, sign-in limits (429 with
/// `Retry-After`, before the directory is asked), and pages refused to the signed-out.
#[tokio::test]
async fn sign_in_is_limited_and_sessions_are_guarded() {
    let slapd = Slapd::start_seeded().await.unwrap();
    let vcsim = Vcsim::start().await.unwrap();
    let (serve, _reader) = start_on(&vcsim, POLICY, &ldap_env(&slapd)).await;
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let url = |path: &str| format!("{}{path}", serve.url);

    // Signed out, a page sends you to sign in and back; a form post is refused.
    let res = http.get(url("/console/requests?vm=x")).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 303);
    assert_eq!(res.headers()["location"], "/console/signin?next=%2Fconsole%2Frequests%3Fvm%3Dx");
    let res = http.post(url("/console/requests")).form(&[("vms", "app-web-01")]).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 303, "no session: to the sign-in page, nothing done");

    // The sign-in form's own token is a cookie and a field; without it nothing is checked.
    let form = http.get(url("/console/signin")).send().await.unwrap();
    let h = form.headers().clone();
    assert!(h["content-security-policy"].to_str().unwrap().contains("default-src 'self'"));
    assert_eq!(h["x-frame-options"], "DENY");
    let cookie = h["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict") && cookie.contains("Path=/console"), "{cookie}");
    assert!(!cookie.contains("Secure"), "plain http on loopback: a laptop, so not Secure");
    let token = cookie.split(';').next().unwrap().split_once('=').unwrap().1.to_string();
    let sign_in = |login: &'static str, password: &'static str, csrf: String| {
        http.post(url("/console/signin"))
            .header("cookie", format!("iaas_console_signin={token}"))
            .form(&[("login", login), ("password", password), ("csrf", &csrf)])
            .send()
    };
    let res = sign_in("bob", "bob-password", "forged".into()).await.unwrap();
    assert_eq!(res.status().as_u16(), 403);

    // A right password: a session cookie, HttpOnly and SameSite=Strict, with an absolute end.
    let res = sign_in("bob", "bob-password", token.clone()).await.unwrap();
    assert_eq!(res.status().as_u16(), 303);
    let session =
        res.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_string()).find(|c| c.starts_with("iaas_console="));
    let session = session.expect("a session cookie");
    assert!(session.contains("HttpOnly") && session.contains("SameSite=Strict") && session.contains("Max-Age=28800"), "{session}");

    // Wrong passwords: after the free ones, 429 with Retry-After, even for the right one.
    for _ in 0..5 {
        assert_eq!(sign_in("ann", "wrong", token.clone()).await.unwrap().status().as_u16(), 401);
    }
    let res = sign_in("ann", "ann-password", token.clone()).await.unwrap();
    assert_eq!(res.status().as_u16(), 429);
    assert!(res.headers().contains_key("retry-after"));
    assert!(res.text().await.unwrap().contains("Too many failed sign-ins"));
}

/// Signs in over HTTP; the session cookie (`iaas_console=…`) on success.
async fn http_sign_in(http: &reqwest::Client, serve: &Serve, login: &str, password: &str) -> Option<String> {
    let form = http.get(format!("{}/console/signin", serve.url)).send().await.unwrap();
    let cookie = form.headers()["set-cookie"].to_str().unwrap().to_string();
    let token = cookie.split(';').next().unwrap().split_once('=').unwrap().1.to_string();
    let res = http
        .post(format!("{}/console/signin", serve.url))
        .header("cookie", format!("iaas_console_signin={token}"))
        .form(&[("login", login), ("password", password), ("csrf", &token)])
        .send()
        .await
        .unwrap();
    let session =
        res.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_string()).find(|c| c.starts_with("iaas_console="));
    session.map(|c| c.split(';').next().unwrap().to_string())
}

/// A session trusts its identity for the identity TTL only, like Slack's cache: an account
/// locked in the directory afterwards is signed out at the next request past it.
#[tokio::test]
async fn an_account_locked_after_sign_in_loses_its_session() {
    let slapd = Slapd::start_seeded().await.unwrap();
    let vcsim = Vcsim::start().await.unwrap();
    let policy = format!("{POLICY}\n[identity]\ncache_ttl_secs = 1\n");
    let (serve, _reader) = start_on(&vcsim, &policy, &ldap_env(&slapd)).await;
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let session = http_sign_in(&http, &serve, "ann", "ann-password").await.expect("ann signs in");
    let page = || http.get(format!("{}/console/requests", serve.url)).header("cookie", session.clone()).send();
    assert_eq!(page().await.unwrap().status().as_u16(), 200);

    slapd
        .ldapmodify("dn: uid=ann,ou=people,dc=example,dc=test\nchangetype: modify\nadd: pwdAccountLockedTime\npwdAccountLockedTime: 000001010000Z\n")
        .unwrap();
    // Past the TTL the directory is asked again.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let res = page().await.unwrap();
    assert_eq!(res.status().as_u16(), 401);
    assert!(res.text().await.unwrap().contains("can no longer be used"));
    let res = page().await.unwrap();
    assert_eq!(res.status().as_u16(), 303, "the session is gone");
    // The REST API refuses the locked account as it refuses a wrong password (not "unreachable").
    let res = http.get(format!("{}/api/v1/decommissions", serve.url)).basic_auth("ann", Some("ann-password")).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 401);
}
