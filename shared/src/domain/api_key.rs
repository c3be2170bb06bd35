//! API keys (seed 004): a key's state and the values a create or rotate
//! body is made of ([`KeyName`], [`Timestamp`], [`LifetimeDays`],
//! [`GraceSeconds`]), each valid by construction. The key itself
//! (`store::api_keys::ApiKey`) stays beside its store: it holds `auth`'s
//! `Scope` and `KeyEnvironment`, and `domain` sits below `auth`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, de::Error as _};
use serde_json::Value;

use super::values::Int;

pub const MAX_NAME_CHARS: usize = 100;
/// Longest lifetime a key may be given, in days.
pub const MAX_LIFETIME_DAYS: i64 = 730;
/// Longest time an old secret keeps working after a rotation.
pub const MAX_GRACE_SECONDS: i64 = 7 * 24 * 3600;

/// `expires_in_days`: 1 to [`MAX_LIFETIME_DAYS`].
pub type LifetimeDays = Int<1, MAX_LIFETIME_DAYS>;
/// A rotation's `grace_period_seconds`: 0 to [`MAX_GRACE_SECONDS`].
pub type GraceSeconds = Int<0, MAX_GRACE_SECONDS>;

crate::string_enum!(
    /// Whether a stored key can be used right now.
    KeyState {
        Active => "active",
        Revoked => "revoked",
        Expired => "expired",
    }
);

/// An RFC 3339 text as a UTC time.
pub fn parse_time(value: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(value).ok().map(|t| t.with_timezone(&Utc))
}

fn string<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    match Value::deserialize(deserializer)? {
        Value::String(s) => Ok(s),
        Value::Null => Err(D::Error::custom("is required")),
        _ => Err(D::Error::custom("must be a string")),
    }
}

/// A key's name: 1 to [`MAX_NAME_CHARS`] characters, not blank, kept trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyName(String);

impl KeyName {
    pub fn parse(value: &str) -> Result<Self, String> {
        let len = value.chars().count();
        if len < 1 {
            Err("must have at least 1 characters".to_owned())
        } else if len > MAX_NAME_CHARS {
            Err(format!("must have at most {MAX_NAME_CHARS} characters"))
        } else if value.trim().is_empty() {
            Err("must not be blank".to_owned())
        } else {
            Ok(Self(value.trim().to_owned()))
        }
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

impl<'de> Deserialize<'de> for KeyName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Self::parse(&string(deserializer)?).map_err(D::Error::custom)
    }
}

/// A point in time given as RFC 3339 text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp(pub DateTime<Utc>);

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        parse_time(&string(deserializer)?)
            .map(Timestamp)
            .ok_or_else(|| D::Error::custom("must be an RFC 3339 timestamp such as 2027-01-31T00:00:00Z"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_not_blank() {
        assert_eq!(KeyName::parse(" CI ").map(KeyName::into_inner), Ok("CI".to_owned()));
        assert_eq!(KeyName::parse(" ").err().as_deref(), Some("must not be blank"));
        assert_eq!(KeyName::parse("").err().as_deref(), Some("must have at least 1 characters"));
        assert_eq!(KeyState::Revoked.as_str(), "revoked");
    }
}
