//! Workflows, their executions and step history (`domain::workflow`).
//!
//! Keys, all under the tenant's partition:
//! - `WORKFLOW#<id>`: the current definition; `WORKFLOWVER#<id>#<version>`
//!   each version as saved (an execution reads the one it started with).
//! - `WFTRIGGER#<event type>#<id>`: one per active workflow an event type
//!   starts, so an event finds its workflows with one Query.
//! - `WFEXEC#<id>`: an execution; GSI2 (`<pk>WFEXEC#<workflow>`, id) lists a
//!   workflow's executions newest first (ids are UUIDv7).
//! - `WFSTEP#<execution>#<visit>`: one run of one step; a redelivered step
//!   message rewrites its own run, never adds one.

use std::collections::HashMap;

use aws_sdk_dynamodb::{
    primitives::Blob,
    types::{AttributeValue, Delete, ReturnValue, Update},
};
use serde_json::json;
use uuid::Uuid;

use super::{
    Item, PageRequest, Store, condition_failed,
    integrations::Sealed,
    item_key as key, n,
    quota::tenant_counters,
    s, to_item,
    tx::{Cond, Tx, TxError},
};
use crate::{
    auth::TenantScope,
    domain::alert::{Alert, AlertKind, AlertStatus, workflow_alert_id},
    domain::{
        audit::{AuditContext, Change},
        now_rfc3339,
        workflow::{
            EXECUTION_RETENTION_DAYS, Execution, ExecutionError, ExecutionStatus, MAX_WORKFLOWS_PER_TENANT,
            PendingApproval, StepRun, Workflow,
        },
    },
    error::{AppError, AppResult},
    events::{Event, catalogue::WorkflowExecutionFailed},
};

pub const WORKFLOW_RESOURCE: &str = "workflow";
const WORKFLOW_COUNTER: &str = "workflow_count";
const WORKFLOW_LIMIT: Cond = Cond("workflow_limit");
const WORKFLOW_CHANGED: Cond = Cond("workflow_changed");

fn workflow_key(scope: &TenantScope, id: Uuid) -> Item {
    key(scope, format!("WORKFLOW#{id}"))
}

fn version_key(scope: &TenantScope, id: Uuid, version: i64) -> Item {
    key(scope, format!("WORKFLOWVER#{id}#{version:06}"))
}

fn trigger_key(scope: &TenantScope, event_type: &str, id: Uuid) -> Item {
    key(scope, format!("WFTRIGGER#{event_type}#{id}"))
}

fn execution_key(scope: &TenantScope, id: Uuid) -> Item {
    key(scope, format!("WFEXEC#{id}"))
}

fn step_run_key(scope: &TenantScope, execution_id: Uuid, visit: i64) -> Item {
    key(scope, format!("WFSTEP#{execution_id}#{visit:05}"))
}

fn executions_partition(scope: &TenantScope, workflow_id: Uuid) -> String {
    format!("{}WFEXEC#{workflow_id}", scope.pk())
}

fn expires_at() -> AttributeValue {
    n(chrono::Utc::now().timestamp() + EXECUTION_RETENTION_DAYS * 86_400)
}

/// The writes that make `workflow` the current version: the item (only if
/// `expected_version` is still stored), its version snapshot, and its
/// trigger index entry.
fn put_version(tx: &mut Tx, scope: &TenantScope, workflow: &Workflow, expected_version: Option<i64>) -> AppResult<()> {
    let mut item = to_item(workflow)?;
    item.extend(workflow_key(scope, workflow.id));
    match expected_version {
        None => tx.put_new(item, Cond::UNIQUE_ID),
        Some(version) => tx.put_if(
            item,
            "attribute_exists(PK) AND version = :expected",
            HashMap::from([(":expected".to_owned(), n(version))]),
            WORKFLOW_CHANGED,
        ),
    };
    let mut snapshot = to_item(workflow)?;
    snapshot.extend(version_key(scope, workflow.id, workflow.version));
    tx.put(snapshot);
    if workflow.is_active
        && let Some(event_type) = workflow.trigger.event_type()
    {
        let mut entry = trigger_key(scope, event_type, workflow.id);
        entry.insert("workflow_id".into(), s(workflow.id.to_string()));
        tx.put(entry);
    }
    Ok(())
}

