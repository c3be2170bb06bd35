//! The audit route group: a tenant's trail of who changed what (seed 003).
//! Entries are written by the store, in the transaction of each change; this
//! group only reads them.
//!
//! | route | handler | who |
//! |---|---|---|
//! | `GET /v1/audit/logs` | [`list_audit_logs`] | admins of the tenant (platform admin with `X-Tenant-ID`) |

use axum::{Router, extract::State, routing::get};
use shared::{
    AppError, AppResult, AppState,
    auth::{Principal, Role, Scope},
    domain::{
        audit::AuditEntryView,
        ids::UserId,
        values::{DateBound, Text},
    },
    error::FieldError,
    http::Page,
    store::audit_log::AuditFilter,
    web::extract::ListQuery,
};

/// This group's part of the OpenAPI document (`shared::web::openapi`).
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(list_audit_logs),
    tags((name = "audit", description = "The tenant's trail of who changed what (seed 003): one entry per changed resource, written in the transaction of the change, with secrets redacted. Entries leave the trail after the tenant's retention period"))
)]
pub struct ApiDoc;

/// This group's routes; its Lambda and the local server add the shared layers.
pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/audit/logs", get(list_audit_logs))
}

/// `GET /v1/audit/logs` filters (seed 003).
#[derive(Debug, eserde::Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditFilters {
    #[serde(default)]
    #[eserde(compat)]
    action: Option<Text<1, 100>>,
    #[serde(default)]
    #[eserde(compat)]
    resource_type: Option<Text<1, 100>>,
    #[serde(default)]
    #[eserde(compat)]
    user_id: Option<UserId>,
    #[serde(default)]
    #[eserde(compat)]
    date_from: Option<DateBound>,
    #[serde(default)]
    #[eserde(compat)]
    date_to: Option<DateBound>,
}

/// Lists the tenant's audit trail.
///
/// Newest first, filtered by `action`, `resource_type`, `user_id`,
/// `date_from` and `date_to` (RFC 3339 or `YYYY-MM-DD`, inclusive: a day
/// bound covers the whole day, UTC); paginated with `limit` and `cursor`.
#[utoipa::path(get, path = "/v1/audit/logs", tag = "audit", security(("bearer" = ["admin"]), ("api_key" = ["audit:read"])),
    params(
        ("action" = Option<String>, Query, description = "Only entries of this action: `create`, `update`, `delete`, or one a resource names (`transfer`, `grant`...)", max_length = 100),
        ("resource_type" = Option<String>, Query, description = "Only entries about this kind of resource (`user`, `invitation`, `api_key`, `tenant`, `project`...)", max_length = 100),
        ("user_id" = Option<String>, Query, description = "Only changes made by this user", format = Uuid),
        ("date_from" = inline(Option<DateBound>), Query, description = "Only entries at or after this instant, or from the start of this day (UTC)"),
        ("date_to" = inline(Option<DateBound>), Query, description = "Only entries at or before this instant, or up to the end of this day (UTC); not before `date_from`"),
    ),
    responses((status = 200, description = "A page of entries, newest first", body = Page<AuditEntryView>)))]
async fn list_audit_logs(
    State(state): State<AppState>,
    principal: Principal,
    query: Result<ListQuery<AuditFilters>, AppError>,
) -> AppResult<Page<AuditEntryView>> {
    let scope = principal.require(Role::Admin, Scope::AuditRead, "audit_logs")?;
    let ListQuery { page, filters } = query?;
    let from = filters.date_from.and_then(DateBound::first_instant);
    let to = filters.date_to.and_then(DateBound::last_instant);
    if let (Some(f), Some(t)) = (from, to)
        && f > t
    {
        return Err(AppError::validation(vec![FieldError::new("date_from", "must not be after date_to")]));
    }
    let filter = AuditFilter {
        action: filters.action.map(Text::into_inner),
        resource_type: filters.resource_type.map(Text::into_inner),
        user_id: filters.user_id,
        from,
        to,
    };
    let (data, next_cursor) = state.store.audit_entries(&scope, &filter, &page).await?;
    Ok(Page { data, next_cursor })
}

#[cfg(test)]
mod tests {
    use shared::web::extract::parse_body;

    use super::*;

    #[test]
    fn dates_are_instants_or_whole_days() {
        let parsed =
            parse_body::<AuditFilters>(br#"{"date_from": "2025-01-01", "date_to": "2025-01-01"}"#).expect("valid");
        let from = parsed.date_from.and_then(DateBound::first_instant).expect("from");
        let to = parsed.date_to.and_then(DateBound::last_instant).expect("to");
        assert_eq!(shared::domain::rfc3339(from), "2025-01-01T00:00:00Z");
        assert_eq!(shared::domain::rfc3339(to), "2025-01-01T23:59:59.999Z");
        for (body, field) in [
            (r#"{"date_from": "yesterday"}"#, "date_from"),
            (r#"{"date_to": "2024-13-01"}"#, "date_to"),
            (r#"{"user_id": "nope"}"#, "user_id"),
        ] {
            let Err(AppError::Api { details, .. }) = parse_body::<AuditFilters>(body.as_bytes()) else {
                panic!("{body} accepted");
            };
            assert_eq!(details["fields"][0]["field"], field, "{body}");
        }
    }
}
