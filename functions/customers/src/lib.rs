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
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde::Serialize;
use serde_json::json;
use shared::{
    AppError, AppResult, AppState,
    audit::AuditContext,
    auth::{Principal, Role, Scope, TenantScope},
    blobs::{PresignedUpload, sniff_image_type},
    domain::{
        customer::{CustomerName, CustomerView, ExternalId, ImageType, Metadata, PhotoKind, PhotoSize, PhotoView},
        ids::{CustomerId, PhotoId},
        now,
        values::Email,
    },
    http::Page,
    store::customers::{
        CUSTOMER_RESOURCE, Customer, CustomerFields, MAX_PHOTOS_PER_CUSTOMER, PHOTO_RESOURCE, Photo, PhotoError,
        PhotoStatus, customer_blob_prefix,
    },
    web::extract::{Body, ListQuery, Patch, PathIds},
};
use uuid::Uuid;

pub use shared::domain::customer::{MAX_EXTERNAL_ID_CHARS, MAX_METADATA_BYTES, MAX_PHOTO_BYTES};

/// This group's part of the OpenAPI document (`shared::web::openapi`).
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(upsert_customer, list_customers, get_customer, delete_customer, create_photo, confirm_photo, list_photos),
    tags((name = "customers", description = "A retailer's shoppers (seed 004), upserted by `external_id`, and their photos, uploaded straight to S3"))
)]
pub struct ApiDoc;

/// This group's routes; its Lambda and the local server add the shared layers.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/customers", get(list_customers).post(upsert_customer))
        .route("/v1/customers/{id}", get(get_customer).delete(delete_customer))
        .route("/v1/customers/{id}/photos", get(list_photos).post(create_photo))
        .route("/v1/customers/{id}/photos/{photo_id}/confirm", post(confirm_photo))
}

/// How long an upload URL works.
pub const UPLOAD_URL_TTL: Duration = Duration::from_secs(15 * 60);

/// An upsert's body: `{external_id, email?, name?, metadata?}`; `null`
/// clears an optional field (`metadata` becomes `{}`).
#[derive(Debug, eserde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Upsert {
    #[eserde(compat)]
    external_id: ExternalId,
    #[serde(default)]
    #[eserde(compat)]
    email: Patch<Email>,
    #[serde(default)]
    #[eserde(compat)]
    name: Patch<CustomerName>,
    #[serde(default)]
    #[eserde(compat)]
    metadata: Patch<Metadata>,
}

impl Upsert {
    /// The external id and the fields to set.
    pub fn into_parts(self) -> (ExternalId, CustomerFields) {
        fn nullable<T>(patch: Patch<T>, text: impl Fn(T) -> String) -> Option<Option<String>> {
            match patch {
                Patch::Absent => None,
                Patch::Null => Some(None),
                Patch::Value(v) => Some(Some(text(v))),
            }
        }
        let fields = CustomerFields {
            email: nullable(self.email, Email::into_inner),
            name: nullable(self.name, CustomerName::into_inner),
            metadata: match self.metadata {
                Patch::Absent => None,
                Patch::Null => Some(serde_json::Map::new()),
                Patch::Value(m) => Some(m.into_inner()),
            },
        };
        (self.external_id, fields)
    }
}

/// Upsert a customer by `external_id`.
///
/// 201 with the new customer, or 200 with the updated one; `null` clears an
/// optional field.
#[utoipa::path(post, path = "/v1/customers", tag = "customers", security(("bearer" = ["developer"]), ("api_key" = ["customers:write"])),
    request_body(content = Upsert, example = json!({"external_id": "shopper-42", "email": "ada@example.com", "name": "Ada", "metadata": {"tier": "gold"}})),
    responses(
        (status = 201, description = "Created", body = CustomerView),
        (status = 200, description = "Updated (the external id was known)", body = CustomerView),
    ))]
async fn upsert_customer(
    State(state): State<AppState>,
    principal: Principal,
    audit: AuditContext,
    body: Result<Body<Upsert>, AppError>,
) -> AppResult<Response> {
    let scope = principal.require(Role::Developer, Scope::CustomersWrite, CUSTOMER_RESOURCE)?;
    let Body(upsert) = body?;
    let (external_id, fields) = upsert.into_parts();
    let (customer, created) = state.store.upsert_customer(&scope, external_id.as_str(), &fields, &audit).await?;
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(customer.view())).into_response())
}

/// `GET /v1/customers` filters.
#[derive(Debug, eserde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CustomerFilters {
    #[serde(default)]
    #[eserde(compat)]
    external_id: Option<shared::domain::values::Text<1, MAX_EXTERNAL_ID_CHARS>>,
}

