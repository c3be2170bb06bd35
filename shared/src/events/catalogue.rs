//! The event catalogue: every domain event the platform emits, one variant
//! each, with its name, version and payload. Events are written to the
//! outbox inside the transaction of the change they describe
//! (`store::tx::Tx::emit`); the relay (DynamoDB Streams -> EventBridge Pipes
//! -> the bus) puts them on the bus; workers and the webhook dispatcher read
//! them back with [`Event::parse`]. Payload fields are part of the public
//! webhook contract: add fields freely, rename or remove only with a new
//! version.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::DomainEvent;

/// One domain event. Serialised as `{"type": <name>, "data": <payload>}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum Event {
    /// A tenant was created (registration or a platform admin); it waits in
    /// `provisioning` until the tenant-provisioner has run.
    #[serde(rename = "tenant.created")]
    TenantCreated(TenantCreated),
    /// The provisioner made the tenant `active`.
    #[serde(rename = "tenant.activated")]
    TenantActivated(TenantActivated),
    /// Tenant fields changed (`PUT`/`PATCH /v1/tenants/{id}`).
    #[serde(rename = "tenant.updated")]
    TenantUpdated(TenantUpdated),
    /// Soft delete: the tenant became `inactive`.
    #[serde(rename = "tenant.deleted")]
    TenantDeleted(TenantDeleted),
    /// A create was refused because the plan's quota is full.
    #[serde(rename = "tenant.quota_exceeded")]
    QuotaExceeded(QuotaExceeded),
    /// A member joined: created by an admin, registered with the tenant,
    /// or accepted an invitation.
    #[serde(rename = "user.created")]
    UserCreated(UserCreated),
    /// An invitation to join the tenant was created.
    #[serde(rename = "user.invited")]
    UserInvited(UserInvited),
    /// A member's role or active flag changed.
    #[serde(rename = "user.updated")]
    UserUpdated(UserUpdated),
    /// A member was removed from the tenant.
    #[serde(rename = "user.deleted")]
    UserDeleted(UserDeleted),
    /// An API key was created.
    #[serde(rename = "api_key.created")]
    ApiKeyCreated(ApiKeyChanged),
    /// An API key was revoked: it stops working at once.
    #[serde(rename = "api_key.revoked")]
    ApiKeyRevoked(ApiKeyChanged),
    /// An API key got a new secret (the old one works on only for the
    /// grace period the rotation asked for, if any).
    #[serde(rename = "api_key.rotated")]
    ApiKeyRotated(ApiKeyChanged),
    /// A platform admin granted credits.
    #[serde(rename = "credits.added")]
    CreditsAdded(CreditsChanged),
    /// A metered charge (`POST /v1/credits/charges`).
    #[serde(rename = "credits.spent")]
    CreditsSpent(CreditsChanged),
    /// Asks the try-on worker to render one cart item (platform plumbing:
    /// never delivered to webhooks).
    #[serde(rename = "tryon.item.requested")]
    TryonItemRequested(TryonItemRequested),
    /// A try-on session ended with at least one item rendered.
    #[serde(rename = "tryon.session.completed")]
    TryonSessionCompleted(TryonSessionFinished),
    /// A try-on session ended with no item rendered and at least one failed.
    #[serde(rename = "tryon.session.failed")]
    TryonSessionFailed(TryonSessionFinished),
    /// A try-on session ended with every item cancelled.
    #[serde(rename = "tryon.session.cancelled")]
    TryonSessionCancelled(TryonSessionFinished),
    /// `POST /v1/webhooks/{id}/test`: delivered to that endpoint only.
    #[serde(rename = "webhook.test")]
    WebhookTest(WebhookTest),
    /// A failed delivery went back to pending: the dispatcher queues its job
    /// (platform plumbing: never delivered as an event of its own).
    #[serde(rename = "webhook.delivery.replay_requested")]
    WebhookReplayRequested(WebhookReplayRequested),
    /// The platform disabled a webhook endpoint: ten failed deliveries in a
    /// row, or a `410 Gone` answer.
    #[serde(rename = "webhook_endpoint.disabled")]
    WebhookEndpointDisabled(WebhookEndpointDisabled),
    /// Every audit entry, as written (secrets redacted), so a tenant can
    /// subscribe a webhook to its own audit trail (`audit.*`).
    #[serde(rename = "audit.entry.created")]
    AuditEntryCreated(AuditEntryCreated),
    /// A draft invoice was made (`POST /v1/billing/invoices/generate`, or
    /// the period close).
    #[serde(rename = "invoice.created")]
    InvoiceCreated(InvoiceChanged),
    /// An invoice got its number and its PDF: it can no longer change.
    #[serde(rename = "invoice.finalized")]
    InvoiceFinalized(InvoiceChanged),
    /// An invoice was marked paid.
    #[serde(rename = "invoice.paid")]
    InvoicePaid(InvoiceChanged),
    /// An invoice was voided (a finalized one keeps its number).
    #[serde(rename = "invoice.voided")]
    InvoiceVoided(InvoiceChanged),
    /// A metered figure reached 80 % or 100 % of its limit in the current
    /// period (once per limit, threshold and period).
    #[serde(rename = "usage.threshold_reached")]
    UsageThresholdReached(UsageThresholdReached),
    /// The credit balance went below the threshold the tenant set on its
    /// billing account (once per crossing).
    #[serde(rename = "credits.low_balance")]
    CreditsLowBalance(CreditsLowBalance),
    /// A provider's webhook was verified and stored (or replayed): its bus
    /// `source` is `saas.integrations.<provider name>`.
    #[serde(rename = "integration.event.received")]
    IntegrationEventReceived(IntegrationEventReceived),
    /// A workflow's `notification` step ran.
    #[serde(rename = "workflow.notification")]
    WorkflowNotification(WorkflowNotification),
    /// A workflow execution ended `failed` or `timed_out` (the alert).
    #[serde(rename = "workflow.execution.failed")]
    WorkflowExecutionFailed(WorkflowExecutionFailed),
    /// A sync connection's runs failed 3 times in a row (the alert; raised
    /// once until a run succeeds).
    #[serde(rename = "integration.sync.failing")]
    IntegrationSyncFailing(IntegrationSyncFailing),
    /// Asks the ai-worker to run one phase of an AI job (platform plumbing:
    /// never delivered to webhooks).
    #[serde(rename = "ai.phase.requested")]
    AiPhaseRequested(AiPhaseRequested),
    /// A task's AI analysis is ready on the task.
    #[serde(rename = "ai.analysis.completed")]
    AiAnalysisCompleted(AiJobFinished),
    /// A task's AI analysis failed; its credit was refunded.
    #[serde(rename = "ai.analysis.failed")]
    AiAnalysisFailed(AiJobFinished),
    /// A phase of a code generation finished.
    #[serde(rename = "ai.generation.progress")]
    AiGenerationProgress(AiGenerationProgress),
    /// A code generation finished: its files and zip are ready.
    #[serde(rename = "ai.generation.completed")]
    AiGenerationCompleted(AiJobFinished),
    /// A code generation failed; the credits of its unfinished phases were refunded.
    #[serde(rename = "ai.generation.failed")]
    AiGenerationFailed(AiJobFinished),
    /// A code generation was cancelled; the credits of its unfinished phases were refunded.
    #[serde(rename = "ai.generation.cancelled")]
    AiGenerationCancelled(AiJobFinished),
    /// Asks the compliance worker to build a tenant data export (platform
    /// plumbing: never delivered to webhooks).
    #[serde(rename = "compliance.export.requested")]
    ComplianceExportRequested(ComplianceExportRequested),
}

