//! The verified caller. Every tenant-owned read or write needs a `TenantScope`,
//! and the only ways to get one are a `Principal`'s authorization (`require`
//! and its kin answer the scope) or a named proof (`super::proofs`), so a
//! handler cannot reach another tenant's data by forgetting a check.

use uuid::Uuid;

use super::{api_key::KeyEnvironment, proofs::PlatformAdmin, scopes::Scope};
use crate::error::AppError;

pub use crate::domain::role::Role;

/// How the caller proved who they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// A person's access token, from a session.
    Session { session_id: Uuid },
    /// An API key: it may do what its scopes name, with the admin role at most.
    ApiKey { key_id: Uuid, scopes: Vec<Scope>, environment: KeyEnvironment },
}

/// Fields are private: a principal is made only from a verified access token
/// or an authenticated API key (the extractor in `web::principal`), and what it may do is
/// asked through `require*`, which answer the scope to act in.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The person, or for an API key the person who created it.
    user_id: Uuid,
    /// The tenant the caller acts in: their own, or for a platform admin the
    /// one named by `X-Tenant-ID`.
    tenant_id: Uuid,
    /// The tenant the caller belongs to.
    home_tenant_id: Uuid,
    role: Role,
    platform_admin: bool,
    credential: Credential,
    email: Option<String>,
}

pub const TENANT_HEADER: &str = "x-tenant-id";
pub const API_KEY_HEADER: &str = "x-api-key";

/// The role an API key acts with: enough for every tenant route a scope
/// opens, never owner-only actions.
pub const API_KEY_ROLE: Role = Role::Admin;

impl Principal {
    /// A person, from an access token the verifier accepted.
    pub(crate) fn from_access_claims(claims: &super::jwt::AccessClaims) -> Self {
        Principal {
            user_id: claims.sub,
            tenant_id: claims.tid,
            home_tenant_id: claims.tid,
            role: claims.role,
            platform_admin: claims.padm,
            credential: Credential::Session { session_id: claims.sid },
            email: claims.email.clone(),
        }
    }

    /// A machine, from an API key whose secret matched (`user_id` is the
    /// person who created it).
    pub(crate) fn from_api_key(
        key_id: Uuid,
        tenant_id: Uuid,
        created_by: Uuid,
        role: Role,
        scopes: Vec<Scope>,
        environment: KeyEnvironment,
    ) -> Self {
        Principal {
            user_id: created_by,
            tenant_id,
            home_tenant_id: tenant_id,
            role,
            platform_admin: false,
            credential: Credential::ApiKey { key_id, scopes, environment },
            email: None,
        }
    }

    /// `X-Tenant-ID`: another tenant than the caller's own is 403
    /// `tenant_mismatch`, except for a platform admin, who acts in it.
    pub(crate) fn act_in(&mut self, requested: Uuid) -> Result<(), AppError> {
        if requested == self.tenant_id {
            return Ok(());
        }
        if !self.platform_admin {
            return Err(AppError::forbidden(
                "tenant_mismatch",
                "X-Tenant-ID does not match the tenant of your credentials",
            )
            .with_details(serde_json::json!({
                "header_tenant_id": requested.to_string(),
                "principal_tenant_id": self.tenant_id.to_string(),
            })));
        }
        self.tenant_id = requested;
        Ok(())
    }
}

impl Principal {
    pub fn user_id(&self) -> Uuid {
        self.user_id
    }

    /// The tenant the caller acts in.
    pub fn tenant_id(&self) -> Uuid {
        self.tenant_id
    }

    pub fn role(&self) -> Role {
        self.role
    }

    pub fn is_platform_admin(&self) -> bool {
        self.platform_admin
    }

    pub fn email(&self) -> Option<&str> {
        self.email.as_deref()
    }

    pub fn credential(&self) -> &Credential {
        &self.credential
    }

    /// False for a platform admin acting in another tenant (`X-Tenant-ID`).
    pub fn acts_in_home_tenant(&self) -> bool {
        self.tenant_id == self.home_tenant_id
    }

