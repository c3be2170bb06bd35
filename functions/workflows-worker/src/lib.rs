//! The workflows worker, fed two ways:
//! - the interpreter's step messages (`WorkflowStepsQueue`): run one step
//!   of one execution, record the run, and answer the task token with what
//!   comes next ([`StepAnswer`]): the next step, a retry after a wait, the
//!   end. An approval step answers nothing: the token is sealed beside the
//!   execution until someone decides (the workflows API answers it) or the
//!   step's timeout fires (a `timed_out` message).
//! - every tenant event on the bus (`WorkflowTriggersQueue`): the active
//!   workflows whose trigger it matches start, once per event; and on the
//!   same queue, a `schedule` workflow's firings (its EventBridge Scheduler
//!   schedule), each starting one execution.
//!
//! Redeliveries are safe: a run is keyed by its visit number, a task gets
//! an id derived from (execution, visit), an event's executions an id
//! derived from (workflow, event) or (workflow, firing time), and a step whose run already succeeded
//! is answered again without running again.

use std::collections::BTreeMap;

use anyhow::Context;
use aws_lambda_events::event::sqs::SqsMessage;
use serde_json::{Value, json};
use shared::{
    auth::{
        TenantScope,
        proofs::{OwnEvent, OwnQueue, TenantSchedule},
    },
    domain::{
        audit::AuditContext,
        expression::{Condition, map_fields, render},
        ids::derived_id,
        now_rfc3339,
        project::{Priority, Task, TaskStatus},
        schedule::{ScheduleTarget, ScheduledFiring},
        workflow::{
            Execution, ExecutionError, ExecutionStatus, MAX_VISITS, OnError, PendingApproval, StepAction, StepAnswer,
            StepMessage, StepRun, StepRunStatus, TriggerType, Workflow, WorkflowStep, bounded_output,
        },
    },
    events::{Event, EventBridgeEnvelope, catalogue::WorkflowNotification},
    outbound::Fetcher,
    provider_api::ProviderApi,
    store::Store,
    workflow_engine::{Engine, new_execution, seal_token},
};
use uuid::Uuid;

pub struct WorkflowsWorker {
    pub store: Store,
    pub engine: Engine,
    pub http: Fetcher,
    /// Seals approval tokens and opens provider secrets (the `sealing` ring).
    pub sealing: shared::sealing::KeyRing,
    /// Deletes a workflow's schedule that fired after the workflow dropped it.
    pub schedules: shared::schedules::TenantSchedules,
}

/// What one message did.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A step ran (or was answered again) and the run was told what follows.
    Stepped,
    /// An approval step now waits for a decision.
    AwaitingApproval,
    /// The message was for an execution that ended (cancelled, say).
    Dropped,
    /// A step's timeout was recorded.
    TimedOut,
    /// This many executions started from one event.
    Started(usize),
}

/// How a step went.
enum StepResult {
    Done { output: Value, jump: Option<String> },
    AwaitApproval(Vec<Uuid>),
}

impl shared::worker::Worker for WorkflowsWorker {
    type Outcome = Outcome;

    async fn handle(&self, message: &SqsMessage) -> anyhow::Result<Outcome> {
        let body = message.body.as_deref().unwrap_or_default();
        if let Ok(step) = serde_json::from_str::<StepMessage>(body) {
            return match step {
                StepMessage::Step { tenant_id, execution_id, step, attempt, visit, task_token } => {
                    self.run_step(OwnQueue::scope(tenant_id), execution_id, &step, attempt, visit, &task_token).await
                }
                StepMessage::TimedOut { tenant_id, execution_id, step, visit, task_token } => {
                    self.time_out(OwnQueue::scope(tenant_id), execution_id, &step, visit, &task_token).await
                }
            };
        }
        if let Some(firing) = ScheduledFiring::from_body(body) {
            return self.start_scheduled(&firing).await;
        }
        let envelope: EventBridgeEnvelope = serde_json::from_str(body).context("an EventBridge envelope")?;
        self.start_triggered(&envelope).await
    }
}

