//! Managing the people of a tenant: users and their invitations. Every change
//! is one transaction with its audit entry and the tenant's counters:
//! `user_count` (seats: users plus pending invitations, the figure the users
//! quota limits), `users_<role>` and `pending_invitations`. The last owner is
//! protected by a condition on `users_owner`, not by a prior count.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Delete, TransactWriteItem, Update};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use super::{
    Item, Store, failed_conditions, from_item, n, s,
    tenants::{put_new, role_counter, tenant_key},
    users::{email_key, user_key},
};
use crate::{
    audit::{AuditContext, Change},
    auth::{Role, TenantScope},
    domain::{
        plans::{Quota, effective_limits},
        tenant::Tenant,
        user::User,
    },
    error::{AppError, AppResult},
    http::PageRequest,
};

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

/// A validated partial update of a user.
#[derive(Debug, Default, Clone)]
pub struct UserChanges {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub role: Option<Role>,
    pub is_active: Option<bool>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Invitation {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub email: String,
    pub role: Role,
    pub status: String,
    pub invited_by: Option<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: i64,
}

impl Invitation {
    pub fn to_body(&self) -> Value {
        json!({
            "id": self.id, "email": self.email, "role": self.role, "status": self.status,
            "invited_by": self.invited_by, "created_at": self.created_at,
            "expires_at": DateTime::from_timestamp(self.expires_at, 0).map(crate::domain::rfc3339),
        })
    }
}

fn invitation_key(scope: &TenantScope, email: &str) -> Item {
    HashMap::from([("PK".into(), s(scope.pk())), ("SK".into(), s(format!("INVITATION#{email}")))])
}

fn write<T>(build: Result<T, aws_sdk_dynamodb::error::BuildError>) -> AppResult<T> {
    build.map_err(AppError::internal)
}

/// Counter changes on the tenant item for a change of users by role; with
/// `keep_an_owner`, refused (condition) if no owner would be left.
fn role_counters(
    store: &Store,
    scope: &TenantScope,
    deltas: &[(Role, i64)],
    extra: &[(&str, i64)],
    keep_an_owner: bool,
) -> AppResult<TransactWriteItem> {
    let mut adds = Vec::new();
    let mut update = Update::builder().table_name(&store.table).set_key(Some(tenant_key(scope)));
    let all: Vec<(String, i64)> = deltas
        .iter()
        .map(|(r, d)| (role_counter(*r), *d))
        .chain(extra.iter().map(|(c, d)| ((*c).to_owned(), *d)))
        .collect();
    for (i, (counter, delta)) in all.iter().enumerate() {
        adds.push(format!("#c{i} :d{i}"));
        update = update
            .expression_attribute_names(format!("#c{i}"), counter)
            .expression_attribute_values(format!(":d{i}"), n(*delta));
    }
    update = update.update_expression(format!("ADD {}", adds.join(", ")));
    update = if keep_an_owner {
        update
            .condition_expression("attribute_exists(PK) AND #owners > :one")
            .expression_attribute_names("#owners", role_counter(Role::Owner))
            .expression_attribute_values(":one", n(1))
    } else {
        update.condition_expression("attribute_exists(PK)")
    };
    Ok(TransactWriteItem::builder().update(write(update.build())?).build())
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
        let (claim, item) = self.user_items(user, password_hash)?;
        let limit = Quota::Users.limit(&effective_limits(tenant));
        let retention = self.audit_retention(scope).await?;
        let writes = vec![
            put_new(self, claim)?,
            put_new(self, item)?,
            self.quota_change(scope, Quota::Users, 1, limit, &[(&role_counter(user.role), 1)])?,
            self.audit_put(scope, audit, Change::created("user", user.id, user.to_body()), retention)?,
        ];
        match self.client.transact_write_items().set_transact_items(Some(writes)).send().await {
            Ok(_) => Ok(()),
            Err(err) => match failed_conditions(&err) {
                Some(f) if f.first() == Some(&true) => Err(MemberError::EmailTaken(user.email.clone())),
                Some(f) if f.get(2) == Some(&true) => Err(MemberError::QuotaExceeded),
                _ => Err(MemberError::Other(err.into())),
            },
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
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("PK = :pk AND begins_with(SK, :prefix)")
            .expression_attribute_values(":pk", s(scope.pk()))
            .expression_attribute_values(":prefix", s("USER#"));
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
        let (items, cursor) = self.query_page(query, page, &context, &["PK", "SK"]).await?;
        Ok((items.into_iter().map(from_item).collect::<AppResult<Vec<User>>>()?, cursor))
    }

    /// Applies `changes` to a user; `Ok(None)` when there is no such user.
    /// The caller has checked who may do it; the store guards the last owner.
    pub async fn update_user(
        &self,
        scope: &TenantScope,
        user_id: Uuid,
        changes: &UserChanges,
        audit: &AuditContext,
    ) -> Result<Option<User>, MemberError> {
        for _ in 0..3 {
            let Some(old) = self.get_user(scope, user_id).await? else { return Ok(None) };
            let mut new = old.clone();
            new.first_name = changes.first_name.clone().unwrap_or(new.first_name);
            new.last_name = changes.last_name.clone().unwrap_or(new.last_name);
            new.role = changes.role.unwrap_or(new.role);
            new.is_active = changes.is_active.unwrap_or(new.is_active);
            new.updated_at = crate::domain::now();
            let update = Update::builder()
                .table_name(&self.table)
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
            let mut writes = vec![TransactWriteItem::builder().update(write(update.build())?).build()];
            let losing_an_owner =
                old.role == Role::Owner && old.is_active && (new.role != Role::Owner || !new.is_active);
            if old.role != new.role || losing_an_owner {
                let deltas: Vec<(Role, i64)> =
                    if old.role != new.role { vec![(old.role, -1), (new.role, 1)] } else { vec![] };
                // Deactivating an owner keeps the role but must not strand the tenant.
                let deltas = if deltas.is_empty() { vec![(Role::Owner, 0)] } else { deltas };
                writes.push(role_counters(self, scope, &deltas, &[], losing_an_owner)?);
            }
            let retention = self.audit_retention(scope).await?;
            writes.push(self.audit_put(
                scope,
                audit,
                Change::updated("user", user_id, old.to_body(), new.to_body()),
                retention,
            )?);
            match self.client.transact_write_items().set_transact_items(Some(writes)).send().await {
                Ok(_) => return Ok(Some(new)),
                Err(err) => match failed_conditions(&err) {
                    Some(f) if f.first() == Some(&true) => continue,
                    Some(f) if f.get(1) == Some(&true) => return Err(MemberError::LastOwner),
                    _ => return Err(MemberError::Other(err.into())),
                },
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
        let delete_user = write(
            Delete::builder()
                .table_name(&self.table)
                .set_key(Some(user_key(scope, user_id)))
                .condition_expression("attribute_exists(PK)")
                .build(),
        )?;
        let delete_claim =
            write(Delete::builder().table_name(&self.table).set_key(Some(email_key(&old.email))).build())?;
        let retention = self.audit_retention(scope).await?;
        let writes = vec![
            TransactWriteItem::builder().delete(delete_user).build(),
            role_counters(self, scope, &[(old.role, -1)], &[("user_count", -1)], old.role == Role::Owner)?,
            TransactWriteItem::builder().delete(delete_claim).build(),
            self.audit_put(scope, audit, Change::deleted("user", user_id, old.to_body()), retention)?,
        ];
        match self.client.transact_write_items().set_transact_items(Some(writes)).send().await {
            Ok(_) => Ok(true),
            Err(err) => match failed_conditions(&err) {
                Some(f) if f.first() == Some(&true) => Ok(false),
                Some(f) if f.get(1) == Some(&true) => Err(MemberError::LastOwner),
                _ => Err(MemberError::Other(err.into())),
            },
        }
    }

    /// Pending invitations for `emails`, all or none: each email must be free
    /// and not already invited, and together they must fit the users quota.
    /// `token_hashes[i]` is the SHA-256 of the one-time token of `emails[i]`.
    pub async fn create_invitations(
        &self,
        scope: &TenantScope,
        tenant: &Tenant,
        emails: &[String],
        token_hashes: &[String],
        role: Role,
        audit: &AuditContext,
    ) -> Result<Vec<Invitation>, MemberError> {
        let now = crate::domain::now();
        let retention = self.audit_retention(scope).await?;
        let mut writes = Vec::new();
        let mut invitations = Vec::new();
        for (email, hash) in emails.iter().zip(token_hashes) {
            let invitation = Invitation {
                id: Uuid::now_v7(),
                tenant_id: scope.tenant_id(),
                email: email.clone(),
                role,
                status: "pending".into(),
                invited_by: audit.user_id().map(str::to_owned),
                created_at: now,
                expires_at: now.timestamp() + INVITATION_TTL_SECONDS,
            };
            let mut item = super::to_item(&invitation)?;
            item.extend(invitation_key(scope, email));
            item.insert("token_hash".into(), s(hash));
            writes.push(
                TransactWriteItem::builder()
                    .condition_check(write(
                        ConditionCheck::builder()
                            .table_name(&self.table)
                            .set_key(Some(email_key(email)))
                            .condition_expression("attribute_not_exists(PK)")
                            .build(),
                    )?)
                    .build(),
            );
            writes.push(put_new(self, item)?);
            invitations.push(invitation);
        }
        let count = emails.len() as i64;
        let limit = Quota::Users.limit(&effective_limits(tenant));
        let quota_index = writes.len();
        writes.push(self.quota_change(scope, Quota::Users, count, limit, &[("pending_invitations", count)])?);
        for invitation in &invitations {
            let change = Change::created("invitation", invitation.id, invitation.to_body());
            writes.push(self.audit_put(scope, audit, change, retention)?);
        }
        match self.client.transact_write_items().set_transact_items(Some(writes)).send().await {
            Ok(_) => Ok(invitations),
            Err(err) => match failed_conditions(&err) {
                Some(f) if f.get(quota_index) == Some(&true) => Err(MemberError::QuotaExceeded),
                Some(f) => {
                    let first = f.iter().position(|x| *x).unwrap_or(0);
                    let email = emails.get(first / 2).cloned().unwrap_or_default();
                    Err(if first % 2 == 0 {
                        MemberError::EmailTaken(email)
                    } else {
                        MemberError::AlreadyInvited(email)
                    })
                }
                None => Err(MemberError::Other(err.into())),
            },
        }
    }

    pub async fn list_invitations(&self, scope: &TenantScope) -> AppResult<Vec<Invitation>> {
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("PK = :pk AND begins_with(SK, :prefix)")
            .expression_attribute_values(":pk", s(scope.pk()))
            .expression_attribute_values(":prefix", s("INVITATION#"))
            .limit(100)
            .send()
            .await?;
        output.items.unwrap_or_default().into_iter().map(from_item).collect()
    }

    /// A fresh one-time token (and validity) for a pending invitation: how an
    /// admin re-sends one, or issues the first token of the admin invitation
    /// the provisioner recorded. `None` when there is no such invitation.
    pub async fn reissue_invitation(
        &self,
        scope: &TenantScope,
        email: &str,
        token_hash: &str,
        audit: &AuditContext,
    ) -> Result<Option<Invitation>, MemberError> {
        let Some(old) = self.get_invitation(scope, email).await? else { return Ok(None) };
        let mut new = old.clone();
        new.expires_at = Utc::now().timestamp() + INVITATION_TTL_SECONDS;
        let update = write(
            Update::builder()
                .table_name(&self.table)
                .set_key(Some(invitation_key(scope, email)))
                .update_expression("SET token_hash = :hash, expires_at = :expires")
                .condition_expression("attribute_exists(PK)")
                .expression_attribute_values(":hash", s(token_hash))
                .expression_attribute_values(":expires", n(new.expires_at))
                .build(),
        )?;
        let retention = self.audit_retention(scope).await?;
        let change = Change::updated("invitation", old.id, old.to_body(), new.to_body());
        let writes =
            vec![TransactWriteItem::builder().update(update).build(), self.audit_put(scope, audit, change, retention)?];
        match self.client.transact_write_items().set_transact_items(Some(writes)).send().await {
            Ok(_) => Ok(Some(new)),
            Err(err) if failed_conditions(&err).is_some_and(|f| f.first() == Some(&true)) => Ok(None),
            Err(err) => Err(MemberError::Other(err.into())),
        }
    }

    /// Withdraws a pending invitation and frees its seat.
    pub async fn revoke_invitation(
        &self,
        scope: &TenantScope,
        email: &str,
        audit: &AuditContext,
    ) -> Result<bool, MemberError> {
        let Some(old) = self.get_invitation(scope, email).await? else { return Ok(false) };
        let delete = write(
            Delete::builder()
                .table_name(&self.table)
                .set_key(Some(invitation_key(scope, email)))
                .condition_expression("attribute_exists(PK)")
                .build(),
        )?;
        let retention = self.audit_retention(scope).await?;
        let writes = vec![
            TransactWriteItem::builder().delete(delete).build(),
            role_counters(self, scope, &[], &[("user_count", -1), ("pending_invitations", -1)], false)?,
            self.audit_put(scope, audit, Change::deleted("invitation", old.id, old.to_body()), retention)?,
        ];
        match self.client.transact_write_items().set_transact_items(Some(writes)).send().await {
            Ok(_) => Ok(true),
            Err(err) if failed_conditions(&err).is_some_and(|f| f.first() == Some(&true)) => Ok(false),
            Err(err) => Err(MemberError::Other(err.into())),
        }
    }

    async fn get_invitation(&self, scope: &TenantScope, email: &str) -> AppResult<Option<Invitation>> {
        self.get_as(invitation_key(scope, email)).await
    }

    /// Turns a pending invitation into an active user: the seat was taken at
    /// invitation time, so only the role counter moves.
    pub async fn accept_invitation(
        &self,
        scope: &TenantScope,
        email: &str,
        token_hash: &str,
        user: &mut User,
        password_hash: &str,
    ) -> Result<(), MemberError> {
        let Some(item) = self.get_item(invitation_key(scope, email)).await? else {
            return Err(MemberError::InvalidInvitation);
        };
        let stored_hash = item.get("token_hash").and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
        let invitation: Invitation = from_item(item)?;
        let fresh = invitation.expires_at > Utc::now().timestamp();
        if invitation.status != "pending" || !fresh || stored_hash.is_empty() || stored_hash != token_hash {
            return Err(MemberError::InvalidInvitation);
        }
        user.role = invitation.role;
        let (claim, user_item) = self.user_items(user, password_hash)?;
        let consume = write(
            Delete::builder()
                .table_name(&self.table)
                .set_key(Some(invitation_key(scope, email)))
                .condition_expression("token_hash = :hash")
                .expression_attribute_values(":hash", s(token_hash))
                .build(),
        )?;
        let retention = self.audit_retention(scope).await?;
        let audit = AuditContext::user(user.id, Some(user.email.clone()), &Default::default());
        let writes = vec![
            TransactWriteItem::builder().delete(consume).build(),
            put_new(self, claim)?,
            put_new(self, user_item)?,
            role_counters(self, scope, &[(user.role, 1)], &[("pending_invitations", -1)], false)?,
            self.audit_put(scope, &audit, Change::created("user", user.id, user.to_body()), retention)?,
        ];
        match self.client.transact_write_items().set_transact_items(Some(writes)).send().await {
            Ok(_) => Ok(()),
            Err(err) => match failed_conditions(&err) {
                Some(f) if f.first() == Some(&true) => Err(MemberError::InvalidInvitation),
                Some(f) if f.get(1) == Some(&true) => Err(MemberError::EmailTaken(user.email.clone())),
                _ => Err(MemberError::Other(err.into())),
            },
        }
    }
}

/// How long an invitation stays valid.
pub const INVITATION_TTL_SECONDS: i64 = 7 * 24 * 3600;

/// An invitation written outside a request (the provisioner's admin
/// invitation): same item shape, no token until one is issued.
pub fn invitation_item(tenant_id: Uuid, email: &str, role: Role, invited_by: Option<String>) -> AppResult<Item> {
    let now = crate::domain::now();
    let invitation = Invitation {
        id: Uuid::now_v7(),
        tenant_id,
        email: email.to_ascii_lowercase(),
        role,
        status: "pending".into(),
        invited_by,
        created_at: now,
        expires_at: now.timestamp() + INVITATION_TTL_SECONDS,
    };
    let mut item = super::to_item(&invitation)?;
    item.insert("SK".into(), s(format!("INVITATION#{}", invitation.email)));
    Ok(item)
}
