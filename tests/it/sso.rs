//! SSO over HTTP against a real OpenID provider (npm `oidc-provider`, run
//! per test by `platform_tests::Idp`): connections (seed 000's bodies),
//! OIDC sign-in with JIT provisioning and group mapping, the refusals
//! (wrong audience, wrong nonce, expired token, replayed state, another
//! tenant's connection) that must create nothing, linking, and the test
//! connection flow.

use platform_tests::{
    Idp, Member, audit_entries, delete, get, member_emails, member_with_role, patch, post, register_owner,
    tenant_items, unique,
};
use serde_json::{Value, json};

const REDIRECT: &str = "https://app.enterprise.test/auth/callback";

fn seed_google() -> Value {
    json!({
        "provider_type": "google",
        "provider_name": "Enterprise Google Workspace",
        "configuration": {
            "client_id": "123456789-abcdef.apps.googleusercontent.com",
            "client_secret": "GOCSPX-SecretKey123",
            "hosted_domain": "enterprise.com",
            "auto_provision_users": true,
            "default_role": "user",
            "admin_domains": ["admin.enterprise.com"]
        }
    })
}

fn seed_okta() -> Value {
    json!({
        "provider_type": "okta",
        "provider_name": "Enterprise Okta",
        "configuration": {
            "client_id": "0oa1a2b3c4d5e6f7g8h9",
            "client_secret": "SecretKey456",
            "okta_domain": "enterprise.okta.com",
            "scopes": ["openid", "profile", "email", "groups"],
            "group_mapping": {
                "Enterprise-Admins": "admin",
                "Enterprise-Developers": "developer",
                "Enterprise-Users": "user"
            }
        }
    })
}

fn seed_saml() -> Value {
    json!({
        "provider_type": "saml",
        "provider_name": "Fortune 500 Azure AD",
        "configuration": {
            "entity_id": "https://sts.windows.net/fortune500-tenant-id/",
            "sso_url": "https://login.microsoftonline.com/fortune500-tenant-id/saml2",
            "x509_certificate": "-----BEGIN CERTIFICATE-----\nMIIC...certificate_content...==\n-----END CERTIFICATE-----",
            "attribute_mapping": {
                "email": "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
                "first_name": "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname",
                "last_name": "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname",
                "groups": "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups"
            },
            "group_mapping": {
                "LeanVibe-Admins": "admin",
                "LeanVibe-Developers": "developer",
                "LeanVibe-Users": "user"
            }
        },
        "auto_provision_users": true,
        "require_encrypted_assertions": true
    })
}

fn client(id: &str) -> Value {
    json!({"client_id": id, "client_secret": format!("secret-{id}"), "redirect_uris": [REDIRECT]})
}

/// Seed 000's Okta connection pointed at the local provider with `client_id`.
fn okta_at(idp: &Idp, client_id: &str) -> Value {
    let mut body = seed_okta();
    body["configuration"]["issuer"] = json!(idp.issuer);
    body["configuration"]["client_id"] = json!(client_id);
    body["configuration"]["client_secret"] = json!(format!("secret-{client_id}"));
    body["auto_provision_users"] = json!(true);
    body
}

async fn create_connection(owner: &Member, body: &Value) -> Value {
    post("/v1/auth/sso/providers").token(&owner.access_token).json(body).send().await.expect(201).body
}

/// initiate -> the provider's login and consent -> the callback's body.
async fn sign_in(idp: &Idp, owner: &Member, provider: &str, login: &str) -> platform_tests::Reply {
    let started = post(&format!("/v1/auth/sso/{provider}/initiate"))
        .json(&json!({"tenant_id": owner.tenant_id, "redirect_uri": REDIRECT}))
        .send()
        .await
        .expect(200);
    let back = idp.sign_in(started.body["authorization_url"].as_str().expect("url"), login).await;
    let query: std::collections::HashMap<String, String> = back.query_pairs().into_owned().collect();
    assert_eq!(query.get("state").map(String::as_str), started.body["state"].as_str(), "the state comes back");
    post(&format!("/v1/auth/sso/{provider}/callback"))
        .json(&json!({"code": query["code"], "state": query["state"]}))
        .send()
        .await
}

