//! Projects and their tasks (seed 000: the tenant-isolation scenario's project,
//! scenario 5's enterprise project and its task). Both belong to one tenant;
//! a task belongs to one project of that tenant.
//!
//! Bodies parse into typed structs ([`CreateProject`], [`UpdateProject`],
//! [`CreateTask`], [`UpdateTask`]) whose fields can only hold valid values:
//! every problem in one answer, unknown fields refused by name, fields the
//! platform sets refused as such. Updates (`PUT` and `PATCH` alike) are
//! partial: an absent field is unchanged, `null` clears an optional field
//! (text and dates are removed, lists become `[]`, objects `{}`), and `null`
//! on a required field is refused.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Deserializer, Serialize, de::Error as _};
use serde_json::{Map, Value, json};
use utoipa::openapi::{
    RefOr,
    schema::{AnyOfBuilder, ArrayBuilder, KnownFormat, ObjectBuilder, Schema, SchemaFormat, SchemaType, Type},
};
use uuid::Uuid;

use super::values::{Text, check_storable};

crate::string_enum!(
    /// How urgent a project or task is.
    Priority {
        Low => "low",
        Medium => "medium",
        High => "high",
        Critical => "critical",
    }
);

crate::string_enum!(
    /// A project's state.
    ProjectStatus {
        Active => "active",
        Archived => "archived",
    }
);

