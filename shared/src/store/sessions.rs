//! Refresh-token families. A family is one login; each refresh rotates its
//! token. Only SHA-256 hashes are stored. A rotated-out token leaves a marker
//! item behind, so presenting it again is recognised as reuse (a stolen token)
//! and revokes the whole family.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{Put, TransactWriteItem, Update};
use serde::Deserialize;
use uuid::Uuid;

use super::{Item, Store, failed_conditions, from_item, n, s, tenants::is_condition_failure};
use crate::{
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
    ) -> AppResult<()> {
        let mut item = session_key(scope, session_id);
        item.insert("user_id".into(), s(user_id.to_string()));
        item.insert("token_hash".into(), s(token_hash));
        item.insert("revoked".into(), aws_sdk_dynamodb::types::AttributeValue::Bool(false));
        item.insert("created_at".into(), s(crate::domain::now_rfc3339()));
        item.insert("expires_at".into(), n(expires_at));
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(PK)")
            .send()
            .await?;
        Ok(())
    }

    pub async fn get_session(&self, scope: &TenantScope, session_id: Uuid) -> AppResult<Option<Session>> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(session_key(scope, session_id)))
            .consistent_read(true)
            .send()
            .await?;
        output.item.map(from_item).transpose()
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
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(used_token_key(scope, session_id, token_hash)))
            .consistent_read(true)
            .send()
            .await?;
        Ok(output.item.is_some())
    }

    /// Revokes a family (logout, or reuse detected). Idempotent.
    pub async fn revoke_session(&self, scope: &TenantScope, session_id: Uuid, reason: &str) -> AppResult<()> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(session_key(scope, session_id)))
            .update_expression("SET revoked = :true, revoked_reason = if_not_exists(revoked_reason, :reason), revoked_at = if_not_exists(revoked_at, :now)")
            .condition_expression("attribute_exists(PK)")
            .expression_attribute_values(":true", aws_sdk_dynamodb::types::AttributeValue::Bool(true))
            .expression_attribute_values(":reason", s(reason))
            .expression_attribute_values(":now", s(crate::domain::now_rfc3339()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err) if is_condition_failure(&err) => Ok(()),
            Err(err) => Err(err.into()),
        }
    }
}
