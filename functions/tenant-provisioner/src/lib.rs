//! The tenant-provisioner worker: consumes `tenant.created` (outbox -> bus ->
//! rule -> SQS -> this function), makes the tenant `active` and records the
//! invitation of its `admin_email`, with `tenant.activated` in the same
//! transaction. The model for every async job:
//! - each message is handled on its own, concurrently, and only the failed ones
//!   are reported back (partial batch failure, `shared::worker`), so SQS
//!   redelivers just those;
//! - handling is idempotent: the state change is conditional on the tenant
//!   still being `provisioning`, so a redelivered message changes nothing;
//! - a message that can never succeed (malformed, unknown tenant) fails every
//!   time and lands in the DLQ after the queue's maxReceiveCount;
//! - nothing is lost between the tenant's commit and the event: the event is
//!   an outbox item of the creating transaction, relayed to the bus from the
//!   table's stream (docs/architecture.md), so no sweep is needed.

use anyhow::{Context, Result, bail};
use aws_lambda_events::event::sqs::SqsMessage;
use shared::{
    audit::AuditContext,
    auth::{Role, TenantScope, proofs::OwnEvent},
    events::{Event, EventBridgeEnvelope, catalogue::TenantCreated},
    store::{Store, members::invitation_item},
};

/// How this worker appears as the actor of its audit entries.
const COMPONENT: &str = "tenant-provisioner";

#[derive(Clone)]
pub struct Provisioner {
    pub store: Store,
}

/// What handling one message did (for logs and tests).
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Activated,
    AlreadyDone,
}

impl shared::worker::Worker for Provisioner {
    type Outcome = Outcome;

    async fn handle(&self, message: &SqsMessage) -> Result<Outcome> {
        let body = message.body.as_deref().context("message has no body")?;
        let envelope: EventBridgeEnvelope = serde_json::from_str(body).context("body is not a domain event")?;
        let Event::TenantCreated(created) = envelope.event()? else {
            bail!("unexpected event type {}", envelope.detail_type);
        };
        self.provision(&OwnEvent::scope(&envelope)?, &created).await
    }
}

impl Provisioner {
    #[tracing::instrument(skip_all, fields(tenant_id = %scope.tenant_id()))]
    pub async fn provision(&self, scope: &TenantScope, event: &TenantCreated) -> Result<Outcome> {
        let Some((tenant, _)) = self.store.get_tenant(scope).await.map_err(shared::AppError::into_anyhow)? else {
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
            .complete_provisioning(scope, &tenant, invitation, &AuditContext::system(COMPONENT))
            .await
            .map_err(shared::AppError::into_anyhow)?
        {
            // A concurrent delivery of the same event won the race.
            return Ok(Outcome::AlreadyDone);
        }
        Ok(Outcome::Activated)
    }
}
