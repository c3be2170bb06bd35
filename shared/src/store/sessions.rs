//! Refresh-token families. A family is one login; each refresh rotates its
//! token. Only SHA-256 hashes are stored. A rotated-out token leaves a marker
//! item behind, so presenting it again is recognised as reuse (a stolen token)
//! and revokes the whole family.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{Put, TransactWriteItem, Update};
use serde::Deserialize;
use uuid::Uuid;

use serde_json::json;

use super::{Item, Store, failed_conditions, n, s};
use crate::{
    audit::{AuditContext, Change},
    auth::TenantScope,
    error::{AppError, AppResult},
};

#[derive(Debug, Clone, Deserialize)]
pub struct Session {
    pub user_id: Uuid,
    pub token_hash: String,
    #[serde(default)]
    pub revoked: bool,
    pub expires_at: i64,
}

fn session_key(scope: &TenantScope, session_id: Uuid) -> Item {
    HashMap::from([("PK".into(), s(scope.pk())), ("SK".into(), s(format!("SESSION#{session_id}")))])
}

fn used_token_key(scope: &TenantScope, session_id: Uuid, token_hash: &str) -> Item {
    HashMap::from([("PK".into(), s(scope.pk())), ("SK".into(), s(format!("SESSION#{session_id}#USED#{token_hash}")))])
}

pub enum Rotation {
    Rotated,
    /// The token was already rotated out: possible theft.
    Reused,
    /// Not a token of this family (or the family is gone/revoked).
    Unknown,
}

impl Store {
    pub async fn create_session(
        &self,
        scope: &TenantScope,
        session_id: Uuid,
        user_id: Uuid,
        token_hash: &str,
        expires_at: i64,
        audit: &AuditContext,
    ) -> AppResult<()> {
        let mut item = session_key(scope, session_id);
        item.insert("user_id".into(), s(user_id.to_string()));
        item.insert("token_hash".into(), s(token_hash));
        item.insert("revoked".into(), aws_sdk_dynamodb::types::AttributeValue::Bool(false));
        item.insert("created_at".into(), s(crate::domain::now_rfc3339()));
        item.insert("expires_at".into(), n(expires_at));
        // A login is a change like any other: it leaves an audit entry.
        let change = Change::created("session", session_id, json!({"user_id": user_id, "expires_at": expires_at}));
        let change = Change { action: "login", ..change };
        let retention = self.audit_retention(scope).await?;
        self.client
            .transact_write_items()
            .transact_items(super::tenants::put_new(self, item)?)
            .transact_items(self.audit_put(scope, audit, change, retention)?)
            .send()
            .await?;
        Ok(())
    }

    pub async fn get_session(&self, scope: &TenantScope, session_id: Uuid) -> AppResult<Option<Session>> {
        self.get_as(session_key(scope, session_id)).await
    }

    /// Swaps `old_hash` for `new_hash` if `old_hash` is still current; the
    /// condition makes two concurrent refreshes with one token yield one winner.
    pub async fn rotate_session(
        &self,
        scope: &TenantScope,
        session_id: Uuid,
        old_hash: &str,
        new_hash: &str,
        expires_at: i64,
    ) -> AppResult<Rotation> {
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(session_key(scope, session_id)))
            .update_expression("SET token_hash = :new, last_used_at = :now ADD generation :one")
            .condition_expression("token_hash = :old AND revoked = :false")
            .expression_attribute_values(":new", s(new_hash))
            .expression_attribute_values(":old", s(old_hash))
            .expression_attribute_values(":now", s(crate::domain::now_rfc3339()))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":false", aws_sdk_dynamodb::types::AttributeValue::Bool(false))
            .build()
            .map_err(AppError::internal)?;
        let mut marker = used_token_key(scope, session_id, old_hash);
        marker.insert("expires_at".into(), n(expires_at));
        let put = Put::builder().table_name(&self.table).set_item(Some(marker)).build().map_err(AppError::internal)?;
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().update(update).build())
            .transact_items(TransactWriteItem::builder().put(put).build())
            .send()
            .await;
        match result {
            Ok(_) => Ok(Rotation::Rotated),
            Err(err) if failed_conditions(&err).is_some_and(|f| f.first() == Some(&true)) => {
                // Lost a race with another refresh of the same token, or the
                // token was already rotated: either way it is being reused.
                Ok(if self.was_rotated_out(scope, session_id, old_hash).await? {
                    Rotation::Reused
                } else {
                    Rotation::Unknown
                })
            }
            Err(err) => Err(err.into()),
        }
    }

    pub async fn was_rotated_out(&self, scope: &TenantScope, session_id: Uuid, token_hash: &str) -> AppResult<bool> {
        Ok(self.get_item(used_token_key(scope, session_id, token_hash)).await?.is_some())
    }

    /// Revokes a family (logout, or reuse detected), with its audit entry.
    /// Idempotent: revoking a revoked or missing family changes nothing.
    pub async fn revoke_session(
        &self,
        scope: &TenantScope,
        session_id: Uuid,
        reason: &str,
        audit: &AuditContext,
    ) -> AppResult<()> {
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(session_key(scope, session_id)))
            .update_expression("SET revoked = :true, revoked_reason = :reason, revoked_at = :now")
            .condition_expression("attribute_exists(PK) AND revoked = :false")
            .expression_attribute_values(":true", aws_sdk_dynamodb::types::AttributeValue::Bool(true))
            .expression_attribute_values(":false", aws_sdk_dynamodb::types::AttributeValue::Bool(false))
            .expression_attribute_values(":reason", s(reason))
            .expression_attribute_values(":now", s(crate::domain::now_rfc3339()))
            .build()
            .map_err(AppError::internal)?;
        let change = Change {
            action: if reason == "logout" { "logout" } else { "revoke" },
            resource_type: "session",
            resource_id: session_id.to_string(),
            old_values: json!({"revoked": false}),
            new_values: json!({"revoked": true, "reason": reason}),
        };
        let retention = self.audit_retention(scope).await?;
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().update(update).build())
            .transact_items(self.audit_put(scope, audit, change, retention)?)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err) if failed_conditions(&err).is_some_and(|f| f.first() == Some(&true)) => Ok(()),
            Err(err) => Err(err.into()),
        }
    }
}
