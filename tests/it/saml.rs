//! SAML 2.0 sign-in over HTTP, against a test IdP whose responses the
//! `xmlsec1` CLI signs (`platform_tests::saml`): the SP-initiated flow
//! (initiate -> AuthnRequest -> ACS -> callback) with JIT provisioning,
//! group mapping and linking; the SP metadata; replays; the refusals at the
//! ACS (tampering, another key, audience, InResponseTo, expiry, SHA-1,
//! signature wrapping, a comment in the NameID) that must create nothing;
//! tenant isolation; the test of a connection; and seed 000's connection
//! as it stands, which requires encrypted assertions.

use std::collections::HashMap;

use platform_tests::{
    Member, Reply, audit_entries, get, member_emails, patch, post, register_owner,
    saml::{self, AuthnRequest, Content, HTTP_POST, TestIdp, base64, location, post_acs},
    tenant_items, unique,
};
use serde_json::{Value, json};

/// The app's callback page: under APP_BASE_URL, where a SAML connection
/// that lists no `redirect_uris` may send its code.
fn redirect() -> String {
    let app = std::env::var("APP_BASE_URL").expect("APP_BASE_URL (the local stack's env)");
    format!("{}/auth/callback", app.trim_end_matches('/'))
}

fn seed_000_body() -> Value {
    serde_json::from_str(include_str!("../fixtures/seeds/000-create-sso-provider-1.json"))
        .expect("seed 000's SAML body")
}

/// Seed 000's SAML body (tests/fixtures) pointed at `idp`: its entity id,
/// an SSO URL and its certificate; plain assertions accepted (the seed
/// requires encrypted ones: see the test that keeps it so).
fn connection_body(idp: &TestIdp, sso_url: &str) -> Value {
    let mut body = seed_000_body();
    body["configuration"]["entity_id"] = json!(idp.entity_id);
    body["configuration"]["sso_url"] = json!(sso_url);
    body["configuration"]["x509_certificate"] = json!(idp.certificate_pem());
    body["require_encrypted_assertions"] = json!(false);
    body
}

fn sso_url() -> String {
    format!("https://idp-{}.example.test/sso", unique())
}

struct Setup {
    owner: Member,
    idp: TestIdp,
    sso_url: String,
    connection_id: String,
}

/// A tenant with one SAML connection (`changes` applied to its body).
async fn setup_with(changes: impl FnOnce(&mut Value)) -> Setup {
    let owner = register_owner().await;
    let idp = TestIdp::new();
    let sso_url = sso_url();
    let mut body = connection_body(&idp, &sso_url);
    changes(&mut body);
    let created = post("/v1/auth/sso/providers").token(&owner.access_token).json(&body).send().await.expect(201);
    assert_eq!(created.body["provider_type"], "saml");
    assert!(!created.body.to_string().contains("BEGIN CERTIFICATE"), "the certificate is not shown: {}", created.body);
    let connection_id = created.body["id"].as_str().expect("id").to_owned();
    Setup { owner, idp, sso_url, connection_id }
}

async fn setup() -> Setup {
    setup_with(|_| {}).await
}

/// What initiate (or a test start) answered, and the AuthnRequest in it.
struct Started {
    state: String,
    request: AuthnRequest,
    body: Value,
}

fn started(reply: Reply) -> Started {
    let body = reply.expect(200).body;
    let request = saml::parse_authn_request(body["authorization_url"].as_str().expect("authorization_url"));
    Started { state: body["state"].as_str().expect("state").to_owned(), request, body }
}

async fn initiate(setup: &Setup, provider: &str) -> Started {
    started(
        post(&format!("/v1/auth/sso/{provider}/initiate"))
            .json(&json!({"tenant_id": setup.owner.tenant_id, "redirect_uri": redirect()}))
            .send()
            .await,
    )
}

/// Posts a response the ACS must accept; answers the code it redirected with.
async fn acs_accepts(request: &AuthnRequest, signed: &str) -> String {
    let reply = post_acs(&request.acs_url, &base64(signed), &request.relay_state).await.expect(303);
    let location = location(&reply).expect("a Location");
    assert!(location.starts_with(&format!("{}?code=", redirect())), "{location}");
    let url = reqwest::Url::parse(&location).expect("location");
    let query: HashMap<String, String> = url.query_pairs().into_owned().collect();
    assert_eq!(query.len(), 1, "only the code: {location}");
    let code = query["code"].clone();
    assert_eq!(code.len(), 43, "32 random bytes, base64url: {code}");
    code
}

/// Posts a response the ACS must refuse as `saml_response_invalid` with `reason`.
async fn acs_refuses(request: &AuthnRequest, xml: &str, reason: &str) -> Reply {
    let reply =
        post_acs(&request.acs_url, &base64(xml), &request.relay_state).await.expect_error(401, "saml_response_invalid");
    assert_eq!(reply.body["details"]["reason"], reason, "{:#}", reply.body);
    assert!(location(&reply).is_none(), "no redirect, no code");
    reply
}

