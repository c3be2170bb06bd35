//! Prepaid credits (seed 004): a tenant's balance and its ledger.
//!
//! | item | PK | SK | notes |
//! |---|---|---|---|
//! | balance | `T#<tenant>#` | `TENANT` | attribute `credit_balance` on the tenant item (absent = 0) |
//! | ledger entry | `T#<tenant>#` | `CREDIT#<uuidv7>` | `amount` (signed), `kind`, `reason`, `reference`, `balance_after`, `actor`, `created_at` |
//! | reference marker | `T#<tenant>#` | `CREDITREF#<kind>#<reference>` | `entry_id`, `balance_after`: a spend or refund with a reference happens once |
//!
//! Every change is ONE transaction ([`Tx`]): the caller's writes when the
//! change is part of theirs, the reference marker when there is a reference
//! (`attribute_not_exists`, [`REFERENCE_USED`]), the tenant update conditioned
//! on the exact balance it read (`credit_balance = :seen`, or
//! `attribute_not_exists` when there was none: [`BALANCE_CHANGED`]), the
//! ledger entry, the audit entry and, for a grant or a metered charge, its
//! event (`credits.added`, `credits.spent`). Conditioning on the exact
//! balance (rather than `credit_balance >= :cost` with an `ADD`) makes the
//! ledger's `balance_after` exact: no other change can slip in between the
//! read and the write. A change that lost a race re-reads and tries again
//! (bounded, with jitter); a spend whose re-read balance is below its cost is
//! refused with [`CreditError::Insufficient`], so the balance never goes
//! negative. The caller's writes come first: when one of their conditions
//! fails, that is the answer ([`CreditError::PreconditionFailed`] names it),
//! whatever else failed with it.
//!
//! The try-on pipeline calls [`Store::spend_credits_with`] and
//! [`Store::refund_credits_with`] with its session id as the reference:
//! repeating either with the same reference changes nothing and answers the
//! first result.

use std::time::Duration;

use aws_sdk_dynamodb::types::builders::UpdateBuilder;
use http::StatusCode;
use rand::Rng;
use serde_json::{Value, json};
use uuid::Uuid;

use super::{
    Item, PageRequest, Store, item_key as key, n, number_attr, s,
    tenants::tenant_key,
    to_item,
    tx::{Cond, Tx, TxError},
};
use crate::{
    auth::TenantScope,
    domain::{
        audit::{AuditContext, Change},
        ids::TenantId,
    },
    error::{AppError, AppResult},
    events::{Event, catalogue::CreditsChanged},
};

pub use crate::domain::credit::{CreditKind, LedgerEntry};

/// Audit entries of credit changes carry this `resource_type`.
pub const CREDITS_RESOURCE: &str = "credits";
/// How often a change that lost a race re-reads the balance and tries again.
/// Every lost race means another change committed, so a spend waits at most
/// for the changes that were concurrent with it.
const MAX_ATTEMPTS: usize = 100;
const ENTRY_PREFIX: &str = "CREDIT#";

/// The balance is no longer the one the change read: read again and retry.
pub const BALANCE_CHANGED: Cond = Cond("credit_balance_changed");
/// A change of this kind with this reference already happened.
pub const REFERENCE_USED: Cond = Cond("credit_reference_used");

/// Why credits could not be changed.
#[derive(Debug)]
pub enum CreditError {
    /// The balance is below the cost; nothing changed.
    Insufficient {
        balance: i64,
        cost: i64,
    },
    /// A condition of the caller's writes (the `with` transaction, e.g. a
    /// try-on item moving to `cancelled`) failed, by the name the caller
    /// gave it; nothing changed.
    PreconditionFailed(Cond),
    Other(AppError),
}

impl From<AppError> for CreditError {
    fn from(e: AppError) -> Self {
        CreditError::Other(e)
    }
}

/// The one mapping of a refused spend to API.md's 402 `insufficient_credits`,
/// for every route that spends (try-ons, ...).
impl From<CreditError> for AppError {
    fn from(err: CreditError) -> Self {
        match err {
            CreditError::Insufficient { balance, cost } => AppError::new(
                StatusCode::PAYMENT_REQUIRED,
                "insufficient_credits",
                format!("this needs {cost} credits and the balance is {balance}"),
            )
            .with_details(json!({ "balance": balance, "cost": cost })),
            CreditError::PreconditionFailed(_) => {
                AppError::conflict("the change no longer applies; nothing was charged")
            }
            CreditError::Other(e) => e,
        }
    }
}

