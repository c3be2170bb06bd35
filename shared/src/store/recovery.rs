//! One-time mail tokens (password reset, email verification) in the table.
//!
//! | item | PK | SK |
//! |---|---|---|
//! | a user's reset token | `T#<tenant>#` | `MAILTOKEN#RESET#<user>` |
//! | a user's verification token | `T#<tenant>#` | `MAILTOKEN#VERIFY#<user>` |
//!
//! Attributes: `user_id`, `token_hash` (SHA-256 of the token's secret: the
//! secret itself is only in the mail), `expires_at` (Unix seconds, also the
//! item's TTL). One token per user and purpose: issuing one replaces the
//! last, so only the newest mail's link works. Lifetimes: a reset link
//! [`RESET_TTL_SECONDS`] (30 minutes: it can take over the account), a
//! verification link [`VERIFICATION_TTL_SECONDS`] (48 hours: it only proves
//! an address).
//!
//! | change | conditions (by name) | audit action |
//! |---|---|---|
//! | [`Store::issue_mail_token`] | none (replaces) | `password_reset_requested` / `email_verification_sent` |
//! | [`Store::reset_password_with_token`] | `token_spent`, `account_unusable` | `password_reset` |
//! | [`Store::verify_email_with_token`] | `token_spent`, `account_unusable` | `email_verified` |
//!
//! A token is spent by a conditional delete in the transaction of the change
//! it allows (the stored hash still the presented one, not expired), so two
//! concurrent uses of one link make one change. No events: the outbox would
//! carry nothing a subscriber needs, and the audit entries already are
//! `audit.entry.created` events.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, Delete, Update, builders::DeleteBuilder};
use serde_json::json;
use uuid::Uuid;

use super::{
    Item, Store, n, s,
    throttle::Subject,
    tx::{Cond, Tx, TxError},
    users::user_key,
};
use crate::{
    auth::{TenantScope, proofs::CredentialLookup},
    domain::{
        audit::{AuditContext, Change},
        user::User,
    },
    error::{AppError, AppResult},
};

/// How long a password-reset link works.
pub const RESET_TTL_SECONDS: i64 = 30 * 60;
/// How long an email-verification link works.
pub const VERIFICATION_TTL_SECONDS: i64 = 48 * 3600;

/// The token was used, replaced by a newer one, or expired.
const TOKEN_SPENT: Cond = Cond("token_spent");
/// The user is gone or disabled.
const ACCOUNT_UNUSABLE: Cond = Cond("account_unusable");

/// What a mail token allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Reset,
    Verification,
}

impl Purpose {
    fn key_part(self) -> &'static str {
        match self {
            Purpose::Reset => "RESET",
            Purpose::Verification => "VERIFY",
        }
    }

    /// Seconds a new token of this purpose works.
    pub fn ttl_seconds(self) -> i64 {
        match self {
            Purpose::Reset => RESET_TTL_SECONDS,
            Purpose::Verification => VERIFICATION_TTL_SECONDS,
        }
    }
}

fn token_key(scope: &TenantScope, purpose: Purpose, user_id: Uuid) -> Item {
    HashMap::from([
        ("PK".into(), s(scope.pk())),
        ("SK".into(), s(format!("MAILTOKEN#{}#{user_id}", purpose.key_part()))),
    ])
}

/// A stored token as read, before the presented one is checked against it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMailToken {
    pub token_hash: String,
    /// Unix seconds.
    pub expires_at: i64,
}

/// Why a token was not spent.
#[derive(Debug)]
pub enum SpendError {
    /// Used, replaced, expired, or its user is gone or disabled: the caller
    /// answers `invalid_token` alike.
    Invalid,
    Other(AppError),
}

impl From<AppError> for SpendError {
    fn from(e: AppError) -> Self {
        SpendError::Other(e)
    }
}

/// The token's deletion, on condition that it is still the one presented
/// and unexpired at `now`.
fn spend(scope: &TenantScope, purpose: Purpose, user_id: Uuid, token_hash: &str, now: i64) -> DeleteBuilder {
    Delete::builder()
        .set_key(Some(token_key(scope, purpose, user_id)))
        .condition_expression("token_hash = :hash AND expires_at > :now")
        .expression_attribute_values(":hash", s(token_hash))
        .expression_attribute_values(":now", n(now))
}

impl Store {
    /// Stores a new token for `user` (replacing any earlier one of the same
    /// purpose), with its audit entry; answers its expiry (Unix seconds).
    pub async fn issue_mail_token(
        &self,
        scope: &TenantScope,
        purpose: Purpose,
        user: &User,
        token_hash: &str,
        audit: &AuditContext,
    ) -> AppResult<i64> {
        let expires_at = crate::domain::now().timestamp() + purpose.ttl_seconds();
        let mut item = token_key(scope, purpose, user.id);
        item.insert("user_id".into(), s(user.id.to_string()));
        item.insert("token_hash".into(), s(token_hash));
        item.insert("expires_at".into(), n(expires_at));
        let action = match purpose {
            Purpose::Reset => "password_reset_requested",
            Purpose::Verification => "email_verification_sent",
        };
        let change = Change {
            action,
            resource_type: "user",
            resource_id: user.id.to_string(),
            old_values: json!({}),
            new_values: json!({
                "email": user.email,
                "link_expires_at": chrono::DateTime::from_timestamp(expires_at, 0).map(crate::domain::rfc3339),
            }),
        };
        let retention = self.audit_retention(scope).await?;
        let mut tx = Tx::new();
        tx.put(item).audit(scope, audit, change, retention);
        tx.commit(self).await.map_err(|e| e.into_app_error("mail token"))?;
        Ok(expires_at)
    }

