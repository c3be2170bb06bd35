//! Inbound events (list, read with the raw payload, replay one or a time
//! window) and provider health (the last probe and the recent events'
//! figures, thresholds in `shared::domain::integration`).

use std::collections::BTreeMap;

use axum::{Json, extract::State, http::StatusCode};
use serde::Serialize;
use shared::{
    AppError, AppResult, AppState,
    auth::{Principal, TenantScope},
    domain::{
        ids::{InboundEventId, IntegrationProviderId},
        integration::{
            EventStats, EventStatus, HEALTH_MAX_EVENTS, HEALTH_WINDOW_HOURS, HealthStatus, InboundEvent,
            InboundEventView, Probe, Provider,
        },
        now_rfc3339,
        values::{DateBound, Text},
    },
    error::FieldError,
    http::Page,
    outbound::Fetcher,
    store::{
        PageRequest,
        integrations::{EVENT_RESOURCE, EventFilter, PROVIDER_RESOURCE},
    },
    web::extract::{Body, ListQuery, PathIds},
};
use uuid::Uuid;

use crate::require;

/// `GET /v1/integrations/events` filters (seed 003's fields).
#[derive(Debug, eserde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventFilters {
    /// A provider's name.
    #[serde(default)]
    #[eserde(compat)]
    provider: Option<Text<1, 64>>,
    #[serde(default)]
    #[eserde(compat)]
    provider_id: Option<IntegrationProviderId>,
    #[serde(default)]
    #[eserde(compat)]
    event_type: Option<Text<1, 255>>,
    #[serde(default)]
    #[eserde(compat)]
    status: Option<EventStatus>,
    #[serde(default)]
    #[eserde(compat)]
    date_from: Option<DateBound>,
    #[serde(default)]
    #[eserde(compat)]
    date_to: Option<DateBound>,
}

/// The store's filter; a provider named by name is looked up (an unknown
/// name matches nothing, as a filter should).
async fn filter_of(state: &AppState, scope: &TenantScope, filters: EventFilters) -> AppResult<Option<EventFilter>> {
    let from = filters.date_from.and_then(DateBound::first_instant);
    let to = filters.date_to.and_then(DateBound::last_instant);
    if let (Some(f), Some(t)) = (from, to)
        && f > t
    {
        return Err(AppError::validation(vec![FieldError::new("date_from", "must not be after date_to")]));
    }
    let mut provider_id = filters.provider_id.map(|IntegrationProviderId(id)| id);
    if let Some(name) = filters.provider {
        let named = state.store.list_providers(scope).await?.into_iter().find(|p| p.name == name.as_str());
        match (named, provider_id) {
            (None, _) => return Ok(None),
            (Some(p), Some(id)) if p.id != id => return Ok(None),
            (Some(p), _) => provider_id = Some(p.id),
        }
    }
    Ok(Some(EventFilter {
        provider_id,
        event_type: filters.event_type.map(Text::into_inner),
        status: filters.status,
        from,
        to,
    }))
}

/// List inbound events
///
/// Newest first; filters `provider` (name) or `provider_id`, `event_type`,
/// `status`, `date_from`, `date_to` (RFC 3339 or `YYYY-MM-DD`, inclusive);
/// `?limit=`, `?cursor=`.
#[utoipa::path(get, path = "/v1/integrations/events", tag = "integrations", security(("bearer" = ["admin"]), ("api_key" = ["integrations:manage"])),
    params(
        ("provider" = Option<String>, Query, description = "Only this provider's events (its name)", max_length = 64),
        ("provider_id" = Option<String>, Query, description = "Only this provider's events", format = Uuid),
        ("event_type" = Option<String>, Query, description = "Only events of this type (`user.created`)", max_length = 255),
        ("status" = Option<EventStatus>, Query, description = "Only events in this status"),
        ("date_from" = inline(Option<DateBound>), Query, description = "Only events received at or after this instant, or from the start of this day (UTC)"),
        ("date_to" = inline(Option<DateBound>), Query, description = "Only events received at or before this instant, or up to the end of this day (UTC)"),
    ),
    responses((status = 200, description = "A page of events, newest first", body = Page<InboundEventView>)))]
pub async fn list_events(
    State(state): State<AppState>,
    principal: Principal,
    query: Result<ListQuery<EventFilters>, AppError>,
) -> AppResult<Page<InboundEventView>> {
    let scope = require(&principal)?;
    let ListQuery { page, filters } = query?;
    let Some(filter) = filter_of(&state, &scope, filters).await? else {
        return Ok(Page { data: Vec::new(), next_cursor: None });
    };
    let (events, next_cursor) = state.store.list_inbound_events(&scope, &filter, &page).await?;
    Ok(Page { data: events.iter().map(InboundEvent::view).collect(), next_cursor })
}

