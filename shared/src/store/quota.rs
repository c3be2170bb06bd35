//! Quotas enforced where usage grows. A reservation is one more item of the
//! transaction that creates the resources: an `ADD` on the tenant's counter
//! under the condition that the counter stays within the limit, so concurrent
//! requests can never pass it together (no count-then-write).

use aws_sdk_dynamodb::types::{TransactWriteItem, Update};

use super::{Store, n, number_attr, tenants::tenant_key};
use crate::{
    audit::{cached_retention, remember_retention, retention_days_of},
    auth::TenantScope,
    domain::{
        plans::{Quota, effective_limits, quota_exceeded},
        tenant::Tenant,
    },
    error::{AppError, AppResult},
    events::DomainEvent,
};

impl Store {
    /// The tenant-item update that takes `amount` of `quota` (negative gives
    /// back), refusing when the counter would pass `limit` (`None`: no limit).
    /// `extra` adds more `SET`/`ADD` clauses of the same item (role counters).
    pub fn quota_change(
        &self,
        scope: &TenantScope,
        quota: Quota,
        amount: i64,
        limit: Option<i64>,
        extra: &[(&str, i64)],
    ) -> AppResult<TransactWriteItem> {
        let mut adds = vec![format!("#q :amount")];
        let mut update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(tenant_key(scope)))
            .expression_attribute_names("#q", quota.counter())
            .expression_attribute_values(":amount", n(amount));
        for (i, (counter, delta)) in extra.iter().enumerate() {
            adds.push(format!("#x{i} :x{i}"));
            update = update
                .expression_attribute_names(format!("#x{i}"), *counter)
                .expression_attribute_values(format!(":x{i}"), n(*delta));
        }
        let mut expression = format!("ADD {}", adds.join(", "));
        if amount > 0 {
            // `last_user_added` (seed 002 stats), `last_project_added`, ...
            expression.push_str(" SET #last = :now");
            update = update
                .expression_attribute_names("#last", format!("last_{}_added", quota.name().trim_end_matches('s')))
                .expression_attribute_values(":now", super::s(crate::domain::now_rfc3339()));
        }
        update = update.update_expression(expression);
        update = match limit {
            Some(limit) if amount > 0 => update
                .condition_expression("attribute_exists(PK) AND (attribute_not_exists(#q) OR #q <= :threshold)")
                .expression_attribute_values(":threshold", n(limit - amount)),
            _ => update.condition_expression("attribute_exists(PK)"),
        };
        Ok(TransactWriteItem::builder().update(update.build().map_err(AppError::internal)?).build())
    }

    /// The refusal for a reservation that failed its condition: reads the
    /// current usage for the body and publishes `tenant.quota_exceeded`.
    pub async fn quota_refusal(
        &self,
        events: &crate::events::EventPublisher,
        scope: &TenantScope,
        quota: Quota,
        requested: i64,
    ) -> AppError {
        let Ok(Some((tenant, _))) = self.get_tenant(scope).await else {
            return AppError::not_found("tenant");
        };
        let current = match self.counter(scope, quota).await {
            Ok(v) => v,
            Err(e) => return e,
        };
        let limit = quota.limit(&effective_limits(&tenant)).unwrap_or(i64::MAX);
        let event = DomainEvent::new(
            "tenant.quota_exceeded",
            tenant.id,
            serde_json::json!({
                "tenant_id": tenant.id, "quota_type": quota.name(), "current_usage": current,
                "plan_limit": limit, "requested_increase": requested, "plan": tenant.plan,
            }),
        );
        events.publish_after_commit(&event).await;
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
