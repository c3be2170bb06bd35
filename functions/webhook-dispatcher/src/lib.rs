//! The webhook-dispatcher: turns domain events into signed deliveries to the
//! tenants' endpoints, and makes them arrive.
//!
//! Two queues feed it (two SQS event sources of one function):
//! - **events** (a rule sends every `saas.platform` event, relayed from the
//!   outbox): [`Dispatcher::fan_out`] records one delivery per subscribed
//!   active endpoint (id = the event's id, so a redelivered event creates
//!   nothing twice) and queues a job per delivery; a
//!   `webhook.delivery.replay_requested` queues the job of that delivery;
//! - **deliveries**: [`Dispatcher::attempt`] POSTs one delivery with the
//!   Standard Webhooks headers (same `webhook-id` on every attempt), a time
//!   limit and a capped response read, and records the attempt. A failure is
//!   retried after the endpoint's schedule (default 5 s, 15 s, 45 s; a
//!   receiver's `Retry-After` is honoured within the schedule's bounds) by a
//!   new delayed message, so the failing message is acknowledged at once and
//!   never holds up the queue or other endpoints; delays past SQS's 15
//!   minutes are reached in hops. `410 Gone` disables the endpoint at once.
//!   A delivery out of attempts is `failed` (kept for replay); ten failed
//!   deliveries in a row disable the endpoint, with `webhook_endpoint.disabled`
//!   in the disabling transaction; any success resets the count.
//!
//! Every message of a batch is handled concurrently and reported on its own
//! (partial batch failures, `shared::worker`).

use std::time::Instant;

use anyhow::{Context, Result};
use aws_lambda_events::event::sqs::SqsMessage;
use serde::{Deserialize, Serialize};
use serde_json::json;
use shared::{
    auth::{
        TenantScope,
        proofs::{OwnEvent, OwnQueue},
    },
    domain::{now_rfc3339, rfc3339},
    events::{DomainEvent, Event, EventBridgeEnvelope, catalogue::INTERNAL_EVENTS},
    outbound::Fetcher,
    store::{
        Store,
        webhooks::{AttemptOutcome, DISABLE_AFTER_FAILURES, Delivery, Endpoint, endpoint_secret_context},
    },
    webhook_signing,
};
use uuid::Uuid;

/// Response body kept per attempt, in bytes: enough to see a receiver's
/// error message, too little to read a page back through the delivery log.
pub const KEPT_RESPONSE_BYTES: usize = 256;
/// SQS's longest message delay.
const MAX_SQS_DELAY: i64 = 900;

pub struct Dispatcher {
    pub store: Store,
    pub sqs: shared::aws::SqsClient,
    pub deliveries_queue_url: String,
    pub http: Fetcher,
    /// Opens endpoints' signing secrets (the `sealing` ring, `shared::keys`).
    pub sealing: shared::sealing::KeyRing,
}

/// One delivery to attempt, not before `not_before` (epoch seconds).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DeliveryJob {
    pub tenant_id: Uuid,
    pub endpoint_id: Uuid,
    pub delivery_id: Uuid,
    #[serde(default)]
    pub not_before: i64,
}

/// What handling one message did (for logs and tests).
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    FannedOut(usize),
    Delivered,
    Retrying { in_seconds: i64 },
    Failed,
    Deferred,
    Nothing,
}

/// The body every endpoint receives for an event.
pub fn payload(event: &DomainEvent) -> String {
    json!({
        "id": event.id,
        "type": event.event_type,
        "timestamp": event.occurred_at,
        "tenant_id": event.tenant_id,
        "data": event.data,
    })
    .to_string()
}

/// The delay before the next attempt, if the schedule has one left after
/// `done` attempts this round: the schedule's, or the receiver's
/// `Retry-After` kept within the schedule's bounds.
pub fn next_delay(schedule: &[i64], done: usize, retry_after: Option<u64>) -> Option<i64> {
    let planned = *schedule.get(done)?;
    let ceiling = schedule.iter().copied().max().unwrap_or(planned);
    Some(match retry_after {
        Some(asked) => (asked.min(i64::MAX as u64) as i64).clamp(planned, ceiling.max(planned)),
        None => planned,
    })
}

