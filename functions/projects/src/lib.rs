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
    extract::{Path, State},
    http::{StatusCode, header::LOCATION},
    response::{IntoResponse, Response},
    routing::get,
};
use serde_json::Value;
use shared::{
    AppError, AppResult, AppState,
    audit::AuditContext,
    auth::{Principal, Role, Scope},
    domain::project::{
        PRIORITIES, PROJECT_STATUSES, Project, TASK_STATUSES, Task, project_changes, project_from_create, task_changes,
        task_from_create,
    },
    http::{JsonObject, Page, QueryParams, path_uuid},
    store::projects::{ProjectFilter, TaskFilter},
    validate::{Fields, Need},
};
use uuid::Uuid;

/// This group's routes; its Lambda and the local server add the shared layers.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/projects", get(list_projects).post(create_project))
        .route("/v1/projects/{id}", get(get_project).put(update_project).patch(update_project).delete(delete_project))
        .route("/v1/projects/{id}/tasks", get(list_tasks).post(create_task))
        .route(
            "/v1/projects/{id}/tasks/{task_id}",
            get(get_task).put(update_task).patch(update_task).delete(delete_task),
        )
}

const PROJECT: &str = "project";
const TASK: &str = "task";

/// Both ids of a task path, each problem named.
fn task_path(project: &str, task: &str) -> AppResult<(Uuid, Uuid)> {
    match (Uuid::parse_str(project), Uuid::parse_str(task)) {
        (Ok(p), Ok(t)) => Ok((p, t)),
        (Err(_), Ok(_)) => Err(AppError::invalid_field("project_id", "must be a valid UUID")),
        (Ok(_), Err(_)) => Err(AppError::invalid_field("task_id", "must be a valid UUID")),
        (Err(_), Err(_)) => Err(AppError::validation(vec![
            shared::error::FieldError::new("project_id", "must be a valid UUID"),
            shared::error::FieldError::new("task_id", "must be a valid UUID"),
        ])),
    }
}

fn created(location: String, body: Value) -> Response {
    (StatusCode::CREATED, [(LOCATION, location)], Json(body)).into_response()
}

async fn list_projects(
    State(state): State<AppState>,
    principal: Principal,
    params: QueryParams,
) -> AppResult<Page<Value>> {
    let scope = principal.require(Role::User, Scope::ProjectsRead, PROJECT)?;
    params.allow_only(&["limit", "cursor", "status", "priority"])?;
    let page = params.page()?;
    let filters = params.as_object();
    let mut f = Fields::new(&filters);
    let status = f.one_of("status", Need::Optional, PROJECT_STATUSES);
    let priority = f.one_of("priority", Need::Optional, PRIORITIES);
    f.finish()?;
    let (projects, next_cursor) = state.store.list_projects(&scope, &ProjectFilter { status, priority }, &page).await?;
    Ok(Page { data: projects.iter().map(Project::to_body).collect(), next_cursor })
}

async fn create_project(
    State(state): State<AppState>,
    principal: Principal,
    audit: AuditContext,
    JsonObject(body): JsonObject,
) -> AppResult<Response> {
    let scope = principal.require(Role::Developer, Scope::ProjectsWrite, PROJECT)?;
    let project = project_from_create(&body, scope.tenant_id(), principal.user_id())?;
    state.store.create_project(&scope, &project, &audit).await?;
    Ok(created(format!("/v1/projects/{}", project.id), project.to_body()))
}

