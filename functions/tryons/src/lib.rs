//! The tryons route group (seed 004): cart try-ons. A retailer sends a
//! customer, one of their photos and 1 to 20 cart items; the price
//! (`shared::domain::tryon::price`) is taken from the tenant's credits in the
//! same transaction that creates the session, and each item goes to the
//! tryon-worker as its own event, written in that transaction too (outbox ->
//! bus -> rule -> queue).
//!
//! | route | handler | who |
//! |---|---|---|
//! | `POST /v1/tryons` | [`create_tryon`] | developer, or key `tryons:write` |
//! | `GET /v1/tryons` | [`list_tryons`] | any member, or key `tryons:read` |
//! | `GET /v1/tryons/{id}` | [`get_tryon`] | any member, or key `tryons:read` |
//! | `POST /v1/tryons/{id}/cancel` | [`cancel_tryon`] | developer, or key `tryons:write` |

use std::time::Duration;

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
    domain::{
        now_rfc3339,
        tryon::{self, ITEM_COMPLETED, ITEM_QUEUED, MAX_ITEMS, MIN_ITEMS, Quality},
    },
    http::{JsonObject, Page, QueryParams, path_uuid},
    store::{
        customers::Photo,
        tryons::{TRYON_RESOURCE, TryonItem, TryonSession},
    },
    validate::{Fields, Need},
};
use uuid::Uuid;

/// This group's routes; its Lambda and the local server add the shared layers.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/tryons", get(list_tryons).post(create_tryon))
        .route("/v1/tryons/{id}", get(get_tryon))
        .route("/v1/tryons/{id}/cancel", post(cancel_tryon))
}

/// How long a result download URL works.
pub const RESULT_URL_TTL: Duration = Duration::from_secs(15 * 60);
pub const MAX_PRODUCT_ID_CHARS: usize = 128;
pub const MAX_URL_CHARS: usize = 2048;

/// One cart item as asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct CartItem {
    pub product_id: String,
    pub size: Option<String>,
    pub garment_image_url: Option<String>,
    pub garment_photo_id: Option<Uuid>,
}

/// A validated create body.
#[derive(Debug, Clone, PartialEq)]
pub struct NewTryon {
    pub customer_id: Uuid,
    pub photo_id: Uuid,
    pub quality: Quality,
    pub items: Vec<CartItem>,
}

/// Body `{customer_id, photo_id, quality: sd|hd|4k, items: [{product_id,
/// garment_image_url | garment_photo_id, size?}]}`; every problem is named,
/// items by index (`items[3].garment_image_url`).
pub fn new_tryon_from(body: &Map<String, Value>, https_only: bool) -> AppResult<NewTryon> {
    let mut f = Fields::new(body);
    f.reject_unknown(&["customer_id", "photo_id", "quality", "items"]);
    // Filled field by field; `finish` lets it out only when every required
    // field was read (Fields names each one that is missing or invalid).
    let mut request =
        NewTryon { customer_id: Uuid::nil(), photo_id: Uuid::nil(), quality: Quality::Sd, items: Vec::new() };
    if let Some(id) = f.uuid("customer_id", Need::Required) {
        request.customer_id = id;
    }
    if let Some(id) = f.uuid("photo_id", Need::Required) {
        request.photo_id = id;
    }
    if let Some(quality) = f.one_of("quality", Need::Required, Quality::NAMES).and_then(Quality::parse) {
        request.quality = quality;
    }
    if let Some(list) = f.array("items", Need::Required, MAX_ITEMS) {
        if list.len() < MIN_ITEMS {
            f.error("items", format!("must hold {MIN_ITEMS} to {MAX_ITEMS} cart items"));
        }
        for (i, value) in list.iter().enumerate() {
            let name = format!("items[{i}]");
            let Some(object) = value.as_object() else {
                f.error(&name, "must be an object");
                continue;
            };
            let mut g = Fields::nested(&name, object);
            g.reject_unknown(&["product_id", "size", "garment_image_url", "garment_photo_id"]);
            let product_id = g.text("product_id", Need::Required, 1, MAX_PRODUCT_ID_CHARS);
            let size = g.text("size", Need::Optional, 1, 32);
            let url = g.url("garment_image_url", Need::Optional);
            let garment_photo_id = g.uuid("garment_photo_id", Need::Optional);
            if let Some(url) = &url {
                if url.len() > MAX_URL_CHARS {
                    g.error("garment_image_url", format!("must be at most {MAX_URL_CHARS} characters"));
                } else if https_only && !url.starts_with("https://") {
                    g.error("garment_image_url", "must be an https URL");
                }
            }
            match (
                url.is_some() || g.contains("garment_image_url"),
                garment_photo_id.is_some() || g.contains("garment_photo_id"),
            ) {
                (false, false) => g.error("garment_image_url", "give garment_image_url or garment_photo_id"),
                (true, true) => g.error("garment_photo_id", "give garment_image_url or garment_photo_id, not both"),
                _ => {}
            }
            let ok = !g.has_errors();
            f.absorb(g);
            if let (true, Some(product_id)) = (ok, product_id) {
                request.items.push(CartItem { product_id, size, garment_image_url: url, garment_photo_id });
            }
        }
    }
    f.finish()?;
    Ok(request)
}

