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
//! what the code does. It is served minified, gzipped to callers that accept
//! it (both made at build time, build.rs), with an `ETag` for revalidation;
//! to callers that refuse gzip the Lambda answer carries it as a JSON string
//! literal escaped at build time ([`lambda`]). Redoc is vendored
//! (docs/reference/, `make vendor-redoc`): the page loads nothing from a CDN.

pub mod lambda;

use std::sync::OnceLock;

use axum::{
    Router,
    http::{HeaderMap, StatusCode, header},
    response::{Html, IntoResponse, Response},
    routing::get,
};

/// The committed OpenAPI 3.1 document, minified (build.rs).
pub const OPENAPI_JSON: &str = include_str!(concat!(env!("OUT_DIR"), "/openapi.min.json"));
/// The same bytes gzipped: 8 % of the pretty file on the wire, and a quarter
/// of the plain answer's time (0.24-0.29 ms against 0.92-0.99 ms of own time
/// in the bench, docs/performance.md).
const OPENAPI_JSON_GZIP: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/openapi.min.json.gz"));
/// The minified document as a JSON string literal (build.rs): the Lambda
/// answer's `body` as it stands.
const OPENAPI_JSON_LITERAL: &str = include_str!(concat!(env!("OUT_DIR"), "/openapi.min.json.literal"));
/// A strong validator of the document (SHA-256 prefix of the minified bytes).
const OPENAPI_ETAG: &str = include_str!(concat!(env!("OUT_DIR"), "/openapi.etag"));
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
pub async fn openapi_document(request: HeaderMap) -> Response {
    let cache = [
        (header::CACHE_CONTROL, "public, max-age=300"),
        (header::ETAG, OPENAPI_ETAG),
        (header::VARY, "accept-encoding"),
    ];
    if matches_etag(&request) {
        return (StatusCode::NOT_MODIFIED, cache).into_response();
    }
    if accepts_gzip(&request) {
        ([(header::CONTENT_TYPE, "application/json"), (header::CONTENT_ENCODING, "gzip")], cache, OPENAPI_JSON_GZIP)
            .into_response()
    } else {
        let mut response = ([(header::CONTENT_TYPE, "application/json")], cache, OPENAPI_JSON).into_response();
        if let Some(literal) = openapi_json_literal() {
            response.extensions_mut().insert(lambda::JsonLiteralBody(literal));
        }
        response
    }
}

/// [`OPENAPI_JSON_LITERAL`], checked once to be one JSON string (it is, by
/// construction: a failure only means the plain body is escaped per request).
fn openapi_json_literal() -> Option<&'static serde_json::value::RawValue> {
    static CHECKED: OnceLock<Option<&'static serde_json::value::RawValue>> = OnceLock::new();
    *CHECKED.get_or_init(|| serde_json::from_str(OPENAPI_JSON_LITERAL).ok())
}

fn matches_etag(request: &HeaderMap) -> bool {
    request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|tag| tag.trim().trim_start_matches("W/"))
        .any(|tag| tag == OPENAPI_ETAG || tag == "*")
}

/// `gzip` (or `*`) listed in `Accept-Encoding` without `q=0` (RFC 9110 12.5.3).
fn accepts_gzip(request: &HeaderMap) -> bool {
    request.get_all(header::ACCEPT_ENCODING).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).any(
        |coding| {
            let mut parts = coding.split(';').map(str::trim);
            let name = parts.next().unwrap_or_default();
            let refused = parts.any(|p| p.strip_prefix("q=").is_some_and(|q| q.parse::<f32>().is_ok_and(|q| q == 0.0)));
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        },
    )
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

#[cfg(test)]
mod tests {
    use std::io::Read;

    use axum::{body::Body, http::Request};
    use tower::ServiceExt;

    use super::*;

    async fn get(headers: &[(&str, &str)]) -> (StatusCode, HeaderMap, Vec<u8>) {
        let mut request = Request::get("/v1/openapi.json");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = app().oneshot(request.body(Body::empty()).expect("request")).await.expect("answer");
        let (parts, body) = response.into_parts();
        (parts.status, parts.headers, axum::body::to_bytes(body, usize::MAX).await.expect("body").to_vec())
    }

    fn committed() -> serde_json::Value {
        serde_json::from_str(include_str!("../../../docs/openapi.json")).expect("committed JSON")
    }

    #[tokio::test]
    async fn a_caller_accepting_gzip_gets_the_committed_document_gzipped() {
        let (status, headers, body) = get(&[("accept-encoding", "br, gzip;q=0.8")]).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers[header::CONTENT_ENCODING], "gzip");
        assert_eq!(headers[header::VARY], "accept-encoding");
        let mut text = String::new();
        flate2::read::GzDecoder::new(&body[..]).read_to_string(&mut text).expect("gzip");
        assert_eq!(serde_json::from_str::<serde_json::Value>(&text).expect("JSON"), committed());
        assert!(body.len() * 10 < include_str!("../../../docs/openapi.json").len(), "{} bytes", body.len());
    }

    #[tokio::test]
    async fn without_gzip_the_document_is_plain_minified_json() {
        for headers in [&[][..], &[("accept-encoding", "gzip;q=0, identity")][..]] {
            let (status, response, body) = get(headers).await;
            assert_eq!(status, StatusCode::OK);
            assert!(response.get(header::CONTENT_ENCODING).is_none(), "{headers:?}");
            assert_eq!(serde_json::from_slice::<serde_json::Value>(&body).expect("JSON"), committed());
            assert!(!body.contains(&b'\n'), "minified");
        }
    }

    #[tokio::test]
    async fn a_revalidation_with_the_current_etag_is_not_modified() {
        let (_, headers, _) = get(&[]).await;
        let etag = headers[header::ETAG].to_str().expect("ASCII").to_owned();
        assert!(etag.starts_with('"') && etag.len() == 26, "{etag}");
        let (status, headers, body) = get(&[("if-none-match", &format!("W/\"stale\", {etag}"))]).await;
        assert_eq!((status, body.len()), (StatusCode::NOT_MODIFIED, 0));
        assert_eq!(headers[header::ETAG], etag.as_str());
        let (status, _, _) = get(&[("if-none-match", "\"stale\"")]).await;
        assert_eq!(status, StatusCode::OK);
    }
}
