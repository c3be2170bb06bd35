//! Billing and metering (seed 000 scenarios 1 and 4), in the tenant's
//! partition.
//!
//! | item | PK | SK | notes |
//! |---|---|---|---|
//! | billing account | `T#<tenant>#` | `BILLING#SETTINGS#ACCOUNT` | |
//! | subscription | `T#<tenant>#` | `BILLING#SETTINGS#SUBSCRIPTION` | its plan and limits are mirrored onto the tenant item in the same transaction |
//! | metered component | `T#<tenant>#` | `BILLING#SETTINGS#COMPONENT#<name>` | tiers, mode |
//! | period totals | `T#<tenant>#` | `BILLING#PERIOD#<YYYY-MM>` | `q_<metric>` (ADD), `storage_bytes` (last sample) |
//! | hour rollup | `T#<tenant>#` | `USAGE#HOUR#<YYYY-MM-DDTHH>` | `q_<metric>` (ADD); TTL 400 days |
//! | usage event | `T#<tenant>#` | `USAGE#EVENT#<event id>` | dedupe; `status` recorded / voided; TTL 40 days |
//! | meter checkpoint | `T#<tenant>#` | `BILLING#METER` | `seq`: the last stream sequence number applied (zero-padded) |
//! | storage sample marker | `T#<tenant>#` | `BILLING#SAMPLE#<YYYY-MM-DDTHH>` | one storage sample per hour; TTL 40 days |
//! | alert marker | `T#<tenant>#` | `BILLING#ALERT#<YYYY-MM>#<limit>#<80 or 100>` | one alert per limit, threshold and period |
//! | period close marker | `T#<tenant>#` | `BILLING#CLOSED#<YYYY-MM>` | the period close drafted its invoice |
//! | invoice | `T#<tenant>#` | `INVOICE#<uuidv7>` | |
//! | invoice counter | `T#<tenant>#` | `BILLING#INVOICE_COUNTER#<YYYY>` | `last_number` |
//!
//! The current period's totals, the account, the subscription and the
//! components sort together: `GET /v1/billing/usage` is one Query,
//! `SK BETWEEN BILLING#PERIOD#<this month> AND BILLING#SETTINGS#~` (older
//! periods sort before it; `BILLING#SAMPLE#...` and `BILLING#METER` sort
//! between and are skipped by the decoder, small and few).
//!
//! Quantities are DynamoDB numbers (exact decimals, up to 38 digits), so
//! `ADD` sums them exactly; money is stored as decimal strings.
//!
//! | condition | fails when | answer |
//! |---|---|---|
//! | [`ACCOUNT_EXISTS`] | the billing account was already created | 409 |
//! | [`SETTINGS_CHANGED`] | the account or subscription changed since it was read | read again |
//! | [`EVENT_RECORDED`] | a usage event with this id exists | the record is a duplicate: counted once |
//! | [`COMPONENT_UNKNOWN`] | a usage record names a metric that is no component | 422 naming `metric_type` |
//! | [`EVENT_STATE`] | the usage event is not `recorded` (already voided) or changed | 409 |
//! | [`METER_APPLIED`] | a stream batch was already applied (a redelivery) | skipped |
//! | [`COUNTER_MOVED`] | another finalization took the number read | read again |
//! | [`INVOICE_STATE`] | the invoice is not in the state the change needs | read again / 409 |
//! | [`ALREADY_MARKED`] | an alert, sample or close marker exists | nothing to do |

use std::collections::{BTreeMap, BTreeSet, HashMap};

use aws_sdk_dynamodb::types::{AttributeValue, Update, builders::UpdateBuilder};
use chrono::{DateTime, Datelike, Utc};
use rust_decimal::Decimal;
use uuid::Uuid;

use super::{
    Item, PageRequest, Store, from_item, item_key as key, n, s,
    tenants::tenant_key,
    to_item,
    tx::{Cond, Tx, TxError},
};
use crate::{
    auth::TenantScope,
    domain::{
        audit::{AuditContext, Change},
        billing::{
            account::BillingAccount,
            component::MeteredComponent,
            invoice::{Invoice, InvoiceInput, InvoiceRequest, InvoiceStatus, compute_invoice},
            subscription::Subscription,
            usage::{UsageRecord, hour_of, period_of},
        },
    },
    error::{AppError, AppResult},
    events::{
        Event,
        catalogue::{InvoiceChanged, UsageThresholdReached},
    },
};

pub const ACCOUNT_EXISTS: Cond = Cond("billing_account_exists");
pub const SETTINGS_CHANGED: Cond = Cond("billing_settings_changed");
pub const EVENT_RECORDED: Cond = Cond("usage_event_recorded");
pub const COMPONENT_UNKNOWN: Cond = Cond("metered_component_unknown");
pub const EVENT_STATE: Cond = Cond("usage_event_state");
pub const METER_APPLIED: Cond = Cond("meter_batch_applied");
pub const COUNTER_MOVED: Cond = Cond("invoice_counter_moved");
pub const INVOICE_STATE: Cond = Cond("invoice_state");
pub const ALREADY_MARKED: Cond = Cond("already_marked");

/// Audit `resource_type`s.
pub const BILLING_ACCOUNT: &str = "billing_account";
pub const SUBSCRIPTION: &str = "subscription";
pub const METERED_COMPONENT: &str = "metered_component";
pub const USAGE_EVENT: &str = "usage_event";
pub const INVOICE: &str = "invoice";

const ACCOUNT_SK: &str = "BILLING#SETTINGS#ACCOUNT";
const SUBSCRIPTION_SK: &str = "BILLING#SETTINGS#SUBSCRIPTION";
const COMPONENT_PREFIX: &str = "BILLING#SETTINGS#COMPONENT#";
const PERIOD_PREFIX: &str = "BILLING#PERIOD#";
const HOUR_PREFIX: &str = "USAGE#HOUR#";
const EVENT_PREFIX: &str = "USAGE#EVENT#";
const METER_SK: &str = "BILLING#METER";
const INVOICE_PREFIX: &str = "INVOICE#";
/// A quantity attribute of a rollup item: `q_<metric>`.
pub const QUANTITY_PREFIX: &str = "q_";

/// Hour rollups feed analytics over 90 days and month-over-month trends;
/// kept 400 days so a year's comparison stays possible.
const HOUR_RETENTION_SECONDS: i64 = 400 * 86_400;
/// A usage event may arrive 35 days late; its dedupe record outlives that.
const EVENT_RETENTION_SECONDS: i64 = 40 * 86_400;
/// The items one usage transaction may hold: DynamoDB's 100, less one for
/// an `Idempotency-Key` record riding in it (`store::idempotency`).
const USAGE_TX_ITEMS: usize = super::tx::MAX_TX_ITEMS - 1;
/// Usage posts of one tenant all add to its current hour and period: under
/// concurrency their transactions conflict and retry (each conflict means
/// another post committed).
const USAGE_RETRIES: usize = 50;
/// How often a read-then-conditional-write is retried after losing a race.
const OPTIMISTIC_RETRIES: usize = 5;
/// Concurrent finalizations contend on one counter: each lost race means
/// another number was taken, so this bounds the wait, not the correctness.
const COUNTER_RETRIES: usize = 200;

fn component_sk(name: &str) -> String {
    format!("{COMPONENT_PREFIX}{name}")
}

