//! The event catalogue: every domain event the platform emits, one variant
//! each, with its name, version and payload. Events are written to the
//! outbox inside the transaction of the change they describe
//! (`store::tx::Tx::emit`); the relay (DynamoDB Streams -> EventBridge Pipes
//! -> the bus) puts them on the bus; workers and the webhook dispatcher read
//! them back with [`Event::parse`]. Payload fields are part of the public
//! webhook contract: add fields freely, rename or remove only with a new
//! version.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::DomainEvent;

/// One domain event. Serialised as `{"type": <name>, "data": <payload>}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum Event {
    /// A tenant was created (registration or a platform admin); it waits in
    /// `provisioning` until the tenant-provisioner has run.
    #[serde(rename = "tenant.created")]
    TenantCreated(TenantCreated),
    /// The provisioner made the tenant `active`.
    #[serde(rename = "tenant.activated")]
    TenantActivated(TenantActivated),
    #[serde(rename = "tenant.updated")]
    TenantUpdated(TenantUpdated),
    /// Soft delete: the tenant became `inactive`.
    #[serde(rename = "tenant.deleted")]
    TenantDeleted(TenantDeleted),
    /// A create was refused because the plan's quota is full.
    #[serde(rename = "tenant.quota_exceeded")]
    QuotaExceeded(QuotaExceeded),
    #[serde(rename = "user.created")]
    UserCreated(UserCreated),
    #[serde(rename = "user.invited")]
    UserInvited(UserInvited),
    #[serde(rename = "user.updated")]
    UserUpdated(UserUpdated),
    #[serde(rename = "user.deleted")]
    UserDeleted(UserDeleted),
    #[serde(rename = "api_key.created")]
    ApiKeyCreated(ApiKeyChanged),
    #[serde(rename = "api_key.revoked")]
    ApiKeyRevoked(ApiKeyChanged),
    #[serde(rename = "api_key.rotated")]
    ApiKeyRotated(ApiKeyChanged),
    /// A platform admin granted credits.
    #[serde(rename = "credits.added")]
    CreditsAdded(CreditsChanged),
    /// A metered charge (`POST /v1/credits/charges`).
    #[serde(rename = "credits.spent")]
    CreditsSpent(CreditsChanged),
    /// Asks the try-on worker to render one cart item (platform plumbing:
    /// never delivered to webhooks).
    #[serde(rename = "tryon.item.requested")]
    TryonItemRequested(TryonItemRequested),
    #[serde(rename = "tryon.session.completed")]
    TryonSessionCompleted(TryonSessionFinished),
    #[serde(rename = "tryon.session.failed")]
    TryonSessionFailed(TryonSessionFinished),
    #[serde(rename = "tryon.session.cancelled")]
    TryonSessionCancelled(TryonSessionFinished),
    /// `POST /v1/webhooks/{id}/test`: delivered to that endpoint only.
    #[serde(rename = "webhook.test")]
    WebhookTest(WebhookTest),
    /// A failed delivery went back to pending: the dispatcher queues its job
    /// (platform plumbing: never delivered as an event of its own).
    #[serde(rename = "webhook.delivery.replay_requested")]
    WebhookReplayRequested(WebhookReplayRequested),
    #[serde(rename = "webhook_endpoint.disabled")]
    WebhookEndpointDisabled(WebhookEndpointDisabled),
    /// Every audit entry, as written (secrets redacted), so a tenant can
    /// subscribe a webhook to its own audit trail (`audit.*`).
    #[serde(rename = "audit.entry.created")]
    AuditEntryCreated(AuditEntryCreated),
}

/// Every event name, for the webhook filter's validation and the docs.
pub const EVENT_NAMES: &[&str] = &[
    "tenant.created",
    "tenant.activated",
    "tenant.updated",
    "tenant.deleted",
    "tenant.quota_exceeded",
    "user.created",
    "user.invited",
    "user.updated",
    "user.deleted",
    "api_key.created",
    "api_key.revoked",
    "api_key.rotated",
    "credits.added",
    "credits.spent",
    "tryon.item.requested",
    "tryon.session.completed",
    "tryon.session.failed",
    "tryon.session.cancelled",
    "webhook.test",
    "webhook.delivery.replay_requested",
    "webhook_endpoint.disabled",
    "audit.entry.created",
];

/// Events that are the platform's own plumbing, never a customer's business.
pub const INTERNAL_EVENTS: &[&str] = &["tryon.item.requested", "webhook.delivery.replay_requested"];

