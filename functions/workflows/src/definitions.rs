//! Workflow definitions: create, list, read, replace (a new version),
//! delete. A definition is checked whole when saved (every step's fields
//! for its type, every jump to a step that exists, every CEL condition,
//! template and field path, every project and provider in the tenant), so
//! an execution never meets a step it cannot run for a reason known at
//! save time.

use std::collections::{BTreeMap, BTreeSet};

use axum::{Json, extract::State, http::StatusCode};
use serde::Serialize;
use serde_json::Value;
use shared::{
    AppError, AppResult, AppState,
    audit::AuditContext,
    auth::{Principal, TenantScope},
    domain::{
        expression::{Condition, check_path, check_template},
        ids::WorkflowId,
        now_rfc3339,
        schedule::{ScheduleExpression, ScheduleTarget},
        values::{Int, JsonObject, Text},
        workflow::{
            DEFAULT_APPROVAL_TIMEOUT_SECONDS, DEFAULT_STEP_TIMEOUT_SECONDS, END, HttpMethod,
            MAX_APPROVAL_TIMEOUT_SECONDS, MAX_STEPS, OnError, RetryPolicy, StepAction, StepType, Trigger, TriggerType,
            Workflow, WorkflowStep,
        },
    },
    error::FieldError,
    events::catalogue::{EVENT_NAMES, INTERNAL_EVENTS},
    http::Page,
    schedules::ScheduleChange,
    store::workflows::WORKFLOW_RESOURCE,
    web::extract::{Body, ListQuery, PathIds},
};
use uuid::Uuid;

use crate::require;

/// The most approvers one approval step may list.
const MAX_APPROVERS: usize = 20;
/// The most entries a field mapping or a trigger filter may have.
const MAX_MAPPED_FIELDS: usize = 50;

/// A workflow definition (`POST /v1/workflows`, `PUT /v1/workflows/{id}`):
/// seed 001's `name`, `description`, `trigger` and `steps`.
#[derive(Debug, eserde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkflowBody {
    #[eserde(compat)]
    #[schema(value_type = String, min_length = 1, max_length = 200)]
    pub name: Text<1, 200>,
    #[serde(default)]
    #[eserde(compat)]
    #[schema(value_type = Option<String>, max_length = 2000)]
    pub description: Option<Text<0, 2000>>,
    pub trigger: TriggerBody,
    /// Run in order; a condition or an error `goto` may jump.
    pub steps: Vec<StepBody>,
    /// Default true; an inactive workflow starts on no event (a manual run
    /// is still refused).
    #[serde(default)]
    #[eserde(compat)]
    pub is_active: Option<bool>,
}

/// What starts the workflow.
#[derive(Debug, eserde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TriggerBody {
    /// `manual`, `event`, `inbound_webhook` or `schedule`.
    #[serde(rename = "type")]
    #[eserde(compat)]
    pub kind: TriggerType,
    /// `event`: a catalogue event type (`project.created`,
    /// `integration.event.received`); workflow events cannot start workflows.
    #[serde(default)]
    #[eserde(compat)]
    #[schema(value_type = Option<String>, max_length = 100)]
    pub event_type: Option<Text<1, 100>>,
    /// `inbound_webhook`: the provider whose verified inbound events start it.
    #[serde(default)]
    #[eserde(compat)]
    #[schema(value_type = Option<String>, format = Uuid)]
    pub provider_id: Option<Uuid>,
    /// `schedule`: an EventBridge Scheduler expression, UTC:
    /// `rate(<n> minutes|hours|days)` (at least a minute) or `cron(<minutes>
    /// <hours> <day-of-month> <month> <day-of-week> <year>)`.
    #[serde(default)]
    #[eserde(compat)]
    #[schema(value_type = Option<String>, max_length = 100, example = "cron(0 9 ? * MON-FRI *)")]
    pub schedule: Option<Text<1, 100>>,
    /// Equality on the event: `{"data.event_type": "payment.succeeded"}`;
    /// each key a dotted path under the event (`event_type`, `data...`).
    #[serde(default)]
    #[eserde(compat)]
    #[schema(value_type = Option<Object>)]
    pub filter: Option<JsonObject<8192>>,
}

