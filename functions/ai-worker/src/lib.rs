//! The ai-worker: consumes `ai.phase.requested` (outbox -> bus -> rule ->
//! SQS -> this function) and runs that one phase of an AI job
//! (`shared::domain::ai`, `shared::store::ai`):
//! - the phase is *claimed* first (conditional on the job being at that
//!   phase with no live lease), so a redelivery runs nothing twice; a worker
//!   that died mid-phase leaves a lease that runs out, and the redelivery
//!   runs the phase again (its output overwrites the same S3 key);
//! - a model phase asks the configured backend, up to [`MODEL_ATTEMPTS`]
//!   times while the failure is one that trying again can help (throttled,
//!   unavailable, a malformed answer); then, or at once on a refusal, the
//!   job fails and the credits of its unfinished phases come back;
//! - the phase's end moves the job on and emits the next phase's event in
//!   one transaction, so the chain cannot break between two phases;
//! - the security review scans the generated text and packaging zips it:
//!   generated code is read, never run.

pub mod backend;
pub mod local_model;

use std::io::Write;

use anyhow::{Context, Result, bail};
use aws_lambda_events::event::sqs::SqsMessage;
use backend::{ConfiguredBackend, ModelError, ModelRequest};
use shared::{
    auth::{TenantScope, proofs::OwnEvent},
    blobs::Blobs,
    domain::ai::{
        self, AiJob, CodeFigures, FileText, GeneratedFile, Phase, SYSTEM_PROMPT, parse_analysis, parse_files,
    },
    events::{Event, EventBridgeEnvelope},
    store::{
        Store,
        ai::{Claim, ModelCall, PhaseResult, artifact_key, phase_output_key},
    },
};
use uuid::Uuid;

/// How long a claim holds: twice the function's 120 s timeout, and well
/// under the queue's 720 s visibility, so a redelivery after a crash finds
/// it run out.
pub const LEASE_SECONDS: i64 = 240;
/// Model calls per phase before the job fails.
pub const MODEL_ATTEMPTS: u32 = 3;
/// Output budget of one model call.
const MAX_TOKENS: i32 = 4_096;

pub struct AiWorker {
    pub store: Store,
    pub blobs: Blobs,
    pub backend: ConfiguredBackend,
}

/// What handling one message did (for logs and tests).
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The phase finished and the job moved on (or completed).
    PhaseDone,
    /// The job failed on this phase (and was refunded).
    Failed(String),
    /// The phase was done before this delivery, or the job ended
    /// (cancelled) meanwhile.
    AlreadyDone,
}

impl shared::worker::Worker for AiWorker {
    type Outcome = Outcome;

    async fn handle(&self, message: &SqsMessage) -> Result<Outcome> {
        let body = message.body.as_deref().context("message has no body")?;
        let envelope: EventBridgeEnvelope = serde_json::from_str(body).context("body is not a domain event")?;
        let Event::AiPhaseRequested(request) = envelope.event()? else {
            bail!("unexpected event type {}", envelope.detail_type);
        };
        self.process(&OwnEvent::scope(&envelope)?, request.job_id, request.phase_index).await
    }
}

/// A phase's failure that ends the job (the others are retried by SQS).
struct JobFailure(String);

