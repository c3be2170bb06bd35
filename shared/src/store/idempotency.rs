//! Idempotency records (the layer is `crate::idempotency`).
//!
//! | item | PK | SK | notes |
//! |---|---|---|---|
//! | record | `T#<tenant>#` | `IDEM#<caller>#<sha256 of the key>` | `fingerprint`, `state` (`in_progress`/`completed`), `lock`, `lease_until`, then `status`, `content_type`, `body_nonce` + `body_sealed`; `expires_at` (TTL, 24 h) |
//!
//! `<caller>` is the user or API key, so two callers of one tenant never
//! share a key space. Stored bodies are sealed (crate::idempotency), so a
//! response that carried a one-time secret is not readable in the table.
//!
//! Two ways to write a record. The claim first ([`Store::claim_idempotency_key`],
//! then [`Store::complete_idempotency_key`]) works for any handler. A
//! [`RidingClaim`] instead rides in the change's own transaction
//! (`store::tx`): the record is written if and only if the change commits,
//! with the answer when the handler prepared it before committing, so an
//! idempotent write costs no call more than the write itself.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
};

use aws_sdk_dynamodb::{primitives::Blob, types::builders::PutBuilder};

use super::{Item, Store, condition_failed, n, s};
use crate::{
    auth::TenantScope,
    error::{AppError, AppResult},
};

pub const STATE_IN_PROGRESS: &str = "in_progress";
pub const STATE_COMPLETED: &str = "completed";
/// A riding claim whose change committed before its answer was stored: the
/// effect happened, so unlike `in_progress` no lease ever lets a retry run
/// it again.
pub const STATE_COMMITTED: &str = "committed";
/// Who may overwrite a record: nobody while it lives, but for a claim whose
/// holder died (its lease ran out) and a record past its 24 hours that TTL
/// has not deleted yet.
const CLAIMABLE: &str =
    "attribute_not_exists(PK) OR expires_at < :now OR (#state = :in_progress AND lease_until < :now)";

pub fn record_key(scope: &TenantScope, caller: &str, key_hash: &str) -> Item {
    HashMap::from([("PK".into(), s(scope.pk())), ("SK".into(), s(format!("IDEM#{caller}#{key_hash}")))])
}

/// A record as read back.
#[derive(Debug, Clone)]
pub struct IdempotencyRecord {
    pub fingerprint: String,
    pub state: String,
    pub lease_until: i64,
    pub status: Option<u16>,
    pub content_type: Option<String>,
    pub body_nonce: Option<Vec<u8>>,
    pub body_sealed: Option<Vec<u8>>,
}

impl IdempotencyRecord {
    fn from_item(item: &Item) -> Self {
        let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
        let number = |name: &str| item.get(name).and_then(|v| v.as_n().ok()).and_then(|v| v.parse::<i64>().ok());
        let bytes = |name: &str| item.get(name).and_then(|v| v.as_b().ok()).map(|b| b.as_ref().to_vec());
        Self {
            fingerprint: text("fingerprint").unwrap_or_default(),
            state: text("state").unwrap_or_default(),
            lease_until: number("lease_until").unwrap_or(0),
            status: number("status").and_then(|v| u16::try_from(v).ok()),
            content_type: text("content_type"),
            body_nonce: bytes("body_nonce"),
            body_sealed: bytes("body_sealed"),
        }
    }
}

/// What a stored response is made of.
pub struct SealedResponse<'a> {
    pub status: u16,
    pub content_type: Option<&'a str>,
    pub nonce: &'a [u8],
    pub sealed: &'a [u8],
}

impl SealedResponse<'_> {
    fn write_into(&self, item: &mut Item) {
        item.insert("state".into(), s(STATE_COMPLETED));
        item.insert("status".into(), n(i64::from(self.status)));
        item.insert("body_nonce".into(), aws_sdk_dynamodb::types::AttributeValue::B(Blob::new(self.nonce)));
        item.insert("body_sealed".into(), aws_sdk_dynamodb::types::AttributeValue::B(Blob::new(self.sealed)));
        if let Some(content_type) = self.content_type {
            item.insert("content_type".into(), s(content_type));
        }
    }
}

/// An answer a handler prepared before committing its change, sealed.
pub struct PreparedAnswer {
    pub status: u16,
    pub content_type: &'static str,
    /// The plain body, to check that the response sent is the one stored.
    pub body: Vec<u8>,
    pub nonce: [u8; 12],
    pub sealed: Vec<u8>,
}

