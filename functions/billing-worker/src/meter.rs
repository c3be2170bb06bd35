//! The usage meter: table stream changes in, usage rollups and alerts out.
//!
//! - **API calls, with no write of their own.** Every authenticated request
//!   already makes one write: its rate-limit count (`RATE#USER#<user>#<window>`
//!   `request_count`, or the API key item's `usage_count`). The stream shows
//!   each such write with its old and new count; the difference is the
//!   requests counted, and it goes to the tenant's hour and period rollups
//!   as `api_calls`. Refused requests (over the limit, revoked key) write
//!   nothing, so they are not counted.
//! - **Exactly once.** Lambda (and the local feed) may deliver a batch
//!   again. Each tenant's share of a batch is one transaction that also
//!   moves the tenant's checkpoint (`BILLING#METER`) to the share's last
//!   sequence number, on the condition that it is before the share's first:
//!   a redelivery finds the checkpoint past it and adds nothing. A tenant's
//!   items share its partition key, so its changes come in order from one
//!   shard.
//! - **Thresholds.** A period rollup's change (API calls, AI requests,
//!   storage) and a tenant item's change (users, projects, the credit
//!   balance) are compared with the limits: crossing 80 % or 100 % tells
//!   `usage.threshold_reached` once per limit, threshold and period (a
//!   marker in the same transaction), and the balance falling below the
//!   tenant's threshold tells `credits.low_balance` once per crossing.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use shared::{
    auth::proofs::OwnStream,
    domain::{
        billing::usage::period_of,
        plans::{Limits, effective_limits},
    },
    events::catalogue::{CreditsLowBalance, UsageThresholdReached},
    store::{
        Store,
        billing::{RollupDeltas, quantities_of, tenant_of_image, tenant_of_partition},
    },
};
use uuid::Uuid;

/// One change of the table's stream, whichever way it arrived (a Lambda
/// DynamoDB stream event in AWS, the local server's stream reader locally).
#[derive(Debug, Clone)]
pub struct StreamChange {
    pub event_id: String,
    /// `INSERT`, `MODIFY` or `REMOVE`.
    pub event_name: String,
    pub sequence_number: String,
    /// ApproximateCreationDateTime, Unix seconds.
    pub at_epoch_seconds: i64,
    pub keys: HashMap<String, AttributeValue>,
    pub old_image: Option<HashMap<String, AttributeValue>>,
    pub new_image: Option<HashMap<String, AttributeValue>>,
}

/// Rollup items per transaction before a tenant's share is split (a
/// transaction holds 100 items; one is the checkpoint).
const MAX_ROLLUP_ITEMS: usize = 90;
/// The thresholds told, in percent.
const THRESHOLDS: [u32; 2] = [80, 100];

impl StreamChange {
    fn text(&self, name: &str) -> Option<&str> {
        self.keys.get(name).and_then(|v| v.as_s().ok()).map(String::as_str)
    }

    fn at(&self) -> DateTime<Utc> {
        DateTime::from_timestamp(self.at_epoch_seconds, 0).unwrap_or_else(Utc::now)
    }

    fn number(image: Option<&HashMap<String, AttributeValue>>, name: &str) -> Decimal {
        image.and_then(|i| i.get(name)).and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok()).unwrap_or_default()
    }

    /// The requests this change counted (0 for anything else).
    fn requests_counted(&self) -> Decimal {
        let sk = self.text("SK").unwrap_or_default();
        let counter = if sk.starts_with("RATE#USER#") {
            "request_count"
        } else if sk.starts_with("APIKEY#") {
            "usage_count"
        } else {
            return Decimal::ZERO;
        };
        if self.event_name == "REMOVE" {
            return Decimal::ZERO;
        }
        let delta = Self::number(self.new_image.as_ref(), counter) - Self::number(self.old_image.as_ref(), counter);
        delta.max(Decimal::ZERO)
    }
}

