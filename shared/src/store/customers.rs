//! External customers (seed 004: a retailer's shoppers) and their photos.
//!
//! | item | PK | SK | other keys | notes |
//! |---|---|---|---|---|
//! | customer | `T#<tenant>#` | `CUSTOMER#<customer>` | `GSI1PK=T#<tenant>#CUSTOMERS`, `GSI1SK=<customer>` | `external_id`, `email`, `name`, `metadata`, `photo_count` |
//! | external id claim | `T#<tenant>#` | `CUSTOMEREXT#<external_id>` | | `customer_id`: the upsert key, unique per tenant |
//! | photo | `T#<tenant>#` | `CUSTOMER#<customer>#PHOTO#<photo>` | | `kind`, `content_type`, `declared_size`, `status` (`pending`/`ready`/`rejected`), `size_bytes`, `object_key` |
//!
//! Every change is one transaction ([`Tx`]) with its audit entry. Upsert by
//! `external_id`: the claim item makes "create" happen once under any
//! concurrency ([`EXTERNAL_ID_TAKEN`]); a caller that loses the race updates
//! the winner's customer instead. Updates and deletes are conditioned on the
//! `updated_at` they read ([`CUSTOMER_CHANGED`]) and read again when another
//! change got there first. A photo is created in one transaction with the
//! customer's `photo_count` (under the per-customer cap, which also proves
//! the customer exists: [`NO_PHOTO_SLOT`]); it settles once
//! ([`PHOTO_SETTLED`]).

use aws_sdk_dynamodb::types::builders::{DeleteBuilder, UpdateBuilder};
use serde_json::{Value, json};
use uuid::Uuid;

use super::{
    Item, PageRequest, Store, item_key as key, n, s, to_attribute, to_item,
    tx::{Cond, Tx, TxError},
};
use crate::{
    auth::TenantScope,
    domain::{
        audit::{AuditContext, Change},
        now, rfc3339,
    },
    error::{AppError, AppResult},
};

pub use crate::domain::customer::{Customer, CustomerFields, Photo, PhotoStatus};

pub const CUSTOMER_RESOURCE: &str = "customer";
pub const PHOTO_RESOURCE: &str = "customer_photo";
/// Photos one customer may have (a customer's delete removes them in one
/// transaction of at most 100 items).
pub const MAX_PHOTOS_PER_CUSTOMER: i64 = 50;

/// Another customer holds this `external_id` (a concurrent create won).
pub const EXTERNAL_ID_TAKEN: Cond = Cond("external_id_taken");
/// The customer changed (or went) since it was read.
pub const CUSTOMER_CHANGED: Cond = Cond("customer_changed");
/// The customer is missing or has [`MAX_PHOTOS_PER_CUSTOMER`] photos.
pub const NO_PHOTO_SLOT: Cond = Cond("no_photo_slot");
/// The photo is no longer pending (confirmed meanwhile).
pub const PHOTO_SETTLED: Cond = Cond("photo_settled");
/// How often a read-then-conditional-write is retried after losing a race.
const OPTIMISTIC_RETRIES: usize = 3;

fn customer_key(scope: &TenantScope, id: Uuid) -> Item {
    key(scope, format!("CUSTOMER#{id}"))
}

fn claim_key(scope: &TenantScope, external_id: &str) -> Item {
    key(scope, format!("CUSTOMEREXT#{external_id}"))
}

fn photo_prefix(id: Uuid) -> String {
    format!("CUSTOMER#{id}#PHOTO#")
}

fn photo_key(scope: &TenantScope, customer_id: Uuid, photo_id: Uuid) -> Item {
    key(scope, format!("{}{photo_id}", photo_prefix(customer_id)))
}

fn customers_index_pk(scope: &TenantScope) -> String {
    format!("{}CUSTOMERS", scope.pk())
}

/// Where a customer's photos live in the bucket.
pub fn customer_blob_prefix(scope: &TenantScope, customer_id: Uuid) -> String {
    format!("{}customers/{customer_id}/", crate::blobs::tenant_prefix(scope))
}

/// Why a photo could not be added.
#[derive(Debug)]
pub enum PhotoError {
    NoCustomer,
    TooMany,
    Other(AppError),
}

impl From<AppError> for PhotoError {
    fn from(e: AppError) -> Self {
        PhotoError::Other(e)
    }
}

