//! The event catalogue (`shared::events::catalogue`) described for the two
//! kinds of consumer:
//!
//! - [`webhooks`]: OpenAPI 3.1 `webhooks`, what a tenant's endpoint receives:
//!   the body the dispatcher POSTs (`webhook_dispatcher::payload`), the
//!   Standard Webhooks headers it signs it with (`shared::webhook_signing`),
//!   and what the dispatcher makes of the answer (success, retries,
//!   auto-disable), with the figures read from the code's constants;
//! - [`components`]: the payload schemas those entries refer to, derived
//!   from the catalogue's structs (`utoipa::ToSchema`);
//! - [`event_schemas`]: one self-contained JSON Schema (draft 2020-12) per
//!   event on the bus, the whole EventBridge event as a rule's target gets
//!   it, for teams that subscribe to the bus directly (docs/events/).
//!
//! Every catalogue event has an [`Entry`] here (its sample, summary and
//! description); [`payload_schema`] matches the enum exhaustively, so a new
//! event does not build until it is described, and the tests check the
//! entries against `EVENT_NAMES`.

use serde_json::{Map, Value, json};
use shared::{
    config::EVENT_SOURCE,
    domain::{
        audit::Actor,
        webhook::{DEFAULT_SCHEDULE, MAX_RETRIES, MAX_SCHEDULE_SECONDS},
    },
    events::{
        DomainEvent, Event,
        catalogue::{
            AiGenerationProgress, AiJobFinished, AiPhaseRequested, ApiKeyChanged, AuditEntryCreated,
            ComplianceExportRequested, CreditsChanged, CreditsLowBalance, INTERNAL_EVENTS, IntegrationEventReceived,
            IntegrationSyncFailing, InvoiceChanged, QuotaExceeded, TenantActivated, TenantCreated, TenantDeleted,
            TenantUpdated, TryonItemRequested, TryonSessionFinished, UsageThresholdReached, UserCreated, UserDeleted,
            UserInvited, UserUpdated, WebhookEndpointDisabled, WebhookReplayRequested, WebhookTest,
            WorkflowExecutionFailed, WorkflowNotification,
        },
    },
    outbound::FETCH_TIMEOUT,
    store::webhooks::{DELIVERY_RETENTION_DAYS, DISABLE_AFTER_FAILURES},
};
use webhook_dispatcher::KEPT_RESPONSE_BYTES;

/// The tag of every webhook operation.
pub const TAG: &str = "webhook events";
/// Where the event schemas say they live (`$id`); docs/events/ holds them.
pub const SCHEMA_BASE: &str = "https://schemas.saas-platform.local/events/";
/// The JSON Schema dialect of docs/events/.
const DRAFT_2020_12: &str = "https://json-schema.org/draft/2020-12/schema";
/// What the dispatcher sends as `user-agent` (webhook-dispatcher's `attempt`).
const USER_AGENT: &str = "saas-platform-webhooks/1";

/// One catalogue event as documented.
pub struct Entry {
    /// A sample of the event, consistent with its schema (the examples).
    pub event: Event,
    pub summary: &'static str,
    /// What happened and when it is emitted (markdown).
    pub description: &'static str,
}

impl Entry {
    pub fn name(&self) -> &'static str {
        self.event.name()
    }

    /// Platform plumbing: on the bus, never delivered to an endpoint.
    pub fn internal(&self) -> bool {
        INTERNAL_EVENTS.contains(&self.name())
    }

    /// The envelope as it travels (outbox, bus detail), with a fixed id and
    /// time so the generated documents do not change from run to run.
    pub fn domain_event(&self) -> DomainEvent {
        DomainEvent {
            id: sample::EVENT,
            occurred_at: sample::occurred_at(),
            ..self.event.clone().into_domain_event(sample::TENANT)
        }
    }

    /// The body a webhook endpoint receives, exactly as the dispatcher
    /// builds it.
    pub fn webhook_body(&self) -> Value {
        serde_json::from_str(&webhook_dispatcher::payload(&self.domain_event())).unwrap_or(Value::Null)
    }

    /// The event as an EventBridge rule's target (an SQS queue) receives
    /// it: the relay's PutEvents entry (`shared::events::bus`: `source`,
    /// `detail-type` = the name, `detail` = the envelope) as EventBridge
    /// wraps it.
    pub fn bus_event(&self) -> Value {
        json!({
            "version": "0",
            "id": sample::BUS_EVENT.to_string(),
            "detail-type": self.name(),
            "source": self.domain_event().source(),
            "account": "123456789012",
            "time": "2025-01-15T10:30:01Z",
            "region": "eu-west-1",
            "resources": [],
            "detail": serde_json::to_value(self.domain_event()).unwrap_or(Value::Null),
        })
    }
}

/// Fixed values of the samples.
mod sample {
    use chrono::{DateTime, Utc};
    use uuid::Uuid;

    pub const TENANT: Uuid = Uuid::from_u128(0x01946a2b_0000_7000_8000_00000000000a);
    pub const EVENT: Uuid = Uuid::from_u128(0x01946a2b_3c4d_7e5f_8a9b_0c1d2e3f4a5b);
    pub const BUS_EVENT: Uuid = Uuid::from_u128(0x5e1b2c3d_4e5f_4a6b_8c7d_9e0f1a2b3c4d);
    pub const USER: Uuid = Uuid::from_u128(0x01946a2b_0000_7000_8000_000000000001);
    pub const OTHER: Uuid = Uuid::from_u128(0x01946a2b_0000_7000_8000_000000000002);
    pub const KEY: Uuid = Uuid::from_u128(0x01946a2b_0000_7000_8000_000000000003);
    pub const SESSION: Uuid = Uuid::from_u128(0x01946a2b_0000_7000_8000_000000000004);
    pub const CUSTOMER: Uuid = Uuid::from_u128(0x01946a2b_0000_7000_8000_000000000005);
    pub const ENDPOINT: Uuid = Uuid::from_u128(0x01946a2b_0000_7000_8000_000000000006);
    pub const ENTRY: Uuid = Uuid::from_u128(0x01946a2b_0000_7000_8000_000000000007);
    pub const PROVIDER: Uuid = Uuid::from_u128(0x01946a2b_0000_7000_8000_000000000008);
    pub const INBOUND: Uuid = Uuid::from_u128(0x01946a2b_3c4d_7e5f_8a9b_0c1d2e3f4a00);
    pub const WORKFLOW: Uuid = Uuid::from_u128(0x01946a2b_0000_7000_8000_000000000009);
    pub const EXECUTION: Uuid = Uuid::from_u128(0x01946a2b_3c4d_7e5f_8a9b_0c1d2e3f4a01);
    pub const CONNECTION: Uuid = Uuid::from_u128(0x01946a2b_0000_7000_8000_00000000000b);
    pub const RUN: Uuid = Uuid::from_u128(0x01946a2b_3c4d_7e5f_8a9b_0c1d2e3f4a02);
    pub const ALERT: Uuid = Uuid::from_u128(0x5e1b2c3d_4e5f_4a6b_8c7d_9e0f1a2b3c4e);
    pub const JOB: Uuid = Uuid::from_u128(0x01946a2b_3c4d_7e5f_8a9b_0c1d2e3f4a03);
    pub const TASK: Uuid = Uuid::from_u128(0x01946a2b_0000_7000_8000_00000000000c);
    pub const PROJECT: Uuid = Uuid::from_u128(0x01946a2b_0000_7000_8000_00000000000d);