/// An event with the body its sender signed.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EventDetail {
    #[serde(flatten)]
    pub event: InboundEventView,
    /// The body as received (JSON); null for a rejection (never kept).
    #[schema(value_type = Option<Object>)]
    pub payload: Option<serde_json::Value>,
}

async fn load(state: &AppState, scope: &TenantScope, id: Uuid) -> AppResult<InboundEvent> {
    state.store.get_inbound_event(scope, id).await?.ok_or_else(|| AppError::not_found(EVENT_RESOURCE))
}

async fn payload_of(state: &AppState, event: &InboundEvent) -> AppResult<Option<serde_json::Value>> {
    let Some(key) = event.payload_key.as_deref() else { return Ok(None) };
    let Some(bytes) = state.blobs.get(key).await? else { return Ok(None) };
    Ok(Some(serde_json::from_slice(&bytes).map_err(AppError::internal)?))
}

/// Read an inbound event
///
/// With the raw payload as received.
#[utoipa::path(get, path = "/v1/integrations/events/{id}", tag = "integrations", security(("bearer" = ["admin"]), ("api_key" = ["integrations:manage"])),
    responses((status = 200, description = "The event and its payload", body = EventDetail)))]
pub async fn get_event(
    State(state): State<AppState>,
    principal: Principal,
    PathIds(InboundEventId(id)): PathIds<InboundEventId>,
) -> AppResult<Json<EventDetail>> {
    let scope = require(&principal)?;
    let event = load(&state, &scope, id).await?;
    let payload = payload_of(&state, &event).await?;
    Ok(Json(EventDetail { event: event.view(), payload }))
}

/// A replay accepted.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Replayed {
    pub id: Uuid,
    #[schema(value_type = EventStatus)]
    pub status: String,
    pub replay_count: i64,
}

async fn replay(state: &AppState, scope: &TenantScope, event: &InboundEvent) -> AppResult<bool> {
    if event.status == EventStatus::Rejected.as_str() {
        return Ok(false);
    }
    let payload = payload_of(state, event).await?.unwrap_or(serde_json::Value::Null);
    state.store.replay_inbound_event(scope, event, &payload).await
}

/// Replay an inbound event
///
/// Puts the stored event on the bus again (a new `integration.event.received`
/// for the same event): it goes back to `received` and is processed, and
/// delivered to subscribed webhooks, again. 202; 409 for a `rejected` event
/// (nothing of it was kept).
#[utoipa::path(post, path = "/v1/integrations/events/{id}/replay", tag = "integrations", security(("bearer" = ["admin"]), ("api_key" = ["integrations:manage"])),
    responses(
        (status = 202, description = "On the bus again", body = Replayed),
        (status = 409, description = "Conflict\n\n- `conflict`: the event was rejected; it has no payload to replay\n- `idempotency_key_in_use`: a request with this `Idempotency-Key` is still running", body = shared::web::openapi::ApiError),
    ))]
pub async fn replay_event(
    State(state): State<AppState>,
    principal: Principal,
    PathIds(InboundEventId(id)): PathIds<InboundEventId>,
) -> AppResult<(StatusCode, Json<Replayed>)> {
    let scope = require(&principal)?;
    let event = load(&state, &scope, id).await?;
    if !replay(&state, &scope, &event).await? {
        return Err(AppError::conflict("a rejected event has no payload to replay"));
    }
    let replayed =
        Replayed { id, status: EventStatus::Received.as_str().to_owned(), replay_count: event.replay_count + 1 };
    Ok((StatusCode::ACCEPTED, Json(replayed)))
}

/// The most events one window replay puts back on the bus; the answer's
/// `next_cursor` continues.
const MAX_REPLAYED_PER_CALL: i32 = 100;

/// `POST /v1/integrations/events/replay`: a time window, required.
#[derive(Debug, eserde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplayWindow {
    #[eserde(compat)]
    #[schema(value_type = String)]
    pub date_from: DateBound,
    #[eserde(compat)]
    #[schema(value_type = String)]
    pub date_to: DateBound,
    #[serde(default)]
    #[eserde(compat)]
    #[schema(value_type = Option<String>, format = Uuid)]
    pub provider_id: Option<IntegrationProviderId>,
    /// Only events in this status (`failed`, say); rejected events are
    /// never replayed.
    #[serde(default)]
    #[eserde(compat)]
    pub status: Option<EventStatus>,
    /// From the `next_cursor` of the previous call.
    #[serde(default)]
    #[eserde(compat)]
    #[schema(value_type = Option<String>)]
    pub cursor: Option<Text<1, 2048>>,
}

