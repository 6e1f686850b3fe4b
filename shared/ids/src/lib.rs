//! The identifiers that travel between crates, each its own type so that one cannot be passed
//! where another is meant: a VM's name where its moref belongs, a decommission request's id where
//! an invocation's belongs, a VM where a person belongs. All are text on the wire and in the
//! database (serde `transparent`); reading them as `&str` is free ([`std::ops::Deref`]), making
//! one is explicit (`From`).

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;

use serde::{Deserialize, Serialize};

macro_rules! id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        #[cfg_attr(feature = "sqlx", derive(sqlx::Type), sqlx(transparent))]
        pub struct $name(String);

        impl $name {
            pub fn new(id: impl Into<String>) -> Self {
                $name(id.into())
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&self.0, f)
            }
        }

        impl From<String> for $name {
            fn from(id: String) -> Self {
                $name(id)
            }
        }

        impl From<&str> for $name {
            fn from(id: &str) -> Self {
                $name(id.to_owned())
            }
        }

        impl From<&String> for $name {
            fn from(id: &String) -> Self {
                $name(id.clone())
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl PartialEq<String> for $name {
            fn eq(&self, other: &String) -> bool {
                &self.0 == other
            }
        }

        impl PartialEq<$name> for String {
            fn eq(&self, other: &$name) -> bool {
                *self == other.0
            }
        }

        impl PartialEq<$name> for str {
            fn eq(&self, other: &$name) -> bool {
                self == other.0
            }
        }

        impl PartialEq<$name> for &str {
            fn eq(&self, other: &$name) -> bool {
                *self == other.0
            }
        }
    };
}

id! {
    /// A vCenter managed-object id, such as `vm-42` or `datastore-12`: stable while the object
    /// lives, unlike its name.
    Moref
}

id! {
    /// A VM's display name in vCenter, as people type it; it can change (a rename).
    VmName
}

id! {
    /// One invocation of a function (a UUID the gateway gives each command it signs): the key of
    /// its claim, record and audit row.
    InvocationId
}

id! {
    /// A decommission request (ten hex digits), shown to people and typed back by them.
    RequestId
}

id! {
    /// The person a command is run for and recorded under: a Slack user id (`U…`), or, for the
    /// REST API and the web console, the e-mail address or `api:<token>` they act under.
    UserId
}

impl InvocationId {
    /// A new id: a UUID v7, whose leading digits are the time, so ids sort by when they were made.
    pub fn generate() -> Self {
        InvocationId(uuid::Uuid::now_v7().to_string())
    }
}

impl RequestId {
    /// A new request id: ten random hex digits, short enough to type back.
    pub fn generate() -> Self {
        RequestId(uuid::Uuid::new_v4().simple().to_string()[..10].to_string())
    }
}

/// A VM as vCenter identifies it: its managed-object id (e.g. `vm-42`) plus its display name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct VmRef {
    pub moref: Moref,
    pub name: VmName,
}

impl VmRef {
    pub fn new(moref: impl Into<Moref>, name: impl Into<VmName>) -> Self {
        VmRef { moref: moref.into(), name: name.into() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_plain_text_on_the_wire() {
        let vm = VmRef::new("vm-42", "app-web-01");
        let json = serde_json::to_string(&vm).unwrap();
        assert_eq!(json, r#"{"moref":"vm-42","name":"app-web-01"}"#);
        assert_eq!(serde_json::from_str::<VmRef>(&json).unwrap(), vm);
        assert_eq!(serde_json::from_str::<UserId>(r#""U123""#).unwrap(), "U123");
    }
}
