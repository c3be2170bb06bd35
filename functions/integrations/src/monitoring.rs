//! Integration monitoring (seed 001, "Integration Monitoring"): one
//! provider's dashboard, the tenant's overview, and alerts. Every figure is
//! computed from stored data over the last 24 hours by the rules in
//! docs/integrations.md ("Monitoring"); a figure with nothing to compute it
//! from is null, never a guess.

use std::collections::BTreeMap;

use axum::{Json, extract::State};
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use shared::{
    AppError, AppResult, AppState,
    auth::{Principal, TenantScope},
    domain::{
        alert::{Alert, AlertStatus, error_class},
        ids::{AlertId, IntegrationProviderId},
        integration::{
            EventStatus, HEALTH_MAX_EVENTS, HEALTH_WINDOW_HOURS, HealthStatus, InboundEvent, Probe, ProviderView,
        },
        now_rfc3339, rfc3339,
        sync::{RunStatus, SyncConnection, SyncRun, SyncRunView},
    },
    http::Page,
    store::{PageRequest, alerts::ALERT_RESOURCE},
    web::extract::{ListQuery, PathIds},
};

use crate::events::{ProviderHealth, provider_health};

/// Runs of each connection a dashboard reads (newest first).
const RUNS_PER_CONNECTION: i32 = 50;
/// Runs a dashboard's `sync_history` shows.
const SYNC_HISTORY: usize = 20;

/// How much and how fast, over the window.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Throughput {
    /// Inbound events received in the window / its hours.
    pub events_per_hour: f64,
    /// Records the provider's sync runs read in the window / its hours.
    pub records_synced_per_hour: f64,
}

/// Seed 001's `health_metrics`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HealthMetrics {
    /// `healthy`, `degraded`, `down` or `unknown` (as `GET /v1/integrations/health`).
    #[schema(value_type = HealthStatus)]
    pub status: String,
    /// The last probe's milliseconds; null without one that answered.
    pub response_time: Option<i64>,
    /// Failed / settled over the window: inbound events (`processed` or
    /// `failed`) and finished sync runs together; null when nothing settled.
    pub error_rate: Option<f64>,
    pub throughput: Throughput,
    /// Share of the window's probes (every 5 minutes) that got an answer;
    /// null with no probe in the window.
    pub availability: Option<f64>,
    /// Probes in the window.
    pub probes: usize,
    /// The newest `last_successful_sync_at` of the provider's connections.
    #[schema(format = DateTime)]
    pub last_successful_sync: Option<String>,
    /// The newest error among events, runs and probes.
    pub last_error: Option<String>,
    /// The provider's health as `GET /v1/integrations/health` shows it.
    pub health: ProviderHealth,
}

/// One hour of the window, oldest first.
#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
pub struct HourTrend {
    /// The hour's start.
    #[schema(format = DateTime)]
    pub hour: String,
    pub events_received: usize,
    pub events_failed: usize,
    pub runs_finished: usize,
    pub runs_failed: usize,
    pub records_read: i64,
    /// Mean answered probe time in the hour; null without one.
    pub avg_response_time: Option<i64>,
}

/// Errors of one class in the window.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorClassCount {
    /// `signature_rejected`, `provider_server_error`, `provider_timeout`,
    /// `provider_unreachable`, `bad_answer`... (docs/integrations.md).
    pub class: String,
    pub count: usize,
    /// `inbound_events`, `sync_runs` and/or `probes`.
    pub sources: Vec<String>,
    #[schema(format = DateTime)]
    pub last_at: String,
    pub last_message: String,
}

/// Seed 001's `generate_integration_dashboard`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct IntegrationDashboard {
    pub integration_info: ProviderView,
    pub health_metrics: HealthMetrics,
    /// The window's hours, oldest first.
    pub performance_trends: Vec<HourTrend>,
    /// By class, most frequent first.
    pub error_analysis: Vec<ErrorClassCount>,
    /// The provider's connections' latest runs, newest first (at most 20).
    pub sync_history: Vec<SyncRunView>,
    /// Open alerts of the provider's connections.
    pub alerts: Vec<Alert>,
    pub window_hours: i64,
    #[schema(format = DateTime)]
    pub generated_at: String,
}

fn require(principal: &Principal) -> AppResult<TenantScope> {
    principal.require(shared::auth::Role::Admin, shared::auth::Scope::IntegrationsManage, "integration")
}

fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text).ok().map(|t| t.with_timezone(&Utc))
}

/// One error seen somewhere, for [`error_analysis`].
struct SeenError<'a> {
    source: &'static str,
    at: &'a str,
    message: String,
}

