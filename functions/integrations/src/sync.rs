//! Sync connections (seed 001, "Data Synchronization"): a provider's paged
//! JSON API read into the tenant's customers, users, projects or tasks, or
//! written on to another provider's API. The API keeps the
//! definitions, starts runs (one at a time per connection) and shows their
//! history, progress and conflicts; the integrations worker runs them page
//! by page (functions/integrations-worker/src/sync.rs). docs/integrations.md
//! has the design.

use axum::{Json, extract::State, http::StatusCode};
use serde::Serialize;
use serde_json::{Map, Value, json};
use shared::{
    AppError, AppResult, AppState,
    audit::AuditContext,
    auth::{Principal, Role, Scope, TenantScope},
    domain::{
        ids::{IntegrationProviderId, ProjectId, SyncConnectionId, SyncRunId},
        now_rfc3339,
        schedule::{ScheduleExpression, ScheduleTarget},
        sync::{
            ConflictResolution, MAX_MAPPED_FIELDS, SyncConflict, SyncConnection, SyncConnectionView, SyncMode,
            SyncRunView, SyncSource, TargetConfig, TargetType,
        },
        user::{RoleName, rules},
        values::{Clearable, Settable, Text},
    },
    error::FieldError,
    http::Page,
    schedules::ScheduleChange,
    store::sync::{SYNC_CONFLICT_RESOURCE, SYNC_CONNECTION_RESOURCE, SYNC_RUN_RESOURCE},
    sync_runs::{self, Started},
    sync_targets::{PlatformTarget, Written},
    web::extract::{Body, ListQuery, PathIds},
};
use uuid::Uuid;

type ConnectionName = Text<1, 100>;
type FieldName = Text<1, 100>;
type ApiPath = Text<1, 500>;
type ScheduleText = Text<1, 100>;

/// Where a connection reads: a provider's paged JSON API. Every field but
/// `provider_id` and `path` has the default shown.
#[derive(Debug, eserde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SourceBody {
    /// An integration provider of the tenant with an `api_base_url`.
    #[eserde(compat)]
    #[schema(value_type = String, format = Uuid)]
    pub provider_id: IntegrationProviderId,
    /// Appended to the provider's `api_base_url`; starts with `/`.
    #[eserde(compat)]
    #[schema(value_type = String, min_length = 1, max_length = 500)]
    pub path: ApiPath,
    /// `data`: the answer's field holding the page's records.
    #[serde(default)]
    #[eserde(compat)]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 100)]
    pub records_field: Option<FieldName>,
    /// `next_cursor`: the answer's field with the next page's cursor.
    #[serde(default)]
    #[eserde(compat)]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 100)]
    pub next_cursor_field: Option<FieldName>,
    /// `cursor`: the query parameter that carries it.
    #[serde(default)]
    #[eserde(compat)]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 100)]
    pub cursor_param: Option<FieldName>,
    /// `updated_since`: the query parameter an incremental or delta run
    /// passes its checkpoint in.
    #[serde(default)]
    #[eserde(compat)]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 100)]
    pub since_param: Option<FieldName>,
    /// `id`: the record's identifying field (a dotted path): a customer's
    /// `external_id`, the id other targets derive their record's from, a
    /// provider target's `<path>/<key>`.
    #[serde(default)]
    #[eserde(compat)]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 100)]
    pub primary_key: Option<FieldName>,
    /// The record's field that grows when it changes (an RFC 3339 time or a
    /// number). Required by `incremental`, `delta` and `latest_timestamp`.
    #[serde(default)]
    #[eserde(compat)]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 100)]
    pub cursor_field: Option<FieldName>,
    /// `deleted`: in a delta run, a record whose field is `true` removes
    /// its target record.
    #[serde(default)]
    #[eserde(compat)]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 100)]
    pub deleted_field: Option<FieldName>,
}

/// Where a connection writes, beyond its `target_type`: each field is one
/// target's.
#[derive(Debug, Default, eserde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TargetBody {
    /// `tasks`: the tenant's project the tasks go in (required).
    #[serde(default)]
    #[eserde(compat)]
    #[schema(value_type = Option<String>, format = Uuid)]
    pub project_id: Option<ProjectId>,
    /// `users`: the role of the users a run creates: `user` (the default),
    /// `developer` or `admin`, at most the caller's own.
    #[serde(default)]
    #[eserde(compat)]
    #[schema(value_type = Option<String>, example = "user")]
    pub role: Option<RoleName>,
    /// `provider`: the tenant's integration provider whose API is written
    /// (required; it needs an `api_base_url`).
    #[serde(default)]
    #[eserde(compat)]
    #[schema(value_type = Option<String>, format = Uuid)]
    pub provider_id: Option<IntegrationProviderId>,
    /// `provider`: appended to its `api_base_url`, starts with `/`
    /// (required); each record is `PUT` to `<path>/<key>` with the mapped
    /// body, a delta deletion is a `DELETE` there.
    #[serde(default)]
    #[eserde(compat)]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 500, example = "/contacts")]
    pub path: Option<ApiPath>,
}

