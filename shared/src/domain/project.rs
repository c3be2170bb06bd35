//! Projects and their tasks (seed 000: the tenant-isolation scenario's project,
//! scenario 5's enterprise project and its task). Both belong to one tenant;
//! a task belongs to one project of that tenant.
//!
//! Create bodies are validated field by field (all problems in one answer,
//! unknown fields refused by name). Updates (`PUT` and `PATCH` alike) are
//! partial: an absent field is unchanged, `null` clears an optional field
//! (text and dates are removed, lists become `[]`, objects `{}`), and `null`
//! on a required field is refused.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::{
    domain::validate::{Fields, Need},
    error::AppError,
};

pub const PRIORITIES: &[&str] = &["low", "medium", "high", "critical"];
pub const PROJECT_STATUSES: &[&str] = &["active", "archived"];
pub const TASK_STATUSES: &[&str] = &["todo", "in_progress", "done"];

const DEFAULT_PRIORITY: &str = "medium";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Project {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub technology_stack: Vec<String>,
    pub priority: String,
    pub status: String,
    #[serde(default)]
    pub compliance_requirements: Vec<String>,
    #[serde(default = "empty_object")]
    pub performance_targets: Value,
    #[serde(default)]
    pub security_requirements: Vec<String>,
    pub created_by: Uuid,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Kept by the store: every task create and delete changes it in the
    /// same transaction.
    #[serde(default)]
    pub task_count: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Task {
    pub id: Uuid,
    pub project_id: Uuid,
    pub tenant_id: Uuid,
    pub title: String,
    #[serde(default)]
    pub description: Option<String>,
    pub status: String,
    pub priority: String,
    #[serde(default)]
    pub assignee_id: Option<Uuid>,
    #[serde(default)]
    pub due_date: Option<DateTime<Utc>>,
    /// Seed 000 scenario 5: named lists (`functional`, `non_functional`, ...).
    #[serde(default = "empty_object")]
    pub requirements: Value,
    #[serde(default)]
    pub acceptance_criteria: Vec<String>,
    pub created_by: Uuid,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

fn empty_object() -> Value {
    json!({})
}

impl Project {
    /// The API body (also what audit entries record).
    pub fn to_body(&self) -> Value {
        serde_json::to_value(self).unwrap_or_else(|_| json!({}))
    }
}

impl Task {
    pub fn to_body(&self) -> Value {
        serde_json::to_value(self).unwrap_or_else(|_| json!({}))
    }
}

/// A validated partial update: attribute values to set and attributes to
/// remove (the store applies both under a condition on `updated_at`).
#[derive(Debug, Default, PartialEq)]
pub struct Changes {
    pub set: Vec<(&'static str, Value)>,
    pub remove: Vec<&'static str>,
    /// A new assignee the store must find among the tenant's users.
    pub new_assignee: Option<Uuid>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.remove.is_empty()
    }

    /// `old` (stored JSON) with the changes applied and a new `updated_at`.
    pub fn apply(&self, old: &Value, now: DateTime<Utc>) -> Value {
        let mut new = old.clone();
        for (field, value) in &self.set {
            new[*field] = value.clone();
        }
        for field in &self.remove {
            new[*field] = Value::Null;
        }
        new["updated_at"] = json!(super::rfc3339(now));
        new
    }
}

// ------------------------------------------------------------------ limits --

const NAME_MAX: usize = 200;
const PROJECT_DESCRIPTION_MAX: usize = 2_000;
const TECHNOLOGY_STACK_MAX_ITEMS: usize = 30;
const TECHNOLOGY_MAX: usize = 50;
const REQUIREMENTS_MAX_ITEMS: usize = 20;
const REQUIREMENT_MAX: usize = 100;
const PERFORMANCE_TARGETS_MAX_KEYS: usize = 20;
const OBJECT_KEY_MAX: usize = 64;
/// Serialised size of one free-form value, so an item stays far below
/// DynamoDB's 400 KB.
const OBJECT_VALUE_MAX: usize = 500;
const TITLE_MAX: usize = 200;
const TASK_DESCRIPTION_MAX: usize = 5_000;
const TASK_REQUIREMENT_GROUPS_MAX: usize = 10;
const TASK_REQUIREMENT_ITEMS_MAX: usize = 20;
const TASK_REQUIREMENT_MAX: usize = 200;
const CRITERIA_MAX_ITEMS: usize = 20;
const CRITERION_MAX: usize = 500;

// ---------------------------------------------------------------- projects --

const PROJECT_FIELDS: &[&str] = &[
    "name",
    "description",
    "technology_stack",
    "priority",
    "status",
    "compliance_requirements",
    "performance_targets",
    "security_requirements",
];

/// Fields the platform sets; naming one in a body is an error that says so.
const PROJECT_READ_ONLY: &[&str] = &["id", "tenant_id", "created_by", "created_at", "updated_at", "task_count"];

/// Validates a create body and builds the new project.
pub fn project_from_create(body: &Map<String, Value>, tenant_id: Uuid, created_by: Uuid) -> Result<Project, AppError> {
    let mut f = Fields::new(body);
    read_only(&mut f, PROJECT_READ_ONLY);
    f.reject_unknown(&[PROJECT_FIELDS, PROJECT_READ_ONLY].concat());
    let name = required_text(&mut f, "name", Need::Required, NAME_MAX);
    let description = f.text("description", Need::Optional, 0, PROJECT_DESCRIPTION_MAX);
    let technology_stack = string_list(&mut f, "technology_stack", TECHNOLOGY_STACK_MAX_ITEMS, TECHNOLOGY_MAX);
    let priority = f.one_of("priority", Need::Optional, PRIORITIES).unwrap_or(DEFAULT_PRIORITY);
    let status = f.one_of("status", Need::Optional, PROJECT_STATUSES).unwrap_or("active");
    let compliance = string_list(&mut f, "compliance_requirements", REQUIREMENTS_MAX_ITEMS, REQUIREMENT_MAX);
    let targets = free_object(&mut f, "performance_targets", PERFORMANCE_TARGETS_MAX_KEYS);
    let security = string_list(&mut f, "security_requirements", REQUIREMENTS_MAX_ITEMS, REQUIREMENT_MAX);
    let now = super::now();
    let project = name.map(|name| Project {
        id: Uuid::now_v7(),
        tenant_id,
        name,
        description,
        technology_stack: technology_stack.unwrap_or_default(),
        priority: priority.to_owned(),
        status: status.to_owned(),
        compliance_requirements: compliance.unwrap_or_default(),
        performance_targets: targets.unwrap_or_else(empty_object),
        security_requirements: security.unwrap_or_default(),
        created_by,
        created_at: now,
        updated_at: now,
        task_count: 0,
    });
    f.finish()?;
    project.ok_or_else(|| required("name"))
}

/// Validates a partial update of a project.
pub fn project_changes(body: &Map<String, Value>) -> Result<Changes, AppError> {
    let mut f = Fields::new(body);
    read_only(&mut f, PROJECT_READ_ONLY);
    f.reject_unknown(&[PROJECT_FIELDS, PROJECT_READ_ONLY].concat());
    not_null(&mut f, &["name", "priority", "status"]);
    let mut changes = Changes::default();
    let mut set = |name: &'static str, value: Option<Value>| {
        if let Some(v) = value {
            changes.set.push((name, v));
        }
    };
    set("name", required_text(&mut f, "name", Need::Optional, NAME_MAX).map(Value::String));
    set("description", f.text("description", Need::Optional, 0, PROJECT_DESCRIPTION_MAX).map(Value::String));
    set("technology_stack", list_or_empty(&mut f, "technology_stack", TECHNOLOGY_STACK_MAX_ITEMS, TECHNOLOGY_MAX));
    set("priority", f.one_of("priority", Need::Optional, PRIORITIES).map(Value::from));
    set("status", f.one_of("status", Need::Optional, PROJECT_STATUSES).map(Value::from));
    set(
        "compliance_requirements",
        list_or_empty(&mut f, "compliance_requirements", REQUIREMENTS_MAX_ITEMS, REQUIREMENT_MAX),
    );
    set("performance_targets", object_or_empty(&mut f, "performance_targets", PERFORMANCE_TARGETS_MAX_KEYS));
    set(
        "security_requirements",
        list_or_empty(&mut f, "security_requirements", REQUIREMENTS_MAX_ITEMS, REQUIREMENT_MAX),
    );
    f.finish()?;
    if body.get("description").is_some_and(Value::is_null) {
        changes.remove.push("description");
    }
    Ok(changes)
}

// ------------------------------------------------------------------- tasks --

const TASK_FIELDS: &[&str] =
    &["title", "description", "status", "priority", "assignee_id", "due_date", "requirements", "acceptance_criteria"];

/// `project_id` may be repeated in a create body (seed 000 sends it) but must
/// name the project of the path; it cannot change afterwards.
const TASK_READ_ONLY: &[&str] = &["id", "tenant_id", "created_by", "created_at", "updated_at"];

/// Validates a create body for a task of `project_id` and builds it.
pub fn task_from_create(
    body: &Map<String, Value>,
    tenant_id: Uuid,
    project_id: Uuid,
    created_by: Uuid,
) -> Result<Task, AppError> {
    let mut f = Fields::new(body);
    read_only(&mut f, TASK_READ_ONLY);
    f.reject_unknown(&[TASK_FIELDS, TASK_READ_ONLY, &["project_id"]].concat());
    if let Some(named) = f.uuid("project_id", Need::Optional)
        && named != project_id
    {
        f.error("project_id", "must be the project of the path, or be left out");
    }
    let title = required_text(&mut f, "title", Need::Required, TITLE_MAX);
    let description = f.text("description", Need::Optional, 0, TASK_DESCRIPTION_MAX);
    let status = f.one_of("status", Need::Optional, TASK_STATUSES).unwrap_or("todo");
    let priority = f.one_of("priority", Need::Optional, PRIORITIES).unwrap_or(DEFAULT_PRIORITY);
    let assignee_id = f.uuid("assignee_id", Need::Optional);
    let due_date = due_date(&mut f);
    let requirements = task_requirements(&mut f);
    let criteria = string_list(&mut f, "acceptance_criteria", CRITERIA_MAX_ITEMS, CRITERION_MAX);
    let now = super::now();
    let task = title.map(|title| Task {
        id: Uuid::now_v7(),
        project_id,
        tenant_id,
        title,
        description,
        status: status.to_owned(),
        priority: priority.to_owned(),
        assignee_id,
        due_date,
        requirements: requirements.unwrap_or_else(empty_object),
        acceptance_criteria: criteria.unwrap_or_default(),
        created_by,
        created_at: now,
        updated_at: now,
    });
    f.finish()?;
    task.ok_or_else(|| required("title"))
}

/// Validates a partial update of a task.
pub fn task_changes(body: &Map<String, Value>) -> Result<Changes, AppError> {
    let mut f = Fields::new(body);
    read_only(&mut f, &[TASK_READ_ONLY, &["project_id"]].concat());
    f.reject_unknown(&[TASK_FIELDS, TASK_READ_ONLY, &["project_id"]].concat());
    not_null(&mut f, &["title", "status", "priority"]);
    let mut changes = Changes::default();
    let mut set = |name: &'static str, value: Option<Value>| {
        if let Some(v) = value {
            changes.set.push((name, v));
        }
    };
    set("title", required_text(&mut f, "title", Need::Optional, TITLE_MAX).map(Value::String));
    set("description", f.text("description", Need::Optional, 0, TASK_DESCRIPTION_MAX).map(Value::String));
    set("status", f.one_of("status", Need::Optional, TASK_STATUSES).map(Value::from));
    set("priority", f.one_of("priority", Need::Optional, PRIORITIES).map(Value::from));
    let assignee = f.uuid("assignee_id", Need::Optional);
    set("assignee_id", assignee.map(|a| Value::String(a.to_string())));
    set("due_date", due_date(&mut f).map(|d| Value::String(super::rfc3339(d))));
    let requirements = if f.is_null("requirements") { Some(empty_object()) } else { task_requirements(&mut f) };
    set("requirements", requirements);
    set("acceptance_criteria", list_or_empty(&mut f, "acceptance_criteria", CRITERIA_MAX_ITEMS, CRITERION_MAX));
    f.finish()?;
    changes.new_assignee = assignee;
    changes.remove = ["description", "assignee_id", "due_date"]
        .into_iter()
        .filter(|n| body.get(*n).is_some_and(Value::is_null))
        .collect();
    Ok(changes)
}

