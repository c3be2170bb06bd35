//! Integrations: the providers a tenant receives webhooks from, and the
//! inbound events (docs/integrations.md).
//!
//! | item | PK | SK | other keys | notes |
//! |---|---|---|---|---|
//! | provider | `T#<tenant>#` | `INTPROVIDER#<provider>` | with an `api_base_url` and active: `GSI1PK=INTPROBES`, `GSI1SK=<tenant>#<provider>` | seed 003 fields, `verification`, `allowed_ips`, `rate_limit_per_minute`, `probe` (the last health probe); sealed (AES-256-GCM, `crate::sealing`): `secret_*` (the signing secret), `previous_secret_*` (during a rotation's grace), `token_*` (the inbound URL's token), and `token_hash` (SHA-256 of the token) |
//! | provider name claim | `T#<tenant>#` | `INTPROVIDERNAME#<name>` | | `provider_id`: names are unique in a tenant |
//! | inbound event | `T#<tenant>#` | `INBOUND#<event>` | `GSI2PK=T#<tenant>#INBOUND#<provider>`, `GSI2SK=<event>` | sender's `event_id`, `event_type`, `status`, `rejection`, `payload_key` (S3 `tenants/<tenant>/integrations/<provider>/<event>.json`), `duplicate_count`, processing figures, `expires_at` (TTL: 30 days, a rejection 7) |
//! | dedupe claim | `T#<tenant>#` | `INBOUNDID#<provider>#<sha256 of the sender's event_id>` | | `inbound_id`: written with the event under `attribute_not_exists`, so one `event_id` makes one event; same TTL as the event |
//! | provider request count | `T#<tenant>#` | `RATE#PROVIDER#<provider>#<window start>` | | `request_count` of the minute (`store::api_keys`' window counter) |

use std::collections::HashMap;

use aws_sdk_dynamodb::{
    primitives::Blob,
    types::{AttributeValue, Delete, Update},
};
use serde_json::json;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{
    Item, PageRequest, Store, condition_failed, from_item, item_key as key, n,
    quota::{TENANT_MISSING, tenant_counters},
    s, to_attribute, to_item,
    tx::{Cond, Tx, TxError},
};
use crate::{
    auth::{TenantScope, proofs::CredentialLookup},
    domain::{
        audit::{AuditContext, Change},
        integration::{
            EVENT_RETENTION_DAYS, EventStatus, InboundEvent, MAX_PROVIDERS_PER_TENANT, Probe, Provider,
            REJECTION_RETENTION_DAYS,
        },
        now_rfc3339,
    },
    error::{AppError, AppResult},
    events::{Event, catalogue::IntegrationEventReceived},
};

pub const PROVIDER_RESOURCE: &str = "integration_provider";
pub const EVENT_RESOURCE: &str = "integration_event";

const PROVIDER_COUNTER: &str = "integration_provider_count";
const PROVIDER_LIMIT: Cond = Cond("provider_limit");
const NAME_TAKEN: Cond = Cond("provider_name_taken");
const PROVIDER_CHANGED: Cond = Cond("provider_changed");
const PROVIDER_MISSING: Cond = Cond("provider_missing");
const EVENT_ID_SEEN: Cond = Cond("event_id_seen");
const EVENT_NOT_REPLAYABLE: Cond = Cond("event_not_replayable");

/// The largest payload carried inside the bus event (EventBridge takes 256
/// KB per event, and the outbox item is a DynamoDB item); larger ones are
/// read from S3 by `payload_key`.
pub const MAX_PAYLOAD_ON_BUS: usize = 64 * 1024;

/// The probe index's partition: every provider with something to probe.
const PROBE_INDEX: &str = "INTPROBES";
/// Probes are kept this long (`PROBELOG#`): a day of availability always
/// has its whole window.
const PROBE_LOG_DAYS: i64 = 2;

/// A value sealed with AES-256-GCM (`crate::sealing`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Sealed {
    pub nonce: Vec<u8>,
    pub ciphertext: Vec<u8>,
}

impl Sealed {
    pub fn is_empty(&self) -> bool {
        self.ciphertext.is_empty()
    }
}

