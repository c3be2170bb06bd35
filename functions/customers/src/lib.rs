//! The customers route group (seed 004): a retailer's shoppers, upserted by
//! the retailer's own `external_id`, and their photos (the shopper, or a
//! garment for a cart item), uploaded straight to S3 with a presigned URL and
//! checked before use.
//!
//! | route | handler | who |
//! |---|---|---|
//! | `POST /v1/customers` | [`upsert_customer`] | developer, or key `customers:write` |
//! | `GET /v1/customers` | [`list_customers`] | any member, or key `customers:read` |
//! | `GET /v1/customers/{id}` | [`get_customer`] | any member, or key `customers:read` |
//! | `DELETE /v1/customers/{id}` | [`delete_customer`] | developer, or key `customers:write` |
//! | `POST /v1/customers/{id}/photos` | [`create_photo`] | developer, or key `customers:write` |
//! | `POST /v1/customers/{id}/photos/{photo_id}/confirm` | [`confirm_photo`] | developer, or key `customers:write` |
//! | `GET /v1/customers/{id}/photos` | [`list_photos`] | any member, or key `customers:read` |

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
    blobs::{IMAGE_TYPES, sniff_image_type},
    domain::now_rfc3339,
    error::FieldError,
    http::{JsonObject, Page, QueryParams, path_uuid},
    store::customers::{
        CUSTOMER_RESOURCE, Customer, CustomerFields, MAX_PHOTOS_PER_CUSTOMER, PHOTO_RESOURCE, Photo, PhotoError,
        customer_blob_prefix,
    },
    validate::{Fields, Need},
};
use uuid::Uuid;

/// This group's routes; its Lambda and the local server add the shared layers.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/customers", get(list_customers).post(upsert_customer))
        .route("/v1/customers/{id}", get(get_customer).delete(delete_customer))
        .route("/v1/customers/{id}/photos", get(list_photos).post(create_photo))
        .route("/v1/customers/{id}/photos/{photo_id}/confirm", post(confirm_photo))
}

pub const MAX_EXTERNAL_ID_CHARS: usize = 128;
/// Largest photo accepted, in bytes.
pub const MAX_PHOTO_BYTES: i64 = 10 * 1024 * 1024;
/// Serialised metadata a customer may carry.
pub const MAX_METADATA_BYTES: usize = 4096;
/// How long an upload URL works.
pub const UPLOAD_URL_TTL: Duration = Duration::from_secs(15 * 60);
pub const PHOTO_KINDS: &[&str] = &["person", "garment"];

/// Body `{external_id, email?, name?, metadata?}`; `null` clears an optional field.
pub fn upsert_from(body: &Map<String, Value>) -> AppResult<(String, CustomerFields)> {
    let mut f = Fields::new(body);
    f.reject_unknown(&["external_id", "email", "name", "metadata"]);
    let external_id = f.check_text(
        "external_id",
        Need::Required,
        MAX_EXTERNAL_ID_CHARS,
        |v| v.bytes().all(|b| b.is_ascii_graphic()),
        "must be visible ASCII characters without spaces",
    );
    let mut fields = CustomerFields::default();
    if f.is_null("email") {
        fields.email = Some(None);
    } else if let Some(email) = f.email("email", Need::Optional) {
        fields.email = Some(Some(email));
    }
    if f.is_null("name") {
        fields.name = Some(None);
    } else if let Some(name) = f.text("name", Need::Optional, 1, 200) {
        fields.name = Some(Some(name));
    }
    if f.is_null("metadata") {
        fields.metadata = Some(Map::new());
    } else if let Some(metadata) = f.object("metadata", Need::Optional) {
        if serde_json::to_vec(metadata).map(|b| b.len()).unwrap_or(usize::MAX) > MAX_METADATA_BYTES {
            f.error("metadata", format!("must serialise to at most {MAX_METADATA_BYTES} bytes"));
        } else {
            fields.metadata = Some(metadata.clone());
        }
    }
    f.finish()?;
    // `Fields` names a required field it could not read, so a valid body has
    // it; this is the same 400 in case it is ever read as `None`.
    let external_id = external_id.ok_or_else(|| AppError::invalid_field("external_id", "is required"))?;
    Ok((external_id, fields))
}