// ----------------------------------------------------------------- helpers --

/// `Fields` names a required field it could not read, so a valid body has
/// it; this is the same 400 in case one is ever read as `None`.
fn required(field: &str) -> AppError {
    AppError::invalid_field(field, "is required")
}

fn read_only(f: &mut Fields<'_>, fields: &[&str]) {
    for field in fields {
        if f.contains(field) {
            f.error(field, "is set by the platform and cannot be given");
        }
    }
}

fn not_null(f: &mut Fields<'_>, fields: &[&str]) {
    for field in fields {
        if f.is_null(field) {
            f.error(field, "must not be null");
        }
    }
}

/// 1..=`max` characters, not only whitespace. `Need::Optional` on updates,
/// where `not_null` refuses `null`.
fn required_text(f: &mut Fields<'_>, field: &str, need: Need, max: usize) -> Option<String> {
    let text = f.text(field, need, 1, max)?;
    if text.trim().is_empty() {
        f.error(field, "must not be blank");
        return None;
    }
    Some(text)
}

/// An array of at most `max_items` non-blank strings of at most `max_len`
/// characters; bad entries are named `field[i]`.
fn string_list(f: &mut Fields<'_>, field: &str, max_items: usize, max_len: usize) -> Option<Vec<String>> {
    let items = f.array(field, Need::Optional, max_items)?;
    let mut out = Vec::with_capacity(items.len());
    let mut ok = true;
    for (i, item) in items.iter().enumerate() {
        match item.as_str() {
            Some(s) if !s.trim().is_empty() && s.chars().count() <= max_len => out.push(s.to_owned()),
            Some(_) => {
                f.error(&format!("{field}[{i}]"), format!("must have 1 to {max_len} characters, not only spaces"));
                ok = false;
            }
            None => {
                f.error(&format!("{field}[{i}]"), "must be a string");
                ok = false;
            }
        }
    }
    ok.then_some(out)
}

