//! Executions: a manual run, the list and one execution with its step
//! history, cancel, rerun from the step that failed, and approval
//! decisions. Starting and answering go through
//! `shared::workflow_engine` (Step Functions).

use std::collections::BTreeMap;

use axum::{
    Json,
    extract::{RawPathParams, State},
    http::StatusCode,
};
use serde::Serialize;
use serde_json::{Value, json};
use shared::{
    AppError, AppResult, AppState,
    auth::{Principal, Role, Scope, TenantScope},
    domain::{
        ids::{ExecutionId, WorkflowId},
        now_rfc3339,
        values::{JsonObject, Text},
        workflow::{
            Execution, ExecutionError, ExecutionStatus, PendingApproval, StepAnswer, StepRun, StepRunStatus, Workflow,
        },
    },
    http::Page,
    store::workflows::WORKFLOW_RESOURCE,
    web::extract::{Body, ListQuery, OptionalBody, PathIds},
    workflow_engine::{Engine, new_execution, open_token},
};
use uuid::Uuid;

use crate::definitions::load;
use crate::require;

const EXECUTION_RESOURCE: &str = "workflow_execution";

fn engine(state: &AppState) -> AppResult<Engine> {
    Engine::from_env(state.sfn.clone()).map_err(AppError::internal)
}

/// An execution as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ExecutionView {
    pub id: Uuid,
    pub workflow_id: Uuid,
    /// The definition version it runs.
    pub workflow_version: i64,
    pub status: ExecutionStatus,
    /// `manual`, `event`, `inbound_webhook` or `rerun`.
    pub started_by: String,
    /// What started it: the event (`event_type`, `event_id`, `data`) or a
    /// manual run's `input` under `data`.
    #[schema(value_type = Object)]
    pub trigger: Value,
    /// The step running or waiting now (the last one when it has ended).
    pub current_step: Option<String>,
    /// The approval it waits for, if any.
    pub approval: Option<PendingApproval>,
    pub error: Option<ExecutionError>,
    /// The execution this one reruns.
    pub rerun_of: Option<Uuid>,
    #[schema(format = DateTime)]
    pub started_at: String,
    #[schema(format = DateTime)]
    pub ended_at: Option<String>,
}

impl From<&Execution> for ExecutionView {
    fn from(e: &Execution) -> Self {
        Self {
            id: e.id,
            workflow_id: e.workflow_id,
            workflow_version: e.workflow_version,
            status: e.status,
            started_by: e.started_by.clone(),
            trigger: e.trigger.clone(),
            current_step: e.current_step.clone(),
            approval: e.approval.clone(),
            error: e.error.clone(),
            rerun_of: e.rerun_of,
            started_at: e.started_at.clone(),
            ended_at: e.ended_at.clone(),
        }
    }
}

/// One execution with every step run so far, in order.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ExecutionDetail {
    #[serde(flatten)]
    pub execution: ExecutionView,
    /// Each run of each step: retries are runs of their own (`attempt`).
    pub steps: Vec<StepRun>,
}

async fn load_execution(
    state: &AppState,
    scope: &TenantScope,
    workflow_id: Uuid,
    execution_id: Uuid,
) -> AppResult<Execution> {
    state
        .store
        .get_execution(scope, execution_id)
        .await?
        .filter(|e| e.workflow_id == workflow_id)
        .ok_or_else(|| AppError::not_found(EXECUTION_RESOURCE))
}

/// The definition an execution runs: the workflow must still exist (404
/// otherwise), and its current version is the usual answer, read once.
async fn load_version(state: &AppState, scope: &TenantScope, id: Uuid, version: i64) -> AppResult<Workflow> {
    let current = load(state, scope, id).await?;
    if current.version == version {
        return Ok(current);
    }
    state.store.get_workflow_version(scope, id, version).await?.ok_or_else(|| AppError::not_found(WORKFLOW_RESOURCE))
}

/// `POST /v1/workflows/{id}/executions`: optional.
#[derive(Debug, eserde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RunRequest {
    /// The run's data, seen by the steps as `trigger.data`.
    #[serde(default)]
    #[eserde(compat)]
    #[schema(value_type = Option<Object>)]
    pub input: Option<JsonObject<65536>>,
}

/// Run a workflow now
///
/// A manual run of the current version, whatever its trigger; `input`
/// becomes `trigger.data`. 202: the execution has started; follow it
/// with `GET .../executions/{execution_id}`.
#[utoipa::path(post, path = "/v1/workflows/{id}/executions", tag = "workflows", security(("bearer" = ["admin"]), ("api_key" = ["workflows:manage"])),
    request_body(content = Option<RunRequest>, example = json!({"input": {"payment_id": "pay_123", "amount": 1000}})),
    responses(
        (status = 202, description = "Started", body = ExecutionView),
        (status = 409, description = "Conflict\n\n- `conflict`: the workflow is inactive\n- `idempotency_key_in_use`: a request with this `Idempotency-Key` is still running", body = shared::web::openapi::ApiError),
        (status = 503, description = "Service unavailable\n\n- `service_unavailable`: the workflow engine did not start the run (the execution is recorded `failed`); retry after `Retry-After`", body = shared::web::openapi::ApiError),
    ))]
