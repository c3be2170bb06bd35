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
#[openapi(
    paths(create_tryon, list_tryons, get_tryon, cancel_tryon),
    tags((name = "tryons", description = "Cart try-ons (seed 004): 1 to 20 garments rendered on a customer's photo, paid in credits when the session is created and refunded for each item that fails or is cancelled"))
)]
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
/// A cart item's product id (a type of its own: the schema derive takes a
/// constant in `Text<1, MAX_PRODUCT_ID_CHARS>` for a type).
type ProductId = Text<1, MAX_PRODUCT_ID_CHARS>;

/// One cart item: the product, and its garment as an image URL or as one
/// of the customer's garment photos: exactly one of `garment_image_url` and
/// `garment_photo_id` (checked by `NewTryon::check`).
#[derive(Debug, Clone, PartialEq, eserde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CartItem {
    /// The retailer's product id.
    #[eserde(compat)]
    pub product_id: ProductId,
    /// The size in the cart (`M`, `42`...), as the retailer names it.
    #[serde(default)]
    #[eserde(compat)]
    pub size: Option<Text<1, 32>>,
    /// The garment's image; `https` (a local development server takes
    /// `http` too). Not with `garment_photo_id`.
    #[serde(default)]
    #[eserde(compat)]
    pub garment_image_url: Option<HttpUrl>,
    /// One of the customer's `garment` photos, uploaded and confirmed. Not
    /// with `garment_image_url`.
    #[serde(default)]
    #[eserde(compat)]
    pub garment_photo_id: Option<PhotoId>,
}

/// A try-on's body: `{customer_id, photo_id, quality: sd|hd|4k, items:
/// [{product_id, garment_image_url | garment_photo_id, size?}]}`; every
/// problem is named, items by index (`items[3].garment_image_url`).
#[derive(Debug, Clone, PartialEq, eserde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTryon {
    /// The customer (`POST /v1/customers`).
    #[eserde(compat)]
    pub customer_id: CustomerId,
    /// The customer's `person` photo the garments are rendered on, uploaded
    /// and confirmed.
    #[eserde(compat)]
    pub photo_id: PhotoId,
    /// The render's size and price multiplier: `sd` 512 px x1, `hd` 1024 px
    /// x2, `4k` 2048 px x4.
    #[eserde(compat)]
    pub quality: Quality,
    /// The cart: each item is rendered, charged and refunded on its own.
    #[schema(min_items = 1, max_items = 20)]
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

/// Start a cart try-on
///
/// Takes the cart's price from the tenant's credits and queues one render
/// per item, in one transaction. 201 with the session: its pricing (base,
/// multiplier, volume discount, total), status `queued`, its items and the
/// ledger entry of the charge. A short balance is 402
/// `insufficient_credits` and creates nothing. Follow the session with
/// `GET /v1/tryons/{id}` or the `tryon.session.*` webhooks.
#[utoipa::path(post, path = "/v1/tryons", tag = "tryons", security(("bearer" = ["developer"]), ("api_key" = ["tryons:write"])),
    request_body(content = NewTryon, example = json!({
        "customer_id": "0190f3a4-6b1e-7c2d-8e9f-0a1b2c3d4e5f",
        "photo_id": "0190f3a4-7a2b-7c3d-9e4f-1a2b3c4d5e6f",
        "quality": "hd",
        "items": [
            {"product_id": "sku-1001", "size": "M", "garment_image_url": "https://cdn.example.com/garments/sku-1001.png"},
            {"product_id": "sku-2002", "garment_photo_id": "0190f3a4-8c3d-7e4f-a05b-2c3d4e5f6a7b"}
        ]
    })),
    responses(
        (status = 201, description = "The session, `queued`, with its items and the charge", body = CreatedTryon),
        (status = 402, description = "Payment required\n\n- `insufficient_credits`: the balance is below the cart's price; nothing was created (`details.balance`, `details.cost`)", body = shared::web::openapi::ApiError),
        (status = 404, description = "Not found\n\n- `not_found`: no customer `customer_id` in the caller's tenant", body = shared::web::openapi::ApiError),
        (status = 409, description = "Conflict\n\n- `conflict`: the credit balance is being changed by many requests at once; nothing was charged: try again\n- `idempotency_key_in_use`: a request with this `Idempotency-Key` is still running: retry shortly", body = shared::web::openapi::ApiError),
    ))]
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

