//! The integrations worker, fed two ways:
//! - `integration.event.received` from the bus (`IntegrationEventsQueue`):
//!   the provider's real-time sync connections apply its records
//!   ([`IntegrationsWorker::apply_inbound`]), then the event is taken
//!   (`received` -> `processed`, with the time it took from receipt). A failed attempt is retried on seed 003's schedule: the
//!   message comes back after 60 s, then 120 s, 240 s, at most 300 s
//!   ([`retry_delay`], ChangeMessageVisibility); the 4th failed receive
//!   marks the event `failed` and SQS moves the message to the DLQ
//!   (maxReceiveCount 4: the first try and 3 retries).
//! - the probe schedule (EventBridge Scheduler, every 5 minutes ->
//!   `IntegrationJobsQueue`): each active provider with an `api_base_url`,
//!   platform-wide, is probed (`GET`, 5 s) and the result recorded for
//!   `GET /v1/integrations/health`.
//! - sync runs (`SyncRunsQueue`, FIFO by connection): [`sync`]; and a
//!   scheduled connection's firings (its EventBridge Scheduler schedule ->
//!   `IntegrationJobsQueue`), each starting a run.
//!
//! The tenant's own webhooks get the same bus event from the webhook
//! dispatcher's rule; this worker is where platform-side processing (syncs,
//! workflows) hooks in.

pub mod sync;

use anyhow::Context;
use aws_lambda_events::event::sqs::SqsMessage;
use futures::StreamExt;
use serde::Deserialize;
use shared::{
    auth::proofs::{OwnEvent, ScheduledJob},
    domain::{integration::Probe, now_rfc3339, schedule::ScheduledFiring},
    events::{Event, EventBridgeEnvelope},
    outbound::Fetcher,
    store::Store,
};

pub struct IntegrationsWorker {
    pub store: Store,
    pub sqs: shared::aws::SqsClient,
    /// Where a failed event's message waits out its retry delay.
    pub events_queue_url: String,
    pub http: Fetcher,
    /// Where a sync run's continuation goes.
    pub sync_runs_queue_url: String,
    /// The sync runs queue's maxReceiveCount: the receive that ends a
    /// failing run `failed` before SQS moves its message to the DLQ.
    pub sync_max_receives: u32,
    /// Deletes a connection's schedule that fired after the connection
    /// dropped it.
    pub schedules: shared::schedules::TenantSchedules,
    /// How long a sync run reads pages before it hands itself on.
    pub sync_budget: std::time::Duration,
    /// Opens providers' secrets: a sync's source and provider target are
    /// called with them (`shared::provider_api`).
    pub sealing: shared::sealing::KeyRing,
    /// Where a real-time event's body over 64 KiB is read from (the bus
    /// carries only its key).
    pub blobs: shared::blobs::Blobs,
}

/// Receives of one event's message before it is `failed` (the redrive
/// policy's maxReceiveCount in template.yaml says the same).
pub const MAX_RECEIVES: u32 = 4;
/// Seed 003's retry schedule: 60 s, doubling, at most 300 s.
pub const RETRY_INITIAL_SECONDS: i32 = 60;
pub const RETRY_MAX_SECONDS: i32 = 300;
/// Providers probed at once.
const CONCURRENT_PROBES: usize = 8;

/// The wait before the retry that follows failed receive number `receive`.
pub fn retry_delay(receive: u32) -> i32 {
    let doublings = receive.saturating_sub(1).min(8);
    (RETRY_INITIAL_SECONDS << doublings).min(RETRY_MAX_SECONDS)
}

/// What one message did.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Processed,
    /// Already taken (a redelivery, or the event is gone): nothing to do.
    AlreadyTaken,
    /// This many providers probed.
    Probed(usize),
    /// A sync run ended after this many pages.
    Synced(i64),
    /// A sync run handed itself on after this many pages.
    SyncContinued(i64),
    /// A sync run ended `failed` (its last receive).
    SyncFailed,
    /// Nothing to do: the run is over, gone, or another delivery is ahead.
    SyncSkipped,
    /// A schedule's firing started a run.
    SyncScheduled,
    /// A schedule fired that its connection no longer holds.
    ScheduleStale,
}

/// The schedule's message (`template.yaml`, `IntegrationProbeSchedule`).
#[derive(Debug, Deserialize)]
struct Job {
    job: String,
}

impl shared::worker::Worker for IntegrationsWorker {
    type Outcome = Outcome;

