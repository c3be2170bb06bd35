//! The audit trail: every mutation so far leaves one entry with the right old
//! and new values; a tenant reads only its own; filters and dates work.

use platform_tests::*;
use serde_json::{Value, json};

fn entries(reply: &Reply) -> Vec<Value> {
    reply.body["data"].as_array().expect("data").clone()
}

#[tokio::test]
async fn sign_up_records_the_tenant_and_its_owner_without_secrets() {
    let owner = register_owner().await;
    let reply = get("/v1/audit/logs?action=create").token(&owner.access_token).send().await.expect(200);
    let list = entries(&reply);
    let types: Vec<&str> = list.iter().filter_map(|e| e["resource_type"].as_str()).collect();
    assert_eq!(types.len(), 2, "{list:#?}");
    assert!(types.contains(&"tenant") && types.contains(&"user"));
    let user_entry = list.iter().find(|e| e["resource_type"] == "user").expect("user entry");
    assert_eq!(user_entry["resource_id"], owner.user_id.as_str());
    assert_eq!(user_entry["user"]["id"], owner.user_id.as_str());
    assert_eq!(user_entry["new_values"]["email"], owner.email.as_str());
    let text = reply.body.to_string();
    assert!(!text.contains(PASSWORD) && !text.contains("argon2"), "a secret leaked into the trail");
}

#[tokio::test]
async fn an_update_records_old_and_new_values_with_who_where_and_which_request() {
    let owner = register_owner().await;
    let update = put(&format!("/v1/tenants/{}", owner.tenant_id))
        .token(&owner.access_token)
        .header("x-forwarded-for", "203.0.113.7")
        .header("user-agent", "audit-test/1.0")
        .json(&json!({"description": "Shoes", "settings": {"timezone": "UTC"}}))
        .send()
        .await
        .expect(200);
    let request_id = update.headers["x-request-id"].to_str().expect("id").to_owned();
    let reply =
        get("/v1/audit/logs?action=update&resource_type=tenant").token(&owner.access_token).send().await.expect(200);
    let list = entries(&reply);
    let entry = list.iter().find(|e| e["request_id"] == request_id.as_str()).expect("entry of the update");
    assert_eq!(entry["old_values"], json!({"description": null, "settings": {}}));
    assert_eq!(entry["new_values"], json!({"description": "Shoes", "settings": {"timezone": "UTC"}}));
    assert_eq!(entry["resource_id"], owner.tenant_id.as_str());
    assert_eq!(entry["user"]["id"], owner.user_id.as_str());
    assert_eq!(entry["user"]["email"], owner.email.as_str());
    assert_eq!(entry["ip_address"], "203.0.113.7");
    assert_eq!(entry["user_agent"], "audit-test/1.0");
    assert!(entry["timestamp"].is_string() && entry["id"].is_string());
}

#[tokio::test]
async fn a_soft_delete_and_the_activation_are_recorded_in_the_tenants_own_trail() {
    let token = platform_admin_token().await;
    let created = post("/v1/tenants").token(&token).json(&valid_tenant_body()).send().await.expect(201).body;
    let id = created["id"].as_str().expect("id").to_owned();
    let activation = eventually("the activation entry", std::time::Duration::from_secs(30), || async {
        let reply =
            get("/v1/audit/logs?action=update").token(&token).header("x-tenant-id", &id).send().await.expect(200);
        entries(&reply).into_iter().find(|e| e["actor"]["type"] == "system")
    })
    .await;
    assert_eq!(activation["actor"]["id"], "tenant-provisioner");
    assert_eq!(activation["old_values"], json!({"status": "provisioning"}));
    assert_eq!(activation["new_values"], json!({"status": "active"}));

    delete(&format!("/v1/tenants/{id}")).token(&token).send().await.expect(204);
    let reply = get("/v1/audit/logs").token(&token).header("x-tenant-id", &id).send().await.expect(200);
    let list = entries(&reply);
    // Newest first: delete, activation, create.
    let actions: Vec<&str> = list.iter().filter_map(|e| e["action"].as_str()).collect();
    assert_eq!(actions, ["delete", "update", "create"]);
    assert_eq!(list[0]["new_values"], json!({"status": "inactive"}));
    assert_eq!(list[0]["old_values"], json!({"status": "active"}));
}

#[tokio::test]
async fn a_tenant_sees_only_its_own_trail() {
    let a = register_owner().await;
    let b = register_owner().await;
    let reply = get("/v1/audit/logs?limit=100").token(&b.access_token).send().await.expect(200);
    for entry in entries(&reply) {
        assert_ne!(entry["resource_id"], a.tenant_id.as_str());
        assert_ne!(entry["resource_id"], a.user_id.as_str());
    }
    let reply = get(&format!("/v1/audit/logs?user_id={}", a.user_id)).token(&b.access_token).send().await.expect(200);
    assert!(entries(&reply).is_empty());
    get("/v1/audit/logs")
        .token(&b.access_token)
        .header("x-tenant-id", &a.tenant_id)
        .send()
        .await
        .expect_error(403, "tenant_mismatch");
}

