//! Account mail (issue 14): invitations, email verification, password reset
//! and the sign-in lockout notice, each mail read back from SES (moto) and
//! each link used over HTTP.

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use platform_tests::*;
use serde_json::{Value, json};

/// What the local stack sets (template.yaml's defaults).
const APP_BASE_URL: &str = "https://app.example.com";
const MAIL_FROM: &str = "no-reply@example.com";

/// The owner's tenant wears this branding in its mails.
async fn brand_tenant(owner: &Member, logo: &str, color: &str) {
    patch(&format!("/v1/tenants/{}", owner.tenant_id))
        .token(&owner.access_token)
        .json(&json!({"configuration": {"branding": {"logo_url": logo, "primary_color": color}}}))
        .send()
        .await
        .expect(200);
}

async fn login(email: &str, password: &str) -> Reply {
    post("/v1/auth/login").json(&json!({"email": email, "password": password})).send().await
}

async fn forgot(email: &str) -> Reply {
    post("/v1/auth/password/forgot").json(&json!({"email": email})).send().await
}

#[tokio::test]
async fn an_invitation_is_mailed_in_the_tenants_branding_and_its_link_accepts_once() {
    let owner = register_owner().await;
    let logo = format!("https://cdn.example.com/{}/logo.png", unique());
    brand_tenant(&owner, &logo, "#ff6600").await;
    let invitee = format!("invitee-{}@mail.example", unique());
    let invited = post("/v1/users/invite")
        .token(&owner.access_token)
        .json(&json!({"emails": [invitee], "role": "developer"}))
        .send()
        .await
        .expect(201);
    let answered = invited.body["invitations"][0]["token"].as_str().expect("token").to_owned();

    let mail = latest_mail(&invitee, "You are invited").await;
    assert_eq!(mail.from, MAIL_FROM);
    assert_eq!(mail.to, std::slice::from_ref(&invitee));
    assert!(mail.subject.starts_with("You are invited to join Tenant "), "{}", mail.subject);
    assert!(mail.body.contains(&format!("<img src=\"{logo}\"")), "the tenant's logo: {}", mail.body);
    assert!(mail.body.contains("border-top:4px solid #ff6600"), "the tenant's colour: {}", mail.body);
    assert!(mail.body.contains("as a developer."));
    assert!(mail.body.contains(&format!("{APP_BASE_URL}/accept-invitation?token=")));
    let token = mail.link_token("accept-invitation").expect("the accept link");
    assert_eq!(token, answered, "the mailed token is the one the admin was shown");

    let accept = |token: String| async move {
        post("/v1/auth/invitations/accept")
            .json(&json!({"token": token, "password": PASSWORD, "first_name": "Ivy", "last_name": "Invitee"}))
            .send()
            .await
    };
    let accepted = accept(token.clone()).await.expect(201);
    assert_eq!(accepted.body["user"]["email"], invitee.as_str());
    assert_eq!(accepted.body["user"]["role"], "developer");
    accept(token).await.expect_error(401, "invalid_token");
}

#[tokio::test]
async fn a_resent_invitation_mails_a_new_link_and_the_old_one_stops_working() {
    let owner = register_owner().await;
    let invitee = format!("resent-{}@mail.example", unique());
    post("/v1/users/invite").token(&owner.access_token).json(&json!({"emails": [invitee]})).send().await.expect(201);
    let first = latest_mail(&invitee, "You are invited").await.link_token("accept-invitation").expect("link");
    post(&format!("/v1/users/invitations/{invitee}/resend")).token(&owner.access_token).send().await.expect(200);
    let mails = mail_to(&invitee).await;
    assert_eq!(mails.len(), 2, "one mail per invitation sent");
    let second = mails[1].link_token("accept-invitation").expect("link");
    assert_ne!(first, second);
    // Unbranded tenant: its name, in the default colour.
    assert!(mails[1].body.contains("<strong style=\"font-size:18px;color:#1a365d\">Tenant "), "{}", mails[1].body);
    let accept = |token: String| async move {
        post("/v1/auth/invitations/accept")
            .json(&json!({"token": token, "password": PASSWORD, "first_name": "Ivy", "last_name": "Invitee"}))
            .send()
            .await
    };
    accept(first).await.expect_error(401, "invalid_token");
    accept(second).await.expect(201);
}

