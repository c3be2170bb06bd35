//! Outbound webhooks: endpoints and deliveries.
//!
//! | item | PK | SK | notes |
//! |---|---|---|---|
//! | endpoint | `T#<tenant>#` | `WEBHOOK#<endpoint>` | `url`, `event_types`, `status` (`active`/`disabled`), `retry_schedule_seconds`, `consecutive_failures`, the signing secret sealed (`secret_nonce`, `secret_sealed`: AES-256-GCM, crate::sealing) |
//! | delivery | `T#<tenant>#` | `WHDELIVERY#<endpoint>#<event>` | `event_type`, `payload` (the exact body sent), `status` (`pending`/`succeeded`/`failed`), `attempts` (time, status code, latency, error, response excerpt), `round_attempts`, `next_attempt_at`, `expires_at` (TTL, 30 days) |
//!
//! A delivery's id is the event's id, so fanning one event out twice (a
//! redelivered message) finds the delivery already there.
//!
//! A tenant has at most [`MAX_ENDPOINTS_PER_TENANT`] endpoints, counted by
//! `webhook_endpoint_count` on the tenant item in the creating and deleting
//! transactions (like the quotas, `store::quota`): every event fans out to
//! each endpoint, so the bound keeps what one event costs bounded.

use aws_sdk_dynamodb::{
    primitives::Blob,
    types::{AttributeValue, Delete, ReturnValue, Update},
};
use serde_json::{Value, json};
use uuid::Uuid;

use super::{
    Item, Store, condition_failed, from_item, item_key as key, n, number_attr,
    quota::{TENANT_MISSING, tenant_counters},
    s, to_attribute, to_item,
    tx::{Cond, Tx, TxError},
};
use crate::{
    auth::TenantScope,
    domain::audit::{AuditContext, Change},
    domain::now_rfc3339,
    error::{AppError, AppResult},
    events::{
        DomainEvent, Event,
        catalogue::{WebhookEndpointDisabled, WebhookReplayRequested, WebhookTest},
    },
    store::PageRequest,
};

pub const ENDPOINT_RESOURCE: &str = "webhook_endpoint";

/// The most endpoints a tenant may have (Stripe allows 16 per account).
pub const MAX_ENDPOINTS_PER_TENANT: i64 = 20;
/// The tenant item's count of its endpoints.
const ENDPOINT_COUNTER: &str = "webhook_endpoint_count";
/// Creating one more endpoint would pass [`MAX_ENDPOINTS_PER_TENANT`].
const ENDPOINT_LIMIT: Cond = Cond("endpoint_limit");

/// The endpoint changed since it was read (optimistic updates).
const ENDPOINT_CHANGED: Cond = Cond("endpoint_changed");
const ENDPOINT_MISSING: Cond = Cond("endpoint_missing");
/// A replay asked for a delivery that is not `failed`.
const DELIVERY_NOT_FAILED: Cond = Cond("delivery_not_failed");
/// Disabling found the endpoint no longer `active`.
const ENDPOINT_NOT_ACTIVE: Cond = Cond("endpoint_not_active");

/// The key that seals an endpoint's signing secret (crate::sealing).
pub fn endpoint_secret_context(scope: &TenantScope, endpoint_id: Uuid) -> crate::sealing::SealContext {
    crate::sealing::SealContext::new("webhook-signing-secret-v1", &[&scope.pk(), &endpoint_id.to_string()])
}
/// Consecutive failed deliveries that disable an endpoint.
pub const DISABLE_AFTER_FAILURES: i64 = 10;
/// How long deliveries are kept (for the log and replays).
pub const DELIVERY_RETENTION_DAYS: i64 = 30;

fn endpoint_key(scope: &TenantScope, id: Uuid) -> Item {
    key(scope, format!("WEBHOOK#{id}"))
}

fn deliveries_prefix(endpoint_id: Uuid) -> String {
    format!("WHDELIVERY#{endpoint_id}#")
}

fn delivery_key(scope: &TenantScope, endpoint_id: Uuid, delivery_id: Uuid) -> Item {
    key(scope, format!("{}{delivery_id}", deliveries_prefix(endpoint_id)))
}