/// A change made at most once per reference: its ledger entry, and whether
/// this call made it or found it made by an earlier (or concurrent) one, in
/// which case this call changed nothing, its `with` writes included.
#[derive(Debug)]
pub struct Referenced {
    pub entry: LedgerEntry,
    pub made_by_this_call: bool,
}

impl Referenced {
    fn earlier(entry: LedgerEntry) -> Self {
        Self { entry, made_by_this_call: false }
    }
}

/// The payload of `credits.added` / `credits.spent` for an entry.
fn event_payload(entry: &LedgerEntry) -> CreditsChanged {
    CreditsChanged {
        entry_id: entry.id,
        amount: entry.amount.abs(),
        balance: entry.balance_after,
        reason: entry.reason.clone(),
        reference: entry.reference.clone(),
        actor: serde_json::to_value(&entry.actor).unwrap_or(Value::Null),
    }
}

/// The balance after a change of `amount` credits, or why there is none.
/// `amount` is the positive size of the change whatever its kind.
fn next_balance(balance: i64, kind: CreditKind, amount: i64) -> Result<i64, CreditError> {
    check_amount(amount)?;
    match kind {
        CreditKind::Spend if balance < amount => Err(CreditError::Insufficient { balance, cost: amount }),
        CreditKind::Spend => Ok(balance - amount),
        CreditKind::Grant | CreditKind::Refund => balance
            .checked_add(amount)
            .ok_or_else(|| AppError::invalid_field("amount", "would take the balance past its maximum").into()),
    }
}

fn check_amount(amount: i64) -> AppResult<()> {
    if amount > 0 { Ok(()) } else { Err(AppError::invalid_field("amount", "must be greater than 0")) }
}

/// What a transaction that did not commit means for a credit change.
#[derive(Debug)]
enum Lost {
    /// The reference marker exists: this change already happened.
    ReferenceUsed,
    /// The balance changed since it was read (or DynamoDB saw a concurrent
    /// transaction on an item): read again and retry.
    Race,
    Failed(CreditError),
}

fn lost(err: TxError) -> Lost {
    match err {
        TxError::Condition(REFERENCE_USED) => Lost::ReferenceUsed,
        TxError::Condition(BALANCE_CHANGED) | TxError::Conflict => Lost::Race,
        // The caller's writes come first, so theirs is the first failure.
        TxError::Condition(theirs) => Lost::Failed(CreditError::PreconditionFailed(theirs)),
        TxError::Store(e) => Lost::Failed(CreditError::Other(e)),
    }
}

fn entry_key(scope: &TenantScope, id: Uuid) -> Item {
    key(scope, format!("{ENTRY_PREFIX}{id}"))
}

fn reference_key(scope: &TenantScope, kind: CreditKind, reference: &str) -> Item {
    key(scope, format!("CREDITREF#{}#{reference}", kind.as_str()))
}

/// The tenant's new balance, written only if it still is `seen`
/// ([`BALANCE_CHANGED`]).
fn balance_update(scope: &TenantScope, seen: Option<i64>, after: i64) -> UpdateBuilder {
    let update = UpdateBuilder::default()
        .set_key(Some(tenant_key(scope)))
        .update_expression("SET credit_balance = :after")
        .expression_attribute_values(":after", n(after));
    match seen {
        Some(balance) => update
            .condition_expression("attribute_exists(PK) AND credit_balance = :seen")
            .expression_attribute_values(":seen", n(balance)),
        None => update.condition_expression("attribute_exists(PK) AND attribute_not_exists(credit_balance)"),
    }
}

/// A few milliseconds, more after each lost race, so contenders spread out.
async fn back_off(attempt: usize) {
    let ceiling = 2 + 2 * attempt.min(10) as u64;
    let ms = rand::thread_rng().gen_range(1..=ceiling);
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

/// The event that announces a change (`Event::CreditsAdded`,
/// `Event::CreditsSpent`); a try-on's spends and refunds have none of their
/// own (the try-on's events tell).
type Announce = fn(CreditsChanged) -> Event;

/// One change of the balance, as the public entry points describe it.
struct CreditChange<'a> {
    kind: CreditKind,
    amount: i64,
    reason: &'a str,
    reference: Option<&'a str>,
    /// The caller's writes, committed with the change or not at all.
    with: Tx,
    announce: Option<Announce>,
}