/// [`Event::IntegrationEventReceived`]'s name (its bus source depends on it).
pub const INTEGRATION_EVENT_RECEIVED: &str = "integration.event.received";

/// Every event name, for the webhook filter's validation and the docs.
pub const EVENT_NAMES: &[&str] = &[
    "tenant.created",
    "tenant.activated",
    "tenant.updated",
    "tenant.deleted",
    "tenant.quota_exceeded",
    "user.created",
    "user.invited",
    "user.updated",
    "user.deleted",
    "api_key.created",
    "api_key.revoked",
    "api_key.rotated",
    "credits.added",
    "credits.spent",
    "tryon.item.requested",
    "tryon.session.completed",
    "tryon.session.failed",
    "tryon.session.cancelled",
    "webhook.test",
    "webhook.delivery.replay_requested",
    "webhook_endpoint.disabled",
    "audit.entry.created",
    "invoice.created",
    "invoice.finalized",
    "invoice.paid",
    "invoice.voided",
    "usage.threshold_reached",
    "credits.low_balance",
    "integration.event.received",
    "workflow.notification",
    "workflow.execution.failed",
    "integration.sync.failing",
    "ai.phase.requested",
    "ai.analysis.completed",
    "ai.analysis.failed",
    "ai.generation.progress",
    "ai.generation.completed",
    "ai.generation.failed",
    "ai.generation.cancelled",
    "compliance.export.requested",
];

