//! The admin route group: the platform operator's view (seed 000, scenario
//! 6). Platform admins only, by a signed-in session (never an API key).
//!
//! | route | handler | who |
//! |---|---|---|
//! | `GET /v1/admin/health` | [`platform_health`] | platform admin |
//!
//! docs/operations.md has the rules behind every figure.

pub mod health;

use axum::{Json, Router, extract::State, routing::get};
use shared::{AppResult, AppState, auth::Principal};

pub use health::HealthReport;

/// This group's part of the OpenAPI document (`shared::web::openapi`).
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(platform_health),
    tags((name = "admin", description = "The platform operator's view (seed 000, scenario 6): dependency health from real checks and request figures from the metrics rollups; a figure with no source is `not_applicable`"))
)]
pub struct ApiDoc;

/// This group's routes; its Lambda and the local server add the shared layers.
pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/admin/health", get(platform_health))
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
pub async fn platform_health(State(state): State<AppState>, principal: Principal) -> AppResult<Json<HealthReport>> {
    principal.require_platform_admin("platform_health")?;
    let targets = health::Targets::from_env(&state);
    Ok(Json(health::cached_report(&state, &targets).await))
}
