//! AI jobs: a task's analysis and code generations (`domain::ai`).
//!
//! | item | PK | SK | other keys | notes |
//! |---|---|---|---|---|
//! | job | `T#<tenant>#` | `AIJOB#<job>` | `GSI1PK=T#<tenant>#AIJOBS`, `GSI1SK=<job>` | kind, status, `phases`, `phase_index`, credits reserved/refunded, model calls and tokens, figures, manifest, `artifact_key`; `lock` + `lease_until` while a worker runs a phase |
//!
//! | the platform's model calls of a day | `PLATFORM#AI` | `DAY#<yyyy-mm-dd>` | | `calls`, `failures`, `latency_ms_sum` (ADD), the last call's `last_at`, `last_outcome`, `last_error`, `backend`, `model`; `expires_at` 30 days: what the platform health reports of the AI backend |
//!
//! Phase outputs and the zip are S3 objects under `tenants/<tenant>/ai/<job>/`.
//! Every state change is conditional on the state it leaves:
//! - create: the job, its first `ai.phase.requested` (outbox), the credit
//!   spend of its whole price, a check that this month's `ai_requests` leave
//!   room for its model calls under `ai_requests_monthly`, the audit entry
//!   (and for `POST /v1/tasks`, the task) in ONE transaction;
//! - claim (worker): `phase_index = i` and the job not final and no live
//!   lease -> a fresh lock and lease (`queued` becomes `in_progress`);
//! - advance: under our lock at `phase_index = i` -> `i + 1`, its figures,
//!   one `ai_requests` metered for a model phase, its progress event and
//!   either the next `ai.phase.requested` or the final status with its
//!   event (and the task's analysis), in one transaction;
//! - fail (under our lock) / cancel (`phase_index` as read): the final
//!   status, the refund of [`AiJob::refund_due`] with the reference
//!   `ai:<job>` (one refund per job, whoever asks), the event.

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, Update, builders::UpdateBuilder};
use uuid::Uuid;

use super::{
    Item, Store, condition_failed,
    credits::CreditError,
    from_item, item_key as key, n, s, to_item,
    tx::{Cond, Tx, TxError},
};
use crate::{
    auth::TenantScope,
    domain::{
        ai::{AiAnalysis, AiJob, AnalysisStatus, CodeFigures, GeneratedFile, JobKind, JobStatus, SecurityFinding},
        audit::{AuditContext, Change},
        now_rfc3339,
        project::Task,
    },
    error::{AppError, AppResult},
    events::{
        Event,
        catalogue::{AiGenerationProgress, AiJobFinished, AiPhaseRequested},
    },
    store::PageRequest,
};

pub const AI_JOB_RESOURCE: &str = "ai_job";

/// The job is no longer where the change expects it (another change moved it).
const JOB_MOVED: Cond = Cond("ai_job_moved");
/// The task a generation names does not exist.
const TASK_MISSING: Cond = Cond("task_missing");
/// The analysed task went between our read and the commit (the worker's
/// retry then finds it gone and ends the job without it).
const TASK_GONE: Cond = Cond("analysed_task_gone");
/// This month's `ai_requests` leave no room for the job's model calls.
const AI_QUOTA_FULL: Cond = Cond("ai_requests_monthly_full");

fn job_sk(id: Uuid) -> String {
    format!("AIJOB#{id}")
}

fn job_key(scope: &TenantScope, id: Uuid) -> Item {
    key(scope, job_sk(id))
}

fn jobs_index_pk(scope: &TenantScope) -> String {
    format!("{}AIJOBS", scope.pk())
}

/// The reference of a job's credits: its spend and its one refund.
pub fn credit_reference(job_id: Uuid) -> String {
    format!("ai:{job_id}")
}

/// Where a phase's output goes (overwritten by a rerun of the phase).
pub fn phase_output_key(scope: &TenantScope, job_id: Uuid, index: u32, phase: &str) -> String {
    format!("{}ai/{job_id}/phases/{index:02}-{phase}.json", crate::blobs::tenant_prefix(scope))
}

/// Where a generation's zip goes.
pub fn artifact_key(scope: &TenantScope, job_id: Uuid) -> String {
    format!("{}ai/{job_id}/generated-code.zip", crate::blobs::tenant_prefix(scope))
}

/// Why a job could not be created.
#[derive(Debug)]
pub enum CreateJobError {
    Credits(CreditError),
    /// `ai_requests_monthly` would be passed: (used or unknown, limit).
    QuotaFull {
        limit: i64,
        needed: i64,
    },
    Other(AppError),
}

