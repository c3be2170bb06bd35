//! The local server: every route group's routes on one port, plus pollers that
//! feed SQS messages to the worker handlers the way Lambda's event source
//! mapping does (batches of up to 10, delete what succeeded, leave failed
//! messages to reappear after the visibility timeout and, past
//! maxReceiveCount, move to the DLQ).
//!
//! - [`app`]: the merged router.
//! - [`Pollers`]: one task per worker queue.
//! - [`seed_platform_admin`]: the first platform administrator.

use std::{sync::Arc, time::Duration};

use anyhow::{Context, Result};
use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, MessageSystemAttributeName};
use axum::Router;
use shared::{
    AppState,
    audit::AuditContext,
    auth::{Role, password},
    aws::AwsClients,
    domain::{tenant::Tenant, user::User},
    store::{Store, tenants::CreateTenantError},
};
use tenant_provisioner::Provisioner;
use tokio::task::JoinHandle;
use uuid::Uuid;

/// Every route group, as API Gateway would route them to their functions.
pub fn app(state: AppState) -> Router {
    shared::http::finish_app(
        auth::routes()
            .merge(tenants::routes())
            .merge(audit::routes())
            .merge(projects::routes())
            .merge(users::routes())
            .merge(credits::routes())
            .merge(api_keys::routes())
            .merge(customers::routes())
            .merge(tryons::routes())
            .merge(webhooks::routes()),
        state,
    )
}

/// A worker as the poller sees it: a batch in, the failed message ids out.
pub trait BatchHandler: Send + Sync + 'static {
    fn handle(&self, event: SqsEvent) -> impl std::future::Future<Output = Vec<String>> + Send;
}

impl<E: tryon_worker::engine::TryOnEngine> BatchHandler for tryon_worker::TryonWorker<E> {
    async fn handle(&self, event: SqsEvent) -> Vec<String> {
        self.handle_batch(event).await.batch_item_failures.into_iter().map(|f| f.item_identifier).collect()
    }
}

impl BatchHandler for webhook_dispatcher::Dispatcher {
    async fn handle(&self, event: SqsEvent) -> Vec<String> {
        self.handle_batch(event).await.batch_item_failures.into_iter().map(|f| f.item_identifier).collect()
    }
}

impl BatchHandler for Provisioner {
    async fn handle(&self, event: SqsEvent) -> Vec<String> {
        self.handle_batch(event).await.batch_item_failures.into_iter().map(|f| f.item_identifier).collect()
    }
}

/// The pollers of one process; dropping them stops nothing, `abort` does.
pub struct Pollers {
    handles: Vec<JoinHandle<()>>,
}

impl Pollers {
    /// Starts a poller for each worker queue named in the environment
    /// (`QUEUE_URL_<BINARY>`, written by infra/local_stack.py).
    pub fn start(clients: &AwsClients, state: &AppState) -> Result<Self> {
        let mut handles = Vec::new();
        let queue = std::env::var("QUEUE_URL_TENANT_PROVISIONER").context("QUEUE_URL_TENANT_PROVISIONER is not set")?;
        let provisioner = Provisioner { store: state.store.clone(), events: state.events.clone() };
        let provisioner = Arc::new(provisioner);
        handles.push(spawn_poller(clients.sqs.clone(), queue, provisioner.clone()));
        handles.push(spawn_sweeper(provisioner));
        let queue = std::env::var("QUEUE_URL_TRYON_WORKER").context("QUEUE_URL_TRYON_WORKER is not set")?;
        let worker = tryon_worker::TryonWorker {
            store: state.store.clone(),
            blobs: state.blobs.clone(),
            events: state.events.clone(),
            engine: tryon_worker::engine::ConfiguredEngine::from_env()?,
            garments: tryon_worker::outbound::Fetcher::new(state.config.local_mode)?,
        };
        let worker = Arc::new(worker);
        handles.push(spawn_poller(clients.sqs.clone(), queue, worker.clone()));
        handles.push(spawn_sweeper(worker));
        let events_queue =
            std::env::var("QUEUE_URL_WEBHOOK_DISPATCHER").context("QUEUE_URL_WEBHOOK_DISPATCHER is not set")?;
        let deliveries_queue = std::env::var("QUEUE_URL_WEBHOOK_DISPATCHER_DELIVERIES")
            .context("QUEUE_URL_WEBHOOK_DISPATCHER_DELIVERIES is not set")?;
        let dispatcher = Arc::new(webhook_dispatcher::Dispatcher {
            store: state.store.clone(),
            events: state.events.clone(),
            sqs: clients.sqs.clone(),
            deliveries_queue_url: deliveries_queue.clone(),
            http: shared::outbound::Fetcher::new(state.config.local_mode)?,
            platform_secret: state.config.require_cursor_secret()?.to_owned(),
        });
        handles.push(spawn_poller(clients.sqs.clone(), events_queue, dispatcher.clone()));
        handles.push(spawn_poller(clients.sqs.clone(), deliveries_queue, dispatcher));
        Ok(Self { handles })
    }

    pub fn abort(&self) {
        for handle in &self.handles {
            handle.abort();
        }
    }
}

fn spawn_poller<H: BatchHandler>(sqs: aws_sdk_sqs::Client, queue_url: String, handler: Arc<H>) -> JoinHandle<()> {
    tokio::spawn(async move {
        tracing::info!(queue_url = %queue_url, "poller started");
        loop {
            if let Err(err) = poll_once(&sqs, &queue_url, handler.as_ref()).await {
                tracing::warn!(error = ?err, queue_url = %queue_url, "poll failed; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    })
}

/// A worker's scheduled sweep (rate(5 minutes) in AWS).
pub trait Sweeper: Send + Sync + 'static {
    fn sweep_once(&self) -> impl std::future::Future<Output = Result<usize>> + Send;
}

impl Sweeper for Provisioner {
    async fn sweep_once(&self) -> Result<usize> {
        self.sweep(chrono::Duration::seconds(tenant_provisioner::SWEEP_MIN_AGE_SECONDS)).await
    }
}

impl<E: tryon_worker::engine::TryOnEngine> Sweeper for tryon_worker::TryonWorker<E> {
    async fn sweep_once(&self) -> Result<usize> {
        self.sweep(chrono::Duration::seconds(tryon_worker::SWEEP_MIN_AGE_SECONDS)).await
    }
}

/// Runs a sweep every 30 s locally.
fn spawn_sweeper<S: Sweeper>(sweeper: Arc<S>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(30));
        loop {
            every.tick().await;
            if let Err(err) = sweeper.sweep_once().await {
                tracing::warn!(error = ?err, "sweep failed");
            }
        }
    })
}

async fn poll_once<H: BatchHandler>(sqs: &aws_sdk_sqs::Client, queue_url: &str, handler: &H) -> Result<()> {
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
    let failed = handler.handle(event).await;
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