impl Event {
    /// The event's name (EventBridge `detail-type`, webhook `type`).
    pub fn name(&self) -> &'static str {
        match self {
            Event::TenantCreated(_) => "tenant.created",
            Event::TenantActivated(_) => "tenant.activated",
            Event::TenantUpdated(_) => "tenant.updated",
            Event::TenantDeleted(_) => "tenant.deleted",
            Event::QuotaExceeded(_) => "tenant.quota_exceeded",
            Event::UserCreated(_) => "user.created",
            Event::UserInvited(_) => "user.invited",
            Event::UserUpdated(_) => "user.updated",
            Event::UserDeleted(_) => "user.deleted",
            Event::ApiKeyCreated(_) => "api_key.created",
            Event::ApiKeyRevoked(_) => "api_key.revoked",
            Event::ApiKeyRotated(_) => "api_key.rotated",
            Event::CreditsAdded(_) => "credits.added",
            Event::CreditsSpent(_) => "credits.spent",
            Event::TryonItemRequested(_) => "tryon.item.requested",
            Event::TryonSessionCompleted(_) => "tryon.session.completed",
            Event::TryonSessionFailed(_) => "tryon.session.failed",
            Event::TryonSessionCancelled(_) => "tryon.session.cancelled",
            Event::WebhookTest(_) => "webhook.test",
            Event::WebhookReplayRequested(_) => "webhook.delivery.replay_requested",
            Event::WebhookEndpointDisabled(_) => "webhook_endpoint.disabled",
            Event::AuditEntryCreated(_) => "audit.entry.created",
        }
    }

    /// The payload's version; bumped when a field is renamed or removed.
    pub fn version(&self) -> u32 {
        1
    }

    /// The envelope as it travels (outbox item, bus, webhook body).
    pub fn into_domain_event(self, tenant_id: Uuid) -> DomainEvent {
        let name = self.name();
        let version = self.version();
        let data = match serde_json::to_value(&self) {
            Ok(Value::Object(mut tagged)) => tagged.remove("data").unwrap_or(Value::Null),
            _ => Value::Null,
        };
        DomainEvent {
            id: Uuid::now_v7(),
            event_type: name.to_owned(),
            version,
            tenant_id,
            occurred_at: chrono::Utc::now(),
            data,
        }
    }

    /// The typed event an envelope carries; an error for names this
    /// catalogue does not know or payloads that do not match.
    pub fn parse(event: &DomainEvent) -> serde_json::Result<Event> {
        serde_json::from_value(serde_json::json!({"type": event.event_type, "data": event.data}))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TenantCreated {
    pub tenant_id: Uuid,
    pub name: String,
    pub slug: String,
    pub admin_email: Option<String>,
    pub plan: String,
    pub parent_id: Option<Uuid>,
    pub created_by: Option<Uuid>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TenantActivated {
    pub tenant_id: Uuid,
    pub slug: String,
    pub admin_invitation_sent: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TenantUpdated {
    pub tenant_id: Uuid,
    pub changed_fields: Vec<String>,
    pub updated_by: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TenantDeleted {
    pub tenant_id: Uuid,
    pub deleted_by: Option<String>,
    pub soft_delete: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuotaExceeded {
    pub tenant_id: Uuid,
    pub quota_type: String,
    pub current_usage: i64,
    pub plan_limit: i64,
    pub requested_increase: i64,
    pub plan: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserCreated {
    pub user_id: Uuid,
    pub email: String,
    pub role: String,
    /// `api` (an admin created the user), `registration` or `invitation`.
    pub via: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserInvited {
    pub invitation_id: Uuid,
    pub email: String,
    pub role: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserUpdated {
    pub user_id: Uuid,
    pub role: String,
    pub is_active: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserDeleted {
    pub user_id: Uuid,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiKeyChanged {
    pub key_id: Uuid,
    pub name: String,
    pub scopes: Vec<String>,
    pub environment: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreditsChanged {
    pub entry_id: Uuid,
    /// Positive: the credits added or spent.
    pub amount: i64,
    /// The balance after the change.
    pub balance: i64,
    pub reason: String,
    #[serde(default)]
    pub reference: Option<String>,
    pub actor: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TryonItemRequested {
    pub session_id: Uuid,
    pub item_index: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TryonSessionFinished {
    pub session_id: Uuid,
    pub customer_id: Uuid,
    pub status: String,
    pub items_total: i64,
    pub completed: i64,
    pub failed: i64,
    pub cancelled: i64,
    pub credits_charged: i64,
    pub credits_refunded: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookTest {
    pub endpoint_id: Uuid,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookReplayRequested {
    pub endpoint_id: Uuid,
    pub delivery_id: Uuid,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookEndpointDisabled {
    pub endpoint_id: Uuid,
    pub url: String,
    pub reason: String,
}

/// An audit entry as stored (API `GET /v1/audit/logs` shows the same fields).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntryCreated {
    pub id: Uuid,
    pub action: String,
    pub resource_type: String,
    pub resource_id: String,
    pub actor: Value,
    pub old_values: Value,
    pub new_values: Value,
    pub timestamp: String,
    #[serde(default)]
    pub request_id: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples() -> Vec<Event> {
        let id = Uuid::nil();
        vec![
            Event::TenantCreated(TenantCreated {
                tenant_id: id,
                name: "n".into(),
                slug: "s".into(),
                admin_email: None,
                plan: "free".into(),
                parent_id: None,
                created_by: None,
            }),
            Event::TenantActivated(TenantActivated { tenant_id: id, slug: "s".into(), admin_invitation_sent: true }),
            Event::TenantUpdated(TenantUpdated {
                tenant_id: id,
                changed_fields: vec!["name".into()],
                updated_by: None,
            }),
            Event::TenantDeleted(TenantDeleted { tenant_id: id, deleted_by: None, soft_delete: true }),
            Event::QuotaExceeded(QuotaExceeded {
                tenant_id: id,
                quota_type: "users".into(),
                current_usage: 1,
                plan_limit: 1,
                requested_increase: 1,
                plan: "free".into(),
            }),
            Event::UserCreated(UserCreated {
                user_id: id,
                email: "a@b.co".into(),
                role: "user".into(),
                via: "api".into(),
            }),
            Event::UserInvited(UserInvited { invitation_id: id, email: "a@b.co".into(), role: "user".into() }),
            Event::UserUpdated(UserUpdated { user_id: id, role: "user".into(), is_active: true }),
            Event::UserDeleted(UserDeleted { user_id: id }),
            Event::ApiKeyCreated(ApiKeyChanged {
                key_id: id,
                name: "k".into(),
                scopes: vec![],
                environment: "live".into(),
            }),
            Event::ApiKeyRevoked(ApiKeyChanged {
                key_id: id,
                name: "k".into(),
                scopes: vec![],
                environment: "live".into(),
            }),
            Event::ApiKeyRotated(ApiKeyChanged {
                key_id: id,
                name: "k".into(),
                scopes: vec![],
                environment: "live".into(),
            }),
            Event::CreditsAdded(CreditsChanged {
                entry_id: id,
                amount: 1,
                balance: 1,
                reason: "r".into(),
                reference: None,
                actor: Value::Null,
            }),
            Event::CreditsSpent(CreditsChanged {
                entry_id: id,
                amount: 1,
                balance: 0,
                reason: "r".into(),
                reference: Some("x".into()),
                actor: Value::Null,
            }),
            Event::TryonItemRequested(TryonItemRequested { session_id: id, item_index: 3 }),
            Event::TryonSessionCompleted(finished("completed")),
            Event::TryonSessionFailed(finished("failed")),
            Event::TryonSessionCancelled(finished("cancelled")),
            Event::WebhookTest(WebhookTest { endpoint_id: id, message: "m".into() }),
            Event::WebhookReplayRequested(WebhookReplayRequested { endpoint_id: id, delivery_id: id }),
            Event::WebhookEndpointDisabled(WebhookEndpointDisabled {
                endpoint_id: id,
                url: "u".into(),
                reason: "r".into(),
            }),
            Event::AuditEntryCreated(AuditEntryCreated {
                id,
                action: "create".into(),
                resource_type: "tenant".into(),
                resource_id: "x".into(),
                actor: Value::Null,
                old_values: Value::Null,
                new_values: Value::Null,
                timestamp: "t".into(),
                request_id: None,
            }),
        ]
    }

    fn finished(status: &str) -> TryonSessionFinished {
        TryonSessionFinished {
            session_id: Uuid::nil(),
            customer_id: Uuid::nil(),
            status: status.into(),
            items_total: 1,
            completed: 1,
            failed: 0,
            cancelled: 0,
            credits_charged: 1,
            credits_refunded: 0,
        }
    }

    #[test]
    fn every_event_round_trips_through_its_envelope_under_its_catalogued_name() {
        let events = samples();
        assert_eq!(events.len(), EVENT_NAMES.len(), "a sample per catalogued event");
        for (event, name) in events.into_iter().zip(EVENT_NAMES) {
            assert_eq!(event.name(), *name);
            let envelope = event.clone().into_domain_event(Uuid::nil());
            assert_eq!(envelope.event_type, *name);
            assert_eq!(Event::parse(&envelope).expect("parses"), event);
        }
    }

    #[test]
    fn an_unknown_name_does_not_parse() {
        let envelope = Event::UserDeleted(UserDeleted { user_id: Uuid::nil() }).into_domain_event(Uuid::nil());
        let unknown = DomainEvent { event_type: "user.exploded".into(), ..envelope };
        assert!(Event::parse(&unknown).is_err());
    }
}