/// A new connection: seed 001's `name`, `source_type`, `target_type`,
/// `sync_mode`, `conflict_resolution`, `source`, `target`, and the field
/// mapping.
#[derive(Debug, eserde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSyncConnection {
    #[eserde(compat)]
    #[schema(value_type = String, min_length = 1, max_length = 100)]
    pub name: ConnectionName,
    /// `api` (the default and only one so far): a provider's paged JSON API.
    #[serde(default)]
    #[eserde(compat)]
    #[schema(value_type = Option<String>, example = "api")]
    pub source_type: Option<String>,
    /// Where each record goes, by its primary key: `customers` (the
    /// default; the key is the customer's `external_id`), `users`,
    /// `projects`, `tasks` (the key derives the record's id), or
    /// `provider` (another provider's API). Fixed once created.
    #[serde(default)]
    #[eserde(compat)]
    #[schema(value_type = Option<TargetType>, example = "customers")]
    pub target_type: Option<String>,
    /// The target's options: `project_id` (tasks), `role` (users),
    /// `provider_id` and `path` (provider).
    #[serde(default)]
    #[eserde(compat)]
    pub target: Option<TargetBody>,
    /// `full`, `incremental` or `delta` (seed 001's `full_sync`,
    /// `incremental_sync`, `delta_sync` too).
    #[eserde(compat)]
    #[schema(value_type = String, example = "incremental")]
    pub sync_mode: String,
    /// `manual` (the default when there is no `schedule`): runs start from
    /// the API. `scheduled`: runs also start on `schedule`. `real_time`:
    /// every inbound event of the provider (its body's `records_field`
    /// array, or the body as one record) is applied when it arrives.
    #[serde(default)]
    #[eserde(compat)]
    #[schema(value_type = Option<String>, example = "scheduled")]
    pub frequency: Option<String>,
    /// An EventBridge Scheduler expression, UTC: `rate(<n> minutes|hours|days)`
    /// (at least a minute) or `cron(<minutes> <hours> <day-of-month> <month>
    /// <day-of-week> <year>)`. Each firing starts a run unless one is in
    /// progress.
    #[serde(default)]
    #[eserde(compat)]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 100, example = "rate(1 hour)")]
    pub schedule: Option<ScheduleText>,
    /// `source_wins` when left out (and the only rule of a provider
    /// target, which cannot be read back).
    #[serde(default)]
    #[eserde(compat)]
    pub conflict_resolution: Option<ConflictResolution>,
    pub source: SourceBody,
    /// Target field -> the record's field (a dotted path). Customers:
    /// `email`, `name`, `metadata.<key>`; users: `email`, `first_name`,
    /// `last_name`, `is_active`; projects: `name`, `description`,
    /// `priority`, `status`; tasks: `title`, `description`, `status`,
    /// `priority`, `due_date`; provider: any body field (`address.city`
    /// nests). When left out, the target's main fields from same-named
    /// record fields (`{"email": "email", "name": "name"}` for customers);
    /// a provider target requires one.
    #[serde(default)]
    #[eserde(compat)]
    #[schema(value_type = Option<Object>)]
    pub field_mapping: Option<Map<String, Value>>,
    #[serde(default)]
    #[eserde(compat)]
    pub is_active: Option<bool>,
}

/// A connection's partial update; `source` is replaced whole.
#[derive(Debug, Default, eserde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SyncConnectionUpdate {
    #[serde(default)]
    #[eserde(compat)]
    #[schema(value_type = String, min_length = 1, max_length = 100)]
    pub name: Settable<ConnectionName>,
    #[serde(default)]
    #[eserde(compat)]
    #[schema(value_type = String)]
    pub sync_mode: Settable<String>,
    #[serde(default)]
    #[eserde(compat)]
    #[schema(value_type = ConflictResolution)]
    pub conflict_resolution: Settable<ConflictResolution>,
    #[serde(default)]
    #[eserde(compat)]
    #[schema(value_type = SourceBody)]
    pub source: Settable<SourceBody>,
    #[serde(default)]
    #[eserde(compat)]
    #[schema(value_type = Object)]
    pub field_mapping: Settable<Map<String, Value>>,
    #[serde(default)]
    #[eserde(compat)]
    #[schema(value_type = bool)]
    pub is_active: Settable<bool>,
    /// `manual`, `scheduled` (with `schedule`, here or already set) or
    /// `real_time`.
    #[serde(default)]
    #[eserde(compat)]
    #[schema(value_type = String, example = "real_time")]
    pub frequency: Settable<String>,
    /// A new schedule expression (the connection becomes `scheduled`);
    /// `null` makes it manual.
    #[serde(default)]
    #[eserde(compat)]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 100)]
    pub schedule: Clearable<ScheduleText>,
}

