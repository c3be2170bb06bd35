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

pub mod mfa;
pub mod recovery;
pub mod sso;
mod throttle;
mod tokens;

use throttle::Gate;

use axum::{
    Json, Router,
    extract::State,
    http::StatusCode,
    routing::{get, post},
};
use serde::{Deserialize, Serialize};
use serde_json::json;
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
        ids::TenantId,
        mfa::ChallengePurpose,
        schema,
        tenant::{Tenant, TenantView, slugify, suffixed_slug},
        user::{NewPassword, PersonName, User, UserView},
        values::{Email, Hostname, Slug, Text},
    },
    error::FieldError,
    http::health_router,
    store::{members::MemberError, tenants::CreateTenantError},
    web::extract::{Body, OptionalBody},
};
use utoipa::openapi::{
    RefOr,
    schema::{
        AdditionalProperties, AllOfBuilder, KnownFormat, ObjectBuilder, OneOfBuilder, Schema, SchemaFormat, Type,
    },
};
use uuid::Uuid;

pub use tokens::{RefreshToken, TokenResponse, TokenType};

/// This group's part of the OpenAPI document (`shared::web::openapi`).
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(register, login, refresh, logout, me, accept_invitation, jwks),
    modifiers(&OptionalBodies),
    tags((name = "auth", description = "Sign-up, sign-in with rotating refresh tokens, sign-out, the caller's profile, accepting an invitation, and the public keys that verify access tokens"))
)]
pub struct ApiDoc;

/// Marks logout's body as optional: utoipa's way (`Option<Logout>`) would
/// also offer a JSON `null`, which is refused like any body that is not an
/// object.
struct OptionalBodies;

impl utoipa::Modify for OptionalBodies {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        shared::web::openapi::optional_post_body(openapi, "/v1/auth/logout");
    }
}

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
        .merge(mfa::routes())
        .merge(recovery::routes())
        .merge(sso::routes())
        .merge(health_router())
}

/// The answer to an invitation that cannot be accepted, whatever the reason.
fn invalid_invitation() -> AppError {
    AppError::invalid_token("the invitation is invalid, used or expired")
}

/// `POST /v1/auth/register` (seed 003): every bad field is named in one
/// 400; the rules between fields follow once each field is valid.
#[derive(Debug, eserde::Deserialize, utoipa::ToSchema)]
#[schema(description = "A sign-up: the owner's account and their new tenant. The password must not be the \
email address, and `password_confirm` must repeat it.")]
#[serde(deny_unknown_fields)]
struct Registration {
    /// The owner's email address; it signs them in.
    email: Email,
    #[eserde(compat)]
    password: NewPassword,
    password_confirm: Text<1, 1024>,
    first_name: PersonName,
    last_name: PersonName,
    /// The new tenant's name.
    tenant_name: Text<3, 255>,
    /// The tenant's own domain (seed 003).
    #[serde(default)]
    tenant_domain: Option<Hostname>,
    /// Derived from the name when left out (with a random suffix when that
    /// slug is taken); a slug that is sent and taken is a 409.
    #[serde(default)]
    tenant_slug: Option<Slug>,
}

impl Registration {
    /// The password is not the address, and is confirmed.
    fn check(&self) -> AppResult<()> {
        let mut errors = Vec::new();
        if let Some(problem) = password::password_problem(self.password.as_str(), self.email.as_str()) {
            errors.push(FieldError::new("password", problem));
        }
        if self.password.as_str() != self.password_confirm.as_str() {
            errors.push(FieldError::new("password_confirm", "must match password"));
        }
        if errors.is_empty() { Ok(()) } else { Err(AppError::validation(errors)) }
    }
}

/// A sign-up's answer: the owner signed in, and their new tenant.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Registered {
    #[serde(flatten)]
    pub session: TokenResponse,
    /// `provisioning` until the provisioner has run.
    pub tenant: TenantView,
}

