//! Tenant items, slug claims, the all-tenants index (GSI1) and the children
//! index (GSI2).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Update};
use serde_json::{Value, json};
use uuid::Uuid;

use super::{
    Item, Store, from_item, n, number_attr, s, to_attribute, to_item,
    tx::{Cond, Tx, TxError},
};
use crate::{
    auth::{PlatformAdmin, Role, TenantScope},
    domain::audit::{AuditContext, Change, retention_days_of},
    domain::{
        tenant::{Tenant, TenantChanges},
        user::User,
    },
    error::{AppError, AppResult},
    events::{
        Event,
        catalogue::{TenantActivated, TenantDeleted, TenantUpdated},
    },
    store::PageRequest,
};

pub const TENANT_SK: &str = "TENANT";
pub(crate) const ALL_TENANTS: &str = "TENANTS";
const MAX_HIERARCHY_DEPTH: usize = 16;

pub(crate) fn slug_key(slug: &str) -> Item {
    HashMap::from([("PK".into(), s(format!("SLUG#{slug}"))), ("SK".into(), s("SLUG"))])
}

pub(crate) fn tenant_key(scope: &TenantScope) -> Item {
    HashMap::from([("PK".into(), s(scope.pk())), ("SK".into(), s(TENANT_SK))])
}

/// Counters kept on the tenant item, updated in the same transaction as the
/// change they count.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TenantUsage {
    /// Seats: users plus pending invitations (what the users quota limits).
    pub user_count: i64,
    pub pending_invitations: i64,
    pub project_count: i64,
    pub users_by_role: Vec<(Role, i64)>,
    pub last_user_added: Option<String>,
}

pub(crate) fn usage_from(item: &Item) -> TenantUsage {
    TenantUsage {
        user_count: number_attr(item, "user_count"),
        pending_invitations: number_attr(item, "pending_invitations"),
        project_count: number_attr(item, "project_count"),
        users_by_role: Role::ALL.iter().map(|r| (*r, number_attr(item, &role_counter(*r)))).collect(),
        last_user_added: item.get("last_user_added").and_then(|v| v.as_s().ok()).cloned(),
    }
}

pub(crate) fn role_counter(role: Role) -> String {
    format!("users_{}", role.as_str())
}

/// Why a tenant could not be created.
#[derive(Debug)]
pub enum CreateTenantError {
    SlugTaken,
    ParentMissing,
    EmailTaken,
    Other(AppError),
}

impl From<AppError> for CreateTenantError {
    fn from(e: AppError) -> Self {
        CreateTenantError::Other(e)
    }
}

/// The first member of a new tenant, created in the same transaction.
pub struct FirstMember<'a> {
    pub user: &'a User,
    pub password_hash: &'a str,
}

const SLUG_TAKEN: Cond = Cond("slug_taken");
const PARENT_MISSING: Cond = Cond("parent_missing");
const EMAIL_TAKEN: Cond = Cond("email_taken");
/// The tenant item changed since it was read (optimistic updates).
const TENANT_CHANGED: Cond = Cond("tenant_changed");
const NOT_PROVISIONING: Cond = Cond("not_provisioning");
const INVITATION_EXISTS: Cond = Cond("invitation_exists");