/// One step. `type` says which of the other fields apply.
#[derive(Debug, eserde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StepBody {
    /// Unique in the workflow: lowercase letters, digits and `_`; not `end`.
    #[eserde(compat)]
    #[schema(value_type = String, min_length = 1, max_length = 64, pattern = "^[a-z0-9_]+$")]
    pub name: Text<1, 64>,
    /// `task`, `approval`, `notification`, `condition` or `integration`.
    #[serde(rename = "type")]
    #[eserde(compat)]
    pub step_type: StepType,
    /// `task`: the project the task is created in.
    #[serde(default)]
    #[eserde(compat)]
    #[schema(value_type = Option<String>, format = Uuid)]
    pub project_id: Option<Uuid>,
    /// `task`: the task's title; `{{ path }}` placeholders are filled from
    /// the context.
    #[serde(default)]
    #[eserde(compat)]
    #[schema(value_type = Option<String>, max_length = 500)]
    pub title: Option<Text<1, 500>>,
    /// `task`: the task's description (placeholders allowed).
    #[serde(default)]
    #[eserde(compat)]
    #[schema(value_type = Option<String>, max_length = 5000)]
    pub description: Option<Text<0, 5000>>,
    /// `approval`: user ids who may decide; empty or absent: any admin.
    #[serde(default)]
    #[eserde(compat)]
    #[schema(value_type = Option<Vec<String>>)]
    pub approvers: Option<Vec<Uuid>>,
    /// `notification`: the message (placeholders allowed).
    #[serde(default)]
    #[eserde(compat)]
    #[schema(value_type = Option<String>, max_length = 2000)]
    pub message: Option<Text<1, 2000>>,
    /// `notification`: extra fields of the event's `data`, each a context path.
    #[serde(default)]
    #[eserde(compat)]
    #[schema(value_type = Option<Object>)]
    pub data: Option<BTreeMap<String, String>>,
    /// `condition`: a CEL expression over `trigger` and `steps` yielding a bool.
    #[serde(default)]
    #[eserde(compat)]
    #[schema(value_type = Option<String>, max_length = 1024)]
    pub expression: Option<Text<1, 1024>>,
    /// `condition`: where true goes (default: the next step; `end` ends).
    #[serde(default)]
    #[eserde(compat)]
    #[schema(value_type = Option<String>, max_length = 64)]
    pub if_true: Option<Text<1, 64>>,
    /// `condition`: where false goes (default: the next step; `end` ends).
    #[serde(default)]
    #[eserde(compat)]
    #[schema(value_type = Option<String>, max_length = 64)]
    pub if_false: Option<Text<1, 64>>,
    /// `integration`: the provider whose `api_base_url` is called.
    #[serde(default)]
    #[eserde(compat)]
    #[schema(value_type = Option<String>, format = Uuid)]
    pub provider_id: Option<Uuid>,
    /// `integration`: `GET`, `POST`, `PUT`, `PATCH` or `DELETE`.
    #[serde(default)]
    #[eserde(compat)]
    pub method: Option<HttpMethod>,
    /// `integration`: the path under `api_base_url`, starting with `/`
    /// (placeholders allowed).
    #[serde(default)]
    #[eserde(compat)]
    #[schema(value_type = Option<String>, max_length = 1024)]
    pub path: Option<Text<1, 1024>>,
    /// `integration`: the JSON body, field by field: target field -> context path.
    #[serde(default)]
    #[eserde(compat)]
    #[schema(value_type = Option<Object>)]
    pub field_mapping: Option<BTreeMap<String, String>>,
    /// Retries after a failed try, Step Functions style.
    #[serde(default)]
    pub retry_policy: Option<RetryPolicyBody>,
    /// After the retries: `fail` (default) ends the execution, `continue`
    /// goes on with the next step, `goto` jumps to `error_step`.
    #[serde(default)]
    #[eserde(compat)]
    pub on_error: Option<OnError>,
    #[serde(default)]
    #[eserde(compat)]
    #[schema(value_type = Option<String>, max_length = 64)]
    pub error_step: Option<Text<1, 64>>,
    /// How long one run of the step may take (default 300 s, at most
    /// 3600); for an approval, how long it waits for a decision (default
    /// 86400, at most 2592000), then the execution ends `timed_out`.
    #[serde(default)]
    #[eserde(compat)]
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 2_592_000)]
    pub timeout_seconds: Option<Int<1, MAX_APPROVAL_TIMEOUT_SECONDS>>,
}