#[tokio::test]
async fn a_verification_mail_proves_the_address_once() {
    let owner = register_owner().await;
    let me = get("/v1/auth/me").token(&owner.access_token).send().await.expect(200);
    assert_eq!((me.body["email_verified"].clone(), me.body["email_verified_at"].clone()), (json!(false), Value::Null));

    let sent = post("/v1/auth/email/verification").token(&owner.access_token).send().await.expect(202);
    assert_eq!(sent.body, json!({"email": owner.email, "expires_in": 172_800}));
    let mail = latest_mail(&owner.email, "Confirm your email address").await;
    assert!(mail.body.contains("valid for 48 hours"));
    let token = mail.link_token("verify-email").expect("the verification link");
    assert!(token.starts_with(&format!("vfy.{}.{}.", owner.tenant_id, owner.user_id)), "{token}");
    // Only its hash is stored.
    let stored = tenant_items(&owner.tenant_id, "MAILTOKEN#VERIFY#").await;
    assert_eq!(stored.len(), 1);
    let secret = token.rsplit('.').next().expect("secret");
    assert!(!format!("{stored:?}").contains(secret));

    let verified = post("/v1/auth/email/verify").json(&json!({"token": token})).send().await.expect(200);
    assert_eq!(verified.body["email"], owner.email.as_str());
    assert_eq!(verified.body["email_verified"], true);
    assert!(verified.body["email_verified_at"].is_string());
    let me = get("/v1/auth/me").token(&owner.access_token).send().await.expect(200);
    assert_eq!(me.body["email_verified"], true);
    assert_eq!(me.body["email_verified_at"], verified.body["email_verified_at"]);

    post("/v1/auth/email/verify").json(&json!({"token": token})).send().await.expect_error(401, "invalid_token");
    let again =
        post("/v1/auth/email/verification").token(&owner.access_token).send().await.expect_error(409, "conflict");
    assert_eq!(again.body["details"]["reason"], "already_verified");
    let audit = get("/v1/audit/logs?action=email_verified").token(&owner.access_token).send().await.expect(200);
    assert_eq!(audit.body["data"][0]["resource_id"], owner.user_id.as_str());
}

#[tokio::test]
async fn verification_mails_are_throttled_and_need_a_person() {
    let owner = register_owner().await;
    for _ in 0..3 {
        post("/v1/auth/email/verification").token(&owner.access_token).send().await.expect(202);
    }
    let refused =
        post("/v1/auth/email/verification").token(&owner.access_token).send().await.expect_error(429, "rate_limited");
    assert!(refused.headers.contains_key("retry-after"));
    // Only the newest link works.
    let mails = mail_to(&owner.email).await;
    let tokens: Vec<String> = mails.iter().filter_map(|m| m.link_token("verify-email")).collect();
    assert!(tokens.len() >= 3, "{tokens:?}");
    let older = &tokens[tokens.len() - 2];
    post("/v1/auth/email/verify").json(&json!({"token": older})).send().await.expect_error(401, "invalid_token");
    post("/v1/auth/email/verify").json(&json!({"token": tokens.last()})).send().await.expect(200);
    post("/v1/auth/email/verification").send().await.expect_error(401, "unauthorized");
}

