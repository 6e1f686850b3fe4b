//! DNS: remove the VM's forward (A) and reverse (PTR) records with an RFC 2136 dynamic update
//! signed with TSIG (HMAC-SHA256), as BIND 9 (`allow-update { key … }`) and Windows DNS with a
//! TSIG-capable front accept.
//!
//! The step first asks the server what exists (plain queries), so an absent record is
//! [`StepOutcome::AlreadyDone`] and only records that are really there are deleted:
//! - the whole A rrset of `<name>.<zone>`;
//! - for each address (the VM's `ip` and whatever the A rrset held) whose reverse name lies in
//!   `reverse_zone`, the PTR record pointing at `<name>.<zone>` — and only that one, so a
//!   reused address keeps the PTR of its new owner.
//!
//! Any transport or protocol error is a [`StepError`]: hickory reports a key the server
//! rejects (NOTAUTH/BADSIG/BADKEY with an empty MAC) as a generic protocol error
//! (hickory-dns #1981), so no error is ever read as "done".

use std::collections::BTreeSet;
use std::fmt;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_net::client::{Client, ClientHandle};
use hickory_net::proto::op::{DnsRequest, DnsResponse, Message, OpCode, Query, ResponseCode, UpdateMessage};
use hickory_net::proto::rr::rdata::tsig::TsigAlgorithm;
use hickory_net::proto::rr::rdata::PTR;
use hickory_net::proto::rr::{DNSClass, Name, RData, Record, RecordType, TSigner};
use hickory_net::runtime::TokioRuntimeProvider;
use hickory_net::udp::UdpClientStream;
use hickory_net::xfer::FirstAnswer;
use hickory_net::{DnsError, DnsHandle, NetError};

use base64::Engine;

use crate::settings::Settings;
use crate::{StepError, StepOutcome, VmFacts};

/// Allowed clock difference (seconds) between us and the server for TSIG.
const TSIG_FUDGE: u16 = 300;

/// Deletes a VM's A and PTR records by dynamic update. `Debug` never prints the key.
#[derive(Clone)]
pub struct DnsStep {
    /// The primary server for the zones (it must accept updates), e.g. `10.0.0.53:53`.
    pub server: SocketAddr,
    /// The forward zone, e.g. `example.test.`; the VM's record is `<name>.<zone>`.
    pub zone: String,
    /// The reverse zone, e.g. `20.10.in-addr.arpa.`; `None` leaves PTR records alone.
    pub reverse_zone: Option<String>,
    /// TSIG key name as the server knows it (`key "iaas" { … }`).
    pub key_name: String,
    /// The decoded HMAC-SHA256 secret (the base64 in `tsig-keygen`'s output, decoded).
    pub key_secret: Vec<u8>,
    /// Bound on each query and update.
    pub timeout: Duration,
}

impl fmt::Debug for DnsStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DnsStep")
            .field("server", &self.server)
            .field("zone", &self.zone)
            .field("reverse_zone", &self.reverse_zone)
            .field("key_name", &self.key_name)
            .field("key_secret", &"***")
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// The keys a `dns` plan entry may have.
const KEYS: [&str; 6] = ["server", "zone", "reverse_zone", "key_name", "secret_env", "timeout_secs"];

