//! API key scopes (seed 004 and API.md). A key may do exactly what its scopes
//! name; every route that keys may call declares the one scope it needs
//! through [`super::Principal::require`]. Routes no scope opens (platform
//! administration, sessions, API key management) refuse keys outright.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Scope {
    #[serde(rename = "tenant:read")]
    TenantRead,
    #[serde(rename = "tenant:write")]
    TenantWrite,
    #[serde(rename = "users:read")]
    UsersRead,
    #[serde(rename = "users:write")]
    UsersWrite,
    #[serde(rename = "projects:read")]
    ProjectsRead,
    #[serde(rename = "projects:write")]
    ProjectsWrite,
    #[serde(rename = "credits:read")]
    CreditsRead,
    #[serde(rename = "usage:write")]
    UsageWrite,
    #[serde(rename = "audit:read")]
    AuditRead,
    #[serde(rename = "customers:read")]
    CustomersRead,
    #[serde(rename = "customers:write")]
    CustomersWrite,
    #[serde(rename = "tryons:read")]
    TryonsRead,
    #[serde(rename = "tryons:write")]
    TryonsWrite,
    #[serde(rename = "webhooks:manage")]
    WebhooksManage,
    #[serde(rename = "billing:read")]
    BillingRead,
    #[serde(rename = "billing:write")]
    BillingWrite,
    #[serde(rename = "integrations:manage")]
    IntegrationsManage,
    #[serde(rename = "workflows:manage")]
    WorkflowsManage,
    #[serde(rename = "ai:read")]
    AiRead,
    #[serde(rename = "ai:write")]
    AiWrite,
}

impl Scope {
    pub const ALL: [Scope; 20] = [
        Scope::TenantRead,
        Scope::TenantWrite,
        Scope::UsersRead,
        Scope::UsersWrite,
        Scope::ProjectsRead,
        Scope::ProjectsWrite,
        Scope::CreditsRead,
        Scope::UsageWrite,
        Scope::AuditRead,
        Scope::CustomersRead,
        Scope::CustomersWrite,
        Scope::TryonsRead,
        Scope::TryonsWrite,
        Scope::WebhooksManage,
        Scope::BillingRead,
        Scope::BillingWrite,
        Scope::IntegrationsManage,
        Scope::WorkflowsManage,
        Scope::AiRead,
        Scope::AiWrite,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::TenantRead => "tenant:read",
            Scope::TenantWrite => "tenant:write",
            Scope::UsersRead => "users:read",
            Scope::UsersWrite => "users:write",
            Scope::ProjectsRead => "projects:read",
            Scope::ProjectsWrite => "projects:write",
            Scope::CreditsRead => "credits:read",
            Scope::UsageWrite => "usage:write",
            Scope::AuditRead => "audit:read",
            Scope::CustomersRead => "customers:read",
            Scope::CustomersWrite => "customers:write",
            Scope::TryonsRead => "tryons:read",
            Scope::TryonsWrite => "tryons:write",
            Scope::WebhooksManage => "webhooks:manage",
            Scope::BillingRead => "billing:read",
            Scope::BillingWrite => "billing:write",
            Scope::IntegrationsManage => "integrations:manage",
            Scope::WorkflowsManage => "workflows:manage",
            Scope::AiRead => "ai:read",
            Scope::AiWrite => "ai:write",
        }
    }

    pub fn parse(value: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|s| s.as_str() == value)
    }

    pub fn names() -> Vec<&'static str> {
        Scope::ALL.iter().map(|s| s.as_str()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scope_round_trips_through_its_name_and_serde() {
        for scope in Scope::ALL {
            assert_eq!(Scope::parse(scope.as_str()), Some(scope));
            assert_eq!(serde_json::to_value(scope).expect("json"), scope.as_str());
        }
        assert_eq!(Scope::parse("users:admin"), None);
    }
}