impl From<CreateJobError> for AppError {
    fn from(err: CreateJobError) -> Self {
        match err {
            CreateJobError::Credits(err) => err.into(),
            CreateJobError::QuotaFull { limit, needed } => AppError::forbidden(
                "quota_exceeded",
                format!(
                    "this job makes {needed} AI requests and this month's ai_requests_monthly limit ({limit}) leaves no room for them"
                ),
            )
            .with_details(serde_json::json!({"quota_type": "ai_requests_monthly", "plan_limit": limit, "requested_increase": needed})),
            CreateJobError::Other(err) => err,
        }
    }
}

impl From<AppError> for CreateJobError {
    fn from(err: AppError) -> Self {
        CreateJobError::Other(err)
    }
}

/// What a worker's claim of a phase found.
#[derive(Debug)]
pub enum Claim {
    Claimed(Box<AiJob>),
    /// The phase is done, or the job ended: nothing to do.
    Done,
    /// Another worker holds the job and its lease runs.
    Busy,
    Missing,
}

/// What one finished phase adds to its job.
#[derive(Debug, Default, Clone)]
pub struct PhaseResult {
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub latency_ms: i64,
    pub backend: Option<String>,
    pub model: Option<String>,
    /// Files a component phase generated (their figures are added).
    pub figures: Option<CodeFigures>,
    pub security_findings: Option<Vec<SecurityFinding>>,
    pub generated_files: Option<Vec<GeneratedFile>>,
    pub artifact_key: Option<String>,
    /// An analysis job's answer, written onto its task.
    pub analysis: Option<AiAnalysis>,
}

impl Store {
    /// Creates a generation for an existing task.
    pub async fn create_generation(
        &self,
        scope: &TenantScope,
        job: &AiJob,
        audit: &AuditContext,
    ) -> Result<(), CreateJobError> {
        let mut tx = Tx::new();
        tx.check(
            aws_sdk_dynamodb::types::ConditionCheck::builder()
                .set_key(Some(super::projects::task_key(scope, job.project_id, job.task_id)))
                .condition_expression("attribute_exists(PK)"),
            TASK_MISSING,
        );
        self.create_job(scope, job, audit, tx).await
    }

    /// `POST /v1/tasks`: the task (counted on its project) and its analysis
    /// job, in one transaction.
    pub async fn create_task_with_analysis(
        &self,
        scope: &TenantScope,
        task: &Task,
        job: &AiJob,
        audit: &AuditContext,
    ) -> Result<(), CreateJobError> {
        let retention = self.audit_retention(scope).await?;
        let tx = super::projects::create_task_tx(scope, task, audit, retention)?;
        self.create_job(scope, job, audit, tx).await
    }

    async fn create_job(
        &self,
        scope: &TenantScope,
        job: &AiJob,
        audit: &AuditContext,
        mut tx: Tx,
    ) -> Result<(), CreateJobError> {
        let tenant = self.tenant_for_change(scope).await?;
        let retention = crate::domain::audit::retention_days_of(&tenant.configuration);
        let needed = job.credits_reserved;
        let limit = crate::domain::plans::effective_limits(&tenant).ai_requests_monthly;
        if let Some(limit) = limit {
            if needed > limit {
                return Err(CreateJobError::QuotaFull { limit, needed });
            }
            tx.check(
                super::billing::period_at_most(scope, "ai_requests", limit - needed, chrono::Utc::now()),
                AI_QUOTA_FULL,
            );
        }
        let mut item = to_item(job)?;
        item.extend(job_key(scope, job.id));
        item.insert("GSI1PK".into(), s(jobs_index_pk(scope)));
        item.insert("GSI1SK".into(), s(job.id.to_string()));
        tx.put_new(item, Cond::UNIQUE_ID);
        tx.emit(scope, Event::AiPhaseRequested(AiPhaseRequested { job_id: job.id, phase_index: 0 }));
        tx.audit(scope, audit, Change::created(AI_JOB_RESOURCE, job.id, job_summary(job)), retention);
        let reason = format!("AI {} {} ({} model calls)", job.kind, job.id, job.credits_reserved);
        match self.spend_credits_with(scope, job.credits_reserved, &reason, &credit_reference(job.id), audit, tx).await
        {
            Ok(_) => Ok(()),
            Err(CreditError::PreconditionFailed(AI_QUOTA_FULL)) => {
                Err(CreateJobError::QuotaFull { limit: limit.unwrap_or_default(), needed })
            }
            Err(CreditError::PreconditionFailed(TASK_MISSING)) => Err(AppError::not_found("task").into()),
            Err(CreditError::PreconditionFailed(cond)) => {
                Err(super::projects::task_create_error(TxError::Condition(cond)).into())
            }
            Err(other) => Err(CreateJobError::Credits(other)),
        }
    }

