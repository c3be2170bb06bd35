//! The local server: every route group's routes on one port, plus what AWS
//! runs around the functions:
//! - pollers that feed SQS messages to the worker handlers the way Lambda's
//!   event source mapping does (batches of up to 10, delete what succeeded,
//!   leave failed messages to reappear after the visibility timeout and, past
//!   maxReceiveCount, move to the DLQ);
//! - the outbox relay ([`relay`]): the table's stream to the bus, as the
//!   `OutboxPipe` does in AWS;
//! - the billing worker's stream source ([`meter_feed`]): the same stream to
//!   the api_calls meter, as its DynamoDB event source mapping does in AWS;
//! - the schedules ([`schedules`]): EventBridge Scheduler's `rate(...)`
//!   schedules, which moto stores and never fires.
//!
//! - [`app`]: the merged router.
//! - [`Pollers`]: one task per worker queue, the relay, the meter feed and
//!   the schedules.
//! - [`seed_platform_admin`]: the first platform administrator.

pub mod meter_feed;
pub mod openapi;
pub mod relay;
pub mod schedules;
pub mod stream_reader;
pub mod webhooks_doc;

use std::{sync::Arc, time::Duration};

use anyhow::{Context, Result};
use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, MessageSystemAttributeName};
use axum::Router;
use relay::{OutboxRelay, RelayControl};
use shared::{
    AppState,
    audit::AuditContext,
    auth::{Role, password},
    aws::{AwsClients, call_log::in_function},
    domain::{tenant::Tenant, user::User},
    store::{Store, tenants::CreateTenantError},
    worker::Worker,
};
use tenant_provisioner::Provisioner;
use tokio::task::JoinHandle;
use uuid::Uuid;

/// Every route group with the template function (logical id) that serves it
/// in AWS. Adding a group is a line here (docs/adding-a-route-group.md); the
/// registry test (tests/registry.rs) checks this list against template.yaml.
pub fn route_groups() -> Vec<(&'static str, Router<AppState>)> {
    vec![
        ("AuthFunction", auth::routes()),
        ("TenantsFunction", tenants::routes()),
        ("AuditFunction", audit::routes()),
        ("AdminFunction", admin::routes()),
        ("ProjectsFunction", projects::routes()),
        ("UsersFunction", users::routes()),
        ("CreditsFunction", credits::routes()),
        ("ApiKeysFunction", api_keys::routes()),
        ("CustomersFunction", customers::routes()),
        ("TryonsFunction", tryons::routes()),
        ("WebhooksFunction", webhooks::routes()),
        ("DocsFunction", docs::routes()),
        ("BillingFunction", billing::routes()),
        ("SamlFunction", saml::routes()),
        ("IntegrationsFunction", integrations::routes()),
        ("WorkflowsFunction", workflows::routes()),
        ("AiFunction", ai::routes()),
        ("ComplianceFunction", compliance::routes()),
    ]
}

/// The worker functions the [`Pollers`] feed (template logical ids).
pub const TENANT_PROVISIONER: &str = "TenantProvisionerFunction";
pub const TRYON_WORKER: &str = "TryonWorkerFunction";
pub const WEBHOOK_DISPATCHER: &str = "WebhookDispatcherFunction";
pub const BILLING_WORKER: &str = "BillingWorkerFunction";
pub const INTEGRATIONS_WORKER: &str = "IntegrationsWorkerFunction";
pub const WORKFLOWS_WORKER: &str = "WorkflowsWorkerFunction";
pub const AI_WORKER: &str = "AiWorkerFunction";
pub const COMPLIANCE_WORKER: &str = "ComplianceWorkerFunction";
pub const WORKER_FUNCTIONS: [&str; 8] = [
    TENANT_PROVISIONER,
    TRYON_WORKER,
    WEBHOOK_DISPATCHER,
    BILLING_WORKER,
    INTEGRATIONS_WORKER,
    WORKFLOWS_WORKER,
    AI_WORKER,
    COMPLIANCE_WORKER,
];

