//! Integrations (seeds 003, 001): the providers a tenant receives webhooks
//! from, and the inbound events they sent. `store::integrations` keeps the
//! keys and conditions; the integrations group serves them.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

crate::string_enum!(
    /// How the platform authenticates to the provider's API (seed 003's
    /// `auth_type`): stored for the integrations that call it; the health
    /// probe calls `api_base_url` without credentials.
    AuthType {
        ApiKey => "api_key",
        Oauth2 => "oauth2",
        Basic => "basic",
        Bearer => "bearer",
        Hmac => "hmac",
        None => "none",
    }
);

crate::string_enum!(
    /// How an inbound webhook's signature is checked (docs/integrations.md):
    /// `generic_hmac_sha256` (HMAC-SHA256 of the raw body in
    /// `X-Signature-256`), `standard_webhooks` (also Svix's headers),
    /// `stripe` (`Stripe-Signature`), `github` (`X-Hub-Signature-256`).
    Verification {
        GenericHmacSha256 => "generic_hmac_sha256",
        StandardWebhooks => "standard_webhooks",
        Stripe => "stripe",
        Github => "github",
    }
);

crate::string_enum!(
    /// An inbound event's status: `received` (stored and on its way to the
    /// bus), `processed` (its consumer took it), `failed` (the consumer gave
    /// up after its retries), `rejected` (refused at the door: signature,
    /// timestamp, address or body; nothing of it was kept but the refusal).
    /// A repeated `event_id` is answered `duplicate` and counted on the
    /// first event (`duplicate_count`): it never makes a second event.
    EventStatus {
        Received => "received",
        Processed => "processed",
        Failed => "failed",
        Rejected => "rejected",
    }
);

crate::string_enum!(
    /// A provider's health: from its last probe and its recent events
    /// (thresholds in docs/integrations.md).
    HealthStatus {
        Healthy => "healthy",
        Degraded => "degraded",
        Down => "down",
        Unknown => "unknown",
    }
);

/// The requests one provider may send per minute unless it says otherwise.
pub const DEFAULT_RATE_LIMIT_PER_MINUTE: i64 = 600;
pub const MAX_RATE_LIMIT_PER_MINUTE: i64 = 100_000;
/// The most providers a tenant may have: health and probes visit each.
pub const MAX_PROVIDERS_PER_TENANT: i64 = 25;
/// The largest inbound body kept (Stripe's events are under 64 KiB; GitHub
/// caps its payloads at 25 MB, which an event row and bus event cannot hold).
pub const MAX_INBOUND_BYTES: usize = 256 * 1024;
/// How long a rotated-out secret is still accepted unless the rotation says.
pub const DEFAULT_ROTATION_GRACE_SECONDS: i64 = 86_400;
pub const MAX_ROTATION_GRACE_SECONDS: i64 = 7 * 86_400;
/// How long events (and their dedupe claims) are kept; rejections shorter.
pub const EVENT_RETENTION_DAYS: i64 = 30;
pub const REJECTION_RETENTION_DAYS: i64 = 7;

/// A provider as stored. The signing secrets and the inbound token are
/// sealed beside the item (`store::integrations`), never fields here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Provider {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub name: String,
    #[serde(default)]
    pub webhook_url: Option<String>,
    #[serde(default)]
    pub api_base_url: Option<String>,
    pub auth_type: String,
    pub verification: String,
    #[serde(default)]
    pub allowed_ips: Vec<String>,
    pub rate_limit_per_minute: i64,
    pub is_active: bool,
    /// Until when the secret before the last rotation is still accepted.
    #[serde(default)]
    pub previous_secret_expires_at: Option<String>,
    #[serde(default)]
    pub probe: Option<Probe>,
    pub created_at: String,
    pub updated_at: String,
}

/// The last active check of a provider's `api_base_url`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Probe {
    #[schema(value_type = HealthStatus)]
    pub status: String,
    /// Milliseconds from sending the request to its answer's headers; null
    /// when nothing answered.
    pub response_time_ms: Option<i64>,
    /// The HTTP status the probe got, if any.
    pub http_status: Option<u16>,
    /// Why it is not healthy (`connection refused`, `timed out after 5 s`,
    /// `slow: 1840 ms`, `HTTP 503`).
    pub error: Option<String>,
    #[schema(format = DateTime)]
    pub checked_at: String,
}