crate::string_enum!(
    /// A task's state.
    TaskStatus {
        Todo => "todo",
        InProgress => "in_progress",
        Done => "done",
    }
);

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Project {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub technology_stack: Vec<String>,
    pub priority: Priority,
    pub status: ProjectStatus,
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
    pub status: TaskStatus,
    pub priority: Priority,
    #[serde(default)]
    pub assignee_id: Option<Uuid>,
    #[serde(default)]
    pub due_date: Option<DateTime<Utc>>,
    /// Seed 000 scenario 5: named lists (`functional`, `non_functional`, ...).
    #[serde(default = "empty_object")]
    pub requirements: Value,
    #[serde(default)]
    pub acceptance_criteria: Vec<String>,
    /// Set for a task created through `POST /v1/tasks`: its AI analysis.
    #[serde(default)]
    pub analysis_status: Option<super::ai::AnalysisStatus>,
    #[serde(default)]
    pub analysis_job_id: Option<Uuid>,
    #[serde(default)]
    pub ai_analysis: Option<super::ai::AiAnalysis>,
    pub created_by: Uuid,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A project as the API shows it (and as audit entries record it).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ProjectView {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub name: String,
    pub description: Option<String>,
    pub technology_stack: Vec<String>,
    pub priority: Priority,
    pub status: ProjectStatus,
    /// Standards the project must meet (`PCI_DSS`, `GDPR`, ...).
    pub compliance_requirements: Vec<String>,
    /// Free-form targets by name (`response_time_p95`, ...); `{}` when none.
    #[schema(value_type = Object)]
    pub performance_targets: Value,
    pub security_requirements: Vec<String>,
    /// The user who created the project.
    pub created_by: Uuid,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// How many tasks the project has.
    pub task_count: i64,
}

impl Project {
    pub fn view(&self) -> ProjectView {
        ProjectView {
            id: self.id,
            tenant_id: self.tenant_id,
            name: self.name.clone(),
            description: self.description.clone(),
            technology_stack: self.technology_stack.clone(),
            priority: self.priority,
            status: self.status,
            compliance_requirements: self.compliance_requirements.clone(),
            performance_targets: self.performance_targets.clone(),
            security_requirements: self.security_requirements.clone(),
            created_by: self.created_by,
            created_at: self.created_at,
            updated_at: self.updated_at,
            task_count: self.task_count,
        }
    }
}

/// A task as the API shows it (and as audit entries record it).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct TaskView {
    pub id: Uuid,
    pub project_id: Uuid,
    pub tenant_id: Uuid,
    pub title: String,
    pub description: Option<String>,
    pub status: TaskStatus,
    pub priority: Priority,
    /// A user of the tenant.
    pub assignee_id: Option<Uuid>,
    pub due_date: Option<DateTime<Utc>>,
    /// Named lists of requirements (`functional`, `non_functional`, ...);
    /// `{}` when none.
    #[schema(value_type = std::collections::BTreeMap<String, Vec<String>>)]
    pub requirements: Value,
    pub acceptance_criteria: Vec<String>,
    /// `analyzing`, `completed` or `failed` for a task created through
    /// `POST /v1/tasks` (its AI analysis); null for the others.
    pub analysis_status: Option<super::ai::AnalysisStatus>,
    /// The analysis job (`GET /v1/ai/generation-status/{id}` shows it too).
    pub analysis_job_id: Option<Uuid>,
    /// The model's analysis once `analysis_status` is `completed`.
    pub ai_analysis: Option<super::ai::AiAnalysis>,
    /// The user who created the task.
    pub created_by: Uuid,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Task {
    pub fn view(&self) -> TaskView {
        TaskView {
            id: self.id,
            project_id: self.project_id,
            tenant_id: self.tenant_id,
            title: self.title.clone(),
            description: self.description.clone(),
            status: self.status,
            priority: self.priority,
            assignee_id: self.assignee_id,
            due_date: self.due_date,
            requirements: self.requirements.clone(),
            acceptance_criteria: self.acceptance_criteria.clone(),
            analysis_status: self.analysis_status,
            analysis_job_id: self.analysis_job_id,
            ai_analysis: self.ai_analysis.clone(),
            created_by: self.created_by,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

// ------------------------------------------------------------------ limits --

pub const NAME_MAX: usize = 200;
pub const PROJECT_DESCRIPTION_MAX: usize = 2_000;
pub const TECHNOLOGY_STACK_MAX_ITEMS: usize = 30;
pub const TECHNOLOGY_MAX: usize = 50;
pub const REQUIREMENTS_MAX_ITEMS: usize = 20;
pub const REQUIREMENT_MAX: usize = 100;
pub const PERFORMANCE_TARGETS_MAX_KEYS: usize = 20;
pub const OBJECT_KEY_MAX: usize = 64;
/// Serialised size of one free-form value, so an item stays far below
/// DynamoDB's 400 KB.
pub const OBJECT_VALUE_MAX: usize = 500;
pub const TITLE_MAX: usize = 200;
pub const TASK_DESCRIPTION_MAX: usize = 5_000;
pub const TASK_REQUIREMENT_GROUPS_MAX: usize = 10;
pub const TASK_REQUIREMENT_ITEMS_MAX: usize = 20;
pub const TASK_REQUIREMENT_MAX: usize = 200;
pub const CRITERIA_MAX_ITEMS: usize = 20;
pub const CRITERION_MAX: usize = 500;

// ------------------------------------------------------------------ values --

/// A JSON array of `T`, read whole even when it is refused, so that the
/// rest of the body can still be checked (a value left half-read would
/// derail the parser for the fields after it): the first bad entry is
/// refused at its index (`technology_stack[1]`), anything but an array with
/// "must be an array".
pub fn array_of<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct Items<T>(std::marker::PhantomData<T>);

    impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for Items<T> {
        type Value = Vec<T>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an array")
        }

        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
            let mut items = Vec::new();
            loop {
                match seq.next_element::<T>() {
                    Ok(Some(item)) => items.push(item),
                    Ok(None) => return Ok(items),
                    Err(first) => {
                        while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                        return Err(first);
                    }
                }
            }
        }

        fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Vec<T>, A::Error> {
            while map.next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?.is_some() {}
            Err(A::Error::custom("must be an array"))
        }

        fn visit_unit<E: serde::de::Error>(self) -> Result<Vec<T>, E> {
            Err(E::custom("is required"))
        }

        fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Vec<T>, E> {
            Err(E::custom("must be an array"))
        }

        fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<Vec<T>, E> {
            Err(E::custom("must be an array"))
        }

        fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<Vec<T>, E> {
            Err(E::custom("must be an array"))
        }

        fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Vec<T>, E> {
            Err(E::custom("must be an array"))
        }

        fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<Vec<T>, E> {
            Err(E::custom("must be an array"))
        }
    }

    deserializer.deserialize_any(Items(std::marker::PhantomData))
}

/// A JSON object of `V` values, read whole even when it is refused (see
/// [`array_of`]): the first bad value is refused at its key
/// (`requirements.functional`), anything but an object with "must be an
/// object".
pub fn object_of<'de, D, V>(deserializer: D) -> Result<std::collections::BTreeMap<String, V>, D::Error>
where
    D: Deserializer<'de>,
    V: Deserialize<'de>,
{
    struct Entries<V>(std::marker::PhantomData<V>);

    impl<'de, V: Deserialize<'de>> serde::de::Visitor<'de> for Entries<V> {
        type Value = std::collections::BTreeMap<String, V>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an object")
        }

        fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut entries = std::collections::BTreeMap::new();
            while let Some(key) = map.next_key::<String>()? {
                match map.next_value::<V>() {
                    Ok(value) => {
                        entries.insert(key, value);
                    }
                    Err(first) => {
                        while map.next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?.is_some() {}
                        return Err(first);
                    }
                }
            }
            Ok(entries)
        }

        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
            Err(A::Error::custom("must be an object"))
        }

        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Err(E::custom("is required"))
        }

        fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Err(E::custom("must be an object"))
        }

        fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Err(E::custom("must be an object"))
        }

        fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Err(E::custom("must be an object"))
        }

        fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Err(E::custom("must be an object"))
        }

        fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Err(E::custom("must be an object"))
        }
    }

    deserializer.deserialize_any(Entries(std::marker::PhantomData))
}