fn period_sk(period: &str) -> String {
    format!("{PERIOD_PREFIX}{period}")
}

fn hour_sk(hour: &str) -> String {
    format!("{HOUR_PREFIX}{hour}")
}

fn event_sk(event_id: &str) -> String {
    format!("{EVENT_PREFIX}{event_id}")
}

fn closed_sk(period: &str) -> String {
    format!("BILLING#CLOSED#{period}")
}

/// A key with more attributes (markers).
fn item_with<const N: usize>(mut key: Item, attributes: [(&str, AttributeValue); N]) -> Item {
    key.extend(attributes.into_iter().map(|(name, value)| (name.to_owned(), value)));
    key
}

fn invoice_sk(id: Uuid) -> String {
    format!("{INVOICE_PREFIX}{id}")
}

fn decimal_attr(value: Decimal) -> AttributeValue {
    AttributeValue::N(value.normalize().to_string())
}

/// The `q_<metric>` quantities of a rollup item.
pub fn quantities_of(item: &Item) -> BTreeMap<String, Decimal> {
    item.iter()
        .filter_map(|(name, value)| {
            let metric = name.strip_prefix(QUANTITY_PREFIX)?;
            let number = value.as_n().ok()?.parse::<Decimal>().ok()?;
            Some((metric.to_owned(), number))
        })
        .collect()
}

/// The period's last storage sample, in bytes.
fn storage_bytes_of(item: &Item) -> Option<i64> {
    item.get("storage_bytes").and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok())
}

fn string_attr<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name).and_then(|v| v.as_s().ok()).map(String::as_str)
}

/// An `ADD` of each metric's quantity on one rollup item (hour or period),
/// with a TTL for hours.
fn rollup_update(key: Item, quantities: &BTreeMap<String, Decimal>, expires_at: Option<i64>) -> UpdateBuilder {
    let mut update = Update::builder().set_key(Some(key));
    let mut adds = Vec::with_capacity(quantities.len());
    for (i, (metric, quantity)) in quantities.iter().enumerate() {
        adds.push(format!("#q{i} :q{i}"));
        update = update
            .expression_attribute_names(format!("#q{i}"), format!("{QUANTITY_PREFIX}{metric}"))
            .expression_attribute_values(format!(":q{i}"), decimal_attr(*quantity));
    }
    let mut expression = format!("ADD {}", adds.join(", "));
    if let Some(expires_at) = expires_at {
        expression.push_str(" SET expires_at = :ttl");
        update = update.expression_attribute_values(":ttl", n(expires_at));
    }
    update.update_expression(expression)
}

/// Quantities to add, per hour and per period, summed so each rollup item
/// is written once per transaction (DynamoDB refuses two writes of one item).
#[derive(Debug, Default, Clone)]
pub struct RollupDeltas {
    pub hours: BTreeMap<String, BTreeMap<String, Decimal>>,
    pub periods: BTreeMap<String, BTreeMap<String, Decimal>>,
}

impl RollupDeltas {
    pub fn add(&mut self, metric: &str, quantity: Decimal, at: DateTime<Utc>) {
        if quantity.is_zero() {
            return;
        }
        *self.hours.entry(hour_of(at)).or_default().entry(metric.to_owned()).or_default() += quantity;
        *self.periods.entry(period_of(at)).or_default().entry(metric.to_owned()).or_default() += quantity;
    }

    pub fn items(&self) -> usize {
        self.hours.len() + self.periods.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hours.is_empty() && self.periods.is_empty()
    }

    /// The rollup writes, added to `tx`.
    pub fn write(&self, tx: &mut Tx, scope: &TenantScope) {
        let now = Utc::now().timestamp();
        for (hour, quantities) in &self.hours {
            tx.update(rollup_update(key(scope, hour_sk(hour)), quantities, Some(now + HOUR_RETENTION_SECONDS)), None);
        }
        for (period, quantities) in &self.periods {
            tx.update(rollup_update(key(scope, period_sk(period)), quantities, None), None);
        }
    }
}

/// Adds to `tx` the rollup writes of `quantity` of `metric` at `at`: how
/// other changes meter what they do in their own transaction (a rendered
/// try-on item counts one `ai_requests`).
pub fn meter_in(tx: &mut Tx, scope: &TenantScope, metric: &str, quantity: Decimal, at: DateTime<Utc>) {
    let mut deltas = RollupDeltas::default();
    deltas.add(metric, quantity, at);
    deltas.write(tx, scope);
}

/// A check, for a transaction, that this month's `metric` (as the rollup
/// has it) is at most `room`; an absent period item or figure counts 0.
pub(crate) fn period_at_most(
    scope: &TenantScope,
    metric: &str,
    room: i64,
    at: DateTime<Utc>,
) -> aws_sdk_dynamodb::types::builders::ConditionCheckBuilder {
    aws_sdk_dynamodb::types::ConditionCheck::builder()
        .set_key(Some(key(scope, period_sk(&period_of(at)))))
        .condition_expression("attribute_not_exists(#q) OR #q <= :room")
        .expression_attribute_names("#q", format!("{QUANTITY_PREFIX}{metric}"))
        .expression_attribute_values(":room", super::n(room))
}

/// Splits a usage post into runs of records whose transaction fits
/// [`USAGE_TX_ITEMS`]: each record's event item, plus one rollup per
/// distinct hour and period and one check per distinct component among
/// them. Counting events alone is not enough: a backfill of 80 events in
/// 80 different hours needs 80 hour rollups too.
fn usage_transactions(records: &[UsageRecord]) -> Vec<&[UsageRecord]> {
    let mut chunks = Vec::new();
    let (mut start, mut hours, mut periods, mut checks) =
        (0, BTreeSet::<String>::new(), BTreeSet::<String>::new(), BTreeSet::<&str>::new());
    for (index, record) in records.iter().enumerate() {
        let hour = hour_of(record.at);
        let period = period_of(record.at);
        let checked = !crate::domain::billing::component::BUILT_IN_METERS.contains(&record.metric.as_str());
        let added = 1
            + usize::from(!hours.contains(&hour))
            + usize::from(!periods.contains(&period))
            + usize::from(checked && !checks.contains(record.metric.as_str()));
        let events = index - start;
        if events > 0 && events + hours.len() + periods.len() + checks.len() + added > USAGE_TX_ITEMS {
            chunks.push(&records[start..index]);
            (start, hours, periods, checks) = (index, BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
        }
        hours.insert(hour);
        periods.insert(period);
        if checked {
            checks.insert(record.metric.as_str());
        }
    }
    if start < records.len() {
        chunks.push(&records[start..]);
    }
    chunks
}

/// What [`Store::record_usage`] calls before committing (its docs).
pub type BeforeCommit<'a> = dyn Fn(&[RecordedUsage]) -> AppResult<()> + Sync + 'a;

/// What one usage record came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedUsage {
    pub event_id: String,
    /// An event with this id was already recorded: this one counted nothing.
    pub duplicate: bool,
}

/// What `GET /v1/billing/usage` reads in its one Query.
#[derive(Debug, Default)]
pub struct BillingSnapshot {
    pub period_totals: BTreeMap<String, Decimal>,
    pub storage_bytes: Option<i64>,
    pub account: Option<BillingAccount>,
    pub subscription: Option<Subscription>,
    pub components: Vec<MeteredComponent>,
}

