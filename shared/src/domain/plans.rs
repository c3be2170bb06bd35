//! Plans and quotas (seed 000). A plan gives default limits; a tenant on
//! `enterprise_custom` carries its own `custom_limits`; the users limit is the
//! tenant's `max_users` (seed 002's per-tenant field, set by the platform
//! admin). `None` means unlimited.

use serde::Serialize;
use serde_json::{Value, json};

use super::tenant::{Limit, Tenant};
use crate::error::AppError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub struct Limits {
    pub users: Option<i64>,
    pub projects: Option<i64>,
    pub storage_gb: Option<i64>,
    pub api_calls_monthly: Option<i64>,
    pub ai_requests_monthly: Option<i64>,
}

pub struct Plan {
    pub name: &'static str,
    pub monthly_price: Option<i64>,
    pub limits: Limits,
    /// Requests per minute, per API key and per user (rate_limit.rs).
    pub requests_per_minute: i64,
}

/// The catalogue. Professional's figures are seed 000's; the others follow
/// its scale. Prices are list prices in USD per month (`None`: on contract).
pub const CATALOGUE: &[Plan] = &[
    Plan {
        name: "free",
        monthly_price: Some(0),
        limits: Limits {
            users: Some(10),
            projects: Some(3),
            storage_gb: Some(1),
            api_calls_monthly: Some(10_000),
            ai_requests_monthly: Some(1_000),
        },
        requests_per_minute: 100,
    },
    Plan {
        name: "professional",
        monthly_price: Some(200),
        limits: Limits {
            users: Some(10),
            projects: Some(50),
            storage_gb: Some(10),
            api_calls_monthly: Some(1_000_000),
            ai_requests_monthly: Some(100_000),
        },
        requests_per_minute: 1_000,
    },
    Plan {
        name: "enterprise",
        monthly_price: Some(800),
        limits: Limits {
            users: None,
            projects: None,
            storage_gb: Some(1_000),
            api_calls_monthly: None,
            ai_requests_monthly: Some(10_000_000),
        },
        requests_per_minute: 5_000,
    },
    Plan { name: "enterprise_custom", monthly_price: None, limits: Limits::UNLIMITED, requests_per_minute: 10_000 },
];

impl Limits {
    pub const UNLIMITED: Limits =
        Limits { users: None, projects: None, storage_gb: None, api_calls_monthly: None, ai_requests_monthly: None };
}

pub fn plan(name: &str) -> &'static Plan {
    CATALOGUE.iter().find(|p| p.name == name).unwrap_or(&CATALOGUE[0])
}

/// What `tenant` may use: its plan's limits, overridden by `custom_limits`
/// (enterprise contracts); users from `custom_limits.users` when a contract
/// sets it (`"unlimited"` included: `max_users` cannot say that), else
/// `max_users`.
pub fn effective_limits(tenant: &Tenant) -> Limits {
    let mut limits = plan(&tenant.plan).limits;
    if let Some(custom) = tenant.custom_limits.as_ref() {
        let pick = |key: &str, current: Option<i64>| match custom.get(key) {
            Some(Value::String(s)) if s == "unlimited" => None,
            Some(v) => v.as_i64().or(current),
            None => current,
        };
        limits.projects = pick("projects", limits.projects);
        limits.storage_gb = pick("storage_gb", limits.storage_gb);
        limits.api_calls_monthly = pick("api_calls_monthly", limits.api_calls_monthly);
        limits.ai_requests_monthly = pick("ai_requests_monthly", limits.ai_requests_monthly);
    }
    limits.users = match tenant.custom_limits.as_ref().and_then(|custom| custom.get("users")) {
        Some(Value::String(s)) if s == "unlimited" => None,
        Some(v) => v.as_i64().or(Some(tenant.max_users)),
        None => Some(tenant.max_users),
    };
    limits
}

/// The tenant's requests per minute per API key and per user: its plan's,
/// or `custom_limits.requests_per_minute` when set.
pub fn requests_per_minute(tenant: &Tenant) -> i64 {
    tenant
        .custom_limits
        .as_ref()
        .and_then(|custom| custom.get("requests_per_minute"))
        .and_then(Value::as_i64)
        .filter(|limit| *limit > 0)
        .unwrap_or(plan(&tenant.plan).requests_per_minute)
}

/// The quotas enforced where usage grows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quota {
    Users,
    Projects,
}

impl Quota {
    pub fn name(self) -> &'static str {
        match self {
            Quota::Users => "users",
            Quota::Projects => "projects",
        }
    }

    /// The counter on the tenant item.
    pub fn counter(self) -> &'static str {
        match self {
            Quota::Users => "user_count",
            Quota::Projects => "project_count",
        }
    }

    pub fn limit(self, limits: &Limits) -> Option<i64> {
        match self {
            Quota::Users => limits.users,
            Quota::Projects => limits.projects,
        }
    }
}

