//! API keys (seed 004), in their tenant's partition, and the per-request
//! accounting of a key's use.
//!
//! | item | PK | SK | notes |
//! |---|---|---|---|
//! | key | `T#<tenant>#` | `APIKEY#<key>` | metadata, `secret_hash` (SHA-256), during a rotation's grace `previous_secret_hash` + `previous_secret_expires_at`, usage `usage_count` + `last_used_at`, and the rate-limit count of the current window as `rl_<window start>` |
//!
//! Authentication is one GetItem: the presented secret names its tenant and
//! key id (auth/api_key.rs), and its SHA-256 must match the stored hash.
//! Accounting is one UpdateItem on the same item: it adds one to the count of
//! the current window unless the limit is reached, bumps `usage_count`, sets
//! `last_used_at`, and removes the counts of past windows the read saw, so
//! the item never grows. It is conditioned on the key still being unrevoked,
//! so a revocation that lands between the read and the write wins.
//!
//! A create is one transaction: the key, its audit entry, `api_key.created`,
//! and a check on the tenant item that the tenant's key policy
//! (`settings.api_keys.max_lifetime_days`) allows the key's expiry
//! ([`KEY_LIFETIME_POLICY`]); the tenant is read only when that check fails,
//! to say why.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{
    ConditionCheck, ReturnValue,
    builders::{ConditionCheckBuilder, UpdateBuilder},
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use super::{
    Item, PageRequest, Store, condition_failed, from_item, n, number_attr, s,
    tenants::tenant_key,
    to_item,
    tx::{Cond, Tx, TxError},
};
use crate::{
    auth::{
        TenantScope,
        api_key::{KeyEnvironment, NewSecret},
        proofs::CredentialLookup,
        scopes::Scope,
    },
    domain::{
        api_key::{LIFETIME_POLICY_PATH, days_needed, lifetime_refusal, parse_time},
        audit::{AuditContext, Change},
        rate_limit::{RateStatus, Subject, TenantPolicy, cached_policy, remember_policy, window_start},
        rfc3339,
    },
    error::{AppError, AppResult},
    events::{Event, catalogue::ApiKeyChanged},
};

pub use crate::domain::api_key::KeyState;

pub const API_KEY_RESOURCE: &str = "api_key";
const SK_PREFIX: &str = "APIKEY#";
const WINDOW_ATTR_PREFIX: &str = "rl_";

/// The key was revoked, rotated or deleted since it was read.
pub const KEY_CHANGED: Cond = Cond("api_key_changed");
/// The tenant's key policy (`settings.api_keys.max_lifetime_days`) does not
/// allow the new key's expiry: [`Store::create_api_key`] reads the tenant and
/// answers why.
pub const KEY_LIFETIME_POLICY: Cond = Cond("api_key_lifetime_policy");

/// The check on the tenant item that its key policy allows a key created at
/// `at` expiring at `expires_at` (`None`: never): no number at the policy's
/// path, or one of at least [`days_needed`]. It is
/// [`crate::domain::api_key::lifetime_refusal`] as a condition, so that the
/// create reads the tenant only when it is refused. A missing tenant item
/// has no policy, as the read would find.
fn lifetime_policy_check(
    scope: &TenantScope,
    expires_at: Option<DateTime<Utc>>,
    at: DateTime<Utc>,
) -> ConditionCheckBuilder {
    let [settings, keys, days] = LIFETIME_POLICY_PATH;
    let no_policy = "attribute_not_exists(#settings.#keys.#days) OR NOT attribute_type(#settings.#keys.#days, :number)";
    let check = ConditionCheck::builder()
        .set_key(Some(tenant_key(scope)))
        .expression_attribute_names("#settings", settings)
        .expression_attribute_names("#keys", keys)
        .expression_attribute_names("#days", days)
        .expression_attribute_values(":number", s("N"));
    match expires_at {
        None => check.condition_expression(no_policy),
        Some(t) => check
            .condition_expression(format!("{no_policy} OR #settings.#keys.#days >= :needed"))
            .expression_attribute_values(":needed", n(days_needed(t, at))),
    }
}

