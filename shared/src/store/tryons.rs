//! Cart try-on sessions and their items.
//!
//! | item | PK | SK | other keys | notes |
//! |---|---|---|---|---|
//! | session | `T#<tenant>#` | `TRYON#<session>` | `GSI1PK=T#<tenant>#TRYONS`, `GSI1SK=<session>` | customer, photo, quality, price breakdown, `status`, `items_total`, counters `completed_count`/`failed_count`/`cancelled_count`, `refunded_credits` |
//! | item | `T#<tenant>#` | `TRYON#<session>#ITEM#<nn>` | | product, garment, `credits` (its share of the price), `status`, `lock` + `lease_until` while processing, `result_key`, `error` |
//!
//! A session and its items are one key range (one Query reads them all).
//! Every state change is conditional on the state it leaves:
//! - create: session + items + one `tryon.item.requested` per item (outbox
//!   events: the worker's queue receives them only if the session
//!   committed) + the credit spend (+ ledger, + audit) in ONE transaction;
//!   not enough credits leaves nothing;
//! - claim (worker): `queued`, or `processing` whose lease ran out (a worker
//!   died), -> `processing` with a fresh lock;
//! - complete: `processing` under our lock -> `completed`, + session counter;
//! - fail / cancel: `processing` under our lock / `queued` -> `failed` /
//!   `cancelled`, + session counter, + the item's refund, in one transaction;
//!   the refund's reference `tryon:<session>:<nn>` makes a second refund of
//!   the same item impossible whatever path asks for it;
//! - finish: once the counters cover every item, the session moves to its
//!   final status exactly once, with its `tryon.session.*` event in the same
//!   transaction (so whoever makes the move emits it, once).

use aws_sdk_dynamodb::types::{ReturnValue, Update, builders::UpdateBuilder};
use uuid::Uuid;

use super::{
    Item, Store, condition_failed,
    credits::CreditError,
    from_item, item_key as key, n, s, to_item,
    tx::{Cond, MAX_TX_ITEMS, Tx, TxError},
};
use crate::{
    auth::TenantScope,
    domain::audit::{AuditContext, Change},
    domain::{
        now_rfc3339,
        tryon::{self, ItemStatus, MAX_ITEMS, MIN_ITEMS, SessionStatus},
    },
    error::{AppError, AppResult},
    events::{Event, catalogue::TryonItemRequested},
    store::PageRequest,
    store::credits::LedgerEntry,
};

pub const TRYON_RESOURCE: &str = "tryon_session";

/// The session and item entities live in the domain; re-exported here where
/// their callers have always found them.
pub use crate::domain::tryon::{TryonItem, TryonSession};

/// The event that asks the worker to render one item (the worker's queue
/// receives exactly these).
pub fn item_requested_event(session_id: Uuid, index: u32) -> Event {
    Event::TryonItemRequested(TryonItemRequested { session_id, item_index: index })
}

/// The item is no longer in the state the change leaves (or no longer under
/// the caller's lock): another change ended it first.
const ITEM_MOVED: Cond = Cond("item_moved");
/// The session of an item is gone (a bug: sessions are never deleted).
const SESSION_MISSING: Cond = Cond("session_missing");
/// The session already reached its final status.
const SESSION_FINISHED: Cond = Cond("session_finished");
/// Writes the credit spend adds to the creating transaction, at most
/// (balance, ledger entry, reference marker, audit entry, an event or two).
const SPEND_WRITES_AT_MOST: usize = 8;
// The creating transaction: the session, each item with its
// `tryon.item.requested`, the audit entry, and the spend.
const _: () = assert!(2 + 2 * MAX_ITEMS + SPEND_WRITES_AT_MOST <= MAX_TX_ITEMS);
/// How often a change tries again after DynamoDB cancelled it for a
/// concurrent transaction on one of its items (the items of one session
/// all move its counters).
const CONFLICT_ATTEMPTS: usize = 5;

/// Every attempt met a concurrent transaction.
fn session_busy() -> AppError {
    AppError::conflict("the try-on session is being changed by other requests; try again")
}