/// A finalized invoice as the finalization left it.
#[derive(Debug)]
pub struct Finalized {
    pub invoice: Invoice,
    /// False when an earlier call had finalized it (the answer is the same).
    pub by_this_call: bool,
}

impl Store {
    // ----- account ---------------------------------------------------------

    pub async fn get_billing_account(&self, scope: &TenantScope) -> AppResult<Option<BillingAccount>> {
        self.get_as(key(scope, ACCOUNT_SK)).await
    }

    /// Creates the account; `false` when it exists already. The tenant's
    /// low-balance threshold is copied onto the tenant item (where the
    /// balance lives) so the meter sees both in one stream record.
    pub async fn create_billing_account(
        &self,
        scope: &TenantScope,
        account: &BillingAccount,
        audit: &AuditContext,
    ) -> AppResult<bool> {
        let mut item = to_item(account)?;
        item.extend(key(scope, ACCOUNT_SK));
        let mut tx = Tx::new();
        tx.put_new(item, ACCOUNT_EXISTS);
        low_balance_threshold(&mut tx, scope, account.credits_low_balance_threshold);
        tx.audit(
            scope,
            audit,
            Change::created(BILLING_ACCOUNT, scope.tenant_id(), account),
            self.audit_retention(scope).await?,
        );
        match tx.commit(self).await {
            Ok(()) => Ok(true),
            Err(TxError::Condition(ACCOUNT_EXISTS)) => Ok(false),
            Err(other) => Err(other.into_app_error(BILLING_ACCOUNT)),
        }
    }

    /// Applies `change` to the stored account under a condition on the
    /// `updated_at` read; `None` when there is no account.
    pub async fn update_billing_account<F>(
        &self,
        scope: &TenantScope,
        change: F,
        audit: &AuditContext,
    ) -> AppResult<Option<BillingAccount>>
    where
        F: Fn(&BillingAccount) -> AppResult<BillingAccount>,
    {
        for _ in 0..OPTIMISTIC_RETRIES {
            let Some(item) = self.get_item(key(scope, ACCOUNT_SK)).await? else { return Ok(None) };
            let seen = string_attr(&item, "updated_at").unwrap_or_default().to_owned();
            let old: BillingAccount = from_item(item)?;
            let new = change(&old)?;
            let mut item = to_item(&new)?;
            item.extend(key(scope, ACCOUNT_SK));
            let mut tx = Tx::new();
            tx.put_if(item, "updated_at = :seen", HashMap::from([(":seen".to_owned(), s(seen))]), SETTINGS_CHANGED);
            low_balance_threshold(&mut tx, scope, new.credits_low_balance_threshold);
            tx.audit(
                scope,
                audit,
                Change::updated(BILLING_ACCOUNT, scope.tenant_id(), &old, &new),
                self.audit_retention(scope).await?,
            );
            match tx.commit(self).await {
                Ok(()) => return Ok(Some(new)),
                Err(TxError::Condition(SETTINGS_CHANGED) | TxError::Conflict) => continue,
                Err(other) => return Err(other.into_app_error(BILLING_ACCOUNT)),
            }
        }
        Err(AppError::conflict("the billing account is being changed by another request; try again"))
    }

    // ----- subscription ------------------------------------------------------

    pub async fn get_subscription(&self, scope: &TenantScope) -> AppResult<Option<Subscription>> {
        self.get_as(key(scope, SUBSCRIPTION_SK)).await
    }

    /// Replaces the tenant's subscription, and in the same transaction makes
    /// its plan and limits the tenant's (the quotas enforce them at once).
    /// `build` makes the new subscription from the one read (if any).
    pub async fn put_subscription<F>(
        &self,
        scope: &TenantScope,
        build: F,
        audit: &AuditContext,
    ) -> AppResult<Subscription>
    where
        F: Fn(Option<&Subscription>) -> AppResult<Subscription>,
    {
        for _ in 0..OPTIMISTIC_RETRIES {
            let found = self.get_item(key(scope, SUBSCRIPTION_SK)).await?;
            let seen = found.as_ref().and_then(|item| string_attr(item, "updated_at")).map(str::to_owned);
            let old: Option<Subscription> = found.map(from_item).transpose()?;
            let new = build(old.as_ref())?;
            let mut item = to_item(&new)?;
            item.extend(key(scope, SUBSCRIPTION_SK));
            let mut tx = Tx::new();
            match &seen {
                Some(seen) => tx.put_if(
                    item,
                    "updated_at = :seen",
                    HashMap::from([(":seen".to_owned(), s(seen.clone()))]),
                    SETTINGS_CHANGED,
                ),
                None => tx.put_new(item, SETTINGS_CHANGED),
            };
            // The tenant item carries what quotas and rate limits read.
            let mut update = Update::builder().set_key(Some(tenant_key(scope)));
            let mut sets = vec!["#plan = :plan".to_owned(), "updated_at = :now".to_owned()];
            update = update
                .expression_attribute_names("#plan", "plan")
                .expression_attribute_values(":plan", s(new.plan_type.clone()))
                .expression_attribute_values(":now", s(crate::domain::now_rfc3339()));
            let mut removes = Vec::new();
            match new.tenant_custom_limits() {
                Some(limits) => {
                    sets.push("custom_limits = :limits".into());
                    update = update.expression_attribute_values(":limits", super::to_attribute(&limits)?);
                }
                None => removes.push("custom_limits"),
            }
            // Always written: a plan change must also end a contract's seat limit.
            let max_users = new.max_users().unwrap_or_else(|| crate::domain::tenant::default_max_users(&new.plan_type));
            sets.push("max_users = :max_users".into());
            update = update.expression_attribute_values(":max_users", n(max_users));
            let mut expression = format!("SET {}", sets.join(", "));
            if !removes.is_empty() {
                expression.push_str(&format!(" REMOVE {}", removes.join(", ")));
            }
            tx.update(
                update.update_expression(expression).condition_expression("attribute_exists(PK)"),
                Some(super::quota::TENANT_MISSING),
            );
            let retention = self.audit_retention(scope).await?;
            let change = match &old {
                Some(old) => Change::updated(SUBSCRIPTION, scope.tenant_id(), old, &new),
                None => Change::created(SUBSCRIPTION, scope.tenant_id(), &new),
            };
            tx.audit(scope, audit, change, retention);
            tx.emit(
                scope,
                Event::TenantUpdated(crate::events::catalogue::TenantUpdated {
                    tenant_id: scope.tenant_id(),
                    changed_fields: vec!["plan".into(), "custom_limits".into(), "max_users".into()],
                    updated_by: Some(audit.actor.id.clone()),
                }),
            );
            match tx.commit(self).await {
                Ok(()) => {
                    crate::domain::rate_limit::forget_policy(scope.tenant_id());
                    return Ok(new);
                }
                Err(TxError::Condition(SETTINGS_CHANGED) | TxError::Conflict) => continue,
                Err(TxError::Condition(super::quota::TENANT_MISSING)) => return Err(AppError::not_found("tenant")),
                Err(other) => return Err(other.into_app_error(SUBSCRIPTION)),
            }
        }
        Err(AppError::conflict("the subscription is being changed by another request; try again"))
    }

    // ----- components --------------------------------------------------------