fn string<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    match Value::deserialize(deserializer)? {
        Value::String(s) => Ok(s),
        Value::Null => Err(D::Error::custom("is required")),
        _ => Err(D::Error::custom("must be a string")),
    }
}

/// A name or title: 1 to `MAX` characters, not only whitespace (kept as
/// given).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Name<const MAX: usize>(String);

impl<const MAX: usize> Name<MAX> {
    pub fn parse(value: String) -> Result<Self, String> {
        let text = Text::<1, MAX>::parse(value)?;
        if text.as_str().trim().is_empty() {
            return Err("must not be blank".to_owned());
        }
        Ok(Self(text.into_inner()))
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

impl<'de, const MAX: usize> Deserialize<'de> for Name<MAX> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Self::parse(string(deserializer)?).map_err(D::Error::custom)
    }
}

/// One entry of a list of short texts: 1 to `MAX` characters, not only
/// whitespace.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ListItem<const MAX: usize>(String);

impl<'de, const MAX: usize> Deserialize<'de> for ListItem<MAX> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match Value::deserialize(deserializer)? {
            Value::String(s) if !s.trim().is_empty() && s.chars().count() <= MAX => Ok(Self(s)),
            Value::String(_) => Err(D::Error::custom(format!("must have 1 to {MAX} characters, not only spaces"))),
            _ => Err(D::Error::custom("must be a string")),
        }
    }
}

/// A list of at most `ITEMS` short texts of at most `LEN` characters; a bad
/// entry is named by its index (`technology_stack[1]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextList<const ITEMS: usize, const LEN: usize>(Vec<String>);

impl<const ITEMS: usize, const LEN: usize> TextList<ITEMS, LEN> {
    pub fn into_inner(self) -> Vec<String> {
        self.0
    }
}

impl<'de, const ITEMS: usize, const LEN: usize> Deserialize<'de> for TextList<ITEMS, LEN> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let items = array_of::<D, ListItem<LEN>>(deserializer)?;
        if items.len() > ITEMS {
            return Err(D::Error::custom(format!("must have at most {ITEMS} items")));
        }
        Ok(Self(items.into_iter().map(|ListItem(s)| s).collect()))
    }
}

/// A value of a free-form object: at most 500 characters of JSON that
/// DynamoDB can store (`values::check_storable`: nesting, empty keys,
/// numbers out of its range).
struct SmallJson(Value);