/// A provider's sealed secrets, as stored beside it.
#[derive(Debug, Clone, Default)]
pub struct ProviderSecrets {
    pub secret: Sealed,
    /// The secret before the last rotation, while its grace lasts.
    pub previous_secret: Sealed,
    pub token: Sealed,
    /// SHA-256 (hex) of the inbound token: what an inbound request is matched against.
    pub token_hash: String,
}

/// What one of a provider's values is sealed for; `purpose` keeps a token
/// from opening as a secret.
pub fn provider_context(purpose: &str, scope: &TenantScope, provider_id: Uuid) -> crate::sealing::SealContext {
    crate::sealing::SealContext::new(
        format!("integration-provider-{purpose}-v1"),
        &[&scope.pk(), &provider_id.to_string()],
    )
}

pub fn sha256_hex(value: &[u8]) -> String {
    Sha256::digest(value).iter().map(|b| format!("{b:02x}")).collect()
}

fn provider_key_item(scope: &TenantScope, id: Uuid) -> Item {
    key(scope, format!("INTPROVIDER#{id}"))
}

fn name_claim_key(scope: &TenantScope, name: &str) -> Item {
    key(scope, format!("INTPROVIDERNAME#{name}"))
}

fn event_key(scope: &TenantScope, id: Uuid) -> Item {
    key(scope, format!("INBOUND#{id}"))
}

fn dedupe_key(scope: &TenantScope, provider_id: Uuid, event_id: &str) -> Item {
    key(scope, format!("INBOUNDID#{provider_id}#{}", sha256_hex(event_id.as_bytes())))
}

fn provider_events_partition(scope: &TenantScope, provider_id: Uuid) -> String {
    format!("{}INBOUND#{provider_id}", scope.pk())
}

fn bytes(item: &Item, name: &str) -> Vec<u8> {
    item.get(name).and_then(|v| v.as_b().ok()).map(|b| b.as_ref().to_vec()).unwrap_or_default()
}

fn sealed_of(item: &Item, prefix: &str) -> Sealed {
    Sealed { nonce: bytes(item, &format!("{prefix}_nonce")), ciphertext: bytes(item, &format!("{prefix}_sealed")) }
}

fn secrets_of(item: &Item) -> ProviderSecrets {
    ProviderSecrets {
        secret: sealed_of(item, "secret"),
        previous_secret: sealed_of(item, "previous_secret"),
        token: sealed_of(item, "token"),
        token_hash: item.get("token_hash").and_then(|v| v.as_s().ok()).cloned().unwrap_or_default(),
    }
}

fn put_sealed(item: &mut Item, prefix: &str, sealed: &Sealed) {
    item.insert(format!("{prefix}_nonce"), AttributeValue::B(Blob::new(sealed.nonce.clone())));
    item.insert(format!("{prefix}_sealed"), AttributeValue::B(Blob::new(sealed.ciphertext.clone())));
}

/// The provider's item: its fields, its sealed values, and its probe index
/// keys when it is active with an `api_base_url` (only those are probed).
fn provider_item(scope: &TenantScope, provider: &Provider, secrets: &ProviderSecrets) -> AppResult<Item> {
    let mut item = to_item(provider)?;
    item.extend(provider_key_item(scope, provider.id));
    put_sealed(&mut item, "secret", &secrets.secret);
    if !secrets.previous_secret.is_empty() {
        put_sealed(&mut item, "previous_secret", &secrets.previous_secret);
    }
    put_sealed(&mut item, "token", &secrets.token);
    item.insert("token_hash".into(), s(&secrets.token_hash));
    if provider.is_active && provider.api_base_url.is_some() {
        item.insert("GSI1PK".into(), s(PROBE_INDEX));
        item.insert("GSI1SK".into(), s(format!("{}#{}", scope.tenant_id(), provider.id)));
    }
    Ok(item)
}

/// What a receipt did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Receipt {
    /// A new event, stored with its bus event.
    New,
    /// The provider sent this `event_id` before: the first event's id.
    Duplicate(Uuid),
}

