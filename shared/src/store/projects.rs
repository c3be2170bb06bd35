//! Projects and tasks, in their tenant's partition.
//!
//! | item | PK | SK | other keys |
//! |---|---|---|---|
//! | project | `T#<tenant>#` | `PROJECT#<project>` | `GSI1PK=T#<tenant>#PROJECTS`, `GSI1SK=<project>` |
//! | task | `T#<tenant>#` | `PROJECT#<project>#TASK#<task>` | |
//!
//! A project sorts right before its tasks, so `begins_with(SK, "PROJECT#<id>")`
//! is the project and all its tasks in one Query (delete uses it), and
//! `begins_with(SK, "PROJECT#<id>#TASK#")` is exactly its tasks (the task list,
//! with `status`/`assignee_id` as filters). Projects are listed from GSI1's
//! sparse per-tenant partition `T#<tenant>#PROJECTS` (only project items
//! carry it), so a project list never reads tasks; ids are UUIDv7, so the
//! list is in creation order. Like every GSI read it is eventually consistent
//! (a project created a moment ago can be missing from a list, never from a
//! GET by id).
//!
//! Every change is one transaction ([`Tx`]) with its audit entries. Creating
//! a project takes a `projects` slot on the tenant's counter (quota.rs) in
//! the same transaction; deleting one gives it back and deletes its tasks, at
//! most [`MAX_TASKS_DELETED_WITH_PROJECT`] of them (a transaction holds 100
//! items: the project, the counter, the project's audit entry and, per task,
//! its delete and its entry). A project with more tasks is refused with 409
//! until tasks are deleted. The project's `task_count` changes in the
//! transaction of each task create and delete. Updates read, then write under
//! a condition on the `updated_at` they read, retrying when another change
//! got there first.
//!
//! | condition | fails when | answer |
//! |---|---|---|
//! | [`QUOTA_FULL`] | a new project would pass the plan's limit | 403 `quota_exceeded` (and `tenant.quota_exceeded`) |
//! | [`PROJECT_CHANGED`] | the project changed since it was read (a task added or removed included) | read again |
//! | [`TASK_CHANGED`] | the task changed since it was read | read again |
//! | [`PROJECT_MISSING`] | a task's project does not exist (any more) | 404 on create, read again on delete |
//! | [`ASSIGNEE_UNKNOWN`] | the assignee is not a user of the tenant | 400 naming `assignee_id` |

use std::collections::HashMap;

use aws_sdk_dynamodb::types::builders::{ConditionCheckBuilder, DeleteBuilder, UpdateBuilder};
use serde::{Serialize, de::DeserializeOwned};
use uuid::Uuid;

use super::{
    Item, PageRequest, Store, from_item, item_key as key, n,
    quota::{QUOTA_FULL, quota_change},
    s, to_attribute, to_item,
    tx::{Cond, Tx, TxError},
    users::user_key,
};
use crate::{
    auth::TenantScope,
    domain::{
        audit::{AuditContext, Change, retention_days_of},
        plans::{Quota, effective_limits},
        project::{Changes, Priority, Project, ProjectStatus, ProjectView, Task, TaskStatus, TaskView},
    },
    error::{AppError, AppResult},
};

/// The project changed (or went) since it was read.
pub const PROJECT_CHANGED: Cond = Cond("project_changed");
/// The task changed (or went) since it was read.
pub const TASK_CHANGED: Cond = Cond("task_changed");
/// The project a task is counted on does not exist.
pub const PROJECT_MISSING: Cond = Cond("project_missing");
/// The assignee is not a user of the tenant.
pub const ASSIGNEE_UNKNOWN: Cond = Cond("assignee_unknown");

const PROJECT: &str = "project";
const TASK: &str = "task";

/// Tasks a project may have and still be deleted in one transaction:
/// (100 - project delete - counter update - project audit entry) / 2.
pub const MAX_TASKS_DELETED_WITH_PROJECT: usize = 48;

/// How often a read-then-conditional-write is retried after losing a race.
const OPTIMISTIC_RETRIES: usize = 3;

fn project_sk(project_id: Uuid) -> String {
    format!("PROJECT#{project_id}")
}

fn task_prefix(project_id: Uuid) -> String {
    format!("PROJECT#{project_id}#TASK#")
}

