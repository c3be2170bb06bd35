//! The ai route group (seed 000 scenario 5): code generation jobs for a
//! task, their progress and their output. A job is priced and paid when it
//! is created (one credit per model call, `shared::domain::ai`), then run one
//! phase at a time by the ai-worker (outbox -> bus -> rule -> queue); a task's
//! analysis (`POST /v1/tasks`, the projects group) is a job of the same kind.
//!
//! | route | handler | who |
//! |---|---|---|
//! | `POST /v1/ai/generate-code` | [`generate_code`] | developer, or key `ai:write` |
//! | `GET /v1/ai/generations` | [`list_generations`] | any member, or key `ai:read` |
//! | `GET /v1/ai/generation-status/{id}` | [`generation_status`] | any member, or key `ai:read` |
//! | `GET /v1/ai/generated-code/{id}` | [`generated_code`] | any member, or key `ai:read` |
//! | `POST /v1/ai/generations/{id}/cancel` | [`cancel_generation`] | developer, or key `ai:write` |

use std::{collections::BTreeMap, time::Duration};

use axum::{
    Json, Router,
    extract::State,
    http::StatusCode,
    routing::{get, post},
};
use serde::Serialize;
use serde_json::Value;
use shared::{
    AppError, AppResult, AppState,
    audit::AuditContext,
    auth::{Principal, Role, Scope},
    domain::{
        ai::{
            self, AiJob, CodeFigures, Component, GeneratedFile, GenerationType, JobContext, JobKind, JobStatus,
            Progress, SecurityFinding,
        },
        ids::{GenerationId, TaskId},
    },
    error::FieldError,
    http::Page,
    store::ai::AI_JOB_RESOURCE,
    web::{
        extract::{Body, ListQuery, PathIds},
        openapi::ApiError,
    },
};
use uuid::Uuid;

/// This group's part of the OpenAPI document (`shared::web::openapi`).
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(generate_code, list_generations, generation_status, generated_code, cancel_generation),
    tags((name = "ai", description = "AI code generation (seed 000 scenario 5): a job per request, paid in credits up front (one per model call) and run phase by phase by the ai-worker; the credits of phases not run come back when a job fails or is cancelled. Generated code is stored and measured, never run."))
)]
pub struct ApiDoc;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/ai/generate-code", post(generate_code))
        .route("/v1/ai/generations", get(list_generations))
        .route("/v1/ai/generation-status/{id}", get(generation_status))
        .route("/v1/ai/generated-code/{id}", get(generated_code))
        .route("/v1/ai/generations/{id}/cancel", post(cancel_generation))
}

/// How long the zip's download URL works.
pub const DOWNLOAD_URL_TTL: Duration = Duration::from_secs(15 * 60);

/// Seed 000's `code_standards`: free-form, passed to the model as given
/// (at most 20 keys, 2 KiB).
pub type CodeStandards = shared::domain::project::PerformanceTargets;

/// `POST /v1/ai/generate-code`.
#[derive(Debug, eserde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GenerateCode {
    /// The task to generate code for (any task of the tenant).
    #[eserde(compat)]
    pub task_id: TaskId,
    /// `comprehensive` (full files, the default) or `scaffold` (outlines).
    #[serde(default)]
    #[eserde(compat)]
    pub generation_type: Option<GenerationType>,
    /// The parts to generate, each one phase, in this order; 1 to 7, no repeats.
    #[schema(min_items = 1, max_items = 7)]
    #[eserde(compat)]
    pub components: Vec<Component>,
    /// Free-form standards (`style_guide`, `test_coverage`, ...) for the model.
    #[serde(default)]
    #[eserde(compat)]
    pub code_standards: Option<CodeStandards>,
}

/// Figures measured on the generated text; the seed's scores that would need
/// running the code (coverage, performance) are `not_applicable`: the
/// platform never runs generated code.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct QualityMetrics {
    #[serde(flatten)]
    pub figures: CodeFigures,
    /// Matches of the security review's patterns; null until it ran.
    pub security_findings: Option<usize>,
    #[schema(value_type = String, example = "not_applicable")]
    pub test_coverage: &'static str,
    #[schema(value_type = String, example = "not_applicable")]
    pub code_complexity: &'static str,
    #[schema(value_type = String, example = "not_applicable")]
    pub security_score: &'static str,
    #[schema(value_type = String, example = "not_applicable")]
    pub performance_score: &'static str,
}

