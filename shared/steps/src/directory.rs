//! Directory: delete the VM's computer object from Active Directory (or LDAP).
//!
//! The object is found by `cn=<name>` (filter-escaped) and the configured object class
//! (`computer` on AD; the OpenLDAP tests use `device`) in the subtree under the configured base
//! DN (the computers OU), then deleted by the DN the server returned. Exactly one match is
//! deleted; none is [`StepOutcome::AlreadyDone`]; more than one is a [`StepError`] (we never
//! guess which). Every result code is checked (ldap3 returns `Ok` for a failed bind or delete).
//!
//! The connection settings are iaas-directory's [`DirectoryConfig`] (validated by
//! [`iaas_directory::Directory::new`]); `base_dn` is the computers OU and the service account
//! needs delete rights there. TLS works as in iaas-directory: rustls with the ring provider,
//! trusting `ca_file` or else the system roots. Connect is bounded by `connect_timeout`, every
//! operation by `op_timeout`.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use iaas_directory::{Directory, DirectoryConfig};
use ldap3::{ldap_escape, Ldap, LdapConnAsync, LdapConnSettings, LdapError, LdapResult, Scope, SearchEntry};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};

use crate::settings::Settings;
use crate::{StepError, StepOutcome, VmFacts};

/// Deletes a VM's computer object. `Debug` never prints the bind password.
#[derive(Clone)]
pub struct ComputerStep {
    /// url, bind_dn, bind_password, base_dn (the computers OU), ca_file, starttls,
    /// connect_timeout, op_timeout (max_group_depth is not used).
    pub directory: DirectoryConfig,
    /// `computer` on Active Directory.
    pub object_class: String,
}

impl fmt::Debug for ComputerStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ComputerStep")
            .field("directory", &self.directory) // DirectoryConfig's Debug hides the password
            .field("object_class", &self.object_class)
            .finish()
    }
}

/// The keys a `directory_computer` plan entry may have.
const KEYS: [&str; 8] = ["url", "bind_dn", "secret_env", "base_dn", "object_class", "ca_file", "starttls", "timeout_secs"];

impl ComputerStep {
    /// The step a plan entry describes: `url`, `bind_dn`, `secret_env` (the bind password's
    /// variable), `base_dn`, `object_class` (default `computer`), `ca_file`, `starttls`
    /// (default false), `timeout_secs` (default 10). The error is a sentence naming the key.
    pub fn from_settings(settings: &serde_json::Value) -> Result<ComputerStep, String> {
        let s = Settings::new("directory_computer", settings, &KEYS)?;
        let password = s.secret(true)?.ok_or_else(|| "The directory_computer step needs secret_env".to_string())?;
        let mut cfg = DirectoryConfig::new(s.required("url")?, s.required("bind_dn")?, password.expose(), s.required("base_dn")?);
        cfg.ca_file = s.text("ca_file")?.map(Into::into);
        cfg.starttls = s.bool("starttls", false)?;
        let timeout = s.timeout(10)?;
        cfg.connect_timeout = timeout;
        cfg.op_timeout = timeout;
        Ok(ComputerStep { directory: cfg, object_class: s.text("object_class")?.unwrap_or_else(|| "computer".into()) })
    }

    /// For Active Directory (`objectClass=computer`).
    pub fn new(directory: DirectoryConfig) -> ComputerStep {
        ComputerStep { directory, object_class: "computer".into() }
    }

