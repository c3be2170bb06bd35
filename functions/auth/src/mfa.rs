//! TOTP multi-factor authentication: setup, verify, the sign-in challenge, disable, backup codes.
//!
//! | route | handler |
//! |---|---|
//! | `GET /v1/auth/mfa` | [`mfa_status`] |
//! | `POST /v1/auth/mfa/setup` | [`mfa_setup`] |
//! | `POST /v1/auth/mfa/verify` | [`mfa_verify`] |
//! | `POST /v1/auth/mfa/challenge` | [`mfa_challenge`] |
//! | `POST /v1/auth/mfa/disable` | [`mfa_disable`] |
//! | `POST /v1/auth/mfa/backup-codes` | [`mfa_backup_codes`] |
//!
//! A password sign-in of a user with MFA answers a challenge instead of
//! tokens (`crate::login`): an `mfa_token` (`mfa.<tenant>.<challenge>.<secret>`,
//! five minutes, five codes at most) that only `POST /v1/auth/mfa/challenge`
//! takes. In a tenant whose `configuration.security.mfa_required` is set, a
//! user without MFA gets an enrolment token instead (ten minutes), which
//! setup and verify take in place of an access token
//! (`Authorization: Bearer mfa....`); verify then answers the tokens.
//!
//! The rules (time steps, code shapes, tokens) are `shared::domain::mfa`;
//! the items `shared::store::mfa`; the HMAC-SHA1 of RFC 6238, the
//! `otpauth://` URI and the QR code are `totp-rs`'s. Each change (enabled,
//! disabled, new backup codes) is mailed to the account once it committed
//! (`crate::recovery::send_mfa_notice`), so a change made by someone else
//! is noticed.

use axum::{
    Json, Router,
    extract::{FromRequestParts, State},
    http::{StatusCode, request::Parts},
    routing::{get, post},
};
use serde::Serialize;
use serde_json::json;
use shared::mail::MfaChange;
use shared::{
    AppError, AppResult, AppState,
    audit::{AuditContext, ClientInfo},
    auth::{Principal, SignedIn, TenantScope, proofs::CredentialLookup},
    domain::{
        audit::Change,
        mfa::{
            BackupCode, ChallengePurpose, CodeKind, DIGITS, ISSUER, MAX_CHALLENGE_ATTEMPTS, MfaChallenge, MfaCode,
            MfaEnrollment, MfaMethod, MfaStatusView, MfaToken, RECOVERY_INSTRUCTIONS, STEP_SECONDS, TotpSecret,
            WINDOW_STEPS, matching_step,
        },
        tenant::{ConfigSecurity, Tenant},
        user::User,
        values::Text,
    },
    store::mfa::{CodeProof, MfaError, StoredMfa, backup_code_hash, backup_code_hash_candidates, totp_secret_context},
    web::{extract::Body, principal::Fresh},
};
use totp_rs::{Algorithm, TOTP};

use crate::{
    throttle::{self, Gate},
    tokens::{self, TokenResponse},
};

/// This part of the auth group's OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(mfa_status, mfa_setup, mfa_verify, mfa_challenge, mfa_disable, mfa_backup_codes),
    tags((name = "mfa", description = "Multi-factor authentication (TOTP) and backup codes"))
)]
pub struct ApiDoc;

/// These routes; [`crate::routes`] merges them.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/auth/mfa", get(mfa_status))
        .route("/v1/auth/mfa/setup", post(mfa_setup))
        .route("/v1/auth/mfa/verify", post(mfa_verify))
        .route("/v1/auth/mfa/challenge", post(mfa_challenge))
        .route("/v1/auth/mfa/disable", post(mfa_disable))
        .route("/v1/auth/mfa/backup-codes", post(mfa_backup_codes))
}

const RESOURCE: &str = "mfa";

/// RFC 6238 with the domain's parameters; the issuer and account only
/// label the `otpauth://` URI.
fn totp(secret: &TotpSecret, account: &str) -> TOTP {
    TOTP::new_unchecked(
        Algorithm::SHA1,
        DIGITS,
        WINDOW_STEPS as u8,
        STEP_SECONDS as u64,
        secret.as_bytes().to_vec(),
        Some(ISSUER.to_owned()),
        account.to_owned(),
    )
}

fn code_at(totp: &TOTP, step: i64) -> String {
    totp.generate(u64::try_from(step * STEP_SECONDS).unwrap_or_default())
}

/// The answer to a code that proves nothing, to a signed-in caller.
fn wrong_code() -> AppError {
    AppError::new(StatusCode::BAD_REQUEST, "invalid_mfa_code", "the code is wrong, expired or already used")
        .with_details(json!({"field": "code"}))
}