impl shared::worker::Worker for Dispatcher {
    type Outcome = Outcome;

    /// An event from the bus, or a delivery job from the deliveries queue.
    async fn handle(&self, message: &SqsMessage) -> Result<Outcome> {
        let body = message.body.as_deref().context("message has no body")?;
        if let Ok(envelope) = serde_json::from_str::<EventBridgeEnvelope>(body) {
            return self.route(&envelope).await;
        }
        let job: DeliveryJob =
            serde_json::from_str(body).context("body is neither a domain event nor a delivery job")?;
        self.attempt(&job).await
    }
}

impl Dispatcher {
    /// What an event from the bus asks for: a replay's job, nothing for the
    /// platform's own plumbing, else the fan-out (a test event to its one
    /// endpoint).
    async fn route(&self, envelope: &EventBridgeEnvelope) -> Result<Outcome> {
        let scope = OwnEvent::scope(envelope)?;
        let only = match envelope.event()? {
            Event::WebhookReplayRequested(replay) => {
                let job = DeliveryJob {
                    tenant_id: scope.tenant_id(),
                    endpoint_id: replay.endpoint_id,
                    delivery_id: replay.delivery_id,
                    not_before: 0,
                };
                self.enqueue(&[job], 0).await?;
                return Ok(Outcome::FannedOut(1));
            }
            event if INTERNAL_EVENTS.contains(&event.name()) => return Ok(Outcome::Nothing),
            Event::WebhookTest(test) => Some(test.endpoint_id),
            _ => None,
        };
        self.fan_out(&scope, &envelope.detail, only).await
    }

    /// One delivery per active endpoint of the event's tenant that wants it
    /// (`only`: the one endpoint a test event is for). The webhook body is
    /// the envelope as it travelled, whatever its type.
    #[tracing::instrument(skip_all, fields(event_type = %event.event_type, event_id = %event.id))]
    pub async fn fan_out(&self, scope: &TenantScope, event: &DomainEvent, only: Option<Uuid>) -> Result<Outcome> {
        let endpoints = self.store.list_endpoints(scope).await.map_err(shared::AppError::into_anyhow)?;
        let body = payload(event);
        let mut jobs = Vec::new();
        for endpoint in endpoints {
            let wanted = match only {
                Some(id) => endpoint.id == id,
                None => endpoint.wants(&event.event_type),
            };
            // An endpoint receives what happens after it exists, even when
            // the fan-out of an older event runs late.
            let older = chrono::DateTime::parse_from_rfc3339(&endpoint.created_at)
                .is_ok_and(|created| event.occurred_at < created.with_timezone(&chrono::Utc));
            if !wanted || endpoint.status != "active" || older {
                continue;
            }
            let delivery = Delivery {
                id: event.id,
                endpoint_id: endpoint.id,
                tenant_id: event.tenant_id,
                event_type: event.event_type.clone(),
                payload: body.clone(),
                status: "pending".into(),
                attempts: Vec::new(),
                round_attempts: 0,
                next_attempt_at: None,
                created_at: now_rfc3339(),
                completed_at: None,
            };
            let created = self.store.create_delivery(scope, &delivery).await.map_err(shared::AppError::into_anyhow)?;
            // A redelivered event finds its delivery: queue it again only if
            // nothing was attempted yet (the first job may not have been sent).
            let unsent = created
                || self
                    .store
                    .get_delivery(scope, endpoint.id, event.id)
                    .await
                    .map_err(shared::AppError::into_anyhow)?
                    .is_some_and(|d| d.status == "pending" && d.attempts.is_empty());
            if unsent {
                jobs.push(DeliveryJob {
                    tenant_id: event.tenant_id,
                    endpoint_id: endpoint.id,
                    delivery_id: event.id,
                    not_before: 0,
                });
            }
        }
        self.enqueue(&jobs, 0).await?;
        Ok(Outcome::FannedOut(jobs.len()))
    }

