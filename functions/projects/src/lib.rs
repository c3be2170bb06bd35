//! The projects route group: a tenant's projects and their tasks (seed 000).
//! Everything lives in the caller's tenant partition, so another tenant's
//! project or task answers 404 exactly like a missing one. Creating a project
//! takes a slot of the plan's `projects` quota (403 `quota_exceeded` when
//! full); deleting it gives the slot back and deletes its tasks.
//!
//! | route | handler | who |
//! |---|---|---|
//! | `GET /v1/projects` | [`list_projects`] | any member |
//! | `POST /v1/projects` | [`create_project`] | developer or above |
//! | `GET /v1/projects/{id}` | [`get_project`] | any member |
//! | `PUT`/`PATCH /v1/projects/{id}` | [`update_project`] | developer or above |
//! | `DELETE /v1/projects/{id}` | [`delete_project`] | admin or above |
//! | `GET /v1/projects/{id}/tasks` | [`list_tasks`] | any member |
//! | `POST /v1/projects/{id}/tasks` | [`create_task`] | developer or above |
//! | `GET /v1/projects/{id}/tasks/{task_id}` | [`get_task`] | any member |
//! | `PUT`/`PATCH /v1/projects/{id}/tasks/{task_id}` | [`update_task`] | developer or above |
//! | `DELETE /v1/projects/{id}/tasks/{task_id}` | [`delete_task`] | admin or above |
//!
//! A platform admin acts inside a tenant with `X-Tenant-ID`.

use axum::{
    Json, Router,
    extract::State,
    http::{HeaderName, StatusCode, header::LOCATION},
    routing::get,
};
use serde::Serialize;
use serde_json::{Value, json};
use shared::{
    AppError, AppResult, AppState,
    audit::AuditContext,
    auth::{Principal, Role, Scope},
    domain::{
        ai::{self, AiAnalysis, AiJob, AnalysisStatus, JobContext, JobKind},
        ids::{ProjectId, TaskId, UserId},
        project::{
            Changes, Criteria, DueDate, NAME_MAX, PROJECT_DESCRIPTION_MAX, PerformanceTargets, Priority, Project,
            ProjectStatus, ProjectView, Requirements, RequirementsList, SetByPlatform, TASK_DESCRIPTION_MAX, TITLE_MAX,
            Task, TaskStatus, TaskView, TechnologyStack, empty_object,
        },
        values::{Settable, Text},
    },
    error::FieldError,
    http::Page,
    idempotency::Answer,
    store::projects::{ProjectFilter, TaskFilter},
    web::{
        extract::{Body, ListQuery, Patch, PathIds},
        openapi::ApiError,
    },
};
use uuid::Uuid;

/// This group's part of the OpenAPI document (`shared::web::openapi`).
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        list_projects,
        create_project,
        get_project,
        update_project,
        delete_project,
        list_tasks,
        create_task,
        create_analyzed_task,
        get_task,
        update_task,
        delete_task
    ),
    tags((name = "projects", description = "A tenant's projects and their tasks (seed 000). Everything lives in the caller's tenant: another tenant's project or task answers 404 exactly like a missing one. A project takes a slot of the plan's `projects` quota until it is deleted."))
)]
pub struct ApiDoc;

/// This group's routes; its Lambda and the local server add the shared layers.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/projects", get(list_projects).post(create_project))
        .route("/v1/projects/{id}", get(get_project).put(update_project).patch(update_project).delete(delete_project))
        .route("/v1/projects/{id}/tasks", get(list_tasks).post(create_task))
        .route("/v1/tasks", axum::routing::post(create_analyzed_task))
        .route(
            "/v1/projects/{id}/tasks/{task_id}",
            get(get_task).put(update_task).patch(update_task).delete(delete_task),
        )
}

const PROJECT: &str = "project";
const TASK: &str = "task";

type ProjectName = shared::domain::project::Name<NAME_MAX>;
type TaskTitle = shared::domain::project::Name<TITLE_MAX>;
type ProjectDescription = Text<0, PROJECT_DESCRIPTION_MAX>;
type TaskDescription = Text<0, TASK_DESCRIPTION_MAX>;

/// A 201 answer: the new resource, and where to read it again.
type Created<T> = (StatusCode, [(HeaderName, String); 1], Json<T>);

fn created<T>(location: String, body: T) -> Created<T> {
    (StatusCode::CREATED, [(LOCATION, location)], Json(body))
}

// ---------------------------------------------------------------- bodies --

/// `POST /v1/projects`: only `name` is required; `priority` defaults to
/// `medium`, `status` to `active`.
#[derive(Debug, eserde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProject {
    /// The project's name.
    #[eserde(compat)]
    name: ProjectName,
    /// What the project is about.
    #[serde(default)]
    #[eserde(compat)]
    description: Option<ProjectDescription>,
    /// Languages, frameworks and services it uses.
    #[serde(default)]
    #[eserde(compat)]
    technology_stack: Option<TechnologyStack>,
    /// `medium` when left out.
    #[serde(default)]
    #[eserde(compat)]
    priority: Option<Priority>,
    /// `active` when left out.
    #[serde(default)]
    #[eserde(compat)]
    status: Option<ProjectStatus>,
    /// Standards the project must meet (`PCI_DSS`, `GDPR`, ...).
    #[serde(default)]
    #[eserde(compat)]
    compliance_requirements: Option<RequirementsList>,
    /// Free-form targets by name (`response_time_p95`, ...).
    #[serde(default)]
    #[eserde(compat)]
    performance_targets: Option<PerformanceTargets>,
    /// Security measures it needs (`end_to_end_encryption`, ...).
    #[serde(default)]
    #[eserde(compat)]
    security_requirements: Option<RequirementsList>,
    #[schema(ignore)]
    #[serde(default, rename = "id")]
    #[eserde(compat)]
    _id: SetByPlatform,
    #[schema(ignore)]
    #[serde(default, rename = "tenant_id")]
    #[eserde(compat)]
    _tenant_id: SetByPlatform,
    #[schema(ignore)]
    #[serde(default, rename = "created_by")]
    #[eserde(compat)]
    _created_by: SetByPlatform,
    #[schema(ignore)]
    #[serde(default, rename = "created_at")]
    #[eserde(compat)]
    _created_at: SetByPlatform,
    #[schema(ignore)]
    #[serde(default, rename = "updated_at")]
    #[eserde(compat)]
    _updated_at: SetByPlatform,
    #[schema(ignore)]
    #[serde(default, rename = "task_count")]
    #[eserde(compat)]
    _task_count: SetByPlatform,
}