impl<'de> Deserialize<'de> for SmallJson {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        if value.to_string().len() > OBJECT_VALUE_MAX {
            return Err(D::Error::custom(format!("must be at most {OBJECT_VALUE_MAX} characters of JSON")));
        }
        check_storable(&value).map_err(D::Error::custom)?;
        Ok(Self(value))
    }
}

fn check_keys<E: serde::de::Error, V>(map: &std::collections::BTreeMap<String, V>, max_keys: usize) -> Result<(), E> {
    if map.len() > max_keys {
        return Err(E::custom(format!("must have at most {max_keys} keys")));
    }
    if map.keys().any(|k| k.is_empty() || k.chars().count() > OBJECT_KEY_MAX) {
        return Err(E::custom(format!("keys must have 1 to {OBJECT_KEY_MAX} characters")));
    }
    Ok(())
}

/// A free-form object (`performance_targets`): at most `KEYS` keys of 1 to
/// 64 characters, each value at most 500 characters of JSON that DynamoDB
/// can store (named `performance_targets.<key>` when it is not). With 20
/// keys that is at most about 11.4 KB, so a project item stays far below
/// DynamoDB's 400 KB.
#[derive(Debug, Clone, PartialEq)]
pub struct FreeObject<const KEYS: usize>(Map<String, Value>);

impl<const KEYS: usize> FreeObject<KEYS> {
    pub fn into_inner(self) -> Map<String, Value> {
        self.0
    }
}

impl<'de, const KEYS: usize> Deserialize<'de> for FreeObject<KEYS> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let map = object_of::<D, SmallJson>(deserializer)?;
        check_keys::<D::Error, _>(&map, KEYS)?;
        Ok(Self(map.into_iter().map(|(k, SmallJson(v))| (k, v)).collect()))
    }
}

/// Seed 000's task `requirements`: at most 10 named lists of at most 20
/// strings of at most 200 characters (a task item stays under ~60 KB, so a
/// project delete's transaction stays under DynamoDB's 4 MB).
#[derive(Debug, Clone, PartialEq)]
pub struct Requirements(Map<String, Value>);

impl Requirements {
    pub fn into_inner(self) -> Map<String, Value> {
        self.0
    }
}

type RequirementList = TextList<TASK_REQUIREMENT_ITEMS_MAX, TASK_REQUIREMENT_MAX>;

impl<'de> Deserialize<'de> for Requirements {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let map = object_of::<D, RequirementList>(deserializer)?;
        check_keys::<D::Error, _>(&map, TASK_REQUIREMENT_GROUPS_MAX)?;
        Ok(Self(map.into_iter().map(|(k, list)| (k, json!(list.into_inner()))).collect()))
    }
}

/// A due date: an RFC 3339 timestamp (kept to the millisecond, in UTC), or
/// a full date (`YYYY-MM-DD`, meaning its first instant in UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DueDate(pub DateTime<Utc>);

impl DueDate {
    pub fn parse(raw: &str) -> Result<Self, String> {
        if let Ok(at) = DateTime::parse_from_rfc3339(raw) {
            use chrono::SubsecRound;
            return Ok(Self(at.with_timezone(&Utc).trunc_subsecs(3)));
        }
        NaiveDate::parse_from_str(raw, "%Y-%m-%d")
            .ok()
            // Only `YYYY-MM-DD`: chrono also reads `2025-3-1`, ` 2025-03-01`,
            // `+2025-03-01`, `-2025-03-01`, `99-03-01`.
            .filter(|day| raw.len() == 10 && day.format("%Y-%m-%d").to_string() == raw)
            .and_then(|day| day.and_hms_opt(0, 0, 0))
            .map(|t| Self(t.and_utc()))
            .ok_or_else(|| "must be an RFC 3339 date-time (2025-03-01T17:00:00Z) or date (2025-03-01)".to_owned())
    }
}

impl<'de> Deserialize<'de> for DueDate {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Self::parse(&string(deserializer)?).map_err(D::Error::custom)
    }
}

