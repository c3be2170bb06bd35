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
        ids::{CustomerId, PhotoId, TryonId},
        now_rfc3339,
        tryon::{self, ItemStatus, MAX_ITEMS, MIN_ITEMS, Quality, SessionStatus, TryonItemView, TryonSessionView},
        values::{HttpUrl, Text},
    },
    error::FieldError,
    http::Page,
    store::{
        customers::Photo,
        tryons::{TRYON_RESOURCE, TryonItem, TryonSession},
    },
    web::extract::{Body, ListQuery, PathIds},
};
use uuid::Uuid;

/// This group's part of the OpenAPI document (`shared::web::openapi`).
#[derive(utoipa::OpenApi)]
#[openapi()]
pub struct ApiDoc;

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

/// One cart item as asked for: the product, and its garment as an image
/// URL or one of the customer's garment photos (exactly one of the two;
/// checked by [`NewTryon::check`]).
#[derive(Debug, Clone, PartialEq, eserde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CartItem {
    #[eserde(compat)]
    pub product_id: Text<1, MAX_PRODUCT_ID_CHARS>,
    #[serde(default)]
    #[eserde(compat)]
    pub size: Option<Text<1, 32>>,
    #[serde(default)]
    #[eserde(compat)]
    pub garment_image_url: Option<HttpUrl>,
    #[serde(default)]
    #[eserde(compat)]
    pub garment_photo_id: Option<PhotoId>,
}

/// Body `{customer_id, photo_id, quality: sd|hd|4k, items: [{product_id,
/// garment_image_url | garment_photo_id, size?}]}`; every problem is named,
/// items by index (`items[3].garment_image_url`).
#[derive(Debug, Clone, PartialEq, eserde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTryon {
    #[eserde(compat)]
    pub customer_id: CustomerId,
    #[eserde(compat)]
    pub photo_id: PhotoId,
    #[eserde(compat)]
    pub quality: Quality,
    pub items: Vec<CartItem>,
}

impl NewTryon {
    /// The rules across fields that parsing cannot state: 1 to 20 items,
    /// each with one garment, its URL https outside local mode.
    pub fn check(&self, https_only: bool) -> AppResult<()> {
        let mut errors = Vec::new();
        if !(MIN_ITEMS..=MAX_ITEMS).contains(&self.items.len()) {
            errors.push(FieldError::new("items", format!("must hold {MIN_ITEMS} to {MAX_ITEMS} cart items")));
        }
        for (i, item) in self.items.iter().enumerate() {
            let field = |name: &str| format!("items[{i}].{name}");
            match (&item.garment_image_url, item.garment_photo_id) {
                (None, None) => errors
                    .push(FieldError::new(field("garment_image_url"), "give garment_image_url or garment_photo_id")),
                (Some(_), Some(_)) => errors.push(FieldError::new(
                    field("garment_photo_id"),
                    "give garment_image_url or garment_photo_id, not both",
                )),
                (Some(url), None) if https_only && !url.as_str().starts_with("https://") => {
                    errors.push(FieldError::new(field("garment_image_url"), "must be an https URL"))
                }
                _ => {}
            }
        }
        if errors.is_empty() { Ok(()) } else { Err(AppError::validation(errors)) }
    }
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
            product_id: item.product_id.as_str().to_owned(),
            size: item.size.as_ref().map(|s| s.as_str().to_owned()),
            garment_image_url: item.garment_image_url.as_ref().map(|u| u.as_str().to_owned()),
            garment_photo_id: item.garment_photo_id.map(|p| p.0),
            credits: *share,
            status: ItemStatus::Queued,
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
        customer_id: request.customer_id.0,
        photo_id: request.photo_id.0,
        quality: request.quality,
        price,
        status: SessionStatus::Queued,
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

/// A session with its items, as every try-on route shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TryonWithItems {
    #[serde(flatten)]
    pub session: TryonSessionView,
    pub items: Vec<ItemWithResult>,
}