/// The answer to a wrong code on a sign-in challenge.
fn wrong_challenge_code(attempts: i64) -> AppError {
    let remaining = (MAX_CHALLENGE_ATTEMPTS - attempts).max(0);
    let message = if remaining == 0 {
        "the code is wrong, expired or already used; this MFA token is used up: sign in again".to_owned()
    } else {
        format!("the code is wrong, expired or already used; {remaining} attempts left")
    };
    AppError::new(StatusCode::UNAUTHORIZED, "invalid_mfa_code", message)
        .with_details(json!({"field": "code", "attempts_remaining": remaining}))
}

fn invalid_mfa_token() -> AppError {
    AppError::invalid_token("the MFA token is invalid, used up or expired: sign in again")
}

fn not_enabled() -> AppError {
    AppError::conflict("MFA is not enabled for this account").with_details(json!({"reason": "mfa_not_enabled"}))
}

/// Who may enrol: a signed-in person, or the holder of an enrolment
/// `mfa_token` (a sign-in stopped by the tenant's `mfa_required`).
pub enum PrincipalOrEnrollment {
    Principal(Principal),
    Enrollment(OpenChallenge),
}

/// A verified `mfa_token`: its tenant, its challenge, its user.
pub struct OpenChallenge {
    scope: TenantScope,
    challenge: MfaChallenge,
    user: User,
}

impl FromRequestParts<AppState> for PrincipalOrEnrollment {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let bearer = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim());
        match bearer {
            Some(token) if token.starts_with("mfa.") => {
                Ok(PrincipalOrEnrollment::Enrollment(open_challenge(state, token, ChallengePurpose::Enrollment).await?))
            }
            _ => Ok(PrincipalOrEnrollment::Principal(Principal::from_request_parts(parts, state).await?)),
        }
    }
}

/// The challenge a presented `mfa_token` opens, if it is one for `purpose`,
/// unexpired, with attempts left, of an active user.
async fn open_challenge(state: &AppState, raw: &str, purpose: ChallengePurpose) -> AppResult<OpenChallenge> {
    let token = MfaToken::parse(raw).ok_or_else(invalid_mfa_token)?;
    // The token names its tenant and challenge; trusted once its hash
    // matched the challenge's.
    let lookup = CredentialLookup::named_by_credential(token.tenant_id);
    let challenge =
        state.store.mfa_challenge_for_token(&lookup, token.challenge_id).await?.ok_or_else(invalid_mfa_token)?;
    let scope = lookup.verified(&token.hash(), &challenge.token_hash).ok_or_else(invalid_mfa_token)?;
    if challenge.is_expired(chrono::Utc::now().timestamp()) || challenge.attempts >= MAX_CHALLENGE_ATTEMPTS {
        return Err(invalid_mfa_token());
    }
    if challenge.purpose != purpose {
        return Err(AppError::invalid_token(match purpose {
            ChallengePurpose::SignIn => "this MFA token is for enrolling (POST /v1/auth/mfa/setup), not a challenge",
            ChallengePurpose::Enrollment => "this MFA token is for POST /v1/auth/mfa/challenge only",
        }));
    }
    let user =
        state.store.get_user(&scope, challenge.user_id).await?.filter(|u| u.is_active).ok_or_else(invalid_mfa_token)?;
    // A password reset revokes every session; a sign-in that had passed the
    // old password and waits for its second factor is one too.
    if user.password_changed_at.is_some_and(|changed| changed >= challenge.created_at) {
        return Err(invalid_mfa_token());
    }
    Ok(OpenChallenge { scope, challenge, user })
}

/// The signed-in person and their user record (people only).
async fn signed_in_user(state: &AppState, principal: &Principal) -> AppResult<(TenantScope, User)> {
    let SignedIn { scope, .. } = principal.require_session(RESOURCE)?;
    let user = state
        .store
        .get_user(&scope, principal.user_id())
        .await?
        .filter(|u| u.is_active)
        .ok_or_else(|| AppError::invalid_token("the account no longer exists or is disabled"))?;
    Ok((scope, user))
}

/// The user's enabled MFA, or 409.
async fn enabled_mfa(state: &AppState, scope: &TenantScope, user_id: uuid::Uuid) -> AppResult<StoredMfa> {
    state.store.get_mfa(scope, user_id).await?.filter(|m| m.enrollment.is_enabled()).ok_or_else(not_enabled)
}

fn open_secret(state: &AppState, scope: &TenantScope, stored: &StoredMfa) -> AppResult<TotpSecret> {
    let context = totp_secret_context(scope, stored.enrollment.user_id);
    Ok(TotpSecret::from_bytes(state.keys.sealing.open(&context, &stored.secret_nonce, &stored.secret_sealed)?))
}

/// What a typed code proves against the user's enrolment, if anything: a
/// TOTP step within the window and after the last one used, or an unused
/// backup code. The store checks it again when it is spent.
fn prove(state: &AppState, scope: &TenantScope, stored: &StoredMfa, code: &MfaCode) -> AppResult<Option<CodeProof>> {
    match code {
        MfaCode::Totp(typed) => {
            let totp = totp(&open_secret(state, scope, stored)?, "");
            let now = chrono::Utc::now().timestamp();
            Ok(matching_step(typed, now, stored.enrollment.last_step, |step| code_at(&totp, step)).map(CodeProof::Step))
        }
        MfaCode::Backup(typed) => {
            let candidates = backup_code_hash_candidates(&state.keys.sealing, scope, stored.enrollment.user_id, typed)?;
            Ok(candidates
                .into_iter()
                .find(|hash| stored.enrollment.backup_codes.contains_key(hash))
                .map(CodeProof::BackupCode))
        }
    }
}