/// Step Functions' retry fields.
#[derive(Debug, eserde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryPolicyBody {
    /// Retries after the first try, 0..10.
    #[eserde(compat)]
    #[schema(value_type = i64, minimum = 0, maximum = 10)]
    pub max_attempts: Int<0, { RetryPolicy::MAX_ATTEMPTS }>,
    /// Before the first retry, seconds (default 1, at most 3600).
    #[serde(default)]
    #[eserde(compat)]
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 3600)]
    pub interval_seconds: Option<Int<1, 3600>>,
    /// Each retry waits this many times longer (default 2.0, 1.0..10.0).
    #[serde(default)]
    #[eserde(compat)]
    #[schema(minimum = 1.0, maximum = 10.0)]
    pub backoff_rate: Option<f64>,
    /// The longest wait, seconds (default 300, at most 3600).
    #[serde(default)]
    #[eserde(compat)]
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 3600)]
    pub max_delay_seconds: Option<Int<1, 3600>>,
}

/// A workflow as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WorkflowView {
    pub id: Uuid,
    pub name: String,
    pub description: Option<String>,
    pub trigger: Trigger,
    pub steps: Vec<WorkflowStep>,
    pub is_active: bool,
    /// 1 at creation, one more per replace.
    pub version: i64,
    pub created_by: Uuid,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

impl From<&Workflow> for WorkflowView {
    fn from(w: &Workflow) -> Self {
        Self {
            id: w.id,
            name: w.name.clone(),
            description: w.description.clone(),
            trigger: w.trigger.clone(),
            steps: w.steps.clone(),
            is_active: w.is_active,
            version: w.version,
            created_by: w.created_by,
            created_at: w.created_at.clone(),
            updated_at: w.updated_at.clone(),
        }
    }
}

/// A checked definition, ready to store.
struct Definition {
    name: String,
    description: Option<String>,
    trigger: Trigger,
    steps: Vec<WorkflowStep>,
    is_active: bool,
}

fn name_problem(name: &str) -> Option<&'static str> {
    if name == END {
        return Some("`end` is reserved: it names the end of the execution");
    }
    (!name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'))
        .then_some("must match pattern '^[a-z0-9_]+$'")
}

/// Collects a step field's problems under `steps[i].field`.
struct Problems(Vec<FieldError>);

impl Problems {
    fn add(&mut self, field: String, message: impl Into<String>) {
        self.0.push(FieldError::new(field, message));
    }
}