fn key_of(scope: &TenantScope, key_id: Uuid) -> Item {
    HashMap::from([("PK".into(), s(scope.pk())), ("SK".into(), s(format!("{SK_PREFIX}{key_id}")))])
}

/// A key as stored and shown: never its secret or hash (those attributes are
/// not fields here, so no code path can serialise them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiKey {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub name: String,
    pub environment: KeyEnvironment,
    /// `sk_live_` or `sk_test_`: with `last_four`, how people recognise a key.
    pub prefix: String,
    pub last_four: String,
    pub scopes: Vec<Scope>,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub updated_at: DateTime<Utc>,
    // Absent rather than NULL when unset: conditions test `attribute_not_exists`.
    // `expires_at` stays the stored text: authentication quotes it as stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotated_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub usage_count: i64,
}

impl ApiKey {
    pub fn state(&self, now: chrono::DateTime<chrono::Utc>) -> KeyState {
        if self.revoked_at.is_some() {
            KeyState::Revoked
        } else if self.expires_at.as_deref().and_then(parse_time).is_some_and(|at| at <= now) {
            KeyState::Expired
        } else {
            KeyState::Active
        }
    }

    /// The key as shown now: its `status` is read off the clock.
    pub fn view(&self) -> ApiKeyView {
        ApiKeyView {
            id: self.id,
            tenant_id: self.tenant_id,
            name: self.name.clone(),
            environment: self.environment.as_str().to_owned(),
            prefix: self.prefix.clone(),
            last_four: self.last_four.clone(),
            scopes: self.scopes.iter().map(|s| s.as_str().to_owned()).collect(),
            created_at: self.created_at,
            created_by: self.created_by.clone(),
            updated_at: self.updated_at,
            expires_at: self.expires_at.clone(),
            revoked_at: self.revoked_at,
            rotated_at: self.rotated_at,
            last_used_at: self.last_used_at,
            usage_count: self.usage_count,
            status: self.state(crate::domain::now()),
        }
    }

    /// The payload of `api_key.created` / `.revoked` / `.rotated`.
    fn event_payload(&self) -> ApiKeyChanged {
        ApiKeyChanged {
            key_id: self.id,
            name: self.name.clone(),
            scopes: self.scopes.iter().map(|s| s.as_str().to_owned()).collect(),
            environment: self.environment.as_str().to_owned(),
        }
    }
}

/// A key as the API shows it (and as audit entries record it): never its
/// secret or hash. Unlike the stored item, an unset time is `null`, not
/// absent.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ApiKeyView {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub name: String,
    /// `live` or `test`.
    pub environment: String,
    /// `sk_live_` or `sk_test_`: with `last_four`, how people recognise a key.
    pub prefix: String,
    /// The secret's last four characters.
    pub last_four: String,
    /// What the key may do (`tryons:write`, ...).
    pub scopes: Vec<String>,
    pub created_at: DateTime<Utc>,
    /// The id of the admin who created it.
    pub created_by: String,
    pub updated_at: DateTime<Utc>,
    /// When the key stops working, if ever.
    #[schema(format = DateTime)]
    pub expires_at: Option<String>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// The last time the key was given a new secret.
    pub rotated_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    /// Requests made with the key.
    pub usage_count: i64,
    /// Whether the key can be used right now.
    pub status: KeyState,
}

/// A key read for authentication: the key, its hashes, and the names of the
/// window counts it carries (so the accounting update can remove old ones).
pub struct StoredKey {
    pub key: ApiKey,
    pub secret_hash: String,
    /// The hash a rotation replaced, and until when it is still accepted.
    pub previous_secret: Option<(String, chrono::DateTime<chrono::Utc>)>,
    window_attrs: Vec<String>,
}