/// Events that are the platform's own plumbing, never a customer's business.
pub const INTERNAL_EVENTS: &[&str] =
    &["tryon.item.requested", "webhook.delivery.replay_requested", "ai.phase.requested", "compliance.export.requested"];

impl Event {
    /// The event's name (EventBridge `detail-type`, webhook `type`).
    pub fn name(&self) -> &'static str {
        match self {
            Event::TenantCreated(_) => "tenant.created",
            Event::TenantActivated(_) => "tenant.activated",
            Event::TenantUpdated(_) => "tenant.updated",
            Event::TenantDeleted(_) => "tenant.deleted",
            Event::QuotaExceeded(_) => "tenant.quota_exceeded",
            Event::UserCreated(_) => "user.created",
            Event::UserInvited(_) => "user.invited",
            Event::UserUpdated(_) => "user.updated",
            Event::UserDeleted(_) => "user.deleted",
            Event::ApiKeyCreated(_) => "api_key.created",
            Event::ApiKeyRevoked(_) => "api_key.revoked",
            Event::ApiKeyRotated(_) => "api_key.rotated",
            Event::CreditsAdded(_) => "credits.added",
            Event::CreditsSpent(_) => "credits.spent",
            Event::TryonItemRequested(_) => "tryon.item.requested",
            Event::TryonSessionCompleted(_) => "tryon.session.completed",
            Event::TryonSessionFailed(_) => "tryon.session.failed",
            Event::TryonSessionCancelled(_) => "tryon.session.cancelled",
            Event::WebhookTest(_) => "webhook.test",
            Event::WebhookReplayRequested(_) => "webhook.delivery.replay_requested",
            Event::WebhookEndpointDisabled(_) => "webhook_endpoint.disabled",
            Event::AuditEntryCreated(_) => "audit.entry.created",
            Event::InvoiceCreated(_) => "invoice.created",
            Event::InvoiceFinalized(_) => "invoice.finalized",
            Event::InvoicePaid(_) => "invoice.paid",
            Event::InvoiceVoided(_) => "invoice.voided",
            Event::UsageThresholdReached(_) => "usage.threshold_reached",
            Event::CreditsLowBalance(_) => "credits.low_balance",
            Event::IntegrationEventReceived(_) => INTEGRATION_EVENT_RECEIVED,
            Event::WorkflowNotification(_) => "workflow.notification",
            Event::WorkflowExecutionFailed(_) => "workflow.execution.failed",
            Event::IntegrationSyncFailing(_) => "integration.sync.failing",
            Event::AiPhaseRequested(_) => "ai.phase.requested",
            Event::AiAnalysisCompleted(_) => "ai.analysis.completed",
            Event::AiAnalysisFailed(_) => "ai.analysis.failed",
            Event::AiGenerationProgress(_) => "ai.generation.progress",
            Event::AiGenerationCompleted(_) => "ai.generation.completed",
            Event::AiGenerationFailed(_) => "ai.generation.failed",
            Event::AiGenerationCancelled(_) => "ai.generation.cancelled",
            Event::ComplianceExportRequested(_) => "compliance.export.requested",
        }
    }

    /// The payload's version; bumped when a field is renamed or removed.
    pub fn version(&self) -> u32 {
        1
    }

    /// The envelope as it travels (outbox item, bus, webhook body).
    pub fn into_domain_event(self, tenant_id: Uuid) -> DomainEvent {
        let name = self.name();
        let version = self.version();
        let data = match serde_json::to_value(&self) {
            Ok(Value::Object(mut tagged)) => tagged.remove("data").unwrap_or(Value::Null),
            _ => Value::Null,
        };
        DomainEvent {
            id: Uuid::now_v7(),
            event_type: name.to_owned(),
            version,
            tenant_id,
            occurred_at: chrono::Utc::now(),
            data,
        }
    }

    /// The typed event an envelope carries; an error for names this
    /// catalogue does not know or payloads that do not match.
    pub fn parse(event: &DomainEvent) -> serde_json::Result<Event> {
        serde_json::from_value(serde_json::json!({"type": event.event_type, "data": event.data}))
    }
}

