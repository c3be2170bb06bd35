//! The verified caller. Every tenant-owned read or write needs a `TenantScope`,
//! and the only ways to get one start from a `Principal` (or from a trusted
//! internal path that says so in its name), so a handler cannot reach another
//! tenant's data by forgetting a check.

use axum::{extract::FromRequestParts, http::request::Parts};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{error::AppError, state::AppState};

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

#[derive(Debug, Clone)]
pub struct Principal {
    pub user_id: Uuid,
    /// The tenant the caller acts in: their own, or for a platform admin the
    /// one named by `X-Tenant-ID`.
    pub tenant_id: Uuid,
    /// The tenant the caller belongs to.
    pub home_tenant_id: Uuid,
    pub role: Role,
    pub platform_admin: bool,
    pub session_id: Uuid,
    pub email: Option<String>,
}

pub const TENANT_HEADER: &str = "x-tenant-id";

impl FromRequestParts<AppState> for Principal {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        if let Some(principal) = parts.extensions.get::<Principal>() {
            return Ok(principal.clone());
        }
        let token = bearer_token(parts)?;
        let claims = state.verifier.verify(token)?;
        let mut principal = Principal {
            user_id: claims.sub,
            tenant_id: claims.tid,
            home_tenant_id: claims.tid,
            role: claims.role,
            platform_admin: claims.padm,
            session_id: claims.sid,
            email: claims.email,
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
        parts.extensions.insert(principal.clone());
        Ok(principal)
    }
}

fn bearer_token(parts: &Parts) -> Result<&str, AppError> {
    let header = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .ok_or_else(|| AppError::unauthorized("authentication is required: send Authorization: Bearer <token>"))?;
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

    /// Tenant roles apply inside the caller's own tenant; a platform admin
    /// holds every role everywhere.
    pub fn require_role(&self, required: Role, resource: &str) -> Result<(), AppError> {
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

    pub fn require_platform_admin(&self, resource: &str) -> Result<PlatformAdmin, AppError> {
        if self.platform_admin {
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
            session_id: Uuid::now_v7(),
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
