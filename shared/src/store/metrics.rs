//! Daily request rollups (`crate::metrics`): added to by each process's
//! flusher with `ADD`, read by the admin health and analytics answers.
//!
//! | item | PK | SK | attributes |
//! |---|---|---|---|
//! | a tenant's day | `T#<tenant>#` | `METRICS#<yyyy-mm-dd>` | `requests`, `errors_4xx`, `errors_5xx`, `latency_ms_sum`, `lat_0`..`lat_8` (the histogram's buckets), `svc_<function>` (requests per function), `failed_sign_ins`, `active_users` (a string set of user ids, at most `MAX_ACTIVE_USERS_COUNTED`), `expires_at` |
//! | the platform's day | `PLATFORM#METRICS` | `DAY#<yyyy-mm-dd>` | the same counters, no users |
//! | a tenant's rank | `T#<tenant>#` | `RANK#LATEST` | `domain::metrics::TenantRank`: its place among its plan's tenants, replaced by each nightly aggregate |
//!
//! Rollups are kept [`ROLLUP_RETENTION_DAYS`]: a year of daily figures for
//! the analytics, then DynamoDB's TTL removes them.

use aws_sdk_dynamodb::types::AttributeValue;

use super::{Item, Store, n};
use crate::{
    auth::TenantScope,
    domain::metrics::{MAX_ACTIVE_USERS_COUNTED, Rollup, TenantRank},
    error::AppResult,
};

/// A year and a month: this month's figures can always be compared with
/// the same month a year ago.
pub const ROLLUP_RETENTION_DAYS: i64 = 400;
const PLATFORM_PK: &str = "PLATFORM#METRICS";
/// A function's request counter: `svc_CustomersFunction`.
const SERVICE_PREFIX: &str = "svc_";

fn tenant_day_key(scope: &TenantScope, day: &str) -> Item {
    super::item_key(scope, format!("METRICS#{day}"))
}

fn platform_day_key(day: &str) -> Item {
    super::platform_key(PLATFORM_PK, format!("DAY#{day}"))
}

/// The counters of a rollup as `ADD` operands.
fn counters(rollup: &Rollup) -> Vec<(String, i64)> {
    let mut out = vec![
        ("requests".to_owned(), rollup.requests),
        ("errors_4xx".to_owned(), rollup.errors_4xx),
        ("errors_5xx".to_owned(), rollup.errors_5xx),
        ("latency_ms_sum".to_owned(), rollup.latency_ms_sum),
        ("failed_sign_ins".to_owned(), rollup.failed_sign_ins),
    ];
    out.extend(rollup.latency_buckets.iter().enumerate().map(|(i, count)| (format!("lat_{i}"), *count)));
    out.extend(rollup.services.iter().map(|(service, count)| (format!("{SERVICE_PREFIX}{service}"), *count)));
    out.retain(|(_, count)| *count != 0);
    out
}

fn expires_at(day: &str) -> i64 {
    let start = chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc().timestamp())
        .unwrap_or_else(|| chrono::Utc::now().timestamp());
    start + ROLLUP_RETENTION_DAYS * 86_400
}

fn rollup_of(item: &Item) -> Rollup {
    let number = |name: &str| item.get(name).and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok()).unwrap_or(0);
    let mut rollup = Rollup {
        requests: number("requests"),
        errors_4xx: number("errors_4xx"),
        errors_5xx: number("errors_5xx"),
        latency_ms_sum: number("latency_ms_sum"),
        failed_sign_ins: number("failed_sign_ins"),
        ..Rollup::default()
    };
    for (i, bucket) in rollup.latency_buckets.iter_mut().enumerate() {
        *bucket = number(&format!("lat_{i}"));
    }
    for (name, value) in item {
        if let (Some(service), Ok(count)) = (name.strip_prefix(SERVICE_PREFIX), value.as_n()) {
            rollup.services.insert(service.to_owned(), count.parse().unwrap_or(0));
        }
    }
    if let Some(Ok(users)) = item.get("active_users").map(|v| v.as_ss()) {
        rollup.active_users = users.iter().filter_map(|u| uuid::Uuid::parse_str(u).ok()).collect();
    }
    rollup
}

