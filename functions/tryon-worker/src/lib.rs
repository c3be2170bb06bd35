//! The tryon-worker: consumes `tryon.item.requested` (outbox -> bus ->
//! EventBridge rule -> SQS -> this function), renders each cart item through
//! a [`TryOnEngine`], stores the image in S3 and moves the item (and, with
//! its last item, the session, whose `tryon.session.*` event is emitted in
//! that same transaction) to its final state. The provisioner's model
//! (partial batch failures, idempotent handling, poison messages to the
//! DLQ), plus:
//! - an item is *claimed* before rendering (conditional `queued ->
//!   processing` with a lock and a lease), so a redelivered message renders
//!   nothing twice: it finds the item finished (acknowledged) or held by a
//!   live lease (retried later); a worker that died mid-render leaves a lease
//!   that runs out, and the redelivery takes the item over;
//! - a render that cannot succeed (an input that is not an image, an
//!   engine refusal) fails the item and refunds its share, in one transaction
//!   and at most once (store/tryons.rs); trouble with our own infrastructure
//!   (S3, DynamoDB) is reported as a batch failure and retried instead;
//! - nothing is lost between a session's commit and its item events: they
//!   are outbox items of the creating transaction, so no sweep is needed.
//! - each item ends before the invocation does: one still running 2 s
//!   before Lambda's deadline is cut off and reported as a batch item
//!   failure ([`shared::worker::run_worker`]), so only it is retried (its
//!   claim runs out first) while the batch's finished items stay done.

pub mod engine;

pub use shared::outbound;

use anyhow::{Context, Result, bail};
use aws_lambda_events::event::sqs::SqsMessage;
use engine::{RenderInput, TryOnEngine};
use shared::{
    audit::AuditContext,
    auth::{TenantScope, proofs::OwnEvent},
    blobs::Blobs,
    events::{Event, EventBridgeEnvelope},
    store::{
        Store,
        tryons::{Claim, TryonItem, TryonSession, result_key},
    },
};
use uuid::Uuid;

/// How this worker appears as the actor of its audit entries.
const COMPONENT: &str = "tryon-worker";
/// How long a claim holds: twice the function's 60 s timeout, and well under
/// the queue's 360 s visibility, so a redelivery after a crash (or after the
/// item was cut off at the invocation's deadline) finds it run out.
pub const LEASE_SECONDS: i64 = 120;

pub struct TryonWorker<E> {
    pub store: Store,
    pub blobs: Blobs,
    pub engine: E,
    pub garments: outbound::Fetcher,
}

/// What handling one message did (for logs and tests).
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Completed,
    Failed(String),
    /// Finished (completed, failed or cancelled) before this delivery.
    AlreadyDone,
}

/// The failure that ends an item (and refunds it) rather than retrying.
struct ItemFailure(String);

impl<E: TryOnEngine> shared::worker::Worker for TryonWorker<E> {
    type Outcome = Outcome;

    async fn handle(&self, message: &SqsMessage) -> Result<Outcome> {
        let body = message.body.as_deref().context("message has no body")?;
        let envelope: EventBridgeEnvelope = serde_json::from_str(body).context("body is not a domain event")?;
        let Event::TryonItemRequested(request) = envelope.event()? else {
            bail!("unexpected event type {}", envelope.detail_type);
        };
        self.process(&OwnEvent::scope(&envelope)?, request.session_id, request.item_index).await
    }
}

impl<E: TryOnEngine> TryonWorker<E> {
    #[tracing::instrument(skip(self, scope), fields(tenant_id = %scope.tenant_id()))]
    pub async fn process(&self, scope: &TenantScope, session_id: Uuid, index: u32) -> Result<Outcome> {
        let lock = Uuid::new_v4().to_string();
        let now = chrono::Utc::now().timestamp();
        let item = match self
            .store
            .claim_tryon_item(scope, session_id, index, &lock, now, LEASE_SECONDS)
            .await
            .map_err(shared::AppError::into_anyhow)?
        {
            Claim::Claimed(item) => item,
            Claim::Finished => return Ok(Outcome::AlreadyDone),
            Claim::Busy => bail!("item {index} of {session_id} is held by another worker; retrying later"),
            Claim::Missing => bail!("item {index} of {session_id} does not exist"),
        };
        let session = self
            .store
            .get_tryon_session(scope, session_id)
            .await
            .map_err(shared::AppError::into_anyhow)?
            .context("the item's session does not exist")?;
        let outcome = match self.render(scope, &session, &item).await? {
            Ok(image) => {
                let key = result_key(scope, session_id, index);
                self.blobs.put(&key, image, "image/png").await.map_err(shared::AppError::into_anyhow)?;
                if !self
                    .store
                    .complete_tryon_item(scope, &item, &lock, &key)
                    .await
                    .map_err(shared::AppError::into_anyhow)?
                {
                    // Our lease ran out and another delivery took the item.
                    return Ok(Outcome::AlreadyDone);
                }
                Outcome::Completed
            }
            Err(ItemFailure(reason)) => {
                tracing::warn!(%session_id, index, %reason, "try-on item failed; refunding its share");
                let audit = AuditContext::system(COMPONENT);
                if !self
                    .store
                    .fail_tryon_item(scope, &item, &lock, &reason, &audit)
                    .await
                    .map_err(shared::AppError::into_anyhow)?
                {
                    return Ok(Outcome::AlreadyDone);
                }
                Outcome::Failed(reason)
            }
        };
        // The last item's end finishes the session (and emits its event).
        if let Some(finished) =
            self.store.finish_tryon_if_done(scope, session_id).await.map_err(shared::AppError::into_anyhow)?
        {
            tracing::info!(%session_id, status = %finished.status, "try-on session finished");
        }
        Ok(outcome)
    }

    /// The rendered image, an [`ItemFailure`] when the inputs or the engine
    /// make success impossible, or an error to retry.
    async fn render(
        &self,
        scope: &TenantScope,
        session: &TryonSession,
        item: &TryonItem,
    ) -> Result<Result<Vec<u8>, ItemFailure>> {
        let Some(person) = self.photo_bytes(scope, session.customer_id, session.photo_id).await? else {
            return Ok(Err(ItemFailure("the customer's photo is gone".into())));
        };
        let garment = match (item.garment_photo_id, item.garment_image_url.as_deref()) {
            (Some(photo_id), _) => match self.photo_bytes(scope, session.customer_id, photo_id).await? {
                Some(bytes) => bytes,
                None => return Ok(Err(ItemFailure("the garment photo is gone".into()))),
            },
            (None, Some(url)) => match self.garments.fetch(url).await {
                Ok(bytes) => bytes,
                Err(err) => return Ok(Err(ItemFailure(format!("the garment image could not be fetched: {err}")))),
            },
            (None, None) => return Ok(Err(ItemFailure("the item names no garment".into()))),
        };
        let input =
            RenderInput { person: &person, garment: &garment, quality: session.quality, product_id: &item.product_id };
        Ok(self.engine.render(input).await.map_err(|e| ItemFailure(e.0)))
    }

    async fn photo_bytes(&self, scope: &TenantScope, customer_id: Uuid, photo_id: Uuid) -> Result<Option<Vec<u8>>> {
        let Some(photo) =
            self.store.get_photo(scope, customer_id, photo_id).await.map_err(shared::AppError::into_anyhow)?
        else {
            return Ok(None);
        };
        self.blobs.get(&photo.object_key).await.map_err(shared::AppError::into_anyhow)
    }
}