pub async fn run_workflow(
    State(state): State<AppState>,
    principal: Principal,
    PathIds(WorkflowId(id)): PathIds<WorkflowId>,
    body: Result<OptionalBody<RunRequest>, AppError>,
) -> AppResult<(StatusCode, Json<ExecutionView>)> {
    let scope = require(&principal)?;
    let OptionalBody(body) = body?;
    let workflow = load(&state, &scope, id).await?;
    if !workflow.is_active {
        return Err(AppError::conflict("the workflow is inactive; activate it (PUT) to run it"));
    }
    let input = body.and_then(|b| b.input).map(|i| Value::Object(i.as_map().clone())).unwrap_or_else(|| json!({}));
    let trigger = json!({"type": "manual", "data": input, "started_at": now_rfc3339()});
    let engine = engine(&state)?;
    let execution = new_execution(&engine, &scope, &workflow, Uuid::now_v7(), "manual", trigger);
    let first = workflow.first_step().map(|s| s.name.clone()).unwrap_or_default();
    engine.start(&state.store, &scope, &workflow, &execution, &first).await?;
    Ok((StatusCode::ACCEPTED, Json(ExecutionView::from(&execution))))
}

/// `GET /v1/workflows/{id}/executions` filters.
#[derive(Debug, eserde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecutionFilters {
    #[serde(default)]
    #[eserde(compat)]
    status: Option<ExecutionStatus>,
}

/// List a workflow's executions
///
/// Newest first; `?status=`, `?limit=`, `?cursor=`.
#[utoipa::path(get, path = "/v1/workflows/{id}/executions", tag = "workflows", security(("bearer" = ["admin"]), ("api_key" = ["workflows:manage"])),
    params(("status" = Option<ExecutionStatus>, Query, description = "Only executions in this status")),
    responses((status = 200, description = "A page of executions", body = Page<ExecutionView>)))]
pub async fn list_executions(
    State(state): State<AppState>,
    principal: Principal,
    PathIds(WorkflowId(id)): PathIds<WorkflowId>,
    query: Result<ListQuery<ExecutionFilters>, AppError>,
) -> AppResult<Page<ExecutionView>> {
    let scope = require(&principal)?;
    let ListQuery { page, filters } = query?;
    load(&state, &scope, id).await?;
    let (executions, next_cursor) = state.store.list_executions(&scope, id, filters.status, &page).await?;
    Ok(Page { data: executions.iter().map(ExecutionView::from).collect(), next_cursor })
}

/// Read an execution with its step history
#[utoipa::path(get, path = "/v1/workflows/{id}/executions/{execution_id}", tag = "workflows", security(("bearer" = ["admin"]), ("api_key" = ["workflows:manage"])),
    responses((status = 200, description = "The execution and every step run", body = ExecutionDetail)))]
pub async fn get_execution(
    State(state): State<AppState>,
    principal: Principal,
    PathIds((WorkflowId(id), ExecutionId(execution_id))): PathIds<(WorkflowId, ExecutionId)>,
) -> AppResult<Json<ExecutionDetail>> {
    let scope = require(&principal)?;
    let execution = load_execution(&state, &scope, id, execution_id).await?;
    let steps = state.store.step_runs(&scope, execution_id).await?;
    Ok(Json(ExecutionDetail { execution: ExecutionView::from(&execution), steps }))
}

/// Cancel an execution
///
/// Stops its Step Functions run and ends it `cancelled`; an open approval
/// is closed. 409 when it has already ended.
#[utoipa::path(post, path = "/v1/workflows/{id}/executions/{execution_id}/cancel", tag = "workflows", security(("bearer" = ["admin"]), ("api_key" = ["workflows:manage"])),
    responses(
        (status = 200, description = "Cancelled", body = ExecutionView),
        (status = 409, description = "Conflict\n\n- `conflict`: the execution has already ended", body = shared::web::openapi::ApiError),
    ))]
