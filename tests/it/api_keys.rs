//! Seed 004's API keys: shown once, stored as a hash, found by one lookup,
//! usable as `X-API-Key` or `Authorization: Bearer`, limited to their scopes
//! on every route, refused once revoked, expired or rotated out, and
//! invisible to other tenants.

use aws_sdk_dynamodb::types::AttributeValue;
use platform_tests::*;
use reqwest::Method;
use serde_json::{Value, json};

/// Every stored attribute of the tenant's partition, flattened to text.
async fn partition_text(tenant_id: &str) -> String {
    let (state, clients) = test_state().await;
    let mut text = String::new();
    let mut start = None;
    loop {
        let page = clients
            .dynamodb
            .query()
            .table_name(state.store.table_name())
            .key_condition_expression("PK = :pk")
            .expression_attribute_values(":pk", AttributeValue::S(format!("T#{tenant_id}#")))
            .set_exclusive_start_key(start)
            .send()
            .await
            .expect("query");
        for item in page.items() {
            text.push_str(&format!("{item:?}\n"));
        }
        start = page.last_evaluated_key().cloned();
        if start.is_none() {
            return text;
        }
    }
}

/// The part of a secret that is random (the rest names tenant and key).
fn random_tail(secret: &str) -> &str {
    &secret[secret.len() - 32..]
}

#[tokio::test]
async fn a_key_is_shown_once_then_only_as_prefix_and_last_four() {
    let owner = register_owner().await;
    let created = post("/v1/api-keys")
        .token(&owner.access_token)
        .header("idempotency-key", &format!("create-{}", unique()))
        .json(&json!({"name": "Storefront", "scopes": ["projects:read"], "environment": "live"}))
        .send()
        .await
        .expect(201);
    let secret = created.body["secret"].as_str().expect("secret").to_owned();
    assert!(secret.starts_with("sk_live_") && secret.len() == 83, "{secret}");
    assert_eq!(created.body["prefix"], "sk_live_");
    assert_eq!(created.body["last_four"], &secret[secret.len() - 4..]);
    assert_eq!(created.body["status"], "active");
    assert_eq!(created.body["scopes"], json!(["projects:read"]));
    assert_eq!(created.body["usage_count"], 0);
    assert!(created.body["last_used_at"].is_null());
    let id = created.body["id"].as_str().expect("id");

    // Both ways of presenting it work, and each use is counted.
    get("/v1/projects").api_key(&secret).send().await.expect(200);
    get("/v1/projects").token(&secret).send().await.expect(200);

    let shown = get(&format!("/v1/api-keys/{id}")).token(&owner.access_token).send().await.expect(200).body;
    let listed = get("/v1/api-keys").token(&owner.access_token).send().await.expect(200).body;
    for body in [&shown, &listed] {
        let text = body.to_string();
        assert!(!text.contains(random_tail(&secret)), "the secret leaked: {text}");
        assert!(!text.contains("secret_hash") && !text.contains("\"secret\""), "{text}");
    }
    assert_eq!(listed["data"].as_array().expect("data").len(), 1);
    assert_eq!(shown["usage_count"], 2);
    assert!(shown["last_used_at"].is_string());
    assert_eq!(shown["name"], "Storefront");

    // Nothing stored holds it: not the key item, not the audit entry, not the
    // idempotency record of the create (sealed).
    let stored = partition_text(&owner.tenant_id).await;
    assert!(stored.contains("APIKEY#") && stored.contains("IDEM#"), "expected the key and its idempotency record");
    assert!(!stored.contains(random_tail(&secret)), "the secret is in the table");
}