impl Store {
    /// Creates the tenant (in `scope`, a [`crate::auth::proofs::NewTenant`]),
    /// claims its slug and, when given, its first member with their email
    /// claim, and emits `tenant.created`: all or nothing, so concurrent
    /// creates of one slug (or one email) let exactly one through. `parent`
    /// is the scope of `tenant.parent_id`, which must exist.
    pub async fn create_tenant(
        &self,
        scope: &TenantScope,
        tenant: &Tenant,
        parent: Option<&TenantScope>,
        member: Option<FirstMember<'_>>,
        audit: &AuditContext,
    ) -> Result<(), CreateTenantError> {
        let mut item = to_item(tenant)?;
        item.extend(tenant_key(scope));
        item.insert("GSI1PK".into(), s(ALL_TENANTS));
        item.insert("GSI1SK".into(), s(tenant.id.to_string()));
        if let Some(parent) = tenant.parent_id {
            item.insert("GSI2PK".into(), s(format!("PARENT#{parent}")));
            item.insert("GSI2SK".into(), s(tenant.id.to_string()));
        }
        item.insert("user_count".into(), n(i64::from(member.is_some())));
        for role in Role::ALL {
            let count = member.as_ref().is_some_and(|m| m.user.role == role);
            item.insert(role_counter(role), n(i64::from(count)));
        }
        if let Some(m) = &member {
            item.insert("last_user_added".into(), s(crate::domain::rfc3339(m.user.created_at)));
        }

        let mut claim = slug_key(&tenant.slug);
        claim.insert("tenant_id".into(), s(tenant.id.to_string()));
        let mut tx = Tx::new();
        tx.put_new(claim, SLUG_TAKEN).put_new(item, Cond::UNIQUE_ID);
        if let Some(parent) = parent {
            tx.check(
                ConditionCheck::builder()
                    .set_key(Some(tenant_key(parent)))
                    .condition_expression("attribute_exists(PK)"),
                PARENT_MISSING,
            );
        }
        let retention = retention_days_of(&tenant.configuration);
        tx.audit(scope, audit, Change::created("tenant", tenant.id, tenant.view()), retention);
        if let Some(m) = &member {
            let (claim, user_item) = self.user_items(scope, m.user, m.password_hash)?;
            tx.put_new(claim, EMAIL_TAKEN).put_new(user_item, Cond::UNIQUE_ID);
            tx.audit(scope, audit, Change::created("user", m.user.id, m.user.view()), retention);
            tx.emit(scope, m.user.created_event(if tenant.status == "active" { "seed" } else { "registration" }));
        }
        tx.emit(scope, tenant.created_event());
        match tx.commit(self).await {
            Ok(()) => Ok(()),
            Err(TxError::Condition(SLUG_TAKEN)) => Err(CreateTenantError::SlugTaken),
            Err(TxError::Condition(PARENT_MISSING)) => Err(CreateTenantError::ParentMissing),
            Err(TxError::Condition(EMAIL_TAKEN)) => Err(CreateTenantError::EmailTaken),
            Err(other) => Err(CreateTenantError::Other(other.into_app_error("tenant"))),
        }
    }

    pub async fn get_tenant(&self, scope: &TenantScope) -> AppResult<Option<(Tenant, TenantUsage)>> {
        match self.get_item(tenant_key(scope)).await? {
            Some(item) => {
                let usage = usage_from(&item);
                Ok(Some((from_item(item)?, usage)))
            }
            None => Ok(None),
        }
    }

    /// All tenants (GSI1), or the children of `parent_id` (GSI2), newest last,
    /// optionally filtered by status and type.
    pub async fn list_tenants(
        &self,
        _proof: &PlatformAdmin,
        status: Option<&str>,
        tenant_type: Option<&str>,
        parent_id: Option<Uuid>,
        page: &PageRequest,
    ) -> AppResult<(Vec<Tenant>, Option<String>)> {
        let (index, pk_name, sk_name, pk) = match parent_id {
            Some(parent) => ("GSI2", "GSI2PK", "GSI2SK", format!("PARENT#{parent}")),
            None => ("GSI1", "GSI1PK", "GSI1SK", ALL_TENANTS.to_owned()),
        };
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(index)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", pk_name)
            .expression_attribute_values(":pk", s(&pk));
        let query = super::filter_equal(query, &[("status", status.map(s)), ("type", tenant_type.map(s))], &[]);
        let context = format!("tenants|{pk}|{}|{}", status.unwrap_or(""), tenant_type.unwrap_or(""));
        let (items, cursor) = self.query_page(query, page, &context, &[pk_name, sk_name, "PK", "SK"]).await?;
        let tenants: Vec<Tenant> = super::decode_listed(items);
        Ok((tenants, cursor))
    }