fn project_key(scope: &TenantScope, project_id: Uuid) -> Item {
    key(scope, project_sk(project_id))
}

pub(crate) fn task_key(scope: &TenantScope, project_id: Uuid, task_id: Uuid) -> Item {
    key(scope, format!("{}{task_id}", task_prefix(project_id)))
}

fn task_index_pk(scope: &TenantScope, task_id: Uuid) -> String {
    format!("{}TASK#{task_id}", scope.pk())
}

fn projects_index_pk(scope: &TenantScope) -> String {
    format!("{}PROJECTS", scope.pk())
}

/// A stored value with its `updated_at` exactly as stored: conditions compare
/// strings, and re-formatting the parsed time could spell it differently.
struct Stored<T> {
    value: T,
    updated_at: String,
}

fn stored<T: DeserializeOwned>(item: Item) -> AppResult<Stored<T>> {
    let updated_at = item
        .get("updated_at")
        .and_then(|v| v.as_s().ok())
        .cloned()
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("item without updated_at")))?;
    Ok(Stored { value: from_item(item)?, updated_at })
}

/// Filters of the project list.
#[derive(Debug, Default, Clone)]
pub struct ProjectFilter {
    pub status: Option<ProjectStatus>,
    pub priority: Option<Priority>,
}

/// Filters of a project's task list.
#[derive(Debug, Default, Clone)]
pub struct TaskFilter {
    pub status: Option<TaskStatus>,
    pub assignee_id: Option<Uuid>,
}

/// A project or a task, as [`Store::update_stored`] changes it: the changes
/// apply to its stored JSON, while its audit entry records its view.
trait Updatable: Serialize + DeserializeOwned {
    type View: Serialize;

    fn audit_view(&self) -> Self::View;
}

impl Updatable for Project {
    type View = ProjectView;

    fn audit_view(&self) -> ProjectView {
        self.view()
    }
}

impl Updatable for Task {
    type View = TaskView;

    fn audit_view(&self) -> TaskView {
        self.view()
    }
}

/// The item of a project or task an update targets.
struct Target {
    key: Item,
    resource: &'static str,
    id: Uuid,
    /// The condition on the `updated_at` read ([`PROJECT_CHANGED`] or [`TASK_CHANGED`]).
    changed: Cond,
}

impl Store {
    async fn get_stored<T: DeserializeOwned>(&self, key: Item) -> AppResult<Option<Stored<T>>> {
        self.get_item(key).await?.map(stored).transpose()
    }

    /// Creates the project and takes one `projects` slot of the tenant's plan,
    /// all or nothing: concurrent creates can never pass the limit together.
    /// A full quota answers seed 000's 403 `quota_exceeded` (and emits
    /// `tenant.quota_exceeded`).
    pub async fn create_project(&self, scope: &TenantScope, project: &Project, audit: &AuditContext) -> AppResult<()> {
        let tenant = self.tenant_for_change(scope).await?;
        let limit = Quota::Projects.limit(&effective_limits(&tenant));
        let mut item = to_item(project)?;
        item.extend(project_key(scope, project.id));
        item.insert("GSI1PK".into(), s(projects_index_pk(scope)));
        item.insert("GSI1SK".into(), s(project.id.to_string()));
        let mut tx = Tx::new();
        tx.put_new(item, Cond::UNIQUE_ID);
        quota_change(&mut tx, scope, Quota::Projects, 1, limit, &[]);
        let retention = retention_days_of(&tenant.configuration);
        tx.audit(scope, audit, Change::created(PROJECT, project.id, project.view()), retention);
        match tx.commit(self).await {
            Ok(()) => Ok(()),
            Err(TxError::Condition(QUOTA_FULL)) => Err(self.quota_refusal(scope, Quota::Projects, 1).await),
            Err(other) => Err(other.into_app_error(PROJECT)),
        }
    }

    pub async fn get_project(&self, scope: &TenantScope, project_id: Uuid) -> AppResult<Option<Project>> {
        Ok(self.get_stored(project_key(scope, project_id)).await?.map(|p: Stored<Project>| p.value))
    }

