//! vim25 SOAP client for vCenter (and govmomi's vcsim).
//!
//! One [`SoapClient`] holds one vCenter session, shared by all concurrent callers: the first call
//! logs in (exactly once), a `NotAuthenticated` fault triggers one re-login and a retry.
//! VMs are found by name through the VM index (index.rs, kept current by watch.rs with
//! WaitForUpdatesEx on a ContainerView), confirmed by one small read of the VM itself, and
//! read with RetrievePropertiesEx, asking only for the properties each operation needs.
//! Placement names are resolved against one read of the inventory (topology.rs, shared
//! resolver in placement.rs); creates and clones hand back their task (tasks.rs).

use super::*;
use std::future::Future;
use std::ops::Deref;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::{Mutex, OnceCell};

mod attributes;
mod authorization;
mod envelope;
mod fault;
mod index;
mod inventory;
mod lifecycle;
mod lookup;
mod power;
mod spec;
mod storage;
mod tasks;
mod topology;
mod transport;
mod watch;
mod xml;

use fault::Error;
pub use watch::IndexStats;
use xml::{MoRef, Node};

/// How to reach vCenter. `Debug` never prints the password.
#[derive(Clone)]
pub struct SoapConfig {
    /// e.g. `https://vc.example.com/sdk`
    pub url: String,
    pub user: String,
    pub password: String,
    pub insecure: bool,
    pub ca_file: Option<PathBuf>,
    /// Bound on every SOAP call, and on waiting for a task.
    pub timeout: Duration,
}

impl fmt::Debug for SoapConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SoapConfig")
            .field("url", &self.url)
            .field("user", &self.user)
            .field("password", &"***")
            .field("insecure", &self.insecure)
            .field("ca_file", &self.ca_file)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// The parts of ServiceContent the client uses.
struct ServiceContent {
    property_collector: MoRef,
    root_folder: MoRef,
    session_manager: MoRef,
    view_manager: MoRef,
    custom_fields_manager: Option<MoRef>,
    authorization_manager: Option<MoRef>,
    /// `about.apiVersion`, e.g. `8.0.3.0`.
    api_version: Option<String>,
    /// Some vCenters hand out the session cookie before Login; kept as a fallback.
    cookie: Option<String>,
}

/// One logged-in session and the objects that live only as long as it does.
pub(crate) struct Session {
    cookie: String,
    /// The UserSession key Login returned (HasPrivilegeOnEntities asks for it).
    key: Option<String>,
    /// ContainerView over all VMs; views are per session, so a new session makes a new one.
    vm_view: OnceCell<MoRef>,
}

/// The client callers hold. Its state lives in an `Arc<Core>` so that the VM index's
/// background task shares the session; dropping the client stops that task.
pub struct SoapClient {
    core: Arc<Core>,
}

impl Deref for SoapClient {
    type Target = Core;
    fn deref(&self) -> &Core {
        &self.core
    }
}

impl Drop for SoapClient {
    fn drop(&mut self) {
        self.core.stop_watching();
    }
}

/// Everything a [`SoapClient`] is: settings, HTTP client, session, and the VM index.
pub struct Core {
    /// Itself, for starting the index's task (which holds the core while it runs).
    me: Weak<Core>,
    cfg: SoapConfig,
    http: reqwest::Client,
    content: OnceCell<ServiceContent>,
    session: Mutex<Option<Arc<Session>>>,
    logins: AtomicU64,
    index: watch::Watch,
}

