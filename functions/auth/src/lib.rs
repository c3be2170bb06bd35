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
use serde_json::{Map, Value, json};
use shared::{
    AppError, AppResult, AppState,
    audit::{AuditContext, ClientInfo},
    auth::{
        Principal, Role, SignedIn,
        invitation::InvitationToken,
        password,
        proofs::{CredentialLookup, NewTenant},
    },
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

/// The answer to an invitation that cannot be accepted, whatever the reason.
fn invalid_invitation() -> AppError {
    AppError::invalid_token("the invitation is invalid, used or expired")
}

/// `POST /v1/auth/register`, parsed: every bad field is named in one 400.
struct Registration {
    email: String,
    password: String,
    first_name: String,
    last_name: String,
    tenant_name: String,
    tenant_domain: Option<String>,
    tenant_slug: Option<String>,
}

impl Registration {
    fn parse(body: &Map<String, Value>) -> AppResult<Self> {
        let mut f = Fields::new(body);
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
        // A required field is `None` only with its error recorded, which
        // `finish` has just refused: the defaults below are never used.
        Ok(Self {
            email: email.unwrap_or_default(),
            password: password.unwrap_or_default(),
            first_name: first_name.unwrap_or_default(),
            last_name: last_name.unwrap_or_default(),
            tenant_name: tenant_name.unwrap_or_default(),
            tenant_domain,
            tenant_slug,
        })
    }
}

/// Seed 003 sign-up: a new tenant and its owner, in one transaction (which
/// also emits `tenant.created` and the owner's `user.created`).
async fn register(
    State(state): State<AppState>,
    client: ClientInfo,
    JsonObject(body): JsonObject,
) -> AppResult<Response> {
    let new = Registration::parse(&body)?;
    let password_hash = password::hash_password(&new.password)?;
    let explicit_slug = new.tenant_slug.is_some();
    let mut slug = new.tenant_slug.clone().unwrap_or_else(|| slugify(&new.tenant_name));
    // A derived slug that is taken gets a random suffix, a few times; a slug
    // the caller chose is theirs to change, so that is a 409.
    for attempt in 0..4 {
        let owner_id = Uuid::now_v7();
        let mut tenant = Tenant::minimal(&new.tenant_name, &slug, &new.email, owner_id);
        tenant.domain = new.tenant_domain.clone();
        let mut owner = User::new(tenant.id, &new.email, &new.first_name, &new.last_name, Role::Owner);
        owner.id = owner_id;
        owner.created_at = tenant.created_at;
        let audit = AuditContext::user(owner.id, Some(owner.email.clone()), &client);
        match state.store.create_tenant_with_owner(&tenant, &owner, &password_hash, &audit).await {
            Ok(()) => {
                let scope = NewTenant::scope(tenant.id);
                let mut body = tokens::start_session(&state, &scope, &owner, &client).await?;
                body["tenant"] = tenant.to_body();
                return Ok((StatusCode::CREATED, Json(body)).into_response());
            }
            Err(CreateTenantError::EmailTaken) => {
                return Err(AppError::conflict("an account with this email already exists")
                    .with_details(json!({"field": "email"})));
            }
            Err(CreateTenantError::SlugTaken) if !explicit_slug && attempt < 3 => {
                slug = format!("{}-{}", slugify(&new.tenant_name), &Uuid::new_v4().simple().to_string()[..6]);
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

/// `POST /v1/auth/login`, parsed. Seed 002 sends `username` for the email.
struct Login {
    email: String,
    password: String,
    tenant_hint: Option<Uuid>,
}

impl Login {
    fn parse(body: &Map<String, Value>) -> AppResult<Self> {
        let mut f = Fields::new(body);
        f.reject_unknown(&["email", "username", "password", "tenant_id"]);
        let named = ["email", "username"].into_iter().any(|k| f.contains(k) && !f.is_null(k));
        let email = f.text("email", Need::Optional, 1, 254).or_else(|| f.text("username", Need::Optional, 1, 254));
        // A present but bad address was named by `text`.
        if !named {
            f.error("email", "is required");
        }
        let password = f.text("password", Need::Required, 1, 1024);
        let tenant_hint = f.uuid("tenant_id", Need::Optional);
        f.finish()?;
        // Each of these is `None` only with its error recorded, which
        // `finish` has just refused: the defaults below are never used.
        Ok(Self { email: email.unwrap_or_default(), password: password.unwrap_or_default(), tenant_hint })
    }
}

/// Seeds 002/003 login: access and refresh tokens plus the user.
async fn login(
    State(state): State<AppState>,
    client: ClientInfo,
    JsonObject(body): JsonObject,
) -> AppResult<Json<Value>> {
    let Login { email, password, tenant_hint } = Login::parse(&body)?;
    let refused = || AppError::unauthorized("invalid email or password");
    let Some(claim) = state.store.find_email_owner(&email).await? else {
        password::verify_against_dummy(&password);
        return Err(refused());
    };
    // Where our own email index says the account lives; nothing is answered
    // from it before the password matched.
    let scope = claim.scope();
    let Some((user, hash)) = state.store.get_user_with_secret(&scope, claim.user_id).await? else {
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

/// The refresh token of a body (`refresh_token`, or seed 002's `refresh`);
/// `required` names its absence. `Ok(None)` only when it is optional and absent.
fn refresh_token_of(body: &Map<String, Value>, required: bool) -> AppResult<Option<String>> {
    let mut f = Fields::new(body);
    f.reject_unknown(&["refresh_token", "refresh"]);
    let raw = f.text("refresh_token", Need::Optional, 1, 512).or_else(|| f.text("refresh", Need::Optional, 1, 512));
    if required && raw.is_none() && !f.has_errors() {
        f.error("refresh_token", "is required");
    }
    f.finish()?;
    Ok(raw)
}

async fn refresh(State(state): State<AppState>, JsonObject(body): JsonObject) -> AppResult<Json<Value>> {
    // Required: `None` only with its error recorded, which `?` refused.
    let raw = refresh_token_of(&body, true)?.unwrap_or_default();
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
    let SignedIn { session_id, scope } = principal.require_session("session")?;
    state.store.revoke_session(&scope, session_id, "logout", &audit).await?;
    if !raw_body.iter().all(u8::is_ascii_whitespace) {
        let body: Map<String, Value> = shared::http::parse_json(&raw_body)?;
        if let Some(token) = refresh_token_of(&body, false)?.as_deref().and_then(RefreshToken::parse)
            && token.tenant_id == scope.tenant_id()
            && let Some(session) = state.store.get_session(&scope, token.session_id).await?
            && session.user_id == principal.user_id()
        {
            state.store.revoke_session(&scope, token.session_id, "logout", &audit).await?;
        }
    }
    Ok(StatusCode::NO_CONTENT)
}

/// The caller's profile and tenant.
async fn me(State(state): State<AppState>, principal: Principal) -> AppResult<Json<Value>> {
    let SignedIn { scope: home, .. } = principal.require_session("user")?;
    let user = state
        .store
        .get_user(&home, principal.user_id())
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
    body["acting_tenant_id"] = json!(principal.tenant_id());
    Ok(Json(body))
}

/// `POST /v1/auth/invitations/accept`, parsed.
struct Acceptance {
    token: InvitationToken,
    password: String,
    first_name: String,
    last_name: String,
}

impl Acceptance {
    fn parse(body: &Map<String, Value>) -> AppResult<Self> {
        let mut f = Fields::new(body);
        f.reject_unknown(&["token", "password", "first_name", "last_name"]);
        let raw = f.text("token", Need::Required, 1, 1024);
        let password = f.text("password", Need::Required, 1, 1024);
        let first_name = f.text("first_name", Need::Required, 1, 100);
        let last_name = f.text("last_name", Need::Required, 1, 100);
        let token = raw.as_deref().and_then(InvitationToken::parse);
        if raw.is_some() && token.is_none() {
            f.error("token", "is not an invitation token");
        }
        if let (Some(p), Some(t)) = (&password, &token)
            && let Some(problem) = password::password_problem(p, &t.email)
        {
            f.error("password", problem);
        }
        f.finish()?;
        // Each of these is `None` only with its error recorded, which
        // `finish` has just refused: the defaults below are never used (the
        // placeholder token names no tenant and matches no invitation).
        Ok(Self {
            token: token.unwrap_or_else(|| InvitationToken::generate(Uuid::nil(), "")),
            password: password.unwrap_or_default(),
            first_name: first_name.unwrap_or_default(),
            last_name: last_name.unwrap_or_default(),
        })
    }
}

/// Seed 000 invitations: the invitee sets a password and becomes an active
/// member with the invited role, signed in at once.
async fn accept_invitation(
    State(state): State<AppState>,
    client: ClientInfo,
    JsonObject(body): JsonObject,
) -> AppResult<Response> {
    let Acceptance { token, password: password_text, first_name, last_name } = Acceptance::parse(&body)?;
    // The token names its tenant; it is trusted once its hash matched the
    // invitation's (the store checks, and refuses a tenant that takes no
    // members, in the transaction that creates the user).
    let lookup = CredentialLookup::named_by_credential(token.tenant_id);
    let mut user = User::new(token.tenant_id, &token.email, &first_name, &last_name, Role::User);
    let hash = password::hash_password(&password_text)?;
    // Emits `user.created` (`via: "invitation"`) in the same transaction.
    let scope = match state.store.accept_invitation(&lookup, &token.email, &token.hash(), &mut user, &hash).await {
        Ok(scope) => scope,
        Err(MemberError::EmailTaken(_)) => {
            return Err(
                AppError::conflict("an account with this email already exists").with_details(json!({"field": "email"}))
            );
        }
        Err(MemberError::Other(e)) => return Err(e),
        Err(_) => return Err(invalid_invitation()),
    };
    let body = tokens::start_session(&state, &scope, &user, &client).await?;
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

async fn jwks(State(state): State<AppState>) -> Response {
    // Verifiers cache the key set; an hour keeps rotation responsive.
    ([(axum::http::header::CACHE_CONTROL, "public, max-age=3600")], Json(state.verifier.jwks().clone())).into_response()
}