impl StoredKey {
    fn from_item(item: Item) -> AppResult<Self> {
        let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
        let secret_hash = text("secret_hash").ok_or_else(|| AppError::internal(anyhow::anyhow!("key without hash")))?;
        let previous_secret = match (text("previous_secret_hash"), text("previous_secret_expires_at")) {
            (Some(hash), Some(until)) => parse_time(&until).map(|until| (hash, until)),
            _ => None,
        };
        let window_attrs = item.keys().filter(|k| k.starts_with(WINDOW_ATTR_PREFIX)).cloned().collect();
        Ok(Self { key: from_item(item)?, secret_hash, previous_secret, window_attrs })
    }
}

impl Store {
    /// Stores a new key (its hash only) with its audit entry and
    /// `api_key.created`, under
    /// the tenant's key policy (checked in the same transaction: 400 naming
    /// `expires_at` when it refuses the key's expiry).
    pub async fn create_api_key(
        &self,
        scope: &TenantScope,
        key: &ApiKey,
        secret: &NewSecret,
        audit: &AuditContext,
    ) -> AppResult<()> {
        let retention = self.audit_retention(scope).await?;
        let mut item = to_item(key)?;
        item.extend(key_of(scope, key.id));
        item.insert("secret_hash".into(), s(&secret.hash));
        let expires_at = key.expires_at.as_deref().and_then(parse_time);
        // A second attempt only when the policy changed between the refused
        // check and the read that explains it.
        for _ in 0..2 {
            let mut tx = Tx::new();
            tx.put_new(item.clone(), Cond::UNIQUE_ID);
            tx.check(lifetime_policy_check(scope, expires_at, key.created_at), KEY_LIFETIME_POLICY);
            tx.audit(scope, audit, Change::created(API_KEY_RESOURCE, key.id, key.view()), retention);
            tx.emit(scope, Event::ApiKeyCreated(key.event_payload()));
            match tx.commit(self).await {
                Err(TxError::Condition(KEY_LIFETIME_POLICY)) => {
                    let settings = self.get_tenant(scope).await?.map(|(tenant, _)| tenant.settings).unwrap_or_default();
                    if let Some(refusal) = lifetime_refusal(&settings, expires_at, key.created_at) {
                        return Err(refusal);
                    }
                }
                result => return result.map_err(|e| e.into_app_error(API_KEY_RESOURCE)),
            }
        }
        Err(AppError::conflict("api_key: the tenant's key policy changed meanwhile; try again"))
    }

    pub async fn get_api_key(&self, scope: &TenantScope, key_id: Uuid) -> AppResult<Option<ApiKey>> {
        self.get_as(key_of(scope, key_id)).await
    }

    /// The key a presented secret names, with what authentication compares.
    pub async fn api_key_for_auth(&self, lookup: &CredentialLookup, key_id: Uuid) -> AppResult<Option<StoredKey>> {
        self.get_item(key_of(&lookup.lookup_scope(), key_id)).await?.map(StoredKey::from_item).transpose()
    }

    /// The tenant's keys, newest first (ids are UUIDv7), one page.
    pub async fn list_api_keys(
        &self,
        scope: &TenantScope,
        page: &PageRequest,
    ) -> AppResult<(Vec<ApiKey>, Option<String>)> {
        let query = self.prefix_query(scope, SK_PREFIX).scan_index_forward(false).consistent_read(true);
        let context = format!("api_keys|{}", scope.pk());
        let (items, cursor) = self.query_page(query, page, &context, &["PK", "SK"]).await?;
        let keys: Vec<ApiKey> = super::decode_listed(items);
        Ok((keys, cursor))
    }

