//! The billing route group (seed 000 scenarios 1 and 4): a tenant's billing
//! account, its subscription (whose limits become the tenant's quotas),
//! metered components with tiered prices, usage records, the current
//! period's usage, analytics from hourly rollups, and invoices with their
//! PDF. Rules (pricing, proration, tax, projections) are
//! `shared::domain::billing`; storage and the one-transaction changes are
//! `shared::store::billing`; the metering nobody posts (API calls, storage,
//! threshold alerts, period close) is the billing worker's.
//!
//! | route | handler | who |
//! |---|---|---|
//! | `POST /v1/billing/account` | [`create_account`] | admin |
//! | `GET /v1/billing/account` | [`get_account`] | admin |
//! | `PATCH /v1/billing/account` | [`update_account`] | admin |
//! | `GET /v1/tenants/{id}/billing` | [`tenant_billing`] | admin |
//! | `POST /v1/billing/subscription/enterprise` | [`create_enterprise_subscription`] | admin |
//! | `GET /v1/billing/subscription` | [`get_subscription`] | admin |
//! | `PATCH /v1/billing/subscription` | [`change_plan`] | admin |
//! | `POST /v1/billing/metered-components` | [`put_metered_components`] | admin |
//! | `GET /v1/billing/metered-components` | [`list_metered_components`] | admin |
//! | `POST /v1/billing/usage` | [`record_usage`] | developer, or a key with `usage:write` |
//! | `GET /v1/billing/usage` | [`usage_summary`] | admin |
//! | `POST /v1/billing/usage/{event_id}/void` | [`void_usage`] | admin |
//! | `POST /v1/billing/usage/{event_id}/amend` | [`amend_usage`] | admin |
//! | `GET /v1/billing/analytics/comprehensive` | [`comprehensive_analytics`] | admin |
//! | `POST /v1/billing/invoices/generate` | [`generate_invoice`] | admin |
//! | `GET /v1/billing/invoices` | [`list_invoices`] | admin |
//! | `GET /v1/billing/invoices/{id}` | [`get_invoice`] | admin |
//! | `POST /v1/billing/invoices/{id}/finalize` | [`finalize_invoice`] | admin |
//! | `POST /v1/billing/invoices/{id}/void` | [`void_invoice`] | admin |
//! | `POST /v1/billing/invoices/{id}/mark_paid` | [`mark_invoice_paid`] | admin |

pub mod invoicing;
pub mod pdf;

use axum::{
    Json, Router,
    extract::State,
    http::{HeaderMap, StatusCode},
    routing::{get, post},
};
use serde::Serialize;
use shared::{
    AppError, AppResult, AppState,
    audit::AuditContext,
    auth::{Principal, Role, Scope, TenantScope},
    domain::{
        billing::{
            account::{BillingAccount, BillingAccountPatch, BillingAccountRequest},
            analytics::{AnalyticsQuery, AnalyticsView, analytics},
            component::{MeteredComponent, MeteredComponentsRequest},
            invoice::{GenerateInvoiceRequest, InvoiceStatus, InvoiceView},
            subscription::{EnterpriseSubscriptionRequest, PlanChangeRequest, Subscription},
            usage::{
                AmendUsageRequest, UsageRequest, UsageSummaryView, VoidUsageRequest, period_of,
                usage_summary as summarize,
            },
        },
        ids::{InvoiceId, TenantId},
    },
    http::{Page, QueryParams},
    idempotency::Answer,
    store::billing::RecordedUsage,
    store::billing::{BILLING_ACCOUNT, INVOICE, SUBSCRIPTION, USAGE_EVENT, UsageEventView},
    web::extract::{Body, ListQuery, OptionalBody, PathIds},
};
use uuid::Uuid;

/// Seed 000's `resource` for every billing denial (its RBAC test reads it).
pub const BILLING_RESOURCE: &str = "billing_information";

/// This group's part of the OpenAPI document (`shared::web::openapi`).
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        create_account, get_account, update_account, tenant_billing,
        create_enterprise_subscription, get_subscription, change_plan,
        put_metered_components, list_metered_components,
        record_usage, usage_summary, void_usage, amend_usage, comprehensive_analytics,
        generate_invoice, list_invoices, get_invoice, finalize_invoice, void_invoice, mark_invoice_paid,
    ),
    components(schemas(InvoiceStatus)),
    tags((name = "billing", description = "Usage-based billing (seed 000): the billing account, the subscription and its limits, metered components with graduated or volume tiers, usage, analytics and invoices with PDFs. Money is a decimal string with 2 places; quantities are numbers"))
)]
pub struct ApiDoc;