fn check_trigger(body: TriggerBody, problems: &mut Problems) -> Trigger {
    let filter: BTreeMap<String, Value> =
        body.filter.map(|f| f.as_map().clone().into_iter().collect()).unwrap_or_default();
    if filter.len() > MAX_MAPPED_FIELDS {
        problems.add("trigger.filter".into(), format!("must have at most {MAX_MAPPED_FIELDS} entries"));
    }
    for path in filter.keys() {
        if let Err(why) = check_path(path) {
            problems.add(format!("trigger.filter.{path}"), why.to_string());
        }
    }
    let event_type = body.event_type.map(Text::into_inner);
    match body.kind {
        TriggerType::Manual | TriggerType::InboundWebhook | TriggerType::Schedule => {
            if event_type.is_some() {
                problems.add("trigger.event_type".into(), "only for an `event` trigger");
            }
        }
        TriggerType::Event => match event_type.as_deref() {
            None => problems.add("trigger.event_type".into(), "required for an `event` trigger"),
            Some(name) if !EVENT_NAMES.contains(&name) || INTERNAL_EVENTS.contains(&name) => problems
                .add("trigger.event_type".into(), "must be a catalogue event type (GET /v1/openapi.json, `webhooks`)"),
            Some(name) if name.starts_with("workflow.") => {
                problems.add("trigger.event_type".into(), "a workflow's own events cannot start workflows (a loop)")
            }
            Some(_) => {}
        },
    }
    match (body.kind, body.provider_id) {
        (TriggerType::InboundWebhook, None) => {
            problems.add("trigger.provider_id".into(), "required for an `inbound_webhook` trigger")
        }
        (TriggerType::Manual | TriggerType::Event | TriggerType::Schedule, Some(_)) => {
            problems.add("trigger.provider_id".into(), "only for an `inbound_webhook` trigger")
        }
        _ => {}
    }
    if matches!(body.kind, TriggerType::Manual | TriggerType::Schedule) && !filter.is_empty() {
        problems.add("trigger.filter".into(), format!("a {} trigger has no event to filter", body.kind));
    }
    let schedule = match (body.kind, body.schedule) {
        (TriggerType::Schedule, Some(expression)) => match ScheduleExpression::parse(expression.as_str()) {
            Ok(parsed) => Some(parsed.as_str().to_owned()),
            Err(problem) => {
                problems.add("trigger.schedule".into(), problem);
                None
            }
        },
        (TriggerType::Schedule, None) => {
            problems.add("trigger.schedule".into(), "required for a `schedule` trigger");
            None
        }
        (_, Some(_)) => {
            problems.add("trigger.schedule".into(), "only for a `schedule` trigger");
            None
        }
        (_, None) => None,
    };
    Trigger { kind: body.kind, event_type, provider_id: body.provider_id, schedule, filter }
}

fn check_mapping(mapping: &BTreeMap<String, String>, at: &str, problems: &mut Problems) {
    if mapping.len() > MAX_MAPPED_FIELDS {
        problems.add(at.to_owned(), format!("must have at most {MAX_MAPPED_FIELDS} entries"));
    }
    for (target, source) in mapping {
        for (what, path) in [("target", target), ("source", source)] {
            if let Err(why) = check_path(path) {
                problems.add(format!("{at}.{target}"), format!("{what} path: {why}"));
            }
        }
    }
}

/// The fields a step of `step_type` may not carry.
fn foreign_fields(step: &StepBody) -> Vec<&'static str> {
    let present = [
        ("project_id", step.project_id.is_some(), StepType::Task),
        ("title", step.title.is_some(), StepType::Task),
        ("description", step.description.is_some(), StepType::Task),
        ("approvers", step.approvers.is_some(), StepType::Approval),
        ("message", step.message.is_some(), StepType::Notification),
        ("data", step.data.is_some(), StepType::Notification),
        ("expression", step.expression.is_some(), StepType::Condition),
        ("if_true", step.if_true.is_some(), StepType::Condition),
        ("if_false", step.if_false.is_some(), StepType::Condition),
        ("provider_id", step.provider_id.is_some(), StepType::Integration),
        ("method", step.method.is_some(), StepType::Integration),
        ("path", step.path.is_some(), StepType::Integration),
        ("field_mapping", step.field_mapping.is_some(), StepType::Integration),
    ];
    present.into_iter().filter(|(_, set, owner)| *set && *owner != step.step_type).map(|(name, ..)| name).collect()
}

