//! The `Vcenter` contract: one suite, run against the demo inventory and against the SOAP
//! client talking to a fresh vcsim per test (tests change power states, so nothing is shared).
//!
//! Expected power semantics are vcsim 0.24's (see the table in shared/vsphere/src/demo.rs).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use iaas_tests::vcsim::{Vcsim, VcsimOptions};
use iaas_vsphere::demo::DemoInventory;
use iaas_vsphere::soap::{SoapClient, SoapConfig};
use iaas_vsphere::{PowerOp, PowerState, VcError, Vcenter, VmRef, ATTR_CREATED, ATTR_OWNER};

use PowerState::{PoweredOff as Off, PoweredOn as On, Suspended};

/// Generates `demo::<name>` and `vcsim::<name>` tests from `async fn <name>(&dyn Vcenter)`.
macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod demo {
            $(
                #[tokio::test]
                async fn $name() {
                    let vc = super::DemoInventory::new();
                    super::$name(&vc).await;
                }
            )*
        }
        mod vcsim {
            $(
                #[tokio::test]
                async fn $name() {
                    let sim = super::Vcsim::start().await.expect("start vcsim");
                    let vc = super::SoapClient::new(sim.config()).expect("client");
                    super::$name(&vc).await;
                    super::Vcenter::logout(&vc).await;
                }
            )*
        }
    };
}

contract!(
    list_is_the_seed_sorted_without_templates,
    find_vm_matches_exact_names_only,
    details_show_placement_tools_and_attributes,
    unknown_vm_is_not_found,
    power_on_from_each_state,
    power_off_from_each_state,
    suspend_from_each_state,
    reset_from_each_state,
    shutdown_guest_from_each_state,
    reboot_guest_is_not_supported,
    power_cycle_through_one_vm,
);

// ---- helpers ---------------------------------------------------------------------------------

async fn vm(vc: &dyn Vcenter, name: &str) -> VmRef {
    vc.find_vm(name)
        .await
        .unwrap_or_else(|e| panic!("find {name}: {e}"))
}

/// The state as both `list_vms` and `vm_details` report it; they must agree.
async fn state(vc: &dyn Vcenter, name: &str) -> PowerState {
    let listed = vc
        .list_vms()
        .await
        .expect("list")
        .into_iter()
        .find(|s| s.vm.name == name)
        .unwrap_or_else(|| panic!("{name} not listed"))
        .power_state;
    let detailed = vc
        .vm_details(&vm(vc, name).await)
        .await
        .expect("details")
        .summary
        .power_state;
    assert_eq!(listed, detailed, "list and details disagree about {name}");
    listed
}

/// Runs `op` on `name`, checks the outcome and the state afterwards.
async fn check(vc: &dyn Vcenter, name: &str, op: PowerOp, expected: Result<PowerState, VcError>) {
    let before = state(vc, name).await;
    let result = vc.power(&vm(vc, name).await, op).await;
    match &expected {
        Ok(_) => assert_eq!(result, Ok(()), "{} {name} (was {before})", op.as_str()),
        Err(e) => assert_eq!(
            result.as_ref().err(),
            Some(e),
            "{} {name} (was {before})",
            op.as_str()
        ),
    }
    let after = state(vc, name).await;
    let want = expected.as_ref().copied().unwrap_or(before);
    assert_eq!(after, want, "{name} after {}", op.as_str());
}

fn invalid(vm: &str, current: PowerState) -> Result<PowerState, VcError> {
    Err(VcError::InvalidPowerState {
        vm: vm.into(),
        current,
    })
}

/// name, power, ip, guest OS, cpus, memory MB
type ListRow<'a> = (
    &'a str,
    PowerState,
    Option<&'a str>,
    Option<&'a str>,
    u32,
    u64,
);
/// name, host, datastore, tools running, attributes
type Placement = (
    &'static str,
    &'static str,
    &'static str,
    bool,
    &'static [(&'static str, &'static str)],
);

// ---- the contract ----------------------------------------------------------------------------

