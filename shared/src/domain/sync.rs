//! Data sync connections (seed 001, "Data Synchronization"): a provider's
//! paged JSON API (or its inbound events) read into the platform's
//! customers, users, projects or tasks, or written on to another provider's
//! API, run by the integrations worker one page at a time with a checkpoint
//! after each.
//! What a connection is, what one run did, and the pure rules a run applies
//! to each record (field mapping, conflicts); docs/integrations.md has the
//! design.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

/// Connections one tenant may have.
pub const MAX_SYNC_CONNECTIONS_PER_TENANT: i64 = 25;
/// Records one page of a provider's answer may hold.
pub const MAX_RECORDS_PER_PAGE: usize = 1000;
/// Fields a mapping may set.
pub const MAX_MAPPED_FIELDS: usize = 50;
/// Runs are kept this long.
pub const RUN_RETENTION_DAYS: i64 = 90;

crate::string_enum!(
    /// How a run reads the source: everything (`full`), only what changed
    /// since the last successful run's checkpoint (`incremental`), or that
    /// and deletions, which it applies to the target (`delta`).
    SyncMode {
        Full => "full",
        Incremental => "incremental",
        Delta => "delta",
    }
);

impl SyncMode {
    /// Seed 001's batch names (`full_sync`, `incremental_sync`,
    /// `delta_sync`) and the short ones.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::parse(name.strip_suffix("_sync").unwrap_or(name))
    }

    pub fn reads_changes_only(self) -> bool {
        self != SyncMode::Full
    }
}

crate::string_enum!(
    /// What wins when the target record changed since this connection last
    /// wrote it and the source brings another version.
    ConflictResolution {
        SourceWins => "source_wins",
        TargetWins => "target_wins",
        LatestTimestamp => "latest_timestamp",
        Manual => "manual",
    }
);

crate::string_enum!(
    /// Where a connection writes its records: the platform's own resources
    /// (each record's primary key names one of them) or another
    /// provider's API.
    TargetType {
        Customers => "customers",
        Users => "users",
        Projects => "projects",
        Tasks => "tasks",
        Provider => "provider",
    }
);

impl TargetType {
    /// A provider's API cannot be read back: what it holds now is unknown,
    /// so only `source_wins` applies to it.
    pub fn detects_conflicts(self) -> bool {
        self != TargetType::Provider
    }

    /// The mapping a connection gets when it gives none (a provider target
    /// has none: its body is the caller's to shape).
    pub fn default_mapping(self) -> Option<Map<String, Value>> {
        let fields: &[&str] = match self {
            TargetType::Customers => &["email", "name"],
            TargetType::Users => &["email", "first_name", "last_name"],
            TargetType::Projects => &["name", "description"],
            TargetType::Tasks => &["title", "description"],
            TargetType::Provider => return None,
        };
        Some(fields.iter().map(|f| ((*f).to_owned(), Value::String((*f).to_owned()))).collect())
    }

    /// Why `name` is not a field this target takes from a mapping.
    pub fn mapping_problem(self, name: &str) -> Option<&'static str> {
        let plain: &[&str] = match self {
            TargetType::Customers => {
                return match name {
                    "email" | "name" => None,
                    other => match other.strip_prefix("metadata.") {
                        Some(key) if !key.is_empty() && key.len() <= 64 && !key.contains('.') => None,
                        _ => Some("must be email, name or metadata.<key>"),
                    },
                };
            }
            TargetType::Users => &["email", "first_name", "last_name", "is_active"],
            TargetType::Projects => &["name", "description", "priority", "status"],
            TargetType::Tasks => &["title", "description", "status", "priority", "due_date"],
            TargetType::Provider => {
                let parts: Vec<&str> = name.split('.').collect();
                let fine = parts.len() <= MAX_BODY_DEPTH
                    && parts.iter().all(|p| !p.is_empty() && p.len() <= 64 && !p.contains(['/', '?', '#']));
                return (!fine).then_some("must be a body field: 1 to 5 dotted names of 1 to 64 characters");
            }
        };
        if plain.contains(&name) {
            return None;
        }
        Some(match self {
            TargetType::Users => "must be email, first_name, last_name or is_active",
            TargetType::Projects => "must be name, description, priority or status",
            _ => "must be title, description, status, priority or due_date",
        })
    }
}

/// How deep a provider target's body may nest (`a.b.c.d.e`).
pub const MAX_BODY_DEPTH: usize = 5;