fn require(principal: &Principal) -> AppResult<TenantScope> {
    principal.require(Role::Admin, Scope::IntegrationsManage, SYNC_CONNECTION_RESOURCE)
}

fn text_or(value: Option<FieldName>, default: &str) -> String {
    value.map_or_else(|| default.to_owned(), FieldName::into_inner)
}

fn check_source(body: SourceBody, errors: &mut Vec<FieldError>) -> SyncSource {
    if !body.path.as_str().starts_with('/') {
        errors.push(FieldError::new("source.path", "must start with /"));
    }
    SyncSource {
        provider_id: body.provider_id.0,
        path: body.path.into_inner(),
        records_field: text_or(body.records_field, "data"),
        next_cursor_field: text_or(body.next_cursor_field, "next_cursor"),
        cursor_param: text_or(body.cursor_param, "cursor"),
        since_param: text_or(body.since_param, "updated_since"),
        primary_key: text_or(body.primary_key, "id"),
        cursor_field: body.cursor_field.map(FieldName::into_inner),
        deleted_field: text_or(body.deleted_field, "deleted"),
    }
}

fn check_mapping(target_type: TargetType, mapping: &Map<String, Value>, errors: &mut Vec<FieldError>) {
    if mapping.len() > MAX_MAPPED_FIELDS {
        errors.push(FieldError::new("field_mapping", format!("must have at most {MAX_MAPPED_FIELDS} fields")));
    }
    if mapping.is_empty() {
        errors.push(FieldError::new("field_mapping", "must map at least one field"));
    }
    for (target, source) in mapping {
        let at = format!("field_mapping.{target}");
        if let Some(problem) = target_type.mapping_problem(target) {
            errors.push(FieldError::new(&at, problem));
        }
        match source.as_str() {
            Some(path) if !path.is_empty() && path.len() <= 200 => {}
            _ => errors.push(FieldError::new(&at, "must be the source field's name (1 to 200 characters)")),
        }
    }
}

fn check_mode(mode: &str, errors: &mut Vec<FieldError>) -> SyncMode {
    SyncMode::from_name(mode).unwrap_or_else(|| {
        errors.push(FieldError::new("sync_mode", "must be one of full, incremental, delta"));
        SyncMode::Full
    })
}

/// `frequency` and `schedule` together: a schedule makes it `scheduled`.
/// What the connection gets: its schedule, and whether it is real time.
fn check_frequency(
    frequency: Option<&str>,
    schedule: Option<ScheduleText>,
    errors: &mut Vec<FieldError>,
) -> (Option<String>, bool) {
    match (frequency, schedule) {
        (None | Some("scheduled"), Some(expression)) => (check_schedule(expression, errors), false),
        (Some("scheduled"), None) => {
            errors.push(FieldError::new("schedule", "is required by a scheduled connection"));
            (None, false)
        }
        (None | Some("manual"), None) => (None, false),
        (Some("real_time"), None) => (None, true),
        (Some("manual" | "real_time"), Some(_)) => {
            errors.push(FieldError::new("schedule", "is only for a scheduled connection"));
            (None, false)
        }
        (Some(_), _) => {
            errors.push(FieldError::new("frequency", "must be manual, scheduled or real_time"));
            (None, false)
        }
    }
}

fn check_schedule(expression: ScheduleText, errors: &mut Vec<FieldError>) -> Option<String> {
    match ScheduleExpression::parse(expression.as_str()) {
        Ok(parsed) => Some(parsed.as_str().to_owned()),
        Err(problem) => {
            errors.push(FieldError::new("schedule", problem));
            None
        }
    }
}

/// The connection's schedule going from `old` to `new` (docs/integrations.md,
/// "Schedules").
fn schedule_change(old: Option<&SyncConnection>, new: &SyncConnection) -> ScheduleChange {
    let wanted = |c: &SyncConnection| c.schedule.clone().map(|expression| (expression, c.is_active));
    ScheduleChange {
        target: ScheduleTarget::SyncConnection,
        tenant_id: new.tenant_id,
        id: new.id,
        old: old.and_then(wanted),
        new: wanted(new),
    }
}

/// The rules across fields: a mode or rule that compares cursor values
/// needs the field they come from.
fn check_cursor_field(connection: &SyncConnection, errors: &mut Vec<FieldError>) {
    if connection.source.cursor_field.is_some() {
        return;
    }
    if connection.sync_mode.reads_changes_only() {
        errors.push(FieldError::new("source.cursor_field", "is required by an incremental or delta sync"));
    } else if connection.conflict_resolution == ConflictResolution::LatestTimestamp {
        errors.push(FieldError::new("source.cursor_field", "is required by latest_timestamp"));
    }
}