#[tokio::test]
async fn a_key_secret_never_reaches_the_log() {
    let server = ServerProcess::start("debug").await;
    let owner = register_owner().await;
    let reply = server
        .call(Method::POST, "/v1/api-keys")
        .token(&owner.access_token)
        .json(&json!({"name": "logged", "scopes": ["projects:read"]}))
        .send()
        .await
        .expect(201);
    let secret = reply.body["secret"].as_str().expect("secret").to_owned();
    let id = reply.body["id"].as_str().expect("id").to_owned();
    server.call(Method::GET, "/v1/projects").api_key(&secret).send().await.expect(200);
    server.call(Method::GET, "/v1/users").token(&secret).send().await.expect_error(403, "insufficient_scope");
    server
        .call(Method::GET, "/v1/projects")
        .api_key(&format!("{secret}x"))
        .send()
        .await
        .expect_error(401, "invalid_token");
    let rotated = server
        .call(Method::POST, &format!("/v1/api-keys/{id}/rotate"))
        .token(&owner.access_token)
        .send()
        .await
        .expect(200);
    let new_secret = rotated.body["secret"].as_str().expect("secret").to_owned();
    server.call(Method::GET, "/v1/projects").api_key(&new_secret).send().await.expect(200);
    let log = server.log();
    assert!(log.contains("/v1/projects"), "the server logged requests at debug level");
    assert!(!log.contains(random_tail(&secret)), "the secret is in the log");
    assert!(!log.contains(random_tail(&new_secret)), "the rotated secret is in the log");
}

/// Every route a key may call, with the scope it needs; a key holding some
/// other scope is refused with 403 naming exactly that one.
#[tokio::test]
async fn every_route_refuses_a_key_without_its_scope_and_names_it() {
    let owner = register_owner().await;
    let some_id = uuid::Uuid::now_v7();
    let tenant = owner.tenant_id.as_str();
    let routes: Vec<(Method, String, &str)> = vec![
        (Method::GET, "/v1/tenants/me".into(), "tenant:read"),
        (Method::GET, "/v1/tenants/me/usage".into(), "tenant:read"),
        (Method::GET, format!("/v1/tenants/{tenant}"), "tenant:read"),
        (Method::GET, format!("/v1/tenants/{tenant}/stats"), "tenant:read"),
        (Method::PATCH, format!("/v1/tenants/{tenant}"), "tenant:write"),
        (Method::PUT, format!("/v1/tenants/{tenant}"), "tenant:write"),
        (Method::GET, "/v1/users".into(), "users:read"),
        (Method::GET, format!("/v1/users/{some_id}"), "users:read"),
        (Method::GET, "/v1/users/invitations".into(), "users:read"),
        (Method::POST, "/v1/users".into(), "users:write"),
        (Method::POST, "/v1/users/invite".into(), "users:write"),
        (Method::POST, "/v1/users/invitations/a%40b.co/resend".into(), "users:write"),
        (Method::DELETE, "/v1/users/invitations/a%40b.co".into(), "users:write"),
        (Method::PATCH, format!("/v1/users/{some_id}"), "users:write"),
        (Method::PUT, format!("/v1/users/{some_id}"), "users:write"),
        (Method::DELETE, format!("/v1/users/{some_id}"), "users:write"),
        (Method::GET, "/v1/projects".into(), "projects:read"),
        (Method::GET, format!("/v1/projects/{some_id}"), "projects:read"),
        (Method::GET, format!("/v1/projects/{some_id}/tasks"), "projects:read"),
        (Method::GET, format!("/v1/projects/{some_id}/tasks/{some_id}"), "projects:read"),
        (Method::POST, "/v1/projects".into(), "projects:write"),
        (Method::PATCH, format!("/v1/projects/{some_id}"), "projects:write"),
        (Method::DELETE, format!("/v1/projects/{some_id}"), "projects:write"),
        (Method::POST, format!("/v1/projects/{some_id}/tasks"), "projects:write"),
        (Method::PATCH, format!("/v1/projects/{some_id}/tasks/{some_id}"), "projects:write"),
        (Method::DELETE, format!("/v1/projects/{some_id}/tasks/{some_id}"), "projects:write"),
        (Method::GET, "/v1/credits".into(), "credits:read"),
        (Method::GET, "/v1/credits/ledger".into(), "credits:read"),
        (Method::POST, "/v1/credits/charges".into(), "usage:write"),
        (Method::GET, "/v1/audit/logs".into(), "audit:read"),
    ];
    let key = create_api_key(&owner.access_token, &["webhooks:manage"]).await;
    for (method, path, scope) in &routes {
        let reply = Call::new(method.clone(), path).api_key(&key.secret).json(&json!({})).send().await;
        let reply = reply.expect_error(403, "insufficient_scope");
        assert_eq!(reply.body["details"]["required_scope"], *scope, "{method} {path}");
        assert_eq!(reply.body["details"]["granted_scopes"], json!(["webhooks:manage"]), "{method} {path}");
    }
    // The scope opens the route (the answer is the route's own: 404 for the
    // made-up id, 200 for lists), and no other.
    let reader = create_api_key(&owner.access_token, &["projects:read"]).await;
    get("/v1/projects").api_key(&reader.secret).send().await.expect(200);
    get(&format!("/v1/projects/{some_id}")).api_key(&reader.secret).send().await.expect_error(404, "not_found");
    let reply = post("/v1/projects").api_key(&reader.secret).json(&json!({"name": "x"})).send().await;
    assert_eq!(reply.expect_error(403, "insufficient_scope").body["details"]["required_scope"], "projects:write");
}