impl AiWorker {
    #[tracing::instrument(skip(self, scope), fields(tenant_id = %scope.tenant_id()))]
    pub async fn process(&self, scope: &TenantScope, job_id: Uuid, index: u32) -> Result<Outcome> {
        let lock = Uuid::new_v4().to_string();
        let now = chrono::Utc::now().timestamp();
        let job = match self
            .store
            .claim_ai_phase(scope, job_id, index, &lock, now, LEASE_SECONDS)
            .await
            .map_err(shared::AppError::into_anyhow)?
        {
            Claim::Claimed(job) => job,
            Claim::Done => return Ok(Outcome::AlreadyDone),
            Claim::Busy => bail!("job {job_id} is held by another worker; retrying later"),
            Claim::Missing => {
                tracing::warn!(%job_id, "an AI job that does not exist; dropping its phase");
                return Ok(Outcome::AlreadyDone);
            }
        };
        let phase = job.next_phase().with_context(|| format!("job {job_id} has no phase {index}"))?;
        match self.run(scope, &job, phase).await? {
            Ok(result) => {
                let moved = self
                    .store
                    .advance_ai_job(scope, &job, &lock, result)
                    .await
                    .map_err(shared::AppError::into_anyhow)?;
                Ok(if moved { Outcome::PhaseDone } else { Outcome::AlreadyDone })
            }
            Err(JobFailure(reason)) => {
                tracing::warn!(%job_id, phase = phase.name(), %reason, "AI job failed; refunding its unfinished phases");
                let ended =
                    self.store.fail_ai_job(scope, &job, &lock, &reason).await.map_err(shared::AppError::into_anyhow)?;
                Ok(if ended { Outcome::Failed(reason) } else { Outcome::AlreadyDone })
            }
        }
    }

    /// The phase's result, a [`JobFailure`], or an error to retry (our own
    /// infrastructure).
    async fn run(&self, scope: &TenantScope, job: &AiJob, phase: Phase) -> Result<Result<PhaseResult, JobFailure>> {
        let context = job.context.clone().context("the job has no context")?;
        let index = job.phase_index;
        match phase {
            Phase::SecurityReview => {
                let mut findings = Vec::new();
                for (_, files) in self.component_outputs(scope, job).await? {
                    for file in files {
                        findings.extend(ai::security_scan(&file.path, &file.content));
                    }
                }
                Ok(Ok(PhaseResult { security_findings: Some(findings), ..PhaseResult::default() }))
            }
            Phase::Packaging => {
                let outputs = self.component_outputs(scope, job).await?;
                let (zip, manifest) = package(&outputs)?;
                let key = artifact_key(scope, job.id);
                self.blobs.put(&key, zip, "application/zip").await.map_err(shared::AppError::into_anyhow)?;
                Ok(Ok(PhaseResult {
                    generated_files: Some(manifest),
                    artifact_key: Some(key),
                    ..PhaseResult::default()
                }))
            }
            model_phase => {
                let architecture = match model_phase {
                    Phase::Generate(_) => self.phase_output(scope, job, ai::ARCHITECTURE_DESIGN).await?,
                    _ => None,
                };
                let prompt = ai::phase_prompt(model_phase, &context, architecture.as_deref());
                let request = ModelRequest {
                    phase: model_phase,
                    system: SYSTEM_PROMPT,
                    prompt,
                    context: &context,
                    max_tokens: MAX_TOKENS,
                };
                self.model_phase(scope, job, index, &request).await
            }
        }
    }

    /// Asks the model (with retries), checks its answer and stores it.
    async fn model_phase(
        &self,
        scope: &TenantScope,
        job: &AiJob,
        index: u32,
        request: &ModelRequest<'_>,
    ) -> Result<Result<PhaseResult, JobFailure>> {
        let backend = self.backend.name();
        let mut last = None;
        let mut attempts = 0;
        for attempt in 0..MODEL_ATTEMPTS {
            attempts = attempt + 1;
            if attempt > 0 {
                back_off(attempt).await;
            }
            let started = std::time::Instant::now();
            let answered = self.backend.complete(request).await;
            self.record_call(&answered, started.elapsed()).await;
            let reply = match answered {
                Ok(reply) => reply,
                Err(err) => {
                    tracing::warn!(job_id = %job.id, attempt, error = %err, "model call failed");
                    let retry = err.retryable();
                    last = Some(err);
                    if retry {
                        continue;
                    }
                    break;
                }
            };
            let mut result = PhaseResult {
                input_tokens: reply.input_tokens,
                output_tokens: reply.output_tokens,
                latency_ms: reply.latency_ms,
                backend: Some(backend.to_owned()),
                model: Some(reply.model.clone()),
                ..PhaseResult::default()
            };
            // The answer must be what the phase asked for; a malformed one
            // is tried again like a failed call.
            let checked = match request.phase {
                Phase::TaskAnalysis => parse_analysis(&reply.text, backend, &reply.model).map(|a| {
                    result.analysis = Some(a);
                }),
                Phase::Generate(component) => parse_files(&reply.text).map(|files| {
                    let measured: Vec<GeneratedFile> =
                        files.iter().map(|f| ai::measure(component.as_str(), f)).collect();
                    result.figures = Some(CodeFigures::of(&measured));
                }),
                _ => ai::answer_object(&reply.text).map(|_| ()),
            };
            if let Err(ai::Malformed(why)) = checked {
                last = Some(ModelError::Malformed(why));
                continue;
            }
            let key = phase_output_key(scope, job.id, index, request.phase.name());
            self.blobs
                .put(&key, reply.text.into_bytes(), "application/json")
                .await
                .map_err(shared::AppError::into_anyhow)?;
            return Ok(Ok(result));
        }
        let why = last.map_or_else(|| "no answer".to_owned(), |e| e.to_string());
        Ok(Err(JobFailure(format!("{} failed after {attempts} attempt(s): {why}", request.phase.name()))))
    }