/// The target's options, each only where its type takes it.
fn check_target(
    principal: &Principal,
    target_type: TargetType,
    body: TargetBody,
    errors: &mut Vec<FieldError>,
) -> TargetConfig {
    let mut only_for = |present: bool, field: &str, for_type: TargetType| {
        if present && target_type != for_type {
            errors.push(FieldError::new(format!("target.{field}"), format!("is only for a {for_type} target")));
        }
    };
    only_for(body.project_id.is_some(), "project_id", TargetType::Tasks);
    only_for(body.role.is_some(), "role", TargetType::Users);
    only_for(body.provider_id.is_some(), "provider_id", TargetType::Provider);
    only_for(body.path.is_some(), "path", TargetType::Provider);
    let config = TargetConfig {
        project_id: body.project_id.map(|id| id.0),
        role: body.role.map(Into::into),
        provider_id: body.provider_id.map(|id| id.0),
        path: body.path.map(ApiPath::into_inner),
    };
    match target_type {
        TargetType::Tasks if config.project_id.is_none() => {
            errors.push(FieldError::new("target.project_id", "is required by a tasks target"));
        }
        TargetType::Users => match config.role {
            // An owner is made by a person: a sync never hands out the
            // tenant itself.
            Some(Role::Owner) => errors.push(FieldError::new("target.role", "must be user, developer or admin")),
            Some(role) if !rules::may_grant(principal.role(), role) => {
                errors.push(FieldError::new("target.role", "may not be above your own role"));
            }
            _ => {}
        },
        TargetType::Provider => {
            if config.provider_id.is_none() {
                errors.push(FieldError::new("target.provider_id", "is required by a provider target"));
            }
            match &config.path {
                None => errors.push(FieldError::new("target.path", "is required by a provider target")),
                Some(path) if !path.starts_with('/') => {
                    errors.push(FieldError::new("target.path", "must start with /"))
                }
                Some(_) => {}
            }
        }
        _ => {}
    }
    config
}

/// A provider target cannot be read back, so it cannot tell a conflict.
fn check_rule(connection: &SyncConnection, errors: &mut Vec<FieldError>) {
    if !connection.target.detects_conflicts() && connection.conflict_resolution != ConflictResolution::SourceWins {
        errors.push(FieldError::new(
            "conflict_resolution",
            "must be source_wins for a provider target (what it holds cannot be read back)",
        ));
    }
}

/// A tasks target's project, or a provider target's provider, must be the
/// tenant's.
async fn check_target_exists(state: &AppState, scope: &TenantScope, connection: &SyncConnection) -> AppResult<()> {
    let config = &connection.target_config;
    match connection.target {
        TargetType::Tasks => {
            let project_id = config.project_id.unwrap_or_default();
            if state.store.get_project(scope, project_id).await?.is_none() {
                return Err(AppError::invalid_field("target.project_id", "no such project"));
            }
        }
        TargetType::Provider => {
            let provider = state.store.get_provider(scope, config.provider_id.unwrap_or_default()).await?;
            match provider {
                Some(provider) if provider.api_base_url.is_some() => {}
                Some(_) => {
                    return Err(AppError::invalid_field(
                        "target.provider_id",
                        "the provider has no api_base_url to write",
                    ));
                }
                None => return Err(AppError::invalid_field("target.provider_id", "no such integration provider")),
            }
        }
        _ => {}
    }
    Ok(())
}

/// The provider must be the tenant's and have an API to read (a real-time
/// connection can do without: its events bring the records).
async fn check_provider(state: &AppState, scope: &TenantScope, provider_id: Uuid, real_time: bool) -> AppResult<()> {
    let provider = state.store.get_provider(scope, provider_id).await?;
    match provider {
        Some(provider) if real_time || provider.api_base_url.is_some() => Ok(()),
        Some(_) => Err(AppError::invalid_field("source.provider_id", "the provider has no api_base_url to read")),
        None => Err(AppError::invalid_field("source.provider_id", "no such integration provider")),
    }
}

async fn load(state: &AppState, scope: &TenantScope, id: Uuid) -> AppResult<SyncConnection> {
    state.store.get_sync_connection(scope, id).await?.ok_or_else(|| AppError::not_found(SYNC_CONNECTION_RESOURCE))
}