/// `GET /v1/integrations/events` filters.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub provider_id: Option<Uuid>,
    pub event_type: Option<String>,
    pub status: Option<EventStatus>,
    pub from: Option<chrono::DateTime<chrono::Utc>>,
    pub to: Option<chrono::DateTime<chrono::Utc>>,
}

impl Store {
    /// A new provider with its name claim, counted against the tenant's
    /// [`MAX_PROVIDERS_PER_TENANT`], audited.
    pub async fn create_provider(
        &self,
        scope: &TenantScope,
        provider: &Provider,
        secrets: &ProviderSecrets,
        audit: &AuditContext,
    ) -> AppResult<()> {
        let mut tx = Tx::new();
        tx.put_new(provider_item(scope, provider, secrets)?, Cond::UNIQUE_ID);
        let mut claim = name_claim_key(scope, &provider.name);
        claim.insert("provider_id".into(), s(provider.id.to_string()));
        tx.put_new(claim, NAME_TAKEN);
        let (count, expression) = tenant_counters(scope, &[(PROVIDER_COUNTER.to_owned(), 1)]);
        tx.update(
            count
                .update_expression(expression)
                .condition_expression("attribute_exists(PK) AND (attribute_not_exists(#c0) OR #c0 < :max)")
                .expression_attribute_values(":max", n(MAX_PROVIDERS_PER_TENANT)),
            Some(PROVIDER_LIMIT),
        );
        tx.audit(
            scope,
            audit,
            Change::created(PROVIDER_RESOURCE, provider.id, provider.audit_view()),
            self.audit_retention(scope).await?,
        );
        match tx.commit(self).await {
            Ok(()) => Ok(()),
            Err(TxError::Condition(NAME_TAKEN)) => Err(name_taken(&provider.name)),
            Err(TxError::Condition(PROVIDER_LIMIT)) => Err(AppError::conflict(format!(
                "a tenant may have at most {MAX_PROVIDERS_PER_TENANT} integration providers; delete one first"
            ))
            .with_details(json!({"reason": "too_many_providers", "max_providers": MAX_PROVIDERS_PER_TENANT}))),
            Err(e) => Err(e.into_app_error("integration provider")),
        }
    }

    pub async fn get_provider(&self, scope: &TenantScope, id: Uuid) -> AppResult<Option<Provider>> {
        self.get_as(provider_key_item(scope, id)).await
    }

    /// The provider with its sealed values.
    pub async fn provider_with_secrets(
        &self,
        scope: &TenantScope,
        id: Uuid,
    ) -> AppResult<Option<(Provider, ProviderSecrets)>> {
        let Some(item) = self.get_item(provider_key_item(scope, id)).await? else { return Ok(None) };
        let secrets = secrets_of(&item);
        Ok(Some((from_item(item)?, secrets)))
    }

    /// The provider an inbound token names, and its tenant's scope, only
    /// when the token's hash matches the stored one (a named proof: the
    /// token is the caller's only credential).
    pub async fn inbound_provider(
        &self,
        lookup: &CredentialLookup,
        provider_id: Uuid,
        token_hash: &str,
    ) -> AppResult<Option<(TenantScope, Provider, ProviderSecrets)>> {
        let Some((provider, secrets)) = self.provider_with_secrets(&lookup.lookup_scope(), provider_id).await? else {
            return Ok(None);
        };
        Ok(lookup.verified(token_hash, &secrets.token_hash).map(|scope| (scope, provider, secrets)))
    }

    fn providers_query(&self, scope: &TenantScope) -> aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder {
        self.prefix_query(scope, "INTPROVIDER#").consistent_read(true)
    }

