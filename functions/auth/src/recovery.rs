//! Account mail flows: password reset and email verification.
//!
//! | route | handler |
//! |---|---|
//! | `POST /v1/auth/password/forgot` | [`forgot_password`] |
//! | `POST /v1/auth/password/reset` | [`reset_password`] |
//! | `POST /v1/auth/email/verify` | [`verify_email`] |
//! | `POST /v1/auth/email/verification` | [`resend_verification`] |
//!
//! A mailed token reads `rst.<tenant>.<user>.<secret>` (reset) or
//! `vfy.<tenant>.<user>.<secret>` (verification): the ids route the lookup
//! (one GetItem in the tenant the token names), the 256-bit secret proves
//! possession, and only its SHA-256 is stored (`shared::store::recovery`,
//! with the lifetimes: reset 30 minutes, verification 48 hours). A token
//! naming another tenant than its own finds nothing there and is refused
//! like any invalid one.
//!
//! Mail is sent after the change committed and never fails the request
//! (`shared::mail`): [`send_verification`] is what sign-up calls,
//! [`send_lockout_notice`] what the sign-in throttle calls, and
//! [`send_mfa_notice`] what the MFA routes call.

use std::time::{Duration, Instant};

use axum::{Json, Router, extract::State, http::StatusCode, routing::post};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use rand::RngCore;
use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use shared::{
    AppError, AppResult, AppState,
    audit::{AuditContext, ClientInfo},
    auth::{Principal, SignedIn, TenantScope, password, proofs::CredentialLookup, proofs::EmailClaim},
    domain::{
        user::{NewPassword, User},
        values::Text,
    },
    mail::{Brand, MfaChange, Notice},
    store::recovery::{Purpose, SpendError},
    web::extract::Body,
};
use uuid::Uuid;

use crate::throttle::{self, Gate};

/// This part of the auth group's OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(forgot_password, reset_password, verify_email, resend_verification),
    tags((name = "account", description = "Password reset and email verification by mailed one-time links"))
)]
pub struct ApiDoc;

/// These routes; [`crate::routes`] merges them.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/auth/password/forgot", post(forgot_password))
        .route("/v1/auth/password/reset", post(reset_password))
        .route("/v1/auth/email/verify", post(verify_email))
        .route("/v1/auth/email/verification", post(resend_verification))
}

/// The pages of the web app the links open (under `APP_BASE_URL`).
pub const RESET_PAGE: &str = "reset-password";
pub const VERIFY_PAGE: &str = "verify-email";
pub use shared::mail::FORGOT_PAGE;

/// A forgot-password request is answered no sooner than this after it
/// arrived, whether or not the address has an account: the work for an
/// account (a token stored, a mail sent) must not show in the time taken.
pub const FORGOT_ANSWER_FLOOR: Duration = Duration::from_millis(800);

/// A mailed one-time token (see the module docs).
pub struct MailToken {
    pub purpose: Purpose,
    pub tenant_id: Uuid,
    pub user_id: Uuid,
    secret: String,
}

/// Never printed: the secret is the credential.
impl std::fmt::Debug for MailToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailToken").field("tenant_id", &self.tenant_id).field("user_id", &self.user_id).finish()
    }
}

fn prefix(purpose: Purpose) -> &'static str {
    match purpose {
        Purpose::Reset => "rst",
        Purpose::Verification => "vfy",
    }
}

impl MailToken {
    pub fn generate(purpose: Purpose, tenant_id: Uuid, user_id: Uuid) -> Self {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self { purpose, tenant_id, user_id, secret: URL_SAFE_NO_PAD.encode(bytes) }
    }

