//! The auth route group: sign-up, login, rotating refresh tokens, logout, the
//! caller's profile, and the JWKS that lets anyone verify our access tokens.
//!
//! | route | handler |
//! |---|---|
//! | `POST /v1/auth/register` | [`register`] |
//! | `POST /v1/auth/login` | [`login`] |
//! | `POST /v1/auth/refresh` | [`refresh`] |
//! | `POST /v1/auth/logout` | [`logout`] |
//! | `GET /v1/auth/me` | [`me`] |
//! | `POST /v1/auth/invitations/accept` | [`accept_invitation`] |
//! | `GET /.well-known/jwks.json` | [`jwks`] |

mod tokens;

use axum::{
    Json, Router,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde_json::{Value, json};
use shared::{
    AppError, AppResult, AppState,
    audit::{AuditContext, ClientInfo},
    auth::{Principal, Role, TenantScope, invitation::InvitationToken, password},
    domain::{
        tenant::{Tenant, slugify},
        user::User,
    },
    http::{JsonObject, health_router},
    store::{members::MemberError, tenants::CreateTenantError},
    validate::{Fields, Need, is_hostname},
};
use uuid::Uuid;

pub use tokens::RefreshToken;

/// This group's routes; its Lambda and the local server add the shared layers.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/auth/register", post(register))
        .route("/v1/auth/login", post(login))
        .route("/v1/auth/refresh", post(refresh))
        .route("/v1/auth/logout", post(logout))
        .route("/v1/auth/me", get(me))
        .route("/v1/auth/invitations/accept", post(accept_invitation))
        .route("/.well-known/jwks.json", get(jwks))
        .merge(health_router())
}

/// Seed 003 sign-up: a new tenant and its owner, in one transaction.
async fn register(
    State(state): State<AppState>,
    client: ClientInfo,
    JsonObject(body): JsonObject,
) -> AppResult<Response> {
    let mut f = Fields::new(&body);
    f.reject_unknown(&[
        "email",
        "password",
        "password_confirm",
        "first_name",
        "last_name",
        "tenant_name",
        "tenant_domain",
        "tenant_slug",
    ]);
    let email = f.email("email", Need::Required);
    let password = f.text("password", Need::Required, 1, 1024);
    let confirm = f.text("password_confirm", Need::Required, 1, 1024);
    let first_name = f.text("first_name", Need::Required, 1, 100);
    let last_name = f.text("last_name", Need::Required, 1, 100);
    let tenant_name = f.text("tenant_name", Need::Required, 3, 255);
    let tenant_domain = f.check_text("tenant_domain", Need::Optional, 253, is_hostname, "must be a valid hostname");
    let tenant_slug = f.check_text(
        "tenant_slug",
        Need::Optional,
        63,
        shared::validate::is_slug,
        "must match pattern '^[a-z0-9-]+$' (at most 63 characters)",
    );
    if let Some(p) = &password
        && let Some(problem) = password::password_problem(p, email.as_deref().unwrap_or_default())
    {
        f.error("password", problem);
    }
    if let (Some(p), Some(c)) = (&password, &confirm)
        && p != c
    {
        f.error("password_confirm", "must match password");
    }
    f.finish()?;
    let (Some(email), Some(password), Some(first_name), Some(last_name), Some(tenant_name)) =
        (email, password, first_name, last_name, tenant_name)
    else {
        return Err(AppError::internal(anyhow::anyhow!("validated fields missing")));
    };

    let password_hash = password::hash_password(&password)?;
    let explicit_slug = tenant_slug.is_some();
    let mut slug = tenant_slug.unwrap_or_else(|| slugify(&tenant_name));
    // A derived slug that is taken gets a random suffix, a few times; a slug
    // the caller chose is theirs to change, so that is a 409.
    for attempt in 0..4 {
        let owner_id = Uuid::now_v7();
        let mut tenant = Tenant::minimal(&tenant_name, &slug, &email, owner_id);
        tenant.domain = tenant_domain.clone();
        let mut owner = User::new(tenant.id, &email, &first_name, &last_name, Role::Owner);
        owner.id = owner_id;
        owner.created_at = tenant.created_at;
        let audit = AuditContext::user(owner.id, Some(owner.email.clone()), &client);
        match state.store.create_tenant_with_owner(&tenant, &owner, &password_hash, &audit).await {
            Ok(()) => {
                state.events.publish_after_commit(&tenant.created_event()).await;
                let scope = TenantScope::trusted_internal(tenant.id);
                let mut body = tokens::start_session(&state, &scope, &owner, &client).await?;
                body["tenant"] = tenant.to_body();
                return Ok((StatusCode::CREATED, Json(body)).into_response());
            }
            Err(CreateTenantError::EmailTaken) => {
                return Err(AppError::conflict("an account with this email already exists")
                    .with_details(json!({"field": "email"})));
            }
            Err(CreateTenantError::SlugTaken) if !explicit_slug && attempt < 3 => {
                slug = format!("{}-{}", slugify(&tenant_name), &Uuid::new_v4().simple().to_string()[..6]);
            }
            Err(CreateTenantError::SlugTaken) => {
                return Err(AppError::conflict(format!("slug '{slug}' already exists"))
                    .with_details(json!({"field": "tenant_slug", "slug": slug})));
            }
            Err(CreateTenantError::ParentMissing) => {
                return Err(AppError::internal(anyhow::anyhow!("no parent given")));
            }
            Err(CreateTenantError::Other(e)) => return Err(e),
        }
    }
    Err(AppError::internal(anyhow::anyhow!("could not find a free slug")))
}