/// Every route group, as API Gateway would route them to their functions.
///
/// Unlike one function's `shared::http::finish_app`, the idempotency layer
/// sits inside the routing, on each group: there, like in AWS, everything a
/// request does (the principal, the idempotency record, the handler) runs as
/// the work of the group's function (`shared::aws::call_log`). Outside the
/// groups stay what has no function: request ids, rate-limit headers and the
/// JSON 404 for a path no function serves (API Gateway's own 404 in AWS).
/// The request metrics are each group's too (`Service` is its function).
pub fn app(state: AppState) -> Router {
    let mut routes = Router::new();
    for (function, group) in route_groups() {
        routes = routes.merge(
            group
                .layer(axum::middleware::from_fn_with_state(state.clone(), shared::idempotency::idempotency))
                .layer(axum::middleware::from_fn_with_state(state.clone(), shared::http::request_metrics))
                .layer(axum::middleware::from_fn(
                    move |request: axum::extract::Request, next: axum::middleware::Next| {
                        in_function(function, next.run(request))
                    },
                )),
        );
    }
    routes
        .fallback(shared::http::route_not_found)
        .layer(axum::middleware::from_fn(shared::web::rate_limit_headers))
        .layer(axum::middleware::from_fn(shared::http::api_error_bodies))
        .layer(axum::middleware::from_fn(read_whole_body))
        .layer(axum::middleware::from_fn(shared::http::request_context))
        .with_state(state)
}

/// API Gateway reads a request's whole body (up to its payload limit) before
/// a function sees it; so does the local server. A handler that refuses a
/// request before reading its body then leaves nothing unread on the
/// connection, and a kept-alive client's next request is not lost with it.
async fn read_whole_body(request: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    use axum::response::IntoResponse;
    let (parts, body) = request.into_parts();
    match axum::body::to_bytes(body, shared::http::MAX_BODY_BYTES).await {
        Ok(bytes) => next.run(axum::extract::Request::from_parts(parts, axum::body::Body::from(bytes))).await,
        Err(_) => shared::http::payload_too_large().into_response(),
    }
}

/// The pollers and the relay of one process; dropping them stops nothing,
/// `abort` does.
pub struct Pollers {
    handles: Vec<JoinHandle<()>>,
    relay: Option<RelayControl>,
}