/// `tenant.created`: the tenant as it was created.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = TenantCreatedEventData)]
pub struct TenantCreated {
    pub tenant_id: Uuid,
    /// The tenant's display name.
    pub name: String,
    /// The tenant's unique, URL-safe handle.
    pub slug: String,
    /// Who is invited as the tenant's owner once it is provisioned (`null`:
    /// nobody is, e.g. the registering user is already its first member).
    #[schema(required = true)]
    pub admin_email: Option<String>,
    /// The plan: `free`, `professional`, `enterprise` or `enterprise_custom`.
    pub plan: String,
    /// The parent tenant, for a tenant created under another.
    #[schema(required = true)]
    pub parent_id: Option<Uuid>,
    /// The user who created it (a platform admin); `null` for a self-service
    /// registration.
    #[schema(required = true)]
    pub created_by: Option<Uuid>,
}

/// `tenant.activated`: the tenant left `provisioning`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = TenantActivatedEventData)]
pub struct TenantActivated {
    pub tenant_id: Uuid,
    pub slug: String,
    /// Whether the provisioner invited the tenant's `admin_email` as owner.
    pub admin_invitation_sent: bool,
}

/// `tenant.updated`: which of the tenant's fields changed (read the tenant
/// for their new values).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = TenantUpdatedEventData)]
pub struct TenantUpdated {
    pub tenant_id: Uuid,
    /// The names of the fields set or removed (`name`, `plan`, `settings`...).
    pub changed_fields: Vec<String>,
    /// The id of whoever made the change: a user's or an API key's id, or a
    /// platform component's name.
    #[schema(required = true)]
    pub updated_by: Option<String>,
}

/// `tenant.deleted`: the tenant was soft-deleted (status `inactive`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = TenantDeletedEventData)]
pub struct TenantDeleted {
    pub tenant_id: Uuid,
    /// The id of whoever deleted it: a user's or an API key's id, or a
    /// platform component's name.
    #[schema(required = true)]
    pub deleted_by: Option<String>,
    /// Always `true`: the tenant's data is kept, its credentials stop working.
    pub soft_delete: bool,
}

/// `tenant.quota_exceeded`: a create was refused because the plan's quota
/// is full (the caller got a 403 `quota_exceeded` with the same figures).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = QuotaExceededEventData)]
pub struct QuotaExceeded {
    pub tenant_id: Uuid,
    /// The quota: `users` or `projects`.
    pub quota_type: String,
    /// What the tenant uses now.
    pub current_usage: i64,
    /// What its plan allows.
    pub plan_limit: i64,
    /// What the refused request would have added.
    pub requested_increase: i64,
    /// The tenant's plan.
    pub plan: String,
}

/// `user.created`: a member joined the tenant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = UserCreatedEventData)]
pub struct UserCreated {
    pub user_id: Uuid,
    pub email: String,
    /// The member's role: `owner`, `admin`, `developer` or `user`.
    pub role: String,
    /// `api` (an admin created the user), `registration` (the tenant's
    /// first member), `invitation` (an invitation was accepted) or `seed`.
    pub via: String,
}

/// `user.invited`: an invitation was sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = UserInvitedEventData)]
pub struct UserInvited {
    pub invitation_id: Uuid,
    /// Who was invited.
    pub email: String,
    /// The role the invitee gets on accepting.
    pub role: String,
}

/// `user.updated`: a member's role or active flag after the change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = UserUpdatedEventData)]
pub struct UserUpdated {
    pub user_id: Uuid,
    /// The role after the change.
    pub role: String,
    /// Whether the member may sign in after the change.
    pub is_active: bool,
}

/// `user.deleted`: a member was removed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = UserDeletedEventData)]
pub struct UserDeleted {
    pub user_id: Uuid,
}

/// `api_key.created`, `api_key.revoked`, `api_key.rotated`: the key after
/// the change (never its secret).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = ApiKeyChangedEventData)]
pub struct ApiKeyChanged {
    pub key_id: Uuid,
    /// The key's name, as its owner gave it.
    pub name: String,
    /// The key's scopes (`customers:read`, `webhooks:manage`...).
    pub scopes: Vec<String>,
    /// `live` or `test` (the key's `sk_live_` / `sk_test_` prefix).
    pub environment: String,
}

