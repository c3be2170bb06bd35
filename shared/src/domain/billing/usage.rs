//! Usage records (seed 000 scenario 4 step 2 and its `testBillingIntegration`)
//! and the current period's summary (`GET /v1/billing/usage`).
//!
//! A record counts once by its `event_id` (OpenMeter's dedupe): when a
//! caller sends none, it is derived from the `Idempotency-Key` and the
//! record's position, so a retried post counts once too; without either, a
//! new UUIDv7. A timestamp up to 35 days back lands in its own hour and
//! period (Stripe's grace window for meter events); an older one counts when
//! it arrives, since its period may be invoiced already, and keeps what was
//! reported; 5 minutes ahead at most (clock skew). Periods are calendar
//! months in UTC.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};
use rust_decimal::{Decimal, prelude::ToPrimitive};
use serde::{Deserialize, Deserializer, Serialize, de::Error as _};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{
    component::{BUILT_IN_METERS, MeteredComponent, MetricName, built_in_display},
    money::{self, DecimalInput, MoneyString, money_string, quantity_json},
};
use crate::{
    domain::{
        plans::Limits,
        tenant::Limit,
        values::{JsonObject, Text},
    },
    error::{AppError, FieldError},
};

/// A post holds 1 to this many records.
pub const MAX_RECORDS: usize = 100;
/// How far back a timestamp may be.
pub const MAX_AGE_DAYS: i64 = 35;
/// How far ahead a timestamp may be (clock skew).
pub const MAX_AHEAD_MINUTES: i64 = 5;
/// `metadata`: at most this many keys...
pub const MAX_METADATA_KEYS: usize = 20;
/// ...and this many bytes serialised.
pub const MAX_METADATA_BYTES: usize = 2048;

/// `^[A-Za-z0-9._:-]{1,128}$`: safe in a sort key and a URL path.
pub fn is_event_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// A caller's event id ([`is_event_id`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct EventId(String);

impl<'de> Deserialize<'de> for EventId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match Value::deserialize(deserializer)? {
            Value::String(s) if is_event_id(&s) => Ok(EventId(s)),
            Value::String(_) => Err(D::Error::custom("must match ^[A-Za-z0-9._:-]{1,128}$")),
            _ => Err(D::Error::custom("must be a string")),
        }
    }
}

eserde::impl_edeserialize_compat!(EventId);
crate::inline_schema!(EventId, "UsageEventId", string(1, 128).pattern(Some("^[A-Za-z0-9._:-]{1,128}$")));

/// An RFC 3339 date-time in a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timestamp(pub DateTime<Utc>);

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match Value::deserialize(deserializer)? {
            Value::String(s) => DateTime::parse_from_rfc3339(&s)
                .map(|at| Timestamp(at.with_timezone(&Utc)))
                .map_err(|_| D::Error::custom("must be an RFC 3339 date-time (2024-01-15T14:30:00Z)")),
            _ => Err(D::Error::custom("must be an RFC 3339 date-time (2024-01-15T14:30:00Z)")),
        }
    }
}

eserde::impl_edeserialize_compat!(Timestamp);
crate::inline_schema!(Timestamp, "UsageTimestamp", formatted(1, 64, "date-time"));

type Metadata = JsonObject<MAX_METADATA_BYTES>;

/// One usage record as sent.
#[derive(Debug, Clone, eserde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UsageRecordInput {
    /// Makes the record count once; derived when left out (module doc).
    #[serde(default)]
    #[eserde(compat)]
    pub event_id: Option<EventId>,
    /// A metered component's name or a built-in meter.
    #[eserde(compat)]
    pub metric_type: MetricName,
    /// Above 0, at most 1e12 and 6 decimals.
    #[serde(deserialize_with = "money::quantity")]
    #[schema(value_type = DecimalInput)]
    pub quantity: Decimal,
    /// When the usage happened (default: now); at most 5 minutes ahead. Up
    /// to 35 days back it counts in its own hour and period; older usage
    /// counts when it arrives (`late: true` in the answer).
    #[serde(default)]
    #[eserde(compat)]
    pub timestamp: Option<Timestamp>,
    /// At most 20 keys and 2 KB.
    #[serde(default)]
    #[eserde(compat)]
    pub metadata: Option<Metadata>,
}

