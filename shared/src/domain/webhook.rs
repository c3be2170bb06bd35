//! Outbound webhooks: what an endpoint may subscribe to and how it is
//! retried, as values that are valid by construction. No I/O.
//!
//! - [`EventPattern`]: an event type (`user.created`), a family
//!   (`tryon.*`) or `*`.
//! - [`RetrySchedule`]: up to [`MAX_RETRIES`] delays of whole seconds, at
//!   most a day in all (`[]`: no retry).
//! - [`EndpointStatus`], [`DeliveryStatus`]: the states a caller may set or
//!   filter by (stored as the same strings).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer, de::Error as _};
use serde_json::Value;
use uuid::Uuid;

/// Seed 004's schedule: retries 5 s, 15 s and 45 s after a failure.
pub const DEFAULT_SCHEDULE: [i64; 3] = [5, 15, 45];
pub const MAX_RETRIES: usize = 10;
/// A schedule may spread a delivery over a day at most.
pub const MAX_SCHEDULE_SECONDS: i64 = 86_400;
pub const MAX_EVENT_TYPES: usize = 50;

crate::string_enum!(
    /// An endpoint's status: `disabled` by a user, after 10 failed
    /// deliveries, or on a 410.
    EndpointStatus {
        Active => "active",
        Disabled => "disabled",
    }
);

crate::string_enum!(
    /// A delivery's status.
    DeliveryStatus {
        Pending => "pending",
        Succeeded => "succeeded",
        Failed => "failed",
    }
);

/// Whether `pattern` (`*`, `tryon.*` or an exact type) covers `event_type`.
pub fn type_matches(pattern: &str, event_type: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some("") => true,
        Some(prefix) => event_type.starts_with(prefix),
        None => pattern == event_type,
    }
}

/// A tenant's webhook endpoint as stored (`store::webhooks` keeps its keys
/// and conditions). `status` is an [`EndpointStatus`] name; timestamps are
/// RFC 3339 strings as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Endpoint {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub url: String,
    #[serde(default)]
    pub description: Option<String>,
    pub event_types: Vec<String>,
    pub status: String,
    #[serde(default)]
    pub disabled_reason: Option<String>,
    pub retry_schedule_seconds: Vec<i64>,
    #[serde(default)]
    pub consecutive_failures: i64,
    pub created_at: String,
    pub updated_at: String,
}

/// A webhook endpoint as the API shows it (and as audit entries record it).
/// The signing secret is sealed beside the item, never a field here: only
/// the create and rotate-secret answers carry it, once.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct EndpointView {
    pub id: Uuid,
    pub tenant_id: Uuid,
    /// Where deliveries are POSTed.
    pub url: String,
    pub description: Option<String>,
    /// What the endpoint subscribes to: event types (`user.created`),
    /// families (`tryon.*`) or `*`.
    pub event_types: Vec<String>,
    #[schema(value_type = EndpointStatus)]
    pub status: String,
    /// Why the endpoint is `disabled` (by a user, after failed deliveries,
    /// or on a 410).
    pub disabled_reason: Option<String>,
    /// Delays before each retry of a failed delivery, in seconds.
    pub retry_schedule_seconds: Vec<i64>,
    /// Deliveries failed in a row; the endpoint is disabled at 10.
    pub consecutive_failures: i64,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

impl Endpoint {
    pub fn view(&self) -> EndpointView {
        EndpointView {
            id: self.id,
            tenant_id: self.tenant_id,
            url: self.url.clone(),
            description: self.description.clone(),
            event_types: self.event_types.clone(),
            status: self.status.clone(),
            disabled_reason: self.disabled_reason.clone(),
            retry_schedule_seconds: self.retry_schedule_seconds.clone(),
            consecutive_failures: self.consecutive_failures,
            created_at: self.created_at.clone(),
            updated_at: self.updated_at.clone(),
        }
    }

    /// Whether this endpoint wants events of `event_type` (`*`, `tryon.*`,
    /// or the exact type).
    pub fn wants(&self, event_type: &str) -> bool {
        self.event_types.iter().any(|pattern| type_matches(pattern, event_type))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    pub id: Uuid,
    pub endpoint_id: Uuid,
    pub tenant_id: Uuid,
    pub event_type: String,
    pub payload: String,
    pub status: String,
    #[serde(default)]
    pub attempts: Vec<Value>,
    /// Attempts since the delivery was (re)queued; indexes the schedule.
    #[serde(default)]
    pub round_attempts: i64,
    #[serde(default)]
    pub next_attempt_at: Option<String>,
    pub created_at: String,
    #[serde(default)]
    pub completed_at: Option<String>,
}

impl Delivery {
    /// The webhook-id header: the same on every attempt and replay.
    pub fn message_id(&self) -> String {
        format!("msg_{}", self.id.simple())
    }