/// For updates: a valid list, or `[]` when the body says `null`.
fn list_or_empty(f: &mut Fields<'_>, field: &str, max_items: usize, max_len: usize) -> Option<Value> {
    if f.is_null(field) {
        return Some(json!([]));
    }
    string_list(f, field, max_items, max_len).map(|l| json!(l))
}

/// A free-form object of at most `max_keys` keys (1..=64 characters), each
/// value at most 500 characters of JSON.
fn free_object(f: &mut Fields<'_>, field: &str, max_keys: usize) -> Option<Value> {
    let obj = f.object(field, Need::Optional)?;
    let mut ok = true;
    if obj.len() > max_keys {
        f.error(field, format!("must have at most {max_keys} keys"));
        ok = false;
    }
    for (key, value) in obj {
        let name = format!("{field}.{key}");
        if key.is_empty() || key.chars().count() > OBJECT_KEY_MAX {
            f.error(&name, format!("keys must have 1 to {OBJECT_KEY_MAX} characters"));
            ok = false;
        } else if value.to_string().len() > OBJECT_VALUE_MAX {
            f.error(&name, format!("must be at most {OBJECT_VALUE_MAX} characters of JSON"));
            ok = false;
        }
    }
    ok.then(|| Value::Object(obj.clone()))
}