/// `POST /v1/billing/usage`: one record (seed 000's body) or
/// `{"records": [...]}` of up to 100; never both.
#[derive(Debug, Clone, eserde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "metric_type": "api_calls",
    "quantity": 15000,
    "timestamp": "2024-01-15T14:30:00Z",
    "metadata": {"endpoint": "/api/v1/projects", "user_id": "user-123", "client_ip": "203.0.113.45"}
}))]
pub struct UsageRequest {
    /// A batch: 1 to 100 records (then no single-record field).
    #[serde(default)]
    pub records: Option<Vec<UsageRecordInput>>,
    #[serde(default)]
    #[eserde(compat)]
    pub event_id: Option<EventId>,
    /// Required for a single record.
    #[serde(default)]
    #[eserde(compat)]
    pub metric_type: Option<MetricName>,
    /// Required for a single record: above 0, at most 1e12 and 6 decimals.
    #[serde(default, deserialize_with = "optional_quantity")]
    #[schema(value_type = Option<DecimalInput>)]
    pub quantity: Option<Decimal>,
    #[serde(default)]
    #[eserde(compat)]
    pub timestamp: Option<Timestamp>,
    #[serde(default)]
    #[eserde(compat)]
    pub metadata: Option<Metadata>,
}

fn optional_quantity<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Decimal>, D::Error> {
    match Value::deserialize(deserializer)? {
        Value::Null => Ok(None),
        value => money::quantity(value).map(Some).map_err(D::Error::custom),
    }
}

/// One usage record, checked, with its event id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsageRecord {
    pub event_id: String,
    pub metric: String,
    pub quantity: Decimal,
    /// Where it counts: its hour and period.
    pub at: DateTime<Utc>,
    /// What the caller reported (`timestamp`); before [`MAX_AGE_DAYS`] ago
    /// it counts at arrival instead (`at` is then when it arrived).
    pub reported_at: DateTime<Utc>,
    #[serde(default)]
    pub metadata: Option<Value>,
}

impl UsageRecord {
    /// Reported too late for its own period: counted at arrival.
    pub fn late(&self) -> bool {
        self.at != self.reported_at
    }
}