    /// The tenant's providers in creation order, one page, each with its
    /// sealed values (the list shows every inbound URL).
    pub async fn list_providers_page(
        &self,
        scope: &TenantScope,
        is_active: Option<bool>,
        page: &PageRequest,
    ) -> AppResult<(Vec<(Provider, ProviderSecrets)>, Option<String>)> {
        let query = super::filter_equal(
            self.providers_query(scope),
            &[("is_active", is_active.map(AttributeValue::Bool))],
            &[],
        );
        let context = format!("integration-providers|{}|{is_active:?}", scope.pk());
        let (items, cursor) = self.query_page(query, page, &context, &["PK", "SK"]).await?;
        // Each item decoded as a list does it (one that does not is skipped and logged).
        let pairs = items
            .into_iter()
            .filter_map(|item| {
                let secrets = secrets_of(&item);
                super::decode_listed::<Provider>([item]).pop().map(|provider| (provider, secrets))
            })
            .collect();
        Ok((pairs, cursor))
    }

    /// Every provider of the tenant (at most [`MAX_PROVIDERS_PER_TENANT`]).
    pub async fn list_providers(&self, scope: &TenantScope) -> AppResult<Vec<Provider>> {
        Ok(super::decode_listed(self.query_all(self.providers_query(scope)).await?))
    }

    /// Replaces the provider (the caller merged the change) if nobody changed
    /// it since `old` was read; a new name moves the name claim. False when
    /// it changed meanwhile.
    pub async fn update_provider(
        &self,
        scope: &TenantScope,
        old: &Provider,
        new: &Provider,
        secrets: &ProviderSecrets,
        audit: &AuditContext,
    ) -> AppResult<bool> {
        let mut tx = Tx::new();
        let values = HashMap::from([(":seen".to_owned(), s(&old.updated_at))]);
        tx.put_if(provider_item(scope, new, secrets)?, "updated_at = :seen", values, PROVIDER_CHANGED);
        if new.name != old.name {
            let mut claim = name_claim_key(scope, &new.name);
            claim.insert("provider_id".into(), s(new.id.to_string()));
            tx.put_new(claim, NAME_TAKEN);
            tx.delete(Delete::builder().set_key(Some(name_claim_key(scope, &old.name))), None);
        }
        tx.audit(
            scope,
            audit,
            Change::updated(PROVIDER_RESOURCE, old.id, old.audit_view(), new.audit_view()),
            self.audit_retention(scope).await?,
        );
        match tx.commit(self).await {
            Ok(()) => Ok(true),
            Err(TxError::Condition(PROVIDER_CHANGED)) => Ok(false),
            Err(TxError::Condition(NAME_TAKEN)) => Err(name_taken(&new.name)),
            Err(e) => Err(e.into_app_error("integration provider")),
        }
    }

    /// A new signing secret; the current one becomes the previous, accepted
    /// until `previous_expires_at` (none: it stops at once).
    pub async fn rotate_provider_secret(
        &self,
        scope: &TenantScope,
        provider: &Provider,
        secret: &Sealed,
        previous: Option<(&Sealed, &str)>,
        audit: &AuditContext,
    ) -> AppResult<bool> {
        let mut update = Update::builder()
            .set_key(Some(provider_key_item(scope, provider.id)))
            .condition_expression("updated_at = :seen")
            .expression_attribute_values(":seen", s(&provider.updated_at))
            .expression_attribute_values(":nonce", AttributeValue::B(Blob::new(secret.nonce.clone())))
            .expression_attribute_values(":sealed", AttributeValue::B(Blob::new(secret.ciphertext.clone())))
            .expression_attribute_values(":now", s(now_rfc3339()));
        let expression = match previous {
            Some((old, until)) => {
                update = update
                    .expression_attribute_values(":old_nonce", AttributeValue::B(Blob::new(old.nonce.clone())))
                    .expression_attribute_values(":old_sealed", AttributeValue::B(Blob::new(old.ciphertext.clone())))
                    .expression_attribute_values(":until", s(until));
                "SET secret_nonce = :nonce, secret_sealed = :sealed, previous_secret_nonce = :old_nonce, \
                 previous_secret_sealed = :old_sealed, previous_secret_expires_at = :until, updated_at = :now"
            }
            None => {
                "SET secret_nonce = :nonce, secret_sealed = :sealed, updated_at = :now \
                 REMOVE previous_secret_nonce, previous_secret_sealed, previous_secret_expires_at"
            }
        };
        let mut tx = Tx::new();
        tx.update(update.update_expression(expression), Some(PROVIDER_CHANGED));
        let grace = previous.map(|(_, until)| until.to_owned());
        let change = Change::updated(
            PROVIDER_RESOURCE,
            provider.id,
            json!({"secret": "previous"}),
            json!({"secret": "rotated", "previous_secret_expires_at": grace}),
        );
        tx.audit(scope, audit, change, self.audit_retention(scope).await?);
        match tx.commit(self).await {
            Ok(()) => Ok(true),
            Err(TxError::Condition(PROVIDER_CHANGED)) => Ok(false),
            Err(e) => Err(e.into_app_error("integration provider")),
        }
    }

