//! HTTP plumbing every route group shares: request ids, the query string,
//! pages, health, and the layers around a group's routes (`finish_app`).
//! Bodies, path ids and list queries are parsed by `super::extract`.

use axum::{
    Json, Router,
    extract::{FromRequestParts, Request},
    http::{HeaderValue, request::Parts},
    middleware::Next,
    response::{IntoResponse, Response},
    routing::get,
};
use serde::Serialize;
use serde_json::json;

use crate::{error::AppError, request_id::with_request_id};
pub use crate::{request_id::current_request_id, store::PageRequest};

pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Outermost middleware: takes API Gateway's request id (or makes one), keeps it
/// for the whole request so errors can quote it, and echoes it as a header.
pub async fn request_context(request: Request, next: Next) -> Response {
    let request_id = incoming_request_id(&request).unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        method = %request.method(),
        path = %request.uri().path(),
    );
    let id = request_id.clone();
    let mut response = with_request_id(id, async move {
        use tracing::Instrument;
        let response = next.run(request).instrument(span.clone()).await;
        span.in_scope(|| tracing::info!(status = response.status().as_u16(), "served"));
        response
    })
    .await;
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    response
}

fn incoming_request_id(request: &Request) -> Option<String> {
    // lambda_http puts API Gateway's context in the extensions; its request id
    // ties our log lines to API Gateway's access log.
    use lambda_http::request::RequestContext;
    match request.extensions().get::<RequestContext>() {
        Some(RequestContext::ApiGatewayV2(ctx)) if ctx.request_id.is_some() => {
            return ctx.request_id.clone();
        }
        Some(RequestContext::ApiGatewayV1(ctx)) if ctx.request_id.is_some() => {
            return ctx.request_id.clone();
        }
        _ => {}
    }
    request
        .headers()
        .get("x-amzn-requestid")
        .or_else(|| request.headers().get(REQUEST_ID_HEADER))
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned)
}

/// Query string as a flat map (`extract::ListQuery` reads it).
pub struct QueryParams(pub std::collections::HashMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for QueryParams {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or("");
        let map = serde_urlencoded_pairs(query)
            .map_err(|_| AppError::invalid_field("query", "the query string is malformed"))?;
        Ok(QueryParams(map))
    }
}

fn serde_urlencoded_pairs(query: &str) -> Result<std::collections::HashMap<String, String>, ()> {
    axum::extract::Query::<std::collections::HashMap<String, String>>::try_from_uri(
        &format!("/?{query}").parse().map_err(|_| ())?,
    )
    .map(|q| q.0)
    .map_err(|_| ())
}

pub const DEFAULT_PAGE_SIZE: i32 = 20;
pub const MAX_PAGE_SIZE: i32 = 100;

/// A list response: `{"data": [...], "next_cursor": ...}`; `next_cursor` is
/// `null` on the last page and is sent back as `?cursor=` for the next one.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub data: Vec<T>,
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

impl<T: Serialize> IntoResponse for Page<T> {
    fn into_response(self) -> Response {
        Json(self).into_response()
    }
}

/// `GET /health`: the process is up (dependency checks live in the admin group).
pub fn health_router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new().route("/health", get(|| async { Json(json!({ "status": "ok" })) }))
}

/// Unknown routes answer in the error shape too.
pub async fn route_not_found() -> AppError {
    AppError::new(axum::http::StatusCode::NOT_FOUND, "not_found", "no such route")
}

/// Wraps a group's routes with the layers every deployment needs, outermost
/// first: request ids, rate-limit headers, the idempotency layer.
pub fn finish_app(routes: Router<super::AppState>, state: super::AppState) -> Router {
    routes
        .fallback(route_not_found)
        .layer(axum::middleware::from_fn_with_state(state.clone(), super::idempotency::idempotency))
        .layer(axum::middleware::from_fn(super::rate_limit_headers))
        .layer(axum::middleware::from_fn(request_context))
        .with_state(state)
}

/// Runs `future` as part of the current request: its log lines and errors
/// keep the request id, and its AWS calls the function they are made for
/// (`aws::call_log`), for work moved onto its own task.
pub fn in_current_request<F: std::future::Future>(future: F) -> impl std::future::Future<Output = F::Output> {
    use tracing::Instrument;
    with_request_id(current_request_id(), crate::aws::call_log::carry(future.instrument(tracing::Span::current())))
}
