//! The directory step against a real OpenLDAP (see `tests/src/slapd.rs`).

#[allow(dead_code)]
#[path = "../../../tests/src/slapd.rs"]
mod slapd;

use std::time::Duration;

use iaas_directory::DirectoryConfig;
use iaas_steps::directory::ComputerStep;
use iaas_steps::{StepOutcome, VmFacts};
use slapd::{Slapd, COMPUTERS_DN};

fn vm(name: &str) -> VmFacts {
    VmFacts {
        name: name.into(),
        moref: "vm-42".into(),
        uuid: None,
        ip: None,
        os_family: "windows".into(),
        owner: None,
        ticket: None,
        reason: None,
    }
}

async fn directory() -> Slapd {
    let slapd = Slapd::start_seeded().await.expect("slapd starts");
    slapd.add_computers(&["app-web-01", "app-db-01", "twin"]).expect("computers load");
    // A second `twin` deeper down: the step must not guess between them.
    slapd
        .ldapadd(&format!(
            "dn: ou=old,{COMPUTERS_DN}\nobjectClass: organizationalUnit\nou: old\n\n\
             dn: cn=twin,ou=old,{COMPUTERS_DN}\nobjectClass: device\ncn: twin\n"
        ))
        .expect("the second twin loads");
    slapd
}

fn step(slapd: &Slapd, password: &str) -> ComputerStep {
    let mut cfg = DirectoryConfig::new(&slapd.url, &slapd.admin_dn, password, COMPUTERS_DN);
    cfg.connect_timeout = Duration::from_secs(3);
    cfg.op_timeout = Duration::from_secs(3);
    ComputerStep { directory: cfg, object_class: "device".into() }
}

#[tokio::test]
async fn deletes_the_computer_then_already_done() {
    let slapd = directory().await;
    let s = step(&slapd, &slapd.admin_password);
    let out = s.run(&vm("app-web-01")).await.expect("delete succeeds");
    assert!(matches!(out, StepOutcome::Done(_)), "{out:?}");
    let again = s.run(&vm("app-web-01")).await.expect("second run succeeds");
    assert!(matches!(again, StepOutcome::AlreadyDone(_)), "{again:?}");
    // The neighbour is still there: deleting it now is Done, not AlreadyDone.
    let other = s.run(&vm("app-db-01")).await.expect("neighbour delete succeeds");
    assert!(matches!(other, StepOutcome::Done(_)), "{other:?}");
}

#[tokio::test]
async fn wrong_password_is_an_error() {
    let slapd = directory().await;
    let err = step(&slapd, "not-the-password").run(&vm("app-web-01")).await.unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("bind"), "{msg}");
    assert!(!msg.contains("not-the-password"), "{msg}");
    // Still there.
    let out = step(&slapd, &slapd.admin_password).run(&vm("app-web-01")).await.unwrap();
    assert!(matches!(out, StepOutcome::Done(_)), "{out:?}");
}

#[tokio::test]
async fn two_matches_delete_nothing_and_filter_is_escaped() {
    let slapd = directory().await;
    let s = step(&slapd, &slapd.admin_password);
    let err = s.run(&vm("twin")).await.unwrap_err();
    assert!(err.to_string().contains("2 device objects"), "{err}");
    let err2 = s.run(&vm("twin")).await.unwrap_err();
    assert!(err2.to_string().contains("2 device objects"), "{err2}");
    // A wildcard is a literal, not "everything".
    let out = s.run(&vm("app-*")).await.unwrap();
    assert!(matches!(out, StepOutcome::AlreadyDone(_)), "{out:?}");
}

#[tokio::test]
async fn directory_down_is_an_error() {
    let mut slapd = directory().await;
    let s = step(&slapd, &slapd.admin_password);
    slapd.stop().await;
    s.run(&vm("app-web-01")).await.unwrap_err();
}