#[tokio::test]
async fn seed_bodies_are_accepted_their_secrets_never_shown_and_other_tenants_see_404() {
    let owner = register_owner().await;
    let mut ids = Vec::new();
    for body in [seed_saml(), seed_google(), seed_okta()] {
        let created = create_connection(&owner, &body).await;
        let text = created.to_string();
        for secret in ["GOCSPX-SecretKey123", "SecretKey456", "certificate_content", "client_secret\":", "x509"] {
            assert!(!text.contains(secret), "{secret} shown: {text}");
        }
        assert_eq!(created["provider_type"], body["provider_type"]);
        assert_eq!(created["status"], "active");
        ids.push(created["id"].as_str().expect("id").to_owned());
    }
    let google = get(&format!("/v1/auth/sso/providers/{}", ids[1])).token(&owner.access_token).send().await.expect(200);
    assert_eq!(google.body["client_secret_set"], true);
    assert_eq!(google.body["issuer"], "https://accounts.google.com");
    // One canonical place for what the seed sent inside `configuration`.
    assert_eq!(google.body["auto_provision_users"], true);
    assert_eq!(google.body["admin_domains"], json!(["admin.enterprise.com"]));
    assert!(google.body["configuration"].get("admin_domains").is_none());
    let saml = get(&format!("/v1/auth/sso/providers/{}", ids[0])).token(&owner.access_token).send().await.expect(200);
    assert_eq!(
        (saml.body["certificate_set"].clone(), saml.body["require_encrypted_assertions"].clone()),
        (json!(true), json!(true))
    );
    assert_eq!(
        get(&format!("/v1/auth/sso/providers/{}", ids[2])).token(&owner.access_token).send().await.body["issuer"],
        "https://enterprise.okta.com"
    );

    // Sealed at rest: the table holds no secret in the clear.
    for item in tenant_items(&owner.tenant_id, "SSOCONN#").await {
        let dump = format!("{item:?}");
        assert!(!dump.contains("SecretKey") && !dump.contains("certificate_content"), "{dump}");
    }

    let list = get("/v1/auth/sso/providers?limit=2").token(&owner.access_token).send().await.expect(200);
    assert_eq!(list.body["data"].as_array().map(Vec::len), Some(2));
    let rest = get(&format!("/v1/auth/sso/providers?cursor={}", list.body["next_cursor"].as_str().expect("cursor")))
        .token(&owner.access_token)
        .send()
        .await
        .expect(200);
    assert_eq!(rest.body["data"][0]["id"], ids[2].as_str());

    let updated = patch(&format!("/v1/auth/sso/providers/{}", ids[2]))
        .token(&owner.access_token)
        .json(&json!({"provider_name": "Okta (prod)", "configuration": {"client_secret": "rotated-999"}, "default_role": "developer"}))
        .send()
        .await
        .expect(200);
    assert_eq!(
        (updated.body["provider_name"].clone(), updated.body["default_role"].clone()),
        (json!("Okta (prod)"), json!("developer"))
    );
    assert_eq!(updated.body["configuration"]["group_mapping"]["Enterprise-Admins"], "admin", "untouched fields stay");
    assert!(!updated.body.to_string().contains("rotated-999"));

    // Field-named 400s, whole.
    let bad = post("/v1/auth/sso/providers")
        .token(&owner.access_token)
        .json(
            &json!({"provider_type": "oidc", "provider_name": "X", "configuration": {"group_mapping": {"G": "owner"}}}),
        )
        .send()
        .await
        .expect_error(400, "validation_failed");
    let mut fields = bad.invalid_fields();
    fields.sort();
    assert_eq!(
        fields,
        [
            "configuration.client_id",
            "configuration.client_secret",
            "configuration.group_mapping.G",
            "configuration.issuer"
        ]
    );

    // The SAML connection starts a sign-in at its IdP's SSO URL (the rest of
    // the SAML flow: saml.rs). It lists no redirect_uris, so its code goes
    // only to the app's own origin: any other URL is refused.
    let foreign = post("/v1/auth/sso/saml/initiate")
        .json(&json!({"tenant_id": owner.tenant_id, "redirect_uri": REDIRECT}))
        .send()
        .await
        .expect_error(400, "validation_failed");
    assert_eq!(foreign.invalid_fields(), ["redirect_uri"]);
    let app = std::env::var("APP_BASE_URL").expect("APP_BASE_URL");
    let saml_start = post("/v1/auth/sso/saml/initiate")
        .json(&json!({"tenant_id": owner.tenant_id, "redirect_uri": format!("{app}/auth/callback")}))
        .send()
        .await
        .expect(200)
        .body;
    let url = saml_start["authorization_url"].as_str().expect("authorization_url");
    assert!(url.starts_with("https://login.microsoftonline.com/fortune500-tenant-id/saml2?SAMLRequest="), "{url}");
    assert!(url.contains("&RelayState="), "{url}");
    assert!(saml_start["state"].as_str().is_some_and(|s| s.starts_with("sso.")));

    // Another tenant's admin: 404 for every id; a developer: 403.
    let stranger = register_owner().await;
    let path = format!("/v1/auth/sso/providers/{}", ids[1]);
    get(&path).token(&stranger.access_token).send().await.expect_error(404, "not_found");
    patch(&path)
        .token(&stranger.access_token)
        .json(&json!({"provider_name": "x"}))
        .send()
        .await
        .expect_error(404, "not_found");
    delete(&path).token(&stranger.access_token).send().await.expect_error(404, "not_found");
    post(&format!("{path}/test"))
        .token(&stranger.access_token)
        .json(&json!({"redirect_uri": REDIRECT}))
        .send()
        .await
        .expect_error(404, "not_found");
    let developer = member_with_role(&owner, "developer").await;
    let refused = get("/v1/auth/sso/providers")
        .token(&developer.access_token)
        .send()
        .await
        .expect_error(403, "insufficient_permissions");
    assert_eq!(refused.body["details"]["required_role"], "admin");
    post("/v1/auth/sso/providers")
        .token(&developer.access_token)
        .json(&seed_okta())
        .send()
        .await
        .expect_error(403, "insufficient_permissions");

    delete(&path).token(&owner.access_token).send().await.expect(204);
    get(&path).token(&owner.access_token).send().await.expect_error(404, "not_found");
    let actions: Vec<String> = audit_entries(&owner.tenant_id).await.into_iter().map(|(a, _)| a).collect();
    assert!(actions.iter().filter(|a| *a == "create").count() >= 3, "{actions:?}");
    assert!(actions.contains(&"update".to_owned()) && actions.contains(&"delete".to_owned()), "{actions:?}");
}