/// Signs up: creates a tenant and its owner, signed in.
///
/// Seed 003's sign-up: the tenant (`provisioning` until the provisioner
/// made it `active`) and its owner are created in one transaction, which
/// also emits `tenant.created` and the owner's `user.created`. Sign-ups are
/// throttled per address.
#[utoipa::path(post, path = "/v1/auth/register", tag = "auth",
    request_body(content = Registration, example = json!({
        "email": "user@example.com",
        "password": "secure_password",
        "password_confirm": "secure_password",
        "first_name": "John",
        "last_name": "Doe",
        "tenant_name": "My Company",
        "tenant_domain": "mycompany.com"
    })),
    responses(
        (status = 201, description = "The owner, signed in, and the new tenant", body = Registered),
        (status = 409, description = "Conflict\n\n- `conflict`: an account with this email exists (`details.field`: `email`), or the `tenant_slug` sent is taken (`details.field`: `tenant_slug`)", body = shared::web::openapi::ApiError),
        (status = 429, description = "Too many requests\n\n- `rate_limited`: too many sign-ups from this address (`details.reason`: `too_many_attempts`, `details.retry_after_seconds`): wait `Retry-After` seconds", body = shared::web::openapi::ApiError),
        (status = 503, description = "Unavailable\n\n- `busy`: too many sign-ins at once: retry after `Retry-After` seconds", body = shared::web::openapi::ApiError,
            headers(("Retry-After" = i64, description = "Seconds to wait before retrying"))),
    ))]
async fn register(
    State(state): State<AppState>,
    client: ClientInfo,
    Body(new): Body<Registration>,
) -> AppResult<(StatusCode, Json<Registered>)> {
    new.check()?;
    // Every sign-up from an address counts: each hashes a password and may
    // create a tenant.
    if let Some(address) = throttle::address(&client) {
        Gate::sign_up(&state, address, &client).await?;
    }
    let password_hash = password::hash(new.password.as_str()).await?;
    let explicit_slug = new.tenant_slug.is_some();
    let mut slug = new.tenant_slug.clone().map_or_else(|| slugify(new.tenant_name.as_str()), Slug::into_inner);
    // A derived slug that is taken gets a random suffix, a few times; a slug
    // the caller chose is theirs to change, so that is a 409.
    for attempt in 0..4 {
        let owner_id = Uuid::now_v7();
        let mut tenant = Tenant::minimal(new.tenant_name.as_str(), &slug, new.email.as_str(), owner_id);
        tenant.domain = new.tenant_domain.clone().map(Hostname::into_inner);
        let mut owner =
            User::new(tenant.id, new.email.as_str(), new.first_name.as_str(), new.last_name.as_str(), Role::Owner);
        owner.id = owner_id;
        owner.created_at = tenant.created_at;
        let audit = AuditContext::user(owner.id, Some(owner.email.clone()), &client);
        match state.store.create_tenant_with_owner(&tenant, &owner, &password_hash, &audit).await {
            Ok(()) => {
                let scope = NewTenant::scope(tenant.id);
                // The sign-up stands whether or not the mail could be sent:
                // the owner can ask for another (`POST /v1/auth/email/verification`).
                if let Err(err) = recovery::send_verification(&state, &scope, &owner, &client).await {
                    tracing::warn!(error = %err, tenant_id = %tenant.id, "verification mail not sent");
                }
                let session = tokens::start_session(&state, &scope, &owner, &client).await?;
                return Ok((StatusCode::CREATED, Json(Registered { session, tenant: tenant.view() })));
            }
            Err(CreateTenantError::EmailTaken) => {
                return Err(AppError::conflict("an account with this email already exists")
                    .with_details(json!({"field": "email"})));
            }
            Err(CreateTenantError::SlugTaken) if !explicit_slug && attempt < 3 => {
                slug = suffixed_slug(new.tenant_name.as_str());
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

/// `POST /v1/auth/login`. Seed 003 sends `username` for the email. The
/// address is only looked up, so any text of an address's length will do:
/// a malformed one is refused like a wrong password.
#[derive(Debug, eserde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Login {
    #[serde(alias = "username")]
    email: Text<1, 254>,
    password: Text<1, 1024>,
    #[serde(default, rename = "tenant_id")]
    #[eserde(compat)]
    tenant_hint: Option<TenantId>,
}

/// Written by hand: `username` is an alias of `email` (serde's `alias`,
/// which utoipa does not see), and exactly one of the two is required.
impl utoipa::PartialSchema for Login {
    fn schema() -> RefOr<Schema> {
        let address = |what: &str| schema::string(1, 254).description(Some(what));
        let object = ObjectBuilder::new()
            .property(
                "email",
                address("The account's email address (any text of an address's length: it is only looked up)"),
            )
            .property("username", address("Seed 003's name for `email`: send one of the two"))
            .property("password", schema::string(1, 1024).format(Some(SchemaFormat::Custom("password".into()))))
            .property(
                "tenant_id",
                schema::nullable(
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)))
                        .description(Some("The account's tenant: another one is refused like a wrong password"))
                        .into(),
                ),
            )
            .required("password")
            .additional_properties(Some(AdditionalProperties::FreeForm(false)))
            .description(Some("An email address (or seed 003's `username`) and password"));
        one_of_required(object, "email", "username")
    }
}