impl Pollers {
    /// Starts a poller for each worker queue named in the environment
    /// (`QUEUE_URL_<BINARY>`, written by infra/local_stack.py) and the outbox
    /// relay (unless `LOCAL_OUTBOX_RELAY=off`: a second server on the same
    /// stack must not relay the same stream twice). The meter feed and the
    /// schedules are one per stack too (one event source mapping per
    /// stream, one Scheduler): they follow `LOCAL_OUTBOX_RELAY` unless
    /// `LOCAL_METER_FEED` / `LOCAL_SCHEDULES` say `on` or `off`.
    pub fn start(clients: &AwsClients, state: &AppState) -> Result<Self> {
        let mut handles = Vec::new();
        let queue = std::env::var("QUEUE_URL_TENANT_PROVISIONER").context("QUEUE_URL_TENANT_PROVISIONER is not set")?;
        let provisioner = Provisioner { store: state.store.clone() };
        handles.push(spawn_poller(clients.sqs.clone(), queue, TENANT_PROVISIONER, Arc::new(provisioner)));
        let queue = std::env::var("QUEUE_URL_TRYON_WORKER").context("QUEUE_URL_TRYON_WORKER is not set")?;
        let worker = tryon_worker::TryonWorker {
            store: state.store.clone(),
            blobs: state.blobs.clone(),
            engine: tryon_worker::engine::ConfiguredEngine::from_env()?,
            garments: tryon_worker::outbound::Fetcher::new(state.config.local_mode)?,
        };
        handles.push(spawn_poller(clients.sqs.clone(), queue, TRYON_WORKER, Arc::new(worker)));
        let events_queue =
            std::env::var("QUEUE_URL_WEBHOOK_DISPATCHER").context("QUEUE_URL_WEBHOOK_DISPATCHER is not set")?;
        let deliveries_queue = std::env::var("QUEUE_URL_WEBHOOK_DISPATCHER_DELIVERIES")
            .context("QUEUE_URL_WEBHOOK_DISPATCHER_DELIVERIES is not set")?;
        let dispatcher = Arc::new(webhook_dispatcher::Dispatcher {
            store: state.store.clone(),
            sqs: clients.sqs.clone(),
            deliveries_queue_url: deliveries_queue.clone(),
            http: shared::outbound::Fetcher::new(state.config.local_mode)?,
            sealing: state.keys.sealing.clone(),
        });
        handles.push(spawn_poller(clients.sqs.clone(), events_queue, WEBHOOK_DISPATCHER, dispatcher.clone()));
        handles.push(spawn_poller(clients.sqs.clone(), deliveries_queue, WEBHOOK_DISPATCHER, dispatcher));
        let queue = std::env::var("QUEUE_URL_BILLING_WORKER").context("QUEUE_URL_BILLING_WORKER is not set")?;
        let billing = billing_worker::BillingWorker { store: state.store.clone(), blobs: state.blobs.clone() };
        handles.push(spawn_poller(clients.sqs.clone(), queue, BILLING_WORKER, Arc::new(billing)));
        let events_queue =
            std::env::var("QUEUE_URL_INTEGRATIONS_WORKER").context("QUEUE_URL_INTEGRATIONS_WORKER is not set")?;
        let jobs_queue = std::env::var("QUEUE_URL_INTEGRATIONS_WORKER_PROBE_JOBS")
            .context("QUEUE_URL_INTEGRATIONS_WORKER_PROBE_JOBS is not set")?;
        let sync_queue = std::env::var("QUEUE_URL_INTEGRATIONS_WORKER_SYNC_RUNS")
            .context("QUEUE_URL_INTEGRATIONS_WORKER_SYNC_RUNS is not set")?;
        let integrations = Arc::new(integrations_worker::IntegrationsWorker {
            store: state.store.clone(),
            sqs: clients.sqs.clone(),
            events_queue_url: events_queue.clone(),
            http: shared::outbound::Fetcher::new(state.config.local_mode)?,
            sync_runs_queue_url: sync_queue.clone(),
            sync_budget: local_sync_budget(),
            // infra/local_stack.py gives every redrive policy this count.
            sync_max_receives: std::env::var("LOCAL_MAX_RECEIVE_COUNT")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(integrations_worker::sync::SYNC_MAX_RECEIVES),
            schedules: state.schedules.clone(),
            sealing: state.keys.sealing.clone(),
            blobs: state.blobs.clone(),
        });
        handles.push(spawn_poller(clients.sqs.clone(), events_queue, INTEGRATIONS_WORKER, integrations.clone()));
        handles.push(spawn_poller(clients.sqs.clone(), jobs_queue, INTEGRATIONS_WORKER, integrations.clone()));
        handles.push(spawn_poller(clients.sqs.clone(), sync_queue, INTEGRATIONS_WORKER, integrations));
        // The interpreter state machine (moto runs it) sends each step here;
        // the bus sends every tenant event to the triggers queue.
        let steps_queue =
            std::env::var("QUEUE_URL_WORKFLOWS_WORKER").context("QUEUE_URL_WORKFLOWS_WORKER is not set")?;
        let triggers_queue = std::env::var("QUEUE_URL_WORKFLOWS_WORKER_TRIGGERS")
            .context("QUEUE_URL_WORKFLOWS_WORKER_TRIGGERS is not set")?;
        let workflows = Arc::new(workflows_worker::WorkflowsWorker {
            store: state.store.clone(),
            engine: shared::workflow_engine::Engine::from_env(state.sfn.clone())?,
            http: shared::outbound::Fetcher::new(state.config.local_mode)?,
            sealing: state.keys.sealing.clone(),
            schedules: state.schedules.clone(),
        });
        handles.push(spawn_poller(clients.sqs.clone(), steps_queue, WORKFLOWS_WORKER, workflows.clone()));
        handles.push(spawn_poller(clients.sqs.clone(), triggers_queue, WORKFLOWS_WORKER, workflows));
        let queue = std::env::var("QUEUE_URL_AI_WORKER").context("QUEUE_URL_AI_WORKER is not set")?;
        let ai = ai_worker::AiWorker {
            store: state.store.clone(),
            blobs: state.blobs.clone(),
            backend: ai_worker::backend::ConfiguredBackend::from_env(&clients.sdk_config)?,
        };
        handles.push(spawn_poller(clients.sqs.clone(), queue, AI_WORKER, Arc::new(ai)));
        let queue = std::env::var("QUEUE_URL_COMPLIANCE_WORKER").context("QUEUE_URL_COMPLIANCE_WORKER is not set")?;
        let compliance = compliance_worker::ComplianceWorker { store: state.store.clone(), blobs: state.blobs.clone() };
        handles.push(spawn_poller(clients.sqs.clone(), queue, COMPLIANCE_WORKER, Arc::new(compliance)));
        let relay_off = std::env::var("LOCAL_OUTBOX_RELAY").is_ok_and(|v| v == "off");
        let switched_on = |name: &str| std::env::var(name).map_or(!relay_off, |v| v != "off");
        if switched_on("LOCAL_METER_FEED") {
            handles.push(meter_feed(clients, state).spawn());
        }
        if switched_on("LOCAL_SCHEDULES") {
            handles.extend(schedules::start(&clients.sqs, &local_dir().join("schedules.json"))?);
            handles.extend(schedules::start_tenant(clients.scheduler.client().clone(), clients.sqs.client().clone()));
        }
        let relay = if relay_off {
            None
        } else {
            let control = RelayControl::default();
            handles.push(outbox_relay(clients, state, control.clone())?.spawn());
            Some(control)
        };
        Ok(Self { handles, relay })
    }

