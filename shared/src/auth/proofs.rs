//! The only ways to a [`TenantScope`] besides a verified [`super::Principal`]'s
//! authorization: each trusted path that acts for a tenant without a person
//! in front of it is a named proof with its own constructor, saying why the
//! tenant id it carries can be trusted. Nothing here takes a tenant id from
//! a body, a path or a header the caller controls.
//!
//! | proof | why the tenant id is trustworthy |
//! |---|---|
//! | [`PlatformAdmin`] | a platform administrator's session may act in any tenant |
//! | [`OwnEvent`] | the event came from our own bus, where only the outbox relay publishes |
//! | [`OwnQueue`] | a job message on a queue only our own workers send to |
//! | [`TenantSchedule`] | a tenant schedule's firing: our API wrote the tenant into the schedule's input, and only the scheduler role sends to the queue |
//! | [`NewTenant`] | the tenant is being created by this very transaction (its id and slug claims fail on any collision) |
//! | [`EmailClaim`] | the tenant our own email index names for an address |
//! | [`CredentialLookup`] | a presented credential's tenant: reads that credential's record only, and becomes a scope once its secret's hash matched |

use uuid::Uuid;

use super::TenantScope;
use crate::events::EventBridgeEnvelope;

/// Proof that the caller is a platform administrator; store operations that
/// cross tenants take it as an argument.
#[derive(Debug, Clone, Copy)]
pub struct PlatformAdmin {
    _private: (),
}

impl PlatformAdmin {
    /// Only [`super::Principal::require_platform_admin`] makes one.
    pub(super) fn granted() -> Self {
        Self { _private: () }
    }

    pub fn scope_of(&self, tenant_id: Uuid) -> TenantScope {
        TenantScope::new(tenant_id)
    }
}

/// An event delivered from our own bus (EventBridge rule -> SQS -> worker).
/// Only the outbox relay publishes there, and it publishes only what a
/// committed transaction wrote, so the event's tenant is the platform's word.
pub struct OwnEvent;

impl OwnEvent {
    /// The scope of the event's tenant; refuses events from another source.
    pub fn scope(envelope: &EventBridgeEnvelope) -> anyhow::Result<TenantScope> {
        if envelope.source != envelope.detail.source() {
            anyhow::bail!("an event from source {} is not ours", envelope.source);
        }
        Ok(TenantScope::new(envelope.detail.tenant_id))
    }
}

/// A job message on a queue that only our own workers send to (the webhook
/// deliveries queue: its policy admits no one else).
pub struct OwnQueue;

impl OwnQueue {
    pub fn scope(job_tenant_id: Uuid) -> TenantScope {
        TenantScope::new(job_tenant_id)
    }
}

/// A request this process served: its tenant is the one the `Principal`
/// extractor verified the credentials for (`metrics::CallerSlot`), and the
/// metrics flusher writes that tenant's rollup under it.
pub struct MeasuredRequest;

impl MeasuredRequest {
    pub fn scope(verified_tenant_id: Uuid) -> TenantScope {
        TenantScope::new(verified_tenant_id)
    }
}

/// A change read from the table's own stream (the billing meter): only the
/// platform's code writes the table, and the tenant is the one whose
/// partition key (`T#<tenant>#`) the changed item carries.
pub struct OwnStream;

impl OwnStream {
    pub fn scope(partition_tenant_id: Uuid) -> TenantScope {
        TenantScope::new(partition_tenant_id)
    }
}

/// A scheduled platform job (EventBridge Scheduler -> a queue whose policy
/// admits only the schedule's role): it acts on each tenant the tenants
/// index lists, never on one a message names.
pub struct ScheduledJob;

impl ScheduledJob {
    pub fn scope(listed_tenant_id: Uuid) -> TenantScope {
        TenantScope::new(listed_tenant_id)
    }
}

/// A tenant schedule's firing (EventBridge Scheduler -> a worker's queue):
/// the tenant is the one our own API wrote into the schedule's input when
/// an admin of that tenant scheduled its connection or workflow. Only the
/// platform's functions may make schedules in the tenants' group and only
/// the scheduler role sends to the queues. The worker then reads the item
/// by that tenant's key: a firing whose item is not there starts nothing.
pub struct TenantSchedule;

impl TenantSchedule {
    pub fn scope(firing: &crate::domain::schedule::ScheduledFiring) -> TenantScope {
        TenantScope::new(firing.tenant_id)
    }
}

/// A tenant being created: the scope of the id this transaction claims. The
/// tenant item is written with `attribute_not_exists`, so it can never be
/// an existing tenant's.
pub struct NewTenant;

impl NewTenant {
    pub fn scope(new_tenant_id: Uuid) -> TenantScope {
        TenantScope::new(new_tenant_id)
    }
}

/// The tenant our own email index (`EMAIL#<address>`, written with the user)
/// names for an address: where that user's record lives. Made by the store
/// when it reads the claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmailClaim {
    pub tenant_id: Uuid,
    pub user_id: Uuid,
}

impl EmailClaim {
    pub(crate) fn read(tenant_id: Uuid, user_id: Uuid) -> Self {
        Self { tenant_id, user_id }
    }

    pub fn scope(&self) -> TenantScope {
        TenantScope::new(self.tenant_id)
    }
}

/// The tenant a presented credential (an API key, a refresh token, an
/// invitation token) says it belongs to, before it is verified. It reads
/// that credential's own record (store lookups take it) and becomes a
/// [`TenantScope`] only when the presented secret's hash matches the stored
/// one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CredentialLookup {
    tenant_id: Uuid,
}

impl CredentialLookup {
    pub fn named_by_credential(tenant_id: Uuid) -> Self {
        Self { tenant_id }
    }

    pub fn tenant_id(&self) -> Uuid {
        self.tenant_id
    }

    /// For the store's lookup of the credential's record, and nothing else.
    pub(crate) fn lookup_scope(&self) -> TenantScope {
        TenantScope::new(self.tenant_id)
    }

    /// The tenant's scope, once the presented secret's hash matched the
    /// stored one (compared in constant time).
    pub fn verified(self, presented_hash: &str, stored_hash: &str) -> Option<TenantScope> {
        super::api_key::hashes_match(presented_hash, stored_hash).then(|| TenantScope::new(self.tenant_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_credential_lookup_becomes_a_scope_only_when_the_hashes_match() {
        let tenant = Uuid::now_v7();
        let lookup = CredentialLookup::named_by_credential(tenant);
        assert!(lookup.verified("abc", "abd").is_none());
        assert_eq!(lookup.verified("abc", "abc").map(|s| s.tenant_id()), Some(tenant));
    }
}
