//! Sign-up, login, refresh rotation, logout and the profile.

use platform_tests::*;
use serde_json::json;

#[tokio::test]
async fn register_creates_a_tenant_and_a_signed_in_owner() {
    let id = unique();
    let email = format!("Founder-{id}@Example.com");
    let reply = post("/v1/auth/register")
        .json(&json!({
            "email": email, "password": PASSWORD, "password_confirm": PASSWORD,
            "first_name": "John", "last_name": "Doe",
            "tenant_name": format!("My Company {id}"), "tenant_domain": "mycompany.com"
        }))
        .send()
        .await
        .expect(201);
    let body = &reply.body;
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["expires_in"], 900);
    assert!(body["refresh_token"].as_str().is_some_and(|t| t.starts_with("rt.")));
    assert_eq!(body["user"]["email"], email.to_ascii_lowercase());
    assert_eq!(body["user"]["role"], "owner");
    assert_eq!(body["user"]["full_name"], "John Doe");
    assert_eq!(body["tenant"]["name"], format!("My Company {id}"));
    assert_eq!(body["tenant"]["slug"], format!("my-company-{id}"));
    assert_eq!(body["tenant"]["domain"], "mycompany.com");
    assert_eq!(body["tenant"]["plan"], "free");
    assert_eq!(body["tenant"]["id"], body["user"]["tenant_id"]);
    assert!(body["user"].get("password_hash").is_none());
}

#[tokio::test]
async fn register_refuses_a_taken_email_with_409_and_creates_nothing() {
    let owner = register_owner().await;
    let id = unique();
    let reply = post("/v1/auth/register")
        .json(&json!({
            "email": owner.email.to_uppercase(), "password": PASSWORD, "password_confirm": PASSWORD,
            "first_name": "A", "last_name": "B", "tenant_name": "Second", "tenant_slug": format!("second-{id}")
        }))
        .send()
        .await
        .expect_error(409, "conflict");
    assert_eq!(reply.body["details"]["field"], "email");
    // The slug of the refused sign-up was not claimed.
    let token = platform_admin_token().await;
    let mut body = valid_tenant_body();
    body["slug"] = json!(format!("second-{id}"));
    post("/v1/tenants").token(&token).json(&body).send().await.expect(201);
}

#[tokio::test]
async fn register_names_every_invalid_field() {
    let reply = post("/v1/auth/register")
        .json(&json!({"email": "not-an-email", "password": "short", "password_confirm": "other", "tenant_name": "ab"}))
        .send()
        .await
        .expect_error(400, "validation_failed");
    let mut fields = reply.invalid_fields();
    fields.sort();
    assert_eq!(fields, ["email", "first_name", "last_name", "password", "tenant_name"]);
    // An unknown field is named beside every other problem of the body.
    let reply = post("/v1/auth/register")
        .json(&json!({"colour": 1, "email": "not-an-email"}))
        .send()
        .await
        .expect_error(400, "validation_failed");
    let fields = reply.invalid_fields();
    for field in ["colour", "email", "first_name", "last_name", "password", "tenant_name"] {
        assert!(fields.iter().any(|f| f == field), "{field} is named: {fields:?}");
    }
    // The rules between fields follow once each field is valid.
    let reply = post("/v1/auth/register")
        .json(&json!({
            "email": format!("confirm-{}@example.com", unique()), "password": PASSWORD, "password_confirm": "other",
            "first_name": "A", "last_name": "B", "tenant_name": "Confirmed"
        }))
        .send()
        .await
        .expect_error(400, "validation_failed");
    assert_eq!(reply.invalid_fields(), ["password_confirm"]);
}

#[tokio::test]
async fn login_answers_the_seed_shape() {
    let owner = register_owner().await;
    let reply =
        post("/v1/auth/login").json(&json!({"email": owner.email, "password": PASSWORD})).send().await.expect(200);
    let body = &reply.body;
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["expires_in"], 900);
    assert_eq!(body["user"]["id"], owner.user_id.as_str());
    assert_eq!(body["user"]["tenant_id"], owner.tenant_id.as_str());
    assert_eq!(body["user"]["role"], "owner");
    assert!(body["user"]["last_login"].is_null(), "last_login is the previous login");
    let me = get("/v1/auth/me").token(body["access_token"].as_str().expect("token")).send().await.expect(200);
    assert!(me.body["last_login"].is_string());
}