    /// 2025-01-15T10:30:00Z.
    pub fn occurred_at() -> DateTime<Utc> {
        DateTime::from_timestamp(1_736_937_000, 0).unwrap_or_default()
    }
}

fn actor() -> Value {
    json!({"type": "user", "id": sample::USER.to_string(), "email": "ada@example.com"})
}

fn finished(status: &str, completed: i64, failed: i64, cancelled: i64) -> TryonSessionFinished {
    TryonSessionFinished {
        session_id: sample::SESSION,
        customer_id: sample::CUSTOMER,
        status: status.into(),
        items_total: completed + failed + cancelled,
        completed,
        failed,
        cancelled,
        credits_charged: 3 * (completed + failed + cancelled),
        credits_refunded: 3 * (failed + cancelled),
    }
}

fn key(name: &str) -> ApiKeyChanged {
    ApiKeyChanged {
        key_id: sample::KEY,
        name: name.into(),
        scopes: vec!["customers:read".into(), "tryons:write".into()],
        environment: "live".into(),
    }
}

/// Every catalogue event, in `EVENT_NAMES` order.
pub fn entries() -> Vec<Entry> {
    let entry = |event, summary, description| Entry { event, summary, description };
    vec![
        entry(
            Event::TenantCreated(TenantCreated {
                tenant_id: sample::TENANT,
                name: "Acme Fashion".into(),
                slug: "acme-fashion".into(),
                admin_email: Some("owner@acme.example".into()),
                plan: "professional".into(),
                parent_id: None,
                created_by: Some(sample::USER),
            }),
            "A tenant was created",
            "A tenant was created, by a self-service registration or by a platform admin. It waits in \
             `provisioning` until the tenant-provisioner has run (then `tenant.activated`).\n\n\
             Emitted in the new tenant's own stream, before any endpoint of that tenant can exist: since an \
             endpoint only receives what happens after it was created, in practice no webhook receives this \
             event (bus subscribers do).",
        ),
        entry(
            Event::TenantActivated(TenantActivated {
                tenant_id: sample::TENANT,
                slug: "acme-fashion".into(),
                admin_invitation_sent: true,
            }),
            "A tenant became active",
            "The tenant-provisioner finished: the tenant is `active` and, when it has an `admin_email`, its \
             owner is invited. A tenant's credentials work only once it is active, so this event normally \
             precedes its first endpoint too.",
        ),
        entry(
            Event::TenantUpdated(TenantUpdated {
                tenant_id: sample::TENANT,
                changed_fields: vec!["name".into(), "settings".into()],
                updated_by: Some(sample::USER.to_string()),
            }),
            "A tenant's fields changed",
            "Tenant fields were changed (`PUT`/`PATCH /v1/tenants/{id}`). The payload names the fields; read \
             the tenant for their new values.",
        ),
        entry(
            Event::TenantDeleted(TenantDeleted {
                tenant_id: sample::TENANT,
                deleted_by: Some(sample::USER.to_string()),
                soft_delete: true,
            }),
            "A tenant was deleted",
            "The tenant was soft-deleted: its status is `inactive`, its data kept, its credentials refused.",
        ),
        entry(
            Event::QuotaExceeded(QuotaExceeded {
                tenant_id: sample::TENANT,
                quota_type: "users".into(),
                current_usage: 5,
                plan_limit: 5,
                requested_increase: 1,
                plan: "free".into(),
            }),
            "A create was refused by the plan's quota",
            "A request that would have created a user or a project was refused (403 `quota_exceeded`) because \
             the plan's quota is full. Nothing else changed; consider upgrading the plan.",
        ),
        entry(
            Event::UserCreated(UserCreated {
                user_id: sample::USER,
                email: "ada@example.com".into(),
                role: "developer".into(),
                via: "invitation".into(),
            }),
            "A member joined the tenant",
            "A user became a member of the tenant: created by an admin (`via: api`), as the tenant's first \
             member at registration (`registration`), by accepting an invitation (`invitation`) or seeded \
             (`seed`).",
        ),
        entry(
            Event::UserInvited(UserInvited {
                invitation_id: sample::OTHER,
                email: "grace@example.com".into(),
                role: "user".into(),
            }),
            "An invitation was sent",
            "Someone was invited to join the tenant with a role; `user.created` (`via: invitation`) follows \
             when they accept.",
        ),
        entry(
            Event::UserUpdated(UserUpdated { user_id: sample::USER, role: "admin".into(), is_active: true }),
            "A member's role or status changed",
            "A member's role or active flag changed; the payload has both as they are after the change.",
        ),
        entry(
            Event::UserDeleted(UserDeleted { user_id: sample::USER }),
            "A member was removed",
            "A member was removed from the tenant.",
        ),
        entry(
            Event::ApiKeyCreated(key("checkout")),
            "An API key was created",
            "An API key was created. The payload never carries the key's secret.",
        ),
        entry(
            Event::ApiKeyRevoked(key("checkout")),
            "An API key was revoked",
            "An API key was revoked: requests with it are refused from now on.",
        ),
        entry(
            Event::ApiKeyRotated(key("checkout")),
            "An API key got a new secret",
            "An API key's secret was replaced; the old secret keeps working only for the grace period the \
             rotation asked for, if any.",
        ),
        entry(
            Event::CreditsAdded(CreditsChanged {
                entry_id: sample::ENTRY,
                amount: 500,
                balance: 740,
                reason: "monthly top-up".into(),
                reference: None,
                actor: actor(),
            }),
            "Credits were added",
            "A platform admin granted credits to the tenant. The payload is the ledger entry: the amount, the \
             balance after it, and who granted it.",
        ),
        entry(
            Event::CreditsSpent(CreditsChanged {
                entry_id: sample::ENTRY,
                amount: 25,
                balance: 715,
                reason: "bulk export".into(),
                reference: Some("export-2025-01-15".into()),
                actor: json!({"type": "api_key", "id": sample::KEY.to_string(), "email": null}),
            }),
            "Credits were spent by a metered charge",
            "A metered charge was made (`POST /v1/credits/charges`). A try-on's spends and refunds have no \
             event of their own: its `tryon.session.*` event tells them.",
        ),
        entry(
            Event::TryonItemRequested(TryonItemRequested { session_id: sample::SESSION, item_index: 0 }),
            "A try-on item is to be rendered (internal)",
            "Platform plumbing: asks the try-on worker to render one item of a session's cart. Never \
             delivered to webhooks; watch `tryon.session.*` instead.",
        ),
        entry(
            Event::TryonSessionCompleted(finished("completed", 2, 1, 0)),
            "A try-on session completed",
            "Every item of a try-on session is done and at least one was rendered: fetch the results from the \
             session. Credits of the items that failed or were cancelled were refunded (`credits_refunded`).",
        ),
        entry(
            Event::TryonSessionFailed(finished("failed", 0, 3, 0)),
            "A try-on session failed",
            "Every item of a try-on session is done and none was rendered (at least one failed). Its credits \
             were refunded.",
        ),
        entry(
            Event::TryonSessionCancelled(finished("cancelled", 0, 0, 3)),
            "A try-on session was cancelled",
            "Every item of a try-on session was cancelled before it was rendered. Its credits were refunded.",
        ),
        entry(
            Event::WebhookTest(WebhookTest {
                endpoint_id: sample::ENDPOINT,
                message: "a test event from the platform".into(),
            }),
            "A test delivery",
            "Sent by `POST /v1/webhooks/{id}/test` to that endpoint only, whatever its `event_types` (it must \
             be `active`). It takes the real path (outbox, bus, dispatcher), signed and retried like any other \
             event.",
        ),
        entry(
            Event::WebhookReplayRequested(WebhookReplayRequested {
                endpoint_id: sample::ENDPOINT,
                delivery_id: sample::EVENT,
            }),
            "A failed delivery is to be sent again (internal)",
            "Platform plumbing: `POST /v1/webhooks/{id}/deliveries/{delivery_id}/replay` moved a failed \
             delivery back to `pending`; the dispatcher queues it again. Never delivered as an event of its \
             own: the endpoint receives the replayed delivery (its original body and `webhook-id`).",
        ),
        entry(
            Event::WebhookEndpointDisabled(WebhookEndpointDisabled {
                endpoint_id: sample::ENDPOINT,
                url: "https://hooks.acme.example/platform".into(),
                reason: "its last 10 deliveries failed".into(),
            }),
            "A webhook endpoint was disabled",
            "The platform stopped delivering to an endpoint: its last deliveries failed one after another, or \
             it answered `410 Gone`. The disabled endpoint itself does not receive this event; the tenant's \
             other endpoints that subscribe to it do. `PATCH /v1/webhooks/{id}` with `{\"status\": \
             \"active\"}` re-enables it.",
        ),
        entry(
            Event::AuditEntryCreated(AuditEntryCreated {
                id: sample::EVENT,
                action: "update".into(),
                resource_type: "user".into(),
                resource_id: sample::USER.to_string(),
                actor: actor(),
                old_values: json!({"role": "developer"}),
                new_values: json!({"role": "admin"}),
                timestamp: "2025-01-15T10:30:00Z".into(),
                request_id: Some("0190f3a4-6b1e-7c2d-8e9f-0a1b2c3d4e5f".into()),
            }),
            "An audit entry was written",
            "Every change the tenant's audit trail records, as written (secrets redacted; `GET \
             /v1/audit/logs` shows the same entries), so an endpoint can follow the trail (`audit.*`). The \
             entry's id is also the event's id.",
        ),
        entry(
            Event::InvoiceCreated(invoice(None, "draft")),
            "A draft invoice was made",
            "`POST /v1/billing/invoices/generate` or the monthly period close (the billing worker, for each \
             tenant with a subscription or metered components) made a draft. It has no number yet.",
        ),
        entry(
            Event::InvoiceFinalized(invoice(Some("INV-2026-0001"), "finalized")),
            "An invoice was finalized",
            "`POST /v1/billing/invoices/{id}/finalize` gave the invoice its number (gapless per tenant and \
             year) and its PDF; it can no longer change.",
        ),
        entry(
            Event::InvoicePaid(invoice(Some("INV-2026-0001"), "paid")),
            "An invoice was paid",
            "`POST /v1/billing/invoices/{id}/mark_paid` recorded the payment of a finalized invoice.",
        ),
        entry(
            Event::InvoiceVoided(invoice(Some("INV-2026-0001"), "void")),
            "An invoice was voided",
            "`POST /v1/billing/invoices/{id}/void`: a draft or an unpaid finalized invoice was voided (a \
             finalized one keeps its number).",
        ),
        entry(
            Event::UsageThresholdReached(UsageThresholdReached {
                limit: "api_calls_monthly".into(),
                threshold_percent: 80,
                used: "800000".into(),
                limit_value: 1_000_000,
                period: "2026-12".into(),
            }),
            "A limit is 80 % or 100 % used",
            "A metered figure (API calls, AI requests, storage, users, projects) crossed 80 % or 100 % of the \
             tenant's limit. Sent once per limit, threshold and calendar month (UTC), seconds after the usage \
             that crossed it (the billing worker reads the table's stream).",
        ),
        entry(
            Event::CreditsLowBalance(CreditsLowBalance { balance: 40, threshold: 50 }),
            "The credit balance is low",
            "The prepaid credit balance fell below the `credits_low_balance_threshold` set on the billing \
             account. Sent once per fall; a grant that lifts the balance above the threshold re-arms it.",
        ),
        entry(
            Event::IntegrationEventReceived(IntegrationEventReceived {
                inbound_id: sample::INBOUND,
                provider_id: sample::PROVIDER,
                provider: "user_service".into(),
                event_id: "evt_123".into(),
                event_type: "user.created".into(),
                payload_key: format!(
                    "tenants/{}/integrations/{}/{}.json",
                    sample::TENANT,
                    sample::PROVIDER,
                    sample::INBOUND
                ),
                received_at: "2025-01-15T10:30:00.120Z".into(),
                data: json!({"event_type": "user.created", "event_id": "evt_123",
                             "data": {"user_id": "123", "email": "user@example.com", "name": "John Doe"}}),
                payload_on_bus: true,
            }),
            "A provider's webhook was received",
            "An integration provider's webhook passed its signature check and was stored \
             (`POST /v1/integrations/webhooks/{token}`), or a stored one was replayed. `data` is the sender's \
             body when at most 64 KiB (`payload_on_bus`), else read it with `GET /v1/integrations/events/{id}`. \
             On the bus its `source` is `saas.integrations.<provider name>`.",
        ),
        entry(
            Event::WorkflowNotification(WorkflowNotification {
                workflow_id: sample::WORKFLOW,
                execution_id: sample::EXECUTION,
                step: "notify_finance".into(),
                message: "Payment pay_123 approved".into(),
                data: json!({"payment_id": "pay_123", "amount": 1000}),
            }),
            "A workflow's notification step ran",
            "A `notification` step of a workflow execution (`POST /v1/workflows`): `message` rendered over the \
             execution's context, `data` its field mapping applied.",
        ),
        entry(
            Event::WorkflowExecutionFailed(WorkflowExecutionFailed {
                workflow_id: sample::WORKFLOW,
                workflow_name: "Payment review".into(),
                execution_id: sample::EXECUTION,
                status: "failed".into(),
                error_code: "step_failed".into(),
                error_message: "HTTP 503 from crm".into(),
                step: Some("update_crm".into()),
            }),
            "A workflow execution failed",
            "The alert: an execution ended `failed` (a step failed after its retries, an approval was rejected, \
             too many steps) or `timed_out` (an approval nobody decided, a step never answered). Read its history \
             with `GET /v1/workflows/{id}/executions/{execution_id}`; rerun it from the failed step with `POST \
             .../rerun`.",
        ),
        entry(
            Event::IntegrationSyncFailing(IntegrationSyncFailing {
                alert_id: sample::ALERT,
                connection_id: sample::CONNECTION,
                connection_name: "CRM customers".into(),
                provider_id: sample::PROVIDER,
                consecutive_failures: 3,
                run_id: sample::RUN,
                last_error: "the provider's API answered 503".into(),
            }),
            "A sync connection keeps failing",
            "The alert: a sync connection's runs failed 3 times in a row. Sent once; the alert \
             (`GET /v1/integrations/alerts`) resolves itself when a run succeeds. Read the runs with \
             `GET /v1/integrations/sync-connections/{id}/runs`.",
        ),
        entry(
            Event::AiPhaseRequested(AiPhaseRequested { job_id: sample::JOB, phase_index: 0 }),
            "An AI job's phase is to be run (internal)",
            "Platform plumbing: asks the ai-worker to run one phase of an AI job. Never delivered to webhooks; \
             watch `ai.generation.*` and `ai.analysis.*` instead.",
        ),
        entry(
            Event::AiAnalysisCompleted(ai_finished("analysis", "completed", 1, 0, None)),
            "A task's AI analysis is ready",
            "The analysis of a task created with `POST /v1/tasks` finished: the task now carries \
             `ai_analysis` (`GET /v1/projects/{id}/tasks/{task_id}`).",
        ),
        entry(
            Event::AiAnalysisFailed(ai_finished(
                "analysis",
                "failed",
                0,
                1,
                Some("task_analysis: the model service refused the request"),
            )),
            "A task's AI analysis failed",
            "The model could not analyse the task (refused, or failed three times); its credit was refunded \
             and the task's `analysis_status` is `failed`.",
        ),
        entry(
            Event::AiGenerationProgress(AiGenerationProgress {
                generation_id: sample::JOB,
                task_id: sample::TASK,
                phase: "api_endpoint_generation".into(),
                overall_percentage: 33,
                phases_completed: 3,
                phases_total: 9,
            }),
            "A code generation finished a phase",
            "Sent once per phase of a generation, in order: `overall_percentage` is `floor(100 x \
             phases_completed / phases_total)`.",
        ),
        entry(
            Event::AiGenerationCompleted(ai_finished("generation", "completed", 9, 0, None)),
            "A code generation completed",
            "Every phase of a generation ran: read the files and the zip with `GET \
             /v1/ai/generated-code/{id}`.",
        ),
        entry(
            Event::AiGenerationFailed(ai_finished(
                "generation",
                "failed",
                3,
                4,
                Some("data_model_generation failed after 3 attempt(s): the model service is throttling requests"),
            )),
            "A code generation failed",
            "A phase could not be completed (the model refused, or failed three times); the credits of the \
             unfinished model phases were refunded (`credits_refunded`).",
        ),
        entry(
            Event::AiGenerationCancelled(ai_finished("generation", "cancelled", 4, 3, None)),
            "A code generation was cancelled",
            "`POST /v1/ai/generations/{id}/cancel` stopped the generation; the credits of its unfinished model \
             phases were refunded (`credits_refunded`).",
        ),
        entry(
            Event::ComplianceExportRequested(ComplianceExportRequested { export_id: sample::EVENT }),
            "A tenant data export is to be built (internal)",
            "Platform plumbing: asks the compliance worker to build the zip of `POST /v1/compliance/exports`. \
             Never delivered to webhooks; poll `GET /v1/compliance/exports/{id}` instead.",
        ),
    ]
}