    async fn handle(&self, message: &SqsMessage) -> anyhow::Result<Outcome> {
        let body = message.body.as_deref().unwrap_or_default();
        let receive =
            message.attributes.get("ApproximateReceiveCount").and_then(|count| count.parse::<u32>().ok()).unwrap_or(1);
        if let Ok(sync) = serde_json::from_str::<shared::sync_runs::SyncRunEnvelope>(body) {
            return self.run_sync(sync.sync_run, receive).await;
        }
        if let Some(firing) = ScheduledFiring::from_body(body) {
            return self.scheduled_sync(&firing).await;
        }
        if let Ok(job) = serde_json::from_str::<Job>(body) {
            anyhow::ensure!(job.job == "probe", "unknown integrations job {:?}", job.job);
            return Ok(Outcome::Probed(self.probe_all().await?));
        }
        let envelope: EventBridgeEnvelope = serde_json::from_str(body).context("an EventBridge envelope")?;
        match self.process(&envelope).await {
            Ok(outcome) => Ok(outcome),
            Err(err) => {
                self.after_failure(message, &envelope, receive, &err).await;
                Err(err)
            }
        }
    }
}

impl IntegrationsWorker {
    async fn process(&self, envelope: &EventBridgeEnvelope) -> anyhow::Result<Outcome> {
        let scope = OwnEvent::scope(envelope)?;
        let Event::IntegrationEventReceived(received) = envelope.event()? else {
            anyhow::bail!("not an integration event: {}", envelope.detail_type);
        };
        // Real-time sync connections first: a failure retries the event.
        self.apply_inbound(&scope, &received).await?;
        let received_at = chrono::DateTime::parse_from_rfc3339(&received.received_at).context("received_at")?;
        let took = (chrono::Utc::now() - received_at.with_timezone(&chrono::Utc)).num_milliseconds().max(0);
        if self.store.event_processed(&scope, received.inbound_id, took).await? {
            Ok(Outcome::Processed)
        } else {
            Ok(Outcome::AlreadyTaken)
        }
    }

    /// Records the failed attempt and sets when the message comes back; the
    /// last receive ends the event `failed` (the message goes to the DLQ).
    async fn after_failure(
        &self,
        message: &SqsMessage,
        envelope: &EventBridgeEnvelope,
        receive: u32,
        err: &anyhow::Error,
    ) {
        let last = receive >= MAX_RECEIVES;
        if let (Ok(scope), Ok(Event::IntegrationEventReceived(received))) =
            (OwnEvent::scope(envelope), envelope.event())
            && let Err(record_err) =
                self.store.event_attempt_failed(&scope, received.inbound_id, &format!("{err:#}"), last).await
        {
            tracing::warn!(error = %record_err, "a failed attempt was not recorded");
        }
        if last {
            return;
        }
        let Some(receipt) = message.receipt_handle.as_deref() else { return };
        let delay = retry_delay(receive);
        if let Err(visibility_err) = self
            .sqs
            .change_message_visibility()
            .queue_url(&self.events_queue_url)
            .receipt_handle(receipt)
            .visibility_timeout(delay)
            .send()
            .await
        {
            // The queue's own visibility timeout applies instead.
            tracing::warn!(error = %aws_sdk_sqs::error::DisplayErrorContext(&visibility_err), delay, "retry delay not set");
        }
    }

    /// Probes every active provider with an `api_base_url`; answers how many.
    pub async fn probe_all(&self) -> anyhow::Result<usize> {
        let targets = self.store.providers_to_probe().await?;
        let probed = futures::stream::iter(targets)
            .map(|(tenant_id, provider_id)| async move {
                let scope = ScheduledJob::scope(tenant_id);
                let Some(provider) = self.store.get_provider(&scope, provider_id).await? else { return Ok(false) };
                let Some(url) = provider.api_base_url.as_deref().filter(|_| provider.is_active) else {
                    return Ok(false);
                };
                let probed = self.http.probe(url).await;
                let probe = Probe::of(probed.elapsed_ms, probed.status, probed.error, now_rfc3339());
                self.store.record_probe(&scope, provider.id, &probe).await?;
                Ok::<bool, shared::AppError>(true)
            })
            .buffer_unordered(CONCURRENT_PROBES)
            .collect::<Vec<_>>()
            .await;
        let mut count = 0;
        for result in probed {
            count += usize::from(result?);
        }
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_wait_60_120_240_seconds_capped_at_300() {
        assert_eq!((1..=5).map(retry_delay).collect::<Vec<_>>(), [60, 120, 240, 300, 300]);
    }
}
