//! Reading a tenant's audit trail (entries are written by `audit`, inside the
//! transactions of the changes they record).

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::{Item, Store, s};
use crate::{auth::TenantScope, error::AppResult, http::PageRequest};

/// Filters of `GET /v1/audit/logs` (seed 003).
#[derive(Debug, Default, Clone)]
pub struct AuditFilter {
    pub action: Option<String>,
    pub resource_type: Option<String>,
    pub user_id: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

/// The sort-key prefix of entries written in the millisecond `at`: a UUIDv7
/// starts with its 48-bit millisecond timestamp, so time ranges are key ranges.
fn audit_key_at(at: DateTime<Utc>) -> String {
    let ms = at.timestamp_millis().max(0) as u64;
    format!("AUDIT#{:08x}-{:04x}", ms >> 16, ms & 0xffff)
}

impl Store {
    /// Newest first; date bounds are inclusive.
    pub async fn audit_entries(
        &self,
        scope: &TenantScope,
        filter: &AuditFilter,
        page: &PageRequest,
    ) -> AppResult<(Vec<Value>, Option<String>)> {
        let lower = filter.from.map(audit_key_at).unwrap_or_else(|| "AUDIT#".to_owned());
        // `~` sorts after every hex digit: the whole last millisecond is in.
        let upper = filter.to.map(|t| format!("{}~", audit_key_at(t))).unwrap_or_else(|| "AUDIT#~".to_owned());
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("PK = :pk AND SK BETWEEN :lower AND :upper")
            .expression_attribute_values(":pk", s(scope.pk()))
            .expression_attribute_values(":lower", s(&lower))
            .expression_attribute_values(":upper", s(&upper))
            .scan_index_forward(false);
        let query = super::filter_equal(
            query,
            &[
                ("action", filter.action.clone().map(s)),
                ("resource_type", filter.resource_type.clone().map(s)),
                ("user_id", filter.user_id.clone().map(s)),
            ],
            &[],
        );
        let context = format!(
            "audit|{}|{lower}|{upper}|{}|{}|{}",
            scope.pk(),
            filter.action.as_deref().unwrap_or(""),
            filter.resource_type.as_deref().unwrap_or(""),
            filter.user_id.as_deref().unwrap_or("")
        );
        let (items, cursor) = self.query_page(query, page, &context, &["PK", "SK"]).await?;
        Ok((items.into_iter().map(entry_body).collect(), cursor))
    }
}

/// The API body of an entry (seed 003's shape plus actor, user agent, request id).
fn entry_body(item: Item) -> Value {
    let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
    let json_of = |name: &str| {
        item.get(name).and_then(|v| serde_dynamo::from_attribute_value::<_, Value>(v.clone()).ok()).unwrap_or(json!({}))
    };
    let actor = json_of("actor");
    json!({
        "id": text("id"),
        "user": if actor["type"] == "user" { json!({"id": actor["id"], "email": actor["email"]}) } else { Value::Null },
        "actor": actor,
        "action": text("action"),
        "resource_type": text("resource_type"),
        "resource_id": text("resource_id"),
        "old_values": json_of("old_values"),
        "new_values": json_of("new_values"),
        "ip_address": text("ip_address"),
        "user_agent": text("user_agent"),
        "request_id": text("request_id"),
        "timestamp": text("timestamp"),
        // When the entry leaves the trail (the tenant's retention policy).
        "expires_at": item
            .get("expires_at")
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse::<i64>().ok())
            .and_then(|t| DateTime::from_timestamp(t, 0))
            .map(crate::domain::rfc3339),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_uuid_v7_of_a_millisecond_starts_with_that_milliseconds_key() {
        let at = DateTime::parse_from_rfc3339("2026-11-22T08:00:00.123Z").expect("date").with_timezone(&Utc);
        let id = uuid::Uuid::new_v7(uuid::Timestamp::from_unix(
            uuid::NoContext,
            at.timestamp() as u64,
            at.timestamp_subsec_nanos(),
        ));
        assert!(format!("AUDIT#{id}").starts_with(&audit_key_at(at)), "{id} vs {}", audit_key_at(at));
        let later = at + chrono::Duration::milliseconds(1);
        assert!(audit_key_at(later) > format!("AUDIT#{id}"));
    }
}
