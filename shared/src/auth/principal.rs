//! The verified caller. Every tenant-owned read or write needs a `TenantScope`,
//! and the only ways to get one start from a `Principal` (or from a trusted
//! internal path that says so in its name), so a handler cannot reach another
//! tenant's data by forgetting a check.

use axum::{extract::FromRequestParts, http::request::Parts};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{
    api_key::{self, KeyEnvironment},
    scopes::Scope,
};
use crate::{
    error::AppError,
    rate_limit::RateSlot,
    state::AppState,
    store::api_keys::{KeyState, StoredKey},
};

/// Tenant roles, strongest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Owner,
    Admin,
    Developer,
    User,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Owner, Role::Admin, Role::Developer, Role::User];

    fn rank(self) -> u8 {
        match self {
            Role::Owner => 4,
            Role::Admin => 3,
            Role::Developer => 2,
            Role::User => 1,
        }
    }

    /// True when this role includes everything `other` may do.
    pub fn at_least(self, other: Role) -> bool {
        self.rank() >= other.rank()
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Developer => "developer",
            Role::User => "user",
        }
    }

    pub fn parse(value: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == value)
    }
}

/// How the caller proved who they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// A person's access token, from a session.
    Session { session_id: Uuid },
    /// An API key: it may do what its scopes name, with the admin role at most.
    ApiKey { key_id: Uuid, scopes: Vec<Scope>, environment: KeyEnvironment },
}

#[derive(Debug, Clone)]
pub struct Principal {
    /// The person, or for an API key the person who created it.
    pub user_id: Uuid,
    /// The tenant the caller acts in: their own, or for a platform admin the
    /// one named by `X-Tenant-ID`.
    pub tenant_id: Uuid,
    /// The tenant the caller belongs to.
    pub home_tenant_id: Uuid,
    pub role: Role,
    pub platform_admin: bool,
    pub credential: Credential,
    pub email: Option<String>,
}

pub const TENANT_HEADER: &str = "x-tenant-id";
pub const API_KEY_HEADER: &str = "x-api-key";

/// The role an API key acts with: enough for every tenant route a scope
/// opens, never owner-only actions.
pub const API_KEY_ROLE: Role = Role::Admin;

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
            Presented::AccessToken(token) => {
                let claims = state.verifier.verify(token)?;
                let principal = Principal {
                    user_id: claims.sub,
                    tenant_id: claims.tid,
                    home_tenant_id: claims.tid,
                    role: claims.role,
                    platform_admin: claims.padm,
                    credential: Credential::Session { session_id: claims.sid },
                    email: claims.email,
                };
                (principal, None)
            }
        };
        if let Some(raw) = parts.headers.get(TENANT_HEADER) {
            let requested = raw
                .to_str()
                .ok()
                .and_then(|v| Uuid::parse_str(v.trim()).ok())
                .ok_or_else(|| AppError::invalid_field("X-Tenant-ID", "must be a UUID"))?;
            if requested != principal.tenant_id {
                if !principal.platform_admin {
                    return Err(AppError::forbidden(
                        "tenant_mismatch",
                        "X-Tenant-ID does not match the tenant of your credentials",
                    )
                    .with_details(serde_json::json!({
                        "header_tenant_id": requested.to_string(),
                        "principal_tenant_id": principal.tenant_id.to_string(),
                    })));
                }
                principal.tenant_id = requested;
            }
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
    let scope = TenantScope::trusted_internal(presented.tenant_id);
    let stored = state.store.api_key_for_auth(&scope, presented.key_id).await?.ok_or_else(invalid)?;
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
    let principal = Principal {
        user_id: Uuid::parse_str(&key.created_by).unwrap_or(Uuid::nil()),
        tenant_id: key.tenant_id,
        home_tenant_id: key.tenant_id,
        role: API_KEY_ROLE,
        platform_admin: false,
        credential: Credential::ApiKey { key_id: key.id, scopes: key.scopes.clone(), environment: key.environment },
        email: None,
    };
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
        None => state.store.record_user_request(&home, principal.user_id, limit, now).await?,
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

/// Proof that the caller is a platform administrator; store operations that
/// cross tenants take it as an argument.
#[derive(Debug, Clone, Copy)]
pub struct PlatformAdmin {
    _private: (),
}

impl Principal {
    pub fn current_role_name(&self) -> &'static str {
        if self.platform_admin { "platform_admin" } else { self.role.as_str() }
    }

    /// Every route's declaration of what it needs: a person needs `role` (in
    /// their own tenant; a platform admin holds every role everywhere), an
    /// API key needs `scope` (403 `insufficient_scope` naming it).
    pub fn require(&self, role: Role, scope: Scope, resource: &str) -> Result<(), AppError> {
        match &self.credential {
            Credential::Session { .. } => self.require_role(role, resource),
            Credential::ApiKey { scopes, .. } => {
                if !scopes.contains(&scope) {
                    return Err(AppError::forbidden(
                        "insufficient_scope",
                        format!("this API key lacks the scope {}", scope.as_str()),
                    )
                    .with_details(serde_json::json!({
                        "required_scope": scope.as_str(),
                        "granted_scopes": scopes,
                        "resource": resource,
                    })));
                }
                self.require_role(role, resource)
            }
        }
    }

    /// For routes only a signed-in person may use (sessions, API key
    /// management): an API key is refused whatever its scopes. Returns the
    /// session the access token belongs to.
    pub fn require_session(&self, resource: &str) -> Result<Uuid, AppError> {
        match &self.credential {
            Credential::Session { session_id } => Ok(*session_id),
            Credential::ApiKey { .. } => Err(AppError::forbidden(
                "insufficient_permissions",
                "this route needs a signed-in user; API keys cannot use it",
            )
            .with_details(serde_json::json!({
                "required": "user_session",
                "current": "api_key",
                "resource": resource,
            }))),
        }
    }

    /// A signed-in person with at least `role`: for routes no API key may use.
    pub fn require_person(&self, role: Role, resource: &str) -> Result<(), AppError> {
        self.require_session(resource)?;
        self.require_role(role, resource)
    }

    pub fn api_key_id(&self) -> Option<Uuid> {
        match &self.credential {
            Credential::ApiKey { key_id, .. } => Some(*key_id),
            Credential::Session { .. } => None,
        }
    }

    /// Tenant roles apply inside the caller's own tenant; a platform admin
    /// holds every role everywhere.
    fn require_role(&self, required: Role, resource: &str) -> Result<(), AppError> {
        if self.platform_admin || (self.tenant_id == self.home_tenant_id && self.role.at_least(required)) {
            Ok(())
        } else {
            Err(AppError::insufficient_permissions(
                required.as_str(),
                self.current_role_name(),
                resource,
                self.tenant_id,
            ))
        }
    }

    /// Platform administration: people only (no key is ever a platform admin).
    pub fn require_platform_admin(&self, resource: &str) -> Result<PlatformAdmin, AppError> {
        if self.platform_admin && matches!(self.credential, Credential::Session { .. }) {
            Ok(PlatformAdmin { _private: () })
        } else {
            Err(AppError::insufficient_permissions(
                "platform_admin",
                self.current_role_name(),
                resource,
                self.tenant_id,
            ))
        }
    }

    /// The caller's own tenant, where their user and sessions live.
    pub fn home_scope(&self) -> TenantScope {
        TenantScope { tenant_id: self.home_tenant_id }
    }

    pub fn scope(&self) -> TenantScope {
        TenantScope { tenant_id: self.tenant_id }
    }

    /// The scope of tenant `id` if the caller may see it; otherwise 404, the
    /// same answer as for a tenant that does not exist.
    pub fn scope_for(&self, id: Uuid, resource: &str) -> Result<TenantScope, AppError> {
        if self.platform_admin || id == self.tenant_id {
            Ok(TenantScope { tenant_id: id })
        } else {
            Err(AppError::not_found(resource))
        }
    }
}