/// Create a sync connection
///
/// 201 with the connection. Runs start from the API (`POST .../runs`), on
/// `schedule` (`frequency: scheduled`), or with every inbound event of the
/// provider (`frequency: real_time`, the event's records applied at once).
#[utoipa::path(post, path = "/v1/integrations/sync-connections", tag = "integrations", security(("bearer" = ["admin"]), ("api_key" = ["integrations:manage"])),
    request_body(content = NewSyncConnection, example = json!({
        "name": "CRM customers",
        "source_type": "api",
        "target_type": "customers",
        "sync_mode": "incremental",
        "conflict_resolution": "source_wins",
        "source": {"provider_id": "01936f4e-0000-7000-8000-000000000001", "path": "/customers", "cursor_field": "updated_at"},
        "field_mapping": {"email": "email", "name": "full_name", "metadata.plan": "plan"}
    })),
    responses(
        (status = 201, description = "The connection", body = SyncConnectionView),
        (status = 409, description = "Conflict\n\n- `conflict`: the tenant has 25 sync connections (`details.reason`: `too_many_sync_connections`)\n- `idempotency_key_in_use`: a request with this `Idempotency-Key` is still running", body = shared::web::openapi::ApiError),
    ))]
pub async fn create_connection(
    State(state): State<AppState>,
    principal: Principal,
    audit: AuditContext,
    body: Result<Body<NewSyncConnection>, AppError>,
) -> AppResult<(StatusCode, Json<SyncConnectionView>)> {
    let scope = require(&principal)?;
    let Body(body) = body?;
    let mut errors = Vec::new();
    if body.source_type.as_deref().is_some_and(|t| t != "api") {
        errors.push(FieldError::new("source_type", "must be api"));
    }
    let target = match body.target_type.as_deref() {
        None => TargetType::Customers,
        Some(name) => TargetType::parse(name).unwrap_or_else(|| {
            errors.push(FieldError::new("target_type", "must be one of customers, users, projects, tasks, provider"));
            TargetType::Customers
        }),
    };
    let target_config = check_target(&principal, target, body.target.unwrap_or_default(), &mut errors);
    let (schedule, real_time) = check_frequency(body.frequency.as_deref(), body.schedule, &mut errors);
    let sync_mode = check_mode(&body.sync_mode, &mut errors);
    let source = check_source(body.source, &mut errors);
    let field_mapping = match (body.field_mapping, target.default_mapping()) {
        (Some(mapping), _) => mapping,
        (None, Some(mapping)) => mapping,
        (None, None) => {
            errors.push(FieldError::new("field_mapping", "is required by a provider target"));
            Map::new()
        }
    };
    if !field_mapping.is_empty() {
        check_mapping(target, &field_mapping, &mut errors);
    }
    let now = now_rfc3339();
    let connection = SyncConnection {
        id: Uuid::now_v7(),
        tenant_id: scope.tenant_id(),
        name: body.name.into_inner(),
        source,
        target,
        target_config,
        sync_mode,
        conflict_resolution: body.conflict_resolution.unwrap_or(ConflictResolution::SourceWins),
        field_mapping,
        is_active: body.is_active.unwrap_or(true),
        schedule,
        real_time,
        checkpoint: None,
        active_run_id: None,
        last_run_at: None,
        last_successful_sync_at: None,
        consecutive_failures: 0,
        created_by: principal.user_id(),
        version: 1,
        created_at: now.clone(),
        updated_at: now,
    };
    check_cursor_field(&connection, &mut errors);
    check_rule(&connection, &mut errors);
    if !errors.is_empty() {
        return Err(AppError::validation(errors));
    }
    check_provider(&state, &scope, connection.source.provider_id, connection.real_time).await?;
    check_target_exists(&state, &scope, &connection).await?;
    let change = schedule_change(None, &connection);
    change.prepare(&state.schedules).await.map_err(AppError::internal)?;
    if let Err(err) = state.store.create_sync_connection(&scope, &connection, &audit).await {
        change.undo(&state.schedules).await;
        return Err(err);
    }
    Ok((StatusCode::CREATED, Json(SyncConnectionView::from(&connection))))
}

/// No filters beyond `limit` and `cursor`.
#[derive(Debug, eserde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoFilters {}

/// List sync connections
///
/// In creation order; `?limit=`, `?cursor=`.
#[utoipa::path(get, path = "/v1/integrations/sync-connections", tag = "integrations", security(("bearer" = ["admin"]), ("api_key" = ["integrations:manage"])),
    responses((status = 200, description = "A page of connections", body = Page<SyncConnectionView>)))]
pub async fn list_connections(
    State(state): State<AppState>,
    principal: Principal,
    query: Result<ListQuery<NoFilters>, AppError>,
) -> AppResult<Page<SyncConnectionView>> {
    let scope = require(&principal)?;
    let ListQuery { page, .. } = query?;
    let (connections, next_cursor) = state.store.list_sync_connections(&scope, &page).await?;
    Ok(Page { data: connections.iter().map(SyncConnectionView::from).collect(), next_cursor })
}

/// Read a sync connection
///
/// With its checkpoint, the run in progress and the last successful sync.
#[utoipa::path(get, path = "/v1/integrations/sync-connections/{id}", tag = "integrations", security(("bearer" = ["admin"]), ("api_key" = ["integrations:manage"])),
    responses((status = 200, description = "The connection", body = SyncConnectionView)))]
