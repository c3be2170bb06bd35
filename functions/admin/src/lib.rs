//! The admin route group: the platform operator's view (seed 000, scenario
//! 6). Platform admins only, by a signed-in session (never an API key).
//!
//! | route | handler | who |
//! |---|---|---|
//! | `GET /v1/admin/health` | [`admin_health`] | platform admin |
//! | `GET /v1/admin/tenants/{id}/health` | [`tenant_health`] | platform admin |
//! | `GET /v1/admin/analytics/enterprise-dashboard` | [`enterprise_dashboard`] | platform admin |
//!
//! docs/operations.md has the rules behind every figure.

pub mod analytics;
pub mod health;
pub mod tenant_health;

use axum::{Json, Router, extract::State, routing::get};
use shared::{
    AppError, AppResult, AppState, auth::Principal, domain::ids::TenantId, error::FieldError, http::QueryParams,
    web::extract::PathIds,
};

pub use analytics::EnterpriseDashboard;
pub use health::HealthReport;
pub use tenant_health::TenantHealth;

/// This group's part of the OpenAPI document (`shared::web::openapi`).
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(admin_health, tenant_health, enterprise_dashboard),
    tags((name = "admin", description = "The platform operator's view (seed 000, scenario 6): dependency health from real checks and request figures from the metrics rollups; a figure with no source is `not_applicable`"))
)]
pub struct ApiDoc;

/// This group's routes; its Lambda and the local server add the shared layers.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/admin/health", get(admin_health))
        .route("/v1/admin/tenants/{id}/health", get(tenant_health))
        .route("/v1/admin/analytics/enterprise-dashboard", get(enterprise_dashboard))
}

/// Platform health
///
/// Every dependency checked at once, each with a 2 s timeout and its own
/// latency: the table (a read of today's platform rollup), the bucket, the
/// bus, the workflow state machine, and every queue and DLQ with its depth.
/// `status` follows docs/operations.md: `unhealthy` when the table, the
/// bucket or the bus fails; `degraded` when a queue or the state machine
/// fails, a DLQ holds messages, a check takes over 1 s, or today's 5xx rate
/// is 5% or more over at least 20 requests. `findings` says which.
/// `performance_metrics` come from today's rollup (UTC). Answers are cached
/// for 5 s per process (`checked_at` says when they were taken).
#[utoipa::path(get, path = "/v1/admin/health", tag = "admin", security(("bearer" = ["platform_admin"])),
    responses((status = 200, description = "The platform's health", body = HealthReport)))]
pub async fn admin_health(State(state): State<AppState>, principal: Principal) -> AppResult<Json<HealthReport>> {
    principal.require_platform_admin("admin_health")?;
    let targets = health::Targets::from_env(&state);
    Ok(Json(health::cached_report(&state, &targets).await))
}

/// A tenant's health
///
/// Seed 000's shape from the tenant's own data: today's and the last 7
/// UTC days' request rollups (active users, requests, latency, error rates,
/// failed sign-ins), its webhook endpoints, seats and projects against its
/// plan, open integration alerts and unpaid invoices. `health_score` (0 to
/// 10) is the weighted mean of `score_components`, each with its rule's
/// basis (docs/operations.md, "Tenant health"); `alerts` and
/// `recommendations` come from rules over the same figures. A figure with
/// no source (per-tenant CPU, AI requests) is `not_applicable`.
#[utoipa::path(get, path = "/v1/admin/tenants/{id}/health", tag = "admin", security(("bearer" = ["platform_admin"])),
    responses((status = 200, description = "The tenant's health", body = TenantHealth)))]
pub async fn tenant_health(
    State(state): State<AppState>,
    principal: Principal,
    PathIds(TenantId(id)): PathIds<TenantId>,
) -> AppResult<Json<TenantHealth>> {
    let admin = principal.require_platform_admin("tenant_health")?;
    let scope = admin.scope_of(id);
    tenant_health::tenant_health(&state, &scope).await?.map(Json).ok_or_else(|| AppError::not_found("tenant"))
}

/// Enterprise analytics dashboard
///
/// Seed 000's sections for one tenant over `period`: engagement (mean
/// daily and weekly active users, retention, feature adoption by active
/// day) from its request rollups, completed tasks from its projects,
/// revenue from its paid invoices and plan, performance from its rollups,
/// storage and AI requests from its metering. Each field's formula is in
/// its description; figures with no source (industry comparison, code
/// quality, developer satisfaction, compute hours, tokens) are
/// `not_applicable`. The rank among the plan's tenants is the nightly
/// aggregate's (null until its first run).
#[utoipa::path(get, path = "/v1/admin/analytics/enterprise-dashboard", tag = "admin", security(("bearer" = ["platform_admin"])),
    params(
        ("tenant_id" = String, Query, format = Uuid, description = "The tenant"),
        ("period" = Option<String>, Query, description = "`<n>d`, 1 to 90 days ending today, UTC (default `30d`)"),
    ),
    responses((status = 200, description = "The tenant's analytics", body = EnterpriseDashboard)))]
pub async fn enterprise_dashboard(
    State(state): State<AppState>,
    principal: Principal,
    QueryParams(params): QueryParams,
) -> AppResult<Json<EnterpriseDashboard>> {
    let admin = principal.require_platform_admin("analytics")?;
    let mut errors = Vec::new();
    for name in params.keys().filter(|k| !matches!(k.as_str(), "tenant_id" | "period")) {
        errors.push(FieldError::new(name, "unknown query parameter"));
    }
    let tenant_id = match params.get("tenant_id").map(|id| uuid::Uuid::parse_str(id)) {
        Some(Ok(id)) => Some(id),
        Some(Err(_)) => {
            errors.push(FieldError::new("tenant_id", "must be a UUID"));
            None
        }
        None => {
            errors.push(FieldError::new("tenant_id", "is required"));
            None
        }
    };
    let period = params.get("period").cloned().unwrap_or_else(|| "30d".to_owned());
    let days = analytics::period_days(&period);
    if days.is_none() {
        errors.push(FieldError::new("period", "must be <n>d, 1 to 90 days (7d, 30d, 90d)"));
    }
    let (Some(tenant_id), Some(days)) = (tenant_id, days) else {
        errors.sort_by(|a, b| a.field.cmp(&b.field));
        return Err(AppError::validation(errors));
    };
    if !errors.is_empty() {
        return Err(AppError::validation(errors));
    }
    let scope = admin.scope_of(tenant_id);
    analytics::dashboard(&state, &scope, &period, days).await?.map(Json).ok_or_else(|| AppError::not_found("tenant"))
}