/// Seed 000's refusal: `quota_exceeded` with everything needed to act on it.
pub fn quota_exceeded(
    quota: Quota,
    current_usage: i64,
    plan_limit: i64,
    requested: i64,
    current_plan: &str,
) -> AppError {
    let upgrades: Vec<Value> = CATALOGUE
        .iter()
        .filter(|p| p.name != current_plan && p.monthly_price.is_some())
        .filter(|p| quota.limit(&p.limits).is_none_or(|l| l >= current_usage + requested))
        .map(|p| {
            json!({
                "plan": p.name,
                format!("{}_limit", quota.name().trim_end_matches('s')): quota.limit(&p.limits).map_or(json!("unlimited"), |l| json!(l)),
                "monthly_price": p.monthly_price,
            })
        })
        .collect();
    AppError::forbidden(
        "quota_exceeded",
        format!("this would take {} to {} of {} allowed", quota.name(), current_usage + requested, plan_limit),
    )
    .with_details(json!({
        "quota_type": quota.name(),
        "current_usage": current_usage,
        "plan_limit": plan_limit,
        "requested_increase": requested,
        "available_slots": (plan_limit - current_usage).max(0),
        "suggested_action": if upgrades.is_empty() { "contact_sales" } else { "upgrade_plan" },
        "upgrade_options": upgrades,
    }))
}

crate::string_enum!(
    /// How close a figure is to its limit: `warning` from 80 %, `critical`
    /// from 95 %.
    QuotaLevel {
        Healthy => "healthy",
        Warning => "warning",
        Critical => "critical",
    }
);

/// Seed 000's quota status for one figure.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, utoipa::ToSchema)]
pub struct QuotaStatus {
    /// `used / limit` in percent, two decimals; 0 when unlimited.
    pub usage_percentage: f64,
    pub status: QuotaLevel,
    /// What is left before the limit (never below 0), or `unlimited`.
    pub available: Limit,
    pub limit: Limit,
}

pub fn quota_status(used: i64, limit: Option<i64>) -> QuotaStatus {
    match limit {
        None => QuotaStatus {
            usage_percentage: 0.0,
            status: QuotaLevel::Healthy,
            available: Limit::Unlimited,
            limit: Limit::Unlimited,
        },
        Some(limit) => {
            let percentage = if limit > 0 { (used as f64 * 10_000.0 / limit as f64).round() / 100.0 } else { 100.0 };
            let status = if percentage >= 95.0 {
                QuotaLevel::Critical
            } else if percentage >= 80.0 {
                QuotaLevel::Warning
            } else {
                QuotaLevel::Healthy
            };
            QuotaStatus {
                usage_percentage: percentage,
                status,
                available: Limit::Of((limit - used).max(0)),
                limit: Limit::Of(limit),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_thresholds() {
        let json = |used, limit| serde_json::to_value(quota_status(used, limit)).expect("json");
        assert_eq!(json(8, Some(10))["status"], "warning");
        assert_eq!(json(8, Some(10))["usage_percentage"], 80.0);
        assert_eq!(json(8, Some(10))["available"], 2);
        assert_eq!(json(45_000, Some(100_000))["status"], "healthy");
        assert_eq!(json(10, Some(10))["status"], "critical");
        assert_eq!(json(10, None)["available"], "unlimited");
    }

    #[test]
    fn a_contracts_users_limit_wins_over_max_users() {
        let mut tenant = Tenant::minimal("Acme", "acme", "a@acme.example", uuid::Uuid::nil());
        assert_eq!(effective_limits(&tenant).users, Some(tenant.max_users));
        tenant.custom_limits = Some(json!({"users": 2500, "projects": "unlimited"}));
        assert_eq!(effective_limits(&tenant).users, Some(2500));
        assert_eq!(effective_limits(&tenant).projects, None);
        tenant.custom_limits = Some(json!({"users": "unlimited"}));
        assert_eq!(effective_limits(&tenant).users, None);
    }

    #[test]
    fn the_refusal_carries_seed_000s_fields() {
        let AppError::Api { details, status, .. } = quota_exceeded(Quota::Users, 8, 10, 3, "professional") else {
            panic!("api error")
        };
        assert_eq!(status, 403);
        assert_eq!(details["quota_type"], "users");
        assert_eq!(details["available_slots"], 2);
        assert_eq!(details["requested_increase"], 3);
        assert_eq!(details["suggested_action"], "upgrade_plan");
        assert_eq!(details["upgrade_options"][0]["plan"], "enterprise");
        assert_eq!(details["upgrade_options"][0]["user_limit"], "unlimited");
        assert_eq!(details["upgrade_options"][0]["monthly_price"], 800);
    }
}