/// What became of a riding claim's request, as its transactions saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// No transaction of the request committed (yet).
    NotCommitted,
    /// The change committed with the record; `answered`: with the answer.
    Committed { answered: bool },
    /// Another request holds the key (it ran or runs this request, or the
    /// key was used for another): the change was cancelled.
    Taken,
    /// DynamoDB cancelled the change for a concurrent transaction (a
    /// duplicate committing at the same moment, in AWS).
    Conflicted,
}

/// Seals a prepared answer for the record (the idempotency layer's key ring
/// and the record's context; the store never sees the keys).
pub type Sealer = Box<dyn Fn(&[u8]) -> AppResult<([u8; 12], Vec<u8>)> + Send + Sync>;

/// An `Idempotency-Key` request on a route whose change is one transaction:
/// its record is written by that transaction (see the module docs). Set
/// for the handler by the idempotency layer ([`RidingClaim::scope`]); read
/// by `Tx::commit`.
pub struct RidingClaim {
    key: Item,
    fingerprint: String,
    lock: String,
    now: i64,
    lease_seconds: i64,
    keep_seconds: i64,
    sealer: Sealer,
    /// Prepared for the next commit, which takes it: a later transaction
    /// of the request (a refusal's event after a failed change) must not
    /// store an answer that was meant for another.
    answer: Mutex<Option<PreparedAnswer>>,
    /// The status and body stored with the change that committed.
    stored: Mutex<Option<(u16, Vec<u8>)>>,
    outcome: Mutex<ClaimOutcome>,
}

tokio::task_local! {
    static RIDING_CLAIM: Arc<RidingClaim>;
}

impl RidingClaim {
    pub fn new(
        key: Item,
        fingerprint: &str,
        lock: &str,
        now: i64,
        (lease_seconds, keep_seconds): (i64, i64),
        sealer: Sealer,
    ) -> Arc<Self> {
        Arc::new(Self {
            key,
            fingerprint: fingerprint.to_owned(),
            lock: lock.to_owned(),
            now,
            lease_seconds,
            keep_seconds,
            sealer,
            answer: Mutex::new(None),
            stored: Mutex::new(None),
            outcome: Mutex::new(ClaimOutcome::NotCommitted),
        })
    }

    /// Runs the handler with this claim in scope.
    pub async fn scope<F: std::future::Future>(self: &Arc<Self>, handler: F) -> F::Output {
        RIDING_CLAIM.scope(self.clone(), handler).await
    }

    /// The claim of the request being handled, if it has one.
    pub fn current() -> Option<Arc<RidingClaim>> {
        RIDING_CLAIM.try_with(Arc::clone).ok()
    }

    /// Seals and keeps the answer the change's transaction will store.
    pub fn prepare_answer(&self, status: u16, content_type: &'static str, body: Vec<u8>) -> AppResult<()> {
        let (nonce, sealed) = (self.sealer)(&body)?;
        *self.answer.lock().unwrap_or_else(PoisonError::into_inner) =
            Some(PreparedAnswer { status, content_type, body, nonce, sealed });
        Ok(())
    }