/// A field the platform sets (`id`, `created_at`, ...): naming it in a body,
/// even as `null`, is refused. Declare it `#[serde(default)]`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SetByPlatform;

impl<'de> Deserialize<'de> for SetByPlatform {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        serde::de::IgnoredAny::deserialize(deserializer)?;
        Err(D::Error::custom("is set by the platform and cannot be given"))
    }
}

pub type TechnologyStack = TextList<TECHNOLOGY_STACK_MAX_ITEMS, TECHNOLOGY_MAX>;
pub type RequirementsList = TextList<REQUIREMENTS_MAX_ITEMS, REQUIREMENT_MAX>;
pub type PerformanceTargets = FreeObject<PERFORMANCE_TARGETS_MAX_KEYS>;
pub type Criteria = TextList<CRITERIA_MAX_ITEMS, CRITERION_MAX>;

// ----------------------------------------------------------------- schemas --

/// "Not only whitespace" as a JSON Schema pattern: one character that
/// `char::is_whitespace` (what `str::trim` strips) is not, spelled out so
/// that every regex dialect (ECMA-262, Python's, Rust's) reads it as the
/// parser does; `\S` differs between them (U+0085, U+FEFF, U+001C..U+001F).
pub const NOT_BLANK: &str = r"[^\u0009-\u000D\u0020\u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]";

/// A string of 1 to `max` characters, not only whitespace.
fn not_blank(max: usize) -> ObjectBuilder {
    super::schema::string(1, max).pattern(Some(NOT_BLANK))
}

/// An object's keys: 1 to [`OBJECT_KEY_MAX`] characters.
fn object_keys() -> ObjectBuilder {
    super::schema::string(1, OBJECT_KEY_MAX)
}

/// A string in a format, with no bounds of its own.
fn formatted_string(format: KnownFormat) -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String).format(Some(SchemaFormat::KnownFormat(format)))
}

impl<const MAX: usize> utoipa::PartialSchema for Name<MAX> {
    fn schema() -> RefOr<Schema> {
        not_blank(MAX).into()
    }
}

impl<const MAX: usize> utoipa::ToSchema for Name<MAX> {
    fn name() -> std::borrow::Cow<'static, str> {
        super::schema::inline_name(format_args!("Name_{MAX}"))
    }
}

impl<const ITEMS: usize, const LEN: usize> utoipa::PartialSchema for TextList<ITEMS, LEN> {
    fn schema() -> RefOr<Schema> {
        ArrayBuilder::new().items(not_blank(LEN)).max_items(Some(ITEMS)).into()
    }
}

impl<const ITEMS: usize, const LEN: usize> utoipa::ToSchema for TextList<ITEMS, LEN> {
    fn name() -> std::borrow::Cow<'static, str> {
        super::schema::inline_name(format_args!("TextList_{ITEMS}_{LEN}"))
    }
}

impl<const KEYS: usize> utoipa::PartialSchema for FreeObject<KEYS> {
    fn schema() -> RefOr<Schema> {
        // What SmallJson checks cannot be said in JSON Schema: described.
        let value = ObjectBuilder::new().schema_type(SchemaType::AnyValue).description(Some(format!(
            "Any JSON value of at most {OBJECT_VALUE_MAX} bytes as compact JSON, at most {} levels deep \
             (`[[1]]` is 3), with no empty keys, and numbers 0 or of magnitude 1e-130 to 1e126",
            super::values::MAX_JSON_DEPTH
        )));
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .max_properties(Some(KEYS))
            .property_names(Some(object_keys()))
            .additional_properties(Some(value))
            .into()
    }
}

impl<const KEYS: usize> utoipa::ToSchema for FreeObject<KEYS> {
    fn name() -> std::borrow::Cow<'static, str> {
        super::schema::inline_name(format_args!("FreeObject_{KEYS}"))
    }
}

crate::inline_schema!(
    Requirements,
    "Requirements",
    free_object()
        .max_properties(Some(TASK_REQUIREMENT_GROUPS_MAX))
        .property_names(Some(object_keys()))
        .additional_properties(Some(<RequirementList as utoipa::PartialSchema>::schema()))
);