    /// Deletes the provider and its name claim. Its events stay readable
    /// until their retention ends (they name the provider).
    pub async fn delete_provider(
        &self,
        scope: &TenantScope,
        provider: &Provider,
        audit: &AuditContext,
    ) -> AppResult<()> {
        let mut tx = Tx::new();
        tx.delete(
            Delete::builder()
                .set_key(Some(provider_key_item(scope, provider.id)))
                .condition_expression("attribute_exists(PK)"),
            Some(PROVIDER_MISSING),
        );
        tx.delete(Delete::builder().set_key(Some(name_claim_key(scope, &provider.name))), None);
        let (count, expression) = tenant_counters(scope, &[(PROVIDER_COUNTER.to_owned(), -1)]);
        tx.update(
            count.update_expression(expression).condition_expression("attribute_exists(PK)"),
            Some(TENANT_MISSING),
        );
        tx.audit(
            scope,
            audit,
            Change::deleted(PROVIDER_RESOURCE, provider.id, provider.audit_view()),
            self.audit_retention(scope).await?,
        );
        match tx.commit(self).await {
            Ok(()) => Ok(()),
            Err(TxError::Condition(PROVIDER_MISSING)) => Err(AppError::not_found(PROVIDER_RESOURCE)),
            Err(e) => Err(e.into_app_error("integration provider")),
        }
    }

    /// Records a health probe's result on the provider (if it still exists).
    pub async fn record_probe(&self, scope: &TenantScope, provider_id: Uuid, probe: &Probe) -> AppResult<()> {
        const PROVIDER_GONE: Cond = Cond("provider_gone");
        let probe_value = to_attribute(&serde_json::to_value(probe).map_err(AppError::internal)?)?;
        let mut tx = Tx::new();
        tx.update(
            Update::builder()
                .set_key(Some(provider_key_item(scope, provider_id)))
                .update_expression("SET probe = :probe")
                .condition_expression("attribute_exists(PK)")
                .expression_attribute_values(":probe", probe_value),
            Some(PROVIDER_GONE),
        );
        // The history the dashboard's availability is computed from.
        let mut entry = to_item(probe)?;
        entry.extend(key(scope, format!("PROBELOG#{provider_id}#{}", probe.checked_at)));
        entry.insert("expires_at".into(), n(chrono::Utc::now().timestamp() + PROBE_LOG_DAYS * 86_400));
        tx.put(entry);
        match tx.commit(self).await {
            Ok(()) | Err(TxError::Condition(PROVIDER_GONE)) => Ok(()),
            Err(e) => Err(e.into_app_error(PROVIDER_RESOURCE)),
        }
    }