/// List customers, oldest first.
///
/// `?external_id=` finds the one customer with that id.
#[utoipa::path(get, path = "/v1/customers", tag = "customers", security(("bearer" = ["user"]), ("api_key" = ["customers:read"])),
    params(("external_id" = Option<String>, Query, description = "Only the customer with this external id", max_length = 255)),
    responses((status = 200, description = "A page of customers", body = Page<CustomerView>)))]
async fn list_customers(
    State(state): State<AppState>,
    principal: Principal,
    query: Result<ListQuery<CustomerFilters>, AppError>,
) -> AppResult<Page<CustomerView>> {
    let scope = principal.require(Role::User, Scope::CustomersRead, CUSTOMER_RESOURCE)?;
    let ListQuery { page, filters } = query?;
    let external_id = filters.external_id.as_ref().map(|e| e.as_str());
    let (customers, next_cursor) = state.store.list_customers(&scope, external_id, &page).await?;
    Ok(Page { data: customers.iter().map(Customer::view).collect(), next_cursor })
}

async fn load_customer(state: &AppState, scope: &TenantScope, id: Uuid) -> AppResult<Customer> {
    state.store.get_customer(scope, id).await?.ok_or_else(|| AppError::not_found(CUSTOMER_RESOURCE))
}

/// Get a customer.
#[utoipa::path(get, path = "/v1/customers/{id}", tag = "customers", security(("bearer" = ["user"]), ("api_key" = ["customers:read"])),
    responses((status = 200, description = "The customer", body = CustomerView)))]
async fn get_customer(
    State(state): State<AppState>,
    principal: Principal,
    path: Result<PathIds<CustomerId>, AppError>,
) -> AppResult<Json<CustomerView>> {
    let scope = principal.require(Role::User, Scope::CustomersRead, CUSTOMER_RESOURCE)?;
    let PathIds(CustomerId(id)) = path?;
    // Read with credentials that can only read this tenant's partitions.
    let store = state.tenant_store(&scope).await?;
    let customer = store.get_customer(&scope, id).await?.ok_or_else(|| AppError::not_found(CUSTOMER_RESOURCE))?;
    Ok(Json(customer.view()))
}

/// Delete a customer and their photos.
///
/// Deletes the objects in S3 first, then the
/// items in one transaction, so a failure part-way leaves a customer that a
/// retried DELETE finishes, never orphaned photos. 204.
#[utoipa::path(delete, path = "/v1/customers/{id}", tag = "customers", security(("bearer" = ["developer"]), ("api_key" = ["customers:write"])),
    responses((status = 204, description = "Deleted, with its photos")))]
async fn delete_customer(
    State(state): State<AppState>,
    principal: Principal,
    audit: AuditContext,
    path: Result<PathIds<CustomerId>, AppError>,
) -> AppResult<StatusCode> {
    let scope = principal.require(Role::Developer, Scope::CustomersWrite, CUSTOMER_RESOURCE)?;
    let PathIds(CustomerId(id)) = path?;
    let customer = load_customer(&state, &scope, id).await?;
    let removed = state.blobs.delete_prefix(&customer_blob_prefix(&scope, customer.id)).await?;
    if !state.store.delete_customer(&scope, customer.id, &audit).await? {
        return Err(AppError::not_found(CUSTOMER_RESOURCE));
    }
    tracing::info!(customer_id = %customer.id, objects = removed, "customer deleted with its photos");
    Ok(StatusCode::NO_CONTENT)
}

/// A photo's create body: `{content_type: image/jpeg|image/png|image/webp,
/// size_bytes, kind?: person|garment}`.
#[derive(Debug, eserde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct NewPhoto {
    #[eserde(compat)]
    content_type: ImageType,
    #[eserde(compat)]
    size_bytes: PhotoSize,
    #[serde(default)]
    #[eserde(compat)]
    kind: Option<PhotoKind>,
}

/// A new photo and where to upload its bytes.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PhotoWithUpload {
    #[serde(flatten)]
    pub photo: PhotoView,
    pub upload: PresignedUpload,
    /// The largest upload any photo may be.
    pub max_size_bytes: i64,
}

/// Create a photo and get its upload URL.
///
/// 201 with the photo (`pending`) and `upload`: PUT the
/// bytes to `upload.url` with `upload.headers` before `upload.expires_at`,
/// then confirm.
#[utoipa::path(post, path = "/v1/customers/{id}/photos", tag = "customers", security(("bearer" = ["developer"]), ("api_key" = ["customers:write"])),
    request_body(content = NewPhoto, example = json!({"content_type": "image/jpeg", "size_bytes": 524288, "kind": "person"})),
    responses(
        (status = 201, description = "The photo (`pending`) and where to upload it", body = PhotoWithUpload),
        (status = 409, description = "Conflict\n\n- `conflict`: the customer has the most photos allowed (`details.reason`: `too_many_photos`)\n- `idempotency_key_in_use`", body = shared::web::openapi::ApiError),
    ))]