    /// The tenant's projects in creation order, filtered, one page.
    pub async fn list_projects(
        &self,
        scope: &TenantScope,
        filter: &ProjectFilter,
        page: &PageRequest,
    ) -> AppResult<(Vec<Project>, Option<String>)> {
        let pk = projects_index_pk(scope);
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name("GSI1")
            .key_condition_expression("GSI1PK = :pk")
            .expression_attribute_values(":pk", s(&pk));
        let query = super::filter_equal(
            query,
            &[("status", filter.status.map(|v| s(v.as_str()))), ("priority", filter.priority.map(|v| s(v.as_str())))],
            &[],
        );
        let context = format!(
            "projects|{pk}|{}|{}",
            filter.status.map_or("", ProjectStatus::as_str),
            filter.priority.map_or("", Priority::as_str)
        );
        let (items, cursor) = self.query_page(query, page, &context, &["GSI1PK", "GSI1SK", "PK", "SK"]).await?;
        let projects: Vec<Project> = super::decode_listed(items);
        Ok((projects, cursor))
    }

    /// Applies a validated partial update; `None` when there is no such project.
    pub async fn update_project(
        &self,
        scope: &TenantScope,
        project_id: Uuid,
        changes: &Changes,
        audit: &AuditContext,
    ) -> AppResult<Option<Project>> {
        let target =
            Target { key: project_key(scope, project_id), resource: PROJECT, id: project_id, changed: PROJECT_CHANGED };
        self.update_stored(scope, target, changes, audit).await
    }

    /// Applies a validated partial update; `None` when there is no such task.
    pub async fn update_task(
        &self,
        scope: &TenantScope,
        project_id: Uuid,
        task_id: Uuid,
        changes: &Changes,
        audit: &AuditContext,
    ) -> AppResult<Option<Task>> {
        let target =
            Target { key: task_key(scope, project_id, task_id), resource: TASK, id: task_id, changed: TASK_CHANGED };
        self.update_stored(scope, target, changes, audit).await
    }

    /// Reads the project or task, writes its changes under a condition on the
    /// `updated_at` read (with a new assignee's check and the audit entry)
    /// and reads again when another change got there first.
    async fn update_stored<T: Updatable>(
        &self,
        scope: &TenantScope,
        target: Target,
        changes: &Changes,
        audit: &AuditContext,
    ) -> AppResult<Option<T>> {
        let retention = self.audit_retention(scope).await?;
        for _ in 0..OPTIMISTIC_RETRIES {
            let Some(old) = self.get_stored::<T>(target.key.clone()).await? else {
                return Ok(None);
            };
            let now = crate::domain::now();
            let old_stored = serde_json::to_value(&old.value).map_err(AppError::internal)?;
            let new: T = serde_json::from_value(changes.apply(&old_stored, now)).map_err(AppError::internal)?;
            let mut tx = Tx::new();
            tx.update(conditional_update(target.key.clone(), changes, now, &old.updated_at)?, Some(target.changed));
            if let Some(assignee) = changes.new_assignee {
                tx.check(assignee_check(scope, assignee), ASSIGNEE_UNKNOWN);
            }
            let change = Change::updated(target.resource, target.id, old.value.audit_view(), new.audit_view());
            tx.audit(scope, audit, change, retention);
            match tx.commit(self).await {
                Ok(()) => return Ok(Some(new)),
                Err(TxError::Conflict) => continue,
                Err(TxError::Condition(cond)) if cond == target.changed => continue,
                Err(TxError::Condition(ASSIGNEE_UNKNOWN)) => return Err(unknown_assignee()),
                Err(other) => return Err(other.into_app_error(target.resource)),
            }
        }
        Err(AppError::conflict(format!("the {} is being changed by another request; try again", target.resource)))
    }

