//! API keys (seed 004): a key's state and the values a create or rotate
//! body is made of ([`KeyName`], [`Timestamp`], [`LifetimeDays`],
//! [`GraceSeconds`]), each valid by construction. The key itself
//! (`store::api_keys::ApiKey`) stays beside its store: it holds `auth`'s
//! `Scope` and `KeyEnvironment`, and `domain` sits below `auth`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, de::Error as _};
use serde_json::Value;

use super::values::Int;
use crate::error::AppError;

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

/// A tenant's key policy: `settings.api_keys.max_lifetime_days` (set with
/// `PATCH /v1/tenants/{id}`, a whole number of days up to
/// [`MAX_LIFETIME_DAYS`]) makes an expiry required, at most that far away.
/// The store checks it inside the key's own transaction, as a condition on
/// the tenant item (`store::api_keys`), and these functions are its rule in
/// Rust: the condition and [`lifetime_refusal`] must agree, so both compare
/// the policy with [`days_needed`].
pub const LIFETIME_POLICY_PATH: [&str; 3] = ["settings", "api_keys", "max_lifetime_days"];

/// The policy in a tenant's settings, if any: a number there (the condition
/// compares numbers); anything else, or nothing, is no policy.
pub fn lifetime_policy(settings: &Value) -> Option<f64> {
    let [_, keys, days] = LIFETIME_POLICY_PATH;
    settings.get(keys)?.get(days)?.as_f64()
}

/// The whole days, rounded up, from `at` to `expires_at`: a policy of at
/// least this many days allows the key.
pub fn days_needed(expires_at: DateTime<Utc>, at: DateTime<Utc>) -> i64 {
    const DAY_MS: i64 = 86_400_000;
    let ms = (expires_at - at).num_milliseconds();
    ms.div_euclid(DAY_MS) + i64::from(ms.rem_euclid(DAY_MS) != 0)
}

/// Why the tenant's `settings` refuse a key created at `at` that expires at
/// `expires_at` (`None`: never), naming `expires_at`; `None` if they allow it.
pub fn lifetime_refusal(settings: &Value, expires_at: Option<DateTime<Utc>>, at: DateTime<Utc>) -> Option<AppError> {
    let days = lifetime_policy(settings)?;
    match expires_at {
        None => Some(AppError::invalid_field(
            "expires_at",
            format!("is required: this tenant requires keys to expire within {days} days"),
        )),
        Some(t) if days < days_needed(t, at) as f64 => Some(AppError::invalid_field(
            "expires_at",
            format!("must be at most {days} days away (this tenant's policy)"),
        )),
        Some(_) => None,
    }
}

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

/// A JSON Schema `pattern` (ECMA 262, unanchored) that text matches when
/// `str::trim` leaves something of it: it has a character outside Unicode's
/// `White_Space` (exactly the characters `char::is_whitespace` names, so
/// the schema says "not blank" as the parsers mean it).
pub const NOT_BLANK_PATTERN: &str =
    "[^\\t\\n\\x0B\\f\\r \\x85\\xA0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000]";

crate::inline_schema!(
    KeyName,
    "KeyName",
    string(1, MAX_NAME_CHARS)
        .pattern(Some(NOT_BLANK_PATTERN))
        .description(Some(format!("1 to {MAX_NAME_CHARS} characters, not only whitespace; kept trimmed")))
);

crate::inline_schema!(
    Timestamp,
    "Timestamp",
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(utoipa::openapi::KnownFormat::DateTime)))
);

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

    /// A policy of 30 days allows an expiry exactly 30 days away and not a
    /// millisecond later; no number there is no policy.
    #[test]
    fn the_lifetime_policy_counts_whole_days_rounded_up() {
        let at = parse_time("2026-12-01T10:00:00Z").expect("time");
        let days = |d: i64, ms: i64| at + chrono::Duration::days(d) + chrono::Duration::milliseconds(ms);
        assert_eq!([days(30, 0), days(30, 1), days(29, 999), days(0, 0)].map(|t| days_needed(t, at)), [30, 31, 30, 0]);
        let policy = serde_json::json!({"api_keys": {"max_lifetime_days": 30}});
        assert!(lifetime_refusal(&policy, Some(days(30, 0)), at).is_none());
        let late = lifetime_refusal(&policy, Some(days(30, 1)), at).expect("refused");
        assert_eq!(late.invalid_fields(), ["expires_at"]);
        let never = lifetime_refusal(&policy, None, at).expect("refused");
        assert!(never.to_string().contains("within 30 days"), "{never}");
        for none in [serde_json::json!({}), serde_json::json!({"api_keys": {"max_lifetime_days": "30"}})] {
            assert!(lifetime_refusal(&none, None, at).is_none(), "{none}");
        }
    }

    /// The schema's "not blank" is the parser's: every `White_Space`
    /// character is in the pattern's class, and nothing else is.
    #[test]
    fn the_not_blank_pattern_names_exactly_the_whitespace() {
        let class = NOT_BLANK_PATTERN.trim_start_matches("[^").trim_end_matches(']');
        let mut listed = Vec::new();
        let mut rest = class;
        while !rest.is_empty() {
            let (c, tail) = if let Some(tail) = rest.strip_prefix("\\u") {
                (u32::from_str_radix(&tail[..4], 16).expect("hex"), &tail[4..])
            } else if let Some(tail) = rest.strip_prefix("\\x") {
                (u32::from_str_radix(&tail[..2], 16).expect("hex"), &tail[2..])
            } else if let Some(tail) = rest.strip_prefix('\\') {
                let c = match tail.as_bytes()[0] {
                    b't' => 9,
                    b'n' => 10,
                    b'f' => 12,
                    b'r' => 13,
                    other => panic!("escape {}", other as char),
                };
                (c, &tail[1..])
            } else {
                let c = rest.chars().next().expect("char");
                (c as u32, &rest[c.len_utf8()..])
            };
            listed.push(c);
            rest = tail;
        }
        // Ranges (`a-b`) hold a `-` entry between their ends.
        let mut class_set = Vec::new();
        let mut i = 0;
        while i < listed.len() {
            if i + 2 < listed.len() && listed[i + 1] == u32::from('-') {
                class_set.extend(listed[i]..=listed[i + 2]);
                i += 3;
            } else {
                class_set.push(listed[i]);
                i += 1;
            }
        }
        let whitespace: Vec<u32> =
            (0..=0x10FFFF).filter_map(char::from_u32).filter(|c| c.is_whitespace()).map(u32::from).collect();
        class_set.sort_unstable();
        assert_eq!(class_set, whitespace);
    }
}