pub async fn get_connection(
    State(state): State<AppState>,
    principal: Principal,
    PathIds(SyncConnectionId(id)): PathIds<SyncConnectionId>,
) -> AppResult<Json<SyncConnectionView>> {
    let scope = require(&principal)?;
    Ok(Json(SyncConnectionView::from(&load(&state, &scope, id).await?)))
}

/// Update a sync connection
///
/// Any of `name`, `sync_mode`, `conflict_resolution`, `source` (whole),
/// `field_mapping`, `is_active`. A run in progress keeps the definition it
/// started with until its next page.
#[utoipa::path(patch, path = "/v1/integrations/sync-connections/{id}", tag = "integrations", security(("bearer" = ["admin"]), ("api_key" = ["integrations:manage"])),
    request_body(content = SyncConnectionUpdate, example = json!({"conflict_resolution": "latest_timestamp", "is_active": true})),
    responses(
        (status = 200, description = "The connection", body = SyncConnectionView),
        (status = 409, description = "Conflict\n\n- `conflict`: the connection changed meanwhile (read it again and retry)", body = shared::web::openapi::ApiError),
    ))]
pub async fn update_connection(
    State(state): State<AppState>,
    principal: Principal,
    audit: AuditContext,
    PathIds(SyncConnectionId(id)): PathIds<SyncConnectionId>,
    body: Result<Body<SyncConnectionUpdate>, AppError>,
) -> AppResult<Json<SyncConnectionView>> {
    let scope = require(&principal)?;
    let Body(body) = body?;
    let old = load(&state, &scope, id).await?;
    let mut new = old.clone();
    let mut errors = Vec::new();
    if let Settable::Value(name) = body.name {
        new.name = name.into_inner();
    }
    if let Settable::Value(mode) = body.sync_mode {
        new.sync_mode = check_mode(&mode, &mut errors);
    }
    if let Settable::Value(rule) = body.conflict_resolution {
        new.conflict_resolution = rule;
    }
    if let Settable::Value(source) = body.source {
        new.source = check_source(source, &mut errors);
    }
    if let Settable::Value(mapping) = body.field_mapping {
        check_mapping(new.target, &mapping, &mut errors);
        new.field_mapping = mapping;
    }
    if let Settable::Value(active) = body.is_active {
        new.is_active = active;
    }
    let frequency = body.frequency.into_option();
    match (frequency.as_deref(), body.schedule) {
        (None, Clearable::Absent) => {}
        (None, Clearable::Null) => new.schedule = None,
        (frequency, Clearable::Value(expression)) => {
            (new.schedule, new.real_time) = check_frequency(frequency, Some(expression), &mut errors);
        }
        (Some("scheduled"), Clearable::Absent) if old.schedule.is_some() => new.real_time = false,
        (Some(frequency), Clearable::Absent | Clearable::Null) => {
            (new.schedule, new.real_time) = check_frequency(Some(frequency), None, &mut errors);
        }
    }
    check_cursor_field(&new, &mut errors);
    check_rule(&new, &mut errors);
    if !errors.is_empty() {
        return Err(AppError::validation(errors));
    }
    if new.source.provider_id != old.source.provider_id || (old.real_time && !new.real_time) {
        check_provider(&state, &scope, new.source.provider_id, new.real_time).await?;
    }
    new.version = old.version + 1;
    new.updated_at = now_rfc3339();
    let change = schedule_change(Some(&old), &new);
    change.prepare(&state.schedules).await.map_err(AppError::internal)?;
    let written = state.store.update_sync_connection(&scope, &old, &new, &audit).await;
    if !matches!(written, Ok(true)) {
        change.undo(&state.schedules).await;
    }
    if !written? {
        return Err(AppError::conflict("the connection changed meanwhile; read it again and retry"));
    }
    change.finish(&state.schedules).await;
    // The worker's fields as they are now, not as read before the write.
    Ok(Json(SyncConnectionView::from(&load(&state, &scope, id).await?)))
}

/// Delete a sync connection
///
/// A run in progress stops before its next page. Records it wrote stay.
#[utoipa::path(delete, path = "/v1/integrations/sync-connections/{id}", tag = "integrations", security(("bearer" = ["admin"]), ("api_key" = ["integrations:manage"])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 409, description = "Conflict\n\n- `conflict`: the connection changed meanwhile (read it again and retry)", body = shared::web::openapi::ApiError),
    ))]