impl CreateProject {
    pub fn into_project(self, tenant_id: Uuid, created_by: Uuid) -> Project {
        let now = shared::domain::now();
        Project {
            id: Uuid::now_v7(),
            tenant_id,
            name: self.name.into_inner(),
            description: self.description.map(Text::into_inner),
            technology_stack: self.technology_stack.map(TechnologyStack::into_inner).unwrap_or_default(),
            priority: self.priority.unwrap_or(Priority::Medium),
            status: self.status.unwrap_or(ProjectStatus::Active),
            compliance_requirements: self.compliance_requirements.map(RequirementsList::into_inner).unwrap_or_default(),
            performance_targets: self.performance_targets.map_or_else(empty_object, |t| Value::Object(t.into_inner())),
            security_requirements: self.security_requirements.map(RequirementsList::into_inner).unwrap_or_default(),
            created_by,
            created_at: now,
            updated_at: now,
            task_count: 0,
        }
    }
}

/// `PUT`/`PATCH /v1/projects/{id}`: absent fields stay, `null` clears the
/// optional ones (`description` removed, lists `[]`, objects `{}`) and is
/// refused on `name`, `priority` and `status`.
#[derive(Debug, eserde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateProject {
    /// A new name (`null` is refused).
    #[serde(default)]
    #[eserde(compat)]
    name: Settable<ProjectName>,
    /// `null` removes it.
    #[serde(default)]
    #[eserde(compat)]
    description: Patch<ProjectDescription>,
    /// `null` empties it.
    #[serde(default)]
    #[eserde(compat)]
    technology_stack: Patch<TechnologyStack>,
    /// `null` is refused.
    #[serde(default)]
    #[eserde(compat)]
    priority: Settable<Priority>,
    /// `null` is refused.
    #[serde(default)]
    #[eserde(compat)]
    status: Settable<ProjectStatus>,
    /// `null` empties it.
    #[serde(default)]
    #[eserde(compat)]
    compliance_requirements: Patch<RequirementsList>,
    /// Replaces the whole object; `null` empties it.
    #[serde(default)]
    #[eserde(compat)]
    performance_targets: Patch<PerformanceTargets>,
    /// `null` empties it.
    #[serde(default)]
    #[eserde(compat)]
    security_requirements: Patch<RequirementsList>,
    #[schema(ignore)]
    #[serde(default, rename = "id")]
    #[eserde(compat)]
    _id: SetByPlatform,
    #[schema(ignore)]
    #[serde(default, rename = "tenant_id")]
    #[eserde(compat)]
    _tenant_id: SetByPlatform,
    #[schema(ignore)]
    #[serde(default, rename = "created_by")]
    #[eserde(compat)]
    _created_by: SetByPlatform,
    #[schema(ignore)]
    #[serde(default, rename = "created_at")]
    #[eserde(compat)]
    _created_at: SetByPlatform,
    #[schema(ignore)]
    #[serde(default, rename = "updated_at")]
    #[eserde(compat)]
    _updated_at: SetByPlatform,
    #[schema(ignore)]
    #[serde(default, rename = "task_count")]
    #[eserde(compat)]
    _task_count: SetByPlatform,
}

/// A list field of an update: a value is set, `null` sets `[]`.
fn set_or_empty_list<T>(changes: &mut Changes, field: &'static str, patch: Patch<T>, value: impl FnOnce(T) -> Value) {
    match patch {
        Patch::Absent => {}
        Patch::Null => changes.set(field, json!([])),
        Patch::Value(v) => changes.set(field, value(v)),
    }
}

/// An object field of an update: a value is set, `null` sets `{}`.
fn set_or_empty_object<T>(changes: &mut Changes, field: &'static str, patch: Patch<T>, value: impl FnOnce(T) -> Value) {
    match patch {
        Patch::Absent => {}
        Patch::Null => changes.set(field, empty_object()),
        Patch::Value(v) => changes.set(field, value(v)),
    }
}

/// A nullable field of an update: a value is set, `null` removes it.
fn set_or_remove<T>(changes: &mut Changes, field: &'static str, patch: Patch<T>, value: impl FnOnce(T) -> Value) {
    match patch {
        Patch::Absent => {}
        Patch::Null => changes.remove(field),
        Patch::Value(v) => changes.set(field, value(v)),
    }
}

fn set_some<T>(changes: &mut Changes, field: &'static str, value: Settable<T>, json: impl FnOnce(T) -> Value) {
    if let Settable::Value(v) = value {
        changes.set(field, json(v));
    }
}

impl UpdateProject {
    pub fn changes(self) -> Changes {
        let mut changes = Changes::default();
        set_some(&mut changes, "name", self.name, |n| json!(n.into_inner()));
        set_or_remove(&mut changes, "description", self.description, |d| json!(d.into_inner()));
        set_or_empty_list(&mut changes, "technology_stack", self.technology_stack, |l| json!(l.into_inner()));
        set_some(&mut changes, "priority", self.priority, |p| json!(p));
        set_some(&mut changes, "status", self.status, |s| json!(s));
        set_or_empty_list(&mut changes, "compliance_requirements", self.compliance_requirements, |l| {
            json!(l.into_inner())
        });
        set_or_empty_object(&mut changes, "performance_targets", self.performance_targets, |o| {
            Value::Object(o.into_inner())
        });
        set_or_empty_list(&mut changes, "security_requirements", self.security_requirements, |l| json!(l.into_inner()));
        changes
    }
}

