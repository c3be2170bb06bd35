//! Tenant items, slug claims, the all-tenants index (GSI1) and the children
//! index (GSI2).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Delete, Put, TransactWriteItem, Update};
use uuid::Uuid;

use super::{Item, Store, failed_conditions, from_item, n, number_attr, s, to_attribute, to_item};
use serde_json::{Value, json};

use crate::{
    audit::{AuditContext, Change, entry_item, retention_days_of},
    auth::{PlatformAdmin, Role, TenantScope},
    domain::{
        tenant::{Tenant, TenantChanges},
        user::User,
    },
    error::{AppError, AppResult},
    http::PageRequest,
};

pub const TENANT_SK: &str = "TENANT";
const ALL_TENANTS: &str = "TENANTS";
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

fn usage_from(item: &Item) -> TenantUsage {
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

impl Store {
    /// Creates the tenant, claims its slug and, when given, its first member
    /// with their email claim: all or nothing, so concurrent creates of one
    /// slug (or one email) let exactly one through.
    pub async fn create_tenant(
        &self,
        tenant: &Tenant,
        member: Option<FirstMember<'_>>,
        audit: &AuditContext,
    ) -> Result<(), CreateTenantError> {
        let scope = TenantScope::trusted_internal(tenant.id);
        let mut item = to_item(tenant)?;
        item.extend(tenant_key(&scope));
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
        let mut writes = vec![put_new(self, claim)?, put_new(self, item)?];
        if tenant.status == "provisioning" {
            writes
                .push(put_new(self, provisioning_outbox_item(tenant.id, &crate::domain::rfc3339(tenant.created_at)))?);
        }
        let parent_index = tenant.parent_id.map(|parent| {
            writes.push(
                TransactWriteItem::builder()
                    .condition_check(
                        ConditionCheck::builder()
                            .table_name(&self.table)
                            .set_key(Some(tenant_key(&TenantScope::trusted_internal(parent))))
                            .condition_expression("attribute_exists(PK)")
                            .build()
                            .map_err(AppError::internal)?,
                    )
                    .build(),
            );
            Ok::<usize, AppError>(writes.len() - 1)
        });
        let parent_index = parent_index.transpose()?;
        let email_index = match &member {
            Some(m) => {
                let (claim, user_item) = self.user_items(m.user, m.password_hash)?;
                writes.push(put_new(self, claim)?);
                let idx = writes.len() - 1;
                writes.push(put_new(self, user_item)?);
                Some(idx)
            }
            None => None,
        };
        let retention = retention_days_of(&tenant.configuration);
        writes.push(self.audit_put(
            &scope,
            audit,
            Change::created("tenant", tenant.id, tenant.to_body()),
            retention,
        )?);
        if let Some(m) = &member {
            writes.push(self.audit_put(
                &scope,
                audit,
                Change::created("user", m.user.id, m.user.to_body()),
                retention,
            )?);
        }

        match self.client.transact_write_items().set_transact_items(Some(writes)).send().await {
            Ok(_) => Ok(()),
            Err(err) => match failed_conditions(&err) {
                Some(failed) if failed.first() == Some(&true) => Err(CreateTenantError::SlugTaken),
                Some(failed) if parent_index.is_some_and(|i| failed.get(i) == Some(&true)) => {
                    Err(CreateTenantError::ParentMissing)
                }
                Some(failed) if email_index.is_some_and(|i| failed.get(i) == Some(&true)) => {
                    Err(CreateTenantError::EmailTaken)
                }
                _ => Err(CreateTenantError::Other(err.into())),
            },
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
        let tenants = items.into_iter().map(from_item).collect::<AppResult<Vec<Tenant>>>()?;
        Ok((tenants, cursor))
    }

    /// Applies a validated partial update; `None` when the tenant is missing.
    /// Read, then write under a condition on `updated_at` with the audit entry
    /// in the same transaction: a concurrent update makes us re-read and retry,
    /// so the entry's old values are exactly what this change replaced.
    pub async fn update_tenant(
        &self,
        scope: &TenantScope,
        changes: &TenantChanges,
        audit: &AuditContext,
    ) -> AppResult<Option<Tenant>> {
        if let Some(parent) = changes.new_parent {
            self.check_new_parent(scope, parent).await?;
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

            let mut names = HashMap::new();
            let mut values = HashMap::new();
            let mut sets = vec!["#updated_at = :updated_at".to_owned()];
            names.insert("#updated_at".to_owned(), "updated_at".to_owned());
            values.insert(":updated_at".to_owned(), s(crate::domain::rfc3339(now)));
            values.insert(":expected".to_owned(), s(crate::domain::rfc3339(old.updated_at)));
            for (i, (field, value)) in changes.set.iter().enumerate() {
                names.insert(format!("#f{i}"), (*field).to_owned());
                values.insert(format!(":v{i}"), to_attribute(value)?);
                sets.push(format!("#f{i} = :v{i}"));
            }
            let mut removes: Vec<String> = Vec::new();
            for (i, field) in changes.remove.iter().enumerate() {
                names.insert(format!("#r{i}"), (*field).to_owned());
                removes.push(format!("#r{i}"));
            }
            if let Some(parent) = changes.new_parent {
                names.insert("#gsi2pk".into(), "GSI2PK".into());
                names.insert("#gsi2sk".into(), "GSI2SK".into());
                values.insert(":gsi2pk".into(), s(format!("PARENT#{parent}")));
                values.insert(":gsi2sk".into(), s(scope.tenant_id().to_string()));
                sets.push("#gsi2pk = :gsi2pk".into());
                sets.push("#gsi2sk = :gsi2sk".into());
            } else if changes.remove.contains(&"parent_id") {
                names.insert("#gsi2pk".into(), "GSI2PK".into());
                names.insert("#gsi2sk".into(), "GSI2SK".into());
                removes.push("#gsi2pk".into());
                removes.push("#gsi2sk".into());
            }
            let mut expression = format!("SET {}", sets.join(", "));
            if !removes.is_empty() {
                expression.push_str(&format!(" REMOVE {}", removes.join(", ")));
            }
            let update = Update::builder()
                .table_name(&self.table)
                .set_key(Some(tenant_key(scope)))
                .update_expression(expression)
                .condition_expression("#updated_at = :expected")
                .set_expression_attribute_names(Some(names))
                .set_expression_attribute_values(Some(values))
                .build()
                .map_err(AppError::internal)?;
            let retention = retention_days_of(&new.configuration);
            let entry = self.audit_put(
                scope,
                audit,
                Change::updated("tenant", old.id, old.to_body(), new.to_body()),
                retention,
            )?;
            let result = self
                .client
                .transact_write_items()
                .transact_items(TransactWriteItem::builder().update(update).build())
                .transact_items(entry)
                .send()
                .await;
            match result {
                Ok(_) => {
                    // This process enforces a new plan's rate limit at once;
                    // others within the cache's TTL.
                    crate::rate_limit::remember_policy(new.id, crate::rate_limit::TenantPolicy::of(&new));
                    return Ok(Some(new));
                }
                Err(err) if failed_conditions(&err).is_some_and(|f| f.first() == Some(&true)) => continue,
                Err(err) => return Err(err.into()),
            }
        }
        Err(AppError::conflict("the tenant is being changed by another request; try again"))
    }

    /// A new parent must exist and must not sit below the tenant itself.
    async fn check_new_parent(&self, scope: &TenantScope, parent: Uuid) -> AppResult<()> {
        let mut current = Some(parent);
        for _ in 0..MAX_HIERARCHY_DEPTH {
            let Some(id) = current else { return Ok(()) };
            if id == scope.tenant_id() {
                return Err(AppError::invalid_field("parent_id", "would make the tenant its own ancestor"));
            }
            match self.get_tenant(&TenantScope::trusted_internal(id)).await? {
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
    /// children stay. Returns false when there is no such tenant.
    pub async fn deactivate_tenant(&self, scope: &TenantScope, audit: &AuditContext) -> AppResult<bool> {
        for _ in 0..OPTIMISTIC_RETRIES {
            let Some((old, _)) = self.get_tenant(scope).await? else { return Ok(false) };
            let now = crate::domain::now_rfc3339();
            let update = Update::builder()
                .table_name(&self.table)
                .set_key(Some(tenant_key(scope)))
                .update_expression("SET #status = :inactive, updated_at = :now")
                .condition_expression("#status = :old")
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":inactive", s("inactive"))
                .expression_attribute_values(":old", s(&old.status))
                .expression_attribute_values(":now", s(&now))
                .build()
                .map_err(AppError::internal)?;
            let change = Change {
                action: "delete",
                resource_type: "tenant",
                resource_id: old.id.to_string(),
                old_values: json!({"status": old.status}),
                new_values: json!({"status": "inactive"}),
            };
            let entry = self.audit_put(scope, audit, change, retention_days_of(&old.configuration))?;
            let result = self
                .client
                .transact_write_items()
                .transact_items(TransactWriteItem::builder().update(update).build())
                .transact_items(entry)
                .send()
                .await;
            match result {
                Ok(_) => {
                    let mut inactive = old;
                    inactive.status = "inactive".into();
                    crate::rate_limit::remember_policy(inactive.id, crate::rate_limit::TenantPolicy::of(&inactive));
                    return Ok(true);
                }
                Err(err) if failed_conditions(&err).is_some_and(|f| f.first() == Some(&true)) => continue,
                Err(err) => return Err(err.into()),
            }
        }
        Err(AppError::conflict("the tenant is being changed by another request; try again"))
    }

    /// The provisioner's one change: `provisioning` -> `active`, with the admin
    /// invitation (if any) written in the same transaction. Returns false when
    /// the tenant was not provisioning any more (a redelivered message).
    pub async fn complete_provisioning(
        &self,
        tenant: &Tenant,
        invitation: Option<Item>,
        audit: &AuditContext,
    ) -> AppResult<bool> {
        let scope = &TenantScope::trusted_internal(tenant.id);
        let now = crate::domain::now_rfc3339();
        let activate = Update::builder()
            .table_name(&self.table)
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
            )
            .build()
            .map_err(AppError::internal)?;
        let done = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(provisioning_outbox_key(scope.tenant_id())))
            .build()
            .map_err(AppError::internal)?;
        let mut writes = vec![
            TransactWriteItem::builder().update(activate).build(),
            TransactWriteItem::builder().delete(done).build(),
        ];
        let change = Change {
            action: "update",
            resource_type: "tenant",
            resource_id: tenant.id.to_string(),
            old_values: json!({"status": "provisioning"}),
            new_values: json!({"status": "active"}),
        };
        writes.push(self.audit_put(scope, audit, change, retention_days_of(&tenant.configuration))?);
        if let Some(mut item) = invitation {
            item.insert("PK".into(), s(scope.pk()));
            writes.push(put_new(self, item)?);
        }
        match self.client.transact_write_items().set_transact_items(Some(writes)).send().await {
            Ok(_) => Ok(true),
            Err(err) if failed_conditions(&err).is_some_and(|f| f.iter().any(|x| *x)) => Ok(false),
            Err(err) => Err(err.into()),
        }
    }
}

/// Tenants waiting for provisioning, written with the tenant and deleted with
/// its activation: if `tenant.created` is lost between commit and publish (a
/// crash, an EventBridge outage), the provisioning sweep finds it here.
const PROVISIONING_OUTBOX: &str = "OUTBOX#tenant.created";

fn provisioning_outbox_key(tenant_id: Uuid) -> Item {
    HashMap::from([("PK".into(), s(PROVISIONING_OUTBOX)), ("SK".into(), s(tenant_id.to_string()))])
}

fn provisioning_outbox_item(tenant_id: Uuid, created_at: &str) -> Item {
    let mut item = provisioning_outbox_key(tenant_id);
    item.insert("created_at".into(), s(created_at));
    item
}

impl Store {
    /// Tenants still waiting for provisioning that were created before
    /// `created_before` (RFC 3339), oldest first, at most `limit`.
    pub async fn tenants_awaiting_provisioning(&self, created_before: &str, limit: i32) -> AppResult<Vec<Uuid>> {
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("PK = :pk")
            .filter_expression("created_at < :cutoff")
            .expression_attribute_values(":pk", s(PROVISIONING_OUTBOX))
            .expression_attribute_values(":cutoff", s(created_before))
            .limit(limit)
            .send()
            .await?;
        Ok(output
            .items()
            .iter()
            .filter_map(|item| item.get("SK").and_then(|v| v.as_s().ok()).and_then(|v| Uuid::parse_str(v).ok()))
            .collect())
    }
}

/// How often a read-then-conditional-write is retried after losing a race.
const OPTIMISTIC_RETRIES: usize = 3;

impl Store {
    /// The audit entry for `change`, as an item of the change's transaction.
    pub(crate) fn audit_put(
        &self,
        scope: &TenantScope,
        audit: &AuditContext,
        change: Change,
        retention_days: i64,
    ) -> AppResult<TransactWriteItem> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(entry_item(scope, audit, change, retention_days)))
            .build()
            .map_err(AppError::internal)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }
}

/// A Put that refuses to overwrite: uniqueness claims and new items.
pub(crate) fn put_new(store: &Store, item: Item) -> AppResult<TransactWriteItem> {
    Ok(TransactWriteItem::builder()
        .put(
            Put::builder()
                .table_name(&store.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(PK)")
                .build()
                .map_err(AppError::internal)?,
        )
        .build())
}
