//! A tenant's audit trail: entries are written by [`super::tx::Tx::audit`]
//! inside the transactions of the changes they record, and each entry is
//! also its `audit.entry.created` event (it carries the outbox attributes).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::{
    Item, Store, n, s,
    tx::{EVENT_DETAIL_ATTR, EVENT_SOURCE_ATTR, EVENT_TYPE_ATTR},
};
use crate::{
    auth::TenantScope,
    domain::{
        audit::{Actor, AuditContext, AuditEntryView, AuditUser, Change, redact},
        ids::UserId,
    },
    error::AppResult,
    events::{DomainEvent, Event, catalogue::AuditEntryCreated},
    store::PageRequest,
};

/// The stored entry. Its sort key is a UUIDv7, so a tenant's entries are in
/// time order and a date range is a key range. The entry's id is also the id
/// of its event.
pub(crate) fn entry_item(scope: &TenantScope, ctx: &AuditContext, change: Change, retention_days: i64) -> Item {
    let id = Uuid::now_v7();
    let now = chrono::Utc::now();
    let mut old_values = change.old_values;
    let mut new_values = change.new_values;
    redact(&mut old_values);
    redact(&mut new_values);
    let timestamp = crate::domain::rfc3339(now);
    let mut item: Item = HashMap::from([
        ("PK".to_owned(), s(scope.pk())),
        ("SK".to_owned(), s(format!("AUDIT#{id}"))),
        ("id".to_owned(), s(id.to_string())),
        ("tenant_id".to_owned(), s(scope.tenant_id().to_string())),
        ("action".to_owned(), s(change.action)),
        ("resource_type".to_owned(), s(change.resource_type)),
        ("resource_id".to_owned(), s(&change.resource_id)),
        ("timestamp".to_owned(), s(&timestamp)),
        ("expires_at".to_owned(), n(now.timestamp() + retention_days * 86_400)),
    ]);
    let json_attr = |v: &Value| super::to_attribute(v).ok();
    let actor = json!(ctx.actor);
    if let Some(v) = json_attr(&actor) {
        item.insert("actor".to_owned(), v);
    }
    if let Some(v) = json_attr(&old_values) {
        item.insert("old_values".to_owned(), v);
    }
    if let Some(v) = json_attr(&new_values) {
        item.insert("new_values".to_owned(), v);
    }
    if let Some(user) = ctx.user_id() {
        item.insert("user_id".to_owned(), s(user));
    }
    for (name, value) in
        [("ip_address", &ctx.ip_address), ("user_agent", &ctx.user_agent), ("request_id", &ctx.request_id)]
    {
        if let Some(v) = value {
            item.insert(name.to_owned(), s(v.clone()));
        }
    }
    let event = Event::AuditEntryCreated(AuditEntryCreated {
        id,
        action: change.action.to_owned(),
        resource_type: change.resource_type.to_owned(),
        resource_id: change.resource_id,
        actor,
        old_values,
        new_values,
        timestamp,
        request_id: ctx.request_id.clone(),
    });
    let envelope = DomainEvent { id, occurred_at: now, ..event.into_domain_event(scope.tenant_id()) };
    item.insert(EVENT_TYPE_ATTR.to_owned(), s(&envelope.event_type));
    item.insert(EVENT_DETAIL_ATTR.to_owned(), s(serde_json::to_string(&envelope).unwrap_or_default()));
    item.insert(EVENT_SOURCE_ATTR.to_owned(), s(envelope.source()));
    item
}

