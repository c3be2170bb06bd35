//! The audit route group: a tenant's trail of who changed what (seed 003).
//! Entries are written by the store, in the transaction of each change; this
//! group only reads them.
//!
//! | route | handler | who |
//! |---|---|---|
//! | `GET /v1/audit/logs` | [`list_audit_logs`] | admins of the tenant (platform admin with `X-Tenant-ID`) |

use axum::{Router, extract::State, routing::get};
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;
use shared::{
    AppError, AppResult, AppState,
    auth::{Principal, Role, Scope},
    error::FieldError,
    http::{Page, QueryParams},
    store::audit_log::AuditFilter,
};
use uuid::Uuid;

/// This group's routes; its Lambda and the local server add the shared layers.
pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/audit/logs", get(list_audit_logs))
}

/// Newest first, filtered by `action`, `resource_type`, `user_id`,
/// `date_from`, `date_to` (RFC 3339 or `YYYY-MM-DD`, inclusive), paginated.
async fn list_audit_logs(
    State(state): State<AppState>,
    principal: Principal,
    params: QueryParams,
) -> AppResult<Page<Value>> {
    let scope = principal.require(Role::Admin, Scope::AuditRead, "audit_logs")?;
    params.allow_only(&["limit", "cursor", "action", "resource_type", "user_id", "date_from", "date_to"])?;
    let page = params.page()?;
    let mut problems = Vec::new();
    let user_id = params.get("user_id").and_then(|raw| match Uuid::parse_str(raw) {
        Ok(id) => Some(id.to_string()),
        Err(_) => {
            problems.push(FieldError::new("user_id", "must be a valid UUID"));
            None
        }
    });
    let from = params.get("date_from").and_then(|raw| parse_date(raw, false, "date_from", &mut problems));
    let to = params.get("date_to").and_then(|raw| parse_date(raw, true, "date_to", &mut problems));
    if let (Some(f), Some(t)) = (from, to)
        && f > t
    {
        problems.push(FieldError::new("date_from", "must not be after date_to"));
    }
    if !problems.is_empty() {
        return Err(AppError::validation(problems));
    }
    let filter = AuditFilter {
        action: params.get("action").map(str::to_owned),
        resource_type: params.get("resource_type").map(str::to_owned),
        user_id,
        from,
        to,
    };
    let (data, next_cursor) = state.store.audit_entries(&scope, &filter, &page).await?;
    Ok(Page { data, next_cursor })
}

/// A full timestamp, or a day (its first or, for an upper bound, last instant).
fn parse_date(raw: &str, end_of_day: bool, field: &str, problems: &mut Vec<FieldError>) -> Option<DateTime<Utc>> {
    if let Ok(at) = DateTime::parse_from_rfc3339(raw) {
        return Some(at.with_timezone(&Utc));
    }
    match NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
        Ok(day) => {
            let time = if end_of_day { day.and_hms_milli_opt(23, 59, 59, 999) } else { day.and_hms_opt(0, 0, 0) };
            time.map(|t| t.and_utc())
        }
        Err(_) => {
            problems.push(FieldError::new(field, "must be an RFC 3339 timestamp or a YYYY-MM-DD date"));
            None
        }
    }
}
