//! vSphere faults (`LocalizedMethodFault`) and the client's internal error type.
//!
//! Faults arrive two ways: as SOAP faults (`soapenv:Fault/detail/*Fault` with `xsi:type`) and
//! inside a failed task's `info.error` (`fault` with `xsi:type`, plus `localizedMessage`).
//! Both become a [`Fault`]; callers turn it into a [`VcError`] once they know which VM and
//! operation it is about.

use super::xml::{MoRef, Node};
use crate::{PowerState, VcError};

/// A vSphere fault as vCenter sent it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Fault {
    /// The fault type, e.g. `InvalidPowerState`.
    pub kind: String,
    /// vCenter's message, empty if it sent none worth showing.
    pub message: String,
    /// The fault's own element, for type-specific fields.
    pub detail: Node,
}

/// Everything a SOAP call can fail with before it is given user-facing meaning.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Error {
    /// Boxed: faults carry their XML, and errors travel through every call.
    Fault(Box<Fault>),
    Vc(VcError),
}

impl From<Fault> for Error {
    fn from(f: Fault) -> Self {
        Error::Fault(Box::new(f))
    }
}

impl From<VcError> for Error {
    fn from(e: VcError) -> Self {
        Error::Vc(e)
    }
}

impl Fault {
    /// From the `Fault` element of a SOAP body.
    pub fn from_soap(fault: &Node) -> Fault {
        let detail = fault.child("detail").and_then(|d| d.children.first()).cloned().unwrap_or_default();
        let kind = detail
            .xsi_type
            .clone()
            .or_else(|| detail.name.strip_suffix("Fault").map(str::to_owned))
            .filter(|k| !k.is_empty())
            .unwrap_or_else(|| fault.text_of("faultcode").unwrap_or("SoapFault").to_owned());
        Fault { kind, message: clean_message(fault.text_of("faultstring")), detail }
    }

    /// From a `LocalizedMethodFault` (task `info.error`, or a property's `missingSet/fault`).
    pub fn from_localized(localized: &Node) -> Fault {
        let detail = localized.child("fault").cloned().unwrap_or_default();
        let kind = detail.xsi_type.clone().unwrap_or_else(|| "VimFault".to_owned());
        Fault { kind, message: clean_message(localized.text_of("localizedMessage")), detail }
    }

    pub fn is(&self, kind: &str) -> bool {
        self.kind == kind
    }

    /// `existingState` of an InvalidPowerState fault, when vCenter included it.
    pub fn existing_state(&self) -> Option<PowerState> {
        self.detail.text_of("existingState").and_then(parse_power_state)
    }

    /// `obj` of a ManagedObjectNotFound fault.
    pub fn missing_object(&self) -> Option<MoRef> {
        self.detail.child("obj").and_then(Node::moref)
    }

    /// The generic mapping; `vm` names the subject, `operation` says what was attempted.
    pub fn into_vc(self, vm: &str, operation: &str) -> VcError {
        match self.kind.as_str() {
            "InvalidLogin" => VcError::InvalidLogin,
            "ManagedObjectNotFound" => VcError::NotFound { name: vm.to_owned() },
            "NotImplemented" | "NotSupported" | "MethodNotFound" => VcError::NotSupported { operation: operation.to_owned() },
            "ToolsUnavailable" => VcError::ToolsUnavailable { vm: vm.to_owned() },
            // vCenter names the clashing name; `vm` is only the object the call was made on.
            "DuplicateName" => {
                VcError::DuplicateName { name: self.detail.text_of("name").filter(|n| !n.is_empty()).unwrap_or(vm).to_owned() }
            }
            "InvalidPowerState" => match self.existing_state() {
                Some(current) => VcError::InvalidPowerState { vm: vm.to_owned(), current },
                None => self.into_generic(operation),
            },
            _ => self.into_generic(operation),
        }
    }