impl UsageRequest {
    /// The records to count, or every problem at once (`records[3].timestamp`).
    /// A batch naming one event id twice is a 422 `duplicate_event_id`: one
    /// of the two would silently not count.
    pub fn records(self, now: DateTime<Utc>, idempotency_key: Option<&str>) -> Result<Vec<UsageRecord>, AppError> {
        let mut errors = Vec::new();
        let inputs: Vec<(String, UsageRecordInput)> = match self.records {
            Some(records) => {
                for (field, sent) in [
                    ("event_id", self.event_id.is_some()),
                    ("metric_type", self.metric_type.is_some()),
                    ("quantity", self.quantity.is_some()),
                    ("timestamp", self.timestamp.is_some()),
                    ("metadata", self.metadata.is_some()),
                ] {
                    if sent {
                        errors.push(FieldError::new(field, "belongs inside each of `records` when `records` is sent"));
                    }
                }
                if records.is_empty() || records.len() > MAX_RECORDS {
                    errors.push(FieldError::new("records", format!("must have 1 to {MAX_RECORDS} items")));
                }
                records.into_iter().enumerate().map(|(i, r)| (format!("records[{i}]."), r)).collect()
            }
            None => match (self.metric_type, self.quantity) {
                (Some(metric_type), Some(quantity)) => vec![(
                    String::new(),
                    UsageRecordInput {
                        event_id: self.event_id,
                        metric_type,
                        quantity,
                        timestamp: self.timestamp,
                        metadata: self.metadata,
                    },
                )],
                (metric_type, quantity) => {
                    if metric_type.is_none() {
                        errors.push(FieldError::new("metric_type", "is required"));
                    }
                    if quantity.is_none() {
                        errors.push(FieldError::new("quantity", "is required"));
                    }
                    Vec::new()
                }
            },
        };
        let earliest = now - Duration::days(MAX_AGE_DAYS);
        let latest = now + Duration::minutes(MAX_AHEAD_MINUTES);
        let mut records = Vec::with_capacity(inputs.len());
        for (index, (prefix, input)) in inputs.into_iter().enumerate() {
            let reported_at = input.timestamp.map_or(now, |t| t.0);
            // Older than the grace window: its period may be invoiced
            // already, so it counts now (seed 000's 2024 bodies must work as
            // they stand) and keeps what the caller reported.
            let at = if reported_at < earliest { now } else { reported_at };
            if reported_at > latest {
                errors.push(FieldError::new(
                    format!("{prefix}timestamp"),
                    format!("must be at most {MAX_AHEAD_MINUTES} minutes ahead"),
                ));
            }
            if input.metadata.as_ref().is_some_and(|m| m.as_map().len() > MAX_METADATA_KEYS) {
                errors.push(FieldError::new(
                    format!("{prefix}metadata"),
                    format!("must have at most {MAX_METADATA_KEYS} keys"),
                ));
            }
            let event_id = match (input.event_id, idempotency_key) {
                (Some(id), _) => id.0,
                (None, Some(key)) => derived_event_id(key, index),
                (None, None) => uuid::Uuid::now_v7().to_string(),
            };
            records.push(UsageRecord {
                event_id,
                metric: input.metric_type.into_inner(),
                quantity: input.quantity,
                at,
                reported_at,
                metadata: input.metadata.map(|m| Value::Object(m.into_inner())),
            });
        }
        if !errors.is_empty() {
            return Err(AppError::validation(errors));
        }
        let mut seen = BTreeMap::new();
        let mut duplicates = Vec::new();
        for (i, record) in records.iter().enumerate() {
            if let Some(first) = seen.insert(record.event_id.as_str(), i) {
                duplicates.push(FieldError::new(
                    format!("records[{i}].event_id"),
                    format!("duplicates records[{first}].event_id"),
                ));
            }
        }
        if !duplicates.is_empty() {
            return Err(AppError::new(
                http::StatusCode::UNPROCESSABLE_ENTITY,
                "duplicate_event_id",
                "a batch names the same event_id twice",
            )
            .with_details(serde_json::json!({ "fields": duplicates })));
        }
        Ok(records)
    }
}

/// `ik:<first 32 hex of sha256(key)>:<index>`: the same key and position
/// give the same id, whoever retries.
pub fn derived_event_id(idempotency_key: &str, index: usize) -> String {
    let digest = Sha256::digest(idempotency_key.as_bytes());
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("ik:{hex}:{index}")
}

/// `POST /v1/billing/usage/{event_id}/void`.
#[derive(Debug, Clone, Default, eserde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VoidUsageRequest {
    /// Why (kept in the audit entry), 1 to 500 characters.
    #[serde(default, deserialize_with = "optional_reason")]
    #[schema(value_type = Option<Text<1, 500>>)]
    pub reason: Option<String>,
}

/// `POST /v1/billing/usage/{event_id}/amend`: the event's new quantity.
#[derive(Debug, Clone, eserde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AmendUsageRequest {
    /// Above 0 (void the event to take it out), at most 1e12 and 6 decimals.
    #[serde(deserialize_with = "money::quantity")]
    #[schema(value_type = DecimalInput)]
    pub quantity: Decimal,
    #[serde(default, deserialize_with = "optional_reason")]
    #[schema(value_type = Option<Text<1, 500>>)]
    pub reason: Option<String>,
}

