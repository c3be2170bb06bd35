//! One mutation, one transaction: [`Tx`] collects a change's writes, each
//! conditional write with the *name* of what its failure means, the change's
//! audit entries and its domain events (outbox items), and commits them as
//! one TransactWriteItems. A cancelled transaction answers the name of the
//! first condition that failed, never a position:
//!
//! ```ignore
//! let mut tx = Tx::new();
//! tx.put_new(claim, SLUG_TAKEN).put_new(tenant_item, Cond::UNIQUE_ID);
//! tx.audit(&scope, audit, Change::created("tenant", id, body), retention);
//! tx.emit(&scope, Event::TenantCreated(..));
//! match tx.commit(store).await {
//!     Err(TxError::Condition(SLUG_TAKEN)) => ...,
//! }
//! ```
//!
//! The outbox: an event is an item `T#<tenant>#` / `EVENT#<event id>`
//! carrying `event_type` and `event_detail` (the envelope as JSON), written
//! in the transaction of the change it describes. The table's stream feeds
//! every INSERT that carries `event_detail` to the bus (EventBridge Pipes in
//! AWS, the local server's stream poller locally), so an event is published
//! if and only if its change committed, whatever fails after the commit.
//! Audit entries carry the same two attributes, so each one is also an
//! `audit.entry.created` event without a second item.

use std::collections::HashMap;

use aws_sdk_dynamodb::{
    operation::transact_write_items::TransactWriteItemsError,
    types::{
        TransactWriteItem,
        builders::{ConditionCheckBuilder, DeleteBuilder, PutBuilder, UpdateBuilder},
    },
};

use super::{
    Item, Store,
    idempotency::{ClaimOutcome, RidingClaim},
    n, s,
};
use crate::{
    auth::TenantScope,
    domain::audit::{AuditContext, Change},
    error::AppError,
    events::{DomainEvent, Event},
};

/// What a failed condition means, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cond(pub &'static str);

impl Cond {
    /// A new item keyed by a fresh UUID: its `attribute_not_exists` can only
    /// fail on a bug, and says so.
    pub const UNIQUE_ID: Cond = Cond("unique_id");
}

/// The request's `Idempotency-Key` is held by another request (its riding
/// claim failed): the idempotency layer answers with that request's answer.
pub const IDEMPOTENCY_KEY_TAKEN: Cond = Cond("idempotency_key_taken");

/// Why a transaction did not commit.
#[derive(Debug)]
pub enum TxError {
    /// The named condition failed (the first one, in the order added).
    Condition(Cond),
    /// DynamoDB cancelled it for a concurrent transaction on one of its
    /// items: nothing changed, try again.
    Conflict,
    /// Anything else (a dependency failure, a bug).
    Store(AppError),
}

impl From<AppError> for TxError {
    fn from(e: AppError) -> Self {
        TxError::Store(e)
    }
}

impl TxError {
    /// For callers with no particular answer to a failed condition: a
    /// condition or conflict is a 409, anything else as it is.
    pub fn into_app_error(self, what: &str) -> AppError {
        match self {
            TxError::Condition(c) => AppError::conflict(format!("{what}: {} (the data changed meanwhile)", c.0)),
            TxError::Conflict => AppError::conflict(format!("{what}: another request changed it; try again")),
            TxError::Store(e) => e,
        }
    }
}

/// The attributes that make an item an outbox event (the stream filter of
/// the relay matches INSERTs carrying `event_detail`).
pub const EVENT_TYPE_ATTR: &str = "event_type";
pub const EVENT_DETAIL_ATTR: &str = "event_detail";
/// The event's bus `source` (`DomainEvent::source`), for the Pipe's target.
pub const EVENT_SOURCE_ATTR: &str = "event_source";
/// How long an outbox item stays after its event (TTL): long enough to read
/// a tenant's recent events back, short enough to stay small.
const OUTBOX_RETENTION_SECONDS: i64 = 7 * 86_400;
/// DynamoDB's limit on the items of one transaction.
pub const MAX_TX_ITEMS: usize = 100;

