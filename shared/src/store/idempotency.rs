//! Idempotency records (the layer is `crate::idempotency`).
//!
//! | item | PK | SK | notes |
//! |---|---|---|---|
//! | record | `T#<tenant>#` | `IDEM#<caller>#<sha256 of the key>` | `fingerprint`, `state` (`in_progress`/`completed`), `lock`, `lease_until`, then `status`, `content_type`, `body_nonce` + `body_sealed`; `expires_at` (TTL, 24 h) |
//!
//! `<caller>` is the user or API key, so two callers of one tenant never
//! share a key space. Stored bodies are sealed (crate::idempotency), so a
//! response that carried a one-time secret is not readable in the table.

use std::collections::HashMap;

use aws_sdk_dynamodb::primitives::Blob;

use super::{Item, Store, condition_failed, n, s};
use crate::{
    auth::TenantScope,
    error::{AppError, AppResult},
};

pub const STATE_IN_PROGRESS: &str = "in_progress";
pub const STATE_COMPLETED: &str = "completed";

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
            .condition_expression(
                "attribute_not_exists(PK) OR expires_at < :now OR (#state = :in_progress AND lease_until < :now)",
            )
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":now", n(now))
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