/// A cart item; a completed one carries where to download its image.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ItemWithResult {
    #[serde(flatten)]
    pub item: TryonItemView,
    /// A presigned GET of the rendered PNG, valid for 15 minutes; only on
    /// `completed` items (the key is absent otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result_url: Option<String>,
}

/// A new session and the credit spend that paid for it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedTryon {
    #[serde(flatten)]
    pub tryon: TryonWithItems,
    pub charge: TryonCharge,
}

/// The ledger entry of a session's price.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TryonCharge {
    pub entry_id: Uuid,
    /// The tenant's balance once the price was taken.
    pub balance_after: i64,
}

/// A session after a cancel, with what this call cancelled.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CancelledTryon {
    #[serde(flatten)]
    pub tryon: TryonWithItems,
    /// Indexes of the items this call cancelled (empty when none was still
    /// queued).
    pub cancelled_items: Vec<u32>,
    /// Credits this call gave back: the cancelled items' shares.
    pub refunded_credits: i64,
}

/// 201 with the session: pricing breakdown (base, multiplier, discount,
/// total), status `queued` and its items. 402 `insufficient_credits` (balance
/// and cost in details) creates nothing. One `tryon.item.requested` per item
/// is emitted in the creating transaction.
async fn create_tryon(
    State(state): State<AppState>,
    principal: Principal,
    audit: AuditContext,
    body: Result<Body<NewTryon>, AppError>,
) -> AppResult<(StatusCode, Json<CreatedTryon>)> {
    let scope = principal.require(Role::Developer, Scope::TryonsWrite, TRYON_RESOURCE)?;
    let Body(request) = body?;
    request.check(!state.config.local_mode)?;
    let customer_id = request.customer_id.0;
    if state.store.get_customer(&scope, customer_id).await?.is_none() {
        return Err(AppError::not_found("customer"));
    }
    usable_photo(&state, &scope, customer_id, request.photo_id.0, "person", "photo_id").await?;
    // A cart often reuses one garment photo: read each once.
    let mut checked = Vec::new();
    for (i, item) in request.items.iter().enumerate() {
        if let Some(PhotoId(garment)) = item.garment_photo_id.filter(|g| !checked.contains(&g.0)) {
            let field = format!("items[{i}].garment_photo_id");
            usable_photo(&state, &scope, customer_id, garment, "garment", &field).await?;
            checked.push(garment);
        }
    }
    let (mut session, items) = plan(scope.tenant_id(), &request);
    let charge = state.store.create_tryon(&scope, &session, &items, &audit).await?;
    session.charge_entry_id = Some(charge.id);
    let tryon = with_items(&state, &session, &items).await?;
    let charge = TryonCharge { entry_id: charge.id, balance_after: charge.balance_after };
    Ok((StatusCode::CREATED, Json(CreatedTryon { tryon, charge })))
}

/// The session with its items; a completed item carries a download URL.
async fn with_items(state: &AppState, session: &TryonSession, items: &[TryonItem]) -> AppResult<TryonWithItems> {
    let mut shown = Vec::with_capacity(items.len());
    for item in items {
        let result_url = match &item.result_key {
            Some(key) if item.status == ItemStatus::Completed => {
                Some(state.blobs.presign_download(key, RESULT_URL_TTL).await?)
            }
            _ => None,
        };
        shown.push(ItemWithResult { item: item.view(), result_url });
    }
    Ok(TryonWithItems { session: session.view(), items: shown })
}

async fn get_tryon(
    State(state): State<AppState>,
    principal: Principal,
    PathIds(TryonId(id)): PathIds<TryonId>,
) -> AppResult<Json<TryonWithItems>> {
    let scope = principal.require(Role::User, Scope::TryonsRead, TRYON_RESOURCE)?;
    let (session, items) =
        state.store.get_tryon(&scope, id).await?.ok_or_else(|| AppError::not_found(TRYON_RESOURCE))?;
    Ok(Json(with_items(&state, &session, &items).await?))
}