    pub async fn get_ai_job(&self, scope: &TenantScope, id: Uuid) -> AppResult<Option<AiJob>> {
        self.get_as(job_key(scope, id)).await
    }

    /// The tenant's jobs of one kind, newest last, one page.
    pub async fn list_ai_jobs(
        &self,
        scope: &TenantScope,
        kind: JobKind,
        status: Option<&str>,
        page: &PageRequest,
    ) -> AppResult<(Vec<AiJob>, Option<String>)> {
        let pk = jobs_index_pk(scope);
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name("GSI1")
            .key_condition_expression("GSI1PK = :pk")
            .expression_attribute_values(":pk", s(&pk));
        let query = super::filter_equal(query, &[("kind", Some(s(kind.as_str()))), ("status", status.map(s))], &[]);
        let context = format!("aijobs|{pk}|{kind}|{}", status.unwrap_or(""));
        let (items, cursor) = self.query_page(query, page, &context, &["GSI1PK", "GSI1SK", "PK", "SK"]).await?;
        Ok((super::decode_listed(items), cursor))
    }

    /// Takes phase `index` of a job (see the module docs).
    pub async fn claim_ai_phase(
        &self,
        scope: &TenantScope,
        id: Uuid,
        index: u32,
        lock: &str,
        now: i64,
        lease_seconds: i64,
    ) -> AppResult<Claim> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(job_key(scope, id)))
            .update_expression("SET #status = :running, #lock = :lock, lease_until = :lease, updated_at = :at")
            .condition_expression(
                "attribute_exists(PK) AND #status IN (:queued, :running) AND phase_index = :index \
                 AND (attribute_not_exists(lease_until) OR lease_until < :now)",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#lock", "lock")
            .expression_attribute_values(":running", s(JobStatus::InProgress.as_str()))
            .expression_attribute_values(":queued", s(JobStatus::Queued.as_str()))
            .expression_attribute_values(":lock", s(lock))
            .expression_attribute_values(":lease", n(now + lease_seconds))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":index", n(index as i64))
            .expression_attribute_values(":at", s(now_rfc3339()))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(output) => {
                let item = output.attributes.ok_or_else(|| AppError::internal(anyhow::anyhow!("claim without job")))?;
                Ok(Claim::Claimed(Box::new(from_item(item)?)))
            }
            Err(err) if condition_failed(&err) => Ok(match self.get_ai_job(scope, id).await? {
                None => Claim::Missing,
                Some(job) if job.is_final() || job.phase_index > index => Claim::Done,
                Some(job) if job.phase_index < index => {
                    return Err(AppError::internal(anyhow::anyhow!(
                        "phase {index} of {id} asked before phase {}",
                        job.phase_index
                    )));
                }
                Some(_) => Claim::Busy,
            }),
            Err(err) => Err(err.into()),
        }
    }

    /// Records a finished phase under our lock and moves the job on (see
    /// the module docs); false when the lock was lost or the job cancelled.
    pub async fn advance_ai_job(
        &self,
        scope: &TenantScope,
        job: &AiJob,
        lock: &str,
        result: PhaseResult,
    ) -> AppResult<bool> {
        let index = job.phase_index;
        let phases = job.phase_list();
        let Some(phase) = phases.get(index as usize).copied() else {
            return Err(AppError::internal(anyhow::anyhow!("job {} has no phase {index}", job.id)));
        };
        let last = index as usize + 1 == phases.len();
        let now = now_rfc3339();
        let mut sets =
            vec!["phase_index = :next".to_owned(), "updated_at = :now".to_owned(), "lease_until = :zero".to_owned()];
        let mut adds = Vec::new();
        let mut values: Vec<(&str, AttributeValue)> = vec![
            (":next", n(index as i64 + 1)),
            (":now", s(&now)),
            (":zero", n(0)),
            (":index", n(index as i64)),
            (":lock", s(lock)),
            (":running", s(JobStatus::InProgress.as_str())),
        ];
        if phase.calls_model() {
            adds.push("model_calls :one, input_tokens :tin, output_tokens :tout, model_latency_ms :lat");
            values.extend([
                (":one", n(1)),
                (":tin", n(result.input_tokens)),
                (":tout", n(result.output_tokens)),
                (":lat", n(result.latency_ms)),
            ]);
        }
        if let Some(backend) = &result.backend {
            sets.push("backend = :backend".into());
            values.push((":backend", s(backend)));
        }
        if let Some(model) = &result.model {
            sets.push("model = :model".into());
            values.push((":model", s(model)));
        }
        if let Some(figures) = &result.figures {
            // Whole-map SET: the figures so far plus this phase's (the job
            // as claimed is the state this change is conditioned on).
            let mut total = job.figures.clone();
            total.files += figures.files;
            total.lines_of_code += figures.lines_of_code;
            total.functions += figures.functions;
            total.classes += figures.classes;
            total.test_cases += figures.test_cases;
            sets.push("figures = :figures".into());
            values.push((":figures", to_attr(&total)?));
        }
        if let Some(findings) = &result.security_findings {
            sets.push("security_findings = :findings".into());
            values.push((":findings", to_attr(findings)?));
        }
        if let Some(files) = &result.generated_files {
            sets.push("generated_files = :files".into());
            values.push((":files", to_attr(files)?));
        }
        if let Some(artifact) = &result.artifact_key {
            sets.push("artifact_key = :artifact".into());
            values.push((":artifact", s(artifact)));
        }
        if last {
            sets.push("#status = :final".into());
            sets.push("completed_at = :now".into());
            values.push((":final", s(JobStatus::Completed.as_str())));
        }
        let mut expression = format!("SET {}", sets.join(", "));
        if !adds.is_empty() {
            expression.push_str(&format!(" ADD {}", adds.join(", ")));
        }
        expression.push_str(" REMOVE #lock");
        let mut update = Update::builder()
            .set_key(Some(job_key(scope, job.id)))
            .update_expression(expression)
            .condition_expression("#status = :running AND #lock = :lock AND phase_index = :index")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#lock", "lock");
        for (name, value) in values {
            update = update.expression_attribute_values(name, value);
        }
        let mut tx = Tx::new();
        tx.update(update, Some(JOB_MOVED));
        if phase.calls_model() {
            super::billing::meter_in(&mut tx, scope, "ai_requests", rust_decimal::Decimal::ONE, chrono::Utc::now());
        }
        let mut moved = job.clone();
        moved.phase_index = index + 1;
        if job.kind == JobKind::Generation {
            tx.emit(
                scope,
                Event::AiGenerationProgress(AiGenerationProgress {
                    generation_id: job.id,
                    task_id: job.task_id,
                    phase: phase.name().to_owned(),
                    overall_percentage: moved.progress().overall_percentage,
                    phases_completed: index + 1,
                    phases_total: phases.len() as u32,
                }),
            );
        }
        if last {
            moved.status = JobStatus::Completed;
            // A task deleted meanwhile just does not get its analysis.
            if let Some(analysis) = &result.analysis
                && self.task_still_there(scope, job).await?
            {
                tx.update(
                    task_analysis_update(scope, job, AnalysisStatus::Completed, Some(analysis))?,
                    Some(TASK_GONE),
                );
            }
            tx.emit(scope, finished_event(&moved, None));
        } else {
            tx.emit(scope, Event::AiPhaseRequested(AiPhaseRequested { job_id: job.id, phase_index: index + 1 }));
        }
        match tx.commit(self).await {
            Ok(()) => Ok(true),
            Err(TxError::Condition(JOB_MOVED)) => Ok(false),
            Err(other) => Err(other.into_app_error(AI_JOB_RESOURCE)),
        }
    }

    /// The worker gives up on a job it holds: `failed`, and the credits of
    /// its unfinished model phases back. False when the lock was lost.
    pub async fn fail_ai_job(&self, scope: &TenantScope, job: &AiJob, lock: &str, error: &str) -> AppResult<bool> {
        let audit = AuditContext::system("ai-worker");
        self.end_ai_job(scope, job, JobStatus::Failed, Some(lock), Some(error), &audit).await
    }

    /// Cancels a job that has not ended: `cancelled`, and the credits of its
    /// unfinished model phases back. `Ok(None)` when it had already ended.
    pub async fn cancel_ai_job(&self, scope: &TenantScope, id: Uuid, audit: &AuditContext) -> AppResult<Option<AiJob>> {
        // A phase finishing between the read and the cancel moves
        // `phase_index`: read again (each retry means a phase was done).
        for _ in 0..20 {
            let Some(job) = self.get_ai_job(scope, id).await? else { return Err(AppError::not_found(AI_JOB_RESOURCE)) };
            if job.is_final() {
                return Ok(None);
            }
            if self.end_ai_job(scope, &job, JobStatus::Cancelled, None, None, audit).await? {
                return self.get_ai_job(scope, id).await;
            }
        }
        Err(AppError::conflict("the job kept moving while it was being cancelled; try again"))
    }

    async fn end_ai_job(
        &self,
        scope: &TenantScope,
        job: &AiJob,
        to: JobStatus,
        lock: Option<&str>,
        error: Option<&str>,
        audit: &AuditContext,
    ) -> AppResult<bool> {
        let refund = job.refund_due();
        let now = now_rfc3339();
        let mut update = Update::builder()
            .set_key(Some(job_key(scope, job.id)))
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#lock", "lock")
            .expression_attribute_names("#error", "error")
            .expression_attribute_values(":to", s(to.as_str()))
            .expression_attribute_values(":now", s(&now))
            .expression_attribute_values(":refund", n(refund))
            .expression_attribute_values(":index", n(job.phase_index as i64))
            .expression_attribute_values(":error", error.map_or(AttributeValue::Null(true), s))
            .update_expression(
                "SET #status = :to, completed_at = :now, updated_at = :now, credits_refunded = :refund, \
                 #error = :error REMOVE #lock, lease_until",
            );
        update = match lock {
            Some(lock) => update
                .condition_expression("#status = :running AND #lock = :lock AND phase_index = :index")
                .expression_attribute_values(":running", s(JobStatus::InProgress.as_str()))
                .expression_attribute_values(":lock", s(lock)),
            None => update
                .condition_expression("#status IN (:queued, :running) AND phase_index = :index")
                .expression_attribute_values(":queued", s(JobStatus::Queued.as_str()))
                .expression_attribute_values(":running", s(JobStatus::InProgress.as_str())),
        };
        let mut ended = job.clone();
        ended.status = to;
        ended.credits_refunded = refund;
        ended.error = error.map(str::to_owned);
        let mut tx = Tx::new();
        tx.update(update, Some(JOB_MOVED));
        if job.kind == JobKind::Analysis && self.task_still_there(scope, job).await? {
            tx.update(task_analysis_update(scope, job, AnalysisStatus::Failed, None)?, Some(TASK_GONE));
        }
        tx.emit(scope, finished_event(&ended, error));
        if to == JobStatus::Cancelled {
            let retention = self.audit_retention(scope).await?;
            tx.audit(
                scope,
                audit,
                Change::updated(AI_JOB_RESOURCE, job.id, job_summary(job), job_summary(&ended)),
                retention,
            );
        }
        if refund == 0 {
            return match tx.commit(self).await {
                Ok(()) => Ok(true),
                Err(TxError::Condition(JOB_MOVED)) => Ok(false),
                Err(other) => Err(other.into_app_error(AI_JOB_RESOURCE)),
            };
        }
        let reason = format!("AI {} {} {}", job.kind, job.id, to);
        match self.refund_credits_with(scope, refund, &reason, &credit_reference(job.id), audit, tx).await {
            // The end commits with the refund or not at all: a refund that
            // was an earlier call's means the end was too.
            Ok(refunded) => Ok(refunded.made_by_this_call),
            Err(CreditError::PreconditionFailed(JOB_MOVED)) => Ok(false),
            Err(CreditError::PreconditionFailed(cond)) => Err(TxError::Condition(cond).into_app_error(AI_JOB_RESOURCE)),
            Err(CreditError::Insufficient { .. }) => Err(AppError::internal(anyhow::anyhow!("a refund was refused"))),
            Err(CreditError::Other(e)) => Err(e),
        }
    }

    async fn task_still_there(&self, scope: &TenantScope, job: &AiJob) -> AppResult<bool> {
        Ok(self.get_task(scope, job.project_id, job.task_id).await?.is_some())
    }
}