    /// A provider's probes since `since`, oldest first.
    pub async fn probe_log(
        &self,
        scope: &TenantScope,
        provider_id: Uuid,
        since: chrono::DateTime<chrono::Utc>,
    ) -> AppResult<Vec<Probe>> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("PK = :pk AND SK BETWEEN :from AND :to")
            .expression_attribute_values(":pk", s(scope.pk()))
            .expression_attribute_values(
                ":from",
                s(format!("PROBELOG#{provider_id}#{}", crate::domain::rfc3339(since))),
            )
            .expression_attribute_values(":to", s(format!("PROBELOG#{provider_id}#~")));
        Ok(super::decode_listed(self.query_all(query).await?))
    }

    /// Every active provider with an `api_base_url`, platform-wide: what the
    /// scheduled probe visits (tenant id, provider id).
    pub async fn providers_to_probe(&self) -> AppResult<Vec<(Uuid, Uuid)>> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name("GSI1")
            .key_condition_expression("GSI1PK = :pk")
            .expression_attribute_values(":pk", s(PROBE_INDEX))
            .projection_expression("GSI1SK");
        let items = self.query_all(query).await?;
        Ok(items
            .iter()
            .filter_map(|item| {
                let text = item.get("GSI1SK")?.as_s().ok()?;
                let (tenant, provider) = text.split_once('#')?;
                Some((Uuid::parse_str(tenant).ok()?, Uuid::parse_str(provider).ok()?))
            })
            .collect())
    }

    /// Counts one inbound request against the provider's per-minute limit.
    pub async fn record_provider_request(
        &self,
        scope: &TenantScope,
        provider_id: Uuid,
        limit: i64,
        now: chrono::DateTime<chrono::Utc>,
    ) -> AppResult<crate::domain::rate_limit::RateStatus> {
        self.count_in_window(
            scope,
            &format!("RATE#PROVIDER#{provider_id}#"),
            crate::domain::rate_limit::Subject::Provider,
            limit,
            now,
        )
        .await
    }

    /// Stores a verified event, its dedupe claim and its
    /// `integration.event.received` (the bus event, `source` naming the
    /// provider) in one transaction; an `event_id` seen before answers the
    /// first event and counts the repeat on it.
    pub async fn receive_event(
        &self,
        scope: &TenantScope,
        event: &InboundEvent,
        payload: &serde_json::Value,
    ) -> AppResult<Receipt> {
        let expires_at = self.capped_expiry(scope, EVENT_RETENTION_DAYS).await?;
        let mut item = to_item(event)?;
        item.extend(event_key(scope, event.id));
        item.insert("GSI2PK".into(), s(provider_events_partition(scope, event.provider_id)));
        item.insert("GSI2SK".into(), s(event.id.to_string()));
        item.insert("expires_at".into(), n(expires_at));
        let mut claim = dedupe_key(scope, event.provider_id, &event.event_id);
        claim.insert("inbound_id".into(), s(event.id.to_string()));
        claim.insert("expires_at".into(), n(expires_at));
        // Concurrent deliveries of one event_id race on the claim: one
        // transaction wins; a loser sees the claim (or a conflict) and retries.
        for _ in 0..5 {
            let mut tx = Tx::new();
            tx.put_new(claim.clone(), EVENT_ID_SEEN);
            tx.put_new(item.clone(), Cond::UNIQUE_ID);
            tx.emit(scope, Event::IntegrationEventReceived(received(event, payload)));
            match tx.commit(self).await {
                Ok(()) => return Ok(Receipt::New),
                Err(TxError::Condition(EVENT_ID_SEEN)) => {
                    if let Some(first) = self.count_duplicate(scope, event).await? {
                        return Ok(Receipt::Duplicate(first));
                    }
                }
                Err(TxError::Conflict) => {}
                Err(e) => return Err(e.into_app_error("integration event")),
            }
            tokio::time::sleep(std::time::Duration::from_millis(20 + rand::random::<u64>() % 80)).await;
        }
        Err(AppError::conflict("this event is being received by another request; the sender's retry will be answered"))
    }

    /// The first event of a repeated `event_id`, with the repeat counted on it.
    async fn count_duplicate(&self, scope: &TenantScope, event: &InboundEvent) -> AppResult<Option<Uuid>> {
        let Some(claim) = self.get_item(dedupe_key(scope, event.provider_id, &event.event_id)).await? else {
            return Ok(None);
        };
        let Some(first) = claim.get("inbound_id").and_then(|v| v.as_s().ok()).and_then(|t| Uuid::parse_str(t).ok())
        else {
            return Ok(None);
        };
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(event_key(scope, first)))
            .update_expression("ADD duplicate_count :one SET last_duplicate_at = :now")
            .condition_expression("attribute_exists(PK)")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":now", s(now_rfc3339()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(Some(first)),
            // The first event expired before its claim: still a duplicate.
            Err(err) if condition_failed(&err) => Ok(Some(first)),
            Err(err) => Err(err.into()),
        }
    }

    /// Records a refused request as a `rejected` event (no payload, no bus event).
    pub async fn record_rejection(&self, scope: &TenantScope, event: &InboundEvent) -> AppResult<()> {
        let mut item = to_item(event)?;
        item.extend(event_key(scope, event.id));
        item.insert("GSI2PK".into(), s(provider_events_partition(scope, event.provider_id)));
        item.insert("GSI2SK".into(), s(event.id.to_string()));
        item.insert("expires_at".into(), n(self.capped_expiry(scope, REJECTION_RETENTION_DAYS).await?));
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(PK)")
            .send()
            .await?;
        Ok(())
    }

    pub async fn get_inbound_event(&self, scope: &TenantScope, id: Uuid) -> AppResult<Option<InboundEvent>> {
        self.get_as(event_key(scope, id)).await
    }

    /// Newest first; dates are inclusive key bounds (ids are UUIDv7).
    pub async fn list_inbound_events(
        &self,
        scope: &TenantScope,
        filter: &EventFilter,
        page: &PageRequest,
    ) -> AppResult<(Vec<InboundEvent>, Option<String>)> {
        // "0" sorts before every id (hex digits) and "~" after: DynamoDB
        // takes no empty string as a key value.
        let lower = filter.from.map(super::uuid7_prefix_at).unwrap_or_else(|| "0".to_owned());
        let upper = filter.to.map(|t| format!("{}~", super::uuid7_prefix_at(t))).unwrap_or_else(|| "~".to_owned());
        let (query, key_attrs, partition) = match filter.provider_id {
            Some(provider) => {
                let partition = provider_events_partition(scope, provider);
                let query = self
                    .client
                    .query()
                    .table_name(&self.table)
                    .index_name("GSI2")
                    .key_condition_expression("GSI2PK = :pk AND GSI2SK BETWEEN :lower AND :upper")
                    .expression_attribute_values(":pk", s(&partition))
                    .expression_attribute_values(":lower", s(&lower))
                    .expression_attribute_values(":upper", s(&upper));
                (query, &["PK", "SK", "GSI2PK", "GSI2SK"][..], partition)
            }
            None => {
                let query = self
                    .client
                    .query()
                    .table_name(&self.table)
                    .key_condition_expression("PK = :pk AND SK BETWEEN :lower AND :upper")
                    .expression_attribute_values(":pk", s(scope.pk()))
                    .expression_attribute_values(":lower", s(format!("INBOUND#{lower}")))
                    .expression_attribute_values(":upper", s(format!("INBOUND#{upper}")))
                    .consistent_read(true);
                (query, &["PK", "SK"][..], scope.pk())
            }
        };
        let query = super::filter_equal(
            query.scan_index_forward(false),
            &[("event_type", filter.event_type.clone().map(s)), ("status", filter.status.map(|st| s(st.as_str())))],
            &[],
        );
        let context = format!(
            "integration-events|{partition}|{lower}|{upper}|{}|{}",
            filter.event_type.as_deref().unwrap_or(""),
            filter.status.map(EventStatus::as_str).unwrap_or("")
        );
        let (items, cursor) = self.query_page(query, page, &context, key_attrs).await?;
        Ok((super::decode_listed(items), cursor))
    }

    /// The provider's events since `since`, newest first, at most `limit`:
    /// the passive half of its health.
    pub async fn recent_provider_events(
        &self,
        scope: &TenantScope,
        provider_id: Uuid,
        since: chrono::DateTime<chrono::Utc>,
        limit: i32,
    ) -> AppResult<Vec<InboundEvent>> {
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .index_name("GSI2")
            .key_condition_expression("GSI2PK = :pk AND GSI2SK >= :since")
            .expression_attribute_values(":pk", s(provider_events_partition(scope, provider_id)))
            .expression_attribute_values(":since", s(super::uuid7_prefix_at(since)))
            .scan_index_forward(false)
            .limit(limit)
            .send()
            .await?;
        Ok(super::decode_listed(output.items.unwrap_or_default()))
    }

    /// The consumer took the event: `processed`, with the time it took from
    /// receipt. Only a `received` event moves (false otherwise: a redelivery).
    pub async fn event_processed(&self, scope: &TenantScope, id: Uuid, processing_ms: i64) -> AppResult<bool> {
        self.finish_event(
            scope,
            id,
            "SET #status = :to, processed_at = :now, processing_ms = :ms, last_error = :none ADD attempts :one",
            &[
                (":to", s(EventStatus::Processed.as_str())),
                (":ms", n(processing_ms)),
                (":none", AttributeValue::Null(true)),
            ],
        )
        .await
    }

    /// A consumer attempt failed; `last` ends the event `failed`.
    pub async fn event_attempt_failed(
        &self,
        scope: &TenantScope,
        id: Uuid,
        error: &str,
        last: bool,
    ) -> AppResult<bool> {
        let to = if last { EventStatus::Failed } else { EventStatus::Received };
        self.finish_event(
            scope,
            id,
            "SET #status = :to, last_error = :error, failed_at = :now ADD attempts :one",
            &[(":to", s(to.as_str())), (":error", s(error.chars().take(500).collect::<String>()))],
        )
        .await
    }

    async fn finish_event(
        &self,
        scope: &TenantScope,
        id: Uuid,
        expression: &str,
        values: &[(&str, AttributeValue)],
    ) -> AppResult<bool> {
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(event_key(scope, id)))
            .update_expression(expression)
            .condition_expression("#status = :received")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":received", s(EventStatus::Received.as_str()))
            .expression_attribute_values(":now", s(now_rfc3339()))
            .expression_attribute_values(":one", n(1));
        for (name, value) in values {
            update = update.expression_attribute_values(*name, value.clone());
        }
        match update.send().await {
            Ok(_) => Ok(true),
            Err(err) if condition_failed(&err) => Ok(false),
            Err(err) => Err(err.into()),
        }
    }

    /// Puts a stored event on the bus again: back to `received`, one more
    /// replay, and a new `integration.event.received` in the same
    /// transaction. False for a `rejected` event (it has no payload) or one
    /// gone.
    pub async fn replay_inbound_event(
        &self,
        scope: &TenantScope,
        event: &InboundEvent,
        payload: &serde_json::Value,
    ) -> AppResult<bool> {
        let update = Update::builder()
            .set_key(Some(event_key(scope, event.id)))
            .update_expression("SET #status = :received REMOVE processed_at ADD replay_count :one")
            .condition_expression("attribute_exists(PK) AND #status <> :rejected")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":received", s(EventStatus::Received.as_str()))
            .expression_attribute_values(":rejected", s(EventStatus::Rejected.as_str()))
            .expression_attribute_values(":one", n(1));
        let mut tx = Tx::new();
        tx.update(update, Some(EVENT_NOT_REPLAYABLE));
        tx.emit(scope, Event::IntegrationEventReceived(received(event, payload)));
        match tx.commit(self).await {
            Ok(()) => Ok(true),
            Err(TxError::Condition(EVENT_NOT_REPLAYABLE)) => Ok(false),
            Err(e) => Err(e.into_app_error("integration event")),
        }
    }
}

/// The bus event; the payload rides along when small enough for an outbox
/// item and an EventBridge event, else only its S3 key does.
fn received(event: &InboundEvent, payload: &serde_json::Value) -> IntegrationEventReceived {
    let small = serde_json::to_vec(payload).map(|b| b.len() <= MAX_PAYLOAD_ON_BUS).unwrap_or(false);
    IntegrationEventReceived {
        inbound_id: event.id,
        provider_id: event.provider_id,
        provider: event.provider.clone(),
        event_id: event.event_id.clone(),
        event_type: event.event_type.clone(),
        payload_key: event.payload_key.clone().unwrap_or_default(),
        received_at: event.created_at.clone(),
        data: if small { payload.clone() } else { serde_json::Value::Null },
        payload_on_bus: small,
    }
}

fn name_taken(name: &str) -> AppError {
    AppError::conflict(format!("the tenant already has a provider named {name}"))
        .with_details(json!({"reason": "name_taken", "field": "name"}))
}
