//! MFA enrolments, backup codes and sign-in challenges in the table.
//!
//! | item | PK | SK | notes |
//! |---|---|---|---|
//! | enrolment | `T#<tenant>#` | `MFA#<user>` | `status` (`pending`/`enabled`), `method`, `device_name`, the TOTP secret sealed (`secret_nonce`, `secret_sealed`: AES-256-GCM under a key per tenant and user, crate::sealing), `last_step` (the last time step accepted), `backup_codes` (map: keyed hash of each unused code -> 1), `created_at`, `enabled_at`, `expires_at` (TTL, while pending only) |
//! | challenge | `T#<tenant>#` | `MFACHALLENGE#<challenge>` | `user_id`, `purpose` (`sign_in`/`enrollment`), `token_hash` (SHA-256 of the `mfa_token`'s secret), `attempts`, `expires_at` (TTL, 5 or 10 minutes) |
//!
//! Backup codes are hashed with HMAC-SHA256 under a key derived from the
//! platform secret, the tenant and the user ([`backup_code_hash`]): ten
//! random digits are too few for a plain hash (a dump of the table could be
//! searched), and a slow hash would not help more than the key does, which
//! is not in the table.
//!
//! Conditions: `mfa_already_enabled` (a setup over MFA in force),
//! `mfa_not_pending` (a verify with no setup waiting), `code_used` (the
//! time step is not after `last_step`, the backup code is gone, or MFA is
//! not enabled: a replay, or a race with another use), `challenge_gone`
//! (the challenge was used, burnt or expired meanwhile). Each change carries
//! its audit entry; none emits an event.

use std::collections::HashMap;

use aws_sdk_dynamodb::{
    primitives::Blob,
    types::{AttributeValue, Delete, ReturnValue, Update},
};
use serde_json::json;
use uuid::Uuid;

use super::{
    Item, Store, condition_failed, from_item, item_key as key, n, number_attr, s, to_item,
    tx::{Cond, Tx, TxError},
};
use crate::{
    auth::{TenantScope, proofs::CredentialLookup},
    domain::{
        audit::{AuditContext, Change},
        mfa::{BackupCode, CodeKind, MAX_CHALLENGE_ATTEMPTS, MfaChallenge, MfaEnrollment, MfaState, MfaStatusView},
        now_rfc3339,
    },
    error::{AppError, AppResult},
    sealing::{KeyRing, SealContext},
};

/// The audit entries' resource type.
pub const RESOURCE: &str = "mfa";

const MFA_ALREADY_ENABLED: Cond = Cond("mfa_already_enabled");
const MFA_NOT_PENDING: Cond = Cond("mfa_not_pending");
const CODE_USED: Cond = Cond("code_used");
const CHALLENGE_GONE: Cond = Cond("challenge_gone");
/// The enrolment went away meanwhile (an admin's reset met a disable).
const MFA_GONE: Cond = Cond("mfa_gone");

/// Why an MFA change did not happen.
#[derive(Debug)]
pub enum MfaError {
    AlreadyEnabled,
    NotPending,
    /// The code was used meanwhile (or MFA was disabled).
    CodeUsed,
    /// The challenge was used, burnt or expired meanwhile.
    ChallengeGone,
    Other(AppError),
}

impl From<TxError> for MfaError {
    fn from(err: TxError) -> Self {
        match err {
            TxError::Condition(MFA_ALREADY_ENABLED) => MfaError::AlreadyEnabled,
            TxError::Condition(MFA_NOT_PENDING) => MfaError::NotPending,
            TxError::Condition(CODE_USED) | TxError::Conflict => MfaError::CodeUsed,
            TxError::Condition(CHALLENGE_GONE) => MfaError::ChallengeGone,
            other => MfaError::Other(other.into_app_error("mfa")),
        }
    }
}

impl From<AppError> for MfaError {
    fn from(err: AppError) -> Self {
        MfaError::Other(err)
    }
}

/// What a user's TOTP secret is sealed for (crate::sealing).
pub fn totp_secret_context(scope: &TenantScope, user_id: Uuid) -> SealContext {
    SealContext::new("mfa-totp-secret-v1", &[&scope.pk(), &user_id.to_string()])
}