async fn list_is_the_seed_sorted_without_templates(vc: &dyn Vcenter) {
    let vms = vc.list_vms().await.expect("list");
    let rows: Vec<ListRow> = vms
        .iter()
        .map(|v| {
            (
                v.vm.name.as_str(),
                v.power_state,
                v.ip.as_deref(),
                v.guest_os.as_deref(),
                v.cpus,
                v.memory_mb,
            )
        })
        .collect();
    assert_eq!(
        rows,
        vec![
            (
                "app-db-01",
                On,
                Some("10.20.0.21"),
                Some("Red Hat Enterprise Linux 9 (64-bit)"),
                4,
                16384
            ),
            (
                "app-web-01",
                On,
                Some("10.20.0.11"),
                Some("Ubuntu Linux (64-bit)"),
                2,
                4096
            ),
            (
                "app-web-02",
                On,
                Some("10.20.0.12"),
                Some("Ubuntu Linux (64-bit)"),
                2,
                4096
            ),
            (
                "build-agent-07",
                Suspended,
                Some("10.20.0.70"),
                Some("Debian GNU/Linux 12 (64-bit)"),
                1,
                2048
            ),
            (
                "win-app-01",
                Off,
                None,
                Some("Microsoft Windows Server 2022 (64-bit)"),
                2,
                8192
            ),
        ]
    );
    let morefs: std::collections::HashSet<&str> = vms.iter().map(|v| v.vm.moref.as_str()).collect();
    assert_eq!(morefs.len(), 5, "morefs must be distinct");
}

async fn find_vm_matches_exact_names_only(vc: &dyn Vcenter) {
    let listed = vc.list_vms().await.expect("list");
    let found = vc.find_vm("app-web-01").await.expect("find");
    assert_eq!(found.name, "app-web-01");
    let row = listed
        .iter()
        .find(|v| v.vm.name == "app-web-01")
        .expect("listed");
    assert_eq!(found, row.vm, "find_vm and list_vms name the same VM");

    for missing in ["app-web", "APP-WEB-01", "app-web-01 ", "", "tmpl-ubuntu-22"] {
        assert_eq!(
            vc.find_vm(missing).await,
            Err(VcError::NotFound {
                name: missing.into()
            }),
            "{missing:?}"
        );
    }
}

async fn details_show_placement_tools_and_attributes(vc: &dyn Vcenter) {
    let list = vc.list_vms().await.expect("list");
    let expected: [Placement; 5] = [
        (
            "app-web-01",
            "DC0_C0_H0",
            "LocalDS_0",
            true,
            &[(ATTR_OWNER, "U0USER1"), (ATTR_CREATED, "2026-01-15")],
        ),
        ("app-web-02", "DC0_C0_H1", "LocalDS_0", true, &[]),
        (
            "app-db-01",
            "DC0_C0_H2",
            "LocalDS_1",
            false,
            &[(ATTR_OWNER, "U0ADMIN")],
        ),
        ("win-app-01", "DC0_C0_H0", "LocalDS_1", false, &[]),
        ("build-agent-07", "DC0_C0_H1", "LocalDS_0", false, &[]),
    ];
    for (name, host, datastore, tools, attrs) in expected {
        let d = vc
            .vm_details(&vm(vc, name).await)
            .await
            .unwrap_or_else(|e| panic!("details {name}: {e}"));
        let row = list.iter().find(|v| v.vm.name == name).expect("listed");
        assert_eq!(
            &d.summary, row,
            "{name}: details summary equals the list row"
        );
        assert_eq!(d.host.as_deref(), Some(host), "{name} host");
        assert_eq!(
            d.datastores,
            vec![datastore.to_owned()],
            "{name} datastores"
        );
        assert_eq!(d.folder.as_deref(), Some("iaas"), "{name} folder");
        assert_eq!(d.tools_running, tools, "{name} tools");
        let want: BTreeMap<String, String> = attrs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(d.attributes, want, "{name} attributes");
    }
}

async fn unknown_vm_is_not_found(vc: &dyn Vcenter) {
    let ghost = VmRef {
        moref: "vm-424242".into(),
        name: "ghost".into(),
    };
    let not_found = Err(VcError::NotFound {
        name: "ghost".into(),
    });
    assert_eq!(vc.vm_details(&ghost).await.map(|_| ()), not_found);
    assert_eq!(vc.power(&ghost, PowerOp::On).await, not_found);
    assert_eq!(vc.power(&ghost, PowerOp::Shutdown).await, not_found);
}