/// The context steps read: `trigger` and `steps.<name>.output` (the latest
/// successful run of each, after what a rerun inherited).
fn context_of(execution: &Execution, runs: &[StepRun]) -> Value {
    let mut outputs: BTreeMap<String, Value> =
        execution.inherited_outputs.iter().map(|(name, output)| (name.clone(), json!({"output": output}))).collect();
    for run in runs {
        if matches!(run.status, StepRunStatus::Succeeded | StepRunStatus::Approved) {
            outputs.insert(run.step.clone(), json!({"output": run.output.clone().unwrap_or(Value::Null)}));
        }
    }
    json!({"trigger": execution.trigger, "steps": outputs})
}

fn millis_since(started_at: &str) -> Option<i64> {
    let started = chrono::DateTime::parse_from_rfc3339(started_at).ok()?;
    Some((chrono::Utc::now() - started.with_timezone(&chrono::Utc)).num_milliseconds().max(0))
}

impl WorkflowsWorker {
    async fn fail_execution(
        &self,
        scope: &TenantScope,
        execution: &Execution,
        workflow_name: &str,
        status: ExecutionStatus,
        error: ExecutionError,
    ) -> anyhow::Result<()> {
        self.store.finish_execution(scope, execution, workflow_name, status, Some(&error)).await?;
        Ok(())
    }