pub async fn cancel_execution(
    State(state): State<AppState>,
    principal: Principal,
    PathIds((WorkflowId(id), ExecutionId(execution_id))): PathIds<(WorkflowId, ExecutionId)>,
) -> AppResult<Json<ExecutionView>> {
    let scope = require(&principal)?;
    let workflow = load(&state, &scope, id).await?;
    let execution = load_execution(&state, &scope, id, execution_id).await?;
    if execution.status.is_final() {
        return Err(AppError::conflict(format!("the execution has already ended ({})", execution.status)));
    }
    let error = ExecutionError {
        code: "cancelled".into(),
        message: format!("cancelled by {}", principal.user_id()),
        step: execution.current_step.clone(),
    };
    // Recorded first: the worker drops any step of a cancelled execution,
    // so nothing runs after this answer even before the stop lands.
    if !state
        .store
        .finish_execution(&scope, &execution, &workflow.name, ExecutionStatus::Cancelled, Some(&error))
        .await?
    {
        return Err(AppError::conflict("the execution has already ended"));
    }
    engine(&state)?.stop(execution.id).await?;
    if let Some(approval) = &execution.approval {
        let runs = state.store.step_runs(&scope, execution.id).await?;
        close_approval_run(&state, &scope, &execution, runs, &approval.step, StepRunStatus::Cancelled, None).await?;
    }
    let ended = state.store.get_execution(&scope, execution.id).await?.unwrap_or(execution);
    Ok(Json(ExecutionView::from(&ended)))
}

/// Rerun an execution from the step it ended on
///
/// For a `failed`, `timed_out` or `cancelled` execution: a new execution
/// of the same version and trigger starts at the step it ended on; the
/// outputs of the steps it had finished are kept (`steps.<name>.output`).
#[utoipa::path(post, path = "/v1/workflows/{id}/executions/{execution_id}/rerun", tag = "workflows", security(("bearer" = ["admin"]), ("api_key" = ["workflows:manage"])),
    responses(
        (status = 202, description = "The new execution", body = ExecutionView),
        (status = 409, description = "Conflict\n\n- `conflict`: the execution is running or succeeded", body = shared::web::openapi::ApiError),
        (status = 503, description = "Service unavailable\n\n- `service_unavailable`: the workflow engine did not start the run; retry after `Retry-After`", body = shared::web::openapi::ApiError),
    ))]
pub async fn rerun_execution(
    State(state): State<AppState>,
    principal: Principal,
    PathIds((WorkflowId(id), ExecutionId(execution_id))): PathIds<(WorkflowId, ExecutionId)>,
) -> AppResult<(StatusCode, Json<ExecutionView>)> {
    let scope = require(&principal)?;
    let failed = load_execution(&state, &scope, id, execution_id).await?;
    let workflow = load_version(&state, &scope, id, failed.workflow_version).await?;
    if !matches!(failed.status, ExecutionStatus::Failed | ExecutionStatus::TimedOut | ExecutionStatus::Cancelled) {
        return Err(AppError::conflict(format!(
            "only a failed, timed out or cancelled execution is rerun ({})",
            failed.status
        )));
    }
    let start_at = failed
        .current_step
        .clone()
        .filter(|step| workflow.step(step).is_some())
        .or_else(|| workflow.first_step().map(|s| s.name.clone()))
        .unwrap_or_default();
    let mut inherited: BTreeMap<String, Value> = failed.inherited_outputs.clone();
    for run in state.store.step_runs(&scope, failed.id).await? {
        if run.status == StepRunStatus::Succeeded || run.status == StepRunStatus::Approved {
            inherited.insert(run.step.clone(), run.output.unwrap_or(Value::Null));
        }
    }
    inherited.remove(&start_at);
    let engine = engine(&state)?;
    let mut execution = new_execution(&engine, &scope, &workflow, Uuid::now_v7(), "rerun", failed.trigger.clone());
    execution.inherited_outputs = inherited;
    execution.rerun_of = Some(failed.id);
    execution.current_step = Some(start_at.clone());
    engine.start(&state.store, &scope, &workflow, &execution, &start_at).await?;
    Ok((StatusCode::ACCEPTED, Json(ExecutionView::from(&execution))))
}

shared::string_enum!(
    /// An approval's decision.
    Decision {
        Approve => "approve",
        Reject => "reject",
    }
);

/// `POST .../approvals/{step}`.
#[derive(Debug, eserde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApprovalDecision {
    /// `approve` or `reject`.
    #[eserde(compat)]
    pub decision: Decision,
    #[serde(default)]
    #[eserde(compat)]
    #[schema(value_type = Option<String>, max_length = 1000)]
    pub comment: Option<Text<0, 1000>>,
}

/// Records the approval step's run as decided (or cancelled).
async fn close_approval_run(
    state: &AppState,
    scope: &TenantScope,
    execution: &Execution,
    runs: Vec<StepRun>,
    step: &str,
    status: StepRunStatus,
    output: Option<Value>,
) -> AppResult<()> {
    if let Some(mut run) = runs.into_iter().rev().find(|r| r.step == step && r.status == StepRunStatus::Waiting) {
        let now = chrono::Utc::now();
        run.duration_ms = chrono::DateTime::parse_from_rfc3339(&run.started_at)
            .ok()
            .map(|started| (now - started.with_timezone(&chrono::Utc)).num_milliseconds().max(0));
        run.status = status;
        run.output = output;
        run.ended_at = Some(shared::domain::rfc3339(now));
        state.store.put_step_run(scope, execution.id, &run).await?;
    }
    Ok(())
}