    /// Revokes the key at once (every later request with it is 401), with
    /// `api_key.revoked`. Revoking a revoked key changes nothing (and emits
    /// nothing) and answers it as it is.
    pub async fn revoke_api_key(
        &self,
        scope: &TenantScope,
        key_id: Uuid,
        audit: &AuditContext,
    ) -> AppResult<Option<ApiKey>> {
        let Some(old) = self.get_api_key(scope, key_id).await? else {
            return Ok(None);
        };
        if old.revoked_at.is_some() {
            return Ok(Some(old));
        }
        let at = crate::domain::now();
        let now = rfc3339(at);
        let mut new = old.clone();
        new.revoked_at = Some(at);
        new.updated_at = at;
        let update = UpdateBuilder::default()
            .set_key(Some(key_of(scope, key_id)))
            .update_expression("SET revoked_at = :now, updated_at = :now REMOVE previous_secret_hash")
            .condition_expression("attribute_exists(PK) AND attribute_not_exists(revoked_at)")
            .expression_attribute_values(":now", s(&now));
        let change =
            Change::updated(API_KEY_RESOURCE, key_id, json!({"status": "active"}), json!({"status": "revoked"}));
        if self.change_api_key(scope, update, change, Event::ApiKeyRevoked(new.event_payload()), audit).await? {
            Ok(Some(new))
        } else {
            // Revoked (or deleted) by a concurrent request: answer what is there now.
            self.get_api_key(scope, key_id).await
        }
    }

    /// Hands a live key to another member (`created_by` names its owner
    /// from then on): a key acts with its owner's standing, so a key whose
    /// owner is leaving keeps working only once an admin transferred it.
    /// `Ok(None)`: no such key, or it is revoked.
    pub async fn transfer_api_key(
        &self,
        scope: &TenantScope,
        key_id: Uuid,
        new_owner: Uuid,
        audit: &AuditContext,
    ) -> AppResult<Option<ApiKey>> {
        let Some(old) = self.get_api_key(scope, key_id).await? else {
            return Ok(None);
        };
        if old.revoked_at.is_some() {
            return Ok(None);
        }
        let at = crate::domain::now();
        let mut new = old.clone();
        new.created_by = new_owner.to_string();
        new.updated_at = at;
        let update = UpdateBuilder::default()
            .set_key(Some(key_of(scope, key_id)))
            .update_expression("SET created_by = :owner, updated_at = :now")
            .condition_expression("attribute_exists(PK) AND attribute_not_exists(revoked_at)")
            .expression_attribute_values(":owner", s(new_owner.to_string()))
            .expression_attribute_values(":now", s(rfc3339(at)));
        let mut tx = Tx::new();
        tx.update(update, Some(KEY_CHANGED));
        let change = Change::updated(API_KEY_RESOURCE, key_id, old.view(), new.view());
        tx.audit(scope, audit, Change { action: "transfer", ..change }, self.audit_retention(scope).await?);
        match tx.commit(self).await {
            Ok(()) => Ok(Some(new)),
            Err(TxError::Condition(KEY_CHANGED)) => Ok(None),
            Err(other) => Err(other.into_app_error(API_KEY_RESOURCE)),
        }
    }

