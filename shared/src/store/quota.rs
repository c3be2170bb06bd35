//! Quotas enforced where usage grows. A reservation is one more write of the
//! transaction that creates the resources: an `ADD` on the tenant's counter
//! under the condition that the counter stays within the limit, so concurrent
//! requests can never pass it together (no count-then-write). The counters
//! live on the tenant item (`T#<tenant>#` / `TENANT`): `user_count`,
//! `project_count`, `users_<role>`, `pending_invitations`.
//!
//! | condition | fails when |
//! |---|---|
//! | [`QUOTA_FULL`] | the reservation would pass the plan's limit (or the tenant is gone) |
//! | [`TENANT_MISSING`] | a counter change without a limit found no tenant item |

use aws_sdk_dynamodb::types::{Update, builders::UpdateBuilder};

use super::{
    Store, n, number_attr,
    tenants::tenant_key,
    tx::{Cond, Tx},
};
use crate::{
    auth::TenantScope,
    domain::{
        audit::{cached_retention, remember_retention, retention_days_of},
        plans::{Quota, effective_limits, quota_exceeded},
        tenant::Tenant,
    },
    error::{AppError, AppResult},
    events::{Event, catalogue::QuotaExceeded},
};

/// A reservation would pass the plan's limit: answer it with
/// [`Store::quota_refusal`].
pub const QUOTA_FULL: Cond = Cond("quota_full");
/// The tenant item a counter change targets does not exist.
pub const TENANT_MISSING: Cond = Cond("tenant_missing");

/// An `ADD` of each `(counter, delta)` on the tenant item, as an Update
/// still without a condition, and its `ADD ...` clause (the counters are
/// named `#c0`, `#c1`, ... in the order given).
pub(crate) fn tenant_counters(scope: &TenantScope, counters: &[(String, i64)]) -> (UpdateBuilder, String) {
    let mut update = Update::builder().set_key(Some(tenant_key(scope)));
    let mut adds = Vec::with_capacity(counters.len());
    for (i, (counter, delta)) in counters.iter().enumerate() {
        adds.push(format!("#c{i} :c{i}"));
        update = update
            .expression_attribute_names(format!("#c{i}"), counter)
            .expression_attribute_values(format!(":c{i}"), n(*delta));
    }
    (update, format!("ADD {}", adds.join(", ")))
}

/// Adds to `tx` the tenant-item update that takes `amount` of `quota`
/// (negative gives back), refused as [`QUOTA_FULL`] when the counter would
/// pass `limit` (`None`: no limit; a give-back is never refused, only a
/// missing tenant fails it, as [`TENANT_MISSING`]). `extra` adds more
/// counters of the same item (role counters, pending invitations).
pub fn quota_change(
    tx: &mut Tx,
    scope: &TenantScope,
    quota: Quota,
    amount: i64,
    limit: Option<i64>,
    extra: &[(&str, i64)],
) {
    let counters: Vec<(String, i64)> = std::iter::once((quota.counter().to_owned(), amount))
        .chain(extra.iter().map(|(counter, delta)| ((*counter).to_owned(), *delta)))
        .collect();
    let (mut update, mut expression) = tenant_counters(scope, &counters);
    if amount > 0 {
        // `last_user_added` (seed 002 stats), `last_project_added`, ...
        expression.push_str(" SET #last = :now");
        update = update
            .expression_attribute_names("#last", format!("last_{}_added", quota.name().trim_end_matches('s')))
            .expression_attribute_values(":now", super::s(crate::domain::now_rfc3339()));
    }
    let update = update.update_expression(expression);
    match limit {
        // `#c0` is the quota's own counter.
        Some(limit) if amount > 0 => tx.update(
            update
                .condition_expression("attribute_exists(PK) AND (attribute_not_exists(#c0) OR #c0 <= :threshold)")
                .expression_attribute_values(":threshold", n(limit - amount)),
            Some(QUOTA_FULL),
        ),
        _ => tx.update(update.condition_expression("attribute_exists(PK)"), Some(TENANT_MISSING)),
    };
}

impl Store {
    /// The refusal for a reservation that failed its condition: reads the
    /// current usage for the body and emits `tenant.quota_exceeded`.
    pub async fn quota_refusal(&self, scope: &TenantScope, quota: Quota, requested: i64) -> AppError {
        let Ok(Some((tenant, _))) = self.get_tenant(scope).await else {
            return AppError::not_found("tenant");
        };
        let current = match self.counter(scope, quota).await {
            Ok(v) => v,
            Err(e) => return e,
        };
        let limit = quota.limit(&effective_limits(&tenant)).unwrap_or(i64::MAX);
        let event = Event::QuotaExceeded(QuotaExceeded {
            tenant_id: tenant.id,
            quota_type: quota.name().to_owned(),
            current_usage: current,
            plan_limit: limit,
            requested_increase: requested,
            plan: tenant.plan.clone(),
        });
        // Nothing else is written: the refusal is an outbox event of its own.
        if let Err(err) = self.emit(scope, event).await {
            return err;
        }
        quota_exceeded(quota, current, limit, requested, &tenant.plan)
    }

    pub async fn counter(&self, scope: &TenantScope, quota: Quota) -> AppResult<i64> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(tenant_key(scope)))
            .projection_expression("#c")
            .expression_attribute_names("#c", quota.counter())
            .consistent_read(true)
            .send()
            .await?;
        Ok(output.item.as_ref().map(|i| number_attr(i, quota.counter())).unwrap_or(0))
    }

    /// The tenant (for its limits) and, cached, its audit retention.
    pub async fn tenant_for_change(&self, scope: &TenantScope) -> AppResult<Tenant> {
        let (tenant, _) = self.get_tenant(scope).await?.ok_or_else(|| AppError::not_found("tenant"))?;
        remember_retention(tenant.id, retention_days_of(&tenant.configuration));
        Ok(tenant)
    }

    /// How long the tenant keeps audit entries (cached per warm process).
    pub async fn audit_retention(&self, scope: &TenantScope) -> AppResult<i64> {
        if let Some(days) = cached_retention(scope.tenant_id()) {
            return Ok(days);
        }
        Ok(retention_days_of(&self.tenant_for_change(scope).await?.configuration))
    }
}
