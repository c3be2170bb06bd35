//! The OIDC sign-in: authorization code flow with PKCE (S256) and a nonce.
//!
//! `initiate` reads the IdP's discovery document (cached per process for
//! [`DISCOVERY_TTL`]), stores the sign-in state (hashed, sealed verifier,
//! [`STATE_TTL_SECONDS`]) and answers the authorization URL. `callback`
//! takes the state once (a conditional delete), exchanges the code with the
//! verifier and the same redirect URI, verifies the ID token against the
//! IdP's keys (cached; fetched again once when a token names an unknown
//! key), then finds the member by the identity (connection, issuer,
//! subject), links one by a verified email in the connection's domains, or
//! creates one (JIT), maps the role, and signs them in. Every call to the
//! IdP goes through `shared::outbound` (no redirects, a time limit, a size
//! cap, no private addresses outside local mode).
//!
//! A state reads `sso.<tenant>.<state id>.<secret>`: the callback's body
//! carries nothing else, so the state names its tenant; only the secret's
//! SHA-256 is stored.

use std::{
    collections::HashMap,
    sync::{Mutex, OnceLock},
    time::{Duration, Instant},
};

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use rand::RngCore;
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use shared::{
    AppError, AppResult, AppState,
    audit::{AuditContext, ClientInfo},
    auth::{Role, TenantScope, jwt::KeySet, proofs::CredentialLookup},
    domain::{
        audit::Change,
        ids::TenantId,
        plans::Quota,
        sso::{
            CONNECTION_RESOURCE, Connection, Expected, Identity, ProviderType, RoleDecision, STATE_TTL_SECONDS,
            SamlRelay, Secrets, SignInState, TokenRefusal, VerifiedClaims, map_role, may_link_by_email, parse_key_set,
            saml_sp_urls, token_key_id, verify_id_token,
        },
        user::{User, UserChanges},
        values::{HttpUrl, Text},
    },
    outbound::{Fetcher, url_with_query},
    store::{
        members::MemberError,
        sso::{ConsumedState, LinkError, state_verifier_context},
    },
    web::extract::Body,
};
use uuid::Uuid;

use super::saml;
use crate::{TokenResponse, tokens};

/// How long a discovery document and a key set are trusted before they are
/// read again.
pub const DISCOVERY_TTL: Duration = Duration::from_secs(3600);
/// A key set is not fetched again for an unknown key more often than this.
const JWKS_REFRESH_MIN: Duration = Duration::from_secs(5);

/// The one outbound client of this process (IdP calls).
fn fetcher(state: &AppState) -> AppResult<&'static Fetcher> {
    static FETCHER: OnceLock<Fetcher> = OnceLock::new();
    if let Some(fetcher) = FETCHER.get() {
        return Ok(fetcher);
    }
    let fetcher = Fetcher::new(state.config.local_mode).map_err(AppError::internal)?;
    Ok(FETCHER.get_or_init(|| fetcher))
}

/// A redirect URI we may send an IdP's code to: https, or http to a
/// loopback address on a local server.
pub fn redirect_uri_allowed(uri: &str, local_mode: bool) -> bool {
    if uri.starts_with("https://") {
        return true;
    }
    let Some(rest) = uri.strip_prefix("http://") else { return false };
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    let host = if host.starts_with('[') { host.split(']').next().map(|h| &h[1..]) } else { host.split(':').next() };
    local_mode && matches!(host, Some("127.0.0.1" | "localhost" | "::1"))
}

/// `scheme://authority` of a URL, lowercased; none for a URL with user
/// info (it never matches: `https://app.example.com@evil.example`).
fn origin(uri: &str) -> Option<String> {
    let (scheme, rest) = uri.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    Some(format!("{}://{}", scheme.to_ascii_lowercase(), authority.to_ascii_lowercase()))
}

fn idp_unavailable(what: &str, cause: &str) -> AppError {
    tracing::warn!(what, cause, "an identity provider call failed");
    AppError::new(
        StatusCode::BAD_GATEWAY,
        "idp_unavailable",
        format!("the identity provider's {what} could not be read; try again later"),
    )
    .with_details(json!({"reason": what}))
}

/// What we use of an IdP's discovery document.
#[derive(Debug, Clone)]
struct Discovery {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
    auth_methods: Vec<String>,
}

fn discovery_cache() -> &'static Mutex<HashMap<String, (Instant, Discovery)>> {
    static CACHE: OnceLock<Mutex<HashMap<String, (Instant, Discovery)>>> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

fn jwks_cache() -> &'static Mutex<HashMap<String, (Instant, KeySet)>> {
    static CACHE: OnceLock<Mutex<HashMap<String, (Instant, KeySet)>>> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

/// Google's endpoints, as its discovery document
/// (`https://accounts.google.com/.well-known/openid-configuration`) has
/// published them for years: a Google connection's sign-in starts without a
/// round trip to Google from a cold process. The key set is still fetched
/// (and refetched on an unknown `kid`): keys rotate, endpoints do not.
fn well_known(issuer: &str) -> Option<Discovery> {
    (issuer == "https://accounts.google.com").then(|| Discovery {
        issuer: issuer.to_owned(),
        authorization_endpoint: "https://accounts.google.com/o/oauth2/v2/auth".to_owned(),
        token_endpoint: "https://oauth2.googleapis.com/token".to_owned(),
        jwks_uri: "https://www.googleapis.com/oauth2/v3/certs".to_owned(),
        auth_methods: vec!["client_secret_post".to_owned(), "client_secret_basic".to_owned()],
    })
}