    /// Counts the call for the platform's health; a failure to count is
    /// logged, never the phase's failure.
    async fn record_call(&self, answered: &Result<backend::ModelReply, ModelError>, took: std::time::Duration) {
        let (outcome, error, model) = match answered {
            Ok(reply) => ("ok", None, reply.model.clone()),
            Err(err) => (err.outcome(), Some(err.to_string()), String::new()),
        };
        let call = ModelCall {
            backend: self.backend.name(),
            model: &model,
            outcome,
            error: error.as_deref(),
            latency_ms: took.as_millis() as i64,
        };
        if let Err(err) = self.store.record_model_call(&call).await {
            tracing::warn!(error = %err, "the model call could not be counted");
        }
    }

    /// A finished phase's stored answer, by phase name.
    async fn phase_output(&self, scope: &TenantScope, job: &AiJob, name: &str) -> Result<Option<String>> {
        let Some(index) = job.phases.iter().position(|p| p == name) else { return Ok(None) };
        let key = phase_output_key(scope, job.id, index as u32, name);
        let bytes = self.blobs.get(&key).await.map_err(shared::AppError::into_anyhow)?;
        Ok(bytes.map(|b| String::from_utf8_lossy(&b).into_owned()))
    }

    /// Every component phase's files, in the job's order.
    async fn component_outputs(&self, scope: &TenantScope, job: &AiJob) -> Result<Vec<(String, Vec<FileText>)>> {
        let mut outputs = Vec::new();
        for (index, phase) in job.phase_list().into_iter().enumerate() {
            let Phase::Generate(component) = phase else { continue };
            let key = phase_output_key(scope, job.id, index as u32, phase.name());
            let bytes = self
                .blobs
                .get(&key)
                .await
                .map_err(shared::AppError::into_anyhow)?
                .with_context(|| format!("the output of {} is missing", phase.name()))?;
            let files = parse_files(&String::from_utf8_lossy(&bytes))
                .map_err(|ai::Malformed(why)| anyhow::anyhow!("the stored output of {}: {why}", phase.name()))?;
            outputs.push((component.as_str().to_owned(), files));
        }
        Ok(outputs)
    }
}

/// The zip of every file (under `<component>/<path>`) and its manifest.
pub fn package(outputs: &[(String, Vec<FileText>)]) -> Result<(Vec<u8>, Vec<GeneratedFile>)> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    let mut manifest = Vec::new();
    for (component, files) in outputs {
        for file in files {
            zip.start_file(format!("{component}/{}", file.path), options)?;
            zip.write_all(file.content.as_bytes())?;
            manifest.push(ai::measure(component, file));
        }
    }
    Ok((zip.finish()?.into_inner(), manifest))
}

/// 200 ms, then 400 ms, with jitter: a throttled service gets room.
async fn back_off(attempt: u32) {
    use rand::Rng;
    let base = 200u64 << attempt.min(4);
    let ms = rand::thread_rng().gen_range(base / 2..=base);
    tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
}