    /// A token of `purpose`, or `None` (another purpose's token included).
    pub fn parse(raw: &str, purpose: Purpose) -> Option<Self> {
        let mut parts = raw.trim().split('.');
        let (Some(p), Some(t), Some(u), Some(secret), None) =
            (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        if p != prefix(purpose) || secret.is_empty() {
            return None;
        }
        Some(Self {
            purpose,
            tenant_id: Uuid::parse_str(t).ok()?,
            user_id: Uuid::parse_str(u).ok()?,
            secret: secret.to_owned(),
        })
    }

    pub fn encode(&self) -> String {
        format!("{}.{}.{}.{}", prefix(self.purpose), self.tenant_id, self.user_id, self.secret)
    }

    pub fn hash(&self) -> String {
        Sha256::digest(self.secret.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// The tenant's branding for its mails; the platform's when it cannot be read.
async fn brand(state: &AppState, scope: &TenantScope) -> Brand {
    match state.store.get_tenant(scope).await {
        Ok(Some((tenant, _))) => Brand::of(&tenant),
        Ok(None) => Brand::platform(),
        Err(err) => {
            tracing::warn!(error = %err, "mail branding: tenant not read");
            Brand::platform()
        }
    }
}

/// A link to `page` carrying `token`; logged and `None` without `APP_BASE_URL`.
fn link(state: &AppState, page: &str, token: &str) -> Option<String> {
    let link = state.mailer.link(page, token);
    if link.is_none() {
        tracing::error!(request_id = %shared::request_id::current_request_id(), "APP_BASE_URL is not set: no mail sent");
    }
    link
}

/// Stores a fresh verification token for `user` (replacing any earlier
/// one) and mails its link to the user's address.
///
/// For sign-up (`register`) and the re-send route. `Err` only when the
/// token could not be stored; the mail itself is best effort (logged).
pub async fn send_verification(
    state: &AppState,
    scope: &TenantScope,
    user: &User,
    client: &ClientInfo,
) -> AppResult<()> {
    let token = MailToken::generate(Purpose::Verification, scope.tenant_id(), user.id);
    let audit = AuditContext::user(user.id, Some(user.email.clone()), client);
    state.store.issue_mail_token(scope, Purpose::Verification, user, &token.hash(), &audit).await?;
    if let Some(link) = link(state, VERIFY_PAGE, &token.encode()) {
        let notice = Notice::Verification {
            first_name: user.first_name.clone(),
            link,
            valid_hours: Purpose::Verification.ttl_seconds() / 3600,
        };
        state.mailer.deliver(&notice, &brand(state, scope).await, &user.email).await;
    }
    Ok(())
}

/// Mails the account `claim` names that its sign-ins are paused for
/// `minutes` (the sign-in throttle's lockout). Best effort: nothing here
/// fails the request.
pub async fn send_lockout_notice(state: &AppState, claim: EmailClaim, minutes: i64) {
    let scope = claim.scope();
    let user = match state.store.get_user(&scope, claim.user_id).await {
        Ok(Some(user)) if user.is_active => user,
        Ok(_) => return,
        Err(err) => {
            tracing::error!(error = %err, "lockout notice: user not read");
            return;
        }
    };
    let Some(forgot_link) = link(state, FORGOT_PAGE, "") else { return };
    let notice = Notice::Lockout { first_name: user.first_name.clone(), minutes, forgot_link };
    state.mailer.deliver(&notice, &brand(state, &scope).await, &user.email).await;
}

/// Mails `user` that their two-step sign-in changed (for the MFA routes,
/// after their change committed). Best effort: nothing here fails the
/// request.
pub async fn send_mfa_notice(state: &AppState, scope: &TenantScope, user: &User, change: MfaChange) {
    let Some(forgot_link) = link(state, FORGOT_PAGE, "") else { return };
    let notice = Notice::MfaChanged { first_name: user.first_name.clone(), change, forgot_link };
    state.mailer.deliver(&notice, &brand(state, scope).await, &user.email).await;
}

/// `POST /v1/auth/password/forgot`.
#[derive(Debug, eserde::Deserialize, utoipa::ToSchema)]
#[schema(description = "The address of the account whose password is forgotten")]
#[serde(deny_unknown_fields)]
struct Forgot {
    /// Any text of an address's length: it is only looked up.
    email: Text<1, 254>,
}

/// The answer to a forgot-password request, the same whether or not the
/// address has an account.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ResetRequested {
    /// What happens next, said without telling whether the account exists.
    pub message: String,
}

/// Asks for a password-reset link by mail.
///
/// If the address belongs to an active account, a one-time link to
/// `<APP_BASE_URL>/reset-password?token=...` is mailed to it, valid for 30
/// minutes (a newer request replaces it). The answer is the same 202, after
/// the same minimum time, whether or not the account exists. Throttled per
/// address typed (3 an hour) and per caller address (20 an hour), alike for
/// existing and unknown accounts.
#[utoipa::path(post, path = "/v1/auth/password/forgot", tag = "account",
    request_body(content = Forgot, example = json!({"email": "user@example.com"})),
    responses(
        (status = 202, description = "Accepted: a link is mailed if the account exists", body = ResetRequested),
        (status = 429, description = "Too many requests\n\n- `rate_limited`: too many reset requests for this address, or from the caller's address (`details.reason`: `too_many_attempts`, `details.retry_after_seconds`): wait `Retry-After` seconds", body = shared::web::openapi::ApiError),
    ))]
async fn forgot_password(
    State(state): State<AppState>,
    client: ClientInfo,
    Body(Forgot { email }): Body<Forgot>,
) -> AppResult<(StatusCode, Json<ResetRequested>)> {
    let started = Instant::now();
    Gate::reset_request(&state, email.as_str(), throttle::address(&client), &client).await?;
    let outcome = mail_reset_link(&state, email.as_str(), &client).await;
    let elapsed = started.elapsed();
    if elapsed < FORGOT_ANSWER_FLOOR {
        tokio::time::sleep(FORGOT_ANSWER_FLOOR - elapsed).await;
    } else {
        tracing::warn!(elapsed_ms = elapsed.as_millis() as u64, "forgot-password took longer than its answer floor");
    }
    outcome?;
    let message = "If an account exists for this address, a link to reset its password is on its way.".to_owned();
    Ok((StatusCode::ACCEPTED, Json(ResetRequested { message })))
}

/// The work behind a forgot-password request: nothing for an unknown or
/// disabled account.
async fn mail_reset_link(state: &AppState, email: &str, client: &ClientInfo) -> AppResult<()> {
    let Some(claim) = state.store.find_email_owner(email).await? else { return Ok(()) };
    let scope = claim.scope();
    let Some(user) = state.store.get_user(&scope, claim.user_id).await?.filter(|u| u.is_active) else {
        return Ok(());
    };
    let token = MailToken::generate(Purpose::Reset, scope.tenant_id(), user.id);
    // Nobody is signed in: the platform acts for whoever typed the address.
    let audit = AuditContext::system_for_client("password-reset", client);
    state.store.issue_mail_token(&scope, Purpose::Reset, &user, &token.hash(), &audit).await?;
    if let Some(link) = link(state, RESET_PAGE, &token.encode()) {
        let notice = Notice::PasswordReset {
            first_name: user.first_name.clone(),
            link,
            valid_minutes: Purpose::Reset.ttl_seconds() / 60,
        };
        state.mailer.deliver(&notice, &brand(state, &scope).await, &user.email).await;
    }
    Ok(())
}

/// `POST /v1/auth/password/reset`.
#[derive(eserde::Deserialize, utoipa::ToSchema)]
#[schema(description = "The reset link's token and the new password (10 to 128 characters, not the email address)")]
#[serde(deny_unknown_fields)]
struct Reset {
    /// The `token` of the mailed link (`rst.<tenant>.<user>.<secret>`).
    token: Text<1, 512>,
    #[eserde(compat)]
    password: NewPassword,
}

/// A password reset done.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PasswordReset {
    /// Always `true`.
    pub password_reset: bool,
    /// How many sign-ins (refresh-token families) were ended.
    pub sessions_revoked: usize,
}