/// This group's routes; its Lambda and the local server add the shared layers.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/billing/account", post(create_account).get(get_account).patch(update_account))
        .route("/v1/tenants/{id}/billing", get(tenant_billing))
        .route("/v1/billing/subscription/enterprise", post(create_enterprise_subscription))
        .route("/v1/billing/subscription", get(get_subscription).patch(change_plan))
        .route("/v1/billing/metered-components", post(put_metered_components).get(list_metered_components))
        .route("/v1/billing/usage", post(record_usage).get(usage_summary))
        .route("/v1/billing/usage/{event_id}/void", post(void_usage))
        .route("/v1/billing/usage/{event_id}/amend", post(amend_usage))
        .route("/v1/billing/analytics/comprehensive", get(comprehensive_analytics))
        .route("/v1/billing/invoices/generate", post(generate_invoice))
        .route("/v1/billing/invoices", get(list_invoices))
        .route("/v1/billing/invoices/{id}", get(get_invoice))
        .route("/v1/billing/invoices/{id}/finalize", post(finalize_invoice))
        .route("/v1/billing/invoices/{id}/void", post(void_invoice))
        .route("/v1/billing/invoices/{id}/mark_paid", post(mark_invoice_paid))
}

/// A body's `tenant_id` (the seeds send one) must be the caller's own: the
/// tenant comes from the credentials, and a body naming another is refused
/// like a foreign `X-Tenant-ID`.
fn same_tenant(scope: &TenantScope, named: Option<TenantId>) -> AppResult<()> {
    match named {
        Some(TenantId(id)) if id != scope.tenant_id() => Err(AppError::forbidden(
            "tenant_mismatch",
            "the body's tenant_id names another tenant than the credentials'",
        )),
        _ => Ok(()),
    }
}

// ----- account -------------------------------------------------------------

/// Creates the tenant's billing account (seed 000 scenario 1 step 3).
///
/// Admins only; a developer gets seed 000's 403 `insufficient_permissions`
/// (`resource: billing_information`). 409 when it exists (change it with
/// `PATCH`).
#[utoipa::path(post, path = "/v1/billing/account", tag = "billing", security(("bearer" = ["admin"]), ("api_key" = ["billing:write"])),
    request_body(content = BillingAccountRequest),
    responses(
        (status = 201, description = "The billing account", body = BillingAccount),
        (status = 409, description = "Conflict\n\n- `conflict`: the tenant has a billing account already\n- `idempotency_key_in_use`", body = shared::web::openapi::ApiError),
    ))]
async fn create_account(
    State(state): State<AppState>,
    principal: Principal,
    audit: AuditContext,
    body: Result<Body<BillingAccountRequest>, AppError>,
) -> AppResult<(StatusCode, Json<BillingAccount>)> {
    let scope = principal.require(Role::Admin, Scope::BillingWrite, BILLING_RESOURCE)?;
    let Body(request) = body?;
    same_tenant(&scope, request.tenant_id)?;
    let account = BillingAccount::from_request(request, shared::domain::now());
    if !state.store.create_billing_account(&scope, &account, &audit).await? {
        return Err(AppError::conflict("the tenant has a billing account already: change it with PATCH"));
    }
    Ok((StatusCode::CREATED, Json(account)))
}

/// The tenant's billing account.
#[utoipa::path(get, path = "/v1/billing/account", tag = "billing", security(("bearer" = ["admin"]), ("api_key" = ["billing:read"])),
    responses(
        (status = 200, description = "The billing account", body = BillingAccount),
        (status = 404, description = "Not found\n\n- `not_found`: the tenant has no billing account yet", body = shared::web::openapi::ApiError),
    ))]
async fn get_account(State(state): State<AppState>, principal: Principal) -> AppResult<Json<BillingAccount>> {
    let scope = principal.require(Role::Admin, Scope::BillingRead, BILLING_RESOURCE)?;
    let account = state.store.get_billing_account(&scope).await?.ok_or_else(|| AppError::not_found(BILLING_ACCOUNT))?;
    Ok(Json(account))
}

/// Changes the billing account: only the fields sent (`null` clears an
/// optional one).
#[utoipa::path(patch, path = "/v1/billing/account", tag = "billing", security(("bearer" = ["admin"]), ("api_key" = ["billing:write"])),
    request_body(content = BillingAccountPatch),
    responses(
        (status = 200, description = "The billing account after the change", body = BillingAccount),
        (status = 404, description = "Not found\n\n- `not_found`: the tenant has no billing account yet", body = shared::web::openapi::ApiError),
    ))]
