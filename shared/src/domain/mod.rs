//! Domain types and rules, free of I/O: what a valid tenant or user is, and how
//! requests become changes.

pub mod plans;
pub mod project;
pub mod tenant;
pub mod tryon;
pub mod user;

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