/// A provider as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ProviderView {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub name: String,
    /// The provider's own webhook settings page or sender URL (seed 003).
    pub webhook_url: Option<String>,
    /// Probed for health (`GET`, 5 s timeout).
    pub api_base_url: Option<String>,
    #[schema(value_type = AuthType)]
    pub auth_type: String,
    #[schema(value_type = Verification)]
    pub verification: String,
    /// Addresses or CIDR ranges inbound webhooks may come from; empty: any.
    pub allowed_ips: Vec<String>,
    pub rate_limit_per_minute: i64,
    pub is_active: bool,
    /// Where the provider sends its webhooks: the secret token in it names
    /// this tenant and provider.
    pub inbound_url: String,
    /// During a rotation's grace, until when the previous secret still verifies.
    #[schema(format = DateTime)]
    pub previous_secret_expires_at: Option<String>,
    pub last_probe: Option<Probe>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

impl Provider {
    /// The view; `inbound_url` is made by the caller, which can open the token.
    pub fn view(&self, inbound_url: String) -> ProviderView {
        ProviderView {
            id: self.id,
            tenant_id: self.tenant_id,
            name: self.name.clone(),
            webhook_url: self.webhook_url.clone(),
            api_base_url: self.api_base_url.clone(),
            auth_type: self.auth_type.clone(),
            verification: self.verification.clone(),
            allowed_ips: self.allowed_ips.clone(),
            rate_limit_per_minute: self.rate_limit_per_minute,
            is_active: self.is_active,
            inbound_url,
            previous_secret_expires_at: self.previous_secret_expires_at.clone(),
            last_probe: self.probe.clone(),
            created_at: self.created_at.clone(),
            updated_at: self.updated_at.clone(),
        }
    }

    /// What audit entries record: the view without the token.
    pub fn audit_view(&self) -> serde_json::Value {
        serde_json::json!({
            "id": self.id, "name": self.name, "webhook_url": self.webhook_url, "api_base_url": self.api_base_url,
            "auth_type": self.auth_type, "verification": self.verification, "allowed_ips": self.allowed_ips,
            "rate_limit_per_minute": self.rate_limit_per_minute, "is_active": self.is_active,
        })
    }
}

/// Why an inbound request was refused, as recorded on its `rejected` event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Rejection {
    /// `invalid_signature`, `missing_signature`, `timestamp_out_of_tolerance`,
    /// `ip_not_allowed`, `payload_too_large`, `invalid_json`, `missing_event_id`, ...
    pub reason: String,
    pub message: String,
}

/// An inbound event as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InboundEvent {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub provider_id: Uuid,
    /// The provider's name when the event came (seed 003's `provider`).
    pub provider: String,
    /// The sender's id; empty on a rejection that came before it was read.
    #[serde(default)]
    pub event_id: String,
    #[serde(default)]
    pub event_type: String,
    pub status: String,
    #[serde(default)]
    pub rejection: Option<Rejection>,
    #[serde(default)]
    pub source_ip: Option<String>,
    pub size_bytes: i64,
    /// `current` or `previous`: which secret verified it (rotation).
    #[serde(default)]
    pub secret_used: Option<String>,
    /// The raw body in S3 (none for a rejection).
    #[serde(default)]
    pub payload_key: Option<String>,
    #[serde(default)]
    pub duplicate_count: i64,
    #[serde(default)]
    pub last_duplicate_at: Option<String>,
    #[serde(default)]
    pub replay_count: i64,
    #[serde(default)]
    pub processed_at: Option<String>,
    /// Milliseconds from receipt to its consumer's taking it (the last time).
    #[serde(default)]
    pub processing_ms: Option<i64>,
    #[serde(default)]
    pub attempts: i64,
    #[serde(default)]
    pub last_error: Option<String>,
    pub created_at: String,
}

/// An inbound event in a list (seed 003's fields first).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct InboundEventView {
    pub id: Uuid,
    pub event_type: String,
    pub event_id: String,
    /// The provider's name.
    pub provider: String,
    #[schema(value_type = EventStatus)]
    pub status: String,
    #[schema(format = DateTime)]
    pub created_at: String,
    pub provider_id: Uuid,
    pub rejection: Option<Rejection>,
    pub source_ip: Option<String>,
    pub size_bytes: i64,
    /// Later deliveries of the same `event_id`, answered `duplicate`.
    pub duplicate_count: i64,
    #[schema(format = DateTime)]
    pub last_duplicate_at: Option<String>,
    pub replay_count: i64,
    #[schema(format = DateTime)]
    pub processed_at: Option<String>,
    pub processing_ms: Option<i64>,
    /// Deliveries of the event to its consumer (retries included).
    pub attempts: i64,
    pub last_error: Option<String>,
}