impl DnsStep {
    /// The step a plan entry describes: `server` (`ip[:port]`, port 53 by default), `zone`,
    /// `reverse_zone`, `key_name`, `secret_env` (the variable holding the base64 TSIG
    /// secret), `timeout_secs` (default 5). The error is a sentence naming the key at fault.
    pub fn from_settings(settings: &serde_json::Value) -> Result<DnsStep, String> {
        let s = Settings::new("dns", settings, &KEYS)?;
        let server_text = s.required("server")?;
        let server = server_text
            .parse::<SocketAddr>()
            .or_else(|_| server_text.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
            .map_err(|_| format!("The dns step's server {server_text:?} is not an IP address (with an optional :port)"))?;
        let secret = s.secret(true)?.ok_or_else(|| "The dns step needs secret_env".to_string())?;
        let key_secret = base64::engine::general_purpose::STANDARD
            .decode(secret.expose().trim())
            .map_err(|_| "The dns step's TSIG secret is not base64 (use the secret tsig-keygen prints)".to_string())?;
        Ok(DnsStep {
            server,
            zone: s.required("zone")?,
            reverse_zone: s.text("reverse_zone")?,
            key_name: s.required("key_name")?,
            key_secret,
            timeout: s.timeout(5)?,
        })
    }

    pub async fn run(&self, vm: &VmFacts) -> Result<StepOutcome, StepError> {
        let zone = parse_zone(&self.zone, "forward zone")?;
        let reverse_zone = match &self.reverse_zone {
            Some(z) => Some(parse_zone(z, "reverse zone")?),
            None => None,
        };
        let fqdn = self.fqdn(&vm.name, &zone)?;
        let vm_ip = match vm.ip.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            Some(s) => Some(s.parse::<IpAddr>().map_err(|_| {
                StepError::new(format!("The VM's IP address {s:?} is not an IP address, so its PTR record cannot be found."))
            })?),
            None => None,
        };
        if self.timeout.is_zero() {
            return Err(StepError::new("The DNS step's timeout is zero; set it to a few seconds."));
        }
        let mut client = self.client()?;
        let server = self.server;

        // What is there now?
        let a_records = self.call("look up", &fqdn, client.query(fqdn.clone(), DNSClass::IN, RecordType::A)).await?;
        let a_addrs: Vec<IpAddr> = answers(&a_records, &fqdn, RecordType::A)
            .filter_map(|d| match d {
                RData::A(a) => Some(IpAddr::V4(a.0)),
                _ => None,
            })
            .collect();

        let mut ptrs: Vec<(Name, Name)> = Vec::new(); // (reverse name, its zone)
        if let Some(rz) = &reverse_zone {
            let addrs: BTreeSet<IpAddr> = vm_ip.iter().copied().chain(a_addrs.iter().copied()).collect();
            for ip in addrs {
                let rname = Name::from(ip);
                if !rz.zone_of(&rname) {
                    tracing::debug!(%ip, zone = %rz, "address is outside the reverse zone; PTR left alone");
                    continue;
                }
                let resp = self.call("look up", &rname, client.query(rname.clone(), DNSClass::IN, RecordType::PTR)).await?;
                let ours = answers(&resp, &rname, RecordType::PTR).any(|d| match d {
                    RData::PTR(p) => p.0.eq_case(&fqdn) || p.0 == fqdn,
                    _ => false,
                });
                if ours {
                    ptrs.push((rname, rz.clone()));
                }
            }
        }

        if a_addrs.is_empty() && ptrs.is_empty() {
            let ptr_note = match (&reverse_zone, vm_ip) {
                (Some(_), Some(ip)) => format!(" and no PTR for {ip} points at it"),
                _ => String::new(),
            };
            return Ok(StepOutcome::AlreadyDone(format!("DNS on {server} has no A record for {fqdn}{ptr_note}.")));
        }

        let mut done = Vec::new();
        if !a_addrs.is_empty() {
            let record = Record::update0(fqdn.clone(), 0, RecordType::A);
            // zone_of was checked in fqdn(); delete_rrset asserts it.
            let resp = self.call("delete the A record of", &fqdn, client.delete_rrset(record, zone.clone())).await?;
            self.check_update(&resp, &fqdn)?;
            let list: Vec<String> = a_addrs.iter().map(|a| a.to_string()).collect();
            done.push(format!("the A record {fqdn} ({})", list.join(", ")));
        }
        for (rname, rz) in ptrs {
            let record = Record::from_rdata(rname.clone(), 0, RData::PTR(PTR(fqdn.clone())));
            let resp = self.call("delete the PTR record", &rname, client.delete_by_rdata(record, rz)).await?;
            self.check_update(&resp, &rname)?;
            done.push(format!("the PTR record {rname}"));
        }
        Ok(StepOutcome::Done(format!("Removed {} from DNS on {server}.", done.join(" and "))))
    }

