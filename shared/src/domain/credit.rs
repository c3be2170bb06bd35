//! Prepaid credits (seed 004): a ledger entry, its kind, and the values a
//! grant or a metered charge is made of ([`CreditAmount`], [`Reason`],
//! [`ChargeReference`]), each valid by construction. Also the one bounded
//! integer of request bodies, [`BoundedInt`].

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, de::Error as _};
use serde_json::Value;
use uuid::Uuid;

use super::{audit::Actor, ids::TenantId, values::Int};

crate::string_enum!(
    /// What a ledger entry records.
    CreditKind {
        Grant => "grant",
        Spend => "spend",
        Refund => "refund",
    }
);

impl CreditKind {
    /// The signed amount a change of this kind records.
    pub fn signed(self, amount: i64) -> i64 {
        if self == CreditKind::Spend { -amount } else { amount }
    }
}

/// One change of a tenant's balance, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LedgerEntry {
    pub id: Uuid,
    pub tenant_id: TenantId,
    /// Signed: grants and refunds positive, spends negative.
    pub amount: i64,
    pub kind: CreditKind,
    pub reason: String,
    #[serde(default)]
    pub reference: Option<String>,
    pub balance_after: i64,
    pub actor: Actor,
    pub created_at: DateTime<Utc>,
}

/// One change of a tenant's balance, as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct LedgerEntryView {
    pub id: Uuid,
    pub tenant_id: Uuid,
    /// Signed: grants and refunds positive, spends negative.
    pub amount: i64,
    pub kind: CreditKind,
    pub reason: String,
    /// The caller's charge reference, or `tryon:<session>[:<item>]` for a
    /// try-on's spend and refunds.
    pub reference: Option<String>,
    /// The tenant's balance right after this change.
    pub balance_after: i64,
    /// Who made the change.
    pub actor: Actor,
    pub created_at: DateTime<Utc>,
}

impl LedgerEntry {
    pub fn view(&self) -> LedgerEntryView {
        LedgerEntryView {
            id: self.id,
            tenant_id: self.tenant_id.0,
            amount: self.amount,
            kind: self.kind,
            reason: self.reason.clone(),
            reference: self.reference.clone(),
            balance_after: self.balance_after,
            actor: self.actor.clone(),
            created_at: self.created_at,
        }
    }
}

/// Largest single grant or charge.
pub const MAX_CREDITS: i64 = 1_000_000_000;
/// Longest `reason`, in characters.
pub const MAX_REASON_CHARS: usize = 200;
/// Longest caller `reference` of a charge.
pub const MAX_REFERENCE_CHARS: usize = 128;

/// The size of a grant or a charge: 1 to [`MAX_CREDITS`].
pub type CreditAmount = Int<1, MAX_CREDITS>;

/// Reads a JSON string or says what was wrong.
fn string<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    match Value::deserialize(deserializer)? {
        Value::String(s) => Ok(s),
        Value::Null => Err(D::Error::custom("is required")),
        _ => Err(D::Error::custom("must be a string")),
    }
}

/// Why credits changed: 1 to [`MAX_REASON_CHARS`] characters, not blank,
/// kept trimmed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Reason(String);