    /// The relay's switch, when this process runs it.
    pub fn relay(&self) -> Option<&RelayControl> {
        self.relay.as_ref()
    }

    pub fn abort(&self) {
        for handle in &self.handles {
            handle.abort();
        }
    }
}

fn local_dir() -> std::path::PathBuf {
    std::path::PathBuf::from(std::env::var("LOCAL_DIR").unwrap_or_else(|_| ".local".to_owned()))
}

fn meter_feed(clients: &AwsClients, state: &AppState) -> meter_feed::MeterFeed {
    meter_feed::MeterFeed {
        dynamodb: clients.dynamodb.clone(),
        sqs: clients.sqs.client().clone(),
        store: state.store.clone(),
        table: state.config.table_name.clone(),
        checkpoint: local_dir().join("meter-feed.json"),
        on_failure_queue_url: std::env::var("STREAM_DLQ_URL_BILLING_WORKER").ok(),
    }
}

fn outbox_relay(clients: &AwsClients, state: &AppState, control: RelayControl) -> Result<OutboxRelay> {
    let dir = local_dir();
    Ok(OutboxRelay {
        dynamodb: clients.dynamodb.clone(),
        eventbridge: clients.eventbridge.client().clone(),
        table: state.config.table_name.clone(),
        bus_name: state.config.event_bus_name.clone(),
        checkpoint: dir.join("outbox-relay.json"),
        control,
    })
}

/// A sync run's time budget here: `LOCAL_SYNC_TIME_BUDGET_SECONDS`, 2 s
/// when unset (the template's 20 s would never hand a local run of a few
/// pages on, and the hand-off is what must work).
fn local_sync_budget() -> Duration {
    let seconds =
        std::env::var("LOCAL_SYNC_TIME_BUDGET_SECONDS").ok().and_then(|v| v.parse::<f64>().ok()).unwrap_or(2.0);
    Duration::from_secs_f64(seconds.clamp(0.0, 900.0))
}