    pub async fn run(&self, vm: &VmFacts) -> Result<StepOutcome, StepError> {
        let cfg = &self.directory;
        // Same checks as the identity lookups (URL scheme, empty password, TLS settings …).
        Directory::new(cfg.clone()).map_err(|e| StepError::new(e.to_string()))?;
        let name = vm.name.trim();
        if name.is_empty() {
            return Err(StepError::new("The VM has no name, so its computer object cannot be found."));
        }
        let class = self.object_class.trim();
        if class.is_empty() || !class.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err(StepError::new(format!(
                "The directory step's object class {:?} is not a valid object class name.",
                self.object_class
            )));
        }
        let mut ldap = self.connect().await?;
        let result = self.find_and_delete(&mut ldap, name, class).await;
        let _ = tokio::time::timeout(cfg.op_timeout, ldap.unbind()).await;
        result
    }

    async fn find_and_delete(&self, ldap: &mut Ldap, name: &str, class: &str) -> Result<StepOutcome, StepError> {
        let cfg = &self.directory;
        let res =
            ldap.with_timeout(cfg.op_timeout).simple_bind(&cfg.bind_dn, &cfg.bind_password).await.map_err(|e| self.ldap_err(e, "bind"))?;
        match res.rc {
            0 => {}
            49 => {
                return Err(StepError::new(format!(
                    "The directory rejected the service account's bind ({}). Check the configured bind DN and bind password.",
                    describe(&res)
                )))
            }
            _ => return Err(StepError::new(format!("Binding to the directory failed: {}.", describe(&res)))),
        }

        let filter = format!("(&(objectClass={class})(cn={}))", ldap_escape(name));
        let ldap3::SearchResult(entries, res) = ldap
            .with_timeout(cfg.op_timeout)
            .search(cfg.base_dn.as_str(), Scope::Subtree, &filter, vec!["1.1"])
            .await
            .map_err(|e| self.ldap_err(e, "search"))?;
        match res.rc {
            0 => {}
            32 => {
                return Err(StepError::new(format!(
                    "The computers OU {} does not exist in the directory; check the directory step's base DN.",
                    cfg.base_dn
                )))
            }
            _ => return Err(StepError::new(format!("Searching the directory for {name} failed: {}.", describe(&res)))),
        }
        let mut dns = Vec::new();
        for re in entries {
            if re.is_ref() || re.is_intermediate() {
                continue;
            }
            let entry = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| SearchEntry::construct(re)))
                .map_err(|_| StepError::new("The directory sent a search result that could not be parsed."))?;
            dns.push(entry.dn);
        }
        let dn = match dns.len() {
            0 => {
                return Ok(StepOutcome::AlreadyDone(format!(
                    "The directory has no {class} object named {name} under {}.",
                    cfg.base_dn
                )))
            }
            1 => dns.remove(0),
            n => {
                return Err(StepError::new(format!(
                    "{n} {class} objects named {name} exist under {} ({}), so none was deleted. Remove the wrong ones by hand or narrow the base DN.",
                    cfg.base_dn,
                    dns.join("; ")
                )))
            }
        };

        let res = ldap.with_timeout(cfg.op_timeout).delete(&dn).await.map_err(|e| self.ldap_err(e, "delete"))?;
        match res.rc {
            0 => Ok(StepOutcome::Done(format!("Deleted the {class} object {dn} from the directory."))),
            32 => Ok(StepOutcome::AlreadyDone(format!("The {class} object {dn} was already gone."))),
            50 => Err(StepError::new(format!(
                "The service account may not delete {dn} ({}). Grant it delete rights on the computers OU.",
                describe(&res)
            ))),
            66 => Err(StepError::new(format!(
                "The directory will not delete {dn} because it has child objects ({}). Remove them (e.g. BitLocker or service connection points) first.",
                describe(&res)
            ))),
            _ => Err(StepError::new(format!("Deleting {dn} from the directory failed: {}.", describe(&res)))),
        }
    }

    async fn connect(&self) -> Result<Ldap, StepError> {
        let cfg = &self.directory;
        let ldaps = cfg.url.trim().to_ascii_lowercase().starts_with("ldaps://");
        let mut settings = LdapConnSettings::new().set_conn_timeout(cfg.connect_timeout).set_starttls(cfg.starttls);
        if ldaps || cfg.starttls {
            settings = settings.set_config(tls_config(cfg.ca_file.as_ref())?);
        }
        let (conn, ldap) = LdapConnAsync::with_settings(settings, cfg.url.trim()).await.map_err(|e| self.ldap_err(e, "connect"))?;
        tokio::spawn(async move {
            if let Err(e) = conn.drive().await {
                tracing::debug!(error = %e, "directory connection ended with an error");
            }
        });
        Ok(ldap)
    }

    fn ldap_err(&self, e: LdapError, phase: &str) -> StepError {
        let cfg = &self.directory;
        match e {
            LdapError::Timeout { .. } => StepError::new(format!(
                "The directory server {} did not answer the {phase} within {:?}. It may be down or overloaded, or a firewall may be dropping the traffic.",
                cfg.url,
                if phase == "connect" { cfg.connect_timeout } else { cfg.op_timeout }
            )),
            LdapError::LdapResult { result } if phase == "connect" => StepError::new(format!(
                "The directory server {} refused StartTLS: {}.",
                cfg.url,
                describe(&result)
            )),
            other => StepError::new(format!(
                "The directory server {} could not be reached or dropped the connection during the {phase} ({other}). Check the URL, the TLS settings and that the server is running.",
                cfg.url
            )),
        }
    }
}

fn tls_config(ca_file: Option<&PathBuf>) -> Result<Arc<ClientConfig>, StepError> {
    let mut roots = RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let pem = std::fs::read(path).map_err(|e| StepError::new(format!("The CA file {} cannot be read ({e}).", path.display())))?;
            for cert in CertificateDer::pem_slice_iter(&pem) {
                let cert = cert.map_err(|_| StepError::new(format!("The CA file {} is not valid PEM.", path.display())))?;
                roots.add(cert).map_err(|e| StepError::new(format!("A certificate in {} is not usable ({e}).", path.display())))?;
            }
        }
        None => {
            for cert in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(cert);
            }
        }
    }
    if roots.is_empty() {
        return Err(StepError::new("TLS is on but no CA certificate was found to trust; set the directory's CA file."));
    }
    let config = ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| StepError::new(format!("TLS set-up failed ({e}).")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

fn describe(res: &LdapResult) -> String {
    let text = res.text.trim().trim_end_matches('\0');
    if text.is_empty() {
        format!("result code {}", res.rc)
    } else {
        format!("result code {}: {text}", res.rc)
    }
}