/// `POST /v1/projects/{id}/tasks`: only `title` is required; `status`
/// defaults to `todo`, `priority` to `medium`. `project_id` may be repeated
/// (seed 000 sends it) but must name the project of the path.
#[derive(Debug, eserde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTask {
    /// The task's title.
    #[eserde(compat)]
    title: TaskTitle,
    /// What is to be done.
    #[serde(default)]
    #[eserde(compat)]
    description: Option<TaskDescription>,
    /// `todo` when left out.
    #[serde(default)]
    #[eserde(compat)]
    status: Option<TaskStatus>,
    /// `medium` when left out.
    #[serde(default)]
    #[eserde(compat)]
    priority: Option<Priority>,
    /// A user of the tenant (else 400 naming `assignee_id`).
    #[serde(default)]
    #[eserde(compat)]
    assignee_id: Option<UserId>,
    #[serde(default)]
    #[eserde(compat)]
    due_date: Option<DueDate>,
    /// Named lists of requirements (`functional`, `non_functional`, ...).
    #[serde(default)]
    #[eserde(compat)]
    requirements: Option<Requirements>,
    /// What must hold for the task to be done.
    #[serde(default)]
    #[eserde(compat)]
    acceptance_criteria: Option<Criteria>,
    /// The project of the path, repeated (seed 000 sends it); any other id is
    /// refused.
    #[serde(default)]
    #[eserde(compat)]
    project_id: Option<ProjectId>,
    #[schema(ignore)]
    #[serde(default, rename = "id")]
    #[eserde(compat)]
    _id: SetByPlatform,
    #[schema(ignore)]
    #[serde(default, rename = "tenant_id")]
    #[eserde(compat)]
    _tenant_id: SetByPlatform,
    #[schema(ignore)]
    #[serde(default, rename = "created_by")]
    #[eserde(compat)]
    _created_by: SetByPlatform,
    #[schema(ignore)]
    #[serde(default, rename = "created_at")]
    #[eserde(compat)]
    _created_at: SetByPlatform,
    #[schema(ignore)]
    #[serde(default, rename = "updated_at")]
    #[eserde(compat)]
    _updated_at: SetByPlatform,
}

impl CreateTask {
    pub fn into_task(self, tenant_id: Uuid, project_id: Uuid, created_by: Uuid) -> AppResult<Task> {
        if self.project_id.is_some_and(|named| named.0 != project_id) {
            return Err(AppError::validation(vec![FieldError::new(
                "project_id",
                "must be the project of the path, or be left out",
            )]));
        }
        let now = shared::domain::now();
        Ok(Task {
            id: Uuid::now_v7(),
            project_id,
            tenant_id,
            title: self.title.into_inner(),
            description: self.description.map(Text::into_inner),
            status: self.status.unwrap_or(TaskStatus::Todo),
            priority: self.priority.unwrap_or(Priority::Medium),
            assignee_id: self.assignee_id.map(|a| a.0),
            due_date: self.due_date.map(|d| d.0),
            requirements: self.requirements.map_or_else(empty_object, |r| Value::Object(r.into_inner())),
            acceptance_criteria: self.acceptance_criteria.map(Criteria::into_inner).unwrap_or_default(),
            analysis_status: None,
            analysis_job_id: None,
            ai_analysis: None,
            created_by,
            created_at: now,
            updated_at: now,
        })
    }
}

/// `PUT`/`PATCH /v1/projects/{id}/tasks/{task_id}`: absent fields stay,
/// `null` clears `description`, `assignee_id` and `due_date` (removed),
/// `requirements` (`{}`) and `acceptance_criteria` (`[]`), and is refused on
/// `title`, `status` and `priority`. A task stays in its project.
#[derive(Debug, eserde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateTask {
    /// A new title (`null` is refused).
    #[serde(default)]
    #[eserde(compat)]
    title: Settable<TaskTitle>,
    /// `null` removes it.
    #[serde(default)]
    #[eserde(compat)]
    description: Patch<TaskDescription>,
    /// `null` is refused.
    #[serde(default)]
    #[eserde(compat)]
    status: Settable<TaskStatus>,
    /// `null` is refused.
    #[serde(default)]
    #[eserde(compat)]
    priority: Settable<Priority>,
    /// A user of the tenant (else 400 naming `assignee_id`); `null` removes it.
    #[serde(default)]
    #[eserde(compat)]
    assignee_id: Patch<UserId>,
    /// `null` removes it.
    #[serde(default)]
    #[eserde(compat)]
    due_date: Patch<DueDate>,
    /// Replaces the whole object; `null` empties it.
    #[serde(default)]
    #[eserde(compat)]
    requirements: Patch<Requirements>,
    /// `null` empties it.
    #[serde(default)]
    #[eserde(compat)]
    acceptance_criteria: Patch<Criteria>,
    #[schema(ignore)]
    #[serde(default, rename = "project_id")]
    #[eserde(compat)]
    _project_id: SetByPlatform,
    #[schema(ignore)]
    #[serde(default, rename = "id")]
    #[eserde(compat)]
    _id: SetByPlatform,
    #[schema(ignore)]
    #[serde(default, rename = "tenant_id")]
    #[eserde(compat)]
    _tenant_id: SetByPlatform,
    #[schema(ignore)]
    #[serde(default, rename = "created_by")]
    #[eserde(compat)]
    _created_by: SetByPlatform,
    #[schema(ignore)]
    #[serde(default, rename = "created_at")]
    #[eserde(compat)]
    _created_at: SetByPlatform,
    #[schema(ignore)]
    #[serde(default, rename = "updated_at")]
    #[eserde(compat)]
    _updated_at: SetByPlatform,
}

impl UpdateTask {
    pub fn changes(self) -> Changes {
        let mut changes = Changes::default();
        let new_assignee = self.assignee_id.value().map(|a| a.0);
        set_some(&mut changes, "title", self.title, |t| json!(t.into_inner()));
        set_or_remove(&mut changes, "description", self.description, |d| json!(d.into_inner()));
        set_some(&mut changes, "status", self.status, |s| json!(s));
        set_some(&mut changes, "priority", self.priority, |p| json!(p));
        set_or_remove(&mut changes, "assignee_id", self.assignee_id, |a| json!(a));
        set_or_remove(&mut changes, "due_date", self.due_date, |d| json!(shared::domain::rfc3339(d.0)));
        set_or_empty_object(&mut changes, "requirements", self.requirements, |r| Value::Object(r.into_inner()));
        set_or_empty_list(&mut changes, "acceptance_criteria", self.acceptance_criteria, |l| json!(l.into_inner()));
        changes.new_assignee = new_assignee;
        changes
    }
}

// ---------------------------------------------------------------- routes --

/// `GET /v1/projects` filters.
#[derive(Debug, eserde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ProjectFilters {
    #[serde(default)]
    #[eserde(compat)]
    status: Option<ProjectStatus>,
    #[serde(default)]
    #[eserde(compat)]
    priority: Option<Priority>,
}