fn check_step(index: usize, step: StepBody, problems: &mut Problems) -> Option<WorkflowStep> {
    let at = |field: &str| format!("steps[{index}].{field}");
    let before = problems.0.len();
    for field in foreign_fields(&step) {
        problems.add(at(field), format!("not a field of a `{}` step", step.step_type));
    }
    let name = step.name.into_inner();
    if let Some(problem) = name_problem(&name) {
        problems.add(at("name"), problem);
    }
    let template = |problems: &mut Problems, field: &str, text: &str| {
        if let Err(why) = check_template(text) {
            problems.add(at(field), why.to_string());
        }
    };
    let required = |problems: &mut Problems, field: &str, present: bool| {
        if !present {
            problems.add(at(field), format!("required for a `{}` step", step.step_type));
        }
    };
    let action = match step.step_type {
        StepType::Task => {
            required(problems, "project_id", step.project_id.is_some());
            required(problems, "title", step.title.is_some());
            let title = step.title.map(Text::into_inner).unwrap_or_default();
            template(problems, "title", &title);
            let description = step.description.map(Text::into_inner);
            if let Some(description) = &description {
                template(problems, "description", description);
            }
            StepAction::Task { project_id: step.project_id.unwrap_or_default(), title, description }
        }
        StepType::Approval => {
            let mut approvers = step.approvers.unwrap_or_default();
            approvers.sort();
            approvers.dedup();
            if approvers.len() > MAX_APPROVERS {
                problems.add(at("approvers"), format!("must have at most {MAX_APPROVERS} items"));
            }
            StepAction::Approval { approvers }
        }
        StepType::Notification => {
            required(problems, "message", step.message.is_some());
            let message = step.message.map(Text::into_inner).unwrap_or_default();
            template(problems, "message", &message);
            let data = step.data.unwrap_or_default();
            check_mapping(&data, &at("data"), problems);
            StepAction::Notification { message, data }
        }
        StepType::Condition => {
            required(problems, "expression", step.expression.is_some());
            let expression = step.expression.map(Text::into_inner).unwrap_or_default();
            if !expression.is_empty()
                && let Err(why) = Condition::parse(&expression)
            {
                problems.add(at("expression"), why.to_string());
            }
            StepAction::Condition {
                expression,
                if_true: step.if_true.map(Text::into_inner),
                if_false: step.if_false.map(Text::into_inner),
            }
        }
        StepType::Integration => {
            required(problems, "provider_id", step.provider_id.is_some());
            required(problems, "method", step.method.is_some());
            required(problems, "path", step.path.is_some());
            let path = step.path.map(Text::into_inner).unwrap_or_default();
            if !path.is_empty() && !path.starts_with('/') {
                problems.add(at("path"), "must start with /");
            }
            template(problems, "path", &path);
            let field_mapping = step.field_mapping.unwrap_or_default();
            check_mapping(&field_mapping, &at("field_mapping"), problems);
            StepAction::Integration {
                provider_id: step.provider_id.unwrap_or_default(),
                method: step.method.unwrap_or(HttpMethod::Post),
                path,
                field_mapping,
            }
        }
    };
    let on_error = step.on_error.unwrap_or(OnError::Fail);
    let error_step = step.error_step.map(Text::into_inner);
    match (on_error, &error_step) {
        (OnError::Goto, None) => problems.add(at("error_step"), "required when `on_error` is `goto`"),
        (OnError::Fail | OnError::Continue, Some(_)) => {
            problems.add(at("error_step"), "only when `on_error` is `goto`")
        }
        _ => {}
    }
    let is_approval = step.step_type == StepType::Approval;
    let timeout_seconds = match step.timeout_seconds.map(|t| t.get()) {
        None if is_approval => DEFAULT_APPROVAL_TIMEOUT_SECONDS,
        None => DEFAULT_STEP_TIMEOUT_SECONDS,
        Some(seconds) if !is_approval && seconds > 3600 => {
            problems.add(at("timeout_seconds"), "must be at most 3600 for a step other than an approval");
            seconds
        }
        Some(seconds) => seconds,
    };
    let retry_policy = step.retry_policy.map(|policy| {
        let backoff_rate = policy.backoff_rate.unwrap_or(RetryPolicy::DEFAULT_BACKOFF_RATE);
        if !(1.0..=10.0).contains(&backoff_rate) {
            problems.add(at("retry_policy.backoff_rate"), "must be between 1.0 and 10.0");
        }
        RetryPolicy {
            max_attempts: policy.max_attempts.get(),
            interval_seconds: policy.interval_seconds.map_or(RetryPolicy::DEFAULT_INTERVAL_SECONDS, |i| i.get()),
            backoff_rate,
            max_delay_seconds: policy.max_delay_seconds.map_or(RetryPolicy::DEFAULT_MAX_DELAY_SECONDS, |i| i.get()),
        }
    });
    if is_approval && retry_policy.is_some() {
        problems.add(at("retry_policy"), "an approval is decided, not retried");
    }
    (problems.0.len() == before).then_some(WorkflowStep {
        name,
        action,
        retry_policy,
        on_error,
        error_step,
        timeout_seconds,
    })
}