/// A fresh set of backup codes and their keyed hashes.
fn new_backup_codes(
    state: &AppState,
    scope: &TenantScope,
    user_id: uuid::Uuid,
) -> AppResult<(Vec<String>, Vec<String>)> {
    let ring = &state.keys.sealing;
    let codes = BackupCode::generate_set();
    let hashes = codes.iter().map(|c| backup_code_hash(ring, scope, user_id, c)).collect::<AppResult<Vec<_>>>()?;
    Ok((codes.iter().map(|c| c.as_str().to_owned()).collect(), hashes))
}

/// The tenant a sign-in enters, if its members may sign in from here: not
/// suspended or deleted, and the caller's address inside its
/// `ip_whitelisting` (a refusal is audited). Called once the password (or
/// the token) matched, so a guess learns nothing of the tenant's policy.
pub(crate) async fn sign_in_tenant(
    state: &AppState,
    scope: &TenantScope,
    user: &User,
    client: &ClientInfo,
) -> AppResult<(Tenant, ConfigSecurity)> {
    let tenant = match state.store.get_tenant(scope).await? {
        Some((tenant, _)) if tenant.status == "inactive" || tenant.status == "suspended" => {
            return Err(AppError::forbidden("tenant_inactive", format!("the tenant is {}", tenant.status)));
        }
        Some((tenant, _)) => tenant,
        None => return Err(AppError::unauthorized("invalid email or password")),
    };
    let security = ConfigSecurity::of(&tenant).unwrap_or_default();
    if !security.admits(client.ip_address.as_deref()) {
        audit_sign_in(state, scope, user, client, "login_refused", json!({"reason": "ip_not_allowed"})).await?;
        return Err(AppError::forbidden(
            "ip_not_allowed",
            "sign-in from this address is not allowed: the tenant admits only the addresses in its IP allow-list",
        )
        .with_details(json!({"ip_address": client.ip_address, "policy": "configuration.security.ip_whitelisting"})));
    }
    Ok((tenant, security))
}

/// An audit entry about a user's sign-in.
pub(crate) async fn audit_sign_in(
    state: &AppState,
    scope: &TenantScope,
    user: &User,
    client: &ClientInfo,
    action: &'static str,
    values: serde_json::Value,
) -> AppResult<()> {
    let change = Change {
        action,
        resource_type: "user",
        resource_id: user.id.to_string(),
        old_values: json!({}),
        new_values: values,
    };
    state.store.record_audit(scope, &AuditContext::user(user.id, Some(user.email.clone()), client), change).await
}

/// A password sign-in's answer when a second factor is needed.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MfaChallengeResponse {
    /// Always `true`: no tokens yet.
    pub mfa_required: bool,
    /// `true` when the tenant requires MFA and the user has none: the token
    /// opens `POST /v1/auth/mfa/setup` and `/verify` (as
    /// `Authorization: Bearer <mfa_token>`), and verify answers the tokens.
    pub mfa_enrollment_required: bool,
    /// `mfa.<tenant>.<challenge>.<secret>`: for `POST /v1/auth/mfa/challenge`
    /// (or, for an enrolment, setup and verify) only.
    pub mfa_token: String,
    /// What the challenge accepts.
    pub methods: Vec<CodeKind>,
    /// Seconds until the token expires.
    pub expires_in: i64,
    /// What to do next.
    pub message: String,
}

/// Issues a sign-in's challenge (audited) and its answer.
pub(crate) async fn issue_challenge(
    state: &AppState,
    scope: &TenantScope,
    user: &User,
    purpose: ChallengePurpose,
    client: &ClientInfo,
) -> AppResult<MfaChallengeResponse> {
    let (challenge, token) = MfaChallenge::issue(scope.tenant_id(), user.id, purpose);
    let audit = AuditContext::user(user.id, Some(user.email.clone()), client);
    state.store.create_mfa_challenge(scope, &challenge, &audit).await?;
    let enrolment = purpose == ChallengePurpose::Enrollment;
    Ok(MfaChallengeResponse {
        mfa_required: true,
        mfa_enrollment_required: enrolment,
        mfa_token: token.encode(),
        methods: if enrolment { vec![CodeKind::Totp] } else { vec![CodeKind::Totp, CodeKind::BackupCode] },
        expires_in: challenge.ttl_seconds(),
        message: if enrolment {
            "your organization requires MFA: set it up with POST /v1/auth/mfa/setup, then POST /v1/auth/mfa/verify, \
             both with Authorization: Bearer <mfa_token>"
                .to_owned()
        } else {
            "send a code from your authenticator app (or a backup code) with the mfa_token to POST /v1/auth/mfa/challenge"
                .to_owned()
        },
    })
}

