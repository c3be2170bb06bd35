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
        principal::{API_KEY_HEADER, TENANT_HEADER},
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
                let (principal, stored) = authenticate_api_key(state, secret).await?;
                (principal, Some(stored))
            }
            Presented::AccessToken(token) => (Principal::from_access_claims(&state.verifier.verify(token)?), None),
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

/// One GetItem: the key the secret names, if its hash matches and it is
/// neither revoked nor expired. Which of those failed is only told once the
/// hash matched, so a guess learns nothing.
async fn authenticate_api_key(state: &AppState, secret: &str) -> Result<(Principal, StoredKey), AppError> {
    let invalid = || AppError::invalid_token("the API key is not valid");
    let presented = api_key::parse(secret).ok_or_else(invalid)?;
    // Trusted only after the hash below matches: the ids come from the caller.
    let lookup = CredentialLookup::named_by_credential(presented.tenant_id);
    let stored = state.store.api_key_for_auth(&lookup, presented.key_id).await?.ok_or_else(invalid)?;
    let now = crate::domain::now();
    let hash = api_key::hash(secret);
    let matches = api_key::hashes_match(&hash, &stored.secret_hash)
        || stored
            .previous_secret
            .as_ref()
            .is_some_and(|(old, until)| *until > now && api_key::hashes_match(&hash, old));
    if !matches || stored.key.environment != presented.environment || stored.key.tenant_id != presented.tenant_id {
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
    let key = &stored.key;
    let created_by = Uuid::parse_str(&key.created_by).unwrap_or(Uuid::nil());
    let principal = Principal::from_api_key(key.id, key.tenant_id, created_by, key.scopes.clone(), key.environment);
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
    let status = match stored_key {
        // A key has no expiry of its own to end it when its tenant is
        // deactivated (an access token lives 15 minutes and login refuses).
        Some(_) if !policy.usable => {
            return Err(AppError::forbidden("tenant_inactive", "the tenant of this API key is not active"));
        }
        Some(stored) => state.store.record_api_key_use(&home, stored, limit, now).await?,
        None => state.store.record_user_request(&home, principal.user_id(), limit, now).await?,
    };
    if let Some(slot) = parts.extensions.get::<RateSlot>() {
        slot.set(status.clone());
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
