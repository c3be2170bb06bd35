//! The compliance route group (issue 17; seed 000's `configuration.compliance`
//! and `data_residency`, seed 001's DataPrivacyManager): a tenant's data
//! exports, the erasure of one person, and the compliance report. People
//! only: no API key scope reaches it.
//!
//! | route | handler | who |
//! |---|---|---|
//! | `POST /v1/compliance/exports` | [`request_export`] | admin |
//! | `GET /v1/compliance/exports` | [`list_exports`] | admin |
//! | `GET /v1/compliance/exports/{id}` | [`get_export`] | admin |
//! | `POST /v1/compliance/erasures` | [`create_erasure`] | admin |
//! | `GET /v1/compliance/report` | [`compliance_report`] | admin |
//!
//! An export is a job: the request records it with its
//! `compliance.export.requested` event (outbox -> bus -> queue ->
//! compliance-worker), the worker writes the zip. An erasure runs inside
//! the request (one pass over the tenant's partition and its objects) and
//! is safe to repeat: a second request continues or answers the first.

use std::{collections::BTreeMap, time::Duration};

use axum::{
    Json, Router,
    extract::State,
    http::StatusCode,
    routing::{get, post},
};
use serde::Serialize;
use serde_json::{Value, json};
use shared::{
    AppError, AppResult, AppState,
    audit::AuditContext,
    auth::{Principal, Role, TenantScope},
    domain::{
        audit::retention_days_of,
        compliance::{
            EXPORT_URL_SECONDS, Erasure, ErasureStatus, ErasureTerms, ErasureView, ExportJob, ExportView,
            RecordRetention, SubjectType, residency_matches, retention_rules,
        },
        ids::ExportId,
        now,
    },
    http::Page,
    store::{
        compliance::{ERASURE_RESOURCE, EXPORT_RESOURCE, erasure_id, exports_blob_prefix, tryon_blob_prefix},
        customers::customer_blob_prefix,
    },
    web::{
        extract::{Body, ListQuery, NoFilters, PathIds},
        principal::Fresh,
    },
};
use uuid::Uuid;

/// This group's part of the OpenAPI document (`shared::web::openapi`).
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(request_export, list_exports, get_export, create_erasure, compliance_report),
    tags((name = "compliance", description = "The tenant's data protection duties (issue 17): exports of everything it stores, the erasure of one member or customer, retention and residency in force"))
)]
pub struct ApiDoc;

/// This group's routes; its Lambda and the local server add the shared layers.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/compliance/exports", get(list_exports).post(request_export))
        .route("/v1/compliance/exports/{id}", get(get_export))
        .route("/v1/compliance/erasures", post(create_erasure))
        .route("/v1/compliance/report", get(compliance_report))
}

/// JSON documents larger than this are not opened by an erasure (what the
/// platform stores as JSON, inbound webhook payloads, is far smaller).
const MAX_SCRUBBED_OBJECT_BYTES: i64 = 4 * 1024 * 1024;

/// A job's view with a fresh download link while its zip is kept.
async fn export_view(state: &AppState, job: &ExportJob) -> AppResult<ExportView> {
    let at = now();
    let link = match job.downloadable_key(at) {
        Some(key) => {
            let ttl = Duration::from_secs(EXPORT_URL_SECONDS);
            let url = state.blobs.presign_download(key, ttl).await?;
            Some((url, at + chrono::Duration::seconds(EXPORT_URL_SECONDS as i64)))
        }
        None => None,
    };
    Ok(job.view(link))
}

/// Ask for an export of the tenant's data.
///
/// 202 with the job (`pending`): the worker builds one zip of every item the
/// tenant stores (secrets left out) and every file of its bucket prefix;
/// poll `GET /v1/compliance/exports/{id}` for its `download_url`.
#[utoipa::path(post, path = "/v1/compliance/exports", tag = "compliance", security(("bearer" = ["admin"])),
    responses((status = 202, description = "The export job, `pending`", body = ExportView)))]
async fn request_export(
    State(state): State<AppState>,
    principal: Principal,
    audit: AuditContext,
) -> AppResult<(StatusCode, Json<ExportView>)> {
    let scope = principal.require_person(Role::Admin, EXPORT_RESOURCE)?;
    let job = state.store.request_export(&scope, &audit).await?;
    Ok((StatusCode::ACCEPTED, Json(job.view(None))))
}

