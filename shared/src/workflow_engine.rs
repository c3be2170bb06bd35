//! The workflows' engine calls (AWS Step Functions), shared by the
//! workflows function (manual runs, cancel, approvals, reruns) and its
//! worker (event triggers, step answers).
//!
//! An execution is stored first and started second, with the stored id as
//! the Step Functions execution name: a retried start of the same
//! execution is answered with the same run (StartExecution is idempotent
//! on name and input), and the worker always finds the execution it is
//! asked to run.

use uuid::Uuid;

use crate::{
    auth::TenantScope,
    aws::SfnClient,
    domain::{
        now_rfc3339,
        workflow::{Execution, ExecutionError, ExecutionStatus, StepAnswer, StepDispatch, Workflow},
    },
    error::{AppError, AppResult},
    sealing::{KeyRing, SealContext},
    store::{Store, integrations::Sealed},
};

/// The interpreter state machine, from `WORKFLOW_STATE_MACHINE_ARN`.
#[derive(Clone, Debug)]
pub struct Engine {
    pub sfn: SfnClient,
    pub state_machine_arn: String,
}

/// What an execution's approval task token is sealed for.
fn token_context(scope: &TenantScope, execution_id: Uuid) -> SealContext {
    SealContext::new("workflow-approval-token-v1", &[&scope.pk(), &execution_id.to_string()])
}

pub fn seal_token(sealing: &KeyRing, scope: &TenantScope, execution_id: Uuid, token: &str) -> AppResult<Sealed> {
    let (nonce, ciphertext) = sealing.seal(&token_context(scope, execution_id), token.as_bytes())?;
    Ok(Sealed { nonce: nonce.to_vec(), ciphertext })
}

pub fn open_token(sealing: &KeyRing, scope: &TenantScope, execution_id: Uuid, sealed: &Sealed) -> AppResult<String> {
    let plain = sealing.open(&token_context(scope, execution_id), &sealed.nonce, &sealed.ciphertext)?;
    String::from_utf8(plain).map_err(AppError::internal)
}

impl Engine {
    pub fn from_env(sfn: SfnClient) -> anyhow::Result<Self> {
        let state_machine_arn = std::env::var("WORKFLOW_STATE_MACHINE_ARN")
            .map_err(|_| anyhow::anyhow!("WORKFLOW_STATE_MACHINE_ARN is not set"))?;
        Ok(Self { sfn, state_machine_arn })
    }

    /// The Step Functions execution ARN an execution id runs as.
    pub fn execution_arn(&self, execution_id: Uuid) -> String {
        format!("{}:{execution_id}", self.state_machine_arn.replacen(":stateMachine:", ":execution:", 1))
    }

