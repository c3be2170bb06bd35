//! Workflows (seed 001, "Workflow Automation"): a tenant's stored
//! definitions, their executions and each execution's step history.
//!
//! The engine is AWS Step Functions: one interpreter state machine
//! (`WorkflowInterpreter` in template.yaml) walks a stored definition, one
//! step per task token, and the workflows worker runs each step and answers
//! with a [`StepAnswer`]. What this module decides is the part both sides
//! share: which step follows which, how long a step may take, and how long
//! a retry waits. `store::workflows` keeps the keys; docs/workflows.md tells
//! the whole story.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

crate::string_enum!(
    /// What starts an execution: `manual` (`POST .../executions`), `event`
    /// (a platform event of a type on the bus), `inbound_webhook` (an
    /// event a provider sent to its inbound URL), `schedule` (an
    /// EventBridge Scheduler schedule's firings).
    TriggerType {
        Manual => "manual",
        Event => "event",
        InboundWebhook => "inbound_webhook",
        Schedule => "schedule",
    }
);

crate::string_enum!(
    /// Seed 001's five step types.
    StepType {
        Task => "task",
        Approval => "approval",
        Notification => "notification",
        Condition => "condition",
        Integration => "integration",
    }
);

crate::string_enum!(
    /// What a step's failure does once its retries are spent.
    OnError {
        Fail => "fail",
        Continue => "continue",
        Goto => "goto",
    }
);

crate::string_enum!(
    /// An integration step's HTTP method.
    HttpMethod {
        Get => "GET",
        Post => "POST",
        Put => "PUT",
        Patch => "PATCH",
        Delete => "DELETE",
    }
);

crate::string_enum!(
    /// An execution's status. `waiting_approval` is `running` with an
    /// approval step open; the last three are final.
    ExecutionStatus {
        Running => "running",
        WaitingApproval => "waiting_approval",
        Succeeded => "succeeded",
        Failed => "failed",
        Cancelled => "cancelled",
        TimedOut => "timed_out",
    }
);

impl ExecutionStatus {
    pub fn is_final(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Cancelled | Self::TimedOut)
    }
}

crate::string_enum!(
    /// One step run's status in the history.
    StepRunStatus {
        Running => "running",
        Succeeded => "succeeded",
        Failed => "failed",
        Waiting => "waiting",
        Approved => "approved",
        Rejected => "rejected",
        TimedOut => "timed_out",
        Cancelled => "cancelled",
    }
);

/// The most steps one definition may have.
pub const MAX_STEPS: usize = 50;
/// The most workflows a tenant may have: an event is matched against each
/// of its type's triggers.
pub const MAX_WORKFLOWS_PER_TENANT: i64 = 100;
/// The most step runs (retries and loops included) one execution may make;
/// a `goto` loop ends there as `failed` instead of running forever.
pub const MAX_VISITS: i64 = 200;
/// How long a step other than an approval may take before the state machine
/// gives up on it: the worker answers in seconds, so this only fires when
/// the worker could not run the step at all (its messages in the DLQ).
pub const DEFAULT_STEP_TIMEOUT_SECONDS: i64 = 300;
/// An approval waits at most 30 days (a Standard workflow runs up to a year).
pub const MAX_APPROVAL_TIMEOUT_SECONDS: i64 = 30 * 86_400;
pub const DEFAULT_APPROVAL_TIMEOUT_SECONDS: i64 = 86_400;
/// The most a step's output keeps (JSON characters); a longer one is kept
/// as its first characters under `excerpt`, with `truncated: true`.
pub const MAX_OUTPUT_CHARS: usize = 16 * 1024;
/// How long executions and their histories are kept.
pub const EXECUTION_RETENTION_DAYS: i64 = 90;
/// The name that ends an execution when a condition branch or an error
/// `goto` names it.
pub const END: &str = "end";

/// Step Functions' retry fields, per step: `max_attempts` retries after the
/// first try, `interval_seconds` before the first retry, multiplied by
/// `backoff_rate` each time, capped at `max_delay_seconds`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RetryPolicy {
    pub max_attempts: i64,
    pub interval_seconds: i64,
    pub backoff_rate: f64,
    pub max_delay_seconds: i64,
}