/// The endpoint and delivery entities live in the domain; re-exported here
/// where their callers have always found them.
pub use crate::domain::webhook::{Delivery, DeliveryView, Endpoint, EndpointView, type_matches};

/// How a delivery attempt ended, for the store.
pub enum AttemptOutcome {
    Succeeded,
    /// Another attempt is scheduled at this time (RFC 3339).
    Retrying(String),
    Failed,
}

impl Store {
    pub async fn create_endpoint(
        &self,
        scope: &TenantScope,
        endpoint: &Endpoint,
        sealed_secret: (&[u8], &[u8]),
        audit: &AuditContext,
    ) -> AppResult<()> {
        let mut item = to_item(endpoint)?;
        item.extend(endpoint_key(scope, endpoint.id));
        item.insert("secret_nonce".into(), AttributeValue::B(Blob::new(sealed_secret.0)));
        item.insert("secret_sealed".into(), AttributeValue::B(Blob::new(sealed_secret.1)));
        let mut tx = Tx::new();
        tx.put_new(item, Cond::UNIQUE_ID);
        let (count, expression) = tenant_counters(scope, &[(ENDPOINT_COUNTER.to_owned(), 1)]);
        tx.update(
            count
                .update_expression(expression)
                .condition_expression("attribute_exists(PK) AND (attribute_not_exists(#c0) OR #c0 < :max)")
                .expression_attribute_values(":max", n(MAX_ENDPOINTS_PER_TENANT)),
            Some(ENDPOINT_LIMIT),
        );
        let change = Change::created(ENDPOINT_RESOURCE, endpoint.id, endpoint.view());
        match self.commit_endpoint_change(scope, tx, change, audit).await {
            Ok(()) => Ok(()),
            Err(TxError::Condition(ENDPOINT_LIMIT)) => Err(AppError::conflict(format!(
                "a tenant may have at most {MAX_ENDPOINTS_PER_TENANT} webhook endpoints; delete one first"
            ))
            .with_details(json!({"reason": "too_many_endpoints", "max_endpoints": MAX_ENDPOINTS_PER_TENANT}))),
            Err(e) => Err(e.into_app_error("webhook endpoint")),
        }
    }

    /// An endpoint's change with its audit entry, in one transaction.
    async fn commit_endpoint_change(
        &self,
        scope: &TenantScope,
        mut tx: Tx,
        change: Change,
        audit: &AuditContext,
    ) -> Result<(), TxError> {
        tx.audit(scope, audit, change, self.audit_retention(scope).await?);
        tx.commit(self).await
    }

    pub async fn get_endpoint(&self, scope: &TenantScope, id: Uuid) -> AppResult<Option<Endpoint>> {
        self.get_as(endpoint_key(scope, id)).await
    }

    /// The endpoint with its sealed secret (nonce, ciphertext).
    pub async fn endpoint_with_secret(
        &self,
        scope: &TenantScope,
        id: Uuid,
    ) -> AppResult<Option<(Endpoint, Vec<u8>, Vec<u8>)>> {
        let Some(item) = self.get_item(endpoint_key(scope, id)).await? else { return Ok(None) };
        let bytes =
            |name: &str| item.get(name).and_then(|v| v.as_b().ok()).map(|b| b.as_ref().to_vec()).unwrap_or_default();
        let (nonce, sealed) = (bytes("secret_nonce"), bytes("secret_sealed"));
        Ok(Some((from_item(item)?, nonce, sealed)))
    }

    /// Every endpoint of the tenant, for fanning an event out (all pages;
    /// an endpoint that does not decode is skipped and logged).
    pub async fn list_endpoints(&self, scope: &TenantScope) -> AppResult<Vec<Endpoint>> {
        Ok(super::decode_listed(self.query_all(self.endpoints_query(scope)).await?))
    }

    /// The tenant's endpoints in creation order (ids are UUIDv7), one page.
    pub async fn list_endpoints_page(
        &self,
        scope: &TenantScope,
        page: &PageRequest,
    ) -> AppResult<(Vec<Endpoint>, Option<String>)> {
        let context = format!("webhooks|{}", scope.pk());
        let (items, cursor) = self.query_page(self.endpoints_query(scope), page, &context, &["PK", "SK"]).await?;
        Ok((super::decode_listed(items), cursor))
    }

