//! Domain types and rules, free of I/O: what a valid tenant or user is, and how
//! requests become changes.

pub mod ai;
pub mod alert;
pub mod api_key;
pub mod audit;
pub mod billing;
pub mod compliance;
pub mod credit;
pub mod customer;
/// Workflow conditions (CEL) and field mapping; only the workflows
/// function and its worker link the interpreter.
#[cfg(feature = "expressions")]
pub mod expression;
pub mod ids;
pub mod integration;
pub mod metrics;
pub mod mfa;
pub mod plans;
pub mod project;
pub mod rate_limit;
pub mod role;
pub mod schedule;
pub mod schema;
pub mod sso;
pub mod sync;
pub mod tenant;
pub mod throttle;
pub mod tryon;
pub mod user;
pub mod validate;
pub mod values;
pub mod webhook;
pub mod workflow;

/// Current time, truncated to milliseconds so stored and returned values match.
pub fn now() -> chrono::DateTime<chrono::Utc> {
    use chrono::{SubsecRound, Utc};
    Utc::now().trunc_subsecs(3)
}

/// The one timestamp format we write: RFC 3339, UTC, `Z`, exactly as serde
/// writes a `DateTime<Utc>` (fraction only when non-zero). Conditions compare
/// stored strings, so every writer must agree to the byte.
pub fn rfc3339(at: chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

pub fn now_rfc3339() -> String {
    rfc3339(now())
}

/// A closed set of names as an enum: serialised as its canonical name,
/// parsed case-insensitively (seed 002 writes `UNIVERSITY`, seed 003
/// `university`), refused with the list of what it may be.
#[macro_export]
macro_rules! string_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            pub const NAMES: &'static [&'static str] = &[$($text),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            pub fn parse(value: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|v| v.as_str().eq_ignore_ascii_case(value))
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::schema::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .enum_values(Some(Self::NAMES.iter().copied()))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                // The whole value is read whatever it is, so that a wrong type
                // (an array, an object) does not leave the parser mid-value and
                // every other field of the body is still checked.
                let value = serde_json::Value::deserialize(deserializer)?;
                value.as_str().and_then(Self::parse).ok_or_else(|| {
                    serde::de::Error::custom(format!("must be one of {}", Self::NAMES.join(", ")))
                })
            }
        }
    };
}