const MODEL_CALLS_PK: &str = "PLATFORM#AI";

fn model_calls_key(day: &str) -> Item {
    super::platform_key(MODEL_CALLS_PK, format!("DAY#{day}"))
}

/// One model call as the worker saw it, for the platform's health.
#[derive(Debug, Clone)]
pub struct ModelCall<'a> {
    pub backend: &'a str,
    pub model: &'a str,
    /// `ok`, or the failure's class (`throttled`, `unavailable`,
    /// `malformed`, `refused`).
    pub outcome: &'a str,
    pub error: Option<&'a str>,
    pub latency_ms: i64,
}

impl Store {
    /// Counts a model call in today's platform item (one UpdateItem per
    /// model call, which takes seconds: noise next to it).
    pub async fn record_model_call(&self, call: &ModelCall<'_>) -> AppResult<()> {
        let now = chrono::Utc::now();
        let day = now.format("%Y-%m-%d").to_string();
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(model_calls_key(&day)))
            .update_expression(
                "ADD calls :one, failures :failed, latency_ms_sum :latency \
                 SET last_at = :at, last_outcome = :outcome, last_error = :error, backend = :backend, \
                 model = :model, expires_at = :ttl",
            )
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":failed", n(i64::from(call.outcome != "ok")))
            .expression_attribute_values(":latency", n(call.latency_ms))
            .expression_attribute_values(":at", s(crate::domain::rfc3339(now)))
            .expression_attribute_values(":outcome", s(call.outcome))
            .expression_attribute_values(":error", call.error.map_or(AttributeValue::Null(true), s))
            .expression_attribute_values(":backend", s(call.backend))
            .expression_attribute_values(":model", s(call.model))
            .expression_attribute_values(":ttl", n(now.timestamp() + 30 * 86_400))
            .send()
            .await?;
        Ok(())
    }

    /// Today's model calls (UTC), if any.
    pub async fn model_calls_today(&self) -> AppResult<Option<crate::domain::ai::ModelCallsDay>> {
        let day = chrono::Utc::now().format("%Y-%m-%d").to_string();
        self.get_as(model_calls_key(&day)).await
    }
}

