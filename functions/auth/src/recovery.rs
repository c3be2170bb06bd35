//! Account mail flows: password reset and email verification.

use axum::Router;
use shared::AppState;

/// This part of the auth group's OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(), tags((name = "account", description = "Password reset and email verification")))]
pub struct ApiDoc;

/// These routes; [`crate::routes`] merges them.
pub fn routes() -> Router<AppState> {
    Router::new()
}