    /// Stores `execution` and starts its run at `workflow`'s first step (or
    /// `start_at`). False when an execution with its id already existed (an
    /// event delivered twice). A start that fails ends the execution
    /// `failed` (`start_failed`) and answers 503.
    pub async fn start(
        &self,
        store: &Store,
        scope: &TenantScope,
        workflow: &Workflow,
        execution: &Execution,
        start_at: &str,
    ) -> AppResult<bool> {
        let step = workflow
            .step(start_at)
            .ok_or_else(|| AppError::internal(anyhow::anyhow!("workflow {} has no step {start_at}", workflow.id)))?;
        // Not created: the same execution was stored before (an event
        // delivered again). Its start may not have happened (a crash
        // between the two), so it is started again: Step Functions answers
        // a repeated name and input with the same run, or
        // ExecutionAlreadyExists once that run has ended.
        let created = store.create_execution(scope, execution).await?;
        let input = StepDispatch {
            tenant_id: scope.tenant_id(),
            execution_id: execution.id,
            step: step.name.clone(),
            attempt: 1,
            visit: 1,
            timeout_seconds: step.timeout_seconds,
        };
        let started = self
            .sfn
            .client()
            .start_execution()
            .state_machine_arn(&self.state_machine_arn)
            .name(execution.id.to_string())
            .input(serde_json::to_string(&input).map_err(AppError::internal)?)
            .send()
            .await;
        if let Err(err) = &started
            && err.as_service_error().is_some_and(|e| e.is_execution_already_exists())
        {
            return Ok(created);
        }
        if let Err(err) = started {
            let reason = aws_sdk_sfn::error::DisplayErrorContext(&err).to_string();
            tracing::error!(error = %reason, execution_id = %execution.id, "the workflow run did not start");
            if !created {
                // It may be running from the first start: the caller's retry decides.
                return Err(AppError::internal(anyhow::anyhow!("restarting a stored execution: {reason}")));
            }
            let error = ExecutionError {
                code: "start_failed".into(),
                message: "the workflow engine did not start the run".into(),
                step: None,
            };
            store.finish_execution(scope, execution, &workflow.name, ExecutionStatus::Failed, Some(&error)).await?;
            return Err(AppError::new(
                http::StatusCode::SERVICE_UNAVAILABLE,
                "service_unavailable",
                "the workflow engine did not start the run; try again",
            )
            .with_header(http::header::RETRY_AFTER, http::HeaderValue::from_static("5")));
        }
        Ok(created)
    }

    /// Hands a step's answer to the waiting run. A run that ended meanwhile
    /// (stopped, timed out) refuses the token: that is not an error here.
    pub async fn answer(&self, task_token: &str, answer: &StepAnswer) -> AppResult<()> {
        let output = serde_json::to_string(answer).map_err(AppError::internal)?;
        match self.sfn.client().send_task_success().task_token(task_token).output(output).send().await {
            Ok(_) => Ok(()),
            Err(err) if is_gone_task(&err) => {
                tracing::info!("the run no longer waits for this step's answer");
                Ok(())
            }
            Err(err) => Err(AppError::internal(anyhow::anyhow!(
                "SendTaskSuccess: {}",
                aws_sdk_sfn::error::DisplayErrorContext(&err)
            ))),
        }
    }

    /// Stops the run (a cancel). One that already ended is not an error.
    pub async fn stop(&self, execution_id: Uuid) -> AppResult<()> {
        let stopped = self
            .sfn
            .client()
            .stop_execution()
            .execution_arn(self.execution_arn(execution_id))
            .error("Cancelled")
            .cause("cancelled through the API")
            .send()
            .await;
        match stopped {
            Ok(_) => Ok(()),
            Err(err) if err.as_service_error().is_some_and(|e| e.is_execution_does_not_exist()) => Ok(()),
            Err(err) => Err(AppError::internal(anyhow::anyhow!(
                "StopExecution: {}",
                aws_sdk_sfn::error::DisplayErrorContext(&err)
            ))),
        }
    }
}

fn is_gone_task(
    err: &aws_sdk_sfn::error::SdkError<aws_sdk_sfn::operation::send_task_success::SendTaskSuccessError>,
) -> bool {
    err.as_service_error().is_some_and(|e| e.is_task_timed_out() || e.is_task_does_not_exist() || e.is_invalid_token())
}

/// A new execution record of `workflow`, started by `started_by` from
/// `trigger`.
pub fn new_execution(
    engine: &Engine,
    scope: &TenantScope,
    workflow: &Workflow,
    id: Uuid,
    started_by: &str,
    trigger: serde_json::Value,
) -> Execution {
    Execution {
        id,
        tenant_id: scope.tenant_id(),
        workflow_id: workflow.id,
        workflow_version: workflow.version,
        status: ExecutionStatus::Running,
        started_by: started_by.to_owned(),
        trigger,
        inherited_outputs: Default::default(),
        rerun_of: None,
        current_step: workflow.first_step().map(|s| s.name.clone()),
        approval: None,
        error: None,
        state_machine_execution: engine.execution_arn(id),
        started_at: now_rfc3339(),
        ended_at: None,
    }
}
