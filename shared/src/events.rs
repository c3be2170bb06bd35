//! Domain events on the EventBridge bus. Rules route them to queues (workers)
//! and, later, to webhook delivery. Every event carries an id so consumers can
//! drop duplicates: EventBridge and SQS deliver at least once.

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::config::EVENT_SOURCE;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DomainEvent {
    pub id: Uuid,
    #[serde(rename = "type")]
    pub event_type: String,
    pub tenant_id: Uuid,
    pub occurred_at: DateTime<Utc>,
    pub data: Value,
}

impl DomainEvent {
    pub fn new(event_type: &str, tenant_id: Uuid, data: Value) -> Self {
        Self { id: Uuid::now_v7(), event_type: event_type.to_owned(), tenant_id, occurred_at: Utc::now(), data }
    }
}

/// The envelope EventBridge hands to an SQS target: the event JSON itself.
#[derive(Debug, Deserialize)]
pub struct EventBridgeEnvelope {
    #[serde(rename = "detail-type")]
    pub detail_type: String,
    pub source: String,
    pub detail: DomainEvent,
}

#[derive(Clone, Debug)]
pub struct EventPublisher {
    client: aws_sdk_eventbridge::Client,
    bus_name: String,
}

impl EventPublisher {
    pub fn new(client: aws_sdk_eventbridge::Client, bus_name: impl Into<String>) -> Self {
        Self { client, bus_name: bus_name.into() }
    }

    #[tracing::instrument(skip_all, fields(event_type = %event.event_type, event_id = %event.id))]
    pub async fn publish(&self, event: &DomainEvent) -> Result<()> {
        let entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
            .event_bus_name(&self.bus_name)
            .source(EVENT_SOURCE)
            .detail_type(&event.event_type)
            .detail(serde_json::to_string(event)?)
            .build();
        let output = self
            .client
            .put_events()
            .entries(entry)
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("{}", aws_sdk_eventbridge::error::DisplayErrorContext(&e)))
            .context("PutEvents failed")?;
        // PutEvents succeeds as a call even when entries fail; the count tells.
        if output.failed_entry_count() > 0 {
            let reason = output.entries().iter().filter_map(|e| e.error_message()).collect::<Vec<_>>().join("; ");
            bail!("EventBridge refused the event: {reason}");
        }
        Ok(())
    }

    /// Publishes many events, ten per PutEvents call (its limit). Fails if
    /// any entry was refused (entries before it may have gone out: consumers
    /// are idempotent).
    pub async fn publish_all(&self, events: &[DomainEvent]) -> Result<()> {
        for chunk in events.chunks(10) {
            let entries = chunk
                .iter()
                .map(|event| {
                    Ok(aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
                        .event_bus_name(&self.bus_name)
                        .source(EVENT_SOURCE)
                        .detail_type(&event.event_type)
                        .detail(serde_json::to_string(event)?)
                        .build())
                })
                .collect::<Result<Vec<_>>>()?;
            let output = self
                .client
                .put_events()
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| anyhow::anyhow!("{}", aws_sdk_eventbridge::error::DisplayErrorContext(&e)))
                .context("PutEvents failed")?;
            if output.failed_entry_count() > 0 {
                let reason = output.entries().iter().filter_map(|e| e.error_message()).collect::<Vec<_>>().join("; ");
                bail!("EventBridge refused {} events: {reason}", output.failed_entry_count());
            }
        }
        Ok(())
    }

    /// Publishes an event about a change that has already committed. Failing
    /// the request now would misreport the change, so the failure is logged;
    /// `tenant.created` is also re-driven by the provisioning sweep.
    pub async fn publish_after_commit(&self, event: &DomainEvent) {
        if let Err(err) = self.publish(event).await {
            tracing::error!(error = ?err, event_type = %event.event_type, tenant_id = %event.tenant_id, "event not published");
        }
    }
}