    pub fn current_role_name(&self) -> &'static str {
        if self.platform_admin { "platform_admin" } else { self.role.as_str() }
    }

    /// Every route's declaration of what it needs: a person needs `role` (in
    /// their own tenant; a platform admin holds every role everywhere), an
    /// API key needs `scope` (403 `insufficient_scope` naming it).
    /// Answers the scope of the tenant the caller acts in.
    pub fn require(&self, role: Role, scope: Scope, resource: &str) -> Result<TenantScope, AppError> {
        match &self.credential {
            Credential::Session { .. } => self.require_role(role, resource)?,
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
                self.require_role(role, resource)?
            }
        }
        Ok(TenantScope::new(self.tenant_id))
    }

    /// [`Self::require`] for the tenant named by a path (`/v1/tenants/{id}`):
    /// another tenant answers 404, exactly like one that does not exist (a
    /// platform admin reaches every tenant).
    pub fn require_in(&self, id: Uuid, role: Role, scope: Scope, resource: &str) -> Result<TenantScope, AppError> {
        if !(self.platform_admin || id == self.tenant_id) {
            return Err(AppError::not_found(resource));
        }
        self.require(role, scope, resource)?;
        Ok(TenantScope::new(id))
    }

    /// For routes only a signed-in person may use (sessions, API key
    /// management): an API key is refused whatever its scopes. Answers the
    /// session the access token belongs to, in the caller's own tenant.
    pub fn require_session(&self, resource: &str) -> Result<SignedIn, AppError> {
        match &self.credential {
            Credential::Session { session_id } => {
                Ok(SignedIn { session_id: *session_id, scope: TenantScope::new(self.home_tenant_id) })
            }
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

    /// A signed-in person with at least `role`: for routes no API key may
    /// use. Answers the scope of the tenant they act in.
    pub fn require_person(&self, role: Role, resource: &str) -> Result<TenantScope, AppError> {
        self.require_session(resource)?;
        self.require_role(role, resource)?;
        Ok(TenantScope::new(self.tenant_id))
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
            Ok(PlatformAdmin::granted())
        } else {
            Err(AppError::insufficient_permissions(
                "platform_admin",
                self.current_role_name(),
                resource,
                self.tenant_id,
            ))
        }
    }

    /// The caller's own tenant, where their user and sessions live (for the
    /// per-caller rate limit).
    pub(crate) fn home_scope(&self) -> TenantScope {
        TenantScope::new(self.home_tenant_id)
    }

    /// The tenant the caller acts in, for the request layers (idempotency
    /// records) that run before the handler's own authorization.
    pub(crate) fn acting_scope(&self) -> TenantScope {
        TenantScope::new(self.tenant_id)
    }
}

/// A signed-in person's session (see [`Principal::require_session`]).
#[derive(Debug, Clone, Copy)]
pub struct SignedIn {
    pub session_id: Uuid,
    /// The person's own tenant, where the session lives.
    pub scope: TenantScope,
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

    /// Only `auth` makes scopes: a principal's authorization or a named
    /// proof (`super::proofs`).
    pub(in crate::auth) fn new(tenant_id: Uuid) -> Self {
        Self { tenant_id }
    }

    /// For tests that read and write the table directly (the test crate
    /// enables the feature; no function binary does).
    #[cfg(feature = "test-support")]
    pub fn for_tests(tenant_id: Uuid) -> Self {
        Self { tenant_id }
    }

    /// Partition key of everything the tenant owns. The closing `#` keeps
    /// `T#1#` from prefixing `T#12#` in IAM LeadingKeys conditions.
    pub fn pk(&self) -> String {
        format!("T#{}#", self.tenant_id)
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
        let require_in = |p: &Principal, id| p.require_in(id, Role::User, Scope::TenantRead, "tenant");
        assert_eq!(require_in(&member, other).expect_err("hidden").code(), "not_found");
        assert_eq!(require_in(&member, member.tenant_id).expect("own").tenant_id(), member.tenant_id);
        let admin = principal(Role::Owner, true);
        assert_eq!(require_in(&admin, other).expect("allowed").tenant_id(), other);
    }

    #[test]
    fn tenant_keys_close_with_a_delimiter() {
        let id = Uuid::nil();
        assert_eq!(TenantScope::new(id).pk(), format!("T#{id}#"));
    }
}
