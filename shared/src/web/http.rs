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

/// `GET /health`'s answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Health {
    /// Always `ok`: the process is up and routing.
    pub status: &'static str,
}

/// `GET /health`: the process is up (dependency checks live in the admin group).
pub fn health_router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new().route("/health", get(health))
}

/// The process is up and routing (no dependency is checked).
#[utoipa::path(get, path = "/health", tag = "platform",
    responses((status = 200, description = "Up", body = Health)))]
pub async fn health() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// Unknown routes answer in the error shape too.
pub async fn route_not_found() -> AppError {
    AppError::new(axum::http::StatusCode::NOT_FOUND, "not_found", "no such route")
}

/// Wraps a group's routes with the layers every deployment needs, outermost
/// first: request ids, error bodies, rate-limit headers, the idempotency layer.
pub fn finish_app(routes: Router<super::AppState>, state: super::AppState) -> Router {
    routes
        .fallback(route_not_found)
        .layer(axum::middleware::from_fn_with_state(state.clone(), super::idempotency::idempotency))
        .layer(axum::middleware::from_fn(super::rate_limit_headers))
        .layer(axum::middleware::from_fn(api_error_bodies))
        .layer(axum::middleware::from_fn_with_state(state.clone(), request_metrics))
        .layer(axum::middleware::from_fn(request_context))
        .with_state(state)
}

/// Measures the request (inside the request id's scope, around everything
/// else) and hands it to `crate::metrics`: an EMF line and the process's
/// rollups, flushed by a background task.
pub async fn request_metrics(
    axum::extract::State(state): axum::extract::State<super::AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let started = std::time::Instant::now();
    let route = match request.extensions().get::<axum::extract::MatchedPath>() {
        Some(path) => format!("{} {}", request.method(), path.as_str()),
        // Not a route: the raw path would make a dimension per scan.
        None => format!("{} (unmatched)", request.method()),
    };
    let slot = crate::metrics::CallerSlot::default();
    request.extensions_mut().insert(slot.clone());
    let response = next.run(request).await;
    crate::metrics::ensure_flusher(&state.store);
    crate::metrics::record(&crate::metrics::Sample {
        service: crate::aws::call_log::current_function().unwrap_or_else(|| "local".to_owned()),
        route,
        status: response.status().as_u16(),
        latency_ms: started.elapsed().as_secs_f64() * 1000.0,
        caller: slot.take(),
        request_id: current_request_id(),
        at: crate::domain::now(),
    });
    response
}

/// Every error the platform emits has the API.md body, including the ones
/// no handler wrote: the router's 405 (its `Allow` header kept), a body
/// limit's 413, a path that does not decode. Our own errors are JSON already
/// and pass untouched; so does every success.
pub async fn api_error_bodies(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    // The framework's text says what went wrong in its words; a short excerpt
    // is kept for 400s, which have many causes.
    let text = axum::body::to_bytes(body, 1024).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&text).trim().chars().take(200).collect::<String>();
    let error = framework_error(status, &method, text);
    let mut rewritten = error.into_response();
    for (name, value) in &parts.headers {
        if name != axum::http::header::CONTENT_TYPE && name != axum::http::header::CONTENT_LENGTH {
            rewritten.headers_mut().insert(name.clone(), value.clone());
        }
    }
    rewritten
}

fn framework_error(status: axum::http::StatusCode, method: &axum::http::Method, text: String) -> AppError {
    use axum::http::StatusCode;
    match status {
        // The router adds `Allow` to this response after the layers of the
        // route have run, so the body points at the header.
        StatusCode::METHOD_NOT_ALLOWED => AppError::new(
            status,
            "method_not_allowed",
            format!("this route does not answer {method}; the Allow header lists the methods it does"),
        )
        .with_details(json!({"method": method.as_str()})),
        StatusCode::PAYLOAD_TOO_LARGE => payload_too_large(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => unsupported_media_type(),
        StatusCode::NOT_FOUND => AppError::new(status, "not_found", "no such route"),
        StatusCode::BAD_REQUEST => AppError::new(
            status,
            "bad_request",
            if text.is_empty() { "the request is malformed".to_owned() } else { text },
        ),
        other if other.is_server_error() => {
            AppError::new(other, "internal", "an internal error occurred; quote the request_id when reporting it")
        }
        other => AppError::new(other, "request_refused", other.canonical_reason().unwrap_or("the request was refused")),
    }
}

/// The largest body any route reads: API Gateway's own payload limit.
pub const MAX_BODY_BYTES: usize = 10 * 1024 * 1024;

pub fn payload_too_large() -> AppError {
    AppError::new(
        axum::http::StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!("the request body is larger than this route accepts (at most {MAX_BODY_BYTES} bytes anywhere)"),
    )
}

pub fn unsupported_media_type() -> AppError {
    AppError::new(
        axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        "send the body as JSON with Content-Type: application/json",
    )
}

/// Runs `future` as part of the current request: its log lines and errors
/// keep the request id, and its AWS calls the function they are made for
/// (`aws::call_log`), for work moved onto its own task.
pub fn in_current_request<F: std::future::Future>(future: F) -> impl std::future::Future<Output = F::Output> {
    use tracing::Instrument;
    with_request_id(current_request_id(), crate::aws::call_log::carry(future.instrument(tracing::Span::current())))
}
