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
    extract::State,
    http::StatusCode,
    routing::{get, post},
};
use serde::Serialize;
use shared::{
    AppError, AppResult, AppState,
    audit::AuditContext,
    auth::{Principal, Role, Scope, TenantScope},
    domain::{
        ids::{DeliveryId, EndpointId},
        now_rfc3339,
        values::{HttpUrl, Settable, Text},
        webhook::{
            DEFAULT_SCHEDULE, DeliveryStatus, DeliveryView, EndpointStatus, EndpointView, EventPattern,
            MAX_EVENT_TYPES, RetrySchedule,
        },
    },
    error::FieldError,
    http::Page,
    outbound::check_url,
    store::webhooks::{Delivery, ENDPOINT_RESOURCE, Endpoint, endpoint_secret_context},
    web::extract::{Body, ListQuery, Patch, PathIds},
    webhook_signing,
};
use uuid::Uuid;

/// This group's part of the OpenAPI document (`shared::web::openapi`).
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        create_endpoint, list_endpoints, get_endpoint, update_endpoint, delete_endpoint, rotate_secret, send_test,
        list_deliveries, replay_delivery
    ),
    tags((name = "webhooks", description = "A tenant's webhook endpoints (seeds 003, 004): what they subscribe to, their signing secret and retry schedule, the log of every delivery attempt, test sends and replays. The events and their payloads are this document's `webhooks`."))
)]
pub struct ApiDoc;

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

type Description = Text<1, 500>;

/// A new endpoint: only `url` is required (`event_types` defaults to `*`,
/// the retry schedule to seed 004's `[5, 15, 45]`).
#[derive(Debug, eserde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEndpoint {
    /// Where deliveries are POSTed: `https`, to a public address (a local
    /// development server takes `http` and private addresses too).
    #[eserde(compat)]
    pub url: HttpUrl,
    #[serde(default)]
    #[eserde(compat)]
    pub description: Option<Description>,
    /// What the endpoint subscribes to: 1 to 50 event types, families
    /// (`tryon.*`) or `*`; `*` when left out.
    #[serde(default)]
    #[schema(min_items = 1, max_items = 50)]
    pub event_types: Option<Vec<EventPattern>>,
    #[serde(default)]
    pub retry_schedule_seconds: Option<RetrySchedule>,
}

/// An endpoint's partial update: every field optional; `null` clears the
/// description and is refused on the others ("must not be null").
#[derive(Debug, Default, eserde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointUpdate {
    /// Where deliveries are POSTed: `https`, to a public address (a local
    /// development server takes `http` and private addresses too).
    #[serde(default)]
    #[eserde(compat)]
    pub url: Settable<HttpUrl>,
    #[serde(default)]
    #[eserde(compat)]
    pub description: Patch<Description>,
    /// What the endpoint subscribes to: 1 to 50 event types, families
    /// (`tryon.*`) or `*`.
    #[serde(default)]
    #[schema(schema_with = shared::domain::webhook::event_types_schema)]
    pub event_types: Settable<Vec<EventPattern>>,
    #[serde(default)]
    pub retry_schedule_seconds: Settable<RetrySchedule>,
    /// `active` re-enables a disabled endpoint and clears its failure count;
    /// `disabled` stops its deliveries.
    #[serde(default)]
    #[eserde(compat)]
    pub status: Settable<EndpointStatus>,
}

/// The fields a create or update sets; `None` leaves a field as it is.
#[derive(Debug, Default, PartialEq)]
pub struct EndpointFields {
    pub url: Option<String>,
    pub description: Option<Option<String>>,
    pub event_types: Option<Vec<String>>,
    pub retry_schedule_seconds: Option<Vec<i64>>,
    pub status: Option<EndpointStatus>,
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
        match self.status {
            Some(EndpointStatus::Active) => {
                endpoint.status = EndpointStatus::Active.as_str().into();
                endpoint.disabled_reason = None;
                endpoint.consecutive_failures = 0;
            }
            Some(EndpointStatus::Disabled) => {
                endpoint.status = EndpointStatus::Disabled.as_str().into();
                endpoint.disabled_reason = Some("disabled by a user".into());
            }
            None => {}
        }
    }
}

impl From<NewEndpoint> for EndpointUpdate {
    fn from(body: NewEndpoint) -> Self {
        let set = |v: Option<_>| v.map_or(Settable::Absent, Settable::Value);
        EndpointUpdate {
            url: Settable::Value(body.url),
            description: body.description.map_or(Patch::Absent, Patch::Value),
            event_types: body.event_types.map_or(Settable::Absent, Settable::Value),
            retry_schedule_seconds: set(body.retry_schedule_seconds),
            status: Settable::Absent,
        }
    }
}