fn invalid_reset() -> AppError {
    AppError::invalid_token("the reset link is invalid, used or expired")
}

/// Sets a new password with a mailed reset link.
///
/// The link works once and for 30 minutes. The new password follows the
/// sign-up rules. Every sign-in of the account ends (its refresh tokens
/// and their access tokens stop working), its failed sign-in count is
/// cleared, the change is audited, and a notice is mailed. Throttled per
/// caller address like sign-ups (each attempt hashes a password).
#[utoipa::path(post, path = "/v1/auth/password/reset", tag = "account",
    request_body(content = Reset, example = json!({
        "token": "rst.0190f3a4-6b1e-7c2d-8e9f-0a1b2c3d4e5f.0190f3a4-6b1e-7c2d-8e9f-0a1b2c3d4e60.c2VjcmV0",
        "password": "a new long passphrase"
    })),
    responses(
        (status = 200, description = "The password is changed and every sign-in ended", body = PasswordReset),
        (status = 401, description = "Not authenticated\n\n- `invalid_token`: the link is invalid, used, replaced by a newer one or expired, or the account is disabled", body = shared::web::openapi::ApiError),
        (status = 429, description = "Too many requests\n\n- `rate_limited`: too many attempts from this address (`details.reason`: `too_many_attempts`, `details.retry_after_seconds`): wait `Retry-After` seconds", body = shared::web::openapi::ApiError),
    ))]