/// Commits `tx`: true when it did, false when `retry` failed (the data
/// changed since it was read, or a concurrent transaction got in the way).
async fn committed(store: &Store, tx: Tx, retry: Cond) -> AppResult<bool> {
    match tx.commit(store).await {
        Ok(()) => Ok(true),
        Err(TxError::Conflict) => Ok(false),
        Err(TxError::Condition(cond)) if cond == retry => Ok(false),
        Err(other) => Err(other.into_app_error(CUSTOMER_RESOURCE)),
    }
}

impl Store {
    /// Creates the customer for `external_id`, or updates the one it has.
    /// Answers the customer and whether it was created.
    pub async fn upsert_customer(
        &self,
        scope: &TenantScope,
        external_id: &str,
        fields: &CustomerFields,
        audit: &AuditContext,
    ) -> AppResult<(Customer, bool)> {
        let retention = self.audit_retention(scope).await?;
        for _ in 0..5 {
            if let Some(claim) = self.get_item(claim_key(scope, external_id)).await? {
                let id = claim
                    .get("customer_id")
                    .and_then(|v| v.as_s().ok())
                    .and_then(|v| Uuid::parse_str(v).ok())
                    .ok_or_else(|| AppError::internal(anyhow::anyhow!("customer claim without its id")))?;
                match self.update_customer(scope, id, fields, audit, retention).await? {
                    Some(customer) => return Ok((customer, false)),
                    // Deleted between the two reads: the claim went with it.
                    None => continue,
                }
            }
            let now = now();
            let customer = Customer {
                id: Uuid::now_v7(),
                tenant_id: scope.tenant_id(),
                external_id: external_id.to_owned(),
                email: fields.email.clone().flatten(),
                name: fields.name.clone().flatten(),
                metadata: fields.metadata.clone().unwrap_or_default(),
                photo_count: 0,
                created_at: now,
                updated_at: now,
            };
            let mut claim = claim_key(scope, external_id);
            claim.insert("customer_id".into(), s(customer.id.to_string()));
            let mut item = to_item(&customer)?;
            item.extend(customer_key(scope, customer.id));
            item.insert("GSI1PK".into(), s(customers_index_pk(scope)));
            item.insert("GSI1SK".into(), s(customer.id.to_string()));
            let mut tx = Tx::new();
            tx.put_new(claim, EXTERNAL_ID_TAKEN).put_new(item, Cond::UNIQUE_ID);
            tx.audit(scope, audit, Change::created(CUSTOMER_RESOURCE, customer.id, customer.view()), retention);
            // Another request created it first: update that one.
            if committed(self, tx, EXTERNAL_ID_TAKEN).await? {
                return Ok((customer, true));
            }
        }
        Err(AppError::conflict("the customer is being changed by other requests; try again"))
    }

    async fn update_customer(
        &self,
        scope: &TenantScope,
        id: Uuid,
        fields: &CustomerFields,
        audit: &AuditContext,
        retention: i64,
    ) -> AppResult<Option<Customer>> {
        for _ in 0..OPTIMISTIC_RETRIES {
            let Some(old) = self.get_customer(scope, id).await? else { return Ok(None) };
            let mut new = old.clone();
            if let Some(email) = &fields.email {
                new.email = email.clone();
            }
            if let Some(name) = &fields.name {
                new.name = name.clone();
            }
            if let Some(metadata) = &fields.metadata {
                new.metadata = metadata.clone();
            }
            if new == old {
                return Ok(Some(old));
            }
            new.updated_at = now();
            let update = UpdateBuilder::default()
                .set_key(Some(customer_key(scope, id)))
                .update_expression("SET email = :email, #name = :name, metadata = :metadata, updated_at = :now")
                .condition_expression("updated_at = :seen")
                .expression_attribute_names("#name", "name")
                .expression_attribute_values(":email", to_attribute(&json!(new.email))?)
                .expression_attribute_values(":name", to_attribute(&json!(new.name))?)
                .expression_attribute_values(":metadata", to_attribute(&Value::Object(new.metadata.clone()))?)
                .expression_attribute_values(":now", s(rfc3339(new.updated_at)))
                .expression_attribute_values(":seen", s(rfc3339(old.updated_at)));
            let mut tx = Tx::new();
            tx.update(update, Some(CUSTOMER_CHANGED));
            tx.audit(scope, audit, Change::updated(CUSTOMER_RESOURCE, id, old.view(), new.view()), retention);
            if committed(self, tx, CUSTOMER_CHANGED).await? {
                return Ok(Some(new));
            }
        }
        Err(AppError::conflict("the customer is being changed by other requests; try again"))
    }

