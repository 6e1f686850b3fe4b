//! Parsing a CloudEvent from an HTTP request, in the three shapes VEBA sends:
//! structured JSON (`application/cloudevents+json`), the same JSON as plain `application/json`
//! (VEBA on OpenFaaS), and binary mode (`ce-*` headers, the bare vCenter event as the body;
//! Knative-based VEBA). `data` is the vCenter event with vSphere's PascalCase field names.

use axum::http::HeaderMap;
use iaas_store::InvocationId;
use iaas_vsphere::Moref;
use serde_json::Value;

/// One vCenter event, whatever shape it arrived in.
#[derive(Debug, Clone, PartialEq)]
pub struct VcEvent {
    pub id: String,
    pub source: String,
    /// vCenter's event class, e.g. `AlarmStatusChangedEvent`, `VmPoweredOffEvent`.
    pub class: String,
    pub data: Value,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParseError {
    #[error("the body is not JSON: {0}")]
    NotJson(String),
    #[error("this is not a CloudEvent (no ce-specversion header and no specversion in the body)")]
    NotCloudEvent,
    #[error("the CloudEvent has no {0}")]
    Missing(&'static str),
}

/// A managed object an event names: `{"Type": "VirtualMachine", "Value": "vm-42"}` plus the
/// name vCenter gave alongside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntityRef {
    pub ty: String,
    pub moref: Moref,
    pub name: String,
}

/// An alarm's colour; VEBA sends them lower-case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlarmStatus {
    Gray,
    Green,
    Yellow,
    Red,
}

impl AlarmStatus {
    pub fn parse(text: &str) -> Option<AlarmStatus> {
        match text.to_ascii_lowercase().as_str() {
            "gray" | "grey" => Some(AlarmStatus::Gray),
            "green" => Some(AlarmStatus::Green),
            "yellow" => Some(AlarmStatus::Yellow),
            "red" => Some(AlarmStatus::Red),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AlarmStatus::Gray => "gray",
            AlarmStatus::Green => "green",
            AlarmStatus::Yellow => "yellow",
            AlarmStatus::Red => "red",
        }
    }
}

impl VcEvent {
    pub fn parse(headers: &HeaderMap, body: &[u8]) -> Result<VcEvent, ParseError> {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty());
        if header("ce-specversion").is_some() {
            let data = if body.iter().all(u8::is_ascii_whitespace) {
                Value::Null
            } else {
                serde_json::from_slice(body).map_err(|e| ParseError::NotJson(e.to_string()))?
            };
            let ty = header("ce-type").ok_or(ParseError::Missing("ce-type header"))?;
            let class = header("ce-subject")
                .map(str::to_owned)
                .or_else(|| class_from_type(ty))
                .ok_or(ParseError::Missing("event class (ce-subject, or a com.vmware.vsphere.<Class>.v0 type)"))?;
            return Ok(VcEvent {
                id: header("ce-id").ok_or(ParseError::Missing("ce-id header"))?.to_owned(),
                source: header("ce-source").ok_or(ParseError::Missing("ce-source header"))?.to_owned(),
                class,
                data,
            });
        }
        let mut doc: Value = serde_json::from_slice(body).map_err(|e| ParseError::NotJson(e.to_string()))?;
        if doc.get("specversion").and_then(Value::as_str).is_none() {
            return Err(ParseError::NotCloudEvent);
        }
        let text = |key: &str| doc.get(key).and_then(Value::as_str).filter(|v| !v.is_empty()).map(str::to_owned);
        let class = text("subject")
            .or_else(|| text("type").and_then(|t| class_from_type(&t)))
            .ok_or(ParseError::Missing("subject (the vCenter event class)"))?;
        let id = text("id").ok_or(ParseError::Missing("id"))?;
        let source = text("source").ok_or(ParseError::Missing("source"))?;
        Ok(VcEvent { id, source, class, data: doc.get_mut("data").map(Value::take).unwrap_or(Value::Null) })
    }

    /// What deduplicates deliveries to `function`: VEBA sends each event to every function
    /// subscribed to its class, and may send it to one more than once.
    pub fn claim_key(&self, function: &str) -> InvocationId {
        format!("{function}:{}#{}", self.source, self.id).into()
    }

    fn text(&self, path: &[&str]) -> Option<&str> {
        let mut v = &self.data;
        for key in path {
            v = v.get(key)?;
        }
        v.as_str().filter(|t| !t.is_empty())
    }

    fn entity_at(&self, holder: &str, inner: &str) -> Option<EntityRef> {
        Some(EntityRef {
            ty: self.text(&[holder, inner, "Type"])?.to_owned(),
            moref: self.text(&[holder, inner, "Value"])?.into(),
            name: self.text(&[holder, "Name"]).unwrap_or("").to_owned(),
        })
    }

    /// `data.Alarm.Name`, e.g. `VM CPU Usage`.
    pub fn alarm_name(&self) -> Option<&str> {
        self.text(&["Alarm", "Name"])
    }

    /// What the alarm is on (`data.Entity.Entity`): a VM, a datastore, a host…
    pub fn entity(&self) -> Option<EntityRef> {
        self.entity_at("Entity", "Entity")
    }

    /// The VM the event is about (`data.Vm.Vm`), when it is about one.
    pub fn vm(&self) -> Option<EntityRef> {
        self.entity_at("Vm", "Vm")
    }

    pub fn from_status(&self) -> Option<AlarmStatus> {
        self.text(&["From"]).and_then(AlarmStatus::parse)
    }

    pub fn to_status(&self) -> Option<AlarmStatus> {
        self.text(&["To"]).and_then(AlarmStatus::parse)
    }

    /// A short line for logs and the audit trail.
    pub fn describe(&self) -> String {
        match (self.alarm_name(), self.from_status(), self.to_status()) {
            (Some(alarm), Some(from), Some(to)) => {
                format!("{} '{alarm}' {}→{}", self.class, from.as_str(), to.as_str())
            }
            _ => self.class.clone(),
        }
    }
}