impl InboundEvent {
    pub fn view(&self) -> InboundEventView {
        InboundEventView {
            id: self.id,
            event_type: self.event_type.clone(),
            event_id: self.event_id.clone(),
            provider: self.provider.clone(),
            status: self.status.clone(),
            created_at: self.created_at.clone(),
            provider_id: self.provider_id,
            rejection: self.rejection.clone(),
            source_ip: self.source_ip.clone(),
            size_bytes: self.size_bytes,
            duplicate_count: self.duplicate_count,
            last_duplicate_at: self.last_duplicate_at.clone(),
            replay_count: self.replay_count,
            processed_at: self.processed_at.clone(),
            processing_ms: self.processing_ms,
            attempts: self.attempts,
            last_error: self.last_error.clone(),
        }
    }
}

/// A probe answered within this many milliseconds is healthy; slower, degraded.
pub const PROBE_SLOW_MS: i64 = 1_000;
/// Settled events (processed or failed) needed before their success rate
/// says anything: fewer and the events leave the status to the probe.
pub const MIN_SETTLED_EVENTS: usize = 5;
/// Success rate of settled events below which a provider is degraded, and down.
pub const DEGRADED_BELOW: f64 = 0.95;
pub const DOWN_BELOW: f64 = 0.5;
/// The events window health looks at, and the most events it reads.
pub const HEALTH_WINDOW_HOURS: i64 = 24;
pub const HEALTH_MAX_EVENTS: i32 = 500;

impl Probe {
    /// A probe's result as a health status: no answer (refused, timed out,
    /// no such host, TLS) is `down`; a 5xx or an answer slower than
    /// [`PROBE_SLOW_MS`] is `degraded`; any other answer is `healthy` (a
    /// 401 or 404 at the base URL still shows the service is up).
    pub fn of(elapsed_ms: i64, http_status: Option<u16>, error: Option<String>, checked_at: String) -> Probe {
        let (status, error) = match (http_status, error) {
            (None, error) => (HealthStatus::Down, Some(error.unwrap_or_else(|| "no answer".to_owned()))),
            (Some(code), _) if code >= 500 => (HealthStatus::Degraded, Some(format!("HTTP {code}"))),
            (Some(_), _) if elapsed_ms >= PROBE_SLOW_MS => {
                (HealthStatus::Degraded, Some(format!("slow: {elapsed_ms} ms (over {PROBE_SLOW_MS} ms)")))
            }
            (Some(_), _) => (HealthStatus::Healthy, None),
        };
        Probe {
            status: status.as_str().to_owned(),
            response_time_ms: http_status.map(|_| elapsed_ms),
            http_status,
            error,
            checked_at,
        }
    }
}

/// Percentiles of processing latency, nearest-rank.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Latency {
    pub p50_ms: i64,
    pub p95_ms: i64,
}

/// What a provider's recent events say (the last [`HEALTH_WINDOW_HOURS`]
/// hours, at most [`HEALTH_MAX_EVENTS`] events).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct EventStats {
    pub window_hours: i64,
    /// Events read (at most 500: `truncated` says when there were more).
    pub events: usize,
    pub truncated: bool,
    pub received: usize,
    pub processed: usize,
    pub failed: usize,
    pub rejected: usize,
    /// Repeated deliveries of these events, answered `duplicate`.
    pub duplicates: i64,
    /// processed / (processed + failed); null with no settled event.
    pub success_rate: Option<f64>,
    /// Receipt to processing, over processed events; null with none.
    pub latency: Option<Latency>,
    #[schema(format = DateTime)]
    pub last_success_at: Option<String>,
    #[schema(format = DateTime)]
    pub last_error_at: Option<String>,
    pub last_error: Option<String>,
}

impl EventStats {
    /// `events` newest first, as the store reads them.
    pub fn of(events: &[InboundEvent], truncated: bool) -> EventStats {
        let count = |status: EventStatus| events.iter().filter(|e| e.status == status.as_str()).count();
        let (processed, failed) = (count(EventStatus::Processed), count(EventStatus::Failed));
        let mut latencies: Vec<i64> = events
            .iter()
            .filter(|e| e.status == EventStatus::Processed.as_str())
            .filter_map(|e| e.processing_ms)
            .collect();
        latencies.sort_unstable();
        let rank = |p: f64| {
            let index = ((p * latencies.len() as f64).ceil() as usize).clamp(1, latencies.len()) - 1;
            latencies[index]
        };
        let last_error = events
            .iter()
            .find(|e| e.status == EventStatus::Failed.as_str() || e.status == EventStatus::Rejected.as_str());
        EventStats {
            window_hours: HEALTH_WINDOW_HOURS,
            events: events.len(),
            truncated,
            received: count(EventStatus::Received),
            processed,
            failed,
            rejected: count(EventStatus::Rejected),
            duplicates: events.iter().map(|e| e.duplicate_count).sum(),
            success_rate: (processed + failed > 0).then(|| processed as f64 / (processed + failed) as f64),
            latency: (!latencies.is_empty()).then(|| Latency { p50_ms: rank(0.50), p95_ms: rank(0.95) }),
            last_success_at: events
                .iter()
                .find(|e| e.status == EventStatus::Processed.as_str())
                .and_then(|e| e.processed_at.clone()),
            last_error_at: last_error.map(|e| e.created_at.clone()),
            last_error: last_error.and_then(|e| {
                e.rejection.as_ref().map(|r| format!("rejected: {}", r.reason)).or_else(|| e.last_error.clone())
            }),
        }
    }

