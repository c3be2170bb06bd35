//! Single sign-on: per-tenant SSO connections and the OIDC sign-in (initiate, callback).
//!
//! | route | handler | who |
//! |---|---|---|
//! | `POST /v1/auth/sso/providers` | [`create_provider`] | admin |
//! | `GET /v1/auth/sso/providers` | [`list_providers`] | admin |
//! | `GET /v1/auth/sso/providers/{id}` | [`get_provider`] | admin |
//! | `PATCH /v1/auth/sso/providers/{id}` | [`update_provider`] | admin |
//! | `DELETE /v1/auth/sso/providers/{id}` | [`delete_provider`] | admin |
//! | `POST /v1/auth/sso/providers/{id}/test` | [`test_provider`] | admin |
//! | `POST /v1/auth/sso/{provider}/initiate` | [`oidc::initiate`] | anyone |
//! | `POST /v1/auth/sso/{provider}/callback` | [`oidc::callback`] | holder of a sign-in state |
//!
//! The bodies and their rules are [`providers`]; the sign-in itself
//! (discovery, PKCE, the ID token, JIT provisioning) is [`oidc`].

pub mod oidc;
pub mod providers;
pub mod saml;

use axum::{
    Json, Router,
    extract::State,
    http::StatusCode,
    routing::{get, post},
};
use shared::{
    AppError, AppResult, AppState,
    audit::AuditContext,
    auth::{Role, TenantScope, proofs::CredentialLookup},
    domain::sso::{CONNECTION_RESOURCE, Connection, ConnectionView},
    http::Page,
    web::{
        extract::{Body, ListQuery, NoFilters, OptionalBody, PathIds},
        principal::Fresh,
    },
};

use providers::{ConnectionId, ConnectionUpdate, NewConnection, TestRequest};

/// This part of the auth group's OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        create_provider, list_providers, get_provider, update_provider, delete_provider, test_provider,
        oidc::initiate, oidc::callback
    ),
    tags((name = "sso", description = "Single sign-on connections and sign-in over OIDC and SAML 2.0"))
)]
pub struct ApiDoc;

/// These routes; [`crate::routes`] merges them.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/auth/sso/providers", get(list_providers).post(create_provider))
        .route("/v1/auth/sso/providers/{id}", get(get_provider).patch(update_provider).delete(delete_provider))
        .route("/v1/auth/sso/providers/{id}/test", post(test_provider))
        .route("/v1/auth/sso/{provider}/initiate", post(oidc::initiate))
        .route("/v1/auth/sso/{provider}/callback", post(oidc::callback))
}

/// SSO settings are a way into the tenant: a signed-in admin, standing read afresh.
fn require_admin(Fresh(principal): &Fresh) -> AppResult<TenantScope> {
    principal.require_person(Role::Admin, CONNECTION_RESOURCE)
}

async fn load(state: &AppState, scope: &TenantScope, ConnectionId(id): ConnectionId) -> AppResult<Connection> {
    state.store.get_connection(scope, id).await?.ok_or_else(|| AppError::not_found(CONNECTION_RESOURCE))
}

/// Create an SSO connection
///
/// Seed 000's bodies as they stand: `auto_provision_users`, `default_role`
/// and `admin_domains` may be sent at the top level or inside
/// `configuration` (stored once, at the top level). `client_secret` and
/// `x509_certificate` are sealed at rest and never shown again
/// (`client_secret_set`, `certificate_set`). SAML connections are stored;
/// their sign-in is not available yet.
#[utoipa::path(post, path = "/v1/auth/sso/providers", tag = "sso", security(("bearer" = ["admin"])),
    request_body(content = NewConnection, examples(
        ("seed_000_okta" = (summary = "Seed 000: Okta", value = json!({
            "provider_type": "okta",
            "provider_name": "Enterprise Okta",
            "configuration": {
                "client_id": "0oa1a2b3c4d5e6f7g8h9",
                "client_secret": "SecretKey456",
                "okta_domain": "enterprise.okta.com",
                "scopes": ["openid", "profile", "email", "groups"],
                "group_mapping": {"Enterprise-Admins": "admin", "Enterprise-Developers": "developer", "Enterprise-Users": "user"}
            }
        }))),
        ("seed_000_google" = (summary = "Seed 000: Google Workspace", value = json!({
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
        }))),
        ("seed_000_saml" = (summary = "Seed 000: SAML (Azure AD)", value = json!({
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
                "group_mapping": {"LeanVibe-Admins": "admin", "LeanVibe-Developers": "developer", "LeanVibe-Users": "user"}
            },
            "auto_provision_users": true,
            "require_encrypted_assertions": true
        }))),
    )),
    responses(
        (status = 201, description = "The connection (its secrets are never shown)", body = ConnectionView),
    ))]
async fn create_provider(
    State(state): State<AppState>,
    fresh: Fresh,
    audit: AuditContext,
    body: Result<Body<NewConnection>, AppError>,
) -> AppResult<(StatusCode, Json<ConnectionView>)> {
    let scope = require_admin(&fresh)?;
    let Body(body) = body?;
    let (connection, secrets) = body.into_connection(scope.tenant_id(), state.config.local_mode)?;
    let (nonce, sealed) = providers::seal_secrets(&state, &scope, connection.id, &secrets)?;
    state.store.create_connection(&scope, &connection, (&nonce, &sealed), &audit).await?;
    Ok((StatusCode::CREATED, Json(connection.view())))
}

/// List SSO connections
///
/// In creation order; `?limit=`, `?cursor=`.
#[utoipa::path(get, path = "/v1/auth/sso/providers", tag = "sso", security(("bearer" = ["admin"])),
    responses((status = 200, description = "A page of connections", body = Page<ConnectionView>)))]
