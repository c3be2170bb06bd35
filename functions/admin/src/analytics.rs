//! The enterprise analytics dashboard
//! (`GET /v1/admin/analytics/enterprise-dashboard`, seed 000 scenario 6):
//! seed 000's sections, each figure from the tenant's stored data by the
//! formula its field documents; a field with no source is `not_applicable`.

use std::collections::{BTreeMap, BTreeSet};

use rust_decimal::prelude::ToPrimitive;
use serde::Serialize;
use shared::{
    AppResult, AppState,
    auth::TenantScope,
    domain::{
        billing::invoice::{InvoiceStatus, LineKind},
        plans::plan,
    },
    metrics::Rollup,
    store::PageRequest,
};
use uuid::Uuid;

/// The longest period asked for (rollups are kept 400 days).
pub const MAX_PERIOD_DAYS: i64 = 90;

/// `not_applicable`: the platform has nothing to compute this from.
const NA: &str = "not_applicable";

/// The features a tenant can adopt: the function that serves them.
const FEATURES: [(&str, &str); 9] = [
    ("customers", "CustomersFunction"),
    ("virtual_try_on", "TryonsFunction"),
    ("projects", "ProjectsFunction"),
    ("webhooks", "WebhooksFunction"),
    ("integrations", "IntegrationsFunction"),
    ("workflows", "WorkflowsFunction"),
    ("billing", "BillingFunction"),
    ("api_keys", "ApiKeysFunction"),
    ("credits", "CreditsFunction"),
];

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct UserEngagement {
    /// The mean of each day's distinct active users over the period's days.
    pub daily_active_users: f64,
    /// Distinct active users over the period's last 7 days.
    pub weekly_active_users: i64,
    /// Distinct active users over the whole period.
    pub period_active_users: i64,
    /// Of the users active in the period's first half, the share active
    /// again in its second half; null when nobody was active in the first.
    pub user_retention_rate: Option<f64>,
    /// Per feature: the share of the tenant's active days (days with a
    /// request) on which it was used.
    pub feature_adoption_rates: BTreeMap<String, f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ProductivityMetrics {
    /// Tasks now `done` whose last change falls in the period.
    pub tasks_completed: i64,
    /// The mean of (last change - creation) of those tasks, in hours: a
    /// done task's last change is taken as its completion.
    pub average_completion_time_hours: Option<f64>,
    #[schema(value_type = String, example = "not_applicable")]
    pub ai_assisted_completions: &'static str,
    #[schema(value_type = String, example = "not_applicable")]
    pub code_quality_score: &'static str,
    #[schema(value_type = String, example = "not_applicable")]
    pub developer_satisfaction: &'static str,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct FinancialMetrics {
    pub currency: String,
    /// The plan's monthly price; null for a plan priced by contract.
    pub monthly_recurring_revenue: Option<f64>,
    /// Invoices paid in the period: their totals.
    pub revenue_in_period: f64,
    /// Their usage lines.
    pub usage_based_revenue: f64,
    /// `revenue_in_period / seats`.
    pub revenue_per_user: Option<f64>,
    #[schema(value_type = String, example = "not_applicable")]
    pub total_contract_value: &'static str,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct BusinessMetrics {
    pub user_engagement: UserEngagement,
    pub productivity_metrics: ProductivityMetrics,
    pub financial_metrics: FinancialMetrics,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct SystemPerformance {
    /// No probe measures the API from outside per tenant.
    #[schema(value_type = String, example = "not_applicable")]
    pub uptime_percentage: &'static str,
    /// `latency_ms_sum / requests` over the period; null without requests.
    pub average_response_time: Option<f64>,
    /// `(requests - 5xx) / requests * 100`; null without requests.
    pub api_success_rate: Option<f64>,
    pub requests: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ResourceConsumption {
    /// The last storage sample of the metering (this month), in GB.
    pub storage_gb_consumed: Option<f64>,
    /// AI requests metered this month (try-on items).
    pub ai_requests_this_month: f64,
    #[schema(value_type = String, example = "not_applicable")]
    pub compute_hours_used: &'static str,
    #[schema(value_type = String, example = "not_applicable")]
    pub bandwidth_tb_transferred: &'static str,
    #[schema(value_type = String, example = "not_applicable")]
    pub ai_tokens_processed: &'static str,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct OperationalMetrics {
    pub system_performance: SystemPerformance,
    pub resource_consumption: ResourceConsumption,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct TenantAnalytics {
    pub business_metrics: BusinessMetrics,
    pub operational_metrics: OperationalMetrics,
}

/// The tenant's place among its plan's tenants, from the nightly aggregate
/// (the billing worker's 00:00 UTC run): ranked by distinct active users
/// over 30 days, then requests. Null figures until the first night.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct InternalComparison {
    /// 1 is the most active.
    pub rank_among_same_plan_tenants: Option<i64>,
    /// How many tenants of the plan were ranked.
    pub of: Option<i64>,
    /// `100 × (of − rank) / (of − 1)`: the share of the plan's other
    /// tenants this one is ahead of.
    pub percentile: Option<i64>,
    pub plan: Option<String>,
    /// The UTC day of the aggregate.
    pub as_of: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Benchmarks {
    /// The platform holds no other companies' data.
    #[schema(value_type = String, example = "not_applicable")]
    pub industry_comparison: &'static str,
    pub internal_comparison: InternalComparison,
}

/// The dashboard's answer.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct EnterpriseDashboard {
    pub tenant_id: Uuid,
    /// `7d`, `30d` or `90d`.
    pub period: String,
    /// The first and last UTC day of the period.
    pub from: String,
    pub to: String,
    pub tenant_analytics: TenantAnalytics,
    pub benchmarks: Benchmarks,
}

/// `7d`, `30d`, `90d` (any `<n>d` up to 90) as days.
pub fn period_days(text: &str) -> Option<i64> {
    text.strip_suffix('d').and_then(|n| n.parse::<i64>().ok()).filter(|n| (1..=MAX_PERIOD_DAYS).contains(n))
}

fn round2(value: f64) -> f64 {
    // `+ 0.0` turns an empty sum's -0.0 into 0.
    (value * 100.0).round() / 100.0 + 0.0
}

/// Engagement from the period's daily rollups (`days`: every day of the
/// period, oldest first; `rollups`: those with data).
pub fn engagement(days: &[String], rollups: &BTreeMap<String, Rollup>) -> UserEngagement {
    let users_on = |day: &String| rollups.get(day).map(|r| r.active_users.clone()).unwrap_or_default();
    let distinct = |days: &[String]| days.iter().flat_map(users_on).collect::<BTreeSet<Uuid>>();
    let daily: usize = days.iter().map(|d| users_on(d).len()).sum();
    let last_week = &days[days.len().saturating_sub(7)..];
    let (first, second) = days.split_at(days.len() / 2);
    let (early, late) = (distinct(first), distinct(second));
    let active_days: Vec<&Rollup> = days.iter().filter_map(|d| rollups.get(d)).filter(|r| r.requests > 0).collect();
    let feature_adoption_rates = FEATURES
        .iter()
        .map(|(feature, service)| {
            let used = active_days.iter().filter(|r| r.services.get(*service).is_some_and(|n| *n > 0)).count();
            let rate = if active_days.is_empty() { 0.0 } else { used as f64 / active_days.len() as f64 };
            ((*feature).to_owned(), round2(rate))
        })
        .collect();
    UserEngagement {
        daily_active_users: round2(daily as f64 / days.len().max(1) as f64),
        weekly_active_users: distinct(last_week).len() as i64,
        period_active_users: distinct(days).len() as i64,
        user_retention_rate: (!early.is_empty())
            .then(|| round2(early.intersection(&late).count() as f64 / early.len() as f64)),
        feature_adoption_rates,
    }
}

pub async fn dashboard(
    state: &AppState,
    scope: &TenantScope,
    period: &str,
    period_days: i64,
) -> AppResult<Option<EnterpriseDashboard>> {
    let Some((tenant, usage)) = state.store.get_tenant(scope).await? else { return Ok(None) };
    let now = shared::domain::now();
    let days = shared::metrics::days_ending(now, period_days);
    let from = now - chrono::Duration::days(period_days - 1);
    let from_day = days.first().cloned().unwrap_or_default();
    let this_month = now.format("%Y-%m").to_string();
    let paid = PageRequest { limit: 100, cursor: None };
    let since = format!("{from_day}T00:00:00Z");
    let (rollups, done, (invoices, _), snapshot, rank) = tokio::try_join!(
        state.store.tenant_rollups(scope, &days),
        state.store.tasks_done_since(scope, &since),
        state.store.list_invoices(scope, Some(InvoiceStatus::Paid), &paid),
        state.store.billing_snapshot(scope, &this_month),
        state.store.tenant_rank(scope),
    )?;
    let rollups: BTreeMap<String, Rollup> = rollups.into_iter().collect();
    let mut period_total = Rollup::default();
    for rollup in rollups.values() {
        period_total.add(rollup);
    }
    let completion_hours: Vec<f64> =
        done.iter().map(|t| (t.updated_at - t.created_at).num_seconds().max(0) as f64 / 3600.0).collect();
    let paid_in_period: Vec<_> = invoices.iter().filter(|i| i.paid_at.is_some_and(|at| at >= from)).collect();
    let decimal = |d: rust_decimal::Decimal| d.to_f64().unwrap_or(0.0);
    let revenue: f64 = paid_in_period.iter().map(|i| decimal(i.total)).sum();
    let usage_revenue: f64 = paid_in_period
        .iter()
        .flat_map(|i| i.lines.iter())
        .filter(|l| l.kind == LineKind::Usage)
        .map(|l| decimal(l.amount))
        .sum();
    let seats = usage.user_count - usage.pending_invitations;
    let requests = period_total.requests;
    let dashboard = EnterpriseDashboard {
        tenant_id: tenant.id,
        period: period.to_owned(),
        from: from_day,
        to: days.last().cloned().unwrap_or_default(),
        tenant_analytics: TenantAnalytics {
            business_metrics: BusinessMetrics {
                user_engagement: engagement(&days, &rollups),
                productivity_metrics: ProductivityMetrics {
                    tasks_completed: done.len() as i64,
                    average_completion_time_hours: (!completion_hours.is_empty())
                        .then(|| round2(completion_hours.iter().sum::<f64>() / completion_hours.len() as f64)),
                    ai_assisted_completions: NA,
                    code_quality_score: NA,
                    developer_satisfaction: NA,
                },
                financial_metrics: FinancialMetrics {
                    currency: invoices.first().map_or_else(|| "USD".to_owned(), |i| i.currency.clone()),
                    monthly_recurring_revenue: plan(&tenant.plan).monthly_price.map(|p| p as f64),
                    revenue_in_period: round2(revenue),
                    usage_based_revenue: round2(usage_revenue),
                    revenue_per_user: (seats > 0).then(|| round2(revenue / seats as f64)),
                    total_contract_value: NA,
                },
            },
            operational_metrics: OperationalMetrics {
                system_performance: SystemPerformance {
                    uptime_percentage: NA,
                    average_response_time: (requests > 0)
                        .then(|| round2(period_total.latency_ms_sum as f64 / requests as f64)),
                    api_success_rate: (requests > 0)
                        .then(|| round2((requests - period_total.errors_5xx) as f64 * 100.0 / requests as f64)),
                    requests,
                },
                resource_consumption: ResourceConsumption {
                    storage_gb_consumed: snapshot.storage_bytes.map(|b| round2(b as f64 / 1e9)),
                    ai_requests_this_month: snapshot.period_totals.get("ai_requests").map_or(0.0, |d| decimal(*d)),
                    compute_hours_used: NA,
                    bandwidth_tb_transferred: NA,
                    ai_tokens_processed: NA,
                },
            },
        },
        benchmarks: Benchmarks {
            industry_comparison: NA,
            internal_comparison: InternalComparison {
                rank_among_same_plan_tenants: rank.as_ref().map(|r| r.rank),
                of: rank.as_ref().map(|r| r.of),
                percentile: rank.as_ref().map(|r| r.percentile),
                plan: rank.as_ref().map(|r| r.plan.clone()),
                as_of: rank.map(|r| r.as_of),
            },
        },
    };
    Ok(Some(dashboard))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_are_days_up_to_ninety() {
        assert_eq!(period_days("30d"), Some(30));
        assert_eq!(period_days("90d"), Some(90));
        assert_eq!(period_days("91d"), None);
        assert_eq!(period_days("0d"), None);
        assert_eq!(period_days("1m"), None);
    }

    #[test]
    fn engagement_counts_distinct_people_retention_and_adoption_by_active_day() {
        let (ann, bo) = (Uuid::now_v7(), Uuid::now_v7());
        let days: Vec<String> = (1..=4).map(|d| format!("2026-11-0{d}")).collect();
        let mut rollups = BTreeMap::new();
        let mut day = |d: usize, users: &[Uuid], service: &str| {
            let mut rollup = Rollup::default();
            for user in users {
                rollup.add_request_to(Some(service), 200, 5.0, Some(*user));
            }
            rollups.insert(days[d].clone(), rollup);
        };
        day(0, &[ann, bo], "CustomersFunction");
        day(1, &[ann], "TryonsFunction");
        day(3, &[ann], "CustomersFunction");
        let engagement = engagement(&days, &rollups);
        assert_eq!(engagement.daily_active_users, 1.0, "(2 + 1 + 0 + 1) / 4");
        assert_eq!(engagement.period_active_users, 2);
        assert_eq!(engagement.user_retention_rate, Some(0.5), "of ann and bo, only ann came back");
        assert_eq!(engagement.feature_adoption_rates["customers"], 0.67, "2 of 3 active days");
        assert_eq!(engagement.feature_adoption_rates["virtual_try_on"], 0.33);
        assert_eq!(engagement.feature_adoption_rates["workflows"], 0.0);
    }
}