    /// Runs `step` of the execution as run number `visit`, try `attempt`.
    async fn run_step(
        &self,
        scope: TenantScope,
        execution_id: Uuid,
        step_name: &str,
        attempt: i64,
        visit: i64,
        token: &str,
    ) -> anyhow::Result<Outcome> {
        let Some(execution) = self.store.get_execution(&scope, execution_id).await? else {
            self.engine.answer(token, &StepAnswer::Failed).await?;
            return Ok(Outcome::Dropped);
        };
        if execution.status.is_final() {
            // The run may still wait on this token (a stop not yet landed).
            self.engine.answer(token, &StepAnswer::Failed).await?;
            return Ok(Outcome::Dropped);
        }
        if execution.status == ExecutionStatus::WaitingApproval {
            // A redelivered approval step: the token is already kept.
            return Ok(Outcome::AwaitingApproval);
        }
        let workflow = self
            .store
            .get_workflow_version(&scope, execution.workflow_id, execution.workflow_version)
            .await?
            .context("the execution's workflow version is gone")?;
        let Some(step) = workflow.step(step_name) else {
            let error = ExecutionError {
                code: "step_failed".into(),
                message: format!("the definition has no step {step_name}"),
                step: Some(step_name.to_owned()),
            };
            self.fail_execution(&scope, &execution, &workflow.name, ExecutionStatus::Failed, error).await?;
            self.engine.answer(token, &StepAnswer::Failed).await?;
            return Ok(Outcome::Stepped);
        };
        if visit > MAX_VISITS {
            let error = ExecutionError {
                code: "too_many_steps".into(),
                message: format!("the execution ran {MAX_VISITS} steps; a loop?"),
                step: Some(step_name.to_owned()),
            };
            self.fail_execution(&scope, &execution, &workflow.name, ExecutionStatus::Failed, error).await?;
            self.engine.answer(token, &StepAnswer::Failed).await?;
            return Ok(Outcome::Stepped);
        }
        // One read of the history: the context, and whether this very run
        // was already made (its answer lost).
        let runs = self.store.step_runs(&scope, execution_id).await?;
        if let Some(done) = runs.iter().find(|r| r.visit == visit && r.status == StepRunStatus::Succeeded) {
            // Run before, answer lost: answer again from the record.
            let jump = done.output.as_ref().and_then(|o| o.get("next_step")).and_then(Value::as_str).map(str::to_owned);
            let answer = self.after_success(&scope, &execution, &workflow, step, jump.as_deref(), visit).await?;
            self.engine.answer(token, &answer).await?;
            return Ok(Outcome::Stepped);
        }
        if !self.store.execution_at_step(&scope, execution_id, step_name).await? {
            self.engine.answer(token, &StepAnswer::Failed).await?;
            return Ok(Outcome::Dropped);
        }
        let context = context_of(&execution, &runs);
        let mut run = StepRun {
            visit,
            step: step.name.clone(),
            step_type: step.action.step_type(),
            attempt,
            status: StepRunStatus::Running,
            input: None,
            output: None,
            error: None,
            started_at: now_rfc3339(),
            ended_at: None,
            duration_ms: None,
        };
        let result = self.perform(&scope, &execution, &workflow, step, visit, &context, &mut run).await;
        let ended = now_rfc3339();
        run.duration_ms = millis_since(&run.started_at);
        match result {
            Ok(StepResult::AwaitApproval(approvers)) => {
                run.status = StepRunStatus::Waiting;
                self.store.put_step_run(&scope, execution_id, &run).await?;
                let expires_at = chrono::Utc::now() + chrono::Duration::seconds(step.timeout_seconds);
                let approval = PendingApproval {
                    step: step.name.clone(),
                    approvers,
                    requested_at: run.started_at.clone(),
                    expires_at: shared::domain::rfc3339(expires_at),
                };
                let sealed = seal_token(&self.sealing, &scope, execution_id, token)?;
                if !self.store.wait_for_approval(&scope, execution_id, &approval, &sealed).await? {
                    self.engine.answer(token, &StepAnswer::Failed).await?;
                    return Ok(Outcome::Dropped);
                }
                Ok(Outcome::AwaitingApproval)
            }
            Ok(StepResult::Done { output, jump }) => {
                let mut kept = bounded_output(output);
                if let (Some(jump), Value::Object(map)) = (&jump, &mut kept) {
                    map.insert("next_step".into(), json!(jump));
                }
                run.status = StepRunStatus::Succeeded;
                run.output = Some(kept);
                run.ended_at = Some(ended);
                self.store.put_step_run(&scope, execution_id, &run).await?;
                let answer = self.after_success(&scope, &execution, &workflow, step, jump.as_deref(), visit).await?;
                self.engine.answer(token, &answer).await?;
                Ok(Outcome::Stepped)
            }
            Err(reason) => {
                run.status = StepRunStatus::Failed;
                run.error = Some(reason.chars().take(1000).collect());
                run.ended_at = Some(ended);
                self.store.put_step_run(&scope, execution_id, &run).await?;
                let answer = self.after_failure(&scope, &execution, &workflow, step, attempt, visit, &reason).await?;
                self.engine.answer(token, &answer).await?;
                Ok(Outcome::Stepped)
            }
        }
    }

    /// What follows a step that succeeded: `jump` (a condition's branch)
    /// or the next step; the end succeeds the execution.
    async fn after_success(
        &self,
        scope: &TenantScope,
        execution: &Execution,
        workflow: &Workflow,
        step: &WorkflowStep,
        jump: Option<&str>,
        visit: i64,
    ) -> anyhow::Result<StepAnswer> {
        match workflow.resolve_jump(&step.name, jump).and_then(|next| workflow.step(next)) {
            Some(next) => Ok(StepAnswer::next(next, visit + 1)),
            None => {
                self.store.finish_execution(scope, execution, &workflow.name, ExecutionStatus::Succeeded, None).await?;
                Ok(StepAnswer::Succeeded)
            }
        }
    }

