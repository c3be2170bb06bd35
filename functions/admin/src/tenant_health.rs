//! One tenant's health (`GET /v1/admin/tenants/{id}/health`, seed 000's
//! shape): figures from its metrics rollups, webhook endpoints, quota usage,
//! integration alerts and invoices, a `health_score` from the documented
//! weighted formula in [`score`] (each component returned with its basis),
//! and alerts and recommendations from the rules in [`findings`].

use serde::Serialize;
use shared::{
    AppResult, AppState,
    auth::TenantScope,
    domain::{billing::invoice::InvoiceStatus, plans::effective_limits},
    metrics::Rollup,
    store::PageRequest,
};
use uuid::Uuid;

/// The window of the 7-day figures (today and the six UTC days before).
pub const WINDOW_DAYS: i64 = 7;

/// A used share of a limit.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Usage {
    pub used: i64,
    /// Null when the plan sets none.
    pub limit: Option<i64>,
    /// `used / limit * 100`; null without a limit.
    pub percentage: Option<f64>,
}

impl Usage {
    fn of(used: i64, limit: Option<i64>) -> Self {
        let percentage = limit.filter(|l| *l > 0).map(|l| (used as f64 * 10_000.0 / l as f64).round() / 100.0);
        Usage { used, limit, percentage }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct UserActivity {
    /// Distinct people who made a request today (UTC).
    pub active_users_today: i64,
    /// Distinct people over the 7 days.
    pub active_users_7d: i64,
    pub api_requests_today: i64,
    pub api_requests_7d: i64,
    /// No AI jobs run on the platform yet.
    #[schema(value_type = String, example = "not_applicable")]
    pub ai_processing_requests_24h: &'static str,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Performance {
    /// Over the 7 days: `latency_ms_sum / requests`; null without requests.
    pub average_response_time_ms: Option<f64>,
    /// The 7 days' histogram bucket that holds the 95th percentile.
    pub p95_response_time_ms_at_most: Option<u64>,
    /// `errors_5xx / requests * 100` over the 7 days.
    pub error_rate: Option<f64>,
    /// `errors_4xx / requests * 100` over the 7 days.
    pub client_error_rate: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ResourceUtilization {
    /// Lambda functions are shared by every tenant: no per-tenant CPU.
    #[schema(value_type = String, example = "not_applicable")]
    pub cpu_usage: &'static str,
    #[schema(value_type = String, example = "not_applicable")]
    pub memory_usage: &'static str,
    /// Seats (users and pending invitations) against the plan's users limit.
    pub users: Usage,
    pub projects: Usage,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Security {
    /// Wrong passwords for the tenant's accounts today (UTC).
    pub failed_login_attempts_today: i64,
    pub failed_login_attempts_7d: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Webhooks {
    pub endpoints: i64,
    /// Disabled (by an admin, or after too many failures in a row).
    pub disabled: i64,
    /// Enabled, with at least one failed delivery since its last success.
    pub failing: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Billing {
    pub plan: String,
    /// Finalized invoices not paid yet (at most the first 100 counted).
    pub unpaid_invoices: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct TenantMetrics {
    pub user_activity: UserActivity,
    pub performance: Performance,
    pub resource_utilization: ResourceUtilization,
    pub security: Security,
    pub webhooks: Webhooks,
    pub billing: Billing,
    /// Open integration alerts (failing syncs, failed workflow executions).
    pub open_integration_alerts: i64,
}

/// One part of the score.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ScoreComponent {
    pub name: &'static str,
    /// Its share of the score when every component has data.
    pub weight: f64,
    /// 0 to 10; null when there is nothing to judge (then the other
    /// weights are scaled up to fill its share).
    pub score: Option<f64>,
    /// The rule and the figures it read.
    pub basis: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct HealthAlert {
    /// `warning` or `critical`.
    pub severity: &'static str,
    /// The rule's name (`webhook_endpoint_disabled`, ...).
    pub rule: &'static str,
    pub message: String,
}

/// `GET /v1/admin/tenants/{id}/health`'s answer.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct TenantHealth {
    pub tenant_id: Uuid,
    pub tenant_status: String,
    /// 0 to 10, one decimal: the weighted mean of `score_components` that
    /// have a score.
    pub health_score: f64,
    pub score_components: Vec<ScoreComponent>,
    pub metrics: TenantMetrics,
    pub alerts: Vec<HealthAlert>,
    pub recommendations: Vec<String>,
}

/// Reads what the answer needs and judges it. `None`: no such tenant.
pub async fn tenant_health(state: &AppState, scope: &TenantScope) -> AppResult<Option<TenantHealth>> {
    let Some((tenant, usage)) = state.store.get_tenant(scope).await? else { return Ok(None) };
    let now = shared::domain::now();
    let days = shared::metrics::days_ending(now, WINDOW_DAYS);
    let today = shared::metrics::day_of(now);
    let (rollups, endpoints, alerts, unpaid) = tokio::try_join!(
        state.store.tenant_rollups(scope, &days),
        state.store.list_endpoints(scope),
        state.store.open_alerts(scope),
        state.store.list_invoices(scope, Some(InvoiceStatus::Finalized), &PageRequest { limit: 100, cursor: None }),
    )?;
    let mut week = Rollup::default();
    for (_, rollup) in &rollups {
        week.add(rollup);
    }
    let day = rollups.iter().find(|(d, _)| *d == today).map(|(_, r)| r.clone()).unwrap_or_default();
    let limits = effective_limits(&tenant);
    let disabled = endpoints.iter().filter(|e| e.status != "active").count() as i64;
    let failing = endpoints.iter().filter(|e| e.status == "active" && e.consecutive_failures > 0).count() as i64;
    let metrics = TenantMetrics {
        user_activity: UserActivity {
            active_users_today: day.active_users.len() as i64,
            active_users_7d: week.active_users.len() as i64,
            api_requests_today: day.requests,
            api_requests_7d: week.requests,
            ai_processing_requests_24h: "not_applicable",
        },
        performance: Performance {
            average_response_time_ms: (week.requests > 0)
                .then(|| (week.latency_ms_sum as f64 * 10.0 / week.requests as f64).round() / 10.0),
            p95_response_time_ms_at_most: week.latency_at_most_ms(0.95),
            error_rate: shared::metrics::percent(week.errors_5xx, week.requests),
            client_error_rate: shared::metrics::percent(week.errors_4xx, week.requests),
        },
        resource_utilization: ResourceUtilization {
            cpu_usage: "not_applicable",
            memory_usage: "not_applicable",
            users: Usage::of(usage.user_count, limits.users),
            projects: Usage::of(usage.project_count, limits.projects),
        },
        security: Security {
            failed_login_attempts_today: day.failed_sign_ins,
            failed_login_attempts_7d: week.failed_sign_ins,
        },
        webhooks: Webhooks { endpoints: endpoints.len() as i64, disabled, failing },
        billing: Billing { plan: tenant.plan.clone(), unpaid_invoices: unpaid.0.len() as i64 },
        open_integration_alerts: alerts.len() as i64,
    };
    let components = score(&metrics, &week);
    let health_score = weighted(&components);
    let (alerts, recommendations) = findings(&tenant.status, &metrics, &week);
    Ok(Some(TenantHealth {
        tenant_id: tenant.id,
        tenant_status: tenant.status.clone(),
        health_score,
        score_components: components,
        metrics,
        alerts,
        recommendations,
    }))
}

/// The score's components (weights sum to 1):
///
/// | component | weight | score (0-10) |
/// |---|---|---|
/// | reliability | 0.35 | `10 × (1 − 10 × 5xx share)` over 7 days, at least 0 (a 10% 5xx rate scores 0); none without requests |
/// | performance | 0.20 | by the 7 days' p95 bucket: ≤250 ms 10, ≤500 ms 8, ≤1 s 6, ≤2.5 s 4, slower 2; none without requests |
/// | security | 0.20 | `10 − failed sign-ins in 7 days / 2`, at least 0 |
/// | webhooks | 0.15 | `10 × endpoints enabled and not failing / endpoints`; none without endpoints |
/// | capacity | 0.10 | the fuller of users and projects against the plan: under 80% 10, under 100% 5, full 0 |
pub fn score(metrics: &TenantMetrics, week: &Rollup) -> Vec<ScoreComponent> {
    let reliability = (week.requests > 0).then(|| {
        let share = week.errors_5xx as f64 / week.requests as f64;
        (10.0 * (1.0 - 10.0 * share)).max(0.0)
    });
    let performance = (week.requests > 0).then(|| match week.latency_at_most_ms(0.95) {
        Some(ms) if ms <= 250 => 10.0,
        Some(ms) if ms <= 500 => 8.0,
        Some(ms) if ms <= 1_000 => 6.0,
        Some(_) => 4.0,
        None => 2.0,
    });
    let security = (10.0 - metrics.security.failed_login_attempts_7d as f64 / 2.0).max(0.0);
    let hooks = &metrics.webhooks;
    let webhooks = (hooks.endpoints > 0)
        .then(|| 10.0 * (hooks.endpoints - hooks.disabled - hooks.failing) as f64 / hooks.endpoints as f64);
    let fullest = [&metrics.resource_utilization.users, &metrics.resource_utilization.projects]
        .iter()
        .filter_map(|u| u.percentage)
        .fold(0.0_f64, f64::max);
    let capacity = if fullest >= 100.0 {
        0.0
    } else if fullest >= 80.0 {
        5.0
    } else {
        10.0
    };
    let round = |v: f64| (v * 10.0).round() / 10.0;
    vec![
        ScoreComponent {
            name: "reliability",
            weight: 0.35,
            score: reliability.map(round),
            basis: format!("{} of {} requests in 7 days answered 5xx", week.errors_5xx, week.requests),
        },
        ScoreComponent {
            name: "performance",
            weight: 0.20,
            score: performance,
            basis: match week.latency_at_most_ms(0.95) {
                Some(ms) => format!("p95 latency at most {ms} ms over 7 days"),
                None if week.requests > 0 => "p95 latency over 2.5 s over 7 days".to_owned(),
                None => "no requests in 7 days".to_owned(),
            },
        },
        ScoreComponent {
            name: "security",
            weight: 0.20,
            score: Some(round(security)),
            basis: format!("{} failed sign-ins in 7 days", metrics.security.failed_login_attempts_7d),
        },
        ScoreComponent {
            name: "webhooks",
            weight: 0.15,
            score: webhooks.map(round),
            basis: format!("{} endpoints, {} disabled, {} failing", hooks.endpoints, hooks.disabled, hooks.failing),
        },
        ScoreComponent {
            name: "capacity",
            weight: 0.10,
            score: Some(capacity),
            basis: format!("the fuller of users and projects is at {fullest}% of the plan"),
        },
    ]
}

/// The weighted mean of the components that have a score (their weights
/// scaled to sum to 1), one decimal.
pub fn weighted(components: &[ScoreComponent]) -> f64 {
    let scored: Vec<(f64, f64)> = components.iter().filter_map(|c| c.score.map(|s| (c.weight, s))).collect();
    let total: f64 = scored.iter().map(|(w, _)| w).sum();
    if total == 0.0 {
        return 0.0;
    }
    let mean = scored.iter().map(|(w, s)| w * s).sum::<f64>() / total;
    (mean * 10.0).round() / 10.0
}

/// The alert and recommendation rules, in this order.
pub fn findings(status: &str, metrics: &TenantMetrics, week: &Rollup) -> (Vec<HealthAlert>, Vec<String>) {
    let mut alerts = Vec::new();
    let mut recommendations = Vec::new();
    if status != "active" {
        alerts.push(HealthAlert {
            severity: "critical",
            rule: "tenant_not_active",
            message: format!("the tenant is {status}: its members and keys are refused"),
        });
    }
    if week.requests >= 20
        && let Some(rate) = metrics.performance.error_rate.filter(|r| *r >= 5.0)
    {
        alerts.push(HealthAlert {
            severity: "critical",
            rule: "server_errors",
            message: format!("{rate}% of the last 7 days' {} requests answered 5xx", week.requests),
        });
    }
    if metrics.security.failed_login_attempts_today >= 10 {
        alerts.push(HealthAlert {
            severity: "warning",
            rule: "failed_sign_ins",
            message: format!("{} failed sign-ins today", metrics.security.failed_login_attempts_today),
        });
        recommendations.push("Require MFA for the tenant's members (configuration.security.mfa_required)".to_owned());
    }
    if metrics.webhooks.disabled > 0 {
        alerts.push(HealthAlert {
            severity: "warning",
            rule: "webhook_endpoint_disabled",
            message: format!(
                "{} webhook endpoint(s) disabled: their events are not delivered",
                metrics.webhooks.disabled
            ),
        });
        recommendations.push("Fix the disabled webhook endpoints' receivers and enable them again".to_owned());
    }
    if metrics.webhooks.failing > 0 {
        recommendations.push(format!(
            "{} webhook endpoint(s) are failing deliveries: check their receivers before they are disabled",
            metrics.webhooks.failing
        ));
    }
    if metrics.open_integration_alerts > 0 {
        alerts.push(HealthAlert {
            severity: "warning",
            rule: "integration_alerts",
            message: format!("{} integration alert(s) open", metrics.open_integration_alerts),
        });
    }
    if metrics.billing.unpaid_invoices > 0 {
        alerts.push(HealthAlert {
            severity: "warning",
            rule: "unpaid_invoices",
            message: format!("{} finalized invoice(s) not paid", metrics.billing.unpaid_invoices),
        });
    }
    for (name, usage) in
        [("users", &metrics.resource_utilization.users), ("projects", &metrics.resource_utilization.projects)]
    {
        if let Some(percentage) = usage.percentage.filter(|p| *p >= 80.0) {
            recommendations.push(format!(
                "The {name} quota is at {percentage}% of the {} plan: move to a larger plan or free some",
                metrics.billing.plan
            ));
        }
    }
    (alerts, recommendations)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics(failed: i64, endpoints: (i64, i64, i64), users: (i64, i64)) -> TenantMetrics {
        TenantMetrics {
            user_activity: UserActivity {
                active_users_today: 0,
                active_users_7d: 0,
                api_requests_today: 0,
                api_requests_7d: 0,
                ai_processing_requests_24h: "not_applicable",
            },
            performance: Performance {
                average_response_time_ms: None,
                p95_response_time_ms_at_most: None,
                error_rate: None,
                client_error_rate: None,
            },
            resource_utilization: ResourceUtilization {
                cpu_usage: "not_applicable",
                memory_usage: "not_applicable",
                users: Usage::of(users.0, Some(users.1)),
                projects: Usage::of(0, None),
            },
            security: Security { failed_login_attempts_today: failed, failed_login_attempts_7d: failed },
            webhooks: Webhooks { endpoints: endpoints.0, disabled: endpoints.1, failing: endpoints.2 },
            billing: Billing { plan: "starter".into(), unpaid_invoices: 0 },
            open_integration_alerts: 0,
        }
    }

    #[test]
    fn the_score_is_the_weighted_mean_of_the_components_with_data() {
        let quiet = metrics(0, (0, 0, 0), (1, 10));
        let components = score(&quiet, &Rollup::default());
        // Only security (10) and capacity (10) have data.
        assert_eq!(components.iter().filter(|c| c.score.is_some()).count(), 2);
        assert_eq!(weighted(&components), 10.0);
        let mut week = Rollup::default();
        for n in 0..100 {
            week.add_request(if n < 2 { 500 } else { 200 }, 30.0, None);
        }
        let busy = metrics(4, (4, 1, 1), (9, 10));
        let components = score(&busy, &week);
        let by = |name: &str| components.iter().find(|c| c.name == name).and_then(|c| c.score);
        assert_eq!(by("reliability"), Some(8.0), "2% 5xx");
        assert_eq!(by("performance"), Some(10.0));
        assert_eq!(by("security"), Some(8.0));
        assert_eq!(by("webhooks"), Some(5.0));
        assert_eq!(by("capacity"), Some(5.0), "90% of seats");
        // 0.35×8 + 0.2×10 + 0.2×8 + 0.15×5 + 0.1×5 = 7.65
        assert_eq!(weighted(&components), 7.7);
        let (alerts, recommendations) = findings("active", &busy, &week);
        assert_eq!(alerts.iter().map(|a| a.rule).collect::<Vec<_>>(), ["webhook_endpoint_disabled"]);
        assert_eq!(recommendations.len(), 3, "{recommendations:?}");
        let (alerts, _) = findings("suspended", &quiet, &Rollup::default());
        assert_eq!(alerts[0].rule, "tenant_not_active");
    }
}