/// Seeds 002/003 login: access and refresh tokens plus the user.
async fn login(
    State(state): State<AppState>,
    client: ClientInfo,
    JsonObject(body): JsonObject,
) -> AppResult<Json<Value>> {
    let mut f = Fields::new(&body);
    f.reject_unknown(&["email", "username", "password", "tenant_id"]);
    let email = f.text("email", Need::Optional, 1, 254).or_else(|| f.text("username", Need::Optional, 1, 254));
    if email.is_none() && !f.contains("email") && !f.contains("username") {
        f.error("email", "is required");
    }
    let password = f.text("password", Need::Required, 1, 1024);
    let tenant_hint = f.uuid("tenant_id", Need::Optional);
    f.finish()?;
    let (Some(email), Some(password)) = (email, password) else {
        return Err(AppError::internal(anyhow::anyhow!("validated fields missing")));
    };

    let refused = || AppError::unauthorized("invalid email or password");
    let Some(owner) = state.store.find_email_owner(&email).await? else {
        password::verify_against_dummy(&password);
        return Err(refused());
    };
    let scope = TenantScope::trusted_internal(owner.tenant_id);
    let Some((user, hash)) = state.store.get_user_with_secret(&scope, owner.user_id).await? else {
        password::verify_against_dummy(&password);
        return Err(refused());
    };
    if !password::verify_password(&password, &hash) || !user.is_active {
        return Err(refused());
    }
    if tenant_hint.is_some_and(|t| t != user.tenant_id) {
        return Err(refused());
    }
    tokens::ensure_tenant_usable(&state, &scope).await?;
    state.store.record_login(&scope, user.id).await?;
    Ok(Json(tokens::start_session(&state, &scope, &user, &client).await?))
}

async fn refresh(State(state): State<AppState>, JsonObject(body): JsonObject) -> AppResult<Json<Value>> {
    let mut f = Fields::new(&body);
    f.reject_unknown(&["refresh_token", "refresh"]);
    let raw = f.text("refresh_token", Need::Optional, 1, 512).or_else(|| f.text("refresh", Need::Optional, 1, 512));
    if raw.is_none() && !f.has_errors() {
        f.error("refresh_token", "is required");
    }
    f.finish()?;
    let raw = raw.ok_or_else(|| AppError::internal(anyhow::anyhow!("validated field missing")))?;
    Ok(Json(tokens::rotate(&state, &raw).await?))
}