/// The discovery document of `issuer` (OpenID Connect Discovery 1.0): its
/// `issuer` must be exactly the one asked for (4.3), its endpoints pass the
/// outbound URL rules.
async fn discover(state: &AppState, issuer: &str) -> AppResult<Discovery> {
    if let Some(known) = well_known(issuer) {
        return Ok(known);
    }
    if let Ok(cache) = discovery_cache().lock()
        && let Some((at, found)) = cache.get(issuer)
        && at.elapsed() < DISCOVERY_TTL
    {
        return Ok(found.clone());
    }
    let fetcher = fetcher(state)?;
    let url = format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/'));
    let reply = fetcher.get_json(&url).await.map_err(|e| idp_unavailable("discovery document", &e))?;
    if reply.status != 200 {
        return Err(idp_unavailable("discovery document", &format!("it answered {}", reply.status)));
    }
    let text = |name: &str| reply.body.get(name).and_then(Value::as_str).map(str::to_owned);
    let invalid = |why: &str| idp_unavailable("discovery document", why);
    if text("issuer").as_deref() != Some(issuer) {
        return Err(invalid("its issuer is not the connection's"));
    }
    let endpoint = |name: &str| {
        let value = text(name).ok_or_else(|| invalid(&format!("no {name}")))?;
        fetcher.check_url(&value).map_err(|e| invalid(&format!("{name}: {e}")))?;
        Ok::<_, AppError>(value)
    };
    let found = Discovery {
        issuer: issuer.to_owned(),
        authorization_endpoint: endpoint("authorization_endpoint")?,
        token_endpoint: endpoint("token_endpoint")?,
        jwks_uri: endpoint("jwks_uri")?,
        auth_methods: reply
            .body
            .get("token_endpoint_auth_methods_supported")
            .and_then(Value::as_array)
            .map(|methods| methods.iter().filter_map(Value::as_str).map(str::to_owned).collect())
            .unwrap_or_default(),
    };
    if let Ok(mut cache) = discovery_cache().lock() {
        cache.insert(issuer.to_owned(), (Instant::now(), found.clone()));
    }
    Ok(found)
}

/// The IdP's key set: cached, or read again when `refresh` (a token named
/// a key the cached set lacks) and the cached one is not brand new.
async fn keys(state: &AppState, jwks_uri: &str, refresh: bool) -> AppResult<KeySet> {
    if let Ok(cache) = jwks_cache().lock()
        && let Some((at, set)) = cache.get(jwks_uri)
        && at.elapsed() < DISCOVERY_TTL
        && (!refresh || at.elapsed() < JWKS_REFRESH_MIN)
    {
        return Ok(set.clone());
    }
    let reply = fetcher(state)?.get_json(jwks_uri).await.map_err(|e| idp_unavailable("key set", &e))?;
    if reply.status != 200 {
        return Err(idp_unavailable("key set", &format!("it answered {}", reply.status)));
    }
    let set = parse_key_set(&reply.body);
    if let Ok(mut cache) = jwks_cache().lock() {
        cache.insert(jwks_uri.to_owned(), (Instant::now(), set.clone()));
    }
    Ok(set)
}

/// `bytes` random bytes, base64url: state secrets, codes, verifiers.
pub fn random_token(bytes: usize) -> String {
    let mut buffer = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buffer);
    URL_SAFE_NO_PAD.encode(buffer)
}

