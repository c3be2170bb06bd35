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
    let state = shared::AppState::build(config, &clients, shared::state::Signing::Issue).expect("state");
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