    /// Proves the key without changing anything: per zone (the forward zone, and the reverse
    /// zone when set) one TSIG-signed RFC 2136 update whose only content is the prerequisite
    /// "the zone's SOA exists" (RFC 2136 2.4.1) and no update records. The server checks the
    /// signature and its `allow-update` rule before the prerequisite, so a wrong key name or
    /// secret is refused, and a zone it does not serve is NOTAUTH. `Ok` is one sentence per
    /// zone. (A plain query would not be signed: hickory signs updates and transfers only.)
    pub async fn probe(&self) -> Result<Vec<String>, StepError> {
        if self.timeout.is_zero() {
            return Err(StepError::new("The DNS step's timeout is zero; set it to a few seconds."));
        }
        let mut zones = vec![parse_zone(&self.zone, "forward zone")?];
        if let Some(z) = &self.reverse_zone {
            zones.push(parse_zone(z, "reverse zone")?);
        }
        let client = self.client()?;
        let mut said = Vec::new();
        for zone in zones {
            let mut soa = Query::new();
            soa.set_name(zone.clone()).set_query_class(DNSClass::IN).set_query_type(RecordType::SOA);
            let mut message = Message::query();
            message.metadata.op_code = OpCode::Update;
            message.metadata.recursion_desired = false;
            message.add_zone(soa);
            let mut exists = Record::update0(zone.clone(), 0, RecordType::SOA);
            exists.dns_class = DNSClass::ANY;
            message.add_pre_requisite(exists);
            let resp = self.call("accept a signed update for", &zone, client.send(DnsRequest::from(message)).first_answer()).await?;
            self.check_update(&resp, &zone)?;
            said.push(format!("{} accepts updates for {zone} signed with key {:?}", self.server, self.key_name));
        }
        Ok(said)
    }

    /// `<name>.<zone>`, checked to lie inside the zone (hickory asserts it when updating).
    fn fqdn(&self, name: &str, zone: &Name) -> Result<Name, StepError> {
        let label = name.trim().trim_end_matches('.');
        let bad = || StepError::new(format!("The VM name {name:?} is not usable as a DNS name, so its records cannot be removed."));
        if label.is_empty() || label.contains(char::is_whitespace) {
            return Err(bad());
        }
        let relative = Name::from_ascii(label).map_err(|_| bad())?;
        let fqdn = if zone.zone_of(&Name::from_ascii(format!("{label}.")).map_err(|_| bad())?) && label.contains('.') {
            // Already fully qualified in this zone (e.g. "app-web-01.example.test").
            Name::from_ascii(format!("{label}.")).map_err(|_| bad())?
        } else {
            relative.append_domain(zone).map_err(|_| bad())?
        };
        if !zone.zone_of(&fqdn) || fqdn == *zone {
            return Err(bad());
        }
        Ok(fqdn)
    }

    fn client(&self) -> Result<Client<TokioRuntimeProvider>, StepError> {
        let key_name = Name::from_ascii(self.key_name.trim()).map_err(|_| {
            StepError::new(format!("The TSIG key name {:?} is not a valid DNS name; check the DNS step's key_name.", self.key_name))
        })?;
        if self.key_secret.is_empty() {
            return Err(StepError::new("The TSIG key secret is empty; configure the base64 secret from tsig-keygen."));
        }
        let signer = TSigner::new(self.key_secret.clone(), TsigAlgorithm::HmacSha256, key_name, TSIG_FUDGE)
            .map_err(|e| StepError::new(format!("The TSIG signer could not be set up ({e}).")))?;
        let stream = UdpClientStream::builder(self.server, TokioRuntimeProvider::default())
            .with_timeout(Some(self.timeout))
            .with_signer(Some(signer))
            .build();
        let (client, bg) = Client::<TokioRuntimeProvider>::from_sender(stream);
        tokio::spawn(bg);
        Ok(client)
    }