/// Approve or reject a waiting approval
///
/// By one of the step's `approvers`, or an admin when it lists none (an
/// admin may also decide for listed approvers). Approve: the execution goes
/// on with the next step. Reject: it ends `failed` (`approval_rejected`).
/// 409 when the execution does not wait on this step (already decided,
/// timed out, cancelled).
#[utoipa::path(post, path = "/v1/workflows/{id}/executions/{execution_id}/approvals/{step}", tag = "workflows", security(("bearer" = ["user"]), ("api_key" = ["workflows:manage"])),
    params(("step" = String, Path, description = "The approval step's name")),
    request_body(content = ApprovalDecision, example = json!({"decision": "approve", "comment": "checked the invoice"})),
    responses(
        (status = 200, description = "Decided", body = ExecutionView),
        (status = 409, description = "Conflict\n\n- `conflict`: the execution does not wait on this approval", body = shared::web::openapi::ApiError),
    ))]
pub async fn decide_approval(
    State(state): State<AppState>,
    principal: Principal,
    PathIds((WorkflowId(id), ExecutionId(execution_id))): PathIds<(WorkflowId, ExecutionId)>,
    raw: RawPathParams,
    body: Result<Body<ApprovalDecision>, AppError>,
) -> AppResult<Json<ExecutionView>> {
    let scope = principal.require(Role::User, Scope::WorkflowsManage, EXECUTION_RESOURCE)?;
    let Body(body) = body?;
    let step = raw.iter().find(|(name, _)| *name == "step").map(|(_, v)| v.to_owned()).unwrap_or_default();
    let execution = load_execution(&state, &scope, id, execution_id).await?;
    let workflow = load_version(&state, &scope, id, execution.workflow_version).await?;
    let Some(approval) = execution.approval.clone().filter(|a| a.step == step) else {
        return Err(AppError::conflict(format!("the execution does not wait on an approval named {step}")));
    };
    // Past its deadline the state machine's timeout owns the outcome: a
    // decision then would be answered 200 and still end `timed_out`.
    if chrono::DateTime::parse_from_rfc3339(&approval.expires_at).is_ok_and(|at| at <= chrono::Utc::now()) {
        return Err(AppError::conflict("the approval timed out"));
    }
    let is_admin = principal.role().at_least(Role::Admin);
    let listed = approval.approvers.contains(&principal.user_id());
    if !(is_admin || listed) {
        return Err(AppError::forbidden(
            "insufficient_permissions",
            "only the step's approvers (or an admin) may decide this approval",
        ));
    }
    let Some(sealed) = state.store.take_approval(&scope, execution.id, &step).await? else {
        return Err(AppError::conflict("the approval was decided, timed out or cancelled meanwhile"));
    };
    let token = open_token(&state.keys.sealing, &scope, execution.id, &sealed)?;
    let decided = json!({
        "decision": body.decision.as_str(),
        "decided_by": principal.user_id(),
        "comment": body.comment.map(Text::into_inner),
        "decided_at": now_rfc3339(),
    });
    let engine = engine(&state)?;
    let runs = state.store.step_runs(&scope, execution.id).await?;
    let visit = runs.iter().map(|r| r.visit).max().unwrap_or(0) + 1;
    match body.decision {
        Decision::Approve => {
            close_approval_run(&state, &scope, &execution, runs, &step, StepRunStatus::Approved, Some(decided)).await?;
            let answer = match workflow.resolve_jump(&step, None).and_then(|next| workflow.step(next)) {
                Some(next) => StepAnswer::next(next, visit),
                None => {
                    state
                        .store
                        .finish_execution(&scope, &execution, &workflow.name, ExecutionStatus::Succeeded, None)
                        .await?;
                    StepAnswer::Succeeded
                }
            };
            engine.answer(&token, &answer).await?;
        }
        Decision::Reject => {
            close_approval_run(&state, &scope, &execution, runs, &step, StepRunStatus::Rejected, Some(decided)).await?;
            let error = ExecutionError {
                code: "approval_rejected".into(),
                message: format!("{} rejected the approval", principal.user_id()),
                step: Some(step.clone()),
            };
            state
                .store
                .finish_execution(&scope, &execution, &workflow.name, ExecutionStatus::Failed, Some(&error))
                .await?;
            engine.answer(&token, &StepAnswer::Failed).await?;
        }
    }
    let now = state.store.get_execution(&scope, execution.id).await?.unwrap_or(execution);
    Ok(Json(ExecutionView::from(&now)))
}
