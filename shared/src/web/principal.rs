//! The `Principal` extractor: who is calling, from an access token or an API
//! key, checked once per request; the caller's request is counted against
//! their rate limit on the way (one write). The `Principal` itself, and what
//! it may do, is `auth::principal`.

use axum::{extract::FromRequestParts, http::request::Parts};
use uuid::Uuid;

use super::{AppState, rate_limit::RateSlot};
use crate::{
    auth::{
        Principal, api_key,
        principal::{API_KEY_HEADER, API_KEY_ROLE, TENANT_HEADER},
        proofs::CredentialLookup,
    },
    error::AppError,
    store::api_keys::{KeyState, StoredKey},
};

impl FromRequestParts<AppState> for Principal {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        if let Some(principal) = parts.extensions.get::<Principal>() {
            return Ok(principal.clone());
        }
        let (mut principal, stored_key) = match presented_credential(parts)? {
            Presented::ApiKey(secret) => {
                let (principal, stored) = authenticate_api_key(state, secret, false).await?;
                (principal, Some(stored))
            }
            Presented::AccessToken(token) => {
                let principal = Principal::from_access_claims(&state.verifier.verify(token)?);
                confirm_session_standing(state, &principal, false).await?;
                (principal, None)
            }
        };
        if let Some(raw) = parts.headers.get(TENANT_HEADER) {
            let requested = raw
                .to_str()
                .ok()
                .and_then(|v| Uuid::parse_str(v.trim()).ok())
                .ok_or_else(|| AppError::invalid_field("X-Tenant-ID", "must be a UUID"))?;
            principal.act_in(requested)?;
        }
        count_request(state, parts, &principal, stored_key.as_ref()).await?;
        parts.extensions.insert(principal.clone());
        Ok(principal)
    }
}

enum Presented<'a> {
    AccessToken(&'a str),
    ApiKey(&'a str),
}

/// `X-API-Key: <key>`, or `Authorization: Bearer <key or access token>`.
fn presented_credential(parts: &Parts) -> Result<Presented<'_>, AppError> {
    if let Some(value) = parts.headers.get(API_KEY_HEADER) {
        let key = value.to_str().map_err(|_| AppError::invalid_token("the X-API-Key header is malformed"))?.trim();
        return Ok(Presented::ApiKey(key));
    }
    let token = bearer_token(parts)?;
    Ok(if api_key::looks_like_key(token) { Presented::ApiKey(token) } else { Presented::AccessToken(token) })
}

/// A principal whose standing was read from the table just now (strongly
/// consistent, no cache), for the sensitive actions: API keys, users and
/// roles, and later SSO and billing settings. A removed or demoted admin
/// cannot do these even within the few seconds the cache allows elsewhere.
pub struct Fresh(pub Principal);

impl FromRequestParts<AppState> for Fresh {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let principal = Principal::from_request_parts(parts, state).await?;
        match principal.credential() {
            crate::auth::Credential::Session { .. } => confirm_session_standing(state, &principal, true).await?,
            crate::auth::Credential::ApiKey { .. } => {
                let stored = state
                    .store
                    .api_key_for_auth(
                        &CredentialLookup::named_by_credential(principal.home_scope().tenant_id()),
                        principal.api_key_id().unwrap_or_default(),
                    )
                    .await?
                    .ok_or_else(|| AppError::invalid_token("the API key is not valid"))?;
                if stored.key.state(crate::domain::now()) != KeyState::Active
                    || key_role(state, &principal.home_scope(), &stored, true).await? != principal.role()
                {
                    return Err(standing_lost());
                }
            }
        }
        Ok(Fresh(principal))
    }
}

/// 401 for a credential whose holder lost the access it was issued with.
fn standing_lost() -> AppError {
    AppError::invalid_token(
        "this credential no longer carries its holder's access (signed out, removed, deactivated or role changed); sign in again",
    )
}

/// An access token is good while its session is live and its user still
/// exists, is active and holds the role and platform standing the token
/// names; a changed role needs a new token (refresh gives one). Cached for
/// [`crate::store::standing::STANDING_TTL`] unless `fresh`.
async fn confirm_session_standing(state: &AppState, principal: &Principal, fresh: bool) -> Result<(), AppError> {
    let crate::auth::Credential::Session { session_id } = principal.credential() else {
        return Ok(());
    };
    let home = principal.home_scope();
    let standing = state.store.current_standing(&home, principal.user_id(), Some(*session_id), fresh).await?;
    let holds = standing.session_live == Some(true)
        && standing.user.is_some_and(|user| {
            user.is_active && user.role == principal.role() && user.platform_admin == principal.is_platform_admin()
        });
    if holds { Ok(()) } else { Err(standing_lost()) }
}

/// The role a key acts with: [`API_KEY_ROLE`] at most, and never more than
/// its owner holds now. An owner who is gone or deactivated leaves the key
/// powerless until an admin transfers it.
async fn key_role(
    state: &AppState,
    scope: &crate::auth::TenantScope,
    stored: &StoredKey,
    fresh: bool,
) -> Result<crate::auth::Role, AppError> {
    let owner = Uuid::parse_str(&stored.key.created_by).map_err(|_| standing_lost())?;
    let standing = state.store.current_standing(scope, owner, None, fresh).await?;
    match standing.user {
        Some(user) if user.is_active => Ok(if user.role.at_least(API_KEY_ROLE) { API_KEY_ROLE } else { user.role }),
        _ => Err(AppError::invalid_token(
            "the API key's owner no longer has access to this tenant; an admin can transfer the key to a member",
        )),
    }
}

