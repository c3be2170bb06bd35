//! Issuing token pairs and rotating refresh tokens.
//!
//! A refresh token reads `rt.<tenant>.<session>.<secret>`: the ids route the
//! lookup (one GetItem), the 256-bit secret proves possession, and only its
//! SHA-256 is stored.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use rand::RngCore;
use serde::Serialize;
use sha2::{Digest, Sha256};
use shared::{
    AppError, AppResult, AppState,
    audit::{AuditContext, ClientInfo},
    auth::{TenantScope, jwt::AccessGrant, proofs::CredentialLookup},
    domain::user::{User, UserView},
    store::sessions::Rotation,
    string_enum,
};
use uuid::Uuid;

/// Absolute lifetime of a login; rotation does not extend it. A tenant's
/// `configuration.security.session_timeout_minutes` shortens it.
pub const SESSION_TTL_SECONDS: i64 = 30 * 24 * 3600;

/// How long a sign-in of the tenant may last: the platform's 30 days, or
/// less when the tenant's security policy says so (cached with the
/// tenant's rate limit, so it costs no read of its own).
async fn session_lifetime(state: &AppState, scope: &TenantScope) -> AppResult<i64> {
    let policy = state.store.tenant_policy(scope).await?;
    Ok(policy.session_lifetime_seconds.map_or(SESSION_TTL_SECONDS, |cap| cap.min(SESSION_TTL_SECONDS)))
}

/// When a sign-in started: its id is a UUIDv7, whose first 48 bits are the
/// creation time, so no attribute is needed to apply a timeout the tenant
/// shortened after the sign-in began.
fn session_started_at(session_id: Uuid) -> Option<i64> {
    let (seconds, _) = session_id.get_timestamp()?.to_unix();
    i64::try_from(seconds).ok()
}

pub struct RefreshToken {
    pub tenant_id: Uuid,
    pub session_id: Uuid,
    pub secret: String,
}