fn optional_reason<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    Option::<Text<1, 500>>::deserialize(deserializer).map(|r| r.map(Text::into_inner))
}

/// `YYYY-MM`: the billing period (a UTC calendar month) of `at`.
pub fn period_of(at: DateTime<Utc>) -> String {
    at.format("%Y-%m").to_string()
}

/// `YYYY-MM-DDTHH`: the UTC hour of `at` (the rollup items' key).
pub fn hour_of(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H").to_string()
}

/// The start of an `hour_of` key.
pub fn hour_start(hour: &str) -> Option<DateTime<Utc>> {
    chrono::NaiveDateTime::parse_from_str(&format!("{hour}:00:00"), "%Y-%m-%dT%H:%M:%S").ok().map(|t| t.and_utc())
}

/// The first day of the month of `date`, and of the next month.
pub fn month_of(date: NaiveDate) -> (NaiveDate, NaiveDate) {
    let start = date.with_day(1).unwrap_or(date);
    let next = if start.month() == 12 {
        NaiveDate::from_ymd_opt(start.year() + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(start.year(), start.month() + 1, 1)
    };
    (start, next.unwrap_or(start))
}

/// A period's start (included) and end (excluded), or `None` when it is no
/// `YYYY-MM`.
pub fn period_bounds(period: &str) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let date = NaiveDate::parse_from_str(&format!("{period}-01"), "%Y-%m-%d").ok()?;
    let (start, next) = month_of(date);
    Some((Utc.from_utc_datetime(&start.and_hms_opt(0, 0, 0)?), Utc.from_utc_datetime(&next.and_hms_opt(0, 0, 0)?)))
}

/// The period of the summary: calendar month in UTC.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct PeriodView {
    /// `YYYY-MM`.
    pub id: String,
    pub start: DateTime<Utc>,
    /// The period's last second (seed 000: `2024-01-31T23:59:59Z`).
    pub end: DateTime<Utc>,
    /// Days begun so far (today counts).
    pub days_elapsed: i64,
    pub days_total: i64,
}

/// One meter or component in the summary.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ComponentUsageView {
    pub name: String,
    pub display_name: String,
    pub unit: String,
    #[schema(value_type = f64)]
    pub quantity: serde_json::Number,
    /// The quantity so far priced by the component's tiers; `null` for a
    /// built-in meter no component prices.
    #[schema(value_type = Option<MoneyString>, required = true)]
    pub amount: Option<String>,
    /// `quantity x period seconds / elapsed seconds`.
    #[schema(value_type = f64)]
    pub projected_quantity: serde_json::Number,
    #[schema(value_type = Option<MoneyString>, required = true)]
    pub projected_amount: Option<String>,
    /// The plan's (or contract's) limit for the meter; `null` when the
    /// meter has none.
    #[schema(required = true)]
    pub limit: Option<Limit>,
    /// `used / limit x 100` (2 decimals; storage compares stored GB, not
    /// gb_hour); `null` without a numeric limit.
    #[schema(required = true)]
    pub usage_percentage: Option<f64>,
}

/// `GET /v1/billing/usage`.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct UsageSummaryView {
    pub period: PeriodView,
    /// Every built-in meter and component by name: its quantity so far
    /// (0 when nothing was counted).
    #[schema(value_type = BTreeMap<String, f64>)]
    pub current_period: BTreeMap<String, serde_json::Number>,
    pub components: Vec<ComponentUsageView>,
    /// The subscription's monthly base amount; `null` without one.
    #[schema(value_type = Option<MoneyString>, required = true)]
    pub base_subscription: Option<String>,
    /// `base_subscription + Σ amount`.
    #[schema(value_type = MoneyString)]
    pub amount_so_far: String,
    /// `base_subscription + Σ projected_amount`.
    #[schema(value_type = MoneyString)]
    pub projected_total: String,
}