/// What is stored of a secret: its SHA-256, hex.
pub fn sha256_hex(value: &str) -> String {
    Sha256::digest(value.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// A presented state, parsed (not yet verified).
struct StateToken {
    tenant_id: Uuid,
    state_id: Uuid,
    secret: String,
}

impl StateToken {
    fn parse(raw: &str) -> Option<Self> {
        let mut parts = raw.split('.');
        let (Some("sso"), Some(t), Some(s), Some(secret), None) =
            (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        Some(Self {
            tenant_id: Uuid::parse_str(t).ok()?,
            state_id: Uuid::parse_str(s).ok()?,
            secret: secret.to_owned(),
        })
    }
}

/// Where to send the user's browser, and the state the callback must bring back.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Initiated {
    /// The IdP's authorization endpoint with `client_id`, `redirect_uri`,
    /// `scope`, `state`, `nonce` and the PKCE `code_challenge` (S256).
    pub authorization_url: String,
    /// `sso.<tenant>.<id>.<secret>`: single use.
    pub state: String,
    /// Seconds the state stays valid.
    pub expires_in: i64,
    /// True for a test of the connection (its callback signs nobody in).
    pub test: bool,
}

/// Starts a sign-in (or, `test`, a test of the connection) with `connection`
/// of the tenant `lookup` names.
pub async fn begin(
    state: &AppState,
    lookup: &CredentialLookup,
    connection: &Connection,
    redirect_uri: &str,
    test: bool,
) -> AppResult<Initiated> {
    if !redirect_uri_allowed(redirect_uri, state.config.local_mode) {
        return Err(AppError::invalid_field(
            "redirect_uri",
            "must be an https URL (http only to a loopback address on a local server)",
        ));
    }
    let allowed = &connection.configuration.redirect_uris;
    if !allowed.is_empty() && !allowed.iter().any(|u| u == redirect_uri) {
        return Err(AppError::invalid_field("redirect_uri", "is not one of the connection's redirect_uris"));
    }
    if connection.provider_type == ProviderType::Saml {
        // An OIDC IdP sends its code only to the redirect URIs registered
        // with it; for SAML our ACS hands the code to `redirect_uri` itself.
        // Any https URL would let whoever starts a sign-in (and so holds its
        // state) send a victim to the IdP and collect the victim's code at
        // their own URL. So: a URL the connection lists, or, when it lists
        // none, one under the app's own origin.
        let app_origin = state.config.app_base_url.as_deref().and_then(origin);
        if allowed.is_empty() && (app_origin.is_none() || origin(redirect_uri) != app_origin) {
            return Err(AppError::invalid_field(
                "redirect_uri",
                "a SAML sign-in sends its one-time code only to one of the connection's redirect_uris, or, when it lists none, to a URL under the app's own origin (APP_BASE_URL)",
            ));
        }
        return begin_saml(state, lookup, connection, redirect_uri, test).await;
    }
    let issuer =
        connection.issuer().ok_or_else(|| AppError::internal(anyhow::anyhow!("a connection without issuer")))?;
    let discovery = discover(state, &issuer).await?;
    let client_id = connection.configuration.client_id.clone().unwrap_or_default();
    let state_id = Uuid::now_v7();
    let secret = random_token(32);
    let token = format!("sso.{}.{state_id}.{secret}", lookup.tenant_id());
    let verifier = random_token(32);
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let nonce = random_token(16);
    let (verifier_nonce, verifier_sealed) =
        state.keys.sealing.seal(&state_verifier_context(lookup.tenant_id(), state_id), verifier.as_bytes())?;
    let stored = SignInState {
        id: state_id,
        connection_id: connection.id,
        redirect_uri: redirect_uri.to_owned(),
        nonce: nonce.clone(),
        test,
        expires_at: chrono::Utc::now().timestamp() + STATE_TTL_SECONDS,
        saml_claims: None,
    };
    if !state
        .store
        .create_sign_in_state(lookup, &stored, &sha256_hex(&secret), (&verifier_nonce, &verifier_sealed), None)
        .await?
    {
        return Err(AppError::not_found(CONNECTION_RESOURCE));
    }
    let scope = connection.scopes().join(" ");
    let mut pairs = vec![
        ("response_type", "code"),
        ("client_id", client_id.as_str()),
        ("redirect_uri", redirect_uri),
        ("scope", scope.as_str()),
        ("state", token.as_str()),
        ("nonce", nonce.as_str()),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    if connection.provider_type == ProviderType::Google
        && let Some(hd) = &connection.configuration.hosted_domain
    {
        pairs.push(("hd", hd.as_str()));
    }
    let authorization_url = url_with_query(&discovery.authorization_endpoint, &pairs)
        .map_err(|e| idp_unavailable("discovery document", &e))?;
    Ok(Initiated { authorization_url, state: token, expires_in: STATE_TTL_SECONDS, test })
}

/// A SAML sign-in: the state (the app's `sso.` token, and a RelayState
/// the ACS recognises), and the IdP's SSO URL with the AuthnRequest. No
/// PKCE: the ACS proves the response, and the code it hands the browser is
/// bound to this state.
async fn begin_saml(
    state: &AppState,
    lookup: &CredentialLookup,
    connection: &Connection,
    redirect_uri: &str,
    test: bool,
) -> AppResult<Initiated> {
    let sp = saml_sp_urls(state.config.require_public_api_url()?, lookup.tenant_id(), connection.id);
    let state_id = Uuid::now_v7();
    let secret = random_token(32);
    let token = format!("sso.{}.{state_id}.{secret}", lookup.tenant_id());
    let relay = SamlRelay { state_id, secret: random_token(16) };
    let request_id = saml::new_request_id();
    let destination = connection.configuration.sso_url.clone().unwrap_or_default();
    let xml = saml::authn_request_xml(
        &request_id,
        &chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        &destination,
        &sp.acs_url,
        &sp.entity_id,
    );
    let authorization_url = saml::redirect_url(connection, &xml, &relay)?;
    let stored = SignInState {
        id: state_id,
        connection_id: connection.id,
        redirect_uri: redirect_uri.to_owned(),
        // The AuthnRequest ID: a response must answer this request
        // (InResponseTo), which is what shuts out IdP-initiated responses.
        nonce: request_id,
        test,
        expires_at: chrono::Utc::now().timestamp() + STATE_TTL_SECONDS,
        saml_claims: None,
    };
    // No PKCE verifier: an empty sealed value keeps one item shape.
    if !state.store.create_sign_in_state(lookup, &stored, &sha256_hex(&secret), (&[], &[]), Some(&relay.hash())).await?
    {
        return Err(AppError::not_found(CONNECTION_RESOURCE));
    }
    Ok(Initiated { authorization_url, state: token, expires_in: STATE_TTL_SECONDS, test })
}

/// `POST /v1/auth/sso/{provider}/initiate` (seed 000).
#[derive(Debug, eserde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InitiateRequest {
    /// The tenant whose connection signs the user in.
    #[eserde(compat)]
    pub tenant_id: TenantId,
    /// Where the IdP sends the browser back with `code` and `state`
    /// (https; one of the connection's `redirect_uris` when it lists any).
    pub redirect_uri: HttpUrl,
}

/// The tenant's connection `provider` names: a connection id, or a provider
/// type of which the tenant has exactly one active connection.
fn choose(connections: Vec<Connection>, provider: &str) -> AppResult<Connection> {
    let missing = || AppError::not_found(CONNECTION_RESOURCE);
    if let Ok(id) = Uuid::parse_str(provider) {
        return connections.into_iter().find(|c| c.id == id && c.is_active()).ok_or_else(missing);
    }
    let kind = ProviderType::parse(provider).ok_or_else(missing)?;
    let mut matching: Vec<Connection> =
        connections.into_iter().filter(|c| c.provider_type == kind && c.is_active()).collect();
    match matching.len() {
        0 => Err(missing()),
        1 => Ok(matching.remove(0)),
        _ => Err(AppError::new(
            StatusCode::CONFLICT,
            "ambiguous_provider",
            format!("the tenant has several active {kind} connections: initiate with a connection id instead"),
        )
        .with_details(json!({"connection_ids": matching.iter().map(|c| c.id).collect::<Vec<_>>()}))),
    }
}

/// Start an SSO sign-in
///
/// Seed 000's initiation: `{provider}` is a provider type (`google`,
/// `okta`, `azure`, `oidc`, `saml`: the tenant's one active connection of
/// that type) or a connection id. Answers where to send the browser and the
/// state the callback must bring back within `expires_in` seconds. OIDC:
/// the IdP's authorization URL (PKCE S256 and a nonce). SAML: the IdP's
/// `sso_url` with an AuthnRequest (HTTP-Redirect binding) and a
/// `RelayState`; the IdP posts its response to our ACS
/// (`/v1/auth/saml/{tenant_id}/{connection_id}/acs`), which sends the
/// browser to `redirect_uri` with a `code` for the callback.
#[utoipa::path(post, path = "/v1/auth/sso/{provider}/initiate", tag = "sso",
    params(("provider" = String, Path, description = "A provider type (`google`, `okta`, `azure`, `oidc`, `saml`) or a connection id")),
    request_body(content = InitiateRequest, example = json!({
        "tenant_id": "0190f3a4-6b1e-7c2d-8e9f-0a1b2c3d4e5f",
        "redirect_uri": "https://app.enterprise.com/auth/callback"
    })),
    responses(
        (status = 200, description = "Where to send the browser", body = Initiated),
        (status = 404, description = "Not found\n\n- `not_found`: the tenant has no active connection of this type or id", body = shared::web::openapi::ApiError),
        (status = 409, description = "Conflict\n\n- `ambiguous_provider`: the tenant has several active connections of this type (`details.connection_ids`): name one by id", body = shared::web::openapi::ApiError),
        (status = 429, description = "Too many requests\n\n- `rate_limited`: too many sign-ins started from this address (60 in 10 minutes; `details.retry_after_seconds`): wait `Retry-After` seconds", body = shared::web::openapi::ApiError),
        (status = 502, description = "Bad gateway\n\n- `idp_unavailable`: the IdP's discovery document could not be read or is not valid", body = shared::web::openapi::ApiError),
    ))]