/// Every rule but the ones that need the store.
fn check(body: WorkflowBody) -> AppResult<Definition> {
    let mut problems = Problems(Vec::new());
    let trigger = check_trigger(body.trigger, &mut problems);
    if body.steps.is_empty() || body.steps.len() > MAX_STEPS {
        problems.add("steps".into(), format!("must have 1 to {MAX_STEPS} steps"));
    }
    let count = body.steps.len();
    let steps: Vec<WorkflowStep> =
        body.steps.into_iter().enumerate().filter_map(|(i, step)| check_step(i, step, &mut problems)).collect();
    if steps.len() == count {
        let mut names = BTreeSet::new();
        for (i, step) in steps.iter().enumerate() {
            if !names.insert(step.name.as_str()) {
                problems.add(format!("steps[{i}].name"), "must be unique in the workflow");
            }
        }
        for (i, step) in steps.iter().enumerate() {
            let mut jumps = vec![("error_step", step.error_step.as_deref())];
            if let StepAction::Condition { if_true, if_false, .. } = &step.action {
                jumps.push(("if_true", if_true.as_deref()));
                jumps.push(("if_false", if_false.as_deref()));
            }
            for (field, target) in jumps {
                if let Some(target) = target
                    && target != END
                    && !names.contains(target)
                {
                    problems.add(format!("steps[{i}].{field}"), format!("names no step of this workflow ({target})"));
                }
            }
        }
    }
    if !problems.0.is_empty() {
        return Err(AppError::validation(problems.0));
    }
    Ok(Definition {
        name: body.name.into_inner(),
        description: body.description.map(Text::into_inner),
        trigger,
        steps,
        is_active: body.is_active.unwrap_or(true),
    })
}

/// The rules that read the store: every project and provider a step or
/// trigger names is the tenant's own (another tenant's id reads as absent).
async fn check_references(state: &AppState, scope: &TenantScope, definition: &Definition) -> AppResult<()> {
    let mut problems = Problems(Vec::new());
    if let Some(provider_id) = definition.trigger.provider_id
        && state.store.get_provider(scope, provider_id).await?.is_none()
    {
        problems.add("trigger.provider_id".into(), "no integration provider of this tenant has this id");
    }
    for (i, step) in definition.steps.iter().enumerate() {
        match &step.action {
            StepAction::Task { project_id, .. } if state.store.get_project(scope, *project_id).await?.is_none() => {
                problems.add(format!("steps[{i}].project_id"), "no project of this tenant has this id");
            }
            StepAction::Integration { provider_id, .. } => match state.store.get_provider(scope, *provider_id).await? {
                None => problems
                    .add(format!("steps[{i}].provider_id"), "no integration provider of this tenant has this id"),
                Some(provider) if provider.api_base_url.is_none() => {
                    problems.add(format!("steps[{i}].provider_id"), "the provider has no `api_base_url` to call")
                }
                Some(_) => {}
            },
            _ => {}
        }
    }
    if problems.0.is_empty() { Ok(()) } else { Err(AppError::validation(problems.0)) }
}