async fn update_account(
    State(state): State<AppState>,
    principal: Principal,
    audit: AuditContext,
    body: Result<Body<BillingAccountPatch>, AppError>,
) -> AppResult<Json<BillingAccount>> {
    let scope = principal.require(Role::Admin, Scope::BillingWrite, BILLING_RESOURCE)?;
    let Body(patch) = body?;
    let updated = state
        .store
        .update_billing_account(
            &scope,
            |old| {
                let mut account = old.clone();
                account.apply(patch.clone(), shared::domain::now())?;
                Ok(account)
            },
            &audit,
        )
        .await?
        .ok_or_else(|| AppError::not_found(BILLING_ACCOUNT))?;
    Ok(Json(updated))
}

/// A tenant's billing at a glance: account, subscription, this period.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TenantBilling {
    pub tenant_id: Uuid,
    /// `null` until the billing account is created.
    #[schema(required = true)]
    pub account: Option<BillingAccount>,
    /// `null` while the tenant is on its plan's list price without a contract.
    #[schema(required = true)]
    pub subscription: Option<Subscription>,
    pub usage: UsageSummaryView,
}

/// A tenant's billing information (seed 000 scenario 3 step 4).
///
/// Admins of the tenant (or a platform admin); a developer gets seed 000's
/// 403 `insufficient_permissions` with `resource: billing_information`.
#[utoipa::path(get, path = "/v1/tenants/{id}/billing", tag = "billing", security(("bearer" = ["admin"]), ("api_key" = ["billing:read"])),
    params(("id" = Uuid, Path, description = "The tenant")),
    responses(
        (status = 200, description = "The account, the subscription and this period's usage", body = TenantBilling),
        (status = 404, description = "Not found\n\n- `not_found`: no such tenant (or another tenant's)", body = shared::web::openapi::ApiError),
    ))]
async fn tenant_billing(
    State(state): State<AppState>,
    principal: Principal,
    path: Result<PathIds<TenantId>, AppError>,
) -> AppResult<Json<TenantBilling>> {
    let PathIds(TenantId(id)) = path?;
    let scope = principal.require_in(id, Role::Admin, Scope::BillingRead, BILLING_RESOURCE)?;
    let (snapshot, usage) = current_usage(&state, &scope).await?;
    Ok(Json(TenantBilling { tenant_id: id, account: snapshot.account, subscription: snapshot.subscription, usage }))
}

// ----- subscription --------------------------------------------------------

/// Subscribes the tenant to a custom enterprise contract (seed 000
/// scenario 1 step 4).
///
/// Its `custom_limits` become the tenant's limits at once, in the same
/// transaction: `users`, `projects` and the monthly meters are enforced and
/// shown by `GET /v1/tenants/me/usage`; `storage_tb` is kept as `storage_gb`
/// (x 1,000); `"unlimited"` lifts a limit. Replaces the current
/// subscription, if any.
#[utoipa::path(post, path = "/v1/billing/subscription/enterprise", tag = "billing", security(("bearer" = ["admin"]), ("api_key" = ["billing:write"])),
    request_body(content = EnterpriseSubscriptionRequest),
    responses(
        (status = 201, description = "The subscription, active", body = Subscription),
        (status = 409, description = "Conflict\n\n- `conflict`: changed by another request meanwhile: retry\n- `idempotency_key_in_use`", body = shared::web::openapi::ApiError),
    ))]
async fn create_enterprise_subscription(
    State(state): State<AppState>,
    principal: Principal,
    audit: AuditContext,
    body: Result<Body<EnterpriseSubscriptionRequest>, AppError>,
) -> AppResult<(StatusCode, Json<Subscription>)> {
    let scope = principal.require(Role::Admin, Scope::BillingWrite, BILLING_RESOURCE)?;
    let Body(request) = body?;
    same_tenant(&scope, request.tenant_id)?;
    let now = shared::domain::now();
    let subscription =
        state.store.put_subscription(&scope, |old| Subscription::enterprise(request.clone(), old, now), &audit).await?;
    Ok((StatusCode::CREATED, Json(subscription)))
}

/// The tenant's subscription.
#[utoipa::path(get, path = "/v1/billing/subscription", tag = "billing", security(("bearer" = ["admin"]), ("api_key" = ["billing:read"])),
    responses(
        (status = 200, description = "The subscription", body = Subscription),
        (status = 404, description = "Not found\n\n- `not_found`: the tenant has no subscription (it is on its plan's list price)", body = shared::web::openapi::ApiError),
    ))]