pub async fn initiate(
    State(state): State<AppState>,
    client: ClientInfo,
    Path(provider): Path<String>,
    Body(body): Body<InitiateRequest>,
) -> AppResult<Json<Initiated>> {
    // Public, and each start stores a state: counted per address.
    if let Some(address) = crate::throttle::address(&client) {
        crate::throttle::Gate::sso_initiate(&state, address, &client).await?;
    }
    // The tenant is the caller's word: only its connections are read, and
    // what is answered is what its IdP's login page shows anyway.
    let lookup = CredentialLookup::named_by_credential(body.tenant_id.0);
    let connection = choose(state.store.connections_for_sign_in(&lookup).await?, &provider)?;
    Ok(Json(begin(&state, &lookup, &connection, body.redirect_uri.as_ref(), false).await?))
}

/// `POST /v1/auth/sso/{provider}/callback`: what the IdP sent back to the
/// redirect URI.
#[derive(Debug, eserde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CallbackRequest {
    pub code: Text<1, 4096>,
    /// The `state` that `initiate` answered.
    pub state: Text<1, 512>,
}

/// A completed SSO sign-in: our tokens, and whether the member was created.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SsoSession {
    #[serde(flatten)]
    pub session: TokenResponse,
    /// True when this sign-in created the member (JIT provisioning).
    pub provisioned: bool,
    pub connection_id: Uuid,
}

/// A test of a connection: what the IdP said and what it would do.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SsoTestResult {
    /// Always true.
    pub test: bool,
    pub connection_id: Uuid,
    /// The ID token's verified claims.
    pub claims: VerifiedClaims,
    /// The role these claims map to, and why.
    pub role: RoleDecision,
    /// The member this identity signs in as, if it is linked.
    pub linked_user_id: Option<Uuid>,
    /// A real sign-in would create the member (no link, no account with the
    /// email, `auto_provision_users` on).
    pub would_provision: bool,
}

/// The callback's answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum CallbackAnswer {
    Session(SsoSession),
    Test(SsoTestResult),
}

pub fn state_refused() -> AppError {
    AppError::new(
        StatusCode::UNAUTHORIZED,
        "invalid_state",
        "the sign-in state is invalid, already used or expired; start the sign-in again",
    )
}

fn token_refused(refusal: TokenRefusal) -> AppError {
    AppError::new(StatusCode::UNAUTHORIZED, "sso_token_invalid", refusal.message())
        .with_details(json!({"reason": refusal.as_str()}))
}