    /// Applies a validated partial update; `None` when the tenant is missing.
    /// Read, then write under a condition on `updated_at` with the audit entry
    /// and `tenant.updated` in the same transaction: a concurrent update makes
    /// us re-read and retry, so the entry's old values are exactly what this
    /// change replaced. A new parent needs the platform admin's proof (the
    /// hierarchy crosses tenants).
    pub async fn update_tenant(
        &self,
        scope: &TenantScope,
        changes: &TenantChanges,
        admin: Option<&PlatformAdmin>,
        audit: &AuditContext,
    ) -> AppResult<Option<Tenant>> {
        if let Some(parent) = changes.new_parent {
            let admin = admin.ok_or_else(|| {
                AppError::internal(anyhow::anyhow!("a parent change without the platform admin's proof"))
            })?;
            self.check_new_parent(scope, admin, parent).await?;
        }
        for _ in 0..OPTIMISTIC_RETRIES {
            let Some((old, _)) = self.get_tenant(scope).await? else { return Ok(None) };
            let now = crate::domain::now();
            let mut new_json = old.to_stored_json();
            for (field, value) in &changes.set {
                new_json[*field] = value.clone();
            }
            for field in &changes.remove {
                new_json[*field] = Value::Null;
            }
            new_json["updated_at"] = json!(crate::domain::rfc3339(now));
            let new: Tenant = serde_json::from_value(new_json).map_err(AppError::internal)?;

            let mut update = Update::builder()
                .set_key(Some(tenant_key(scope)))
                .condition_expression("#updated_at = :expected")
                .expression_attribute_names("#updated_at", "updated_at")
                .expression_attribute_values(":updated_at", s(crate::domain::rfc3339(now)))
                .expression_attribute_values(":expected", s(crate::domain::rfc3339(old.updated_at)));
            let mut sets = vec!["#updated_at = :updated_at".to_owned()];
            for (i, (field, value)) in changes.set.iter().enumerate() {
                update = update
                    .expression_attribute_names(format!("#f{i}"), *field)
                    .expression_attribute_values(format!(":v{i}"), to_attribute(value)?);
                sets.push(format!("#f{i} = :v{i}"));
            }
            let mut removes: Vec<String> = Vec::new();
            for (i, field) in changes.remove.iter().enumerate() {
                update = update.expression_attribute_names(format!("#r{i}"), *field);
                removes.push(format!("#r{i}"));
            }
            if let Some(parent) = changes.new_parent {
                update = update
                    .expression_attribute_names("#gsi2pk", "GSI2PK")
                    .expression_attribute_names("#gsi2sk", "GSI2SK")
                    .expression_attribute_values(":gsi2pk", s(format!("PARENT#{parent}")))
                    .expression_attribute_values(":gsi2sk", s(scope.tenant_id().to_string()));
                sets.push("#gsi2pk = :gsi2pk".into());
                sets.push("#gsi2sk = :gsi2sk".into());
            } else if changes.remove.contains(&"parent_id") {
                update = update
                    .expression_attribute_names("#gsi2pk", "GSI2PK")
                    .expression_attribute_names("#gsi2sk", "GSI2SK");
                removes.push("#gsi2pk".into());
                removes.push("#gsi2sk".into());
            }
            let mut expression = format!("SET {}", sets.join(", "));
            if !removes.is_empty() {
                expression.push_str(&format!(" REMOVE {}", removes.join(", ")));
            }
            let mut tx = Tx::new();
            tx.update(update.update_expression(expression), Some(TENANT_CHANGED));
            let retention = retention_days_of(&new.configuration);
            tx.audit(scope, audit, Change::updated("tenant", old.id, old.view(), new.view()), retention);
            let changed = changes.set.iter().map(|(f, _)| *f).chain(changes.remove.iter().copied());
            tx.emit(
                scope,
                Event::TenantUpdated(TenantUpdated {
                    tenant_id: new.id,
                    changed_fields: changed.map(str::to_owned).collect(),
                    updated_by: Some(audit.actor.id.clone()),
                }),
            );
            match tx.commit(self).await {
                Ok(()) => {
                    // This process enforces a new plan's rate limit at once;
                    // others within the cache's TTL.
                    crate::domain::rate_limit::remember_policy(
                        new.id,
                        crate::domain::rate_limit::TenantPolicy::of(&new),
                    );
                    return Ok(Some(new));
                }
                Err(TxError::Condition(TENANT_CHANGED) | TxError::Conflict) => continue,
                Err(other) => return Err(other.into_app_error("tenant")),
            }
        }
        Err(AppError::conflict("the tenant is being changed by another request; try again"))
    }

    /// A new parent must exist and must not sit below the tenant itself.
    async fn check_new_parent(&self, scope: &TenantScope, admin: &PlatformAdmin, parent: Uuid) -> AppResult<()> {
        let mut current = Some(parent);
        for _ in 0..MAX_HIERARCHY_DEPTH {
            let Some(id) = current else { return Ok(()) };
            if id == scope.tenant_id() {
                return Err(AppError::invalid_field("parent_id", "would make the tenant its own ancestor"));
            }
            match self.get_tenant(&admin.scope_of(id)).await? {
                Some((tenant, _)) => current = tenant.parent_id,
                None if id == parent => {
                    return Err(AppError::not_found("parent tenant")
                        .with_details(serde_json::json!({"resource": "parent tenant", "field": "parent_id"})));
                }
                None => return Ok(()),
            }
        }
        Err(AppError::invalid_field("parent_id", "the hierarchy would be deeper than 16 levels"))
    }