fn to_attr<T: serde::Serialize>(value: &T) -> AppResult<AttributeValue> {
    serde_dynamo::to_attribute_value(value).map_err(|e| AppError::internal(anyhow::anyhow!("{e}")))
}

/// The task's analysis fields, for an analysis job's end.
fn task_analysis_update(
    scope: &TenantScope,
    job: &AiJob,
    status: AnalysisStatus,
    analysis: Option<&AiAnalysis>,
) -> AppResult<UpdateBuilder> {
    let mut update = Update::builder()
        .set_key(Some(super::projects::task_key(scope, job.project_id, job.task_id)))
        // A task deleted meanwhile keeps nothing of its analysis.
        .condition_expression("attribute_exists(PK)")
        .expression_attribute_values(":status", s(status.as_str()))
        .expression_attribute_values(":now", s(now_rfc3339()));
    update = match analysis {
        Some(analysis) => update
            .update_expression("SET analysis_status = :status, ai_analysis = :analysis, updated_at = :now")
            .expression_attribute_values(":analysis", to_attr(analysis)?),
        None => update.update_expression("SET analysis_status = :status, updated_at = :now"),
    };
    Ok(update)
}

fn finished_event(job: &AiJob, error: Option<&str>) -> Event {
    let finished = AiJobFinished {
        job_id: job.id,
        kind: job.kind.as_str().to_owned(),
        task_id: job.task_id,
        project_id: job.project_id,
        status: job.status.as_str().to_owned(),
        phases_completed: job.phase_index,
        credits_charged: job.credits_reserved - job.credits_refunded,
        credits_refunded: job.credits_refunded,
        error: error.map(str::to_owned),
    };
    match (job.kind, job.status) {
        (JobKind::Analysis, JobStatus::Completed) => Event::AiAnalysisCompleted(finished),
        (JobKind::Analysis, _) => Event::AiAnalysisFailed(finished),
        (JobKind::Generation, JobStatus::Completed) => Event::AiGenerationCompleted(finished),
        (JobKind::Generation, JobStatus::Cancelled) => Event::AiGenerationCancelled(finished),
        (JobKind::Generation, _) => Event::AiGenerationFailed(finished),
    }
}

/// What an audit entry records of a job (no generated content).
fn job_summary(job: &AiJob) -> serde_json::Value {
    serde_json::json!({
        "kind": job.kind, "status": job.status, "task_id": job.task_id, "project_id": job.project_id,
        "phases": job.phases, "phase_index": job.phase_index,
        "credits_reserved": job.credits_reserved, "credits_refunded": job.credits_refunded,
    })
}