async fn power_on_from_each_state(vc: &dyn Vcenter) {
    check(vc, "win-app-01", PowerOp::On, Ok(On)).await;
    check(vc, "build-agent-07", PowerOp::On, Ok(On)).await;
    check(vc, "app-web-01", PowerOp::On, invalid("app-web-01", On)).await;
}

async fn power_off_from_each_state(vc: &dyn Vcenter) {
    check(vc, "app-web-01", PowerOp::Off, Ok(Off)).await;
    check(vc, "build-agent-07", PowerOp::Off, Ok(Off)).await;
    check(vc, "win-app-01", PowerOp::Off, invalid("win-app-01", Off)).await;
}

async fn suspend_from_each_state(vc: &dyn Vcenter) {
    check(vc, "app-web-01", PowerOp::Suspend, Ok(Suspended)).await;
    check(
        vc,
        "build-agent-07",
        PowerOp::Suspend,
        invalid("build-agent-07", Suspended),
    )
    .await;
    // vcsim 0.24 suspends a powered-off VM (real vCenter refuses); the demo mirrors it.
    check(vc, "win-app-01", PowerOp::Suspend, Ok(Suspended)).await;
}

async fn reset_from_each_state(vc: &dyn Vcenter) {
    check(vc, "app-web-01", PowerOp::Reset, Ok(On)).await;
    check(vc, "build-agent-07", PowerOp::Reset, Ok(On)).await;
    check(vc, "win-app-01", PowerOp::Reset, invalid("win-app-01", Off)).await;
}

async fn shutdown_guest_from_each_state(vc: &dyn Vcenter) {
    check(vc, "app-web-01", PowerOp::Shutdown, Ok(Off)).await;
    check(
        vc,
        "app-db-01",
        PowerOp::Shutdown,
        Err(VcError::ToolsUnavailable {
            vm: "app-db-01".into(),
        }),
    )
    .await;
    check(
        vc,
        "win-app-01",
        PowerOp::Shutdown,
        invalid("win-app-01", Off),
    )
    .await;
    // vcsim 0.24 "shuts down" a suspended VM without asking for Tools.
    check(vc, "build-agent-07", PowerOp::Shutdown, Ok(Off)).await;
}

async fn reboot_guest_is_not_supported(vc: &dyn Vcenter) {
    let unsupported = Err(VcError::NotSupported {
        operation: "guest reboot".into(),
    });
    check(vc, "app-web-01", PowerOp::Reboot, unsupported.clone()).await;
    check(vc, "win-app-01", PowerOp::Reboot, unsupported).await;
}

async fn power_cycle_through_one_vm(vc: &dyn Vcenter) {
    let name = "app-web-02";
    check(vc, name, PowerOp::Off, Ok(Off)).await;
    check(vc, name, PowerOp::On, Ok(On)).await;
    check(vc, name, PowerOp::Suspend, Ok(Suspended)).await;
    check(vc, name, PowerOp::Reset, Ok(On)).await;
    check(vc, name, PowerOp::Shutdown, Ok(Off)).await;
    let err = vc
        .power(&vm(vc, name).await, PowerOp::Off)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "app-web-02 is powered off; that operation needs a different power state."
    );
}

// ---- SOAP client only ------------------------------------------------------------------------

mod soap_only {
    use super::*;

    fn client(cfg: SoapConfig) -> SoapClient {
        SoapClient::new(cfg).expect("client")
    }

    #[tokio::test]
    async fn describe_is_the_url() {
        let sim = Vcsim::start().await.unwrap();
        assert_eq!(client(sim.config()).describe(), sim.url);
        assert_eq!(DemoInventory::new().describe(), "demo inventory");
    }

    #[tokio::test]
    async fn new_does_not_contact_vcenter() {
        let sim = Vcsim::start().await.unwrap();
        let vc = client(sim.config());
        assert_eq!(vc.logins(), 0);
        assert!(
            sim.stats().await.unwrap().is_empty(),
            "no call before the first operation"
        );
    }