/// Upsert: 201 with the new customer, or 200 with the updated one.
async fn upsert_customer(
    State(state): State<AppState>,
    principal: Principal,
    audit: AuditContext,
    JsonObject(body): JsonObject,
) -> AppResult<Response> {
    let scope = principal.require(Role::Developer, Scope::CustomersWrite, CUSTOMER_RESOURCE)?;
    let (external_id, fields) = upsert_from(&body)?;
    let (customer, created) = state.store.upsert_customer(&scope, &external_id, &fields, &audit).await?;
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(customer.to_body())).into_response())
}

/// Creation order; `?external_id=`, `?limit=`, `?cursor=`.
async fn list_customers(
    State(state): State<AppState>,
    principal: Principal,
    params: QueryParams,
) -> AppResult<Page<Value>> {
    let scope = principal.require(Role::User, Scope::CustomersRead, CUSTOMER_RESOURCE)?;
    params.allow_only(&["limit", "cursor", "external_id"])?;
    let page = params.page()?;
    let filters = params.as_object();
    let mut f = Fields::new(&filters);
    let external_id = f.text("external_id", Need::Optional, 1, MAX_EXTERNAL_ID_CHARS);
    f.finish()?;
    let (customers, next_cursor) = state.store.list_customers(&scope, external_id.as_deref(), &page).await?;
    Ok(Page { data: customers.iter().map(Customer::to_body).collect(), next_cursor })
}

async fn load_customer(state: &AppState, scope: &TenantScope, raw_id: &str) -> AppResult<Customer> {
    let id = path_uuid(raw_id, "customer_id")?;
    state.store.get_customer(scope, id).await?.ok_or_else(|| AppError::not_found(CUSTOMER_RESOURCE))
}