impl RefreshToken {
    fn generate(tenant_id: Uuid, session_id: Uuid) -> Self {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self { tenant_id, session_id, secret: URL_SAFE_NO_PAD.encode(bytes) }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        let mut parts = raw.split('.');
        let (Some("rt"), Some(t), Some(s), Some(secret), None) =
            (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        Some(Self {
            tenant_id: Uuid::parse_str(t).ok()?,
            session_id: Uuid::parse_str(s).ok()?,
            secret: secret.to_owned(),
        })
    }

    fn encode(&self) -> String {
        format!("rt.{}.{}.{}", self.tenant_id, self.session_id, self.secret)
    }

    fn hash(&self) -> String {
        Sha256::digest(self.secret.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
    }
}

string_enum!(
    /// How to present the access token: `Authorization: Bearer <token>`.
    TokenType {
        Bearer => "bearer",
    }
);

/// A signed-in answer (login, refresh, accepted invitation): a token pair and
/// whom it is for.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenResponse {
    /// A JWT (ES256) for `Authorization: Bearer`, verifiable with
    /// `/.well-known/jwks.json`.
    pub access_token: String,
    /// Single use: `POST /v1/auth/refresh` answers a new pair and retires it.
    pub refresh_token: String,
    pub token_type: TokenType,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// Seconds until the sign-in ends and the refresh token with it (30
    /// days from sign-in, or the tenant's `session_timeout_minutes`):
    /// refreshing does not extend it.
    pub refresh_expires_in: i64,
    pub user: UserView,
}

/// A new login: a new refresh-token family and its first token pair.
pub async fn start_session(
    state: &AppState,
    scope: &TenantScope,
    user: &User,
    client: &ClientInfo,
) -> AppResult<TokenResponse> {
    let session_id = Uuid::now_v7();
    let refresh = RefreshToken::generate(scope.tenant_id(), session_id);
    let expires_at = chrono::Utc::now().timestamp() + session_lifetime(state, scope).await?;
    let audit = AuditContext::user(user.id, Some(user.email.clone()), client);
    state.store.create_session(scope, session_id, user.id, &refresh.hash(), expires_at, &audit).await?;
    token_response(state, user, session_id, &refresh, expires_at)
}

fn token_response(
    state: &AppState,
    user: &User,
    session_id: Uuid,
    refresh: &RefreshToken,
    session_expires_at: i64,
) -> AppResult<TokenResponse> {
    let access = state.signer()?.issue(&AccessGrant {
        user_id: user.id,
        email: Some(user.email.clone()),
        tenant_id: user.tenant_id,
        role: user.role,
        platform_admin: user.platform_admin,
        session_id,
    })?;
    Ok(TokenResponse {
        access_token: access.token,
        refresh_token: refresh.encode(),
        token_type: TokenType::Bearer,
        expires_in: access.expires_in,
        refresh_expires_in: (session_expires_at - chrono::Utc::now().timestamp()).max(0),
        user: user.view(),
    })
}

/// Rotates a refresh token. Presenting a token that was already rotated out
/// revokes its whole family: one of the two holders is not the user.
pub async fn rotate(state: &AppState, raw: &str, client: &ClientInfo) -> AppResult<TokenResponse> {
    let invalid = || AppError::invalid_token("the refresh token is invalid or revoked");
    let presented = RefreshToken::parse(raw).ok_or_else(invalid)?;
    // The token names its tenant and session; they are trusted once the
    // token's hash matched the session's.
    let lookup = CredentialLookup::named_by_credential(presented.tenant_id);
    let session = state.store.session_for_refresh(&lookup, presented.session_id).await?.ok_or_else(invalid)?;
    if session.revoked {
        return Err(invalid());
    }
    if session.expires_at <= chrono::Utc::now().timestamp() {
        return Err(AppError::token_expired());
    }
    let presented_hash = presented.hash();
    let Some(scope) = lookup.verified(&presented_hash, &session.token_hash) else {
        if let Some(scope) = state.store.rotated_out_scope(&lookup, presented.session_id, &presented_hash).await? {
            revoke_for_reuse(state, &scope, presented.session_id).await?;
        }
        return Err(invalid());
    };
    // A stolen refresh token is not kept alive from outside the tenant's
    // allow-list, and a timeout the tenant set after this sign-in began
    // ends it too (both from the cached tenant policy).
    let policy = state.store.tenant_policy(&scope).await?;
    if !policy.admits(client.ip_address.as_deref()) {
        return Err(AppError::forbidden(
            "ip_not_allowed",
            "requests from this address are not allowed for this tenant (configuration.security.ip_whitelisting)",
        ));
    }
    let lifetime = policy.session_lifetime_seconds.map_or(SESSION_TTL_SECONDS, |cap| cap.min(SESSION_TTL_SECONDS));
    let ends_at = session_started_at(presented.session_id)
        .map_or(session.expires_at, |started| (started + lifetime).min(session.expires_at));
    if ends_at <= chrono::Utc::now().timestamp() {
        return Err(AppError::token_expired());
    }
    let user = state.store.get_user(&scope, session.user_id).await?.filter(|u| u.is_active).ok_or_else(invalid)?;
    ensure_tenant_usable(state, &scope).await?;
    let next = RefreshToken::generate(presented.tenant_id, presented.session_id);
    match state
        .store
        .rotate_session(&scope, presented.session_id, &presented_hash, &next.hash(), session.expires_at)
        .await?
    {
        Rotation::Rotated => token_response(state, &user, presented.session_id, &next, ends_at),
        Rotation::Reused => {
            revoke_for_reuse(state, &scope, presented.session_id).await?;
            Err(invalid())
        }
        Rotation::Unknown => Err(invalid()),
    }
}

async fn revoke_for_reuse(state: &AppState, scope: &TenantScope, session_id: Uuid) -> AppResult<()> {
    tracing::warn!(tenant_id = %scope.tenant_id(), session_id = %session_id, "refresh token reuse: family revoked");
    state
        .store
        .revoke_session(scope, session_id, "reuse_detected", &AuditContext::system("refresh-token-reuse-detection"))
        .await
}

/// Members of a deactivated or suspended tenant cannot start or extend a login.
pub async fn ensure_tenant_usable(state: &AppState, scope: &TenantScope) -> AppResult<()> {
    match state.store.get_tenant(scope).await? {
        Some((tenant, _)) if tenant.status == "inactive" || tenant.status == "suspended" => {
            Err(AppError::forbidden("tenant_inactive", format!("the tenant is {}", tenant.status)))
        }
        Some(_) => Ok(()),
        None => Err(AppError::unauthorized("invalid email or password")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sign_in_starts_when_its_id_was_made() {
        let before = chrono::Utc::now().timestamp();
        let started = session_started_at(Uuid::now_v7()).expect("a v7 id has a time");
        assert!((before..=before + 1).contains(&started), "{started} is now");
        assert_eq!(session_started_at(Uuid::new_v4()), None, "a v4 id has none");
    }
}