#[tokio::test]
async fn an_oidc_sign_in_provisions_the_member_maps_groups_and_follows_them_on_the_next_sign_in() {
    let client_id = format!("okta-{}", unique());
    let owner = register_owner().await;
    let email = format!("alice-{}@enterprise.example", unique());
    let idp = Idp::start(&json!({
        "clients": [client(&client_id)],
        "accounts": {"alice": {"email": email, "email_verified": true, "given_name": "Alice", "family_name": "Okta",
                                "groups": ["Enterprise-Developers", "Everyone"]}}
    }))
    .await;
    let connection = create_connection(&owner, &okta_at(&idp, &client_id)).await;

    let started = post("/v1/auth/sso/okta/initiate")
        .json(&json!({"tenant_id": owner.tenant_id, "redirect_uri": REDIRECT}))
        .send()
        .await
        .expect(200);
    assert_eq!(started.body["expires_in"], 600);
    let url = reqwest::Url::parse(started.body["authorization_url"].as_str().expect("url")).expect("url");
    assert!(url.as_str().starts_with(&format!("{}/auth?", idp.issuer)), "{url}");
    let query: std::collections::HashMap<String, String> = url.query_pairs().into_owned().collect();
    assert_eq!(query["code_challenge_method"], "S256");
    assert_eq!(query["client_id"], client_id);
    assert_eq!(query["scope"], "openid profile email groups");
    assert_eq!(query["redirect_uri"], REDIRECT);
    assert!(query["nonce"].len() >= 16 && query["code_challenge"].len() == 43);
    assert!(started.body["state"].as_str().is_some_and(|s| s.starts_with(&format!("sso.{}.", owner.tenant_id))));

    let back = idp.sign_in(url.as_str(), "alice").await;
    let returned: std::collections::HashMap<String, String> = back.query_pairs().into_owned().collect();
    let first = post("/v1/auth/sso/okta/callback")
        .json(&json!({"code": returned["code"], "state": returned["state"]}))
        .send()
        .await
        .expect(200);
    assert_eq!(first.body["provisioned"], true);
    assert_eq!(first.body["connection_id"], connection["id"]);
    assert_eq!(first.body["user"]["email"], email.as_str());
    assert_eq!(first.body["user"]["first_name"], "Alice");
    assert_eq!(first.body["user"]["role"], "developer", "Enterprise-Developers maps to developer");
    let me = get("/v1/auth/me").token(first.body["access_token"].as_str().expect("token")).send().await.expect(200);
    assert_eq!(me.body["tenant_id"], owner.tenant_id.as_str());
    let user_id = first.body["user"]["id"].clone();
    assert_eq!(member_emails(&owner).await, {
        let mut e = vec![owner.email.clone(), email.clone()];
        e.sort();
        e
    });
    let events = platform_tests::outbox_events(&owner.tenant_id).await;
    let created = events.iter().find(|e| e["type"] == "user.created" && e["data"]["email"] == email.as_str());
    assert_eq!(created.map(|e| e["data"]["via"].clone()), Some(json!("sso")), "{events:#?}");

    // The state was used: the same callback again is refused and changes nothing.
    post("/v1/auth/sso/okta/callback")
        .json(&json!({"code": returned["code"], "state": returned["state"]}))
        .send()
        .await
        .expect_error(401, "invalid_state");

    // The IdP moves her to the admins: the next sign-in follows.
    idp.set_account(
        "alice",
        &json!({"email": email, "email_verified": true, "given_name": "Alice", "family_name": "Okta",
                "groups": ["Enterprise-Admins", "Enterprise-Users"]}),
    )
    .await;
    let second = sign_in(&idp, &owner, "okta", "alice").await.expect(200);
    assert_eq!(second.body["provisioned"], false);
    assert_eq!(second.body["user"]["id"], user_id);
    assert_eq!(second.body["user"]["role"], "admin", "the strongest mapped role wins");
    assert_eq!(member_emails(&owner).await.len(), 2);
    let events = platform_tests::outbox_events(&owner.tenant_id).await;
    assert!(events.iter().any(|e| e["type"] == "user.updated" && e["data"]["role"] == "admin"), "{events:#?}");
    let logins: Vec<Value> =
        audit_entries(&owner.tenant_id).await.into_iter().filter(|(a, _)| a == "sso_login").map(|(_, v)| v).collect();
    assert_eq!(logins.len(), 2);
    assert!(logins.iter().any(|v| v["provisioned"] == true && v["role"] == "developer"), "{logins:?}");
}