fn ai_finished(kind: &str, status: &str, done: u32, refunded: i64, error: Option<&str>) -> AiJobFinished {
    let charged = if kind == "analysis" { 1 - refunded } else { 7 - refunded };
    AiJobFinished {
        job_id: sample::JOB,
        kind: kind.into(),
        task_id: sample::TASK,
        project_id: sample::PROJECT,
        status: status.into(),
        phases_completed: done,
        credits_charged: charged,
        credits_refunded: refunded,
        error: error.map(str::to_owned),
    }
}

fn invoice(number: Option<&str>, status: &str) -> InvoiceChanged {
    InvoiceChanged {
        invoice_id: sample::EVENT,
        number: number.map(str::to_owned),
        status: status.into(),
        period_start: "2026-11-01".into(),
        period_end: "2026-11-30".into(),
        currency: "USD".into(),
        total_amount: "4590.81".into(),
    }
}

/// A payload struct's schema: its name, its schema and the schemas it
/// refers to, as JSON.
pub struct Payload {
    pub name: String,
    pub schema: Value,
    pub nested: Vec<(String, Value)>,
}

impl Payload {
    fn of<T: utoipa::ToSchema>() -> Self {
        let mut nested = Vec::new();
        T::schemas(&mut nested);
        let mut nested: Vec<(String, Value)> =
            nested.into_iter().map(|(name, schema)| (name, json_of(&schema))).collect();
        let mut schema = json_of(&<T as utoipa::PartialSchema>::schema());
        // The catalogue sits below the domain layer, so its `actor` fields
        // are free-form objects there; here they are the domain's `Actor`.
        if let Some(actor) = schema.pointer_mut("/properties/actor") {
            let description = actor.get("description").cloned();
            *actor = json!({"$ref": "#/components/schemas/Actor"});
            if let Some(description) = description {
                actor["description"] = description;
            }
            nested.push(("Actor".to_owned(), json_of(&<Actor as utoipa::PartialSchema>::schema())));
        }
        Self { name: T::name().into_owned(), schema, nested }
    }
}