/// The caller's MFA: whether it is on, and how many backup codes are left.
///
/// People only: API keys are refused.
#[utoipa::path(get, path = "/v1/auth/mfa", tag = "mfa", security(("bearer" = ["user"])),
    responses((status = 200, description = "The caller's MFA", body = MfaStatusView)))]
async fn mfa_status(State(state): State<AppState>, principal: Principal) -> AppResult<Json<MfaStatusView>> {
    let SignedIn { scope, .. } = principal.require_session(RESOURCE)?;
    let stored = state.store.get_mfa(&scope, principal.user_id()).await?;
    Ok(Json(stored.map_or_else(MfaEnrollment::none_view, |m| m.enrollment.view())))
}

/// `POST /v1/auth/mfa/setup` (seed 000).
#[derive(Debug, eserde::Deserialize, utoipa::ToSchema)]
#[schema(description = "A TOTP setup: the method (only `totp`) and a name for the device.")]
#[serde(deny_unknown_fields)]
struct MfaSetupRequest {
    /// `totp` when left out.
    #[serde(default)]
    #[eserde(compat)]
    method: Option<MfaMethod>,
    /// A name to recognise the authenticator by.
    #[serde(default)]
    device_name: Option<Text<1, 100>>,
}

/// A setup's secret, shown once.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MfaSetup {
    /// The shared secret, base32 (to type into an app that cannot scan).
    pub secret: String,
    /// The `otpauth_uri` as a QR code: `data:image/png;base64,...`.
    pub qr_code: String,
    /// `otpauth://totp/<issuer>:<email>?secret=...&issuer=...`.
    pub otpauth_uri: String,
    /// Single-use codes (`12345-67890`) for when the app is not at hand;
    /// shown only now.
    pub backup_codes: Vec<String>,
    pub recovery_instructions: String,
    pub method: MfaMethod,
    pub device_name: Option<String>,
}

/// Seed 000's setup answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MfaSetupResponse {
    pub mfa_setup: MfaSetup,
    /// Always `true`: MFA is on once `POST /v1/auth/mfa/verify` took a code.
    pub verification_required: bool,
}

/// Starts a TOTP setup: a secret, its QR code and backup codes, shown once.
///
/// Seed 000's MFA setup. MFA is not on until `POST /v1/auth/mfa/verify`
/// takes a first code; a setup not verified within an hour is forgotten,
/// and a new setup replaces it. The secret is stored sealed, the backup
/// codes as keyed hashes. People only (an access token), or, when the
/// tenant requires MFA, the `mfa_token` a sign-in answered
/// (`Authorization: Bearer mfa....`).
#[utoipa::path(post, path = "/v1/auth/mfa/setup", tag = "mfa", security(("bearer" = ["user"])),
    request_body(content = MfaSetupRequest, example = json!({
        "method": "totp",
        "device_name": "iPhone 15 Pro - John Smith"
    })),
    responses(
        (status = 200, description = "The secret, QR code and backup codes (shown once)", body = MfaSetupResponse),
        (status = 401, description = "Not authenticated\n\n- `invalid_token`: the access token or the enrolment `mfa_token` is invalid, used up or expired", body = shared::web::openapi::ApiError),
        (status = 409, description = "Conflict\n\n- `conflict`: MFA is already enabled (`details.reason`: `mfa_already_enabled`): disable it first", body = shared::web::openapi::ApiError),
    ))]
async fn mfa_setup(
    State(state): State<AppState>,
    caller: PrincipalOrEnrollment,
    client: ClientInfo,
    Body(request): Body<MfaSetupRequest>,
) -> AppResult<Json<MfaSetupResponse>> {
    let (scope, user) = match &caller {
        PrincipalOrEnrollment::Principal(principal) => signed_in_user(&state, principal).await?,
        PrincipalOrEnrollment::Enrollment(open) => (open.scope, open.user.clone()),
    };
    let secret = TotpSecret::generate();
    let (nonce, sealed) = state.keys.sealing.seal(&totp_secret_context(&scope, user.id), secret.as_bytes())?;
    let (backup_codes, hashes) = new_backup_codes(&state, &scope, user.id)?;
    let device_name = request.device_name.map(Text::into_inner);
    let enrollment = MfaEnrollment::pending(user.id, device_name.clone(), hashes);
    let audit = AuditContext::user(user.id, Some(user.email.clone()), &client);
    match state.store.start_mfa_setup(&scope, &enrollment, (&nonce, &sealed), &audit).await {
        Ok(()) => {}
        Err(MfaError::AlreadyEnabled) => {
            return Err(AppError::conflict("MFA is already enabled: disable it (POST /v1/auth/mfa/disable) first")
                .with_details(json!({"reason": "mfa_already_enabled"})));
        }
        Err(MfaError::Other(e)) => return Err(e),
        Err(other) => return Err(AppError::internal(anyhow::anyhow!("mfa setup: {other:?}"))),
    }
    let totp = totp(&secret, &user.email);
    let qr = totp.get_qr_base64().map_err(|e| AppError::internal(anyhow::anyhow!("QR code: {e}")))?;
    Ok(Json(MfaSetupResponse {
        mfa_setup: MfaSetup {
            secret: totp.get_secret_base32(),
            qr_code: format!("data:image/png;base64,{qr}"),
            otpauth_uri: totp.get_url(),
            backup_codes,
            recovery_instructions: RECOVERY_INSTRUCTIONS.to_owned(),
            method: request.method.unwrap_or(MfaMethod::Totp),
            device_name,
        },
        verification_required: true,
    }))
}