/// `credits.added`, `credits.spent`: one entry of the tenant's credit
/// ledger (a try-on's spends and refunds have no entry event of their own:
/// its `tryon.session.*` event tells).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = CreditsChangedEventData)]
pub struct CreditsChanged {
    /// The ledger entry (`GET /v1/credits/ledger`).
    pub entry_id: Uuid,
    /// Positive: the credits added or spent.
    pub amount: i64,
    /// The balance after the change.
    pub balance: i64,
    /// Why, as the caller (or the platform admin) wrote it.
    pub reason: String,
    /// The caller's charge reference (a charge happens once per reference);
    /// `null` for grants without one.
    #[serde(default)]
    #[schema(required = true)]
    pub reference: Option<String>,
    /// Who made the change.
    // The domain's `Actor` (this layer sits below the domain, so the
    // webhook document swaps it in: functions/local/src/webhooks_doc.rs).
    #[schema(value_type = Object)]
    pub actor: Value,
}

/// `tryon.item.requested` (platform plumbing): asks the try-on worker to
/// render one item of a session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = TryonItemRequestedEventData)]
pub struct TryonItemRequested {
    pub session_id: Uuid,
    /// The item's position in the session's cart, from 0.
    pub item_index: u32,
}

/// `compliance.export.requested` (platform plumbing): asks the compliance
/// worker to build the export's zip.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = ComplianceExportRequestedEventData)]
pub struct ComplianceExportRequested {
    pub export_id: Uuid,
}

/// `tryon.session.completed`, `.failed`, `.cancelled`: a try-on session
/// reached its final status, with its counts and what it cost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = TryonSessionFinishedEventData)]
pub struct TryonSessionFinished {
    pub session_id: Uuid,
    /// The end customer the session rendered for.
    pub customer_id: Uuid,
    /// The final status, the event's last word: `completed` (at least one
    /// item rendered), `failed` (none rendered, at least one failed) or
    /// `cancelled` (every item cancelled).
    pub status: String,
    /// Items in the session's cart.
    pub items_total: i64,
    /// Items rendered.
    pub completed: i64,
    /// Items that failed.
    pub failed: i64,
    /// Items cancelled before they were rendered.
    pub cancelled: i64,
    /// Credits the session was charged when it started.
    pub credits_charged: i64,
    /// Credits given back for the items that failed or were cancelled.
    pub credits_refunded: i64,
}

/// `invoice.created`, `.finalized`, `.paid`, `.voided`: the invoice after
/// the change (amounts are decimal strings, 2 places).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = InvoiceChangedEventData)]
pub struct InvoiceChanged {
    pub invoice_id: Uuid,
    /// The gapless number (`INV-2026-0001`), once finalized; `null` on a draft.
    #[schema(required = true)]
    pub number: Option<String>,
    /// `draft`, `finalized`, `paid` or `void`.
    pub status: String,
    /// The billing period, `YYYY-MM-DD` both ends included.
    pub period_start: String,
    pub period_end: String,
    pub currency: String,
    /// The total with tax, e.g. `"4590.81"`.
    pub total_amount: String,
}

/// `usage.threshold_reached`: a limit's use crossed 80 % or 100 %.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = UsageThresholdReachedEventData)]
pub struct UsageThresholdReached {
    /// The limit: `api_calls_monthly`, `ai_requests_monthly`, `storage_gb`,
    /// `users` or `projects`.
    pub limit: String,
    /// 80 or 100.
    pub threshold_percent: u32,
    /// The use that crossed it (a decimal string: storage is fractional).
    pub used: String,
    /// The limit's value.
    pub limit_value: i64,
    /// The period, `YYYY-MM` (UTC calendar month).
    pub period: String,
}

/// `credits.low_balance`: the balance fell below the tenant's threshold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = CreditsLowBalanceEventData)]
pub struct CreditsLowBalance {
    /// The balance after the change that crossed the threshold.
    pub balance: i64,
    /// The threshold set on the billing account.
    pub threshold: i64,
}

/// `integration.event.received`: a provider's webhook, verified and stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = IntegrationEventReceivedEventData)]
pub struct IntegrationEventReceived {
    /// The stored event (`GET /v1/integrations/events/{id}`).
    pub inbound_id: Uuid,
    pub provider_id: Uuid,
    /// The provider's name (also the end of the bus `source`).
    pub provider: String,
    /// The sender's id for the event (what duplicates are recognised by).
    pub event_id: String,
    /// The sender's type for the event (`user.created`, `payment.succeeded`).
    pub event_type: String,
    /// The raw body in the platform's bucket.
    pub payload_key: String,
    #[schema(format = DateTime)]
    pub received_at: String,
    /// The sender's JSON body when at most 64 KiB (`payload_on_bus`), else null.
    #[schema(value_type = Object)]
    pub data: Value,
    pub payload_on_bus: bool,
}

