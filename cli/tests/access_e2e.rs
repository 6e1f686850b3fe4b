//! Who may do what, end to end through `iaas serve` with a real OpenLDAP directory and vcsim:
//! roles from nested groups, VM ownership scope, denials before the ack, the audit trail,
//! quotas under concurrency, and failing closed when the directory is down.

mod common;

use common::{ldap_env, start_on, Serve};
use iaas_tests::slapd::Slapd;
use iaas_tests::vcsim::Vcsim;
use iaas_vsphere::soap::SoapClient;
use iaas_vsphere::{PowerState, Vcenter};

// The seed's app-web-01 belongs to U0USER1 and app-db-01 to U0ADMIN (iaas.owner).
const POLICY: &str = r#"
[identity.slack_users]
U0USER1 = "ann@example.test"     # iaas-users
U0ADMIN = "bob@example.test"     # iaas-admins, three groups deep
U0DAVE = "dave@example.test"     # disabled in the directory
U0GINA = "gina@example.test"     # in a group no role uses

[roles.users]
groups = ["cn=iaas-users,ou=groups,dc=example,dc=test"]
commands = ["power", "vm list", "vm info", "create", "quota"]
scope = "owned"
quota = { vms = 1 }

[roles.admins]
groups = ["cn=iaas-admins,ou=groups,dc=example,dc=test"]
commands = ["*"]
scope = "all"
"#;

async fn start() -> (Slapd, Vcsim, Serve, SoapClient) {
    let slapd = Slapd::start_seeded().await.unwrap();
    let vcsim = Vcsim::start().await.unwrap();
    let (serve, reader) = start_on(&vcsim, POLICY, &ldap_env(&slapd)).await;
    (slapd, vcsim, serve, reader)
}

async fn power_state(reader: &SoapClient, name: &str) -> PowerState {
    let vm = reader.find_vm(name).await.unwrap();
    reader.vm_details(&vm).await.unwrap().summary.power_state
}

/// A command the gateway refuses: answered in the ack, nothing dispatched.
async fn refused_at_gateway(serve: &Serve, user: &str, text: &str) -> String {
    let (status, ack, id) = serve.slash(user, text).await;
    assert_eq!(status, 200);
    assert!(id.is_none(), "`{text}` by {user} was dispatched: {}", ack.readable());
    ack.readable()
}

#[tokio::test]
async fn roles_and_ownership_decide_and_every_refusal_is_audited() {
    let (_slapd, _vcsim, serve, reader) = start().await;

    // ann (iaas-users) may power her own VM …
    let own = serve.run("U0USER1", "power off app-web-01").await.readable();
    assert!(own.contains("app-web-01* is now powered off"), "{own}");
    // … and is refused another's, in the function, against the VM's owner: nothing changes.
    let other = serve.run("U0USER1", "power off app-db-01").await.readable();
    assert!(other.contains("this VM belongs to someone else") && other.contains("Nothing was changed on app-db-01"), "{other}");
    assert_eq!(power_state(&reader, "app-db-01").await, PowerState::PoweredOn);
    // … and commands her role does not grant are refused before the ack.
    let not_granted = refused_at_gateway(&serve, "U0USER1", "delete app-web-01").await;
    assert!(not_granted.contains("You may not run `delete`"), "{not_granted}");

    // bob is an admin through three nested groups: any VM.
    let admin = serve.run("U0ADMIN", "power off app-db-01").await.readable();
    assert!(admin.contains("app-db-01* is now powered off"), "{admin}");
    assert_eq!(power_state(&reader, "app-db-01").await, PowerState::PoweredOff);

    // Someone in no role, a disabled account, an unknown Slack user, a deleted Slack user.
    let no_role = refused_at_gateway(&serve, "U0GINA", "vm list").await;
    assert!(no_role.contains("no iaas role"), "{no_role}");
    let disabled = refused_at_gateway(&serve, "U0DAVE", "vm list").await;
    assert!(disabled.to_lowercase().contains("disabled"), "{disabled}");
    let unknown = refused_at_gateway(&serve, "U0STRANGER", "vm list").await;
    assert!(!unknown.is_empty());
    let deleted = refused_at_gateway(&serve, "U0CAROL", "vm list").await;
    assert!(!deleted.is_empty());
    // erin is found through Slack's users.info, and is in no group.
    let erin = refused_at_gateway(&serve, "U0ERIN", "vm list").await;
    assert!(erin.contains("no iaas role"), "{erin}");

    // The audit trail shows the decisions, to admins only.
    let audit = serve.run("U0ADMIN", "audit --user U0USER1").await.readable();
    assert!(audit.contains("`delete app-web-01` · denied at gateway"), "{audit}");
    assert!(audit.contains("`power off app-db-01` · denied at iaas-power"), "{audit}");
    assert!(audit.contains("`power off app-web-01` · done at iaas-power"), "{audit}");
    let gina = serve.run("U0ADMIN", "audit --user U0GINA").await.readable();
    assert!(gina.contains("`vm list` · denied at gateway"), "{gina}");
    let not_admin = refused_at_gateway(&serve, "U0USER1", "audit").await;
    assert!(not_admin.contains("You may not run `audit`"), "{not_admin}");
}

#[tokio::test]
async fn two_creates_that_together_exceed_the_quota_one_succeeds() {
    let (_slapd, _vcsim, serve, reader) = start().await;
    let before = reader.list_vms().await.unwrap().len();
    let (a, b) = tokio::join!(serve.slash("U0USER1", "create quota-a"), serve.slash("U0USER1", "create quota-b"));
    assert!(a.2.is_some() && b.2.is_some(), "both are accepted by the gateway");
    let answers = [serve.answer().await.readable(), serve.answer().await.readable()];
    let made = answers.iter().filter(|t| t.contains("is ready")).count();
    let refused = answers.iter().filter(|t| t.contains("over your quota (1 of 1 VMs")).count();
    assert_eq!((made, refused), (1, 1), "{answers:?}");
    assert_eq!(reader.list_vms().await.unwrap().len(), before + 1);
    let quota = serve.run("U0USER1", "quota").await.readable();
    assert!(quota.contains("1 of 1 VMs"), "{quota}");
}

#[tokio::test]
async fn directory_down_fails_closed_inside_the_ack() {
    let (mut slapd, _vcsim, serve, reader) = start().await;
    slapd.stop().await;
    // bob was never looked up, so nothing is cached for him.
    let answer = refused_at_gateway(&serve, "U0ADMIN", "power off app-db-01").await;
    assert!(answer.contains("could not be checked"), "{answer}");
    assert_eq!(power_state(&reader, "app-db-01").await, PowerState::PoweredOn);
    assert!(serve.healthy().await);
}