async fn reset_password(
    State(state): State<AppState>,
    client: ClientInfo,
    Body(Reset { token, password: new_password }): Body<Reset>,
) -> AppResult<Json<PasswordReset>> {
    if let Some(address) = throttle::address(&client) {
        Gate::sign_up(&state, address, &client).await?;
    }
    let token = MailToken::parse(token.as_str(), Purpose::Reset).ok_or_else(invalid_reset)?;
    // The token names its tenant and user; they are trusted once its hash
    // matched the stored one.
    let lookup = CredentialLookup::named_by_credential(token.tenant_id);
    let stored = state.store.mail_token_for(&lookup, Purpose::Reset, token.user_id).await?.ok_or_else(invalid_reset)?;
    let scope = lookup.verified(&token.hash(), &stored.token_hash).ok_or_else(invalid_reset)?;
    if stored.expires_at <= shared::domain::now().timestamp() {
        return Err(invalid_reset());
    }
    let user = state.store.get_user(&scope, token.user_id).await?.filter(|u| u.is_active).ok_or_else(invalid_reset)?;
    if let Some(problem) = password::password_problem(new_password.as_str(), &user.email) {
        return Err(AppError::invalid_field("password", problem));
    }
    let hash = password::hash(new_password.as_str()).await?;
    // The holder of the mailbox acts as the account.
    let audit = AuditContext::user(user.id, Some(user.email.clone()), &client);
    match state.store.reset_password_with_token(&scope, &user, &token.hash(), &hash, &audit).await {
        Ok(()) => {}
        Err(SpendError::Invalid) => return Err(invalid_reset()),
        Err(SpendError::Other(e)) => return Err(e),
    }
    let sessions_revoked = state.store.revoke_user_sessions(&scope, user.id, "password_reset", &audit).await?;
    if let Some(forgot_link) = link(&state, FORGOT_PAGE, "") {
        let notice = Notice::PasswordChanged { first_name: user.first_name.clone(), forgot_link };
        state.mailer.deliver(&notice, &brand(&state, &scope).await, &user.email).await;
    }
    Ok(Json(PasswordReset { password_reset: true, sessions_revoked }))
}

/// `POST /v1/auth/email/verify`.
#[derive(eserde::Deserialize, utoipa::ToSchema)]
#[schema(description = "The verification link's token")]
#[serde(deny_unknown_fields)]
struct Verify {
    /// The `token` of the mailed link (`vfy.<tenant>.<user>.<secret>`).
    token: Text<1, 512>,
}

/// An address proven.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EmailVerified {
    pub email: String,
    /// Always `true`.
    pub email_verified: bool,
    pub email_verified_at: Option<chrono::DateTime<chrono::Utc>>,
}

fn invalid_verification() -> AppError {
    AppError::invalid_token("the verification link is invalid, used or expired")
}

/// Proves an email address with a mailed verification link.
///
/// The link works once and for 48 hours; a newer one replaces it. Marks
/// the account's address verified (audited). No sign-in needed: the link
/// is the proof.
#[utoipa::path(post, path = "/v1/auth/email/verify", tag = "account",
    request_body(content = Verify, example = json!({
        "token": "vfy.0190f3a4-6b1e-7c2d-8e9f-0a1b2c3d4e5f.0190f3a4-6b1e-7c2d-8e9f-0a1b2c3d4e60.c2VjcmV0"
    })),
    responses(
        (status = 200, description = "The address is verified", body = EmailVerified),
        (status = 401, description = "Not authenticated\n\n- `invalid_token`: the link is invalid, used, replaced by a newer one or expired, or the account is disabled", body = shared::web::openapi::ApiError),
    ))]
async fn verify_email(
    State(state): State<AppState>,
    client: ClientInfo,
    Body(Verify { token }): Body<Verify>,
) -> AppResult<Json<EmailVerified>> {
    let token = MailToken::parse(token.as_str(), Purpose::Verification).ok_or_else(invalid_verification)?;
    let lookup = CredentialLookup::named_by_credential(token.tenant_id);
    let stored = state
        .store
        .mail_token_for(&lookup, Purpose::Verification, token.user_id)
        .await?
        .ok_or_else(invalid_verification)?;
    let scope = lookup.verified(&token.hash(), &stored.token_hash).ok_or_else(invalid_verification)?;
    if stored.expires_at <= shared::domain::now().timestamp() {
        return Err(invalid_verification());
    }
    let user =
        state.store.get_user(&scope, token.user_id).await?.filter(|u| u.is_active).ok_or_else(invalid_verification)?;
    let audit = AuditContext::user(user.id, Some(user.email.clone()), &client);
    let user = match state.store.verify_email_with_token(&scope, &user, &token.hash(), &audit).await {
        Ok(user) => user,
        Err(SpendError::Invalid) => return Err(invalid_verification()),
        Err(SpendError::Other(e)) => return Err(e),
    };
    Ok(Json(EmailVerified {
        email: user.email,
        email_verified: user.email_verified,
        email_verified_at: user.email_verified_at,
    }))
}