#[tokio::test]
async fn a_password_reset_answers_alike_for_unknown_addresses_and_its_link_works_once() {
    let owner = register_owner().await;
    let second_login = login(&owner.email, PASSWORD).await.expect(200);
    let ghost = format!("nobody-{}@mail.example", unique());

    let started = Instant::now();
    let known = forgot(&owner.email).await.expect(202);
    assert!(started.elapsed() >= Duration::from_millis(800), "answered before the floor");
    let started = Instant::now();
    let unknown = forgot(&ghost).await.expect(202);
    assert!(started.elapsed() >= Duration::from_millis(800), "answered before the floor");
    assert_eq!(known.body, unknown.body, "the same answer whether or not the account exists");
    assert_eq!(
        known.body,
        json!({"message": "If an account exists for this address, a link to reset its password is on its way."})
    );
    assert!(mail_to(&ghost).await.is_empty(), "no mail for an address without an account");

    let mail = latest_mail(&owner.email, "Reset your").await;
    assert!(mail.body.contains("valid for 30 minutes"));
    let token = mail.link_token("reset-password").expect("the reset link");
    assert!(token.starts_with(&format!("rst.{}.{}.", owner.tenant_id, owner.user_id)), "{token}");

    // The sign-up rules hold for the new password, and a refusal spends nothing.
    let refused = post("/v1/auth/password/reset")
        .json(&json!({"token": token, "password": owner.email}))
        .send()
        .await
        .expect_error(400, "validation_failed");
    assert_eq!(refused.invalid_fields(), ["password"]);

    let new_password = "a brand new passphrase";
    let reset = post("/v1/auth/password/reset")
        .json(&json!({"token": token, "password": new_password}))
        .send()
        .await
        .expect(200);
    assert_eq!(reset.body, json!({"password_reset": true, "sessions_revoked": 2}));

    post("/v1/auth/password/reset")
        .json(&json!({"token": token, "password": "yet another passphrase"}))
        .send()
        .await
        .expect_error(401, "invalid_token");
    login(&owner.email, PASSWORD).await.expect_error(401, "unauthorized");
    login(&owner.email, new_password).await.expect(200);
    for refresh in [&owner.refresh_token, second_login.body["refresh_token"].as_str().expect("refresh")] {
        post("/v1/auth/refresh")
            .json(&json!({"refresh_token": refresh}))
            .send()
            .await
            .expect_error(401, "invalid_token");
    }
    get("/v1/auth/me").token(&owner.access_token).send().await.expect(401);

    let notice = latest_mail(&owner.email, "password was changed").await;
    assert!(notice.body.contains(&format!("{APP_BASE_URL}/forgot-password")));
    assert!(notice.link_token("reset-password").is_none(), "a notice carries no token");
    let fresh = login(&owner.email, new_password).await.expect(200);
    let audit = get("/v1/audit/logs?action=password_reset")
        .token(fresh.body["access_token"].as_str().expect("token"))
        .send()
        .await
        .expect(200);
    assert_eq!(audit.body["data"][0]["resource_id"], owner.user_id.as_str());
    assert!(!audit.body.to_string().contains(token.rsplit('.').next().expect("secret")));
}

#[tokio::test]
async fn an_expired_forged_or_misused_reset_link_is_refused() {
    let owner = register_owner().await;
    let other = register_owner().await;
    forgot(&owner.email).await.expect(202);
    let token = latest_mail(&owner.email, "Reset your").await.link_token("reset-password").expect("link");
    let reset = |token: String| async move {
        post("/v1/auth/password/reset")
            .json(&json!({"token": token, "password": "a brand new passphrase"}))
            .send()
            .await
    };
    // The same ids and secret naming another tenant find nothing there.
    let forged = token.replacen(&owner.tenant_id, &other.tenant_id, 1);
    assert_ne!(forged, token);
    reset(forged).await.expect_error(401, "invalid_token");
    // Another secret, or the token offered as a verification link.
    let (head, _) = token.rsplit_once('.').expect("secret");
    reset(format!("{head}.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")).await.expect_error(401, "invalid_token");
    post("/v1/auth/email/verify").json(&json!({"token": token})).send().await.expect_error(401, "invalid_token");
    reset("rst.nonsense".into()).await.expect_error(401, "invalid_token");

    // Expired: its stored expiry moved into the past.
    let (state, clients) = test_state().await;
    clients
        .dynamodb
        .update_item()
        .table_name(state.store.table_name())
        .key("PK", AttributeValue::S(format!("T#{}#", owner.tenant_id)))
        .key("SK", AttributeValue::S(format!("MAILTOKEN#RESET#{}", owner.user_id)))
        .update_expression("SET expires_at = :past")
        .expression_attribute_values(":past", AttributeValue::N((chrono::Utc::now().timestamp() - 1).to_string()))
        .send()
        .await
        .expect("expire the token");
    let refused = reset(token).await.expect_error(401, "invalid_token");
    assert_eq!(refused.body["message"], "the reset link is invalid, used or expired");
    login(&owner.email, PASSWORD).await.expect(200);
}

