//! Sign-in throttle counters: one item per subject, read before a password
//! is checked and struck after a failure (rules in `domain::throttle`).
//!
//! | item | PK | SK |
//! |---|---|---|
//! | an account's strikes | `THROTTLE#ACCOUNT#<sha256 of the lowercased email>` | `THROTTLE` |
//! | an address's sign-in strikes | `THROTTLE#ADDRESS#<ip>` | `THROTTLE` |
//! | an address's sign-ups | `THROTTLE#SIGNUP#<ip>` | `THROTTLE` |
//! | an account's reset requests | `THROTTLE#RESET#<sha256 of the lowercased email>` | `THROTTLE` |
//! | an address's reset requests | `THROTTLE#RESETADDR#<ip>` | `THROTTLE` |
//! | a user's verification re-sends | `THROTTLE#VERIFYMAIL#<user id>` | `THROTTLE` |
//! | an address's SSO sign-in starts | `THROTTLE#SSOINIT#<ip>` | `THROTTLE` |
//!
//! The email is hashed so that the table holds no address of an account
//! that does not exist. Items expire (TTL) when their strikes are forgotten.

use std::collections::HashMap;

use sha2::{Digest, Sha256};

use super::{Item, Store, n, s};
use crate::{
    domain::throttle::{
        ACCOUNT, ADDRESS, RESET_ACCOUNT, RESET_ADDRESS, SIGN_UP, SSO_INITIATE, ThrottlePolicy, VERIFICATION_MAIL,
    },
    error::AppResult,
};

/// Who is being counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    pk: String,
    pub policy: ThrottlePolicy,
}

fn email_digest(email: &str) -> String {
    format!("{:x}", Sha256::digest(email.trim().to_lowercase().as_bytes()))
}

impl Subject {
    pub fn account(email: &str) -> Self {
        Self { pk: format!("THROTTLE#ACCOUNT#{}", email_digest(email)), policy: ACCOUNT }
    }

    /// Password-reset requests naming `email` (existing or not).
    pub fn reset_account(email: &str) -> Self {
        Self { pk: format!("THROTTLE#RESET#{}", email_digest(email)), policy: RESET_ACCOUNT }
    }

    /// Password-reset requests from `ip`.
    pub fn reset_address(ip: &str) -> Self {
        Self { pk: format!("THROTTLE#RESETADDR#{ip}"), policy: RESET_ADDRESS }
    }

    /// Verification mails `user_id` asked for.
    pub fn verification_mail(user_id: uuid::Uuid) -> Self {
        Self { pk: format!("THROTTLE#VERIFYMAIL#{user_id}"), policy: VERIFICATION_MAIL }
    }

    pub fn address(ip: &str) -> Self {
        Self { pk: format!("THROTTLE#ADDRESS#{ip}"), policy: ADDRESS }
    }

    /// SSO sign-ins started from `ip`.
    pub fn sso_initiate(ip: &str) -> Self {
        Self { pk: format!("THROTTLE#SSOINIT#{ip}"), policy: SSO_INITIATE }
    }

    pub fn sign_up(ip: &str) -> Self {
        Self { pk: format!("THROTTLE#SIGNUP#{ip}"), policy: SIGN_UP }
    }

    pub(crate) fn key(&self) -> Item {
        HashMap::from([("PK".into(), s(&self.pk)), ("SK".into(), s("THROTTLE"))])
    }
}

/// A subject's count as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Count {
    pub subject: Subject,
    pub strikes: i64,
    /// Unix milliseconds (a one-second wait must not end at the next
    /// second's tick); 0 when never blocked.
    pub blocked_until_ms: i64,
}

impl Count {
    /// Whole seconds left to wait at `now_ms` (rounded up), if blocked.
    pub fn wait(&self, now_ms: i64) -> Option<i64> {
        (self.blocked_until_ms > now_ms).then(|| (self.blocked_until_ms - now_ms + 999) / 1000)
    }
}

impl Store {
    /// The subjects' counts in one BatchGetItem (absent: no strikes).
    pub async fn throttle_counts(&self, subjects: Vec<Subject>) -> AppResult<Vec<Count>> {
        let keys: Vec<Item> = subjects.iter().map(Subject::key).collect();
        let found = self.batch_get(keys, None, true).await?;
        let number = |item: &Item, name: &str| -> i64 {
            item.get(name).and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok()).unwrap_or(0)
        };
        Ok(subjects
            .into_iter()
            .map(|subject| {
                let item = found.iter().find(|item| item.get("PK").and_then(|v| v.as_s().ok()) == Some(&subject.pk));
                let (strikes, blocked_until_ms) =
                    item.map_or((0, 0), |item| (number(item, "strikes"), number(item, "blocked_until_ms")));
                Count { subject, strikes, blocked_until_ms }
            })
            .collect())
    }

    /// One strike against `count`'s subject: the counter grows atomically
    /// and the block is set from the count read (never shortened). Answers
    /// the new strike count.
    pub async fn strike(&self, count: &Count, now_ms: i64) -> AppResult<i64> {
        let strikes = count.strikes + 1;
        let wait_ms = count.subject.policy.wait_after(strikes).map_or(0, |d| d.as_millis() as i64);
        let blocked_until = (now_ms + wait_ms).max(count.blocked_until_ms);
        let expires_at = (now_ms + wait_ms) / 1000 + count.subject.policy.memory.as_secs() as i64;
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(count.subject.key()))
            .update_expression("ADD strikes :one SET blocked_until_ms = :until, expires_at = :ttl")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":until", n(blocked_until))
            .expression_attribute_values(":ttl", n(expires_at))
            .send()
            .await?;
        Ok(strikes)
    }

    /// An audit entry on its own (a sign-in lockout: nothing else changes).
    pub async fn record_audit(
        &self,
        scope: &crate::auth::TenantScope,
        audit: &crate::domain::audit::AuditContext,
        change: crate::domain::audit::Change,
    ) -> AppResult<()> {
        let retention = self.audit_retention(scope).await?;
        let mut tx = super::tx::Tx::new();
        tx.audit(scope, audit, change, retention);
        tx.commit(self).await.map_err(|e| e.into_app_error("audit entry"))
    }

    /// Forgets a subject's strikes (an account that signed in).
    pub async fn clear_strikes(&self, subject: &Subject) -> AppResult<()> {
        self.client.delete_item().table_name(&self.table).set_key(Some(subject.key())).send().await?;
        Ok(())
    }
}
