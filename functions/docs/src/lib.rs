//! The docs route group: the API described for people and machines.
//!
//! | route | handler |
//! |---|---|
//! | `GET /v1/openapi.json` | [`openapi_document`] |
//! | `GET /docs` | [`reference_page`] |
//! | `GET /docs/redoc.standalone.js` | [`redoc_bundle`] |
//!
//! The document is docs/openapi.json as committed: generated from the route
//! groups' annotations by `cargo run -p local --bin openapi`, and checked
//! against a fresh generation by the registry test, so what is served is
//! what the code does. Redoc is vendored (docs/reference/, `make
//! vendor-redoc`): the page loads nothing from a CDN.

use axum::{
    Router,
    http::header,
    response::{Html, IntoResponse},
    routing::get,
};

/// The committed OpenAPI 3.1 document.
pub const OPENAPI_JSON: &str = include_str!("../../../docs/openapi.json");
/// Redoc's standalone bundle, as vendored.
const REDOC_JS: &str = include_str!("../../../docs/reference/redoc.standalone.js");
const REFERENCE_HTML: &str = include_str!("../../../docs/reference/index.html");

/// The routes, for any state (the local server's or none).
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/v1/openapi.json", get(openapi_document))
        .route("/docs", get(reference_page))
        .route("/docs/redoc.standalone.js", get(redoc_bundle))
}

/// The Lambda's whole app: the routes with the request id and error body
/// layers (no state: nothing here touches AWS).
pub fn app() -> Router {
    routes()
        .fallback(shared::http::route_not_found)
        .layer(axum::middleware::from_fn(shared::http::api_error_bodies))
        .layer(axum::middleware::from_fn(shared::http::request_context))
}

/// This group's part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(openapi_document, reference_page, redoc_bundle),
    tags((name = "docs", description = "This document, and the reference page rendered from it"))
)]
pub struct ApiDoc;

/// The OpenAPI 3.1 document of the whole API, webhooks included.
#[utoipa::path(get, path = "/v1/openapi.json", tag = "docs",
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json", body = Object)))]
pub async fn openapi_document() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json"), (header::CACHE_CONTROL, "public, max-age=300")], OPENAPI_JSON)
}

/// The API reference, rendered by Redoc from `/v1/openapi.json`.
#[utoipa::path(get, path = "/docs", tag = "docs",
    responses((status = 200, description = "The reference page", content_type = "text/html", body = String)))]
pub async fn reference_page() -> impl IntoResponse {
    ([(header::CACHE_CONTROL, "public, max-age=300")], Html(REFERENCE_HTML))
}

/// Redoc's bundle, served from here so the page needs no CDN.
#[utoipa::path(get, path = "/docs/redoc.standalone.js", tag = "docs",
    responses((status = 200, description = "Redoc's standalone bundle", content_type = "application/javascript", body = String)))]
pub async fn redoc_bundle() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "application/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        REDOC_JS,
    )
}