pub async fn delete_connection(
    State(state): State<AppState>,
    principal: Principal,
    audit: AuditContext,
    PathIds(SyncConnectionId(id)): PathIds<SyncConnectionId>,
) -> AppResult<StatusCode> {
    let scope = require(&principal)?;
    let connection = load(&state, &scope, id).await?;
    if !state.store.delete_sync_connection(&scope, &connection, &audit).await? {
        return Err(AppError::conflict("the connection changed meanwhile; read it again and retry"));
    }
    ScheduleChange { new: None, ..schedule_change(Some(&connection), &connection) }.finish(&state.schedules).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Start a sync run
///
/// 202 with the run, `queued`. One run at a time per connection: 409 while
/// another is queued or running. An incremental or delta run reads what
/// changed after the connection's checkpoint.
#[utoipa::path(post, path = "/v1/integrations/sync-connections/{id}/runs", tag = "integrations", security(("bearer" = ["admin"]), ("api_key" = ["integrations:manage"])),
    responses(
        (status = 202, description = "The run, queued", body = SyncRunView),
        (status = 409, description = "Conflict\n\n- `conflict`: a run is in progress (`details.reason`: `run_in_progress`, `details.run_id`), or the connection is inactive (`connection_inactive`)\n- `idempotency_key_in_use`: a request with this `Idempotency-Key` is still running", body = shared::web::openapi::ApiError),
    ))]
pub async fn start_run(
    State(state): State<AppState>,
    principal: Principal,
    PathIds(SyncConnectionId(id)): PathIds<SyncConnectionId>,
) -> AppResult<(StatusCode, Json<SyncRunView>)> {
    let scope = require(&principal)?;
    let connection = load(&state, &scope, id).await?;
    if !connection.is_active {
        return Err(AppError::conflict("the connection is inactive; activate it first")
            .with_details(json!({"reason": "connection_inactive"})));
    }
    match sync_runs::start(&state.store, &state.sqs, &scope, &connection, "manual", Uuid::now_v7()).await? {
        Started::Run(run) => Ok((StatusCode::ACCEPTED, Json(SyncRunView::from(run.as_ref())))),
        Started::InProgress(active) => Err(AppError::conflict("a run of this connection is in progress")
            .with_details(json!({"reason": "run_in_progress", "run_id": active}))),
        // A fresh id cannot be taken.
        Started::AlreadyStarted => Err(AppError::internal(anyhow::anyhow!("a new run's id was taken"))),
    }
}

/// List a connection's runs
///
/// Newest first; `?limit=`, `?cursor=`. Each with its counts (read,
/// created, updated, unchanged, deleted, conflicts, errors), progress and
/// duration.
#[utoipa::path(get, path = "/v1/integrations/sync-connections/{id}/runs", tag = "integrations", security(("bearer" = ["admin"]), ("api_key" = ["integrations:manage"])),
    responses((status = 200, description = "A page of runs", body = Page<SyncRunView>)))]
pub async fn list_runs(
    State(state): State<AppState>,
    principal: Principal,
    PathIds(SyncConnectionId(id)): PathIds<SyncConnectionId>,
    query: Result<ListQuery<NoFilters>, AppError>,
) -> AppResult<Page<SyncRunView>> {
    let scope = require(&principal)?;
    let ListQuery { page, .. } = query?;
    load(&state, &scope, id).await?;
    let (runs, next_cursor) = state.store.list_sync_runs(&scope, id, &page).await?;
    Ok(Page { data: runs.iter().map(SyncRunView::from).collect(), next_cursor })
}

/// Read a sync run
#[utoipa::path(get, path = "/v1/integrations/sync-connections/{id}/runs/{run_id}", tag = "integrations", security(("bearer" = ["admin"]), ("api_key" = ["integrations:manage"])),
    responses((status = 200, description = "The run", body = SyncRunView)))]
pub async fn get_run(
    State(state): State<AppState>,
    principal: Principal,
    PathIds((SyncConnectionId(id), SyncRunId(run_id))): PathIds<(SyncConnectionId, SyncRunId)>,
) -> AppResult<Json<SyncRunView>> {
    let scope = require(&principal)?;
    let run =
        state.store.get_sync_run(&scope, id, run_id).await?.ok_or_else(|| AppError::not_found(SYNC_RUN_RESOURCE))?;
    Ok(Json(SyncRunView::from(&run)))
}

/// Reset a connection's checkpoint
///
/// The next incremental or delta run reads everything again. 409 while a
/// run is in progress.
#[utoipa::path(post, path = "/v1/integrations/sync-connections/{id}/reset", tag = "integrations", security(("bearer" = ["admin"]), ("api_key" = ["integrations:manage"])),
    responses(
        (status = 200, description = "The connection, without a checkpoint", body = SyncConnectionView),
        (status = 409, description = "Conflict\n\n- `conflict`: a run is in progress (`details.reason`: `run_in_progress`)", body = shared::web::openapi::ApiError),
    ))]