/// `workflow.notification`: a workflow's `notification` step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = WorkflowNotificationEventData)]
pub struct WorkflowNotification {
    pub workflow_id: Uuid,
    pub execution_id: Uuid,
    /// The step's name.
    pub step: String,
    /// The step's `message`, rendered over the execution's context.
    pub message: String,
    /// The step's `data` mapping applied to the context.
    #[schema(value_type = Object)]
    pub data: Value,
}

/// `workflow.execution.failed`: an execution ended `failed` or `timed_out`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = WorkflowExecutionFailedEventData)]
pub struct WorkflowExecutionFailed {
    pub workflow_id: Uuid,
    pub workflow_name: String,
    pub execution_id: Uuid,
    /// `failed` or `timed_out`.
    pub status: String,
    /// `step_failed`, `approval_rejected`, `step_timed_out`, `too_many_steps`.
    pub error_code: String,
    pub error_message: String,
    /// The step it ended on.
    #[schema(required = true)]
    pub step: Option<String>,
}

/// `integration.sync.failing`: a connection's runs failed
/// `consecutive_failures` times in a row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = IntegrationSyncFailingEventData)]
pub struct IntegrationSyncFailing {
    /// The alert (`GET /v1/integrations/alerts`).
    pub alert_id: Uuid,
    pub connection_id: Uuid,
    pub connection_name: String,
    pub provider_id: Uuid,
    pub consecutive_failures: i64,
    /// The failed run and its error.
    pub run_id: Uuid,
    pub last_error: String,
}

/// `webhook.test`: sent on `POST /v1/webhooks/{id}/test`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = WebhookTestEventData)]
pub struct WebhookTest {
    /// The endpoint tested (the only one that receives this event).
    pub endpoint_id: Uuid,
    /// A fixed text: `a test event from the platform`.
    pub message: String,
}

/// `webhook.delivery.replay_requested` (platform plumbing): a failed
/// delivery went back to `pending`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = WebhookReplayRequestedEventData)]
pub struct WebhookReplayRequested {
    pub endpoint_id: Uuid,
    /// The delivery to send again (also the id of the event it carries).
    pub delivery_id: Uuid,
}

/// `webhook_endpoint.disabled`: the platform stopped delivering to an
/// endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = WebhookEndpointDisabledEventData)]
pub struct WebhookEndpointDisabled {
    pub endpoint_id: Uuid,
    /// The endpoint's URL.
    pub url: String,
    /// Why: `its last 10 deliveries failed` or `the endpoint answered 410 Gone`.
    pub reason: String,
}

/// `audit.entry.created`: an audit entry as stored (API `GET /v1/audit/logs`
/// shows the same fields), secrets redacted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = AuditEntryCreatedEventData)]
pub struct AuditEntryCreated {
    /// The entry's id (also the event's id).
    pub id: Uuid,
    /// `create`, `update`, `delete`, or what the resource names its changes
    /// (a credit `grant`, say).
    pub action: String,
    /// What changed: `tenant`, `user`, `api_key`, `webhook_endpoint`...
    pub resource_type: String,
    pub resource_id: String,
    /// Who made the change.
    // The domain's `Actor` (this layer sits below the domain, so the
    // webhook document swaps it in: functions/local/src/webhooks_doc.rs).
    #[schema(value_type = Object)]
    pub actor: Value,
    /// The fields before the change (only the changed ones for an update;
    /// `{}` for a create), secrets redacted.
    #[schema(value_type = Object)]
    pub old_values: Value,
    /// The fields after the change (only the changed ones for an update;
    /// `{}` for a delete), secrets redacted.
    #[schema(value_type = Object)]
    pub new_values: Value,
    /// When the change was made (RFC 3339).
    #[schema(format = DateTime)]
    pub timestamp: String,
    /// The id of the API request that made the change, if any.
    #[serde(default)]
    #[schema(required = true)]
    pub request_id: Option<String>,
}

/// `ai.phase.requested`: run phase `phase_index` of job `job_id`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = AiPhaseRequestedEventData)]
pub struct AiPhaseRequested {
    pub job_id: Uuid,
    pub phase_index: u32,
}