/// What a window replay did.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WindowReplayed {
    /// Events put back on the bus by this call (at most 100).
    pub replayed: usize,
    pub event_ids: Vec<Uuid>,
    /// Send it back as `cursor` for the rest of the window; null when done.
    pub next_cursor: Option<String>,
}

/// Replay a time window of events
///
/// Every stored (not rejected) event received in the window, newest first,
/// 100 per call (`next_cursor` continues): each goes back on the bus like a
/// single replay.
#[utoipa::path(post, path = "/v1/integrations/events/replay", tag = "integrations", security(("bearer" = ["admin"]), ("api_key" = ["integrations:manage"])),
    request_body(content = ReplayWindow, example = json!({"date_from": "2026-12-01T00:00:00Z", "date_to": "2026-12-01T06:00:00Z", "status": "failed"})),
    responses((status = 202, description = "On the bus again", body = WindowReplayed)))]
pub async fn replay_window(
    State(state): State<AppState>,
    principal: Principal,
    body: Result<Body<ReplayWindow>, AppError>,
) -> AppResult<(StatusCode, Json<WindowReplayed>)> {
    let scope = require(&principal)?;
    let Body(window) = body?;
    if window.status == Some(EventStatus::Rejected) {
        return Err(AppError::validation(vec![FieldError::new("status", "rejected events are never replayed")]));
    }
    let filters = EventFilters {
        provider: None,
        provider_id: window.provider_id,
        event_type: None,
        status: window.status,
        date_from: Some(window.date_from),
        date_to: Some(window.date_to),
    };
    let filter = filter_of(&state, &scope, filters).await?.unwrap_or_default();
    let page = PageRequest { limit: MAX_REPLAYED_PER_CALL, cursor: window.cursor.map(Text::into_inner) };
    let (events, next_cursor) = state.store.list_inbound_events(&scope, &filter, &page).await?;
    let mut event_ids = Vec::new();
    for event in &events {
        if replay(&state, &scope, event).await? {
            event_ids.push(event.id);
        }
    }
    Ok((StatusCode::ACCEPTED, Json(WindowReplayed { replayed: event_ids.len(), event_ids, next_cursor })))
}

/// Probes `provider`'s `api_base_url` now and records the result.
pub async fn probe(
    state: &AppState,
    fetcher: &Fetcher,
    scope: &TenantScope,
    provider: &Provider,
) -> AppResult<Option<Probe>> {
    let Some(url) = provider.api_base_url.as_deref() else { return Ok(None) };
    let probed = fetcher.probe(url).await;
    let result = Probe::of(probed.elapsed_ms, probed.status, probed.error, now_rfc3339());
    state.store.record_probe(scope, provider.id, &result).await?;
    Ok(Some(result))
}

/// Probe a provider now
///
/// `GET` of its `api_base_url` (5 s timeout, no redirect), recorded as its
/// last probe; the schedule does the same every 5 minutes. 409 when it has
/// no `api_base_url`.
#[utoipa::path(post, path = "/v1/integrations/providers/{id}/probe", tag = "integrations", security(("bearer" = ["admin"]), ("api_key" = ["integrations:manage"])),
    responses(
        (status = 200, description = "The probe's result", body = Probe),
        (status = 409, description = "Conflict\n\n- `conflict`: the provider has no `api_base_url` to probe", body = shared::web::openapi::ApiError),
    ))]
pub async fn probe_provider(
    State(state): State<AppState>,
    principal: Principal,
    PathIds(IntegrationProviderId(id)): PathIds<IntegrationProviderId>,
) -> AppResult<Json<Probe>> {
    let scope = require(&principal)?;
    let provider = state.store.get_provider(&scope, id).await?.ok_or_else(|| AppError::not_found(PROVIDER_RESOURCE))?;
    let fetcher = Fetcher::new(state.config.local_mode).map_err(AppError::internal)?;
    probe(&state, &fetcher, &scope, &provider)
        .await?
        .map(Json)
        .ok_or_else(|| AppError::conflict("the provider has no api_base_url to probe"))
}

/// One provider's health (seed 003's `status`, `response_time`, `last_check`,
/// and what they come from).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ProviderHealth {
    pub provider_id: Uuid,
    #[schema(value_type = HealthStatus)]
    pub status: String,
    /// Milliseconds the last probe waited for an answer; null without one.
    pub response_time: Option<i64>,
    /// When the last probe ran; null if never.
    #[schema(format = DateTime)]
    pub last_check: Option<String>,
    pub is_active: bool,
    pub last_probe: Option<Probe>,
    pub events: EventStats,
    /// Why the status is not `healthy`.
    pub reasons: Vec<String>,
}