    /// What follows a failed try: a retry after its delay while the policy
    /// allows, then the step's `on_error`.
    #[allow(clippy::too_many_arguments)]
    async fn after_failure(
        &self,
        scope: &TenantScope,
        execution: &Execution,
        workflow: &Workflow,
        step: &WorkflowStep,
        attempt: i64,
        visit: i64,
        reason: &str,
    ) -> anyhow::Result<StepAnswer> {
        if let Some(policy) = &step.retry_policy
            && attempt <= policy.max_attempts
        {
            return Ok(StepAnswer::Next {
                step: step.name.clone(),
                attempt: attempt + 1,
                visit: visit + 1,
                timeout_seconds: step.timeout_seconds,
                wait_seconds: Some(policy.delay_seconds(attempt)),
            });
        }
        let next = match step.on_error {
            OnError::Fail => None,
            OnError::Continue => Some(workflow.resolve_jump(&step.name, None)),
            OnError::Goto => Some(workflow.resolve_jump(&step.name, step.error_step.as_deref())),
        };
        match next {
            Some(Some(target)) => match workflow.step(target) {
                Some(target) => Ok(StepAnswer::next(target, visit + 1)),
                None => anyhow::bail!("a checked definition names no step {target}"),
            },
            Some(None) => {
                self.store.finish_execution(scope, execution, &workflow.name, ExecutionStatus::Succeeded, None).await?;
                Ok(StepAnswer::Succeeded)
            }
            None => {
                let error = ExecutionError {
                    code: "step_failed".into(),
                    message: reason.chars().take(500).collect(),
                    step: Some(step.name.clone()),
                };
                self.fail_execution(scope, execution, &workflow.name, ExecutionStatus::Failed, error).await?;
                Ok(StepAnswer::Failed)
            }
        }
    }

    /// Does the step's work; `Err` is the reason the try failed.
    #[allow(clippy::too_many_arguments)]
    async fn perform(
        &self,
        scope: &TenantScope,
        execution: &Execution,
        workflow: &Workflow,
        step: &WorkflowStep,
        visit: i64,
        context: &Value,
        run: &mut StepRun,
    ) -> Result<StepResult, String> {
        match &step.action {
            StepAction::Task { project_id, title, description } => {
                let title = render(title, context);
                let description = description.as_deref().map(|d| render(d, context));
                run.input = Some(bounded_output(json!({"project_id": project_id, "title": title})));
                let task_id = derived_id(&[&execution.id.to_string(), &visit.to_string(), "task"]);
                let existing = self.store.get_task(scope, *project_id, task_id).await.map_err(|e| e.to_string())?;
                if existing.is_none() {
                    let now = chrono::Utc::now();
                    let task = Task {
                        id: task_id,
                        project_id: *project_id,
                        tenant_id: scope.tenant_id(),
                        title: title.chars().take(500).collect(),
                        description,
                        status: TaskStatus::Todo,
                        priority: Priority::Medium,
                        assignee_id: None,
                        due_date: None,
                        requirements: json!({}),
                        acceptance_criteria: Vec::new(),
                        analysis_status: None,
                        analysis_job_id: None,
                        ai_analysis: None,
                        created_by: workflow.created_by,
                        created_at: now,
                        updated_at: now,
                    };
                    let audit = AuditContext::system("workflows-worker");
                    self.store.create_task(scope, &task, &audit).await.map_err(|e| e.to_string())?;
                }
                Ok(StepResult::Done { output: json!({"task_id": task_id, "project_id": project_id}), jump: None })
            }
            StepAction::Approval { approvers } => {
                run.input = Some(json!({"approvers": approvers, "timeout_seconds": step.timeout_seconds}));
                Ok(StepResult::AwaitApproval(approvers.clone()))
            }
            StepAction::Notification { message, data } => {
                let message = render(message, context);
                let data = map_fields(data, context);
                run.input = Some(bounded_output(json!({"message": message, "data": data})));
                let event = Event::WorkflowNotification(WorkflowNotification {
                    workflow_id: workflow.id,
                    execution_id: execution.id,
                    step: step.name.clone(),
                    message,
                    data,
                });
                let sent = self.store.emit(scope, event).await.map_err(|e| e.to_string())?;
                Ok(StepResult::Done { output: json!({"event_id": sent.id}), jump: None })
            }
            StepAction::Condition { expression, if_true, if_false } => {
                run.input = Some(json!({"expression": expression}));
                let condition = Condition::parse(expression).map_err(|e| e.to_string())?;
                let result = condition.evaluate(context).map_err(|e| e.to_string())?;
                let branch = if result { if_true } else { if_false };
                Ok(StepResult::Done { output: json!({"result": result}), jump: branch.clone() })
            }
            StepAction::Integration { provider_id, method, path, field_mapping } => {
                self.call_provider(
                    scope,
                    execution,
                    visit,
                    *provider_id,
                    method.as_str(),
                    path,
                    field_mapping,
                    context,
                    run,
                )
                .await
            }
        }
    }

