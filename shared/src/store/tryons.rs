//! Cart try-on sessions and their items.
//!
//! | item | PK | SK | other keys | notes |
//! |---|---|---|---|---|
//! | session | `T#<tenant>#` | `TRYON#<session>` | `GSI1PK=T#<tenant>#TRYONS`, `GSI1SK=<session>` | customer, photo, quality, price breakdown, `status`, `items_total`, counters `completed_count`/`failed_count`/`cancelled_count`, `refunded_credits` |
//! | item | `T#<tenant>#` | `TRYON#<session>#ITEM#<nn>` | | product, garment, `credits` (its share of the price), `status`, `lock` + `lease_until` while processing, `result_key`, `error` |
//!
//! A session and its items are one key range (one Query reads them all).
//! Every state change is conditional on the state it leaves:
//! - create: session + items + the credit spend (+ ledger, + audit) in ONE
//!   transaction; not enough credits leaves nothing;
//! - claim (worker): `queued`, or `processing` whose lease ran out (a worker
//!   died), -> `processing` with a fresh lock;
//! - complete: `processing` under our lock -> `completed`, + session counter;
//! - fail / cancel: `processing` under our lock / `queued` -> `failed` /
//!   `cancelled`, + session counter, + the item's refund, in one transaction;
//!   the refund's reference `tryon:<session>:<nn>` makes a second refund of
//!   the same item impossible whatever path asks for it;
//! - finish: once the counters cover every item, the session moves to its
//!   final status exactly once (the winner publishes the event).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{ReturnValue, TransactWriteItem, Update};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use super::{
    Item, Store, condition_failed, credits::CreditError, failed_conditions, from_item, n, number_attr, s,
    tenants::put_new, to_item,
};
use crate::{
    audit::{AuditContext, Change},
    auth::TenantScope,
    domain::{
        now_rfc3339,
        tryon::{self, ITEM_CANCELLED, ITEM_COMPLETED, ITEM_FAILED, ITEM_PROCESSING, ITEM_QUEUED, Price, Quality},
    },
    error::{AppError, AppResult},
    http::PageRequest,
    store::credits::LedgerEntry,
};

pub const TRYON_RESOURCE: &str = "tryon_session";
/// The event that asks the worker to render one item (the worker's queue
/// receives exactly these).
pub const ITEM_REQUESTED: &str = "tryon.item.requested";

pub fn item_requested_event(tenant_id: Uuid, session_id: Uuid, index: u32) -> crate::events::DomainEvent {
    crate::events::DomainEvent::new(ITEM_REQUESTED, tenant_id, json!({"session_id": session_id, "item_index": index}))
}

fn key(scope: &TenantScope, sk: String) -> Item {
    HashMap::from([("PK".into(), s(scope.pk())), ("SK".into(), s(sk))])
}

fn session_sk(id: Uuid) -> String {
    format!("TRYON#{id}")
}

fn session_key(scope: &TenantScope, id: Uuid) -> Item {
    key(scope, session_sk(id))
}

fn item_key(scope: &TenantScope, session_id: Uuid, index: u32) -> Item {
    key(scope, format!("{}#ITEM#{index:02}", session_sk(session_id)))
}

fn sessions_index_pk(scope: &TenantScope) -> String {
    format!("{}TRYONS", scope.pk())
}

/// Sessions whose item events may not have reached the bus yet: written in
/// the creating transaction, removed by the sweep once no item is queued.
const DISPATCH_OUTBOX: &str = "OUTBOX#tryon.item.requested";

fn outbox_key(tenant_id: Uuid, session_id: Uuid) -> Item {
    // Session ids are UUIDv7: the partition reads oldest first.
    HashMap::from([("PK".into(), s(DISPATCH_OUTBOX)), ("SK".into(), s(format!("{session_id}#{tenant_id}")))])
}

/// The credit reference of an item's refund: one refund per item, ever.
pub fn item_refund_reference(session_id: Uuid, index: u32) -> String {
    format!("tryon:{session_id}:{index:02}")
}