fn spawn_poller<W: Worker>(
    sqs: shared::aws::SqsClient,
    queue_url: String,
    function: &'static str,
    worker: Arc<W>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        tracing::info!(queue_url = %queue_url, "poller started");
        loop {
            if let Err(err) = poll_once(&sqs, &queue_url, function, worker.as_ref()).await {
                tracing::warn!(error = ?err, queue_url = %queue_url, "poll failed; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    })
}

/// One receive, one batch, one delete. Receiving and deleting are Lambda's
/// event source mapping (not the function's code), so only the handler runs
/// as the function's work.
async fn poll_once<W: Worker>(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    function: &'static str,
    worker: &W,
) -> Result<()> {
    let output = sqs
        .receive_message()
        .queue_url(queue_url)
        .max_number_of_messages(10)
        .wait_time_seconds(1)
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("{}", aws_sdk_sqs::error::DisplayErrorContext(&e)))?;
    let messages = output.messages.unwrap_or_default();
    if messages.is_empty() {
        return Ok(());
    }
    let mut event = SqsEvent::default();
    event.records = messages.iter().map(to_lambda_message).collect();
    let failed: Vec<String> = in_function(function, shared::worker::handle_batch(worker, event))
        .await
        .batch_item_failures
        .into_iter()
        .map(|f| f.item_identifier)
        .collect();
    let entries: Vec<DeleteMessageBatchRequestEntry> = messages
        .iter()
        .filter(|m| !m.message_id().is_some_and(|id| failed.iter().any(|f| f == id)))
        .enumerate()
        .filter_map(|(i, m)| {
            DeleteMessageBatchRequestEntry::builder()
                .id(i.to_string())
                .set_receipt_handle(m.receipt_handle.clone())
                .build()
                .ok()
        })
        .collect();
    if !entries.is_empty() {
        sqs.delete_message_batch()
            .queue_url(queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("{}", aws_sdk_sqs::error::DisplayErrorContext(&e)))?;
    }
    Ok(())
}

fn to_lambda_message(message: &aws_sdk_sqs::types::Message) -> SqsMessage {
    let mut m = SqsMessage::default();
    m.message_id = message.message_id.clone();
    m.receipt_handle = message.receipt_handle.clone();
    m.body = message.body.clone();
    m.md5_of_body = message.md5_of_body.clone();
    m.event_source = Some("aws:sqs".to_owned());
    if let Some(attributes) = &message.attributes {
        m.attributes = attributes.iter().map(|(k, v)| (k.as_str().to_owned(), v.clone())).collect();
    }
    m
}

/// Creates the platform's own tenant and its platform administrator unless
/// the email is already taken. Returns whether it created them.
pub async fn seed_platform_admin(store: &Store, email: &str, password_text: &str) -> Result<bool> {
    if store.find_email_owner(email).await.map_err(|e| anyhow::anyhow!("{e}"))?.is_some() {
        return Ok(false);
    }
    let admin_id = Uuid::now_v7();
    let mut tenant = Tenant::minimal("Platform operations", "platform", email, admin_id);
    tenant.slug = format!("platform-{}", &tenant.id.simple().to_string()[20..]);
    tenant.tenant_type = Some("MAIN".into());
    tenant.description = Some("The operator's own tenant; home of platform administrators.".into());
    tenant.plan = "enterprise".into();
    // The operator's tenant needs no onboarding.
    tenant.status = "active".into();
    tenant.onboarding.provisioned_at = Some(tenant.created_at);
    let mut admin = User::new(tenant.id, email, "Platform", "Administrator", Role::Owner);
    admin.id = admin_id;
    admin.platform_admin = true;
    let hash = password::hash_password(password_text)?;
    match store.create_tenant_with_owner(&tenant, &admin, &hash, &AuditContext::system("seed-admin")).await {
        Ok(()) => Ok(true),
        Err(CreateTenantError::EmailTaken) => Ok(false),
        Err(other) => Err(anyhow::anyhow!("seeding the platform admin failed: {other:?}")),
    }
}