/// What a target needs beyond its type: `project_id` (tasks), `role`
/// (users), `provider_id` and `path` (provider).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TargetConfig {
    /// `tasks`: the project the tasks are in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_id: Option<Uuid>,
    /// `users`: the role of the users a run creates (`user` when left
    /// out; at most the creator's own, never `owner`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, example = "user")]
    pub role: Option<crate::domain::role::Role>,
    /// `provider`: the provider whose API is written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_id: Option<Uuid>,
    /// `provider`: appended to its `api_base_url`; each record is `PUT` to
    /// `<path>/<key>`, a deletion is a `DELETE` there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

crate::string_enum!(
    /// Where a run is.
    RunStatus {
        Queued => "queued",
        Running => "running",
        Succeeded => "succeeded",
        Failed => "failed",
    }
);

/// The provider's API as a paged JSON source of one stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SyncSource {
    /// The provider whose `api_base_url` is read.
    pub provider_id: Uuid,
    /// Appended to the provider's `api_base_url` (`/customers`).
    pub path: String,
    /// The answer's field that holds the page's records.
    pub records_field: String,
    /// The answer's field with the next page's cursor (absent or null on
    /// the last page).
    pub next_cursor_field: String,
    /// The query parameter the next page's cursor goes in.
    pub cursor_param: String,
    /// The query parameter an incremental run passes its checkpoint in.
    pub since_param: String,
    /// The record's field that identifies it; becomes the customer's
    /// `external_id`.
    pub primary_key: String,
    /// The record's field that grows when the record changes (an RFC 3339
    /// time or a number); incremental and delta runs start after the
    /// largest one the last successful run saw.
    pub cursor_field: Option<String>,
    /// In a delta run, a record whose field is `true` is a deletion.
    pub deleted_field: String,
}

/// A connection as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyncConnection {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub name: String,
    pub source: SyncSource,
    /// Where each record goes, by its primary key (docs/integrations.md,
    /// "Targets"). Fixed at creation: the marks of what was written are
    /// the target's.
    pub target: TargetType,
    #[serde(default)]
    pub target_config: TargetConfig,
    pub sync_mode: SyncMode,
    pub conflict_resolution: ConflictResolution,
    /// Target field -> the source record's field (a dotted path); the
    /// target fields are the target type's
    /// ([`TargetType::mapping_problem`]).
    pub field_mapping: Map<String, Value>,
    pub is_active: bool,
    /// An EventBridge Scheduler expression (`rate(1 hour)`,
    /// `cron(0 2 * * ? *)`) when runs start on a schedule; `None` when they
    /// start from the API only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// Every inbound event of the source provider is applied at once (a
    /// run per event, `trigger: "event"`); runs from the API still read the
    /// provider's API (a backfill).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub real_time: bool,
    /// The largest cursor value a successful run saw: where the next
    /// incremental run starts. `None`: from the beginning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<Value>,
    /// The run in progress, if one is. Absent, not null, when there is
    /// none: starting a run is conditioned on `attribute_not_exists`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_run_id: Option<Uuid>,
    #[serde(default)]
    pub last_run_at: Option<String>,
    #[serde(default)]
    pub last_successful_sync_at: Option<String>,
    #[serde(default)]
    pub consecutive_failures: i64,
    /// Who created it: the `created_by` of the projects and tasks its runs
    /// create.
    #[serde(default)]
    pub created_by: Uuid,
    pub version: i64,
    pub created_at: String,
    pub updated_at: String,
}

impl SyncConnection {
    pub fn frequency(&self) -> &'static str {
        if self.real_time {
            "real_time"
        } else if self.schedule.is_some() {
            "scheduled"
        } else {
            "manual"
        }
    }
}

/// A connection as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SyncConnectionView {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub name: String,
    /// `api`: a provider's paged JSON API.
    pub source_type: String,
    pub source: SyncSource,
    pub target_type: TargetType,
    /// The target's options (`project_id`, `role`, `provider_id`, `path`).
    pub target: TargetConfig,
    pub sync_mode: SyncMode,
    pub conflict_resolution: ConflictResolution,
    #[schema(value_type = Object)]
    pub field_mapping: Map<String, Value>,
    pub is_active: bool,
    /// `manual` (runs start from the API), `scheduled` or `real_time`.
    pub frequency: String,
    /// The schedule's expression when `scheduled`.
    pub schedule: Option<String>,
    /// Where the next incremental run starts (the largest cursor value a
    /// successful run saw); null: from the beginning.
    #[schema(value_type = Option<Object>)]
    pub checkpoint: Option<Value>,
    pub active_run_id: Option<Uuid>,
    pub last_run_at: Option<String>,
    pub last_successful_sync_at: Option<String>,
    /// Runs that failed since the last one that succeeded.
    pub consecutive_failures: i64,
    pub created_at: String,
    pub updated_at: String,
}

