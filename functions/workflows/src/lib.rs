//! The workflows route group (seed 001, "Workflow Automation"): versioned
//! workflow definitions ([`definitions`]) and their executions on AWS Step
//! Functions ([`executions`]): manual runs, history, cancel, rerun from the
//! failed step, approvals. Steps run in the workflows worker
//! (functions/workflows-worker); docs/workflows.md has the design.
//!
//! | route | handler | who |
//! |---|---|---|
//! | `POST /v1/workflows` | [`definitions::create_workflow`] | admin, or key `workflows:manage` |
//! | `GET /v1/workflows` | [`definitions::list_workflows`] | admin, or key `workflows:manage` |
//! | `GET /v1/workflows/{id}` | [`definitions::get_workflow`] | admin, or key `workflows:manage` |
//! | `PUT /v1/workflows/{id}` | [`definitions::replace_workflow`] | admin, or key `workflows:manage` |
//! | `DELETE /v1/workflows/{id}` | [`definitions::delete_workflow`] | admin, or key `workflows:manage` |
//! | `POST /v1/workflows/{id}/executions` | [`executions::run_workflow`] | admin, or key `workflows:manage` |
//! | `GET /v1/workflows/{id}/executions` | [`executions::list_executions`] | admin, or key `workflows:manage` |
//! | `GET /v1/workflows/{id}/executions/{execution_id}` | [`executions::get_execution`] | admin, or key `workflows:manage` |
//! | `POST /v1/workflows/{id}/executions/{execution_id}/cancel` | [`executions::cancel_execution`] | admin, or key `workflows:manage` |
//! | `POST /v1/workflows/{id}/executions/{execution_id}/rerun` | [`executions::rerun_execution`] | admin, or key `workflows:manage` |
//! | `POST /v1/workflows/{id}/executions/{execution_id}/approvals/{step}` | [`executions::decide_approval`] | a listed approver, or an admin |

pub mod definitions;
pub mod executions;

use axum::{
    Router,
    routing::{get, post},
};
use shared::{
    AppResult, AppState,
    auth::{Principal, Role, Scope, TenantScope},
    store::workflows::WORKFLOW_RESOURCE,
};

/// This group's part of the OpenAPI document (`shared::web::openapi`).
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        definitions::create_workflow, definitions::list_workflows, definitions::get_workflow,
        definitions::replace_workflow, definitions::delete_workflow, executions::run_workflow,
        executions::list_executions, executions::get_execution, executions::cancel_execution,
        executions::rerun_execution, executions::decide_approval
    ),
    tags((name = "workflows", description = "Workflow automation (seed 001): a trigger (manual, a platform event, a provider's inbound webhook) and steps of type task, approval, notification, condition (CEL) and integration, each with its retry policy and error handling. Executions run on AWS Step Functions, one step per task token; each keeps its step history. Approvals wait for a decision or their timeout; a failed execution can be rerun from the step that failed."))
)]
pub struct ApiDoc;

/// This group's routes; its Lambda and the local server add the shared layers.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/workflows", get(definitions::list_workflows).post(definitions::create_workflow))
        .route(
            "/v1/workflows/{id}",
            get(definitions::get_workflow).put(definitions::replace_workflow).delete(definitions::delete_workflow),
        )
        .route("/v1/workflows/{id}/executions", get(executions::list_executions).post(executions::run_workflow))
        .route("/v1/workflows/{id}/executions/{execution_id}", get(executions::get_execution))
        .route("/v1/workflows/{id}/executions/{execution_id}/cancel", post(executions::cancel_execution))
        .route("/v1/workflows/{id}/executions/{execution_id}/rerun", post(executions::rerun_execution))
        .route("/v1/workflows/{id}/executions/{execution_id}/approvals/{step}", post(executions::decide_approval))
}

fn require(principal: &Principal) -> AppResult<TenantScope> {
    principal.require(Role::Admin, Scope::WorkflowsManage, WORKFLOW_RESOURCE)
}