#[tokio::test]
async fn reset_requests_are_throttled_alike_for_known_and_unknown_addresses() {
    let owner = register_owner().await;
    let ghost = format!("nobody-{}@mail.example", unique());
    let refused = |reply: &Reply| {
        assert_eq!(reply.body["error"], "rate_limited", "{:#}", reply.body);
        assert_eq!(reply.body["details"]["reason"], "too_many_attempts");
        assert!(reply.headers.contains_key("retry-after"));
    };
    let per_account = |email: String| async move {
        let mut seen = Vec::new();
        for _ in 0..4 {
            let reply = forgot(&email).await;
            if reply.status == 429 {
                refused(&reply);
            }
            seen.push(reply.status.as_u16());
        }
        seen
    };
    // Per caller address too, across accounts (sequential: the counter is
    // read before it is struck, like the sign-in throttle's).
    let per_address = async {
        let address = format!("198.51.100.{}", 1 + rand::random::<u8>() % 250);
        let mut seen = Vec::new();
        for _ in 0..21 {
            let reply = post("/v1/auth/password/forgot")
                .header("x-forwarded-for", &address)
                .json(&json!({"email": format!("someone-{}@mail.example", unique())}))
                .send()
                .await;
            if reply.status == 429 {
                refused(&reply);
            }
            seen.push(reply.status.as_u16());
        }
        seen
    };
    let (known, unknown, from_one_address) =
        tokio::join!(per_account(owner.email.clone()), per_account(ghost), per_address);
    assert_eq!(known, [202, 202, 202, 429]);
    assert_eq!(known, unknown, "the same answers whether or not the account exists");
    assert_eq!(mail_to(&owner.email).await.iter().filter(|m| m.subject.contains("Reset your")).count(), 3);
    let mut expected = vec![202; 20];
    expected.push(429);
    assert_eq!(from_one_address, expected);
}

#[tokio::test]
async fn a_sign_in_lockout_is_mailed_to_the_account() {
    let owner = register_owner().await;
    let mut statuses = Vec::new();
    for _ in 0..10 {
        statuses.push(login(&owner.email, "wrong password 123").await.status.as_u16());
    }
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
    let mail = latest_mail(&owner.email, "were paused").await;
    assert!(mail.subject.starts_with("Sign-ins to your Tenant "), "{}", mail.subject);
    assert!(mail.body.contains("paused for 15 minutes"));
    assert!(mail.body.contains(&format!("{APP_BASE_URL}/forgot-password")));
    assert_eq!(mail_to(&owner.email).await.iter().filter(|m| m.subject.contains("were paused")).count(), 1);

    // A reset ends the lockout: the mailbox's owner proved themself.
    forgot(&owner.email).await.expect(202);
    let token = latest_mail(&owner.email, "Reset your").await.link_token("reset-password").expect("link");
    post("/v1/auth/password/reset")
        .json(&json!({"token": token, "password": "a brand new passphrase"}))
        .send()
        .await
        .expect(200);
    login(&owner.email, "a brand new passphrase").await.expect(200);
}
