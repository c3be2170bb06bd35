//! The event catalogue described: OpenAPI `webhooks` (what a tenant's
//! endpoint receives) and EventBridge schemas (docs/events/).

use serde_json::{Map, Value, json};

/// The document's `webhooks`: one entry per deliverable event.
pub fn webhooks() -> Value {
    json!({})
}

/// Schemas the `webhooks` entries refer to (`#/components/schemas/...`).
pub fn components() -> Map<String, Value> {
    Map::new()
}

/// docs/events/: file name and JSON Schema of each event on the bus.
pub fn event_schemas() -> Vec<(String, Value)> {
    Vec::new()
}