/// List the tenant's exports, newest first.
#[utoipa::path(get, path = "/v1/compliance/exports", tag = "compliance", security(("bearer" = ["admin"])),
    responses((status = 200, description = "A page of exports, newest first", body = Page<ExportView>)))]
async fn list_exports(
    State(state): State<AppState>,
    principal: Principal,
    query: Result<ListQuery<NoFilters>, AppError>,
) -> AppResult<Page<ExportView>> {
    let scope = principal.require_person(Role::Admin, EXPORT_RESOURCE)?;
    let ListQuery { page, .. } = query?;
    let (jobs, next_cursor) = state.store.list_exports(&scope, &page).await?;
    let mut data = Vec::with_capacity(jobs.len());
    for job in &jobs {
        data.push(export_view(&state, job).await?);
    }
    Ok(Page { data, next_cursor })
}

/// Get an export.
///
/// Its status (`pending`, `running`, `completed`, `failed`), its counts, and
/// once completed a presigned `download_url` valid until `expires_at` (ask
/// again for a fresh one until `file_expires_at`).
#[utoipa::path(get, path = "/v1/compliance/exports/{id}", tag = "compliance", security(("bearer" = ["admin"])),
    responses((status = 200, description = "The export", body = ExportView)))]
async fn get_export(
    State(state): State<AppState>,
    principal: Principal,
    path: Result<PathIds<ExportId>, AppError>,
) -> AppResult<Json<ExportView>> {
    let scope = principal.require_person(Role::Admin, EXPORT_RESOURCE)?;
    let PathIds(ExportId(id)) = path?;
    let job = state.store.get_export(&scope, id).await?.ok_or_else(|| AppError::not_found(EXPORT_RESOURCE))?;
    Ok(Json(export_view(&state, &job).await?))
}

/// An erasure's body: who to erase.
#[derive(Debug, eserde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewErasure {
    #[eserde(compat)]
    subject_type: SubjectType,
    #[eserde(compat)]
    #[schema(value_type = String, format = Uuid)]
    subject_id: shared::domain::ids::UserId,
}

/// The subject as it is now, with the personal values to look for.
enum Subject {
    User(shared::domain::user::User),
    Customer(shared::domain::customer::Customer),
}

impl Subject {
    fn terms(&self) -> ErasureTerms {
        match self {
            Subject::User(user) => ErasureTerms::new(
                user.id,
                vec![user.email.clone()],
                vec![
                    user.first_name.clone(),
                    user.last_name.clone(),
                    format!("{} {}", user.first_name, user.last_name),
                ],
            ),
            Subject::Customer(customer) => {
                let mut values: Vec<String> =
                    [customer.name.clone(), Some(customer.external_id.clone())].into_iter().flatten().collect();
                values.extend(metadata_texts(&Value::Object(customer.metadata.clone())));
                ErasureTerms::new(customer.id, customer.email.clone().into_iter().collect(), values)
            }
        }
    }
}

/// Every text in a customer's metadata: the retailer's own fields about the
/// shopper, personal until shown otherwise.
fn metadata_texts(value: &Value) -> Vec<String> {
    match value {
        Value::String(text) => vec![text.clone()],
        Value::Array(items) => items.iter().flat_map(metadata_texts).collect(),
        Value::Object(map) => map.values().flat_map(metadata_texts).collect(),
        _ => Vec::new(),
    }
}

fn refused(reason: &str, message: &str) -> AppError {
    AppError::conflict(message.to_owned()).with_details(json!({"reason": reason}))
}

/// Erase a member or an external customer.
///
/// Removes or anonymises the subject's personal values everywhere the
/// tenant's data holds them: the member (removed from the tenant, email
/// freed, sign-ins ended) or the customer (anonymised in place, photos and
/// try-on images deleted), audit entries, outbox events, webhook deliveries,
/// stored idempotent answers and JSON files, and any earlier export's zip.
/// Safe to repeat: 201 with the erasure once it completed, 200 with the
/// same record on a later request. The owner cannot be erased (409), nor
/// the caller (409); an id not of this tenant is 404.
#[utoipa::path(post, path = "/v1/compliance/erasures", tag = "compliance", security(("bearer" = ["admin"])),
    request_body(content = NewErasure, example = json!({"subject_type": "customer", "subject_id": "01946a2b-0000-7000-8000-000000000005"})),
    responses(
        (status = 201, description = "The erasure, completed, with what it touched", body = ErasureView),
        (status = 200, description = "The subject was erased before: that erasure", body = ErasureView),
        (status = 409, description = "Conflict\n\n- `conflict`: the subject is the tenant's owner (`details.reason`: `owner`) or the caller (`self`)\n- `idempotency_key_in_use`", body = shared::web::openapi::ApiError),
    ))]