/// Applies a batch of stream changes. An error fails the whole batch:
/// Lambda (or the local feed) delivers it again, and the checkpoints make
/// the redelivery count once.
pub async fn handle_changes(store: &Store, changes: Vec<StreamChange>) -> anyhow::Result<()> {
    let mut by_tenant: BTreeMap<Uuid, Vec<&StreamChange>> = BTreeMap::new();
    for change in &changes {
        if let Some(tenant) = change.text("PK").and_then(tenant_of_partition) {
            by_tenant.entry(tenant).or_default().push(change);
        }
    }
    for (tenant, changes) in by_tenant {
        let scope = OwnStream::scope(tenant);
        count_requests(store, &scope, &changes).await?;
        check_thresholds(store, &scope, &changes).await?;
    }
    Ok(())
}

async fn count_requests(
    store: &Store,
    scope: &shared::auth::TenantScope,
    changes: &[&StreamChange],
) -> anyhow::Result<()> {
    let mut deltas = RollupDeltas::default();
    let mut first: Option<&str> = None;
    let mut last: Option<&str> = None;
    for change in changes {
        let counted = change.requests_counted();
        if counted.is_zero() {
            continue;
        }
        deltas.add("api_calls", counted, change.at());
        first.get_or_insert(change.sequence_number.as_str());
        last = Some(change.sequence_number.as_str());
        if deltas.items() >= MAX_ROLLUP_ITEMS {
            apply(store, scope, first.take(), last.take(), std::mem::take(&mut deltas)).await?;
        }
    }
    apply(store, scope, first, last, deltas).await
}

async fn apply(
    store: &Store,
    scope: &shared::auth::TenantScope,
    first: Option<&str>,
    last: Option<&str>,
    deltas: RollupDeltas,
) -> anyhow::Result<()> {
    let (Some(first), Some(last)) = (first, last) else { return Ok(()) };
    if deltas.is_empty() {
        return Ok(());
    }
    let applied = store.apply_meter_deltas(scope, first, last, &deltas).await.map_err(|e| e.into_anyhow())?;
    if !applied {
        tracing::info!(tenant = %scope.tenant_id(), first, last, "meter batch applied before; skipped");
    }
    Ok(())
}

/// A crossing of `threshold` % of `limit` between `old` and `new`.
fn crossed(old: Decimal, new: Decimal, limit: i64, threshold: u32) -> bool {
    if limit <= 0 {
        return false;
    }
    let mark = Decimal::from(limit) * Decimal::from(threshold) / Decimal::from(100);
    old < mark && new >= mark
}

async fn check_thresholds(
    store: &Store,
    scope: &shared::auth::TenantScope,
    changes: &[&StreamChange],
) -> anyhow::Result<()> {
    // The tenant's limits: from the latest tenant image in the batch, else
    // read once (only when a period changed).
    let mut limits: Option<Limits> = None;
    for change in changes {
        let sk = change.text("SK").unwrap_or_default();
        if sk == "TENANT" {
            tenant_change(store, scope, change, &mut limits).await?;
        } else if let Some(period) = sk.strip_prefix("BILLING#PERIOD#") {
            if limits.is_none() {
                limits = match store.get_tenant(scope).await.map_err(|e| e.into_anyhow())? {
                    Some((tenant, _)) => Some(effective_limits(&tenant)),
                    None => continue,
                };
            }
            let Some(limits) = limits else { continue };
            let old = change.old_image.as_ref().map(quantities_of).unwrap_or_default();
            let new = change.new_image.as_ref().map(quantities_of).unwrap_or_default();
            let bytes = |image: Option<&HashMap<String, AttributeValue>>| {
                StreamChange::number(image, "storage_bytes") / Decimal::from(1_000_000_000_i64)
            };
            let meters = [
                ("api_calls_monthly", limits.api_calls_monthly, old.get("api_calls"), new.get("api_calls")),
                ("ai_requests_monthly", limits.ai_requests_monthly, old.get("ai_requests"), new.get("ai_requests")),
            ];
            for (name, limit, old, new) in meters {
                let (old, new) = (old.copied().unwrap_or_default(), new.copied().unwrap_or_default());
                tell_crossings(store, scope, name, limit, old, new, period).await?;
            }
            let (old_gb, new_gb) = (bytes(change.old_image.as_ref()), bytes(change.new_image.as_ref()));
            tell_crossings(store, scope, "storage_gb", limits.storage_gb, old_gb, new_gb, period).await?;
        }
    }
    Ok(())
}