/// `ai.analysis.*` and `ai.generation.completed|failed|cancelled`: how an AI
/// job ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = AiJobFinishedEventData)]
pub struct AiJobFinished {
    /// The job: a generation's `generation_id`, or a task's `analysis_job_id`.
    pub job_id: Uuid,
    /// `analysis` or `generation`.
    pub kind: String,
    pub task_id: Uuid,
    pub project_id: Uuid,
    /// `completed`, `failed` or `cancelled`.
    pub status: String,
    /// Phases finished before the end.
    pub phases_completed: u32,
    pub credits_charged: i64,
    pub credits_refunded: i64,
    /// Why it failed; null otherwise.
    #[schema(required = true)]
    pub error: Option<String>,
}

/// `ai.generation.progress`: a generation finished a phase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = AiGenerationProgressEventData)]
pub struct AiGenerationProgress {
    pub generation_id: Uuid,
    pub task_id: Uuid,
    /// The phase that finished.
    pub phase: String,
    /// `floor(100 x phases completed / phases)`.
    pub overall_percentage: u32,
    pub phases_completed: u32,
    pub phases_total: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples() -> Vec<Event> {
        let id = Uuid::nil();
        vec![
            Event::TenantCreated(TenantCreated {
                tenant_id: id,
                name: "n".into(),
                slug: "s".into(),
                admin_email: None,
                plan: "free".into(),
                parent_id: None,
                created_by: None,
            }),
            Event::TenantActivated(TenantActivated { tenant_id: id, slug: "s".into(), admin_invitation_sent: true }),
            Event::TenantUpdated(TenantUpdated {
                tenant_id: id,
                changed_fields: vec!["name".into()],
                updated_by: None,
            }),
            Event::TenantDeleted(TenantDeleted { tenant_id: id, deleted_by: None, soft_delete: true }),
            Event::QuotaExceeded(QuotaExceeded {
                tenant_id: id,
                quota_type: "users".into(),
                current_usage: 1,
                plan_limit: 1,
                requested_increase: 1,
                plan: "free".into(),
            }),
            Event::UserCreated(UserCreated {
                user_id: id,
                email: "a@b.co".into(),
                role: "user".into(),
                via: "api".into(),
            }),
            Event::UserInvited(UserInvited { invitation_id: id, email: "a@b.co".into(), role: "user".into() }),
            Event::UserUpdated(UserUpdated { user_id: id, role: "user".into(), is_active: true }),
            Event::UserDeleted(UserDeleted { user_id: id }),
            Event::ApiKeyCreated(ApiKeyChanged {
                key_id: id,
                name: "k".into(),
                scopes: vec![],
                environment: "live".into(),
            }),
            Event::ApiKeyRevoked(ApiKeyChanged {
                key_id: id,
                name: "k".into(),
                scopes: vec![],
                environment: "live".into(),
            }),
            Event::ApiKeyRotated(ApiKeyChanged {
                key_id: id,
                name: "k".into(),
                scopes: vec![],
                environment: "live".into(),
            }),
            Event::CreditsAdded(CreditsChanged {
                entry_id: id,
                amount: 1,
                balance: 1,
                reason: "r".into(),
                reference: None,
                actor: Value::Null,
            }),
            Event::CreditsSpent(CreditsChanged {
                entry_id: id,
                amount: 1,
                balance: 0,
                reason: "r".into(),
                reference: Some("x".into()),
                actor: Value::Null,
            }),
            Event::TryonItemRequested(TryonItemRequested { session_id: id, item_index: 3 }),
            Event::TryonSessionCompleted(finished("completed")),
            Event::TryonSessionFailed(finished("failed")),
            Event::TryonSessionCancelled(finished("cancelled")),
            Event::WebhookTest(WebhookTest { endpoint_id: id, message: "m".into() }),
            Event::WebhookReplayRequested(WebhookReplayRequested { endpoint_id: id, delivery_id: id }),
            Event::WebhookEndpointDisabled(WebhookEndpointDisabled {
                endpoint_id: id,
                url: "u".into(),
                reason: "r".into(),
            }),
            Event::AuditEntryCreated(AuditEntryCreated {
                id,
                action: "create".into(),
                resource_type: "tenant".into(),
                resource_id: "x".into(),
                actor: Value::Null,
                old_values: Value::Null,
                new_values: Value::Null,
                timestamp: "t".into(),
                request_id: None,
            }),
            Event::InvoiceCreated(invoice("draft")),
            Event::InvoiceFinalized(invoice("finalized")),
            Event::InvoicePaid(invoice("paid")),
            Event::InvoiceVoided(invoice("void")),
            Event::UsageThresholdReached(UsageThresholdReached {
                limit: "api_calls_monthly".into(),
                threshold_percent: 80,
                used: "800".into(),
                limit_value: 1000,
                period: "2026-12".into(),
            }),
            Event::CreditsLowBalance(CreditsLowBalance { balance: 4, threshold: 5 }),
            Event::IntegrationEventReceived(IntegrationEventReceived {
                inbound_id: id,
                provider_id: id,
                provider: "user_service".into(),
                event_id: "evt_1".into(),
                event_type: "user.created".into(),
                payload_key: "k".into(),
                received_at: "t".into(),
                data: serde_json::json!({"event_id": "evt_1"}),
                payload_on_bus: true,
            }),
            Event::WorkflowNotification(WorkflowNotification {
                workflow_id: id,
                execution_id: id,
                step: "notify".into(),
                message: "m".into(),
                data: serde_json::json!({"amount": 1}),
            }),
            Event::WorkflowExecutionFailed(WorkflowExecutionFailed {
                workflow_id: id,
                workflow_name: "w".into(),
                execution_id: id,
                status: "failed".into(),
                error_code: "step_failed".into(),
                error_message: "HTTP 503".into(),
                step: Some("call".into()),
            }),
            Event::IntegrationSyncFailing(IntegrationSyncFailing {
                alert_id: id,
                connection_id: id,
                connection_name: "CRM customers".into(),
                provider_id: id,
                consecutive_failures: 3,
                run_id: id,
                last_error: "the provider's API answered 503".into(),
            }),
            Event::AiPhaseRequested(AiPhaseRequested { job_id: id, phase_index: 0 }),
            Event::AiAnalysisCompleted(ai_finished("analysis", "completed")),
            Event::AiAnalysisFailed(ai_finished("analysis", "failed")),
            Event::AiGenerationProgress(AiGenerationProgress {
                generation_id: id,
                task_id: id,
                phase: "requirements_analysis".into(),
                overall_percentage: 16,
                phases_completed: 1,
                phases_total: 6,
            }),
            Event::AiGenerationCompleted(ai_finished("generation", "completed")),
            Event::AiGenerationFailed(ai_finished("generation", "failed")),
            Event::AiGenerationCancelled(ai_finished("generation", "cancelled")),
            Event::ComplianceExportRequested(ComplianceExportRequested { export_id: id }),
        ]
    }