fn object_or_empty(f: &mut Fields<'_>, field: &str, max_keys: usize) -> Option<Value> {
    if f.is_null(field) {
        return Some(empty_object());
    }
    free_object(f, field, max_keys)
}

/// Seed 000's task `requirements`: at most 10 named lists of at most 20
/// strings of at most 200 characters (a task item stays under ~60 KB, so a
/// project delete's transaction stays under DynamoDB's 4 MB).
fn task_requirements(f: &mut Fields<'_>) -> Option<Value> {
    let obj = f.object("requirements", Need::Optional)?;
    let mut inner = Fields::nested("requirements", obj);
    if obj.len() > TASK_REQUIREMENT_GROUPS_MAX {
        f.error("requirements", format!("must have at most {TASK_REQUIREMENT_GROUPS_MAX} keys"));
    }
    for key in obj.keys() {
        if key.is_empty() || key.chars().count() > OBJECT_KEY_MAX {
            inner.error(key, format!("keys must have 1 to {OBJECT_KEY_MAX} characters"));
        } else {
            string_list(&mut inner, key, TASK_REQUIREMENT_ITEMS_MAX, TASK_REQUIREMENT_MAX);
        }
    }
    let ok = !inner.has_errors() && obj.len() <= TASK_REQUIREMENT_GROUPS_MAX;
    f.absorb(inner);
    ok.then(|| Value::Object(obj.clone()))
}