fn json_of(schema: &impl serde::Serialize) -> Value {
    serde_json::to_value(schema).unwrap_or(Value::Null)
}

/// The schema of an event's `data` (exhaustive: a new event must say).
pub fn payload_schema(event: &Event) -> Payload {
    match event {
        Event::TenantCreated(_) => Payload::of::<TenantCreated>(),
        Event::TenantActivated(_) => Payload::of::<TenantActivated>(),
        Event::TenantUpdated(_) => Payload::of::<TenantUpdated>(),
        Event::TenantDeleted(_) => Payload::of::<TenantDeleted>(),
        Event::QuotaExceeded(_) => Payload::of::<QuotaExceeded>(),
        Event::UserCreated(_) => Payload::of::<UserCreated>(),
        Event::UserInvited(_) => Payload::of::<UserInvited>(),
        Event::UserUpdated(_) => Payload::of::<UserUpdated>(),
        Event::UserDeleted(_) => Payload::of::<UserDeleted>(),
        Event::ApiKeyCreated(_) | Event::ApiKeyRevoked(_) | Event::ApiKeyRotated(_) => Payload::of::<ApiKeyChanged>(),
        Event::CreditsAdded(_) | Event::CreditsSpent(_) => Payload::of::<CreditsChanged>(),
        Event::TryonItemRequested(_) => Payload::of::<TryonItemRequested>(),
        Event::TryonSessionCompleted(_) | Event::TryonSessionFailed(_) | Event::TryonSessionCancelled(_) => {
            Payload::of::<TryonSessionFinished>()
        }
        Event::WebhookTest(_) => Payload::of::<WebhookTest>(),
        Event::WebhookReplayRequested(_) => Payload::of::<WebhookReplayRequested>(),
        Event::WebhookEndpointDisabled(_) => Payload::of::<WebhookEndpointDisabled>(),
        Event::AuditEntryCreated(_) => Payload::of::<AuditEntryCreated>(),
        Event::InvoiceCreated(_) | Event::InvoiceFinalized(_) | Event::InvoicePaid(_) | Event::InvoiceVoided(_) => {
            Payload::of::<InvoiceChanged>()
        }
        Event::UsageThresholdReached(_) => Payload::of::<UsageThresholdReached>(),
        Event::CreditsLowBalance(_) => Payload::of::<CreditsLowBalance>(),
        Event::IntegrationEventReceived(_) => Payload::of::<IntegrationEventReceived>(),
        Event::WorkflowNotification(_) => Payload::of::<WorkflowNotification>(),
        Event::WorkflowExecutionFailed(_) => Payload::of::<WorkflowExecutionFailed>(),
        Event::IntegrationSyncFailing(_) => Payload::of::<IntegrationSyncFailing>(),
        Event::AiPhaseRequested(_) => Payload::of::<AiPhaseRequested>(),
        Event::AiAnalysisCompleted(_)
        | Event::AiAnalysisFailed(_)
        | Event::AiGenerationCompleted(_)
        | Event::AiGenerationFailed(_)
        | Event::AiGenerationCancelled(_) => Payload::of::<AiJobFinished>(),
        Event::AiGenerationProgress(_) => Payload::of::<AiGenerationProgress>(),
        Event::ComplianceExportRequested(_) => Payload::of::<ComplianceExportRequested>(),
    }
}

