//! Access-token verification: the JWKS verifies real tokens; forged, expired,
//! unsigned, algorithm-confused and mis-addressed tokens are refused.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, jwk::JwkSet};
use p256::pkcs8::{EncodePrivateKey, LineEnding};
use platform_tests::*;
use serde_json::{Value, json};

async fn jwks() -> JwkSet {
    let reply = get("/.well-known/jwks.json").send().await.expect(200);
    serde_json::from_value(reply.body).expect("a JWK set")
}

/// Claims like ours for `member`, with `edit` applied.
fn claims(member: &Member, edit: impl FnOnce(&mut Value)) -> Value {
    let now = chrono::Utc::now().timestamp();
    let mut c = json!({
        "iss": "saas-platform", "aud": "saas-platform-api", "sub": member.user_id, "tid": member.tenant_id,
        "role": "owner", "padm": false, "sid": uuid::Uuid::now_v7(), "iat": now, "nbf": now, "exp": now + 300,
        "jti": uuid::Uuid::now_v7()
    });
    edit(&mut c);
    c
}

/// Signs with `key` under the stack's current key id.
async fn sign(claims: &Value, key: &EncodingKey) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(current_signing_key().await.id);
    header.typ = Some("at+jwt".into());
    jsonwebtoken::encode(&header, claims, key).expect("sign")
}

async fn real_key() -> EncodingKey {
    EncodingKey::from_ec_pem(current_signing_key().await.private_pem.as_bytes()).expect("key")
}

#[tokio::test]
async fn issued_tokens_verify_with_the_published_jwks() {
    let owner = register_owner().await;
    let set = jwks().await;
    // The current key and the staged one (and, after a rotation, the previous).
    assert!((2..=3).contains(&set.keys.len()), "{} keys", set.keys.len());
    let header = jsonwebtoken::decode_header(&owner.access_token).expect("header");
    assert_eq!(header.alg, Algorithm::ES256);
    let jwk = set.find(header.kid.as_deref().expect("kid")).expect("the token's key is published");
    let mut validation = Validation::new(Algorithm::ES256);
    validation.set_audience(&["saas-platform-api"]);
    validation.set_issuer(&["saas-platform"]);
    let data =
        jsonwebtoken::decode::<Value>(&owner.access_token, &DecodingKey::from_jwk(jwk).expect("key"), &validation)
            .expect("verifies with the JWKS alone");
    assert_eq!(data.claims["sub"], owner.user_id.as_str());
    assert_eq!(data.claims["tid"], owner.tenant_id.as_str());
    assert_eq!(data.claims["exp"].as_i64().expect("exp") - data.claims["iat"].as_i64().expect("iat"), 900);
}

#[tokio::test]
async fn a_token_signed_by_another_key_is_refused() {
    let owner = register_owner().await;
    let other = p256::SecretKey::random(&mut rand::rngs::OsRng);
    let pem = other.to_pkcs8_pem(LineEnding::LF).expect("pem");
    let forged = sign(&claims(&owner, |_| {}), &EncodingKey::from_ec_pem(pem.as_bytes()).expect("key")).await;
    get("/v1/auth/me").token(&forged).send().await.expect_error(401, "invalid_token");
}

#[tokio::test]
async fn an_expired_token_is_refused_as_expired() {
    let owner = register_owner().await;
    let expired = sign(
        &claims(&owner, |c| {
            let now = chrono::Utc::now().timestamp();
            c["iat"] = json!(now - 3600);
            c["nbf"] = json!(now - 3600);
            c["exp"] = json!(now - 60);
        }),
        &real_key().await,
    )
    .await;
    get("/v1/auth/me").token(&expired).send().await.expect_error(401, "token_expired");
}

#[tokio::test]
async fn an_unsigned_alg_none_token_is_refused() {
    let owner = register_owner().await;
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"at+jwt"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims(&owner, |_| {}).to_string());
    for token in [format!("{header}.{payload}."), format!("{header}.{payload}")] {
        get("/v1/auth/me").token(&token).send().await.expect_error(401, "invalid_token");
    }
}

#[tokio::test]
async fn an_hmac_token_keyed_with_the_public_key_is_refused() {
    let owner = register_owner().await;
    let public_pem = current_signing_key().await.public_pem.into_bytes();
    let mut header = Header::new(Algorithm::HS256);
    header.typ = Some("at+jwt".into());
    header.kid = Some(current_signing_key().await.id);
    let token =
        jsonwebtoken::encode(&header, &claims(&owner, |_| {}), &EncodingKey::from_secret(&public_pem)).expect("sign");
    get("/v1/auth/me").token(&token).send().await.expect_error(401, "invalid_token");
}

#[tokio::test]
async fn tokens_for_another_audience_or_issuer_or_from_the_future_are_refused() {
    let owner = register_owner().await;
    let key = real_key().await;
    let future = chrono::Utc::now().timestamp() + 3600;
    type Edit = Box<dyn FnOnce(&mut Value)>;
    let edits: Vec<Edit> = vec![
        Box::new(|c: &mut Value| c["aud"] = json!("another-api")),
        Box::new(|c: &mut Value| c["iss"] = json!("https://evil.example")),
        Box::new(move |c: &mut Value| {
            c["iat"] = json!(future);
            c["nbf"] = json!(future);
            c["exp"] = json!(future + 300);
        }),
        Box::new(|c: &mut Value| {
            c.as_object_mut().expect("object").remove("aud");
        }),
    ];
    for edit in edits {
        let token = sign(&claims(&owner, edit), &key).await;
        get("/v1/auth/me").token(&token).send().await.expect_error(401, "invalid_token");
    }
}

#[tokio::test]
async fn a_valid_token_without_the_access_token_type_is_refused() {
    let owner = register_owner().await;
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(current_signing_key().await.id);
    let id_token = jsonwebtoken::encode(&header, &claims(&owner, |_| {}), &real_key().await).expect("sign");
    get("/v1/auth/me").token(&id_token).send().await.expect_error(401, "invalid_token");
}

#[tokio::test]
async fn missing_or_malformed_credentials_are_401() {
    get("/v1/auth/me").send().await.expect_error(401, "unauthorized");
    get("/v1/auth/me").header("authorization", "Basic abc").send().await.expect_error(401, "invalid_token");
    get("/v1/auth/me").token("garbage").send().await.expect_error(401, "invalid_token");
}

#[tokio::test]
async fn an_x_tenant_id_other_than_the_callers_is_403_tenant_mismatch() {
    let a = register_owner().await;
    let b = register_owner().await;
    get("/v1/tenants/me")
        .token(&a.access_token)
        .header("x-tenant-id", &b.tenant_id)
        .send()
        .await
        .expect_error(403, "tenant_mismatch");
    let same =
        get("/v1/tenants/me").token(&a.access_token).header("x-tenant-id", &a.tenant_id).send().await.expect(200);
    assert_eq!(same.body["id"], a.tenant_id.as_str());
}

#[tokio::test]
async fn a_platform_admin_may_act_inside_a_tenant_with_x_tenant_id() {
    let owner = register_owner().await;
    let admin = platform_admin_token().await;
    let reply = get("/v1/tenants/me").token(&admin).header("x-tenant-id", &owner.tenant_id).send().await.expect(200);
    assert_eq!(reply.body["id"], owner.tenant_id.as_str());
}