/// `POST /v1/auth/mfa/verify` (seed 000).
#[derive(Debug, eserde::Deserialize, utoipa::ToSchema)]
#[schema(description = "The first code from the authenticator app, which turns MFA on.")]
#[serde(deny_unknown_fields)]
struct MfaVerifyRequest {
    /// The 6-digit code the app shows now.
    #[eserde(compat)]
    code: MfaCode,
    /// `totp` when left out.
    #[serde(default)]
    #[eserde(compat)]
    method: Option<MfaMethod>,
}

/// Verify's answer: the MFA now on, or, for an enrolment `mfa_token`, the
/// sign-in it completes.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum MfaVerified {
    /// With an access token: MFA is on.
    Enabled(MfaStatusView),
    /// With an enrolment `mfa_token`: MFA is on and the user signed in.
    SignedIn(TokenResponse),
}

/// Turns MFA on with the first code from the app.
///
/// Seed 000's verification: the code must be one of the pending setup's
/// (the current 30-second step or one either side), and it counts as used.
/// Audited. With an enrolment `mfa_token` (a sign-in the tenant's
/// `mfa_required` stopped), the answer is the sign-in's tokens, and a wrong
/// code uses one of the token's five attempts.
#[utoipa::path(post, path = "/v1/auth/mfa/verify", tag = "mfa", security(("bearer" = ["user"])),
    request_body(content = MfaVerifyRequest, example = json!({"code": "123456", "method": "totp"})),
    responses(
        (status = 200, description = "MFA is on (with an access token: its status; with an enrolment `mfa_token`: the tokens)", body = MfaVerified),
        (status = 400, description = "Bad request\n\n- `invalid_mfa_code`: the code is wrong or expired (`details.field`: `code`)\n- `validation_failed`: the code is not six digits", body = shared::web::openapi::ApiError),
        (status = 401, description = "Not authenticated\n\n- `invalid_token`: the access token or the enrolment `mfa_token` is invalid, used up or expired\n- `invalid_mfa_code`: (enrolment) the code is wrong (`details.attempts_remaining`)", body = shared::web::openapi::ApiError),
        (status = 409, description = "Conflict\n\n- `conflict`: no setup is waiting (`details.reason`: `no_pending_setup`), or MFA is already on (`mfa_already_enabled`)", body = shared::web::openapi::ApiError),
    ))]
async fn mfa_verify(
    State(state): State<AppState>,
    caller: PrincipalOrEnrollment,
    client: ClientInfo,
    Body(request): Body<MfaVerifyRequest>,
) -> AppResult<Json<MfaVerified>> {
    let MfaVerifyRequest { code, method } = request;
    let MfaCode::Totp(typed) = &code else {
        return Err(AppError::invalid_field("code", "must be the 6-digit code from the authenticator app"));
    };
    let (scope, user, attempts) = match &caller {
        PrincipalOrEnrollment::Principal(principal) => {
            let (scope, user) = signed_in_user(&state, principal).await?;
            (scope, user, None)
        }
        PrincipalOrEnrollment::Enrollment(open) => {
            let attempts = state
                .store
                .take_challenge_attempt(&open.scope, open.challenge.id)
                .await?
                .ok_or_else(invalid_mfa_token)?;
            (open.scope, open.user.clone(), Some(attempts))
        }
    };
    let stored = match state.store.get_mfa(&scope, user.id).await? {
        Some(stored) if stored.enrollment.is_enabled() => {
            return Err(
                AppError::conflict("MFA is already enabled").with_details(json!({"reason": "mfa_already_enabled"}))
            );
        }
        Some(stored) => stored,
        None => {
            return Err(AppError::conflict("no MFA setup is waiting: start one with POST /v1/auth/mfa/setup")
                .with_details(json!({"reason": "no_pending_setup"})));
        }
    };
    if method.is_some_and(|m| m != stored.enrollment.method) {
        return Err(AppError::invalid_field("method", "is not the method of the setup waiting"));
    }
    let totp = totp(&open_secret(&state, &scope, &stored)?, "");
    let step = matching_step(typed, chrono::Utc::now().timestamp(), None, |step| code_at(&totp, step));
    let audit = AuditContext::user(user.id, Some(user.email.clone()), &client);
    let Some(step) = step else {
        return Err(match (&caller, attempts) {
            (PrincipalOrEnrollment::Enrollment(open), Some(attempts)) => {
                state.store.fail_mfa_challenge(&scope, &open.challenge, attempts, CodeKind::Totp, &audit).await?;
                wrong_challenge_code(attempts)
            }
            _ => wrong_code(),
        });
    };
    let challenge_id = match &caller {
        PrincipalOrEnrollment::Enrollment(open) => Some(open.challenge.id),
        PrincipalOrEnrollment::Principal(_) => None,
    };
    let view = match state.store.enable_mfa(&scope, &stored, step, challenge_id, &audit).await {
        Ok(view) => view,
        Err(MfaError::ChallengeGone) => return Err(invalid_mfa_token()),
        Err(MfaError::Other(e)) => return Err(e),
        Err(_) => {
            return Err(AppError::conflict("the setup changed meanwhile: start again with POST /v1/auth/mfa/setup")
                .with_details(json!({"reason": "no_pending_setup"})));
        }
    };
    // Tells the account's owner, so MFA turned on by someone else is noticed.
    crate::recovery::send_mfa_notice(&state, &scope, &user, MfaChange::Enabled).await;
    match caller {
        PrincipalOrEnrollment::Principal(_) => Ok(Json(MfaVerified::Enabled(view))),
        PrincipalOrEnrollment::Enrollment(_) => {
            // The tenant may have been suspended, or its allow-list changed,
            // since the password was checked.
            sign_in_tenant(&state, &scope, &user, &client).await?;
            state.store.record_login(&scope, user.id).await?;
            Ok(Json(MfaVerified::SignedIn(tokens::start_session(&state, &scope, &user, &client).await?)))
        }
    }
}

