//! The tenants route group (seed 002, with seeds 000 and 003's fields).
//!
//! | route | handler | who |
//! |---|---|---|
//! | `POST /v1/tenants` | [`create_tenant`] | platform admin |
//! | `GET /v1/tenants` | [`list_tenants`] | platform admin |
//! | `GET /v1/tenants/me` | [`my_tenant`] | any member |
//! | `GET /v1/tenants/me/usage` | [`my_usage`] | any member |
//! | `GET /v1/tenants/{id}` | [`get_tenant`] | members of it, platform admin |
//! | `PUT`/`PATCH /v1/tenants/{id}` | [`update_tenant`] | its admins (profile fields), platform admin (all) |
//! | `DELETE /v1/tenants/{id}` | [`delete_tenant`] | platform admin (soft delete) |
//! | `GET /v1/tenants/{id}/stats` | [`tenant_stats`] | its admins, platform admin |

use std::collections::BTreeMap;

use axum::{Json, Router, body::Bytes, extract::State, http::StatusCode, routing::get};
use serde::Serialize;
use serde_json::json;
use shared::{
    AppError, AppResult, AppState,
    audit::AuditContext,
    auth::{Principal, Role, Scope, TenantScope, proofs::NewTenant},
    domain::{
        ids::TenantId,
        plans::{QuotaStatus, effective_limits, quota_status},
        tenant::{
            Limit, OnboardingStatus, Tenant, TenantCreate, TenantIdFilter, TenantStatus, TenantStatusFilter,
            TenantType, TenantTypeFilter, TenantUpdate, TenantView, platform_only_fields_in, suffixed_slug,
        },
    },
    http::Page,
    idempotency::Answer,
    store::tenants::{CreateTenantError, TenantUsage},
    web::extract::{Body, ListQuery, PathIds, parse_body},
};
use uuid::Uuid;

/// This group's part of the OpenAPI document (`shared::web::openapi`).
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(create_tenant, list_tenants, my_tenant, my_usage, get_tenant, update_tenant, delete_tenant, tenant_stats),
    // Query parameter types: utoipa does not collect them from `params`.
    components(schemas(TenantStatusFilter, TenantTypeFilter, TenantIdFilter)),
    tags((name = "tenants", description = "Tenants (organizations): the platform admin's tenant management (seeds 002, 003, 000), a member's own tenant and its usage against the plan"))
)]
pub struct ApiDoc;

/// This group's routes; its Lambda and the local server add the shared layers.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/tenants", get(list_tenants).post(create_tenant))
        .route("/v1/tenants/me", get(my_tenant))
        .route("/v1/tenants/me/usage", get(my_usage))
        .route("/v1/tenants/{id}", get(get_tenant).put(update_tenant).patch(update_tenant).delete(delete_tenant))
        .route("/v1/tenants/{id}/stats", get(tenant_stats))
}

const RESOURCE: &str = "tenant";

async fn load(state: &AppState, scope: &TenantScope) -> AppResult<(Tenant, TenantUsage)> {
    state.store.get_tenant(scope).await?.ok_or_else(|| AppError::not_found(RESOURCE))
}