    /// An integration step's HTTP call; a non-2xx answer or a transport
    /// failure fails the try.
    #[allow(clippy::too_many_arguments)]
    async fn call_provider(
        &self,
        scope: &TenantScope,
        execution: &Execution,
        visit: i64,
        provider_id: Uuid,
        method: &str,
        path: &str,
        field_mapping: &BTreeMap<String, String>,
        context: &Value,
        run: &mut StepRun,
    ) -> Result<StepResult, String> {
        let provider = ProviderApi::open(&self.store, &self.sealing, scope, provider_id).await?;
        let url = provider.url(&render(path, context));
        let body = (method != "GET" && method != "DELETE").then(|| map_fields(field_mapping, context));
        run.input = Some(bounded_output(json!({"method": method, "url": url, "body": body})));
        // The provider retries nothing twice on our account: one key per
        // run of the step, the same on a redelivery.
        let mut headers = vec![("idempotency-key", format!("{}:{visit}", execution.id))];
        headers.extend(provider.auth_headers(body.as_ref()));
        let started = std::time::Instant::now();
        let reply = self.http.call_json(method, &url, &headers, body.as_ref()).await?;
        let elapsed_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        if !(200..300).contains(&reply.status) {
            return Err(format!("HTTP {} from {}", reply.status, provider.name));
        }
        Ok(StepResult::Done {
            output: json!({"status": reply.status, "body": reply.body, "response_time_ms": elapsed_ms}),
            jump: None,
        })
    }

    /// The step's timeout fired: the execution ends `timed_out` (an approval
    /// nobody decided, or a step the worker never answered).
    async fn time_out(
        &self,
        scope: TenantScope,
        execution_id: Uuid,
        step: &str,
        visit: i64,
        token: &str,
    ) -> anyhow::Result<Outcome> {
        if let Some(execution) = self.store.get_execution(&scope, execution_id).await?
            && !execution.status.is_final()
        {
            let workflow_name = self
                .store
                .get_workflow_version(&scope, execution.workflow_id, execution.workflow_version)
                .await?
                .map(|w| w.name)
                .unwrap_or_default();
            let error = ExecutionError {
                code: "step_timed_out".into(),
                message: format!("step {step} did not finish within its timeout"),
                step: Some(step.to_owned()),
            };
            // The run is marked in the finish's own transaction, so only the
            // finish that wins marks it (a cancel racing the timeout keeps its
            // own record) and nobody reads the execution timed out while its
            // step still says `waiting`.
            let run = self.store.get_step_run(&scope, execution_id, visit).await?.map(|mut run| {
                run.status = StepRunStatus::TimedOut;
                run.ended_at = Some(now_rfc3339());
                run.duration_ms = millis_since(&run.started_at);
                run
            });
            self.store
                .finish_execution_settling(
                    &scope,
                    &execution,
                    &workflow_name,
                    ExecutionStatus::TimedOut,
                    Some(&error),
                    run.as_ref(),
                )
                .await?;
        }
        self.engine.answer(token, &StepAnswer::Failed).await?;
        Ok(Outcome::TimedOut)
    }

