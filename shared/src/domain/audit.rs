//! The audit trail. Every mutation writes exactly one entry per changed
//! resource, as one more item of the transaction that makes the change, so an
//! entry exists if and only if the change happened. Handlers never write
//! entries themselves: store methods that mutate take an [`AuditContext`]
//! (who, from where, which request) and build the entry from the old and new
//! values they know, with secrets redacted. (The request's `AuditContext` and
//! `ClientInfo` are extracted by the web layer, `web::audit`.)

use std::{
    collections::HashMap,
    sync::{Mutex, OnceLock},
    time::{Duration, Instant},
};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::request_id::current_request_id;

/// Who made a change and from where.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AuditContext {
    pub actor: Actor,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
}

/// Who made a change: audit entries and ledger entries show it as stored.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Actor {
    /// `user`, `api_key` or `system`.
    #[serde(rename = "type")]
    #[schema(schema_with = actor_kinds)]
    pub kind: String,
    /// The user's or the API key's id, or the platform component's name.
    pub id: String,
    /// The user's email (users only).
    pub email: Option<String>,
}

/// The kinds of actor the constructors of [`AuditContext`] make.
fn actor_kinds() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(["user", "api_key", "system"]))
        .description(Some("`user`, `api_key` or `system` (a platform component)"))
        .build()
}

/// Where a request came from, for audit entries (the web layer reads it off
/// the request).
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
}

impl AuditContext {
    pub fn user(user_id: Uuid, email: Option<String>, client: &ClientInfo) -> Self {
        Self {
            actor: Actor { kind: "user".into(), id: user_id.to_string(), email },
            ip_address: client.ip_address.clone(),
            user_agent: client.user_agent.clone(),
            request_id: Some(current_request_id()),
        }
    }

    /// A request authenticated by an API key: the key is the actor.
    pub fn api_key(key_id: Uuid, client: &ClientInfo) -> Self {
        Self {
            actor: Actor { kind: "api_key".into(), id: key_id.to_string(), email: None },
            ip_address: client.ip_address.clone(),
            user_agent: client.user_agent.clone(),
            request_id: Some(current_request_id()),
        }
    }

    /// The platform acting on an unauthenticated request (a sign-in
    /// lockout): the caller's address and agent are kept, no person is named.
    pub fn system_for_client(component: &str, client: &ClientInfo) -> Self {
        Self {
            actor: Actor { kind: "system".into(), id: component.to_owned(), email: None },
            ip_address: client.ip_address.clone(),
            user_agent: client.user_agent.clone(),
            request_id: Some(current_request_id()),
        }
    }

    /// A platform process acting on its own (a worker, a scheduled job).
    pub fn system(component: &str) -> Self {
        Self {
            actor: Actor { kind: "system".into(), id: component.to_owned(), email: None },
            ip_address: None,
            user_agent: None,
            request_id: None,
        }
    }

    pub fn user_id(&self) -> Option<&str> {
        (self.actor.kind == "user").then_some(self.actor.id.as_str())
    }
}

/// One change to one resource.
#[derive(Debug, Clone)]
pub struct Change {
    pub action: &'static str,
    pub resource_type: &'static str,
    pub resource_id: String,
    pub old_values: Value,
    pub new_values: Value,
}

impl Change {
    /// `new` is the resource as the API shows it (its view type), so an
    /// entry records what a caller could see, never a stored-only field.
    pub fn created(resource_type: &'static str, id: impl ToString, new: impl Serialize) -> Self {
        Self {
            action: "create",
            resource_type,
            resource_id: id.to_string(),
            old_values: json!({}),
            new_values: snapshot(new),
        }
    }

    pub fn updated(resource_type: &'static str, id: impl ToString, old: impl Serialize, new: impl Serialize) -> Self {
        let (old_values, new_values) = changed_fields(&snapshot(old), &snapshot(new));
        Self { action: "update", resource_type, resource_id: id.to_string(), old_values, new_values }
    }

    pub fn deleted(resource_type: &'static str, id: impl ToString, old: impl Serialize) -> Self {
        Self {
            action: "delete",
            resource_type,
            resource_id: id.to_string(),
            old_values: snapshot(old),
            new_values: json!({}),
        }
    }
}

/// An entry of the audit trail: one change to one resource (seed 003's
/// shape, plus the actor, user agent and request id).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AuditEntryView {
    pub id: Uuid,
    /// The acting user, when the actor is one (seed 003's field; `actor`
    /// tells every kind).
    pub user: Option<AuditUser>,
    pub actor: Actor,
    /// `create`, `update`, `delete`, or what the resource names its changes
    /// (a credit `grant`, say).
    pub action: String,
    pub resource_type: String,
    pub resource_id: String,
    /// The fields before the change (only the changed ones for an update),
    /// secrets redacted.
    #[schema(value_type = Object)]
    pub old_values: Value,
    /// The fields after the change (only the changed ones for an update),
    /// secrets redacted.
    #[schema(value_type = Object)]
    pub new_values: Value,
    /// The caller's address, when the change came from a request.
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    /// The id of the request that made the change (`X-Request-Id`).
    pub request_id: Option<String>,
    /// When the change happened.
    #[schema(format = DateTime)]
    pub timestamp: String,
    /// When the entry leaves the trail (the tenant's retention policy).
    #[schema(format = DateTime)]
    pub expires_at: Option<String>,
}

