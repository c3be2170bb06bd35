//! Integration alerts (`domain::alert`): `ALERT#<id>` in the tenant's
//! partition, written by the transactions that end a sync run or a workflow
//! execution ([`alert_item`]), read and resolved through the API. They
//! expire [`ALERT_RETENTION_DAYS`] after they were raised.

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use uuid::Uuid;

use super::{Item, PageRequest, Store, condition_failed, item_key as key, n, s, to_item};
use crate::{
    auth::TenantScope,
    domain::alert::{ALERT_RETENTION_DAYS, Alert, AlertStatus},
    error::AppResult,
};

pub const ALERT_RESOURCE: &str = "integration_alert";

fn alert_key(scope: &TenantScope, id: Uuid) -> Item {
    key(scope, format!("ALERT#{id}"))
}

/// The alert as an item, for the transaction that raises it.
pub(crate) fn alert_item(scope: &TenantScope, alert: &Alert) -> AppResult<Item> {
    let mut item = to_item(alert)?;
    item.extend(alert_key(scope, alert.id));
    item.insert("expires_at".into(), n(chrono::Utc::now().timestamp() + ALERT_RETENTION_DAYS * 86_400));
    Ok(item)
}

impl Store {
    /// Alerts, oldest first by id order, `status` if given.
    pub async fn list_alerts(
        &self,
        scope: &TenantScope,
        status: Option<AlertStatus>,
        page: &PageRequest,
    ) -> AppResult<(Vec<Alert>, Option<String>)> {
        let query = super::filter_equal(
            self.prefix_query(scope, "ALERT#").consistent_read(true),
            &[("status", status.map(|st| s(st.as_str())))],
            &[],
        );
        let context = format!("alerts|{}|{status:?}", scope.pk());
        self.list_page(query, page, &context).await
    }

    /// Every open alert of the tenant (the dashboards).
    pub async fn open_alerts(&self, scope: &TenantScope) -> AppResult<Vec<Alert>> {
        let query = super::filter_equal(
            self.prefix_query(scope, "ALERT#"),
            &[("status", Some(s(AlertStatus::Open.as_str())))],
            &[],
        );
        Ok(super::decode_listed(self.query_all(query).await?))
    }

    pub async fn get_alert(&self, scope: &TenantScope, id: Uuid) -> AppResult<Option<Alert>> {
        self.get_as(alert_key(scope, id)).await
    }

    /// Resolves an open alert; the alert as it is after (`None` when there
    /// is no such alert). An alert already resolved stays as it was.
    pub async fn resolve_alert(&self, scope: &TenantScope, id: Uuid, by: &str) -> AppResult<Option<Alert>> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(alert_key(scope, id)))
            .update_expression("SET #status = :resolved, resolved_at = :now, resolved_by = :by")
            .condition_expression("attribute_exists(PK) AND #status = :open")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":resolved", s(AlertStatus::Resolved.as_str()))
            .expression_attribute_values(":open", s(AlertStatus::Open.as_str()))
            .expression_attribute_values(":now", s(crate::domain::now_rfc3339()))
            .expression_attribute_values(":by", AttributeValue::S(by.to_owned()))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(output) => Ok(output.attributes.and_then(|item| super::decode_listed([item]).pop())),
            Err(err) if condition_failed(&err) => self.get_alert(scope, id).await,
            Err(err) => Err(err.into()),
        }
    }
}