impl RetryPolicy {
    pub const MAX_ATTEMPTS: i64 = 10;
    pub const DEFAULT_INTERVAL_SECONDS: i64 = 1;
    pub const DEFAULT_BACKOFF_RATE: f64 = 2.0;
    pub const DEFAULT_MAX_DELAY_SECONDS: i64 = 300;

    /// The wait before retry number `retry` (1 = the first retry).
    pub fn delay_seconds(&self, retry: i64) -> i64 {
        let factor = self.backoff_rate.powi(i32::try_from(retry.saturating_sub(1).min(30)).unwrap_or(30));
        let delay = (self.interval_seconds as f64 * factor).ceil();
        if delay.is_finite() { (delay as i64).clamp(1, self.max_delay_seconds.max(1)) } else { self.max_delay_seconds }
    }
}

/// What a step does, by type (seed 001's `task`, `approval`,
/// `notification`, `condition`, `integration`). Texts may hold
/// `{{ path }}` placeholders over the execution's context
/// (`trigger.data.payment_id`, `steps.<name>.output.status`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StepAction {
    /// Creates a task in one of the tenant's projects.
    Task {
        project_id: Uuid,
        title: String,
        #[serde(default)]
        description: Option<String>,
    },
    /// Waits until someone approves or rejects, or `timeout_seconds` pass.
    /// `approvers` lists user ids; empty means any admin of the tenant.
    Approval {
        #[serde(default)]
        approvers: Vec<Uuid>,
    },
    /// A `workflow.notification` event to the tenant's webhooks that
    /// subscribe to it: `message` rendered, `data` mapped from the context.
    Notification {
        message: String,
        #[serde(default)]
        data: BTreeMap<String, String>,
    },
    /// A CEL expression over the context (`trigger`, `steps`); true goes to
    /// `if_true` (default: the next step), false to `if_false` (default:
    /// the next step; `end` ends the execution).
    Condition {
        expression: String,
        #[serde(default)]
        if_true: Option<String>,
        #[serde(default)]
        if_false: Option<String>,
    },
    /// An HTTP call to the provider's `api_base_url` + `path`, through the
    /// platform's SSRF-safe client, authenticated per the provider's
    /// `auth_type`; the body is `field_mapping` applied to the context.
    Integration {
        provider_id: Uuid,
        method: HttpMethod,
        path: String,
        #[serde(default)]
        field_mapping: BTreeMap<String, String>,
    },
}

impl StepAction {
    pub fn step_type(&self) -> StepType {
        match self {
            Self::Task { .. } => StepType::Task,
            Self::Approval { .. } => StepType::Approval,
            Self::Notification { .. } => StepType::Notification,
            Self::Condition { .. } => StepType::Condition,
            Self::Integration { .. } => StepType::Integration,
        }
    }
}

/// One step of a definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WorkflowStep {
    /// Unique in the workflow; other steps name it in `if_true`,
    /// `if_false` and `error_step`.
    pub name: String,
    #[serde(flatten)]
    pub action: StepAction,
    #[serde(default)]
    pub retry_policy: Option<RetryPolicy>,
    pub on_error: OnError,
    /// Where `on_error: goto` goes (a step name, or `end`).
    #[serde(default)]
    pub error_step: Option<String>,
    /// How long one run of the step may take; for an approval, how long it
    /// waits for a decision.
    pub timeout_seconds: i64,
}

/// What starts a workflow's executions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Trigger {
    #[serde(rename = "type")]
    pub kind: TriggerType,
    /// `event`: the catalogue event type (`project.created`,
    /// `integration.event.received`).
    #[serde(default)]
    pub event_type: Option<String>,
    /// `inbound_webhook`: the provider whose inbound events start it.
    #[serde(default)]
    pub provider_id: Option<Uuid>,
    /// `schedule`: an EventBridge Scheduler expression (`rate(1 hour)`,
    /// `cron(0 9 ? * MON-FRI *)`), UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// Equality on the trigger context: each dotted path (`data.event_type`,
    /// `provider.name`) must hold the value.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub filter: BTreeMap<String, Value>,
}