async fn list_providers(
    State(state): State<AppState>,
    fresh: Fresh,
    query: Result<ListQuery<NoFilters>, AppError>,
) -> AppResult<Page<ConnectionView>> {
    let scope = require_admin(&fresh)?;
    let ListQuery { page, .. } = query?;
    let (connections, next_cursor) = state.store.list_connections_page(&scope, &page).await?;
    Ok(Page { data: connections.iter().map(Connection::view).collect(), next_cursor })
}

/// Read an SSO connection
///
/// Another tenant's connection is a 404.
#[utoipa::path(get, path = "/v1/auth/sso/providers/{id}", tag = "sso", security(("bearer" = ["admin"])),
    responses((status = 200, description = "The connection", body = ConnectionView)))]
async fn get_provider(
    State(state): State<AppState>,
    fresh: Fresh,
    PathIds(id): PathIds<ConnectionId>,
) -> AppResult<Json<ConnectionView>> {
    let scope = require_admin(&fresh)?;
    Ok(Json(load(&state, &scope, id).await?.view()))
}

/// Update an SSO connection
///
/// A partial update: each field sent replaces the stored one (inside
/// `configuration` too); a new `client_secret` or `x509_certificate`
/// replaces the sealed one. The type cannot change.
#[utoipa::path(patch, path = "/v1/auth/sso/providers/{id}", tag = "sso", security(("bearer" = ["admin"])),
    request_body(content = ConnectionUpdate, example = json!({
        "configuration": {"group_mapping": {"Enterprise-Admins": "admin", "Enterprise-Users": "user"}},
        "status": "active"
    })),
    responses(
        (status = 200, description = "The connection as updated", body = ConnectionView),
        (status = 409, description = "Conflict\n\n- `conflict`: the connection was changed meanwhile; read it again and retry", body = shared::web::openapi::ApiError),
    ))]
async fn update_provider(
    State(state): State<AppState>,
    fresh: Fresh,
    audit: AuditContext,
    PathIds(id): PathIds<ConnectionId>,
    body: Result<Body<ConnectionUpdate>, AppError>,
) -> AppResult<Json<ConnectionView>> {
    let scope = require_admin(&fresh)?;
    let Body(body) = body?;
    let (old, nonce, sealed) = state
        .store
        .connection_with_secrets(&scope, id.0)
        .await?
        .ok_or_else(|| AppError::not_found(CONNECTION_RESOURCE))?;
    let old_secrets = providers::open_secrets(&state, &scope, old.id, &nonce, &sealed)?;
    let (new, secrets, secrets_changed) = body.apply(&old, old_secrets, state.config.local_mode)?;
    let resealed =
        if secrets_changed { Some(providers::seal_secrets(&state, &scope, old.id, &secrets)?) } else { None };
    let resealed_ref = resealed.as_ref().map(|(n, s)| (n.as_slice(), s.as_slice()));
    if !state.store.update_connection(&scope, &old, &new, resealed_ref, &audit).await? {
        return Err(AppError::conflict("the connection was changed meanwhile; read it again and retry"));
    }
    Ok(Json(new.view()))
}

/// Delete an SSO connection
///
/// Its members keep their accounts; they can no longer sign in through it.
#[utoipa::path(delete, path = "/v1/auth/sso/providers/{id}", tag = "sso", security(("bearer" = ["admin"])),
    responses((status = 204, description = "Deleted")))]
async fn delete_provider(
    State(state): State<AppState>,
    fresh: Fresh,
    audit: AuditContext,
    PathIds(id): PathIds<ConnectionId>,
) -> AppResult<StatusCode> {
    let scope = require_admin(&fresh)?;
    let connection = load(&state, &scope, id).await?;
    if !state.store.delete_connection(&scope, &connection, &audit).await? {
        return Err(AppError::not_found(CONNECTION_RESOURCE));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Test an SSO connection
///
/// Answers an authorization URL like `initiate`, for a sign-in marked as a
/// test: its callback answers the verified claims and the role they map
/// to, and creates no member and no session. Works on an inactive
/// connection too. `redirect_uri` defaults to the connection's first.
#[utoipa::path(post, path = "/v1/auth/sso/providers/{id}/test", tag = "sso", security(("bearer" = ["admin"])),
    request_body(content = TestRequest, example = json!({"redirect_uri": "https://app.enterprise.com/auth/callback"})),
    responses(
        (status = 200, description = "Where to send the tester's browser", body = oidc::Initiated),
        (status = 502, description = "Bad gateway\n\n- `idp_unavailable`: the IdP's discovery document could not be read or is not valid", body = shared::web::openapi::ApiError),
    ))]
async fn test_provider(
    State(state): State<AppState>,
    fresh: Fresh,
    PathIds(id): PathIds<ConnectionId>,
    body: Result<OptionalBody<TestRequest>, AppError>,
) -> AppResult<Json<oidc::Initiated>> {
    let scope = require_admin(&fresh)?;
    let OptionalBody(body) = body?;
    let connection = load(&state, &scope, id).await?;
    let redirect_uri = match body.and_then(|b| b.redirect_uri) {
        Some(uri) => uri.into_inner(),
        None => connection.configuration.redirect_uris.first().cloned().ok_or_else(|| {
            AppError::invalid_field("redirect_uri", "is required (the connection lists no redirect_uris)")
        })?,
    };
    let lookup = CredentialLookup::named_by_credential(scope.tenant_id());
    Ok(Json(oidc::begin(&state, &lookup, &connection, &redirect_uri, true).await?))
}