impl From<&SyncConnection> for SyncConnectionView {
    fn from(c: &SyncConnection) -> Self {
        SyncConnectionView {
            id: c.id,
            tenant_id: c.tenant_id,
            name: c.name.clone(),
            source_type: "api".to_owned(),
            source: c.source.clone(),
            target_type: c.target,
            target: c.target_config.clone(),
            sync_mode: c.sync_mode,
            conflict_resolution: c.conflict_resolution,
            field_mapping: c.field_mapping.clone(),
            is_active: c.is_active,
            frequency: c.frequency().to_owned(),
            schedule: c.schedule.clone(),
            checkpoint: c.checkpoint.clone(),
            active_run_id: c.active_run_id,
            last_run_at: c.last_run_at.clone(),
            last_successful_sync_at: c.last_successful_sync_at.clone(),
            consecutive_failures: c.consecutive_failures,
            created_at: c.created_at.clone(),
            updated_at: c.updated_at.clone(),
        }
    }
}

/// What one run did so far.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RunCounts {
    pub pages: i64,
    pub records_read: i64,
    /// Target records created (a provider target: records sent for the
    /// first time).
    pub records_created: i64,
    /// Target records whose fields the run changed.
    pub records_updated: i64,
    /// Records that matched their target record already.
    pub records_unchanged: i64,
    /// Target records a delta run removed.
    pub records_deleted: i64,
    /// Records whose target record changed since this connection last
    /// wrote it.
    pub conflicts: i64,
    /// Records the target refused (each is named in `last_error`).
    pub errors: i64,
}

impl RunCounts {
    pub fn add(&mut self, other: &RunCounts) {
        self.pages += other.pages;
        self.records_read += other.records_read;
        self.records_created += other.records_created;
        self.records_updated += other.records_updated;
        self.records_unchanged += other.records_unchanged;
        self.records_deleted += other.records_deleted;
        self.conflicts += other.conflicts;
        self.errors += other.errors;
    }

    pub fn written(&self) -> i64 {
        self.records_created + self.records_updated + self.records_deleted
    }
}

/// One run of a connection. Unset fields are absent from the item, not
/// null: `started_at` is set with `if_not_exists`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyncRun {
    pub id: Uuid,
    pub connection_id: Uuid,
    pub tenant_id: Uuid,
    pub status: RunStatus,
    pub sync_mode: SyncMode,
    /// `manual` (the API), `schedule` (a firing of its schedule) or
    /// `event` (a real-time connection's inbound event).
    pub trigger: String,
    /// The checkpoint the run started after (incremental, delta).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_after: Option<Value>,
    /// The source's cursor for the next page; `None` before the first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_cursor: Option<String>,
    /// The largest cursor value seen so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_cursor_value: Option<Value>,
    #[serde(default)]
    pub counts: RunCounts,
    /// Times the worker picked the run up (1, then one per continuation or
    /// retry).
    #[serde(default)]
    pub invocations: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<i64>,
}

/// A run as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SyncRunView {
    pub id: Uuid,
    pub connection_id: Uuid,
    pub status: RunStatus,
    pub sync_mode: SyncMode,
    pub trigger: String,
    #[schema(value_type = Option<Object>)]
    pub started_after: Option<Value>,
    #[schema(value_type = Option<Object>)]
    pub max_cursor_value: Option<Value>,
    pub counts: RunCounts,
    /// Pages read and whether more may follow: `done` once the run ended.
    pub progress: RunProgress,
    pub invocations: i64,
    pub last_error: Option<String>,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub duration_ms: Option<i64>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RunProgress {
    pub pages_read: i64,
    pub records_read: i64,
    pub done: bool,
}

impl From<&SyncRun> for SyncRunView {
    fn from(r: &SyncRun) -> Self {
        SyncRunView {
            id: r.id,
            connection_id: r.connection_id,
            status: r.status,
            sync_mode: r.sync_mode,
            trigger: r.trigger.clone(),
            started_after: r.started_after.clone(),
            max_cursor_value: r.max_cursor_value.clone(),
            counts: r.counts.clone(),
            progress: RunProgress {
                pages_read: r.counts.pages,
                records_read: r.counts.records_read,
                done: matches!(r.status, RunStatus::Succeeded | RunStatus::Failed),
            },
            invocations: r.invocations,
            last_error: r.last_error.clone(),
            created_at: r.created_at.clone(),
            started_at: r.started_at.clone(),
            finished_at: r.finished_at.clone(),
            duration_ms: r.duration_ms,
        }
    }
}