impl utoipa::ToSchema for Login {}

/// `object`, with exactly one of `a` and `b` (a field and its alias: both
/// is serde's "duplicate field").
fn one_of_required(object: ObjectBuilder, a: &str, b: &str) -> RefOr<Schema> {
    AllOfBuilder::new()
        .item(object)
        .item(OneOfBuilder::new().item(ObjectBuilder::new().required(a)).item(ObjectBuilder::new().required(b)))
        .into()
}

/// A login's answer: the tokens, or a second step before them.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum LoginAnswer {
    /// Signed in.
    Tokens(TokenResponse),
    /// The user has MFA (`mfa_enrollment_required: false`: send a code to
    /// `POST /v1/auth/mfa/challenge`), or the tenant requires it and the
    /// user has none (`true`: enrol with the `mfa_token`).
    MfaRequired(mfa::MfaChallengeResponse),
}

/// Signs in with an email address and password.
///
/// Seeds 002 and 003's login: an access token (15 minutes), a refresh token
/// and the user. Attempts are throttled per account and per address; a
/// wrong address, a wrong password and a disabled account get the same
/// answer. Once the password matched, the tenant's
/// `configuration.security` applies: `ip_whitelisting` refuses other
/// addresses (403 `ip_not_allowed`); `sso_required` refuses passwords
/// (403 `sso_required`) except the tenant's owner's, the documented break
/// glass (audited as `break_glass_login`); a user with MFA gets a challenge
/// instead of tokens (`mfa_required`, an `mfa_token` for
/// `POST /v1/auth/mfa/challenge`), and in a tenant with `mfa_required` a
/// user without MFA gets an enrolment token (`mfa_enrollment_required`)
/// that opens `POST /v1/auth/mfa/setup` and `/verify`. A user with MFA
/// keeps the account's throttle strikes until the code passes.
#[utoipa::path(post, path = "/v1/auth/login", tag = "auth",
    request_body(content = Login, examples(
        ("seed_002" = (summary = "Seed 002", value = json!({
            "email": "admin.rectorat@minesup.cm",
            "password": "minesup2024"
        }))),
        ("seed_003" = (summary = "Seed 003", value = json!({
            "email": "user@example.com",
            "password": "secure_password"
        }))),
        ("seed_003_username" = (summary = "Seed 003, with `username`", value = json!({
            "username": "user@example.com",
            "password": "your_password"
        }))),
    )),
    responses(
        (status = 200, description = "Signed in (the tokens), or a second step first (`mfa_required`: an `mfa_token`)", body = LoginAnswer),
        (status = 401, description = "Not authenticated\n\n- `unauthorized`: invalid email or password (also for a disabled account, or a `tenant_id` that is not the account's)", body = shared::web::openapi::ApiError),
        (status = 403, description = "Forbidden\n\n- `tenant_inactive`: the account's tenant is suspended or deleted\n- `ip_not_allowed`: the tenant's IP allow-list (`configuration.security.ip_whitelisting`) does not hold the caller's address\n- `sso_required`: the tenant signs its members in through SSO only (`details.initiate`: `POST /v1/auth/sso/{provider}/initiate`)", body = shared::web::openapi::ApiError),
        (status = 429, description = "Too many requests\n\n- `rate_limited`: too many failed attempts for this account or from this address (`details.reason`: `too_many_attempts`, `details.retry_after_seconds`): wait `Retry-After` seconds", body = shared::web::openapi::ApiError),
        (status = 503, description = "Unavailable\n\n- `busy`: too many sign-ins at once: retry after `Retry-After` seconds", body = shared::web::openapi::ApiError,
            headers(("Retry-After" = i64, description = "Seconds to wait before retrying"))),
    ))]