    #[tokio::test]
    async fn one_login_across_concurrent_calls() {
        let sim = Vcsim::start().await.unwrap();
        let vc = Arc::new(client(sim.config()));
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..24 {
            let vc = vc.clone();
            tasks.spawn(async move {
                match i % 3 {
                    0 => vc.list_vms().await.map(|l| assert_eq!(l.len(), 5)),
                    1 => vc.find_vm("app-db-01").await.map(drop),
                    _ => {
                        let r = vc.find_vm("app-web-01").await?;
                        vc.vm_details(&r).await.map(drop)
                    }
                }
            });
        }
        while let Some(joined) = tasks.join_next().await {
            joined.expect("task panicked").expect("call failed");
        }
        let stats = sim.stats().await.unwrap();
        assert_eq!(vc.logins(), 1);
        assert_eq!(stats.get("Login"), Some(&1), "{stats:?}");
        assert_eq!(stats.get("RetrieveServiceContent"), Some(&1), "{stats:?}");
        assert_eq!(stats.get("CreateContainerView"), Some(&1), "{stats:?}");
    }

    #[tokio::test]
    async fn calls_per_operation() {
        let sim = Vcsim::start().await.unwrap();
        let vc = client(sim.config());
        let count = |stats: &std::collections::HashMap<String, u64>, m: &str| {
            stats.get(m).copied().unwrap_or(0)
        };

        vc.list_vms().await.unwrap();
        let s = sim.stats().await.unwrap();
        let first: u64 = s.values().sum();
        assert_eq!(first, 4, "content + login + view + one retrieve: {s:?}");

        vc.list_vms().await.unwrap();
        let app = vc.find_vm("win-app-01").await.unwrap();
        let s2 = sim.stats().await.unwrap();
        assert_eq!(
            count(&s2, "RetrievePropertiesEx"),
            3,
            "list and find are one read each: {s2:?}"
        );

        vc.vm_details(&app).await.unwrap();
        let s3 = sim.stats().await.unwrap();
        assert_eq!(
            count(&s3, "RetrievePropertiesEx"),
            5,
            "details are two reads: {s3:?}"
        );

        vc.power(&app, PowerOp::On).await.unwrap();
        let s4 = sim.stats().await.unwrap();
        assert_eq!(count(&s4, "PowerOnVM_Task"), 1);
        assert_eq!(
            count(&s4, "RetrievePropertiesEx"),
            6,
            "vcsim tasks finish at once: one poll: {s4:?}"
        );
        assert_eq!(count(&s4, "Login"), 1);
    }

    #[tokio::test]
    async fn logs_in_again_after_the_session_is_terminated() {
        let sim = Vcsim::start().await.unwrap();
        let vc = client(sim.config());
        assert_eq!(vc.list_vms().await.unwrap().len(), 5);
        assert_eq!(vc.logins(), 1);

        // Through the cached ContainerView (vcsim answers ManagedObjectNotFound for it).
        assert_eq!(sim.terminate_other_sessions().await.unwrap(), 1);
        assert_eq!(vc.list_vms().await.unwrap().len(), 5);
        assert_eq!(vc.logins(), 2);

        assert_eq!(sim.terminate_other_sessions().await.unwrap(), 1);
        let web = vc.find_vm("app-web-01").await.unwrap();
        assert_eq!(vc.logins(), 3);

        // A method call (NotAuthenticated fault), then waiting for the task.
        assert_eq!(sim.terminate_other_sessions().await.unwrap(), 1);
        vc.power(&web, PowerOp::Off).await.unwrap();
        assert_eq!(vc.logins(), 4);

        // Reading one object's properties (vcsim reports them missing: NotAuthenticated).
        assert_eq!(sim.terminate_other_sessions().await.unwrap(), 1);
        let d = vc.vm_details(&web).await.unwrap();
        assert_eq!(d.summary.power_state, Off);
        assert_eq!(vc.logins(), 5);

        let stats = sim.stats().await.unwrap();
        assert_eq!(
            stats.get("Login"),
            Some(&(5 + 4)),
            "client logins plus the admin's: {stats:?}"
        );
    }