impl Trigger {
    /// The event type an event must have to start this workflow; `None`
    /// for manual workflows.
    pub fn event_type(&self) -> Option<&str> {
        match self.kind {
            TriggerType::Manual | TriggerType::Schedule => None,
            TriggerType::Event => self.event_type.as_deref(),
            TriggerType::InboundWebhook => Some(INBOUND_EVENT_TYPE),
        }
    }
}

/// The catalogue event an inbound webhook trigger listens to.
pub const INBOUND_EVENT_TYPE: &str = "integration.event.received";

/// A workflow as stored: the current version's definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Workflow {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    pub trigger: Trigger,
    pub steps: Vec<WorkflowStep>,
    pub is_active: bool,
    /// 1 at creation, one more per `PUT`; executions run the version they
    /// started with.
    pub version: i64,
    pub created_by: Uuid,
    pub created_at: String,
    pub updated_at: String,
}

impl Workflow {
    pub fn step(&self, name: &str) -> Option<&WorkflowStep> {
        self.steps.iter().find(|s| s.name == name)
    }

    /// The step after `name` in the list; `None` after the last.
    pub fn step_after(&self, name: &str) -> Option<&str> {
        let index = self.steps.iter().position(|s| s.name == name)?;
        self.steps.get(index + 1).map(|s| s.name.as_str())
    }

    /// Where a named jump goes: `end` (or nothing after the last step)
    /// ends the execution.
    pub fn resolve_jump<'a>(&'a self, from: &str, target: Option<&'a str>) -> Option<&'a str> {
        match target {
            Some(END) => None,
            Some(name) => Some(name),
            None => self.step_after(from),
        }
    }

    pub fn first_step(&self) -> Option<&WorkflowStep> {
        self.steps.first()
    }

    /// The data a trigger's filter is matched against and an execution
    /// starts from: `{"event_type", "event_id", "data", ...}`.
    pub fn matches(&self, trigger_context: &Value) -> bool {
        let Some(expected_type) = self.trigger.event_type() else { return false };
        if trigger_context.get("event_type").and_then(Value::as_str) != Some(expected_type) {
            return false;
        }
        if let Some(provider_id) = self.trigger.provider_id
            && trigger_context.pointer("/provider/id").and_then(Value::as_str) != Some(provider_id.to_string().as_str())
        {
            return false;
        }
        self.trigger.filter.iter().all(|(path, expected)| json_path(trigger_context, path) == Some(expected))
    }
}

/// `data.provider` -> the value at that dotted path (numeric segments index
/// arrays).
pub fn json_path<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(value, |at, segment| match at {
        Value::Object(map) => map.get(segment),
        Value::Array(items) => segment.parse::<usize>().ok().and_then(|i| items.get(i)),
        _ => None,
    })
}

/// The approval an execution waits for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PendingApproval {
    pub step: String,
    pub approvers: Vec<Uuid>,
    #[schema(format = DateTime)]
    pub requested_at: String,
    #[schema(format = DateTime)]
    pub expires_at: String,
}

/// Why an execution did not succeed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ExecutionError {
    /// `step_failed`, `approval_rejected`, `step_timed_out`, `cancelled`,
    /// `too_many_steps`, `start_failed`.
    pub code: String,
    pub message: String,
    #[serde(default)]
    pub step: Option<String>,
}

/// An execution as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Execution {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub workflow_id: Uuid,
    pub workflow_version: i64,
    pub status: ExecutionStatus,
    /// What started it: `manual`, `event`, `inbound_webhook` or `rerun`.
    pub started_by: String,
    /// The trigger context (the event, or a manual run's `input`).
    pub trigger: Value,
    /// Outputs of steps a rerun did not run again, by step name.
    #[serde(default)]
    pub inherited_outputs: BTreeMap<String, Value>,
    #[serde(default)]
    pub rerun_of: Option<Uuid>,
    /// The step running or waiting now; the last one run when final.
    #[serde(default)]
    pub current_step: Option<String>,
    #[serde(default)]
    pub approval: Option<PendingApproval>,
    #[serde(default)]
    pub error: Option<ExecutionError>,
    /// The Step Functions execution that runs it.
    pub state_machine_execution: String,
    pub started_at: String,
    #[serde(default)]
    pub ended_at: Option<String>,
}

