//! Managing the people of a tenant: users and their invitations. Every change
//! is one [`Tx`] with its audit entry, its `user.*` event and the tenant's
//! counters: `user_count` (seats: users plus pending invitations, the figure
//! the users quota limits), `users_<role>` and `pending_invitations`. The last
//! owner is protected by a condition on `users_owner`, not by a prior count.
//!
//! | item | PK | SK |
//! |---|---|---|
//! | user (`store::users`) | `T#<tenant>#` | `USER#<id>` |
//! | email claim (`store::users`) | `EMAIL#<address>` | `EMAIL` |
//! | invitation | `T#<tenant>#` | `INVITATION#<address>` (`token_hash`: SHA-256 of its one-time token) |
//!
//! | change | conditions (by name) | event |
//! |---|---|---|
//! | [`Store::create_user`] | `email_taken`, `quota_full` | `user.created` (`via: "api"`) |
//! | [`Store::create_invitations`] | `email_taken`, `already_invited`, `quota_full` | `user.invited`, one each |
//! | [`Store::update_user`] | `user_changed` (re-read, retry), `last_owner` | `user.updated` |
//! | [`Store::delete_user`] | `user_missing`, `last_owner` | `user.deleted` |
//! | [`Store::reissue_invitation`], [`Store::revoke_invitation`] | `invitation_missing` | none |
//! | [`Store::accept_invitation`] | `invitation_used`, `email_taken`, `tenant_unusable` | `user.created` (`via: "invitation"`) |

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Delete, Update};
use chrono::Utc;
use uuid::Uuid;

use super::{
    Item, PageRequest, Store, from_item, n,
    quota::{QUOTA_FULL, TENANT_MISSING, quota_change, tenant_counters},
    s,
    tenants::role_counter,
    tx::{Cond, Tx, TxError},
    users::{email_key, user_key},
};
use crate::{
    auth::{Role, TenantScope, proofs::CredentialLookup},
    domain::{
        audit::{AuditContext, Change, retention_days_of},
        plans::{Quota, effective_limits},
        tenant::Tenant,
        user::{INVITATION_TTL_SECONDS, Invitation, User, UserChanges},
        values::Email,
    },
    error::{AppError, AppResult},
};

/// The address already has an account (its email claim exists).
const EMAIL_TAKEN: Cond = Cond("email_taken");
/// The address already has a pending invitation in this tenant.
const ALREADY_INVITED: Cond = Cond("already_invited");
/// The change would leave the tenant without an owner.
const LAST_OWNER: Cond = Cond("last_owner");
/// The user changed since it was read (optimistic update: re-read, retry).
const USER_CHANGED: Cond = Cond("user_changed");
const USER_MISSING: Cond = Cond("user_missing");
const INVITATION_MISSING: Cond = Cond("invitation_missing");
/// The invitation's token is no longer the one presented (accepted, or
/// reissued, meanwhile).
const INVITATION_USED: Cond = Cond("invitation_used");
/// The tenant is inactive or suspended: it takes no new members.
const TENANT_UNUSABLE: Cond = Cond("tenant_unusable");

/// How often a read-then-conditional-write is retried after losing a race.
const OPTIMISTIC_RETRIES: usize = 3;

/// Why a change to users was refused.
#[derive(Debug)]
pub enum MemberError {
    EmailTaken(String),
    AlreadyInvited(String),
    QuotaExceeded,
    LastOwner,
    InvalidInvitation,
    Other(AppError),
}

impl From<AppError> for MemberError {
    fn from(e: AppError) -> Self {
        MemberError::Other(e)
    }
}

/// The refusals every change of users shares; each change matches its own
/// conditions before this.
impl From<TxError> for MemberError {
    fn from(err: TxError) -> Self {
        match err {
            TxError::Condition(QUOTA_FULL) => MemberError::QuotaExceeded,
            TxError::Condition(LAST_OWNER) => MemberError::LastOwner,
            other => MemberError::Other(other.into_app_error("users")),
        }
    }
}

fn invitation_key(scope: &TenantScope, email: &str) -> Item {
    HashMap::from([("PK".into(), s(scope.pk())), ("SK".into(), s(format!("INVITATION#{email}")))])
}

/// What a change of the tenant's user counters must leave true.
#[derive(Debug, Clone, Copy)]
enum Keep {
    /// The tenant exists.
    Tenant,
    /// An owner is left (an owner is demoted, deactivated or deleted).
    AnOwner,
    /// The tenant takes members: neither inactive nor suspended.
    UsableTenant,
}