fn error_analysis(errors: Vec<SeenError<'_>>) -> Vec<ErrorClassCount> {
    let mut classes: BTreeMap<&'static str, ErrorClassCount> = BTreeMap::new();
    for error in errors {
        let class = error_class(&error.message);
        let entry = classes.entry(class).or_insert_with(|| ErrorClassCount {
            class: class.to_owned(),
            count: 0,
            sources: Vec::new(),
            last_at: String::new(),
            last_message: String::new(),
        });
        entry.count += 1;
        if !entry.sources.iter().any(|s| s == error.source) {
            entry.sources.push(error.source.to_owned());
        }
        if error.at > entry.last_at.as_str() {
            entry.last_at = error.at.to_owned();
            entry.last_message = error.message;
        }
    }
    let mut list: Vec<ErrorClassCount> = classes.into_values().collect();
    list.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.class.cmp(&b.class)));
    list
}

/// What the window holds for one provider.
struct Window<'a> {
    since: DateTime<Utc>,
    events: &'a [InboundEvent],
    runs: &'a [SyncRun],
    probes: &'a [Probe],
}

impl Window<'_> {
    fn finished_runs(&self) -> impl Iterator<Item = &SyncRun> {
        self.runs.iter().filter(|r| {
            matches!(r.status, RunStatus::Succeeded | RunStatus::Failed)
                && r.finished_at.as_deref().and_then(parse_time).is_some_and(|t| t >= self.since)
        })
    }

    fn error_rate(&self) -> Option<f64> {
        let settled_events = self
            .events
            .iter()
            .filter(|e| e.status == EventStatus::Processed.as_str() || e.status == EventStatus::Failed.as_str());
        let failed_events = self.events.iter().filter(|e| e.status == EventStatus::Failed.as_str()).count();
        let finished: Vec<&SyncRun> = self.finished_runs().collect();
        let failed_runs = finished.iter().filter(|r| r.status == RunStatus::Failed).count();
        let settled = settled_events.count() + finished.len();
        (settled > 0).then(|| (failed_events + failed_runs) as f64 / settled as f64)
    }

    fn availability(&self) -> Option<f64> {
        let answered = self.probes.iter().filter(|p| p.http_status.is_some()).count();
        (!self.probes.is_empty()).then(|| answered as f64 / self.probes.len() as f64)
    }

    fn throughput(&self) -> Throughput {
        let hours = HEALTH_WINDOW_HOURS as f64;
        let records: i64 = self.finished_runs().map(|r| r.counts.records_read).sum();
        Throughput {
            events_per_hour: self.events.len() as f64 / hours,
            records_synced_per_hour: records as f64 / hours,
        }
    }

    fn trends(&self, now: DateTime<Utc>) -> Vec<HourTrend> {
        let start = now - Duration::hours(HEALTH_WINDOW_HOURS - 1);
        let first_hour = start.timestamp() - start.timestamp().rem_euclid(3600);
        let mut hours: Vec<HourTrend> = (0..HEALTH_WINDOW_HOURS)
            .map(|i| HourTrend {
                hour: DateTime::from_timestamp(first_hour + i * 3600, 0).map(rfc3339).unwrap_or_default(),
                ..HourTrend::default()
            })
            .collect();
        let buckets = hours.len();
        let slot = |at: Option<DateTime<Utc>>| {
            let index = (at?.timestamp() - first_hour).div_euclid(3600);
            usize::try_from(index).ok().filter(|i| *i < buckets)
        };
        for event in self.events {
            if let Some(i) = slot(parse_time(&event.created_at)) {
                hours[i].events_received += 1;
                hours[i].events_failed += usize::from(event.status == EventStatus::Failed.as_str());
            }
        }
        for run in self.finished_runs() {
            if let Some(i) = slot(run.finished_at.as_deref().and_then(parse_time)) {
                hours[i].runs_finished += 1;
                hours[i].runs_failed += usize::from(run.status == RunStatus::Failed);
                hours[i].records_read += run.counts.records_read;
            }
        }
        let mut probe_times: Vec<Vec<i64>> = vec![Vec::new(); hours.len()];
        for probe in self.probes {
            if let (Some(i), Some(ms)) = (slot(parse_time(&probe.checked_at)), probe.response_time_ms) {
                probe_times[i].push(ms);
            }
        }
        for (hour, times) in hours.iter_mut().zip(probe_times) {
            hour.avg_response_time = (!times.is_empty()).then(|| times.iter().sum::<i64>() / times.len() as i64);
        }
        hours
    }

    fn errors(&self) -> Vec<SeenError<'_>> {
        let mut errors = Vec::new();
        for event in self.events {
            let message = match (&event.rejection, &event.last_error) {
                (Some(rejection), _) => format!("rejected: {}", rejection.reason),
                (None, Some(error)) if event.status == EventStatus::Failed.as_str() => error.clone(),
                _ => continue,
            };
            errors.push(SeenError { source: "inbound_events", at: &event.created_at, message });
        }
        for run in self.finished_runs().filter(|r| r.status == RunStatus::Failed) {
            let message = run.last_error.clone().unwrap_or_else(|| "the run failed".to_owned());
            errors.push(SeenError { source: "sync_runs", at: run.finished_at.as_deref().unwrap_or_default(), message });
        }
        for probe in self.probes {
            if let Some(error) = &probe.error {
                errors.push(SeenError { source: "probes", at: &probe.checked_at, message: error.clone() });
            }
        }
        errors
    }
}