/// A refusal after the state was taken: audited in the tenant, then answered.
async fn refuse(
    state: &AppState,
    scope: &TenantScope,
    client: &ClientInfo,
    connection_id: Uuid,
    reason: &str,
    err: AppError,
) -> AppError {
    audited_refusal(state, scope, client, ("sso-sign-in", "sso_login_refused"), connection_id, reason, err).await
}

/// A sign-in refused once its state named the tenant: audited there as
/// `action` by `actor` (the callback, SAML's ACS), then answered. An audit
/// failure is logged, not answered: the refusal stands either way.
pub async fn audited_refusal(
    state: &AppState,
    scope: &TenantScope,
    client: &ClientInfo,
    (actor, action): (&'static str, &'static str),
    connection_id: Uuid,
    reason: &str,
    err: AppError,
) -> AppError {
    let change = Change {
        action,
        resource_type: CONNECTION_RESOURCE,
        resource_id: connection_id.to_string(),
        old_values: json!({}),
        new_values: json!({"reason": reason, "error": err.code()}),
    };
    if let Err(audit_err) =
        state.store.record_audit(scope, &AuditContext::system_for_client(actor, client), change).await
    {
        tracing::warn!(error = %audit_err, action, "an SSO refusal could not be audited");
    }
    err
}

/// The provider in the path must be the one the state was issued for.
fn names(provider: &str, connection: &Connection) -> bool {
    Uuid::parse_str(provider)
        .map_or_else(|_| ProviderType::parse(provider) == Some(connection.provider_type), |id| id == connection.id)
}

/// Exchanges the code (with the PKCE verifier and the same redirect URI)
/// and answers the verified claims.
async fn exchange_and_verify(
    state: &AppState,
    connection: &Connection,
    secrets: &Secrets,
    stored: &SignInState,
    verifier: &str,
    code: &str,
) -> Result<VerifiedClaims, (String, AppError)> {
    let issuer = connection.issuer().unwrap_or_default();
    let discovery = discover(state, &issuer).await.map_err(|e| ("idp_unavailable".to_owned(), e))?;
    let client_id = connection.configuration.client_id.clone().unwrap_or_default();
    let client_secret = secrets.client_secret.clone().unwrap_or_default();
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", stored.redirect_uri.as_str()),
        ("code_verifier", verifier),
    ];
    // client_secret_basic is the default (OIDC Core 9); _post when that is
    // all the IdP lists.
    let methods = &discovery.auth_methods;
    let basic = methods.is_empty() || methods.iter().any(|m| m == "client_secret_basic");
    if !basic {
        form.push(("client_id", client_id.as_str()));
        form.push(("client_secret", client_secret.as_str()));
    }
    let credentials = basic.then_some((client_id.as_str(), client_secret.as_str()));
    let reply = fetcher(state)
        .map_err(|e| ("internal".to_owned(), e))?
        .post_form(&discovery.token_endpoint, &form, credentials)
        .await
        .map_err(|e| ("idp_unavailable".to_owned(), idp_unavailable("token endpoint", &e)))?;
    let id_token = match (reply.status, reply.body.get("id_token").and_then(Value::as_str)) {
        (200, Some(token)) => token.to_owned(),
        (status, _) => {
            let idp_error = reply.body.get("error").and_then(Value::as_str).unwrap_or("no_id_token").to_owned();
            return Err((
                "code_rejected".to_owned(),
                AppError::new(
                    StatusCode::UNAUTHORIZED,
                    "sso_code_rejected",
                    "the identity provider refused the authorization code; start the sign-in again",
                )
                .with_details(json!({"idp_status": status, "idp_error": idp_error})),
            ));
        }
    };
    let refused = |r: TokenRefusal| (r.as_str().to_owned(), token_refused(r));
    let kid = token_key_id(&id_token).map_err(refused)?;
    let mut set = keys(state, &discovery.jwks_uri, false).await.map_err(|e| ("idp_unavailable".to_owned(), e))?;
    if let Some(kid) = &kid
        && set.find(kid).is_none()
    {
        set = keys(state, &discovery.jwks_uri, true).await.map_err(|e| ("idp_unavailable".to_owned(), e))?;
    }
    let hosted_domain = match connection.provider_type {
        ProviderType::Google => connection.configuration.hosted_domain.as_deref(),
        _ => None,
    };
    let expected = Expected {
        issuer: &discovery.issuer,
        client_id: &client_id,
        nonce: &stored.nonce,
        hosted_domain,
        attribute_mapping: &connection.configuration.attribute_mapping,
        now: chrono::Utc::now().timestamp(),
    };
    verify_id_token(&id_token, &set, &expected).map_err(refused)
}