#[tokio::test]
async fn dates_and_filters_narrow_the_trail() {
    let owner = register_owner().await;
    let future = get("/v1/audit/logs?date_from=2999-01-01").token(&owner.access_token).send().await.expect(200);
    assert!(entries(&future).is_empty());
    let past = get("/v1/audit/logs?date_to=2000-01-01").token(&owner.access_token).send().await.expect(200);
    assert!(entries(&past).is_empty());
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let now = get(&format!("/v1/audit/logs?action=create&date_from={today}&date_to={today}"))
        .token(&owner.access_token)
        .send()
        .await
        .expect(200);
    assert_eq!(entries(&now).len(), 2);
    let mine = get(&format!("/v1/audit/logs?user_id={}&resource_type=user", owner.user_id))
        .token(&owner.access_token)
        .send()
        .await
        .expect(200);
    // The sign-up made the owner and mailed them a verification link.
    let mine = entries(&mine);
    let mut actions: Vec<&str> = mine.iter().map(|e| e["action"].as_str().expect("action")).collect();
    actions.sort_unstable();
    assert_eq!(actions, ["create", "email_verification_sent"]);
    let paged = get("/v1/audit/logs?action=create&limit=1").token(&owner.access_token).send().await.expect(200);
    assert_eq!(entries(&paged).len(), 1);
    let cursor = paged.body["next_cursor"].as_str().expect("cursor");
    let next = get(&format!("/v1/audit/logs?action=create&limit=1&cursor={cursor}"))
        .token(&owner.access_token)
        .send()
        .await
        .expect(200);
    assert_ne!(entries(&next)[0]["id"], entries(&paged)[0]["id"]);
    for (query, field) in [
        ("date_from=yesterday", "date_from"),
        ("date_to=2024-13-01", "date_to"),
        ("user_id=nope", "user_id"),
        ("date_from=2025-02-01&date_to=2025-01-01", "date_from"),
    ] {
        let reply = get(&format!("/v1/audit/logs?{query}"))
            .token(&owner.access_token)
            .send()
            .await
            .expect_error(400, "validation_failed");
        assert_eq!(reply.invalid_fields(), [field], "{query}");
    }
}

#[tokio::test]
async fn logins_logouts_and_a_detected_token_theft_are_in_the_trail() {
    let owner = register_owner().await;
    // A login of its own to read the trail with: the sign-up's is revoked
    // below, and a revoked login's access tokens stop working.
    let reader =
        post("/v1/auth/login").json(&json!({"email": owner.email, "password": PASSWORD})).send().await.expect(200);
    let reader = reader.body["access_token"].as_str().expect("token").to_owned();
    let login = post("/v1/auth/login")
        .header("x-forwarded-for", "198.51.100.4")
        .json(&json!({"email": owner.email, "password": PASSWORD}))
        .send()
        .await
        .expect(200);
    let token = login.body["access_token"].as_str().expect("token").to_owned();
    post("/v1/auth/logout").token(&token).send().await.expect(204);
    // The sign-up's own login: rotate once, then replay the old token.
    post("/v1/auth/refresh").json(&json!({"refresh_token": owner.refresh_token})).send().await.expect(200);
    post("/v1/auth/refresh").json(&json!({"refresh_token": owner.refresh_token})).send().await.expect(401);
    get("/v1/audit/logs").token(&owner.access_token).send().await.expect_error(401, "invalid_token");
    let reply = get("/v1/audit/logs?resource_type=session").token(&reader).send().await.expect(200);
    let list = entries(&reply);
    let actions: Vec<&str> = list.iter().filter_map(|e| e["action"].as_str()).collect();
    assert_eq!(actions, ["revoke", "logout", "login", "login", "login"], "{list:#?}");
    assert_eq!(list[0]["actor"]["type"], "system");
    assert_eq!(list[0]["new_values"]["reason"], "reuse_detected");
    assert_eq!(list[1]["user"]["id"], owner.user_id.as_str());
    assert_eq!(list[2]["ip_address"], "198.51.100.4");
    assert!(!reply.body.to_string().contains(&owner.refresh_token));
}

#[tokio::test]
async fn entries_expire_after_the_tenants_retention_policy() {
    let token = platform_admin_token().await;
    let mut body = valid_tenant_body();
    body["configuration"] = json!({"compliance": {"retention_policy_days": 30, "audit_logging": true}});
    let id = post("/v1/tenants").token(&token).json(&body).send().await.expect(201).body["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let reply = get("/v1/audit/logs?action=create").token(&token).header("x-tenant-id", &id).send().await.expect(200);
    let expires = reply.body["data"][0]["expires_at"].as_str().expect("expires_at");
    let expires = chrono::DateTime::parse_from_rfc3339(expires).expect("date").with_timezone(&chrono::Utc);
    let days = (expires - chrono::Utc::now()).num_hours() as f64 / 24.0;
    assert!((29.9..=30.1).contains(&days), "expires in {days} days");
    // A tenant without a policy keeps a year.
    let owner = register_owner().await;
    let reply = get("/v1/audit/logs?action=create").token(&owner.access_token).send().await.expect(200);
    let expires = reply.body["data"][0]["expires_at"].as_str().expect("expires_at");
    let expires = chrono::DateTime::parse_from_rfc3339(expires).expect("date").with_timezone(&chrono::Utc);
    assert!(((expires - chrono::Utc::now()).num_days() - 365).abs() <= 1);
}
