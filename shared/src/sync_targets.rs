//! Where a sync connection writes a record when its target is one of the
//! platform's own resources: customers (by `external_id`), users, projects
//! or tasks (by an id derived from the connection and the record's key).
//!
//! A derived id is what makes a replayed page safe for resources that have
//! no external key of their own: the page's first read finds the record an
//! earlier delivery created, so a crash between a create and the page's
//! checkpoint never makes a second one. Records are written through the
//! same store calls as the API (audit entries, quotas, events), with their
//! values checked as the API checks them; a value the target refuses is
//! the record's error, named by its target field. The integrations worker
//! and the conflicts API share this; a provider target is the worker's own
//! (an HTTP write, nothing to read back).

use std::collections::HashMap;

use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::{
    auth::TenantScope,
    domain::{
        audit::AuditContext,
        customer::{CustomerFields, MAX_EXTERNAL_ID_CHARS, Metadata},
        ids::derived_id,
        project::{
            Changes, DueDate, NAME_MAX, Name, PROJECT_DESCRIPTION_MAX, Priority, Project, ProjectStatus,
            TASK_DESCRIPTION_MAX, TITLE_MAX, Task, TaskStatus,
        },
        rfc3339,
        role::Role,
        sync::{SyncConnection, TargetType},
        user::{PersonName, User, UserChanges},
        validate::is_email,
        values::Text,
    },
    error::AppResult,
    store::{Store, members::MemberError},
};

/// A target record as it is now: its id, its `updated_at` (how a conflict
/// is told) and its API view (what a held conflict shows).
#[derive(Debug, Clone, PartialEq)]
pub struct TargetRecord {
    pub id: Uuid,
    pub updated_at: String,
    pub view: Value,
}

impl TargetRecord {
    fn of<T: serde::Serialize>(id: Uuid, updated_at: chrono::DateTime<chrono::Utc>, view: T) -> Self {
        TargetRecord { id, updated_at: rfc3339(updated_at), view: serde_json::to_value(view).unwrap_or(Value::Null) }
    }
}

/// What writing a record did.
#[derive(Debug, Clone, PartialEq)]
pub enum Written {
    Created(TargetRecord),
    Updated(TargetRecord),
    /// The target already held these values: nothing was written.
    Unchanged(TargetRecord),
}

/// The id a record with `key` has in a target without external keys.
pub fn record_id(connection_id: Uuid, key: &str) -> Uuid {
    derived_id(&[&connection_id.to_string(), key, "sync target record"])
}

/// One connection's platform target, for one tenant.
#[derive(Clone, Copy)]
pub struct PlatformTarget<'a> {
    pub store: &'a Store,
    pub scope: &'a TenantScope,
    pub connection: &'a SyncConnection,
    pub audit: &'a AuditContext,
}