    fn ai_finished(kind: &str, status: &str) -> AiJobFinished {
        AiJobFinished {
            job_id: Uuid::nil(),
            kind: kind.into(),
            task_id: Uuid::nil(),
            project_id: Uuid::nil(),
            status: status.into(),
            phases_completed: 2,
            credits_charged: 2,
            credits_refunded: if status == "completed" { 0 } else { 2 },
            error: (status == "failed").then(|| "the model answered 500 three times".to_owned()),
        }
    }

    fn finished(status: &str) -> TryonSessionFinished {
        TryonSessionFinished {
            session_id: Uuid::nil(),
            customer_id: Uuid::nil(),
            status: status.into(),
            items_total: 1,
            completed: 1,
            failed: 0,
            cancelled: 0,
            credits_charged: 1,
            credits_refunded: 0,
        }
    }

    fn invoice(status: &str) -> InvoiceChanged {
        InvoiceChanged {
            invoice_id: Uuid::nil(),
            number: (status != "draft").then(|| "INV-2026-0001".to_owned()),
            status: status.into(),
            period_start: "2026-11-01".into(),
            period_end: "2026-11-30".into(),
            currency: "USD".into(),
            total_amount: "10.00".into(),
        }
    }

    #[test]
    fn every_event_round_trips_through_its_envelope_under_its_catalogued_name() {
        let events = samples();
        assert_eq!(events.len(), EVENT_NAMES.len(), "a sample per catalogued event");
        for (event, name) in events.into_iter().zip(EVENT_NAMES) {
            assert_eq!(event.name(), *name);
            let envelope = event.clone().into_domain_event(Uuid::nil());
            assert_eq!(envelope.event_type, *name);
            assert_eq!(Event::parse(&envelope).expect("parses"), event);
        }
    }

    #[test]
    fn an_unknown_name_does_not_parse() {
        let envelope = Event::UserDeleted(UserDeleted { user_id: Uuid::nil() }).into_domain_event(Uuid::nil());
        let unknown = DomainEvent { event_type: "user.exploded".into(), ..envelope };
        assert!(Event::parse(&unknown).is_err());
    }
}