/// `POST /v1/auth/mfa/challenge`.
#[derive(Debug, eserde::Deserialize, utoipa::ToSchema)]
#[schema(description = "The second step of a sign-in: the login's `mfa_token` and a code.")]
#[serde(deny_unknown_fields)]
struct MfaChallengeRequest {
    /// The `mfa_token` the login answered.
    mfa_token: Text<1, 512>,
    /// A code from the authenticator app, or a backup code.
    #[eserde(compat)]
    code: MfaCode,
    /// `totp` or `backup_code`; told by the code's shape when left out.
    #[serde(default)]
    #[eserde(compat)]
    method: Option<CodeKind>,
}

/// Completes a sign-in with a code from the app or a backup code.
///
/// The `mfa_token` of a login that answered `mfa_required` and a code: a
/// TOTP code (the current 30-second step or one either side, each code
/// once: a replayed one is refused), or a backup code (each once). Answers
/// the tokens a login without MFA answers. A token takes five codes at
/// most, then the user must sign in again; wrong codes also count against
/// the account's sign-in throttle, which a right password alone does not
/// clear. Audited, passed or failed.
#[utoipa::path(post, path = "/v1/auth/mfa/challenge", tag = "mfa",
    request_body(content = MfaChallengeRequest, example = json!({
        "mfa_token": "mfa.0190f3a4-6b1e-7c2d-8e9f-0a1b2c3d4e5f.0190f3a4-6b1e-7c2d-8e9f-0a1b2c3d4e60.c2VjcmV0",
        "code": "123456"
    })),
    responses(
        (status = 200, description = "Signed in", body = TokenResponse),
        (status = 401, description = "Not authenticated\n\n- `invalid_mfa_code`: the code is wrong, expired or already used (`details.attempts_remaining`; at 0 the token is used up)\n- `invalid_token`: the `mfa_token` is invalid, used, used up or expired (or another tenant's): sign in again", body = shared::web::openapi::ApiError),
        (status = 403, description = "Forbidden\n\n- `tenant_inactive`: the tenant is suspended or deleted\n- `ip_not_allowed`: the tenant's IP allow-list does not hold the caller's address", body = shared::web::openapi::ApiError),
        (status = 429, description = "Too many requests\n\n- `rate_limited`: too many failed attempts for this account (`details.reason`: `too_many_attempts`, `details.retry_after_seconds`): wait `Retry-After` seconds", body = shared::web::openapi::ApiError),
    ))]