fn backup_code_context(scope: &TenantScope, user_id: Uuid, code: &BackupCode) -> SealContext {
    SealContext::new("mfa-backup-code-v1", &[&scope.pk(), &user_id.to_string(), code.as_str()])
}

fn hex(mac: &[u8; 32]) -> String {
    mac.iter().map(|b| format!("{b:02x}")).collect()
}

/// A new backup code's keyed hash (see the module docs), hex, under the
/// ring's current key.
pub fn backup_code_hash(ring: &KeyRing, scope: &TenantScope, user_id: Uuid, code: &BackupCode) -> AppResult<String> {
    Ok(hex(&ring.derived_current(&backup_code_context(scope, user_id, code))?))
}

/// The keyed hashes a typed backup code may match: one per ring key, since
/// codes made before a key rotation were hashed under an older key.
pub fn backup_code_hash_candidates(
    ring: &KeyRing,
    scope: &TenantScope,
    user_id: Uuid,
    code: &BackupCode,
) -> AppResult<Vec<String>> {
    Ok(ring.derived_all(&backup_code_context(scope, user_id, code))?.iter().map(hex).collect())
}

pub(crate) fn enrollment_key(scope: &TenantScope, user_id: Uuid) -> Item {
    key(scope, format!("MFA#{user_id}"))
}

fn challenge_key(scope: &TenantScope, challenge_id: Uuid) -> Item {
    key(scope, format!("MFACHALLENGE#{challenge_id}"))
}

/// An enrolment as stored: the entity and its sealed secret.
pub struct StoredMfa {
    pub enrollment: MfaEnrollment,
    pub secret_nonce: Vec<u8>,
    pub secret_sealed: Vec<u8>,
}

/// A fresh code, as the store checks it again when it is spent: a TOTP
/// time step after `last_step`, or an unused backup code's hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeProof {
    Step(i64),
    BackupCode(String),
}

impl CodeProof {
    pub fn kind(&self) -> CodeKind {
        match self {
            CodeProof::Step(_) => CodeKind::Totp,
            CodeProof::BackupCode(_) => CodeKind::BackupCode,
        }
    }

    /// The condition that the code is still unspent and MFA enabled, and
    /// the update that spends it.
    fn spend(&self) -> Spend {
        let enabled = (":enabled", s(MfaState::Enabled.as_str()));
        match self {
            CodeProof::Step(step) => Spend {
                condition: "#status = :enabled AND (attribute_not_exists(last_step) OR last_step < :step)",
                update: "SET last_step = :step",
                names: vec![("#status", "status".to_owned())],
                values: vec![enabled, (":step", n(*step))],
            },
            CodeProof::BackupCode(hash) => Spend {
                condition: "#status = :enabled AND attribute_exists(backup_codes.#code)",
                update: "REMOVE backup_codes.#code",
                names: vec![("#status", "status".to_owned()), ("#code", hash.clone())],
                values: vec![enabled],
            },
        }
    }
}