/// The events an endpoint can receive.
fn deliverable() -> impl Iterator<Item = Entry> {
    entries().into_iter().filter(|e| !e.internal())
}

fn seconds(list: &[i64]) -> String {
    let items: Vec<String> = list.iter().map(|s| format!("{s} s")).collect();
    match items.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
        None => String::new(),
    }
}

/// Who receives `name`, and what the dispatcher makes of the answer.
fn delivery_rules(name: &str) -> String {
    let who = if name == "webhook.test" {
        "**Who receives it**: the tested endpoint only."
    } else {
        "**Who receives it**: every `active` endpoint of the event's tenant whose `event_types` match it (the \
         exact type, its family such as `tenant.*`, or `*`) and that existed when the event happened."
    };
    format!(
        "{who}\n\n\
         **Delivery**: a `POST` of the JSON body below with `content-type: application/json`, `user-agent: \
         {USER_AGENT}` and the Standard Webhooks headers (see the parameters). Delivery is at least once: the \
         same event may arrive more than once, always with the same `webhook-id` (and body `id`), so drop \
         duplicates by it. Events are not ordered.\n\n\
         **Retries**: an answer other than 2xx (redirects are not followed), no answer within {timeout} s, or a \
         connection failure is a failed attempt. It is retried after the endpoint's `retry_schedule_seconds` \
         (by default {default}: {attempts} attempts in all; an endpoint may set 1 to {max_retries} delays of \
         1 to {max_delay} s, a day in all at most). A `Retry-After` answer header in whole seconds is honoured \
         within the schedule's bounds (never sooner than planned, never later than its longest delay). A \
         delivery out of attempts is `failed`, kept {retention} days in the delivery log for replay (`POST \
         /v1/webhooks/{{id}}/deliveries/{{delivery_id}}/replay`). After {disable} failed deliveries in a row the \
         endpoint is disabled (`webhook_endpoint.disabled`); any success resets the count. `410 Gone` disables \
         it at once. The first {kept} bytes of each answer are kept in the delivery log.",
        timeout = FETCH_TIMEOUT.as_secs(),
        default = seconds(&DEFAULT_SCHEDULE),
        attempts = DEFAULT_SCHEDULE.len() + 1,
        max_retries = MAX_RETRIES,
        max_delay = MAX_SCHEDULE_SECONDS,
        retention = DELIVERY_RETENTION_DAYS,
        disable = DISABLE_AFTER_FAILURES,
        kept = KEPT_RESPONSE_BYTES,
    )
}