/// The user who made a change.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AuditUser {
    pub id: String,
    pub email: Option<String>,
}

/// A view as JSON. Views are plain structs of strings, numbers and maps, for
/// which serialisation cannot fail; `{}` would only hide a bug in a view.
fn snapshot(view: impl Serialize) -> Value {
    serde_json::to_value(view).unwrap_or_else(|_| json!({}))
}

/// Only the fields that differ, on both sides, so an entry shows what changed.
fn changed_fields(old: &Value, new: &Value) -> (Value, Value) {
    match (old, new) {
        (Value::Object(o), Value::Object(n)) => {
            let mut before = Map::new();
            let mut after = Map::new();
            for key in o.keys().chain(n.keys()) {
                if key == "updated_at" || before.contains_key(key) || after.contains_key(key) {
                    continue;
                }
                let (a, b) = (o.get(key).unwrap_or(&Value::Null), n.get(key).unwrap_or(&Value::Null));
                if a != b {
                    before.insert(key.clone(), a.clone());
                    after.insert(key.clone(), b.clone());
                }
            }
            (Value::Object(before), Value::Object(after))
        }
        _ => (old.clone(), new.clone()),
    }
}

const SECRET_MARKERS: &[&str] = &["password", "secret", "token", "hash", "api_key", "private"];
pub const REDACTED: &str = "[REDACTED]";

/// Replaces the value of every field whose name looks secret, at any depth.
pub fn redact(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                let lower = key.to_ascii_lowercase();
                if SECRET_MARKERS.iter().any(|m| lower.contains(m)) && !v.is_null() {
                    *v = Value::String(REDACTED.to_owned());
                } else {
                    redact(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact),
        _ => {}
    }
}

/// Retention when the tenant's configuration names none.
pub const DEFAULT_RETENTION_DAYS: i64 = 365;

/// A tenant's `configuration.compliance.retention_policy_days`.
pub fn retention_days_of(configuration: &Value) -> i64 {
    configuration["compliance"]["retention_policy_days"].as_i64().filter(|d| *d > 0).unwrap_or(DEFAULT_RETENTION_DAYS)
}

/// Retention per tenant, cached for a few minutes per warm process so a
/// mutation does not pay a read for a setting that rarely changes.
pub(crate) fn cached_retention(tenant_id: Uuid) -> Option<i64> {
    let cache = retention_cache().lock().ok()?;
    cache.get(&tenant_id).filter(|(_, at)| at.elapsed() < RETENTION_CACHE_TTL).map(|(days, _)| *days)
}

pub(crate) fn remember_retention(tenant_id: Uuid, days: i64) {
    if let Ok(mut cache) = retention_cache().lock() {
        if cache.len() > 10_000 {
            cache.clear();
        }
        cache.insert(tenant_id, (days, Instant::now()));
    }
}

const RETENTION_CACHE_TTL: Duration = Duration::from_secs(300);

fn retention_cache() -> &'static Mutex<HashMap<Uuid, (i64, Instant)>> {
    static CACHE: OnceLock<Mutex<HashMap<Uuid, (i64, Instant)>>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_at_any_depth() {
        let mut v = json!({"email": "a@b.co", "password": "hunter2", "nested": {"client_secret": "x", "ok": 1},
                           "list": [{"token_hash": "abc"}], "api_key_prefix": null});
        redact(&mut v);
        assert_eq!(v["email"], "a@b.co");
        assert_eq!(v["password"], REDACTED);
        assert_eq!(v["nested"]["client_secret"], REDACTED);
        assert_eq!(v["nested"]["ok"], 1);
        assert_eq!(v["list"][0]["token_hash"], REDACTED);
        assert!(v["api_key_prefix"].is_null());
    }

    #[test]
    fn an_update_records_only_what_changed() {
        let change = Change::updated(
            "tenant",
            "t1",
            json!({"name": "A", "plan": "free", "updated_at": "1"}),
            json!({"name": "B", "plan": "free", "updated_at": "2", "description": "new"}),
        );
        assert_eq!(change.old_values, json!({"name": "A", "description": null}));
        assert_eq!(change.new_values, json!({"name": "B", "description": "new"}));
    }

    #[test]
    fn retention_comes_from_the_compliance_configuration() {
        assert_eq!(retention_days_of(&json!({"compliance": {"retention_policy_days": 2555}})), 2555);
        assert_eq!(retention_days_of(&json!({})), DEFAULT_RETENTION_DAYS);
    }
}