pub(crate) async fn load(state: &AppState, scope: &TenantScope, id: Uuid) -> AppResult<Workflow> {
    state.store.get_workflow(scope, id).await?.ok_or_else(|| AppError::not_found(WORKFLOW_RESOURCE))
}

/// Create a workflow
///
/// The workflow's schedule going from `old` to `new` (a `schedule`
/// trigger's; disabled while the workflow is inactive).
fn schedule_change(old: Option<&Workflow>, new: &Workflow) -> ScheduleChange {
    let wanted = |w: &Workflow| w.trigger.schedule.clone().map(|expression| (expression, w.is_active));
    ScheduleChange {
        target: ScheduleTarget::Workflow,
        tenant_id: new.tenant_id,
        id: new.id,
        old: old.and_then(wanted),
        new: wanted(new),
    }
}

/// Seed 001's `name`, `description`, `trigger` and `steps`. The whole
/// definition is checked before anything is stored: each problem is named
/// in `details.fields` (`steps[2].expression`).
#[utoipa::path(post, path = "/v1/workflows", tag = "workflows", security(("bearer" = ["admin"]), ("api_key" = ["workflows:manage"])),
    request_body(content = WorkflowBody, example = json!({
        "name": "Payment review",
        "description": "Large payments get a task, an approval and a CRM update",
        "trigger": {"type": "manual"},
        "steps": [
            {"name": "check_amount", "type": "condition", "expression": "trigger.data.amount > 100", "if_false": "end"},
            {"name": "approve", "type": "approval", "timeout_seconds": 86400},
            {"name": "notify", "type": "notification", "message": "Payment {{ trigger.data.payment_id }} approved"}
        ]
    })),
    responses(
        (status = 201, description = "The workflow, version 1", body = WorkflowView),
        (status = 409, description = "Conflict\n\n- `conflict`: the tenant has 100 workflows (`details.reason`: `too_many_workflows`)\n- `idempotency_key_in_use`: a request with this `Idempotency-Key` is still running", body = shared::web::openapi::ApiError),
    ))]
pub async fn create_workflow(
    State(state): State<AppState>,
    principal: Principal,
    audit: AuditContext,
    body: Result<Body<WorkflowBody>, AppError>,
) -> AppResult<(StatusCode, Json<WorkflowView>)> {
    let scope = require(&principal)?;
    let Body(body) = body?;
    let definition = check(body)?;
    check_references(&state, &scope, &definition).await?;
    let now = now_rfc3339();
    let workflow = Workflow {
        id: Uuid::now_v7(),
        tenant_id: scope.tenant_id(),
        name: definition.name,
        description: definition.description,
        trigger: definition.trigger,
        steps: definition.steps,
        is_active: definition.is_active,
        version: 1,
        created_by: principal.user_id(),
        created_at: now.clone(),
        updated_at: now,
    };
    let change = schedule_change(None, &workflow);
    change.prepare(&state.schedules).await.map_err(AppError::internal)?;
    if let Err(err) = state.store.create_workflow(&scope, &workflow, &audit).await {
        change.undo(&state.schedules).await;
        return Err(err);
    }
    Ok((StatusCode::CREATED, Json(WorkflowView::from(&workflow))))
}

/// List workflows
///
/// In creation order; `?limit=`, `?cursor=`.
#[utoipa::path(get, path = "/v1/workflows", tag = "workflows", security(("bearer" = ["admin"]), ("api_key" = ["workflows:manage"])),
    responses((status = 200, description = "A page of workflows", body = Page<WorkflowView>)))]
pub async fn list_workflows(
    State(state): State<AppState>,
    principal: Principal,
    query: Result<ListQuery<NoFilters>, AppError>,
) -> AppResult<Page<WorkflowView>> {
    let scope = require(&principal)?;
    let ListQuery { page, .. } = query?;
    let (workflows, next_cursor) = state.store.list_workflows(&scope, &page).await?;
    Ok(Page { data: workflows.iter().map(WorkflowView::from).collect(), next_cursor })
}