/// The tenant's integration health.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct IntegrationHealth {
    /// The worst status of the active providers; `unknown` when none has
    /// been probed or has enough events.
    #[schema(value_type = HealthStatus)]
    pub status: String,
    /// By provider name.
    pub providers: BTreeMap<String, ProviderHealth>,
    #[schema(format = DateTime)]
    pub checked_at: String,
    /// The thresholds the statuses were computed with.
    pub thresholds: HealthThresholds,
}

/// docs/integrations.md explains each.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HealthThresholds {
    pub probe_slow_ms: i64,
    pub probe_timeout_ms: i64,
    pub degraded_below_success_rate: f64,
    pub down_below_success_rate: f64,
    pub min_settled_events: usize,
    pub window_hours: i64,
}

/// One provider's health from its last probe and its recent events.
pub fn provider_health(provider: &Provider, events: &[InboundEvent]) -> ProviderHealth {
    let truncated = events.len() >= HEALTH_MAX_EVENTS as usize;
    let stats = EventStats::of(events, truncated);
    let mut reasons = Vec::new();
    let probe_status =
        provider.probe.as_ref().and_then(|p| HealthStatus::parse(&p.status)).unwrap_or(HealthStatus::Unknown);
    if let Some(error) = provider.probe.as_ref().and_then(|p| p.error.clone()) {
        reasons.push(format!("probe: {error}"));
    }
    let event_status = stats.status().unwrap_or(HealthStatus::Unknown);
    if matches!(event_status, HealthStatus::Degraded | HealthStatus::Down) {
        let rate = stats.success_rate.unwrap_or(0.0) * 100.0;
        reasons.push(format!("events: {rate:.1} % of settled events processed"));
    }
    ProviderHealth {
        provider_id: provider.id,
        status: probe_status.worst(event_status).as_str().to_owned(),
        response_time: provider.probe.as_ref().and_then(|p| p.response_time_ms),
        last_check: provider.probe.as_ref().map(|p| p.checked_at.clone()),
        is_active: provider.is_active,
        last_probe: provider.probe.clone(),
        events: stats,
        reasons,
    }
}

/// Integration health
///
/// Per provider: the last active probe of its `api_base_url` (every 5
/// minutes, or `POST .../probe`) and its events of the last 24 hours
/// (success rate, processing latency p50/p95, last success and error).
/// Probe: no answer is `down`, a 5xx or over 1000 ms `degraded`. Events
/// (with at least 5 settled): under 50 % processed `down`, under 95 %
/// `degraded`. A provider's status is the worse of the two; the overall,
/// the worst active provider's.
#[utoipa::path(get, path = "/v1/integrations/health", tag = "integrations", security(("bearer" = ["admin"]), ("api_key" = ["integrations:manage"])),
    responses((status = 200, description = "Health by provider", body = IntegrationHealth)))]
pub async fn health(State(state): State<AppState>, principal: Principal) -> AppResult<Json<IntegrationHealth>> {
    let scope = require(&principal)?;
    let since = chrono::Utc::now() - chrono::Duration::hours(HEALTH_WINDOW_HOURS);
    let mut providers = BTreeMap::new();
    let mut overall = HealthStatus::Unknown;
    for provider in state.store.list_providers(&scope).await? {
        let events = state.store.recent_provider_events(&scope, provider.id, since, HEALTH_MAX_EVENTS).await?;
        let health = provider_health(&provider, &events);
        if provider.is_active {
            overall = overall.worst(HealthStatus::parse(&health.status).unwrap_or(HealthStatus::Unknown));
        }
        providers.insert(provider.name.clone(), health);
    }
    Ok(Json(IntegrationHealth {
        status: overall.as_str().to_owned(),
        providers,
        checked_at: now_rfc3339(),
        thresholds: HealthThresholds {
            probe_slow_ms: shared::domain::integration::PROBE_SLOW_MS,
            probe_timeout_ms: shared::outbound::PROBE_TIMEOUT.as_millis() as i64,
            degraded_below_success_rate: shared::domain::integration::DEGRADED_BELOW,
            down_below_success_rate: shared::domain::integration::DOWN_BELOW,
            min_settled_events: shared::domain::integration::MIN_SETTLED_EVENTS,
            window_hours: HEALTH_WINDOW_HOURS,
        },
    }))
}