    fn endpoints_query(&self, scope: &TenantScope) -> aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder {
        self.prefix_query(scope, "WEBHOOK#").consistent_read(true)
    }

    /// Replaces the endpoint's settable fields (the caller merged the
    /// change); re-enabling clears the failure count.
    pub async fn update_endpoint(
        &self,
        scope: &TenantScope,
        old: &Endpoint,
        new: &Endpoint,
        audit: &AuditContext,
    ) -> AppResult<bool> {
        let update = Update::builder()
            .set_key(Some(endpoint_key(scope, old.id)))
            .update_expression(
                "SET #url = :url, description = :description, event_types = :types, #status = :status, \
                 disabled_reason = :reason, retry_schedule_seconds = :schedule, consecutive_failures = :failures, \
                 updated_at = :now",
            )
            .condition_expression("updated_at = :seen")
            .expression_attribute_names("#url", "url")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":url", s(&new.url))
            .expression_attribute_values(":description", to_attribute(&json!(new.description))?)
            .expression_attribute_values(":types", to_attribute(&json!(new.event_types))?)
            .expression_attribute_values(":status", s(&new.status))
            .expression_attribute_values(":reason", to_attribute(&json!(new.disabled_reason))?)
            .expression_attribute_values(":schedule", to_attribute(&json!(new.retry_schedule_seconds))?)
            .expression_attribute_values(":failures", n(new.consecutive_failures))
            .expression_attribute_values(":now", s(&new.updated_at))
            .expression_attribute_values(":seen", s(&old.updated_at));
        let mut tx = Tx::new();
        tx.update(update, Some(ENDPOINT_CHANGED));
        let change = Change::updated(ENDPOINT_RESOURCE, old.id, old.view(), new.view());
        applied(self.commit_endpoint_change(scope, tx, change, audit).await, ENDPOINT_CHANGED, "webhook endpoint")
    }

    pub async fn rotate_endpoint_secret(
        &self,
        scope: &TenantScope,
        id: Uuid,
        sealed_secret: (&[u8], &[u8]),
        audit: &AuditContext,
    ) -> AppResult<bool> {
        let update = Update::builder()
            .set_key(Some(endpoint_key(scope, id)))
            .update_expression("SET secret_nonce = :nonce, secret_sealed = :sealed, updated_at = :now")
            .condition_expression("attribute_exists(PK)")
            .expression_attribute_values(":nonce", AttributeValue::B(Blob::new(sealed_secret.0)))
            .expression_attribute_values(":sealed", AttributeValue::B(Blob::new(sealed_secret.1)))
            .expression_attribute_values(":now", s(now_rfc3339()));
        let mut tx = Tx::new();
        tx.update(update, Some(ENDPOINT_MISSING));
        let change =
            Change::updated(ENDPOINT_RESOURCE, id, json!({"secret": "previous"}), json!({"secret": "rotated"}));
        applied(self.commit_endpoint_change(scope, tx, change, audit).await, ENDPOINT_MISSING, "webhook endpoint")
    }

    pub async fn delete_endpoint(
        &self,
        scope: &TenantScope,
        endpoint: &Endpoint,
        audit: &AuditContext,
    ) -> AppResult<()> {
        let mut tx = Tx::new();
        tx.delete(
            Delete::builder()
                .set_key(Some(endpoint_key(scope, endpoint.id)))
                .condition_expression("attribute_exists(PK)"),
            Some(ENDPOINT_MISSING),
        );
        let (count, expression) = tenant_counters(scope, &[(ENDPOINT_COUNTER.to_owned(), -1)]);
        tx.update(
            count.update_expression(expression).condition_expression("attribute_exists(PK)"),
            Some(TENANT_MISSING),
        );
        let change = Change::deleted(ENDPOINT_RESOURCE, endpoint.id, endpoint.view());
        match self.commit_endpoint_change(scope, tx, change, audit).await {
            Ok(()) => Ok(()),
            // A concurrent delete won: the count went down once.
            Err(TxError::Condition(ENDPOINT_MISSING)) => Err(AppError::not_found(ENDPOINT_RESOURCE)),
            Err(e) => Err(e.into_app_error("webhook endpoint")),
        }
    }

    /// `webhook.test` for one endpoint, through the outbox (delivered to
    /// that endpoint only); answers the event, whose id is the delivery's.
    pub async fn send_test_event(&self, scope: &TenantScope, endpoint_id: Uuid) -> AppResult<DomainEvent> {
        let test = WebhookTest { endpoint_id, message: "a test event from the platform".into() };
        self.emit(scope, Event::WebhookTest(test)).await
    }

    /// Records a new delivery; false when it already exists (the event was
    /// fanned out before).
    pub async fn create_delivery(&self, scope: &TenantScope, delivery: &Delivery) -> AppResult<bool> {
        let mut item = to_item(delivery)?;
        item.extend(delivery_key(scope, delivery.endpoint_id, delivery.id));
        item.insert("expires_at".into(), n(self.capped_expiry(scope, DELIVERY_RETENTION_DAYS).await?));
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(PK)")
            .send()
            .await;
        super::applied(result)
    }

    pub async fn get_delivery(&self, scope: &TenantScope, endpoint_id: Uuid, id: Uuid) -> AppResult<Option<Delivery>> {
        self.get_as(delivery_key(scope, endpoint_id, id)).await
    }

    /// An endpoint's deliveries, newest first (event ids are UUIDv7), one page.
    pub async fn list_deliveries(
        &self,
        scope: &TenantScope,
        endpoint_id: Uuid,
        status: Option<&str>,
        page: &PageRequest,
    ) -> AppResult<(Vec<Delivery>, Option<String>)> {
        let query =
            self.prefix_query(scope, deliveries_prefix(endpoint_id)).scan_index_forward(false).consistent_read(true);
        let query = super::filter_equal(query, &[("status", status.map(s))], &[]);
        let context = format!("deliveries|{}|{endpoint_id}|{}", scope.pk(), status.unwrap_or(""));
        self.list_page(query, page, &context).await
    }

    /// Appends an attempt and moves the delivery on; only a `pending`
    /// delivery changes (false otherwise).
    pub async fn record_attempt(
        &self,
        scope: &TenantScope,
        delivery: &Delivery,
        attempt: &Value,
        outcome: &AttemptOutcome,
    ) -> AppResult<bool> {
        let now = now_rfc3339();
        let (status, next) = match outcome {
            AttemptOutcome::Succeeded => ("succeeded", None),
            AttemptOutcome::Retrying(at) => ("pending", Some(at.clone())),
            AttemptOutcome::Failed => ("failed", None),
        };
        let completed = (status != "pending").then(|| now.clone());
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(delivery_key(scope, delivery.endpoint_id, delivery.id)))
            .update_expression(
                "SET attempts = list_append(if_not_exists(attempts, :empty), :attempt), #status = :status, \
                 next_attempt_at = :next, completed_at = :completed ADD round_attempts :one",
            )
            .condition_expression("#status = :pending")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":empty", AttributeValue::L(Vec::new()))
            .expression_attribute_values(":attempt", AttributeValue::L(vec![to_attribute(attempt)?]))
            .expression_attribute_values(":status", s(status))
            .expression_attribute_values(":pending", s("pending"))
            .expression_attribute_values(":next", to_attribute(&json!(next))?)
            .expression_attribute_values(":completed", to_attribute(&json!(completed))?)
            .expression_attribute_values(":one", n(1))
            .send()
            .await;
        super::applied(result)
    }

    /// Ends a pending delivery without an attempt (its endpoint is gone or off).
    pub async fn abandon_delivery(&self, scope: &TenantScope, delivery: &Delivery, reason: &str) -> AppResult<bool> {
        let attempt = json!({"at": now_rfc3339(), "status_code": null, "latency_ms": null, "error": reason, "response_body": null});
        self.record_attempt(scope, delivery, &attempt, &AttemptOutcome::Failed).await
    }

    /// A failed delivery goes back to `pending` for a new round of attempts
    /// (same id, so the same webhook-id), with
    /// `webhook.delivery.replay_requested` (the dispatcher queues its job) in
    /// the same transaction; false if it was not failed.
    pub async fn requeue_delivery(&self, scope: &TenantScope, delivery: &Delivery) -> AppResult<bool> {
        let update = Update::builder()
            .set_key(Some(delivery_key(scope, delivery.endpoint_id, delivery.id)))
            .update_expression("SET #status = :pending, round_attempts = :zero REMOVE completed_at, next_attempt_at")
            .condition_expression("#status = :failed")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":pending", s("pending"))
            .expression_attribute_values(":failed", s("failed"))
            .expression_attribute_values(":zero", n(0));
        let mut tx = Tx::new();
        tx.update(update, Some(DELIVERY_NOT_FAILED));
        let replay = WebhookReplayRequested { endpoint_id: delivery.endpoint_id, delivery_id: delivery.id };
        tx.emit(scope, Event::WebhookReplayRequested(replay));
        applied(tx.commit(self).await, DELIVERY_NOT_FAILED, "webhook delivery")
    }

    /// A delivery succeeded: the endpoint's failure streak ends.
    pub async fn endpoint_delivered(&self, scope: &TenantScope, endpoint_id: Uuid) -> AppResult<()> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(endpoint_key(scope, endpoint_id)))
            .update_expression("SET consecutive_failures = :zero")
            .condition_expression("attribute_exists(PK) AND consecutive_failures <> :zero")
            .expression_attribute_values(":zero", n(0))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err) if condition_failed(&err) => Ok(()),
            Err(err) => Err(err.into()),
        }
    }

    /// A delivery failed for good: one more in the streak. Answers the streak.
    pub async fn endpoint_failed(&self, scope: &TenantScope, endpoint_id: Uuid) -> AppResult<i64> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(endpoint_key(scope, endpoint_id)))
            .update_expression("ADD consecutive_failures :one")
            .condition_expression("attribute_exists(PK)")
            .expression_attribute_values(":one", n(1))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await;
        match result {
            Ok(out) => Ok(out.attributes.as_ref().map(|a| number_attr(a, "consecutive_failures")).unwrap_or(0)),
            Err(err) if condition_failed(&err) => Ok(0),
            Err(err) => Err(err.into()),
        }
    }

    /// Disables an active endpoint with `webhook_endpoint.disabled` in the
    /// same transaction; true only for the call that did it (so the event is
    /// emitted once).
    pub async fn disable_endpoint(&self, scope: &TenantScope, endpoint: &Endpoint, reason: &str) -> AppResult<bool> {
        let update = Update::builder()
            .set_key(Some(endpoint_key(scope, endpoint.id)))
            .update_expression("SET #status = :disabled, disabled_reason = :reason, updated_at = :now")
            .condition_expression("#status = :active")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":disabled", s("disabled"))
            .expression_attribute_values(":active", s("active"))
            .expression_attribute_values(":reason", s(reason))
            .expression_attribute_values(":now", s(now_rfc3339()));
        let mut tx = Tx::new();
        tx.update(update, Some(ENDPOINT_NOT_ACTIVE));
        let disabled =
            WebhookEndpointDisabled { endpoint_id: endpoint.id, url: endpoint.url.clone(), reason: reason.to_owned() };
        tx.emit(scope, Event::WebhookEndpointDisabled(disabled));
        applied(tx.commit(self).await, ENDPOINT_NOT_ACTIVE, "webhook endpoint")
    }
}

/// A conditional change's outcome: true when it committed, false when
/// `refused` (the condition that means "no longer applies") failed.
fn applied(result: Result<(), TxError>, refused: Cond, what: &str) -> AppResult<bool> {
    match result {
        Ok(()) => Ok(true),
        Err(TxError::Condition(cond)) if cond == refused => Ok(false),
        Err(other) => Err(other.into_app_error(what)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_type_patterns() {
        assert!(type_matches("*", "user.created"));
        assert!(type_matches("tryon.*", "tryon.session.completed"));
        assert!(!type_matches("tryon.*", "user.created"));
        assert!(type_matches("user.created", "user.created"));
        assert!(!type_matches("user.created", "user.created.extra"));
        assert!(!type_matches("user.*", "users.created"));
    }
}