impl PlatformTarget<'_> {
    fn project_of_tasks(&self) -> Result<Uuid, String> {
        self.connection.target_config.project_id.ok_or_else(|| "the connection has no target project".to_owned())
    }

    /// The target records of these keys that exist, by key (one or two
    /// batch reads per hundred keys).
    pub async fn current(&self, keys: &[String]) -> AppResult<HashMap<String, TargetRecord>> {
        let (store, scope) = (self.store, self.scope);
        if self.connection.target == TargetType::Customers {
            let customers = store.customers_by_external_ids(scope, keys).await?;
            return Ok(customers
                .into_iter()
                .map(|(key, c)| (key, TargetRecord::of(c.id, c.updated_at, c.view())))
                .collect());
        }
        let by_id: HashMap<Uuid, &String> = keys.iter().map(|k| (record_id(self.connection.id, k), k)).collect();
        let ids: Vec<Uuid> = by_id.keys().copied().collect();
        let found: Vec<TargetRecord> = match self.connection.target {
            TargetType::Users => {
                let users = store.users_by_ids(scope, &ids).await?;
                users.into_iter().map(|u| TargetRecord::of(u.id, u.updated_at, u.view())).collect()
            }
            TargetType::Projects => {
                let projects = store.projects_by_ids(scope, &ids).await?;
                projects.into_iter().map(|p| TargetRecord::of(p.id, p.updated_at, p.view())).collect()
            }
            TargetType::Tasks => match self.connection.target_config.project_id {
                Some(project_id) => {
                    let tasks = store.tasks_by_ids(scope, project_id, &ids).await?;
                    tasks.into_iter().map(|t| TargetRecord::of(t.id, t.updated_at, t.view())).collect()
                }
                None => Vec::new(),
            },
            TargetType::Customers | TargetType::Provider => Vec::new(),
        };
        Ok(found.into_iter().filter_map(|r| by_id.get(&r.id).map(|k| ((*k).clone(), r))).collect())
    }

    /// Writes the mapped fields of the record `key`: creates its target
    /// record, or updates `current` when a field differs.
    pub async fn write(
        &self,
        key: &str,
        mapped: &Map<String, Value>,
        current: Option<&TargetRecord>,
    ) -> Result<Written, String> {
        let fields = normalize(self.connection.target, mapped, current.map(|c| &c.view))?;
        if let Some(current) = current
            && unchanged(&fields, &current.view)
        {
            return Ok(Written::Unchanged(current.clone()));
        }
        let written = match current {
            None => self.create(key, &fields).await?,
            Some(current) => self.update(key, current, &fields).await?,
        };
        Ok(match (current, written) {
            (None, record) => Written::Created(record),
            (Some(before), after) if after.updated_at == before.updated_at => Written::Unchanged(after),
            (Some(_), after) => Written::Updated(after),
        })
    }

    /// A customer is created or updated by its `external_id` alike.
    async fn upsert_customer(&self, key: &str, fields: &Map<String, Value>) -> Result<TargetRecord, String> {
        let (customer, _) =
            self.store.upsert_customer(self.scope, key, &customer_fields(fields), self.audit).await.map_err(message)?;
        Ok(TargetRecord::of(customer.id, customer.updated_at, customer.view()))
    }

    async fn create(&self, key: &str, fields: &Map<String, Value>) -> Result<TargetRecord, String> {
        let (store, scope, audit) = (self.store, self.scope, self.audit);
        let id = record_id(self.connection.id, key);
        let now = crate::domain::now();
        let text = |name: &str| fields.get(name).and_then(Value::as_str).map(str::to_owned);
        let required =
            |name: &str, what: &str| text(name).ok_or_else(|| format!("{name}: is required to create {what}"));
        match self.connection.target {
            TargetType::Customers => self.upsert_customer(key, fields).await,
            TargetType::Users => {
                let email = required("email", "a user")?;
                let (first, last) = (required("first_name", "a user")?, required("last_name", "a user")?);
                let role = self.connection.target_config.role.unwrap_or(Role::User);
                let mut user = User::new(scope.tenant_id(), &email, &first, &last, role);
                user.id = id;
                if let Some(active) = fields.get("is_active").and_then(Value::as_bool) {
                    user.is_active = active;
                }
                let (tenant, _) =
                    store.get_tenant(scope).await.map_err(message)?.ok_or_else(|| "the tenant is gone".to_owned())?;
                // No password: a synced member signs in through SSO or
                // sets one with a reset (the empty hash never verifies).
                store.create_user(scope, &tenant, &user, "", audit).await.map_err(member_refusal)?;
                Ok(TargetRecord::of(user.id, user.updated_at, user.view()))
            }
            TargetType::Projects => {
                let project = Project {
                    id,
                    tenant_id: scope.tenant_id(),
                    name: required("name", "a project")?,
                    description: text("description"),
                    technology_stack: Vec::new(),
                    priority: enum_or(fields, "priority", Priority::parse, Priority::Medium),
                    status: enum_or(fields, "status", ProjectStatus::parse, ProjectStatus::Active),
                    compliance_requirements: Vec::new(),
                    performance_targets: json!({}),
                    security_requirements: Vec::new(),
                    created_by: self.connection.created_by,
                    created_at: now,
                    updated_at: now,
                    task_count: 0,
                };
                store.create_project(scope, &project, audit).await.map_err(message)?;
                Ok(TargetRecord::of(project.id, project.updated_at, project.view()))
            }
            TargetType::Tasks => {
                let task = Task {
                    id,
                    project_id: self.project_of_tasks()?,
                    tenant_id: scope.tenant_id(),
                    title: required("title", "a task")?,
                    description: text("description"),
                    status: enum_or(fields, "status", TaskStatus::parse, TaskStatus::Todo),
                    priority: enum_or(fields, "priority", Priority::parse, Priority::Medium),
                    assignee_id: None,
                    due_date: text("due_date").and_then(|d| DueDate::parse(&d).ok()).map(|d| d.0),
                    requirements: json!({}),
                    acceptance_criteria: Vec::new(),
                    analysis_status: None,
                    analysis_job_id: None,
                    ai_analysis: None,
                    created_by: self.connection.created_by,
                    created_at: now,
                    updated_at: now,
                };
                store.create_task(scope, &task, audit).await.map_err(|e| match e.status().as_u16() {
                    404 => "the connection's target project was deleted".to_owned(),
                    _ => message(e),
                })?;
                Ok(TargetRecord::of(task.id, task.updated_at, task.view()))
            }
            TargetType::Provider => Err("a provider target is not a platform resource".to_owned()),
        }
    }

    async fn update(
        &self,
        key: &str,
        current: &TargetRecord,
        fields: &Map<String, Value>,
    ) -> Result<TargetRecord, String> {
        let (store, scope, audit) = (self.store, self.scope, self.audit);
        let gone = || "the target record was deleted meanwhile".to_owned();
        match self.connection.target {
            TargetType::Customers => self.upsert_customer(key, fields).await,
            TargetType::Users => {
                if let Some(email) = fields.get("email")
                    && current.view.get("email") != Some(email)
                {
                    return Err("email: a user's email is their sign-in and does not change by a sync".to_owned());
                }
                let name =
                    |field: &str| fields.get(field).and_then(Value::as_str).and_then(|n| PersonName::parse(n).ok());
                let changes = UserChanges {
                    first_name: name("first_name"),
                    last_name: name("last_name"),
                    role: None,
                    is_active: fields.get("is_active").and_then(Value::as_bool),
                };
                let user = store
                    .update_user(scope, current.id, &changes, audit)
                    .await
                    .map_err(member_refusal)?
                    .ok_or_else(gone)?;
                Ok(TargetRecord::of(user.id, user.updated_at, user.view()))
            }
            TargetType::Projects => {
                let project =
                    store.update_project(scope, current.id, &changes(fields), audit).await.map_err(message)?;
                let project = project.ok_or_else(gone)?;
                Ok(TargetRecord::of(project.id, project.updated_at, project.view()))
            }
            TargetType::Tasks => {
                let project_id = self.project_of_tasks()?;
                let task = store
                    .update_task(scope, project_id, current.id, &changes(fields), audit)
                    .await
                    .map_err(message)?
                    .ok_or_else(gone)?;
                Ok(TargetRecord::of(task.id, task.updated_at, task.view()))
            }
            TargetType::Provider => Err("a provider target is not a platform resource".to_owned()),
        }
    }

    /// Removes the record's target record (a delta run's deletion).
    pub async fn delete(&self, current: &TargetRecord) -> Result<(), String> {
        let (store, scope, audit) = (self.store, self.scope, self.audit);
        match self.connection.target {
            TargetType::Customers => store.delete_customer(scope, current.id, audit).await.map(drop).map_err(message),
            TargetType::Users => store.delete_user(scope, current.id, audit).await.map(drop).map_err(member_refusal),
            TargetType::Projects => store.delete_project(scope, current.id, audit).await.map(drop).map_err(message),
            TargetType::Tasks => {
                store.delete_task(scope, self.project_of_tasks()?, current.id, audit).await.map(drop).map_err(message)
            }
            TargetType::Provider => Err("a provider target is not a platform resource".to_owned()),
        }
    }
}