/// Filters of `GET /v1/audit/logs` (seed 003).
#[derive(Debug, Default, Clone)]
pub struct AuditFilter {
    pub action: Option<String>,
    pub resource_type: Option<String>,
    pub user_id: Option<UserId>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

/// The sort-key prefix of entries written in the millisecond `at`.
fn audit_key_at(at: DateTime<Utc>) -> String {
    format!("AUDIT#{}", super::uuid7_prefix_at(at))
}

impl Store {
    /// Newest first; date bounds are inclusive.
    pub async fn audit_entries(
        &self,
        scope: &TenantScope,
        filter: &AuditFilter,
        page: &PageRequest,
    ) -> AppResult<(Vec<AuditEntryView>, Option<String>)> {
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
                ("user_id", filter.user_id.map(|u| s(u.to_string()))),
            ],
            &[],
        );
        let context = format!(
            "audit|{}|{lower}|{upper}|{}|{}|{}",
            scope.pk(),
            filter.action.as_deref().unwrap_or(""),
            filter.resource_type.as_deref().unwrap_or(""),
            filter.user_id.map(|u| u.to_string()).unwrap_or_default()
        );
        let (items, cursor) = self.query_page(query, page, &context, &["PK", "SK"]).await?;
        let entries: Vec<StoredEntry> = super::decode_listed(items);
        Ok((entries.into_iter().map(StoredEntry::view).collect(), cursor))
    }
}

/// An entry as [`entry_item`] stores it (the keys, `user_id` and the outbox
/// attributes are not read back).
#[derive(Debug, Deserialize)]
struct StoredEntry {
    id: Uuid,
    actor: Actor,
    action: String,
    resource_type: String,
    resource_id: String,
    #[serde(default = "empty_object")]
    old_values: Value,
    #[serde(default = "empty_object")]
    new_values: Value,
    #[serde(default)]
    ip_address: Option<String>,
    #[serde(default)]
    user_agent: Option<String>,
    #[serde(default)]
    request_id: Option<String>,
    timestamp: String,
    /// Epoch seconds (DynamoDB's TTL attribute).
    #[serde(default)]
    expires_at: Option<i64>,
}

fn empty_object() -> Value {
    json!({})
}

impl StoredEntry {
    fn view(self) -> AuditEntryView {
        let user = (self.actor.kind == "user")
            .then(|| AuditUser { id: self.actor.id.clone(), email: self.actor.email.clone() });
        AuditEntryView {
            id: self.id,
            user,
            actor: self.actor,
            action: self.action,
            resource_type: self.resource_type,
            resource_id: self.resource_id,
            old_values: self.old_values,
            new_values: self.new_values,
            ip_address: self.ip_address,
            user_agent: self.user_agent,
            request_id: self.request_id,
            timestamp: self.timestamp,
            expires_at: self.expires_at.and_then(|t| DateTime::from_timestamp(t, 0)).map(crate::domain::rfc3339),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::from_item;

    #[test]
    fn an_entry_reads_back_as_the_api_shows_it() {
        let scope = crate::auth::proofs::NewTenant::scope(Uuid::nil());
        let ctx = AuditContext::user(Uuid::nil(), Some("a@b.co".into()), &Default::default());
        let change = Change::updated("tenant", "t1", json!({"name": "A"}), json!({"name": "B", "token": "x"}));
        let item = entry_item(&scope, &ctx, change, 30);
        let view = from_item::<StoredEntry>(item).map(StoredEntry::view).expect("entry");
        let body = serde_json::to_value(&view).expect("json");
        let keys: Vec<&str> = body.as_object().map(|o| o.keys().map(String::as_str).collect()).unwrap_or_default();
        let expected = "action actor expires_at id ip_address new_values old_values request_id resource_id \
                        resource_type timestamp user user_agent";
        assert_eq!(keys, expected.split_whitespace().collect::<Vec<_>>());
        assert_eq!(body["user"], json!({"id": Uuid::nil(), "email": "a@b.co"}));
        assert_eq!(body["actor"], json!({"type": "user", "id": Uuid::nil(), "email": "a@b.co"}));
        assert_eq!(body["old_values"], json!({"name": "A", "token": null}));
        assert_eq!(body["new_values"], json!({"name": "B", "token": crate::domain::audit::REDACTED}));
        assert!(body["ip_address"].is_null() && body["expires_at"].is_string());
        let system = entry_item(&scope, &AuditContext::system("worker"), Change::deleted("x", "1", json!({})), 30);
        let view = from_item::<StoredEntry>(system).map(StoredEntry::view).expect("entry");
        assert_eq!(view.user, None);
    }

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