/// The current period's summary.
///
/// Projection is linear: a meter's projected quantity is its quantity so
/// far x (seconds in the period / seconds elapsed, at least 1), priced by
/// its tiers. Built-in meters are listed whether or not anything was
/// counted; their limits are `api_calls_monthly`, `ai_requests_monthly` and
/// `storage_gb` (against `storage_bytes / 1e9`, the last sample).
pub fn usage_summary(
    now: DateTime<Utc>,
    totals: &BTreeMap<String, Decimal>,
    storage_bytes: Option<i64>,
    components: &[MeteredComponent],
    limits: &Limits,
    base_monthly: Option<Decimal>,
) -> UsageSummaryView {
    let (start, end) = period_bounds(&period_of(now)).unwrap_or((now, now + Duration::days(30)));
    let period_seconds = Decimal::from((end - start).num_seconds().max(1));
    let elapsed_seconds = Decimal::from((now - start).num_seconds().max(1));
    let mut names: Vec<String> = BUILT_IN_METERS.iter().map(|m| (*m).to_owned()).collect();
    for component in components {
        if !names.contains(&component.name) {
            names.push(component.name.clone());
        }
    }
    let mut current_period = BTreeMap::new();
    let mut views = Vec::new();
    let mut so_far = base_monthly.unwrap_or_default();
    let mut projected_total = so_far;
    for name in names {
        let quantity = totals.get(&name).copied().unwrap_or_default();
        current_period.insert(name.clone(), quantity_json(quantity));
        let projected = (quantity.saturating_mul(period_seconds) / elapsed_seconds).round_dp(6);
        let component = components.iter().find(|c| c.name == name);
        let (display_name, unit) = match (component, built_in_display(&name)) {
            (Some(c), _) => (c.display_name.clone(), c.unit.clone()),
            (None, Some((display, unit))) => (display.to_owned(), unit.to_owned()),
            (None, None) => (name.clone(), String::new()),
        };
        let amount = component.map(|c| c.pricing().price(quantity).amount);
        let projected_amount = component.map(|c| c.pricing().price(projected).amount);
        so_far = so_far.saturating_add(amount.unwrap_or_default());
        projected_total = projected_total.saturating_add(projected_amount.unwrap_or_default());
        let (limit, used) = match name.as_str() {
            "api_calls" => (Some(Limit::from(limits.api_calls_monthly)), quantity),
            "ai_requests" => (Some(Limit::from(limits.ai_requests_monthly)), quantity),
            "storage" => (
                Some(Limit::from(limits.storage_gb)),
                Decimal::from(storage_bytes.unwrap_or(0)) / Decimal::from(1_000_000_000),
            ),
            _ => (None, quantity),
        };
        let usage_percentage = match limit {
            Some(Limit::Of(0)) => Some(100.0),
            Some(Limit::Of(n)) => (used * Decimal::ONE_HUNDRED / Decimal::from(n)).round_dp(2).to_f64(),
            _ => None,
        };
        views.push(ComponentUsageView {
            name,
            display_name,
            unit,
            quantity: quantity_json(quantity),
            amount: amount.map(money_string),
            projected_quantity: quantity_json(projected),
            projected_amount: projected_amount.map(money_string),
            limit,
            usage_percentage,
        });
    }
    let days_total = (end - start).num_days();
    PeriodView {
        id: period_of(now),
        start,
        end: end - Duration::seconds(1),
        days_elapsed: (now - start).num_days() + 1,
        days_total,
    }
    .into_summary(current_period, views, base_monthly, so_far, projected_total)
}