/// The headers every delivery carries (webhook-dispatcher's `attempt`,
/// `shared::webhook_signing`).
fn header_parameters() -> Value {
    let verify = "Verify it before trusting the body: take the endpoint's signing secret (`whsec_...`, shown when \
                  the endpoint is created or its secret rotated), base64-decode the part after `whsec_` to get \
                  the key, compute HMAC-SHA256 with that key over `{webhook-id}.{webhook-timestamp}.{body}` (the \
                  raw request body, byte for byte, before any JSON parsing) and base64-encode it (standard \
                  alphabet, padded); it must equal the part after `v1,`, compared in constant time. Any Standard \
                  Webhooks library does this (`Webhook(secret).verify(body, headers)`). A rotated secret signs \
                  every attempt from the rotation on.";
    json!([
        {
            "name": "webhook-id",
            "in": "header",
            "required": true,
            "description": "The message id: `msg_` and the event's id in 32 hex digits (the body's `id` without \
                            dashes). The same on every attempt and replay of a delivery: drop duplicates by it.",
            "schema": {"type": "string", "pattern": "^msg_[0-9a-f]{32}$"},
            "example": "msg_01946a2b3c4d7e5f8a9b0c1d2e3f4a5b",
        },
        {
            "name": "webhook-timestamp",
            "in": "header",
            "required": true,
            "description": "When this attempt was signed, in Unix epoch seconds (each retry has its own). Part of \
                            the signed content; refuse messages whose timestamp is more than a few minutes from \
                            your clock (the Standard Webhooks advice is 5), which defeats replays.",
            "schema": {"type": "integer", "format": "int64", "minimum": 0},
            "example": 1_736_937_001,
        },
        {
            "name": "webhook-signature",
            "in": "header",
            "required": true,
            "description": format!("`v1,` and the base64 HMAC-SHA256 signature of this attempt. {verify} The \
                                    platform sends one signature; the Standard Webhooks format allows a \
                                    space-separated list, so accept any `v1,` entry that matches."),
            "schema": {"type": "string", "pattern": "^v1,[A-Za-z0-9+/]{43}=$"},
            "example": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
        },
        {
            "name": "user-agent",
            "in": "header",
            "required": true,
            "description": "The dispatcher's name and version.",
            "schema": {"type": "string"},
            "example": USER_AGENT,
        },
    ])
}

fn schema_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

/// The body the dispatcher POSTs for `entry` (`webhook_dispatcher::payload`).
fn webhook_body_schema(entry: &Entry, data: Value) -> Value {
    let name = entry.name();
    json!({
        "type": "object",
        "description": format!("The `{name}` event as delivered."),
        "required": ["id", "type", "timestamp", "tenant_id", "data"],
        "properties": {
            "id": {
                "type": "string", "format": "uuid",
                "description": "The event's id: the same on every attempt and replay (the `webhook-id` header is \
                                `msg_` and this id without dashes). Drop duplicates by it.",
            },
            "type": {"type": "string", "const": name, "description": "The event's name."},
            "timestamp": {
                "type": "string", "format": "date-time",
                "description": "When the event happened (RFC 3339, UTC, up to nanosecond precision), not when it \
                                was sent.",
            },
            "tenant_id": {"type": "string", "format": "uuid", "description": "The tenant the event belongs to."},
            "data": data,
        },
    })
}

fn operation_id(name: &str) -> String {
    format!("webhook_{}", name.replace('.', "_"))
}

/// The document's `webhooks`: one Path Item per event an endpoint can
/// receive (every catalogue event but the platform's plumbing), keyed by
/// the event's name.
pub fn webhooks() -> Value {
    let mut webhooks = Map::new();
    for entry in deliverable() {
        let payload = payload_schema(&entry.event);
        let name = entry.name();
        let operation = json!({
            "operationId": operation_id(name),
            "tags": [TAG],
            "summary": entry.summary,
            "description": format!("{}\n\n{}", entry.description, delivery_rules(name)),
            "parameters": header_parameters(),
            "requestBody": {
                "required": true,
                "description": format!("The `{name}` event (payload version {}).", entry.event.version()),
                "content": {"application/json": {
                    "schema": webhook_body_schema(&entry, schema_ref(&payload.name)),
                    "example": entry.webhook_body(),
                }},
            },
            "responses": {
                "2XX": {"description": "Accepted: the delivery succeeded and is not sent again. Answer fast \
                                        (within the time limit) and do the work afterwards."},
                "410": {"description": "Gone: the endpoint is disabled at once; nothing more is sent to it \
                                        until it is re-enabled."},
                "default": {"description": format!(
                    "Any other answer (3xx included), or none within {} s: the attempt failed and is retried on \
                     the endpoint's schedule (by default after {}), then the delivery fails; {} failed \
                     deliveries in a row disable the endpoint.",
                    FETCH_TIMEOUT.as_secs(),
                    seconds(&DEFAULT_SCHEDULE),
                    DISABLE_AFTER_FAILURES,
                )},
            },
        });
        webhooks.insert(name.to_owned(), json!({"post": operation}));
    }
    Value::Object(webhooks)
}

/// Schemas the `webhooks` entries refer to (`#/components/schemas/...`):
/// the payloads of the deliverable events (`...EventData`) and what they
/// refer to (`Actor`, the API's own).
pub fn components() -> Map<String, Value> {
    let mut schemas = Map::new();
    for entry in deliverable() {
        let payload = payload_schema(&entry.event);
        schemas.extend(payload.nested);
        schemas.insert(payload.name, payload.schema);
    }
    schemas
}