/// Lists the tenant's projects.
///
/// In creation order, optionally filtered by `status` and `priority`. The
/// list is eventually consistent: a project created a moment ago can be
/// missing from it for a moment, never from `GET /v1/projects/{id}`.
#[utoipa::path(get, path = "/v1/projects", tag = "projects", security(("bearer" = ["user"]), ("api_key" = ["projects:read"])),
    params(
        ("status" = Option<ProjectStatus>, Query, description = "Only the projects in this state"),
        ("priority" = Option<Priority>, Query, description = "Only the projects of this priority"),
    ),
    responses((status = 200, description = "A page of projects", body = Page<ProjectView>)))]
async fn list_projects(
    State(state): State<AppState>,
    principal: Principal,
    query: Result<ListQuery<ProjectFilters>, AppError>,
) -> AppResult<Page<ProjectView>> {
    let scope = principal.require(Role::User, Scope::ProjectsRead, PROJECT)?;
    let ListQuery { page, filters } = query?;
    let filter = ProjectFilter { status: filters.status, priority: filters.priority };
    let (projects, next_cursor) = state.store.list_projects(&scope, &filter, &page).await?;
    Ok(Page { data: projects.iter().map(Project::view).collect(), next_cursor })
}

/// Creates a project.
///
/// Only `name` is required; `priority` defaults to `medium`, `status` to
/// `active`. The project takes a slot of the plan's `projects` quota in the
/// same transaction, so concurrent creates never pass the limit together.
#[utoipa::path(post, path = "/v1/projects", tag = "projects", security(("bearer" = ["developer"]), ("api_key" = ["projects:write"])),
    request_body(content = CreateProject, examples(
        ("isolation_scenario" = (summary = "Seed 000, tenant isolation", value = json!({
            "name": "Mobile App MVP",
            "description": "React Native mobile application for startup launch",
            "technology_stack": ["React Native", "Node.js", "PostgreSQL"],
            "priority": "high"
        }))),
        ("enterprise_project" = (summary = "Seed 000, scenario 5", value = json!({
            "name": "Enterprise Payment Processing System",
            "description": "Comprehensive payment processing system with fraud detection, compliance reporting, and multi-currency support",
            "technology_stack": [
                "Python", "FastAPI", "PostgreSQL", "Redis", "Stripe", "Docker"
            ],
            "compliance_requirements": [
                "PCI_DSS", "SOX", "GDPR", "SOC2"
            ],
            "performance_targets": {
                "response_time_p95": "< 200ms",
                "throughput": "10000 req/sec",
                "availability": "99.95%"
            },
            "security_requirements": [
                "end_to_end_encryption", "audit_logging", "fraud_detection", "3d_secure"
            ]
        }))),
    )),
    responses(
        (status = 201, description = "Created", body = ProjectView,
            headers(("Location" = String, description = "The new project's path, `/v1/projects/{id}`"))),
        (status = 403, description = "Forbidden\n\n- `quota_exceeded`: the plan's `projects` quota is full (`details`: `quota_type`, `current_usage`, `plan_limit`, `requested_increase`, `available_slots`, `suggested_action`, `upgrade_options`)\n- `insufficient_permissions`: the role or API key scope is not enough (`details.required_role`, `details.current_role`)\n- `tenant_mismatch`: `X-Tenant-ID` names another tenant than the credentials'\n- `tenant_inactive`: the tenant is suspended or deleted", body = ApiError),
        (status = 409, description = "Conflict\n\n- `conflict`: another request changed the tenant's quota counter at the same moment: retry\n- `idempotency_key_in_use`: a request with this `Idempotency-Key` is still running: retry shortly", body = ApiError),
    ))]
async fn create_project(
    State(state): State<AppState>,
    principal: Principal,
    audit: AuditContext,
    body: Result<Body<CreateProject>, AppError>,
) -> AppResult<Answer> {
    let scope = principal.require(Role::Developer, Scope::ProjectsWrite, PROJECT)?;
    let Body(request) = body?;
    let project = request.into_project(scope.tenant_id(), principal.user_id());
    // Built before the commit: an Idempotency-Key's record stores it in the
    // project's transaction (shared::idempotency).
    let answer = Answer::json(StatusCode::CREATED, &project.view())?.at(&format!("/v1/projects/{}", project.id));
    answer.prepare()?;
    state.store.create_project(&scope, &project, &audit).await?;
    Ok(answer)
}

/// Gets a project.
#[utoipa::path(get, path = "/v1/projects/{id}", tag = "projects", security(("bearer" = ["user"]), ("api_key" = ["projects:read"])),
    responses((status = 200, description = "The project", body = ProjectView)))]
async fn get_project(
    State(state): State<AppState>,
    principal: Principal,
    path: Result<PathIds<ProjectId>, AppError>,
) -> AppResult<Json<ProjectView>> {
    let scope = principal.require(Role::User, Scope::ProjectsRead, PROJECT)?;
    let PathIds(ProjectId(id)) = path?;
    // Read with credentials that can only read this tenant's partitions.
    let store = state.tenant_store(&scope).await?;
    let project = store.get_project(&scope, id).await?.ok_or_else(|| AppError::not_found(PROJECT))?;
    Ok(Json(project.view()))
}

/// Updates a project.
///
/// `PUT` and `PATCH` alike: a partial update. Absent fields stay; `null`
/// clears an optional field (`description` is removed, lists become `[]`,
/// `performance_targets` `{}`) and is refused on `name`, `priority` and
/// `status`. An empty body changes nothing and answers the project.
#[utoipa::path(method(put, patch), path = "/v1/projects/{id}", tag = "projects", security(("bearer" = ["developer"]), ("api_key" = ["projects:write"])),
    request_body(content = UpdateProject, example = json!({
        "priority": "critical",
        "technology_stack": ["Rust", "DynamoDB"],
        "description": null
    })),
    responses(
        (status = 200, description = "The updated project", body = ProjectView),
        (status = 409, description = "Conflict\n\n- `conflict`: the project kept being changed by other requests: retry", body = ApiError),
    ))]
async fn update_project(
    State(state): State<AppState>,
    principal: Principal,
    audit: AuditContext,
    PathIds(ProjectId(id)): PathIds<ProjectId>,
    body: Result<Body<UpdateProject>, AppError>,
) -> AppResult<Json<ProjectView>> {
    let scope = principal.require(Role::Developer, Scope::ProjectsWrite, PROJECT)?;
    let Body(request) = body?;
    let changes = request.changes();
    let project = if changes.is_empty() {
        state.store.get_project(&scope, id).await?
    } else {
        state.store.update_project(&scope, id, &changes, &audit).await?
    };
    Ok(Json(project.ok_or_else(|| AppError::not_found(PROJECT))?.view()))
}