async fn get_subscription(State(state): State<AppState>, principal: Principal) -> AppResult<Json<Subscription>> {
    let scope = principal.require(Role::Admin, Scope::BillingRead, BILLING_RESOURCE)?;
    let subscription = state.store.get_subscription(&scope).await?.ok_or_else(|| AppError::not_found(SUBSCRIPTION))?;
    Ok(Json(subscription))
}

/// Moves the tenant to a catalogue plan (`free`, `professional`,
/// `enterprise`): its limits become the plan's at once; a custom contract's
/// limits are dropped.
#[utoipa::path(patch, path = "/v1/billing/subscription", tag = "billing", security(("bearer" = ["admin"]), ("api_key" = ["billing:write"])),
    request_body(content = PlanChangeRequest),
    responses(
        (status = 200, description = "The subscription after the change", body = Subscription),
        (status = 409, description = "Conflict\n\n- `conflict`: changed by another request meanwhile: retry", body = shared::web::openapi::ApiError),
    ))]
async fn change_plan(
    State(state): State<AppState>,
    principal: Principal,
    audit: AuditContext,
    body: Result<Body<PlanChangeRequest>, AppError>,
) -> AppResult<Json<Subscription>> {
    let scope = principal.require(Role::Admin, Scope::BillingWrite, BILLING_RESOURCE)?;
    let Body(request) = body?;
    let now = shared::domain::now();
    let subscription =
        state.store.put_subscription(&scope, |old| Subscription::plan_change(&request, old, now), &audit).await?;
    Ok(Json(subscription))
}

// ----- metered components --------------------------------------------------

/// The tenant's metered components.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Components {
    pub components: Vec<MeteredComponent>,
}

/// Creates or replaces metered components (seed 000 scenario 4 step 1).
///
/// Each has tiers ascending without gaps, the last open (`{"above": N}`),
/// and a `tiers_mode`: `graduated` (the default: each tier prices the units
/// inside it) or `volume` (the tier the total falls in prices every unit).
/// Components are replaced whole, by name, all in one transaction.
#[utoipa::path(post, path = "/v1/billing/metered-components", tag = "billing", security(("bearer" = ["admin"]), ("api_key" = ["billing:write"])),
    request_body(content = MeteredComponentsRequest),
    responses((status = 201, description = "The components as stored", body = Components)))]
async fn put_metered_components(
    State(state): State<AppState>,
    principal: Principal,
    audit: AuditContext,
    body: Result<Body<MeteredComponentsRequest>, AppError>,
) -> AppResult<(StatusCode, Json<Components>)> {
    let scope = principal.require(Role::Admin, Scope::BillingWrite, BILLING_RESOURCE)?;
    let Body(request) = body?;
    same_tenant(&scope, request.tenant_id)?;
    let components = request.validate(shared::domain::now())?;
    state.store.put_components(&scope, &components, &audit).await?;
    Ok((StatusCode::CREATED, Json(Components { components })))
}

/// The tenant's metered components, by name.
#[utoipa::path(get, path = "/v1/billing/metered-components", tag = "billing", security(("bearer" = ["admin"]), ("api_key" = ["billing:read"])),
    responses((status = 200, description = "Every component", body = Components)))]
async fn list_metered_components(State(state): State<AppState>, principal: Principal) -> AppResult<Json<Components>> {
    let scope = principal.require(Role::Admin, Scope::BillingRead, BILLING_RESOURCE)?;
    Ok(Json(Components { components: state.store.list_components(&scope).await? }))
}

// ----- usage -----------------------------------------------------------------

/// One record of a usage post, as counted.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RecordedUsageView {
    pub event_id: String,
    pub metric_type: String,
    /// The record's quantity.
    #[schema(value_type = f64)]
    pub quantity: serde_json::Number,
    /// Where the usage counts: the record's `timestamp`, or when it arrived
    /// (no `timestamp`, or one more than 35 days back).
    pub timestamp: String,
    /// What the caller reported as `timestamp` (when it arrived, if none).
    pub reported_at: String,
    /// `true`: reported more than 35 days back, so counted in the current
    /// period rather than its own (which may be invoiced already).
    pub late: bool,
    /// `true`: an event with this id was recorded before; this one counted
    /// nothing.
    pub duplicate: bool,
}

/// What a usage post recorded.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UsageRecorded {
    /// Records counted now.
    pub recorded: usize,
    /// Records whose `event_id` was counted before.
    pub duplicates: usize,
    pub records: Vec<RecordedUsageView>,
}