/// Routes no scope opens: people only.
#[tokio::test]
async fn keys_cannot_manage_keys_sessions_or_the_platform() {
    let owner = register_owner().await;
    let key = create_api_key(&owner.access_token, &["tenant:read", "tenant:write", "users:write"]).await;
    let person_only: Vec<(Method, String)> = vec![
        (Method::GET, "/v1/api-keys".into()),
        (Method::POST, "/v1/api-keys".into()),
        (Method::GET, format!("/v1/api-keys/{}", key.id)),
        (Method::DELETE, format!("/v1/api-keys/{}", key.id)),
        (Method::POST, format!("/v1/api-keys/{}/rotate", key.id)),
        (Method::GET, "/v1/auth/me".into()),
        (Method::POST, "/v1/auth/logout".into()),
    ];
    for (method, path) in &person_only {
        let reply = Call::new(method.clone(), path).api_key(&key.secret).json(&json!({})).send().await;
        let reply = reply.expect_error(403, "insufficient_permissions");
        assert_eq!(reply.body["details"]["required"], "user_session", "{method} {path}");
    }
    for (method, path) in [
        (Method::GET, "/v1/tenants".to_owned()),
        (Method::POST, "/v1/tenants".to_owned()),
        (Method::DELETE, format!("/v1/tenants/{}", owner.tenant_id)),
        (Method::POST, format!("/v1/tenants/{}/credits", owner.tenant_id)),
    ] {
        let reply = Call::new(method.clone(), &path).api_key(&key.secret).json(&json!({})).send().await;
        assert_eq!(
            reply.expect_error(403, "insufficient_permissions").body["details"]["required_role"],
            "platform_admin"
        );
    }
    // The key still works where its scopes allow.
    let me = get("/v1/tenants/me").api_key(&key.secret).send().await.expect(200);
    assert_eq!(me.body["id"], owner.tenant_id.as_str());
}