    /// Gives the key a new secret (answered with it), with `api_key.rotated`;
    /// the old one stops working at once, or at `old_valid_until` when a
    /// grace period was asked for. Conditioned on the hash it replaces, so of
    /// two concurrent rotations one wins and the other is a 409.
    pub async fn rotate_api_key(
        &self,
        scope: &TenantScope,
        key_id: Uuid,
        old_valid_until: Option<chrono::DateTime<chrono::Utc>>,
        audit: &AuditContext,
    ) -> AppResult<Option<(ApiKey, NewSecret)>> {
        let Some(current) = self.get_item(key_of(scope, key_id)).await?.map(StoredKey::from_item).transpose()? else {
            return Ok(None);
        };
        // The new secret keeps the key's environment (sk_live_ stays sk_live_).
        let secret = crate::auth::api_key::generate(scope.tenant_id(), key_id, current.key.environment);
        let now_time = crate::domain::now();
        let state = current.key.state(now_time);
        if state != KeyState::Active {
            return Err(AppError::conflict(format!("a {} key cannot be rotated; create a new one", state.as_str()))
                .with_details(json!({"status": state.as_str()})));
        }
        let now = rfc3339(now_time);
        let mut update = UpdateBuilder::default()
            .set_key(Some(key_of(scope, key_id)))
            .condition_expression("secret_hash = :old AND attribute_not_exists(revoked_at)")
            .expression_attribute_values(":old", s(&current.secret_hash))
            .expression_attribute_values(":new", s(&secret.hash))
            .expression_attribute_values(":four", s(&secret.last_four))
            .expression_attribute_values(":now", s(&now));
        update = match old_valid_until {
            Some(until) => update
                .update_expression(
                    "SET secret_hash = :new, last_four = :four, rotated_at = :now, updated_at = :now, \
                     previous_secret_hash = :old, previous_secret_expires_at = :until",
                )
                .expression_attribute_values(":until", s(rfc3339(until))),
            None => update.update_expression(
                "SET secret_hash = :new, last_four = :four, rotated_at = :now, updated_at = :now \
                 REMOVE previous_secret_hash, previous_secret_expires_at",
            ),
        };
        let mut new = current.key.clone();
        new.last_four = secret.last_four.clone();
        new.rotated_at = Some(now_time);
        new.updated_at = now_time;
        let change = Change::updated(
            API_KEY_RESOURCE,
            key_id,
            json!({"last_four": current.key.last_four}),
            json!({"last_four": new.last_four, "old_secret_valid_until": old_valid_until.map(rfc3339)}),
        );
        if self.change_api_key(scope, update, change, Event::ApiKeyRotated(new.event_payload()), audit).await? {
            Ok(Some((new, secret)))
        } else {
            Err(AppError::conflict("the key was rotated or revoked by another request"))
        }
    }

    /// One change of a stored key: `update` (conditioned: [`KEY_CHANGED`]),
    /// its audit entry and its event in one transaction. False when the key
    /// changed since it was read (nothing was written).
    async fn change_api_key(
        &self,
        scope: &TenantScope,
        update: UpdateBuilder,
        change: Change,
        event: Event,
        audit: &AuditContext,
    ) -> AppResult<bool> {
        let mut tx = Tx::new();
        tx.update(update, Some(KEY_CHANGED));
        tx.audit(scope, audit, change, self.audit_retention(scope).await?);
        tx.emit(scope, event);
        match tx.commit(self).await {
            Ok(()) => Ok(true),
            Err(TxError::Condition(KEY_CHANGED)) => Ok(false),
            Err(other) => Err(other.into_app_error(API_KEY_RESOURCE)),
        }
    }

