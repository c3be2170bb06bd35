//! Compliance (issue 17, seeds 000 and 001's DataPrivacyManager): a
//! tenant's data exports, the erasure of one person (a member or an external
//! customer), and the rules both follow:
//! - what an export leaves out ([`is_secret_attribute`],
//!   [`is_credential_item`]): secrets never leave the store, not even to
//!   the tenant that owns them;
//! - how an erasure finds and scrubs personal values ([`ErasureTerms`]): an
//!   email is unique, so it is replaced wherever it appears; a name or an
//!   external id is not, so it is replaced only in records that are about
//!   the subject (they name the subject's id or email);
//! - the residency check of the compliance report ([`residency_matches`]).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::audit::Actor;

crate::string_enum!(
    /// Where an export job is: `pending` until the worker picks it up,
    /// `running` while it builds the zip (again after a crash: it is
    /// rebuilt from scratch), then `completed` or `failed`.
    ExportStatus {
        Pending => "pending",
        Running => "running",
        Completed => "completed",
        Failed => "failed",
    }
);

crate::string_enum!(
    /// Who an erasure is about: a member of the tenant or one of its
    /// external customers (seed 004's shoppers).
    SubjectType {
        User => "user",
        Customer => "customer",
    }
);

crate::string_enum!(
    /// An erasure is `running` until every place was scrubbed; a retry of a
    /// `running` one finishes it.
    ErasureStatus {
        Running => "running",
        Completed => "completed",
    }
);

/// What replaces an erased value.
pub const ERASED: &str = "[erased]";
/// How long a finished export's zip is kept (an S3 lifecycle rule on
/// `tenants/*/exports/` deletes it; the job stops offering a URL).
pub const EXPORT_FILE_DAYS: i64 = 7;
/// How long one download URL works.
pub const EXPORT_URL_SECONDS: u64 = 15 * 60;

/// A tenant data export as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportJob {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub status: ExportStatus,
    pub requested_by: Actor,
    pub created_at: DateTime<Utc>,
    #[serde(default)]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub completed_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub attempts: i64,
    #[serde(default)]
    pub item_count: Option<i64>,
    #[serde(default)]
    pub object_count: Option<i64>,
    #[serde(default)]
    pub size_bytes: Option<i64>,
    /// The zip in the bucket, once completed; removed when an erasure
    /// deleted the file (it held the erased person's data).
    #[serde(default)]
    pub object_key: Option<String>,
    #[serde(default)]
    pub file_expires_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub error: Option<String>,
}

/// An export as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ExportView {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub status: ExportStatus,
    /// Who asked for it.
    pub requested_by: Actor,
    pub created_at: String,
    #[schema(required = true)]
    pub started_at: Option<String>,
    #[schema(required = true)]
    pub completed_at: Option<String>,
    /// Items of the tenant's partition in the zip (`items.json`).
    #[schema(required = true)]
    pub item_count: Option<i64>,
    /// Stored files in the zip (`objects/...`).
    #[schema(required = true)]
    pub object_count: Option<i64>,
    #[schema(required = true)]
    pub size_bytes: Option<i64>,
    /// A presigned GET of the zip (completed exports whose file is kept).
    #[schema(required = true)]
    pub download_url: Option<String>,
    /// When `download_url` stops working; ask again for a fresh one.
    #[schema(required = true)]
    pub expires_at: Option<String>,
    /// When the zip itself is deleted.
    #[schema(required = true)]
    pub file_expires_at: Option<String>,
    #[schema(required = true)]
    pub error: Option<String>,
}

impl ExportJob {
    /// The view, with the download link the caller signed (if any).
    pub fn view(&self, download: Option<(String, DateTime<Utc>)>) -> ExportView {
        let (download_url, expires_at) = match download {
            Some((url, at)) => (Some(url), Some(super::rfc3339(at))),
            None => (None, None),
        };
        ExportView {
            id: self.id,
            tenant_id: self.tenant_id,
            status: self.status,
            requested_by: self.requested_by.clone(),
            created_at: super::rfc3339(self.created_at),
            started_at: self.started_at.map(super::rfc3339),
            completed_at: self.completed_at.map(super::rfc3339),
            item_count: self.item_count,
            object_count: self.object_count,
            size_bytes: self.size_bytes,
            download_url,
            expires_at,
            file_expires_at: self.file_expires_at.map(super::rfc3339),
            error: self.error.clone(),
        }
    }