impl EndpointUpdate {
    /// The rules parsing cannot state: the URL must be one we may call
    /// (`outbound::check_url`), at least one and at most 50 event types.
    pub fn into_fields(self, local_mode: bool) -> AppResult<EndpointFields> {
        let mut errors = Vec::new();
        let mut fields = EndpointFields::default();
        if let Settable::Value(url) = self.url {
            match check_url(url.as_str(), local_mode) {
                Ok(_) => fields.url = Some(url.into_inner()),
                Err(problem) => errors.push(FieldError::new("url", problem)),
            }
        }
        fields.description = match self.description {
            Patch::Absent => None,
            Patch::Null => Some(None),
            Patch::Value(d) => Some(Some(d.into_inner())),
        };
        if let Settable::Value(types) = self.event_types {
            if types.is_empty() {
                errors.push(FieldError::new("event_types", "must name at least one event type (or *)"));
            } else if types.len() > MAX_EVENT_TYPES {
                errors.push(FieldError::new("event_types", format!("must have at most {MAX_EVENT_TYPES} items")));
            }
            fields.event_types = Some(types.iter().map(|t| t.as_str().to_owned()).collect());
        }
        if let Settable::Value(schedule) = self.retry_schedule_seconds {
            fields.retry_schedule_seconds = Some(schedule.into_inner());
        }
        if let Settable::Value(status) = self.status {
            fields.status = Some(status);
        }
        if errors.is_empty() { Ok(fields) } else { Err(AppError::validation(errors)) }
    }
}

/// A new secret, sealed for this endpoint: (secret, nonce, ciphertext).
fn sealed_secret(state: &AppState, scope: &TenantScope, endpoint_id: Uuid) -> AppResult<(String, [u8; 12], Vec<u8>)> {
    let secret = webhook_signing::new_secret();
    let (nonce, sealed) = state.keys.sealing.seal(&endpoint_secret_context(scope, endpoint_id), secret.as_bytes())?;
    Ok((secret, nonce, sealed))
}

fn require(principal: &Principal) -> AppResult<TenantScope> {
    principal.require(Role::Admin, Scope::WebhooksManage, ENDPOINT_RESOURCE)
}

async fn load(state: &AppState, scope: &TenantScope, EndpointId(id): EndpointId) -> AppResult<Endpoint> {
    state.store.get_endpoint(scope, id).await?.ok_or_else(|| AppError::not_found(ENDPOINT_RESOURCE))
}

/// A new endpoint with its signing secret: one of the two answers that
/// ever show the secret (rotation is the other).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EndpointWithSecret {
    #[serde(flatten)]
    pub endpoint: EndpointView,
    /// The signing secret (`whsec_...`); store it now, it is not shown again.
    pub secret: String,
}

/// Create a webhook endpoint
///
/// 201 with the endpoint and its signing `secret` (shown here and on
/// rotation only). The endpoint receives the events that happen from now
/// on, signed with the secret.
#[utoipa::path(post, path = "/v1/webhooks", tag = "webhooks", security(("bearer" = ["admin"]), ("api_key" = ["webhooks:manage"])),
    request_body(content = NewEndpoint, example = json!({
        "url": "https://hooks.example.com/garmax",
        "description": "Order system",
        "event_types": ["tryon.*", "credits.spent"],
        "retry_schedule_seconds": [5, 15, 45]
    })),
    responses(
        (status = 201, description = "The endpoint, `active`, and its signing secret", body = EndpointWithSecret),
        (status = 409, description = "Conflict\n\n- `conflict`: the tenant has the most endpoints allowed (`details.reason`: `too_many_endpoints`, `details.max_endpoints`)\n- `idempotency_key_in_use`: a request with this `Idempotency-Key` is still running", body = shared::web::openapi::ApiError),
    ))]
async fn create_endpoint(
    State(state): State<AppState>,
    principal: Principal,
    audit: AuditContext,
    body: Result<Body<NewEndpoint>, AppError>,
) -> AppResult<(StatusCode, Json<EndpointWithSecret>)> {
    let scope = require(&principal)?;
    let Body(body) = body?;
    let fields = EndpointUpdate::from(body).into_fields(state.config.local_mode)?;
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
    Ok((StatusCode::CREATED, Json(EndpointWithSecret { endpoint: endpoint.view(), secret })))
}