impl Store {
    async fn add_rollup(&self, key: Item, day: &str, rollup: &Rollup) -> AppResult<()> {
        let counters = counters(rollup);
        if !counters.is_empty() {
            let mut update = self.client.update_item().table_name(&self.table).set_key(Some(key.clone()));
            let mut adds = Vec::with_capacity(counters.len());
            for (i, (name, count)) in counters.iter().enumerate() {
                adds.push(format!("#c{i} :c{i}"));
                update = update
                    .expression_attribute_names(format!("#c{i}"), name)
                    .expression_attribute_values(format!(":c{i}"), n(*count));
            }
            update
                .update_expression(format!("ADD {} SET expires_at = :ttl", adds.join(", ")))
                .expression_attribute_values(":ttl", n(expires_at(day)))
                .send()
                .await?;
        }
        if !rollup.active_users.is_empty() {
            // Its own write, conditioned on the set's size: a day past the
            // cap still counts its requests.
            let users: Vec<String> = rollup.active_users.iter().map(ToString::to_string).collect();
            let result = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key))
                .update_expression("ADD active_users :users SET expires_at = :ttl")
                .condition_expression("attribute_not_exists(active_users) OR size(active_users) < :cap")
                .expression_attribute_values(":users", AttributeValue::Ss(users))
                .expression_attribute_values(":cap", n(MAX_ACTIVE_USERS_COUNTED as i64))
                .expression_attribute_values(":ttl", n(expires_at(day)))
                .send()
                .await;
            match result {
                Ok(_) => {}
                Err(err) if super::condition_failed(&err) => {}
                Err(err) => return Err(err.into()),
            }
        }
        Ok(())
    }

    /// Adds a process's counts to the tenant's day.
    pub async fn add_tenant_rollup(&self, scope: &TenantScope, day: &str, rollup: &Rollup) -> AppResult<()> {
        self.add_rollup(tenant_day_key(scope, day), day, rollup).await
    }

    /// Adds a process's counts to the platform's day.
    pub async fn add_platform_rollup(&self, day: &str, rollup: &Rollup) -> AppResult<()> {
        self.add_rollup(platform_day_key(day), day, rollup).await
    }

    /// The tenant's days that have a rollup, of those asked for.
    pub async fn tenant_rollups(&self, scope: &TenantScope, days: &[String]) -> AppResult<Vec<(String, Rollup)>> {
        let mut found = Vec::new();
        for chunk in days.chunks(100) {
            let keys = chunk.iter().map(|day| tenant_day_key(scope, day)).collect();
            for item in self.batch_get(keys, None, false).await? {
                let day = item.get("SK").and_then(|v| v.as_s().ok()).and_then(|sk| sk.strip_prefix("METRICS#"));
                if let Some(day) = day {
                    found.push((day.to_owned(), rollup_of(&item)));
                }
            }
        }
        found.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(found)
    }

    /// Replaces the tenant's rank with the latest aggregate's.
    pub async fn put_tenant_rank(&self, scope: &TenantScope, rank: &TenantRank) -> AppResult<()> {
        let mut item = super::to_item(rank)?;
        item.extend(super::item_key(scope, "RANK#LATEST"));
        self.client.put_item().table_name(&self.table).set_item(Some(item)).send().await?;
        Ok(())
    }

    /// The tenant's rank, once a nightly aggregate ran.
    pub async fn tenant_rank(&self, scope: &TenantScope) -> AppResult<Option<TenantRank>> {
        self.get_as(super::item_key(scope, "RANK#LATEST")).await
    }

    /// The platform's day, if anything was counted.
    pub async fn platform_rollup(&self, day: &str) -> AppResult<Option<Rollup>> {
        Ok(self.get_item(platform_day_key(day)).await?.as_ref().map(rollup_of))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rollup_survives_its_item() {
        let mut rollup = Rollup::default();
        rollup.add_request_to(Some("CustomersFunction"), 200, 12.0, Some(uuid::Uuid::now_v7()));
        rollup.add_request(503, 3_000.0, None);
        rollup.failed_sign_ins = 2;
        let mut item: Item = counters(&rollup).into_iter().map(|(k, v)| (k, n(v))).collect();
        let users = rollup.active_users.iter().map(ToString::to_string).collect();
        item.insert("active_users".into(), AttributeValue::Ss(users));
        assert_eq!(rollup_of(&item), rollup);
        assert_eq!(crate::domain::metrics::LATENCY_BUCKETS_MS.len() + 1, rollup.latency_buckets.len());
    }
}