    pub async fn list_components(&self, scope: &TenantScope) -> AppResult<Vec<MeteredComponent>> {
        let items = self.query_all_prefix(scope, COMPONENT_PREFIX).await?;
        Ok(super::decode_listed(items))
    }

    /// Creates or replaces each component (by name), all in one transaction
    /// with an audit entry each.
    pub async fn put_components(
        &self,
        scope: &TenantScope,
        components: &[MeteredComponent],
        audit: &AuditContext,
    ) -> AppResult<()> {
        let existing: HashMap<String, MeteredComponent> =
            self.list_components(scope).await?.into_iter().map(|c| (c.name.clone(), c)).collect();
        let retention = self.audit_retention(scope).await?;
        let mut tx = Tx::new();
        for component in components {
            let mut item = to_item(component)?;
            item.extend(key(scope, component_sk(&component.name)));
            tx.put(item);
            let change = match existing.get(&component.name) {
                Some(old) => Change::updated(METERED_COMPONENT, &component.name, old, component),
                None => Change::created(METERED_COMPONENT, &component.name, component),
            };
            tx.audit(scope, audit, change, retention);
        }
        tx.commit(self).await.map_err(|e| e.into_app_error(METERED_COMPONENT))
    }

    // ----- usage ---------------------------------------------------------------

    /// Records usage events, each at most once by its id, and adds their
    /// quantities to their hour and period: one transaction for as many
    /// events as fit DynamoDB's 100 items with their rollups and checks
    /// (`usage_transactions`: 97 events of built-in meters in one hour, and
    /// never fewer than 32), so
    /// such a post is all or nothing and a longer batch that failed half-way
    /// completes on a retry without counting anything twice. A record whose id exists answers
    /// `duplicate: true`.
    ///
    /// `before_commit` is handed the outcomes each commit attempt will have
    /// if it commits, right before it, when the post is one transaction: the
    /// handler prepares its answer there, for an `Idempotency-Key` record
    /// that rides in the transaction (`shared::idempotency`).
    pub async fn record_usage(
        &self,
        scope: &TenantScope,
        records: &[UsageRecord],
        before_commit: &BeforeCommit<'_>,
    ) -> AppResult<Vec<RecordedUsage>> {
        let chunks = usage_transactions(records);
        let one_transaction = chunks.len() == 1;
        let mut outcomes = Vec::with_capacity(records.len());
        for chunk in chunks {
            outcomes.extend(self.record_usage_chunk(scope, chunk, one_transaction.then_some(before_commit)).await?);
        }
        Ok(outcomes)
    }

    async fn record_usage_chunk(
        &self,
        scope: &TenantScope,
        records: &[UsageRecord],
        before_commit: Option<&BeforeCommit<'_>>,
    ) -> AppResult<Vec<RecordedUsage>> {
        let mut known_duplicates: Vec<String> = Vec::new();
        for attempt in 0..USAGE_RETRIES {
            let fresh: Vec<&UsageRecord> = records.iter().filter(|r| !known_duplicates.contains(&r.event_id)).collect();
            let answer = |duplicates: &[String]| {
                records
                    .iter()
                    .map(|r| RecordedUsage {
                        event_id: r.event_id.clone(),
                        duplicate: duplicates.contains(&r.event_id),
                    })
                    .collect::<Vec<_>>()
            };
            if fresh.is_empty() {
                return Ok(answer(&known_duplicates));
            }
            let mut tx = Tx::new();
            let mut deltas = RollupDeltas::default();
            let mut checked = Vec::new();
            let now = Utc::now();
            for record in &fresh {
                let mut item = HashMap::from([
                    ("event_id".to_owned(), s(record.event_id.clone())),
                    ("metric_type".to_owned(), s(record.metric.clone())),
                    ("quantity".to_owned(), decimal_attr(record.quantity)),
                    ("timestamp".to_owned(), s(crate::domain::rfc3339(record.at))),
                    ("reported_at".to_owned(), s(crate::domain::rfc3339(record.reported_at))),
                    ("status".to_owned(), s("recorded")),
                    ("recorded_at".to_owned(), s(crate::domain::rfc3339(now))),
                    ("expires_at".to_owned(), n(now.timestamp() + EVENT_RETENTION_SECONDS)),
                ]);
                if let Some(metadata) = &record.metadata {
                    item.insert("metadata".to_owned(), super::to_attribute(metadata)?);
                }
                item.extend(key(scope, event_sk(&record.event_id)));
                tx.put_new(item, EVENT_RECORDED);
                deltas.add(&record.metric, record.quantity, record.at);
                if !crate::domain::billing::component::BUILT_IN_METERS.contains(&record.metric.as_str())
                    && !checked.contains(&record.metric)
                {
                    checked.push(record.metric.clone());
                    tx.check(
                        aws_sdk_dynamodb::types::ConditionCheck::builder()
                            .set_key(Some(key(scope, component_sk(&record.metric))))
                            .condition_expression("attribute_exists(PK)"),
                        COMPONENT_UNKNOWN,
                    );
                }
            }
            deltas.write(&mut tx, scope);
            if let Some(before_commit) = before_commit {
                before_commit(&answer(&known_duplicates))?;
            }
            match tx.commit(self).await {
                Ok(()) => return Ok(answer(&known_duplicates)),
                Err(TxError::Condition(EVENT_RECORDED)) => {
                    // Which ids exist: one read, then the rest again.
                    let keys = fresh.iter().map(|r| key(scope, event_sk(&r.event_id))).collect();
                    for item in self.batch_get(keys, None, true).await? {
                        if let Some(id) = string_attr(&item, "event_id") {
                            known_duplicates.push(id.to_owned());
                        }
                    }
                }
                Err(TxError::Condition(COMPONENT_UNKNOWN)) => {
                    let names = checked.join(", ");
                    return Err(AppError::invalid_field(
                        "metric_type",
                        format!(
                            "no metered component is named {names}: create it with POST /v1/billing/metered-components, or use api_calls, ai_requests or storage"
                        ),
                    ));
                }
                Err(TxError::Conflict) => {
                    // Concurrent posts of one tenant meet on its hour and
                    // period items: back off a little, with jitter.
                    back_off(attempt).await;
                }
                Err(other) => return Err(other.into_app_error(USAGE_EVENT)),
            }
        }
        Err(AppError::conflict("usage events with these ids are being recorded concurrently; try again"))
    }