/// `value` with every `#/components/schemas/` reference made a `#/$defs/`
/// one (the event schemas are self-contained).
fn to_defs(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(reference)) = map.get_mut("$ref")
                && let Some(name) = reference.strip_prefix("#/components/schemas/")
            {
                *reference = format!("#/$defs/{name}");
            }
            map.values_mut().for_each(to_defs);
        }
        Value::Array(items) => items.iter_mut().for_each(to_defs),
        _ => {}
    }
}

fn uuid_schema(description: &str) -> Value {
    json!({"type": "string", "format": "uuid", "description": description})
}

/// One event on the bus, as a rule's target receives it.
fn event_schema(entry: &Entry) -> Value {
    let name = entry.name();
    let payload = payload_schema(&entry.event);
    let mut defs = Map::new();
    defs.extend(payload.nested);
    defs.insert(payload.name.clone(), payload.schema);
    let mut defs = Value::Object(defs);
    to_defs(&mut defs);
    // Platform events come from one source; an inbound integration event's
    // names its provider (`DomainEvent::source`).
    let integration = name == shared::events::catalogue::INTEGRATION_EVENT_RECEIVED;
    let source = if integration { "saas.integrations.<provider name>".to_owned() } else { EVENT_SOURCE.to_owned() };
    let source_schema = if integration {
        json!({"type": "string", "description": "`saas.integrations.` and the provider's name."})
    } else {
        json!({"type": "string", "const": EVENT_SOURCE, "description": "Every platform event's source."})
    };
    let delivery = if entry.internal() {
        "Internal: platform plumbing, never delivered to webhooks; its shape may change without a new version."
            .to_owned()
    } else {
        format!("Also delivered to webhooks (OpenAPI `webhooks` > `{name}`, in another envelope).")
    };
    json!({
        "$schema": DRAFT_2020_12,
        "$id": format!("{SCHEMA_BASE}{name}.json"),
        "title": name,
        "description": format!(
            "{}\n\nThe EventBridge event on the platform's bus (source `{source}`, detail-type `{name}`), \
             as a rule's target receives it; `detail` is the domain event as the outbox wrote it. {delivery}",
            entry.description
        ),
        "x-event-name": name,
        "x-event-version": entry.event.version(),
        "x-internal": entry.internal(),
        "type": "object",
        "required": ["version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail"],
        "properties": {
            "version": {"type": "string", "const": "0", "description": "EventBridge's envelope version."},
            "id": uuid_schema("EventBridge's id for this put on the bus (not the domain event's: deduplicate by \
                               `detail.id`, a retried put gets a new one)."),
            "detail-type": {"type": "string", "const": name, "description": "The event's name."},
            "source": source_schema,
            "account": {"type": "string", "description": "The AWS account of the bus (12 digits)."},
            "time": {
                "type": "string", "format": "date-time",
                "description": "When the event was put on the bus (seconds precision); `detail.occurred_at` is \
                                when it happened.",
            },
            "region": {"type": "string", "description": "The bus's AWS region."},
            "resources": {"type": "array", "items": {"type": "string"}, "description": "Always empty."},
            "detail": {
                "type": "object",
                "description": "The domain event (`shared::events::DomainEvent`), as written to the outbox.",
                "required": ["id", "type", "version", "tenant_id", "occurred_at", "data"],
                "properties": {
                    "id": uuid_schema("The event's id (a UUIDv7): stable across redeliveries, drop duplicates \
                                       by it. Webhook deliveries carry it as their body's `id`."),
                    "type": {"type": "string", "const": name, "description": "The event's name (= `detail-type`)."},
                    "version": {
                        "type": "integer", "const": entry.event.version(),
                        "description": "The payload's version: fields are added freely, renamed or removed only \
                                        with a new version.",
                    },
                    "tenant_id": uuid_schema("The tenant the event belongs to."),
                    "occurred_at": {
                        "type": "string", "format": "date-time",
                        "description": "When it happened (RFC 3339, UTC, up to nanosecond precision).",
                    },
                    "data": {"$ref": format!("#/$defs/{}", payload.name)},
                },
            },
        },
        "$defs": defs,
        "examples": [entry.bus_event()],
    })
}

/// docs/events/: file name and JSON Schema of each event on the bus (every
/// catalogue event, the internal ones marked `x-internal`).
pub fn event_schemas() -> Vec<(String, Value)> {
    entries().iter().map(|entry| (format!("{}.json", entry.name()), event_schema(entry))).collect()
}

#[cfg(test)]
mod tests {
    use chrono::DateTime;
    use shared::events::{EventBridgeEnvelope, catalogue::EVENT_NAMES};
    use uuid::Uuid;

    use super::*;

    #[test]
    fn every_catalogue_event_is_described_once_and_in_order() {
        let names: Vec<&str> = entries().iter().map(Entry::name).collect();
        assert_eq!(names, EVENT_NAMES, "an entry per catalogued event, in EVENT_NAMES order");
        for internal in INTERNAL_EVENTS {
            assert!(EVENT_NAMES.contains(internal), "{internal} is a catalogue event");
        }
    }