/// `com.vmware.vsphere.AlarmStatusChangedEvent.v0` → `AlarmStatusChangedEvent`.
fn class_from_type(ty: &str) -> Option<String> {
    let rest = ty.strip_prefix("com.vmware.vsphere.")?;
    let class = match rest.rsplit_once('.') {
        Some((class, version)) if version.starts_with('v') => class,
        _ => rest,
    };
    (!class.is_empty()).then(|| class.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = include_str!("../fixtures/veba-alarm-event.json");

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn structured_sample_parses_with_typed_accessors() {
        let e = VcEvent::parse(&headers(&[("content-type", "application/cloudevents+json")]), SAMPLE.as_bytes()).unwrap();
        assert_eq!(e.class, "AlarmStatusChangedEvent");
        assert_eq!(e.claim_key("iaas-scale"), "iaas-scale:https://10.161.164.224/sdk#d65a8ad1-7d3c-4f72-ace4-e3f2883c4475");
        assert_eq!(e.alarm_name(), Some("cluster-cpu-above-80"));
        assert_eq!(e.entity(), Some(EntityRef { ty: "HostSystem".into(), moref: "host-21".into(), name: "10.161.166.252".into() }));
        assert_eq!(e.vm(), None, "Vm is null in the sample");
        assert_eq!((e.from_status(), e.to_status()), (Some(AlarmStatus::Green), Some(AlarmStatus::Red)));
        // VEBA on OpenFaaS: the same JSON without a CloudEvents content type.
        let plain = VcEvent::parse(&headers(&[("content-type", "application/json")]), SAMPLE.as_bytes()).unwrap();
        assert_eq!(plain, e);
    }

    #[test]
    fn binary_mode_reads_headers_and_the_bare_data() {
        let sample: Value = serde_json::from_str(SAMPLE).unwrap();
        let body = serde_json::to_vec(&sample["data"]).unwrap();
        let h = headers(&[
            ("ce-specversion", "1.0"),
            ("ce-id", "42"),
            ("ce-source", "https://vc/sdk"),
            ("ce-type", "com.vmware.vsphere.AlarmStatusChangedEvent.v0"),
            ("content-type", "application/json"),
        ]);
        let e = VcEvent::parse(&h, &body).unwrap();
        assert_eq!((e.id.as_str(), e.source.as_str(), e.class.as_str()), ("42", "https://vc/sdk", "AlarmStatusChangedEvent"));
        assert_eq!(e.alarm_name(), Some("cluster-cpu-above-80"));
        assert_eq!(e.to_status(), Some(AlarmStatus::Red));
    }

    #[test]
    fn broken_events_say_what_is_missing() {
        let none = HeaderMap::new();
        assert!(matches!(VcEvent::parse(&none, b"not json"), Err(ParseError::NotJson(_))));
        assert_eq!(VcEvent::parse(&none, br#"{"id":"1"}"#), Err(ParseError::NotCloudEvent));
        assert_eq!(
            VcEvent::parse(&none, br#"{"specversion":"1.0","id":"1","source":"s","type":"com.vmware.event.router/event"}"#),
            Err(ParseError::Missing("subject (the vCenter event class)"))
        );
        let h = headers(&[("ce-specversion", "1.0"), ("ce-source", "s"), ("ce-type", "com.vmware.vsphere.VmPoweredOffEvent.v0")]);
        assert_eq!(VcEvent::parse(&h, b"{}"), Err(ParseError::Missing("ce-id header")));
        assert_eq!(class_from_type("com.vmware.vsphere.VmPoweredOffEvent.v0").as_deref(), Some("VmPoweredOffEvent"));
        assert_eq!(class_from_type("com.example.Other"), None);
    }

    #[test]
    fn statuses_parse_in_any_case() {
        assert_eq!(AlarmStatus::parse("Red"), Some(AlarmStatus::Red));
        assert_eq!(AlarmStatus::parse("gray"), Some(AlarmStatus::Gray));
        assert_eq!(AlarmStatus::parse("purple"), None);
    }
}