async fn callback(provider: &str, code: &str, state: &str) -> Reply {
    post(&format!("/v1/auth/sso/{provider}/callback")).json(&json!({"code": code, "state": state})).send().await
}

/// The `new_values` of a tenant's audit entries with `action`.
async fn audited(tenant_id: &str, action: &str) -> Vec<Value> {
    audit_entries(tenant_id).await.into_iter().filter(|(a, _)| a == action).map(|(_, values)| values).collect()
}

#[test]
fn the_test_idp_signs_what_xmlsec1_verifies_and_its_wrapped_documents_still_verify_naively() {
    let idp = TestIdp::new();
    let request = AuthnRequest {
        id: saml::new_id(),
        acs_url: "https://api.example.test/v1/auth/saml/t/c/acs".into(),
        issuer: "https://api.example.test/v1/auth/saml/t/c/metadata".into(),
        destination: "https://idp.example.test/sso".into(),
        protocol_binding: HTTP_POST.into(),
        relay_state: "r".into(),
        xml: String::new(),
    };
    let response = idp.response(&request, "alice").azure_attributes("a@x.example", "A", "Z", &["G1", "G2"]);
    let signed = response.sign_assertion(&idp);
    assert!(signed.contains("<ds:SignatureValue>") && !signed.contains("<ds:SignatureValue></ds:SignatureValue>"));
    assert!(idp.naive_verify(&signed), "{signed}");
    assert!(!idp.naive_verify(&saml::tamper_name_id(&signed, "mallory")), "tampering breaks the digest");
    assert!(!TestIdp::new().naive_verify(&signed), "another IdP's certificate does not verify it");
    // The wrapping attacks keep a valid signature: only the structure tells.
    for wrapped in [saml::xsw3(&signed, "mallory"), saml::xsw4(&signed, "mallory")] {
        assert_eq!(wrapped.matches("<saml:Assertion ").count(), 2, "{wrapped}");
        assert!(wrapped.contains(">mallory<"));
        assert!(idp.naive_verify(&wrapped), "{wrapped}");
    }
    assert!(idp.naive_verify(&response.sign_response(&idp)));
    assert!(idp.naive_verify(&response.clone().rsa_sha1().sign_assertion(&idp)));
}