/// A verification mail on its way.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct VerificationSent {
    /// The address the link was mailed to.
    pub email: String,
    /// Seconds the link works.
    pub expires_in: i64,
}

/// Mails a new verification link to the caller's address.
///
/// People only (API keys are refused). The new link replaces any earlier
/// one. Three an hour; an address already verified is a 409.
#[utoipa::path(post, path = "/v1/auth/email/verification", tag = "account", security(("bearer" = ["user"])),
    responses(
        (status = 202, description = "A new link is on its way", body = VerificationSent),
        (status = 409, description = "Conflict\n\n- `conflict`: the address is already verified (`details.reason`: `already_verified`)", body = shared::web::openapi::ApiError),
        (status = 429, description = "Too many requests\n\n- `rate_limited`: too many verification mails asked for (`details.reason`: `too_many_attempts`, `details.retry_after_seconds`): wait `Retry-After` seconds", body = shared::web::openapi::ApiError),
    ))]
async fn resend_verification(
    State(state): State<AppState>,
    principal: Principal,
    client: ClientInfo,
) -> AppResult<(StatusCode, Json<VerificationSent>)> {
    let SignedIn { scope, .. } = principal.require_session("email_verification")?;
    let user = state
        .store
        .get_user(&scope, principal.user_id())
        .await?
        .filter(|u| u.is_active)
        .ok_or_else(|| AppError::invalid_token("the account no longer exists or is disabled"))?;
    if user.email_verified {
        return Err(AppError::conflict("the email address is already verified")
            .with_details(json!({"reason": "already_verified"})));
    }
    Gate::verification_mail(&state, user.id, &client).await?;
    send_verification(&state, &scope, &user, &client).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(VerificationSent { email: user.email, expires_in: Purpose::Verification.ttl_seconds() }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::web::extract::parse_body;

    #[test]
    fn a_token_round_trips_and_names_its_purpose() {
        let (tenant, user) = (Uuid::now_v7(), Uuid::now_v7());
        let token = MailToken::generate(Purpose::Reset, tenant, user);
        let raw = token.encode();
        assert!(raw.starts_with(&format!("rst.{tenant}.{user}.")));
        let parsed = MailToken::parse(&raw, Purpose::Reset).expect("parses");
        assert_eq!((parsed.tenant_id, parsed.user_id, parsed.hash()), (tenant, user, token.hash()));
        // A reset token is no verification token, and the other way round.
        assert!(MailToken::parse(&raw, Purpose::Verification).is_none());
        let verify = MailToken::generate(Purpose::Verification, tenant, user).encode();
        assert!(verify.starts_with("vfy.") && MailToken::parse(&verify, Purpose::Reset).is_none());
        for bad in ["rst.x.y.z", "rst.a.b", "", &format!("rst.{tenant}.{user}."), &format!("{raw}.more")] {
            assert!(MailToken::parse(bad, Purpose::Reset).is_none(), "{bad}");
        }
        assert!(!format!("{token:?}").contains(&token.secret));
        assert_ne!(token.hash(), MailToken::generate(Purpose::Reset, tenant, user).hash());
    }

    #[test]
    fn the_documented_bodies_are_accepted_and_bad_ones_name_their_field() {
        let reset: Reset = parse_body(br#"{"token": "rst.a.b.c", "password": "a new long passphrase"}"#).expect("ok");
        assert_eq!(reset.token.as_str(), "rst.a.b.c");
        // `Reset` has no `Debug` (its token is a credential): no `expect_err`.
        let Err(err) = parse_body::<Reset>(br#"{"token": "rst.a.b.c", "password": "short"}"#) else {
            panic!("a short password is refused");
        };
        assert_eq!(err.invalid_fields(), ["password"]);
        let err = parse_body::<Forgot>(br#"{"email": "a@b.co", "extra": 1}"#).expect_err("refused");
        assert!(!err.invalid_fields().is_empty());
        let verify: Verify = parse_body(br#"{"token": "vfy.a.b.c"}"#).expect("ok");
        assert_eq!(verify.token.as_str(), "vfy.a.b.c");
    }
}