/// A few milliseconds, more after each conflict, so contenders spread out.
async fn back_off(attempt: usize) {
    use rand::Rng;
    let ms = rand::thread_rng().gen_range(1..=2 + 4 * attempt as u64);
    tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
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

/// The credit reference of an item's refund: one refund per item, ever.
pub fn item_refund_reference(session_id: Uuid, index: u32) -> String {
    format!("tryon:{session_id}:{index:02}")
}

/// Where an item's rendered image goes.
pub fn result_key(scope: &TenantScope, session_id: Uuid, index: u32) -> String {
    format!("{}tryons/{session_id}/{index:02}.png", crate::blobs::tenant_prefix(scope))
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
    /// Creates the session and its items, emits one `tryon.item.requested`
    /// per item and takes the price from the balance, all in one
    /// transaction.
    pub async fn create_tryon(
        &self,
        scope: &TenantScope,
        session: &TryonSession,
        items: &[TryonItem],
        audit: &AuditContext,
    ) -> Result<LedgerEntry, CreditError> {
        self.create_tryon_session(scope, session, items, audit, true).await
    }

    /// For tests that drive the worker themselves: [`Self::create_tryon`]
    /// without the item events, so no worker ever takes the items.
    #[cfg(feature = "test-support")]
    pub async fn create_tryon_undispatched(
        &self,
        scope: &TenantScope,
        session: &TryonSession,
        items: &[TryonItem],
        audit: &AuditContext,
    ) -> Result<LedgerEntry, CreditError> {
        self.create_tryon_session(scope, session, items, audit, false).await
    }

    async fn create_tryon_session(
        &self,
        scope: &TenantScope,
        session: &TryonSession,
        items: &[TryonItem],
        audit: &AuditContext,
        dispatch: bool,
    ) -> Result<LedgerEntry, CreditError> {
        if !(MIN_ITEMS..=MAX_ITEMS).contains(&items.len()) {
            return Err(AppError::internal(anyhow::anyhow!("a cart of {} items", items.len())).into());
        }
        let retention = self.audit_retention(scope).await?;
        let mut tx = Tx::new();
        let mut item = to_item(session)?;
        item.extend(session_key(scope, session.id));
        item.insert("GSI1PK".into(), s(sessions_index_pk(scope)));
        item.insert("GSI1SK".into(), s(session.id.to_string()));
        tx.put_new(item, Cond::UNIQUE_ID);
        for tryon_item in items {
            let mut item = to_item(tryon_item)?;
            item.extend(item_key(scope, session.id, tryon_item.index));
            tx.put_new(item, Cond::UNIQUE_ID);
            if dispatch {
                tx.emit(scope, item_requested_event(session.id, tryon_item.index));
            }
        }
        tx.audit(scope, audit, Change::created(TRYON_RESOURCE, session.id, session.view()), retention);
        let reason = format!("try-on {} ({} x {})", session.id, items.len(), session.quality.as_str());
        self.spend_credits_with(scope, session.price.total, &reason, &format!("tryon:{}", session.id), audit, tx).await
    }

    /// The session and its items (one consistent Query).
    pub async fn get_tryon(&self, scope: &TenantScope, id: Uuid) -> AppResult<Option<(TryonSession, Vec<TryonItem>)>> {
        let output = self.prefix_query(scope, session_sk(id)).consistent_read(true).send().await?;
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
        Ok((super::decode_listed(items), cursor))
    }

    /// A session counter moved by one item's end, in the same transaction.
    fn session_count(scope: &TenantScope, id: Uuid, counter: &str, refund: i64) -> UpdateBuilder {
        Update::builder()
            .set_key(Some(session_key(scope, id)))
            .update_expression(format!("ADD {counter} :one, refunded_credits :refund SET updated_at = :now"))
            .condition_expression("attribute_exists(PK)")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":refund", n(refund))
            .expression_attribute_values(":now", s(now_rfc3339()))
    }

    /// An item's end with its session counter: false when the item had
    /// already left the state the change expects ([`ITEM_MOVED`]). A
    /// conflict with another item's end (the same session counter) is tried
    /// again: the item's own condition still decides.
    async fn commit_item_end(&self, tx: Tx) -> AppResult<bool> {
        for attempt in 0..CONFLICT_ATTEMPTS {
            match tx.clone().commit(self).await {
                Ok(()) => return Ok(true),
                Err(TxError::Condition(ITEM_MOVED)) => return Ok(false),
                Err(TxError::Conflict) => back_off(attempt).await,
                Err(other) => return Err(other.into_app_error("try-on item")),
            }
        }
        Err(session_busy())
    }

    /// Ends an item as `failed` or `cancelled` and gives its credits back,
    /// in one transaction. `from` is the state it must still be in (and, for
    /// `processing`, our `lock`). False when the item was no longer there.
    #[allow(clippy::too_many_arguments)]
    async fn end_item_with_refund(
        &self,
        scope: &TenantScope,
        item: &TryonItem,
        to: ItemStatus,
        lock: Option<&str>,
        error: Option<&str>,
        reason: &str,
        audit: &AuditContext,
    ) -> AppResult<bool> {
        let now = now_rfc3339();
        let mut update = Update::builder()
            .set_key(Some(item_key(scope, item.session_id, item.index)))
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":to", s(to.as_str()))
            .expression_attribute_values(":now", s(&now));
        update = match lock {
            Some(lock) => update
                .condition_expression("#status = :from AND #lock = :lock")
                .expression_attribute_names("#lock", "lock")
                .expression_attribute_values(":from", s(ItemStatus::Processing.as_str()))
                .expression_attribute_values(":lock", s(lock)),
            None => update
                .condition_expression("#status = :from")
                .expression_attribute_values(":from", s(ItemStatus::Queued.as_str())),
        };
        update = match error {
            Some(error) => update
                .update_expression("SET #status = :to, completed_at = :now, #error = :error REMOVE lease_until")
                .expression_attribute_names("#error", "error")
                .expression_attribute_values(":error", s(error)),
            None => update.update_expression("SET #status = :to, completed_at = :now REMOVE lease_until"),
        };
        let counter = if to == ItemStatus::Cancelled { "cancelled_count" } else { "failed_count" };
        let mut tx = Tx::new();
        tx.update(update, Some(ITEM_MOVED));
        tx.update(Self::session_count(scope, item.session_id, counter, item.credits), Some(SESSION_MISSING));
        if item.credits == 0 {
            return self.commit_item_end(tx).await;
        }
        let reference = item_refund_reference(item.session_id, item.index);
        match self.refund_credits_with(scope, item.credits, reason, &reference, audit, tx).await {
            // The item's change commits with the refund or not at all: when
            // the refund was an earlier (or concurrent) call's, so was the
            // item's end, and this call must not count it as its own.
            Ok(refund) => Ok(refund.made_by_this_call),
            Err(CreditError::PreconditionFailed(ITEM_MOVED)) => Ok(false),
            Err(CreditError::PreconditionFailed(cond)) => Err(TxError::Condition(cond).into_app_error("try-on item")),
            Err(CreditError::Insufficient { .. }) => Err(AppError::internal(anyhow::anyhow!("a refund was refused"))),
            Err(CreditError::Other(e)) => Err(e),
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
        self.end_item_with_refund(scope, item, ItemStatus::Cancelled, None, None, &reason, audit).await
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
        self.end_item_with_refund(scope, item, ItemStatus::Failed, Some(lock), Some(error), &reason, audit).await
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
            .expression_attribute_values(":processing", s(ItemStatus::Processing.as_str()))
            .expression_attribute_values(":queued", s(ItemStatus::Queued.as_str()))
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
                    .expression_attribute_values(":processing", s(SessionStatus::Processing.as_str()))
                    .expression_attribute_values(":queued", s(SessionStatus::Queued.as_str()))
                    .expression_attribute_values(":now", s(now_rfc3339()))
                    .send()
                    .await;
                Ok(Claim::Claimed(Box::new(from_item(item)?)))
            }
            Err(err) if condition_failed(&err) => Ok(match self.get_tryon_item(scope, session_id, index).await? {
                None => Claim::Missing,
                Some(item) if item.status == ItemStatus::Processing => Claim::Busy,
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
            .set_key(Some(item_key(scope, item.session_id, item.index)))
            .update_expression("SET #status = :done, result_key = :key, completed_at = :now REMOVE lease_until")
            .condition_expression("#status = :processing AND #lock = :lock")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#lock", "lock")
            .expression_attribute_values(":done", s(ItemStatus::Completed.as_str()))
            .expression_attribute_values(":processing", s(ItemStatus::Processing.as_str()))
            .expression_attribute_values(":lock", s(lock))
            .expression_attribute_values(":key", s(result_key))
            .expression_attribute_values(":now", s(now_rfc3339()));
        let mut tx = Tx::new();
        tx.update(update, Some(ITEM_MOVED));
        tx.update(Self::session_count(scope, item.session_id, "completed_count", 0), Some(SESSION_MISSING));
        // A rendered item is one AI request of the month, metered with the
        // change that completes it (an item completes once: ITEM_MOVED).
        super::billing::meter_in(&mut tx, scope, "ai_requests", rust_decimal::Decimal::ONE, chrono::Utc::now());
        self.commit_item_end(tx).await
    }

    /// Moves the session to its final status once every item has ended,
    /// with its `tryon.session.*` event in the same transaction; answers the
    /// final session only to the one caller that made the move (and so
    /// emitted the event).
    pub async fn finish_tryon_if_done(&self, scope: &TenantScope, id: Uuid) -> AppResult<Option<TryonSession>> {
        for attempt in 0..CONFLICT_ATTEMPTS {
            let Some(mut session) = self.get_tryon_session(scope, id).await? else { return Ok(None) };
            if session.is_final() || session.done_count() < session.items_total {
                return Ok(None);
            }
            // Every item has ended, and an item ends once: the counters read
            // here are final, and so is the event's payload.
            let now = now_rfc3339();
            session.status = tryon::final_status(session.completed_count, session.failed_count);
            session.completed_at = Some(now.clone());
            session.updated_at = now.clone();
            let update = Update::builder()
                .set_key(Some(session_key(scope, id)))
                .update_expression("SET #status = :final, completed_at = :now, updated_at = :now")
                .condition_expression("#status IN (:queued, :processing)")
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":final", s(session.status.as_str()))
                .expression_attribute_values(":queued", s(SessionStatus::Queued.as_str()))
                .expression_attribute_values(":processing", s(SessionStatus::Processing.as_str()))
                .expression_attribute_values(":now", s(&now));
            let mut tx = Tx::new();
            tx.update(update, Some(SESSION_FINISHED));
            tx.emit(scope, session.finished_event());
            match tx.commit(self).await {
                Ok(()) => return Ok(Some(session)),
                Err(TxError::Condition(SESSION_FINISHED)) => return Ok(None),
                // Another finisher's transaction on the session: read again.
                Err(TxError::Conflict) => back_off(attempt).await,
                Err(other) => return Err(other.into_app_error("try-on session")),
            }
        }
        Err(session_busy())
    }
}