/// Creates a tenant (platform admin).
///
/// The tenant starts in `provisioning`, with `tenant.created` in the same
/// transaction; the tenant-provisioner makes it `active` and invites
/// `admin_email`. The answer's `onboarding.status` is `pending`, and
/// `Location` names the new tenant.
#[utoipa::path(post, path = "/v1/tenants", tag = "tenants", security(("bearer" = ["platform_admin"])),
    request_body(content = TenantCreate, examples(
        ("seed_002" = (summary = "Seed 002: a full tenant", value = json!({
            "name": "Université de Buea",
            "slug": "ub",
            "type": "UNIVERSITY",
            "description": "University located in Buea, capital of South West Region",
            "logo_url": "https://ub.cm/logo.png",
            "contact_email": "info@ub.cm",
            "contact_phone": "+237 987 654 321",
            "legal_status": "PUBLIC",
            "registration_number": "REG-2024-002",
            "parent_id": "123e4567-e89b-12d3-a456-426614174001",
            "max_users": 150,
            "max_diplomas": 15000,
            "storage_quota_mb": 3000,
            "security_config": {
                "tsa_enabled": true,
                "blockchain_enabled": true,
                "zero_trust_mode": true,
                "egov_link_active": true
            }
        }))),
        ("seed_002_hierarchy" = (summary = "Seed 002: the top of a hierarchy", value = json!({
            "name": "Ministry of Higher Education",
            "slug": "minesup",
            "type": "MAIN"
        }))),
        ("seed_003" = (summary = "Seed 003: name, domain and settings", value = json!({
            "name": "New Company",
            "domain": "newcompany.com",
            "settings": {
                "timezone": "UTC",
                "language": "en"
            }
        }))),
        ("seed_000_enterprise" = (summary = "Seed 000: an enterprise customer", value = json!({
            "organization_name": "Fortune 500 Corp",
            "slug": "fortune500-corp",
            "admin_email": "it-admin@fortune500.com",
            "plan": "enterprise",
            "data_residency": "us",
            "configuration": {
                "branding": {
                    "primary_color": "#1a365d",
                    "logo_url": "https://cdn.fortune500.com/logo.png",
                    "custom_domain": "leanvibe.fortune500.com"
                },
                "features": {
                    "advanced_ai_features": true,
                    "custom_workflows": true,
                    "white_label_ui": true,
                    "dedicated_support": true
                },
                "security": {
                    "sso_required": true,
                    "mfa_required": true,
                    "ip_whitelisting": ["203.0.113.0/24", "198.51.100.0/24"],
                    "session_timeout_minutes": 480
                },
                "compliance": {
                    "data_classification": "confidential",
                    "audit_logging": true,
                    "retention_policy_days": 2555,
                    "gdpr_enabled": true
                }
            }
        }))),
        ("seed_000_startup" = (summary = "Seed 000: a startup", value = json!({
            "organization_name": "TechStart Inc",
            "slug": "techstart",
            "admin_email": "founder@techstart.io",
            "plan": "professional",
            "configuration": {
                "features": {
                    "ai_features": true,
                    "team_collaboration": true,
                    "advanced_analytics": false
                }
            }
        }))),
        ("seed_000_mid_market" = (summary = "Seed 000: a mid-market customer", value = json!({
            "organization_name": "GrowthCorp",
            "slug": "growthcorp",
            "admin_email": "it@growthcorp.com",
            "plan": "enterprise",
            "configuration": {
                "features": {
                    "ai_features": true,
                    "custom_workflows": true,
                    "advanced_analytics": true,
                    "white_label_ui": false
                }
            }
        }))),
    )),
    responses(
        (status = 201, description = "Created, `provisioning`", body = TenantView,
            headers(("Location" = String, description = "The new tenant: `/v1/tenants/{id}`"))),
        (status = 404, description = "Not found\n\n- `not_found`: the `parent_id` tenant does not exist (`details.field`: `parent_id`)", body = shared::web::openapi::ApiError),
        (status = 409, description = "Conflict\n\n- `conflict`: the slug that was sent is taken (`details.field`: `slug`)\n- `idempotency_key_in_use`", body = shared::web::openapi::ApiError),
    ))]
async fn create_tenant(
    State(state): State<AppState>,
    principal: Principal,
    audit: AuditContext,
    body: Result<Body<TenantCreate>, AppError>,
) -> AppResult<Answer> {
    let admin = principal.require_platform_admin("tenants")?;
    let Body(body) = body?;
    // A slug derived from the name (seed 003 sends none) that is taken gets a
    // random suffix, a few times; a slug the caller chose is theirs to change.
    let derived = body.derives_slug();
    let mut tenant = body.into_tenant(principal.user_id())?;
    let parent = tenant.parent_id.map(|id| admin.scope_of(id));
    let mut attempt = 0;
    loop {
        // Built before each attempt's commit (the slug may change): an
        // Idempotency-Key's record stores it in the tenant's transaction
        // (shared::idempotency).
        let mut view = tenant.view();
        // Only this answer says so: provisioning has not run yet.
        view.onboarding.status = Some(OnboardingStatus::Pending);
        let answer = Answer::json(StatusCode::CREATED, &view)?.at(&format!("/v1/tenants/{}", tenant.id));
        answer.prepare()?;
        let scope = NewTenant::scope(tenant.id);
        match state.store.create_tenant(&scope, &tenant, parent.as_ref(), None, &audit).await {
            Ok(()) => return Ok(answer),
            Err(CreateTenantError::SlugTaken) if derived && attempt < 3 => {
                attempt += 1;
                tenant.slug = suffixed_slug(&tenant.name);
            }
            Err(CreateTenantError::SlugTaken) => {
                return Err(AppError::conflict(format!("slug '{}' already exists", tenant.slug))
                    .with_details(json!({"field": "slug", "slug": tenant.slug})));
            }
            Err(CreateTenantError::ParentMissing) => {
                return Err(AppError::not_found("parent tenant")
                    .with_details(json!({"resource": "parent tenant", "field": "parent_id"})));
            }
            Err(CreateTenantError::EmailTaken) => {
                return Err(AppError::conflict("email already exists"));
            }
            Err(CreateTenantError::Other(e)) => return Err(e),
        }
    }
}