async fn create_erasure(
    State(state): State<AppState>,
    Fresh(principal): Fresh,
    audit: AuditContext,
    body: Result<Body<NewErasure>, AppError>,
) -> AppResult<(StatusCode, Json<ErasureView>)> {
    let scope = principal.require_person(Role::Admin, ERASURE_RESOURCE)?;
    let Body(NewErasure { subject_type, subject_id }) = body?;
    let subject_id = subject_id.0;
    let id = erasure_id(&scope, subject_type, subject_id);
    let existing = state.store.get_erasure(&scope, id).await?;
    if let Some(done) = existing.as_ref().filter(|e| e.status == ErasureStatus::Completed) {
        return Ok((StatusCode::OK, Json(done.view())));
    }
    let subject = match subject_type {
        SubjectType::User => state.store.get_user(&scope, subject_id).await?.map(Subject::User),
        SubjectType::Customer => state.store.get_customer(&scope, subject_id).await?.map(Subject::Customer),
    };
    if let Some(Subject::User(user)) = &subject {
        if user.role == Role::Owner {
            return Err(refused("owner", "the tenant's owner cannot be erased; transfer ownership first"));
        }
        if user.id == principal.user_id() {
            return Err(refused("self", "you cannot erase yourself; ask another admin"));
        }
    }
    let terms = match (&existing, &subject) {
        (Some(running), _) if running.terms.is_some() => running.terms.clone().unwrap_or_default(),
        (_, Some(subject)) => subject.terms(),
        (_, None) => {
            return Err(AppError::not_found(match subject_type {
                SubjectType::User => "user",
                SubjectType::Customer => "customer",
            }));
        }
    };
    let erasure = state
        .store
        .begin_erasure(
            &scope,
            &Erasure {
                id,
                tenant_id: scope.tenant_id(),
                subject_type,
                subject_id,
                status: ErasureStatus::Running,
                requested_by: audit.actor.clone(),
                created_at: now(),
                completed_at: None,
                attempts: 1,
                counts: BTreeMap::new(),
                terms: Some(terms.clone()),
            },
        )
        .await?;
    if erasure.status == ErasureStatus::Completed {
        return Ok((StatusCode::OK, Json(erasure.view())));
    }
    let terms = erasure.terms.clone().unwrap_or(terms);
    let counts = erase(&state, &scope, subject_type, subject, &terms, &audit).await?;
    let done = state.store.finish_erasure(&scope, &erasure, counts, &audit).await?;
    tracing::info!(erasure_id = %done.id, %subject_type, "subject erased");
    Ok((StatusCode::CREATED, Json(done.view())))
}

/// The erasure's work, each step idempotent: the subject's files, its own
/// record, every earlier export, the partition, the tenant's JSON files.
async fn erase(
    state: &AppState,
    scope: &TenantScope,
    subject_type: SubjectType,
    subject: Option<Subject>,
    terms: &ErasureTerms,
    audit: &AuditContext,
) -> AppResult<BTreeMap<String, i64>> {
    let mut counts: BTreeMap<String, i64> = BTreeMap::new();
    let mut add = |kind: &str, n: i64| {
        if n > 0 {
            *counts.entry(kind.to_owned()).or_default() += n;
        }
    };
    let erased = match subject {
        Some(Subject::Customer(customer)) => {
            // Objects first: a failure after leaves a customer a retry finds.
            let photos = state.blobs.delete_prefix(&customer_blob_prefix(scope, customer.id)).await?;
            add("object_deleted", photos as i64);
            state.store.erase_customer_record(scope, &customer, audit).await?
        }
        Some(Subject::User(user)) => state.store.erase_user_record(scope, &user, audit).await?,
        None => false,
    };
    if erased {
        add("subject", 1);
    }
    // An earlier export holds the subject: its zip goes (the job stays).
    let zips = state.blobs.delete_prefix(&exports_blob_prefix(scope)).await?;
    add("object_deleted", zips as i64);
    let report = state.store.scrub_partition(scope, subject_type, terms).await?;
    for (kind, n) in &report.counts {
        add(kind, *n);
    }
    for session in &report.tryon_sessions {
        let images = state.blobs.delete_prefix(&tryon_blob_prefix(scope, *session)).await?;
        add("object_deleted", images as i64);
    }
    for (key, size) in state.blobs.list(&shared::blobs::tenant_prefix(scope)).await? {
        if !key.ends_with(".json") || size > MAX_SCRUBBED_OBJECT_BYTES {
            continue;
        }
        let Some(bytes) = state.blobs.get(&key).await? else { continue };
        let Ok(text) = String::from_utf8(bytes) else { continue };
        if let Some(scrubbed) = terms.scrub_text(&text, terms.names_subject(&text)) {
            state.blobs.put(&key, scrubbed.into_bytes(), "application/json").await?;
            add("object_scrubbed", 1);
        }
    }
    Ok(counts)
}