/// No filters beyond `limit` and `cursor`.
#[derive(Debug, eserde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoFilters {}

/// Read a workflow
#[utoipa::path(get, path = "/v1/workflows/{id}", tag = "workflows", security(("bearer" = ["admin"]), ("api_key" = ["workflows:manage"])),
    responses((status = 200, description = "The workflow's current version", body = WorkflowView)))]
pub async fn get_workflow(
    State(state): State<AppState>,
    principal: Principal,
    PathIds(WorkflowId(id)): PathIds<WorkflowId>,
) -> AppResult<Json<WorkflowView>> {
    let scope = require(&principal)?;
    Ok(Json(WorkflowView::from(&load(&state, &scope, id).await?)))
}

/// Replace a workflow
///
/// The whole definition again, checked like a new one; it becomes the
/// next version. Running executions finish on the version they started with.
#[utoipa::path(put, path = "/v1/workflows/{id}", tag = "workflows", security(("bearer" = ["admin"]), ("api_key" = ["workflows:manage"])),
    request_body(content = WorkflowBody, example = json!({
        "name": "Payment review",
        "trigger": {"type": "manual"},
        "steps": [{"name": "notify", "type": "notification", "message": "Payment {{ trigger.data.payment_id }} seen"}],
        "is_active": true
    })),
    responses(
        (status = 200, description = "The workflow's new version", body = WorkflowView),
        (status = 409, description = "Conflict\n\n- `conflict`: another version was saved meanwhile (read it again and retry)", body = shared::web::openapi::ApiError),
    ))]
pub async fn replace_workflow(
    State(state): State<AppState>,
    principal: Principal,
    audit: AuditContext,
    PathIds(WorkflowId(id)): PathIds<WorkflowId>,
    body: Result<Body<WorkflowBody>, AppError>,
) -> AppResult<Json<WorkflowView>> {
    let scope = require(&principal)?;
    let Body(body) = body?;
    let old = load(&state, &scope, id).await?;
    let definition = check(body)?;
    check_references(&state, &scope, &definition).await?;
    let new = Workflow {
        name: definition.name,
        description: definition.description,
        trigger: definition.trigger,
        steps: definition.steps,
        is_active: definition.is_active,
        version: old.version + 1,
        updated_at: now_rfc3339(),
        ..old.clone()
    };
    let change = schedule_change(Some(&old), &new);
    change.prepare(&state.schedules).await.map_err(AppError::internal)?;
    let written = state.store.update_workflow(&scope, &old, &new, &audit).await;
    if !matches!(written, Ok(true)) {
        change.undo(&state.schedules).await;
    }
    if !written? {
        return Err(AppError::conflict("another version was saved meanwhile; read it again and retry"));
    }
    change.finish(&state.schedules).await;
    Ok(Json(WorkflowView::from(&new)))
}

/// Delete a workflow
///
/// It starts no more executions; running ones finish, and executions stay
/// readable until their retention ends (90 days).
#[utoipa::path(delete, path = "/v1/workflows/{id}", tag = "workflows", security(("bearer" = ["admin"]), ("api_key" = ["workflows:manage"])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 409, description = "Conflict\n\n- `conflict`: another version was saved meanwhile (read it again and retry)", body = shared::web::openapi::ApiError),
    ))]
pub async fn delete_workflow(
    State(state): State<AppState>,
    principal: Principal,
    audit: AuditContext,
    PathIds(WorkflowId(id)): PathIds<WorkflowId>,
) -> AppResult<StatusCode> {
    let scope = require(&principal)?;
    let workflow = load(&state, &scope, id).await?;
    if !state.store.delete_workflow(&scope, &workflow, &audit).await? {
        return Err(AppError::conflict("another version was saved meanwhile; read it again and retry"));
    }
    ScheduleChange { new: None, ..schedule_change(Some(&workflow), &workflow) }.finish(&state.schedules).await;
    Ok(StatusCode::NO_CONTENT)
}