    async fn enqueue(&self, jobs: &[DeliveryJob], delay: i64) -> Result<()> {
        for chunk in jobs.chunks(10) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, job)| {
                    aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message_body(serde_json::to_string(job)?)
                        .delay_seconds(delay.clamp(0, MAX_SQS_DELAY) as i32)
                        .build()
                        .map_err(anyhow::Error::from)
                })
                .collect::<Result<Vec<_>>>()?;
            let output = self
                .sqs
                .send_message_batch()
                .queue_url(&self.deliveries_queue_url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| anyhow::anyhow!("{}", aws_sdk_sqs::error::DisplayErrorContext(&e)))?;
            if !output.failed().is_empty() {
                anyhow::bail!("SQS refused {} delivery jobs", output.failed().len());
            }
        }
        Ok(())
    }

    /// One attempt of one delivery (see the module docs).
    #[tracing::instrument(skip_all, fields(endpoint_id = %job.endpoint_id, delivery_id = %job.delivery_id))]
    pub async fn attempt(&self, job: &DeliveryJob) -> Result<Outcome> {
        let now = chrono::Utc::now().timestamp();
        if job.not_before > now {
            self.enqueue(std::slice::from_ref(job), job.not_before - now).await?;
            return Ok(Outcome::Deferred);
        }
        // Only our own workers send to the deliveries queue.
        let scope = OwnQueue::scope(job.tenant_id);
        let Some(delivery) = self
            .store
            .get_delivery(&scope, job.endpoint_id, job.delivery_id)
            .await
            .map_err(shared::AppError::into_anyhow)?
        else {
            return Ok(Outcome::Nothing);
        };
        if delivery.status != "pending" {
            return Ok(Outcome::Nothing);
        }
        let Some((endpoint, nonce, sealed)) =
            self.store.endpoint_with_secret(&scope, job.endpoint_id).await.map_err(shared::AppError::into_anyhow)?
        else {
            self.store
                .abandon_delivery(&scope, &delivery, "the endpoint was deleted")
                .await
                .map_err(shared::AppError::into_anyhow)?;
            return Ok(Outcome::Failed);
        };
        if endpoint.status != "active" {
            self.store
                .abandon_delivery(&scope, &delivery, "the endpoint is disabled")
                .await
                .map_err(shared::AppError::into_anyhow)?;
            return Ok(Outcome::Failed);
        }
        let context = endpoint_secret_context(&scope, endpoint.id);
        let secret =
            String::from_utf8(self.sealing.open(&context, &nonce, &sealed).map_err(shared::AppError::into_anyhow)?)?;
        let message_id = delivery.message_id();
        let signature = webhook_signing::sign(&secret, &message_id, now, delivery.payload.as_bytes())
            .map_err(anyhow::Error::msg)?;
        let headers = [
            ("content-type", "application/json".to_owned()),
            ("user-agent", "saas-platform-webhooks/1".to_owned()),
            ("webhook-id", message_id),
            ("webhook-timestamp", now.to_string()),
            ("webhook-signature", signature),
        ];
        let started = Instant::now();
        let result =
            self.http.post(&endpoint.url, &headers, delivery.payload.clone().into_bytes(), KEPT_RESPONSE_BYTES).await;
        let latency_ms = started.elapsed().as_millis() as u64;
        let number = delivery.attempts.len() + 1;
        let (status_code, error, response_body, retry_after) = match &result {
            // A redirect is not followed, and what it carries is not ours
            // to keep (it would show what sits at the address it names).
            Ok(posted) if (300..400).contains(&posted.status) => (Some(posted.status), None, None, posted.retry_after),
            Ok(posted) => (Some(posted.status), None, Some(posted.body.clone()), posted.retry_after),
            Err(err) => (None, Some(err.clone()), None, None),
        };
        let attempt = json!({
            "number": number,
            "at": rfc3339(chrono::Utc::now()),
            "status_code": status_code,
            "latency_ms": latency_ms,
            "error": error,
            "response_body": response_body,
        });
        let succeeded = status_code.is_some_and(|c| (200..300).contains(&c));
        if succeeded {
            let recorded = self
                .store
                .record_attempt(&scope, &delivery, &attempt, &AttemptOutcome::Succeeded)
                .await
                .map_err(shared::AppError::into_anyhow)?;
            // Only a streak needs ending (saves a write per delivery).
            if recorded && endpoint.consecutive_failures > 0 {
                self.store.endpoint_delivered(&scope, endpoint.id).await.map_err(shared::AppError::into_anyhow)?;
            }
            return Ok(Outcome::Delivered);
        }
        if status_code == Some(410) {
            // Standard Webhooks: the receiver says this endpoint is gone for good.
            self.store
                .record_attempt(&scope, &delivery, &attempt, &AttemptOutcome::Failed)
                .await
                .map_err(shared::AppError::into_anyhow)?;
            self.disable(&scope, &endpoint, "the endpoint answered 410 Gone").await?;
            return Ok(Outcome::Failed);
        }
        let done = usize::try_from(delivery.round_attempts).unwrap_or(0);
        if let Some(delay) = next_delay(&endpoint.retry_schedule_seconds, done, retry_after) {
            let at = rfc3339(chrono::Utc::now() + chrono::Duration::seconds(delay));
            if self
                .store
                .record_attempt(&scope, &delivery, &attempt, &AttemptOutcome::Retrying(at))
                .await
                .map_err(shared::AppError::into_anyhow)?
            {
                let next = DeliveryJob { not_before: now + delay, ..job.clone() };
                self.enqueue(&[next], delay).await?;
            }
            return Ok(Outcome::Retrying { in_seconds: delay });
        }
        if self
            .store
            .record_attempt(&scope, &delivery, &attempt, &AttemptOutcome::Failed)
            .await
            .map_err(shared::AppError::into_anyhow)?
        {
            let streak =
                self.store.endpoint_failed(&scope, endpoint.id).await.map_err(shared::AppError::into_anyhow)?;
            if streak >= DISABLE_AFTER_FAILURES {
                let reason = format!("its last {DISABLE_AFTER_FAILURES} deliveries failed");
                self.disable(&scope, &endpoint, &reason).await?;
            }
        }
        Ok(Outcome::Failed)
    }

    /// Disables the endpoint, with `webhook_endpoint.disabled` in the same
    /// transaction (emitted by the one call that disabled it).
    async fn disable(&self, scope: &TenantScope, endpoint: &Endpoint, reason: &str) -> Result<()> {
        if self.store.disable_endpoint(scope, endpoint, reason).await.map_err(shared::AppError::into_anyhow)? {
            tracing::warn!(endpoint_id = %endpoint.id, %reason, "webhook endpoint disabled");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_and_retry_after() {
        let schedule = [5, 15, 45];
        assert_eq!(next_delay(&schedule, 0, None), Some(5));
        assert_eq!(next_delay(&schedule, 1, None), Some(15));
        assert_eq!(next_delay(&schedule, 2, None), Some(45));
        assert_eq!(next_delay(&schedule, 3, None), None, "three retries, then failed");
        // Retry-After is honoured, but not below the plan nor above the schedule's longest wait.
        assert_eq!(next_delay(&schedule, 0, Some(30)), Some(30));
        assert_eq!(next_delay(&schedule, 0, Some(1)), Some(5));
        assert_eq!(next_delay(&schedule, 0, Some(86_400)), Some(45));
        assert_eq!(next_delay(&[], 0, Some(10)), None);
    }
}