/// The session and items a validated request becomes (status `queued`,
/// each item carrying its share of the price).
pub fn plan(tenant_id: Uuid, request: &NewTryon) -> (TryonSession, Vec<TryonItem>) {
    let price = tryon::price(request.items.len(), request.quality);
    let now = now_rfc3339();
    let session_id = Uuid::now_v7();
    let items: Vec<TryonItem> = request
        .items
        .iter()
        .zip(&price.shares)
        .enumerate()
        .map(|(index, (item, share))| TryonItem {
            session_id,
            index: index as u32,
            product_id: item.product_id.clone(),
            size: item.size.clone(),
            garment_image_url: item.garment_image_url.clone(),
            garment_photo_id: item.garment_photo_id,
            credits: *share,
            status: ITEM_QUEUED.into(),
            result_key: None,
            error: None,
            lock: None,
            lease_until: None,
            started_at: None,
            completed_at: None,
        })
        .collect();
    let session = TryonSession {
        id: session_id,
        tenant_id,
        customer_id: request.customer_id,
        photo_id: request.photo_id,
        quality: request.quality,
        price,
        status: "queued".into(),
        items_total: items.len() as i64,
        completed_count: 0,
        failed_count: 0,
        cancelled_count: 0,
        refunded_credits: 0,
        charge_entry_id: None,
        created_at: now.clone(),
        updated_at: now,
        completed_at: None,
    };
    (session, items)
}

/// A photo usable in a try-on: the customer's, confirmed, of the right kind.
async fn usable_photo(
    state: &AppState,
    scope: &TenantScope,
    customer_id: Uuid,
    id: Uuid,
    kind: &str,
    field: &str,
) -> AppResult<Photo> {
    let photo = state.store.get_photo(scope, customer_id, id).await?;
    match photo {
        None => Err(AppError::invalid_field(field, "is not a photo of this customer")),
        Some(p) if p.status != "ready" => Err(AppError::invalid_field(field, "has not been uploaded and confirmed")),
        Some(p) if p.kind != kind => Err(AppError::invalid_field(field, format!("must be a {kind} photo"))),
        Some(p) => Ok(p),
    }
}