    /// The customers that hold these `external_id`s (two batch reads per
    /// hundred: the claims, then the customers), by `external_id`.
    pub async fn customers_by_external_ids(
        &self,
        scope: &TenantScope,
        external_ids: &[String],
    ) -> AppResult<std::collections::HashMap<String, Customer>> {
        let mut found = std::collections::HashMap::new();
        for chunk in external_ids.chunks(100) {
            let claims = self.batch_get(chunk.iter().map(|id| claim_key(scope, id)).collect(), None, true).await?;
            let ids: Vec<Uuid> = claims
                .iter()
                .filter_map(|claim| claim.get("customer_id")?.as_s().ok().and_then(|id| Uuid::parse_str(id).ok()))
                .collect();
            if ids.is_empty() {
                continue;
            }
            let items = self.batch_get(ids.iter().map(|id| customer_key(scope, *id)).collect(), None, true).await?;
            for customer in super::decode_listed::<Customer>(items) {
                found.insert(customer.external_id.clone(), customer);
            }
        }
        Ok(found)
    }

    pub async fn get_customer(&self, scope: &TenantScope, id: Uuid) -> AppResult<Option<Customer>> {
        self.get_as(customer_key(scope, id)).await
    }

    /// The tenant's customers in creation order, one page (GSI1: eventually
    /// consistent, like every list).
    pub async fn list_customers(
        &self,
        scope: &TenantScope,
        external_id: Option<&str>,
        page: &PageRequest,
    ) -> AppResult<(Vec<Customer>, Option<String>)> {
        let pk = customers_index_pk(scope);
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name("GSI1")
            .key_condition_expression("GSI1PK = :pk")
            .expression_attribute_values(":pk", s(&pk));
        let query = super::filter_equal(query, &[("external_id", external_id.map(s))], &[]);
        let context = format!("customers|{pk}|{}", external_id.unwrap_or(""));
        let (items, cursor) = self.query_page(query, page, &context, &["GSI1PK", "GSI1SK", "PK", "SK"]).await?;
        Ok((super::decode_listed(items), cursor))
    }

    /// The customer's photos, oldest first (ids are UUIDv7), one page.
    pub async fn list_photos(
        &self,
        scope: &TenantScope,
        customer_id: Uuid,
        page: &PageRequest,
    ) -> AppResult<(Vec<Photo>, Option<String>)> {
        let context = format!("photos|{}|{customer_id}", scope.pk());
        let query = self.photos_query(scope, customer_id);
        self.list_page(query, page, &context).await
    }

    /// The keys of every photo item of the customer, decodable or not: what
    /// a delete must remove so that no photo outlives its customer.
    async fn photo_keys(&self, scope: &TenantScope, customer_id: Uuid) -> AppResult<Vec<Item>> {
        self.query_all(self.photos_query(scope, customer_id).projection_expression("PK, SK")).await
    }

    fn photos_query(
        &self,
        scope: &TenantScope,
        customer_id: Uuid,
    ) -> aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder {
        self.prefix_query(scope, photo_prefix(customer_id)).consistent_read(true)
    }

    pub async fn get_photo(&self, scope: &TenantScope, customer_id: Uuid, photo_id: Uuid) -> AppResult<Option<Photo>> {
        self.get_as(photo_key(scope, customer_id, photo_id)).await
    }