    #[tokio::test]
    async fn logout_ends_the_session_and_the_next_call_logs_in() {
        let sim = Vcsim::start().await.unwrap();
        let vc = client(sim.config());
        vc.logout().await; // nothing to end yet
        assert_eq!(sim.stats().await.unwrap().get("Logout"), None);
        vc.list_vms().await.unwrap();
        vc.logout().await;
        assert_eq!(sim.stats().await.unwrap().get("Logout"), Some(&1));
        vc.list_vms().await.unwrap();
        assert_eq!(vc.logins(), 2);
    }

    #[tokio::test]
    async fn rejected_credentials_are_invalid_login() {
        let sim = Vcsim::start().await.unwrap();
        let mut cfg = sim.config();
        cfg.password = String::new(); // vcsim accepts any non-empty password
        let vc = client(cfg);
        assert_eq!(vc.list_vms().await, Err(VcError::InvalidLogin));
        assert_eq!(vc.logins(), 1);
    }

    #[tokio::test]
    async fn nothing_listening_is_unreachable() {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let vc = client(SoapConfig {
            url: format!("http://127.0.0.1:{port}/sdk"),
            user: "iaas".into(),
            password: "secret".into(),
            insecure: false,
            ca_file: None,
            timeout: Duration::from_secs(5),
        });
        match vc.list_vms().await {
            Err(VcError::Unreachable { detail }) => {
                assert!(detail.to_lowercase().contains("refused"), "{detail}")
            }
            other => panic!("expected Unreachable, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn slow_method_times_out() {
        let sim = Vcsim::start_with(VcsimOptions {
            delays: vec![("RetrievePropertiesEx".into(), 3000)],
            ..Default::default()
        })
        .await
        .unwrap();
        let mut cfg = sim.config();
        cfg.timeout = Duration::from_millis(500);
        let vc = client(cfg);
        assert_eq!(vc.list_vms().await, Err(VcError::Timeout { secs: 1 }));
    }

    #[tokio::test]
    async fn tls_insecure_accepts_the_self_signed_certificate() {
        let sim = Vcsim::start_with(VcsimOptions {
            tls: true,
            ..Default::default()
        })
        .await
        .unwrap();
        assert!(sim.url.starts_with("https://"));
        let mut cfg = sim.config();
        cfg.ca_file = None;
        cfg.insecure = true;
        assert_eq!(client(cfg).list_vms().await.unwrap().len(), 5);
    }

    #[tokio::test]
    async fn tls_with_the_server_certificate_as_ca_file() {
        let sim = Vcsim::start_with(VcsimOptions {
            tls: true,
            ..Default::default()
        })
        .await
        .unwrap();
        let cfg = sim.config();
        assert_eq!(cfg.ca_file.as_deref(), sim.cert_path());
        assert!(cfg.ca_file.is_some());
        assert_eq!(client(cfg).list_vms().await.unwrap().len(), 5);
    }

    #[tokio::test]
    async fn tls_verification_rejects_an_unknown_certificate() {
        let sim = Vcsim::start_with(VcsimOptions {
            tls: true,
            ..Default::default()
        })
        .await
        .unwrap();
        let mut cfg = sim.config();
        cfg.ca_file = None;
        let vc = client(cfg);
        match vc.list_vms().await {
            Err(VcError::Unreachable { detail }) => {
                assert!(detail.to_lowercase().contains("certificate"), "{detail}")
            }
            other => panic!("expected a TLS failure, got {other:?}"),
        }
        assert_eq!(
            sim.stats().await.unwrap().get("RetrieveServiceContent"),
            None
        );
    }

    #[tokio::test]
    async fn extra_vms_are_listed_powered_on() {
        let sim = Vcsim::start_with(VcsimOptions {
            extra_vms: 12,
            ..Default::default()
        })
        .await
        .unwrap();
        let vms = client(sim.config()).list_vms().await.unwrap();
        assert_eq!(vms.len(), 17);
        let bench: Vec<_> = vms
            .iter()
            .filter(|v| v.vm.name.starts_with("bench-vm-"))
            .collect();
        assert_eq!(bench.len(), 12);
        assert_eq!(bench[0].vm.name, "bench-vm-001");
        assert!(bench.iter().all(|v| v.power_state == On));
    }
}