/// A record a `manual` connection did not write: its target record
/// changed since the connection last wrote it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SyncConflict {
    pub connection_id: Uuid,
    /// The record's primary key (a customer's `external_id`).
    pub key: String,
    /// The target record's id (a customer, user, project or task).
    pub target_id: Uuid,
    /// The fields the source brought, as the mapping made them.
    #[schema(value_type = Object)]
    pub source_fields: Value,
    /// The target record as it was when the conflict was found.
    #[schema(value_type = Object)]
    pub target_fields: Value,
    pub run_id: Uuid,
    pub detected_at: String,
}

/// The value at a dotted path of a record (`address.city`).
pub fn field<'a>(record: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(record, |value, part| value.get(part))
}

/// A record's primary key as the customer's `external_id`: a string as it
/// is, a number as its digits; anything else is not a key.
pub fn key_of(record: &Value, primary_key: &str) -> Option<String> {
    match field(record, primary_key)? {
        Value::String(s) if !s.is_empty() && s.chars().count() <= super::customer::MAX_EXTERNAL_ID_CHARS => {
            Some(s.clone())
        }
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Orders two cursor values: numbers by value, strings (RFC 3339 times in
/// UTC sort as text) by text; `None` when they cannot be compared.
pub fn cursor_cmp(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Value::String(x), Value::String(y)) => match (parse_time(x), parse_time(y)) {
            (Some(x), Some(y)) => Some(x.cmp(&y)),
            _ => Some(x.cmp(y)),
        },
        _ => None,
    }
}

fn parse_time(text: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(text).ok().map(|t| t.with_timezone(&chrono::Utc))
}

/// The larger of two cursor values (the first when they do not compare).
pub fn cursor_max(current: Option<Value>, seen: &Value) -> Option<Value> {
    match current {
        None => Some(seen.clone()),
        Some(current) => match cursor_cmp(seen, &current) {
            Some(std::cmp::Ordering::Greater) => Some(seen.clone()),
            _ => Some(current),
        },
    }
}

/// A cursor value as the `since` query parameter carries it.
pub fn cursor_param(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Maps one record: target field -> the value at its source path, a dotted
/// target field (`metadata.plan`, a provider body's `address.city`) nested
/// as objects. A field the record lacks is left out (the target keeps its
/// value); the values are checked by the target.
pub fn map_record(record: &Value, mapping: &Map<String, Value>) -> Map<String, Value> {
    let mut mapped = Map::new();
    for (target, source) in mapping {
        let Some(path) = source.as_str() else { continue };
        let Some(value) = field(record, path) else { continue };
        let parts: Vec<&str> = target.split('.').collect();
        insert_at(&mut mapped, &parts, value.clone());
    }
    mapped
}

/// Puts `value` at the dotted `path`, making (or replacing) the objects on
/// its way.
fn insert_at(object: &mut Map<String, Value>, path: &[&str], value: Value) {
    match path {
        [] => {}
        [last] => {
            object.insert((*last).to_owned(), value);
        }
        [first, rest @ ..] => {
            let slot = object.entry((*first).to_owned()).or_insert_with(|| Value::Object(Map::new()));
            if !slot.is_object() {
                *slot = Value::Object(Map::new());
            }
            if let Value::Object(inner) = slot {
                insert_at(inner, rest, value);
            }
        }
    }
}

/// What a run does with one record whose target record exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    /// Write the source's fields.
    Apply,
    /// Keep the target record as it is.
    Keep,
    /// Keep it and record the conflict for a person (`manual`).
    Hold,
}

/// Decides a record whose target record exists. `changed_since_written`:
/// the target's `updated_at` differs from the one this connection's last
/// write left (or it never wrote it). Without a conflict the source is
/// applied; with one, the connection's rule decides. `latest_timestamp`
/// compares the record's cursor field with the target's `updated_at` (the
/// source wins ties and values that do not compare).
pub fn resolve(
    rule: ConflictResolution,
    changed_since_written: bool,
    source_time: Option<&Value>,
    target_updated_at: &str,
) -> (Resolution, bool) {
    if !changed_since_written {
        return (Resolution::Apply, false);
    }
    let resolution = match rule {
        ConflictResolution::SourceWins => Resolution::Apply,
        ConflictResolution::TargetWins => Resolution::Keep,
        ConflictResolution::Manual => Resolution::Hold,
        ConflictResolution::LatestTimestamp => {
            let target = Value::String(target_updated_at.to_owned());
            match source_time.and_then(|source| cursor_cmp(source, &target)) {
                Some(std::cmp::Ordering::Less) => Resolution::Keep,
                _ => Resolution::Apply,
            }
        }
    };
    (resolution, true)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_seed_batch_names_are_modes() {
        assert_eq!(SyncMode::from_name("incremental_sync"), Some(SyncMode::Incremental));
        assert_eq!(SyncMode::from_name("full"), Some(SyncMode::Full));
        assert_eq!(SyncMode::from_name("delta_sync"), Some(SyncMode::Delta));
        assert_eq!(SyncMode::from_name("sometimes"), None);
    }

    #[test]
    fn keys_are_strings_or_numbers() {
        assert_eq!(key_of(&json!({"id": 42}), "id").as_deref(), Some("42"));
        assert_eq!(key_of(&json!({"ref": {"id": "c-1"}}), "ref.id").as_deref(), Some("c-1"));
        assert_eq!(key_of(&json!({"id": ""}), "id"), None);
        assert_eq!(key_of(&json!({"id": [1]}), "id"), None);
        assert_eq!(key_of(&json!({}), "id"), None);
    }

    #[test]
    fn cursors_order_times_as_times_and_numbers_as_numbers() {
        let a = json!("2026-01-01T10:00:00+02:00");
        let b = json!("2026-01-01T09:00:00Z");
        assert_eq!(cursor_cmp(&a, &b), Some(std::cmp::Ordering::Less));
        assert_eq!(cursor_cmp(&json!(10), &json!(9)), Some(std::cmp::Ordering::Greater));
        assert_eq!(cursor_cmp(&json!(10), &json!("9")), None);
        assert_eq!(cursor_max(Some(json!(3)), &json!(7)), Some(json!(7)));
        assert_eq!(cursor_max(Some(json!(7)), &json!(3)), Some(json!(7)));
        assert_eq!(cursor_max(None, &json!(3)), Some(json!(3)));
    }

    #[test]
    fn a_mapping_nests_dotted_targets_and_each_target_names_its_fields() -> Result<(), String> {
        let mapping = json!({"email": "contact.email", "name": "full_name", "metadata.plan": "plan"});
        let mapping = mapping.as_object().ok_or("an object")?;
        let mapped =
            map_record(&json!({"contact": {"email": "a@b.co"}, "full_name": null, "plan": {"tier": 2}}), mapping);
        assert_eq!(Value::Object(mapped), json!({"email": "a@b.co", "name": null, "metadata": {"plan": {"tier": 2}}}));
        assert!(map_record(&json!({}), mapping).is_empty());
        let customers = TargetType::Customers;
        assert_eq!(customers.mapping_problem("metadata.plan"), None);
        assert!(customers.mapping_problem("metadata.").is_some());
        assert!(customers.mapping_problem("photo_count").is_some());
        assert_eq!(TargetType::Tasks.mapping_problem("due_date"), None);
        assert!(TargetType::Tasks.mapping_problem("assignee_id").is_some());
        assert!(TargetType::Users.mapping_problem("role").is_some(), "a sync never sets roles from data");
        assert_eq!(TargetType::Provider.mapping_problem("address.city"), None);
        assert!(TargetType::Provider.mapping_problem("a.b.c.d.e.f").is_some());
        assert!(TargetType::Provider.mapping_problem("a..b").is_some());
        assert_eq!(TargetType::Provider.default_mapping(), None);
        Ok(())
    }

    #[test]
    fn conflicts_resolve_per_rule() {
        let t = "2026-03-01T00:00:00Z";
        assert_eq!(resolve(ConflictResolution::TargetWins, false, None, t), (Resolution::Apply, false));
        assert_eq!(resolve(ConflictResolution::SourceWins, true, None, t), (Resolution::Apply, true));
        assert_eq!(resolve(ConflictResolution::TargetWins, true, None, t), (Resolution::Keep, true));
        assert_eq!(resolve(ConflictResolution::Manual, true, None, t), (Resolution::Hold, true));
        let older = json!("2026-02-01T00:00:00Z");
        let newer = json!("2026-04-01T00:00:00Z");
        assert_eq!(resolve(ConflictResolution::LatestTimestamp, true, Some(&older), t), (Resolution::Keep, true));
        assert_eq!(resolve(ConflictResolution::LatestTimestamp, true, Some(&newer), t), (Resolution::Apply, true));
        assert_eq!(resolve(ConflictResolution::LatestTimestamp, true, None, t), (Resolution::Apply, true));
    }
}