    pub fn view(&self) -> DeliveryView {
        DeliveryView {
            id: self.id,
            webhook_id: self.message_id(),
            endpoint_id: self.endpoint_id,
            event_type: self.event_type.clone(),
            status: self.status.clone(),
            attempts: self.attempts.clone(),
            attempt_count: self.attempts.len(),
            next_attempt_at: self.next_attempt_at.clone(),
            created_at: self.created_at.clone(),
            completed_at: self.completed_at.clone(),
        }
    }
}

/// A delivery as the API shows it: the payload sent and the schedule's
/// bookkeeping (`round_attempts`) stay stored only.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct DeliveryView {
    /// The id of the event delivered.
    pub id: Uuid,
    /// The `webhook-id` header the receiver saw: the same on every attempt
    /// and replay.
    pub webhook_id: String,
    pub endpoint_id: Uuid,
    pub event_type: String,
    #[schema(value_type = DeliveryStatus)]
    pub status: String,
    /// Every attempt, oldest first: `number`, `at`, `status_code`,
    /// `latency_ms`, `error`, `response_body` (its first KiB). Shown as
    /// recorded: a delivery ended without a request (its endpoint deleted or
    /// disabled) has an attempt with no `number`.
    pub attempts: Vec<Value>,
    /// How many attempts `attempts` holds.
    pub attempt_count: usize,
    /// When a `pending` delivery is tried again.
    #[schema(format = DateTime)]
    pub next_attempt_at: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
    /// When the delivery `succeeded` or `failed`.
    #[schema(format = DateTime)]
    pub completed_at: Option<String>,
}

/// What an endpoint subscribes to: an event type (`user.created`: lowercase
/// dotted words), a family (`tryon.*`) or every event (`*`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EventPattern(String);

impl EventPattern {
    pub const EXPECTATION: &'static str = "must be an event type (user.created), a family (tryon.*) or *";
    /// What [`Self::parse`] accepts, as the OpenAPI document states it.
    pub const PATTERN: &'static str = r"^(\*|[a-z_]+(\.[a-z_]+)*(\.\*)?)$";