    /// The zip's key while it can still be downloaded.
    pub fn downloadable_key(&self, now: DateTime<Utc>) -> Option<&str> {
        match (self.status, &self.object_key, self.file_expires_at) {
            (ExportStatus::Completed, Some(key), Some(until)) if until > now => Some(key),
            _ => None,
        }
    }
}

/// An erasure as stored. `terms` (the personal values being looked for)
/// exist only while it runs, so a retry can finish after the subject's own
/// record is gone; completing removes them in the same write.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Erasure {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub subject_type: SubjectType,
    pub subject_id: Uuid,
    pub status: ErasureStatus,
    pub requested_by: Actor,
    pub created_at: DateTime<Utc>,
    #[serde(default)]
    pub completed_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub attempts: i64,
    /// Records touched, by kind (`audit_entry`, `outbox_event`, ...).
    #[serde(default)]
    pub counts: std::collections::BTreeMap<String, i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terms: Option<ErasureTerms>,
}

/// An erasure as the API shows it: ids and counts, never the erased values.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ErasureView {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub subject_type: SubjectType,
    pub subject_id: Uuid,
    pub status: ErasureStatus,
    pub requested_by: Actor,
    pub created_at: String,
    #[schema(required = true)]
    pub completed_at: Option<String>,
    /// How many records of each kind were scrubbed, deleted or anonymised
    /// (`subject`, `audit_entry`, `outbox_event`, `webhook_delivery`,
    /// `idempotency_record`, `object_deleted`, `object_scrubbed`, ...).
    #[schema(value_type = Object)]
    pub counts: std::collections::BTreeMap<String, i64>,
}

impl Erasure {
    pub fn view(&self) -> ErasureView {
        ErasureView {
            id: self.id,
            tenant_id: self.tenant_id,
            subject_type: self.subject_type,
            subject_id: self.subject_id,
            status: self.status,
            requested_by: self.requested_by.clone(),
            created_at: super::rfc3339(self.created_at),
            completed_at: self.completed_at.map(super::rfc3339),
            counts: self.counts.clone(),
        }
    }
}

/// The personal values of one subject, and how to find them.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ErasureTerms {
    /// The subject's id: a record naming it is about the subject.
    pub subject_id: String,
    /// Replaced wherever they appear, inside any text (case-insensitive).
    pub emails: Vec<String>,
    /// Replaced where a whole value equals one (names, external id, the
    /// metadata's texts), in records about the subject only.
    pub values: Vec<String>,
}

impl ErasureTerms {
    pub fn new(subject_id: Uuid, emails: Vec<String>, values: Vec<String>) -> Self {
        let mut emails: Vec<String> =
            emails.into_iter().map(|e| e.trim().to_lowercase()).filter(|e| e.len() >= 3).collect();
        emails.sort();
        emails.dedup();
        let mut values: Vec<String> = values
            .into_iter()
            .map(|v| v.trim().to_owned())
            // One or two characters would match too much that is not theirs.
            .filter(|v| v.chars().count() >= 3 && v != ERASED)
            .collect();
        values.sort();
        values.dedup();
        Self { subject_id: subject_id.to_string(), emails, values }
    }

    /// True when `text` names the subject (its id or one of its emails).
    pub fn names_subject(&self, text: &str) -> bool {
        if text.contains(&self.subject_id) {
            return true;
        }
        let lower = text.to_lowercase();
        self.emails.iter().any(|e| lower.contains(e.as_str()))
    }

    /// `text` with the subject's values replaced; `about` says the record
    /// is about the subject (values are then replaced too). A text that is
    /// a JSON document (an event's detail, a delivery's payload) is scrubbed
    /// as JSON, so it stays a valid document.
    pub fn scrub_text(&self, text: &str, about: bool) -> Option<String> {
        let trimmed = text.trim_start();
        if (trimmed.starts_with('{') || trimmed.starts_with('['))
            && let Ok(mut json) = serde_json::from_str::<Value>(text)
        {
            return self.scrub_json(&mut json, about).then(|| json.to_string());
        }
        let mut out = text.to_owned();
        let mut changed = false;
        for email in &self.emails {
            if let Some(replaced) = replace_case_insensitive(&out, email) {
                out = replaced;
                changed = true;
            }
        }
        if about && self.values.iter().any(|v| out.trim() == v) {
            return Some(ERASED.to_owned());
        }
        changed.then_some(out)
    }