fn drop_trigger(tx: &mut Tx, scope: &TenantScope, workflow: &Workflow) {
    if let Some(event_type) = workflow.trigger.event_type() {
        tx.delete(Delete::builder().set_key(Some(trigger_key(scope, event_type, workflow.id))), None);
    }
}

/// The sealed task token beside an execution waiting for an approval.
fn sealed_token(item: &Item) -> Option<Sealed> {
    let bytes = |name: &str| item.get(name).and_then(|v| v.as_b().ok()).map(|b| b.as_ref().to_vec());
    Some(Sealed { nonce: bytes("approval_token_nonce")?, ciphertext: bytes("approval_token_sealed")? })
}

impl Store {
    /// An UpdateItem of the execution whose condition reads its status
    /// (`#status`; DynamoDB refuses names an expression does not use).
    fn execution_update(
        &self,
        scope: &TenantScope,
        id: Uuid,
    ) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(execution_key(scope, id)))
            .expression_attribute_names("#status", "status")
    }

    /// A new workflow (version 1), counted against
    /// [`MAX_WORKFLOWS_PER_TENANT`], audited.
    pub async fn create_workflow(
        &self,
        scope: &TenantScope,
        workflow: &Workflow,
        audit: &AuditContext,
    ) -> AppResult<()> {
        let mut tx = Tx::new();
        put_version(&mut tx, scope, workflow, None)?;
        let (count, expression) = tenant_counters(scope, &[(WORKFLOW_COUNTER.to_owned(), 1)]);
        tx.update(
            count
                .update_expression(expression)
                .condition_expression("attribute_exists(PK) AND (attribute_not_exists(#c0) OR #c0 < :max)")
                .expression_attribute_values(":max", n(MAX_WORKFLOWS_PER_TENANT)),
            Some(WORKFLOW_LIMIT),
        );
        tx.audit(
            scope,
            audit,
            Change::created(WORKFLOW_RESOURCE, workflow.id, workflow),
            self.audit_retention(scope).await?,
        );
        match tx.commit(self).await {
            Ok(()) => Ok(()),
            Err(TxError::Condition(WORKFLOW_LIMIT)) => Err(AppError::conflict(format!(
                "a tenant may have at most {MAX_WORKFLOWS_PER_TENANT} workflows; delete one first"
            ))
            .with_details(json!({"reason": "too_many_workflows", "max_workflows": MAX_WORKFLOWS_PER_TENANT}))),
            Err(e) => Err(e.into_app_error(WORKFLOW_RESOURCE)),
        }
    }

    pub async fn get_workflow(&self, scope: &TenantScope, id: Uuid) -> AppResult<Option<Workflow>> {
        self.get_as(workflow_key(scope, id)).await
    }

    /// The definition as it was at `version` (what an execution runs).
    pub async fn get_workflow_version(
        &self,
        scope: &TenantScope,
        id: Uuid,
        version: i64,
    ) -> AppResult<Option<Workflow>> {
        self.get_as(version_key(scope, id, version)).await
    }

    /// The tenant's workflows in creation order, one page.
    pub async fn list_workflows(
        &self,
        scope: &TenantScope,
        page: &PageRequest,
    ) -> AppResult<(Vec<Workflow>, Option<String>)> {
        let query = self.prefix_query(scope, "WORKFLOW#").consistent_read(true);
        let context = format!("workflows|{}", scope.pk());
        self.list_page(query, page, &context).await
    }

    /// Saves `new` as the version after `old` if nobody saved one since;
    /// false when someone did (the caller answers 409).
    pub async fn update_workflow(
        &self,
        scope: &TenantScope,
        old: &Workflow,
        new: &Workflow,
        audit: &AuditContext,
    ) -> AppResult<bool> {
        let mut tx = Tx::new();
        // An unchanged trigger's entry is put again below, and one
        // transaction may not touch a key twice.
        if !(new.is_active && new.trigger.event_type() == old.trigger.event_type()) {
            drop_trigger(&mut tx, scope, old);
        }
        put_version(&mut tx, scope, new, Some(old.version))?;
        tx.audit(
            scope,
            audit,
            Change::updated(WORKFLOW_RESOURCE, new.id, old, new),
            self.audit_retention(scope).await?,
        );
        match tx.commit(self).await {
            Ok(()) => Ok(true),
            Err(TxError::Condition(WORKFLOW_CHANGED)) => Ok(false),
            Err(e) => Err(e.into_app_error(WORKFLOW_RESOURCE)),
        }
    }

    /// Deletes the workflow and its trigger; its version snapshots stay, so
    /// the executions that ran them can still be read (the snapshots do not
    /// expire; executions do, after 90 days). False when it
    /// changed or went meanwhile.
    pub async fn delete_workflow(
        &self,
        scope: &TenantScope,
        workflow: &Workflow,
        audit: &AuditContext,
    ) -> AppResult<bool> {
        let mut tx = Tx::new();
        tx.delete(
            Delete::builder()
                .set_key(Some(workflow_key(scope, workflow.id)))
                .condition_expression("version = :expected")
                .expression_attribute_values(":expected", n(workflow.version)),
            Some(WORKFLOW_CHANGED),
        );
        drop_trigger(&mut tx, scope, workflow);
        let (count, expression) = tenant_counters(scope, &[(WORKFLOW_COUNTER.to_owned(), -1)]);
        tx.update(count.update_expression(expression), None);
        tx.audit(
            scope,
            audit,
            Change::deleted(WORKFLOW_RESOURCE, workflow.id, workflow),
            self.audit_retention(scope).await?,
        );
        match tx.commit(self).await {
            Ok(()) => Ok(true),
            Err(TxError::Condition(WORKFLOW_CHANGED)) => Ok(false),
            Err(e) => Err(e.into_app_error(WORKFLOW_RESOURCE)),
        }
    }

    /// The active workflows an event of `event_type` starts.
    pub async fn workflows_triggered_by(&self, scope: &TenantScope, event_type: &str) -> AppResult<Vec<Uuid>> {
        let query = self.prefix_query(scope, format!("WFTRIGGER#{event_type}#")).projection_expression("workflow_id");
        Ok(self
            .query_all(query)
            .await?
            .iter()
            .filter_map(|item| item.get("workflow_id")?.as_s().ok().and_then(|id| Uuid::parse_str(id).ok()))
            .collect())
    }

    /// Stores a new execution; false when one with its id exists (an event
    /// delivered twice starts its workflows once).
    pub async fn create_execution(&self, scope: &TenantScope, execution: &Execution) -> AppResult<bool> {
        let mut item = to_item(execution)?;
        item.extend(execution_key(scope, execution.id));
        item.insert("GSI2PK".into(), s(executions_partition(scope, execution.workflow_id)));
        item.insert("GSI2SK".into(), s(execution.id.to_string()));
        item.insert("expires_at".into(), expires_at());
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(PK)")
            .send()
            .await;
        super::applied(put)
    }

    pub async fn get_execution(&self, scope: &TenantScope, id: Uuid) -> AppResult<Option<Execution>> {
        self.get_as(execution_key(scope, id)).await
    }

    /// A workflow's executions, newest first, one page.
    pub async fn list_executions(
        &self,
        scope: &TenantScope,
        workflow_id: Uuid,
        status: Option<ExecutionStatus>,
        page: &PageRequest,
    ) -> AppResult<(Vec<Execution>, Option<String>)> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name("GSI2")
            .key_condition_expression("GSI2PK = :pk")
            .expression_attribute_values(":pk", s(executions_partition(scope, workflow_id)))
            .scan_index_forward(false);
        let query = super::filter_equal(query, &[("status", status.map(|st| s(st.as_str())))], &[]);
        let context = format!("workflow-executions|{}|{workflow_id}|{status:?}", scope.pk());
        let (items, cursor) = self.query_page(query, page, &context, &["PK", "SK", "GSI2PK", "GSI2SK"]).await?;
        Ok((super::decode_listed(items), cursor))
    }

    /// Records one run of a step (a redelivery rewrites the same run).
    pub async fn put_step_run(&self, scope: &TenantScope, execution_id: Uuid, run: &StepRun) -> AppResult<()> {
        let mut item = to_item(run)?;
        item.extend(step_run_key(scope, execution_id, run.visit));
        item.insert("expires_at".into(), expires_at());
        self.client.put_item().table_name(&self.table).set_item(Some(item)).send().await?;
        Ok(())
    }

    pub async fn get_step_run(
        &self,
        scope: &TenantScope,
        execution_id: Uuid,
        visit: i64,
    ) -> AppResult<Option<StepRun>> {
        self.get_as(step_run_key(scope, execution_id, visit)).await
    }

    /// Every run of the execution's steps, in order (at most
    /// `domain::workflow::MAX_VISITS`).
    pub async fn step_runs(&self, scope: &TenantScope, execution_id: Uuid) -> AppResult<Vec<StepRun>> {
        let query = self.prefix_query(scope, format!("WFSTEP#{execution_id}#")).consistent_read(true);
        Ok(super::decode_listed(self.query_all(query).await?))
    }

    /// The execution moves on to `step` (still `running`); false when it
    /// is final or waits for an approval (cancelled meanwhile, say).
    pub async fn execution_at_step(&self, scope: &TenantScope, id: Uuid, step: &str) -> AppResult<bool> {
        let update = self
            .execution_update(scope, id)
            .update_expression("SET current_step = :step")
            .condition_expression("#status = :running")
            .expression_attribute_values(":running", s(ExecutionStatus::Running.as_str()))
            .expression_attribute_values(":step", s(step))
            .send()
            .await;
        super::applied(update)
    }

    /// The execution waits for `approval`, its task token sealed beside
    /// it; false unless it was `running`.
    pub async fn wait_for_approval(
        &self,
        scope: &TenantScope,
        id: Uuid,
        approval: &PendingApproval,
        token: &Sealed,
    ) -> AppResult<bool> {
        let update = self
            .execution_update(scope, id)
            .update_expression(
                "SET #status = :waiting, approval = :approval, current_step = :step, \
                 approval_token_nonce = :nonce, approval_token_sealed = :sealed",
            )
            .condition_expression("#status = :running")
            .expression_attribute_values(":running", s(ExecutionStatus::Running.as_str()))
            .expression_attribute_values(":waiting", s(ExecutionStatus::WaitingApproval.as_str()))
            .expression_attribute_values(
                ":approval",
                super::to_attribute(&serde_json::to_value(approval).map_err(AppError::internal)?)?,
            )
            .expression_attribute_values(":step", s(&approval.step))
            .expression_attribute_values(":nonce", AttributeValue::B(Blob::new(token.nonce.clone())))
            .expression_attribute_values(":sealed", AttributeValue::B(Blob::new(token.ciphertext.clone())))
            .send()
            .await;
        super::applied(update)
    }

    /// Takes the open approval of `step` for a decision: the execution is
    /// `running` again and the sealed token is handed over, exactly once
    /// (two concurrent decisions: one wins, the other gets `None`).
    pub async fn take_approval(&self, scope: &TenantScope, id: Uuid, step: &str) -> AppResult<Option<Sealed>> {
        let update = self
            .execution_update(scope, id)
            .update_expression("SET #status = :running REMOVE approval, approval_token_nonce, approval_token_sealed")
            .condition_expression("#status = :waiting AND approval.step = :step")
            .expression_attribute_values(":running", s(ExecutionStatus::Running.as_str()))
            .expression_attribute_values(":waiting", s(ExecutionStatus::WaitingApproval.as_str()))
            .expression_attribute_values(":step", s(step))
            .return_values(ReturnValue::AllOld)
            .send()
            .await;
        match update {
            Ok(output) => Ok(output.attributes.as_ref().and_then(sealed_token)),
            Err(err) if condition_failed(&err) => Ok(None),
            Err(err) => Err(err.into()),
        }
    }

    /// Ends the execution with `status` (final) unless it already ended;
    /// a failure or timeout emits `workflow.execution.failed` in the same
    /// transaction. False when it had already ended.
    pub async fn finish_execution(
        &self,
        scope: &TenantScope,
        execution: &Execution,
        workflow_name: &str,
        status: ExecutionStatus,
        error: Option<&ExecutionError>,
    ) -> AppResult<bool> {
        self.finish_execution_settling(scope, execution, workflow_name, status, error, None).await
    }

    /// [`Self::finish_execution`], recording `run` (the step run the finish
    /// settles, a timed-out approval say) in the same transaction: nobody
    /// reads the execution ended while its step still looks in progress.
    pub async fn finish_execution_settling(
        &self,
        scope: &TenantScope,
        execution: &Execution,
        workflow_name: &str,
        status: ExecutionStatus,
        error: Option<&ExecutionError>,
        run: Option<&StepRun>,
    ) -> AppResult<bool> {
        let finals = [
            ExecutionStatus::Succeeded,
            ExecutionStatus::Failed,
            ExecutionStatus::Cancelled,
            ExecutionStatus::TimedOut,
        ];
        let mut update = Update::builder()
            .set_key(Some(execution_key(scope, execution.id)))
            .update_expression(
                "SET #status = :status, ended_at = :now, #error = :error \
                 REMOVE approval, approval_token_nonce, approval_token_sealed",
            )
            .condition_expression("attribute_exists(PK) AND NOT #status IN (:f0, :f1, :f2, :f3)")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#error", "error")
            .expression_attribute_values(":status", s(status.as_str()))
            .expression_attribute_values(":now", s(now_rfc3339()))
            .expression_attribute_values(
                ":error",
                match error {
                    Some(error) => super::to_attribute(&serde_json::to_value(error).map_err(AppError::internal)?)?,
                    None => AttributeValue::Null(true),
                },
            );
        for (i, status) in finals.iter().enumerate() {
            update = update.expression_attribute_values(format!(":f{i}"), s(status.as_str()));
        }
        const ENDED: Cond = Cond("execution_ended");
        let mut tx = Tx::new();
        tx.update(update, Some(ENDED));
        if let Some(run) = run {
            let mut item = to_item(run)?;
            item.extend(step_run_key(scope, execution.id, run.visit));
            item.insert("expires_at".into(), expires_at());
            tx.put(item);
        }
        if matches!(status, ExecutionStatus::Failed | ExecutionStatus::TimedOut) {
            let error = error.cloned().unwrap_or(ExecutionError {
                code: "step_failed".into(),
                message: "the execution failed".into(),
                step: None,
            });
            let alert = Alert {
                id: workflow_alert_id(execution.id),
                kind: AlertKind::WorkflowFailed,
                status: AlertStatus::Open,
                subject_id: execution.id,
                subject_name: workflow_name.to_owned(),
                provider_id: None,
                workflow_id: Some(execution.workflow_id),
                message: format!("{}: {}", error.code, error.message),
                consecutive_failures: None,
                raised_at: now_rfc3339(),
                resolved_at: None,
                resolved_by: None,
            };
            tx.put(super::alerts::alert_item(scope, &alert)?);
            tx.emit(
                scope,
                Event::WorkflowExecutionFailed(WorkflowExecutionFailed {
                    workflow_id: execution.workflow_id,
                    workflow_name: workflow_name.to_owned(),
                    execution_id: execution.id,
                    status: status.as_str().to_owned(),
                    error_code: error.code,
                    error_message: error.message,
                    step: error.step,
                }),
            );
        }
        match tx.commit(self).await {
            Ok(()) => Ok(true),
            Err(TxError::Condition(ENDED)) => Ok(false),
            Err(e) => Err(e.into_app_error("workflow execution")),
        }
    }

    /// Where the execution's Step Functions run is recorded once started.
    pub async fn execution_started(&self, scope: &TenantScope, id: Uuid, arn: &str) -> AppResult<()> {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(execution_key(scope, id)))
            .update_expression("SET state_machine_execution = :arn")
            .condition_expression("attribute_exists(PK)")
            .expression_attribute_values(":arn", s(arn))
            .send()
            .await?;
        Ok(())
    }
}