/// One change's writes, committed together (see the module docs).
#[derive(Debug, Clone, Default)]
pub struct Tx {
    writes: Vec<Write>,
}

#[derive(Debug, Clone)]
enum Write {
    Put(PutBuilder, Option<Cond>),
    Update(UpdateBuilder, Option<Cond>),
    Delete(DeleteBuilder, Option<Cond>),
    Check(ConditionCheckBuilder, Cond),
}

impl Tx {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.writes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }

    /// Appends another change's writes (composition: a credit spend inside a
    /// try-on's creation).
    pub fn extend(&mut self, other: Tx) -> &mut Self {
        self.writes.extend(other.writes);
        self
    }

    /// A Put that refuses to overwrite: `cond` names what an existing item means.
    pub fn put_new(&mut self, item: Item, cond: Cond) -> &mut Self {
        let put = PutBuilder::default().set_item(Some(item)).condition_expression("attribute_not_exists(PK)");
        self.writes.push(Write::Put(put, Some(cond)));
        self
    }

    /// A Put that overwrites only under `condition` (with its `values`; the
    /// name `#status` stands for `status`, a reserved word): `cond` names
    /// its failure.
    pub fn put_if(
        &mut self,
        item: Item,
        condition: &str,
        values: HashMap<String, aws_sdk_dynamodb::types::AttributeValue>,
        cond: Cond,
    ) -> &mut Self {
        let mut put = PutBuilder::default().set_item(Some(item)).condition_expression(condition);
        if condition.contains("#status") {
            put = put.expression_attribute_names("#status", "status");
        }
        let put = put.set_expression_attribute_values(Some(values));
        self.writes.push(Write::Put(put, Some(cond)));
        self
    }

    /// An unconditional Put (an overwrite is intended).
    pub fn put(&mut self, item: Item) -> &mut Self {
        self.writes.push(Write::Put(PutBuilder::default().set_item(Some(item)), None));
        self
    }

    /// An Update (key, expression, values; the table is filled in). With a
    /// condition expression, `cond` names its failure; `None` means the
    /// update carries no condition.
    pub fn update(&mut self, update: UpdateBuilder, cond: Option<Cond>) -> &mut Self {
        self.writes.push(Write::Update(update, cond));
        self
    }

    pub fn delete(&mut self, delete: DeleteBuilder, cond: Option<Cond>) -> &mut Self {
        self.writes.push(Write::Delete(delete, cond));
        self
    }

    /// A condition on an item the change does not write.
    pub fn check(&mut self, check: ConditionCheckBuilder, cond: Cond) -> &mut Self {
        self.writes.push(Write::Check(check, cond));
        self
    }

    /// The audit entry of `change`, which is also its `audit.entry.created`
    /// event.
    pub fn audit(&mut self, scope: &TenantScope, ctx: &AuditContext, change: Change, retention_days: i64) -> &mut Self {
        let item = super::audit_log::entry_item(scope, ctx, change, retention_days);
        self.writes.push(Write::Put(PutBuilder::default().set_item(Some(item)), None));
        self
    }

    /// The event, as an outbox item of this transaction; answers its
    /// envelope (its id is the webhook-id customers will see).
    pub fn emit(&mut self, scope: &TenantScope, event: Event) -> DomainEvent {
        let envelope = event.into_domain_event(scope.tenant_id());
        self.writes.push(Write::Put(PutBuilder::default().set_item(Some(outbox_item(scope, &envelope))), None));
        envelope
    }

    /// Commits every write or none. One write is sent as a TransactWriteItems
    /// too: the cost is the same, and every change takes one path.
    ///
    /// Under a [`RidingClaim`] (an `Idempotency-Key` request on a route whose
    /// change is one transaction) the first transaction that commits also
    /// writes the key's record: a duplicate's change is cancelled by it and
    /// answers [`IDEMPOTENCY_KEY_TAKEN`], whatever else failed with it.
    pub async fn commit(mut self, store: &Store) -> Result<(), TxError> {
        if self.writes.is_empty() {
            return Ok(());
        }
        let claim = RidingClaim::current().filter(|c| !matches!(c.outcome(), ClaimOutcome::Committed { .. }));
        let mut answer = None;
        if let Some(claim) = &claim {
            let (put, stored) = claim.transaction_put();
            answer = stored;
            self.writes.push(Write::Put(put, Some(IDEMPOTENCY_KEY_TAKEN)));
        }
        // Boxed: the SDK's future is deep, and every caller's future nests
        // it; one allocation per commit keeps their types within the
        // compiler's limits.
        let commit: std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), TxError>> + Send + '_>> =
            Box::pin(self.commit_writes(store));
        let result = commit.await;
        if let Some(claim) = &claim {
            match &result {
                Ok(()) => claim.set_outcome(ClaimOutcome::Committed { answered: answer.is_some() }, answer),
                Err(TxError::Condition(IDEMPOTENCY_KEY_TAKEN)) => claim.set_outcome(ClaimOutcome::Taken, None),
                Err(TxError::Conflict) => claim.set_outcome(ClaimOutcome::Conflicted, None),
                Err(_) => claim.set_outcome(ClaimOutcome::NotCommitted, None),
            }
        }
        result
    }

    async fn commit_writes(self, store: &Store) -> Result<(), TxError> {
        if self.writes.len() > MAX_TX_ITEMS {
            return Err(TxError::Store(AppError::internal(anyhow::anyhow!(
                "a transaction of {} items (DynamoDB takes {MAX_TX_ITEMS})",
                self.writes.len()
            ))));
        }
        let mut names = Vec::with_capacity(self.writes.len());
        let mut items = Vec::with_capacity(self.writes.len());
        for write in self.writes {
            let table = store.table.clone();
            let (item, name) = match write {
                Write::Put(put, cond) => {
                    (TransactWriteItem::builder().put(put.table_name(table).build().map_err(AppError::internal)?), cond)
                }
                Write::Update(update, cond) => (
                    TransactWriteItem::builder().update(update.table_name(table).build().map_err(AppError::internal)?),
                    cond,
                ),
                Write::Delete(delete, cond) => (
                    TransactWriteItem::builder().delete(delete.table_name(table).build().map_err(AppError::internal)?),
                    cond,
                ),
                Write::Check(check, cond) => (
                    TransactWriteItem::builder()
                        .condition_check(check.table_name(table).build().map_err(AppError::internal)?),
                    Some(cond),
                ),
            };
            items.push(item.build());
            names.push(name);
        }
        let err = match store.client.transact_write_items().set_transact_items(Some(items)).send().await {
            Ok(_) => return Ok(()),
            Err(err) => err,
        };
        let reasons: Vec<Option<String>> = match err.as_service_error() {
            Some(TransactWriteItemsError::TransactionCanceledException(e)) => {
                e.cancellation_reasons().iter().map(|r| r.code().map(str::to_owned)).collect()
            }
            _ => return Err(TxError::Store(err.into())),
        };
        // The riding claim is the last write; its failure decides, as the
        // others may have failed only because the duplicate ran first.
        let claim_failed = names.last() == Some(&Some(IDEMPOTENCY_KEY_TAKEN))
            && reasons.len() == names.len()
            && reasons.last().and_then(Option::as_deref) == Some("ConditionalCheckFailed");
        if claim_failed {
            return Err(TxError::Condition(IDEMPOTENCY_KEY_TAKEN));
        }
        match cancellation(&reasons, &names) {
            Cancellation::Condition(Some(cond)) if cond == Cond::UNIQUE_ID => Err(TxError::Store(AppError::internal(
                anyhow::anyhow!("a freshly keyed item already exists (reasons: {reasons:?})"),
            ))),
            Cancellation::Condition(Some(cond)) => Err(TxError::Condition(cond)),
            Cancellation::Condition(None) => Err(TxError::Store(AppError::internal(anyhow::anyhow!(
                "an unnamed condition failed (reasons: {reasons:?})"
            )))),
            Cancellation::Conflict => Err(TxError::Conflict),
            Cancellation::Other => Err(TxError::Store(err.into())),
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Cancellation {
    /// The first failed condition, by its name (`None`: a write without one).
    Condition(Option<Cond>),
    Conflict,
    Other,
}

/// Reads a cancellation's per-item reason codes against the writes' names.
fn cancellation(reasons: &[Option<String>], names: &[Option<Cond>]) -> Cancellation {
    let failed = reasons.iter().position(|code| code.as_deref() == Some("ConditionalCheckFailed"));
    if let Some(index) = failed {
        return Cancellation::Condition(names.get(index).copied().flatten());
    }
    if reasons.iter().any(|code| code.as_deref() == Some("TransactionConflict")) {
        Cancellation::Conflict
    } else {
        Cancellation::Other
    }
}

/// The outbox item of one event (see the module docs).
pub(crate) fn outbox_item(scope: &TenantScope, event: &DomainEvent) -> Item {
    let detail = serde_json::to_string(event).unwrap_or_default();
    HashMap::from([
        ("PK".to_owned(), s(scope.pk())),
        ("SK".to_owned(), s(format!("EVENT#{}", event.id))),
        (EVENT_TYPE_ATTR.to_owned(), s(&event.event_type)),
        (EVENT_DETAIL_ATTR.to_owned(), s(detail)),
        (EVENT_SOURCE_ATTR.to_owned(), s(event.source())),
        ("created_at".to_owned(), s(crate::domain::rfc3339(event.occurred_at))),
        ("expires_at".to_owned(), n(event.occurred_at.timestamp() + OUTBOX_RETENTION_SECONDS)),
    ])
}

/// A single outbox event with no other write (a refusal worth telling, like
/// `tenant.quota_exceeded`): still through the outbox, never the bus.
impl Store {
    pub async fn emit(&self, scope: &TenantScope, event: Event) -> Result<DomainEvent, AppError> {
        let mut tx = Tx::new();
        let envelope = tx.emit(scope, event);
        tx.commit(self).await.map_err(|e| e.into_app_error("event"))?;
        Ok(envelope)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SLUG_TAKEN: Cond = Cond("slug_taken");
    const PARENT_MISSING: Cond = Cond("parent_missing");

    fn code(c: &str) -> Option<String> {
        Some(c.to_owned())
    }

    #[test]
    fn a_cancellation_answers_the_name_of_the_first_failed_condition() {
        let names = [Some(SLUG_TAKEN), None, Some(PARENT_MISSING)];
        let reasons = [code("None"), code("None"), code("ConditionalCheckFailed")];
        assert_eq!(cancellation(&reasons, &names), Cancellation::Condition(Some(PARENT_MISSING)));
        let both = [code("ConditionalCheckFailed"), code("None"), code("ConditionalCheckFailed")];
        assert_eq!(cancellation(&both, &names), Cancellation::Condition(Some(SLUG_TAKEN)));
        let unnamed = [code("None"), code("ConditionalCheckFailed"), code("None")];
        assert_eq!(cancellation(&unnamed, &names), Cancellation::Condition(None));
    }

    #[test]
    fn a_concurrent_transaction_is_a_conflict_and_anything_else_is_other() {
        let names = [None, None];
        assert_eq!(cancellation(&[code("TransactionConflict"), code("None")], &names), Cancellation::Conflict);
        assert_eq!(cancellation(&[code("ValidationError"), code("None")], &names), Cancellation::Other);
    }
}