    /// Starts every active workflow of the event's tenant that the event
    /// matches, once per (workflow, event).
    async fn start_triggered(&self, envelope: &EventBridgeEnvelope) -> anyhow::Result<Outcome> {
        let scope = OwnEvent::scope(envelope)?;
        let event = &envelope.detail;
        // A workflow's own events never start workflows (no loops).
        if event.event_type.starts_with("workflow.") {
            return Ok(Outcome::Started(0));
        }
        let kind = if event.event_type == shared::domain::workflow::INBOUND_EVENT_TYPE {
            TriggerType::InboundWebhook
        } else {
            TriggerType::Event
        };
        let trigger = if kind == TriggerType::InboundWebhook {
            // The sender's own body is `trigger.data`, as it sent it; the
            // provider and the sender's ids sit beside it.
            let received = &event.data;
            json!({
                "type": kind.as_str(),
                "event_type": event.event_type,
                "event_id": event.id,
                "occurred_at": shared::domain::rfc3339(event.occurred_at),
                "provider": {"id": received["provider_id"], "name": received["provider"]},
                "sender_event_type": received["event_type"],
                "sender_event_id": received["event_id"],
                "inbound_event_id": received["inbound_id"],
                "data": received["data"],
            })
        } else {
            json!({
                "type": kind.as_str(),
                "event_type": event.event_type,
                "event_id": event.id,
                "occurred_at": shared::domain::rfc3339(event.occurred_at),
                "data": event.data,
            })
        };
        let mut started = 0;
        for workflow_id in self.store.workflows_triggered_by(&scope, &event.event_type).await? {
            let Some(workflow) = self.store.get_workflow(&scope, workflow_id).await? else { continue };
            if !workflow.is_active || !workflow.matches(&trigger) {
                continue;
            }
            let id = derived_id(&[&workflow.id.to_string(), &event.id.to_string(), "execution"]);
            let execution =
                new_execution(&self.engine, &scope, &workflow, id, workflow.trigger.kind.as_str(), trigger.clone());
            let first = workflow.first_step().map(|s| s.name.clone()).unwrap_or_default();
            if self.engine.start(&self.store, &scope, &workflow, &execution, &first).await? {
                started += 1;
            }
        }
        Ok(Outcome::Started(started))
    }

    /// A workflow's schedule fired: one execution per firing (its id derived
    /// from the workflow and the firing's time), if the workflow still has
    /// this schedule and is active. A workflow gone or no longer scheduled
    /// gets its schedule deleted.
    async fn start_scheduled(&self, firing: &ScheduledFiring) -> anyhow::Result<Outcome> {
        anyhow::ensure!(firing.target == ScheduleTarget::Workflow, "a {} firing on the triggers queue", firing.target);
        let scope = TenantSchedule::scope(firing);
        let workflow = self.store.get_workflow(&scope, firing.id).await?;
        let holds = |w: &Workflow| w.trigger.schedule.as_deref() == Some(firing.expression.as_str());
        let Some(workflow) = workflow.as_ref().filter(|w| holds(w)) else {
            if workflow.is_none_or(|w| w.trigger.schedule.is_none()) {
                self.schedules.remove(firing.target, firing.id).await?;
            }
            return Ok(Outcome::Started(0));
        };
        if !workflow.is_active {
            return Ok(Outcome::Started(0));
        }
        let trigger = json!({
            "type": TriggerType::Schedule.as_str(),
            "schedule": firing.expression,
            "scheduled_time": firing.scheduled_time,
            "occurred_at": firing.scheduled_time,
        });
        let id = derived_id(&[&workflow.id.to_string(), &firing.scheduled_time, "scheduled execution"]);
        let execution = new_execution(&self.engine, &scope, workflow, id, TriggerType::Schedule.as_str(), trigger);
        let first = workflow.first_step().map(|s| s.name.clone()).unwrap_or_default();
        let started = self.engine.start(&self.store, &scope, workflow, &execution, &first).await?;
        Ok(Outcome::Started(usize::from(started)))
    }
}