impl Reason {
    pub fn parse(value: &str) -> Result<Self, String> {
        let len = value.chars().count();
        if len < 1 {
            Err("must have at least 1 characters".to_owned())
        } else if len > MAX_REASON_CHARS {
            Err(format!("must have at most {MAX_REASON_CHARS} characters"))
        } else if value.trim().is_empty() {
            Err("must not be blank".to_owned())
        } else {
            Ok(Self(value.trim().to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Reason {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Self::parse(&string(deserializer)?).map_err(D::Error::custom)
    }
}

/// A charge's caller reference: 1 to [`MAX_REFERENCE_CHARS`] letters,
/// digits and `- _ . : /`; a charge happens once per reference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct ChargeReference(String);

impl ChargeReference {
    pub fn parse(value: &str) -> Result<Self, String> {
        let len = value.chars().count();
        if len < 1 {
            Err("must have at least 1 characters".to_owned())
        } else if len > MAX_REFERENCE_CHARS {
            Err(format!("must have at most {MAX_REFERENCE_CHARS} characters"))
        } else if !value.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:/".contains(&b)) {
            Err("must be letters, digits and - _ . : /".to_owned())
        } else {
            Ok(Self(value.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for ChargeReference {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Self::parse(&string(deserializer)?).map_err(D::Error::custom)
    }
}

/// What `char::is_whitespace` (and so `str::trim`) counts as white space,
/// as a regular expression class: a [`Reason`] must hold one character
/// outside it.
pub const NOT_BLANK_PATTERN: &str =
    "[^\\t-\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]";

crate::inline_schema!(
    Reason,
    "Reason",
    string(1, MAX_REASON_CHARS)
        .pattern(Some(NOT_BLANK_PATTERN))
        .description(Some("Why the credits changed: not blank; kept trimmed"))
);
crate::inline_schema!(
    ChargeReference,
    "ChargeReference",
    string(1, MAX_REFERENCE_CHARS).pattern(Some("^[A-Za-z0-9._:/-]+$")).description(Some(
        "The caller's reference: letters, digits and `- _ . : /`; a charge happens once per reference"
    ))
);

/// `CreditKind` as a list filter takes it (the schema only): any case, as
/// the parser matches it.
pub struct CreditKindFilter;

crate::inline_schema!(CreditKindFilter, "CreditKindFilter", super::tenant::any_case(CreditKind::NAMES));

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn message<T: for<'de> Deserialize<'de> + std::fmt::Debug>(value: Value) -> String {
        serde_json::from_value::<T>(value).expect_err("refused").to_string()
    }

    #[test]
    fn amounts_are_bounded_integers() {
        assert_eq!(serde_json::from_value::<CreditAmount>(json!(37)).map(CreditAmount::get).ok(), Some(37));
        assert_eq!(message::<CreditAmount>(json!(0)), "must be greater than or equal to 1");
        assert_eq!(message::<CreditAmount>(json!(MAX_CREDITS + 1)), "must be less than or equal to 1000000000");
        assert_eq!(message::<CreditAmount>(json!(1.5)), "must be an integer");
        assert_eq!(message::<CreditAmount>(json!("10")), "must be an integer");
    }

    #[test]
    fn reasons_are_trimmed_and_not_blank_and_references_are_plain() {
        assert_eq!(Reason::parse(" onboarding ").map(|r| r.as_str().to_owned()), Ok("onboarding".to_owned()));
        assert_eq!(Reason::parse("   ").err().as_deref(), Some("must not be blank"));
        assert!(Reason::parse(&"r".repeat(MAX_REASON_CHARS + 1)).is_err());
        assert!(ChargeReference::parse("job-1:a/b").is_ok());
        assert!(ChargeReference::parse("no spaces").is_err());
        assert!(ChargeReference::parse(&"r".repeat(MAX_REFERENCE_CHARS + 1)).is_err());
    }

    /// The pattern's class is exactly what `trim` removes, so a reason the
    /// schema calls blank is the one the parser refuses.
    #[test]
    fn the_not_blank_pattern_is_rusts_white_space() {
        let ranges = [
            ('\t', '\r'),
            (' ', ' '),
            ('\u{85}', '\u{85}'),
            ('\u{a0}', '\u{a0}'),
            ('\u{1680}', '\u{1680}'),
            ('\u{2000}', '\u{200a}'),
            ('\u{2028}', '\u{2029}'),
            ('\u{202f}', '\u{202f}'),
            ('\u{205f}', '\u{205f}'),
            ('\u{3000}', '\u{3000}'),
        ];
        for c in (0..=0x10FFFF).filter_map(char::from_u32) {
            let listed = ranges.iter().any(|(a, b)| (*a..=*b).contains(&c));
            assert_eq!(listed, c.is_whitespace(), "{c:?}");
        }
        let escape = |c: char| match c {
            '\t' => "\\t".to_owned(),
            '\r' => "\\r".to_owned(),
            ' ' => " ".to_owned(),
            c => format!("\\u{:04x}", c as u32),
        };
        let class: String = ranges
            .iter()
            .map(|(a, b)| match (*b as u32) - (*a as u32) {
                0 => escape(*a),
                1 => format!("{}{}", escape(*a), escape(*b)),
                _ => format!("{}-{}", escape(*a), escape(*b)),
            })
            .collect();
        assert_eq!(NOT_BLANK_PATTERN, format!("[^{class}]"));
    }

    #[test]
    fn kinds_are_stored_by_name_and_spends_are_negative() {
        assert_eq!(CreditKind::Spend.signed(3), -3);
        assert_eq!(CreditKind::Refund.signed(3), 3);
        assert_eq!(serde_json::to_value(CreditKind::Grant).expect("json"), json!("grant"));
        assert_eq!(CreditKind::NAMES, ["grant", "spend", "refund"]);
    }
}