    #[test]
    fn every_event_is_a_webhook_or_platform_plumbing() {
        let webhooks = webhooks();
        let webhooks = webhooks.as_object().expect("an object");
        for name in EVENT_NAMES {
            assert!(
                webhooks.contains_key(*name) != INTERNAL_EVENTS.contains(name),
                "{name}: a webhook exactly when it is not internal"
            );
        }
        assert_eq!(webhooks.len(), EVENT_NAMES.len() - INTERNAL_EVENTS.len());
        let mut ids: Vec<&str> =
            webhooks.values().map(|item| item["post"]["operationId"].as_str().expect("an operationId")).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), webhooks.len(), "operation ids are unique");
    }

    #[test]
    fn every_payload_schema_serialises_and_every_reference_resolves() {
        let schemas = components();
        for entry in entries() {
            let payload = payload_schema(&entry.event);
            assert!(payload.name.ends_with("EventData"), "{}: not a name the API uses", payload.name);
            assert_eq!(payload.schema["type"], "object", "{}", payload.name);
            assert!(payload.schema["properties"].as_object().is_some_and(|p| !p.is_empty()), "{}", payload.name);
        }
        let webhooks = webhooks();
        let mut references = Vec::new();
        collect_refs(&webhooks, &mut references);
        collect_refs(&Value::Object(schemas.clone()), &mut references);
        for reference in references {
            let name = reference.strip_prefix("#/components/schemas/").expect("a schema reference");
            assert!(schemas.contains_key(name), "{reference} resolves");
        }
    }

    fn collect_refs(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(r)) = map.get("$ref") {
                    out.push(r.clone());
                }
                map.values().for_each(|v| collect_refs(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
            _ => {}
        }
    }

    /// The examples are the real thing: the webhook body is the
    /// dispatcher's and parses back into the sample; the bus event is what
    /// the consumers (`EventBridgeEnvelope`) read.
    #[test]
    fn the_samples_are_what_the_code_sends_and_reads() {
        for entry in entries() {
            let body = entry.webhook_body();
            assert_eq!(body["type"], entry.name());
            let parsed = Event::parse(&DomainEvent {
                id: sample::EVENT,
                event_type: entry.name().to_owned(),
                version: 1,
                tenant_id: sample::TENANT,
                occurred_at: sample::occurred_at(),
                data: body["data"].clone(),
            })
            .expect("the webhook body's data parses");
            assert_eq!(parsed, entry.event);
            let envelope: EventBridgeEnvelope =
                serde_json::from_value(entry.bus_event()).expect("the bus event reads as the consumers read it");
            assert_eq!(envelope.event().expect("our source, a catalogued event"), entry.event);
        }
    }

    /// Each event schema validates its sample bus event, and the webhook
    /// body schema its sample body (a validator of the keywords these
    /// schemas use, which refuses any other: the crate has no JSON Schema
    /// library; `make`'s Python check runs a full one).
    #[test]
    fn each_schema_validates_its_sample_and_refuses_a_broken_one() {
        let components = Value::Object(components());
        let webhooks = webhooks();
        for (file, schema) in event_schemas() {
            assert_eq!(schema["$schema"], DRAFT_2020_12);
            let entry = entries().into_iter().find(|e| file == format!("{}.json", e.name())).expect("an entry");
            let sample = &schema["examples"][0];
            assert_eq!(sample, &entry.bus_event());
            let defs = &schema["$defs"];
            validate(&schema, sample, defs, "#/$defs/").unwrap_or_else(|e| panic!("{file}: {e}"));

            let mut broken = sample.clone();
            broken["detail"]["type"] = json!("user.exploded");
            assert!(validate(&schema, &broken, defs, "#/$defs/").is_err(), "{file}: a wrong detail type");
            let mut broken = sample.clone();
            let data = broken["detail"]["data"].as_object_mut().expect("an object");
            let first = data.keys().next().expect("a field").clone();
            data.remove(&first);
            assert!(validate(&schema, &broken, defs, "#/$defs/").is_err(), "{file}: a missing field");

            if let Some(item) = webhooks.get(entry.name()) {
                let media = &item["post"]["requestBody"]["content"]["application/json"];
                let body = &media["example"];
                assert_eq!(body, &entry.webhook_body());
                validate(&media["schema"], body, &components, "#/components/schemas/")
                    .unwrap_or_else(|e| panic!("webhook {}: {e}", entry.name()));
            }
        }
    }

    /// Annotations: no effect on validity.
    const ANNOTATIONS: &[&str] =
        &["$schema", "$id", "$defs", "title", "description", "examples", "example", "default", "deprecated"];

    fn validate(schema: &Value, value: &Value, defs: &Value, prefix: &str) -> Result<(), String> {
        let Some(schema) = schema.as_object() else {
            return if schema == &Value::Bool(true) { Ok(()) } else { Err(format!("schema {schema}")) };
        };
        for (keyword, rule) in schema {
            match keyword.as_str() {
                "$ref" => {
                    let reference = rule.as_str().ok_or("a $ref")?;
                    let name = reference.strip_prefix(prefix).ok_or(format!("{reference}: not under {prefix}"))?;
                    let target = defs.get(name).ok_or(format!("{reference} does not resolve"))?;
                    validate(target, value, defs, prefix)?;
                }
                "type" => {
                    let types: Vec<&str> = match rule {
                        Value::String(t) => vec![t.as_str()],
                        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
                        _ => return Err(format!("type {rule}")),
                    };
                    if !types.iter().any(|t| has_type(value, t)) {
                        return Err(format!("{value} is not {types:?}"));
                    }
                }
                "const" if value != rule => return Err(format!("{value} is not {rule}")),
                "enum" if !rule.as_array().is_some_and(|options| options.contains(value)) => {
                    return Err(format!("{value} is not one of {rule}"));
                }
                "required" => {
                    for field in rule.as_array().ok_or("required")? {
                        let field = field.as_str().ok_or("a field name")?;
                        if value.as_object().is_some_and(|o| !o.contains_key(field)) {
                            return Err(format!("{field} is missing"));
                        }
                    }
                }
                "properties" => {
                    for (field, sub) in rule.as_object().ok_or("properties")? {
                        if let Some(v) = value.get(field) {
                            validate(sub, v, defs, prefix).map_err(|e| format!("{field}: {e}"))?;
                        }
                    }
                }
                "items" => {
                    for item in value.as_array().into_iter().flatten() {
                        validate(rule, item, defs, prefix)?;
                    }
                }
                "minimum" => {
                    if let (Some(v), Some(min)) = (value.as_f64(), rule.as_f64())
                        && v < min
                    {
                        return Err(format!("{v} < {min}"));
                    }
                }
                "format" => {
                    let Some(text) = value.as_str() else { continue };
                    let ok = match rule.as_str() {
                        Some("uuid") => Uuid::parse_str(text).is_ok(),
                        Some("date-time") => DateTime::parse_from_rfc3339(text).is_ok(),
                        _ => true,
                    };
                    if !ok {
                        return Err(format!("{text} is not a {rule}"));
                    }
                }
                "const" | "enum" => {}
                other if ANNOTATIONS.contains(&other) || other.starts_with("x-") => {}
                other => return Err(format!("the test's validator does not know `{other}`")),
            }
        }
        Ok(())
    }

    fn has_type(value: &Value, name: &str) -> bool {
        match name {
            "object" => value.is_object(),
            "array" => value.is_array(),
            "string" => value.is_string(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            "boolean" => value.is_boolean(),
            "null" => value.is_null(),
            _ => false,
        }
    }

    #[test]
    fn the_figures_are_the_codes() {
        let rules = delivery_rules("user.created");
        assert!(rules.contains("5 s, 15 s and 45 s: 4 attempts"), "{rules}");
        assert!(rules.contains("After 10 failed deliveries in a row"), "{rules}");
        assert!(rules.contains("within 10 s"), "{rules}");
    }
}