#[tokio::test]
async fn revoked_expired_forged_and_rotated_out_keys_are_refused() {
    let owner = register_owner().await;
    let key = create_api_key(&owner.access_token, &["projects:read"]).await;
    get("/v1/projects").api_key(&key.secret).send().await.expect(200);

    // Forged: the right tenant and key id, another random part.
    let mut forged = key.secret.clone();
    forged.replace_range(forged.len() - 6.., "AAAAAA");
    get("/v1/projects").api_key(&forged).send().await.expect_error(401, "invalid_token");
    get("/v1/projects").api_key("sk_live_nonsense").send().await.expect_error(401, "invalid_token");

    let revoked = delete(&format!("/v1/api-keys/{}", key.id)).token(&owner.access_token).send().await.expect(200);
    assert_eq!(revoked.body["status"], "revoked");
    assert!(revoked.body["revoked_at"].is_string());
    let reply = get("/v1/projects").api_key(&key.secret).send().await.expect_error(401, "invalid_token");
    assert!(reply.body["message"].as_str().expect("message").contains("revoked"));
    // Revoking again answers the same; rotating a revoked key is a conflict.
    delete(&format!("/v1/api-keys/{}", key.id)).token(&owner.access_token).send().await.expect(200);
    post(&format!("/v1/api-keys/{}/rotate", key.id))
        .token(&owner.access_token)
        .send()
        .await
        .expect_error(409, "conflict");

    // Expiry: a key made to expire two seconds from now stops working then.
    let soon = (chrono::Utc::now() + chrono::Duration::seconds(2)).to_rfc3339();
    let expiring = post("/v1/api-keys")
        .token(&owner.access_token)
        .json(&json!({"name": "short-lived", "scopes": ["projects:read"], "expires_at": soon}))
        .send()
        .await
        .expect(201);
    let secret = expiring.body["secret"].as_str().expect("secret").to_owned();
    get("/v1/projects").api_key(&secret).send().await.expect(200);
    eventually("the key to expire", std::time::Duration::from_secs(10), || {
        let secret = secret.clone();
        async move {
            let reply = get("/v1/projects").api_key(&secret).send().await;
            (reply.status == 401).then_some(reply)
        }
    })
    .await
    .expect_error(401, "token_expired");
    let listed = get(&format!("/v1/api-keys/{}", expiring.body["id"].as_str().expect("id")))
        .token(&owner.access_token)
        .send()
        .await
        .expect(200);
    assert_eq!(listed.body["status"], "expired");

    // Rotation: the old secret dies at once, the new one works; with a grace
    // period both work until it ends.
    let rotating = create_api_key(&owner.access_token, &["projects:read"]).await;
    let rotated =
        post(&format!("/v1/api-keys/{}/rotate", rotating.id)).token(&owner.access_token).send().await.expect(200);
    let new_secret = rotated.body["secret"].as_str().expect("secret");
    assert_eq!(rotated.body["id"], rotating.id.as_str());
    assert_eq!(rotated.body["last_four"], &new_secret[new_secret.len() - 4..]);
    get("/v1/projects").api_key(&rotating.secret).send().await.expect_error(401, "invalid_token");
    get("/v1/projects").api_key(new_secret).send().await.expect(200);
    let graceful = post(&format!("/v1/api-keys/{}/rotate", rotating.id))
        .token(&owner.access_token)
        .json(&json!({"grace_period_seconds": 3600}))
        .send()
        .await
        .expect(200);
    assert!(graceful.body["old_secret_valid_until"].is_string());
    get("/v1/projects").api_key(new_secret).send().await.expect(200);
    get("/v1/projects").api_key(graceful.body["secret"].as_str().expect("secret")).send().await.expect(200);
}

#[tokio::test]
async fn another_tenants_keys_answer_404_and_a_key_stays_in_its_tenant() {
    let a = register_owner().await;
    let b = register_owner().await;
    let key = create_api_key(&a.access_token, &["tenant:read", "projects:read"]).await;
    let path = format!("/v1/api-keys/{}", key.id);
    get(&path).token(&b.access_token).send().await.expect_error(404, "not_found");
    delete(&path).token(&b.access_token).send().await.expect_error(404, "not_found");
    post(&format!("{path}/rotate")).token(&b.access_token).send().await.expect_error(404, "not_found");
    let listed = get("/v1/api-keys").token(&b.access_token).send().await.expect(200);
    assert_eq!(listed.body["data"], json!([]));
    // Untouched by B's attempts.
    get("/v1/projects").api_key(&key.secret).send().await.expect(200);
    // A's key cannot be pointed at B.
    get("/v1/tenants/me")
        .api_key(&key.secret)
        .header("x-tenant-id", &b.tenant_id)
        .send()
        .await
        .expect_error(403, "tenant_mismatch");
    get(&format!("/v1/tenants/{}", b.tenant_id)).api_key(&key.secret).send().await.expect_error(404, "not_found");
}