/// Records usage (seed 000 scenario 4 step 2).
///
/// A single record (the seed's body) or `{"records": [...]}` with up to 100.
/// `metric_type` is a metered component's name or a built-in meter
/// (`api_calls`, `ai_requests`, `storage`). Each record counts at most once
/// by its `event_id` (absent: derived from the `Idempotency-Key` and the
/// record's position, else a new id): a repeat answers `duplicate: true`.
/// `timestamp` up to 35 days back lands in its own hour and period; older
/// usage counts now (`late: true`; its own period may be invoiced already);
/// at most 5 minutes ahead. Read back at once with
/// `GET /v1/billing/usage`: no delay.
#[utoipa::path(post, path = "/v1/billing/usage", tag = "billing", security(("bearer" = ["developer"]), ("api_key" = ["usage:write"])),
    request_body(content = UsageRequest),
    responses(
        (status = 201, description = "What was counted", body = UsageRecorded),
        (status = 409, description = "Conflict\n\n- `conflict`: the same event ids are being recorded concurrently: retry\n- `idempotency_key_in_use`", body = shared::web::openapi::ApiError),
    ))]
async fn record_usage(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    body: Result<Body<UsageRequest>, AppError>,
) -> AppResult<Answer> {
    let scope = principal.require(Role::Developer, Scope::UsageWrite, USAGE_EVENT)?;
    let Body(request) = body?;
    let idempotency_key = headers.get("idempotency-key").and_then(|v| v.to_str().ok());
    let records = request.records(shared::domain::now(), idempotency_key)?;
    // The answer each commit attempt would give, prepared before it: an
    // Idempotency-Key's record stores it in the usage's transaction.
    let prepare = |outcomes: &[RecordedUsage]| usage_answer(&records, outcomes)?.prepare();
    let outcomes = state.store.record_usage(&scope, &records, &prepare).await?;
    usage_answer(&records, &outcomes)
}

fn usage_answer(
    records: &[shared::domain::billing::usage::UsageRecord],
    outcomes: &[RecordedUsage],
) -> AppResult<Answer> {
    let views: Vec<RecordedUsageView> = records
        .iter()
        .zip(outcomes)
        .map(|(record, outcome)| RecordedUsageView {
            event_id: record.event_id.clone(),
            metric_type: record.metric.clone(),
            quantity: shared::domain::billing::money::quantity_json(record.quantity),
            timestamp: shared::domain::rfc3339(record.at),
            reported_at: shared::domain::rfc3339(record.reported_at),
            late: record.late(),
            duplicate: outcome.duplicate,
        })
        .collect();
    let duplicates = views.iter().filter(|v| v.duplicate).count();
    Answer::json(StatusCode::CREATED, &UsageRecorded { recorded: views.len() - duplicates, duplicates, records: views })
}

/// The snapshot's one Query, and the summary it makes with the tenant's
/// limits (from the tenant policy the credentials' check just cached).
async fn current_usage(
    state: &AppState,
    scope: &TenantScope,
) -> AppResult<(shared::store::billing::BillingSnapshot, UsageSummaryView)> {
    let now = shared::domain::now();
    let snapshot = state.store.billing_snapshot(scope, &period_of(now)).await?;
    let limits = state.store.tenant_policy(scope).await?.limits;
    let base = snapshot.subscription.as_ref().map(|s| s.base_monthly_amount);
    let summary = summarize(now, &snapshot.period_totals, snapshot.storage_bytes, &snapshot.components, &limits, base);
    Ok((snapshot, summary))
}

/// The current period's usage (seed 000's `current_period`).
///
/// Per meter and component: the quantity so far, its amount, the projected
/// end-of-period quantity and amount (linear from the time elapsed), and the
/// share of its limit. Current right after a `POST /v1/billing/usage`; API
/// calls (counted from the rate-limit write by the billing worker) and
/// storage (sampled hourly) lag by seconds and an hour.
#[utoipa::path(get, path = "/v1/billing/usage", tag = "billing", security(("bearer" = ["admin"]), ("api_key" = ["billing:read"])),
    responses((status = 200, description = "This period's usage", body = UsageSummaryView)))]
async fn usage_summary(State(state): State<AppState>, principal: Principal) -> AppResult<Json<UsageSummaryView>> {
    let scope = principal.require(Role::Admin, Scope::BillingRead, BILLING_RESOURCE)?;
    Ok(Json(current_usage(&state, &scope).await?.1))
}