async fn tell_crossings(
    store: &Store,
    scope: &shared::auth::TenantScope,
    name: &str,
    limit: Option<i64>,
    old: Decimal,
    new: Decimal,
    period: &str,
) -> anyhow::Result<()> {
    let Some(limit) = limit else { return Ok(()) };
    for threshold in THRESHOLDS {
        if crossed(old, new, limit, threshold) {
            let alert = UsageThresholdReached {
                limit: name.to_owned(),
                threshold_percent: threshold,
                used: new.normalize().to_string(),
                limit_value: limit,
                period: period.to_owned(),
            };
            let told = store.record_threshold(scope, alert).await.map_err(|e| e.into_anyhow())?;
            tracing::info!(tenant = %scope.tenant_id(), limit = name, threshold, told, "usage threshold crossed");
        }
    }
    Ok(())
}

async fn tenant_change(
    store: &Store,
    scope: &shared::auth::TenantScope,
    change: &StreamChange,
    limits: &mut Option<Limits>,
) -> anyhow::Result<()> {
    let Some(new_image) = change.new_image.clone() else { return Ok(()) };
    let (tenant, usage) = match tenant_of_image(new_image) {
        Ok(decoded) => decoded,
        Err(err) => {
            tracing::warn!(tenant = %scope.tenant_id(), error = ?err, "a tenant image the meter cannot read; skipped");
            return Ok(());
        }
    };
    let tenant_limits = effective_limits(&tenant);
    *limits = Some(tenant_limits);
    let period = period_of(change.at());
    let old = change.old_image.as_ref();
    let counters = [
        ("users", tenant_limits.users, "user_count", usage.user_count),
        ("projects", tenant_limits.projects, "project_count", usage.project_count),
    ];
    for (name, limit, counter, now) in counters {
        let before = StreamChange::number(old, counter);
        tell_crossings(store, scope, name, limit, before, Decimal::from(now), &period).await?;
    }
    // The balance fell below the tenant's threshold with this change.
    let new = change.new_image.as_ref();
    if new.is_some_and(|i| i.contains_key("credits_low_balance_threshold")) {
        let threshold = StreamChange::number(new, "credits_low_balance_threshold");
        let (before, after) =
            (StreamChange::number(old, "credit_balance"), StreamChange::number(new, "credit_balance"));
        if before >= threshold && after < threshold {
            let alert = CreditsLowBalance {
                balance: after.trunc().try_into().unwrap_or_default(),
                threshold: threshold.trunc().try_into().unwrap_or_default(),
            };
            store.record_low_balance(scope, &change.sequence_number, alert).await.map_err(|e| e.into_anyhow())?;
        }
    }
    Ok(())
}

/// A Lambda DynamoDB stream event's records (DynamoDB JSON images), as
/// [`StreamChange`]s.
pub fn changes_of_lambda_event(event: &serde_json::Value) -> Vec<StreamChange> {
    let records = event.get("Records").and_then(|r| r.as_array()).cloned().unwrap_or_default();
    records
        .iter()
        .filter_map(|record| {
            let dynamodb = record.get("dynamodb")?;
            let image = |name: &str| dynamodb.get(name).and_then(|i| i.as_object()).map(image_of);
            Some(StreamChange {
                event_id: record.get("eventID")?.as_str()?.to_owned(),
                event_name: record.get("eventName")?.as_str()?.to_owned(),
                sequence_number: dynamodb.get("SequenceNumber")?.as_str()?.to_owned(),
                at_epoch_seconds: dynamodb.get("ApproximateCreationDateTime").and_then(|t| t.as_f64()).unwrap_or(0.0)
                    as i64,
                keys: image("Keys")?,
                old_image: image("OldImage"),
                new_image: image("NewImage"),
            })
        })
        .collect()
}