    /// Voids a recorded event (`new_quantity` `None`) or amends its quantity:
    /// its hour and period get the difference, in the transaction that
    /// changes the event. `None` when there is no such event.
    pub async fn change_usage_event(
        &self,
        scope: &TenantScope,
        event_id: &str,
        new_quantity: Option<Decimal>,
        reason: Option<&str>,
        audit: &AuditContext,
    ) -> AppResult<Option<UsageEventView>> {
        for _ in 0..OPTIMISTIC_RETRIES {
            let Some(item) = self.get_item(key(scope, event_sk(event_id))).await? else { return Ok(None) };
            let old = UsageEventView::of(&item)?;
            if old.status != "recorded" {
                return Err(AppError::new(
                    http::StatusCode::CONFLICT,
                    "invalid_state",
                    format!("the usage event is {}: it can no longer change", old.status),
                ));
            }
            let at = DateTime::parse_from_rfc3339(&old.timestamp)
                .map_err(|e| AppError::internal(anyhow::anyhow!("stored timestamp: {e}")))?
                .with_timezone(&Utc);
            let mut new = old.clone();
            let delta = match new_quantity {
                Some(quantity) => {
                    new.quantity = quantity;
                    new.amended_at = Some(crate::domain::now_rfc3339());
                    quantity - old.quantity
                }
                None => {
                    new.status = "voided".into();
                    new.voided_at = Some(crate::domain::now_rfc3339());
                    -old.quantity
                }
            };
            new.reason = reason.map(str::to_owned);
            let mut update = Update::builder()
                .set_key(Some(key(scope, event_sk(event_id))))
                .condition_expression("#status = :recorded AND quantity = :seen")
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":recorded", s("recorded"))
                .expression_attribute_values(":seen", decimal_attr(old.quantity))
                .expression_attribute_values(":status", s(new.status.clone()))
                .expression_attribute_values(":quantity", decimal_attr(new.quantity))
                .expression_attribute_values(":reason", s(reason.unwrap_or_default()))
                .expression_attribute_values(":at", s(crate::domain::now_rfc3339()));
            update = update.update_expression(if new_quantity.is_some() {
                "SET #status = :status, quantity = :quantity, reason = :reason, amended_at = :at"
            } else {
                "SET #status = :status, quantity = :quantity, reason = :reason, voided_at = :at"
            });
            let mut tx = Tx::new();
            tx.update(update, Some(EVENT_STATE));
            let mut deltas = RollupDeltas::default();
            deltas.add(&old.metric_type, delta, at);
            deltas.write(&mut tx, scope);
            tx.audit(
                scope,
                audit,
                Change::updated(USAGE_EVENT, event_id, &old, &new),
                self.audit_retention(scope).await?,
            );
            match tx.commit(self).await {
                Ok(()) => return Ok(Some(new)),
                Err(TxError::Condition(EVENT_STATE) | TxError::Conflict) => continue,
                Err(other) => return Err(other.into_app_error(USAGE_EVENT)),
            }
        }
        Err(AppError::conflict("the usage event is being changed by another request; try again"))
    }

    /// The current period's totals with the account, subscription and
    /// components: ONE Query (see the module docs).
    pub async fn billing_snapshot(&self, scope: &TenantScope, period: &str) -> AppResult<BillingSnapshot> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("PK = :pk AND SK BETWEEN :from AND :to")
            .expression_attribute_values(":pk", s(scope.pk()))
            .expression_attribute_values(":from", s(period_sk(period)))
            .expression_attribute_values(":to", s("BILLING#SETTINGS#~"))
            .consistent_read(true);
        let mut snapshot = BillingSnapshot::default();
        for item in self.query_all(query).await? {
            let sk = string_attr(&item, "SK").unwrap_or_default().to_owned();
            if sk == period_sk(period) {
                snapshot.period_totals = quantities_of(&item);
                snapshot.storage_bytes = storage_bytes_of(&item);
            } else if sk == ACCOUNT_SK {
                snapshot.account = Some(from_item(item)?);
            } else if sk == SUBSCRIPTION_SK {
                snapshot.subscription = Some(from_item(item)?);
            } else if sk.starts_with(COMPONENT_PREFIX) {
                snapshot.components.extend(super::decode_listed([item]));
            }
        }
        Ok(snapshot)
    }

    /// Period totals (`YYYY-MM`), with the last storage sample.
    pub async fn period_totals(
        &self,
        scope: &TenantScope,
        period: &str,
    ) -> AppResult<(BTreeMap<String, Decimal>, Option<i64>)> {
        Ok(match self.get_item(key(scope, period_sk(period))).await? {
            Some(item) => (quantities_of(&item), storage_bytes_of(&item)),
            None => (BTreeMap::new(), None),
        })
    }

    /// The hour rollups from `from_hour` to `to_hour` (`YYYY-MM-DDTHH`, both
    /// included), in order: one Query (paged by DynamoDB's 1 MB).
    pub async fn hour_rollups(
        &self,
        scope: &TenantScope,
        from_hour: &str,
        to_hour: &str,
    ) -> AppResult<Vec<(String, BTreeMap<String, Decimal>)>> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("PK = :pk AND SK BETWEEN :from AND :to")
            .expression_attribute_values(":pk", s(scope.pk()))
            .expression_attribute_values(":from", s(hour_sk(from_hour)))
            .expression_attribute_values(":to", s(hour_sk(to_hour)));
        Ok(self
            .query_all(query)
            .await?
            .iter()
            .filter_map(|item| {
                let hour = string_attr(item, "SK")?.strip_prefix(HOUR_PREFIX)?;
                Some((hour.to_owned(), quantities_of(item)))
            })
            .collect())
    }

    // ----- the meter's writes --------------------------------------------------

    /// Applies a stream batch's deltas for one tenant, once: the tenant's
    /// checkpoint moves to `last_seq` under the condition that it is before
    /// `first_seq`. `false` when the batch was applied already.
    pub async fn apply_meter_deltas(
        &self,
        scope: &TenantScope,
        first_seq: &str,
        last_seq: &str,
        deltas: &RollupDeltas,
    ) -> AppResult<bool> {
        for attempt in 0..USAGE_RETRIES {
            let mut tx = Tx::new();
            tx.update(
                Update::builder()
                    .set_key(Some(key(scope, METER_SK)))
                    .update_expression("SET seq = :last")
                    .condition_expression("attribute_not_exists(seq) OR seq < :first")
                    .expression_attribute_values(":last", s(padded_sequence(last_seq)))
                    .expression_attribute_values(":first", s(padded_sequence(first_seq))),
                Some(METER_APPLIED),
            );
            deltas.write(&mut tx, scope);
            match tx.commit(self).await {
                Ok(()) => return Ok(true),
                Err(TxError::Condition(METER_APPLIED)) => return Ok(false),
                // A usage post of the tenant wrote the same period item.
                Err(TxError::Conflict) => {
                    back_off(attempt).await;
                }
                Err(other) => return Err(other.into_app_error("meter")),
            }
        }
        Err(AppError::conflict("the meter kept meeting concurrent usage writes"))
    }

    /// One storage sample per tenant and hour: `gb_hours` added as `storage`
    /// and the bytes kept on the period as the current gauge. `false` when
    /// this hour was sampled already.
    pub async fn record_storage_sample(
        &self,
        scope: &TenantScope,
        hour_start: DateTime<Utc>,
        bytes: i64,
    ) -> AppResult<bool> {
        let hour = hour_of(hour_start);
        let gb_hours = Decimal::from(bytes) / Decimal::from(1_000_000_000_i64);
        let mut tx = Tx::new();
        tx.put_new(
            item_with(
                key(scope, format!("BILLING#SAMPLE#{hour}")),
                [("bytes", n(bytes)), ("expires_at", n(Utc::now().timestamp() + EVENT_RETENTION_SECONDS))],
            ),
            ALREADY_MARKED,
        );
        let mut quantities = BTreeMap::new();
        if !gb_hours.is_zero() {
            quantities.insert("storage".to_owned(), gb_hours);
            tx.update(
                rollup_update(
                    key(scope, hour_sk(&hour)),
                    &quantities,
                    Some(Utc::now().timestamp() + HOUR_RETENTION_SECONDS),
                ),
                None,
            );
        }
        let mut period = Update::builder()
            .set_key(Some(key(scope, period_sk(&period_of(hour_start)))))
            .expression_attribute_values(":bytes", n(bytes))
            .expression_attribute_values(":at", s(crate::domain::rfc3339(hour_start)));
        let mut expression = "SET storage_bytes = :bytes, storage_sampled_at = :at".to_owned();
        if !gb_hours.is_zero() {
            expression.push_str(" ADD #q :q");
            period = period
                .expression_attribute_names("#q", format!("{QUANTITY_PREFIX}storage"))
                .expression_attribute_values(":q", decimal_attr(gb_hours));
        }
        tx.update(period.update_expression(expression), None);
        match tx.commit(self).await {
            Ok(()) => Ok(true),
            Err(TxError::Condition(ALREADY_MARKED)) => Ok(false),
            Err(other) => Err(other.into_app_error("storage sample")),
        }
    }

    /// Tells a limit's crossing once per limit, threshold and period.
    /// `false` when it was told already.
    pub async fn record_threshold(&self, scope: &TenantScope, alert: UsageThresholdReached) -> AppResult<bool> {
        let sk = format!("BILLING#ALERT#{}#{}#{}", alert.period, alert.limit, alert.threshold_percent);
        let marker = [("used", s(alert.used.clone()))];
        let change = Change::created("usage_alert", &sk, &alert);
        self.tell_once(scope, sk, marker, change, Event::UsageThresholdReached(alert)).await
    }

    /// Tells a credit balance's fall below the tenant's threshold once per
    /// crossing (`crossing` identifies it: the stream record's sequence).
    pub async fn record_low_balance(
        &self,
        scope: &TenantScope,
        crossing: &str,
        alert: crate::events::catalogue::CreditsLowBalance,
    ) -> AppResult<bool> {
        let sk = format!("BILLING#ALERT#CREDITS#{}", padded_sequence(crossing));
        let marker = [("expires_at", n(Utc::now().timestamp() + EVENT_RETENTION_SECONDS))];
        let change = Change::created("credits_alert", &sk, &alert);
        self.tell_once(scope, sk, marker, change, Event::CreditsLowBalance(alert)).await
    }

    /// An alert once: its marker (`sk`, with `marker`'s attributes), its
    /// audit entry and its event in one transaction; `false` when the
    /// marker exists (told before).
    async fn tell_once(
        &self,
        scope: &TenantScope,
        sk: String,
        marker: [(&str, AttributeValue); 1],
        change: Change,
        event: Event,
    ) -> AppResult<bool> {
        let mut marker = item_with(key(scope, sk), marker);
        marker.insert("created_at".to_owned(), s(crate::domain::now_rfc3339()));
        let mut tx = Tx::new();
        tx.put_new(marker, ALREADY_MARKED);
        tx.audit(scope, &AuditContext::system("billing-meter"), change, self.audit_retention(scope).await?);
        tx.emit(scope, event);
        match tx.commit(self).await {
            Ok(()) => Ok(true),
            Err(TxError::Condition(ALREADY_MARKED)) => Ok(false),
            Err(other) => Err(other.into_app_error("usage alert")),
        }
    }

    // ----- invoices ------------------------------------------------------------

    /// Stores a new draft and tells `invoice.created`. With `closing` (the
    /// period close's `YYYY-MM`), a marker makes it once per period:
    /// `false` when that period was closed already.
    pub async fn create_invoice(
        &self,
        scope: &TenantScope,
        invoice: &Invoice,
        closing: Option<&str>,
        audit: &AuditContext,
    ) -> AppResult<bool> {
        let mut item = to_item(invoice)?;
        item.extend(key(scope, invoice_sk(invoice.id)));
        let mut tx = Tx::new();
        if let Some(period) = closing {
            tx.put_new(
                item_with(key(scope, closed_sk(period)), [("invoice_id", s(invoice.id.to_string()))]),
                ALREADY_MARKED,
            );
        }
        tx.put_new(item, Cond::UNIQUE_ID);
        tx.audit(
            scope,
            audit,
            Change::created(INVOICE, invoice.id, invoice.view(None)),
            self.audit_retention(scope).await?,
        );
        tx.emit(scope, Event::InvoiceCreated(invoice_changed(invoice)));
        match tx.commit(self).await {
            Ok(()) => Ok(true),
            Err(TxError::Condition(ALREADY_MARKED)) => Ok(false),
            Err(other) => Err(other.into_app_error(INVOICE)),
        }
    }

    /// Drafts the invoice of a billing period from what is stored: the
    /// subscription's base price (else the plan's list price), and for each
    /// metered component the quantity its hourly rollups hold for the
    /// period's days (UTC), priced by its tiers; tax from the account.
    /// `closing` is the period close (once per period: `None` when that
    /// period was closed already).
    pub async fn draft_invoice(
        &self,
        scope: &TenantScope,
        request: &InvoiceRequest,
        closing: Option<&str>,
        audit: &AuditContext,
    ) -> AppResult<Option<Invoice>> {
        let settings = self.billing_snapshot(scope, &period_of(crate::domain::now())).await?;
        self.draft_with(scope, request, closing, audit, settings).await
    }

    /// [`Self::draft_invoice`] with the account, subscription and
    /// components already read (one Query: [`Self::billing_snapshot`]).
    async fn draft_with(
        &self,
        scope: &TenantScope,
        request: &InvoiceRequest,
        closing: Option<&str>,
        audit: &AuditContext,
        settings: BillingSnapshot,
    ) -> AppResult<Option<Invoice>> {
        let BillingSnapshot { account, subscription, components, .. } = settings;
        if let Some(account) = &account {
            request.check_purchase_order(account)?;
        }
        let tenant = self.tenant_for_change(scope).await?;
        let (from, to) = request.hours();
        let mut totals: BTreeMap<String, Decimal> = BTreeMap::new();
        for (_, quantities) in self.hour_rollups(scope, &from, &to).await? {
            for (metric, quantity) in quantities {
                *totals.entry(metric).or_default() += quantity;
            }
        }
        let usage = components
            .iter()
            .map(|component| (component.clone(), totals.get(&component.name).copied().unwrap_or_default()))
            .collect();
        let base_monthly = match &subscription {
            Some(subscription) => Some(subscription.base_monthly_amount),
            None => crate::domain::plans::plan(&tenant.plan).monthly_price.map(Decimal::from),
        };
        let plan_name = subscription.as_ref().map_or_else(|| tenant.plan.clone(), |s| s.plan_type.clone());
        let input = InvoiceInput {
            period_start: request.period_start,
            period_end: request.period_end,
            plan_name,
            base_monthly,
            usage,
            tax_rate_percent: account.as_ref().map(|a| a.tax_rate_percent).unwrap_or_default(),
        };
        let invoice = Invoice::draft(
            scope.tenant_id(),
            request,
            &compute_invoice(&input),
            account.as_ref(),
            crate::domain::now(),
        );
        Ok(self.create_invoice(scope, &invoice, closing, audit).await?.then_some(invoice))
    }

    /// The period close of `period` (`YYYY-MM`) for one tenant: a draft
    /// invoice, once, for a tenant with a subscription or metered
    /// components. `true` when this call drafted it.
    pub async fn close_period(&self, scope: &TenantScope, period: &str, audit: &AuditContext) -> AppResult<bool> {
        if self.get_item(key(scope, closed_sk(period))).await?.is_some() {
            return Ok(false);
        }
        let settings = self.billing_snapshot(scope, &period_of(crate::domain::now())).await?;
        if settings.subscription.is_none() && settings.components.is_empty() {
            return Ok(false);
        }
        let request = InvoiceRequest::for_period(period)?;
        Ok(self.draft_with(scope, &request, Some(period), audit, settings).await?.is_some())
    }

    pub async fn get_invoice(&self, scope: &TenantScope, id: Uuid) -> AppResult<Option<Invoice>> {
        self.get_as(key(scope, invoice_sk(id))).await
    }

    /// The tenant's invoices, newest first, optionally of one status.
    pub async fn list_invoices(
        &self,
        scope: &TenantScope,
        status: Option<InvoiceStatus>,
        page: &PageRequest,
    ) -> AppResult<(Vec<Invoice>, Option<String>)> {
        let query = self.prefix_query(scope, INVOICE_PREFIX).scan_index_forward(false);
        let query = super::filter_equal(query, &[("status", status.map(|v| s(v.as_str())))], &[]);
        let context = format!("invoices|{}|{}", scope.pk(), status.map_or("", InvoiceStatus::as_str));
        self.list_page(query, page, &context).await
    }

    /// Gives a draft the next number of its tenant's year and finalizes it:
    /// the counter and the invoice change in one transaction, so a number is
    /// taken only by an invoice that got it (a retry or a lost race never
    /// burns one). `finalize` makes the finalized invoice from the draft and
    /// its number. An invoice finalized already is answered as it is.
    pub async fn finalize_invoice<F>(
        &self,
        scope: &TenantScope,
        id: Uuid,
        finalize: F,
        audit: &AuditContext,
    ) -> AppResult<Option<Finalized>>
    where
        F: Fn(&Invoice, u32, i64) -> AppResult<Invoice>,
    {
        let year = Utc::now().year();
        let counter_key = key(scope, format!("BILLING#INVOICE_COUNTER#{year}"));
        for attempt in 0..COUNTER_RETRIES {
            let Some(draft) = self.get_invoice(scope, id).await? else { return Ok(None) };
            if draft.status != InvoiceStatus::Draft {
                if draft.number.is_some() && draft.status == InvoiceStatus::Finalized {
                    return Ok(Some(Finalized { invoice: draft, by_this_call: false }));
                }
                return Err(draft.refuse("finalize"));
            }
            let last = match self.get_item(counter_key.clone()).await? {
                Some(item) => super::number_attr(&item, "last_number"),
                None => 0,
            };
            let next = last + 1;
            let finalized = finalize(&draft, year as u32, next)?;
            let mut counter = Update::builder()
                .set_key(Some(counter_key.clone()))
                .update_expression("SET last_number = :next")
                .expression_attribute_values(":next", n(next));
            counter = if last == 0 {
                counter.condition_expression("attribute_not_exists(last_number)")
            } else {
                counter.condition_expression("last_number = :last").expression_attribute_values(":last", n(last))
            };
            let mut item = to_item(&finalized)?;
            item.extend(key(scope, invoice_sk(id)));
            let mut tx = Tx::new();
            tx.update(counter, Some(COUNTER_MOVED));
            tx.put_if(
                item,
                "#status = :draft",
                HashMap::from([(":draft".to_owned(), s(InvoiceStatus::Draft.as_str()))]),
                INVOICE_STATE,
            );
            tx.audit(
                scope,
                audit,
                Change::updated(INVOICE, id, draft.view(None), finalized.view(None)),
                self.audit_retention(scope).await?,
            );
            tx.emit(scope, Event::InvoiceFinalized(invoice_changed(&finalized)));
            match tx.commit(self).await {
                Ok(()) => return Ok(Some(Finalized { invoice: finalized, by_this_call: true })),
                Err(TxError::Condition(COUNTER_MOVED | INVOICE_STATE) | TxError::Conflict) => {
                    // Another finalization took the number (or this invoice
                    // changed): back off a little, with jitter, and re-read.
                    back_off(attempt).await;
                }
                Err(other) => return Err(other.into_app_error(INVOICE)),
            }
        }
        Err(AppError::conflict("too many invoices are being finalized at once; try again"))
    }

    /// Moves an invoice to another status (`void`, `paid`), checked by
    /// `change` against the one read; `None` when there is no such invoice.
    pub async fn change_invoice<F>(
        &self,
        scope: &TenantScope,
        id: Uuid,
        change: F,
        audit: &AuditContext,
    ) -> AppResult<Option<Invoice>>
    where
        F: Fn(&Invoice) -> AppResult<Invoice>,
    {
        for _ in 0..OPTIMISTIC_RETRIES {
            let Some(old) = self.get_invoice(scope, id).await? else { return Ok(None) };
            let new = change(&old)?;
            let mut item = to_item(&new)?;
            item.extend(key(scope, invoice_sk(id)));
            let mut tx = Tx::new();
            tx.put_if(
                item,
                "#status = :seen",
                HashMap::from([(":seen".to_owned(), s(old.status.as_str()))]),
                INVOICE_STATE,
            );
            tx.audit(
                scope,
                audit,
                Change::updated(INVOICE, id, old.view(None), new.view(None)),
                self.audit_retention(scope).await?,
            );
            let event = match new.status {
                InvoiceStatus::Paid => Some(Event::InvoicePaid(invoice_changed(&new))),
                InvoiceStatus::Void => Some(Event::InvoiceVoided(invoice_changed(&new))),
                _ => None,
            };
            if let Some(event) = event {
                tx.emit(scope, event);
            }
            match tx.commit(self).await {
                Ok(()) => return Ok(Some(new)),
                Err(TxError::Condition(INVOICE_STATE) | TxError::Conflict) => continue,
                Err(other) => return Err(other.into_app_error(INVOICE)),
            }
        }
        Err(AppError::conflict("the invoice is being changed by another request; try again"))
    }

    /// Records that the invoice's PDF is in S3 (no audit: nothing the
    /// tenant decided changed).
    pub async fn mark_invoice_pdf(&self, scope: &TenantScope, id: Uuid, pdf_key: &str) -> AppResult<()> {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(scope, invoice_sk(id))))
            .update_expression("SET pdf_key = :key")
            .condition_expression("attribute_exists(PK)")
            .expression_attribute_values(":key", s(pdf_key))
            .send()
            .await?;
        Ok(())
    }

    /// Every item of the tenant whose SK starts with `prefix` (small sets:
    /// components).
    async fn query_all_prefix(&self, scope: &TenantScope, prefix: &str) -> AppResult<Vec<Item>> {
        let query = self.prefix_query(scope, prefix);
        self.query_all(query).await
    }
}