    /// Scrubs a JSON value in place; true when anything changed.
    pub fn scrub_json(&self, value: &mut Value, about: bool) -> bool {
        match value {
            Value::String(text) => match self.scrub_text(text, about) {
                Some(new) => {
                    *text = new;
                    true
                }
                None => false,
            },
            Value::Array(items) => items.iter_mut().fold(false, |acc, v| self.scrub_json(v, about) | acc),
            Value::Object(map) => {
                map.iter_mut().fold(false, |acc, (key, v)| self.scrub_json(v, about && !is_structural_field(key)) | acc)
            }
            _ => false,
        }
    }
}

/// Fields whose values are the platform's own vocabulary or references
/// (statuses, kinds, roles, ids, timestamps), never a person's value: a
/// customer whose metadata says `"completed"` must not turn its try-on's
/// `status` into `[erased]`. Emails are still replaced in them.
pub fn is_structural_field(name: &str) -> bool {
    matches!(
        name,
        "id" | "PK"
            | "SK"
            | "GSI1PK"
            | "GSI1SK"
            | "GSI2PK"
            | "GSI2SK"
            | "status"
            | "type"
            | "kind"
            | "role"
            | "action"
            | "resource_type"
            | "event_type"
            | "event_source"
            | "quality"
            | "currency"
            | "environment"
            | "via"
            | "method"
            | "state"
            | "plan"
            | "timestamp"
    ) || (name.ends_with("_id") && name != "external_id")
        || name.ends_with("_at")
}

/// `text` with every case-insensitive occurrence of `needle` (lowercase)
/// replaced by [`ERASED`]; `None` when there is none.
fn replace_case_insensitive(text: &str, needle: &str) -> Option<String> {
    let lower = text.to_lowercase();
    // Lowercasing can change byte lengths outside ASCII; then match exactly.
    if lower.len() != text.len() {
        return text.contains(needle).then(|| text.replace(needle, ERASED));
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = 0;
    let mut found = false;
    // Another address that merely ends with this one is not this one.
    let local_part = |c: u8| c.is_ascii_alphanumeric() || b"._%+-".contains(&c);
    for (at, _) in lower.match_indices(needle) {
        if at < rest || (at > 0 && local_part(lower.as_bytes()[at - 1])) {
            continue;
        }
        out.push_str(&text[rest..at]);
        out.push_str(ERASED);
        rest = at + needle.len();
        found = true;
    }
    if !found {
        return None;
    }
    out.push_str(&text[rest..]);
    Some(out)
}

/// Attributes that hold a secret or what proves one (a hash, a sealed
/// value and its nonce, backup codes): never exported.
pub fn is_secret_attribute(name: &str) -> bool {
    name.ends_with("_hash")
        || name.ends_with("_sealed")
        || name.ends_with("_nonce")
        || matches!(name, "backup_codes" | "secret" | "lock" | "nonce" | "saml_claims")
}

/// Sort-key prefixes of items that are only credentials or their
/// plumbing (sign-in sessions, challenges, mail tokens, SSO states,
/// replay markers, idempotency records, rate counters): left out of an
/// export whole.
pub const CREDENTIAL_ITEM_PREFIXES: &[&str] =
    &["SESSION#", "MFACHALLENGE#", "MAILTOKEN#", "SSOSTATE#", "SAMLASSERTION#", "IDEM#", "RATE#"];

pub fn is_credential_item(sk: &str) -> bool {
    CREDENTIAL_ITEM_PREFIXES.iter().any(|p| sk.starts_with(p))
}

/// The kind of record an item is, from its sort key (`AUDIT#...` ->
/// `audit_entry`): how an erasure counts what it touched.
pub fn record_kind(sk: &str) -> String {
    let head = sk.split('#').next().unwrap_or(sk);
    match head {
        "AUDIT" => "audit_entry".into(),
        "EVENT" => "outbox_event".into(),
        "WHDELIVERY" => "webhook_delivery".into(),
        "IDEM" => "idempotency_record".into(),
        "INBOUND" => "inbound_event".into(),
        "TRYON" => "tryon".into(),
        "CUSTOMER" => "customer".into(),
        "CUSTOMEREXT" => "customer_claim".into(),
        "USER" => "user".into(),
        "INVITATION" => "invitation".into(),
        "SESSION" => "session".into(),
        other => other.to_lowercase(),
    }
}

/// Whether the stage's region serves the tenant's `data_residency`: the
/// same region (`eu-west-1`), or a region of the named area (`eu`, `us`).
/// `None` when the tenant states no residency.
pub fn residency_matches(residency: Option<&str>, region: &str) -> Option<bool> {
    let residency = residency?.trim().to_lowercase();
    let region = region.trim().to_lowercase();
    Some(!region.is_empty() && (residency == region || region.starts_with(&format!("{residency}-"))))
}

/// How long one kind of record is kept.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct RecordRetention {
    /// The kind of record (`audit_entry`, `webhook_delivery`, ...).
    pub record: &'static str,
    /// Days it is kept (the TTL on `expires_at`); `null`: until deleted.
    #[schema(required = true)]
    pub days: Option<i64>,
    /// `tenant` (exactly the tenant's retention), `capped` (a fixed
    /// lifetime, shortened to the tenant's retention when that is shorter),
    /// `fixed` (the platform's, whatever the tenant's) or `kept` (no TTL).
    pub rule: &'static str,
    pub why: &'static str,
}

