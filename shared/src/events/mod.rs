//! Domain events. A change writes its events into the outbox, inside its own
//! transaction (`store::tx::Tx::emit`), so an event exists if and only if
//! the change committed; the relay (DynamoDB Streams -> EventBridge Pipes ->
//! the bus, see docs/architecture.md) puts them on the bus, where rules route
//! them to the workers' queues and to webhook delivery. Nothing publishes to
//! the bus directly but the relay.
//! - [`catalogue`]: the typed events (names, versions, payloads).
//! - [`bus`]: PutEvents, for the relay (the local server's stream poller).
//! - [`DomainEvent`]: the envelope as it travels; [`EventBridgeEnvelope`]:
//!   what an SQS target of a rule receives.

pub mod bus;
pub mod catalogue;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

pub use catalogue::Event;

/// An event as it travels: in the outbox item, as the EventBridge `detail`,
/// and (re-shaped by the dispatcher) as a webhook body. Every event carries
/// an id so consumers can drop duplicates: the relay, EventBridge and SQS all
/// deliver at least once.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DomainEvent {
    pub id: Uuid,
    #[serde(rename = "type")]
    pub event_type: String,
    #[serde(default = "first_version")]
    pub version: u32,
    pub tenant_id: Uuid,
    pub occurred_at: DateTime<Utc>,
    pub data: Value,
}

impl DomainEvent {
    /// The event's `source` on the bus: the platform's, except an inbound
    /// integration event, whose source names its provider. The outbox item
    /// carries it (`event_source`) for the Pipe; the local relay asks here.
    pub fn source(&self) -> String {
        match (self.event_type.as_str(), self.data.get("provider").and_then(Value::as_str)) {
            (catalogue::INTEGRATION_EVENT_RECEIVED, Some(provider)) => {
                format!("{}{provider}", crate::config::INTEGRATION_SOURCE_PREFIX)
            }
            _ => crate::config::EVENT_SOURCE.to_owned(),
        }
    }
}

fn first_version() -> u32 {
    1
}

/// The envelope EventBridge hands to an SQS target: the event JSON itself.
#[derive(Debug, Deserialize)]
pub struct EventBridgeEnvelope {
    #[serde(rename = "detail-type")]
    pub detail_type: String,
    pub source: String,
    pub detail: DomainEvent,
}

impl EventBridgeEnvelope {
    /// The typed event, if this envelope came from our own source.
    pub fn event(&self) -> anyhow::Result<Event> {
        if self.source != self.detail.source() {
            anyhow::bail!("event from an unexpected source {}", self.source);
        }
        Event::parse(&self.detail).map_err(|e| anyhow::anyhow!("event {} does not parse: {e}", self.detail_type))
    }
}