/// `GET /v1/tenants` filters (seed 002): all optional, unknown ones refused.
#[derive(Debug, eserde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TenantFilters {
    #[serde(default)]
    #[eserde(compat)]
    status: Option<TenantStatus>,
    #[serde(default, rename = "type")]
    #[eserde(compat)]
    tenant_type: Option<TenantType>,
    #[serde(default)]
    #[eserde(compat)]
    parent_id: Option<TenantId>,
}

/// Lists every tenant (platform admin).
///
/// Filters: `?status=`, `?type=`, `?parent_id=` (the tenants right below
/// one); `?limit=`, `?cursor=` page.
#[utoipa::path(get, path = "/v1/tenants", tag = "tenants", security(("bearer" = ["platform_admin"])),
    params(
        ("status" = Option<TenantStatusFilter>, Query, description = "Only tenants in this status: `provisioning`, `active`, `inactive` or `suspended`"),
        ("type" = Option<TenantTypeFilter>, Query, description = "Only tenants of this type: `MAIN`, `UNIVERSITY`, `FACULTY`, `DEPARTMENT` or `INSTITUTION`"),
        ("parent_id" = Option<TenantIdFilter>, Query, description = "Only the tenants right below this one"),
    ),
    responses((status = 200, description = "A page of tenants", body = Page<TenantView>)))]
async fn list_tenants(
    State(state): State<AppState>,
    principal: Principal,
    query: Result<ListQuery<TenantFilters>, AppError>,
) -> AppResult<Page<TenantView>> {
    // Authorization first: a caller who may not list learns nothing from a
    // bad parameter.
    let proof = principal.require_platform_admin("tenants")?;
    let ListQuery { page, filters } = query?;
    let status = filters.status.map(TenantStatus::as_str);
    let tenant_type = filters.tenant_type.map(TenantType::as_str);
    let parent_id = filters.parent_id.map(|p| p.0);
    let (tenants, next_cursor) = state.store.list_tenants(&proof, status, tenant_type, parent_id, &page).await?;
    Ok(Page { data: tenants.iter().map(Tenant::view).collect(), next_cursor })
}

/// The caller's tenant.
///
/// A platform admin reads the one named by `X-Tenant-ID`.
#[utoipa::path(get, path = "/v1/tenants/me", tag = "tenants", security(("bearer" = ["user"]), ("api_key" = ["tenant:read"])),
    responses(
        (status = 200, description = "The tenant", body = TenantView),
        (status = 404, description = "Not found\n\n- `not_found`: no such tenant (a platform admin's `X-Tenant-ID` names none)", body = shared::web::openapi::ApiError),
    ))]
async fn my_tenant(State(state): State<AppState>, principal: Principal) -> AppResult<Json<TenantView>> {
    let scope = principal.require(Role::User, Scope::TenantRead, RESOURCE)?;
    let (tenant, _) = load(&state, &scope).await?;
    Ok(Json(tenant.view()))
}

/// A tenant, to its members and the platform admin.
///
/// Another tenant's id answers 404, like one that does not exist.
#[utoipa::path(get, path = "/v1/tenants/{id}", tag = "tenants", security(("bearer" = ["user"]), ("api_key" = ["tenant:read"])),
    responses((status = 200, description = "The tenant", body = TenantView)))]
async fn get_tenant(
    State(state): State<AppState>,
    principal: Principal,
    PathIds(TenantId(id)): PathIds<TenantId>,
) -> AppResult<Json<TenantView>> {
    let scope = principal.require_in(id, Role::User, Scope::TenantRead, RESOURCE)?;
    let (tenant, _) = load(&state, &scope).await?;
    Ok(Json(tenant.view()))
}