/// The model calls of the finished phases, as the backend reported them.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ModelUsage {
    /// `local`, `openai` or `bedrock`; null before the first phase.
    pub backend: Option<String>,
    pub model: Option<String>,
    pub calls: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    /// Sum of the calls' durations.
    pub latency_ms: i64,
}

/// Credits of the job: all taken at creation, unfinished phases given back.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct JobCredits {
    pub reserved: i64,
    pub refunded: i64,
    /// `reserved - refunded`.
    pub charged: i64,
}

/// A job and where it stands (seed 000's generation status).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct GenerationStatus {
    pub generation_id: Uuid,
    /// `generation`, or `analysis` for a task's analysis job.
    pub kind: JobKind,
    pub status: JobStatus,
    pub task_id: Uuid,
    pub project_id: Uuid,
    pub generation_type: Option<GenerationType>,
    pub components: Vec<String>,
    pub progress: Progress,
    pub quality_metrics: QualityMetrics,
    pub model_usage: ModelUsage,
    pub credits: JobCredits,
    /// Why it failed; null otherwise.
    pub error: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub completed_at: Option<String>,
}

fn status_of(job: &AiJob) -> GenerationStatus {
    GenerationStatus {
        generation_id: job.id,
        kind: job.kind,
        status: job.status,
        task_id: job.task_id,
        project_id: job.project_id,
        generation_type: job.generation_type,
        components: job.components.clone(),
        progress: job.progress(),
        quality_metrics: quality_of(job),
        model_usage: ModelUsage {
            backend: job.backend.clone(),
            model: job.model.clone(),
            calls: job.model_calls,
            input_tokens: job.input_tokens,
            output_tokens: job.output_tokens,
            latency_ms: job.model_latency_ms,
        },
        credits: JobCredits {
            reserved: job.credits_reserved,
            refunded: job.credits_refunded,
            charged: job.credits_reserved - job.credits_refunded,
        },
        error: job.error.clone(),
        created_at: job.created_at.clone(),
        updated_at: job.updated_at.clone(),
        completed_at: job.completed_at.clone(),
    }
}

fn quality_of(job: &AiJob) -> QualityMetrics {
    QualityMetrics {
        figures: job.figures.clone(),
        security_findings: job.security_findings.as_ref().map(Vec::len),
        test_coverage: "not_applicable",
        code_complexity: "not_applicable",
        security_score: "not_applicable",
        performance_score: "not_applicable",
    }
}

/// A completed generation's output (seed 000's generated code).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct GeneratedCode {
    pub generation_id: Uuid,
    pub status: JobStatus,
    /// Files by component, then by path.
    pub generated_files: BTreeMap<String, BTreeMap<String, GeneratedFile>>,
    pub quality_report: QualityMetrics,
    pub security_findings: Vec<SecurityFinding>,
    /// A presigned GET of the zip of every file, valid 15 minutes.
    pub download_url: String,
    pub download_expires_at: String,
    /// Whether the code can be deployed cannot be known without running it,
    /// which the platform never does.
    #[schema(value_type = String, example = "not_applicable")]
    pub deployment_ready: &'static str,
}

/// Start a code generation
///
/// Takes the job's price (one credit per model call: requirements,
/// architecture and one per component) from the tenant's credits, checks
/// that this month's `ai_requests` leave room for those calls under
/// `ai_requests_monthly`, and queues the job, in one transaction. 202 with
/// the job, `queued`; follow it with `GET /v1/ai/generation-status/{id}` or
/// the `ai.generation.*` webhooks.
#[utoipa::path(post, path = "/v1/ai/generate-code", tag = "ai", security(("bearer" = ["developer"]), ("api_key" = ["ai:write"])),
    request_body(content = GenerateCode, example = json!({
        "task_id": "0190f3a4-6b1e-7c2d-8e9f-0a1b2c3d4e5f",
        "generation_type": "comprehensive",
        "components": ["api_endpoints", "data_models", "business_logic", "database_schemas", "test_suites", "documentation", "deployment_configs"],
        "code_standards": {"style_guide": "pep8", "documentation": "google_style", "test_coverage": 90, "security_scanning": true, "performance_optimization": true}
    })),
    responses(
        (status = 202, description = "The job, `queued`", body = GenerationStatus),
        (status = 402, description = "Payment required\n\n- `insufficient_credits`: the balance is below the job's price; nothing was created", body = ApiError),
        (status = 403, description = "Forbidden\n\n- `quota_exceeded`: this month's `ai_requests` leave no room for the job's model calls", body = ApiError),
        (status = 404, description = "Not found\n\n- `not_found`: no task `task_id` in the caller's tenant", body = ApiError),
        (status = 409, description = "Conflict\n\n- `conflict`: the credit balance is being changed by many requests at once; nothing was charged: try again\n- `idempotency_key_in_use`: a request with this `Idempotency-Key` is still running: retry shortly", body = ApiError),
    ))]