/// Complete an SSO sign-in
///
/// The `code` and the `state` from `initiate` (each state is used once).
/// OIDC: the IdP's code is exchanged with the PKCE verifier, the ID token
/// verified (signature with the IdP's keys, issuer, audience, expiry,
/// nonce, Google's `hd`). SAML: the code is the one our ACS gave the
/// browser after it verified the IdP's response for this state. Then the
/// identity (connection, issuer, subject)
/// signs in its member: linked before, or an existing member whose
/// verified email is in one of the connection's domains (linked now), or a
/// new member when `auto_provision_users` is on (`provisioned: true`). The
/// role follows `group_mapping` and `admin_domains` on every sign-in
/// (never `owner`). For a test state the answer is the claims and role,
/// and nothing is created.
#[utoipa::path(post, path = "/v1/auth/sso/{provider}/callback", tag = "sso",
    params(("provider" = String, Path, description = "The provider type or connection id the sign-in was initiated with")),
    request_body(content = CallbackRequest, example = json!({
        "code": "google_authorization_code_from_callback",
        "state": "sso.0190f3a4-6b1e-7c2d-8e9f-0a1b2c3d4e5f.0190f3a4-6b1e-7c2d-8e9f-0a1b2c3d4e60.c2VjcmV0"
    })),
    responses(
        (status = 200, description = "Signed in (or, for a test state, the claims and role)", body = CallbackAnswer),
        (status = 401, description = "Not authenticated\n\n- `invalid_state`: the state is invalid, used or expired, or names another provider\n- `sso_code_rejected`: the IdP refused the code (`details.idp_error`)\n- `sso_token_invalid`: the ID token failed a check (`details.reason`: `wrong_audience`, `wrong_issuer`, `nonce_mismatch`, `expired`, `bad_signature`, `unknown_key`, `hosted_domain_mismatch`, `missing_email`, ...)", body = shared::web::openapi::ApiError),
        (status = 403, description = "Forbidden\n\n- `account_disabled`: the member is deactivated\n- `sso_provisioning_disabled`: no member has this identity and the connection does not create members\n- `quota_exceeded`: the tenant's users quota is full\n- `sso_email_not_verified`: no member has this identity, and the IdP does not vouch for the email (`email_verified`), so none is created\n- `tenant_inactive`: the tenant is suspended or deleted\n- `ip_not_allowed`: the sign-in comes from an address outside the tenant's `configuration.security.ip_whitelisting`", body = shared::web::openapi::ApiError),
        (status = 409, description = "Conflict\n\n- `account_not_linked`: a member has this email but the IdP does not vouch for it in one of the connection's domains, or the member is the owner, a platform admin or protected by MFA (`details.reason`: `account_protected`)\n- `email_in_use`: the email belongs to an account of another tenant", body = shared::web::openapi::ApiError),
        (status = 502, description = "Bad gateway\n\n- `idp_unavailable`: the IdP could not be reached or answered nonsense", body = shared::web::openapi::ApiError),
    ))]
pub async fn callback(
    State(state): State<AppState>,
    client: ClientInfo,
    Path(provider): Path<String>,
    Body(body): Body<CallbackRequest>,
) -> AppResult<Json<CallbackAnswer>> {
    let presented = StateToken::parse(body.state.as_str()).ok_or_else(state_refused)?;
    // The state names its tenant; trusted once its hash matched, in the
    // same conditional delete that uses it up.
    let lookup = CredentialLookup::named_by_credential(presented.tenant_id);
    let now = chrono::Utc::now().timestamp();
    let ConsumedState { scope, state: stored, verifier_nonce, verifier_sealed, saml_code_hash } = state
        .store
        .consume_sign_in_state(&lookup, presented.state_id, &sha256_hex(&presented.secret), now)
        .await?
        .ok_or_else(state_refused)?;
    let connection_id = stored.connection_id;
    let refuse = |reason: &'static str, err: AppError| {
        let (state, scope, client) = (&state, &scope, &client);
        async move { refuse(state, scope, client, connection_id, reason, err).await }
    };
    let Some((connection, nonce, sealed)) = state.store.connection_with_secrets(&scope, connection_id).await? else {
        return Err(refuse("connection_deleted", AppError::not_found(CONNECTION_RESOURCE)).await);
    };
    if !names(&provider, &connection) {
        return Err(refuse("provider_mismatch", state_refused()).await);
    }
    if !stored.test && !connection.is_active() {
        return Err(refuse("connection_inactive", AppError::not_found(CONNECTION_RESOURCE)).await);
    }
    // The tenant's allow-list holds for every way in: a sign-in from
    // elsewhere stops here, before the code is spent or a member created.
    if !stored.test && !state.store.tenant_policy(&scope).await?.admits(client.ip_address.as_deref()) {
        let err = AppError::forbidden(
            "ip_not_allowed",
            "sign-in from this address is not allowed: the tenant admits only the addresses in its IP allow-list",
        )
        .with_details(json!({"ip_address": client.ip_address, "policy": "configuration.security.ip_whitelisting"}));
        return Err(refuse("ip_not_allowed", err).await);
    }
    let claims = if connection.provider_type == ProviderType::Saml {
        // The ACS verified the response and kept its claims on the state
        // with the hash of the code it gave the browser; the app brings
        // that code with its state. A state the ACS never answered (or a
        // wrong code) is refused like a bad state: it is used up now.
        let code_matches = saml_code_hash.as_deref().is_some_and(|stored_hash| {
            shared::auth::api_key::hashes_match(&sha256_hex(body.code.as_str()), stored_hash)
        });
        match stored.saml_claims.clone() {
            Some(claims) if code_matches => claims,
            _ => return Err(refuse("saml_code_mismatch", state_refused()).await),
        }
    } else {
        let secrets = super::providers::open_secrets(&state, &scope, connection.id, &nonce, &sealed)?;
        let context = state_verifier_context(scope.tenant_id(), stored.id);
        let verifier = String::from_utf8(state.keys.sealing.open(&context, &verifier_nonce, &verifier_sealed)?)
            .map_err(AppError::internal)?;
        match exchange_and_verify(&state, &connection, &secrets, &stored, &verifier, body.code.as_str()).await {
            Ok(claims) => claims,
            Err((reason, err)) => {
                let reason: &'static str = match reason.as_str() {
                    "idp_unavailable" => "idp_unavailable",
                    "code_rejected" => "code_rejected",
                    _ => "id_token_invalid",
                };
                return Err(refuse(reason, err).await);
            }
        }
    };
    let decision = map_role(&connection, claims.email.as_deref(), &claims.groups);
    let identity = state.store.find_identity(&scope, connection.id, &claims.issuer, &claims.subject).await?;
    if stored.test {
        let linked_user_id = match &identity {
            Some(i) => state.store.get_user(&scope, i.user_id).await?.map(|u| u.id),
            None => None,
        };
        let would_provision = linked_user_id.is_none()
            && connection.auto_provision_users
            && match &claims.email {
                Some(email) => state.store.find_email_owner(email).await?.is_none(),
                None => false,
            };
        let result = SsoTestResult {
            test: true,
            connection_id: connection.id,
            claims,
            role: decision,
            linked_user_id,
            would_provision,
        };
        let change = Change {
            action: "sso_test",
            resource_type: CONNECTION_RESOURCE,
            resource_id: connection.id.to_string(),
            old_values: json!({}),
            new_values: json!({"subject": result.claims.subject, "role": result.role.role.as_str()}),
        };
        state.store.record_audit(&scope, &AuditContext::system_for_client("sso-test", &client), change).await?;
        return Ok(Json(CallbackAnswer::Test(result)));
    }
    let audit = AuditContext::system_for_client("sso-sign-in", &client);
    let (user, provisioned) = match member_for(&state, &scope, &connection, &claims, &decision, identity, &audit).await
    {
        Ok(found) => found,
        Err((reason, err)) => return Err(refuse(reason, err).await),
    };
    if !user.is_active {
        return Err(refuse("account_disabled", account_disabled()).await);
    }
    // The mapping decides the role on every sign-in, except an owner's (a
    // mapping neither grants nor takes ownership).
    let user = if !provisioned && user.role != Role::Owner && user.role != decision.role {
        let changes = UserChanges { role: Some(decision.role), ..Default::default() };
        match state.store.update_user(&scope, user.id, &changes, &audit).await {
            Ok(Some(updated)) => updated,
            Ok(None) => return Err(refuse("user_missing", state_refused()).await),
            Err(MemberError::Other(e)) => return Err(e),
            Err(_) => return Err(AppError::conflict("the member is being changed; try again")),
        }
    } else {
        user
    };
    if let Err(err) = tokens::ensure_tenant_usable(&state, &scope).await {
        return Err(refuse("tenant_inactive", err).await);
    }
    state.store.record_login(&scope, user.id).await?;
    let change = Change {
        action: "sso_login",
        resource_type: CONNECTION_RESOURCE,
        resource_id: connection.id.to_string(),
        old_values: json!({}),
        new_values: json!({
            "user_id": user.id,
            "provisioned": provisioned,
            "role": user.role.as_str(),
            "role_source": decision.source,
            "issuer": claims.issuer,
            "subject": claims.subject,
        }),
    };
    state.store.record_audit(&scope, &audit, change).await?;
    let session = tokens::start_session(&state, &scope, &user, &client).await?;
    Ok(Json(CallbackAnswer::Session(SsoSession { session, provisioned, connection_id: connection.id })))
}