    /// Records a photo awaiting its upload, counted against the customer's cap.
    pub async fn create_photo(
        &self,
        scope: &TenantScope,
        photo: &Photo,
        audit: &AuditContext,
    ) -> Result<(), PhotoError> {
        let retention = self.audit_retention(scope).await?;
        let count = UpdateBuilder::default()
            .set_key(Some(customer_key(scope, photo.customer_id)))
            .update_expression("ADD photo_count :one")
            .condition_expression("attribute_exists(PK) AND (attribute_not_exists(photo_count) OR photo_count < :max)")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":max", n(MAX_PHOTOS_PER_CUSTOMER));
        let mut item = to_item(photo)?;
        item.extend(photo_key(scope, photo.customer_id, photo.id));
        let mut tx = Tx::new();
        tx.update(count, Some(NO_PHOTO_SLOT)).put_new(item, Cond::UNIQUE_ID);
        tx.audit(scope, audit, Change::created(PHOTO_RESOURCE, photo.id, photo.view()), retention);
        match tx.commit(self).await {
            Ok(()) => Ok(()),
            Err(TxError::Condition(NO_PHOTO_SLOT)) => match self.get_customer(scope, photo.customer_id).await? {
                None => Err(PhotoError::NoCustomer),
                Some(_) => Err(PhotoError::TooMany),
            },
            Err(other) => Err(PhotoError::Other(other.into_app_error(PHOTO_RESOURCE))),
        }
    }

    /// Moves a pending photo to `ready` (with its real size) or `rejected`
    /// (with the reason); a photo no longer pending answers as it is.
    pub async fn settle_photo(
        &self,
        scope: &TenantScope,
        photo: &Photo,
        outcome: Result<i64, String>,
        audit: &AuditContext,
    ) -> AppResult<Photo> {
        let at = now();
        let now = rfc3339(at);
        let mut settled = photo.clone();
        settled.confirmed_at = Some(at);
        let update = UpdateBuilder::default()
            .set_key(Some(photo_key(scope, photo.customer_id, photo.id)))
            .condition_expression("#status = :pending")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":pending", s(PhotoStatus::Pending.as_str()))
            .expression_attribute_values(":now", s(&now));
        let update = match &outcome {
            Ok(size) => {
                settled.status = PhotoStatus::Ready;
                settled.size_bytes = Some(*size);
                update
                    .update_expression("SET #status = :ready, size_bytes = :size, confirmed_at = :now")
                    .expression_attribute_values(":ready", s(PhotoStatus::Ready.as_str()))
                    .expression_attribute_values(":size", n(*size))
            }
            Err(reason) => {
                settled.status = PhotoStatus::Rejected;
                settled.rejection_reason = Some(reason.clone());
                update
                    .update_expression("SET #status = :rejected, rejection_reason = :reason, confirmed_at = :now")
                    .expression_attribute_values(":rejected", s(PhotoStatus::Rejected.as_str()))
                    .expression_attribute_values(":reason", s(reason))
            }
        };
        let change = Change::updated(
            PHOTO_RESOURCE,
            photo.id,
            json!({"status": photo.status}),
            json!({"status": settled.status}),
        );
        let mut tx = Tx::new();
        tx.update(update, Some(PHOTO_SETTLED));
        tx.audit(scope, audit, change, self.audit_retention(scope).await?);
        if committed(self, tx, PHOTO_SETTLED).await? {
            return Ok(settled);
        }
        self.get_photo(scope, photo.customer_id, photo.id).await?.ok_or_else(|| AppError::not_found(PHOTO_RESOURCE))
    }

    /// Deletes the customer, its external id claim and its photo items in one
    /// transaction (the caller deletes the blobs first, so a failure here
    /// leaves a customer a retry can delete, never orphaned objects).
    pub async fn delete_customer(&self, scope: &TenantScope, id: Uuid, audit: &AuditContext) -> AppResult<bool> {
        let retention = self.audit_retention(scope).await?;
        for _ in 0..OPTIMISTIC_RETRIES {
            let Some(customer) = self.get_customer(scope, id).await? else { return Ok(false) };
            let photos = self.photo_keys(scope, id).await?;
            // Unchanged since read, photo count included: a photo added
            // meanwhile would otherwise outlive its customer.
            let delete_customer = DeleteBuilder::default()
                .set_key(Some(customer_key(scope, id)))
                .condition_expression(
                    "updated_at = :seen AND (attribute_not_exists(photo_count) OR photo_count = :photos)",
                )
                .expression_attribute_values(":seen", s(rfc3339(customer.updated_at)))
                .expression_attribute_values(":photos", n(customer.photo_count));
            let mut tx = Tx::new();
            tx.delete(delete_customer, Some(CUSTOMER_CHANGED));
            tx.delete(DeleteBuilder::default().set_key(Some(claim_key(scope, &customer.external_id))), None);
            tx.audit(scope, audit, Change::deleted(CUSTOMER_RESOURCE, id, customer.view()), retention);
            for photo in photos {
                tx.delete(DeleteBuilder::default().set_key(Some(photo)), None);
            }
            if committed(self, tx, CUSTOMER_CHANGED).await? {
                return Ok(true);
            }
        }
        Err(AppError::conflict("the customer is being changed by other requests; try again"))
    }
}
