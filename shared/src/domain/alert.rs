//! Integration alerts (seed 001, "Integration Monitoring"): a sync
//! connection whose runs failed [`SYNC_FAILURE_ALERT_THRESHOLD`] times in a
//! row, and a workflow execution that ended `failed` or `timed_out`. Each
//! alert is an item written in the transaction that ended the run or the
//! execution, beside its event (`integration.sync.failing`,
//! `workflow.execution.failed`), so a tenant's webhooks hear of it and
//! `GET /v1/integrations/alerts` and the dashboards list it. A connection's
//! alert resolves itself at its next successful run; any alert can be
//! resolved by an admin.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::ids::derived_id;

/// Failed runs in a row that raise a connection's alert.
pub const SYNC_FAILURE_ALERT_THRESHOLD: i64 = 3;
/// Alerts are kept this long after they were raised.
pub const ALERT_RETENTION_DAYS: i64 = 30;

crate::string_enum!(
    /// What an alert is about.
    AlertKind {
        SyncFailing => "sync_failing",
        WorkflowFailed => "workflow_failed",
    }
);

crate::string_enum!(
    AlertStatus {
        Open => "open",
        Resolved => "resolved",
    }
);

/// An alert as stored and shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Alert {
    pub id: Uuid,
    pub kind: AlertKind,
    pub status: AlertStatus,
    /// The connection (`sync_failing`) or the execution (`workflow_failed`).
    pub subject_id: Uuid,
    /// The connection's or the workflow's name.
    pub subject_name: String,
    /// The connection's source provider.
    #[serde(default)]
    pub provider_id: Option<Uuid>,
    /// The execution's workflow.
    #[serde(default)]
    pub workflow_id: Option<Uuid>,
    /// The last error, as the run or the execution recorded it.
    pub message: String,
    /// `sync_failing`: the failed runs in a row when it was raised.
    #[serde(default)]
    pub consecutive_failures: Option<i64>,
    #[schema(format = DateTime)]
    pub raised_at: String,
    #[serde(default)]
    #[schema(format = DateTime)]
    pub resolved_at: Option<String>,
    /// `auto` (the connection's next run succeeded) or the user's id.
    #[serde(default)]
    pub resolved_by: Option<String>,
}

/// A connection has one alert id: raising it again after it resolved
/// overwrites the old one.
pub fn sync_alert_id(connection_id: Uuid) -> Uuid {
    derived_id(&["alert", AlertKind::SyncFailing.as_str(), &connection_id.to_string()])
}

pub fn workflow_alert_id(execution_id: Uuid) -> Uuid {
    derived_id(&["alert", AlertKind::WorkflowFailed.as_str(), &execution_id.to_string()])
}

/// An error message's class, for the dashboards' error analysis: the
/// message's own words decide, in this order (docs/integrations.md,
/// "Monitoring").
pub fn error_class(message: &str) -> &'static str {
    let m = message.to_ascii_lowercase();
    if let Some(reason) = m.strip_prefix("rejected: ") {
        return match reason.trim() {
            "missing_signature" | "malformed_signature" | "bad_signature" => "signature_rejected",
            "stale_timestamp" => "stale_timestamp",
            "ip_not_allowed" => "ip_not_allowed",
            "payload_too_large" => "payload_too_large",
            _ => "payload_rejected",
        };
    }
    let answered =
        |codes: &[&str]| codes.iter().any(|c| m.contains(&format!("answered {c}")) || m.contains(&format!("http {c}")));
    if m.contains("timed out") || m.contains("timeout") {
        "provider_timeout"
    } else if answered(&["5"]) {
        "provider_server_error"
    } else if answered(&["401", "403"]) {
        "provider_auth_error"
    } else if answered(&["4"]) {
        "provider_client_error"
    } else if m.contains("connect") || m.contains("dns") || m.contains("refused") || m.contains("no answer") {
        "provider_unreachable"
    } else if m.contains("json") || m.contains("array") || m.contains("not an object") {
        "bad_answer"
    } else if m.contains("record ") || m.contains("a record without") {
        "record_refused"
    } else if m.contains("approval") {
        "approval"
    } else {
        "other"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_fall_in_documented_classes() {
        assert_eq!(error_class("rejected: bad_signature"), "signature_rejected");
        assert_eq!(error_class("rejected: ip_not_allowed"), "ip_not_allowed");
        assert_eq!(error_class("the provider answered HTTP 503"), "provider_server_error");
        assert_eq!(error_class("the provider's API answered 500"), "provider_server_error");
        assert_eq!(error_class("the provider's answer has no data array"), "bad_answer");
        assert_eq!(error_class("the provider answered HTTP 401"), "provider_auth_error");
        assert_eq!(error_class("the provider answered HTTP 404"), "provider_client_error");
        assert_eq!(error_class("request timed out after 10 s"), "provider_timeout");
        assert_eq!(error_class("error trying to connect: Connection refused"), "provider_unreachable");
        assert_eq!(error_class("the answer is not JSON"), "bad_answer");
        assert_eq!(error_class("something odd"), "other");
    }

    #[test]
    fn a_connection_keeps_one_alert_id() {
        let connection = Uuid::now_v7();
        assert_eq!(sync_alert_id(connection), sync_alert_id(connection));
        assert_ne!(sync_alert_id(connection), workflow_alert_id(connection));
    }
}