fn image_of(map: &serde_json::Map<String, serde_json::Value>) -> HashMap<String, AttributeValue> {
    map.iter().filter_map(|(name, value)| Some((name.clone(), attribute_of(value)?))).collect()
}

/// One DynamoDB JSON value (`{"S": "..."}`, `{"N": "1"}`, ...).
fn attribute_of(value: &serde_json::Value) -> Option<AttributeValue> {
    let (kind, inner) = value.as_object()?.iter().next()?;
    let strings =
        || inner.as_array().map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect::<Vec<_>>());
    Some(match kind.as_str() {
        "S" => AttributeValue::S(inner.as_str()?.to_owned()),
        "N" => AttributeValue::N(inner.as_str()?.to_owned()),
        "BOOL" => AttributeValue::Bool(inner.as_bool()?),
        "NULL" => AttributeValue::Null(true),
        "SS" => AttributeValue::Ss(strings()?),
        "NS" => AttributeValue::Ns(strings()?),
        "L" => AttributeValue::L(inner.as_array()?.iter().filter_map(attribute_of).collect()),
        "M" => AttributeValue::M(image_of(inner.as_object()?)),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_lambda_stream_event_becomes_changes_with_their_request_counts() {
        let event = json!({"Records": [
            {"eventID": "1", "eventName": "MODIFY", "eventSource": "aws:dynamodb", "dynamodb": {
                "ApproximateCreationDateTime": 1764547200.0, "SequenceNumber": "100",
                "Keys": {"PK": {"S": "T#0190b3c4-0000-7000-8000-000000000001#"}, "SK": {"S": "APIKEY#k"}},
                "OldImage": {"usage_count": {"N": "4"}}, "NewImage": {"usage_count": {"N": "5"}, "scopes": {"SS": ["a"]}}}},
            {"eventID": "2", "eventName": "INSERT", "eventSource": "aws:dynamodb", "dynamodb": {
                "ApproximateCreationDateTime": 1764547201.0, "SequenceNumber": "101",
                "Keys": {"PK": {"S": "T#0190b3c4-0000-7000-8000-000000000001#"}, "SK": {"S": "RATE#USER#u#1764547200"}},
                "NewImage": {"request_count": {"N": "1"}, "m": {"M": {"x": {"L": [{"NULL": true}]}}}}}},
            {"eventID": "3", "eventName": "MODIFY", "eventSource": "aws:dynamodb", "dynamodb": {
                "SequenceNumber": "102",
                "Keys": {"PK": {"S": "T#x#"}, "SK": {"S": "PROJECT#p"}}}}
        ]});
        let changes = changes_of_lambda_event(&event);
        assert_eq!(changes.len(), 3);
        assert_eq!(changes[0].requests_counted(), Decimal::ONE);
        assert_eq!(changes[1].requests_counted(), Decimal::ONE);
        assert_eq!(changes[2].requests_counted(), Decimal::ZERO);
        assert_eq!(changes[0].at().to_rfc3339(), "2025-12-01T00:00:00+00:00");
    }

    #[test]
    fn a_threshold_is_crossed_once_on_the_way_up() {
        assert!(crossed(Decimal::from(79), Decimal::from(80), 100, 80));
        assert!(!crossed(Decimal::from(80), Decimal::from(81), 100, 80));
        assert!(crossed(Decimal::from(10), Decimal::from(100), 100, 80));
        assert!(crossed(Decimal::from(10), Decimal::from(100), 100, 100));
        assert!(!crossed(Decimal::from(99), Decimal::from(98), 100, 80));
        assert!(!crossed(Decimal::ZERO, Decimal::from(5), 0, 80));
    }
}