    /// Counts one request of an authenticated key against `limit` per window,
    /// recording its use: exactly one write. A refused request (over the
    /// limit, or the key revoked since it was read) records nothing.
    pub async fn record_api_key_use(
        &self,
        scope: &TenantScope,
        stored: &StoredKey,
        limit: i64,
        now: chrono::DateTime<chrono::Utc>,
    ) -> AppResult<RateStatus> {
        let epoch = now.timestamp();
        let current = format!("{WINDOW_ATTR_PREFIX}{}", window_start(epoch));
        let mut expression = "SET #cur = if_not_exists(#cur, :zero) + :one, last_used_at = :now \
                              ADD usage_count :one"
            .to_owned();
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_of(scope, stored.key.id)))
            .condition_expression("attribute_exists(PK) AND attribute_not_exists(revoked_at) AND (attribute_not_exists(#cur) OR #cur < :limit)")
            .expression_attribute_names("#cur", &current)
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":limit", n(limit))
            .expression_attribute_values(":now", s(rfc3339(now)))
            .return_values(ReturnValue::UpdatedNew);
        let stale: Vec<&String> = stored.window_attrs.iter().filter(|a| **a != current).collect();
        if !stale.is_empty() {
            let names: Vec<String> = (0..stale.len()).map(|i| format!("#old{i}")).collect();
            expression.push_str(&format!(" REMOVE {}", names.join(", ")));
            for (name, attr) in names.iter().zip(stale) {
                update = update.expression_attribute_names(name, attr);
            }
        }
        match update.update_expression(expression).send().await {
            Ok(output) => {
                let count = output.attributes.as_ref().map(|a| number_attr(a, &current)).unwrap_or(1);
                Ok(RateStatus::new(Subject::ApiKey, limit, count, epoch, true))
            }
            Err(err) if condition_failed(&err) => {
                // Revoked in the meantime: the next request sees it; this one
                // is refused like an over-limit one rather than served.
                Ok(RateStatus::new(Subject::ApiKey, limit, limit, epoch, false))
            }
            Err(err) => Err(err.into()),
        }
    }

    /// Counts one request of a signed-in user against `limit` per window: one
    /// UpdateItem on a per-window item that DynamoDB's TTL deletes later.
    pub async fn record_user_request(
        &self,
        scope: &TenantScope,
        user_id: Uuid,
        limit: i64,
        now: chrono::DateTime<chrono::Utc>,
    ) -> AppResult<RateStatus> {
        self.count_in_window(scope, &format!("RATE#USER#{user_id}#"), Subject::User, limit, now).await
    }

    /// Counts one request against `limit` in the current window of the
    /// counter whose sort key starts with `sk_prefix` (the window start ends it).
    pub(crate) async fn count_in_window(
        &self,
        scope: &TenantScope,
        sk_prefix: &str,
        subject: Subject,
        limit: i64,
        now: chrono::DateTime<chrono::Utc>,
    ) -> AppResult<RateStatus> {
        let epoch = now.timestamp();
        let window = window_start(epoch);
        let key =
            HashMap::from([("PK".to_owned(), s(scope.pk())), ("SK".to_owned(), s(format!("{sk_prefix}{window}")))]);
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .update_expression("ADD #count :one SET expires_at = :ttl")
            .condition_expression("attribute_not_exists(#count) OR #count < :limit")
            .expression_attribute_names("#count", "request_count")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":limit", n(limit))
            // Two windows later, so a clock skew between instances cannot
            // delete a live count; TTL deletion itself lags by up to days.
            .expression_attribute_values(":ttl", n(window + 3 * crate::domain::rate_limit::WINDOW_SECONDS))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await;
        match result {
            Ok(output) => {
                let count = output.attributes.as_ref().map(|a| number_attr(a, "request_count")).unwrap_or(1);
                Ok(RateStatus::new(subject, limit, count, epoch, true))
            }
            Err(err) if condition_failed(&err) => Ok(RateStatus::new(subject, limit, limit, epoch, false)),
            Err(err) => Err(err.into()),
        }
    }

    /// The tenant's rate limit and usability, cached per warm process.
    pub async fn tenant_policy(&self, scope: &TenantScope) -> AppResult<TenantPolicy> {
        if let Some(policy) = cached_policy(scope.tenant_id()) {
            return Ok(policy);
        }
        let (tenant, _) =
            self.get_tenant(scope).await?.ok_or_else(|| AppError::unauthorized("the tenant no longer exists"))?;
        let policy = TenantPolicy::of(&tenant);
        remember_policy(tenant.id, policy.clone());
        Ok(policy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_view_has_every_time_even_unset_and_a_status() {
        let at = crate::domain::now();
        let key = ApiKey {
            id: Uuid::now_v7(),
            tenant_id: Uuid::now_v7(),
            name: "CI".into(),
            environment: KeyEnvironment::Test,
            prefix: "sk_test_".into(),
            last_four: "abcd".into(),
            scopes: vec![Scope::TryonsWrite],
            created_at: at,
            created_by: "someone".into(),
            updated_at: at,
            expires_at: None,
            revoked_at: Some(at),
            rotated_at: None,
            last_used_at: None,
            usage_count: 3,
        };
        let mut expected = serde_json::to_value(&key).expect("key");
        for field in ["expires_at", "rotated_at", "last_used_at"] {
            expected[field] = serde_json::Value::Null;
        }
        expected["status"] = json!("revoked");
        assert_eq!(serde_json::to_value(key.view()).expect("view"), expected);
        assert_eq!(expected["environment"], "test");
        assert_eq!(expected["scopes"], json!(["tryons:write"]));
    }
}