async fn get_project(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> AppResult<Json<Value>> {
    let scope = principal.require(Role::User, Scope::ProjectsRead, PROJECT)?;
    let id = path_uuid(&id, "project_id")?;
    let project = state.store.get_project(&scope, id).await?.ok_or_else(|| AppError::not_found(PROJECT))?;
    Ok(Json(project.to_body()))
}

/// `PUT` and `PATCH` alike: absent fields stay, `null` clears optional ones.
async fn update_project(
    State(state): State<AppState>,
    principal: Principal,
    audit: AuditContext,
    Path(id): Path<String>,
    JsonObject(body): JsonObject,
) -> AppResult<Json<Value>> {
    let id = path_uuid(&id, "project_id")?;
    let scope = principal.require(Role::Developer, Scope::ProjectsWrite, PROJECT)?;
    let changes = project_changes(&body)?;
    let project = if changes.is_empty() {
        state.store.get_project(&scope, id).await?
    } else {
        state.store.update_project(&scope, id, &changes, &audit).await?
    };
    Ok(Json(project.ok_or_else(|| AppError::not_found(PROJECT))?.to_body()))
}

/// Deletes the project, its tasks, and frees its quota slot.
async fn delete_project(
    State(state): State<AppState>,
    principal: Principal,
    audit: AuditContext,
    Path(id): Path<String>,
) -> AppResult<StatusCode> {
    let id = path_uuid(&id, "project_id")?;
    let scope = principal.require(Role::Admin, Scope::ProjectsWrite, PROJECT)?;
    if !state.store.delete_project(&scope, id, &audit).await? {
        return Err(AppError::not_found(PROJECT));
    }
    Ok(StatusCode::NO_CONTENT)
}

async fn list_tasks(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    params: QueryParams,
) -> AppResult<Page<Value>> {
    let scope = principal.require(Role::User, Scope::ProjectsRead, TASK)?;
    let project_id = path_uuid(&id, "project_id")?;
    params.allow_only(&["limit", "cursor", "status", "assignee_id"])?;
    let page = params.page()?;
    let filters = params.as_object();
    let mut f = Fields::new(&filters);
    let status = f.one_of("status", Need::Optional, TASK_STATUSES);
    let assignee_id = f.uuid("assignee_id", Need::Optional);
    f.finish()?;
    let (tasks, next_cursor) = state
        .store
        .list_tasks(&scope, project_id, &TaskFilter { status, assignee_id }, &page)
        .await?
        .ok_or_else(|| AppError::not_found(PROJECT))?;
    Ok(Page { data: tasks.iter().map(Task::to_body).collect(), next_cursor })
}

async fn create_task(
    State(state): State<AppState>,
    principal: Principal,
    audit: AuditContext,
    Path(id): Path<String>,
    JsonObject(body): JsonObject,
) -> AppResult<Response> {
    let project_id = path_uuid(&id, "project_id")?;
    let scope = principal.require(Role::Developer, Scope::ProjectsWrite, TASK)?;
    let task = task_from_create(&body, scope.tenant_id(), project_id, principal.user_id())?;
    state.store.create_task(&scope, &task, &audit).await?;
    Ok(created(format!("/v1/projects/{project_id}/tasks/{}", task.id), task.to_body()))
}

async fn get_task(
    State(state): State<AppState>,
    principal: Principal,
    Path((project_id, task_id)): Path<(String, String)>,
) -> AppResult<Json<Value>> {
    let scope = principal.require(Role::User, Scope::ProjectsRead, TASK)?;
    let (project_id, task_id) = task_path(&project_id, &task_id)?;
    let task = state.store.get_task(&scope, project_id, task_id).await?.ok_or_else(|| AppError::not_found(TASK))?;
    Ok(Json(task.to_body()))
}

/// `PUT` and `PATCH` alike: absent fields stay, `null` clears optional ones.
async fn update_task(
    State(state): State<AppState>,
    principal: Principal,
    audit: AuditContext,
    Path((project_id, task_id)): Path<(String, String)>,
    JsonObject(body): JsonObject,
) -> AppResult<Json<Value>> {
    let (project_id, task_id) = task_path(&project_id, &task_id)?;
    let scope = principal.require(Role::Developer, Scope::ProjectsWrite, TASK)?;
    let changes = task_changes(&body)?;
    let task = if changes.is_empty() {
        state.store.get_task(&scope, project_id, task_id).await?
    } else {
        state.store.update_task(&scope, project_id, task_id, &changes, &audit).await?
    };
    Ok(Json(task.ok_or_else(|| AppError::not_found(TASK))?.to_body()))
}

async fn delete_task(
    State(state): State<AppState>,
    principal: Principal,
    audit: AuditContext,
    Path((project_id, task_id)): Path<(String, String)>,
) -> AppResult<StatusCode> {
    let (project_id, task_id) = task_path(&project_id, &task_id)?;
    let scope = principal.require(Role::Admin, Scope::ProjectsWrite, TASK)?;
    if !state.store.delete_task(&scope, project_id, task_id, &audit).await? {
        return Err(AppError::not_found(TASK));
    }
    Ok(StatusCode::NO_CONTENT)
}