async fn create_photo(
    State(state): State<AppState>,
    principal: Principal,
    audit: AuditContext,
    path: Result<PathIds<CustomerId>, AppError>,
    body: Result<Body<NewPhoto>, AppError>,
) -> AppResult<(StatusCode, Json<PhotoWithUpload>)> {
    let scope = principal.require(Role::Developer, Scope::CustomersWrite, PHOTO_RESOURCE)?;
    let PathIds(CustomerId(customer_id)) = path?;
    let Body(NewPhoto { content_type, size_bytes, kind }) = body?;
    let photo_id = Uuid::now_v7();
    let photo = Photo {
        id: photo_id,
        tenant_id: scope.tenant_id(),
        customer_id,
        kind: kind.unwrap_or(PhotoKind::Person),
        content_type,
        declared_size: size_bytes.get(),
        status: PhotoStatus::Pending,
        size_bytes: None,
        rejection_reason: None,
        object_key: format!("{}photos/{photo_id}", customer_blob_prefix(&scope, customer_id)),
        created_at: now(),
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
    let upload = state.blobs.presign_upload(&photo.object_key, content_type.as_str(), UPLOAD_URL_TTL).await?;
    Ok((StatusCode::CREATED, Json(PhotoWithUpload { photo: photo.view(), upload, max_size_bytes: MAX_PHOTO_BYTES })))
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
        Some(real) if photo.content_type == real => Ok(size),
        Some(real) => Err(format!("the upload is a {real} file, not {}", photo.content_type)),
        None => Err("the upload is not a JPEG, PNG or WebP image".to_owned()),
    }
}

/// Confirm a photo's upload.
///
/// Checks the uploaded object really exists and is what was declared: 200
/// with the photo `ready`; otherwise the object is deleted, the photo marked
/// `rejected` and the answer is 422 `invalid_upload` with the reason. An
/// upload that has not arrived yet is 409 (confirm again after uploading).
#[utoipa::path(post, path = "/v1/customers/{id}/photos/{photo_id}/confirm", tag = "customers", security(("bearer" = ["developer"]), ("api_key" = ["customers:write"])),
    responses(
        (status = 200, description = "The photo, `ready`", body = PhotoView),
        (status = 409, description = "Conflict\n\n- `conflict`: nothing uploaded yet (`details.reason`: `not_uploaded`)\n- `idempotency_key_in_use`", body = shared::web::openapi::ApiError),
        (status = 422, description = "Unprocessable\n\n- `invalid_upload`: the upload is not what was declared; the photo is `rejected` (`details.photo`)\n- `idempotency_key_reused`", body = shared::web::openapi::ApiError),
    ))]
async fn confirm_photo(
    State(state): State<AppState>,
    principal: Principal,
    audit: AuditContext,
    path: Result<PathIds<(CustomerId, PhotoId)>, AppError>,
) -> AppResult<Json<PhotoView>> {
    let scope = principal.require(Role::Developer, Scope::CustomersWrite, PHOTO_RESOURCE)?;
    let PathIds((CustomerId(customer_id), PhotoId(photo_id))) = path?;
    let photo = state
        .store
        .get_photo(&scope, customer_id, photo_id)
        .await?
        .ok_or_else(|| AppError::not_found(PHOTO_RESOURCE))?;
    if photo.status != PhotoStatus::Pending {
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

fn answer_for(photo: Photo) -> AppResult<Json<PhotoView>> {
    match photo.status {
        PhotoStatus::Rejected => Err(AppError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_upload",
            photo.rejection_reason.clone().unwrap_or_else(|| "the upload was refused".into()),
        )
        .with_details(json!({"photo": photo.view()}))),
        _ => Ok(Json(photo.view())),
    }
}

/// List a customer's photos, oldest first.
#[utoipa::path(get, path = "/v1/customers/{id}/photos", tag = "customers", security(("bearer" = ["user"]), ("api_key" = ["customers:read"])),
    responses((status = 200, description = "A page of the customer's photos", body = Page<PhotoView>)))]
async fn list_photos(
    State(state): State<AppState>,
    principal: Principal,
    path: Result<PathIds<CustomerId>, AppError>,
    query: Result<ListQuery<shared::web::extract::NoFilters>, AppError>,
) -> AppResult<Page<PhotoView>> {
    let scope = principal.require(Role::User, Scope::CustomersRead, PHOTO_RESOURCE)?;
    let PathIds(CustomerId(id)) = path?;
    let ListQuery { page, .. } = query?;
    let customer = load_customer(&state, &scope, id).await?;
    let (photos, next_cursor) = state.store.list_photos(&scope, customer.id, &page).await?;
    Ok(Page { data: photos.iter().map(Photo::view).collect(), next_cursor })
}