    /// Soft delete (seed 002): the tenant becomes inactive, its data and its
    /// children stay; `tenant.deleted` is emitted. Returns false when there is
    /// no such tenant.
    pub async fn deactivate_tenant(&self, scope: &TenantScope, audit: &AuditContext) -> AppResult<bool> {
        for _ in 0..OPTIMISTIC_RETRIES {
            let Some((old, _)) = self.get_tenant(scope).await? else { return Ok(false) };
            let update = Update::builder()
                .set_key(Some(tenant_key(scope)))
                .update_expression("SET #status = :inactive, updated_at = :now")
                .condition_expression("#status = :old")
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":inactive", s("inactive"))
                .expression_attribute_values(":old", s(&old.status))
                .expression_attribute_values(":now", s(crate::domain::now_rfc3339()));
            let change = Change {
                action: "delete",
                resource_type: "tenant",
                resource_id: old.id.to_string(),
                old_values: json!({"status": old.status}),
                new_values: json!({"status": "inactive"}),
            };
            let mut tx = Tx::new();
            tx.update(update, Some(TENANT_CHANGED));
            tx.audit(scope, audit, change, retention_days_of(&old.configuration));
            tx.emit(
                scope,
                Event::TenantDeleted(TenantDeleted {
                    tenant_id: old.id,
                    deleted_by: Some(audit.actor.id.clone()),
                    soft_delete: true,
                }),
            );
            match tx.commit(self).await {
                Ok(()) => {
                    let mut inactive = old;
                    inactive.status = "inactive".into();
                    crate::domain::rate_limit::remember_policy(
                        inactive.id,
                        crate::domain::rate_limit::TenantPolicy::of(&inactive),
                    );
                    return Ok(true);
                }
                Err(TxError::Condition(TENANT_CHANGED) | TxError::Conflict) => continue,
                Err(other) => return Err(other.into_app_error("tenant")),
            }
        }
        Err(AppError::conflict("the tenant is being changed by another request; try again"))
    }

    /// The provisioner's one change: `provisioning` -> `active`, with the admin
    /// invitation (if any) and `tenant.activated` in the same transaction.
    /// Returns false when the tenant was not provisioning any more (a
    /// redelivered message).
    pub async fn complete_provisioning(
        &self,
        scope: &TenantScope,
        tenant: &Tenant,
        invitation: Option<Item>,
        audit: &AuditContext,
    ) -> AppResult<bool> {
        let now = crate::domain::now_rfc3339();
        let activate = Update::builder()
            .set_key(Some(tenant_key(scope)))
            // The admin's invitation takes a seat like any other.
            .update_expression(
                "SET #status = :active, updated_at = :now, onboarding = :onboarding \
                 ADD user_count :seat, pending_invitations :seat",
            )
            .condition_expression("#status = :provisioning")
            .expression_attribute_values(":seat", n(i64::from(invitation.is_some())))
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":active", s("active"))
            .expression_attribute_values(":provisioning", s("provisioning"))
            .expression_attribute_values(":now", s(&now))
            .expression_attribute_values(
                ":onboarding",
                AttributeValue::M(HashMap::from([
                    ("admin_invitation_sent".to_owned(), AttributeValue::Bool(invitation.is_some())),
                    ("provisioned_at".to_owned(), s(&now)),
                ])),
            );
        let change = Change {
            action: "update",
            resource_type: "tenant",
            resource_id: tenant.id.to_string(),
            old_values: json!({"status": "provisioning"}),
            new_values: json!({"status": "active"}),
        };
        let mut tx = Tx::new();
        tx.update(activate, Some(NOT_PROVISIONING));
        tx.audit(scope, audit, change, retention_days_of(&tenant.configuration));
        let invited = invitation.is_some();
        if let Some(mut item) = invitation {
            item.insert("PK".into(), s(scope.pk()));
            tx.put_new(item, INVITATION_EXISTS);
        }
        tx.emit(
            scope,
            Event::TenantActivated(TenantActivated {
                tenant_id: tenant.id,
                slug: tenant.slug.clone(),
                admin_invitation_sent: invited,
            }),
        );
        match tx.commit(self).await {
            Ok(()) => Ok(true),
            Err(TxError::Condition(NOT_PROVISIONING | INVITATION_EXISTS)) => Ok(false),
            Err(other) => Err(other.into_app_error("tenant")),
        }
    }
}

/// How often a read-then-conditional-write is retried after losing a race.
const OPTIMISTIC_RETRIES: usize = 3;
