//! Fieldless enums kept as text (states, step kinds, failure policies): one declaration gives the
//! variants and their text, `ALL`, `NAMES`, `as_str`, `Display`, `FromStr` and serde, so each
//! list of values is written once and everything else derives from it.

/// A text that is none of an enum's values; the sentence lists the valid ones.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{value}` is not a {what}; use one of {}.", valid.join(", "))]
pub struct UnknownValue {
    /// What the enum is, as a noun phrase ("decommission request state").
    pub what: &'static str,
    pub value: String,
    pub valid: &'static [&'static str],
}

/// Declares a fieldless enum whose values are stored and shown as the given texts:
///
/// ```
/// iaas_config::text_enum! {
///     /// A traffic light.
///     pub enum Light as "light" { Red = "red", Green = "green" }
/// }
/// assert_eq!("green".parse::<Light>().unwrap(), Light::Green);
/// assert_eq!(Light::NAMES, ["red", "green"]);
/// assert_eq!(Light::HELP, "Valid lights: red, green.");
/// assert!("blue".parse::<Light>().unwrap_err().to_string().contains("use one of red, green"));
/// ```
///
/// Comparing with a `&str` compares the text, so records read naturally in tests and tools.
#[macro_export]
macro_rules! text_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident as $what:literal {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        $vis enum $name {
            $( $(#[$vmeta])* $variant ),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// Every value's text, in declaration order.
            pub const NAMES: &'static [&'static str] = &[$($text),+];
            /// The texts as one line of help: "Valid <what>s: a, b, c."
            pub const HELP: &'static str = $crate::__text_enum_help!($what; $($text),+);

            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::UnknownValue;
            fn from_str(s: &str) -> ::std::result::Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err($crate::UnknownValue { what: $what, value: s.to_string(), valid: $name::NAMES }),
                }
            }
        }

        impl ::std::cmp::PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        impl $crate::__serde::Serialize for $name {
            fn serialize<S: $crate::__serde::Serializer>(&self, s: S) -> ::std::result::Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> $crate::__serde::Deserialize<'de> for $name {
            fn deserialize<D: $crate::__serde::Deserializer<'de>>(d: D) -> ::std::result::Result<Self, D::Error> {
                let text = <::std::string::String as $crate::__serde::Deserialize>::deserialize(d)?;
                text.parse().map_err(<D::Error as $crate::__serde::de::Error>::custom)
            }
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __text_enum_help {
    ($what:literal; $first:literal $(, $rest:literal)*) => {
        concat!("Valid ", $what, "s: ", $first $(, ", ", $rest)*, ".")
    };
}