#[tokio::test]
async fn an_sp_initiated_sign_in_provisions_the_member_with_the_mapped_role_and_the_next_one_links_to_it() {
    let setup = setup().await;
    let (owner, idp, connection_id) = (&setup.owner, &setup.idp, setup.connection_id.as_str());

    // initiate: an AuthnRequest on the IdP's SSO URL (HTTP-Redirect binding).
    let start = initiate(&setup, "saml").await;
    assert_eq!(start.body["test"], false);
    assert!(start.body["expires_in"].as_u64().is_some_and(|s| s > 0 && s <= 600), "{}", start.body);
    let url = start.body["authorization_url"].as_str().expect("url");
    assert!(url.starts_with(&format!("{}?", setup.sso_url)), "{url}");
    let query: HashMap<String, String> = reqwest::Url::parse(url).expect("url").query_pairs().into_owned().collect();
    assert!(query.contains_key("SAMLRequest") && query.contains_key("RelayState"), "{url}");
    let request = &start.request;
    assert_eq!(request.destination, setup.sso_url);
    assert_eq!(request.protocol_binding, HTTP_POST);
    assert!(
        request.id.len() == 33 && request.id.starts_with('_') && request.id[1..].chars().all(|c| c.is_ascii_hexdigit()),
        "{}",
        request.id
    );
    assert!(request.xml.contains(r#"Version="2.0""#), "{}", request.xml);
    let base = format!("/v1/auth/saml/{}/{connection_id}", owner.tenant_id);
    assert!(
        request.acs_url.starts_with("http") && request.acs_url.ends_with(&format!("{base}/acs")),
        "{}",
        request.acs_url
    );
    assert_eq!(request.issuer, request.acs_url.replace(&format!("{base}/acs"), &format!("{base}/metadata")));
    let relay = &request.relay_state;
    assert!(relay.len() <= 80, "SAML bindings 3.4.3: {relay}");
    assert!(relay.split_once('.').is_some_and(|(id, _)| id.len() == 32), "{relay}");
    assert!(!start.state.contains(relay.as_str()), "the app's state is not the relay");

    // The SP metadata the IdP admin is given names that ACS and entity id.
    let (status, content_type, metadata) = saml::get_text(&request.issuer).await;
    assert_eq!(status, 200, "{metadata}");
    assert!(content_type.starts_with("application/samlmetadata+xml"), "{content_type}");
    for expected in [
        format!(r#"entityID="{}""#, request.issuer),
        format!(r#"Location="{}""#, request.acs_url),
        format!(r#"Binding="{HTTP_POST}""#),
        r#"WantAssertionsSigned="true""#.to_owned(),
        r#"AuthnRequestsSigned="false""#.to_owned(),
        "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress".to_owned(),
    ] {
        assert!(metadata.contains(&expected), "{expected} not in {metadata}");
    }

    // The IdP posts a signed assertion: an opaque NameID, Azure's claims.
    let email = format!("alice-{}@enterprise.example", unique());
    let name_id = format!("azure-{}", unique());
    let signed = idp
        .response(request, &name_id)
        .azure_attributes(&email, "Alice", "Azure", &["LeanVibe-Developers", "Everyone"])
        .sign_assertion(idp);
    let code = acs_accepts(request, &signed).await;
    let first = callback("saml", &code, &start.state).await.expect(200);
    assert_eq!(first.body["provisioned"], true, "{:#}", first.body);
    assert_eq!(first.body["connection_id"], connection_id);
    let user = &first.body["user"];
    assert_eq!(
        (user["email"].clone(), user["first_name"].clone(), user["last_name"].clone(), user["role"].clone()),
        (json!(email), json!("Alice"), json!("Azure"), json!("developer")),
        "LeanVibe-Developers maps to developer: {user:#}"
    );
    assert_eq!(user["tenant_id"], owner.tenant_id.as_str());
    assert!(first.body["refresh_token"].as_str().is_some_and(|t| !t.is_empty()));
    let user_id = user["id"].as_str().expect("user id").to_owned();
    let me = get("/v1/auth/me").token(first.body["access_token"].as_str().expect("token")).send().await.expect(200);
    assert_eq!((me.body["id"].clone(), me.body["email"].clone()), (json!(user_id), json!(email)));
    assert_eq!(me.body["role"], "developer");
    let mut expected = vec![owner.email.clone(), email.clone()];
    expected.sort();
    assert_eq!(member_emails(owner).await, expected);
    let events = platform_tests::outbox_events(&owner.tenant_id).await;
    let created = events.iter().find(|e| e["type"] == "user.created" && e["data"]["email"] == email.as_str());
    assert_eq!(created.map(|e| e["data"]["via"].clone()), Some(json!("sso")), "{events:#?}");

    // The code was used with the state: not twice.
    callback("saml", &code, &start.state).await.expect_error(401, "invalid_state");

    // The same NameID signs in again (the IdP moved her to the admins):
    // linked to the same member, whose role follows.
    let again = initiate(&setup, connection_id).await;
    let signed = idp
        .response(&again.request, &name_id)
        .azure_attributes(&email, "Alice", "Azure", &["LeanVibe-Admins"])
        .sign_assertion(idp);
    let code = acs_accepts(&again.request, &signed).await;
    let second = callback(connection_id, &code, &again.state).await.expect(200);
    assert_eq!(second.body["provisioned"], false);
    assert_eq!(second.body["user"]["id"], user_id.as_str());
    assert_eq!(second.body["user"]["role"], "admin", "{:#}", second.body);

    // A response signed as a whole (its assertion unsigned) is covered too.
    let third = initiate(&setup, connection_id).await;
    let signed = idp
        .response(&third.request, &name_id)
        .azure_attributes(&email, "Alice", "Azure", &["LeanVibe-Admins"])
        .sign_response(idp);
    let code = acs_accepts(&third.request, &signed).await;
    let signed_in = callback(connection_id, &code, &third.state).await.expect(200);
    assert_eq!(
        (signed_in.body["provisioned"].clone(), signed_in.body["user"]["id"].clone()),
        (json!(false), json!(user_id))
    );
    assert_eq!(member_emails(owner).await.len(), 2, "nobody else was created");
    let logins = audited(&owner.tenant_id, "sso_login").await;
    assert_eq!(logins.len(), 3, "{logins:?}");
}

/// The ACS hands its code to the sign-in's `redirect_uri`: with a listed
/// one, only the listed ones; never an attacker's (who would then hold both
/// the state they started and the victim's code).
#[tokio::test]
async fn the_code_goes_only_to_a_redirect_uri_the_connection_allows() {
    const PARTNER: &str = "https://partner.example.test/sso/done";
    let setup = setup_with(|body| body["configuration"]["redirect_uris"] = json!([PARTNER])).await;
    let start = |uri: String| {
        let tenant_id = setup.owner.tenant_id.clone();
        async move {
            post("/v1/auth/sso/saml/initiate").json(&json!({"tenant_id": tenant_id, "redirect_uri": uri})).send().await
        }
    };
    for refused in [redirect(), "https://evil.example.test/collect".to_owned(), format!("{PARTNER}/../x")] {
        let reply = start(refused.clone()).await.expect_error(400, "validation_failed");
        assert_eq!(reply.invalid_fields(), ["redirect_uri"], "{refused}");
    }
    let started = started(start(PARTNER.to_owned()).await);
    let signed = setup.idp.response(&started.request, "lee@corp.example").sign_assertion(&setup.idp);
    let reply = post_acs(&started.request.acs_url, &base64(&signed), &started.request.relay_state).await.expect(303);
    let location = location(&reply).expect("a Location");
    assert!(location.starts_with(&format!("{PARTNER}?code=")), "{location}");
}

#[tokio::test]
async fn a_replayed_response_or_a_reused_assertion_id_is_refused_and_the_first_code_still_works_once() {
    let setup = setup().await;
    let (owner, idp, connection_id) = (&setup.owner, &setup.idp, setup.connection_id.as_str());
    let email = format!("bob-{}@enterprise.example", unique());
    let first = initiate(&setup, connection_id).await;
    let response = idp.response(&first.request, &email).azure_attributes(&email, "Bob", "B", &["LeanVibe-Users"]);
    let signed = response.sign_assertion(idp);
    let code = acs_accepts(&first.request, &signed).await;

    // The same post again (a browser's back button, or a stolen form): the
    // relay's state was answered, so no second code.
    let replay = post_acs(&first.request.acs_url, &base64(&signed), &first.request.relay_state)
        .await
        .expect_error(401, "invalid_state");
    assert!(location(&replay).is_none());
    // ...and the first code is untouched: it signs in, once.
    let signed_in = callback(connection_id, &code, &first.state).await.expect(200);
    assert_eq!(
        (signed_in.body["provisioned"].clone(), signed_in.body["user"]["role"].clone()),
        (json!(true), json!("user"))
    );
    post_acs(&first.request.acs_url, &base64(&signed), &first.request.relay_state)
        .await
        .expect_error(401, "invalid_state");

    // The captured response under a new sign-in's relay: not its request.
    let second = initiate(&setup, connection_id).await;
    acs_refuses(&second.request, &signed, "in_response_to_mismatch").await;
    // A response to the new request reusing the old assertion's ID: replayed.
    let reused = idp
        .response(&second.request, &email)
        .azure_attributes(&email, "Bob", "B", &["LeanVibe-Admins"])
        .assertion_id(&response.assertion_id)
        .sign_assertion(idp);
    acs_refuses(&second.request, &reused, "replayed").await;
    callback(connection_id, "not-the-code", &second.state).await.expect_error(401, "invalid_state");

    let mut expected = vec![owner.email.clone(), email.clone()];
    expected.sort();
    assert_eq!(member_emails(owner).await, expected);
    let refusals = audited(&owner.tenant_id, "saml_login_refused").await;
    let mut reasons: Vec<String> =
        refusals.iter().map(|v| v["reason"].as_str().unwrap_or_default().to_owned()).collect();
    reasons.sort();
    assert_eq!(reasons, ["in_response_to_mismatch", "replayed"], "{refusals:?}");
    assert!(refusals.iter().all(|v| v["error"] == "saml_response_invalid"), "{refusals:?}");
}

#[tokio::test]
async fn the_acs_refuses_tampered_foreign_misaddressed_expired_weak_and_wrapped_responses_creating_nothing() {
    let setup = setup().await;
    let (owner, idp, connection_id) = (&setup.owner, &setup.idp, setup.connection_id.as_str());
    let impostor = TestIdp::new();
    let email = format!("mallory-{}@enterprise.example", unique());

    type Case<'a> = (&'static str, Box<dyn Fn(&AuthnRequest) -> String + 'a>);
    let good = {
        let email = email.clone();
        let entity_id = idp.entity_id.clone();
        move |request: &AuthnRequest| {
            saml::ResponseBuilder::new(&entity_id, request, &email).azure_attributes(
                &email,
                "Mallory",
                "M",
                &["LeanVibe-Admins"],
            )
        }
    };
    let cases: Vec<Case<'_>> = vec![
        (
            "bad_signature",
            Box::new({
                let good = good.clone();
                let owner_email = owner.email.clone();
                move |r| saml::tamper_name_id(&good(r).sign_assertion(idp), &owner_email)
            }),
        ),
        (
            "bad_signature",
            Box::new({
                let good = good.clone();
                let impostor = &impostor;
                move |r| {
                    // Its KeyInfo carries the impostor's certificate: the
                    // ACS must use only the connection's.
                    let signed = good(r).sign_assertion(impostor);
                    assert!(signed.contains("<ds:X509Certificate>MII"), "{signed}");
                    signed
                }
            }),
        ),
        (
            "bad_signature",
            Box::new({
                let good = good.clone();
                move |r| good(r).xml()
            }),
        ),
        (
            "wrong_audience",
            Box::new({
                let good = good.clone();
                move |r| good(r).audience("https://another-sp.example.test/metadata").sign_assertion(idp)
            }),
        ),
        (
            "in_response_to_mismatch",
            Box::new({
                let good = good.clone();
                move |r| good(r).in_response_to(&saml::new_id()).sign_assertion(idp)
            }),
        ),
        (
            "expired",
            Box::new({
                let good = good.clone();
                move |r| good(r).expired().sign_assertion(idp)
            }),
        ),
        (
            "not_yet_valid",
            Box::new({
                let good = good.clone();
                move |r| good(r).issued(-900, 300).sign_assertion(idp)
            }),
        ),
        (
            "weak_algorithm",
            Box::new({
                let good = good.clone();
                move |r| good(r).rsa_sha1().sign_assertion(idp)
            }),
        ),
        (
            "wrong_issuer",
            Box::new({
                let good = good.clone();
                move |r| good(r).issuer("https://idp.elsewhere.example.test/saml").sign_assertion(idp)
            }),
        ),
        (
            "wrong_recipient",
            Box::new({
                let good = good.clone();
                move |r| good(r).recipient("https://another-sp.example.test/acs").sign_assertion(idp)
            }),
        ),
        (
            "wrong_destination",
            Box::new({
                let good = good.clone();
                move |r| good(r).destination(Some("https://another-sp.example.test/acs")).sign_assertion(idp)
            }),
        ),
        (
            "status_not_success",
            Box::new({
                let good = good.clone();
                move |r| good(r).status("urn:oasis:names:tc:SAML:2.0:status:Requester").sign_assertion(idp)
            }),
        ),
        // Signature wrapping: the signed assertion is intact (a naive
        // verifier accepts the document), an evil unsigned one beside it.
        (
            "structure",
            Box::new({
                let good = good.clone();
                let owner_email = owner.email.clone();
                move |r| {
                    let wrapped = saml::xsw3(&good(r).sign_assertion(idp), &owner_email);
                    assert!(idp.naive_verify(&wrapped), "XSW3 keeps a valid signature");
                    wrapped
                }
            }),
        ),
        (
            "structure",
            Box::new({
                let good = good.clone();
                let owner_email = owner.email.clone();
                move |r| {
                    let wrapped = saml::xsw4(&good(r).sign_assertion(idp), &owner_email);
                    assert!(idp.naive_verify(&wrapped), "XSW4 keeps a valid signature");
                    wrapped
                }
            }),
        ),
    ];
    for (reason, make) in &cases {
        let start = initiate(&setup, connection_id).await;
        let refused = acs_refuses(&start.request, &make(&start.request), reason).await;
        assert!(refused.body["message"].as_str().is_some_and(|m| !m.contains("BEGIN")), "{:#}", refused.body);
        // No code was issued: the app's callback has nothing to sign in.
        callback(connection_id, "a-guessed-code", &start.state).await.expect_error(401, "invalid_state");
    }

    assert_eq!(member_emails(owner).await, std::slice::from_ref(&owner.email), "nothing was created");
    assert!(audited(&owner.tenant_id, "sso_login").await.is_empty());
    let refusals = audited(&owner.tenant_id, "saml_login_refused").await;
    let mut reasons: Vec<String> =
        refusals.iter().map(|v| v["reason"].as_str().unwrap_or_default().to_owned()).collect();
    reasons.sort();
    let mut expected: Vec<String> = cases.iter().map(|(reason, _)| (*reason).to_owned()).collect();
    expected.sort();
    assert_eq!(reasons, expected, "each refusal is audited: {refusals:?}");
}

#[tokio::test]
async fn a_bad_relay_an_empty_form_and_a_wrong_code_are_refused_and_the_genuine_sign_in_still_completes() {
    let setup = setup().await;
    let (owner, idp, connection_id) = (&setup.owner, &setup.idp, setup.connection_id.as_str());
    let start = initiate(&setup, connection_id).await;
    let email = format!("dora-{}@enterprise.example", unique());
    let signed = idp.response(&start.request, &email).azure_attributes(&email, "Dora", "D", &[]).sign_assertion(idp);
    let encoded = base64(&signed);
    let acs = &start.request.acs_url;

    let (state_id, _) = start.request.relay_state.split_once('.').expect("relay");
    for relay in
        ["garbage", &format!("{state_id}.AAAAAAAAAAAAAAAAAAAAAA"), &format!("{}.x", uuid::Uuid::new_v4().simple())]
    {
        let refused = post_acs(acs, &encoded, relay).await.expect_error(401, "invalid_state");
        assert!(location(&refused).is_none(), "{relay}");
    }
    let missing = saml::post_form(acs, &[("RelayState", start.request.relay_state.as_str())])
        .await
        .expect_error(400, "validation_failed");
    assert_eq!(missing.invalid_fields(), ["SAMLResponse"], "{:#}", missing.body);
    let undecodable = saml::post_form(
        acs,
        &[("SAMLResponse", "%%% not base64 %%%"), ("RelayState", start.request.relay_state.as_str())],
    )
    .await
    .expect_error(400, "validation_failed");
    assert_eq!(undecodable.invalid_fields(), ["SAMLResponse"], "{:#}", undecodable.body);

    // None of that used the state: the IdP's genuine post still lands.
    let code = acs_accepts(&start.request, &signed).await;
    // A wrong code at the callback is refused.
    let last = if code.ends_with('A') { "B" } else { "A" };
    let wrong_code = format!("{}{last}", &code[..code.len() - 1]);
    let wrong = callback(connection_id, &wrong_code, &start.state).await.expect_error(401, "invalid_state");
    assert!(wrong.body.get("access_token").is_none());
    assert_eq!(member_emails(owner).await, std::slice::from_ref(&owner.email));
}

#[tokio::test]
async fn another_tenant_can_neither_read_nor_use_the_saml_connection_and_its_sp_urls_answer_404_elsewhere() {
    let setup = setup().await;
    let (owner, idp, connection_id) = (&setup.owner, &setup.idp, setup.connection_id.as_str());
    let other = setup_with(|_| {}).await;
    let stranger = &other.owner;

    let path = format!("/v1/auth/sso/providers/{connection_id}");
    get(&path).token(&stranger.access_token).send().await.expect_error(404, "not_found");
    patch(&path)
        .token(&stranger.access_token)
        .json(&json!({"provider_name": "mine now"}))
        .send()
        .await
        .expect_error(404, "not_found");
    let mine = get(&path).token(&owner.access_token).send().await.expect(200);
    assert_eq!(mine.body["provider_name"], "Fortune 500 Azure AD");
    assert_eq!(mine.body["certificate_set"], true);
    assert!(!mine.body.to_string().contains("BEGIN CERTIFICATE"));

    // The SP URLs exist only under the connection's own tenant, for SAML.
    get(&format!("/v1/auth/saml/{}/{connection_id}/metadata", stranger.tenant_id))
        .send()
        .await
        .expect_error(404, "not_found");
    get(&format!("/v1/auth/saml/{}/{}/metadata", owner.tenant_id, other.connection_id))
        .send()
        .await
        .expect_error(404, "not_found");
    get(&format!("/v1/auth/saml/{}/{}/metadata", owner.tenant_id, uuid::Uuid::new_v4()))
        .send()
        .await
        .expect_error(404, "not_found");
    let google = post("/v1/auth/sso/providers")
        .token(&owner.access_token)
        .json(&json!({"provider_type": "google", "provider_name": "G",
                      "configuration": {"client_id": "g-client", "client_secret": "g-secret"}}))
        .send()
        .await
        .expect(201);
    get(&format!("/v1/auth/saml/{}/{}/metadata", owner.tenant_id, google.body["id"].as_str().expect("id")))
        .send()
        .await
        .expect_error(404, "not_found");
    let (status, _, _) =
        saml::get_text(&format!("http://x/v1/auth/saml/{}/{connection_id}/metadata", owner.tenant_id)).await;
    assert_eq!(status, 200);

    // Nor can the stranger start a sign-in with it.
    post(&format!("/v1/auth/sso/{connection_id}/initiate"))
        .json(&json!({"tenant_id": stranger.tenant_id, "redirect_uri": redirect()}))
        .send()
        .await
        .expect_error(404, "not_found");

    // A genuine response and relay, posted under the wrong tenant or the
    // wrong connection: the state is not found there.
    let start = initiate(&setup, connection_id).await;
    let email = format!("erin-{}@enterprise.example", unique());
    let signed = idp
        .response(&start.request, &email)
        .azure_attributes(&email, "Erin", "E", &["LeanVibe-Admins"])
        .sign_assertion(idp);
    let own_base = format!("/v1/auth/saml/{}/{connection_id}", owner.tenant_id);
    for (tenant, connection) in [
        (stranger.tenant_id.as_str(), connection_id),
        (owner.tenant_id.as_str(), other.connection_id.as_str()),
        (stranger.tenant_id.as_str(), other.connection_id.as_str()),
    ] {
        let acs = start
            .request
            .acs_url
            .replace(&format!("{own_base}/acs"), &format!("/v1/auth/saml/{tenant}/{connection}/acs"));
        assert_ne!(acs, start.request.acs_url);
        let refused =
            post_acs(&acs, &base64(&signed), &start.request.relay_state).await.expect_error(401, "invalid_state");
        assert!(location(&refused).is_none());
    }
    assert_eq!(member_emails(stranger).await, std::slice::from_ref(&stranger.email));
    // Still unused: the right path takes it.
    let code = acs_accepts(&start.request, &signed).await;
    let signed_in = callback(connection_id, &code, &start.state).await.expect(200);
    assert_eq!(signed_in.body["user"]["tenant_id"], owner.tenant_id.as_str());
}

#[tokio::test]
async fn a_test_of_an_inactive_saml_connection_shows_the_claims_and_role_and_creates_no_member_nor_session() {
    let setup = setup_with(|body| body["status"] = json!("inactive")).await;
    let (owner, idp, connection_id) = (&setup.owner, &setup.idp, setup.connection_id.as_str());
    // Inactive: no sign-in, but an admin may test it.
    post(&format!("/v1/auth/sso/{connection_id}/initiate"))
        .json(&json!({"tenant_id": owner.tenant_id, "redirect_uri": redirect()}))
        .send()
        .await
        .expect_error(404, "not_found");
    let sessions_before = tenant_items(&owner.tenant_id, "SESSION#").await.len();
    let start = started(
        post(&format!("/v1/auth/sso/providers/{connection_id}/test"))
            .token(&owner.access_token)
            .json(&json!({"redirect_uri": redirect()}))
            .send()
            .await,
    );
    assert_eq!(start.body["test"], true);
    assert_eq!(start.request.destination, setup.sso_url);

    let email = format!("carol-{}@enterprise.example", unique());
    let name_id = format!("azure-{}", unique());
    let signed = idp
        .response(&start.request, &name_id)
        .azure_attributes(&email, "Carol", "Tester", &["LeanVibe-Developers", "Everyone"])
        .sign_assertion(idp);
    let code = acs_accepts(&start.request, &signed).await;
    let result = callback(connection_id, &code, &start.state).await.expect(200);
    assert_eq!(result.body["test"], true, "{:#}", result.body);
    assert_eq!(result.body["connection_id"], connection_id);
    let claims = &result.body["claims"];
    assert_eq!(
        (claims["issuer"].clone(), claims["subject"].clone(), claims["email"].clone()),
        (json!(idp.entity_id), json!(name_id), json!(email))
    );
    assert_eq!((claims["first_name"].clone(), claims["last_name"].clone()), (json!("Carol"), json!("Tester")));
    assert_eq!(claims["groups"], json!(["LeanVibe-Developers", "Everyone"]));
    assert_eq!(claims["email_verified"], true);
    assert_eq!(result.body["role"]["role"], "developer");
    assert_eq!(result.body["role"]["source"], "group_mapping");
    assert_eq!(result.body["role"]["matched_groups"], json!(["LeanVibe-Developers"]));
    assert_eq!(result.body["would_provision"], true);
    assert!(result.body["linked_user_id"].is_null());
    assert!(result.body.get("access_token").is_none());
    assert_eq!(member_emails(owner).await, std::slice::from_ref(&owner.email));
    assert_eq!(tenant_items(&owner.tenant_id, "SESSION#").await.len(), sessions_before);
    assert_eq!(audited(&owner.tenant_id, "sso_test").await.len(), 1);
}

#[tokio::test]
async fn a_comment_slipped_into_the_signed_name_id_is_refused_and_never_signs_in_as_the_truncated_subject() {
    let setup = setup().await;
    let (owner, idp, connection_id) = (&setup.owner, &setup.idp, setup.connection_id.as_str());
    let victim_subject = format!("victim-{}@enterprise.example", unique());
    let start = initiate(&setup, connection_id).await;
    let signed = idp
        .response(&start.request, &victim_subject)
        .azure_attributes(&victim_subject, "Vic", "Tim", &["LeanVibe-Admins"])
        .sign_assertion(idp);
    let code = acs_accepts(&start.request, &signed).await;
    let victim = callback(connection_id, &code, &start.state).await.expect(200);
    assert_eq!(
        (victim.body["provisioned"].clone(), victim.body["user"]["email"].clone()),
        (json!(true), json!(victim_subject))
    );

    // The IdP signs `<victim>.evil.example` for the attacker; a comment is
    // slipped in after the victim's part, keeping the signature valid.
    let attacker_subject = format!("{victim_subject}.evil.example");
    let attacker_email = format!("mallory-{}@evil.example", unique());
    let start = initiate(&setup, connection_id).await;
    let signed = idp
        .response(&start.request, &attacker_subject)
        .azure_attributes(&attacker_email, "Mallory", "M", &[])
        .sign_assertion(idp);
    let commented = saml::comment_in_name_id(&signed, victim_subject.len());
    assert!(commented.contains(&format!(">{victim_subject}<!---->.evil.example<")), "{commented}");
    assert!(idp.naive_verify(&commented), "exclusive c14n ignores the comment");
    // Refused outright: a comment has no business in a signed SAML
    // response (reading the whole subject would also be safe; reading the
    // first text node would sign the attacker in as the victim).
    let refused = post_acs(&start.request.acs_url, &base64(&commented), &start.request.relay_state)
        .await
        .expect_error(401, "saml_response_invalid");
    assert_eq!(refused.body["details"]["reason"], "structure", "{:#}", refused.body);
    callback(connection_id, "a-guessed-code", &start.state).await.expect_error(401, "invalid_state");
    let mut expected = vec![owner.email.clone(), victim_subject.clone()];
    expected.sort();
    assert_eq!(member_emails(owner).await, expected);
    assert_eq!(audited(&owner.tenant_id, "sso_login").await.len(), 1, "only the victim's own sign-in");
}

#[tokio::test]
async fn seed_000s_saml_connection_signs_in_with_an_encrypted_assertion() {
    // Seed 000's body as it stands, only pointed at the test IdP.
    let seed = seed_000_body();
    assert_eq!(
        (seed["require_encrypted_assertions"].clone(), seed["auto_provision_users"].clone()),
        (json!(true), json!(true))
    );
    let setup =
        setup_with(|body| body["require_encrypted_assertions"] = seed["require_encrypted_assertions"].clone()).await;
    let (owner, idp, connection_id) = (&setup.owner, &setup.idp, setup.connection_id.as_str());
    let stored =
        get(&format!("/v1/auth/sso/providers/{connection_id}")).token(&owner.access_token).send().await.expect(200);
    assert_eq!(stored.body["require_encrypted_assertions"], true, "{:#}", stored.body);
    assert_eq!(stored.body["auto_provision_users"], true);
    assert_eq!(stored.body["provider_name"], seed["provider_name"]);
    for field in ["attribute_mapping", "group_mapping"] {
        assert_eq!(stored.body["configuration"][field], seed["configuration"][field], "{field}: {:#}", stored.body);
    }

    let start = initiate(&setup, connection_id).await;
    let request = &start.request;
    // The metadata tells the IdP what to encrypt to, and how.
    let (status, _, metadata) = saml::get_text(&request.issuer).await;
    assert_eq!(status, 200, "{metadata}");
    for algorithm in [Content::Aes256Gcm.algorithm(), Content::Aes256Cbc.algorithm()] {
        assert!(metadata.contains(&format!(r#"<md:EncryptionMethod Algorithm="{algorithm}"/>"#)), "{metadata}");
    }
    let sp_certificate = saml::sp_encryption_certificate(&metadata);
    assert_ne!(sp_certificate, idp.certificate_pem());

    let email = format!("fiona-{}@enterprise.example", unique());
    let name_id = format!("azure-{}", unique());
    let response = |request: &AuthnRequest| {
        idp.response(request, &name_id).azure_attributes(&email, "Fiona", "Fortune", &["LeanVibe-Admins", "Everyone"])
    };

    // A plain signed assertion, however valid, is not what the connection asked for.
    let plain = response(request).sign_assertion(idp);
    assert!(idp.naive_verify(&plain));
    let refused = acs_refuses(request, &plain, "encryption_required").await;
    assert_eq!(refused.body["message"], "the connection requires encrypted SAML assertions", "{:#}", refused.body);

    // Signed, then encrypted (AES-256-GCM) to the metadata's certificate:
    // nothing of the assertion is left in clear. The refusal above left
    // the relay's state unanswered, so it takes this one.
    let encrypted = response(request).sign_and_encrypt_assertion(idp, &sp_certificate, Content::Aes256Gcm);
    assert!(encrypted.contains("<saml:EncryptedAssertion>") && encrypted.contains(Content::Aes256Gcm.algorithm()));
    for secret in ["<saml:Assertion", email.as_str(), name_id.as_str(), "LeanVibe-Admins"] {
        assert!(!encrypted.contains(secret), "{secret} in clear: {encrypted}");
    }
    let code = acs_accepts(request, &encrypted).await;
    let signed_in = callback("saml", &code, &start.state).await.expect(200);
    assert_eq!(signed_in.body["provisioned"], true, "{:#}", signed_in.body);
    assert_eq!(signed_in.body["connection_id"], connection_id);
    let user = &signed_in.body["user"];
    assert_eq!(
        (user["email"].clone(), user["first_name"].clone(), user["last_name"].clone(), user["role"].clone()),
        (json!(email), json!("Fiona"), json!("Fortune"), json!("admin")),
        "the seed's claim URIs and LeanVibe-Admins -> admin: {user:#}"
    );
    let user_id = user["id"].as_str().expect("user id").to_owned();
    let me = get("/v1/auth/me").token(signed_in.body["access_token"].as_str().expect("token")).send().await.expect(200);
    assert_eq!((me.body["id"].clone(), me.body["role"].clone()), (json!(user_id), json!("admin")));

    // AES-256-CBC, the metadata's other content algorithm: the same member.
    let again = initiate(&setup, connection_id).await;
    let encrypted = response(&again.request).sign_and_encrypt_assertion(idp, &sp_certificate, Content::Aes256Cbc);
    let code = acs_accepts(&again.request, &encrypted).await;
    let linked = callback(connection_id, &code, &again.state).await.expect(200);
    assert_eq!((linked.body["provisioned"].clone(), linked.body["user"]["id"].clone()), (json!(false), json!(user_id)));

    // Encrypted to another certificate (a fresh self-signed one): the SP's
    // key cannot unwrap it.
    let other_certificate = TestIdp::new().certificate_pem();
    assert_ne!(other_certificate, sp_certificate);
    let last = initiate(&setup, connection_id).await;
    let foreign = response(&last.request).sign_and_encrypt_assertion(idp, &other_certificate, Content::Aes256Gcm);
    let refused = acs_refuses(&last.request, &foreign, "decryption_failed").await;
    assert!(
        refused.body["message"].as_str().is_some_and(|m| m.contains("could not be decrypted")),
        "{:#}",
        refused.body
    );
    callback(connection_id, "a-guessed-code", &last.state).await.expect_error(401, "invalid_state");

    let mut expected = vec![owner.email.clone(), email.clone()];
    expected.sort();
    assert_eq!(member_emails(owner).await, expected, "one member, provisioned once");
    assert_eq!(audited(&owner.tenant_id, "sso_login").await.len(), 2);
    let refusals = audited(&owner.tenant_id, "saml_login_refused").await;
    let mut reasons: Vec<String> =
        refusals.iter().map(|v| v["reason"].as_str().unwrap_or_default().to_owned()).collect();
    reasons.sort();
    assert_eq!(reasons, ["decryption_failed", "encryption_required"], "{refusals:?}");
}
