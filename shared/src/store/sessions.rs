//! Refresh-token families. A family is one login; each refresh rotates its
//! token. Only SHA-256 hashes are stored. A rotated-out token leaves a marker
//! item behind, so presenting it again is recognised as reuse (a stolen token)
//! and revokes the whole family.
//!
//! | item | PK | SK |
//! |---|---|---|
//! | session (a family) | `T#<tenant>#` | `SESSION#<id>` |
//! | rotated-out token | `T#<tenant>#` | `SESSION#<id>#USED#<token hash>` |
//!
//! Conditions: `token_not_current` (a rotation lost to another, or the
//! family is revoked), `session_not_active` (revoking a revoked or missing
//! family, which changes nothing). [`Store::revoke_user_sessions`] revokes
//! every live family of one user (a password reset), one audited revocation
//! each. Sessions emit no events; a login and a
//! revocation leave audit entries.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, Update};
use serde_json::json;
use uuid::Uuid;

use super::{
    Item, Store, n, s,
    tx::{Cond, Tx, TxError},
};
use crate::{
    auth::{TenantScope, proofs::CredentialLookup},
    domain::audit::{AuditContext, Change},
    error::AppResult,
};

pub use crate::domain::user::Session;

/// The presented token is no longer the family's current one, or the family
/// was revoked.
const TOKEN_NOT_CURRENT: Cond = Cond("token_not_current");
/// The family is already revoked, or gone.
const SESSION_NOT_ACTIVE: Cond = Cond("session_not_active");

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
        item.insert("revoked".into(), AttributeValue::Bool(false));
        item.insert("created_at".into(), s(crate::domain::now_rfc3339()));
        item.insert("expires_at".into(), n(expires_at));
        // A login is a change like any other: it leaves an audit entry.
        let change = Change::created("session", session_id, json!({"user_id": user_id, "expires_at": expires_at}));
        let change = Change { action: "login", ..change };
        let retention = self.audit_retention(scope).await?;
        let mut tx = Tx::new();
        tx.put_new(item, Cond::UNIQUE_ID).audit(scope, audit, change, retention);
        tx.commit(self).await.map_err(|e| e.into_app_error("session"))
    }

    pub async fn get_session(&self, scope: &TenantScope, session_id: Uuid) -> AppResult<Option<Session>> {
        self.get_as(session_key(scope, session_id)).await
    }

    /// The session a presented refresh token names (not yet verified: the
    /// caller compares the token's hash, see `CredentialLookup::verified`).
    pub async fn session_for_refresh(&self, lookup: &CredentialLookup, session_id: Uuid) -> AppResult<Option<Session>> {
        self.get_session(&lookup.lookup_scope(), session_id).await
    }

    /// The session's scope if the presented token is one it rotated out
    /// (its hash matches a retired one): a replayed, stolen token.
    pub async fn rotated_out_scope(
        &self,
        lookup: &CredentialLookup,
        session_id: Uuid,
        token_hash: &str,
    ) -> AppResult<Option<TenantScope>> {
        let scope = lookup.lookup_scope();
        Ok(self.was_rotated_out(&scope, session_id, token_hash).await?.then_some(scope))
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
            .set_key(Some(session_key(scope, session_id)))
            .update_expression("SET token_hash = :new, last_used_at = :now ADD generation :one")
            .condition_expression("token_hash = :old AND revoked = :false")
            .expression_attribute_values(":new", s(new_hash))
            .expression_attribute_values(":old", s(old_hash))
            .expression_attribute_values(":now", s(crate::domain::now_rfc3339()))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":false", AttributeValue::Bool(false));
        let mut marker = used_token_key(scope, session_id, old_hash);
        marker.insert("expires_at".into(), n(expires_at));
        let mut tx = Tx::new();
        tx.update(update, Some(TOKEN_NOT_CURRENT)).put(marker);
        match tx.commit(self).await {
            Ok(()) => Ok(Rotation::Rotated),
            // Lost a race with another refresh of the same token, or the
            // token was already rotated: either way it is being reused.
            Err(TxError::Condition(TOKEN_NOT_CURRENT) | TxError::Conflict) => {
                Ok(if self.was_rotated_out(scope, session_id, old_hash).await? {
                    Rotation::Reused
                } else {
                    Rotation::Unknown
                })
            }
            Err(err) => Err(err.into_app_error("session")),
        }
    }

    async fn was_rotated_out(&self, scope: &TenantScope, session_id: Uuid, token_hash: &str) -> AppResult<bool> {
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
            .set_key(Some(session_key(scope, session_id)))
            .update_expression("SET revoked = :true, revoked_reason = :reason, revoked_at = :now")
            .condition_expression("attribute_exists(PK) AND revoked = :false")
            .expression_attribute_values(":true", AttributeValue::Bool(true))
            .expression_attribute_values(":false", AttributeValue::Bool(false))
            .expression_attribute_values(":reason", s(reason))
            .expression_attribute_values(":now", s(crate::domain::now_rfc3339()));
        let change = Change {
            action: if reason == "logout" { "logout" } else { "revoke" },
            resource_type: "session",
            resource_id: session_id.to_string(),
            old_values: json!({"revoked": false}),
            new_values: json!({"revoked": true, "reason": reason}),
        };
        let retention = self.audit_retention(scope).await?;
        let mut tx = Tx::new();
        tx.update(update, Some(SESSION_NOT_ACTIVE)).audit(scope, audit, change, retention);
        let result = match tx.commit(self).await {
            Ok(()) | Err(TxError::Condition(SESSION_NOT_ACTIVE)) => Ok(()),
            Err(err) => Err(err.into_app_error("session")),
        };
        super::standing::forget_session(session_id);
        result
    }

    /// Revokes every live session of `user_id` (a password reset), each
    /// with its own audit entry; answers how many were live. Reads the
    /// tenant's sessions (one Query, filtered on the user), so it costs in
    /// proportion to the tenant's live and recent sign-ins.
    pub async fn revoke_user_sessions(
        &self,
        scope: &TenantScope,
        user_id: Uuid,
        reason: &str,
        audit: &AuditContext,
    ) -> AppResult<usize> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("PK = :pk AND begins_with(SK, :prefix)")
            .filter_expression("user_id = :user AND revoked = :false")
            .projection_expression("SK")
            .expression_attribute_values(":pk", s(scope.pk()))
            .expression_attribute_values(":prefix", s("SESSION#"))
            .expression_attribute_values(":user", s(user_id.to_string()))
            .expression_attribute_values(":false", AttributeValue::Bool(false))
            .consistent_read(true);
        let sessions: Vec<Uuid> = self
            .query_all(query)
            .await?
            .iter()
            .filter_map(|item| item.get("SK")?.as_s().ok()?.strip_prefix("SESSION#")?.parse().ok())
            .collect();
        for session_id in &sessions {
            self.revoke_session(scope, *session_id, reason, audit).await?;
        }
        Ok(sessions.len())
    }
}