impl PeriodView {
    fn into_summary(
        self,
        current_period: BTreeMap<String, serde_json::Number>,
        components: Vec<ComponentUsageView>,
        base_monthly: Option<Decimal>,
        so_far: Decimal,
        projected_total: Decimal,
    ) -> UsageSummaryView {
        UsageSummaryView {
            period: self,
            current_period,
            components,
            base_subscription: base_monthly.map(money_string),
            amount_so_far: money_string(so_far),
            projected_total: money_string(projected_total),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn now() -> DateTime<Utc> {
        "2024-01-16T00:00:00Z".parse().expect("time")
    }

    fn records(body: Value, key: Option<&str>) -> Result<Vec<UsageRecord>, AppError> {
        let request: UsageRequest = eserde::json::from_str(&body.to_string()).map_err(|e| {
            AppError::validation(
                e.iter()
                    .map(|e| FieldError::new(e.path().map(|p| p.to_string()).unwrap_or_default(), e.message()))
                    .collect(),
            )
        })?;
        request.records(now(), key)
    }

    #[test]
    fn the_seed_bodies_are_accepted() {
        let api = records(
            json!({"metric_type": "api_calls", "quantity": 15000, "timestamp": "2024-01-15T14:30:00Z",
                   "metadata": {"endpoint": "/api/v1/projects", "user_id": "user-123", "client_ip": "203.0.113.45"}}),
            None,
        )
        .expect("valid");
        assert_eq!((api[0].metric.as_str(), api[0].quantity), ("api_calls", Decimal::from(15000)));
        assert_eq!(hour_of(api[0].at), "2024-01-15T14");
        let ai = records(
            json!({"metric_type": "ai_requests", "quantity": 250, "timestamp": "2024-01-15T14:30:00Z",
                   "metadata": {"model": "phi-3-mini", "processing_time_ms": 1850, "tokens_generated": 450}}),
            None,
        )
        .expect("valid");
        assert_eq!(ai[0].metadata.as_ref().expect("metadata")["model"], "phi-3-mini");
        let test = records(json!({"metric_type": "api_calls", "quantity": 1000}), None).expect("valid");
        assert_eq!(test[0].at, now());
    }

    #[test]
    fn event_ids_are_derived_from_the_idempotency_key() {
        let body = json!({"records": [{"metric_type": "api_calls", "quantity": 1}, {"metric_type": "storage", "quantity": 0.5}]});
        let first = records(body.clone(), Some("key-1")).expect("valid");
        let again = records(body.clone(), Some("key-1")).expect("valid");
        assert_eq!(first, again);
        assert_ne!(first[0].event_id, first[1].event_id);
        assert!(first.iter().all(|r| is_event_id(&r.event_id)));
        let fresh = records(body, None).expect("valid");
        assert_ne!(fresh[0].event_id, first[0].event_id);
    }

    #[test]
    fn usage_older_than_the_grace_window_counts_at_arrival_and_keeps_its_timestamp() {
        let old = records(json!({"metric_type": "x", "quantity": 1, "timestamp": "2023-12-01T00:00:00Z"}), None)
            .expect("accepted");
        assert_eq!(old[0].at, now());
        assert_eq!(crate::domain::rfc3339(old[0].reported_at), "2023-12-01T00:00:00Z");
        assert!(old[0].late());
        let recent = records(json!({"metric_type": "x", "quantity": 1, "timestamp": "2024-01-01T00:00:00Z"}), None)
            .expect("accepted");
        assert_eq!(crate::domain::rfc3339(recent[0].at), "2024-01-01T00:00:00Z");
        assert!(!recent[0].late());
    }

    #[test]
    fn problems_are_named() {
        let fields = |body| records(body, None).expect_err("invalid").invalid_fields();
        assert_eq!(fields(json!({"quantity": 1})), ["metric_type"]);
        assert_eq!(fields(json!({"metric_type": "x", "quantity": 0})), ["quantity"]);
        assert_eq!(
            fields(json!({"metric_type": "x", "quantity": 1, "timestamp": "2024-01-16T00:06:00Z"})),
            ["timestamp"]
        );
        assert_eq!(
            fields(
                json!({"records": [{"metric_type": "x", "quantity": 1}, {"metric_type": "x", "quantity": 1, "timestamp": "yesterday"}]})
            ),
            ["records[1].timestamp"]
        );
        assert_eq!(fields(json!({"records": [], "metric_type": "x"})), ["metric_type", "records"]);
        let many: serde_json::Map<String, Value> = (0..21).map(|i| (format!("k{i}"), json!(i))).collect();
        assert_eq!(fields(json!({"metric_type": "x", "quantity": 1, "metadata": many})), ["metadata"]);
        assert_eq!(
            fields(json!({"metric_type": "x", "quantity": 1, "metadata": {"b": "x".repeat(2100)}})),
            ["metadata"]
        );
        assert_eq!(fields(json!({"metric_type": "x", "quantity": 1, "event_id": "a b"})), ["event_id"]);
        let dup = records(
            json!({"records": [{"metric_type": "x", "quantity": 1, "event_id": "e1"}, {"metric_type": "x", "quantity": 2, "event_id": "e1"}]}),
            None,
        )
        .expect_err("duplicate");
        assert_eq!(dup.status(), http::StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(dup.invalid_fields(), ["records[1].event_id"]);
        let hundred_one: Vec<Value> = (0..101).map(|_| json!({"metric_type": "x", "quantity": 1})).collect();
        assert_eq!(fields(json!({ "records": hundred_one })), ["records"]);
    }

    #[test]
    fn periods_and_hours() {
        let at: DateTime<Utc> = "2024-12-31T23:59:59Z".parse().expect("time");
        assert_eq!(period_of(at), "2024-12");
        assert_eq!(hour_of(at), "2024-12-31T23");
        let (start, end) = period_bounds("2024-12").expect("bounds");
        assert_eq!(
            (start.to_rfc3339(), end.to_rfc3339()),
            ("2024-12-01T00:00:00+00:00".into(), "2025-01-01T00:00:00+00:00".into())
        );
        assert_eq!(period_bounds("2024-13"), None);
        assert_eq!(hour_start("2024-01-15T14"), Some("2024-01-15T14:00:00Z".parse().expect("time")));
    }

    #[test]
    fn the_summary_prices_projects_and_compares_to_limits() {
        let components = crate::domain::billing::component::tests::seed_components();
        let totals =
            BTreeMap::from([("api_calls".to_owned(), Decimal::from(1_250_000)), ("custom".to_owned(), Decimal::ONE)]);
        let limits = Limits { api_calls_monthly: Some(2_000_000), storage_gb: Some(10), ..Limits::UNLIMITED };
        // Half of January (31 days) elapsed: 15.5 days.
        let now: DateTime<Utc> = "2024-01-16T12:00:00Z".parse().expect("time");
        let summary = usage_summary(now, &totals, Some(5_000_000_000), &components, &limits, Some(Decimal::from(800)));
        let json = serde_json::to_value(&summary).expect("json");
        assert_eq!(json["current_period"], json!({"api_calls": 1250000, "ai_requests": 0, "storage": 0}));
        assert_eq!(json["period"]["days_total"], 31);
        assert_eq!(json["period"]["days_elapsed"], 16);
        assert_eq!(json["period"]["end"], "2024-01-31T23:59:59Z");
        let api = &json["components"][0];
        // 100 + 720 + 250,000 x 0.0005.
        assert_eq!(api["amount"], "945.00");
        assert_eq!(api["projected_quantity"], 2_500_000);
        assert_eq!(api["projected_amount"], "1570.00");
        assert_eq!(api["usage_percentage"], 62.5);
        assert_eq!(json["components"][1]["limit"], "unlimited");
        assert_eq!(json["components"][1]["usage_percentage"], Value::Null);
        assert_eq!(json["components"][2]["usage_percentage"], 50.0);
        assert_eq!(json["amount_so_far"], "1745.00");
        assert_eq!(json["projected_total"], "2370.00");
    }
}
