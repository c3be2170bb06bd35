//! The API.md error shape for every kind of failure, including a dependency
//! failure (500) that must not leak its cause.

use axum::body::Body;
use platform_tests::*;
use serde_json::Value;
use tower::ServiceExt;

#[tokio::test]
async fn malformed_json_is_400_invalid_json() {
    let token = platform_admin_token().await;
    post("/v1/tenants").token(&token).raw_body("{\"name\": ").send().await.expect_error(400, "invalid_json");
    post("/v1/tenants").token(&token).raw_body("[1,2]").send().await.expect_error(400, "invalid_json");
    post("/v1/auth/login").raw_body("").send().await.expect_error(400, "invalid_json");
}

#[tokio::test]
async fn an_unknown_route_is_404_in_the_error_shape() {
    let reply = get("/v1/nothing-here").send().await.expect_error(404, "not_found");
    let request_id = reply.headers["x-request-id"].to_str().expect("header");
    assert_eq!(reply.body["request_id"], request_id);
}

#[tokio::test]
async fn health_answers_ok() {
    let reply = get("/health").send().await.expect(200);
    assert_eq!(reply.body["status"], "ok");
}

/// A store that cannot be reached (here: a table that does not exist) gives an
/// opaque 500 with the request id; the cause stays in the log.
#[tokio::test]
async fn a_dependency_failure_is_an_opaque_500_with_the_request_id() {
    let (_, clients) = test_state().await;
    let mut config = shared::config::Config::from_env().expect("env");
    config.table_name = "no-such-table".into();
    let state = shared::AppState::load(config, &clients, shared::state::Signing::Issue).await.expect("state");
    let router = shared::http::finish_app(tenants::routes(), state);
    let token = platform_admin_token().await;
    let response = router
        .oneshot(
            axum::http::Request::get("/v1/tenants/me")
                .header("authorization", format!("Bearer {token}"))
                .header("x-request-id", "req-test-500")
                .body(Body::empty())
                .expect("request"),
        )
        .await
        .expect("response");
    assert_eq!(response.status(), 500);
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.expect("body");
    let body: Value = serde_json::from_slice(&bytes).expect("json");
    assert_eq!(body["error"], "internal");
    assert_eq!(body["request_id"], "req-test-500");
    let text = body.to_string();
    assert!(!text.contains("no-such-table") && !text.to_lowercase().contains("dynamodb"), "leaks: {text}");
}

/// The router's own refusals answer in the API.md shape too, and a wrong
/// method keeps its `Allow` header.
#[tokio::test]
async fn a_wrong_method_is_405_in_the_error_shape_with_allow() {
    let owner = register_owner().await;
    let reply = put(&format!("/v1/webhooks/{}", uuid::Uuid::now_v7()))
        .token(&owner.access_token)
        .json(&serde_json::json!({"url": "https://example.com"}))
        .send()
        .await
        .expect_error(405, "method_not_allowed");
    let allow = reply.headers["allow"].to_str().expect("allow").to_owned();
    assert!(allow.contains("PATCH") && allow.contains("DELETE"), "allow: {allow}");
    assert_eq!(reply.body["details"]["method"], "PUT");
    assert!(reply.body["request_id"].is_string());
    let reply =
        Call::new(reqwest::Method::OPTIONS, "/v1/projects").send().await.expect_error(405, "method_not_allowed");
    assert_eq!(reply.body["details"]["method"], "OPTIONS");
}

/// JSON is only read as JSON: a body sent as text/plain or a form is 415, so a
/// browser's cross-site simple request cannot drive the API.
#[tokio::test]
async fn a_body_that_is_not_declared_json_is_415() {
    let token = platform_admin_token().await;
    let body = valid_tenant_body().to_string();
    for content_type in ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"] {
        post("/v1/tenants")
            .token(&token)
            .typed_body(content_type, &body)
            .send()
            .await
            .expect_error(415, "unsupported_media_type");
    }
    // With parameters, and a +json type, it is JSON.
    let mut other = valid_tenant_body();
    other["slug"] = serde_json::json!(format!("ct-{}", unique()));
    post("/v1/tenants")
        .token(&token)
        .typed_body("application/json; charset=utf-8", &other.to_string())
        .send()
        .await
        .expect(201);
}

#[tokio::test]
async fn an_oversized_body_is_413_in_the_error_shape() {
    let token = platform_admin_token().await;
    let huge = format!("{{\"name\": \"{}\"}}", "x".repeat(3 * 1024 * 1024));
    let reply = post("/v1/tenants").token(&token).raw_body(&huge).send().await.expect_error(413, "payload_too_large");
    assert!(reply.body["request_id"].is_string());
    // Past API Gateway's own limit the local server refuses before routing.
    let huger = "x".repeat(shared::http::MAX_BODY_BYTES + 1);
    post("/v1/tenants").token(&token).raw_body(&huger).send().await.expect_error(413, "payload_too_large");
}

/// A path segment that is not UTF-8 once decoded is a 400 in the error shape.
#[tokio::test]
async fn an_undecodable_path_is_400_in_the_error_shape() {
    let owner = register_owner().await;
    let reply = get("/v1/projects/%FF").token(&owner.access_token).send().await;
    assert_eq!(reply.status, 400, "{:?}", reply.body);
    assert!(reply.body["error"].is_string() && reply.body["request_id"].is_string(), "{:?}", reply.body);
}

/// A POST refused before its body is read (401 here) leaves the connection
/// usable: the next request on it is answered. Raw HTTP/1.1, so both
/// requests provably share one connection.
#[tokio::test]
async fn a_refused_post_keeps_the_connection_alive() {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    let address = app().base_url.trim_start_matches("http://").to_owned();
    let stream = tokio::net::TcpStream::connect(&address).await.expect("connect");
    let mut stream = BufReader::new(stream);
    let body = valid_tenant_body().to_string();
    let refused = format!(
        "POST /v1/tenants HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.get_mut().write_all(refused.as_bytes()).await.expect("write");
    assert_eq!(read_status_and_skip_body(&mut stream).await, 401);
    let health = format!("GET /health HTTP/1.1\r\nHost: {address}\r\n\r\n");
    stream.get_mut().write_all(health.as_bytes()).await.expect("write on the same connection");
    assert_eq!(read_status_and_skip_body(&mut stream).await, 200);

    async fn read_status_and_skip_body(stream: &mut BufReader<tokio::net::TcpStream>) -> u16 {
        let mut line = String::new();
        stream.read_line(&mut line).await.expect("status line");
        let status = line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        let mut length = 0usize;
        loop {
            let mut header = String::new();
            stream.read_line(&mut header).await.expect("header");
            if header.trim().is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length];
        stream.read_exact(&mut body).await.expect("body");
        status
    }
}

/// An optional body (logout's) is still read as JSON only, and a refused
/// one changes nothing: the login stays.
#[tokio::test]
async fn a_refused_optional_body_changes_nothing() {
    let owner = register_owner().await;
    post("/v1/auth/logout")
        .token(&owner.access_token)
        .typed_body("text/plain", "{\"refresh_token\": \"x\"}")
        .send()
        .await
        .expect_error(415, "unsupported_media_type");
    post("/v1/auth/logout")
        .token(&owner.access_token)
        .raw_body("{\"nope\": 1}")
        .send()
        .await
        .expect_error(400, "validation_failed");
    get("/v1/auth/me").token(&owner.access_token).send().await.expect(200);
    post("/v1/auth/logout").token(&owner.access_token).send().await.expect(204);
}