fn message(err: crate::error::AppError) -> String {
    err.to_string()
}

fn member_refusal(err: MemberError) -> String {
    match err {
        MemberError::EmailTaken(email) => format!("email: {email} already has an account"),
        MemberError::QuotaExceeded => "the plan's users quota is full".to_owned(),
        MemberError::LastOwner => "the tenant's last owner is not removed".to_owned(),
        MemberError::AlreadyInvited(email) => format!("email: {email} has a pending invitation"),
        MemberError::InvalidInvitation => "an invitation is not a sync's".to_owned(),
        MemberError::Other(e) => e.to_string(),
    }
}

fn enum_or<T>(fields: &Map<String, Value>, name: &str, parse: fn(&str) -> Option<T>, default: T) -> T {
    fields.get(name).and_then(Value::as_str).and_then(parse).unwrap_or(default)
}

fn customer_fields(fields: &Map<String, Value>) -> CustomerFields {
    let text = |name: &str| fields.get(name).map(|v| v.as_str().map(str::to_owned));
    let metadata = fields.get("metadata").and_then(Value::as_object).cloned();
    CustomerFields { email: text("email"), name: text("name"), metadata }
}

/// A project's or task's changes: a field set, or removed when null.
fn changes(fields: &Map<String, Value>) -> Changes {
    let mut changes = Changes::default();
    for name in ["name", "title", "description", "priority", "status", "due_date"] {
        match fields.get(name) {
            None => {}
            Some(Value::Null) => changes.remove(name),
            Some(value) => changes.set(name, value.clone()),
        }
    }
    changes
}