fn account_disabled() -> AppError {
    AppError::forbidden("account_disabled", "this account is deactivated; ask an admin of the tenant")
}

/// The member the identity signs in as: linked before, linked now by a
/// vouched-for email, or created (JIT). `(user, provisioned)`, or the
/// refusal's reason and answer.
async fn member_for(
    state: &AppState,
    scope: &TenantScope,
    connection: &Connection,
    claims: &VerifiedClaims,
    decision: &RoleDecision,
    identity: Option<Identity>,
    audit: &AuditContext,
) -> Result<(User, bool), (&'static str, AppError)> {
    let internal = |e: AppError| ("internal", e);
    // Two rounds: a concurrent first sign-in of the same identity may win
    // the link; the second round finds it.
    let mut identity = identity;
    for _ in 0..2 {
        let stale = match &identity {
            Some(link) => match state.store.get_user(scope, link.user_id).await.map_err(internal)? {
                Some(user) => return Ok((user, false)),
                // Linked to a member who was deleted: linked anew below.
                None => true,
            },
            None => false,
        };
        let Some(email) = claims.email.clone() else {
            return Err(("missing_email", token_refused_missing_email()));
        };
        let new_identity = |user_id: Uuid| Identity {
            connection_id: connection.id,
            issuer: claims.issuer.clone(),
            subject: claims.subject.clone(),
            user_id,
            created_at: shared::domain::now_rfc3339(),
        };
        let outcome = match state.store.find_email_owner(&email).await.map_err(internal)? {
            Some(owner) if owner.tenant_id != scope.tenant_id() => {
                return Err((
                    "email_in_use",
                    AppError::new(
                        StatusCode::CONFLICT,
                        "email_in_use",
                        "an account with this email exists outside this tenant; it cannot sign in here",
                    ),
                ));
            }
            Some(owner) => {
                if !may_link_by_email(connection, claims) {
                    return Err((
                        "account_not_linked",
                        AppError::new(
                            StatusCode::CONFLICT,
                            "account_not_linked",
                            "a member with this email exists but is not linked to this identity; the IdP must \
                             vouch for the email (email_verified) in one of the connection's domains",
                        ),
                    ));
                }
                // An admin chooses a connection's IdP and its domains, and no
                // one proves the tenant owns those domains: linking by email
                // must not reach an account stronger than the admin's own,
                // nor one that protects itself with MFA (the link would skip
                // it from then on). Such members link while signed in (not
                // built yet), never by an email claim.
                let member = state.store.get_user(scope, owner.user_id).await.map_err(internal)?;
                let protected = match &member {
                    Some(m) if m.role == Role::Owner || m.platform_admin => true,
                    Some(m) => state
                        .store
                        .get_mfa(scope, m.id)
                        .await
                        .map_err(internal)?
                        .is_some_and(|mfa| mfa.enrollment.is_enabled()),
                    None => false,
                };
                if protected {
                    return Err((
                        "account_protected",
                        AppError::new(
                            StatusCode::CONFLICT,
                            "account_not_linked",
                            "the member with this email is the tenant's owner, a platform admin or protected by MFA: \
                             an identity is never linked to such an account by its email",
                        )
                        .with_details(json!({"reason": "account_protected"})),
                    ));
                }
                match state.store.link_identity(scope, &new_identity(owner.user_id), stale, audit).await {
                    Ok(()) => {
                        let user = state.store.get_user(scope, owner.user_id).await.map_err(internal)?;
                        return user.map(|u| (u, false)).ok_or(("user_missing", state_refused()));
                    }
                    Err(e) => e,
                }
            }
            None => {
                // Emails are unique platform-wide and reset mail goes to the
                // address: a member is made only for an address the IdP
                // vouches for.
                if claims.email_verified != Some(true) {
                    return Err((
                        "email_not_verified",
                        AppError::forbidden(
                            "sso_email_not_verified",
                            "the identity provider does not vouch for this email (email_verified); no member is created",
                        ),
                    ));
                }
                if !connection.auto_provision_users {
                    return Err((
                        "provisioning_disabled",
                        AppError::forbidden(
                            "sso_provisioning_disabled",
                            "no member has this identity, and this connection does not create members; ask an admin to invite you",
                        ),
                    ));
                }
                let tenant = state.store.tenant_for_change(scope).await.map_err(internal)?;
                if tenant.status == "inactive" || tenant.status == "suspended" {
                    return Err((
                        "tenant_inactive",
                        AppError::forbidden("tenant_inactive", format!("the tenant is {}", tenant.status)),
                    ));
                }
                let first =
                    claims.first_name.clone().unwrap_or_else(|| email.split('@').next().unwrap_or("").to_owned());
                let last = claims.last_name.clone().unwrap_or_default();
                let user = User::new(scope.tenant_id(), &email, &first, &last, decision.role);
                match state
                    .store
                    .provision_sso_member(scope, &tenant, &user, &new_identity(user.id), stale, audit)
                    .await
                {
                    Ok(()) => return Ok((user, true)),
                    Err(e) => e,
                }
            }
        };
        match outcome {
            LinkError::IdentityTaken | LinkError::EmailTaken | LinkError::UserMissing => {
                identity = state
                    .store
                    .find_identity(scope, connection.id, &claims.issuer, &claims.subject)
                    .await
                    .map_err(internal)?;
            }
            LinkError::QuotaExceeded => {
                return Err(("quota_exceeded", state.store.quota_refusal(scope, Quota::Users, 1).await));
            }
            LinkError::Other(e) => return Err(internal(e)),
        }
    }
    Err(("conflict", AppError::conflict("this identity is being signed in by another request; try again")))
}