/// List webhook endpoints
///
/// In creation order; `?limit=`, `?cursor=`.
#[utoipa::path(get, path = "/v1/webhooks", tag = "webhooks", security(("bearer" = ["admin"]), ("api_key" = ["webhooks:manage"])),
    responses((status = 200, description = "A page of endpoints", body = Page<EndpointView>)))]
async fn list_endpoints(
    State(state): State<AppState>,
    principal: Principal,
    query: Result<ListQuery<shared::web::extract::NoFilters>, AppError>,
) -> AppResult<Page<EndpointView>> {
    let scope = require(&principal)?;
    let ListQuery { page, .. } = query?;
    let (endpoints, next_cursor) = state.store.list_endpoints_page(&scope, &page).await?;
    Ok(Page { data: endpoints.iter().map(Endpoint::view).collect(), next_cursor })
}

/// Read a webhook endpoint
///
/// Its secret is never shown again (rotate it for a new one).
#[utoipa::path(get, path = "/v1/webhooks/{id}", tag = "webhooks", security(("bearer" = ["admin"]), ("api_key" = ["webhooks:manage"])),
    responses((status = 200, description = "The endpoint", body = EndpointView)))]
async fn get_endpoint(
    State(state): State<AppState>,
    principal: Principal,
    PathIds(id): PathIds<EndpointId>,
) -> AppResult<Json<EndpointView>> {
    let scope = require(&principal)?;
    // Read with credentials that can only read this tenant's partitions.
    let store = state.tenant_store(&scope).await?;
    let EndpointId(id) = id;
    Ok(Json(store.get_endpoint(&scope, id).await?.ok_or_else(|| AppError::not_found(ENDPOINT_RESOURCE))?.view()))
}

/// Update a webhook endpoint
///
/// A partial update; `status: active` re-enables a disabled endpoint and
/// clears its failure count.
#[utoipa::path(patch, path = "/v1/webhooks/{id}", tag = "webhooks", security(("bearer" = ["admin"]), ("api_key" = ["webhooks:manage"])),
    request_body(content = EndpointUpdate, example = json!({"event_types": ["tryon.session.completed", "tryon.session.failed"], "status": "active"})),
    responses(
        (status = 200, description = "The endpoint as updated", body = EndpointView),
        (status = 409, description = "Conflict\n\n- `conflict`: the endpoint was changed meanwhile (by another request, or disabled after failed deliveries); read it again and retry", body = shared::web::openapi::ApiError),
    ))]
async fn update_endpoint(
    State(state): State<AppState>,
    principal: Principal,
    audit: AuditContext,
    PathIds(id): PathIds<EndpointId>,
    body: Result<Body<EndpointUpdate>, AppError>,
) -> AppResult<Json<EndpointView>> {
    let scope = require(&principal)?;
    let Body(body) = body?;
    let fields = body.into_fields(state.config.local_mode)?;
    let old = load(&state, &scope, id).await?;
    let mut new = old.clone();
    fields.apply_to(&mut new);
    new.updated_at = now_rfc3339();
    if !state.store.update_endpoint(&scope, &old, &new, &audit).await? {
        return Err(AppError::conflict("the endpoint was changed meanwhile; read it again and retry"));
    }
    Ok(Json(new.view()))
}

/// Delete a webhook endpoint
///
/// Its deliveries still pending end `failed` without a request, and its
/// delivery log can no longer be read.
#[utoipa::path(delete, path = "/v1/webhooks/{id}", tag = "webhooks", security(("bearer" = ["admin"]), ("api_key" = ["webhooks:manage"])),
    responses((status = 204, description = "Deleted")))]
async fn delete_endpoint(
    State(state): State<AppState>,
    principal: Principal,
    audit: AuditContext,
    PathIds(id): PathIds<EndpointId>,
) -> AppResult<StatusCode> {
    let scope = require(&principal)?;
    let endpoint = load(&state, &scope, id).await?;
    state.store.delete_endpoint(&scope, &endpoint, &audit).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// An endpoint's new signing secret, shown this once.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RotatedSecret {
    /// The endpoint's id.
    pub id: Uuid,
    pub secret: String,
}

/// Rotate an endpoint's signing secret
///
/// A new secret, shown this once; the old one stops signing at once.
#[utoipa::path(post, path = "/v1/webhooks/{id}/rotate-secret", tag = "webhooks", security(("bearer" = ["admin"]), ("api_key" = ["webhooks:manage"])),
    responses((status = 200, description = "The new signing secret", body = RotatedSecret)))]