/// Updates a tenant: its admins change its profile, the platform admin any field.
///
/// `PUT` and `PATCH` are the same partial update: only the fields sent
/// change. A tenant admin who sends a field only the platform admin may
/// change is refused (403, the fields in `details.fields`) before any value
/// is checked. A tenant admin's `configuration.security.ip_whitelisting`
/// must admit the address the update comes from (400 naming the field), so
/// that nobody locks the tenant's admins out.
#[utoipa::path(method(put, patch), path = "/v1/tenants/{id}", tag = "tenants", security(("bearer" = ["admin"]), ("api_key" = ["tenant:write"])),
    request_body(content = TenantUpdate, examples(
        ("seed_002" = (summary = "Seed 002: a platform admin's update", value = json!({
            "name": "Université de Yaoundé 1 - Revised",
            "description": "Updated description",
            "max_users": 250,
            "max_diplomas": 25000,
            "storage_quota_mb": 6000,
            "contact_email": "admin@uy1.cm",
            "status": "ACTIVE"
        }))),
        ("seed_002_reactivate" = (summary = "Seed 002: reactivating a tenant", value = json!({
            "status": "ACTIVE"
        }))),
        ("seed_003" = (summary = "Seed 003: name and settings", value = json!({
            "name": "Updated Company Name",
            "settings": {
                "timezone": "America/New_York"
            }
        }))),
    )),
    responses(
        (status = 200, description = "The tenant as updated", body = TenantView),
        (status = 403, description = "Forbidden\n\n- `insufficient_permissions`: the role or API key scope is not enough, or a tenant admin sent fields only the platform admin may change (`details.fields`)\n- `insufficient_scope`: the API key lacks `tenant:write`\n- `tenant_mismatch`: `X-Tenant-ID` names another tenant than the credentials'\n- `tenant_inactive`: the tenant is suspended or deleted", body = shared::web::openapi::ApiError),
        (status = 404, description = "Not found\n\n- `not_found`: no such tenant (another tenant's id answers this too), or the new `parent_id` does not exist (`details.field`: `parent_id`)", body = shared::web::openapi::ApiError),
        (status = 409, description = "Conflict\n\n- `conflict`: the tenant is being changed by another request: retry", body = shared::web::openapi::ApiError),
    ))]
async fn update_tenant(
    State(state): State<AppState>,
    principal: Principal,
    audit: AuditContext,
    PathIds(TenantId(id)): PathIds<TenantId>,
    body: Bytes,
) -> AppResult<Json<TenantView>> {
    let scope = principal.require_in(id, Role::Admin, Scope::TenantWrite, RESOURCE)?;
    // Who may send which fields comes before what the values are: a tenant
    // admin who sends a platform field is refused (403) whatever its value,
    // so the keys are read first, then the body is parsed as `Body` does.
    let restricted = platform_only_fields_in(&body);
    let admin = if principal.is_platform_admin() { principal.require_platform_admin(RESOURCE).ok() } else { None };
    if !restricted.is_empty() && admin.is_none() {
        return Err(AppError::insufficient_permissions(
            "platform_admin",
            principal.current_role_name(),
            RESOURCE,
            principal.tenant_id(),
        )
        .with_details(json!({
            "required_role": "platform_admin",
            "current_role": principal.current_role_name(),
            "resource": RESOURCE,
            "tenant_id": principal.tenant_id(),
            "fields": restricted,
        })));
    }
    let changes = parse_body::<TenantUpdate>(&body)?.into_changes(id)?;
    // An admin who lists addresses that leave out their own would be
    // refused from the next request on, with nobody in the tenant able to
    // undo it: the list must admit the address it is sent from.
    if admin.is_none()
        && let Some(ranges) = allow_list_in(&body)
        && !shared::domain::tenant::admitted(&ranges, audit.ip_address.as_deref())
    {
        return Err(AppError::invalid_field(
            "configuration.security.ip_whitelisting",
            format!(
                "must include the address this request comes from ({}), or nobody could change it back",
                audit.ip_address.as_deref().unwrap_or("unknown")
            ),
        ));
    }
    let tenant = if changes.is_empty() {
        load(&state, &scope).await?.0
    } else {
        state
            .store
            .update_tenant(&scope, &changes, admin.as_ref(), &audit)
            .await?
            .ok_or_else(|| AppError::not_found(RESOURCE))?
    };
    Ok(Json(tenant.view()))
}