/// Adds to `tx` the counter changes on the tenant item for a change of users
/// by role, under the condition `keep` names.
fn role_counters(tx: &mut Tx, scope: &TenantScope, deltas: &[(Role, i64)], extra: &[(&str, i64)], keep: Keep) {
    let counters: Vec<(String, i64)> = deltas
        .iter()
        .map(|(role, delta)| (role_counter(*role), *delta))
        .chain(extra.iter().map(|(counter, delta)| ((*counter).to_owned(), *delta)))
        .collect();
    let (update, expression) = tenant_counters(scope, &counters);
    let update = update.update_expression(expression);
    match keep {
        Keep::Tenant => tx.update(update.condition_expression("attribute_exists(PK)"), Some(TENANT_MISSING)),
        Keep::AnOwner => tx.update(
            update
                .condition_expression("attribute_exists(PK) AND #owners > :one")
                .expression_attribute_names("#owners", role_counter(Role::Owner))
                .expression_attribute_values(":one", n(1)),
            Some(LAST_OWNER),
        ),
        Keep::UsableTenant => tx.update(
            update
                .condition_expression("attribute_exists(PK) AND #status <> :inactive AND #status <> :suspended")
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":inactive", s("inactive"))
                .expression_attribute_values(":suspended", s("suspended")),
            Some(TENANT_UNUSABLE),
        ),
    };
}

impl Store {
    /// A user created directly by an admin (seed 003), taking one seat.
    pub async fn create_user(
        &self,
        scope: &TenantScope,
        tenant: &Tenant,
        user: &User,
        password_hash: &str,
        audit: &AuditContext,
    ) -> Result<(), MemberError> {
        let (claim, item) = self.user_items(scope, user, password_hash)?;
        let limit = Quota::Users.limit(&effective_limits(tenant));
        let mut tx = Tx::new();
        tx.put_new(claim, EMAIL_TAKEN).put_new(item, Cond::UNIQUE_ID);
        quota_change(&mut tx, scope, Quota::Users, 1, limit, &[(&role_counter(user.role), 1)]);
        let retention = retention_days_of(&tenant.configuration);
        tx.audit(scope, audit, Change::created("user", user.id, user.view()), retention);
        tx.emit(scope, user.created_event("api"));
        match tx.commit(self).await {
            Ok(()) => Ok(()),
            Err(TxError::Condition(EMAIL_TAKEN)) => Err(MemberError::EmailTaken(user.email.clone())),
            Err(err) => Err(err.into()),
        }
    }

    /// Users of the tenant, filtered by role, active flag and a search on
    /// email and names.
    pub async fn list_users(
        &self,
        scope: &TenantScope,
        role: Option<Role>,
        is_active: Option<bool>,
        search: Option<&str>,
        page: &PageRequest,
    ) -> AppResult<(Vec<User>, Option<String>)> {
        let mut query = self.prefix_query(scope, "USER#");
        let needle = search.map(str::to_lowercase);
        let mut extra = Vec::new();
        if let Some(needle) = &needle {
            extra.push("contains(search_text, :search)");
            query = query.expression_attribute_values(":search", s(needle));
        }
        let query = super::filter_equal(
            query,
            &[("role", role.map(|r| s(r.as_str()))), ("is_active", is_active.map(AttributeValue::Bool))],
            &extra,
        );
        let context = format!(
            "users|{}|{}|{}|{}",
            scope.pk(),
            role.map(Role::as_str).unwrap_or(""),
            is_active.map(|a| a.to_string()).unwrap_or_default(),
            needle.unwrap_or_default()
        );
        self.list_page(query, page, &context).await
    }