/// Where an item's rendered image goes.
pub fn result_key(scope: &TenantScope, session_id: Uuid, index: u32) -> String {
    format!("{}tryons/{session_id}/{index:02}.png", crate::blobs::tenant_prefix(scope))
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TryonSession {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub customer_id: Uuid,
    pub photo_id: Uuid,
    pub quality: Quality,
    pub price: Price,
    pub status: String,
    pub items_total: i64,
    #[serde(default)]
    pub completed_count: i64,
    #[serde(default)]
    pub failed_count: i64,
    #[serde(default)]
    pub cancelled_count: i64,
    #[serde(default)]
    pub refunded_credits: i64,
    pub charge_entry_id: Option<Uuid>,
    pub created_at: String,
    pub updated_at: String,
    #[serde(default)]
    pub completed_at: Option<String>,
}

impl TryonSession {
    pub fn done_count(&self) -> i64 {
        self.completed_count + self.failed_count + self.cancelled_count
    }

    pub fn is_final(&self) -> bool {
        matches!(self.status.as_str(), "completed" | "failed" | "cancelled")
    }

    /// `tryon.session.completed` / `.failed` / `.cancelled`: published by
    /// whoever moved the session to its final status (that happens once).
    pub fn finished_event(&self) -> crate::events::DomainEvent {
        crate::events::DomainEvent::new(
            &format!("tryon.session.{}", self.status),
            self.tenant_id,
            json!({
                "session_id": self.id,
                "customer_id": self.customer_id,
                "status": self.status,
                "items_total": self.items_total,
                "completed": self.completed_count,
                "failed": self.failed_count,
                "cancelled": self.cancelled_count,
                "credits_charged": self.price.total,
                "credits_refunded": self.refunded_credits,
            }),
        )
    }

    pub fn to_body(&self) -> Value {
        let progress = if self.items_total > 0 { self.done_count() as f64 / self.items_total as f64 } else { 1.0 };
        json!({
            "id": self.id,
            "tenant_id": self.tenant_id,
            "customer_id": self.customer_id,
            "photo_id": self.photo_id,
            "quality": self.quality,
            "status": self.status,
            "pricing": self.price.to_body(),
            "credits_charged": self.price.total,
            "credits_refunded": self.refunded_credits,
            "progress": {
                "total": self.items_total,
                "completed": self.completed_count,
                "failed": self.failed_count,
                "cancelled": self.cancelled_count,
                "percent": (progress * 100.0).round(),
            },
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "completed_at": self.completed_at,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TryonItem {
    pub session_id: Uuid,
    pub index: u32,
    pub product_id: String,
    #[serde(default)]
    pub size: Option<String>,
    #[serde(default)]
    pub garment_image_url: Option<String>,
    #[serde(default)]
    pub garment_photo_id: Option<Uuid>,
    /// This item's share of the session's price.
    pub credits: i64,
    pub status: String,
    #[serde(default)]
    pub result_key: Option<String>,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub lock: Option<String>,
    #[serde(default)]
    pub lease_until: Option<i64>,
    #[serde(default)]
    pub started_at: Option<String>,
    #[serde(default)]
    pub completed_at: Option<String>,
}

impl TryonItem {
    /// The API view (the download URL is added by the handler).
    pub fn to_body(&self) -> Value {
        json!({
            "index": self.index,
            "product_id": self.product_id,
            "size": self.size,
            "garment_image_url": self.garment_image_url,
            "garment_photo_id": self.garment_photo_id,
            "credits": self.credits,
            "status": self.status,
            "error": self.error,
            "started_at": self.started_at,
            "completed_at": self.completed_at,
        })
    }
}

/// What a worker's claim of an item found.
#[derive(Debug)]
pub enum Claim {
    /// Ours to render, under this lock.
    Claimed(Box<TryonItem>),
    /// Already completed, failed or cancelled: nothing to do.
    Finished,
    /// Another worker holds it and its lease runs: try again later.
    Busy,
    Missing,
}

impl Store {
    /// Creates the session and its items and takes the price from the
    /// balance, all in one transaction.
    pub async fn create_tryon(
        &self,
        scope: &TenantScope,
        session: &TryonSession,
        items: &[TryonItem],
        audit: &AuditContext,
    ) -> Result<LedgerEntry, CreditError> {
        let retention = self.audit_retention(scope).await?;
        let mut with = Vec::with_capacity(items.len() + 2);
        let mut item = to_item(session)?;
        item.extend(session_key(scope, session.id));
        item.insert("GSI1PK".into(), s(sessions_index_pk(scope)));
        item.insert("GSI1SK".into(), s(session.id.to_string()));
        with.push(put_new(self, item)?);
        for tryon_item in items {
            let mut item = to_item(tryon_item)?;
            item.extend(item_key(scope, session.id, tryon_item.index));
            with.push(put_new(self, item)?);
        }
        with.push(self.audit_put(
            scope,
            audit,
            Change::created(TRYON_RESOURCE, session.id, session.to_body()),
            retention,
        )?);
        // Until no item is queued, the sweep can republish what PutEvents lost.
        let mut outbox = outbox_key(scope.tenant_id(), session.id);
        outbox.insert("tenant_id".into(), s(scope.tenant_id().to_string()));
        outbox.insert("session_id".into(), s(session.id.to_string()));
        outbox.insert("created_at".into(), s(&session.created_at));
        with.push(put_new(self, outbox)?);
        let reason = format!("try-on {} ({} x {})", session.id, items.len(), session.quality.as_str());
        self.spend_credits_with(scope, session.price.total, &reason, &format!("tryon:{}", session.id), audit, &with)
            .await
    }

    /// Sessions created before `created_before` (RFC 3339) that are still in
    /// the dispatch outbox, oldest first: (tenant, session).
    pub async fn tryons_awaiting_dispatch(&self, created_before: &str, limit: usize) -> AppResult<Vec<(Uuid, Uuid)>> {
        let mut found = Vec::new();
        let mut start = None;
        // Limit bounds the items read before the filter: page on until enough
        // matched or the partition is read.
        loop {
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("PK = :pk")
                .filter_expression("created_at < :cutoff")
                .expression_attribute_values(":pk", s(DISPATCH_OUTBOX))
                .expression_attribute_values(":cutoff", s(created_before))
                .set_exclusive_start_key(start)
                .limit(100)
                .send()
                .await?;
            found.extend(output.items().iter().filter_map(|item| {
                let id = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).and_then(|v| Uuid::parse_str(v).ok());
                Some((id("tenant_id")?, id("session_id")?))
            }));
            start = output.last_evaluated_key().cloned();
            if start.is_none() || found.len() >= limit {
                found.truncate(limit);
                return Ok(found);
            }
        }
    }

    /// Takes a session out of the dispatch outbox (none of its items is queued).
    pub async fn clear_tryon_dispatch(&self, tenant_id: Uuid, session_id: Uuid) -> AppResult<()> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(outbox_key(tenant_id, session_id)))
            .send()
            .await?;
        Ok(())
    }

    /// The session and its items (one consistent Query).
    pub async fn get_tryon(&self, scope: &TenantScope, id: Uuid) -> AppResult<Option<(TryonSession, Vec<TryonItem>)>> {
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("PK = :pk AND begins_with(SK, :prefix)")
            .expression_attribute_values(":pk", s(scope.pk()))
            .expression_attribute_values(":prefix", s(session_sk(id)))
            .consistent_read(true)
            .send()
            .await?;
        let mut items = output.items().iter().cloned();
        let Some(first) = items.next() else { return Ok(None) };
        let session: TryonSession = from_item(first)?;
        let items = items.map(from_item).collect::<AppResult<Vec<TryonItem>>>()?;
        Ok(Some((session, items)))
    }

    pub async fn get_tryon_session(&self, scope: &TenantScope, id: Uuid) -> AppResult<Option<TryonSession>> {
        self.get_as(session_key(scope, id)).await
    }

    pub async fn get_tryon_item(&self, scope: &TenantScope, id: Uuid, index: u32) -> AppResult<Option<TryonItem>> {
        self.get_as(item_key(scope, id, index)).await
    }

    /// The tenant's sessions in creation order, filtered, one page.
    pub async fn list_tryons(
        &self,
        scope: &TenantScope,
        status: Option<&str>,
        customer_id: Option<Uuid>,
        page: &PageRequest,
    ) -> AppResult<(Vec<TryonSession>, Option<String>)> {
        let pk = sessions_index_pk(scope);
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name("GSI1")
            .key_condition_expression("GSI1PK = :pk")
            .expression_attribute_values(":pk", s(&pk));
        let query = super::filter_equal(
            query,
            &[("status", status.map(s)), ("customer_id", customer_id.map(|c| s(c.to_string())))],
            &[],
        );
        let context =
            format!("tryons|{pk}|{}|{}", status.unwrap_or(""), customer_id.map(|c| c.to_string()).unwrap_or_default());
        let (items, cursor) = self.query_page(query, page, &context, &["GSI1PK", "GSI1SK", "PK", "SK"]).await?;
        Ok((items.into_iter().map(from_item).collect::<AppResult<Vec<TryonSession>>>()?, cursor))
    }

    /// A session counter moved by one item's end, in the same transaction.
    fn session_count(&self, scope: &TenantScope, id: Uuid, counter: &str, refund: i64) -> AppResult<TransactWriteItem> {
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(session_key(scope, id)))
            .update_expression(format!("ADD {counter} :one, refunded_credits :refund SET updated_at = :now"))
            .condition_expression("attribute_exists(PK)")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":refund", n(refund))
            .expression_attribute_values(":now", s(now_rfc3339()))
            .build()
            .map_err(AppError::internal)?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// Ends an item as `failed` or `cancelled` and gives its credits back,
    /// in one transaction. `from` is the state it must still be in (and, for
    /// `processing`, our `lock`). False when the item was no longer there.
    #[allow(clippy::too_many_arguments)]
    async fn end_item_with_refund(
        &self,
        scope: &TenantScope,
        item: &TryonItem,
        to: &str,
        lock: Option<&str>,
        error: Option<&str>,
        reason: &str,
        audit: &AuditContext,
    ) -> AppResult<bool> {
        let now = now_rfc3339();
        let mut update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(item_key(scope, item.session_id, item.index)))
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":to", s(to))
            .expression_attribute_values(":now", s(&now));
        update = match lock {
            Some(lock) => update
                .condition_expression("#status = :from AND #lock = :lock")
                .expression_attribute_names("#lock", "lock")
                .expression_attribute_values(":from", s(ITEM_PROCESSING))
                .expression_attribute_values(":lock", s(lock)),
            None => update.condition_expression("#status = :from").expression_attribute_values(":from", s(ITEM_QUEUED)),
        };
        update = match error {
            Some(error) => update
                .update_expression("SET #status = :to, completed_at = :now, #error = :error REMOVE lease_until")
                .expression_attribute_names("#error", "error")
                .expression_attribute_values(":error", s(error)),
            None => update.update_expression("SET #status = :to, completed_at = :now REMOVE lease_until"),
        };
        let counter = if to == ITEM_CANCELLED { "cancelled_count" } else { "failed_count" };
        let with = vec![
            TransactWriteItem::builder().update(update.build().map_err(AppError::internal)?).build(),
            self.session_count(scope, item.session_id, counter, item.credits)?,
        ];
        if item.credits > 0 {
            let reference = item_refund_reference(item.session_id, item.index);
            match self.refund_credits_with(scope, item.credits, reason, &reference, audit, &with).await {
                // The reference was already used: this item was refunded by an
                // earlier change; the item's state tells whether it was this one.
                Ok(_) => {
                    Ok(self.get_tryon_item(scope, item.session_id, item.index).await?.is_some_and(|i| i.status == to))
                }
                Err(CreditError::PreconditionFailed) => Ok(false),
                Err(CreditError::Insufficient { .. }) => {
                    Err(AppError::internal(anyhow::anyhow!("a refund was refused")))
                }
                Err(CreditError::Other(e)) => Err(e),
            }
        } else {
            match self.client.transact_write_items().set_transact_items(Some(with)).send().await {
                Ok(_) => Ok(true),
                Err(err) if failed_conditions(&err).is_some_and(|f| f.first() == Some(&true)) => Ok(false),
                Err(err) => Err(err.into()),
            }
        }
    }

    /// Cancels a still-queued item and refunds its share; false when the
    /// worker already took it (or it is already cancelled).
    pub async fn cancel_tryon_item(
        &self,
        scope: &TenantScope,
        item: &TryonItem,
        audit: &AuditContext,
    ) -> AppResult<bool> {
        let reason = format!("try-on {} item {} cancelled", item.session_id, item.index);
        self.end_item_with_refund(scope, item, ITEM_CANCELLED, None, None, &reason, audit).await
    }

    /// The worker gives up on an item it holds and refunds its share.
    pub async fn fail_tryon_item(
        &self,
        scope: &TenantScope,
        item: &TryonItem,
        lock: &str,
        error: &str,
        audit: &AuditContext,
    ) -> AppResult<bool> {
        let reason = format!("try-on {} item {} failed", item.session_id, item.index);
        self.end_item_with_refund(scope, item, ITEM_FAILED, Some(lock), Some(error), &reason, audit).await
    }

    /// Takes an item for rendering (see the module docs).
    pub async fn claim_tryon_item(
        &self,
        scope: &TenantScope,
        session_id: Uuid,
        index: u32,
        lock: &str,
        now: i64,
        lease_seconds: i64,
    ) -> AppResult<Claim> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(item_key(scope, session_id, index)))
            .update_expression("SET #status = :processing, #lock = :lock, lease_until = :lease, started_at = :started")
            .condition_expression(
                "attribute_exists(PK) AND (#status = :queued OR (#status = :processing AND lease_until < :now))",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#lock", "lock")
            .expression_attribute_values(":processing", s(ITEM_PROCESSING))
            .expression_attribute_values(":queued", s(ITEM_QUEUED))
            .expression_attribute_values(":lock", s(lock))
            .expression_attribute_values(":lease", n(now + lease_seconds))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":started", s(now_rfc3339()))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(output) => {
                let item =
                    output.attributes.ok_or_else(|| AppError::internal(anyhow::anyhow!("claim without item")))?;
                // The session shows it is being worked on (once; a failed
                // condition means another item already did it).
                let _ = self
                    .client
                    .update_item()
                    .table_name(&self.table)
                    .set_key(Some(session_key(scope, session_id)))
                    .update_expression("SET #status = :processing, updated_at = :now")
                    .condition_expression("#status = :queued")
                    .expression_attribute_names("#status", "status")
                    .expression_attribute_values(":processing", s("processing"))
                    .expression_attribute_values(":queued", s("queued"))
                    .expression_attribute_values(":now", s(now_rfc3339()))
                    .send()
                    .await;
                Ok(Claim::Claimed(Box::new(from_item(item)?)))
            }
            Err(err) if condition_failed(&err) => Ok(match self.get_tryon_item(scope, session_id, index).await? {
                None => Claim::Missing,
                Some(item) if item.status == ITEM_PROCESSING => Claim::Busy,
                Some(_) => Claim::Finished,
            }),
            Err(err) => Err(err.into()),
        }
    }

    /// Records a rendered item under our lock; false when the lock was lost.
    pub async fn complete_tryon_item(
        &self,
        scope: &TenantScope,
        item: &TryonItem,
        lock: &str,
        result_key: &str,
    ) -> AppResult<bool> {
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(item_key(scope, item.session_id, item.index)))
            .update_expression("SET #status = :done, result_key = :key, completed_at = :now REMOVE lease_until")
            .condition_expression("#status = :processing AND #lock = :lock")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#lock", "lock")
            .expression_attribute_values(":done", s(ITEM_COMPLETED))
            .expression_attribute_values(":processing", s(ITEM_PROCESSING))
            .expression_attribute_values(":lock", s(lock))
            .expression_attribute_values(":key", s(result_key))
            .expression_attribute_values(":now", s(now_rfc3339()))
            .build()
            .map_err(AppError::internal)?;
        let writes = vec![
            TransactWriteItem::builder().update(update).build(),
            self.session_count(scope, item.session_id, "completed_count", 0)?,
        ];
        match self.client.transact_write_items().set_transact_items(Some(writes)).send().await {
            Ok(_) => Ok(true),
            Err(err) if failed_conditions(&err).is_some_and(|f| f.first() == Some(&true)) => Ok(false),
            Err(err) => Err(err.into()),
        }
    }

    /// Moves the session to its final status once every item has ended;
    /// answers the final session only to the one caller that made the move.
    pub async fn finish_tryon_if_done(&self, scope: &TenantScope, id: Uuid) -> AppResult<Option<TryonSession>> {
        let Some(session) = self.get_tryon_session(scope, id).await? else { return Ok(None) };
        if session.is_final() || session.done_count() < session.items_total {
            return Ok(None);
        }
        let status = tryon::final_status(session.completed_count, session.failed_count);
        let now = now_rfc3339();
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(session_key(scope, id)))
            .update_expression("SET #status = :final, completed_at = :now, updated_at = :now")
            .condition_expression("#status IN (:queued, :processing)")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":final", s(status))
            .expression_attribute_values(":queued", s("queued"))
            .expression_attribute_values(":processing", s("processing"))
            .expression_attribute_values(":now", s(&now))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(output) => {
                let item = output.attributes.ok_or_else(|| AppError::internal(anyhow::anyhow!("no session")))?;
                debug_assert!(number_attr(&item, "items_total") > 0);
                Ok(Some(from_item(item)?))
            }
            Err(err) if condition_failed(&err) => Ok(None),
            Err(err) => Err(err.into()),
        }
    }
}
