//! A small owned XML tree for vim25 responses.
//!
//! roxmltree borrows the response text, so results are copied into [`Node`]s that can outlive it.
//! vim25 is polymorphic through `xsi:type`; vcsim spells that prefix `XMLSchema-instance:`, so
//! attributes are matched by namespace, never by prefix.

use super::envelope::escape;
use crate::VcError;

const SOAP_ENV: &str = "http://schemas.xmlsoap.org/soap/envelope/";
const XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";

/// A managed-object reference, e.g. `VirtualMachine:vm-42`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct MoRef {
    pub ty: String,
    pub value: String,
}

impl MoRef {
    pub fn new(ty: &str, value: &str) -> Self {
        MoRef { ty: ty.to_owned(), value: value.to_owned() }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Node {
    /// Local name, without namespace.
    pub name: String,
    /// `xsi:type` without any prefix, e.g. `InvalidPowerState` or `string` for `xsd:string`.
    pub xsi_type: Option<String>,
    /// The plain `type` attribute that ManagedObjectReference elements carry.
    pub mo_type: Option<String>,
    /// Concatenated text directly inside this element.
    pub text: String,
    pub children: Vec<Node>,
}

impl Node {
    pub fn child(&self, name: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.name == name)
    }

    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Node> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// Text of the named child, if present.
    pub fn text_of(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.as_str())
    }

    /// This element read as a ManagedObjectReference (`<x type="T">value</x>`).
    pub fn moref(&self) -> Option<MoRef> {
        let ty = self.mo_type.as_deref()?;
        let value = self.text.trim();
        (!value.is_empty()).then(|| MoRef::new(ty, value))
    }
}

/// XML Schema's own types, which vim25 writes as `xsd:int` and so on.
const XSD_TYPES: &[&str] =
    &["string", "boolean", "byte", "short", "int", "long", "float", "double", "decimal", "dateTime", "base64Binary", "anyURI", "anyType"];

impl Node {
    /// This element written back as request XML, named `element` (a response names array
    /// items by their type, a request by the field). `xsi:type` is kept: the envelope maps
    /// the default namespace to vim25 and declares `xsd:` for XML Schema's own types.
    pub fn to_xml(&self, element: &str) -> String {
        let mut out = String::new();
        self.write_xml(element, &mut out);
        out
    }

    fn write_xml(&self, element: &str, out: &mut String) {
        out.push('<');
        out.push_str(element);
        if let Some(ty) = &self.xsi_type {
            let prefix = if XSD_TYPES.contains(&ty.as_str()) { "xsd:" } else { "" };
            out.push_str(&format!(r#" xsi:type="{prefix}{}""#, escape(ty)));
        }
        if let Some(ty) = &self.mo_type {
            out.push_str(&format!(r#" type="{}""#, escape(ty)));
        }
        out.push('>');
        if self.children.is_empty() {
            out.push_str(&escape(&self.text));
        }
        for child in &self.children {
            child.write_xml(&child.name, out);
        }
        out.push_str("</");
        out.push_str(element);
        out.push('>');
    }
}

/// Parses a SOAP envelope and returns the first element inside `Body`
/// (a `...Response` or a `Fault`).
pub(crate) fn parse_body(text: &str) -> Result<Node, VcError> {
    let doc = roxmltree::Document::parse(text).map_err(|e| VcError::Protocol(format!("response is not XML: {e}")))?;
    let envelope = doc.root_element();
    let body = envelope
        .children()
        .find(|n| n.is_element() && n.tag_name().name() == "Body" && n.tag_name().namespace() == Some(SOAP_ENV))
        .ok_or_else(|| VcError::Protocol("response has no SOAP body".into()))?;
    let first = body.children().find(|n| n.is_element()).ok_or_else(|| VcError::Protocol("SOAP body is empty".into()))?;
    Ok(convert(first))
}

fn convert(node: roxmltree::Node<'_, '_>) -> Node {
    let mut out = Node { name: node.tag_name().name().to_owned(), ..Node::default() };
    for attr in node.attributes() {
        match (attr.namespace(), attr.name()) {
            (Some(XSI), "type") => out.xsi_type = Some(local_part(attr.value()).to_owned()),
            (None, "type") => out.mo_type = Some(attr.value().to_owned()),
            _ => {}
        }
    }
    for child in node.children() {
        if child.is_element() {
            out.children.push(convert(child));
        } else if let Some(text) = child.text() {
            if child.is_text() {
                out.text.push_str(text);
            }
        }
    }
    out
}

/// `vim25:InvalidPowerState` → `InvalidPowerState`.
fn local_part(qname: &str) -> &str {
    qname.rsplit_once(':').map_or(qname, |(_, local)| local)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_xsi_type_under_any_prefix_and_morefs() {
        let text = r#"<?xml version="1.0"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><R xmlns="urn:vim25"><returnval><val xmlns:XMLSchema-instance="http://www.w3.org/2001/XMLSchema-instance" XMLSchema-instance:type="ManagedObjectReference" type="HostSystem">host-1</val></returnval></R></soapenv:Body></soapenv:Envelope>"#;
        let body = parse_body(text).unwrap();
        assert_eq!(body.name, "R");
        let val = body.child("returnval").unwrap().child("val").unwrap();
        assert_eq!(val.xsi_type.as_deref(), Some("ManagedObjectReference"));
        assert_eq!(val.moref(), Some(MoRef::new("HostSystem", "host-1")));
    }

    #[test]
    fn rejects_non_soap() {
        assert!(matches!(parse_body("<html>nope</html>"), Err(VcError::Protocol(_))));
        assert!(matches!(parse_body("not xml"), Err(VcError::Protocol(_))));
    }

    #[test]
    fn writes_back_what_it_read() {
        let text = r#"<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/" xmlns:X="http://www.w3.org/2001/XMLSchema-instance"><e:Body><R><VirtualDevice X:type="VirtualVmxnet3"><key>4000</key><backing X:type="VirtualEthernetCardNetworkBackingInfo"><deviceName>a &amp; b</deviceName><network type="Network">network-7</network></backing><label X:type="xsd:string">x</label></VirtualDevice></R></e:Body></e:Envelope>"#;
        let device = parse_body(text).unwrap().children.remove(0);
        assert_eq!(
            device.to_xml("device"),
            concat!(
                r#"<device xsi:type="VirtualVmxnet3"><key>4000</key>"#,
                r#"<backing xsi:type="VirtualEthernetCardNetworkBackingInfo"><deviceName>a &amp; b</deviceName>"#,
                r#"<network type="Network">network-7</network></backing>"#,
                r#"<label xsi:type="xsd:string">x</label></device>"#
            )
        );
    }

    #[test]
    fn unescapes_text() {
        let text = r#"<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/"><e:Body><R><name>a &amp; b</name></R></e:Body></e:Envelope>"#;
        assert_eq!(parse_body(text).unwrap().text_of("name"), Some("a & b"));
    }
}