    /// Applies `changes` to a user; `Ok(None)` when there is no such user.
    /// The caller has checked who may do it; the store guards the last owner.
    /// Read, then write under a condition on `updated_at`: a concurrent
    /// change makes us re-read and retry, so the audit entry's old values are
    /// exactly what this change replaced.
    pub async fn update_user(
        &self,
        scope: &TenantScope,
        user_id: Uuid,
        changes: &UserChanges,
        audit: &AuditContext,
    ) -> Result<Option<User>, MemberError> {
        let retention = self.audit_retention(scope).await?;
        for _ in 0..OPTIMISTIC_RETRIES {
            let Some(old) = self.get_user(scope, user_id).await? else { return Ok(None) };
            let new = changes.apply(&old, crate::domain::now());
            let update = Update::builder()
                .set_key(Some(user_key(scope, user_id)))
                .update_expression(
                    "SET first_name = :first, last_name = :last, #role = :role, is_active = :active, \
                     updated_at = :now, search_text = :search",
                )
                .condition_expression("updated_at = :expected")
                .expression_attribute_names("#role", "role")
                .expression_attribute_values(":first", s(&new.first_name))
                .expression_attribute_values(":last", s(&new.last_name))
                .expression_attribute_values(":role", s(new.role.as_str()))
                .expression_attribute_values(":active", AttributeValue::Bool(new.is_active))
                .expression_attribute_values(":now", s(crate::domain::rfc3339(new.updated_at)))
                .expression_attribute_values(":search", s(super::users::search_text(&new)))
                .expression_attribute_values(":expected", s(crate::domain::rfc3339(old.updated_at)));
            let mut tx = Tx::new();
            tx.update(update, Some(USER_CHANGED));
            let losing_an_owner =
                old.role == Role::Owner && old.is_active && (new.role != Role::Owner || !new.is_active);
            if old.role != new.role {
                let keep = if losing_an_owner { Keep::AnOwner } else { Keep::Tenant };
                role_counters(&mut tx, scope, &[(old.role, -1), (new.role, 1)], &[], keep);
            } else if losing_an_owner {
                // Deactivating an owner keeps the role but must not strand the tenant.
                role_counters(&mut tx, scope, &[(Role::Owner, 0)], &[], Keep::AnOwner);
            }
            tx.audit(scope, audit, Change::updated("user", user_id, old.view(), new.view()), retention);
            tx.emit(scope, new.updated_event());
            let outcome = tx.commit(self).await;
            super::standing::forget_standing(user_id);
            match outcome {
                Ok(()) => return Ok(Some(new)),
                Err(TxError::Condition(USER_CHANGED) | TxError::Conflict) => continue,
                Err(err) => return Err(err.into()),
            }
        }
        Err(MemberError::Other(AppError::conflict("the user is being changed by another request; try again")))
    }

    /// Removes a user and frees their seat and email. Returns false when
    /// there is no such user.
    pub async fn delete_user(
        &self,
        scope: &TenantScope,
        user_id: Uuid,
        audit: &AuditContext,
    ) -> Result<bool, MemberError> {
        let Some(old) = self.get_user(scope, user_id).await? else { return Ok(false) };
        let retention = self.audit_retention(scope).await?;
        let mut tx = Tx::new();
        tx.delete(
            Delete::builder().set_key(Some(user_key(scope, user_id))).condition_expression("attribute_exists(PK)"),
            Some(USER_MISSING),
        );
        let keep = if old.role == Role::Owner { Keep::AnOwner } else { Keep::Tenant };
        role_counters(&mut tx, scope, &[(old.role, -1)], &[("user_count", -1)], keep);
        tx.delete(Delete::builder().set_key(Some(email_key(&old.email))), None);
        // Their MFA secret and backup codes go with them (nothing else
        // would ever read them again, and a secret should not outlive its
        // owner's account).
        tx.delete(Delete::builder().set_key(Some(super::mfa::enrollment_key(scope, user_id))), None);
        tx.audit(scope, audit, Change::deleted("user", user_id, old.view()), retention);
        tx.emit(scope, old.deleted_event());
        let outcome = tx.commit(self).await;
        super::standing::forget_standing(user_id);
        match outcome {
            Ok(()) => Ok(true),
            Err(TxError::Condition(USER_MISSING)) => Ok(false),
            Err(err) => Err(err.into()),
        }
    }

