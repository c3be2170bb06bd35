//! SSO connections, their sign-in states and the identities they link, in the table.
//!
//! | item | PK | SK | notes |
//! |---|---|---|---|
//! | connection | `T#<tenant>#` | `SSOCONN#<id>` | `domain::sso::Connection`; its secrets (client secret, certificate) sealed as one JSON (`secret_nonce`, `secret_sealed`: AES-256-GCM, crate::sealing) |
//! | sign-in state | `T#<tenant>#` | `SSOSTATE#<id>` | `token_hash` (SHA-256 of the state's secret), `connection_id`, `redirect_uri`, `nonce` (SAML: the AuthnRequest ID), `test`, the PKCE verifier sealed (`verifier_nonce`, `verifier_sealed`), `expires_at` (TTL); SAML: `relay_hash` (SHA-256 of the RelayState's secret), and once the ACS verified a response, `saml_claims` and `code_hash` (SHA-256 of the code it gave the browser) |
//! | SAML assertion seen | `T#<tenant>#` | `SAMLASSERTION#<connection>#<SHA-256 of the assertion ID>` | `expires_at` (TTL: the assertion's own NotOnOrAfter): an assertion signs in once |
//! | identity | `T#<tenant>#` | `SSOIDENTITY#<connection>#<SHA-256 of issuer and subject>` | `issuer`, `subject`, `user_id`: the member the IdP identity signs in as |
//!
//! | change | conditions (by name) | event |
//! |---|---|---|
//! | [`Store::create_connection`] | `unique_id` | none (audited) |
//! | [`Store::update_connection`] | `connection_changed` | none (audited) |
//! | [`Store::delete_connection`] | `connection_missing` | none (audited) |
//! | [`Store::create_sign_in_state`] | `connection_unusable` (gone, or inactive for a sign-in) | none |
//! | [`Store::consume_sign_in_state`] | one conditional DeleteItem: the hash matches and it has not expired, so a state is used once | none |
//! | [`Store::record_saml_assertion`] | `state_unusable` (answered, expired or gone), `assertion_replayed` | none |
//! | [`Store::provision_sso_member`] | `email_taken`, `identity_taken`, `quota_full` | `user.created` (`via: "sso"`) |
//! | [`Store::link_identity`] | `identity_taken`, `user_missing` | none (audited) |

use std::collections::HashMap;

use aws_sdk_dynamodb::{
    primitives::Blob,
    types::{AttributeValue, ConditionCheck, Delete, ReturnValue, Update},
};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{
    Item, PageRequest, Store, condition_failed, from_item, item_key as key, n,
    quota::{QUOTA_FULL, quota_change},
    s,
    tenants::role_counter,
    to_attribute, to_item,
    tx::{Cond, Tx, TxError},
    users::user_key,
};
use crate::{
    auth::{TenantScope, proofs::CredentialLookup},
    domain::{
        audit::{AuditContext, Change, retention_days_of},
        plans::{Quota, effective_limits},
        sso::{CONNECTION_RESOURCE, Connection, Identity, SamlRelay, SignInState, VerifiedClaims},
        tenant::Tenant,
        user::User,
    },
    error::{AppError, AppResult},
};

const CONNECTION_CHANGED: Cond = Cond("connection_changed");
const CONNECTION_MISSING: Cond = Cond("connection_missing");
/// A SAML state already answered by the ACS, expired or gone.
const STATE_UNUSABLE: Cond = Cond("state_unusable");
/// The SAML assertion ID was seen before on this connection.
const ASSERTION_REPLAYED: Cond = Cond("assertion_replayed");
/// The connection is gone, or (for a sign-in, not a test) inactive.
const CONNECTION_UNUSABLE: Cond = Cond("connection_unusable");
/// The address already has an account.
const EMAIL_TAKEN: Cond = Cond("email_taken");
/// The IdP identity is already linked (a concurrent first sign-in won).
const IDENTITY_TAKEN: Cond = Cond("identity_taken");
const USER_MISSING: Cond = Cond("user_missing");

/// Why a first sign-in could not create or link the member.
#[derive(Debug)]
pub enum LinkError {
    EmailTaken,
    IdentityTaken,
    QuotaExceeded,
    UserMissing,
    Other(AppError),
}

impl From<AppError> for LinkError {
    fn from(e: AppError) -> Self {
        LinkError::Other(e)
    }
}