    pub fn parse(value: &str) -> Option<Self> {
        let body = value.strip_suffix(".*").unwrap_or(value);
        let valid = value == "*"
            || (!body.is_empty()
                && body
                    .split('.')
                    .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')));
        valid.then(|| Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EventPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for EventPattern {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for EventPattern {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match Value::deserialize(deserializer)? {
            Value::String(s) => Self::parse(&s).ok_or_else(|| D::Error::custom(Self::EXPECTATION)),
            _ => Err(D::Error::custom(Self::EXPECTATION)),
        }
    }
}

eserde::impl_edeserialize_compat!(EventPattern);

crate::inline_schema!(
    EventPattern,
    "EventPattern",
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .min_length(Some(1))
        .pattern(Some(EventPattern::PATTERN))
        .description(Some(
            "An event type of the catalogue (`user.created`; see `webhooks` in this document), a family \
             (`tryon.*`: every type that starts with `tryon.`) or `*` (every event). Any lowercase dotted name \
             is accepted; one that names no event of the catalogue never matches.",
        ))
        .examples(["user.created", "tryon.*", "*"])
);

/// The schema of a list of patterns that may not be `null` (an update's
/// `Settable<Vec<EventPattern>>`, whose derived schema drops the bounds):
/// 1 to [`MAX_EVENT_TYPES`] patterns.
pub fn event_types_schema() -> utoipa::openapi::schema::Array {
    utoipa::openapi::schema::ArrayBuilder::new()
        .items(<EventPattern as utoipa::PartialSchema>::schema())
        .min_items(Some(1))
        .max_items(Some(MAX_EVENT_TYPES))
        .description(Some(format!(
            "What the endpoint subscribes to: 1 to {MAX_EVENT_TYPES} event types, families (`tryon.*`) or `*`"
        )))
        .build()
}

/// Delays before each retry, in whole seconds: at most [`MAX_RETRIES`]
/// (none: a failed attempt is final), each 1..=[`MAX_SCHEDULE_SECONDS`],
/// adding up to a day at most. Refused
/// as a whole (the field is named, not the element).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule(Vec<i64>);

impl RetrySchedule {
    pub fn parse(value: &Value) -> Result<Self, String> {
        let Some(list) = value.as_array() else {
            return Err("must be an array".to_owned());
        };
        if list.len() > MAX_RETRIES {
            return Err(format!("must have at most {MAX_RETRIES} items"));
        }
        let delays: Option<Vec<i64>> =
            list.iter().map(|v| v.as_i64().filter(|d| (1..=MAX_SCHEDULE_SECONDS).contains(d))).collect();
        let Some(delays) = delays else {
            return Err(format!("must be whole seconds from 1 to {MAX_SCHEDULE_SECONDS}"));
        };
        if delays.iter().sum::<i64>() > MAX_SCHEDULE_SECONDS {
            return Err("must add up to a day at most".to_owned());
        }
        Ok(Self(delays))
    }

    pub fn into_inner(self) -> Vec<i64> {
        self.0
    }
}

impl<'de> Deserialize<'de> for RetrySchedule {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Self::parse(&Value::deserialize(deserializer)?).map_err(D::Error::custom)
    }
}

eserde::impl_edeserialize_compat!(RetrySchedule);

crate::inline_schema!(
    RetrySchedule,
    "RetrySchedule",
    utoipa::openapi::schema::ArrayBuilder::new()
        .items(integer(1, MAX_SCHEDULE_SECONDS))
        .max_items(Some(MAX_RETRIES))
        .description(Some(format!(
            "Delays before each retry of a failed delivery, in whole seconds: at most {MAX_RETRIES}, each 1 to \
             {MAX_SCHEDULE_SECONDS}, adding up to {MAX_SCHEDULE_SECONDS} (a day) at most; `[]`: a failed attempt is not retried"
        )))
        .examples([serde_json::json!(DEFAULT_SCHEDULE)])
        .build()
);

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn event_patterns() {
        for ok in ["*", "user.created", "tryon.*", "webhook.delivery.replay_requested"] {
            assert!(EventPattern::parse(ok).is_some(), "{ok}");
        }
        for bad in ["", "User.Created", "tryon.*.x", "a..b", ".*", "Bad Type"] {
            assert!(EventPattern::parse(bad).is_none(), "{bad}");
        }
        assert!(type_matches("tryon.*", "tryon.session.completed"));
        assert!(!type_matches("user.created", "user.deleted"));
    }

    #[test]
    fn a_delivery_shows_its_webhook_id_and_attempt_count_but_not_its_payload() {
        let id = Uuid::now_v7();
        let endpoint_id = Uuid::now_v7();
        let delivery = Delivery {
            id,
            endpoint_id,
            tenant_id: Uuid::now_v7(),
            event_type: "user.created".into(),
            payload: "{}".into(),
            status: "pending".into(),
            attempts: vec![json!({"number": 1, "status_code": 500})],
            round_attempts: 1,
            next_attempt_at: Some("2027-01-01T00:00:05Z".into()),
            created_at: "2027-01-01T00:00:00Z".into(),
            completed_at: None,
        };
        let body = serde_json::to_value(delivery.view()).expect("view");
        assert_eq!(
            body,
            json!({
                "id": id,
                "webhook_id": format!("msg_{}", id.simple()),
                "endpoint_id": endpoint_id,
                "event_type": "user.created",
                "status": "pending",
                "attempts": [{"number": 1, "status_code": 500}],
                "attempt_count": 1,
                "next_attempt_at": "2027-01-01T00:00:05Z",
                "created_at": "2027-01-01T00:00:00Z",
                "completed_at": null,
            })
        );
    }

    #[test]
    fn an_endpoint_view_is_every_stored_field_nulls_included() {
        let endpoint = Endpoint {
            id: Uuid::now_v7(),
            tenant_id: Uuid::now_v7(),
            url: "https://hooks.example.com/x".into(),
            description: None,
            event_types: vec!["*".into()],
            status: "active".into(),
            disabled_reason: None,
            retry_schedule_seconds: DEFAULT_SCHEDULE.to_vec(),
            consecutive_failures: 0,
            created_at: "2027-01-01T00:00:00Z".into(),
            updated_at: "2027-01-01T00:00:00Z".into(),
        };
        let stored = serde_json::to_value(&endpoint).expect("endpoint");
        assert_eq!(serde_json::to_value(endpoint.view()).expect("view"), stored);
    }

    #[test]
    fn retry_schedules() {
        assert_eq!(RetrySchedule::parse(&json!([5, 15, 45])).map(RetrySchedule::into_inner), Ok(vec![5, 15, 45]));
        for bad in [json!([5, 0]), json!([86_400, 1]), json!(vec![1; 11]), json!(["5"]), json!(5)] {
            assert!(RetrySchedule::parse(&bad).is_err(), "{bad}");
        }
    }
}