async fn login(
    State(state): State<AppState>,
    client: ClientInfo,
    Body(Login { email, password, tenant_hint }): Body<Login>,
) -> AppResult<Json<LoginAnswer>> {
    let (email, password) = (email.as_str(), password.as_str());
    let refused = || AppError::unauthorized("invalid email or password");
    // Throttled per account and per address before anything is looked up,
    // so a locked-out guess costs one read and no hash.
    let gate = Gate::open(&state, Some(email), throttle::address(&client), &client).await?;
    let Some(claim) = state.store.find_email_owner(email).await? else {
        password::verify_dummy(password).await?;
        gate.failed(&state, &client).await?;
        return Err(refused());
    };
    // Where our own email index says the account lives; nothing is answered
    // from it before the password matched.
    let scope = claim.scope();
    let Some((user, hash)) = state.store.get_user_with_secret(&scope, claim.user_id).await? else {
        password::verify_dummy(password).await?;
        gate.failed(&state, &client).await?;
        return Err(refused());
    };
    if !password::verify(password, &hash).await?
        || !user.is_active
        || tenant_hint.is_some_and(|TenantId(t)| t != user.tenant_id)
    {
        shared::metrics::record_failed_sign_in(user.tenant_id);
        gate.failed(&state, &client).await?;
        return Err(refused());
    }
    let (_, security) = mfa::sign_in_tenant(&state, &scope, &user, &client).await?;
    if security.sso_required == Some(true) {
        if user.role != Role::Owner {
            mfa::audit_sign_in(&state, &scope, &user, &client, "login_refused", json!({"reason": "sso_required"}))
                .await?;
            return Err(AppError::forbidden(
                "sso_required",
                "this organization signs its members in through SSO only: use POST /v1/auth/sso/{provider}/initiate",
            )
            .with_details(json!({
                "initiate": "POST /v1/auth/sso/{provider}/initiate",
                "tenant_id": scope.tenant_id(),
                "policy": "configuration.security.sso_required",
            })));
        }
        // The owner keeps a password as the way back in when the IdP is
        // down or misconfigured; every such sign-in is on the record.
        mfa::audit_sign_in(&state, &scope, &user, &client, "break_glass_login", json!({"reason": "sso_required"}))
            .await?;
    }
    let has_mfa = state.store.get_mfa(&scope, user.id).await?.is_some_and(|m| m.enrollment.is_enabled());
    if has_mfa {
        // The account's strikes stay until the code passes: a right
        // password alone must not reset the guesses at the second factor.
        let challenge = mfa::issue_challenge(&state, &scope, &user, ChallengePurpose::SignIn, &client).await?;
        return Ok(Json(LoginAnswer::MfaRequired(challenge)));
    }
    gate.succeeded(&state).await?;
    if security.mfa_required == Some(true) {
        let challenge = mfa::issue_challenge(&state, &scope, &user, ChallengePurpose::Enrollment, &client).await?;
        return Ok(Json(LoginAnswer::MfaRequired(challenge)));
    }
    state.store.record_login(&scope, user.id).await?;
    Ok(Json(LoginAnswer::Tokens(tokens::start_session(&state, &scope, &user, &client).await?)))
}

/// `POST /v1/auth/refresh`: the refresh token (`refresh_token`, or seed
/// 003's `refresh`).
#[derive(Debug, eserde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Refresh {
    #[serde(alias = "refresh")]
    refresh_token: Text<1, 512>,
}

/// Written by hand: `refresh` is an alias of `refresh_token`.
impl utoipa::PartialSchema for Refresh {
    fn schema() -> RefOr<Schema> {
        let object = ObjectBuilder::new()
            .property("refresh_token", schema::string(1, 512).description(Some("The refresh token of the last answer")))
            .property(
                "refresh",
                schema::string(1, 512).description(Some("Seed 003's name for `refresh_token`: send one of the two")),
            )
            .additional_properties(Some(AdditionalProperties::FreeForm(false)))
            .description(Some("The refresh token (`refresh_token`, or seed 003's `refresh`)"));
        one_of_required(object, "refresh_token", "refresh")
    }
}

impl utoipa::ToSchema for Refresh {}

/// `POST /v1/auth/logout`'s optional body: another refresh token of the
/// caller's to revoke.
#[derive(Debug, eserde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Logout {
    #[serde(default, alias = "refresh")]
    refresh_token: Option<Text<1, 512>>,
}

/// Written by hand: `refresh` is an alias of `refresh_token`; at most one
/// of them.
impl utoipa::PartialSchema for Logout {
    fn schema() -> RefOr<Schema> {
        let token = |what: &str| schema::nullable(schema::string(1, 512).description(Some(what)).into());
        ObjectBuilder::new()
            .property("refresh_token", token("Another refresh token of the caller's to revoke"))
            .property("refresh", token("Seed 003's name for `refresh_token`: send at most one of the two"))
            .additional_properties(Some(AdditionalProperties::FreeForm(false)))
            .max_properties(Some(1))
            .description(Some("Optional: another of the caller's refresh tokens, whose sign-in is revoked too"))
            .into()
    }
}