/// Whether the target already holds every field.
fn unchanged(fields: &Map<String, Value>, view: &Value) -> bool {
    fields.iter().all(|(name, value)| view.get(name).unwrap_or(&Value::Null) == value)
}

/// The mapped fields checked as the target's API checks them and written
/// as its view shows them (a time normalised, an email lowercased for a
/// user, a customer's mapped metadata keys merged over its own); an error
/// names the field.
pub fn normalize(
    target: TargetType,
    mapped: &Map<String, Value>,
    current: Option<&Value>,
) -> Result<Map<String, Value>, String> {
    let mut out = Map::new();
    for (name, value) in mapped {
        let normal = match (target, name.as_str()) {
            (TargetType::Customers, "metadata") => {
                let Value::Object(keys) = value else { return Err("metadata: must be an object".to_owned()) };
                let mut merged =
                    current.and_then(|c| c.get("metadata")).and_then(Value::as_object).cloned().unwrap_or_default();
                merged.extend(keys.clone());
                let parsed = Metadata::parse(Value::Object(merged)).map_err(|p| format!("metadata: {p}"))?;
                Value::Object(parsed.into_inner())
            }
            (TargetType::Customers, "email") => nullable(name, value, |email| {
                is_email(email).then(|| json!(email)).ok_or_else(|| "not a valid email address".to_owned())
            })?,
            (TargetType::Customers, "name") => nullable(name, value, |text| {
                (1..=200)
                    .contains(&text.chars().count())
                    .then(|| json!(text))
                    .ok_or("must have 1 to 200 characters".into())
            })?,
            (TargetType::Users, "email") => required(name, value, |email| {
                is_email(email)
                    .then(|| json!(email.to_ascii_lowercase()))
                    .ok_or_else(|| "not a valid email address".to_owned())
            })?,
            (TargetType::Users, "first_name" | "last_name") => {
                required(name, value, |text| PersonName::parse(text).map(|n| json!(n.to_string())))?
            }
            (TargetType::Users, "is_active") => match value {
                Value::Bool(_) => value.clone(),
                _ => return Err("is_active: the source's value is not a boolean".to_owned()),
            },
            (TargetType::Projects, "name") => {
                required(name, value, |text| Name::<NAME_MAX>::parse(text.to_owned()).map(|n| json!(n.into_inner())))?
            }
            (TargetType::Tasks, "title") => {
                required(name, value, |text| Name::<TITLE_MAX>::parse(text.to_owned()).map(|n| json!(n.into_inner())))?
            }
            (TargetType::Projects, "description") => nullable(name, value, |text| {
                Text::<0, PROJECT_DESCRIPTION_MAX>::parse(text).map(|t| json!(t.into_inner()))
            })?,
            (TargetType::Tasks, "description") => nullable(name, value, |text| {
                Text::<0, TASK_DESCRIPTION_MAX>::parse(text).map(|t| json!(t.into_inner()))
            })?,
            (TargetType::Projects | TargetType::Tasks, "priority") => required(name, value, |text| {
                Priority::parse(text).map(|p| json!(p)).ok_or_else(|| "must be low, medium, high or critical".into())
            })?,
            (TargetType::Projects, "status") => required(name, value, |text| {
                ProjectStatus::parse(text).map(|s| json!(s)).ok_or_else(|| "must be active or archived".into())
            })?,
            (TargetType::Tasks, "status") => required(name, value, |text| {
                TaskStatus::parse(text).map(|s| json!(s)).ok_or_else(|| "must be todo, in_progress or done".into())
            })?,
            (TargetType::Tasks, "due_date") => nullable(name, value, |text| DueDate::parse(text).map(|d| json!(d.0)))?,
            _ => return Err(format!("{name}: not a field of {}", target.as_str())),
        };
        out.insert(name.clone(), normal);
    }
    Ok(out)
}

