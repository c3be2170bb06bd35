//! PutEvents: what the relay does with outbox events (in AWS the Pipe does
//! it; locally the local server's stream poller). Handlers and workers never
//! call it: their events go through the outbox.

use anyhow::{Context, Result, bail};

use super::DomainEvent;

#[derive(Clone, Debug)]
pub struct EventPublisher {
    client: aws_sdk_eventbridge::Client,
    bus_name: String,
}

impl EventPublisher {
    pub fn new(client: aws_sdk_eventbridge::Client, bus_name: impl Into<String>) -> Self {
        Self { client, bus_name: bus_name.into() }
    }

    /// Publishes the events, ten per PutEvents call (its limit), in order.
    /// Fails if any entry was refused; entries before it may have gone out,
    /// so the caller retries them all (consumers drop duplicates by id).
    pub async fn publish_all(&self, events: &[DomainEvent]) -> Result<()> {
        for chunk in events.chunks(10) {
            let entries = chunk
                .iter()
                .map(|event| {
                    Ok(aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
                        .event_bus_name(&self.bus_name)
                        .source(event.source())
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
}