async fn generate_code(
    State(state): State<AppState>,
    principal: Principal,
    audit: AuditContext,
    body: Result<Body<GenerateCode>, AppError>,
) -> AppResult<(StatusCode, Json<GenerationStatus>)> {
    let scope = principal.require(Role::Developer, Scope::AiWrite, AI_JOB_RESOURCE)?;
    let Body(request) = body?;
    let mut seen = Vec::new();
    for (i, component) in request.components.iter().enumerate() {
        if seen.contains(component) {
            return Err(AppError::invalid_field(&format!("components[{i}]"), "is listed twice"));
        }
        seen.push(*component);
    }
    if seen.is_empty() {
        return Err(AppError::validation(vec![FieldError::new("components", "must name at least one component")]));
    }
    let task = state.store.find_task(&scope, request.task_id.0).await?.ok_or_else(|| AppError::not_found("task"))?;
    let project = state.store.get_project(&scope, task.project_id).await?.ok_or_else(|| AppError::not_found("task"))?;
    let code_standards =
        request.code_standards.map_or(Value::Object(Default::default()), |s| Value::Object(s.into_inner()));
    let phases = ai::generation_phases(&seen);
    let generation_type = request.generation_type.unwrap_or(GenerationType::Comprehensive);
    let context = JobContext::of(&task, &project, code_standards.clone(), Some(generation_type));
    let job = AiJob::queued(
        scope.tenant_id(),
        JobKind::Generation,
        task.id,
        task.project_id,
        &phases,
        context,
        principal.user_id().to_string(),
    );
    let job = AiJob { components: seen.iter().map(|c| c.as_str().to_owned()).collect(), ..job };
    state.store.create_generation(&scope, &job, &audit).await?;
    Ok((StatusCode::ACCEPTED, Json(status_of(&job))))
}

/// `GET /v1/ai/generations` filters.
#[derive(Debug, eserde::Deserialize)]
#[serde(deny_unknown_fields)]
struct GenerationFilters {
    #[serde(default)]
    #[eserde(compat)]
    status: Option<JobStatus>,
}

/// List code generations
///
/// In creation order; `?status=`, `?limit=`, `?cursor=`.
#[utoipa::path(get, path = "/v1/ai/generations", tag = "ai", security(("bearer" = ["user"]), ("api_key" = ["ai:read"])),
    params(("status" = Option<JobStatus>, Query, description = "Only jobs in this status")),
    responses((status = 200, description = "A page of generations", body = Page<GenerationStatus>)))]
async fn list_generations(
    State(state): State<AppState>,
    principal: Principal,
    query: Result<ListQuery<GenerationFilters>, AppError>,
) -> AppResult<Page<GenerationStatus>> {
    let scope = principal.require(Role::User, Scope::AiRead, AI_JOB_RESOURCE)?;
    let ListQuery { page, filters } = query?;
    let status = filters.status.map(JobStatus::as_str);
    let (jobs, next_cursor) = state.store.list_ai_jobs(&scope, JobKind::Generation, status, &page).await?;
    Ok(Page { data: jobs.iter().map(status_of).collect(), next_cursor })
}

/// Read a generation's progress
///
/// Status, the phases completed and remaining, `overall_percentage`
/// (`floor(100 x phases completed / phases)`), the figures measured on the
/// files generated so far, the model's usage and the credits. A task's
/// analysis job (its `analysis_job_id`) answers here too.
#[utoipa::path(get, path = "/v1/ai/generation-status/{id}", tag = "ai", security(("bearer" = ["user"]), ("api_key" = ["ai:read"])),
    responses((status = 200, description = "The job", body = GenerationStatus)))]
async fn generation_status(
    State(state): State<AppState>,
    principal: Principal,
    PathIds(GenerationId(id)): PathIds<GenerationId>,
) -> AppResult<Json<GenerationStatus>> {
    let scope = principal.require(Role::User, Scope::AiRead, AI_JOB_RESOURCE)?;
    let job = state.store.get_ai_job(&scope, id).await?.ok_or_else(|| AppError::not_found(AI_JOB_RESOURCE))?;
    Ok(Json(status_of(&job)))
}