    /// Pending invitations for `emails`, all or none: each email must be free
    /// and not already invited, and together they must fit the users quota.
    /// `token_hashes[i]` is the SHA-256 of the one-time token of `emails[i]`.
    /// Each invitation takes four items of the transaction (the email check,
    /// the invitation, its audit entry and its `user.invited`), plus one for
    /// the seats.
    pub async fn create_invitations(
        &self,
        scope: &TenantScope,
        tenant: &Tenant,
        emails: &[Email],
        token_hashes: &[String],
        role: Role,
        audit: &AuditContext,
    ) -> Result<Vec<Invitation>, MemberError> {
        let now = crate::domain::now();
        let mut tx = Tx::new();
        let mut invitations = Vec::with_capacity(emails.len());
        for (email, hash) in emails.iter().zip(token_hashes) {
            let invitation =
                Invitation::new(scope.tenant_id(), email.as_str(), role, audit.user_id().map(str::to_owned), now);
            let mut item = super::to_item(&invitation)?;
            item.extend(invitation_key(scope, &invitation.email));
            item.insert("token_hash".into(), s(hash));
            tx.check(
                ConditionCheck::builder()
                    .set_key(Some(email_key(&invitation.email)))
                    .condition_expression("attribute_not_exists(PK)"),
                EMAIL_TAKEN,
            );
            tx.put_new(item, ALREADY_INVITED);
            invitations.push(invitation);
        }
        let count = emails.len() as i64;
        let limit = Quota::Users.limit(&effective_limits(tenant));
        quota_change(&mut tx, scope, Quota::Users, count, limit, &[("pending_invitations", count)]);
        let retention = retention_days_of(&tenant.configuration);
        for invitation in &invitations {
            tx.audit(scope, audit, Change::created("invitation", invitation.id, invitation.view()), retention);
            tx.emit(scope, invitation.invited_event());
        }
        match tx.commit(self).await {
            Ok(()) => Ok(invitations),
            Err(TxError::Condition(cond @ (EMAIL_TAKEN | ALREADY_INVITED))) => {
                Err(self.first_refused_email(scope, emails, cond).await)
            }
            Err(err) => Err(err.into()),
        }
    }

    /// Which address a refused invitation batch stumbled on: the transaction
    /// names the first failed condition, not its address, and no address
    /// before that one failed either, so the first of `emails` whose item
    /// that condition checked exists is the one.
    async fn first_refused_email(&self, scope: &TenantScope, emails: &[Email], cond: Cond) -> MemberError {
        for email in emails {
            let email = email.as_str();
            let key = if cond == EMAIL_TAKEN { email_key(email) } else { invitation_key(scope, email) };
            match self.get_item(key).await {
                Ok(Some(_)) if cond == EMAIL_TAKEN => return MemberError::EmailTaken(email.to_owned()),
                Ok(Some(_)) => return MemberError::AlreadyInvited(email.to_owned()),
                Ok(None) => {}
                Err(e) => return MemberError::Other(e),
            }
        }
        // Gone again since the transaction failed.
        MemberError::Other(AppError::conflict("the invited addresses changed meanwhile; try again"))
    }

    /// The tenant's pending invitations by address, one page.
    pub async fn list_invitations(
        &self,
        scope: &TenantScope,
        page: &PageRequest,
    ) -> AppResult<(Vec<Invitation>, Option<String>)> {
        let query = self.prefix_query(scope, "INVITATION#").consistent_read(true);
        let context = format!("invitations|{}", scope.pk());
        self.list_page(query, page, &context).await
    }

    /// A fresh one-time token (and validity) for a pending invitation: how an
    /// admin re-sends one, or issues the first token of the admin invitation
    /// the provisioner recorded. `None` when there is no such invitation.
    pub async fn reissue_invitation(
        &self,
        scope: &TenantScope,
        email: &Email,
        token_hash: &str,
        audit: &AuditContext,
    ) -> Result<Option<Invitation>, MemberError> {
        let email = email.as_str();
        let Some(old) = self.get_invitation(scope, email).await? else { return Ok(None) };
        let new = Invitation { expires_at: Utc::now().timestamp() + INVITATION_TTL_SECONDS, ..old.clone() };
        let update = Update::builder()
            .set_key(Some(invitation_key(scope, email)))
            .update_expression("SET token_hash = :hash, expires_at = :expires")
            .condition_expression("attribute_exists(PK)")
            .expression_attribute_values(":hash", s(token_hash))
            .expression_attribute_values(":expires", n(new.expires_at));
        let retention = self.audit_retention(scope).await?;
        let mut tx = Tx::new();
        tx.update(update, Some(INVITATION_MISSING));
        tx.audit(scope, audit, Change::updated("invitation", old.id, old.view(), new.view()), retention);
        match tx.commit(self).await {
            Ok(()) => Ok(Some(new)),
            Err(TxError::Condition(INVITATION_MISSING)) => Ok(None),
            Err(err) => Err(err.into()),
        }
    }

