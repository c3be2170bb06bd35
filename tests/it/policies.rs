//! A tenant's security policy on every request (seed 000's
//! `configuration.security`): `ip_whitelisting` refuses requests from other
//! addresses, `session_timeout_minutes` caps how long a sign-in lasts. (MFA
//! and SSO requirements at sign-in: tests/it/mfa.rs.)

use platform_tests::*;
use serde_json::json;

const INSIDE: &str = "203.0.113.77";
const OUTSIDE: &str = "198.51.100.9";

async fn set_security(owner: &Member, from: &str, security: serde_json::Value) -> Reply {
    patch(&format!("/v1/tenants/{}", owner.tenant_id))
        .token(&owner.access_token)
        .header("x-forwarded-for", from)
        .json(&json!({"configuration": {"security": security}}))
        .send()
        .await
}

#[tokio::test]
async fn an_allow_list_refuses_people_and_keys_from_elsewhere() {
    let owner = register_owner().await;
    let key = create_api_key(&owner.access_token, &["tenant:read"]).await;
    // A list that leaves out the admin's own address would lock them out.
    let refused = set_security(&owner, OUTSIDE, json!({"ip_whitelisting": ["203.0.113.0/24"]}))
        .await
        .expect_error(400, "validation_failed");
    assert_eq!(refused.invalid_fields(), ["configuration.security.ip_whitelisting"]);
    assert!(refused.body["details"]["fields"][0]["message"].as_str().is_some_and(|m| m.contains(OUTSIDE)));
    let updated = set_security(&owner, INSIDE, json!({"ip_whitelisting": ["203.0.113.0/24"]})).await.expect(200);
    assert_eq!(updated.body["configuration"]["security"]["ip_whitelisting"], json!(["203.0.113.0/24"]));

    let me = || get("/v1/tenants/me").token(&owner.access_token);
    let refused = me().header("x-forwarded-for", OUTSIDE).send().await.expect_error(403, "ip_not_allowed");
    assert!(refused.body["message"].as_str().is_some_and(|m| m.contains("ip_whitelisting")));
    me().send().await.expect_error(403, "ip_not_allowed");
    let inside = me().header("x-forwarded-for", INSIDE).send().await.expect(200);
    assert_eq!(inside.body["id"], owner.tenant_id.as_str());

    // A refresh token is not kept alive from outside the list either.
    let refresh = || post("/v1/auth/refresh").json(&json!({"refresh_token": owner.refresh_token}));
    refresh().header("x-forwarded-for", OUTSIDE).send().await.expect_error(403, "ip_not_allowed");
    refresh().header("x-forwarded-for", INSIDE).send().await.expect(200);

    let by_key = || get("/v1/tenants/me").api_key(&key.secret);
    by_key().header("x-forwarded-for", OUTSIDE).send().await.expect_error(403, "ip_not_allowed");
    by_key().header("x-forwarded-for", INSIDE).send().await.expect(200);

    // Emptying the list opens the tenant again.
    set_security(&owner, INSIDE, json!({"ip_whitelisting": []})).await.expect(200);
    me().header("x-forwarded-for", OUTSIDE).send().await.expect(200);
}

#[tokio::test]
async fn a_session_timeout_caps_the_sign_in() {
    let owner = register_owner().await;
    let login = |email: String| async move {
        post("/v1/auth/login").json(&json!({"email": email, "password": PASSWORD})).send().await.expect(200)
    };
    let before = login(owner.email.clone()).await;
    let thirty_days = 30 * 24 * 3600;
    let lifetime = before.body["refresh_expires_in"].as_i64().expect("refresh_expires_in");
    assert!((thirty_days - 5..=thirty_days).contains(&lifetime), "30 days by default, not {lifetime}");

    set_security(&owner, INSIDE, json!({"session_timeout_minutes": 5})).await.expect(200);
    let capped = login(owner.email.clone()).await;
    let lifetime = capped.body["refresh_expires_in"].as_i64().expect("refresh_expires_in");
    assert!((295..=300).contains(&lifetime), "5 minutes, not {lifetime}");
    let refreshed =
        post("/v1/auth/refresh").json(&json!({"refresh_token": capped.body["refresh_token"]})).send().await.expect(200);
    let left = refreshed.body["refresh_expires_in"].as_i64().expect("refresh_expires_in");
    assert!(left <= lifetime, "refreshing does not extend the sign-in ({left} > {lifetime})");
    // A sign-in that began before the timeout was set is held to it too.
    let earlier =
        post("/v1/auth/refresh").json(&json!({"refresh_token": before.body["refresh_token"]})).send().await.expect(200);
    let left = earlier.body["refresh_expires_in"].as_i64().expect("refresh_expires_in");
    assert!(left <= 300, "the earlier sign-in now ends within 5 minutes, not {left} s");
}

/// An invitation accepted in a tenant with sign-in policies: the member is
/// made, then signs in as the policies say (never a session that skips them).
#[tokio::test]
async fn an_accepted_invitation_follows_the_tenants_sign_in_policies() {
    let owner = register_owner().await;
    let invite = |email: String| {
        let token = owner.access_token.clone();
        async move {
            let reply = post("/v1/users/invite")
                .token(&token)
                .header("x-forwarded-for", INSIDE)
                .json(&json!({"emails": [email], "role": "user"}))
                .send()
                .await
                .expect(201);
            reply.body["invitations"][0]["token"].as_str().expect("token").to_owned()
        }
    };
    let accept = |token: String| async move {
        post("/v1/auth/invitations/accept")
            .json(&json!({"token": token, "password": PASSWORD, "first_name": "In", "last_name": "Vitee"}))
            .send()
            .await
    };

    set_security(&owner, INSIDE, json!({"mfa_required": true})).await.expect(200);
    let enrol = accept(invite(format!("mfa-{}@members.example", unique())).await).await.expect(201);
    assert_eq!(enrol.body["mfa_required"], true, "{:#}", enrol.body);
    assert_eq!(enrol.body["mfa_enrollment_required"], true);
    assert!(enrol.body.get("access_token").is_none(), "no session before MFA is set up");

    set_security(&owner, INSIDE, json!({"sso_required": true})).await.expect(200);
    let email = format!("sso-{}@members.example", unique());
    let refused = accept(invite(email.clone()).await).await.expect_error(403, "sso_required");
    assert!(refused.body["message"].as_str().is_some_and(|m| m.contains("member")));
    let members = get("/v1/users").token(&owner.access_token).send().await.expect(200);
    assert!(
        members.body["data"].as_array().expect("data").iter().any(|u| u["email"] == email.as_str()),
        "the member was made"
    );
}