/// An RFC 3339 timestamp, or a full date (`YYYY-MM-DD`, meaning its first
/// instant in UTC); stored in UTC with milliseconds.
fn due_date(f: &mut Fields<'_>) -> Option<DateTime<Utc>> {
    let raw = f.text("due_date", Need::Optional, 1, 64)?;
    if let Ok(at) = DateTime::parse_from_rfc3339(&raw) {
        use chrono::SubsecRound;
        return Some(at.with_timezone(&Utc).trunc_subsecs(3));
    }
    match NaiveDate::parse_from_str(&raw, "%Y-%m-%d") {
        Ok(day) => day.and_hms_opt(0, 0, 0).map(|t| t.and_utc()),
        Err(_) => {
            f.error("due_date", "must be an RFC 3339 date-time (2025-03-01T17:00:00Z) or date (2025-03-01)");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().expect("object")
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

    #[test]
    fn seed_000s_enterprise_project_is_valid_with_defaults() {
        let body = obj(json!({
            "name": "Enterprise Payment Processing System",
            "description": "Comprehensive payment processing system",
            "technology_stack": ["Python", "FastAPI", "PostgreSQL", "Redis", "Stripe", "Docker"],
            "compliance_requirements": ["PCI_DSS", "SOX", "GDPR", "SOC2"],
            "performance_targets": {"response_time_p95": "< 200ms", "throughput": "10000 req/sec"},
            "security_requirements": ["end_to_end_encryption", "audit_logging"]
        }));
        let (tenant, user) = (Uuid::now_v7(), Uuid::now_v7());
        let p = project_from_create(&body, tenant, user).expect("valid");
        assert_eq!(p.priority, "medium");
        assert_eq!(p.status, "active");
        assert_eq!(p.tenant_id, tenant);
        assert_eq!(p.created_by, user);
        assert_eq!(p.task_count, 0);
        assert_eq!(p.technology_stack.len(), 6);
        assert_eq!(p.to_body()["performance_targets"]["throughput"], "10000 req/sec");
        assert_eq!(p.created_at, p.updated_at);
    }

    #[test]
    fn project_problems_are_all_named() {
        let body = obj(json!({
            "description": "x".repeat(2001),
            "technology_stack": ["Rust", "", 7, "y".repeat(51)],
            "priority": "urgent",
            "status": "deleted",
            "compliance_requirements": vec!["a"; 21],
            "performance_targets": ["not", "an", "object"],
            "security_requirements": "tls",
            "task_count": 3,
            "owner": "me"
        }));
        let fields = fields_of(project_from_create(&body, Uuid::nil(), Uuid::nil()).expect_err("invalid"));
        assert_eq!(
            fields,
            [
                "task_count",
                "owner",
                "name",
                "description",
                "technology_stack[1]",
                "technology_stack[2]",
                "technology_stack[3]",
                "priority",
                "status",
                "compliance_requirements",
                "performance_targets",
                "security_requirements"
            ]
        );
    }

    #[test]
    fn names_and_enums_have_bounds_and_canonical_spelling() {
        for bad in [json!(""), json!("   "), json!("n".repeat(201)), json!(1), Value::Null] {
            let err = project_from_create(&obj(json!({"name": bad})), Uuid::nil(), Uuid::nil()).expect_err("bad");
            assert_eq!(fields_of(err), ["name"]);
        }
        let p =
            project_from_create(&obj(json!({"name": "n".repeat(200), "priority": "HIGH"})), Uuid::nil(), Uuid::nil())
                .expect("valid");
        assert_eq!(p.priority, "high");
    }

    #[test]
    fn performance_targets_are_bounded() {
        let many: Map<String, Value> = (0..21).map(|i| (format!("k{i}"), json!(i))).collect();
        let err =
            project_from_create(&obj(json!({"name": "n", "performance_targets": many})), Uuid::nil(), Uuid::nil())
                .expect_err("too many");
        assert_eq!(fields_of(err), ["performance_targets"]);
        let big = json!({"name": "n", "performance_targets": {"p95": "x".repeat(600)}});
        let err = project_from_create(&obj(big), Uuid::nil(), Uuid::nil()).expect_err("too big");
        assert_eq!(fields_of(err), ["performance_targets.p95"]);
    }

    #[test]
    fn a_project_update_sets_clears_and_refuses_nulls_on_required_fields() {
        let changes = project_changes(&obj(json!({
            "name": "Renamed", "description": null, "technology_stack": null, "performance_targets": null
        })))
        .expect("valid");
        assert_eq!(
            changes.set,
            vec![("name", json!("Renamed")), ("technology_stack", json!([])), ("performance_targets", json!({}))]
        );
        assert_eq!(changes.remove, vec!["description"]);
        let err =
            project_changes(&obj(json!({"name": null, "status": null, "id": "x", "colour": 1}))).expect_err("invalid");
        assert_eq!(fields_of(err), ["id", "colour", "name", "status"]);
        assert!(project_changes(&Map::new()).expect("empty").is_empty());
    }

    #[test]
    fn changes_apply_to_the_stored_json() {
        let p = project_from_create(&obj(json!({"name": "A", "description": "d"})), Uuid::nil(), Uuid::nil())
            .expect("valid");
        let changes = project_changes(&obj(json!({"name": "B", "description": null}))).expect("valid");
        let later = p.updated_at + chrono::Duration::seconds(1);
        let new: Project = serde_json::from_value(changes.apply(&p.to_body(), later)).expect("project");
        assert_eq!(new.name, "B");
        assert_eq!(new.description, None);
        assert_eq!(new.updated_at, later);
        assert_eq!(new.created_at, p.created_at);
    }

    #[test]
    fn seed_000s_task_is_valid_with_defaults() {
        let project = Uuid::now_v7();
        let body = obj(json!({
            "title": "Multi-Currency Payment Processing with Fraud Detection",
            "description": "Implement comprehensive payment processing",
            "priority": "high",
            "project_id": project.to_string(),
            "requirements": {"functional": ["multi_currency_support"], "testing": ["unit_tests_90_coverage"]},
            "acceptance_criteria": ["Process payments in 20+ currencies"]
        }));
        let t = task_from_create(&body, Uuid::nil(), project, Uuid::nil()).expect("valid");
        assert_eq!(t.status, "todo");
        assert_eq!(t.priority, "high");
        assert_eq!(t.project_id, project);
        assert_eq!(t.assignee_id, None);
        assert_eq!(t.to_body()["requirements"]["functional"][0], "multi_currency_support");
    }

    #[test]
    fn task_problems_are_all_named() {
        let body = obj(json!({
            "title": "t".repeat(201),
            "description": "d".repeat(5001),
            "status": "blocked",
            "priority": "whenever",
            "assignee_id": "bob",
            "due_date": "next tuesday",
            "project_id": Uuid::now_v7().to_string(),
            "requirements": {"functional": "all of them"},
            "acceptance_criteria": [""]
        }));
        let fields = fields_of(task_from_create(&body, Uuid::nil(), Uuid::now_v7(), Uuid::nil()).expect_err("bad"));
        assert_eq!(
            fields,
            [
                "project_id",
                "title",
                "description",
                "status",
                "priority",
                "assignee_id",
                "due_date",
                "requirements.functional",
                "acceptance_criteria[0]"
            ]
        );
        let err = task_from_create(&Map::new(), Uuid::nil(), Uuid::nil(), Uuid::nil()).expect_err("no title");
        assert_eq!(fields_of(err), ["title"]);
    }

    #[test]
    fn due_dates_are_rfc_3339_date_times_or_dates_in_utc() {
        let at = |raw: &str| {
            task_from_create(&obj(json!({"title": "t", "due_date": raw})), Uuid::nil(), Uuid::nil(), Uuid::nil())
                .map(|t| t.due_date.map(super::super::rfc3339))
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
        let changes = task_changes(&obj(json!({
            "status": "in_progress", "assignee_id": assignee.to_string(), "due_date": null, "description": null
        })))
        .expect("valid");
        assert_eq!(changes.set, vec![("status", json!("in_progress")), ("assignee_id", json!(assignee.to_string()))]);
        assert_eq!(changes.remove, vec!["description", "due_date"]);
        assert_eq!(changes.new_assignee, Some(assignee));
        let err =
            task_changes(&obj(json!({"project_id": Uuid::now_v7().to_string(), "title": null}))).expect_err("invalid");
        assert_eq!(fields_of(err), ["project_id", "title"]);
    }
}