#[tokio::test]
async fn wrong_audience_wrong_nonce_expired_token_and_another_tenants_connection_are_refused_creating_nothing() {
    let suffix = unique();
    let (aud, nonce, expired) = (format!("aud-{suffix}"), format!("nonce-{suffix}"), format!("exp-{suffix}"));
    let owner = register_owner().await;
    let email = format!("mallory-{suffix}@enterprise.example");
    let idp = Idp::start(&json!({
        "clients": [client(&aud), client(&nonce), client(&expired)],
        "accounts": {"mallory": {"email": email, "email_verified": true, "groups": ["Enterprise-Admins"]}}
    }))
    .await;
    idp.tamper(&aud, &json!({"aud": "someone-else"})).await;
    idp.tamper(&nonce, &json!({"nonce": "not-the-one-we-sent"})).await;
    idp.tamper(&expired, &json!({"exp_offset": -600})).await;
    let mut connections = Vec::new();
    for client_id in [&aud, &nonce, &expired] {
        connections
            .push(create_connection(&owner, &okta_at(&idp, client_id)).await["id"].as_str().expect("id").to_owned());
    }
    // Three active Okta connections: the type alone is ambiguous.
    let ambiguous = post("/v1/auth/sso/okta/initiate")
        .json(&json!({"tenant_id": owner.tenant_id, "redirect_uri": REDIRECT}))
        .send()
        .await
        .expect_error(409, "ambiguous_provider");
    assert_eq!(ambiguous.body["details"]["connection_ids"].as_array().map(Vec::len), Some(3));

    for (connection, reason) in connections.iter().zip(["wrong_audience", "nonce_mismatch", "expired"]) {
        let refused = sign_in(&idp, &owner, connection, "mallory").await.expect_error(401, "sso_token_invalid");
        assert_eq!(refused.body["details"]["reason"], reason, "{:#}", refused.body);
    }
    assert_eq!(member_emails(&owner).await, std::slice::from_ref(&owner.email), "nothing was created");
    let refusals: Vec<Value> = audit_entries(&owner.tenant_id)
        .await
        .into_iter()
        .filter(|(a, _)| a == "sso_login_refused")
        .map(|(_, v)| v)
        .collect();
    assert_eq!(refusals.len(), 3, "each refusal is audited: {refusals:?}");

    // Another tenant cannot start a sign-in with this tenant's connection.
    let other = register_owner().await;
    post(&format!("/v1/auth/sso/{}/initiate", connections[0]))
        .json(&json!({"tenant_id": other.tenant_id, "redirect_uri": REDIRECT}))
        .send()
        .await
        .expect_error(404, "not_found");
    // Nor bring this tenant's state back as its own.
    let started = post(&format!("/v1/auth/sso/{}/initiate", connections[0]))
        .json(&json!({"tenant_id": owner.tenant_id, "redirect_uri": REDIRECT}))
        .send()
        .await
        .expect(200);
    let state = started.body["state"].as_str().expect("state");
    let forged = state.replace(&owner.tenant_id, &other.tenant_id);
    post(&format!("/v1/auth/sso/{}/callback", connections[0]))
        .json(&json!({"code": "whatever", "state": forged}))
        .send()
        .await
        .expect_error(401, "invalid_state");
    assert_eq!(member_emails(&other).await, std::slice::from_ref(&other.email));
    assert_eq!(member_emails(&owner).await, std::slice::from_ref(&owner.email));
    // A redirect URI that is not https is refused before anything is stored.
    let bad = post(&format!("/v1/auth/sso/{}/initiate", connections[0]))
        .json(&json!({"tenant_id": owner.tenant_id, "redirect_uri": "http://app.enterprise.test/cb"}))
        .send()
        .await
        .expect_error(400, "validation_failed");
    assert_eq!(bad.invalid_fields(), ["redirect_uri"]);
}