#[tokio::test]
async fn only_admins_manage_keys_and_bad_bodies_name_their_fields() {
    let owner = register_owner().await;
    let developer_email = format!("dev-{}@example.com", unique());
    post("/v1/users")
        .token(&owner.access_token)
        .json(&json!({"email": developer_email, "password": PASSWORD, "first_name": "D", "last_name": "V", "role": "developer"}))
        .send()
        .await
        .expect(201);
    let login =
        post("/v1/auth/login").json(&json!({"email": developer_email, "password": PASSWORD})).send().await.expect(200);
    let developer = login.body["access_token"].as_str().expect("token");
    let reply =
        post("/v1/api-keys").token(developer).json(&json!({"name": "x", "scopes": ["projects:read"]})).send().await;
    assert_eq!(reply.expect_error(403, "insufficient_permissions").body["details"]["required_role"], "admin");

    let reply = post("/v1/api-keys")
        .token(&owner.access_token)
        .json(&json!({"name": "", "scopes": ["projects:read", "root:all"], "expires_in_days": 0}))
        .send()
        .await
        .expect_error(400, "validation_failed");
    // In the body's order (serde_json writes keys sorted).
    assert_eq!(reply.invalid_fields(), ["expires_in_days", "name", "scopes[1]"]);
    let listed = get("/v1/api-keys").token(&owner.access_token).send().await.expect(200);
    assert_eq!(listed.body["data"], json!([]), "nothing partial was written");
}

#[tokio::test]
async fn changes_made_with_a_key_are_audited_as_the_key() {
    let owner = register_owner().await;
    let key = create_api_key(&owner.access_token, &["projects:write", "projects:read"]).await;
    let project = post("/v1/projects").api_key(&key.secret).json(&json!({"name": "By key"})).send().await.expect(201);
    let logs = get("/v1/audit/logs?resource_type=project").token(&owner.access_token).send().await.expect(200);
    let entry: &Value = &logs.body["data"][0];
    assert_eq!(entry["resource_id"], project.body["id"]);
    assert_eq!(entry["actor"]["type"], "api_key");
    assert_eq!(entry["actor"]["id"], key.id.as_str());
    let keys = get("/v1/audit/logs?resource_type=api_key").token(&owner.access_token).send().await.expect(200);
    assert_eq!(keys.body["data"][0]["action"], "create");
    assert!(!keys.body.to_string().contains(random_tail(&key.secret)));
}

#[tokio::test]
async fn a_deactivated_tenants_keys_stop_working() {
    let owner = register_owner().await;
    let key = create_api_key(&owner.access_token, &["tenant:read"]).await;
    get("/v1/tenants/me").api_key(&key.secret).send().await.expect(200);
    let admin = platform_admin_token().await;
    delete(&format!("/v1/tenants/{}", owner.tenant_id)).token(&admin).send().await.expect(204);
    get("/v1/tenants/me").api_key(&key.secret).send().await.expect_error(403, "tenant_inactive");
    // Reactivated, they work again.
    patch(&format!("/v1/tenants/{}", owner.tenant_id))
        .token(&admin)
        .json(&json!({"status": "active"}))
        .send()
        .await
        .expect(200);
    get("/v1/tenants/me").api_key(&key.secret).send().await.expect(200);
}

#[tokio::test]
async fn creating_rotating_and_revoking_a_key_write_their_events_with_the_change() {
    let owner = register_owner().await;
    let key = create_api_key(&owner.access_token, &["projects:read", "credits:read"]).await;
    post(&format!("/v1/api-keys/{}/rotate", key.id)).token(&owner.access_token).send().await.expect(200);
    let path = format!("/v1/api-keys/{}", key.id);
    delete(&path).token(&owner.access_token).send().await.expect(200);
    // Revoking again changes nothing, so it announces nothing.
    delete(&path).token(&owner.access_token).send().await.expect(200);

    let events = crate::credits::events_of(&owner.tenant_id, "api_key.").await;
    let kinds: Vec<&str> = events.iter().filter_map(|event| event["type"].as_str()).collect();
    assert_eq!(kinds, ["api_key.created", "api_key.rotated", "api_key.revoked"], "{events:#?}");
    for data in events.iter().map(|event| &event["data"]) {
        assert_eq!(data["key_id"], key.id.as_str());
        assert_eq!(data["scopes"], json!(["projects:read", "credits:read"]));
        assert_eq!(data["environment"], "live");
        assert!(!data.to_string().contains(random_tail(&key.secret)), "the secret is in an event: {data}");
    }
}