/// `GET /v1/tryons` filters: all optional, unknown ones refused.
#[derive(Debug, eserde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TryonFilters {
    #[serde(default)]
    #[eserde(compat)]
    status: Option<SessionStatus>,
    #[serde(default)]
    #[eserde(compat)]
    customer_id: Option<CustomerId>,
}

/// Creation order; `?status=`, `?customer_id=`, `?limit=`, `?cursor=`.
async fn list_tryons(
    State(state): State<AppState>,
    principal: Principal,
    query: Result<ListQuery<TryonFilters>, AppError>,
) -> AppResult<Page<TryonSessionView>> {
    let scope = principal.require(Role::User, Scope::TryonsRead, TRYON_RESOURCE)?;
    let ListQuery { page, filters } = query?;
    let status = filters.status.map(SessionStatus::as_str);
    let customer_id = filters.customer_id.map(|c| c.0);
    let (sessions, next_cursor) = state.store.list_tryons(&scope, status, customer_id, &page).await?;
    Ok(Page { data: sessions.iter().map(TryonSession::view).collect(), next_cursor })
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
    PathIds(TryonId(id)): PathIds<TryonId>,
) -> AppResult<Json<CancelledTryon>> {
    let scope = principal.require(Role::Developer, Scope::TryonsWrite, TRYON_RESOURCE)?;
    let (_, items) = state.store.get_tryon(&scope, id).await?.ok_or_else(|| AppError::not_found(TRYON_RESOURCE))?;
    let mut cancelled = Vec::new();
    let mut refunded = 0;
    for item in items.iter().filter(|i| i.status == ItemStatus::Queued) {
        if state.store.cancel_tryon_item(&scope, item, &audit).await? {
            cancelled.push(item.index);
            refunded += item.credits;
        }
    }
    // Cancelling the last open items finishes the session (and emits its event).
    state.store.finish_tryon_if_done(&scope, id).await?;
    let (session, items) =
        state.store.get_tryon(&scope, id).await?.ok_or_else(|| AppError::not_found(TRYON_RESOURCE))?;
    let tryon = with_items(&state, &session, &items).await?;
    Ok(Json(CancelledTryon { tryon, cancelled_items: cancelled, refunded_credits: refunded }))
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};
    use shared::web::extract::parse_body;

    use super::*;

    fn problems(body: Value, https_only: bool) -> Vec<String> {
        let result = parse_body::<NewTryon>(body.to_string().as_bytes()).and_then(|r| r.check(https_only));
        match result {
            Ok(()) => Vec::new(),
            Err(err @ AppError::Api { .. }) => err.invalid_fields(),
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
        let request = parse_body::<NewTryon>(valid().to_string().as_bytes()).expect("valid");
        request.check(true).expect("valid");
        assert_eq!(request.quality, Quality::Hd);
        assert_eq!(request.items[0].size.as_ref().map(|s| s.as_str()), Some("M"));
    }

    #[test]
    fn every_bad_field_is_named_by_its_path() {
        // What does not parse is named first, all at once.
        let mut body = valid();
        body["quality"] = json!("8k");
        body["items"] = json!([
            {"product_id": "a", "garment_image_url": "ftp://x"},
            {"product_id": "", "garment_photo_id": Uuid::now_v7()},
            "nope",
        ]);
        let mut found = problems(body, true);
        found.sort();
        assert_eq!(found, ["items[0].garment_image_url", "items[1].product_id", "items[2]", "quality"]);
        // Then the rules across fields.
        let mut body = valid();
        body["items"] = json!([
            {"product_id": "a"},
            {"product_id": "b", "garment_image_url": "http://cdn.example.com/x.png"},
            {"product_id": "c", "garment_image_url": "https://x.example/a.png", "garment_photo_id": Uuid::now_v7()},
        ]);
        assert_eq!(
            problems(body, true),
            ["items[0].garment_image_url", "items[1].garment_image_url", "items[2].garment_photo_id"]
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