#[tokio::test]
async fn a_member_is_linked_only_by_a_vouched_email_in_the_connections_domain_and_a_disabled_one_is_refused() {
    let suffix = unique();
    let domain = format!("acme-{suffix}.example");
    let client_id = format!("google-{suffix}");
    let owner = register_owner().await;
    let email = format!("bob@{domain}");
    post("/v1/users")
        .token(&owner.access_token)
        .json(&json!({"email": email, "password": platform_tests::PASSWORD, "first_name": "Bob", "last_name": "B", "role": "developer"}))
        .send()
        .await
        .expect(201);
    let idp = Idp::start(&json!({
        "clients": [client(&client_id)],
        "accounts": {"bob": {"email": email, "email_verified": false, "hd": domain}}
    }))
    .await;
    let mut google = seed_google();
    google["configuration"]["issuer"] = json!(idp.issuer);
    google["configuration"]["client_id"] = json!(client_id);
    google["configuration"]["client_secret"] = json!(format!("secret-{client_id}"));
    google["configuration"]["hosted_domain"] = json!(domain);
    create_connection(&owner, &google).await;

    let refused = sign_in(&idp, &owner, "google", "bob").await.expect_error(409, "account_not_linked");
    assert!(refused.body["message"].as_str().is_some_and(|m| m.contains("email_verified")));
    idp.set_account("bob", &json!({"email": email, "email_verified": true, "hd": "elsewhere.example"})).await;
    let wrong_hd = sign_in(&idp, &owner, "google", "bob").await.expect_error(401, "sso_token_invalid");
    assert_eq!(wrong_hd.body["details"]["reason"], "hosted_domain_mismatch");

    idp.set_account("bob", &json!({"email": email, "email_verified": true, "hd": domain})).await;
    let linked = sign_in(&idp, &owner, "google", "bob").await.expect(200);
    assert_eq!(
        (linked.body["provisioned"].clone(), linked.body["user"]["email"].clone()),
        (json!(false), json!(email))
    );
    // No group maps, no admin domain: the connection's default role.
    assert_eq!(linked.body["user"]["role"], "user");
    assert_eq!(member_emails(&owner).await.len(), 2);

    let user_id = linked.body["user"]["id"].as_str().expect("id");
    patch(&format!("/v1/users/{user_id}"))
        .token(&owner.access_token)
        .json(&json!({"is_active": false}))
        .send()
        .await
        .expect(200);
    sign_in(&idp, &owner, "google", "bob").await.expect_error(403, "account_disabled");
}