/// The provider's connections and their runs (newest first), read whole:
/// at most 25 connections of 50 runs each.
async fn provider_runs(
    state: &AppState,
    scope: &TenantScope,
    provider_id: uuid::Uuid,
) -> AppResult<(Vec<SyncConnection>, Vec<SyncRun>)> {
    let connections: Vec<SyncConnection> = state
        .store
        .all_sync_connections(scope)
        .await?
        .into_iter()
        .filter(|c| c.source.provider_id == provider_id)
        .collect();
    let mut runs = Vec::new();
    for connection in &connections {
        let page = PageRequest { limit: RUNS_PER_CONNECTION, cursor: None };
        runs.extend(state.store.list_sync_runs(scope, connection.id, &page).await?.0);
    }
    runs.sort_by(|a, b| b.created_at.cmp(&a.created_at));
    Ok((connections, runs))
}

/// An integration's dashboard
///
/// Seed 001's dashboard for one provider (`integration_info`,
/// `health_metrics`, `performance_trends`, `error_analysis`,
/// `sync_history`, `alerts`), over the last 24 hours: the provider's
/// inbound events (at most 500), its probes, and its sync connections' runs.
/// `error_rate` = failed / settled (events processed or failed, runs
/// finished); `availability` = probes answered / probes; throughput per hour
/// = the window's events and records read / 24.
#[utoipa::path(get, path = "/v1/integrations/{id}/dashboard", tag = "integrations", security(("bearer" = ["admin"]), ("api_key" = ["integrations:manage"])),
    params(("id" = uuid::Uuid, Path, description = "The integration provider's id")),
    responses((status = 200, description = "The dashboard", body = IntegrationDashboard)))]
pub async fn dashboard(
    State(state): State<AppState>,
    principal: Principal,
    PathIds(IntegrationProviderId(id)): PathIds<IntegrationProviderId>,
) -> AppResult<Json<IntegrationDashboard>> {
    let scope = require(&principal)?;
    let (provider, _, info) = crate::load_view(&state, &scope, id).await?;
    let now = Utc::now();
    let since = now - Duration::hours(HEALTH_WINDOW_HOURS);
    let events = state.store.recent_provider_events(&scope, id, since, HEALTH_MAX_EVENTS).await?;
    let probes = state.store.probe_log(&scope, id, since).await?;
    let (connections, runs) = provider_runs(&state, &scope, id).await?;
    let alerts: Vec<Alert> =
        state.store.open_alerts(&scope).await?.into_iter().filter(|a| a.provider_id == Some(id)).collect();
    let window = Window { since, events: &events, runs: &runs, probes: &probes };
    let errors = window.errors();
    let last_error = errors.iter().max_by(|a, b| a.at.cmp(b.at)).map(|e| e.message.clone());
    let health = provider_health(&provider, &events);
    let health_metrics = HealthMetrics {
        status: health.status.clone(),
        response_time: health.response_time,
        error_rate: window.error_rate(),
        throughput: window.throughput(),
        availability: window.availability(),
        probes: probes.len(),
        last_successful_sync: connections.iter().filter_map(|c| c.last_successful_sync_at.clone()).max(),
        last_error,
        health,
    };
    Ok(Json(IntegrationDashboard {
        integration_info: info,
        performance_trends: window.trends(now),
        error_analysis: error_analysis(errors),
        sync_history: runs.iter().take(SYNC_HISTORY).map(SyncRunView::from).collect(),
        health_metrics,
        alerts,
        window_hours: HEALTH_WINDOW_HOURS,
        generated_at: now_rfc3339(),
    }))
}

/// One provider in the overview.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ProviderSummary {
    pub provider_id: uuid::Uuid,
    pub name: String,
    #[schema(value_type = HealthStatus)]
    pub status: String,
    pub is_active: bool,
    pub connections: usize,
    pub open_alerts: usize,
}

/// The tenant's sync connections at a glance.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SyncSummary {
    pub connections: usize,
    pub scheduled: usize,
    pub running: usize,
    /// Connections whose last run failed (`consecutive_failures` > 0).
    pub failing: usize,
    #[schema(format = DateTime)]
    pub last_successful_sync: Option<String>,
}