impl utoipa::ToSchema for Logout {}

/// Trades a refresh token for a new token pair.
///
/// The refresh token is single use: the answer carries its successor.
/// Presenting a token that was already used revokes the whole sign-in (one
/// of its two holders is not the user).
#[utoipa::path(post, path = "/v1/auth/refresh", tag = "auth",
    request_body(content = Refresh, example = json!({"refresh": "your_refresh_token"})),
    responses(
        (status = 200, description = "A new token pair", body = TokenResponse),
        (status = 401, description = "Not authenticated\n\n- `invalid_token`: the refresh token is invalid, used or revoked, or its user is disabled\n- `token_expired`: the sign-in is older than its lifetime (30 days, or the tenant's `session_timeout_minutes`): sign in again\n- `unauthorized`: the tenant no longer exists", body = shared::web::openapi::ApiError),
        (status = 403, description = "Forbidden\n\n- `tenant_inactive`: the tenant is suspended or deleted\n- `ip_not_allowed`: the request comes from an address outside the tenant's `configuration.security.ip_whitelisting`", body = shared::web::openapi::ApiError),
    ))]
async fn refresh(
    State(state): State<AppState>,
    client: ClientInfo,
    Body(body): Body<Refresh>,
) -> AppResult<Json<TokenResponse>> {
    Ok(Json(tokens::rotate(&state, body.refresh_token.as_str(), &client).await?))
}

/// Signs out: revokes the caller's sign-in.
///
/// Revokes the caller's refresh-token family (and, if sent, the family of the
/// given refresh token, when it is the caller's own). Access tokens already
/// issued stay valid until they expire (at most 15 minutes). The body may be
/// left out. People only: API keys are refused.
#[utoipa::path(post, path = "/v1/auth/logout", tag = "auth", security(("bearer" = ["user"])),
    request_body(content = Logout, example = json!({"refresh_token": "rt.0190f3a4-6b1e-7c2d-8e9f-0a1b2c3d4e5f.0190f3a4-6b1e-7c2d-8e9f-0a1b2c3d4e60.c2VjcmV0"})),
    responses((status = 204, description = "Signed out")))]
