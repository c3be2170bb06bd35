//! TOTP multi-factor authentication: setup, verify, the sign-in challenge, disable, backup codes.

use axum::Router;
use shared::AppState;

/// This part of the auth group's OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(), tags((name = "mfa", description = "Multi-factor authentication (TOTP) and backup codes")))]
pub struct ApiDoc;

/// These routes; [`crate::routes`] merges them.
pub fn routes() -> Router<AppState> {
    Router::new()
}
