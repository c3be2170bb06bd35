//! Single sign-on: per-tenant SSO connections and the OIDC sign-in (initiate, callback).

use axum::Router;
use shared::AppState;

/// This part of the auth group's OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(), tags((name = "sso", description = "Single sign-on connections and sign-in over OIDC")))]
pub struct ApiDoc;

/// These routes; [`crate::routes`] merges them.
pub fn routes() -> Router<AppState> {
    Router::new()
}