async fn rotate_secret(
    State(state): State<AppState>,
    principal: Principal,
    audit: AuditContext,
    PathIds(id): PathIds<EndpointId>,
) -> AppResult<Json<RotatedSecret>> {
    let scope = require(&principal)?;
    let endpoint = load(&state, &scope, id).await?;
    let (secret, nonce, sealed) = sealed_secret(&state, &scope, endpoint.id)?;
    if !state.store.rotate_endpoint_secret(&scope, endpoint.id, (&nonce, &sealed), &audit).await? {
        return Err(AppError::not_found(ENDPOINT_RESOURCE));
    }
    Ok(Json(RotatedSecret { id: endpoint.id, secret }))
}

/// A test send accepted: the event will be delivered like any other.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TestSent {
    pub event_id: Uuid,
    /// The delivery to look for in the endpoint's log: the event's id.
    pub delivery_id: Uuid,
}

/// Send a test event to an endpoint
///
/// Emits `webhook.test` for this endpoint only (through the outbox); it is
/// delivered (and logged) like any event, whatever the endpoint subscribes
/// to. 202 with the event id, which is the delivery id. A disabled endpoint
/// is sent nothing (the answer is still 202, and no delivery is logged).
#[utoipa::path(post, path = "/v1/webhooks/{id}/test", tag = "webhooks", security(("bearer" = ["admin"]), ("api_key" = ["webhooks:manage"])),
    responses((status = 202, description = "The test event is on its way; look for its delivery in the endpoint's log", body = TestSent)))]
async fn send_test(
    State(state): State<AppState>,
    principal: Principal,
    PathIds(id): PathIds<EndpointId>,
) -> AppResult<(StatusCode, Json<TestSent>)> {
    let scope = require(&principal)?;
    let endpoint = load(&state, &scope, id).await?;
    let event = state.store.send_test_event(&scope, endpoint.id).await?;
    Ok((StatusCode::ACCEPTED, Json(TestSent { event_id: event.id, delivery_id: event.id })))
}

/// `GET /v1/webhooks/{id}/deliveries` filters.
#[derive(Debug, eserde::Deserialize)]
#[serde(deny_unknown_fields)]
struct DeliveryFilters {
    #[serde(default)]
    #[eserde(compat)]
    status: Option<DeliveryStatus>,
}

/// List an endpoint's deliveries
///
/// Every attempt included; `?status=`, `?limit=`, `?cursor=`.
#[utoipa::path(get, path = "/v1/webhooks/{id}/deliveries", tag = "webhooks", security(("bearer" = ["admin"]), ("api_key" = ["webhooks:manage"])),
    params(("status" = Option<DeliveryStatus>, Query, description = "Only deliveries in this status")),
    responses((status = 200, description = "A page of deliveries", body = Page<DeliveryView>)))]
async fn list_deliveries(
    State(state): State<AppState>,
    principal: Principal,
    PathIds(id): PathIds<EndpointId>,
    query: Result<ListQuery<DeliveryFilters>, AppError>,
) -> AppResult<Page<DeliveryView>> {
    let scope = require(&principal)?;
    let ListQuery { page, filters } = query?;
    let status = filters.status.map(DeliveryStatus::as_str);
    let endpoint = load(&state, &scope, id).await?;
    let (deliveries, next_cursor) = state.store.list_deliveries(&scope, endpoint.id, status, &page).await?;
    Ok(Page { data: deliveries.iter().map(Delivery::view).collect(), next_cursor })
}

/// A replay accepted: the delivery is `pending` again.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReplayQueued {
    pub delivery_id: Uuid,
    /// The `webhook-id` the replay is sent with: the original's.
    pub webhook_id: String,
    pub status: DeliveryStatus,
}

/// Replay a failed delivery
///
/// Sends a failed delivery again (same `webhook-id`, a fresh round of the
/// retry schedule): the delivery goes back to `pending` with
/// `webhook.delivery.replay_requested` in the same transaction. 202; 409 if
/// the delivery is not `failed` or the endpoint is disabled.
#[utoipa::path(post, path = "/v1/webhooks/{id}/deliveries/{delivery_id}/replay", tag = "webhooks", security(("bearer" = ["admin"]), ("api_key" = ["webhooks:manage"])),
    responses(
        (status = 202, description = "The delivery is `pending` again", body = ReplayQueued),
        (status = 409, description = "Conflict\n\n- `conflict`: the delivery is not `failed` (only failed deliveries are replayed), or the endpoint is disabled (enable it first)\n- `idempotency_key_in_use`: a request with this `Idempotency-Key` is still running: retry shortly", body = shared::web::openapi::ApiError),
    ))]