impl From<TxError> for LinkError {
    fn from(err: TxError) -> Self {
        match err {
            TxError::Condition(EMAIL_TAKEN) => LinkError::EmailTaken,
            TxError::Condition(IDENTITY_TAKEN) | TxError::Conflict => LinkError::IdentityTaken,
            TxError::Condition(QUOTA_FULL) => LinkError::QuotaExceeded,
            TxError::Condition(USER_MISSING) => LinkError::UserMissing,
            other => LinkError::Other(other.into_app_error("sso identity")),
        }
    }
}

/// What a connection's secrets are sealed for (crate::sealing).
pub fn connection_secrets_context(scope: &TenantScope, id: Uuid) -> crate::sealing::SealContext {
    crate::sealing::SealContext::new("sso-connection-secrets-v1", &[&scope.pk(), &id.to_string()])
}

/// What a sign-in state's PKCE verifier is sealed for.
pub fn state_verifier_context(tenant_id: Uuid, state_id: Uuid) -> crate::sealing::SealContext {
    crate::sealing::SealContext::new("sso-state-verifier-v1", &[&format!("T#{tenant_id}#"), &state_id.to_string()])
}

fn connection_key(scope: &TenantScope, id: Uuid) -> Item {
    key(scope, format!("SSOCONN#{id}"))
}

fn state_key(scope: &TenantScope, id: Uuid) -> Item {
    key(scope, format!("SSOSTATE#{id}"))
}