impl Store {
    /// The tenant's balance (0 before its first grant); 404 for no tenant.
    pub async fn credit_balance(&self, scope: &TenantScope) -> AppResult<i64> {
        Ok(self.read_balance(scope).await?.ok_or_else(|| AppError::not_found("tenant"))?.unwrap_or(0))
    }

    /// `None`: no such tenant; `Some(None)`: a tenant without a balance yet.
    async fn read_balance(&self, scope: &TenantScope) -> AppResult<Option<Option<i64>>> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(tenant_key(scope)))
            .projection_expression("PK, credit_balance")
            .consistent_read(true)
            .send()
            .await?;
        Ok(output.item.map(|item| item.contains_key("credit_balance").then(|| number_attr(&item, "credit_balance"))))
    }

    /// Adds credits (a platform admin's grant), with `credits.added`. 404 for
    /// no tenant.
    pub async fn grant_credits(
        &self,
        scope: &TenantScope,
        amount: i64,
        reason: &str,
        audit: &AuditContext,
    ) -> AppResult<LedgerEntry> {
        let change = CreditChange {
            kind: CreditKind::Grant,
            amount,
            reason,
            reference: None,
            with: Tx::new(),
            announce: Some(Event::CreditsAdded),
        };
        Ok(self.change_credits(scope, change, audit).await?)
    }

    /// Takes `amount` credits and answers the ledger entry (with the balance
    /// after), or [`CreditError::Insufficient`] when the balance is below
    /// `amount` (nothing changes). With a `reference`, a repeat changes
    /// nothing and answers the first spend's entry. A spend of its own (the
    /// metered charge, `POST /v1/credits/charges`) is announced by
    /// `credits.spent` in its transaction.
    pub async fn spend_credits(
        &self,
        scope: &TenantScope,
        amount: i64,
        reason: &str,
        reference: Option<&str>,
        audit: &AuditContext,
    ) -> Result<LedgerEntry, CreditError> {
        let change = CreditChange {
            kind: CreditKind::Spend,
            amount,
            reason,
            reference,
            with: Tx::new(),
            announce: Some(Event::CreditsSpent),
        };
        self.change_credits(scope, change, audit).await
    }

    /// A spend made in ONE transaction with `with` (the caller's writes,
    /// their conditions named, their audit entries and events included):
    /// both happen or neither. The try-on pipeline creates its session this
    /// way. A failed condition of `with` is
    /// [`CreditError::PreconditionFailed`] with its name; a lost race retries
    /// the whole (with a copy of `with`). Emits no `credits.spent`: the
    /// caller's change has events of its own.
    pub async fn spend_credits_with(
        &self,
        scope: &TenantScope,
        amount: i64,
        reason: &str,
        reference: &str,
        audit: &AuditContext,
        with: Tx,
    ) -> Result<LedgerEntry, CreditError> {
        let reference = Some(reference);
        let change = CreditChange { kind: CreditKind::Spend, amount, reason, reference, with, announce: None };
        self.change_credits(scope, change, audit).await
    }

    /// A refund made in one transaction with `with` (an item leaving its
    /// state, say), once per `reference`; failures as for
    /// [`Self::spend_credits_with`]. The answer tells whether this call made
    /// it: concurrent callers all get the entry, only one made the change
    /// (and committed `with`).
    pub async fn refund_credits_with(
        &self,
        scope: &TenantScope,
        amount: i64,
        reason: &str,
        reference: &str,
        audit: &AuditContext,
        with: Tx,
    ) -> Result<Referenced, CreditError> {
        let reference = Some(reference);
        let change = CreditChange { kind: CreditKind::Refund, amount, reason, reference, with, announce: None };
        self.make_credit_change(scope, change, audit).await
    }

    /// Gives `amount` credits back, once per `reference` (a repeat, even a
    /// concurrent one, changes nothing and answers the first refund's entry).
    pub async fn refund_credits(
        &self,
        scope: &TenantScope,
        amount: i64,
        reason: &str,
        reference: &str,
        audit: &AuditContext,
    ) -> AppResult<LedgerEntry> {
        Ok(self.refund_credits_with(scope, amount, reason, reference, audit, Tx::new()).await?.entry)
    }

    async fn change_credits(
        &self,
        scope: &TenantScope,
        change: CreditChange<'_>,
        audit: &AuditContext,
    ) -> Result<LedgerEntry, CreditError> {
        Ok(self.make_credit_change(scope, change, audit).await?.entry)
    }

    async fn make_credit_change(
        &self,
        scope: &TenantScope,
        change: CreditChange<'_>,
        audit: &AuditContext,
    ) -> Result<Referenced, CreditError> {
        let CreditChange { kind, amount, reason, reference, with, announce } = change;
        check_amount(amount)?;
        if reference.is_some_and(|r| r.is_empty() || r.len() > 512) {
            return Err(AppError::invalid_field("reference", "must have 1 to 512 characters").into());
        }
        // Also the 404 for an unknown tenant.
        let retention = self.audit_retention(scope).await?;
        if let Some(reference) = reference
            && let Some(earlier) = self.entry_for_reference(scope, kind, reference).await?
        {
            return Ok(Referenced::earlier(earlier));
        }
        for attempt in 0..MAX_ATTEMPTS {
            let seen = self.read_balance(scope).await?.ok_or_else(|| AppError::not_found("tenant"))?;
            let balance = seen.unwrap_or(0);
            let after = match next_balance(balance, kind, amount) {
                Ok(after) => after,
                Err(refused @ CreditError::Insufficient { .. }) => {
                    // A concurrent call with this reference may have spent it.
                    if let Some(reference) = reference
                        && let Some(earlier) = self.entry_for_reference(scope, kind, reference).await?
                    {
                        return Ok(Referenced::earlier(earlier));
                    }
                    return Err(refused);
                }
                Err(other) => return Err(other),
            };
            let entry = LedgerEntry {
                id: Uuid::now_v7(),
                tenant_id: TenantId(scope.tenant_id()),
                amount: kind.signed(amount),
                kind,
                reason: reason.to_owned(),
                reference: reference.map(str::to_owned),
                balance_after: after,
                actor: audit.actor.clone(),
                created_at: crate::domain::now(),
            };
            // The caller's writes first: their failure is the answer.
            let mut tx = with.clone();
            if let Some(reference) = reference {
                let mut marker = reference_key(scope, kind, reference);
                marker.insert("entry_id".into(), s(entry.id.to_string()));
                marker.insert("balance_after".into(), n(after));
                tx.put_new(marker, REFERENCE_USED);
            }
            tx.update(balance_update(scope, seen, after), Some(BALANCE_CHANGED));
            let mut item = to_item(&entry)?;
            item.extend(entry_key(scope, entry.id));
            tx.put_new(item, Cond::UNIQUE_ID);
            let recorded = Change {
                action: kind.as_str(),
                resource_type: CREDITS_RESOURCE,
                resource_id: entry.id.to_string(),
                old_values: json!({ "balance": balance }),
                new_values: json!({
                    "balance": after, "amount": entry.amount, "reason": reason, "reference": reference,
                }),
            };
            tx.audit(scope, audit, recorded, retention);
            if let Some(announce) = announce {
                tx.emit(scope, announce(event_payload(&entry)));
            }
            let Err(err) = tx.commit(self).await else { return Ok(Referenced { entry, made_by_this_call: true }) };
            match lost(err) {
                Lost::ReferenceUsed => {
                    let reference = reference.unwrap_or_default();
                    return self
                        .entry_for_reference(scope, kind, reference)
                        .await?
                        .map(Referenced::earlier)
                        .ok_or_else(|| {
                            AppError::internal(anyhow::anyhow!("credit reference marker without its entry")).into()
                        });
                }
                Lost::Race => back_off(attempt).await,
                Lost::Failed(err) => return Err(err),
            }
        }
        Err(AppError::conflict("the credit balance is being changed by many requests; try again").into())
    }

    /// The entry an earlier change with this reference wrote, if there was one.
    async fn entry_for_reference(
        &self,
        scope: &TenantScope,
        kind: CreditKind,
        reference: &str,
    ) -> AppResult<Option<LedgerEntry>> {
        let Some(marker) = self.get_item(reference_key(scope, kind, reference)).await? else {
            return Ok(None);
        };
        let Some(entry_id) = marker.get("entry_id").and_then(|v| v.as_s().ok()) else {
            return Ok(None);
        };
        let entry_id = Uuid::parse_str(entry_id).map_err(AppError::internal)?;
        self.get_as(entry_key(scope, entry_id)).await
    }

    /// The ledger, newest first, optionally only entries of one `kind`.
    pub async fn credit_ledger(
        &self,
        scope: &TenantScope,
        kind: Option<CreditKind>,
        page: &PageRequest,
    ) -> AppResult<(Vec<LedgerEntry>, Option<String>)> {
        let query = self.prefix_query(scope, ENTRY_PREFIX).scan_index_forward(false);
        let query = super::filter_equal(query, &[("kind", kind.map(|k| s(k.as_str())))], &[]);
        let context = format!("credits|{}|{}", scope.pk(), kind.map_or("", CreditKind::as_str));
        let (items, cursor) = self.query_page(query, page, &context, &["PK", "SK"]).await?;
        let entries: Vec<LedgerEntry> = super::decode_listed(items);
        Ok((entries, cursor))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spend_never_takes_the_balance_below_zero() {
        assert_eq!(next_balance(5, CreditKind::Spend, 5).ok(), Some(0));
        assert_eq!(next_balance(5, CreditKind::Spend, 2).ok(), Some(3));
        match next_balance(1, CreditKind::Spend, 2) {
            Err(CreditError::Insufficient { balance, cost }) => assert_eq!((balance, cost), (1, 2)),
            other => panic!("expected insufficient, got {other:?}"),
        }
    }

    #[test]
    fn grants_and_refunds_add_and_amounts_must_be_positive() {
        assert_eq!(next_balance(0, CreditKind::Grant, 37).ok(), Some(37));
        assert_eq!(next_balance(3, CreditKind::Refund, 1).ok(), Some(4));
        for kind in [CreditKind::Grant, CreditKind::Spend, CreditKind::Refund] {
            for amount in [0, -1] {
                match next_balance(10, kind, amount) {
                    Err(CreditError::Other(e)) => assert_eq!(e.code(), "validation_failed"),
                    other => panic!("expected a validation error, got {other:?}"),
                }
            }
        }
        assert!(matches!(next_balance(i64::MAX, CreditKind::Grant, 1), Err(CreditError::Other(_))));
    }

    #[test]
    fn spends_are_recorded_negative() {
        assert_eq!(CreditKind::Spend.signed(3), -3);
        assert_eq!(CreditKind::Grant.signed(3), 3);
        assert_eq!(CreditKind::Refund.signed(3), 3);
    }

    #[test]
    fn a_lost_transaction_tells_a_used_reference_from_a_race_and_from_the_callers_failure() {
        assert!(matches!(lost(TxError::Condition(REFERENCE_USED)), Lost::ReferenceUsed));
        assert!(matches!(lost(TxError::Condition(BALANCE_CHANGED)), Lost::Race));
        assert!(matches!(lost(TxError::Conflict), Lost::Race));
        const ITEM_MOVED: Cond = Cond("item_moved");
        assert!(matches!(
            lost(TxError::Condition(ITEM_MOVED)),
            Lost::Failed(CreditError::PreconditionFailed(ITEM_MOVED))
        ));
        let other = lost(TxError::Store(AppError::internal(anyhow::anyhow!("boom"))));
        assert!(matches!(other, Lost::Failed(CreditError::Other(_))));
    }

    #[test]
    fn credit_events_carry_the_positive_amount_and_the_balance_after() {
        let entry = LedgerEntry {
            id: Uuid::nil(),
            tenant_id: TenantId(Uuid::nil()),
            amount: -3,
            kind: CreditKind::Spend,
            reason: "render".into(),
            reference: Some("job-1".into()),
            balance_after: 7,
            actor: AuditContext::system("test").actor,
            created_at: chrono::DateTime::UNIX_EPOCH,
        };
        let payload = event_payload(&entry);
        assert_eq!((payload.amount, payload.balance), (3, 7));
        assert_eq!(payload.reference.as_deref(), Some("job-1"));
        assert_eq!(payload.actor["type"], "system");
    }

    #[test]
    fn the_insufficient_refusal_is_a_402_with_balance_and_cost() {
        let err: AppError = CreditError::Insufficient { balance: 0, cost: 1 }.into();
        assert_eq!(err.status(), StatusCode::PAYMENT_REQUIRED);
        assert_eq!(err.code(), "insufficient_credits");
        match err {
            AppError::Api { details, .. } => assert_eq!(details, json!({"balance": 0, "cost": 1})),
            AppError::Internal(_) => panic!("expected an API error"),
        }
    }

    #[test]
    fn ledger_keys_do_not_share_a_prefix_with_reference_markers() {
        let scope = crate::auth::proofs::NewTenant::scope(Uuid::nil());
        let marker = reference_key(&scope, CreditKind::Refund, "session-1");
        assert_eq!(marker["SK"].as_s().ok().map(String::as_str), Some("CREDITREF#refund#session-1"));
        assert!(!marker["SK"].as_s().is_ok_and(|sk| sk.starts_with(ENTRY_PREFIX)));
    }
}