#[tokio::test]
async fn a_test_of_a_connection_shows_the_claims_and_role_and_creates_no_member_and_no_session() {
    let suffix = unique();
    let client_id = format!("test-{suffix}");
    let owner = register_owner().await;
    let email = format!("carol@admin.enterprise-{suffix}.example");
    let idp = Idp::start(&json!({
        "clients": [client(&client_id)],
        "accounts": {"carol": {"email": email, "email_verified": true, "groups": ["Enterprise-Users"]}}
    }))
    .await;
    let mut body = okta_at(&idp, &client_id);
    body["admin_domains"] = json!([format!("admin.enterprise-{suffix}.example")]);
    body["status"] = json!("inactive");
    let connection = create_connection(&owner, &body).await;
    let id = connection["id"].as_str().expect("id");
    // Inactive: no sign-in, but an admin may test it.
    post(&format!("/v1/auth/sso/{id}/initiate"))
        .json(&json!({"tenant_id": owner.tenant_id, "redirect_uri": REDIRECT}))
        .send()
        .await
        .expect_error(404, "not_found");
    let sessions_before = tenant_items(&owner.tenant_id, "SESSION#").await.len();
    let started = post(&format!("/v1/auth/sso/providers/{id}/test"))
        .token(&owner.access_token)
        .json(&json!({"redirect_uri": REDIRECT}))
        .send()
        .await
        .expect(200);
    assert_eq!(started.body["test"], true);
    let back = idp.sign_in(started.body["authorization_url"].as_str().expect("url"), "carol").await;
    let returned: std::collections::HashMap<String, String> = back.query_pairs().into_owned().collect();
    let result = post(&format!("/v1/auth/sso/{id}/callback"))
        .json(&json!({"code": returned["code"], "state": returned["state"]}))
        .send()
        .await
        .expect(200);
    assert_eq!(result.body["test"], true);
    assert_eq!(result.body["claims"]["email"], email.as_str());
    assert_eq!(result.body["claims"]["issuer"], idp.issuer.as_str());
    assert_eq!(result.body["role"]["role"], "admin");
    assert_eq!(result.body["role"]["source"], "admin_domains");
    assert_eq!(result.body["would_provision"], true);
    assert!(result.body.get("access_token").is_none());
    assert_eq!(member_emails(&owner).await, std::slice::from_ref(&owner.email));
    assert_eq!(tenant_items(&owner.tenant_id, "SESSION#").await.len(), sessions_before);
}