/// The `configuration.security.ip_whitelisting` a valid update body sets.
fn allow_list_in(body: &[u8]) -> Option<Vec<shared::domain::tenant::IpRange>> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    serde_json::from_value(value.pointer("/configuration/security/ip_whitelisting")?.clone()).ok()
}

/// Deletes a tenant (platform admin): a soft delete.
///
/// The tenant turns `inactive` (`tenant.deleted`); its data and children
/// remain, and its members can no longer sign in.
#[utoipa::path(delete, path = "/v1/tenants/{id}", tag = "tenants", security(("bearer" = ["platform_admin"])),
    responses(
        (status = 204, description = "The tenant is `inactive`"),
        (status = 409, description = "Conflict\n\n- `conflict`: the tenant is being changed by another request: retry", body = shared::web::openapi::ApiError),
    ))]
async fn delete_tenant(
    State(state): State<AppState>,
    principal: Principal,
    audit: AuditContext,
    PathIds(TenantId(id)): PathIds<TenantId>,
) -> AppResult<StatusCode> {
    let proof = principal.require_platform_admin(RESOURCE)?;
    let scope = proof.scope_of(id);
    if !state.store.deactivate_tenant(&scope, &audit).await? {
        return Err(AppError::not_found(RESOURCE));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v1/tenants/me/usage`: what the tenant uses against its plan's limits.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TenantUsageReport {
    pub tenant_id: Uuid,
    pub plan: String,
    pub current_usage: CurrentUsage,
    pub plan_limits: PlanLimits,
    pub quota_status: QuotaStatuses,
}

/// What the tenant uses now: seats and projects from the tenant's counters,
/// the monthly meters from this calendar month's (UTC) usage rollup
/// (`shared::store::billing`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CurrentUsage {
    /// Seats: users plus pending invitations.
    pub users: i64,
    pub pending_invitations: i64,
    pub projects: i64,
    /// AI requests this month: try-on renders and posted `ai_requests` usage.
    pub ai_requests_monthly: i64,
    /// Bytes stored under the tenant's prefix at the last hourly sample, in
    /// GB (10^9 bytes), two decimals; 0 before the first sample.
    pub storage_gb: f64,
    /// Authenticated API calls this month (counted from the rate-limit
    /// writes by the billing worker, seconds behind) plus posted `api_calls`.
    pub api_calls_monthly: i64,
}

/// The plan's limits (the tenant's own for `enterprise_custom`; `users` is
/// its `max_users`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PlanLimits {
    pub users: Limit,
    pub projects: Limit,
    pub ai_requests_monthly: Limit,
    pub storage_gb: Limit,
    pub api_calls_monthly: Limit,
}

/// Each quota's standing: `{usage_percentage, status (healthy, warning,
/// critical), available, limit}`, the last two a number or `"unlimited"`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct QuotaStatuses {
    pub users: QuotaStatus,
    pub projects: QuotaStatus,
    pub ai_requests: QuotaStatus,
    pub storage: QuotaStatus,
    pub api_calls: QuotaStatus,
}

/// The caller's tenant's usage against its plan's limits.
///
/// Seed 000's usage: seats (members and pending invitations) and projects
/// from the tenant's counters; AI requests, API calls and storage from this
/// month's usage rollup (the same figures `GET /v1/billing/usage` prices).
#[utoipa::path(get, path = "/v1/tenants/me/usage", tag = "tenants", security(("bearer" = ["user"]), ("api_key" = ["tenant:read"])),
    responses(
        (status = 200, description = "Usage, limits and each quota's standing", body = TenantUsageReport),
        (status = 404, description = "Not found\n\n- `not_found`: no such tenant (a platform admin's `X-Tenant-ID` names none)", body = shared::web::openapi::ApiError),
    ))]
async fn my_usage(State(state): State<AppState>, principal: Principal) -> AppResult<Json<TenantUsageReport>> {
    let scope = principal.require(Role::User, Scope::TenantRead, "tenant_usage")?;
    let (tenant, usage) = load(&state, &scope).await?;
    let limits = effective_limits(&tenant);
    let period = shared::domain::billing::usage::period_of(shared::domain::now());
    let (totals, storage_bytes) = state.store.period_totals(&scope, &period).await?;
    let whole = |metric: &str| totals.get(metric).and_then(|q| i64::try_from(q.trunc()).ok()).unwrap_or(0);
    let (ai_requests, api_calls) = (whole("ai_requests"), whole("api_calls"));
    let storage_bytes = storage_bytes.unwrap_or(0);
    let storage_gb = (storage_bytes as f64 / 1e7).round() / 100.0;
    Ok(Json(TenantUsageReport {
        tenant_id: tenant.id,
        plan: tenant.plan,
        current_usage: CurrentUsage {
            users: usage.user_count,
            pending_invitations: usage.pending_invitations,
            projects: usage.project_count,
            ai_requests_monthly: ai_requests,
            storage_gb,
            api_calls_monthly: api_calls,
        },
        plan_limits: PlanLimits {
            users: limits.users.into(),
            projects: limits.projects.into(),
            ai_requests_monthly: limits.ai_requests_monthly.into(),
            storage_gb: limits.storage_gb.into(),
            api_calls_monthly: limits.api_calls_monthly.into(),
        },
        quota_status: QuotaStatuses {
            users: quota_status(usage.user_count, limits.users),
            projects: quota_status(usage.project_count, limits.projects),
            ai_requests: quota_status(ai_requests, limits.ai_requests_monthly),
            // Whole GB against a limit in GB (a started GB counts).
            storage: quota_status((storage_bytes + 999_999_999) / 1_000_000_000, limits.storage_gb),
            api_calls: quota_status(api_calls, limits.api_calls_monthly),
        },
    }))
}

/// `GET /v1/tenants/{id}/stats` (seed 002). Diplomas and storage are not
/// metered yet: they read 0.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TenantStats {
    pub tenant_id: Uuid,
    /// Members (pending invitations not included).
    pub total_users: i64,
    pub pending_invitations: i64,
    pub max_users: i64,
    /// Seats taken (members and pending invitations) as a percentage of
    /// `max_users`, two decimals.
    pub users_percentage: f64,
    pub total_diplomas: i64,
    pub max_diplomas: i64,
    pub diplomas_percentage: f64,
    pub storage_used_mb: i64,
    pub storage_quota_mb: i64,
    pub storage_percentage: f64,
    /// Members by role name.
    pub user_count_by_role: BTreeMap<String, i64>,
    pub diploma_count_by_status: BTreeMap<String, i64>,
    pub last_diploma_created: Option<String>,
    /// When the last member joined (RFC 3339).
    pub last_user_added: Option<String>,
}