#[cfg(test)]
mod tests {
    use serde_json::Value;
    use shared::web::extract::parse_body;

    use super::*;

    fn photo(content_type: ImageType, size: i64) -> Photo {
        Photo {
            id: Uuid::now_v7(),
            tenant_id: Uuid::now_v7(),
            customer_id: Uuid::now_v7(),
            kind: PhotoKind::Person,
            content_type,
            declared_size: size,
            status: PhotoStatus::Pending,
            size_bytes: None,
            rejection_reason: None,
            object_key: "k".into(),
            created_at: now(),
            confirmed_at: None,
        }
    }

    #[test]
    fn an_upload_must_be_what_was_declared() {
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
        assert_eq!(judge_upload(&photo(ImageType::Png, 100), 100, Some("image/png"), png), Ok(100));
        assert!(judge_upload(&photo(ImageType::Png, 100), 101, Some("image/png"), png).is_err());
        assert!(judge_upload(&photo(ImageType::Png, 100), 100, Some("image/jpeg"), png).is_err());
        assert!(judge_upload(&photo(ImageType::Jpeg, 100), 100, Some("image/jpeg"), png).is_err());
        assert!(judge_upload(&photo(ImageType::Png, 100), 100, Some("image/png"), b"<html>").is_err());
        let big = MAX_PHOTO_BYTES + 1;
        assert!(judge_upload(&photo(ImageType::Png, big), big, Some("image/png"), png).is_err());
    }

    fn problems<T: for<'de> eserde::EDeserialize<'de>>(body: Value) -> Vec<String> {
        match parse_body::<T>(body.to_string().as_bytes()) {
            Ok(_) => Vec::new(),
            Err(err @ AppError::Api { .. }) => err.invalid_fields(),
            Err(AppError::Internal(e)) => panic!("{e}"),
        }
    }

    #[test]
    fn upserts_name_every_bad_field() {
        let upsert = |body| problems::<Upsert>(body);
        assert!(
            upsert(json!({"external_id": "shopper-42", "email": "a@b.co", "metadata": {"tier": "gold"}})).is_empty()
        );
        assert_eq!(upsert(json!({"email": "a@b.co"})), ["external_id"]);
        assert_eq!(upsert(json!({"external_id": "has space"})), ["external_id"]);
        assert_eq!(upsert(json!({"external_id": "x", "email": "nope", "metadata": 3})), ["email", "metadata"]);
        assert_eq!(upsert(json!({"external_id": "x", "vip": true})), ["vip"]);
        assert_eq!(upsert(json!({"external_id": "x", "metadata": {"blob": "x".repeat(5000)}})), ["metadata"]);
        // Null where the id belongs, and metadata DynamoDB cannot store
        // (issue 11: stored, it broke every list of customers).
        assert_eq!(upsert(json!({"external_id": null})), ["external_id"]);
        let mut deep = json!(1);
        for _ in 0..100 {
            deep = json!({ "d": deep });
        }
        for bad in [json!({"n": 1e300}), json!({"n": 1e-200}), json!({"": 1}), json!({"a": {"": 1}}), deep] {
            assert_eq!(upsert(json!({"external_id": "x", "metadata": bad})), ["metadata"], "{bad}");
        }
    }

    #[test]
    fn an_upsert_tells_absent_from_null() {
        let parsed = parse_body::<Upsert>(br#"{"external_id": "x", "email": null, "metadata": null}"#).expect("valid");
        let (external_id, fields) = parsed.into_parts();
        assert_eq!(external_id.as_str(), "x");
        assert_eq!(fields.email, Some(None));
        assert_eq!(fields.name, None);
        assert_eq!(fields.metadata, Some(serde_json::Map::new()));
    }

    #[test]
    fn a_photo_names_its_bad_fields_and_defaults_to_a_person() {
        let photo = |body| problems::<NewPhoto>(body);
        assert!(photo(json!({"content_type": "image/png", "size_bytes": 10})).is_empty());
        assert_eq!(
            photo(json!({"content_type": "image/gif", "size_bytes": 0, "kind": "shoe"})),
            ["content_type", "kind", "size_bytes"]
        );
        let parsed = parse_body::<NewPhoto>(br#"{"content_type": "IMAGE/PNG", "size_bytes": 10}"#).expect("valid");
        assert_eq!((parsed.content_type, parsed.kind), (ImageType::Png, None));
    }
}