/// One run of one step (a retry is another run).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StepRun {
    /// The run's number in the execution, from 1.
    pub visit: i64,
    pub step: String,
    #[serde(rename = "type")]
    pub step_type: StepType,
    /// 1 for the first try, 2 for the first retry.
    pub attempt: i64,
    pub status: StepRunStatus,
    /// What the step was given (rendered texts, mapped fields), cut to
    /// [`MAX_OUTPUT_CHARS`].
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub input: Option<Value>,
    /// What it produced (a task's id, a call's status and body, a
    /// condition's `result`, an approval's decision); null while it runs.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub output: Option<Value>,
    #[serde(default)]
    pub error: Option<String>,
    #[schema(format = DateTime)]
    pub started_at: String,
    #[serde(default)]
    #[schema(format = DateTime)]
    pub ended_at: Option<String>,
    #[serde(default)]
    pub duration_ms: Option<i64>,
}

/// The execution's state machine input, and each [`StepAnswer::Next`]'s:
/// which step runs next, which try of it, and for how long.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepDispatch {
    pub tenant_id: Uuid,
    pub execution_id: Uuid,
    pub step: String,
    pub attempt: i64,
    pub visit: i64,
    pub timeout_seconds: i64,
}

/// A step message from the interpreter (its `MessageBody`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StepMessage {
    /// Run `step`, then answer with the token.
    Step { tenant_id: Uuid, execution_id: Uuid, step: String, attempt: i64, visit: i64, task_token: String },
    /// The step's timeout fired: record it; the machine then fails.
    TimedOut { tenant_id: Uuid, execution_id: Uuid, step: String, visit: i64, task_token: String },
}

/// The worker's answer to a step (SendTaskSuccess output), read by the
/// interpreter's `Route` state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum StepAnswer {
    /// Run `step` next, after `wait_seconds` when a retry waits.
    Next {
        step: String,
        attempt: i64,
        visit: i64,
        timeout_seconds: i64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        wait_seconds: Option<i64>,
    },
    Succeeded,
    Failed,
}

impl StepAnswer {
    /// The first try of `step` as run number `visit`.
    pub fn next(step: &WorkflowStep, visit: i64) -> Self {
        Self::Next {
            step: step.name.clone(),
            attempt: 1,
            visit,
            timeout_seconds: step.timeout_seconds,
            wait_seconds: None,
        }
    }
}