    /// Deletes the project with its tasks and gives its quota slot back;
    /// false when there is no such project. More than
    /// [`MAX_TASKS_DELETED_WITH_PROJECT`] tasks is a 409.
    pub async fn delete_project(&self, scope: &TenantScope, project_id: Uuid, audit: &AuditContext) -> AppResult<bool> {
        let retention = self.audit_retention(scope).await?;
        for _ in 0..OPTIMISTIC_RETRIES {
            let Some((project, tasks)) = self.project_with_tasks(scope, project_id).await? else {
                return Ok(false);
            };
            if tasks.len() > MAX_TASKS_DELETED_WITH_PROJECT {
                return Err(AppError::conflict(format!(
                    "a project with more than {MAX_TASKS_DELETED_WITH_PROJECT} tasks cannot be deleted at once; \
                     delete its tasks first"
                ))
                .with_details(serde_json::json!({
                    "reason": "too_many_tasks",
                    "task_count": tasks.len(),
                    "max_tasks_deleted_with_project": MAX_TASKS_DELETED_WITH_PROJECT,
                })));
            }
            let delete_project = DeleteBuilder::default()
                .set_key(Some(project_key(scope, project_id)))
                .condition_expression("updated_at = :expected AND task_count = :tasks")
                .expression_attribute_values(":expected", s(&project.updated_at))
                .expression_attribute_values(":tasks", n(tasks.len() as i64));
            let mut tx = Tx::new();
            tx.delete(delete_project, Some(PROJECT_CHANGED));
            quota_change(&mut tx, scope, Quota::Projects, -1, None, &[]);
            tx.audit(scope, audit, Change::deleted(PROJECT, project_id, project.value.view()), retention);
            for task in &tasks {
                tx.delete(unchanged(task_key(scope, project_id, task.value.id), &task.updated_at), Some(TASK_CHANGED));
                tx.audit(scope, audit, Change::deleted(TASK, task.value.id, task.value.view()), retention);
            }
            match tx.commit(self).await {
                Ok(()) => return Ok(true),
                // The project or one of its tasks changed since we read them
                // (a task added or removed): read again.
                Err(TxError::Condition(PROJECT_CHANGED | TASK_CHANGED) | TxError::Conflict) => continue,
                Err(other) => return Err(other.into_app_error(PROJECT)),
            }
        }
        Err(AppError::conflict("the project is being changed by another request; try again"))
    }

    /// The project and its tasks: one consistent Query over the project's
    /// key range, stopping once there are more tasks than a delete can take.
    async fn project_with_tasks(
        &self,
        scope: &TenantScope,
        project_id: Uuid,
    ) -> AppResult<Option<(Stored<Project>, Vec<Stored<Task>>)>> {
        let project_sk = project_sk(project_id);
        let mut project = None;
        let mut tasks = Vec::new();
        let mut start = None;
        loop {
            let output = self
                .prefix_query(scope, &project_sk)
                .consistent_read(true)
                .limit(MAX_TASKS_DELETED_WITH_PROJECT as i32 + 2)
                .set_exclusive_start_key(start.take())
                .send()
                .await?;
            for item in output.items.unwrap_or_default() {
                if item.get("SK").and_then(|v| v.as_s().ok()) == Some(&project_sk) {
                    project = Some(stored(item)?);
                } else {
                    tasks.push(stored(item)?);
                }
            }
            match output.last_evaluated_key {
                Some(key) if !key.is_empty() && tasks.len() <= MAX_TASKS_DELETED_WITH_PROJECT => start = Some(key),
                _ => break,
            }
        }
        Ok(project.map(|p| (p, tasks)))
    }

    /// Creates the task and counts it on its project, in one transaction that
    /// fails when the project does not exist (404) or the assignee is not a
    /// user of the tenant (400 naming `assignee_id`).
    pub async fn create_task(&self, scope: &TenantScope, task: &Task, audit: &AuditContext) -> AppResult<()> {
        let retention = self.audit_retention(scope).await?;
        let tx = create_task_tx(scope, task, audit, retention)?;
        tx.commit(self).await.map_err(task_create_error)
    }