/// 201 with the session: pricing breakdown (base, multiplier, discount,
/// total), status `queued` and its items. 402 `insufficient_credits` (balance
/// and cost in details) creates nothing. One `tryon.item.requested` per item
/// is emitted in the creating transaction.
async fn create_tryon(
    State(state): State<AppState>,
    principal: Principal,
    audit: AuditContext,
    JsonObject(body): JsonObject,
) -> AppResult<Response> {
    let scope = principal.require(Role::Developer, Scope::TryonsWrite, TRYON_RESOURCE)?;
    let request = new_tryon_from(&body, !state.config.local_mode)?;
    if state.store.get_customer(&scope, request.customer_id).await?.is_none() {
        return Err(AppError::not_found("customer"));
    }
    usable_photo(&state, &scope, request.customer_id, request.photo_id, "person", "photo_id").await?;
    // A cart often reuses one garment photo: read each once.
    let mut checked = Vec::new();
    for (i, item) in request.items.iter().enumerate() {
        if let Some(garment) = item.garment_photo_id.filter(|g| !checked.contains(g)) {
            let field = format!("items[{i}].garment_photo_id");
            usable_photo(&state, &scope, request.customer_id, garment, "garment", &field).await?;
            checked.push(garment);
        }
    }
    let (mut session, items) = plan(scope.tenant_id(), &request);
    let charge = state.store.create_tryon(&scope, &session, &items, &audit).await?;
    session.charge_entry_id = Some(charge.id);
    let mut body = session_body(&state, &session, &items).await?;
    body["charge"] = json!({"entry_id": charge.id, "balance_after": charge.balance_after});
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// The session with its items; a completed item carries a download URL.
async fn session_body(state: &AppState, session: &TryonSession, items: &[TryonItem]) -> AppResult<Value> {
    let mut body = session.to_body();
    let mut shown = Vec::with_capacity(items.len());
    for item in items {
        let mut value = item.to_body();
        if item.status == ITEM_COMPLETED
            && let Some(key) = &item.result_key
        {
            value["result_url"] = json!(state.blobs.presign_download(key, RESULT_URL_TTL).await?);
        }
        shown.push(value);
    }
    body["items"] = Value::Array(shown);
    Ok(body)
}

async fn get_tryon(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> AppResult<Json<Value>> {
    let scope = principal.require(Role::User, Scope::TryonsRead, TRYON_RESOURCE)?;
    let (session, items) = state
        .store
        .get_tryon(&scope, path_uuid(&id, "tryon_id")?)
        .await?
        .ok_or_else(|| AppError::not_found(TRYON_RESOURCE))?;
    Ok(Json(session_body(&state, &session, &items).await?))
}

/// Creation order; `?status=`, `?customer_id=`, `?limit=`, `?cursor=`.
async fn list_tryons(
    State(state): State<AppState>,
    principal: Principal,
    params: QueryParams,
) -> AppResult<Page<Value>> {
    let scope = principal.require(Role::User, Scope::TryonsRead, TRYON_RESOURCE)?;
    params.allow_only(&["limit", "cursor", "status", "customer_id"])?;
    let page = params.page()?;
    let filters = params.as_object();
    let mut f = Fields::new(&filters);
    let status = f.one_of("status", Need::Optional, &["queued", "processing", "completed", "failed", "cancelled"]);
    let customer_id = f.uuid("customer_id", Need::Optional);
    f.finish()?;
    let (sessions, next_cursor) = state.store.list_tryons(&scope, status, customer_id, &page).await?;
    Ok(Page { data: sessions.iter().map(TryonSession::to_body).collect(), next_cursor })
}

/// Cancels every item not yet taken by the worker and refunds each one's
/// share, once: items already processing or done are left alone, a second
/// cancel finds nothing left to cancel, and a race with the worker is
/// settled per item by a conditional write. 200 with the session and
/// `cancelled_items` / `refunded_credits` of this call.
async fn cancel_tryon(
    State(state): State<AppState>,
    principal: Principal,
    audit: AuditContext,
    Path(id): Path<String>,
) -> AppResult<Json<Value>> {
    let scope = principal.require(Role::Developer, Scope::TryonsWrite, TRYON_RESOURCE)?;
    let id = path_uuid(&id, "tryon_id")?;
    let (_, items) = state.store.get_tryon(&scope, id).await?.ok_or_else(|| AppError::not_found(TRYON_RESOURCE))?;
    let mut cancelled = Vec::new();
    let mut refunded = 0;
    for item in items.iter().filter(|i| i.status == ITEM_QUEUED) {
        if state.store.cancel_tryon_item(&scope, item, &audit).await? {
            cancelled.push(item.index);
            refunded += item.credits;
        }
    }
    // Cancelling the last open items finishes the session (and emits its event).
    state.store.finish_tryon_if_done(&scope, id).await?;
    let (session, items) =
        state.store.get_tryon(&scope, id).await?.ok_or_else(|| AppError::not_found(TRYON_RESOURCE))?;
    let mut body = session_body(&state, &session, &items).await?;
    body["cancelled_items"] = json!(cancelled);
    body["refunded_credits"] = json!(refunded);
    Ok(Json(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(body: Value, https_only: bool) -> Vec<String> {
        match new_tryon_from(body.as_object().expect("object"), https_only) {
            Ok(_) => Vec::new(),
            Err(AppError::Api { details, .. }) => details["fields"]
                .as_array()
                .map(|fs| fs.iter().filter_map(|f| f["field"].as_str().map(str::to_owned)).collect())
                .unwrap_or_default(),
            Err(AppError::Internal(e)) => panic!("{e}"),
        }
    }

    fn valid() -> Value {
        json!({
            "customer_id": Uuid::now_v7(), "photo_id": Uuid::now_v7(), "quality": "hd",
            "items": [{"product_id": "sku-1", "garment_image_url": "https://cdn.example.com/a.png", "size": "M"}],
        })
    }

    #[test]
    fn a_valid_cart_is_read() {
        let request = new_tryon_from(valid().as_object().expect("object"), true).expect("valid");
        assert_eq!(request.quality, Quality::Hd);
        assert_eq!(request.items[0].size.as_deref(), Some("M"));
    }

    #[test]
    fn every_bad_field_is_named_by_its_path() {
        let mut body = valid();
        body["quality"] = json!("8k");
        body["items"] = json!([
            {"product_id": "a"},
            {"product_id": "b", "garment_image_url": "http://cdn.example.com/x.png"},
            {"product_id": "c", "garment_image_url": "https://x.example/a.png", "garment_photo_id": Uuid::now_v7()},
            "nope",
        ]);
        assert_eq!(
            problems(body, true),
            [
                "quality",
                "items[0].garment_image_url",
                "items[1].garment_image_url",
                "items[2].garment_photo_id",
                "items[3]"
            ]
        );
        let mut empty = valid();
        empty["items"] = json!([]);
        assert_eq!(problems(empty, true), ["items"]);
        let mut many = valid();
        many["items"] = json!(vec![json!({"product_id": "p", "garment_photo_id": Uuid::now_v7()}); 21]);
        assert_eq!(problems(many, true), ["items"]);
        let mut local = valid();
        local["items"][0]["garment_image_url"] = json!("http://127.0.0.1:9/a.png");
        assert!(problems(local, false).is_empty(), "local mode takes http URLs");
    }
}