/// A step's output as kept: whole when short, else an excerpt.
pub fn bounded_output(value: Value) -> Value {
    let text = value.to_string();
    if text.len() <= MAX_OUTPUT_CHARS {
        return value;
    }
    let mut end = MAX_OUTPUT_CHARS;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    serde_json::json!({"truncated": true, "excerpt": &text[..end]})
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn step(name: &str, action: StepAction) -> WorkflowStep {
        WorkflowStep {
            name: name.into(),
            action,
            retry_policy: None,
            on_error: OnError::Fail,
            error_step: None,
            timeout_seconds: DEFAULT_STEP_TIMEOUT_SECONDS,
        }
    }

    fn workflow(trigger: Trigger) -> Workflow {
        Workflow {
            id: Uuid::nil(),
            tenant_id: Uuid::nil(),
            name: "w".into(),
            description: None,
            trigger,
            steps: vec![
                step("a", StepAction::Approval { approvers: vec![] }),
                step("b", StepAction::Notification { message: "m".into(), data: BTreeMap::new() }),
            ],
            is_active: true,
            version: 1,
            created_by: Uuid::nil(),
            created_at: String::new(),
            updated_at: String::new(),
        }
    }

    #[test]
    fn retries_back_off_like_step_functions_and_stop_at_the_cap() {
        let policy = RetryPolicy { max_attempts: 5, interval_seconds: 2, backoff_rate: 2.0, max_delay_seconds: 10 };
        assert_eq!((1..=5).map(|r| policy.delay_seconds(r)).collect::<Vec<_>>(), vec![2, 4, 8, 10, 10]);
        let flat = RetryPolicy { max_attempts: 2, interval_seconds: 1, backoff_rate: 1.0, max_delay_seconds: 300 };
        assert_eq!(flat.delay_seconds(2), 1);
    }

    #[test]
    fn jumps_go_to_the_named_step_the_next_one_or_the_end() {
        let w = workflow(Trigger {
            kind: TriggerType::Manual,
            event_type: None,
            provider_id: None,
            schedule: None,
            filter: BTreeMap::new(),
        });
        assert_eq!(w.resolve_jump("a", None), Some("b"));
        assert_eq!(w.resolve_jump("b", None), None);
        assert_eq!(w.resolve_jump("a", Some("end")), None);
        assert_eq!(w.resolve_jump("b", Some("a")), Some("a"));
    }

    #[test]
    fn a_trigger_matches_its_event_type_provider_and_filter_only() {
        let provider = Uuid::from_u128(7);
        let w = workflow(Trigger {
            kind: TriggerType::InboundWebhook,
            event_type: None,
            provider_id: Some(provider),
            schedule: None,
            filter: BTreeMap::from([("data.event_type".to_owned(), json!("payment.succeeded"))]),
        });
        let event = json!({"event_type": "integration.event.received", "provider": {"id": provider.to_string()},
                           "data": {"event_type": "payment.succeeded"}});
        assert!(w.matches(&event));
        let mut other_provider = event.clone();
        other_provider["provider"]["id"] = json!(Uuid::from_u128(8).to_string());
        assert!(!w.matches(&other_provider));
        let mut other_type = event.clone();
        other_type["data"]["event_type"] = json!("payment.failed");
        assert!(!w.matches(&other_type));
        let manual = workflow(Trigger {
            kind: TriggerType::Manual,
            event_type: None,
            provider_id: None,
            schedule: None,
            filter: BTreeMap::new(),
        });
        assert!(!manual.matches(&event), "a manual workflow starts on no event");
    }

    #[test]
    fn a_stored_step_reads_back_with_its_type_tag() {
        let stored = step(
            "call",
            StepAction::Integration {
                provider_id: Uuid::nil(),
                method: HttpMethod::Post,
                path: "/orders".into(),
                field_mapping: BTreeMap::from([("order_id".to_owned(), "trigger.data.id".to_owned())]),
            },
        );
        let json = serde_json::to_value(&stored).expect("json");
        assert_eq!(json["type"], "integration");
        assert_eq!(json["method"], "POST");
        let item: std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue> =
            serde_dynamo::to_item(&stored).expect("item");
        let back: WorkflowStep = serde_dynamo::from_item(item).expect("from item");
        assert_eq!(back, stored);
    }

    #[test]
    fn answers_are_what_the_interpreter_routes_on() {
        let answer =
            StepAnswer::Next { step: "b".into(), attempt: 2, visit: 3, timeout_seconds: 300, wait_seconds: Some(4) };
        assert_eq!(
            serde_json::to_value(&answer).expect("json"),
            json!({"outcome": "next", "step": "b", "attempt": 2, "visit": 3, "timeout_seconds": 300, "wait_seconds": 4})
        );
        assert_eq!(serde_json::to_value(StepAnswer::Succeeded).expect("json"), json!({"outcome": "succeeded"}));
        let message: StepMessage = serde_json::from_value(json!({"kind": "timed_out", "tenant_id": Uuid::nil(),
            "execution_id": Uuid::nil(), "step": "a", "visit": 1, "task_token": "t"}))
        .expect("message");
        assert!(matches!(message, StepMessage::TimedOut { visit: 1, .. }));
    }

    #[test]
    fn long_outputs_are_kept_as_an_excerpt() {
        let long = json!({"body": "é".repeat(MAX_OUTPUT_CHARS)});
        let kept = bounded_output(long);
        assert_eq!(kept["truncated"], true);
        assert!(kept["excerpt"].as_str().expect("excerpt").len() <= MAX_OUTPUT_CHARS);
        assert_eq!(bounded_output(json!({"a": 1})), json!({"a": 1}));
    }
}