/// A tenant's statistics, to its admins and the platform admin.
///
/// Seed 002's stats: seats against `max_users` and members by role.
/// Diplomas and storage are not metered: they read 0.
#[utoipa::path(get, path = "/v1/tenants/{id}/stats", tag = "tenants", security(("bearer" = ["admin"]), ("api_key" = ["tenant:read"])),
    responses((status = 200, description = "The statistics", body = TenantStats)))]
async fn tenant_stats(
    State(state): State<AppState>,
    principal: Principal,
    PathIds(TenantId(id)): PathIds<TenantId>,
) -> AppResult<Json<TenantStats>> {
    // Another tenant is 404 like a missing one; then the admin role.
    let scope = principal.require_in(id, Role::User, Scope::TenantRead, RESOURCE)?;
    principal.require(Role::Admin, Scope::TenantRead, "tenant_stats")?;
    let (tenant, usage) = load(&state, &scope).await?;
    let percentage = |used: i64, max: i64| {
        if max > 0 { (used as f64 * 10_000.0 / max as f64).round() / 100.0 } else { 0.0 }
    };
    Ok(Json(TenantStats {
        tenant_id: tenant.id,
        total_users: usage.user_count - usage.pending_invitations,
        pending_invitations: usage.pending_invitations,
        max_users: tenant.max_users,
        users_percentage: percentage(usage.user_count, tenant.max_users),
        total_diplomas: 0,
        max_diplomas: tenant.max_diplomas,
        diplomas_percentage: 0.0,
        storage_used_mb: 0,
        storage_quota_mb: tenant.storage_quota_mb,
        storage_percentage: 0.0,
        user_count_by_role: usage
            .users_by_role
            .iter()
            .map(|(role, count)| (role.as_str().to_owned(), *count))
            .collect(),
        diploma_count_by_status: BTreeMap::new(),
        last_diploma_created: None,
        last_user_added: usage.last_user_added,
    }))
}