    /// The token a presented link names (not yet verified: the caller
    /// compares hashes with [`CredentialLookup::verified`]).
    pub async fn mail_token_for(
        &self,
        lookup: &CredentialLookup,
        purpose: Purpose,
        user_id: Uuid,
    ) -> AppResult<Option<StoredMailToken>> {
        let Some(item) = self.get_item(token_key(&lookup.lookup_scope(), purpose, user_id)).await? else {
            return Ok(None);
        };
        let token_hash = item.get("token_hash").and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
        Ok(Some(StoredMailToken { token_hash, expires_at: super::number_attr(&item, "expires_at") }))
    }

    /// Spends a reset token and sets the user's new password in one
    /// transaction, which also forgets the account's sign-in strikes (the
    /// owner of the mailbox proved themself) and writes the audit entry.
    /// Sessions are revoked by the caller afterwards
    /// ([`Store::revoke_user_sessions`]).
    pub async fn reset_password_with_token(
        &self,
        scope: &TenantScope,
        user: &User,
        token_hash: &str,
        password_hash: &str,
        audit: &AuditContext,
    ) -> Result<(), SpendError> {
        let now = crate::domain::now();
        let update = Update::builder()
            .set_key(Some(user_key(scope, user.id)))
            .update_expression("SET password_hash = :hash, password_changed_at = :now")
            .condition_expression("attribute_exists(PK) AND is_active = :true")
            .expression_attribute_values(":hash", s(password_hash))
            .expression_attribute_values(":now", s(crate::domain::rfc3339(now)))
            .expression_attribute_values(":true", AttributeValue::Bool(true));
        let change = Change {
            action: "password_reset",
            resource_type: "user",
            resource_id: user.id.to_string(),
            old_values: json!({}),
            new_values: json!({"via": "reset_link", "sessions": "revoked"}),
        };
        let retention = self.audit_retention(scope).await?;
        let mut tx = Tx::new();
        tx.delete(spend(scope, Purpose::Reset, user.id, token_hash, now.timestamp()), Some(TOKEN_SPENT));
        tx.update(update, Some(ACCOUNT_UNUSABLE));
        tx.delete(Delete::builder().set_key(Some(Subject::account(&user.email).key())), None);
        tx.audit(scope, audit, change, retention);
        match tx.commit(self).await {
            Ok(()) => Ok(()),
            Err(TxError::Condition(TOKEN_SPENT | ACCOUNT_UNUSABLE) | TxError::Conflict) => Err(SpendError::Invalid),
            Err(err) => Err(SpendError::Other(err.into_app_error("password reset"))),
        }
    }

    /// Spends a verification token and marks the user's address verified,
    /// with its audit entry; answers the user as verified.
    pub async fn verify_email_with_token(
        &self,
        scope: &TenantScope,
        user: &User,
        token_hash: &str,
        audit: &AuditContext,
    ) -> Result<User, SpendError> {
        let now = crate::domain::now();
        let mut verified = user.clone();
        verified.mark_email_verified(now);
        let update = Update::builder()
            .set_key(Some(user_key(scope, user.id)))
            .update_expression("SET email_verified = :true, email_verified_at = :now")
            // The address verified is the one the token was mailed to.
            .condition_expression("attribute_exists(PK) AND is_active = :true AND email = :email")
            .expression_attribute_values(":true", AttributeValue::Bool(true))
            .expression_attribute_values(":email", s(&user.email))
            .expression_attribute_values(":now", s(crate::domain::rfc3339(now)));
        let change =
            Change { action: "email_verified", ..Change::updated("user", user.id, user.view(), verified.view()) };
        let retention = self.audit_retention(scope).await?;
        let mut tx = Tx::new();
        tx.delete(spend(scope, Purpose::Verification, user.id, token_hash, now.timestamp()), Some(TOKEN_SPENT));
        tx.update(update, Some(ACCOUNT_UNUSABLE));
        tx.audit(scope, audit, change, retention);
        match tx.commit(self).await {
            Ok(()) => Ok(verified),
            Err(TxError::Condition(TOKEN_SPENT | ACCOUNT_UNUSABLE) | TxError::Conflict) => Err(SpendError::Invalid),
            Err(err) => Err(SpendError::Other(err.into_app_error("email verification"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_token_per_user_and_purpose_under_the_tenant() {
        let scope = crate::auth::proofs::NewTenant::scope(Uuid::nil());
        let user = Uuid::from_u128(7);
        let reset = token_key(&scope, Purpose::Reset, user);
        assert_eq!(reset["PK"], s(scope.pk()));
        assert_eq!(reset["SK"], s(format!("MAILTOKEN#RESET#{user}")));
        assert_ne!(reset["SK"], token_key(&scope, Purpose::Verification, user)["SK"]);
        assert_eq!((Purpose::Reset.ttl_seconds(), Purpose::Verification.ttl_seconds()), (1800, 172_800));
    }
}