/// Revokes the caller's refresh-token family (and, if sent, the family of the
/// given refresh token, when it is the caller's own). Access tokens already
/// issued stay valid until they expire (at most 15 minutes).
async fn logout(
    State(state): State<AppState>,
    principal: Principal,
    audit: AuditContext,
    raw_body: axum::body::Bytes,
) -> AppResult<StatusCode> {
    let session_id = principal.require_session("session")?;
    let home = principal.home_scope();
    state.store.revoke_session(&home, session_id, "logout", &audit).await?;
    if !raw_body.iter().all(u8::is_ascii_whitespace) {
        let body: serde_json::Map<String, Value> = shared::http::parse_json(&raw_body)?;
        let mut f = Fields::new(&body);
        f.reject_unknown(&["refresh_token", "refresh"]);
        let raw = f.text("refresh_token", Need::Optional, 1, 512).or_else(|| f.text("refresh", Need::Optional, 1, 512));
        f.finish()?;
        if let Some(token) = raw.as_deref().and_then(RefreshToken::parse)
            && token.tenant_id == principal.home_tenant_id
            && let Some(session) = state.store.get_session(&home, token.session_id).await?
            && session.user_id == principal.user_id
        {
            state.store.revoke_session(&home, token.session_id, "logout", &audit).await?;
        }
    }
    Ok(StatusCode::NO_CONTENT)
}

/// The caller's profile and tenant.
async fn me(State(state): State<AppState>, principal: Principal) -> AppResult<Json<Value>> {
    principal.require_session("user")?;
    let home = principal.home_scope();
    let user = state
        .store
        .get_user(&home, principal.user_id)
        .await?
        .filter(|u| u.is_active)
        .ok_or_else(|| AppError::invalid_token("the account no longer exists or is disabled"))?;
    let tenant = state
        .store
        .get_tenant(&home)
        .await?
        .map(|(t, _)| json!({"id": t.id, "name": t.name, "slug": t.slug, "status": t.status, "plan": t.plan}));
    let mut body = user.to_body();
    body["tenant"] = tenant.unwrap_or(Value::Null);
    body["acting_tenant_id"] = json!(principal.tenant_id);
    Ok(Json(body))
}

/// Seed 000 invitations: the invitee sets a password and becomes an active
/// member with the invited role, signed in at once.
async fn accept_invitation(
    State(state): State<AppState>,
    client: ClientInfo,
    JsonObject(body): JsonObject,
) -> AppResult<Response> {
    let mut f = Fields::new(&body);
    f.reject_unknown(&["token", "password", "first_name", "last_name"]);
    let token = f.text("token", Need::Required, 1, 1024);
    let password_text = f.text("password", Need::Required, 1, 1024);
    let first_name = f.text("first_name", Need::Required, 1, 100);
    let last_name = f.text("last_name", Need::Required, 1, 100);
    let parsed = token.as_deref().map(InvitationToken::parse);
    if matches!(parsed, Some(None)) {
        f.error("token", "is not an invitation token");
    }
    if let (Some(p), Some(Some(t))) = (&password_text, &parsed)
        && let Some(problem) = password::password_problem(p, &t.email)
    {
        f.error("password", problem);
    }
    f.finish()?;
    let (Some(Some(token)), Some(password_text), Some(first_name), Some(last_name)) =
        (parsed, password_text, first_name, last_name)
    else {
        return Err(AppError::internal(anyhow::anyhow!("validated fields missing")));
    };
    let scope = TenantScope::trusted_internal(token.tenant_id);
    tokens::ensure_tenant_usable(&state, &scope)
        .await
        .map_err(|_| AppError::invalid_token("the invitation is invalid, used or expired"))?;
    let mut user = User::new(token.tenant_id, &token.email, &first_name, &last_name, Role::User);
    let hash = password::hash_password(&password_text)?;
    match state.store.accept_invitation(&scope, &token.email, &token.hash(), &mut user, &hash).await {
        Ok(()) => {}
        Err(MemberError::EmailTaken(_)) => {
            return Err(
                AppError::conflict("an account with this email already exists").with_details(json!({"field": "email"}))
            );
        }
        Err(MemberError::Other(e)) => return Err(e),
        Err(_) => return Err(AppError::invalid_token("the invitation is invalid, used or expired")),
    }
    state
        .events
        .publish_after_commit(&shared::events::DomainEvent::new(
            "user.created",
            token.tenant_id,
            json!({"user_id": user.id, "email": user.email, "role": user.role, "via": "invitation"}),
        ))
        .await;
    let body = tokens::start_session(&state, &scope, &user, &client).await?;
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

async fn jwks(State(state): State<AppState>) -> Response {
    // Verifiers cache the key set; an hour keeps rotation responsive.
    ([(axum::http::header::CACHE_CONTROL, "public, max-age=3600")], Json(state.verifier.jwks().clone())).into_response()
}