/// Read the generated code
///
/// For a `completed` generation: each file by component with its measured
/// figures and the first 300 characters, the security review's findings,
/// and a download of the zip of every file (valid 15 minutes). 409 before
/// the generation completed.
#[utoipa::path(get, path = "/v1/ai/generated-code/{id}", tag = "ai", security(("bearer" = ["user"]), ("api_key" = ["ai:read"])),
    responses(
        (status = 200, description = "The files, their figures and the zip", body = GeneratedCode),
        (status = 409, description = "Conflict\n\n- `conflict`: the generation has not completed (or is an analysis job): see its status", body = ApiError),
    ))]
async fn generated_code(
    State(state): State<AppState>,
    principal: Principal,
    PathIds(GenerationId(id)): PathIds<GenerationId>,
) -> AppResult<Json<GeneratedCode>> {
    let scope = principal.require(Role::User, Scope::AiRead, AI_JOB_RESOURCE)?;
    let job = state.store.get_ai_job(&scope, id).await?.ok_or_else(|| AppError::not_found(AI_JOB_RESOURCE))?;
    let (JobKind::Generation, JobStatus::Completed, Some(files), Some(key)) =
        (job.kind, job.status, &job.generated_files, &job.artifact_key)
    else {
        return Err(AppError::conflict(format!(
            "the {} job is {}: generated code exists once a generation completed",
            job.kind, job.status
        )));
    };
    let mut by_component: BTreeMap<String, BTreeMap<String, GeneratedFile>> = BTreeMap::new();
    for file in files {
        by_component.entry(file.component.clone()).or_default().insert(file.path.clone(), file.clone());
    }
    let expires = chrono::Utc::now() + DOWNLOAD_URL_TTL;
    Ok(Json(GeneratedCode {
        generation_id: job.id,
        status: job.status,
        generated_files: by_component,
        quality_report: quality_of(&job),
        security_findings: job.security_findings.clone().unwrap_or_default(),
        download_url: state.blobs.presign_download(key, DOWNLOAD_URL_TTL).await?,
        download_expires_at: shared::domain::rfc3339(expires),
        deployment_ready: "not_applicable",
    }))
}

/// Cancel a generation
///
/// Stops a `queued` or `in_progress` job after the phase it is in (that
/// phase's result is discarded and not charged) and gives back the credits
/// of its unfinished model phases, once. 200 with the job, `cancelled`; 409
/// when it had already ended.
#[utoipa::path(post, path = "/v1/ai/generations/{id}/cancel", tag = "ai", security(("bearer" = ["developer"]), ("api_key" = ["ai:write"])),
    responses(
        (status = 200, description = "The job, `cancelled`, with its refund", body = GenerationStatus),
        (status = 409, description = "Conflict\n\n- `conflict`: the job had already ended\n- `idempotency_key_in_use`: a request with this `Idempotency-Key` is still running: retry shortly", body = ApiError),
    ))]
async fn cancel_generation(
    State(state): State<AppState>,
    principal: Principal,
    audit: AuditContext,
    PathIds(GenerationId(id)): PathIds<GenerationId>,
) -> AppResult<Json<GenerationStatus>> {
    let scope = principal.require(Role::Developer, Scope::AiWrite, AI_JOB_RESOURCE)?;
    match state.store.cancel_ai_job(&scope, id, &audit).await? {
        Some(job) => Ok(Json(status_of(&job))),
        None => {
            let job = state.store.get_ai_job(&scope, id).await?.ok_or_else(|| AppError::not_found(AI_JOB_RESOURCE))?;
            Err(AppError::conflict(format!("the job already ended: it is {}", job.status)))
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use shared::web::extract::parse_body;

    use super::*;

    #[test]
    fn the_seed_body_is_read_and_unknown_components_are_named() {
        use utoipa::OpenApi;
        let doc = serde_json::to_value(ApiDoc::openapi()).expect("document");
        let example =
            doc["paths"]["/v1/ai/generate-code"]["post"]["requestBody"]["content"]["application/json"]["example"]
                .clone();
        let request = parse_body::<GenerateCode>(example.to_string().as_bytes()).expect("the seed's body");
        assert_eq!(request.components.len(), 7);
        let bad = json!({"task_id": "nope", "components": ["api_endpoints", "frontend"]});
        match parse_body::<GenerateCode>(bad.to_string().as_bytes()) {
            Err(err) => {
                let mut fields = err.invalid_fields();
                fields.sort();
                assert_eq!(fields, ["components[1]", "task_id"]);
            }
            Ok(_) => panic!("accepted"),
        }
    }
}