impl Store {
    /// One page of every tenant's id (the tenants index), for a scheduled
    /// job that visits each tenant.
    pub async fn tenant_ids_for_job(
        &self,
        _job: &crate::auth::proofs::ScheduledJob,
        start: Option<Item>,
    ) -> AppResult<(Vec<Uuid>, Option<Item>)> {
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .index_name("GSI1")
            .key_condition_expression("GSI1PK = :pk")
            .expression_attribute_values(":pk", s(super::tenants::ALL_TENANTS))
            .projection_expression("PK")
            .set_exclusive_start_key(start)
            .send()
            .await?;
        let ids =
            output.items().iter().filter_map(|item| string_attr(item, "PK")).filter_map(tenant_of_partition).collect();
        Ok((ids, output.last_evaluated_key.filter(|k| !k.is_empty())))
    }
}

/// The tenant a partition key `T#<tenant>#` names.
pub fn tenant_of_partition(pk: &str) -> Option<Uuid> {
    pk.strip_prefix("T#")?.strip_suffix('#').and_then(|id| Uuid::parse_str(id).ok())
}

/// A tenant item as the stream shows it (the meter reads limits and
/// counters from the image it was given, not from a second read).
pub fn tenant_of_image(item: Item) -> AppResult<(crate::domain::tenant::Tenant, super::tenants::TenantUsage)> {
    let usage = super::tenants::usage_from(&item);
    Ok((from_item(item)?, usage))
}