crate::inline_schema!(
    DueDate,
    "DueDate",
    AnyOfBuilder::new()
        .item(formatted_string(KnownFormat::DateTime))
        .item(formatted_string(KnownFormat::Date))
        .description(Some(
            "An RFC 3339 date-time (`2025-03-01T17:00:00Z`, kept to the millisecond, in UTC) or a date \
             (`2025-03-01`, its first instant in UTC)"
        ))
);

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

    /// Sets `field` to `value`.
    pub fn set(&mut self, field: &'static str, value: Value) {
        self.set.push((field, value));
    }

    /// Removes the attribute `field` (a nullable field cleared).
    pub fn remove(&mut self, field: &'static str) {
        self.remove.push(field);
    }
}

/// An empty object: what a cleared free-form field becomes.
pub fn empty_object() -> Value {
    json!({})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message<T: for<'de> Deserialize<'de> + std::fmt::Debug>(value: Value) -> String {
        serde_json::from_value::<T>(value).expect_err("refused").to_string()
    }

    #[test]
    fn names_are_bounded_and_not_blank() {
        assert_eq!(message::<Name<3>>(json!("   ")), "must not be blank");
        assert_eq!(message::<Name<3>>(json!("abcd")), "must have at most 3 characters");
        assert_eq!(message::<Name<3>>(json!(null)), "is required");
        assert!(serde_json::from_value::<Name<3>>(json!("ab")).is_ok());
    }

    #[test]
    fn lists_objects_and_dates_are_bounded() {
        assert!(serde_json::from_value::<TextList<2, 3>>(json!(["a", "b", "c"])).is_err());
        assert!(serde_json::from_value::<TextList<2, 3>>(json!(["a", " "])).is_err());
        assert!(serde_json::from_value::<FreeObject<1>>(json!({"a": 1, "b": 2})).is_err());
        assert!(serde_json::from_value::<FreeObject<1>>(json!({"a": "x".repeat(600)})).is_err());
        let mut deep = json!(1);
        for _ in 0..=super::super::values::MAX_JSON_DEPTH {
            deep = json!([deep]);
        }
        for (unstorable, why) in [
            (json!({"p95": 1e300}), "magnitude"),
            (json!({"p95": [1e-200]}), "magnitude"),
            (json!({"p95": {"": "200ms"}}), "keys must not be empty"),
            (json!({"": "200ms"}), "keys must have 1 to 64 characters"),
            (json!({"p95": deep}), "levels deep"),
        ] {
            let err = message::<FreeObject<2>>(unstorable.clone());
            assert!(err.contains(why), "{unstorable}: {err}");
        }
        assert!(serde_json::from_value::<Requirements>(json!({"functional": "all"})).is_err());
        assert_eq!(message::<TextList<2, 3>>(json!("Rust")), "must be an array");
        assert_eq!(message::<FreeObject<2>>(json!(["fast"])), "must be an object");
        let at = |raw: &str| DueDate::parse(raw).map(|d| super::super::rfc3339(d.0));
        assert_eq!(at("2025-03-01T18:30:00.123456+01:00").as_deref(), Ok("2025-03-01T17:30:00.123Z"));
        assert_eq!(at("2025-03-01").as_deref(), Ok("2025-03-01T00:00:00Z"));
        for bad in
            ["2025-02-30", "01/03/2025", "2025-03-01T25:00:00Z", "2025-3-1", " 2025-03-01", "99-03-01", "-2025-03-01"]
        {
            assert!(at(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn platform_fields_and_nulls_on_required_fields_are_refused() {
        assert_eq!(message::<SetByPlatform>(json!(null)), "is set by the platform and cannot be given");
        assert_eq!(message::<crate::domain::values::Settable<Priority>>(json!(null)), "must not be null");
        assert_eq!(
            serde_json::from_value::<crate::domain::values::Settable<Priority>>(json!("HIGH")).expect("valid"),
            crate::domain::values::Settable::Value(Priority::High)
        );
    }
}