async fn get_customer(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> AppResult<Json<Value>> {
    let scope = principal.require(Role::User, Scope::CustomersRead, CUSTOMER_RESOURCE)?;
    Ok(Json(load_customer(&state, &scope, &id).await?.to_body()))
}

/// Deletes the customer and their photos: the objects in S3 first, then the
/// items in one transaction, so a failure part-way leaves a customer that a
/// retried DELETE finishes, never orphaned photos. 204.
async fn delete_customer(
    State(state): State<AppState>,
    principal: Principal,
    audit: AuditContext,
    Path(id): Path<String>,
) -> AppResult<StatusCode> {
    let scope = principal.require(Role::Developer, Scope::CustomersWrite, CUSTOMER_RESOURCE)?;
    let customer = load_customer(&state, &scope, &id).await?;
    let removed = state.blobs.delete_prefix(&customer_blob_prefix(&scope, customer.id)).await?;
    if !state.store.delete_customer(&scope, customer.id, &audit).await? {
        return Err(AppError::not_found(CUSTOMER_RESOURCE));
    }
    tracing::info!(customer_id = %customer.id, objects = removed, "customer deleted with its photos");
    Ok(StatusCode::NO_CONTENT)
}

/// Body `{content_type: image/jpeg|image/png|image/webp, size_bytes, kind?:
/// person|garment}`. 201 with the photo (`pending`) and `upload`: PUT the
/// bytes to `upload.url` with `upload.headers` before `upload.expires_at`,
/// then confirm.
async fn create_photo(
    State(state): State<AppState>,
    principal: Principal,
    audit: AuditContext,
    Path(id): Path<String>,
    JsonObject(body): JsonObject,
) -> AppResult<Response> {
    let scope = principal.require(Role::Developer, Scope::CustomersWrite, PHOTO_RESOURCE)?;
    let customer_id = path_uuid(&id, "customer_id")?;
    let NewPhoto { content_type, size, kind } = NewPhoto::parse(&body)?;
    let photo_id = Uuid::now_v7();
    let photo = Photo {
        id: photo_id,
        tenant_id: scope.tenant_id(),
        customer_id,
        kind: kind.to_owned(),
        content_type: content_type.to_owned(),
        declared_size: size,
        status: "pending".into(),
        size_bytes: None,
        rejection_reason: None,
        object_key: format!("{}photos/{photo_id}", customer_blob_prefix(&scope, customer_id)),
        created_at: now_rfc3339(),
        confirmed_at: None,
    };
    match state.store.create_photo(&scope, &photo, &audit).await {
        Ok(()) => {}
        Err(PhotoError::NoCustomer) => return Err(AppError::not_found(CUSTOMER_RESOURCE)),
        Err(PhotoError::TooMany) => {
            return Err(AppError::conflict(format!("a customer may have at most {MAX_PHOTOS_PER_CUSTOMER} photos"))
                .with_details(json!({"reason": "too_many_photos", "max_photos": MAX_PHOTOS_PER_CUSTOMER})));
        }
        Err(PhotoError::Other(e)) => return Err(e),
    }
    let upload = state.blobs.presign_upload(&photo.object_key, content_type, UPLOAD_URL_TTL).await?;
    let mut body = photo.to_body();
    body["upload"] = serde_json::to_value(upload).map_err(AppError::internal)?;
    body["max_size_bytes"] = json!(MAX_PHOTO_BYTES);
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// A photo's create body.
#[derive(Debug, PartialEq)]
struct NewPhoto {
    content_type: &'static str,
    size: i64,
    kind: &'static str,
}

impl NewPhoto {
    fn parse(body: &Map<String, Value>) -> AppResult<Self> {
        let mut f = Fields::new(body);
        f.reject_unknown(&["content_type", "size_bytes", "kind"]);
        let content_type = f.one_of("content_type", Need::Required, IMAGE_TYPES);
        let size = f.integer("size_bytes", Need::Required, 1, MAX_PHOTO_BYTES);
        let kind = f.one_of("kind", Need::Optional, PHOTO_KINDS).unwrap_or("person");
        let photo = content_type.zip(size).map(|(content_type, size)| NewPhoto { content_type, size, kind });
        f.finish()?;
        // `Fields` names every required field it could not read, so a valid
        // body has both; this is the same 400 in case one is ever `None`.
        photo.ok_or_else(|| {
            AppError::validation(vec![
                FieldError::new("content_type", "is required"),
                FieldError::new("size_bytes", "is required"),
            ])
        })
    }
}

/// What the stored object must be for the photo to become `ready`.
pub fn judge_upload(photo: &Photo, size: i64, stored_type: Option<&str>, first_bytes: &[u8]) -> Result<i64, String> {
    if size > MAX_PHOTO_BYTES {
        return Err(format!("the upload is {size} bytes; the limit is {MAX_PHOTO_BYTES}"));
    }
    if size != photo.declared_size {
        return Err(format!("the upload is {size} bytes, not the {} declared", photo.declared_size));
    }
    if stored_type != Some(photo.content_type.as_str()) {
        return Err(format!(
            "the upload's content type is {}, not {}",
            stored_type.unwrap_or("missing"),
            photo.content_type
        ));
    }
    match sniff_image_type(first_bytes) {
        Some(real) if real == photo.content_type => Ok(size),
        Some(real) => Err(format!("the upload is a {real} file, not {}", photo.content_type)),
        None => Err("the upload is not a JPEG, PNG or WebP image".to_owned()),
    }
}

/// Checks the uploaded object really exists and is what was declared: 200
/// with the photo `ready`; otherwise the object is deleted, the photo marked
/// `rejected` and the answer is 422 `invalid_upload` with the reason. An
/// upload that has not arrived yet is 409 (confirm again after uploading).
async fn confirm_photo(
    State(state): State<AppState>,
    principal: Principal,
    audit: AuditContext,
    Path((id, photo_id)): Path<(String, String)>,
) -> AppResult<Response> {
    let scope = principal.require(Role::Developer, Scope::CustomersWrite, PHOTO_RESOURCE)?;
    let customer_id = path_uuid(&id, "customer_id")?;
    let photo_id = path_uuid(&photo_id, "photo_id")?;
    let photo = state
        .store
        .get_photo(&scope, customer_id, photo_id)
        .await?
        .ok_or_else(|| AppError::not_found(PHOTO_RESOURCE))?;
    if photo.status != "pending" {
        return answer_for(photo);
    }
    let Some(info) = state.blobs.head(&photo.object_key).await? else {
        return Err(AppError::conflict("nothing has been uploaded for this photo yet; PUT it to the upload URL first")
            .with_details(json!({"reason": "not_uploaded"})));
    };
    let first = state.blobs.first_bytes(&photo.object_key, 16).await?;
    let verdict = judge_upload(&photo, info.size, info.content_type.as_deref(), &first);
    if verdict.is_err() {
        state.blobs.delete(&photo.object_key).await?;
    }
    answer_for(state.store.settle_photo(&scope, &photo, verdict, &audit).await?)
}

fn answer_for(photo: Photo) -> AppResult<Response> {
    match photo.status.as_str() {
        "rejected" => Err(AppError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_upload",
            photo.rejection_reason.clone().unwrap_or_else(|| "the upload was refused".into()),
        )
        .with_details(json!({"photo": photo.to_body()}))),
        _ => Ok(Json(photo.to_body()).into_response()),
    }
}

async fn list_photos(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> AppResult<Json<Value>> {
    let scope = principal.require(Role::User, Scope::CustomersRead, PHOTO_RESOURCE)?;
    let customer = load_customer(&state, &scope, &id).await?;
    let photos = state.store.list_photos(&scope, customer.id).await?;
    Ok(Json(json!({"data": photos.iter().map(Photo::to_body).collect::<Vec<_>>(), "next_cursor": null})))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn photo(content_type: &str, size: i64) -> Photo {
        Photo {
            id: Uuid::now_v7(),
            tenant_id: Uuid::now_v7(),
            customer_id: Uuid::now_v7(),
            kind: "person".into(),
            content_type: content_type.into(),
            declared_size: size,
            status: "pending".into(),
            size_bytes: None,
            rejection_reason: None,
            object_key: "k".into(),
            created_at: now_rfc3339(),
            confirmed_at: None,
        }
    }

    #[test]
    fn an_upload_must_be_what_was_declared() {
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
        assert_eq!(judge_upload(&photo("image/png", 100), 100, Some("image/png"), png), Ok(100));
        assert!(judge_upload(&photo("image/png", 100), 101, Some("image/png"), png).is_err());
        assert!(judge_upload(&photo("image/png", 100), 100, Some("image/jpeg"), png).is_err());
        assert!(judge_upload(&photo("image/jpeg", 100), 100, Some("image/jpeg"), png).is_err());
        assert!(judge_upload(&photo("image/png", 100), 100, Some("image/png"), b"<html>").is_err());
        let big = MAX_PHOTO_BYTES + 1;
        assert!(judge_upload(&photo("image/png", big), big, Some("image/png"), png).is_err());
    }

    #[test]
    fn upserts_name_every_bad_field() {
        let problems = |body: Value| match upsert_from(body.as_object().expect("object")) {
            Ok(_) => Vec::new(),
            Err(AppError::Api { details, .. }) => details["fields"]
                .as_array()
                .map(|fs| fs.iter().filter_map(|f| f["field"].as_str().map(str::to_owned)).collect())
                .unwrap_or_default(),
            Err(AppError::Internal(e)) => panic!("{e}"),
        };
        assert!(
            problems(json!({"external_id": "shopper-42", "email": "a@b.co", "metadata": {"tier": "gold"}})).is_empty()
        );
        assert_eq!(problems(json!({"email": "a@b.co"})), ["external_id"]);
        assert_eq!(problems(json!({"external_id": "has space"})), ["external_id"]);
        assert_eq!(
            problems(json!({"external_id": "x", "email": "nope", "metadata": 3, "vip": true})),
            ["vip", "email", "metadata"]
        );
        assert_eq!(problems(json!({"external_id": "x", "metadata": {"blob": "x".repeat(5000)}})), ["metadata"]);
    }
}