/// A [`CodeProof`] as expressions over the enrolment item.
struct Spend {
    condition: &'static str,
    update: &'static str,
    names: Vec<(&'static str, String)>,
    values: Vec<(&'static str, AttributeValue)>,
}

impl Store {
    pub async fn get_mfa(&self, scope: &TenantScope, user_id: Uuid) -> AppResult<Option<StoredMfa>> {
        let Some(mut item) = self.get_item(enrollment_key(scope, user_id)).await? else {
            return Ok(None);
        };
        let mut blob = |name: &str| match item.remove(name) {
            Some(AttributeValue::B(b)) => Ok(b.into_inner()),
            _ => Err(AppError::internal(anyhow::anyhow!("an MFA enrolment without {name}"))),
        };
        let (secret_nonce, secret_sealed) = (blob("secret_nonce")?, blob("secret_sealed")?);
        // A pending setup past its TTL that DynamoDB has not swept yet.
        if number_attr(&item, "expires_at") > 0 && number_attr(&item, "expires_at") <= chrono::Utc::now().timestamp() {
            return Ok(None);
        }
        Ok(Some(StoredMfa { enrollment: from_item(item)?, secret_nonce, secret_sealed }))
    }

    /// Writes a pending setup (replacing one not yet verified), unless MFA
    /// is already enabled.
    pub async fn start_mfa_setup(
        &self,
        scope: &TenantScope,
        enrollment: &MfaEnrollment,
        sealed_secret: (&[u8], &[u8]),
        audit: &AuditContext,
    ) -> Result<(), MfaError> {
        let mut item = to_item(enrollment)?;
        item.extend(enrollment_key(scope, enrollment.user_id));
        item.insert("secret_nonce".into(), AttributeValue::B(Blob::new(sealed_secret.0)));
        item.insert("secret_sealed".into(), AttributeValue::B(Blob::new(sealed_secret.1)));
        let expires_at = enrollment.created_at.timestamp() + crate::domain::mfa::PENDING_SETUP_TTL_SECONDS;
        item.insert("expires_at".into(), n(expires_at));
        let mut tx = Tx::new();
        tx.put_if(
            item,
            "attribute_not_exists(PK) OR #status = :pending",
            HashMap::from([(":pending".to_owned(), s(MfaState::Pending.as_str()))]),
            MFA_ALREADY_ENABLED,
        );
        let change = Change { action: "mfa_setup", ..Change::created(RESOURCE, enrollment.user_id, enrollment.view()) };
        tx.audit(scope, audit, change, self.audit_retention(scope).await?);
        Ok(tx.commit(self).await?)
    }

    /// Enables a pending setup whose first code matched `step` (that step
    /// counts as used), and spends the enrolment challenge it came with.
    pub async fn enable_mfa(
        &self,
        scope: &TenantScope,
        pending: &StoredMfa,
        step: i64,
        challenge_id: Option<Uuid>,
        audit: &AuditContext,
    ) -> Result<MfaStatusView, MfaError> {
        let (pending, secret_nonce) = (&pending.enrollment, &pending.secret_nonce);
        let user_id = pending.user_id;
        let now = crate::domain::now();
        // The secret whose code was checked is the one enabled: a setup
        // that replaced it meanwhile (a new nonce) fails the condition.
        let update = Update::builder()
            .set_key(Some(enrollment_key(scope, user_id)))
            .update_expression("SET #status = :enabled, enabled_at = :now, last_step = :step REMOVE expires_at")
            .condition_expression("#status = :pending AND expires_at > :unix_now AND secret_nonce = :secret_nonce")
            .expression_attribute_values(":secret_nonce", AttributeValue::B(Blob::new(secret_nonce.clone())))
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":enabled", s(MfaState::Enabled.as_str()))
            .expression_attribute_values(":pending", s(MfaState::Pending.as_str()))
            .expression_attribute_values(":now", s(crate::domain::rfc3339(now)))
            .expression_attribute_values(":unix_now", n(now.timestamp()))
            .expression_attribute_values(":step", n(step));
        let mut tx = Tx::new();
        tx.update(update, Some(MFA_NOT_PENDING));
        if let Some(id) = challenge_id {
            tx.delete(
                Delete::builder().set_key(Some(challenge_key(scope, id))).condition_expression("attribute_exists(PK)"),
                Some(CHALLENGE_GONE),
            );
        }
        let mut enabled = pending.clone();
        enabled.status = MfaState::Enabled;
        enabled.enabled_at = Some(now);
        enabled.last_step = Some(step);
        let view = enabled.view();
        let change = Change { action: "mfa_enabled", ..Change::created(RESOURCE, user_id, &view) };
        tx.audit(scope, audit, change, self.audit_retention(scope).await?);
        tx.commit(self).await?;
        Ok(view)
    }

    /// A sign-in challenge and its audit entry.
    pub async fn create_mfa_challenge(
        &self,
        scope: &TenantScope,
        challenge: &MfaChallenge,
        audit: &AuditContext,
    ) -> AppResult<()> {
        let mut item = to_item(challenge)?;
        item.extend(challenge_key(scope, challenge.id));
        let change = Change {
            action: "mfa_challenge_issued",
            resource_type: "user",
            resource_id: challenge.user_id.to_string(),
            old_values: json!({}),
            new_values: json!({
                "purpose": challenge.purpose,
                "challenge_id": challenge.id,
                "expires_at": chrono::DateTime::from_timestamp(challenge.expires_at, 0).map(crate::domain::rfc3339),
            }),
        };
        let mut tx = Tx::new();
        tx.put_new(item, Cond::UNIQUE_ID).audit(scope, audit, change, self.audit_retention(scope).await?);
        tx.commit(self).await.map_err(|e| e.into_app_error("mfa challenge"))
    }

    /// The challenge a presented `mfa_token` names (not yet verified: the
    /// caller compares the token's hash, see `CredentialLookup::verified`).
    pub async fn mfa_challenge_for_token(
        &self,
        lookup: &CredentialLookup,
        challenge_id: Uuid,
    ) -> AppResult<Option<MfaChallenge>> {
        self.get_as(challenge_key(&lookup.lookup_scope(), challenge_id)).await
    }

    /// Takes one of the challenge's attempts before a code is checked, so
    /// concurrent guesses get [`MAX_CHALLENGE_ATTEMPTS`] in all. Answers
    /// the attempts taken, or `None` when the challenge is used up,
    /// expired or gone.
    pub async fn take_challenge_attempt(&self, scope: &TenantScope, challenge_id: Uuid) -> AppResult<Option<i64>> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(challenge_key(scope, challenge_id)))
            .update_expression("ADD attempts :one")
            .condition_expression("attribute_exists(PK) AND attempts < :max AND expires_at > :now")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":max", n(MAX_CHALLENGE_ATTEMPTS))
            .expression_attribute_values(":now", n(chrono::Utc::now().timestamp()))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await;
        match result {
            Ok(output) => Ok(Some(output.attributes.as_ref().map_or(0, |item| number_attr(item, "attempts")))),
            Err(err) if condition_failed(&err) => Ok(None),
            Err(err) => Err(err.into()),
        }
    }

    /// A wrong code: its audit entry, and the challenge deleted when that
    /// was its last attempt.
    pub async fn fail_mfa_challenge(
        &self,
        scope: &TenantScope,
        challenge: &MfaChallenge,
        attempts: i64,
        kind: CodeKind,
        audit: &AuditContext,
    ) -> AppResult<()> {
        let burnt = attempts >= MAX_CHALLENGE_ATTEMPTS;
        let change = Change {
            action: "mfa_challenge_failed",
            resource_type: "user",
            resource_id: challenge.user_id.to_string(),
            old_values: json!({}),
            new_values: json!({
                "purpose": challenge.purpose,
                "challenge_id": challenge.id,
                "method": kind,
                "attempts": attempts,
                "challenge_burnt": burnt,
            }),
        };
        let mut tx = Tx::new();
        if burnt {
            tx.delete(Delete::builder().set_key(Some(challenge_key(scope, challenge.id))), None);
        }
        tx.audit(scope, audit, change, self.audit_retention(scope).await?);
        tx.commit(self).await.map_err(|e| e.into_app_error("mfa challenge"))
    }

    /// A sign-in challenge passed: the code spent and the challenge deleted
    /// in one transaction, so neither works twice.
    pub async fn pass_mfa_challenge(
        &self,
        scope: &TenantScope,
        challenge: &MfaChallenge,
        proof: &CodeProof,
        backup_codes_remaining: usize,
        audit: &AuditContext,
    ) -> Result<(), MfaError> {
        let mut tx = Tx::new();
        tx.update(spend_update(scope, challenge.user_id, proof, None), Some(CODE_USED));
        tx.delete(
            Delete::builder()
                .set_key(Some(challenge_key(scope, challenge.id)))
                .condition_expression("attribute_exists(PK)"),
            Some(CHALLENGE_GONE),
        );
        let retention = self.audit_retention(scope).await?;
        let change = Change {
            action: "mfa_challenge_passed",
            resource_type: "user",
            resource_id: challenge.user_id.to_string(),
            old_values: json!({}),
            new_values: json!({"purpose": challenge.purpose, "challenge_id": challenge.id, "method": proof.kind()}),
        };
        tx.audit(scope, audit, change, retention);
        if let CodeProof::BackupCode(_) = proof {
            tx.audit(scope, audit, backup_code_used(challenge.user_id, backup_codes_remaining), retention);
        }
        Ok(tx.commit(self).await?)
    }

    /// Turns MFA off, spending the fresh code that asked for it.
    pub async fn disable_mfa(
        &self,
        scope: &TenantScope,
        current: &MfaEnrollment,
        proof: &CodeProof,
        audit: &AuditContext,
    ) -> Result<(), MfaError> {
        let Spend { condition, names, values, .. } = proof.spend();
        let mut delete =
            Delete::builder().set_key(Some(enrollment_key(scope, current.user_id))).condition_expression(condition);
        for (name, attribute) in names {
            delete = delete.expression_attribute_names(name, attribute);
        }
        for (name, value) in values {
            delete = delete.expression_attribute_values(name, value);
        }
        let mut tx = Tx::new();
        tx.delete(delete, Some(CODE_USED));
        let mut change = Change::deleted(RESOURCE, current.user_id, current.view());
        change.action = "mfa_disabled";
        change.new_values = json!({"method": proof.kind()});
        tx.audit(scope, audit, change, self.audit_retention(scope).await?);
        Ok(tx.commit(self).await?)
    }

    /// Removes a member's MFA (enabled or pending) for an admin, with its
    /// audit entry; `false` when the member has none.
    pub async fn reset_mfa(&self, scope: &TenantScope, user_id: Uuid, audit: &AuditContext) -> AppResult<bool> {
        let Some(current) = self.get_mfa(scope, user_id).await? else { return Ok(false) };
        let delete = Delete::builder()
            .set_key(Some(enrollment_key(scope, user_id)))
            .condition_expression("attribute_exists(PK)");
        let mut change = Change::deleted(RESOURCE, user_id, current.enrollment.view());
        change.action = "mfa_reset";
        change.new_values = json!({"by": "admin"});
        let mut tx = Tx::new();
        tx.delete(delete, Some(MFA_GONE));
        tx.audit(scope, audit, change, self.audit_retention(scope).await?);
        match tx.commit(self).await {
            Ok(()) => Ok(true),
            Err(TxError::Condition(MFA_GONE)) => Ok(false),
            Err(e) => Err(e.into_app_error("mfa reset")),
        }
    }

    /// Replaces every backup code with a new set, spending the fresh code
    /// that asked for it.
    pub async fn replace_backup_codes(
        &self,
        scope: &TenantScope,
        user_id: Uuid,
        proof: &CodeProof,
        hashes: &[String],
        audit: &AuditContext,
    ) -> Result<(), MfaError> {
        let codes: HashMap<String, AttributeValue> = hashes.iter().map(|h| (h.clone(), n(1))).collect();
        let mut tx = Tx::new();
        tx.update(spend_update(scope, user_id, proof, Some(AttributeValue::M(codes))), Some(CODE_USED));
        let change = Change {
            action: "backup_codes_regenerated",
            resource_type: RESOURCE,
            resource_id: user_id.to_string(),
            old_values: json!({}),
            new_values: json!({"backup_codes_remaining": hashes.len(), "method": proof.kind()}),
        };
        tx.audit(scope, audit, change, self.audit_retention(scope).await?);
        Ok(tx.commit(self).await?)
    }
}