/// One GetItem: the key the secret names, if its hash matches and it is
/// neither revoked nor expired. Which of those failed is only told once the
/// hash matched, so a guess learns nothing. Then its owner's standing
/// (cached, [`key_role`]).
async fn authenticate_api_key(state: &AppState, secret: &str, fresh: bool) -> Result<(Principal, StoredKey), AppError> {
    let invalid = || AppError::invalid_token("the API key is not valid");
    let presented = api_key::parse(secret).ok_or_else(invalid)?;
    // Trusted only after the hash below matches: the ids come from the caller.
    let lookup = CredentialLookup::named_by_credential(presented.tenant_id);
    let stored = state.store.api_key_for_auth(&lookup, presented.key_id).await?.ok_or_else(invalid)?;
    let now = crate::domain::now();
    let hash = api_key::hash(secret);
    // The current secret, or the one it replaced during its grace period.
    let matched = if api_key::hashes_match(&hash, &stored.secret_hash) {
        Some(stored.secret_hash.as_str())
    } else {
        stored
            .previous_secret
            .as_ref()
            .filter(|(old, until)| *until > now && api_key::hashes_match(&hash, old))
            .map(|(old, _)| old.as_str())
    };
    let scope = matched.and_then(|stored_hash| lookup.verified(&hash, stored_hash)).ok_or_else(invalid)?;
    if stored.key.environment != presented.environment || stored.key.tenant_id != presented.tenant_id {
        return Err(invalid());
    }
    match stored.key.state(now) {
        KeyState::Active => {}
        KeyState::Revoked => return Err(AppError::invalid_token("the API key has been revoked")),
        KeyState::Expired => {
            return Err(AppError::new(
                axum::http::StatusCode::UNAUTHORIZED,
                "token_expired",
                format!("the API key expired at {}", stored.key.expires_at.as_deref().unwrap_or("?")),
            ));
        }
    }
    let role = key_role(state, &scope, &stored, fresh).await?;
    let key = &stored.key;
    let created_by = Uuid::parse_str(&key.created_by).unwrap_or(Uuid::nil());
    let principal =
        Principal::from_api_key(key.id, key.tenant_id, created_by, role, key.scopes.clone(), key.environment);
    Ok((principal, stored))
}

/// Counts the request against the caller's limit (one write) and leaves the
/// status for the response headers; over the limit is 429.
async fn count_request(
    state: &AppState,
    parts: &Parts,
    principal: &Principal,
    stored_key: Option<&StoredKey>,
) -> Result<(), AppError> {
    let home = principal.home_scope();
    let policy = state.store.tenant_policy(&home).await?;
    let limit = policy.requests_per_minute;
    let now = crate::domain::now();
    // Neither a key nor a token outlives its tenant's deactivation by more
    // than the policy cache's few seconds.
    if !policy.usable && !principal.is_platform_admin() {
        return Err(AppError::forbidden("tenant_inactive", "the tenant of these credentials is not active"));
    }
    // The tenant's allow-list binds its own people and keys; a platform
    // admin is the operator, not a member, and is not held to it. Refused
    // before counting: a request from outside spends none of the limit.
    if !principal.is_platform_admin() && !policy.admits(super::audit::client_ip(parts).as_deref()) {
        return Err(AppError::forbidden(
            "ip_not_allowed",
            "requests from this address are not allowed for this tenant (configuration.security.ip_whitelisting)",
        ));
    }
    let status = match stored_key {
        Some(stored) => state.store.record_api_key_use(&home, stored, limit, now).await?,
        None => state.store.record_user_request(&home, principal.user_id(), limit, now).await?,
    };
    if let Some(slot) = parts.extensions.get::<RateSlot>() {
        slot.set(status.clone());
    }
    if let Some(slot) = parts.extensions.get::<crate::metrics::CallerSlot>() {
        let person = (!principal.user_id().is_nil()).then(|| principal.user_id());
        slot.set(crate::metrics::Caller { tenant_id: home.tenant_id(), tier: policy.plan.clone(), user_id: person });
    }
    if status.allowed { Ok(()) } else { Err(status.refusal()) }
}

fn bearer_token(parts: &Parts) -> Result<&str, AppError> {
    let header = parts.headers.get(axum::http::header::AUTHORIZATION).ok_or_else(|| {
        AppError::unauthorized("authentication is required: send Authorization: Bearer <token> or X-API-Key: <key>")
    })?;
    let value = header.to_str().map_err(|_| AppError::invalid_token("the Authorization header is malformed"))?;
    let (scheme, token) = value
        .split_once(' ')
        .ok_or_else(|| AppError::invalid_token("the Authorization header must be 'Bearer <token>'"))?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(AppError::invalid_token("the Authorization header must be 'Bearer <token>'"));
    }
    Ok(token.trim())
}