fn token_refused_missing_email() -> AppError {
    AppError::new(StatusCode::UNAUTHORIZED, "sso_token_invalid", "the ID token carries no email address")
        .with_details(json!({"reason": "missing_email"}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_redirect_uri_is_https_or_a_local_loopback() {
        assert!(redirect_uri_allowed("https://app.example.com/cb", false));
        assert!(!redirect_uri_allowed("http://app.example.com/cb", true));
        assert!(!redirect_uri_allowed("http://127.0.0.1:3000/cb", false));
        assert!(redirect_uri_allowed("http://127.0.0.1:3000/cb", true));
        assert!(redirect_uri_allowed("http://[::1]:3000/cb", true));
        assert!(!redirect_uri_allowed("http://127.0.0.1.evil.example/cb", true));
        assert!(!redirect_uri_allowed("http://evil.example@127.0.0.1.nip.io/cb", true));
    }

    #[test]
    fn an_origin_is_scheme_and_authority_and_user_info_never_matches() {
        assert_eq!(origin("https://App.Example.com/auth/cb?x=1").as_deref(), Some("https://app.example.com"));
        assert_eq!(origin("https://app.example.com"), origin("https://app.example.com/"));
        assert_ne!(origin("https://app.example.com:8443/cb"), origin("https://app.example.com/cb"));
        assert_ne!(origin("http://app.example.com/cb"), origin("https://app.example.com/cb"));
        assert_eq!(origin("https://app.example.com@evil.example/cb"), None);
        assert_eq!(origin("not a url"), None);
    }

    #[test]
    fn a_state_names_its_tenant_and_nothing_else_parses() {
        let (t, s) = (Uuid::now_v7(), Uuid::now_v7());
        let parsed = StateToken::parse(&format!("sso.{t}.{s}.secret")).expect("state");
        assert_eq!((parsed.tenant_id, parsed.state_id, parsed.secret.as_str()), (t, s, "secret"));
        assert!(StateToken::parse(&format!("rt.{t}.{s}.secret")).is_none());
        assert!(StateToken::parse(&format!("sso.{t}.{s}.a.b")).is_none());
        assert!(StateToken::parse("tenant-id-csrf-token").is_none());
    }
}