async fn mfa_challenge(
    State(state): State<AppState>,
    client: ClientInfo,
    Body(request): Body<MfaChallengeRequest>,
) -> AppResult<Json<TokenResponse>> {
    if request.method.is_some_and(|m| m != request.code.kind()) {
        return Err(AppError::invalid_field("method", "does not match the code's shape"));
    }
    let OpenChallenge { scope, challenge, user } =
        open_challenge(&state, request.mfa_token.as_str(), ChallengePurpose::SignIn).await?;
    let gate = Gate::open(&state, Some(&user.email), throttle::address(&client), &client).await?;
    let attempts = state.store.take_challenge_attempt(&scope, challenge.id).await?.ok_or_else(invalid_mfa_token)?;
    let stored = state
        .store
        .get_mfa(&scope, user.id)
        .await?
        .filter(|m| m.enrollment.is_enabled())
        .ok_or_else(invalid_mfa_token)?;
    let audit = AuditContext::user(user.id, Some(user.email.clone()), &client);
    let kind = request.code.kind();
    let passed = match prove(&state, &scope, &stored, &request.code)? {
        Some(proof) => {
            let remaining = stored.enrollment.backup_codes.len() - usize::from(kind == CodeKind::BackupCode);
            match state.store.pass_mfa_challenge(&scope, &challenge, &proof, remaining, &audit).await {
                Ok(()) => true,
                // Spent by a concurrent request: a replay like any other.
                Err(MfaError::CodeUsed) => false,
                Err(MfaError::ChallengeGone) => return Err(invalid_mfa_token()),
                Err(MfaError::Other(e)) => return Err(e),
                Err(other) => return Err(AppError::internal(anyhow::anyhow!("mfa challenge: {other:?}"))),
            }
        }
        None => false,
    };
    if !passed {
        state.store.fail_mfa_challenge(&scope, &challenge, attempts, kind, &audit).await?;
        gate.failed(&state, &client).await?;
        return Err(wrong_challenge_code(attempts));
    }
    gate.succeeded(&state).await?;
    sign_in_tenant(&state, &scope, &user, &client).await?;
    state.store.record_login(&scope, user.id).await?;
    Ok(Json(tokens::start_session(&state, &scope, &user, &client).await?))
}

/// `POST /v1/auth/mfa/disable` and `POST /v1/auth/mfa/backup-codes`: a
/// fresh code.
#[derive(Debug, eserde::Deserialize, utoipa::ToSchema)]
#[schema(description = "A fresh code: from the authenticator app, or a backup code.")]
#[serde(deny_unknown_fields)]
struct MfaCodeRequest {
    #[eserde(compat)]
    code: MfaCode,
}

/// Checks a fresh code from a signed-in user, under the account's
/// sign-in throttle (a stolen access token must not be able to guess its
/// way to turning MFA off).
async fn fresh_code(
    state: &AppState,
    scope: &TenantScope,
    user: &User,
    stored: &StoredMfa,
    code: &MfaCode,
    client: &ClientInfo,
) -> AppResult<(CodeProof, Gate)> {
    let gate = Gate::open(state, Some(&user.email), throttle::address(client), client).await?;
    match prove(state, scope, stored, code)? {
        Some(proof) => Ok((proof, gate)),
        None => {
            gate.failed(state, client).await?;
            Err(wrong_code())
        }
    }
}

/// Turns MFA off; needs a fresh code.
///
/// A code from the app (not one already used) or a backup code. Refused
/// while the tenant requires MFA. Audited. People only, with their standing
/// read afresh.
#[utoipa::path(post, path = "/v1/auth/mfa/disable", tag = "mfa", security(("bearer" = ["user"])),
    request_body(content = MfaCodeRequest, example = json!({"code": "123456"})),
    responses(
        (status = 200, description = "MFA is off", body = MfaStatusView),
        (status = 400, description = "Bad request\n\n- `invalid_mfa_code`: the code is wrong, expired or already used (`details.field`: `code`)", body = shared::web::openapi::ApiError),
        (status = 403, description = "Forbidden\n\n- `mfa_required`: the tenant requires MFA of its members", body = shared::web::openapi::ApiError),
        (status = 409, description = "Conflict\n\n- `conflict`: MFA is not enabled (`details.reason`: `mfa_not_enabled`)", body = shared::web::openapi::ApiError),
        (status = 429, description = "Too many requests\n\n- `rate_limited`: too many wrong codes for this account: wait `Retry-After` seconds", body = shared::web::openapi::ApiError),
    ))]
async fn mfa_disable(
    State(state): State<AppState>,
    Fresh(principal): Fresh,
    client: ClientInfo,
    Body(request): Body<MfaCodeRequest>,
) -> AppResult<Json<MfaStatusView>> {
    let (scope, user) = signed_in_user(&state, &principal).await?;
    let stored = enabled_mfa(&state, &scope, user.id).await?;
    let required = match state.store.get_tenant(&scope).await? {
        Some((tenant, _)) => ConfigSecurity::of(&tenant).and_then(|s| s.mfa_required).unwrap_or(false),
        None => false,
    };
    if required {
        return Err(AppError::forbidden(
            "mfa_required",
            "the tenant requires MFA of its members; it cannot be turned off",
        )
        .with_details(json!({"policy": "configuration.security.mfa_required"})));
    }
    let (proof, gate) = fresh_code(&state, &scope, &user, &stored, &request.code, &client).await?;
    let audit = AuditContext::user(user.id, Some(user.email.clone()), &client);
    match state.store.disable_mfa(&scope, &stored.enrollment, &proof, &audit).await {
        Ok(()) => {}
        Err(MfaError::CodeUsed) => return Err(wrong_code()),
        Err(MfaError::Other(e)) => return Err(e),
        Err(other) => return Err(AppError::internal(anyhow::anyhow!("mfa disable: {other:?}"))),
    }
    gate.succeeded(&state).await?;
    crate::recovery::send_mfa_notice(&state, &scope, &user, MfaChange::Disabled).await;
    Ok(Json(MfaEnrollment::none_view()))
}