    pub fn outcome(&self) -> ClaimOutcome {
        *self.outcome.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn set_outcome(&self, outcome: ClaimOutcome, stored: Option<(u16, Vec<u8>)>) {
        *self.outcome.lock().unwrap_or_else(PoisonError::into_inner) = outcome;
        *self.stored.lock().unwrap_or_else(PoisonError::into_inner) = stored;
    }

    /// Whether the answer stored with the change is `status` and `body`.
    pub fn stored_answer_is(&self, status: u16, body: &[u8]) -> bool {
        let stored = self.stored.lock().unwrap_or_else(PoisonError::into_inner);
        stored.as_ref().is_some_and(|(s, b)| *s == status && b.as_slice() == body)
    }

    /// The record as the next transaction writes it: completed with the
    /// prepared answer (taken), or `committed` (the layer stores the answer
    /// after). Also the status and body it stores, if any.
    pub(crate) fn transaction_put(&self) -> (PutBuilder, Option<(u16, Vec<u8>)>) {
        let mut item = self.record(STATE_COMMITTED);
        let answer = self.answer.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(answer) = &answer {
            SealedResponse {
                status: answer.status,
                content_type: Some(answer.content_type),
                nonce: &answer.nonce,
                sealed: &answer.sealed,
            }
            .write_into(&mut item);
        }
        (claimable_put(item, self.now), answer.map(|a| (a.status, a.body)))
    }

    fn record(&self, state: &str) -> Item {
        let mut item = self.key.clone();
        item.insert("fingerprint".into(), s(&self.fingerprint));
        item.insert("state".into(), s(state));
        item.insert("lock".into(), s(&self.lock));
        item.insert("lease_until".into(), n(self.now + self.lease_seconds));
        item.insert("expires_at".into(), n(self.now + self.keep_seconds));
        item
    }

    pub fn key(&self) -> &Item {
        &self.key
    }

    pub fn lock(&self) -> &str {
        &self.lock
    }
}

fn claimable_put(item: Item, now: i64) -> PutBuilder {
    PutBuilder::default()
        .set_item(Some(item))
        .condition_expression(CLAIMABLE)
        .expression_attribute_names("#state", "state")
        .expression_attribute_values(":now", n(now))
        .expression_attribute_values(":in_progress", s(STATE_IN_PROGRESS))
}

impl Store {
    /// Claims the key for this request: true when it is ours to run. A
    /// record that expired (TTL deletes lazily) or whose holder's lease ran
    /// out (the process died mid-request) may be claimed again.
    pub async fn claim_idempotency_key(
        &self,
        key: Item,
        fingerprint: &str,
        lock: &str,
        now: i64,
        lease_seconds: i64,
        keep_seconds: i64,
    ) -> AppResult<bool> {
        let mut item = key;
        item.insert("fingerprint".into(), s(fingerprint));
        item.insert("state".into(), s(STATE_IN_PROGRESS));
        item.insert("lock".into(), s(lock));
        item.insert("lease_until".into(), n(now + lease_seconds));
        item.insert("expires_at".into(), n(now + keep_seconds));
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(CLAIMABLE)
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":in_progress", s(STATE_IN_PROGRESS))
            .send()
            .await;
        super::applied(result)
    }

    /// Writes a riding claim's record with an answer its request gave without
    /// committing a change (a refusal, say): true when written, false when
    /// another request holds the key (its answer is the one to give).
    pub async fn answer_riding_claim(&self, claim: &RidingClaim, response: SealedResponse<'_>) -> AppResult<bool> {
        let mut item = claim.record(STATE_COMPLETED);
        response.write_into(&mut item);
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(CLAIMABLE)
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":now", n(claim.now))
            .expression_attribute_values(":in_progress", s(STATE_IN_PROGRESS))
            .send()
            .await;
        super::applied(result)
    }

    pub async fn get_idempotency_record(&self, key: Item) -> AppResult<Option<IdempotencyRecord>> {
        Ok(self.get_item(key).await?.as_ref().map(IdempotencyRecord::from_item))
    }

    /// Stores the response under the claim `lock` still holds.
    pub async fn complete_idempotency_key(&self, key: Item, lock: &str, response: SealedResponse<'_>) -> AppResult<()> {
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .condition_expression("#lock = :lock")
            .expression_attribute_names("#lock", "lock")
            .expression_attribute_names("#state", "state")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":lock", s(lock))
            .expression_attribute_values(":completed", s(STATE_COMPLETED))
            .expression_attribute_values(":status", n(i64::from(response.status)))
            .expression_attribute_values(
                ":nonce",
                aws_sdk_dynamodb::types::AttributeValue::B(Blob::new(response.nonce)),
            )
            .expression_attribute_values(
                ":sealed",
                aws_sdk_dynamodb::types::AttributeValue::B(Blob::new(response.sealed)),
            );
        let mut expression =
            "SET #state = :completed, #status = :status, body_nonce = :nonce, body_sealed = :sealed".to_owned();
        if let Some(content_type) = response.content_type {
            expression.push_str(", content_type = :ct");
            update = update.expression_attribute_values(":ct", s(content_type));
        }
        match update.update_expression(expression).send().await {
            Ok(_) => Ok(()),
            Err(err) if condition_failed(&err) => {
                Err(AppError::internal(anyhow::anyhow!("idempotency claim lost before the response was stored")))
            }
            Err(err) => Err(err.into()),
        }
    }

    /// Gives the key back (the request failed in a way a retry may fix).
    pub async fn release_idempotency_key(&self, key: Item, lock: &str) -> AppResult<()> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .condition_expression("#lock = :lock")
            .expression_attribute_names("#lock", "lock")
            .expression_attribute_values(":lock", s(lock))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err) if condition_failed(&err) => Ok(()),
            Err(err) => Err(err.into()),
        }
    }
}