/// The partition of one tenant. Key builders for tenant-owned items take it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TenantScope {
    tenant_id: Uuid,
}

impl TenantScope {
    pub fn tenant_id(&self) -> Uuid {
        self.tenant_id
    }

    /// For code that acts for the platform itself, never on a caller's say-so:
    /// workers consuming our own events, login after the credentials matched,
    /// a platform admin creating a tenant.
    pub fn trusted_internal(tenant_id: Uuid) -> Self {
        Self { tenant_id }
    }

    /// Partition key of everything the tenant owns. The closing `#` keeps
    /// `T#1#` from prefixing `T#12#` in IAM LeadingKeys conditions.
    pub fn pk(&self) -> String {
        format!("T#{}#", self.tenant_id)
    }
}

impl PlatformAdmin {
    pub fn scope_of(&self, tenant_id: Uuid) -> TenantScope {
        TenantScope { tenant_id }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(role: Role, platform_admin: bool) -> Principal {
        let tenant = Uuid::now_v7();
        Principal {
            user_id: Uuid::now_v7(),
            tenant_id: tenant,
            home_tenant_id: tenant,
            role,
            platform_admin,
            credential: Credential::Session { session_id: Uuid::now_v7() },
            email: None,
        }
    }

    #[test]
    fn roles_are_ordered_owner_admin_developer_user() {
        assert!(Role::Owner.at_least(Role::Admin));
        assert!(Role::Admin.at_least(Role::Developer));
        assert!(Role::Developer.at_least(Role::User));
        assert!(!Role::User.at_least(Role::Developer));
        assert!(!Role::Admin.at_least(Role::Owner));
    }

    #[test]
    fn a_weaker_role_is_refused_with_the_rbac_details() {
        let p = principal(Role::Developer, false);
        let err = p.require_role(Role::Admin, "billing_information").expect_err("refused");
        assert_eq!(err.code(), "insufficient_permissions");
        match err {
            AppError::Api { details, .. } => {
                assert_eq!(details["required_role"], "admin");
                assert_eq!(details["current_role"], "developer");
                assert_eq!(details["resource"], "billing_information");
                assert_eq!(details["tenant_id"], p.tenant_id.to_string());
            }
            AppError::Internal(_) => panic!("expected an API error"),
        }
    }

    #[test]
    fn another_tenants_scope_is_not_found_unless_platform_admin() {
        let member = principal(Role::Owner, false);
        let other = Uuid::now_v7();
        assert_eq!(member.scope_for(other, "tenant").expect_err("hidden").code(), "not_found");
        assert!(member.scope_for(member.tenant_id, "tenant").is_ok());
        let admin = principal(Role::Owner, true);
        assert_eq!(admin.scope_for(other, "tenant").expect("allowed").tenant_id(), other);
    }

    #[test]
    fn tenant_keys_close_with_a_delimiter() {
        let id = Uuid::nil();
        assert_eq!(TenantScope::trusted_internal(id).pk(), format!("T#{id}#"));
    }
}
