//! Rate limits per API key and per user, by plan, counted in DynamoDB so they
//! hold across processes (Lambda instances): shown on every authenticated
//! response, 429 `rate_limited` with `Retry-After` past the limit.

use std::time::Duration;

use platform_tests::*;
use reqwest::Method;
use serde_json::json;

const LIMIT: i64 = 8;

/// Puts the tenant on a custom plan with `LIMIT` requests per minute.
async fn limit_tenant(tenant_id: &str) {
    let admin = platform_admin_token().await;
    patch(&format!("/v1/tenants/{tenant_id}"))
        .token(&admin)
        .json(&json!({"plan": "enterprise_custom", "custom_limits": {"requests_per_minute": LIMIT}}))
        .send()
        .await
        .expect(200);
}

/// Waits, if needed, until the current one-minute window has at least
/// `needed` left, so a burst of requests falls in one window.
async fn a_fresh_enough_window(needed: Duration) {
    let now = chrono::Utc::now();
    let left = Duration::from_millis(60_000 - (now.timestamp_millis() % 60_000) as u64);
    if left < needed {
        tokio::time::sleep(left + Duration::from_millis(200)).await;
    }
}

fn header(reply: &Reply, name: &str) -> String {
    reply.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
}

#[tokio::test]
async fn a_keys_limit_holds_across_two_server_processes() {
    let second = ServerProcess::start("warn").await;
    let owner = register_owner().await;
    limit_tenant(&owner.tenant_id).await;
    let key = create_api_key(&owner.access_token, &["projects:read"]).await;

    a_fresh_enough_window(Duration::from_secs(20)).await;
    let mut allowed = Vec::new();
    let mut refused = Vec::new();
    for i in 0..LIMIT + 4 {
        // Alternate between this process's server and the other process.
        let call = if i % 2 == 0 { get("/v1/projects") } else { second.call(Method::GET, "/v1/projects") };
        let reply = call.api_key(&key.secret).send().await;
        match reply.status.as_u16() {
            200 => allowed.push(reply),
            429 => refused.push(reply),
            other => panic!("unexpected {other}: {:?}", reply.body),
        }
    }
    assert_eq!(allowed.len() as i64, LIMIT, "exactly the limit passes, whichever process serves");
    assert_eq!(refused.len(), 4);
    for (n, reply) in allowed.iter().enumerate() {
        assert_eq!(header(reply, "x-ratelimit-limit"), LIMIT.to_string());
        assert_eq!(header(reply, "x-ratelimit-remaining"), (LIMIT - 1 - n as i64).to_string());
        assert_eq!(header(reply, "ratelimit-policy"), format!("\"api_key\";q={LIMIT};w=60"));
        assert!(header(reply, "ratelimit").starts_with(&format!("\"api_key\";r={};t=", LIMIT - 1 - n as i64)));
    }
    let reset: i64 = header(&allowed[0], "x-ratelimit-reset").parse().expect("reset epoch");
    let now = chrono::Utc::now().timestamp();
    assert!(reset > now && reset <= now + 60, "reset {reset} is within the minute after {now}");
    for reply in &refused {
        assert_eq!(reply.body["error"], "rate_limited");
        assert_eq!(reply.body["details"]["limit"], LIMIT);
        assert_eq!(header(reply, "x-ratelimit-remaining"), "0");
        let retry_after: i64 = header(reply, "retry-after").parse().expect("Retry-After");
        assert!((1..=60).contains(&retry_after), "{retry_after}");
    }

    // The owner has a limit of their own, untouched by the key's.
    let mine = get("/v1/projects").token(&owner.access_token).send().await.expect(200);
    assert_eq!(header(&mine, "ratelimit-policy"), format!("\"user\";q={LIMIT};w=60"));
    assert!(header(&mine, "x-ratelimit-remaining").parse::<i64>().expect("remaining") < LIMIT);
    // And the usage count records the requests served, not the refused ones.
    let shown = get(&format!("/v1/api-keys/{}", key.id)).token(&owner.access_token).send().await.expect(200);
    assert_eq!(shown.body["usage_count"], LIMIT);
}

#[tokio::test]
async fn a_users_limit_holds_across_two_server_processes() {
    let second = ServerProcess::start("warn").await;
    let owner = register_owner().await;
    limit_tenant(&owner.tenant_id).await;
    a_fresh_enough_window(Duration::from_secs(20)).await;
    let mut statuses = Vec::new();
    for i in 0..LIMIT + 2 {
        let call = if i % 2 == 0 { second.call(Method::GET, "/v1/tenants/me") } else { get("/v1/tenants/me") };
        statuses.push(call.token(&owner.access_token).send().await.status.as_u16());
    }
    // Registering is public and the plan change was the admin's request, so
    // these are the owner's first counted requests.
    assert_eq!(statuses.iter().filter(|s| **s == 200).count() as i64, LIMIT, "{statuses:?}");
    assert!(statuses[LIMIT as usize..].iter().all(|s| *s == 429), "{statuses:?}");
}

#[tokio::test]
async fn unauthenticated_and_public_answers_carry_no_limit_headers() {
    let reply = get("/v1/projects").send().await.expect_error(401, "unauthorized");
    assert!(reply.headers.get("x-ratelimit-limit").is_none());
    let owner = register_owner().await;
    let reply = get("/v1/tenants/me").token(&owner.access_token).send().await.expect(200);
    assert_eq!(header(&reply, "x-ratelimit-limit"), "100", "the free plan's limit");
    assert_eq!(header(&reply, "x-ratelimit-remaining"), "99");
}
