//! The webhooks route group (seeds 003, 004): a tenant's endpoints and their
//! delivery log. Deliveries are made by the webhook-dispatcher; this group
//! manages endpoints, shows what happened, and asks for test sends and
//! replays through the outbox and the same bus the real events take.
//!
//! | route | handler | who |
//! |---|---|---|
//! | `POST /v1/webhooks` | [`create_endpoint`] | admin, or key `webhooks:manage` |
//! | `GET /v1/webhooks` | [`list_endpoints`] | admin, or key `webhooks:manage` |
//! | `GET /v1/webhooks/{id}` | [`get_endpoint`] | admin, or key `webhooks:manage` |
//! | `PATCH /v1/webhooks/{id}` | [`update_endpoint`] | admin, or key `webhooks:manage` |
//! | `DELETE /v1/webhooks/{id}` | [`delete_endpoint`] | admin, or key `webhooks:manage` |
//! | `POST /v1/webhooks/{id}/rotate-secret` | [`rotate_secret`] | admin, or key `webhooks:manage` |
//! | `POST /v1/webhooks/{id}/test` | [`send_test`] | admin, or key `webhooks:manage` |
//! | `GET /v1/webhooks/{id}/deliveries` | [`list_deliveries`] | admin, or key `webhooks:manage` |
//! | `POST /v1/webhooks/{id}/deliveries/{delivery_id}/replay` | [`replay_delivery`] | admin, or key `webhooks:manage` |

use axum::{
    Json, Router,
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde_json::{Map, Value, json};
use shared::{
    AppError, AppResult, AppState,
    audit::AuditContext,
    auth::{Principal, Role, Scope, TenantScope},
    domain::now_rfc3339,
    http::{JsonObject, Page, QueryParams, path_uuid},
    outbound::check_url,
    sealing,
    store::webhooks::{ENDPOINT_RESOURCE, Endpoint, endpoint_secret_key},
    validate::{Fields, Need},
    webhook_signing,
};
use uuid::Uuid;

/// This group's routes; its Lambda and the local server add the shared layers.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/webhooks", get(list_endpoints).post(create_endpoint))
        .route("/v1/webhooks/{id}", get(get_endpoint).patch(update_endpoint).delete(delete_endpoint))
        .route("/v1/webhooks/{id}/rotate-secret", post(rotate_secret))
        .route("/v1/webhooks/{id}/test", post(send_test))
        .route("/v1/webhooks/{id}/deliveries", get(list_deliveries))
        .route("/v1/webhooks/{id}/deliveries/{delivery_id}/replay", post(replay_delivery))
}

/// Seed 004's schedule: retries 5 s, 15 s and 45 s after a failure.
pub const DEFAULT_SCHEDULE: [i64; 3] = [5, 15, 45];
pub const MAX_RETRIES: usize = 10;
/// A schedule may spread a delivery over a day at most.
pub const MAX_SCHEDULE_SECONDS: i64 = 86_400;
pub const MAX_EVENT_TYPES: usize = 50;