    fn into_generic(self, operation: &str) -> VcError {
        let message = if self.message.is_empty() { format!("{} ({operation})", self.kind) } else { self.message };
        VcError::Fault { fault: self.kind, message }
    }
}

impl Error {
    pub fn fault(&self) -> Option<&Fault> {
        match self {
            Error::Fault(f) => Some(&**f),
            Error::Vc(_) => None,
        }
    }

    pub fn into_vc(self, vm: &str, operation: &str) -> VcError {
        match self {
            Error::Fault(f) => f.into_vc(vm, operation),
            Error::Vc(e) => e,
        }
    }
}

pub(crate) fn parse_power_state(text: &str) -> Option<PowerState> {
    match text {
        "poweredOn" => Some(PowerState::PoweredOn),
        "poweredOff" => Some(PowerState::PoweredOff),
        "suspended" => Some(PowerState::Suspended),
        _ => None,
    }
}

/// vcsim fills messages with Go type names (`*types.InvalidPowerState`); those say nothing.
fn clean_message(message: Option<&str>) -> String {
    let message = message.unwrap_or("").trim();
    if message.starts_with("*types.") {
        String::new()
    } else {
        message.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::super::xml::parse_body;
    use super::*;

    fn soap_fault(detail: &str, faultstring: &str) -> Fault {
        let text = format!(
            r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><soapenv:Fault><faultcode>ServerFaultCode</faultcode><faultstring>{faultstring}</faultstring><detail>{detail}</detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>"#
        );
        Fault::from_soap(&parse_body(&text).unwrap())
    }

    #[test]
    fn soap_invalid_power_state_keeps_existing_state() {
        let f = soap_fault(
            r#"<InvalidPowerStateFault xmlns="urn:vim25" xsi:type="InvalidPowerState"><requestedState>poweredOn</requestedState><existingState>poweredOff</existingState></InvalidPowerStateFault>"#,
            "",
        );
        assert_eq!(f.kind, "InvalidPowerState");
        assert_eq!(f.into_vc("vm1", "guest shutdown"), VcError::InvalidPowerState { vm: "vm1".into(), current: PowerState::PoweredOff });
    }

    #[test]
    fn soap_method_not_found_is_not_supported() {
        let f = soap_fault(
            r#"<MethodNotFoundFault xmlns="urn:vim25" xsi:type="MethodNotFound"><method>RebootGuest</method></MethodNotFoundFault>"#,
            "does not implement: RebootGuest",
        );
        assert_eq!(f.into_vc("vm1", "guest reboot"), VcError::NotSupported { operation: "guest reboot".into() });
    }

    #[test]
    fn fault_kind_falls_back_to_element_name() {
        let f = soap_fault(r#"<ToolsUnavailableFault xmlns="urn:vim25"/>"#, "no tools");
        assert_eq!(f.into_vc("db", "guest shutdown"), VcError::ToolsUnavailable { vm: "db".into() });
    }

    #[test]
    fn unknown_fault_keeps_message() {
        let f = soap_fault(r#"<TaskInProgressFault xmlns="urn:vim25" xsi:type="TaskInProgress"/>"#, "busy");
        assert_eq!(f.into_vc("x", "power on"), VcError::Fault { fault: "TaskInProgress".into(), message: "busy".into() });
    }

    #[test]
    fn task_error_with_go_type_message() {
        let text = r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><val xmlns:X="http://www.w3.org/2001/XMLSchema-instance" X:type="LocalizedMethodFault"><fault X:type="InvalidPowerState"><requestedState>poweredOn</requestedState></fault><localizedMessage>*types.InvalidPowerState</localizedMessage></val></soapenv:Body></soapenv:Envelope>"#;
        let f = Fault::from_localized(&parse_body(text).unwrap());
        assert_eq!(f.kind, "InvalidPowerState");
        assert_eq!(f.message, "");
        assert_eq!(f.existing_state(), None);
    }
}