async fn replay_delivery(
    State(state): State<AppState>,
    principal: Principal,
    PathIds((id, DeliveryId(delivery_id))): PathIds<(EndpointId, DeliveryId)>,
) -> AppResult<(StatusCode, Json<ReplayQueued>)> {
    let scope = require(&principal)?;
    let endpoint = load(&state, &scope, id).await?;
    let delivery = state
        .store
        .get_delivery(&scope, endpoint.id, delivery_id)
        .await?
        .ok_or_else(|| AppError::not_found("webhook_delivery"))?;
    if endpoint.status != EndpointStatus::Active.as_str() {
        return Err(AppError::conflict("the endpoint is disabled; enable it first"));
    }
    if !state.store.requeue_delivery(&scope, &delivery).await? {
        return Err(AppError::conflict(format!(
            "only failed deliveries are replayed; this one is {}",
            delivery.status
        )));
    }
    let queued =
        ReplayQueued { delivery_id: delivery.id, webhook_id: delivery.message_id(), status: DeliveryStatus::Pending };
    Ok((StatusCode::ACCEPTED, Json(queued)))
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};
    use shared::web::extract::parse_body;

    use super::*;

    fn problems(body: Value, creating: bool, local: bool) -> Vec<String> {
        let bytes = body.to_string();
        let result = if creating {
            parse_body::<NewEndpoint>(bytes.as_bytes()).map(EndpointUpdate::from)
        } else {
            parse_body::<EndpointUpdate>(bytes.as_bytes())
        };
        match result.and_then(|u| u.into_fields(local)) {
            Ok(_) => Vec::new(),
            Err(err @ AppError::Api { .. }) => err.invalid_fields(),
            Err(AppError::Internal(e)) => panic!("{e}"),
        }
    }

    /// The operation's request example, from this group's document.
    fn example(path: &str, method: &str) -> Value {
        use utoipa::OpenApi;
        let doc = serde_json::to_value(ApiDoc::openapi()).expect("document");
        doc["paths"][path][method]["requestBody"]["content"]["application/json"]["example"].clone()
    }

    #[test]
    fn the_documented_examples_are_accepted_and_the_schemas_state_the_bounds() {
        let create = example("/v1/webhooks", "post");
        assert!(create.is_object());
        assert!(problems(create, true, false).is_empty());
        let update = example("/v1/webhooks/{id}", "patch");
        assert!(update.is_object());
        assert!(problems(update, false, false).is_empty());
        let schema = |s| serde_json::to_value(s).expect("schema");
        let new = schema(<NewEndpoint as utoipa::PartialSchema>::schema());
        let update = schema(<EndpointUpdate as utoipa::PartialSchema>::schema());
        for types in [&new["properties"]["event_types"], &update["properties"]["event_types"]] {
            assert_eq!((&types["minItems"], &types["maxItems"]), (&json!(1), &json!(MAX_EVENT_TYPES)), "{types}");
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
        // Named by path.
        assert_eq!(
            problems(json!({"url": "ftp://files.example.com", "event_types": ["Bad Type"]}), true, false),
            ["event_types[0]", "url"]
        );
        assert_eq!(problems(json!({"url": "https://h.example.com", "event_types": []}), true, false), ["event_types"]);
        assert_eq!(
            problems(json!({"url": "https://h.example.com", "retry_schedule_seconds": [5, 0]}), true, false),
            ["retry_schedule_seconds"]
        );
        assert_eq!(
            problems(json!({"url": "https://h.example.com", "retry_schedule_seconds": [86_400, 1]}), true, false),
            ["retry_schedule_seconds"]
        );
        assert_eq!(problems(json!({"status": "paused"}), false, false), ["status"]);
        let mut nulls = problems(json!({"status": null, "url": null, "event_types": null}), false, false);
        nulls.sort();
        assert_eq!(nulls, ["event_types", "status", "url"]);
        assert!(problems(json!({"description": null, "status": "Disabled"}), false, false).is_empty());
        // `status` is not a create field; it is named beside the missing url.
        assert_eq!(problems(json!({"status": "active"}), true, false), ["status", "url"]);
    }
}