/// The tenant's integrations overview.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct IntegrationOverview {
    /// The worst active provider's status (as `GET /v1/integrations/health`).
    #[schema(value_type = HealthStatus)]
    pub status: String,
    pub providers: Vec<ProviderSummary>,
    pub syncs: SyncSummary,
    /// Open alerts by kind (`sync_failing`, `workflow_failed`).
    pub open_alerts: BTreeMap<String, usize>,
    #[schema(format = DateTime)]
    pub generated_at: String,
}

/// The tenant's integrations overview
///
/// Every provider's status (probe and 24 h of events, as
/// `GET /v1/integrations/health`), its connections and open alerts; the
/// sync connections' state; open alerts by kind.
#[utoipa::path(get, path = "/v1/integrations/overview", tag = "integrations", security(("bearer" = ["admin"]), ("api_key" = ["integrations:manage"])),
    responses((status = 200, description = "The overview", body = IntegrationOverview)))]
pub async fn overview(State(state): State<AppState>, principal: Principal) -> AppResult<Json<IntegrationOverview>> {
    let scope = require(&principal)?;
    let since = Utc::now() - Duration::hours(HEALTH_WINDOW_HOURS);
    let connections = state.store.all_sync_connections(&scope).await?;
    let alerts = state.store.open_alerts(&scope).await?;
    let mut overall = HealthStatus::Unknown;
    let mut providers = Vec::new();
    for provider in state.store.list_providers(&scope).await? {
        let events = state.store.recent_provider_events(&scope, provider.id, since, HEALTH_MAX_EVENTS).await?;
        let health = provider_health(&provider, &events);
        if provider.is_active {
            overall = overall.worst(HealthStatus::parse(&health.status).unwrap_or(HealthStatus::Unknown));
        }
        providers.push(ProviderSummary {
            provider_id: provider.id,
            name: provider.name.clone(),
            status: health.status,
            is_active: provider.is_active,
            connections: connections.iter().filter(|c| c.source.provider_id == provider.id).count(),
            open_alerts: alerts.iter().filter(|a| a.provider_id == Some(provider.id)).count(),
        });
    }
    let mut open_alerts = BTreeMap::new();
    for alert in &alerts {
        *open_alerts.entry(alert.kind.as_str().to_owned()).or_insert(0) += 1;
    }
    Ok(Json(IntegrationOverview {
        status: overall.as_str().to_owned(),
        providers,
        syncs: SyncSummary {
            connections: connections.len(),
            scheduled: connections.iter().filter(|c| c.schedule.is_some()).count(),
            running: connections.iter().filter(|c| c.active_run_id.is_some()).count(),
            failing: connections.iter().filter(|c| c.consecutive_failures > 0).count(),
            last_successful_sync: connections.iter().filter_map(|c| c.last_successful_sync_at.clone()).max(),
        },
        open_alerts,
        generated_at: now_rfc3339(),
    }))
}

/// `GET /v1/integrations/alerts` filters.
#[derive(Debug, eserde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertFilters {
    /// `open` or `resolved`.
    #[serde(default)]
    #[eserde(compat)]
    pub status: Option<AlertStatus>,
}

/// List alerts
///
/// A sync connection whose runs failed 3 times in a row (`sync_failing`;
/// it resolves itself at the next successful run) and every workflow
/// execution that ended `failed` or `timed_out` (`workflow_failed`). Kept
/// 30 days. `?status=open|resolved`, `?limit=`, `?cursor=`.
#[utoipa::path(get, path = "/v1/integrations/alerts", tag = "integrations", security(("bearer" = ["admin"]), ("api_key" = ["integrations:manage"])),
    params(("status" = Option<AlertStatus>, Query, description = "open or resolved")),
    responses((status = 200, description = "A page of alerts", body = Page<Alert>)))]
pub async fn list_alerts(
    State(state): State<AppState>,
    principal: Principal,
    query: Result<ListQuery<AlertFilters>, AppError>,
) -> AppResult<Page<Alert>> {
    let scope = require(&principal)?;
    let ListQuery { page, filters } = query?;
    let (data, next_cursor) = state.store.list_alerts(&scope, filters.status, &page).await?;
    Ok(Page { data, next_cursor })
}

/// Resolve an alert
///
/// `resolved`, by the caller; an alert already resolved is answered as it
/// is.
#[utoipa::path(post, path = "/v1/integrations/alerts/{id}/resolve", tag = "integrations", security(("bearer" = ["admin"]), ("api_key" = ["integrations:manage"])),
    responses((status = 200, description = "The alert, resolved", body = Alert)))]
pub async fn resolve_alert(
    State(state): State<AppState>,
    principal: Principal,
    PathIds(AlertId(id)): PathIds<AlertId>,
) -> AppResult<Json<Alert>> {
    let scope = require(&principal)?;
    let by = principal.user_id().to_string();
    let alert = state.store.resolve_alert(&scope, id, &by).await?;
    alert.map(Json).ok_or_else(|| AppError::not_found(ALERT_RESOURCE))
}