/// A usage event id from the path.
fn event_id_of(raw: &str) -> AppResult<String> {
    let valid = (1..=128).contains(&raw.len())
        && raw.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'));
    if valid { Ok(raw.to_owned()) } else { Err(AppError::not_found(USAGE_EVENT)) }
}

/// Voids a usage event: its quantity leaves its hour and period (an
/// invoice finalized before keeps what it billed).
#[utoipa::path(post, path = "/v1/billing/usage/{event_id}/void", tag = "billing", security(("bearer" = ["admin"]), ("api_key" = ["billing:write"])),
    params(("event_id" = String, Path, description = "The usage event's id")),
    request_body(content = Option<VoidUsageRequest>),
    responses(
        (status = 200, description = "The event, voided", body = UsageEventView),
        (status = 404, description = "Not found\n\n- `not_found`: no such usage event", body = shared::web::openapi::ApiError),
        (status = 409, description = "Conflict\n\n- `invalid_state`: voided already", body = shared::web::openapi::ApiError),
    ))]
async fn void_usage(
    State(state): State<AppState>,
    principal: Principal,
    audit: AuditContext,
    axum::extract::Path(event_id): axum::extract::Path<String>,
    body: Result<OptionalBody<VoidUsageRequest>, AppError>,
) -> AppResult<Json<UsageEventView>> {
    let scope = principal.require(Role::Admin, Scope::BillingWrite, BILLING_RESOURCE)?;
    let event_id = event_id_of(&event_id)?;
    let OptionalBody(request) = body?;
    let reason = request.and_then(|r| r.reason);
    let event = state
        .store
        .change_usage_event(&scope, &event_id, None, reason.as_deref(), &audit)
        .await?
        .ok_or_else(|| AppError::not_found(USAGE_EVENT))?;
    Ok(Json(event))
}

/// Amends a usage event's quantity: its hour and period get the difference.
#[utoipa::path(post, path = "/v1/billing/usage/{event_id}/amend", tag = "billing", security(("bearer" = ["admin"]), ("api_key" = ["billing:write"])),
    params(("event_id" = String, Path, description = "The usage event's id")),
    request_body(content = AmendUsageRequest),
    responses(
        (status = 200, description = "The event, amended", body = UsageEventView),
        (status = 404, description = "Not found\n\n- `not_found`: no such usage event", body = shared::web::openapi::ApiError),
        (status = 409, description = "Conflict\n\n- `invalid_state`: the event was voided", body = shared::web::openapi::ApiError),
    ))]
async fn amend_usage(
    State(state): State<AppState>,
    principal: Principal,
    audit: AuditContext,
    axum::extract::Path(event_id): axum::extract::Path<String>,
    body: Result<Body<AmendUsageRequest>, AppError>,
) -> AppResult<Json<UsageEventView>> {
    let scope = principal.require(Role::Admin, Scope::BillingWrite, BILLING_RESOURCE)?;
    let event_id = event_id_of(&event_id)?;
    let Body(request) = body?;
    let event = state
        .store
        .change_usage_event(&scope, &event_id, Some(request.quantity), request.reason.as_deref(), &audit)
        .await?
        .ok_or_else(|| AppError::not_found(USAGE_EVENT))?;
    Ok(Json(event))
}

/// Billing analytics over the last days (seed 000 scenario 4 step 3).
///
/// `period=30d` (1 to 90 days, ending now), `breakdown=daily|hourly`,
/// `timezone` (buckets are local days or hours). Computed from the hourly
/// rollups of the window and of the window before it (for the growth);
/// every figure's formula is in the schema's descriptions; what has no
/// source is `not_applicable`.
#[utoipa::path(get, path = "/v1/billing/analytics/comprehensive", tag = "billing", security(("bearer" = ["admin"]), ("api_key" = ["billing:read"])),
    params(
        ("period" = Option<String>, Query, description = "`<N>d`, 1 to 90 days (default `30d`)"),
        ("breakdown" = Option<String>, Query, description = "`daily` (default) or `hourly`"),
        ("timezone" = Option<String>, Query, description = "Where days start (default `UTC`)"),
    ),
    responses((status = 200, description = "The analytics", body = AnalyticsView)))]