/// Read a try-on session
///
/// The session with its items; a `completed` item carries `result_url`, a
/// download of its image valid for 15 minutes.
#[utoipa::path(get, path = "/v1/tryons/{id}", tag = "tryons", security(("bearer" = ["user"]), ("api_key" = ["tryons:read"])),
    responses((status = 200, description = "The session and its items", body = TryonWithItems)))]
async fn get_tryon(
    State(state): State<AppState>,
    principal: Principal,
    PathIds(TryonId(id)): PathIds<TryonId>,
) -> AppResult<Json<TryonWithItems>> {
    let scope = principal.require(Role::User, Scope::TryonsRead, TRYON_RESOURCE)?;
    // Read with credentials that can only read this tenant's partitions.
    let store = state.tenant_store(&scope).await?;
    let (session, items) = store.get_tryon(&scope, id).await?.ok_or_else(|| AppError::not_found(TRYON_RESOURCE))?;
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

/// List try-on sessions
///
/// In creation order, without their items (read a session for those);
/// `?status=`, `?customer_id=`, `?limit=`, `?cursor=`.
#[utoipa::path(get, path = "/v1/tryons", tag = "tryons", security(("bearer" = ["user"]), ("api_key" = ["tryons:read"])),
    params(
        ("status" = Option<SessionStatus>, Query, description = "Only sessions in this status"),
        ("customer_id" = Option<Uuid>, Query, description = "Only this customer's sessions"),
    ),
    responses((status = 200, description = "A page of sessions", body = Page<TryonSessionView>)))]
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

/// Cancel a try-on session
///
/// Cancels every item the worker has not taken yet and refunds each one's
/// share, once: items already processing or ended are left alone, a second
/// cancel (or one on a finished session) finds nothing left to cancel and
/// answers 200 with `cancelled_items: []`, and a race with the worker is
/// settled per item by a conditional write. 200 with the session and the
/// `cancelled_items` / `refunded_credits` of this call.
#[utoipa::path(post, path = "/v1/tryons/{id}/cancel", tag = "tryons", security(("bearer" = ["developer"]), ("api_key" = ["tryons:write"])),
    responses(
        (status = 200, description = "The session, with what this call cancelled and refunded", body = CancelledTryon),
        (status = 409, description = "Conflict\n\n- `conflict`: the session is being changed by other requests (the worker ending items); items cancelled before stay cancelled and refunded: cancel again\n- `idempotency_key_in_use`: a request with this `Idempotency-Key` is still running: retry shortly", body = shared::web::openapi::ApiError),
    ))]
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

    /// The operation's request example, from this group's document.
    fn example(path: &str, method: &str) -> Value {
        use utoipa::OpenApi;
        let doc = serde_json::to_value(ApiDoc::openapi()).expect("document");
        doc["paths"][path][method]["requestBody"]["content"]["application/json"]["example"].clone()
    }

    #[test]
    fn the_documented_example_is_accepted_and_the_schema_states_the_cart_bounds() {
        let body = example("/v1/tryons", "post");
        assert!(body.is_object());
        assert!(problems(body, true).is_empty());
        let schema = serde_json::to_value(<NewTryon as utoipa::PartialSchema>::schema()).expect("schema");
        assert_eq!(schema["properties"]["items"]["minItems"], json!(MIN_ITEMS));
        assert_eq!(schema["properties"]["items"]["maxItems"], json!(MAX_ITEMS));
        assert_eq!(schema["additionalProperties"], json!(false));
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
