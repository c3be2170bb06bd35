//! People inside a tenant (seed 003's user fields). The password hash is kept
//! beside the user in the store and never leaves it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::auth::Role;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct User {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub role: Role,
    pub is_active: bool,
    #[serde(default)]
    pub platform_admin: bool,
    pub last_login: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl User {
    pub fn new(tenant_id: Uuid, email: &str, first_name: &str, last_name: &str, role: Role) -> Self {
        let now = super::now();
        Self {
            id: Uuid::now_v7(),
            tenant_id,
            email: email.to_ascii_lowercase(),
            first_name: first_name.to_owned(),
            last_name: last_name.to_owned(),
            role,
            is_active: true,
            platform_admin: false,
            last_login: None,
            created_at: now,
            updated_at: now,
        }
    }

    pub fn full_name(&self) -> String {
        format!("{} {}", self.first_name, self.last_name).trim().to_owned()
    }

    /// The API body (seed 002's `fullName`/`tenantId` appear as snake_case).
    pub fn to_body(&self) -> Value {
        json!({
            "id": self.id,
            "tenant_id": self.tenant_id,
            "email": self.email,
            "first_name": self.first_name,
            "last_name": self.last_name,
            "full_name": self.full_name(),
            "role": self.role,
            "platform_role": if self.platform_admin { Some("platform_admin") } else { None },
            "is_active": self.is_active,
            "last_login": self.last_login,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        })
    }
}

/// What an actor may do to users of its tenant (the rules of issue 3, pure).
pub mod rules {
    use crate::{auth::Role, error::AppError};

    /// Nobody grants a role above their own.
    pub fn may_grant(actor: Role, granted: Role) -> bool {
        actor.at_least(granted)
    }

    /// A user above the actor cannot be changed or removed by them.
    pub fn may_manage(actor: Role, target: Role) -> bool {
        actor.at_least(target)
    }

    pub fn role_above_own(actor: Role, granted: Role, tenant_id: impl ToString) -> AppError {
        let tenant_id = tenant_id.to_string();
        AppError::insufficient_permissions(granted.as_str(), actor.as_str(), "user_role", &tenant_id).with_details(
            serde_json::json!({
                "required_role": granted.as_str(),
                "current_role": actor.as_str(),
                "resource": "user_role",
                "tenant_id": tenant_id,
                "reason": format!("a {} cannot grant the {} role", actor.as_str(), granted.as_str()),
            }),
        )
    }

    pub fn last_owner() -> AppError {
        AppError::conflict("the last owner of a tenant cannot be removed, demoted or deactivated")
            .with_details(serde_json::json!({"reason": "last_owner"}))
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn grants_stop_at_the_actors_own_role() {
            assert!(may_grant(Role::Owner, Role::Owner));
            assert!(may_grant(Role::Admin, Role::Admin));
            assert!(!may_grant(Role::Admin, Role::Owner));
            assert!(!may_grant(Role::Developer, Role::Admin));
            assert!(may_manage(Role::Admin, Role::Developer));
            assert!(!may_manage(Role::Admin, Role::Owner));
        }
    }
}