async fn comprehensive_analytics(
    State(state): State<AppState>,
    principal: Principal,
    QueryParams(params): QueryParams,
) -> AppResult<Json<AnalyticsView>> {
    let scope = principal.require(Role::Admin, Scope::BillingRead, BILLING_RESOURCE)?;
    let query = AnalyticsQuery::parse(&params)?;
    let now = shared::domain::now();
    let (from, to) = query.hours_to_read(now);
    let hours = state.store.hour_rollups(&scope, &from, &to).await?;
    let snapshot = state.store.billing_snapshot(&scope, &period_of(now)).await?;
    let tax_rate = snapshot.account.as_ref().map(|a| a.tax_rate_percent).unwrap_or_default();
    let base = snapshot.subscription.as_ref().map(|s| s.base_monthly_amount);
    Ok(Json(analytics(now, &query, &hours, &snapshot.components, base, tax_rate)?))
}

// ----- invoices ------------------------------------------------------------

/// Drafts an invoice for a billing period (seed 000 scenario 4 step 4).
///
/// Lines: the subscription's base price (prorated by days for a partial
/// month), then one per metered component with its tier breakdown; tax
/// (the account's `tax_rate_percent`) on the rounded subtotal. A draft can
/// be changed by voiding it and generating again; `finalize` gives it its
/// number and PDF. An account with `purchase_order_required` needs
/// `customization.purchase_order`.
#[utoipa::path(post, path = "/v1/billing/invoices/generate", tag = "billing", security(("bearer" = ["admin"]), ("api_key" = ["billing:write"])),
    request_body(content = GenerateInvoiceRequest),
    responses(
        (status = 201, description = "The draft invoice", body = InvoiceView),
        (status = 409, description = "Conflict\n\n- `idempotency_key_in_use`", body = shared::web::openapi::ApiError),
    ))]
async fn generate_invoice(
    State(state): State<AppState>,
    principal: Principal,
    audit: AuditContext,
    body: Result<Body<GenerateInvoiceRequest>, AppError>,
) -> AppResult<(StatusCode, Json<InvoiceView>)> {
    let scope = principal.require(Role::Admin, Scope::BillingWrite, BILLING_RESOURCE)?;
    let Body(request) = body?;
    same_tenant(&scope, request.tenant_id)?;
    let invoice = invoicing::draft(&state, &scope, request, &audit).await?;
    Ok((StatusCode::CREATED, Json(invoice.view(None))))
}

/// `GET /v1/billing/invoices` filters.
#[derive(Debug, eserde::Deserialize)]
#[serde(deny_unknown_fields)]
struct InvoiceFilters {
    #[serde(default)]
    #[eserde(compat)]
    status: Option<InvoiceStatus>,
}

/// The tenant's invoices, newest first (`?status=` keeps one status).
#[utoipa::path(get, path = "/v1/billing/invoices", tag = "billing", security(("bearer" = ["admin"]), ("api_key" = ["billing:read"])),
    params(("status" = Option<InvoiceStatus>, Query, description = "Only invoices in this status")),
    responses((status = 200, description = "A page of invoices, newest first", body = Page<InvoiceView>)))]
async fn list_invoices(
    State(state): State<AppState>,
    principal: Principal,
    query: Result<ListQuery<InvoiceFilters>, AppError>,
) -> AppResult<Page<InvoiceView>> {
    let scope = principal.require(Role::Admin, Scope::BillingRead, BILLING_RESOURCE)?;
    let ListQuery { page, filters } = query?;
    let (invoices, next_cursor) = state.store.list_invoices(&scope, filters.status, &page).await?;
    Ok(Page { data: invoices.iter().map(|i| i.view(None)).collect(), next_cursor })
}

/// An invoice, with a link to its PDF once finalized (valid 15 minutes).
#[utoipa::path(get, path = "/v1/billing/invoices/{id}", tag = "billing", security(("bearer" = ["admin"]), ("api_key" = ["billing:read"])),
    params(("id" = Uuid, Path, description = "The invoice")),
    responses(
        (status = 200, description = "The invoice", body = InvoiceView),
        (status = 404, description = "Not found\n\n- `not_found`: no such invoice (or another tenant's)", body = shared::web::openapi::ApiError),
    ))]
async fn get_invoice(
    State(state): State<AppState>,
    principal: Principal,
    path: Result<PathIds<InvoiceId>, AppError>,
) -> AppResult<Json<InvoiceView>> {
    let scope = principal.require(Role::Admin, Scope::BillingRead, BILLING_RESOURCE)?;
    let PathIds(InvoiceId(id)) = path?;
    let invoice = state.store.get_invoice(&scope, id).await?.ok_or_else(|| AppError::not_found(INVOICE))?;
    Ok(Json(invoicing::with_pdf(&state, &scope, invoice).await?))
}