    /// What the events alone say: nothing below [`MIN_SETTLED_EVENTS`]
    /// settled ones; then by success rate.
    pub fn status(&self) -> Option<HealthStatus> {
        if self.processed + self.failed < MIN_SETTLED_EVENTS {
            return None;
        }
        let rate = self.success_rate?;
        Some(if rate < DOWN_BELOW {
            HealthStatus::Down
        } else if rate < DEGRADED_BELOW {
            HealthStatus::Degraded
        } else {
            HealthStatus::Healthy
        })
    }
}

impl HealthStatus {
    fn badness(self) -> u8 {
        match self {
            HealthStatus::Healthy => 1,
            HealthStatus::Unknown => 0,
            HealthStatus::Degraded => 2,
            HealthStatus::Down => 3,
        }
    }

    /// The worse of two; `unknown` only when neither knows.
    pub fn worst(self, other: HealthStatus) -> HealthStatus {
        if other.badness() > self.badness() { other } else { self }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(status: EventStatus, processing_ms: Option<i64>) -> InboundEvent {
        InboundEvent {
            id: Uuid::now_v7(),
            tenant_id: Uuid::nil(),
            provider_id: Uuid::nil(),
            provider: "user_service".into(),
            event_id: "evt".into(),
            event_type: "user.created".into(),
            status: status.as_str().into(),
            rejection: None,
            source_ip: None,
            size_bytes: 10,
            secret_used: None,
            payload_key: None,
            duplicate_count: 0,
            last_duplicate_at: None,
            replay_count: 0,
            processed_at: processing_ms.map(|_| "2026-12-01T00:00:00Z".into()),
            processing_ms,
            attempts: 1,
            last_error: None,
            created_at: "2026-12-01T00:00:00Z".into(),
        }
    }

    #[test]
    fn a_probe_is_down_without_an_answer_degraded_when_slow_or_failing() {
        let at = String::from("2026-12-01T00:00:00Z");
        assert_eq!(Probe::of(120, Some(200), None, at.clone()).status, "healthy");
        assert_eq!(Probe::of(120, Some(404), None, at.clone()).status, "healthy");
        let slow = Probe::of(1_500, Some(200), None, at.clone());
        assert_eq!((slow.status.as_str(), slow.response_time_ms), ("degraded", Some(1_500)));
        assert_eq!(Probe::of(30, Some(503), None, at.clone()).status, "degraded");
        let refused = Probe::of(3, None, Some("connection refused".into()), at);
        assert_eq!((refused.status.as_str(), refused.response_time_ms), ("down", None));
        assert_eq!(refused.error.as_deref(), Some("connection refused"));
    }

    #[test]
    fn event_stats_count_rates_and_nearest_rank_latency() {
        let mut events: Vec<InboundEvent> = (1..=19).map(|ms| event(EventStatus::Processed, Some(ms * 10))).collect();
        events.push(event(EventStatus::Failed, None));
        events.push(event(EventStatus::Rejected, None));
        let stats = EventStats::of(&events, false);
        assert_eq!((stats.processed, stats.failed, stats.rejected), (19, 1, 1));
        assert_eq!(stats.success_rate, Some(0.95));
        assert_eq!(stats.latency, Some(Latency { p50_ms: 100, p95_ms: 190 }));
        assert_eq!(stats.status(), Some(HealthStatus::Healthy));
        let few = EventStats::of(&events[..3], false);
        assert_eq!(few.status(), None, "three settled events say nothing");
        let failing: Vec<InboundEvent> = (0..6).map(|_| event(EventStatus::Failed, None)).collect();
        assert_eq!(EventStats::of(&failing, false).status(), Some(HealthStatus::Down));
        assert_eq!(HealthStatus::Unknown.worst(HealthStatus::Healthy), HealthStatus::Healthy);
        assert_eq!(HealthStatus::Degraded.worst(HealthStatus::Healthy), HealthStatus::Degraded);
    }
}