/// Issuer and subject are the IdP's strings: hashed, so no delimiter in
/// them can make two identities share a key.
fn identity_key(scope: &TenantScope, connection_id: Uuid, issuer: &str, subject: &str) -> Item {
    let digest = Sha256::digest(format!("{}\n{issuer}\n{subject}", issuer.len()).as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    key(scope, format!("SSOIDENTITY#{connection_id}#{hex}"))
}

fn bytes(item: &Item, name: &str) -> Vec<u8> {
    item.get(name).and_then(|v| v.as_b().ok()).map(|b| b.as_ref().to_vec()).unwrap_or_default()
}

fn identity_item(scope: &TenantScope, identity: &Identity) -> AppResult<Item> {
    let mut item = to_item(identity)?;
    item.extend(identity_key(scope, identity.connection_id, &identity.issuer, &identity.subject));
    Ok(item)
}

/// A sealed value: (nonce, ciphertext).
pub type Sealed<'a> = (&'a [u8], &'a [u8]);

/// A used sign-in state: the tenant's scope (its hash matched), the state,
/// its sealed PKCE verifier (OIDC) and, for SAML, the hash of the code the
/// ACS gave the browser (absent until the ACS verified a response).
pub struct ConsumedState {
    pub scope: TenantScope,
    pub state: SignInState,
    pub verifier_nonce: Vec<u8>,
    pub verifier_sealed: Vec<u8>,
    pub saml_code_hash: Option<String>,
}

/// What recording a verified SAML assertion did.
#[derive(Debug, PartialEq, Eq)]
pub enum SamlRecorded {
    Recorded,
    /// The assertion ID signed someone in before (on this connection).
    Replayed,
    /// The state was answered already, expired or is gone.
    StateUsed,
}

fn assertion_key(scope: &TenantScope, connection_id: Uuid, assertion_id: &str) -> Item {
    let hex: String = Sha256::digest(assertion_id.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
    key(scope, format!("SAMLASSERTION#{connection_id}#{hex}"))
}

impl Store {
    pub async fn create_connection(
        &self,
        scope: &TenantScope,
        connection: &Connection,
        secrets: Sealed<'_>,
        audit: &AuditContext,
    ) -> AppResult<()> {
        let mut item = to_item(connection)?;
        item.extend(connection_key(scope, connection.id));
        item.insert("secret_nonce".into(), AttributeValue::B(Blob::new(secrets.0)));
        item.insert("secret_sealed".into(), AttributeValue::B(Blob::new(secrets.1)));
        let mut tx = Tx::new();
        tx.put_new(item, Cond::UNIQUE_ID);
        let change = Change::created(CONNECTION_RESOURCE, connection.id, connection.view());
        tx.audit(scope, audit, change, self.audit_retention(scope).await?);
        tx.commit(self).await.map_err(|e| e.into_app_error("sso connection"))
    }

    pub async fn get_connection(&self, scope: &TenantScope, id: Uuid) -> AppResult<Option<Connection>> {
        Ok(self.connection_with_secrets(scope, id).await?.map(|(c, _, _)| c))
    }

    /// The connection with its sealed secrets (nonce, ciphertext).
    pub async fn connection_with_secrets(
        &self,
        scope: &TenantScope,
        id: Uuid,
    ) -> AppResult<Option<(Connection, Vec<u8>, Vec<u8>)>> {
        let Some(item) = self.get_item(connection_key(scope, id)).await? else { return Ok(None) };
        let (nonce, sealed) = (bytes(&item, "secret_nonce"), bytes(&item, "secret_sealed"));
        Ok(Some((from_item(item)?, nonce, sealed)))
    }

    /// The tenant's connections in creation order, one page.
    pub async fn list_connections_page(
        &self,
        scope: &TenantScope,
        page: &PageRequest,
    ) -> AppResult<(Vec<Connection>, Option<String>)> {
        let query = self.prefix_query(scope, "SSOCONN#").consistent_read(true);
        let context = format!("sso-connections|{}", scope.pk());
        self.list_page(query, page, &context).await
    }

    /// The connections of the tenant a public sign-in names (initiate): only
    /// these items of that tenant are read, and nothing secret is answered.
    pub async fn connections_for_sign_in(&self, lookup: &CredentialLookup) -> AppResult<Vec<Connection>> {
        let scope = lookup.lookup_scope();
        let query = self.prefix_query(&scope, "SSOCONN#").consistent_read(true);
        Ok(super::decode_listed(self.query_all(query).await?))
    }

    /// Replaces the connection's fields (and, when given, its sealed
    /// secrets) if it is still as read; false when it changed meanwhile.
    pub async fn update_connection(
        &self,
        scope: &TenantScope,
        old: &Connection,
        new: &Connection,
        secrets: Option<Sealed<'_>>,
        audit: &AuditContext,
    ) -> AppResult<bool> {
        let mut item = to_item(new)?;
        item.extend(connection_key(scope, new.id));
        match secrets {
            Some((nonce, sealed)) => {
                item.insert("secret_nonce".into(), AttributeValue::B(Blob::new(nonce)));
                item.insert("secret_sealed".into(), AttributeValue::B(Blob::new(sealed)));
            }
            None => {
                let Some((_, nonce, sealed)) = self.connection_with_secrets(scope, old.id).await? else {
                    return Ok(false);
                };
                item.insert("secret_nonce".into(), AttributeValue::B(Blob::new(nonce)));
                item.insert("secret_sealed".into(), AttributeValue::B(Blob::new(sealed)));
            }
        }
        let mut tx = Tx::new();
        tx.put_if(
            item,
            "updated_at = :seen",
            HashMap::from([(":seen".to_owned(), s(&old.updated_at))]),
            CONNECTION_CHANGED,
        );
        let mut change = Change::updated(CONNECTION_RESOURCE, old.id, old.view(), new.view());
        if secrets.is_some() {
            change.new_values["secrets"] = serde_json::json!("replaced");
        }
        tx.audit(scope, audit, change, self.audit_retention(scope).await?);
        match tx.commit(self).await {
            Ok(()) => Ok(true),
            Err(TxError::Condition(CONNECTION_CHANGED) | TxError::Conflict) => Ok(false),
            Err(e) => Err(e.into_app_error("sso connection")),
        }
    }

    /// Deletes a connection; the identities it linked stay with their
    /// members but can no longer sign in (no connection leads to them).
    pub async fn delete_connection(
        &self,
        scope: &TenantScope,
        connection: &Connection,
        audit: &AuditContext,
    ) -> AppResult<bool> {
        let mut tx = Tx::new();
        tx.delete(
            Delete::builder()
                .set_key(Some(connection_key(scope, connection.id)))
                .condition_expression("attribute_exists(PK)"),
            Some(CONNECTION_MISSING),
        );
        let change = Change::deleted(CONNECTION_RESOURCE, connection.id, connection.view());
        tx.audit(scope, audit, change, self.audit_retention(scope).await?);
        match tx.commit(self).await {
            Ok(()) => Ok(true),
            Err(TxError::Condition(CONNECTION_MISSING)) => Ok(false),
            Err(e) => Err(e.into_app_error("sso connection")),
        }
    }

    /// Stores an initiated sign-in of the tenant `lookup` names, if its
    /// connection still exists (and, unless it is a test, is active):
    /// `Ok(false)` otherwise.
    pub async fn create_sign_in_state(
        &self,
        lookup: &CredentialLookup,
        state: &SignInState,
        token_hash: &str,
        verifier: Sealed<'_>,
        saml_relay_hash: Option<&str>,
    ) -> AppResult<bool> {
        let scope = lookup.lookup_scope();
        let mut item = to_item(state)?;
        item.extend(state_key(&scope, state.id));
        item.insert("token_hash".into(), s(token_hash));
        if let Some(relay_hash) = saml_relay_hash {
            item.insert("relay_hash".into(), s(relay_hash));
        }
        item.insert("verifier_nonce".into(), AttributeValue::B(Blob::new(verifier.0)));
        item.insert("verifier_sealed".into(), AttributeValue::B(Blob::new(verifier.1)));
        let mut check = ConditionCheck::builder().set_key(Some(connection_key(&scope, state.connection_id)));
        check = if state.test {
            check.condition_expression("attribute_exists(PK)")
        } else {
            check
                .condition_expression("attribute_exists(PK) AND #status = :active")
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":active", s("active"))
        };
        let mut tx = Tx::new();
        tx.check(check, CONNECTION_UNUSABLE).put_new(item, Cond::UNIQUE_ID);
        match tx.commit(self).await {
            Ok(()) => Ok(true),
            Err(TxError::Condition(CONNECTION_UNUSABLE)) => Ok(false),
            Err(e) => Err(e.into_app_error("sso sign-in")),
        }
    }

    /// Takes the sign-in state the presented one names, once: one
    /// conditional DeleteItem that succeeds only while its hash matches and
    /// it has not expired, so two callbacks with one state cannot both
    /// pass. `None` for an unknown, used or expired state.
    pub async fn consume_sign_in_state(
        &self,
        lookup: &CredentialLookup,
        state_id: Uuid,
        token_hash: &str,
        now: i64,
    ) -> AppResult<Option<ConsumedState>> {
        let output = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(state_key(&lookup.lookup_scope(), state_id)))
            .condition_expression("token_hash = :hash AND expires_at > :now")
            .expression_attribute_values(":hash", s(token_hash))
            .expression_attribute_values(":now", n(now))
            .return_values(ReturnValue::AllOld)
            .send()
            .await;
        let mut item = match output {
            Ok(output) => output.attributes.unwrap_or_default(),
            Err(err) if condition_failed(&err) => return Ok(None),
            Err(err) => return Err(err.into()),
        };
        let stored_hash = item.remove("token_hash").and_then(|v| v.as_s().ok().cloned()).unwrap_or_default();
        let Some(scope) = lookup.verified(token_hash, &stored_hash) else { return Ok(None) };
        let (verifier_nonce, verifier_sealed) = (bytes(&item, "verifier_nonce"), bytes(&item, "verifier_sealed"));
        let saml_code_hash = item.remove("code_hash").and_then(|v| v.as_s().ok().cloned());
        item.remove("relay_hash");
        Ok(Some(ConsumedState { scope, state: from_item(item)?, verifier_nonce, verifier_sealed, saml_code_hash }))
    }

    /// The SAML sign-in state a RelayState names, read (not used) by the
    /// ACS: the tenant's scope once the relay's hash matched, while it has
    /// not expired and no response was recorded for it.
    pub async fn saml_sign_in_state(
        &self,
        lookup: &CredentialLookup,
        relay: &SamlRelay,
        now: i64,
    ) -> AppResult<Option<(TenantScope, SignInState)>> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(state_key(&lookup.lookup_scope(), relay.state_id)))
            .consistent_read(true)
            .send()
            .await?;
        let Some(mut item) = output.item else { return Ok(None) };
        let stored_hash = item.remove("relay_hash").and_then(|v| v.as_s().ok().cloned()).unwrap_or_default();
        if stored_hash.is_empty() || item.contains_key("code_hash") {
            return Ok(None);
        }
        let Some(scope) = lookup.verified(&relay.hash(), &stored_hash) else { return Ok(None) };
        item.remove("token_hash");
        let state: SignInState = from_item(item)?;
        Ok((state.expires_at > now).then_some((scope, state)))
    }

    /// Records the claims of a verified SAML assertion on its state, with
    /// the hash of the code the browser takes to the app, and the assertion
    /// ID as seen, in one transaction: a state is answered once, and an
    /// assertion signs in once (until its own expiry, the item's TTL).
    #[allow(clippy::too_many_arguments)]
    pub async fn record_saml_assertion(
        &self,
        scope: &TenantScope,
        state: &SignInState,
        claims: &VerifiedClaims,
        code_hash: &str,
        assertion_id: &str,
        not_on_or_after: i64,
        now: i64,
    ) -> AppResult<SamlRecorded> {
        let claims_value = serde_json::to_value(claims).map_err(AppError::internal)?;
        let update = Update::builder()
            .set_key(Some(state_key(scope, state.id)))
            .update_expression("SET saml_claims = :claims, code_hash = :code")
            .condition_expression("attribute_exists(PK) AND attribute_not_exists(code_hash) AND expires_at > :now")
            .expression_attribute_values(":claims", to_attribute(&claims_value)?)
            .expression_attribute_values(":code", s(code_hash))
            .expression_attribute_values(":now", n(now));
        let mut seen = assertion_key(scope, state.connection_id, assertion_id);
        // Kept a little past the assertion's expiry, which the ACS checks
        // with clock skew: a replay inside that window still meets the item.
        seen.insert("expires_at".into(), n(not_on_or_after.max(now) + 600));
        let mut tx = Tx::new();
        tx.update(update, Some(STATE_UNUSABLE)).put_new(seen, ASSERTION_REPLAYED);
        match tx.commit(self).await {
            Ok(()) => Ok(SamlRecorded::Recorded),
            Err(TxError::Condition(STATE_UNUSABLE)) => Ok(SamlRecorded::StateUsed),
            Err(TxError::Condition(ASSERTION_REPLAYED)) => Ok(SamlRecorded::Replayed),
            Err(e) => Err(e.into_app_error("saml assertion")),
        }
    }

    pub async fn find_identity(
        &self,
        scope: &TenantScope,
        connection_id: Uuid,
        issuer: &str,
        subject: &str,
    ) -> AppResult<Option<Identity>> {
        self.get_as(identity_key(scope, connection_id, issuer, subject)).await
    }

    /// A first sign-in that creates the member (JIT provisioning): the
    /// user and their email claim, one seat of the users quota, the
    /// identity link, the audit entry and `user.created` (`via: "sso"`), in
    /// one transaction. `replace_identity`: the identity exists but its
    /// member is gone, so it is overwritten.
    pub async fn provision_sso_member(
        &self,
        scope: &TenantScope,
        tenant: &Tenant,
        user: &User,
        identity: &Identity,
        replace_identity: bool,
        audit: &AuditContext,
    ) -> Result<(), LinkError> {
        // No password: an SSO member signs in through the IdP (the empty
        // hash never verifies).
        let (claim, item) = self.user_items(scope, user, "")?;
        let limit = Quota::Users.limit(&effective_limits(tenant));
        let mut tx = Tx::new();
        tx.put_new(claim, EMAIL_TAKEN).put_new(item, Cond::UNIQUE_ID);
        quota_change(&mut tx, scope, Quota::Users, 1, limit, &[(&role_counter(user.role), 1)]);
        let link = identity_item(scope, identity)?;
        if replace_identity {
            tx.put(link);
        } else {
            tx.put_new(link, IDENTITY_TAKEN);
        }
        let retention = retention_days_of(&tenant.configuration);
        tx.audit(scope, audit, Change::created("user", user.id, user.view()), retention);
        tx.emit(scope, user.created_event("sso"));
        tx.commit(self).await.map_err(LinkError::from)
    }

    /// Links an IdP identity to an existing member (their verified email in
    /// one of the connection's domains), with its audit entry.
    pub async fn link_identity(
        &self,
        scope: &TenantScope,
        identity: &Identity,
        replace_identity: bool,
        audit: &AuditContext,
    ) -> Result<(), LinkError> {
        let mut tx = Tx::new();
        tx.check(
            ConditionCheck::builder()
                .set_key(Some(user_key(scope, identity.user_id)))
                .condition_expression("attribute_exists(PK)"),
            USER_MISSING,
        );
        let link = identity_item(scope, identity)?;
        if replace_identity {
            tx.put(link);
        } else {
            tx.put_new(link, IDENTITY_TAKEN);
        }
        let change = Change {
            action: "link",
            ..Change::created(
                "sso_identity",
                identity.user_id,
                serde_json::json!({
                    "connection_id": identity.connection_id,
                    "issuer": identity.issuer,
                    "subject": identity.subject,
                    "user_id": identity.user_id,
                }),
            )
        };
        tx.audit(scope, audit, change, self.audit_retention(scope).await?);
        tx.commit(self).await.map_err(LinkError::from)
    }
}