/// Fixed lifetimes defined where each record is written (the store layer,
/// below which this one sits): `store::webhooks::DELIVERY_RETENTION_DAYS`,
/// `store::tx` (outbox), `store::metrics::ROLLUP_RETENTION_DAYS`, the usage
/// events' dedupe window (`store::billing`).
const WEBHOOK_DELIVERY_DAYS: i64 = 30;
const OUTBOX_EVENT_DAYS: i64 = 7;
const USAGE_EVENT_DAYS: i64 = 40;
const METRICS_DAYS: i64 = 400;

/// Each kind of record and how long it is kept, for a tenant whose
/// retention is `tenant_days` (docs/data-model.md, "Retention").
pub fn retention_rules(tenant_days: i64) -> Vec<RecordRetention> {
    let capped = |days: i64| Some(days.min(tenant_days));
    vec![
        RecordRetention {
            record: "audit_entry",
            days: Some(tenant_days),
            rule: "tenant",
            why: "the trail the retention policy is about",
        },
        RecordRetention {
            record: "compliance_export",
            days: Some(tenant_days),
            rule: "tenant",
            why: "who exported the tenant's data, and when, is part of the trail",
        },
        RecordRetention {
            record: "compliance_erasure",
            days: Some(tenant_days),
            rule: "tenant",
            why: "proof that an erasure happened (ids and counts only)",
        },
        RecordRetention {
            record: "webhook_delivery",
            days: capped(WEBHOOK_DELIVERY_DAYS),
            rule: "capped",
            why: "a delivery log for debugging endpoints; it carries event payloads, so never longer than the tenant allows",
        },
        RecordRetention {
            record: "inbound_event",
            days: capped(super::integration::EVENT_RETENTION_DAYS),
            rule: "capped",
            why: "a provider's payloads, kept for replays; a rejection only 7 days",
        },
        RecordRetention {
            record: "outbox_event",
            days: Some(OUTBOX_EVENT_DAYS),
            rule: "fixed",
            why: "relay plumbing, already shorter than any retention",
        },
        RecordRetention {
            record: "usage_event",
            days: Some(USAGE_EVENT_DAYS),
            rule: "fixed",
            why: "billing's dedupe window must outlive the 35-day grace for late records",
        },
        RecordRetention {
            record: "metrics_day",
            days: Some(METRICS_DAYS),
            rule: "fixed",
            why: "counts without personal data, for a year of figures",
        },
        RecordRetention {
            record: "sync_run",
            days: Some(super::sync::RUN_RETENTION_DAYS),
            rule: "fixed",
            why: "run history (counts and errors)",
        },
        RecordRetention {
            record: "workflow_execution",
            days: Some(super::workflow::EXECUTION_RETENTION_DAYS),
            rule: "fixed",
            why: "execution history with step excerpts",
        },
        RecordRetention {
            record: "export_file",
            days: Some(EXPORT_FILE_DAYS),
            rule: "fixed",
            why: "a copy of everything; short-lived on purpose (S3 lifecycle on tenants/*/exports/)",
        },
        RecordRetention {
            record: "tryon_session",
            days: None,
            rule: "kept",
            why: "the record of a credit spend; erased with its customer",
        },
        RecordRetention {
            record: "customer",
            days: None,
            rule: "kept",
            why: "the tenant's own data, until it deletes or erases it",
        },
    ]
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn terms() -> ErasureTerms {
        ErasureTerms::new(
            Uuid::nil(),
            vec!["Ada@Example.com".into()],
            vec!["Ada Lovelace".into(), "x".into(), "shopper-42".into()],
        )
    }

    #[test]
    fn an_email_is_replaced_in_any_text_whatever_its_case() {
        let t = terms();
        assert_eq!(t.scrub_text("mail ADA@example.COM now", false).as_deref(), Some("mail [erased] now"));
        assert_eq!(t.scrub_text("nothing here", true), None);
        assert_eq!(t.scrub_text("lada@example.com", true), None);
    }

    #[test]
    fn a_name_is_replaced_only_in_records_about_the_subject() {
        let t = terms();
        assert_eq!(t.scrub_text("Ada Lovelace", false), None);
        assert_eq!(t.scrub_text("Ada Lovelace", true).as_deref(), Some(ERASED));
        // One-letter values are never terms.
        assert_eq!(t.scrub_text("x", true), None);
    }

    #[test]
    fn a_value_that_is_also_platform_vocabulary_leaves_structural_fields_alone() {
        let t = ErasureTerms::new(Uuid::nil(), vec![], vec!["completed".into()]);
        let mut doc = json!({"status": "completed", "note": "completed", "items": [{"kind": "completed"}]});
        assert!(t.scrub_json(&mut doc, true));
        assert_eq!(doc, json!({"status": "completed", "note": ERASED, "items": [{"kind": "completed"}]}));
    }

    #[test]
    fn json_documents_stay_valid_after_scrubbing() {
        let t = terms();
        let detail = json!({"data": {"new_values": {"email": "ada@example.com", "name": "Ada Lovelace", "n": 3}}});
        let scrubbed = t.scrub_text(&detail.to_string(), true).expect("changed");
        let back: Value = serde_json::from_str(&scrubbed).expect("valid JSON");
        assert_eq!(back, json!({"data": {"new_values": {"email": ERASED, "name": ERASED, "n": 3}}}));
    }

    #[test]
    fn a_record_is_about_the_subject_when_it_names_its_id_or_email() {
        let t = terms();
        assert!(t.names_subject(&format!("customer {}", Uuid::nil())));
        assert!(t.names_subject("to: ada@EXAMPLE.com"));
        assert!(!t.names_subject("Ada Lovelace"));
    }

    #[test]
    fn secrets_and_credential_items_are_never_exported() {
        for name in ["password_hash", "secret_sealed", "secret_nonce", "token_hash", "backup_codes"] {
            assert!(is_secret_attribute(name), "{name}");
        }
        for name in ["email", "name", "status", "hash_count"] {
            assert!(!is_secret_attribute(name), "{name}");
        }
        assert!(is_credential_item("SESSION#1"));
        assert!(is_credential_item("IDEM#U#1#abc"));
        assert!(!is_credential_item("USER#1"));
    }

    #[test]
    fn a_short_retention_caps_what_would_outlive_it() {
        let rules = retention_rules(10);
        let days = |record: &str| rules.iter().find(|r| r.record == record).and_then(|r| r.days);
        assert_eq!(days("audit_entry"), Some(10));
        assert_eq!(days("webhook_delivery"), Some(10));
        assert_eq!(days("outbox_event"), Some(7));
        assert_eq!(
            retention_rules(3650).iter().find(|r| r.record == "webhook_delivery").and_then(|r| r.days),
            Some(30)
        );
    }

    #[test]
    fn residency_is_a_region_or_an_area() {
        assert_eq!(residency_matches(Some("eu-west-1"), "eu-west-1"), Some(true));
        assert_eq!(residency_matches(Some("EU"), "eu-central-1"), Some(true));
        assert_eq!(residency_matches(Some("us"), "eu-west-1"), Some(false));
        assert_eq!(residency_matches(None, "eu-west-1"), None);
    }
}