    /// The tenant's tasks now `done` whose last change is at or after
    /// `since` (RFC 3339): the analytics' completed tasks. One Query over
    /// the tenant's projects and tasks (bounded by its projects quota).
    pub async fn tasks_done_since(&self, scope: &TenantScope, since: &str) -> AppResult<Vec<Task>> {
        let query = self
            .prefix_query(scope, "PROJECT#")
            .filter_expression("attribute_exists(project_id) AND #status = :done AND updated_at >= :since")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":done", s(TaskStatus::Done.as_str()))
            .expression_attribute_values(":since", s(since));
        Ok(super::decode_listed(self.query_all(query).await?))
    }

    /// The projects with these ids that exist.
    pub async fn projects_by_ids(&self, scope: &TenantScope, ids: &[Uuid]) -> AppResult<Vec<Project>> {
        self.all_at(ids.iter().map(|id| project_key(scope, *id)).collect(), &[]).await
    }

    /// The project's tasks with these ids that exist.
    pub async fn tasks_by_ids(&self, scope: &TenantScope, project_id: Uuid, ids: &[Uuid]) -> AppResult<Vec<Task>> {
        self.all_at(ids.iter().map(|id| task_key(scope, project_id, *id)).collect(), &[]).await
    }

    /// A task by its id alone (tasks made before GSI2 carried them are
    /// found only under their project).
    pub async fn find_task(&self, scope: &TenantScope, task_id: Uuid) -> AppResult<Option<Task>> {
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .index_name("GSI2")
            .key_condition_expression("GSI2PK = :pk")
            .expression_attribute_values(":pk", s(task_index_pk(scope, task_id)))
            .limit(1)
            .send()
            .await?;
        let project = output.items().first().and_then(|i| i.get("GSI2SK")).and_then(|v| v.as_s().ok());
        match project.and_then(|p| Uuid::parse_str(p).ok()) {
            Some(project_id) => self.get_task(scope, project_id, task_id).await,
            None => Ok(None),
        }
    }

    pub async fn get_task(&self, scope: &TenantScope, project_id: Uuid, task_id: Uuid) -> AppResult<Option<Task>> {
        Ok(self.get_stored(task_key(scope, project_id, task_id)).await?.map(|t: Stored<Task>| t.value))
    }

    /// The project's tasks in creation order, filtered, one page; `None` when
    /// there is no such project.
    pub async fn list_tasks(
        &self,
        scope: &TenantScope,
        project_id: Uuid,
        filter: &TaskFilter,
        page: &PageRequest,
    ) -> AppResult<Option<(Vec<Task>, Option<String>)>> {
        if self.get_project(scope, project_id).await?.is_none() {
            return Ok(None);
        }
        let prefix = task_prefix(project_id);
        let query = self.prefix_query(scope, &prefix).consistent_read(true);
        let assignee = filter.assignee_id.map(|a| a.to_string());
        let query = super::filter_equal(
            query,
            &[("status", filter.status.map(|v| s(v.as_str()))), ("assignee_id", assignee.as_deref().map(s))],
            &[],
        );
        let context = format!(
            "tasks|{}|{project_id}|{}|{}",
            scope.pk(),
            filter.status.map_or("", TaskStatus::as_str),
            assignee.as_deref().unwrap_or("")
        );
        let (items, cursor) = self.query_page(query, page, &context, &["PK", "SK"]).await?;
        let tasks: Vec<Task> = super::decode_listed(items);
        Ok(Some((tasks, cursor)))
    }

    /// Deletes the task and uncounts it on its project; false when there is
    /// no such task.
    pub async fn delete_task(
        &self,
        scope: &TenantScope,
        project_id: Uuid,
        task_id: Uuid,
        audit: &AuditContext,
    ) -> AppResult<bool> {
        let retention = self.audit_retention(scope).await?;
        for _ in 0..OPTIMISTIC_RETRIES {
            let Some(old) = self.get_stored::<Task>(task_key(scope, project_id, task_id)).await? else {
                return Ok(false);
            };
            let mut tx = Tx::new();
            tx.delete(unchanged(task_key(scope, project_id, task_id), &old.updated_at), Some(TASK_CHANGED));
            tx.update(task_count(scope, project_id, -1), Some(PROJECT_MISSING));
            tx.audit(scope, audit, Change::deleted(TASK, task_id, old.value.view()), retention);
            match tx.commit(self).await {
                Ok(()) => return Ok(true),
                // Changed since we read it, or deleted with its project: read again.
                Err(TxError::Condition(TASK_CHANGED | PROJECT_MISSING) | TxError::Conflict) => continue,
                Err(other) => return Err(other.into_app_error(TASK)),
            }
        }
        Err(AppError::conflict("the task is being changed by another request; try again"))
    }
}