impl SoapClient {
    /// Builds the HTTP client (TLS settings, CA file). Does not contact vCenter: the first call logs in.
    pub fn new(cfg: SoapConfig) -> VcResult<Self> {
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .timeout(cfg.timeout)
            .connect_timeout(cfg.timeout)
            .danger_accept_invalid_certs(cfg.insecure);
        if let Some(path) = &cfg.ca_file {
            for cert in read_ca_file(path)? {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder.build().map_err(|e| VcError::Protocol(format!("cannot set up HTTPS: {e}")))?;
        let core = Arc::new_cyclic(|me| Core {
            me: me.clone(),
            cfg,
            http,
            content: OnceCell::new(),
            session: Mutex::new(None),
            logins: AtomicU64::new(0),
            index: watch::Watch::default(),
        });
        Ok(SoapClient { core })
    }
}

impl Core {
    /// How many times this client has called SessionManager.Login.
    pub fn logins(&self) -> u64 {
        self.logins.load(Ordering::Relaxed)
    }

    /// RetrieveServiceContent, once per client.
    async fn content(&self) -> Result<&ServiceContent, Error> {
        self.content
            .get_or_try_init(|| async {
                let this = MoRef::new("ServiceInstance", "ServiceInstance");
                let reply = self.post(envelope::call("RetrieveServiceContent", &this, ""), None).await?;
                parse_service_content(&reply.body, reply.cookie)
            })
            .await
    }

    /// The current session, logging in if there is none. Holding the lock across Login makes
    /// concurrent first callers wait for one login instead of racing to make several.
    async fn session(&self) -> Result<Arc<Session>, Error> {
        let mut slot = self.session.lock().await;
        if let Some(session) = slot.as_ref() {
            return Ok(session.clone());
        }
        let session = self.login().await?;
        *slot = Some(session.clone());
        Ok(session)
    }

    /// Replaces `stale` with a new session, unless another caller already did.
    async fn relogin(&self, stale: &Arc<Session>) -> Result<Arc<Session>, Error> {
        let mut slot = self.session.lock().await;
        if let Some(current) = slot.as_ref() {
            if !Arc::ptr_eq(current, stale) {
                return Ok(current.clone());
            }
        }
        *slot = None;
        let session = self.login().await?;
        *slot = Some(session.clone());
        Ok(session)
    }

    async fn login(&self) -> Result<Arc<Session>, Error> {
        let content = self.content().await?;
        self.logins.fetch_add(1, Ordering::Relaxed);
        let body = envelope::login(&content.session_manager, &self.cfg.user, &self.cfg.password);
        let reply = self.post(body, None).await?;
        let key = reply.body.child("returnval").and_then(|r| r.text_of("key")).map(str::to_owned);
        let cookie =
            reply.cookie.or_else(|| content.cookie.clone()).ok_or_else(|| VcError::Protocol("Login set no session cookie".into()))?;
        tracing::debug!(url = %self.cfg.url, "logged in to vCenter");
        Ok(Arc::new(Session { cookie, key, vm_view: OnceCell::new() }))
    }

    /// Runs `op` with the session; if vCenter says the session is gone, logs in again and
    /// runs it once more. `op` must be safe to repeat after a NotAuthenticated failure,
    /// which holds for a single call (vCenter rejected it before doing anything) or reads.
    async fn with_session<T, F, Fut>(&self, op: F) -> Result<T, Error>
    where
        F: Fn(Arc<Session>) -> Fut,
        Fut: Future<Output = Result<T, Error>>,
    {
        let session = self.session().await?;
        match op(session.clone()).await {
            Err(e) if session_lost(&e, &session) => {
                tracing::info!(url = %self.cfg.url, "vCenter session expired; logging in again");
                let fresh = self.relogin(&session).await?;
                op(fresh).await
            }
            other => other,
        }
    }

    /// Calls `method` on `this` within `session`.
    async fn invoke(&self, session: &Session, method: &str, this: &MoRef, args: &str) -> Result<Node, Error> {
        let reply = self.post(envelope::call(method, this, args), Some(&session.cookie)).await?;
        Ok(reply.body)
    }

    /// Ends the session if there is one (and the index that lives on it); errors are only logged.
    async fn end_session(&self) {
        self.stop_watching();
        let Some(session) = self.session.lock().await.take() else {
            return;
        };
        let Some(content) = self.content.get() else {
            return;
        };
        if let Err(e) = self.invoke(&session, "Logout", &content.session_manager, "").await {
            tracing::debug!(error = ?e, "vCenter logout failed");
        }
    }
}

/// NotAuthenticated, or (vcsim without a session) our own ContainerView no longer existing:
/// views die with their session, so either means "log in again".
fn session_lost(e: &Error, session: &Session) -> bool {
    let Some(fault) = e.fault() else { return false };
    fault.is("NotAuthenticated")
        || (fault.is("ManagedObjectNotFound") && session.vm_view.get().is_some_and(|view| fault.missing_object().as_ref() == Some(view)))
}

fn parse_service_content(body: &Node, cookie: Option<String>) -> Result<ServiceContent, Error> {
    let content = body.child("returnval").ok_or_else(|| VcError::Protocol("ServiceContent missing".into()))?;
    let required = |name: &str| {
        content.child(name).and_then(Node::moref).ok_or_else(|| Error::Vc(VcError::Protocol(format!("ServiceContent has no {name}"))))
    };
    Ok(ServiceContent {
        property_collector: required("propertyCollector")?,
        root_folder: required("rootFolder")?,
        session_manager: required("sessionManager")?,
        view_manager: required("viewManager")?,
        custom_fields_manager: content.child("customFieldsManager").and_then(Node::moref),
        authorization_manager: content.child("authorizationManager").and_then(Node::moref),
        api_version: content.child("about").and_then(|a| a.text_of("apiVersion")).map(str::to_owned),
        cookie,
    })
}

fn read_ca_file(path: &std::path::Path) -> VcResult<Vec<reqwest::Certificate>> {
    let unusable = |why: String| VcError::Unreachable { detail: format!("CA file {} is unusable: {why}", path.display()) };
    let pem = std::fs::read(path).map_err(|e| unusable(e.to_string()))?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| unusable(e.to_string()))?;
    if certs.is_empty() {
        return Err(unusable("no PEM certificate in it".into()));
    }
    Ok(certs)
}

#[async_trait]
impl Vcenter for SoapClient {
    fn describe(&self) -> String {
        self.cfg.url.clone()
    }

    async fn list_vms(&self) -> VcResult<Vec<VmSummary>> {
        self.list_summaries().await
    }