/// Deletes a project and its tasks.
///
/// The project, its tasks and their audit entries go in one transaction,
/// which also gives its slot of the plan's `projects` quota back. A project
/// with more than 48 tasks is refused (409): delete some of its tasks first.
#[utoipa::path(delete, path = "/v1/projects/{id}", tag = "projects", security(("bearer" = ["admin"]), ("api_key" = ["projects:write"])),
    responses(
        (status = 204, description = "Deleted, with its tasks"),
        (status = 409, description = "Conflict\n\n- `conflict`: the project has too many tasks to delete at once (`details.reason`: `too_many_tasks`, with `task_count` and `max_tasks_deleted_with_project`), or it kept being changed by other requests: retry", body = ApiError),
    ))]
async fn delete_project(
    State(state): State<AppState>,
    principal: Principal,
    audit: AuditContext,
    PathIds(ProjectId(id)): PathIds<ProjectId>,
) -> AppResult<StatusCode> {
    let scope = principal.require(Role::Admin, Scope::ProjectsWrite, PROJECT)?;
    if !state.store.delete_project(&scope, id, &audit).await? {
        return Err(AppError::not_found(PROJECT));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v1/projects/{id}/tasks` filters.
#[derive(Debug, eserde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TaskFilters {
    #[serde(default)]
    #[eserde(compat)]
    status: Option<TaskStatus>,
    #[serde(default)]
    #[eserde(compat)]
    assignee_id: Option<UserId>,
}

/// Lists a project's tasks.
///
/// In creation order, optionally filtered by `status` and `assignee_id`.
#[utoipa::path(get, path = "/v1/projects/{id}/tasks", tag = "projects", security(("bearer" = ["user"]), ("api_key" = ["projects:read"])),
    params(
        ("status" = Option<TaskStatus>, Query, description = "Only the tasks in this state"),
        ("assignee_id" = Option<UserId>, Query, description = "Only the tasks assigned to this user"),
    ),
    responses((status = 200, description = "A page of the project's tasks", body = Page<TaskView>)))]
async fn list_tasks(
    State(state): State<AppState>,
    principal: Principal,
    path: Result<PathIds<ProjectId>, AppError>,
    query: Result<ListQuery<TaskFilters>, AppError>,
) -> AppResult<Page<TaskView>> {
    let scope = principal.require(Role::User, Scope::ProjectsRead, TASK)?;
    let PathIds(ProjectId(project_id)) = path?;
    let ListQuery { page, filters } = query?;
    let filter = TaskFilter { status: filters.status, assignee_id: filters.assignee_id.map(|a| a.0) };
    let (tasks, next_cursor) = state
        .store
        .list_tasks(&scope, project_id, &filter, &page)
        .await?
        .ok_or_else(|| AppError::not_found(PROJECT))?;
    Ok(Page { data: tasks.iter().map(Task::view).collect(), next_cursor })
}

/// Creates a task in a project.
///
/// Only `title` is required; `status` defaults to `todo`, `priority` to
/// `medium`. `assignee_id` must be a user of the tenant. `project_id` may be
/// repeated in the body (seed 000 sends it) but must be the project of the
/// path.
#[utoipa::path(post, path = "/v1/projects/{id}/tasks", tag = "projects", security(("bearer" = ["developer"]), ("api_key" = ["projects:write"])),
    request_body(content = CreateTask, example = seed_task_example),
    responses(
        (status = 201, description = "Created", body = TaskView,
            headers(("Location" = String, description = "The new task's path, `/v1/projects/{id}/tasks/{task_id}`"))),
        (status = 409, description = "Conflict\n\n- `conflict`: another request changed the project at the same moment: retry\n- `idempotency_key_in_use`: a request with this `Idempotency-Key` is still running: retry shortly", body = ApiError),
    ))]
async fn create_task(
    State(state): State<AppState>,
    principal: Principal,
    audit: AuditContext,
    PathIds(ProjectId(project_id)): PathIds<ProjectId>,
    body: Result<Body<CreateTask>, AppError>,
) -> AppResult<Created<TaskView>> {
    let scope = principal.require(Role::Developer, Scope::ProjectsWrite, TASK)?;
    let Body(request) = body?;
    let task = request.into_task(scope.tenant_id(), project_id, principal.user_id())?;
    state.store.create_task(&scope, &task, &audit).await?;
    Ok(created(format!("/v1/projects/{project_id}/tasks/{}", task.id), task.view()))
}

/// Seed 000 scenario 5's task, the example of both task creates.
fn seed_task_example() -> Value {
    json!({
        "title": "Multi-Currency Payment Processing with Fraud Detection",
        "description": "Implement comprehensive payment processing system supporting 20+ currencies with real-time fraud detection, PCI DSS compliance, and detailed audit logging",
        "priority": "high",
        "project_id": "01904f1e-8c2a-7b3d-9e4f-5a6b7c8d9e0f",
        "requirements": {
            "functional": [
                "multi_currency_support",
                "real_time_fraud_detection",
                "3d_secure_authentication",
                "webhook_processing",
                "refund_management",
                "subscription_billing",
                "invoice_generation"
            ],
            "non_functional": [
                "pci_dss_compliance",
                "sub_200ms_response_time",
                "99_99_availability",
                "end_to_end_encryption",
                "audit_trail_logging"
            ],
            "integrations": [
                "stripe_api",
                "paypal_api",
                "bank_apis",
                "fraud_detection_service",
                "tax_calculation_service"
            ],
            "testing": [
                "unit_tests_90_coverage",
                "integration_tests",
                "security_penetration_tests",
                "load_tests_10k_tps",
                "chaos_engineering"
            ]
        },
        "acceptance_criteria": [
            "Process payments in 20+ currencies",
            "Detect fraud with <1% false positive rate",
            "Handle 10,000+ transactions per second",
            "Maintain PCI DSS Level 1 compliance",
            "Provide real-time transaction monitoring"
        ]
    })
}

/// A task created with its AI analysis under way.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TaskAnalysisStarted {
    pub task_id: Uuid,
    pub project_id: Uuid,
    /// `analyzing`: the analysis job is queued; read the task (or the job)
    /// for `ai_analysis`.
    pub status: AnalysisStatus,
    /// The analysis job (`GET /v1/ai/generation-status/{id}`).
    pub analysis_job_id: Uuid,
    /// Null until the analysis completes.
    pub ai_analysis: Option<AiAnalysis>,
    /// The credit the analysis costs (one model call), refunded if it fails.
    pub credits_reserved: i64,
    pub task: TaskView,
}

/// Creates a task and has it analysed by AI.
///
/// Seed 000's `POST /tasks`: the body of `POST /v1/projects/{id}/tasks`
/// with `project_id` required. The task, its analysis job and the job's
/// price (one credit: one model call, within `ai_requests_monthly`) are
/// one transaction. 201 with `status: analyzing`; the task carries
/// `ai_analysis` once the ai-worker is done (`ai.analysis.completed`).
#[utoipa::path(post, path = "/v1/tasks", tag = "projects", security(("bearer" = ["developer"]), ("api_key" = ["projects:write"])),
    request_body(content = CreateTask, example = seed_task_example),
    responses(
        (status = 201, description = "The task, its analysis queued", body = TaskAnalysisStarted,
            headers(("Location" = String, description = "The new task's path, `/v1/projects/{id}/tasks/{task_id}`"))),
        (status = 402, description = "Payment required\n\n- `insufficient_credits`: the balance is below the analysis's price; nothing was created", body = ApiError),
        (status = 403, description = "Forbidden\n\n- `quota_exceeded`: this month's `ai_requests` are at `ai_requests_monthly`", body = ApiError),
        (status = 404, description = "Not found\n\n- `not_found`: no project `project_id` in the caller's tenant", body = ApiError),
        (status = 409, description = "Conflict\n\n- `conflict`: the credit balance is being changed by many requests at once; nothing was created: try again\n- `idempotency_key_in_use`: a request with this `Idempotency-Key` is still running: retry shortly", body = ApiError),
    ))]
async fn create_analyzed_task(
    State(state): State<AppState>,
    principal: Principal,
    audit: AuditContext,
    body: Result<Body<CreateTask>, AppError>,
) -> AppResult<Created<TaskAnalysisStarted>> {
    let scope = principal.require(Role::Developer, Scope::ProjectsWrite, TASK)?;
    let Body(request) = body?;
    let Some(ProjectId(project_id)) = request.project_id else {
        return Err(AppError::validation(vec![FieldError::new("project_id", "is required: the task's project")]));
    };
    let mut task = request.into_task(scope.tenant_id(), project_id, principal.user_id())?;
    let project = state.store.get_project(&scope, project_id).await?.ok_or_else(|| AppError::not_found(PROJECT))?;
    let context = JobContext::of(&task, &project, json!({}), None);
    let job = AiJob::queued(
        scope.tenant_id(),
        JobKind::Analysis,
        task.id,
        project_id,
        &ai::analysis_phases(),
        context,
        principal.user_id().to_string(),
    );
    task.analysis_status = Some(AnalysisStatus::Analyzing);
    task.analysis_job_id = Some(job.id);
    state.store.create_task_with_analysis(&scope, &task, &job, &audit).await?;
    let started = TaskAnalysisStarted {
        task_id: task.id,
        project_id,
        status: AnalysisStatus::Analyzing,
        analysis_job_id: job.id,
        ai_analysis: None,
        credits_reserved: job.credits_reserved,
        task: task.view(),
    };
    Ok(created(format!("/v1/projects/{project_id}/tasks/{}", task.id), started))
}

/// Gets a task.
#[utoipa::path(get, path = "/v1/projects/{id}/tasks/{task_id}", tag = "projects", security(("bearer" = ["user"]), ("api_key" = ["projects:read"])),
    responses((status = 200, description = "The task", body = TaskView)))]
async fn get_task(
    State(state): State<AppState>,
    principal: Principal,
    path: Result<PathIds<(ProjectId, TaskId)>, AppError>,
) -> AppResult<Json<TaskView>> {
    let scope = principal.require(Role::User, Scope::ProjectsRead, TASK)?;
    let PathIds((ProjectId(project_id), TaskId(task_id))) = path?;
    let store = state.tenant_store(&scope).await?;
    let task = store.get_task(&scope, project_id, task_id).await?.ok_or_else(|| AppError::not_found(TASK))?;
    Ok(Json(task.view()))
}

/// Updates a task.
///
/// `PUT` and `PATCH` alike: a partial update. Absent fields stay; `null`
/// clears an optional field (`description`, `assignee_id` and `due_date`
/// are removed, `requirements` becomes `{}`, `acceptance_criteria` `[]`)
/// and is refused on `title`, `status` and `priority`. A new `assignee_id`
/// must be a user of the tenant. A task stays in its project. An empty body
/// changes nothing and answers the task.
#[utoipa::path(method(put, patch), path = "/v1/projects/{id}/tasks/{task_id}", tag = "projects", security(("bearer" = ["developer"]), ("api_key" = ["projects:write"])),
    request_body(content = UpdateTask, example = json!({
        "status": "in_progress",
        "due_date": "2025-03-01T17:00:00Z",
        "acceptance_criteria": ["Process payments in 20+ currencies"]
    })),
    responses(
        (status = 200, description = "The updated task", body = TaskView),
        (status = 409, description = "Conflict\n\n- `conflict`: the task kept being changed by other requests: retry", body = ApiError),
    ))]
async fn update_task(
    State(state): State<AppState>,
    principal: Principal,
    audit: AuditContext,
    PathIds((ProjectId(project_id), TaskId(task_id))): PathIds<(ProjectId, TaskId)>,
    body: Result<Body<UpdateTask>, AppError>,
) -> AppResult<Json<TaskView>> {
    let scope = principal.require(Role::Developer, Scope::ProjectsWrite, TASK)?;
    let Body(request) = body?;
    let changes = request.changes();
    let task = if changes.is_empty() {
        state.store.get_task(&scope, project_id, task_id).await?
    } else {
        state.store.update_task(&scope, project_id, task_id, &changes, &audit).await?
    };
    Ok(Json(task.ok_or_else(|| AppError::not_found(TASK))?.view()))
}

/// Deletes a task.
#[utoipa::path(delete, path = "/v1/projects/{id}/tasks/{task_id}", tag = "projects", security(("bearer" = ["admin"]), ("api_key" = ["projects:write"])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 409, description = "Conflict\n\n- `conflict`: the task kept being changed by other requests: retry", body = ApiError),
    ))]
async fn delete_task(
    State(state): State<AppState>,
    principal: Principal,
    audit: AuditContext,
    PathIds((ProjectId(project_id), TaskId(task_id))): PathIds<(ProjectId, TaskId)>,
) -> AppResult<StatusCode> {
    let scope = principal.require(Role::Admin, Scope::ProjectsWrite, TASK)?;
    if !state.store.delete_task(&scope, project_id, task_id, &audit).await? {
        return Err(AppError::not_found(TASK));
    }
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use shared::web::extract::parse_body;

    use super::*;

    fn parse<T: for<'de> eserde::EDeserialize<'de>>(body: Value) -> AppResult<T> {
        parse_body::<T>(body.to_string().as_bytes())
    }

    fn fields_of(err: AppError) -> Vec<String> {
        let AppError::Api { details, .. } = err else { panic!("api error") };
        details["fields"]
            .as_array()
            .expect("fields")
            .iter()
            .map(|f| f["field"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    fn project(body: Value) -> AppResult<Project> {
        parse::<CreateProject>(body).map(|p| p.into_project(Uuid::nil(), Uuid::nil()))
    }

    fn task(body: Value, project_id: Uuid) -> AppResult<Task> {
        parse::<CreateTask>(body)?.into_task(Uuid::nil(), project_id, Uuid::nil())
    }

    /// Every request example of the OpenAPI document (seed 000's bodies)
    /// is accepted as it stands.
    #[test]
    fn every_documented_example_is_accepted() {
        let doc = serde_json::to_value(<ApiDoc as utoipa::OpenApi>::openapi()).expect("document");
        let mut checked = 0;
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (method, operation) in item.as_object().expect("path item") {
                let content = &operation["requestBody"]["content"]["application/json"];
                let Some(schema) = content["schema"]["$ref"].as_str() else { continue };
                let mut examples: Vec<&Value> = content.get("example").into_iter().collect();
                if let Some(named) = content.get("examples").and_then(Value::as_object) {
                    examples.extend(named.values().map(|e| &e["value"]));
                }
                assert!(!examples.is_empty(), "{method} {path}: no example");
                for example in examples {
                    let accepted = match schema.rsplit('/').next() {
                        Some("CreateProject") => parse::<CreateProject>(example.clone()).map(drop),
                        Some("UpdateProject") => parse::<UpdateProject>(example.clone()).map(drop),
                        Some("CreateTask") => parse::<CreateTask>(example.clone()).map(drop),
                        Some("UpdateTask") => parse::<UpdateTask>(example.clone()).map(drop),
                        other => panic!("{method} {path}: unexpected body {other:?}"),
                    };
                    assert!(accepted.is_ok(), "{method} {path}: {example} refused");
                    checked += 1;
                }
            }
        }
        assert_eq!(
            checked, 8,
            "2 project creates, 2 task creates (in a project, and POST /v1/tasks), PUT and PATCH of each update"
        );
    }

    #[test]
    fn seed_000s_enterprise_project_is_valid_with_defaults() {
        let body = json!({
            "name": "Enterprise Payment Processing System",
            "description": "Comprehensive payment processing system",
            "technology_stack": ["Python", "FastAPI", "PostgreSQL", "Redis", "Stripe", "Docker"],
            "compliance_requirements": ["PCI_DSS", "SOX", "GDPR", "SOC2"],
            "performance_targets": {"response_time_p95": "< 200ms", "throughput": "10000 req/sec"},
            "security_requirements": ["end_to_end_encryption", "audit_logging"]
        });
        let (tenant, user) = (Uuid::now_v7(), Uuid::now_v7());
        let p = parse::<CreateProject>(body).expect("valid").into_project(tenant, user);
        assert_eq!(p.priority, Priority::Medium);
        assert_eq!(p.status, ProjectStatus::Active);
        assert_eq!((p.tenant_id, p.created_by, p.task_count), (tenant, user, 0));
        assert_eq!(p.technology_stack.len(), 6);
        let view = serde_json::to_value(p.view()).expect("view");
        assert_eq!(view["performance_targets"]["throughput"], "10000 req/sec");
        assert_eq!(view["priority"], "medium");
        // The body was the stored JSON before views: every field stays on the wire.
        assert_eq!(view, serde_json::to_value(&p).expect("stored"));
        assert_eq!(p.created_at, p.updated_at);
    }

    #[test]
    fn project_problems_are_all_named_in_the_bodys_order() {
        let body = json!({
            "name": "n",
            "description": "x".repeat(2001),
            "technology_stack": ["Rust", "", 7, "y".repeat(51)],
            "priority": "urgent",
            "status": "deleted",
            "compliance_requirements": vec!["a"; 21],
            "performance_targets": ["not", "an", "object"],
            "security_requirements": "tls",
            "task_count": 3
        });
        let fields = fields_of(project(body).expect_err("invalid"));
        assert_eq!(
            fields,
            [
                "compliance_requirements",
                "description",
                "performance_targets",
                "priority",
                "security_requirements",
                "status",
                "task_count",
                "technology_stack[1]",
            ]
        );
        assert_eq!(fields_of(project(json!({"name": "n", "owner": "me"})).expect_err("unknown")), ["owner"]);
        assert_eq!(fields_of(project(json!({})).expect_err("no name")), ["name"]);
    }

    #[test]
    fn names_and_enums_have_bounds_and_canonical_spelling() {
        for bad in [json!(""), json!("   "), json!("n".repeat(201)), json!(1), Value::Null] {
            assert_eq!(fields_of(project(json!({"name": bad})).expect_err("bad")), ["name"]);
        }
        let p = project(json!({"name": "n".repeat(200), "priority": "HIGH"})).expect("valid");
        assert_eq!(serde_json::to_value(p.view()).expect("view")["priority"], "high");
    }

    #[test]
    fn performance_targets_are_bounded() {
        let many: serde_json::Map<String, Value> = (0..21).map(|i| (format!("k{i}"), json!(i))).collect();
        let err = project(json!({"name": "n", "performance_targets": many})).expect_err("too many");
        assert_eq!(fields_of(err), ["performance_targets"]);
        let err = project(json!({"name": "n", "performance_targets": {"p95": "x".repeat(600)}})).expect_err("too big");
        assert_eq!(fields_of(err), ["performance_targets.p95"]);
        // What DynamoDB cannot store (issue 11) is refused on create and
        // update alike, at the key that holds it.
        let mut deep = json!("200ms");
        for _ in 0..100 {
            deep = json!({ "d": deep });
        }
        for (targets, field) in [
            (json!({"p95": 1e300}), "performance_targets.p95"),
            (json!({"p95": {"ms": 1e-200}}), "performance_targets.p95"),
            (json!({"p95": {"": 200}}), "performance_targets.p95"),
            (json!({"p95": deep}), "performance_targets.p95"),
            (json!({"": 200}), "performance_targets"),
        ] {
            let err = project(json!({"name": "n", "performance_targets": targets})).expect_err("unstorable");
            assert_eq!(fields_of(err), [field], "{targets}");
            let err = parse::<UpdateProject>(json!({ "performance_targets": targets })).expect_err("unstorable");
            assert_eq!(fields_of(err), [field], "{targets}");
        }
        let fits = json!({"p95_ms": 199.5, "tiny": 1e-100, "nested": {"a": [1, {"b": null}]}});
        let p = project(json!({"name": "n", "performance_targets": fits})).expect("valid");
        assert_eq!(p.performance_targets, fits);
    }

    /// `null` where a required string belongs is a 400 naming it, not a 500.
    #[test]
    fn null_on_a_required_string_is_named() {
        assert_eq!(fields_of(project(json!({"name": null})).expect_err("null")), ["name"]);
        assert_eq!(fields_of(task(json!({"title": null}), Uuid::nil()).expect_err("null")), ["title"]);
        let err = parse::<UpdateTask>(json!({"title": null, "status": null, "priority": null})).expect_err("null");
        assert_eq!(fields_of(err), ["priority", "status", "title"]);
    }

    #[test]
    fn a_project_update_sets_clears_and_refuses_nulls_on_required_fields() {
        let changes = parse::<UpdateProject>(json!({
            "name": "Renamed", "description": null, "technology_stack": null, "performance_targets": null
        }))
        .expect("valid")
        .changes();
        assert_eq!(
            changes.set,
            vec![("name", json!("Renamed")), ("technology_stack", json!([])), ("performance_targets", json!({}))]
        );
        assert_eq!(changes.remove, vec!["description"]);
        let err = parse::<UpdateProject>(json!({"name": null, "status": null, "id": "x"})).expect_err("invalid");
        assert_eq!(fields_of(err), ["id", "name", "status"]);
        assert_eq!(fields_of(parse::<UpdateProject>(json!({"colour": 1})).expect_err("unknown")), ["colour"]);
        assert!(parse::<UpdateProject>(json!({})).expect("empty").changes().is_empty());
    }

    #[test]
    fn changes_apply_to_the_stored_json() {
        let p = project(json!({"name": "A", "description": "d"})).expect("valid");
        let changes = parse::<UpdateProject>(json!({"name": "B", "description": null})).expect("valid").changes();
        let later = p.updated_at + std::time::Duration::from_secs(1);
        let stored = serde_json::to_value(&p).expect("stored");
        let new: Project = serde_json::from_value(changes.apply(&stored, later)).expect("project");
        assert_eq!(new.name, "B");
        assert_eq!(new.description, None);
        assert_eq!(new.updated_at, later);
        assert_eq!(new.created_at, p.created_at);
    }

    #[test]
    fn seed_000s_task_is_valid_with_defaults() {
        let project = Uuid::now_v7();
        let body = json!({
            "title": "Multi-Currency Payment Processing with Fraud Detection",
            "description": "Implement comprehensive payment processing",
            "priority": "high",
            "project_id": project.to_string(),
            "requirements": {"functional": ["multi_currency_support"], "testing": ["unit_tests_90_coverage"]},
            "acceptance_criteria": ["Process payments in 20+ currencies"]
        });
        let t = task(body, project).expect("valid");
        assert_eq!((t.status, t.priority), (TaskStatus::Todo, Priority::High));
        assert_eq!(t.project_id, project);
        assert_eq!(t.assignee_id, None);
        let view = serde_json::to_value(t.view()).expect("view");
        assert_eq!(view["requirements"]["functional"][0], "multi_currency_support");
        assert_eq!(view, serde_json::to_value(&t).expect("stored"));
    }

    #[test]
    fn task_problems_are_all_named() {
        let body = json!({
            "title": "t".repeat(201),
            "description": "d".repeat(5001),
            "status": "blocked",
            "priority": "whenever",
            "assignee_id": "bob",
            "due_date": "next tuesday",
            "requirements": {"functional": "all of them"},
            "acceptance_criteria": [""]
        });
        let fields = fields_of(task(body, Uuid::now_v7()).expect_err("bad"));
        assert_eq!(
            fields,
            [
                "acceptance_criteria[0]",
                "assignee_id",
                "description",
                "due_date",
                "priority",
                "requirements.functional",
                "status",
                "title"
            ]
        );
        let other = json!({"title": "t", "project_id": Uuid::now_v7().to_string()});
        assert_eq!(fields_of(task(other, Uuid::now_v7()).expect_err("other project")), ["project_id"]);
        assert_eq!(fields_of(task(json!({}), Uuid::nil()).expect_err("no title")), ["title"]);
    }

    #[test]
    fn due_dates_are_rfc_3339_date_times_or_dates_in_utc() {
        let at = |raw: &str| {
            task(json!({"title": "t", "due_date": raw}), Uuid::nil()).map(|t| t.due_date.map(shared::domain::rfc3339))
        };
        assert_eq!(at("2025-03-01T18:30:00.123456+01:00").expect("ok").as_deref(), Some("2025-03-01T17:30:00.123Z"));
        assert_eq!(at("2025-03-01").expect("ok").as_deref(), Some("2025-03-01T00:00:00Z"));
        for bad in ["2025-02-30", "01/03/2025", "2025-03-01T25:00:00Z"] {
            assert_eq!(fields_of(at(bad).expect_err(bad)), ["due_date"], "{bad}");
        }
    }

    #[test]
    fn a_task_update_sets_clears_and_keeps_its_project() {
        let assignee = Uuid::now_v7();
        let changes = parse::<UpdateTask>(json!({
            "status": "in_progress", "assignee_id": assignee.to_string(), "due_date": null, "description": null
        }))
        .expect("valid")
        .changes();
        assert_eq!(changes.set, vec![("status", json!("in_progress")), ("assignee_id", json!(assignee.to_string()))]);
        assert_eq!(changes.remove, vec!["description", "due_date"]);
        assert_eq!(changes.new_assignee, Some(assignee));
        let err =
            parse::<UpdateTask>(json!({"project_id": Uuid::now_v7().to_string(), "title": null})).expect_err("invalid");
        assert_eq!(fields_of(err), ["project_id", "title"]);
    }
}