#[tokio::test]
async fn wrong_password_and_unknown_email_are_refused_alike() {
    let owner = register_owner().await;
    let wrong = post("/v1/auth/login")
        .json(&json!({"email": owner.email, "password": "not the password"}))
        .send()
        .await
        .expect_error(401, "unauthorized");
    let unknown = post("/v1/auth/login")
        .json(&json!({"email": format!("nobody-{}@example.com", unique()), "password": PASSWORD}))
        .send()
        .await
        .expect_error(401, "unauthorized");
    assert_eq!(wrong.body["message"], unknown.body["message"]);
}

#[tokio::test]
async fn login_requires_email_and_password() {
    let reply = post("/v1/auth/login").json(&json!({})).send().await.expect_error(400, "validation_failed");
    assert_eq!(reply.invalid_fields(), ["email", "password"]);
    // A null address is as missing as an absent one (never a 500).
    let reply = post("/v1/auth/login")
        .json(&json!({"email": null, "password": "x"}))
        .send()
        .await
        .expect_error(400, "validation_failed");
    assert_eq!(reply.invalid_fields(), ["email"]);
}

#[tokio::test]
async fn me_returns_the_callers_profile_and_tenant() {
    let owner = register_owner().await;
    let reply = get("/v1/auth/me").token(&owner.access_token).send().await.expect(200);
    assert_eq!(reply.body["id"], owner.user_id.as_str());
    assert_eq!(reply.body["email"], owner.email.as_str());
    assert_eq!(reply.body["tenant"]["id"], owner.tenant_id.as_str());
    assert!(reply.body.get("password_hash").is_none());
}

#[tokio::test]
async fn refresh_rotates_and_reuse_of_a_rotated_token_revokes_the_family() {
    let owner = register_owner().await;
    let first = post("/v1/auth/refresh").json(&json!({"refresh_token": owner.refresh_token})).send().await.expect(200);
    let second_token = first.body["refresh_token"].as_str().expect("rotated").to_owned();
    assert_ne!(second_token, owner.refresh_token);
    assert!(first.body["access_token"].is_string());

    // The rotated-out token comes back: someone else holds a copy.
    post("/v1/auth/refresh")
        .json(&json!({"refresh_token": owner.refresh_token}))
        .send()
        .await
        .expect_error(401, "invalid_token");
    // ...so the whole family is gone, including the legitimate newest token.
    post("/v1/auth/refresh")
        .json(&json!({"refresh_token": second_token}))
        .send()
        .await
        .expect_error(401, "invalid_token");
}

#[tokio::test]
async fn concurrent_refreshes_with_one_token_yield_one_winner() {
    let owner = register_owner().await;
    let calls = (0..5).map(|_| post("/v1/auth/refresh").json(&json!({"refresh_token": owner.refresh_token})).send());
    let replies = futures::future::join_all(calls).await;
    let ok = replies.iter().filter(|r| r.status == 200).count();
    assert!(ok <= 1, "{ok} refreshes succeeded with one token");
}

#[tokio::test]
async fn a_forged_refresh_token_is_refused_without_touching_the_family() {
    let owner = register_owner().await;
    let mut parts: Vec<&str> = owner.refresh_token.split('.').collect();
    parts[3] = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    post("/v1/auth/refresh")
        .json(&json!({"refresh_token": parts.join(".")}))
        .send()
        .await
        .expect_error(401, "invalid_token");
    post("/v1/auth/refresh").json(&json!({"refresh_token": owner.refresh_token})).send().await.expect(200);
}

#[tokio::test]
async fn logout_revokes_the_refresh_token() {
    let owner = register_owner().await;
    let reply = post("/v1/auth/logout").token(&owner.access_token).send().await.expect(204);
    assert!(reply.body.is_null());
    post("/v1/auth/refresh")
        .json(&json!({"refresh_token": owner.refresh_token}))
        .send()
        .await
        .expect_error(401, "invalid_token");
}

#[tokio::test]
async fn logout_needs_authentication() {
    post("/v1/auth/logout").send().await.expect_error(401, "unauthorized");
}
