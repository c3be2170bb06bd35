//! Users and the email claims that make an address unique across the platform
//! (a login names only an email, so it must lead to exactly one account).

use std::collections::HashMap;

use uuid::Uuid;

use super::{
    Item, Store, from_item, s,
    tenants::{CreateTenantError, FirstMember},
};
use crate::{
    auth::{
        TenantScope,
        proofs::{EmailClaim, NewTenant},
    },
    domain::{audit::AuditContext, tenant::Tenant, user::User},
    error::{AppError, AppResult},
};

pub(crate) fn email_key(email: &str) -> Item {
    HashMap::from([("PK".into(), s(format!("EMAIL#{}", email.to_ascii_lowercase()))), ("SK".into(), s("EMAIL"))])
}

pub(crate) fn user_key(scope: &TenantScope, user_id: Uuid) -> Item {
    HashMap::from([("PK".into(), s(scope.pk())), ("SK".into(), s(format!("USER#{user_id}")))])
}

/// What `?search=` matches: email and names, lowercased.
pub(crate) fn search_text(user: &User) -> String {
    format!("{} {} {}", user.email, user.first_name, user.last_name).to_lowercase()
}

impl Store {
    /// The email claim and the user item for a new user.
    pub(crate) fn user_items(&self, scope: &TenantScope, user: &User, password_hash: &str) -> AppResult<(Item, Item)> {
        let mut claim = email_key(&user.email);
        claim.insert("tenant_id".into(), s(user.tenant_id.to_string()));
        claim.insert("user_id".into(), s(user.id.to_string()));
        let mut item = super::to_item(user)?;
        item.extend(user_key(scope, user.id));
        item.insert("password_hash".into(), s(password_hash));
        item.insert("search_text".into(), s(search_text(user)));
        Ok((claim, item))
    }

    /// Where an email's account lives, as our own index says.
    pub async fn find_email_owner(&self, email: &str) -> AppResult<Option<EmailClaim>> {
        let output = self.client.get_item().table_name(&self.table).set_key(Some(email_key(email))).send().await?;
        let Some(item) = output.item else {
            return Ok(None);
        };
        let id = |name: &str| {
            item.get(name)
                .and_then(|v| v.as_s().ok())
                .and_then(|v| Uuid::parse_str(v).ok())
                .ok_or_else(|| AppError::internal(anyhow::anyhow!("email claim without {name}")))
        };
        Ok(Some(EmailClaim::read(id("tenant_id")?, id("user_id")?)))
    }

    /// The user and their password hash (which only the auth flow reads).
    pub async fn get_user_with_secret(&self, scope: &TenantScope, user_id: Uuid) -> AppResult<Option<(User, String)>> {
        let Some(mut item) = self.get_item(user_key(scope, user_id)).await? else {
            return Ok(None);
        };
        let hash = item.remove("password_hash").and_then(|v| v.as_s().ok().cloned()).unwrap_or_default();
        Ok(Some((from_item(item)?, hash)))
    }

    /// The users with these ids that exist (without their password hashes).
    pub async fn users_by_ids(&self, scope: &TenantScope, ids: &[Uuid]) -> AppResult<Vec<User>> {
        self.all_at(ids.iter().map(|id| user_key(scope, *id)).collect(), &["password_hash"]).await
    }

    pub async fn get_user(&self, scope: &TenantScope, user_id: Uuid) -> AppResult<Option<User>> {
        Ok(self.get_user_with_secret(scope, user_id).await?.map(|(user, _)| user))
    }

    pub async fn record_login(&self, scope: &TenantScope, user_id: Uuid) -> AppResult<()> {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(user_key(scope, user_id)))
            .update_expression("SET last_login = :now")
            .condition_expression("attribute_exists(PK)")
            .expression_attribute_values(":now", s(crate::domain::now_rfc3339()))
            .send()
            .await?;
        Ok(())
    }

    /// Creates a tenant together with its owner (self-service sign-up and the
    /// platform admin's own tenant), in the scope of the new tenant's id; the
    /// transaction emits `tenant.created` and the owner's `user.created`.
    pub async fn create_tenant_with_owner(
        &self,
        tenant: &Tenant,
        owner: &User,
        password_hash: &str,
        audit: &AuditContext,
    ) -> Result<(), CreateTenantError> {
        let scope = NewTenant::scope(tenant.id);
        self.create_tenant(&scope, tenant, None, Some(FirstMember { user: owner, password_hash }), audit).await
    }
}