/// The update that spends `proof` on the user's enrolment (and, with
/// `new_codes`, replaces the backup codes: the spent one goes with them).
fn spend_update(
    scope: &TenantScope,
    user_id: Uuid,
    proof: &CodeProof,
    new_codes: Option<AttributeValue>,
) -> aws_sdk_dynamodb::types::builders::UpdateBuilder {
    let Spend { condition, update: spend, names, values } = proof.spend();
    let expression = match (&new_codes, proof) {
        (None, _) => spend.to_owned(),
        (Some(_), CodeProof::Step(_)) => format!("{spend}, backup_codes = :codes"),
        (Some(_), CodeProof::BackupCode(_)) => "SET backup_codes = :codes".to_owned(),
    };
    let mut update = Update::builder()
        .set_key(Some(enrollment_key(scope, user_id)))
        .update_expression(expression)
        .condition_expression(condition);
    for (name, attribute) in names {
        update = update.expression_attribute_names(name, attribute);
    }
    for (name, value) in values {
        update = update.expression_attribute_values(name, value);
    }
    if let Some(codes) = new_codes {
        update = update.expression_attribute_values(":codes", codes);
    }
    update
}

fn backup_code_used(user_id: Uuid, remaining: usize) -> Change {
    Change {
        action: "backup_code_used",
        resource_type: RESOURCE,
        resource_id: user_id.to_string(),
        old_values: json!({}),
        new_values: json!({"backup_codes_remaining": remaining, "at": now_rfc3339()}),
    }
}