#[tokio::test]
async fn a_sign_in_from_outside_the_tenants_allow_list_is_refused_before_anything_is_created() {
    let client_id = format!("okta-{}", unique());
    let owner = register_owner().await;
    let idp = Idp::start(&json!({
        "clients": [client(&client_id)],
        "accounts": {"erin": {"email": format!("erin-{}@enterprise.example", unique()), "email_verified": true}}
    }))
    .await;
    create_connection(&owner, &okta_at(&idp, &client_id)).await;
    patch(&format!("/v1/tenants/{}", owner.tenant_id))
        .token(&owner.access_token)
        .header("x-forwarded-for", "203.0.113.7")
        .json(&json!({"configuration": {"security": {"ip_whitelisting": ["203.0.113.0/24"]}}}))
        .send()
        .await
        .expect(200);
    // `sign_in` sends no X-Forwarded-For: the local server knows no address.
    let refused = sign_in(&idp, &owner, "okta", "erin").await.expect_error(403, "ip_not_allowed");
    assert_eq!(refused.body["details"]["policy"], "configuration.security.ip_whitelisting");
    let emails = user_emails_from(&owner, "203.0.113.7").await;
    assert_eq!(emails, std::slice::from_ref(&owner.email), "nobody was provisioned");
}

async fn user_emails_from(owner: &Member, address: &str) -> Vec<String> {
    let users = get("/v1/users").token(&owner.access_token).header("x-forwarded-for", address).send().await.expect(200);
    users.body["data"].as_array().expect("data").iter().map(|u| u["email"].as_str().expect("email").into()).collect()
}

#[tokio::test]
async fn an_email_claim_never_links_the_owner_nor_a_member_with_mfa() {
    let client_id = format!("okta-{}", unique());
    let owner = register_owner().await;
    let domain = owner.email.split_once('@').expect("an email").1.to_owned();
    // An admin's own IdP, claiming the owner's (verified) address in a
    // domain the admin listed.
    let idp = Idp::start(&json!({
        "clients": [client(&client_id)],
        "accounts": {"mallory": {"email": owner.email, "email_verified": true}}
    }))
    .await;
    let mut connection = okta_at(&idp, &client_id);
    connection["configuration"]["domains"] = json!([domain]);
    create_connection(&owner, &connection).await;
    let refused = sign_in(&idp, &owner, "okta", "mallory").await.expect_error(409, "account_not_linked");
    assert_eq!(refused.body["details"]["reason"], "account_protected", "{:#}", refused.body);
    assert!(refused.body.get("access_token").is_none());
    // And no identity was linked: the same sign-in is refused again.
    sign_in(&idp, &owner, "okta", "mallory").await.expect_error(409, "account_not_linked");
}

/// Initiate is public and stores a state per call: one address may start
/// 60 sign-ins in ten minutes, then it waits (429 with `Retry-After`);
/// another address is not held up.
#[tokio::test]
async fn sign_ins_started_from_one_address_are_throttled() {
    let owner = register_owner().await;
    create_connection(&owner, &seed_google()).await;
    let unique_address = |n: u128| format!("10.{}.{}.{}", (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff);
    let seed = uuid::Uuid::new_v4().as_u128();
    let (address, other) = (unique_address(seed), unique_address(seed.wrapping_add(1)));
    let start = |from: String| {
        let tenant_id = owner.tenant_id.clone();
        async move {
            post("/v1/auth/sso/google/initiate")
                .header("x-forwarded-for", &from)
                .json(&json!({"tenant_id": tenant_id, "redirect_uri": REDIRECT}))
                .send()
                .await
        }
    };
    for _ in 0..60 {
        start(address.clone()).await.expect(200);
    }
    let refused = start(address.clone()).await.expect_error(429, "rate_limited");
    assert_eq!(refused.body["details"]["reason"], "too_many_attempts");
    assert!(refused.headers.get("retry-after").is_some(), "Retry-After");
    start(other).await.expect(200);
}