pub async fn reset_checkpoint(
    State(state): State<AppState>,
    principal: Principal,
    audit: AuditContext,
    PathIds(SyncConnectionId(id)): PathIds<SyncConnectionId>,
) -> AppResult<Json<SyncConnectionView>> {
    let scope = require(&principal)?;
    let connection = load(&state, &scope, id).await?;
    if !state.store.reset_sync_checkpoint(&scope, &connection, &audit).await? {
        return Err(AppError::conflict("a run of this connection is in progress; reset it when the run ends")
            .with_details(json!({"reason": "run_in_progress"})));
    }
    Ok(Json(SyncConnectionView::from(&load(&state, &scope, id).await?)))
}

/// List a connection's open conflicts
///
/// A `manual` connection does not write a record whose customer changed
/// since the connection last wrote it; each such record is here, with both
/// versions, by its key. The next run that brings the record again
/// replaces its entry.
#[utoipa::path(get, path = "/v1/integrations/sync-connections/{id}/conflicts", tag = "integrations", security(("bearer" = ["admin"]), ("api_key" = ["integrations:manage"])),
    responses((status = 200, description = "A page of conflicts", body = Page<SyncConflict>)))]
pub async fn list_conflicts(
    State(state): State<AppState>,
    principal: Principal,
    PathIds(SyncConnectionId(id)): PathIds<SyncConnectionId>,
    query: Result<ListQuery<NoFilters>, AppError>,
) -> AppResult<Page<SyncConflict>> {
    let scope = require(&principal)?;
    let ListQuery { page, .. } = query?;
    load(&state, &scope, id).await?;
    let (data, next_cursor) = state.store.list_sync_conflicts(&scope, id, &page).await?;
    Ok(Page { data, next_cursor })
}

shared::string_enum!(
    /// Which version of a held record wins: `source` (its fields are
    /// written to the target record) or `target` (the record stays).
    Keep {
        Source => "source",
        Target => "target",
    }
);

/// A held record to settle.
#[derive(Debug, eserde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveConflict {
    /// The record's key, as the conflict shows it.
    #[eserde(compat)]
    #[schema(value_type = String, min_length = 1, max_length = 128, example = "c-0002")]
    pub key: Text<1, 128>,
    #[eserde(compat)]
    pub keep: Keep,
}

/// A settled conflict.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ConflictResolved {
    pub key: String,
    pub kept: Keep,
    /// The target record (a customer, user, project or task) as it is now,
    /// as its own API shows it.
    #[schema(value_type = Object)]
    pub target: Value,
}

/// Resolve a held conflict
///
/// `keep: source` writes the source's fields to the target record (a
/// customer's mapped metadata over its own); `keep: target` leaves it as it
/// is. Either way the connection remembers the record as it now is, so the
/// next run does not hold it again unless someone changes it again, and
/// the conflict is gone.
#[utoipa::path(post, path = "/v1/integrations/sync-connections/{id}/conflicts/resolve", tag = "integrations", security(("bearer" = ["admin"]), ("api_key" = ["integrations:manage"])),
    request_body(content = ResolveConflict, example = json!({"key": "c-0002", "keep": "source"})),
    responses(
        (status = 200, description = "The conflict is settled", body = ConflictResolved),
        (status = 409, description = "Conflict\n\n- `conflict`: the source's fields are not what the target takes, or the target record was deleted meanwhile", body = shared::web::openapi::ApiError),
    ))]
pub async fn resolve_conflict(
    State(state): State<AppState>,
    principal: Principal,
    audit: AuditContext,
    PathIds(SyncConnectionId(id)): PathIds<SyncConnectionId>,
    body: Result<Body<ResolveConflict>, AppError>,
) -> AppResult<Json<ConflictResolved>> {
    let scope = require(&principal)?;
    let Body(body) = body?;
    let connection = load(&state, &scope, id).await?;
    let key = body.key.into_inner();
    let conflict = state
        .store
        .get_sync_conflict(&scope, id, &key)
        .await?
        .ok_or_else(|| AppError::not_found(SYNC_CONFLICT_RESOURCE))?;
    let target = PlatformTarget { store: &state.store, scope: &scope, connection: &connection, audit: &audit };
    let current = target.current(std::slice::from_ref(&key)).await?.remove(&key);
    let record = match (body.keep, current) {
        (_, None) => return Err(AppError::conflict("the record's target was deleted meanwhile")),
        (Keep::Target, Some(current)) => current,
        (Keep::Source, Some(current)) => {
            let fields = conflict.source_fields.as_object().cloned().unwrap_or_default();
            match target.write(&key, &fields, Some(&current)).await.map_err(AppError::conflict)? {
                Written::Created(after) | Written::Updated(after) | Written::Unchanged(after) => after,
            }
        }
    };
    state.store.put_sync_mark(&scope, id, &key, &record.updated_at).await?;
    state.store.delete_sync_conflict(&scope, id, &key).await?;
    Ok(Json(ConflictResolved { key, kept: body.keep, target: record.view }))
}