/// A new set of backup codes, shown once.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BackupCodes {
    /// Single-use codes (`12345-67890`); every earlier code stops working.
    pub backup_codes: Vec<String>,
    pub recovery_instructions: String,
}

/// Replaces the backup codes with a new set; needs a fresh code.
///
/// A code from the app (not one already used) or one of the old backup
/// codes. Every old code stops working; the new ones are shown only now.
/// Audited. People only, with their standing read afresh.
#[utoipa::path(post, path = "/v1/auth/mfa/backup-codes", tag = "mfa", security(("bearer" = ["user"])),
    request_body(content = MfaCodeRequest, example = json!({"code": "123456"})),
    responses(
        (status = 200, description = "The new backup codes (shown once)", body = BackupCodes),
        (status = 400, description = "Bad request\n\n- `invalid_mfa_code`: the code is wrong, expired or already used (`details.field`: `code`)", body = shared::web::openapi::ApiError),
        (status = 409, description = "Conflict\n\n- `conflict`: MFA is not enabled (`details.reason`: `mfa_not_enabled`)", body = shared::web::openapi::ApiError),
        (status = 429, description = "Too many requests\n\n- `rate_limited`: too many wrong codes for this account: wait `Retry-After` seconds", body = shared::web::openapi::ApiError),
    ))]
async fn mfa_backup_codes(
    State(state): State<AppState>,
    Fresh(principal): Fresh,
    client: ClientInfo,
    Body(request): Body<MfaCodeRequest>,
) -> AppResult<Json<BackupCodes>> {
    let (scope, user) = signed_in_user(&state, &principal).await?;
    let stored = enabled_mfa(&state, &scope, user.id).await?;
    let (proof, gate) = fresh_code(&state, &scope, &user, &stored, &request.code, &client).await?;
    let (backup_codes, hashes) = new_backup_codes(&state, &scope, user.id)?;
    let audit = AuditContext::user(user.id, Some(user.email.clone()), &client);
    match state.store.replace_backup_codes(&scope, user.id, &proof, &hashes, &audit).await {
        Ok(()) => {}
        Err(MfaError::CodeUsed) => return Err(wrong_code()),
        Err(MfaError::Other(e)) => return Err(e),
        Err(other) => return Err(AppError::internal(anyhow::anyhow!("backup codes: {other:?}"))),
    }
    gate.succeeded(&state).await?;
    crate::recovery::send_mfa_notice(&state, &scope, &user, MfaChange::BackupCodesRenewed).await;
    Ok(Json(BackupCodes { backup_codes, recovery_instructions: RECOVERY_INSTRUCTIONS.to_owned() }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::web::extract::parse_body;

    /// RFC 6238 appendix B's SHA-1 vectors (8 digits there; the last six
    /// here), through the same `totp` the handlers use.
    #[test]
    fn codes_follow_rfc_6238() {
        let secret = TotpSecret::from_bytes(b"12345678901234567890".to_vec());
        let totp = totp(&secret, "a@b.co");
        for (time, code) in
            [(59, "287082"), (1_111_111_109, "081804"), (1_234_567_890, "005924"), (2_000_000_000, "279037")]
        {
            assert_eq!(code_at(&totp, time / STEP_SECONDS), code, "at {time}");
            assert_eq!(matching_step(code, time, None, |s| code_at(&totp, s)), Some(time / STEP_SECONDS));
        }
        let uri = totp.get_url();
        assert!(uri.starts_with("otpauth://totp/SaaS%20Platform:a%40b.co?secret="), "{uri}");
        assert!(uri.ends_with("&issuer=SaaS%20Platform"), "{uri}");
    }

    #[test]
    fn the_seed_bodies_are_accepted() {
        let setup: MfaSetupRequest = parse_body(br#"{"method": "totp", "device_name": "iPhone 15 Pro - John Smith"}"#)
            .expect("seed 000's setup");
        assert_eq!(setup.method, Some(MfaMethod::Totp));
        let verify: MfaVerifyRequest =
            parse_body(br#"{"code": "123456", "method": "totp"}"#).expect("seed 000's verify");
        assert_eq!(verify.code, MfaCode::Totp("123456".into()));
        let err = parse_body::<MfaVerifyRequest>(br#"{"code": "12a456", "method": "sms"}"#).expect_err("refused");
        let mut fields = err.invalid_fields();
        fields.sort();
        assert_eq!(fields, ["code", "method"]);
        let challenge: MfaChallengeRequest =
            parse_body(br#"{"mfa_token": "mfa.x", "code": "12345-67890"}"#).expect("a backup code");
        assert_eq!(challenge.code.kind(), CodeKind::BackupCode);
    }
}