    /// One exchange, bounded by the timeout (hickory has its own; this one is a backstop).
    async fn call(
        &self,
        what: &str,
        name: &Name,
        fut: impl Future<Output = Result<DnsResponse, NetError>>,
    ) -> Result<DnsResponse, StepError> {
        let server = self.server;
        match tokio::time::timeout(self.timeout + Duration::from_millis(250), fut).await {
            Err(_) | Ok(Err(NetError::Timeout)) => Err(StepError::new(format!(
                "The DNS server {server} did not answer within {:?} when asked to {what} {name}. Check that it is running and reachable.",
                self.timeout
            ))),
            // Clients that map NXDOMAIN / no data to an error: same as an empty answer.
            Ok(Err(NetError::Dns(DnsError::NoRecordsFound(nr))))
                if matches!(nr.response_code, ResponseCode::NoError | ResponseCode::NXDomain) =>
            {
                let mut msg = hickory_net::proto::op::Message::query();
                msg.metadata.response_code = nr.response_code;
                msg.metadata.message_type = hickory_net::proto::op::MessageType::Response;
                DnsResponse::from_message(msg).map_err(|e| StepError::new(format!("The DNS answer for {name} could not be read ({e}).")))
            }
            Ok(Err(e)) => {
                tracing::warn!(%server, %name, error = %e, "DNS exchange failed");
                Err(StepError::new(format!(
                    "The DNS server {server} could not be asked to {what} {name} ({e}). If this is an update, check the TSIG key name and secret (a rejected key shows up this way), the server's allow-update rule and that it is the zone's primary."
                )))
            }
            Ok(Ok(resp)) => {
                let rc = resp.metadata.response_code;
                if what == "look up" && !matches!(rc, ResponseCode::NoError | ResponseCode::NXDomain) {
                    return Err(StepError::new(format!(
                        "The DNS server {server} answered {rc} when asked to look up {name}. Check that it is authoritative for the zone."
                    )));
                }
                Ok(resp)
            }
        }
    }

    fn check_update(&self, resp: &DnsResponse, name: &Name) -> Result<(), StepError> {
        let server = self.server;
        match resp.metadata.response_code {
            ResponseCode::NoError => Ok(()),
            ResponseCode::NotAuth => Err(StepError::new(format!(
                "The DNS server {server} refused the update for {name} (NOTAUTH): the TSIG key {:?} was not accepted or the server is not authoritative for the zone. Check the key name and secret.",
                self.key_name
            ))),
            ResponseCode::Refused => Err(StepError::new(format!(
                "The DNS server {server} refused the update for {name} (REFUSED). Check the zone's allow-update rule for key {:?}.",
                self.key_name
            ))),
            ResponseCode::NotZone => Err(StepError::new(format!(
                "The DNS server {server} says {name} is not in the zone it was sent for (NOTZONE). Check the configured zones."
            ))),
            rc => Err(StepError::new(format!(
                "The DNS server {server} rejected the update for {name} ({rc})."
            ))),
        }
    }
}

fn parse_zone(zone: &str, what: &str) -> Result<Name, StepError> {
    let z = zone.trim();
    let z = if z.ends_with('.') { z.to_owned() } else { format!("{z}.") };
    match Name::from_ascii(&z) {
        Ok(n) if !z.trim_matches('.').is_empty() => Ok(n),
        _ => Err(StepError::new(format!("The DNS {what} {zone:?} is not a valid zone name; check the DNS step's configuration."))),
    }
}

/// The answer records of `rtype` owned by `name`.
fn answers<'a>(resp: &'a DnsResponse, name: &'a Name, rtype: RecordType) -> impl Iterator<Item = &'a RData> + 'a {
    resp.answers.iter().filter(move |r| r.record_type() == rtype && (r.name.eq_case(name) || r.name == *name)).map(|r| &r.data)
}