async fn logout(
    State(state): State<AppState>,
    principal: Principal,
    audit: AuditContext,
    body: Result<OptionalBody<Logout>, AppError>,
) -> AppResult<StatusCode> {
    let SignedIn { session_id, scope } = principal.require_session("session")?;
    let OptionalBody(body) = body?;
    state.store.revoke_session(&scope, session_id, "logout", &audit).await?;
    if let Some(body) = body
        && let Some(token) = body.refresh_token.as_ref().and_then(|raw| RefreshToken::parse(raw.as_str()))
        && token.tenant_id == scope.tenant_id()
        && let Some(session) = state.store.get_session(&scope, token.session_id).await?
        && session.user_id == principal.user_id()
    {
        state.store.revoke_session(&scope, token.session_id, "logout", &audit).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v1/auth/me`: the caller as a user, with their home tenant.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Me {
    #[serde(flatten)]
    pub user: UserView,
    /// The tenant the user belongs to; `null` if it is gone.
    pub tenant: Option<TenantSummary>,
    /// The tenant this request acts in: the user's own, or the one a
    /// platform admin named with `X-Tenant-ID`.
    pub acting_tenant_id: Uuid,
}

/// The few fields of a tenant a profile shows.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TenantSummary {
    pub id: Uuid,
    pub name: String,
    pub slug: String,
    pub status: String,
    pub plan: String,
}

impl From<Tenant> for TenantSummary {
    fn from(tenant: Tenant) -> Self {
        Self { id: tenant.id, name: tenant.name, slug: tenant.slug, status: tenant.status, plan: tenant.plan }
    }
}

/// The caller's profile and tenant.
///
/// People only: API keys are refused. `acting_tenant_id` is the tenant a
/// platform admin acts in with `X-Tenant-ID`.
#[utoipa::path(get, path = "/v1/auth/me", tag = "auth", security(("bearer" = ["user"])),
    responses((status = 200, description = "The caller", body = Me)))]
async fn me(State(state): State<AppState>, principal: Principal) -> AppResult<Json<Me>> {
    let SignedIn { scope: home, .. } = principal.require_session("user")?;
    let user = state
        .store
        .get_user(&home, principal.user_id())
        .await?
        .filter(|u| u.is_active)
        .ok_or_else(|| AppError::invalid_token("the account no longer exists or is disabled"))?;
    let tenant = state.store.get_tenant(&home).await?.map(|(t, _)| TenantSummary::from(t));
    Ok(Json(Me { user: user.view(), tenant, acting_tenant_id: principal.tenant_id() }))
}

/// An invitation's one-time token as a request field: refused at the edge
/// when it is not one (whether it is still valid is the store's to say).
struct InvitationTokenField(InvitationToken);

shared::inline_schema!(
    InvitationTokenField,
    "InvitationToken",
    string(1, 1024)
        .pattern(Some("^inv\\.[^.]+\\.[A-Za-z0-9_-]*\\.[^.]*$"))
        .description(Some("The one-time token of the invitation email (`inv.<tenant>.<email>.<secret>`)"))
);

impl<'de> Deserialize<'de> for InvitationTokenField {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Text::<1, 1024>::deserialize(deserializer)?;
        InvitationToken::parse(raw.as_str())
            .map(InvitationTokenField)
            .ok_or_else(|| serde::de::Error::custom("is not an invitation token"))
    }
}

/// `POST /v1/auth/invitations/accept`.
#[derive(eserde::Deserialize, utoipa::ToSchema)]
#[schema(
    description = "An accepted invitation: its token, and the invitee's password (not their email address) and names."
)]
#[serde(deny_unknown_fields)]
struct Acceptance {
    #[eserde(compat)]
    token: InvitationTokenField,
    #[eserde(compat)]
    password: NewPassword,
    first_name: PersonName,
    last_name: PersonName,
}

/// Accepts an invitation: the invitee becomes a member, signed in.
///
/// Seed 000's invitations: the invitee sets a password and becomes an
/// active member with the invited role, signed in at once, as the tenant's
/// policies allow: from an address its allow-list admits, not at all with
/// a password when it signs in through SSO only (the member is made, then
/// 403 `sso_required`), after enrolling MFA when it requires MFA. A
/// verification mail follows (the inviting admin saw the token too, so
/// accepting does not prove the mailbox). Acceptances are throttled per
/// address like sign-ups.
#[utoipa::path(post, path = "/v1/auth/invitations/accept", tag = "auth",
    request_body(content = Acceptance, example = json!({
        "token": "inv.0190f3a4-6b1e-7c2d-8e9f-0a1b2c3d4e5f.bmV3LXVzZXIxQHRlY2hzdGFydC5pbw.c2VjcmV0",
        "password": "a long passphrase",
        "first_name": "Ada",
        "last_name": "Lovelace"
    })),
    responses(
        (status = 201, description = "The new member, signed in; or, when the tenant requires MFA, an enrolment `mfa_token` (`mfa_enrollment_required: true`) to set it up first", body = LoginAnswer),
        (status = 401, description = "Not authenticated\n\n- `invalid_token`: the invitation is invalid, used, revoked or expired, or its tenant takes no members", body = shared::web::openapi::ApiError),
        (status = 403, description = "Forbidden\n\n- `sso_required`: the member was made, and signs in through SSO only\n- `ip_not_allowed`: the tenant's IP allow-list does not hold the caller's address (the member was made)\n- `tenant_inactive`: the tenant is suspended or deleted", body = shared::web::openapi::ApiError),
        (status = 409, description = "Conflict\n\n- `conflict`: an account with this email exists (`details.field`: `email`)", body = shared::web::openapi::ApiError),
        (status = 429, description = "Too many requests\n\n- `rate_limited`: too many sign-ups from this address (`details.reason`: `too_many_attempts`, `details.retry_after_seconds`): wait `Retry-After` seconds", body = shared::web::openapi::ApiError),
        (status = 503, description = "Unavailable\n\n- `busy`: too many sign-ins at once: retry after `Retry-After` seconds", body = shared::web::openapi::ApiError,
            headers(("Retry-After" = i64, description = "Seconds to wait before retrying"))),
    ))]
async fn accept_invitation(
    State(state): State<AppState>,
    client: ClientInfo,
    Body(acceptance): Body<Acceptance>,
) -> AppResult<(StatusCode, Json<LoginAnswer>)> {
    let Acceptance { token: InvitationTokenField(token), password: password_text, first_name, last_name } = acceptance;
    // Acceptances from an address count like sign-ups (each hashes a
    // password; a guessed token would be a way in).
    if let Some(address) = throttle::address(&client) {
        Gate::sign_up(&state, address, &client).await?;
    }
    if let Some(problem) = password::password_problem(password_text.as_str(), &token.email) {
        return Err(AppError::invalid_field("password", problem));
    }
    // The token names its tenant; it is trusted once its hash matched the
    // invitation's (the store checks, and refuses a tenant that takes no
    // members, in the transaction that creates the user).
    let lookup = CredentialLookup::named_by_credential(token.tenant_id);
    // Not marked verified: the inviting admin saw the token too, so holding
    // it does not prove the mailbox; a verification mail follows.
    let mut user = User::new(token.tenant_id, &token.email, first_name.as_str(), last_name.as_str(), Role::User);
    let hash = password::hash(password_text.as_str()).await?;
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
    if let Err(err) = recovery::send_verification(&state, &scope, &user, &client).await {
        tracing::warn!(error = %err, tenant_id = %scope.tenant_id(), "verification mail not sent");
    }
    // The member exists now; signing in follows the tenant's policies as a
    // password login does (allow-list, SSO only, MFA enrolment first).
    let (_, security) = mfa::sign_in_tenant(&state, &scope, &user, &client).await?;
    // An invited owner (a tenant the platform made) is the break-glass
    // account, as at login.
    if security.sso_required == Some(true) && user.role != Role::Owner {
        mfa::audit_sign_in(&state, &scope, &user, &client, "login_refused", json!({"reason": "sso_required"})).await?;
        return Err(AppError::forbidden(
            "sso_required",
            "you are a member now; this organization signs its members in through SSO only: use POST /v1/auth/sso/{provider}/initiate",
        )
        .with_details(json!({
            "initiate": "POST /v1/auth/sso/{provider}/initiate",
            "tenant_id": scope.tenant_id(),
            "policy": "configuration.security.sso_required",
        })));
    }
    if security.mfa_required == Some(true) {
        let challenge = mfa::issue_challenge(&state, &scope, &user, ChallengePurpose::Enrollment, &client).await?;
        return Ok((StatusCode::CREATED, Json(LoginAnswer::MfaRequired(challenge))));
    }
    let session = tokens::start_session(&state, &scope, &user, &client).await?;
    Ok((StatusCode::CREATED, Json(LoginAnswer::Tokens(session))))
}

/// `GET /.well-known/jwks.json`'s answer, as `jsonwebtoken` writes it: an
/// RFC 7517 key set (the schema only).
#[derive(utoipa::ToSchema)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

/// One public key: P-256, for ES256 signatures.
#[derive(utoipa::ToSchema)]
pub struct Jwk {
    /// `EC`.
    #[schema(schema_with = key_type)]
    pub kty: String,
    /// `P-256`.
    #[schema(schema_with = curve)]
    pub crv: String,
    /// The point's x coordinate, base64url.
    pub x: String,
    /// The point's y coordinate, base64url.
    pub y: String,
    /// The key's id: an access token's header names it.
    pub kid: String,
    /// `sig`: the key verifies signatures.
    #[schema(rename = "use", schema_with = key_use)]
    pub public_key_use: String,
    /// `ES256`.
    #[schema(schema_with = algorithm)]
    pub alg: String,
}

fn constant(value: &str) -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String).enum_values(Some([value]))
}

fn key_type() -> ObjectBuilder {
    constant("EC")
}

fn curve() -> ObjectBuilder {
    constant("P-256")
}

fn key_use() -> ObjectBuilder {
    constant("sig")
}

fn algorithm() -> ObjectBuilder {
    constant("ES256")
}

/// The public keys that verify access tokens (RFC 7517).
///
/// Any service (or API Gateway's JWT authorizer) verifies our ES256 access
/// tokens with these keys, picking one by the token's `kid`. More than one
/// key is listed during a key rotation. Cached for an hour.
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "auth",
    responses((status = 200, description = "The key set", body = Jwks,
        headers(("Cache-Control" = String, description = "`public, max-age=3600`")))))]
async fn jwks(
    State(state): State<AppState>,
) -> ([(axum::http::HeaderName, &'static str); 1], Json<shared::auth::jwt::KeySet>) {
    // Verifiers cache the key set; an hour keeps rotation responsive.
    ([(axum::http::header::CACHE_CONTROL, "public, max-age=3600")], Json(state.verifier.jwks().clone()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::web::extract::parse_body;

    fn fields(err: AppError) -> Vec<String> {
        err.invalid_fields()
    }

    #[test]
    fn login_takes_seed_002s_username_for_the_email() {
        let login: Login = parse_body(br#"{"username": "a@b.co", "password": "x"}"#).expect("valid");
        assert_eq!(login.email.as_str(), "a@b.co");
        // The alias holds in the pass that names every bad field too.
        let err = parse_body::<Login>(br#"{"username": "a@b.co", "password": 5}"#).expect_err("refused");
        assert_eq!(fields(err), ["password"]);
        let err = parse_body::<Login>(br#"{"email": null, "password": "x"}"#).expect_err("refused");
        assert_eq!(fields(err), ["email"]);
        let err = parse_body::<Login>(b"{}").expect_err("refused");
        assert_eq!(fields(err), ["email", "password"]);
    }

    /// The login's 200 is one of two shapes, and the document says so.
    #[test]
    fn the_login_answers_tokens_or_an_mfa_challenge_as_one_of() {
        let schema = serde_json::to_value(<LoginAnswer as utoipa::PartialSchema>::schema()).expect("schema");
        let refs: Vec<&str> =
            schema["oneOf"].as_array().expect("oneOf").iter().filter_map(|s| s["$ref"].as_str()).collect();
        assert_eq!(refs, ["#/components/schemas/TokenResponse", "#/components/schemas/MfaChallengeResponse"]);
    }

    #[test]
    fn refresh_takes_seed_002s_refresh_for_the_token() {
        let body: Refresh = parse_body(br#"{"refresh": "rt.x"}"#).expect("valid");
        assert_eq!(body.refresh_token.as_str(), "rt.x");
        let err = parse_body::<Refresh>(b"{}").expect_err("refused");
        assert_eq!(fields(err), ["refresh_token"]);
        let body: Logout = parse_body(b"{}").expect("valid");
        assert!(body.refresh_token.is_none());
    }

    /// The bodies the OpenAPI document shows (seed 003's sign-up, an
    /// acceptance) are accepted as they stand.
    #[test]
    fn the_documented_bodies_are_accepted() {
        let seed: Registration = parse_body(
            br#"{"email": "user@example.com", "password": "secure_password", "password_confirm": "secure_password",
                 "first_name": "John", "last_name": "Doe", "tenant_name": "My Company", "tenant_domain": "mycompany.com"}"#,
        )
        .expect("seed 003's sign-up");
        seed.check().expect("its rules hold");
        let acceptance: Acceptance = parse_body(
            br#"{"token": "inv.0190f3a4-6b1e-7c2d-8e9f-0a1b2c3d4e5f.bmV3LXVzZXIxQHRlY2hzdGFydC5pbw.c2VjcmV0",
                 "password": "a long passphrase", "first_name": "Ada", "last_name": "Lovelace"}"#,
        )
        .expect("the documented acceptance");
        assert_eq!(acceptance.token.0.email, "new-user1@techstart.io");
        let body: Logout = parse_body(
            br#"{"refresh_token": "rt.0190f3a4-6b1e-7c2d-8e9f-0a1b2c3d4e5f.0190f3a4-6b1e-7c2d-8e9f-0a1b2c3d4e60.c2VjcmV0"}"#,
        )
        .expect("the documented logout");
        assert!(body.refresh_token.as_ref().and_then(|t| RefreshToken::parse(t.as_str())).is_some());
        // Both names of one field are a duplicate, as the schemas say.
        assert!(parse_body::<Refresh>(br#"{"refresh": "a", "refresh_token": "b"}"#).is_err());
        assert!(parse_body::<Login>(br#"{"email": "a@b.co", "username": "a@b.co", "password": "x"}"#).is_err());
        assert!(parse_body::<Logout>(br#"{"refresh": null, "refresh_token": null}"#).is_err());
    }

    #[test]
    fn registration_names_each_bad_field_then_checks_the_confirmation() {
        let err = parse_body::<Registration>(
            br#"{"email": "nope", "password": "short", "password_confirm": "x", "tenant_name": "ab", "tenant_slug": "A B"}"#,
        )
        .expect_err("refused");
        let mut names = fields(err);
        names.sort();
        assert_eq!(names, ["email", "first_name", "last_name", "password", "tenant_name", "tenant_slug"]);
        let new: Registration = parse_body(
            br#"{"email": "Alice@Example.com", "password": "alice@example.com", "password_confirm": "other", "first_name": "A",
                 "last_name": "B", "tenant_name": "Acme"}"#,
        )
        .expect("each field is valid");
        assert_eq!(new.email.as_str(), "alice@example.com");
        let mut names = fields(new.check().expect_err("refused"));
        names.sort();
        assert_eq!(names, ["password", "password_confirm"]);
    }
}