    /// Withdraws a pending invitation and frees its seat.
    pub async fn revoke_invitation(
        &self,
        scope: &TenantScope,
        email: &Email,
        audit: &AuditContext,
    ) -> Result<bool, MemberError> {
        let email = email.as_str();
        let Some(old) = self.get_invitation(scope, email).await? else { return Ok(false) };
        let retention = self.audit_retention(scope).await?;
        let mut tx = Tx::new();
        tx.delete(
            Delete::builder().set_key(Some(invitation_key(scope, email))).condition_expression("attribute_exists(PK)"),
            Some(INVITATION_MISSING),
        );
        role_counters(&mut tx, scope, &[], &[("user_count", -1), ("pending_invitations", -1)], Keep::Tenant);
        tx.audit(scope, audit, Change::deleted("invitation", old.id, old.view()), retention);
        match tx.commit(self).await {
            Ok(()) => Ok(true),
            Err(TxError::Condition(INVITATION_MISSING)) => Ok(false),
            Err(err) => Err(err.into()),
        }
    }

    async fn get_invitation(&self, scope: &TenantScope, email: &str) -> AppResult<Option<Invitation>> {
        self.get_as(invitation_key(scope, email)).await
    }

    /// Turns a pending invitation into an active user, signed up with
    /// `user`'s names and `password_hash` and the invited role: the seat was
    /// taken at invitation time, so only the role counter moves. The lookup
    /// reads the invitation its token names; answers the tenant's scope once
    /// the presented token's hash matched the invitation's, it is still open
    /// and the tenant takes members. Anything else is
    /// [`MemberError::InvalidInvitation`] (or `EmailTaken`).
    pub async fn accept_invitation(
        &self,
        lookup: &CredentialLookup,
        email: &str,
        token_hash: &str,
        user: &mut User,
        password_hash: &str,
    ) -> Result<TenantScope, MemberError> {
        let Some(mut item) = self.get_item(invitation_key(&lookup.lookup_scope(), email)).await? else {
            return Err(MemberError::InvalidInvitation);
        };
        let stored_hash = item.remove("token_hash").and_then(|v| v.as_s().ok().cloned()).unwrap_or_default();
        let invitation: Invitation = from_item(item)?;
        // The provisioner's admin invitation has no token until one is issued.
        let verified = if stored_hash.is_empty() { None } else { lookup.verified(token_hash, &stored_hash) };
        let (Some(scope), true) = (verified, invitation.is_open(Utc::now())) else {
            return Err(MemberError::InvalidInvitation);
        };
        user.role = invitation.role;
        let (claim, user_item) = self.user_items(&scope, user, password_hash)?;
        let retention = self.audit_retention(&scope).await?;
        let audit = AuditContext::user(user.id, Some(user.email.clone()), &Default::default());
        let mut tx = Tx::new();
        tx.delete(
            Delete::builder()
                .set_key(Some(invitation_key(&scope, email)))
                .condition_expression("token_hash = :hash")
                .expression_attribute_values(":hash", s(token_hash)),
            Some(INVITATION_USED),
        );
        tx.put_new(claim, EMAIL_TAKEN).put_new(user_item, Cond::UNIQUE_ID);
        role_counters(&mut tx, &scope, &[(user.role, 1)], &[("pending_invitations", -1)], Keep::UsableTenant);
        tx.audit(&scope, &audit, Change::created("user", user.id, user.view()), retention);
        tx.emit(&scope, user.created_event("invitation"));
        match tx.commit(self).await {
            Ok(()) => Ok(scope),
            Err(TxError::Condition(INVITATION_USED | TENANT_UNUSABLE)) => Err(MemberError::InvalidInvitation),
            Err(TxError::Condition(EMAIL_TAKEN)) => Err(MemberError::EmailTaken(user.email.clone())),
            Err(err) => Err(err.into()),
        }
    }
}

/// An invitation written outside a request (the provisioner's admin
/// invitation): same item shape, no token until one is issued. The caller's
/// transaction adds the tenant's partition key.
pub fn invitation_item(tenant_id: Uuid, email: &str, role: Role, invited_by: Option<String>) -> AppResult<Item> {
    let invitation = Invitation::new(tenant_id, email, role, invited_by, crate::domain::now());
    let mut item = super::to_item(&invitation)?;
    item.insert("SK".into(), s(format!("INVITATION#{}", invitation.email)));
    Ok(item)
}