    async fn find_vms(&self, matches: &NameMatch, limit: usize) -> VcResult<VmPage> {
        self.matching_summaries(matches, limit).await
    }

    async fn vm_names(&self) -> VcResult<Vec<String>> {
        self.names().await
    }

    async fn find_vm(&self, name: &str) -> VcResult<VmRef> {
        self.find_by_name(name).await
    }

    async fn vm_details(&self, vm: &VmRef) -> VcResult<VmDetails> {
        self.details(vm).await
    }

    async fn power(&self, vm: &VmRef, op: PowerOp) -> VcResult<()> {
        self.run_power_op(vm, op).await
    }

    async fn list_templates(&self) -> VcResult<Vec<VmRef>> {
        self.templates().await
    }

    async fn find_template(&self, name: &str) -> VcResult<VmRef> {
        self.find_template_by_name(name).await
    }

    async fn begin_create(&self, spec: &CreateSpec) -> VcResult<TaskRef> {
        self.create(spec).await
    }

    async fn begin_clone(&self, source: &VmRef, spec: &CloneSpec) -> VcResult<TaskRef> {
        self.clone_vm(source, spec).await
    }

    async fn task_status(&self, task: &TaskRef) -> VcResult<TaskStatus> {
        self.read_task_status(task).await
    }

    async fn reconfigure(&self, vm: &VmRef, cpus: Option<u32>, memory_mb: Option<u64>) -> VcResult<()> {
        self.resize(vm, cpus, memory_mb).await
    }

    async fn destroy(&self, vm: &VmRef) -> VcResult<()> {
        self.delete(vm).await
    }

    async fn set_attribute(&self, vm: &VmRef, name: &str, value: &str) -> VcResult<()> {
        self.set_custom_value(vm, name, value).await
    }

    async fn vm_used_bytes(&self, vm: &VmRef) -> VcResult<u64> {
        self.used_bytes(vm).await
    }

    async fn datastores_for(&self, vm: &VmRef) -> VcResult<Vec<DatastoreInfo>> {
        self.host_datastores(vm).await
    }

    async fn placement_storage(&self, placement: &Placement) -> VcResult<PlacementStorage> {
        self.storage_for_placement(placement).await
    }

    async fn vms_on_datastore(&self, datastore: &Moref) -> VcResult<Vec<VmRef>> {
        self.vms_with_files_on(datastore).await
    }

    async fn relocate(&self, vm: &VmRef, datastore: &Moref) -> VcResult<()> {
        self.relocate_to(vm, datastore).await
    }

    async fn move_and_unregister(&self, vm: &VmRef, folder: &str) -> VcResult<()> {
        self.retire(vm, folder).await
    }

    async fn placement_objects(&self, placement: &Placement) -> VcResult<Vec<PlacedObject>> {
        Ok(self.topology().await?.resolve(placement)?.objects())
    }

    async fn missing_privileges(&self, on: Option<&PlacedObject>, privileges: &[&str]) -> VcResult<Vec<String>> {
        self.privileges_missing(on, privileges).await
    }

    async fn vm_custom_fields(&self) -> VcResult<Vec<String>> {
        self.custom_field_names().await
    }

    async fn api_version(&self) -> VcResult<String> {
        let content = self.content().await.map_err(|e| e.into_vc("", "reading the API version"))?;
        content.api_version.clone().ok_or_else(|| VcError::Protocol("ServiceContent has no about.apiVersion".into()))
    }

    async fn logout(&self) {
        self.end_session().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(url: &str) -> SoapConfig {
        SoapConfig {
            url: url.into(),
            user: "u".into(),
            password: "p".into(),
            insecure: false,
            ca_file: None,
            timeout: Duration::from_millis(1500),
        }
    }

    #[test]
    fn debug_hides_password() {
        let text = format!("{:?}", config("https://vc/sdk"));
        assert!(text.contains("***") && !text.contains("\"p\""), "{text}");
    }

    #[test]
    fn bad_ca_file_is_a_clear_error() {
        let mut cfg = config("https://vc/sdk");
        cfg.ca_file = Some("/nonexistent/ca.pem".into());
        match SoapClient::new(cfg) {
            Err(VcError::Unreachable { detail }) => {
                assert!(detail.contains("/nonexistent/ca.pem"), "{detail}")
            }
            Err(other) => panic!("unexpected error {other:?}"),
            Ok(_) => panic!("a missing CA file was accepted"),
        }
    }

    #[test]
    fn timeout_rounds_up() {
        let client = SoapClient::new(config("http://127.0.0.1:1/sdk")).unwrap();
        assert_eq!(client.timeout_secs(), 2);
        assert_eq!(client.logins(), 0);
    }

    #[tokio::test]
    async fn connection_refused_is_unreachable() {
        // Port 1 on loopback: nothing listens there.
        let client = SoapClient::new(config("http://127.0.0.1:1/sdk")).unwrap();
        match client.list_vms().await {
            Err(VcError::Unreachable { .. }) => {}
            other => panic!("expected Unreachable, got {other:?}"),
        }
    }
}