/// `SET` the changed fields and `updated_at`, `REMOVE` the cleared ones,
/// only if `updated_at` is still what we read.
fn conditional_update(
    key: Item,
    changes: &Changes,
    now: chrono::DateTime<chrono::Utc>,
    expected: &str,
) -> AppResult<UpdateBuilder> {
    let mut names = HashMap::from([("#updated_at".to_owned(), "updated_at".to_owned())]);
    let mut values = HashMap::from([
        (":updated_at".to_owned(), s(crate::domain::rfc3339(now))),
        (":expected".to_owned(), s(expected)),
    ]);
    let mut sets = vec!["#updated_at = :updated_at".to_owned()];
    for (i, (field, value)) in changes.set.iter().enumerate() {
        names.insert(format!("#f{i}"), (*field).to_owned());
        values.insert(format!(":v{i}"), to_attribute(value)?);
        sets.push(format!("#f{i} = :v{i}"));
    }
    let mut expression = format!("SET {}", sets.join(", "));
    if !changes.remove.is_empty() {
        let removes: Vec<String> = (0..changes.remove.len()).map(|i| format!("#r{i}")).collect();
        for (i, field) in changes.remove.iter().enumerate() {
            names.insert(format!("#r{i}"), (*field).to_owned());
        }
        expression.push_str(&format!(" REMOVE {}", removes.join(", ")));
    }
    Ok(UpdateBuilder::default()
        .set_key(Some(key))
        .update_expression(expression)
        .condition_expression("#updated_at = :expected")
        .set_expression_attribute_names(Some(names))
        .set_expression_attribute_values(Some(values)))
}

/// A delete of the item only if its `updated_at` is still what we read.
fn unchanged(key: Item, expected: &str) -> DeleteBuilder {
    DeleteBuilder::default()
        .set_key(Some(key))
        .condition_expression("updated_at = :expected")
        .expression_attribute_values(":expected", s(expected))
}

/// The project's `task_count` moved by `delta`, if the project exists.
fn task_count(scope: &TenantScope, project_id: Uuid, delta: i64) -> UpdateBuilder {
    UpdateBuilder::default()
        .set_key(Some(project_key(scope, project_id)))
        .update_expression("ADD task_count :delta")
        .condition_expression("attribute_exists(PK)")
        .expression_attribute_values(":delta", n(delta))
}

/// The assignee must be a user of this tenant (their item is in its partition).
fn assignee_check(scope: &TenantScope, assignee: Uuid) -> ConditionCheckBuilder {
    ConditionCheckBuilder::default()
        .set_key(Some(user_key(scope, assignee)))
        .condition_expression("attribute_exists(PK)")
}

fn unknown_assignee() -> AppError {
    AppError::invalid_field("assignee_id", "must be the id of a user of this tenant")
}

/// The writes that create a task and count it on its project (the task's
/// own create, or the first part of `POST /v1/tasks`'s with its analysis).
pub(crate) fn create_task_tx(scope: &TenantScope, task: &Task, audit: &AuditContext, retention: i64) -> AppResult<Tx> {
    let mut item = to_item(task)?;
    item.extend(task_key(scope, task.project_id, task.id));
    // A task found by its id alone (seed 000's `POST /v1/ai/generate-code`
    // names only `task_id`): one Query on GSI2.
    item.insert("GSI2PK".into(), s(task_index_pk(scope, task.id)));
    item.insert("GSI2SK".into(), s(task.project_id.to_string()));
    let mut tx = Tx::new();
    tx.put_new(item, Cond::UNIQUE_ID);
    tx.update(task_count(scope, task.project_id, 1), Some(PROJECT_MISSING));
    if let Some(assignee) = task.assignee_id {
        tx.check(assignee_check(scope, assignee), ASSIGNEE_UNKNOWN);
    }
    tx.audit(scope, audit, Change::created(TASK, task.id, task.view()), retention);
    Ok(tx)
}

/// What a failed [`create_task_tx`] means to the caller.
pub(crate) fn task_create_error(err: TxError) -> AppError {
    match err {
        TxError::Condition(PROJECT_MISSING) => AppError::not_found(PROJECT),
        TxError::Condition(ASSIGNEE_UNKNOWN) => unknown_assignee(),
        other => other.into_app_error(TASK),
    }
}