/// A short random wait before retrying a transaction that lost a race
/// (jitter, so the losers do not meet again at once).
async fn back_off(attempt: usize) {
    let ceiling = 5 + 5 * (attempt as u64).min(10);
    tokio::time::sleep(std::time::Duration::from_millis(rand::random::<u64>() % ceiling)).await;
}

/// Sets (or removes) the low-balance threshold on the tenant item.
fn low_balance_threshold(tx: &mut Tx, scope: &TenantScope, threshold: Option<i64>) {
    let update = Update::builder().set_key(Some(tenant_key(scope)));
    let update = match threshold {
        Some(value) => update
            .update_expression("SET credits_low_balance_threshold = :t")
            .expression_attribute_values(":t", n(value)),
        None => update.update_expression("REMOVE credits_low_balance_threshold"),
    };
    tx.update(update.condition_expression("attribute_exists(PK)"), Some(super::quota::TENANT_MISSING));
}

fn invoice_changed(invoice: &Invoice) -> InvoiceChanged {
    InvoiceChanged {
        invoice_id: invoice.id,
        number: invoice.number.clone(),
        status: invoice.status.as_str().to_owned(),
        period_start: invoice.period_start.to_string(),
        period_end: invoice.period_end.to_string(),
        currency: invoice.currency.clone(),
        total_amount: crate::domain::billing::money::money_string(invoice.total),
    }
}

