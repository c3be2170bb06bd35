//! The tenant-provisioner worker: consumes `tenant.created` (EventBridge rule ->
//! SQS -> this function), makes the tenant `active` and records the invitation
//! of its `admin_email`. The model for every async job:
//! - each message is handled on its own, concurrently, and only the failed ones
//!   are reported back (partial batch failure), so SQS redelivers just those;
//! - handling is idempotent: the state change is conditional on the tenant
//!   still being `provisioning`, so a redelivered message changes nothing;
//! - a message that can never succeed (malformed, unknown tenant) fails every
//!   time and lands in the DLQ after the queue's maxReceiveCount;
//! - nothing is lost between the tenant's commit and the event's publication:
//!   a scheduled sweep ([`Provisioner::sweep`]) republishes `tenant.created`
//!   for tenants that have waited too long (they are listed in an outbox
//!   written in the same transaction as the tenant).

use anyhow::{Context, Result, bail};
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use serde_json::json;
use shared::{
    audit::AuditContext,
    auth::{Role, TenantScope},
    events::{DomainEvent, EventBridgeEnvelope, EventPublisher},
    store::{Store, members::invitation_item},
};

/// How this worker appears as the actor of its audit entries.
const COMPONENT: &str = "tenant-provisioner";

#[derive(Clone)]
pub struct Provisioner {
    pub store: Store,
    pub events: EventPublisher,
}

/// What handling one message did (for logs and tests).
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Activated,
    AlreadyDone,
}

impl Provisioner {
    pub async fn handle_batch(&self, event: SqsEvent) -> SqsBatchResponse {
        shared::sqs_batch::handle_batch(&event.records, |m| self.handle_message(m)).await
    }

    pub async fn handle_message(&self, message: &SqsMessage) -> Result<Outcome> {
        let body = message.body.as_deref().context("message has no body")?;
        let envelope: EventBridgeEnvelope = serde_json::from_str(body).context("body is not a domain event")?;
        if envelope.detail_type != "tenant.created" {
            bail!("unexpected event type {}", envelope.detail_type);
        }
        self.provision(&envelope.detail).await
    }

    #[tracing::instrument(skip_all, fields(tenant_id = %event.tenant_id, event_id = %event.id))]
    pub async fn provision(&self, event: &DomainEvent) -> Result<Outcome> {
        // The event came from our own bus, published after the tenant committed.
        let scope = TenantScope::trusted_internal(event.tenant_id);
        let Some((tenant, _)) = self.store.get_tenant(&scope).await.map_err(shared::AppError::into_anyhow)? else {
            bail!("tenant {} does not exist", event.tenant_id);
        };
        if tenant.status != "provisioning" {
            return Ok(Outcome::AlreadyDone);
        }
        // Keyed by email, so provisioning twice can never invite twice; the
        // token is issued when an admin (re)sends it (users group).
        let invitation = tenant
            .admin_email
            .as_deref()
            .map(|email| invitation_item(tenant.id, email, Role::Owner, tenant.created_by.map(|u| u.to_string())))
            .transpose()
            .map_err(shared::AppError::into_anyhow)?;
        if !self
            .store
            .complete_provisioning(&tenant, invitation, &AuditContext::system(COMPONENT))
            .await
            .map_err(shared::AppError::into_anyhow)?
        {
            // A concurrent delivery of the same event won the race.
            return Ok(Outcome::AlreadyDone);
        }
        let activated = DomainEvent::new(
            "tenant.activated",
            tenant.id,
            json!({"tenant_id": tenant.id, "slug": tenant.slug, "admin_invitation_sent": tenant.admin_email.is_some()}),
        );
        self.events.publish_after_commit(&activated).await;
        Ok(Outcome::Activated)
    }
}

/// How long a tenant may wait for its `tenant.created` before the sweep
/// republishes it (normally it is provisioned within a second).
pub const SWEEP_MIN_AGE_SECONDS: i64 = 120;
const SWEEP_BATCH: i32 = 100;

impl Provisioner {
    /// Republishes `tenant.created` for tenants created more than `min_age`
    /// ago and still provisioning. Returns how many it republished.
    #[tracing::instrument(skip(self))]
    pub async fn sweep(&self, min_age: chrono::Duration) -> Result<usize> {
        let cutoff = shared::domain::rfc3339(chrono::Utc::now() - min_age);
        let waiting = self
            .store
            .tenants_awaiting_provisioning(&cutoff, SWEEP_BATCH)
            .await
            .map_err(shared::AppError::into_anyhow)?;
        let mut republished = 0;
        for tenant_id in waiting {
            let scope = TenantScope::trusted_internal(tenant_id);
            match self.store.get_tenant(&scope).await.map_err(shared::AppError::into_anyhow)? {
                Some((tenant, _)) if tenant.status == "provisioning" => {
                    self.events.publish(&tenant.created_event()).await?;
                    republished += 1;
                }
                _ => {}
            }
        }
        if republished > 0 {
            tracing::warn!(republished, "republished tenant.created for tenants left waiting");
        }
        Ok(republished)
    }
}