/// A string field that may be null (null clears it).
fn nullable(name: &str, value: &Value, check: impl FnOnce(&str) -> Result<Value, String>) -> Result<Value, String> {
    match value {
        Value::Null => Ok(Value::Null),
        Value::String(text) => check(text).map_err(|problem| format!("{name}: {problem}")),
        _ => Err(format!("{name}: the source's value is not a string")),
    }
}

/// A string field that may not be null.
fn required(name: &str, value: &Value, check: impl FnOnce(&str) -> Result<Value, String>) -> Result<Value, String> {
    match value {
        Value::String(text) => check(text).map_err(|problem| format!("{name}: {problem}")),
        Value::Null => Err(format!("{name}: may not be null")),
        _ => Err(format!("{name}: the source's value is not a string")),
    }
}

/// Whether `key` can be a record's key in this target: a customer's
/// `external_id` is visible ASCII of 1 to 128; other targets take any key
/// of that length (it only derives an id).
pub fn key_fits(target: TargetType, key: &str) -> bool {
    match target {
        TargetType::Customers => crate::domain::customer::ExternalId::parse(key).is_ok(),
        _ => (1..=MAX_EXTERNAL_ID_CHARS).contains(&key.chars().count()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn each_target_checks_its_fields_and_names_the_one_it_refuses() {
        let task = normalize(
            TargetType::Tasks,
            &object(json!({"title": "Ship", "priority": "high", "due_date": "2026-03-01", "description": null})),
            None,
        );
        assert_eq!(
            task.map(Value::Object),
            Ok(json!({"title": "Ship", "priority": "high", "due_date": "2026-03-01T00:00:00Z", "description": null}))
        );
        let refused = normalize(TargetType::Tasks, &object(json!({"status": "blocked"})), None);
        assert!(refused.as_ref().is_err_and(|e| e.starts_with("status:")), "{refused:?}");
        let refused = normalize(TargetType::Users, &object(json!({"first_name": ""})), None);
        assert!(refused.as_ref().is_err_and(|e| e.starts_with("first_name:")), "{refused:?}");
        let user = normalize(TargetType::Users, &object(json!({"email": "Ann@Example.com"})), None);
        assert_eq!(user.map(Value::Object), Ok(json!({"email": "ann@example.com"})));
        let refused = normalize(TargetType::Projects, &object(json!({"name": 7})), None);
        assert!(refused.as_ref().is_err_and(|e| e.starts_with("name:")), "{refused:?}");
    }

    #[test]
    fn a_customers_mapped_metadata_goes_over_its_own_and_an_equal_record_is_unchanged() {
        let current = json!({"email": "a@b.co", "name": "Ann", "metadata": {"plan": "gold", "kept": 1}});
        let fields = normalize(TargetType::Customers, &object(json!({"metadata": {"plan": "gold"}})), Some(&current));
        let fields = fields.unwrap_or_default();
        assert_eq!(fields.get("metadata"), Some(&json!({"plan": "gold", "kept": 1})));
        assert!(unchanged(&fields, &current));
        let renamed = normalize(TargetType::Customers, &object(json!({"name": "Bo"})), Some(&current));
        assert!(!unchanged(&renamed.unwrap_or_default(), &current));
    }

    #[test]
    fn a_key_derives_one_id_per_connection() {
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        assert_eq!(record_id(a, "k-1"), record_id(a, "k-1"));
        assert_ne!(record_id(a, "k-1"), record_id(b, "k-1"));
        assert_ne!(record_id(a, "k-1"), record_id(a, "k-2"));
        assert!(key_fits(TargetType::Tasks, "ticket 42"));
        assert!(!key_fits(TargetType::Customers, "ticket 42"));
    }
}