/// The tenant's compliance position.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ComplianceReport {
    pub tenant_id: Uuid,
    /// `configuration.compliance` as the tenant set it (seed 000:
    /// `data_classification`, `audit_logging`, `retention_policy_days`,
    /// `gdpr_enabled`); `{}` when unset.
    #[schema(value_type = Object)]
    pub compliance: Value,
    /// Where the tenant's data must live (seed 000), as recorded.
    #[schema(required = true)]
    pub data_residency: Option<String>,
    /// The AWS region this stage runs in: where the data is.
    pub region: String,
    /// Whether `region` serves `data_residency` (a region, or an area such
    /// as `eu`); `null` when no residency is recorded.
    #[schema(required = true)]
    pub residency_matches: Option<bool>,
    /// The retention in force (`retention_policy_days`, or the default).
    pub retention_days: i64,
    /// How long each kind of record is kept.
    pub retention: Vec<RecordRetention>,
    /// The newest export.
    #[schema(required = true)]
    pub last_export: Option<ExportView>,
    /// Erasures made in this tenant.
    pub erasure_count: i64,
}

/// The compliance report.
///
/// The tenant's compliance configuration, its recorded data residency
/// against the region serving it, the retention in force for each kind of
/// record, the last export and the number of erasures.
#[utoipa::path(get, path = "/v1/compliance/report", tag = "compliance", security(("bearer" = ["admin"])),
    responses((status = 200, description = "The report", body = ComplianceReport)))]
async fn compliance_report(State(state): State<AppState>, principal: Principal) -> AppResult<Json<ComplianceReport>> {
    let scope = principal.require_person(Role::Admin, "compliance_report")?;
    let (tenant, _) = state.store.get_tenant(&scope).await?.ok_or_else(|| AppError::not_found("tenant"))?;
    let region = std::env::var("AWS_REGION").or_else(|_| std::env::var("AWS_DEFAULT_REGION")).unwrap_or_default();
    let retention_days = retention_days_of(&tenant.configuration);
    let last_export = match state.store.last_export(&scope).await? {
        Some(job) => Some(export_view(&state, &job).await?),
        None => None,
    };
    Ok(Json(ComplianceReport {
        tenant_id: tenant.id,
        compliance: tenant.configuration.get("compliance").cloned().unwrap_or_else(|| json!({})),
        residency_matches: residency_matches(tenant.data_residency.as_deref(), &region),
        data_residency: tenant.data_residency.clone(),
        region,
        retention_days,
        retention: retention_rules(retention_days),
        last_export,
        erasure_count: state.store.erasure_count(&scope).await?,
    }))
}

#[cfg(test)]
mod tests {
    use shared::web::extract::parse_body;

    use super::*;

    #[test]
    fn an_erasure_names_its_bad_fields() {
        let ok = parse_body::<NewErasure>(
            br#"{"subject_type": "customer", "subject_id": "01946a2b-0000-7000-8000-000000000005"}"#,
        );
        assert!(ok.is_ok());
        match parse_body::<NewErasure>(br#"{"subject_type": "shopper", "subject_id": "nope", "x": 1}"#) {
            Err(err @ AppError::Api { .. }) => {
                assert_eq!(err.invalid_fields(), ["subject_id", "subject_type", "x"]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_customers_metadata_texts_are_terms() {
        let mut texts = metadata_texts(&json!({"tier": "gold", "n": 3, "tags": ["vip", {"city": "Lyon"}]}));
        texts.sort();
        assert_eq!(texts, ["Lyon", "gold", "vip"]);
    }
}