/// Stream sequence numbers are decimal strings of varying length; padded,
/// they compare as strings the way they compare as numbers.
pub fn padded_sequence(sequence: &str) -> String {
    format!("{sequence:0>48}")
}

/// A usage event as `void` and `amend` answer it.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct UsageEventView {
    pub event_id: String,
    pub metric_type: String,
    /// A decimal string.
    #[schema(value_type = String)]
    pub quantity: Decimal,
    pub timestamp: String,
    /// `recorded` or `voided`.
    pub status: String,
    pub reason: Option<String>,
    pub recorded_at: String,
    pub amended_at: Option<String>,
    pub voided_at: Option<String>,
}

impl UsageEventView {
    fn of(item: &Item) -> AppResult<Self> {
        let text = |name: &str| string_attr(item, name).map(str::to_owned);
        Ok(Self {
            event_id: text("event_id").unwrap_or_default(),
            metric_type: text("metric_type").unwrap_or_default(),
            quantity: item
                .get("quantity")
                .and_then(|v| v.as_n().ok())
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| AppError::internal(anyhow::anyhow!("usage event without quantity")))?,
            timestamp: text("timestamp").unwrap_or_default(),
            status: text("status").unwrap_or_default(),
            reason: text("reason").filter(|r| !r.is_empty()),
            recorded_at: text("recorded_at").unwrap_or_default(),
            amended_at: text("amended_at"),
            voided_at: text("voided_at"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padded_sequences_compare_like_numbers() {
        assert!(padded_sequence("999") < padded_sequence("1000"));
        assert!(padded_sequence("49668") < padded_sequence("111000000000000000000000001"));
    }

    /// A transaction's items: its events, one rollup per distinct hour and
    /// period, one check per distinct component.
    fn transaction_items(chunk: &[UsageRecord]) -> usize {
        let hours: BTreeSet<String> = chunk.iter().map(|r| hour_of(r.at)).collect();
        let periods: BTreeSet<String> = chunk.iter().map(|r| period_of(r.at)).collect();
        let checks: BTreeSet<&str> = chunk
            .iter()
            .map(|r| r.metric.as_str())
            .filter(|m| !crate::domain::billing::component::BUILT_IN_METERS.contains(m))
            .collect();
        chunk.len() + hours.len() + periods.len() + checks.len()
    }

    #[test]
    fn a_usage_post_is_split_where_its_transaction_would_pass_dynamodbs_limit() {
        let start = DateTime::parse_from_rfc3339("2026-11-30T12:00:00Z").expect("time").with_timezone(&Utc);
        let record = |i: i64, metric: &str, hours_apart: i64| UsageRecord {
            event_id: format!("e{i}"),
            metric: metric.to_owned(),
            quantity: Decimal::ONE,
            at: start + chrono::Duration::hours(i * hours_apart),
            reported_at: start + chrono::Duration::hours(i * hours_apart),
            metadata: None,
        };
        // 100 events of a built-in meter in one hour: 97 fit with the hour
        // and the period (and the idempotency record).
        let same_hour: Vec<UsageRecord> = (0..100).map(|i| record(i, "api_calls", 0)).collect();
        let chunks = usage_transactions(&same_hour);
        assert_eq!(chunks.iter().map(|c| c.len()).collect::<Vec<_>>(), [97, 3]);
        // A backfill: 100 events, each in its own hour (across a month's end)
        // and of its own component: never more than 99 items, nothing lost.
        let spread: Vec<UsageRecord> = (0..100).map(|i| record(i, &format!("meter_{i}"), 1)).collect();
        let chunks = usage_transactions(&spread);
        assert!(
            chunks.iter().all(|c| transaction_items(c) <= USAGE_TX_ITEMS),
            "{:?}",
            chunks.iter().map(|c| transaction_items(c)).collect::<Vec<_>>()
        );
        assert!(chunks[..chunks.len() - 1].iter().all(|c| c.len() >= 32), "only the last run is short");
        assert_eq!(chunks.iter().map(|c| c.len()).sum::<usize>(), 100);
        assert_eq!(chunks.concat(), spread);
        // One record is one transaction.
        assert_eq!(usage_transactions(&same_hour[..1]).len(), 1);
    }

    #[test]
    fn deltas_merge_per_item_and_skip_zero() {
        let at = DateTime::parse_from_rfc3339("2026-11-30T23:30:00Z").expect("time").with_timezone(&Utc);
        let next = DateTime::parse_from_rfc3339("2026-12-01T00:10:00Z").expect("time").with_timezone(&Utc);
        let mut deltas = RollupDeltas::default();
        deltas.add("api_calls", Decimal::from(3), at);
        deltas.add("api_calls", Decimal::from(2), at);
        deltas.add("ai_requests", Decimal::ZERO, at);
        deltas.add("api_calls", Decimal::from(1), next);
        assert_eq!(deltas.hours.len(), 2);
        assert_eq!(deltas.periods.len(), 2);
        assert_eq!(deltas.hours["2026-11-30T23"]["api_calls"], Decimal::from(5));
        assert_eq!(deltas.periods["2026-12"]["api_calls"], Decimal::from(1));
        assert!(!deltas.hours["2026-11-30T23"].contains_key("ai_requests"));
    }
}