/// Finalizes a draft: the next gapless number of the tenant's year
/// (`INV-2026-0001`, taken in the transaction that finalizes, so a retry or
/// a crash never burns one), its PDF stored and linked (`pdf_url`, 15
/// minutes). Finalizing a finalized invoice answers it again.
#[utoipa::path(post, path = "/v1/billing/invoices/{id}/finalize", tag = "billing", security(("bearer" = ["admin"]), ("api_key" = ["billing:write"])),
    params(("id" = Uuid, Path, description = "The invoice")),
    responses(
        (status = 200, description = "The finalized invoice with its PDF link", body = InvoiceView),
        (status = 404, description = "Not found\n\n- `not_found`: no such invoice", body = shared::web::openapi::ApiError),
        (status = 409, description = "Conflict\n\n- `invalid_state`: the invoice is void or paid", body = shared::web::openapi::ApiError),
    ))]
async fn finalize_invoice(
    State(state): State<AppState>,
    principal: Principal,
    audit: AuditContext,
    path: Result<PathIds<InvoiceId>, AppError>,
) -> AppResult<Json<InvoiceView>> {
    let scope = principal.require(Role::Admin, Scope::BillingWrite, BILLING_RESOURCE)?;
    let PathIds(InvoiceId(id)) = path?;
    let now = shared::domain::now();
    let finalized = state
        .store
        .finalize_invoice(&scope, id, |draft, year, seq| draft.finalized(year, seq, now), &audit)
        .await?
        .ok_or_else(|| AppError::not_found(INVOICE))?;
    Ok(Json(invoicing::with_pdf(&state, &scope, finalized.invoice).await?))
}

/// Voids an invoice (a draft, or a finalized one that is not paid; a
/// finalized one keeps its number).
#[utoipa::path(post, path = "/v1/billing/invoices/{id}/void", tag = "billing", security(("bearer" = ["admin"]), ("api_key" = ["billing:write"])),
    params(("id" = Uuid, Path, description = "The invoice")),
    request_body(content = Option<VoidUsageRequest>),
    responses(
        (status = 200, description = "The invoice, void", body = InvoiceView),
        (status = 404, description = "Not found\n\n- `not_found`: no such invoice", body = shared::web::openapi::ApiError),
        (status = 409, description = "Conflict\n\n- `invalid_state`: paid or void already", body = shared::web::openapi::ApiError),
    ))]
async fn void_invoice(
    State(state): State<AppState>,
    principal: Principal,
    audit: AuditContext,
    path: Result<PathIds<InvoiceId>, AppError>,
    body: Result<OptionalBody<VoidUsageRequest>, AppError>,
) -> AppResult<Json<InvoiceView>> {
    let scope = principal.require(Role::Admin, Scope::BillingWrite, BILLING_RESOURCE)?;
    let PathIds(InvoiceId(id)) = path?;
    let OptionalBody(request) = body?;
    let reason = request.and_then(|r| r.reason);
    let now = shared::domain::now();
    let invoice = state
        .store
        .change_invoice(&scope, id, |old| old.voided(reason.clone(), now), &audit)
        .await?
        .ok_or_else(|| AppError::not_found(INVOICE))?;
    Ok(Json(invoicing::with_pdf(&state, &scope, invoice).await?))
}

/// Marks a finalized invoice paid.
#[utoipa::path(post, path = "/v1/billing/invoices/{id}/mark_paid", tag = "billing", security(("bearer" = ["admin"]), ("api_key" = ["billing:write"])),
    params(("id" = Uuid, Path, description = "The invoice")),
    responses(
        (status = 200, description = "The invoice, paid", body = InvoiceView),
        (status = 404, description = "Not found\n\n- `not_found`: no such invoice", body = shared::web::openapi::ApiError),
        (status = 409, description = "Conflict\n\n- `invalid_state`: a draft (finalize it first) or void", body = shared::web::openapi::ApiError),
    ))]
async fn mark_invoice_paid(
    State(state): State<AppState>,
    principal: Principal,
    audit: AuditContext,
    path: Result<PathIds<InvoiceId>, AppError>,
) -> AppResult<Json<InvoiceView>> {
    let scope = principal.require(Role::Admin, Scope::BillingWrite, BILLING_RESOURCE)?;
    let PathIds(InvoiceId(id)) = path?;
    let now = shared::domain::now();
    let invoice = state
        .store
        .change_invoice(&scope, id, |old| old.paid(now), &audit)
        .await?
        .ok_or_else(|| AppError::not_found(INVOICE))?;
    Ok(Json(invoicing::with_pdf(&state, &scope, invoice).await?))
}
