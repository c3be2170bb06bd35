//! The outbox relay, locally: what the `OutboxPipe` (EventBridge Pipes,
//! template.yaml) does in AWS. It reads the table's DynamoDB stream from its
//! start (`TRIM_HORIZON`), keeps the records the Pipe's filter keeps (an
//! INSERT of an item carrying `event_detail`: an outbox event or an audit
//! entry, see `shared::store::tx`), and puts their events on the bus in
//! stream order. A PutEvents that fails is retried with back-off and the
//! stream position does not move, so an unreachable bus delays events and
//! loses none; the position is kept in `LOCAL_DIR/outbox-relay.json`, so a
//! restarted server goes on where it stopped (like the Pipe's checkpoint).
//! Consumers drop duplicates by event id, as they must with the Pipe too.
//!
//! [`RelayControl`] lets the end-to-end fault test make the bus unreachable
//! for real: PutEvents then goes to a closed local port.

use std::{
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use anyhow::Result;
use aws_sdk_dynamodbstreams::types::{AttributeValue, OperationType, Record};
use shared::{
    events::{DomainEvent, bus::EventPublisher},
    store::tx::{EVENT_DETAIL_ATTR, EVENT_TYPE_ATTR},
};
use tokio::task::JoinHandle;

use crate::stream_reader::{Consumer, Position, StreamReader};

const MAX_BACK_OFF: Duration = Duration::from_secs(2);

/// Switches the relay's bus between the real one and an unreachable one.
#[derive(Clone, Default)]
pub struct RelayControl {
    bus_down: Arc<AtomicBool>,
}

impl RelayControl {
    pub fn set_bus_reachable(&self, reachable: bool) {
        self.bus_down.store(!reachable, Ordering::SeqCst);
    }
}

pub struct OutboxRelay {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub eventbridge: aws_sdk_eventbridge::Client,
    pub table: String,
    pub bus_name: String,
    pub checkpoint: PathBuf,
    pub control: RelayControl,
}

/// The relay at work: its clients are built on its own task.
struct Running<'a> {
    relay: &'a OutboxRelay,
    streams: aws_sdk_dynamodbstreams::Client,
    bus: EventPublisher,
    /// The same bus name behind an endpoint nothing listens on.
    unreachable_bus: EventPublisher,
}

impl OutboxRelay {
    pub fn spawn(self) -> JoinHandle<()> {
        tokio::spawn(async move {
            let sdk = shared::aws::load_sdk_config().await;
            let unreachable = aws_sdk_eventbridge::Client::from_conf(
                aws_sdk_eventbridge::config::Builder::from(&sdk)
                    // Nothing listens on the discard port: every call fails to connect.
                    .endpoint_url("http://127.0.0.1:9")
                    .build(),
            );
            let running = Running {
                relay: &self,
                streams: aws_sdk_dynamodbstreams::Client::new(&sdk),
                bus: EventPublisher::new(self.eventbridge.clone(), self.bus_name.clone()),
                unreachable_bus: EventPublisher::new(unreachable, self.bus_name.clone()),
            };
            loop {
                if let Err(err) = running.run().await {
                    tracing::warn!(error = ?err, "outbox relay stopped; restarting");
                    tokio::time::sleep(MAX_BACK_OFF).await;
                }
            }
        })
    }
}

impl Running<'_> {
    async fn run(&self) -> Result<()> {
        let relay = self.relay;
        StreamReader {
            dynamodb: &relay.dynamodb,
            streams: &self.streams,
            table: &relay.table,
            checkpoint: &relay.checkpoint,
            name: "outbox relay",
            // The Pipe forwards as soon as it can: events are not batched.
            idle_poll: Duration::from_millis(100),
            batching_window: false,
        }
        .run(self)
        .await
    }

    /// Until the bus takes them: the stream position waits for the events.
    async fn publish(&self, events: &[DomainEvent]) {
        let mut back_off = Duration::from_millis(50);
        loop {
            let down = self.relay.control.bus_down.load(Ordering::SeqCst);
            let bus = if down { &self.unreachable_bus } else { &self.bus };
            match bus.publish_all(events).await {
                Ok(()) => {
                    tracing::debug!(count = events.len(), "outbox events relayed");
                    return;
                }
                Err(err) => {
                    tracing::warn!(error = %err, count = events.len(), "the bus refused outbox events; retrying");
                    tokio::time::sleep(back_off).await;
                    back_off = (back_off * 2).min(MAX_BACK_OFF);
                }
            }
        }
    }
}

impl Consumer for Running<'_> {
    async fn consume(&self, records: &[Record], _from: &Position) {
        let events: Vec<DomainEvent> = records.iter().filter_map(outbox_event).collect();
        if !events.is_empty() {
            self.publish(&events).await;
        }
    }
}

/// The event of an outbox record, as the Pipe's filter and input template
/// pick it: INSERTs whose new image carries `event_detail`.
fn outbox_event(record: &Record) -> Option<DomainEvent> {
    if record.event_name() != Some(&OperationType::Insert) {
        return None;
    }
    let image = record.dynamodb()?.new_image()?;
    let AttributeValue::S(detail) = image.get(EVENT_DETAIL_ATTR)? else { return None };
    match serde_json::from_str::<DomainEvent>(detail) {
        Ok(event) => Some(event),
        Err(err) => {
            // The Pipe would send it to its DLQ; nothing we wrote should.
            let kind = image.get(EVENT_TYPE_ATTR).and_then(|v| v.as_s().ok());
            tracing::error!(error = %err, event_type = ?kind, "an outbox item whose detail is not an event");
            None
        }
    }
}