fn is_event_pattern(value: &str) -> bool {
    let body = value.strip_suffix(".*").unwrap_or(value);
    value == "*"
        || (!body.is_empty()
            && body
                .split('.')
                .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')))
}

/// The fields a create or update sets; `None` leaves a field as it is.
#[derive(Debug, Default, PartialEq)]
pub struct EndpointFields {
    pub url: Option<String>,
    pub description: Option<Option<String>>,
    pub event_types: Option<Vec<String>>,
    pub retry_schedule_seconds: Option<Vec<i64>>,
    pub status: Option<String>,
}

impl EndpointFields {
    /// Sets what the body set (a create applies it to a blank endpoint, an
    /// update to the stored one); `status: active` re-enables and clears the
    /// failure count.
    pub fn apply_to(self, endpoint: &mut Endpoint) {
        if let Some(url) = self.url {
            endpoint.url = url;
        }
        if let Some(description) = self.description {
            endpoint.description = description;
        }
        if let Some(types) = self.event_types {
            endpoint.event_types = types;
        }
        if let Some(schedule) = self.retry_schedule_seconds {
            endpoint.retry_schedule_seconds = schedule;
        }
        match self.status.as_deref() {
            Some("active") => {
                endpoint.status = "active".into();
                endpoint.disabled_reason = None;
                endpoint.consecutive_failures = 0;
            }
            Some(_) => {
                endpoint.status = "disabled".into();
                endpoint.disabled_reason = Some("disabled by a user".into());
            }
            None => {}
        }
    }
}

/// Validates a body; `creating` makes `url` required.
pub fn endpoint_fields(body: &Map<String, Value>, creating: bool, local_mode: bool) -> AppResult<EndpointFields> {
    let mut f = Fields::new(body);
    let mut known = vec!["url", "description", "event_types", "retry_schedule_seconds"];
    if !creating {
        known.push("status");
    }
    f.reject_unknown(&known);
    let mut fields = EndpointFields::default();
    let need = if creating { Need::Required } else { Need::Optional };
    if let Some(url) = f.text("url", need, 1, 2048) {
        match check_url(&url, local_mode) {
            Ok(_) => fields.url = Some(url),
            Err(problem) => f.error("url", problem),
        }
    }
    if f.is_null("description") {
        fields.description = Some(None);
    } else if let Some(description) = f.text("description", Need::Optional, 1, 500) {
        fields.description = Some(Some(description));
    }
    if let Some(list) = f.array("event_types", Need::Optional, MAX_EVENT_TYPES) {
        let mut types = Vec::new();
        for (i, value) in list.iter().enumerate() {
            match value.as_str() {
                Some(pattern) if is_event_pattern(pattern) => types.push(pattern.to_owned()),
                _ => f.error(
                    &format!("event_types[{i}]"),
                    "must be an event type (user.created), a family (tryon.*) or *",
                ),
            }
        }
        if list.is_empty() {
            f.error("event_types", "must name at least one event type (or *)");
        }
        fields.event_types = Some(types);
    }
    if let Some(list) = f.array("retry_schedule_seconds", Need::Optional, MAX_RETRIES) {
        let delays: Vec<Option<i64>> =
            list.iter().map(|v| v.as_i64().filter(|d| (1..=MAX_SCHEDULE_SECONDS).contains(d))).collect();
        if delays.iter().any(Option::is_none) {
            f.error("retry_schedule_seconds", format!("must be whole seconds from 1 to {MAX_SCHEDULE_SECONDS}"));
        } else {
            let delays: Vec<i64> = delays.into_iter().flatten().collect();
            if delays.iter().sum::<i64>() > MAX_SCHEDULE_SECONDS {
                f.error("retry_schedule_seconds", "must add up to a day at most");
            }
            fields.retry_schedule_seconds = Some(delays);
        }
    }
    if !creating {
        fields.status = f.one_of("status", Need::Optional, &["active", "disabled"]).map(str::to_owned);
    }
    f.finish()?;
    Ok(fields)
}

/// A new secret, sealed for this endpoint: (secret, nonce, ciphertext).
fn sealed_secret(state: &AppState, scope: &TenantScope, endpoint_id: Uuid) -> AppResult<(String, [u8; 12], Vec<u8>)> {
    let secret = webhook_signing::new_secret();
    let key = endpoint_secret_key(state.config.require_cursor_secret()?, scope, endpoint_id)?;
    let (nonce, sealed) = sealing::seal(&key, secret.as_bytes())?;
    Ok((secret, nonce, sealed))
}

fn require(principal: &Principal) -> AppResult<TenantScope> {
    principal.require(Role::Admin, Scope::WebhooksManage, ENDPOINT_RESOURCE)
}

async fn load(state: &AppState, scope: &TenantScope, raw: &str) -> AppResult<Endpoint> {
    let id = path_uuid(raw, "endpoint_id")?;
    state.store.get_endpoint(scope, id).await?.ok_or_else(|| AppError::not_found(ENDPOINT_RESOURCE))
}

/// 201 with the endpoint and its signing `secret` (shown here and on
/// rotation only).
async fn create_endpoint(
    State(state): State<AppState>,
    principal: Principal,
    audit: AuditContext,
    JsonObject(body): JsonObject,
) -> AppResult<Response> {
    let scope = require(&principal)?;
    let fields = endpoint_fields(&body, true, state.config.local_mode)?;
    let now = now_rfc3339();
    // The defaults, then what the body set (`url` is required on create).
    let mut endpoint = Endpoint {
        id: Uuid::now_v7(),
        tenant_id: scope.tenant_id(),
        url: String::new(),
        description: None,
        event_types: vec!["*".to_owned()],
        status: "active".into(),
        disabled_reason: None,
        retry_schedule_seconds: DEFAULT_SCHEDULE.to_vec(),
        consecutive_failures: 0,
        created_at: now.clone(),
        updated_at: now,
    };
    fields.apply_to(&mut endpoint);
    let (secret, nonce, sealed) = sealed_secret(&state, &scope, endpoint.id)?;
    state.store.create_endpoint(&scope, &endpoint, (&nonce, &sealed), &audit).await?;
    let mut body = endpoint.to_body();
    body["secret"] = json!(secret);
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

async fn list_endpoints(State(state): State<AppState>, principal: Principal) -> AppResult<Json<Value>> {
    let scope = require(&principal)?;
    let endpoints = state.store.list_endpoints(&scope).await?;
    Ok(Json(json!({"data": endpoints.iter().map(Endpoint::to_body).collect::<Vec<_>>(), "next_cursor": null})))
}

async fn get_endpoint(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> AppResult<Json<Value>> {
    let scope = require(&principal)?;
    Ok(Json(load(&state, &scope, &id).await?.to_body()))
}

/// Partial update; `status: active` re-enables a disabled endpoint and
/// clears its failure count.
async fn update_endpoint(
    State(state): State<AppState>,
    principal: Principal,
    audit: AuditContext,
    Path(id): Path<String>,
    JsonObject(body): JsonObject,
) -> AppResult<Json<Value>> {
    let scope = require(&principal)?;
    let fields = endpoint_fields(&body, false, state.config.local_mode)?;
    let old = load(&state, &scope, &id).await?;
    let mut new = old.clone();
    fields.apply_to(&mut new);
    new.updated_at = now_rfc3339();
    if !state.store.update_endpoint(&scope, &old, &new, &audit).await? {
        return Err(AppError::conflict("the endpoint was changed meanwhile; read it again and retry"));
    }
    Ok(Json(new.to_body()))
}

async fn delete_endpoint(
    State(state): State<AppState>,
    principal: Principal,
    audit: AuditContext,
    Path(id): Path<String>,
) -> AppResult<StatusCode> {
    let scope = require(&principal)?;
    let endpoint = load(&state, &scope, &id).await?;
    state.store.delete_endpoint(&scope, &endpoint, &audit).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A new signing secret; the old one stops signing at once.
async fn rotate_secret(
    State(state): State<AppState>,
    principal: Principal,
    audit: AuditContext,
    Path(id): Path<String>,
) -> AppResult<Json<Value>> {
    let scope = require(&principal)?;
    let endpoint = load(&state, &scope, &id).await?;
    let (secret, nonce, sealed) = sealed_secret(&state, &scope, endpoint.id)?;
    if !state.store.rotate_endpoint_secret(&scope, endpoint.id, (&nonce, &sealed), &audit).await? {
        return Err(AppError::not_found(ENDPOINT_RESOURCE));
    }
    Ok(Json(json!({"id": endpoint.id, "secret": secret})))
}

/// Emits `webhook.test` for this endpoint only (through the outbox); it is
/// delivered (and logged) like any event. 202 with the event id, which is
/// the delivery id.
async fn send_test(State(state): State<AppState>, principal: Principal, Path(id): Path<String>) -> AppResult<Response> {
    let scope = require(&principal)?;
    let endpoint = load(&state, &scope, &id).await?;
    let event = state.store.send_test_event(&scope, endpoint.id).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({"event_id": event.id, "delivery_id": event.id}))).into_response())
}

/// Newest first, every attempt included; `?status=`, `?limit=`, `?cursor=`.
async fn list_deliveries(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    params: QueryParams,
) -> AppResult<Page<Value>> {
    let scope = require(&principal)?;
    params.allow_only(&["limit", "cursor", "status"])?;
    let page = params.page()?;
    let filters = params.as_object();
    let mut f = Fields::new(&filters);
    let status = f.one_of("status", Need::Optional, &["pending", "succeeded", "failed"]);
    f.finish()?;
    let endpoint = load(&state, &scope, &id).await?;
    let (deliveries, next_cursor) = state.store.list_deliveries(&scope, endpoint.id, status, &page).await?;
    Ok(Page { data: deliveries.iter().map(|d| d.to_body()).collect(), next_cursor })
}

/// Sends a failed delivery again (same webhook-id, a fresh round of the
/// schedule): the delivery goes back to pending with
/// `webhook.delivery.replay_requested` in the same transaction. 202; 409 if
/// the delivery is not failed or the endpoint is disabled.
async fn replay_delivery(
    State(state): State<AppState>,
    principal: Principal,
    Path((id, delivery_id)): Path<(String, String)>,
) -> AppResult<Response> {
    let scope = require(&principal)?;
    let endpoint = load(&state, &scope, &id).await?;
    let delivery_id = path_uuid(&delivery_id, "delivery_id")?;
    let delivery = state
        .store
        .get_delivery(&scope, endpoint.id, delivery_id)
        .await?
        .ok_or_else(|| AppError::not_found("webhook_delivery"))?;
    if endpoint.status != "active" {
        return Err(AppError::conflict("the endpoint is disabled; enable it first"));
    }
    if !state.store.requeue_delivery(&scope, &delivery).await? {
        return Err(AppError::conflict(format!(
            "only failed deliveries are replayed; this one is {}",
            delivery.status
        )));
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"delivery_id": delivery.id, "webhook_id": delivery.message_id(), "status": "pending"})),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(body: Value, creating: bool, local: bool) -> Vec<String> {
        match endpoint_fields(body.as_object().expect("object"), creating, local) {
            Ok(_) => Vec::new(),
            Err(AppError::Api { details, .. }) => details["fields"]
                .as_array()
                .map(|fs| fs.iter().filter_map(|f| f["field"].as_str().map(str::to_owned)).collect())
                .unwrap_or_default(),
            Err(AppError::Internal(e)) => panic!("{e}"),
        }
    }

    #[test]
    fn endpoints_are_validated_field_by_field() {
        assert!(
            problems(
                json!({"url": "https://hooks.example.com/x", "event_types": ["tryon.*", "user.created"]}),
                true,
                false
            )
            .is_empty()
        );
        assert_eq!(problems(json!({}), true, false), ["url"]);
        assert_eq!(problems(json!({"url": "http://hooks.example.com/x"}), true, false), ["url"]);
        assert!(problems(json!({"url": "http://127.0.0.1:9/x"}), true, true).is_empty(), "local mode");
        assert_eq!(problems(json!({"url": "https://169.254.169.254/latest"}), true, false), ["url"]);
        assert_eq!(problems(json!({"url": "https://10.0.0.1/x"}), true, false), ["url"]);
        assert_eq!(
            problems(
                json!({"url": "https://h.example.com", "event_types": ["User.Created", "*", "tryon.*.x"]}),
                true,
                false
            ),
            ["event_types[0]", "event_types[2]"]
        );
        assert_eq!(
            problems(json!({"url": "https://h.example.com", "retry_schedule_seconds": [5, 0]}), true, false),
            ["retry_schedule_seconds"]
        );
        assert_eq!(
            problems(json!({"url": "https://h.example.com", "retry_schedule_seconds": [86_400, 1]}), true, false),
            ["retry_schedule_seconds"]
        );
        assert_eq!(problems(json!({"status": "paused"}), false, false), ["status"]);
        assert_eq!(problems(json!({"status": "active"}), true, false), ["status", "url"]);
    }
}
