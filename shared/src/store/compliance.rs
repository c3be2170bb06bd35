//! Compliance records (issue 17): tenant data exports and erasures, and the
//! partition-wide reads and rewrites they are made of.
//!
//! | item | PK | SK | notes |
//! |---|---|---|---|
//! | export job | `T#<tenant>#` | `COMPLIANCE#EXPORT#<export>` | `status` (`pending`/`running`/`completed`/`failed`), `requested_by`, `attempts`, counts, `object_key` (S3 `tenants/<tenant>/exports/<export>.zip`), `file_expires_at`, `expires_at` (TTL: the tenant's retention) |
//! | erasure | `T#<tenant>#` | `COMPLIANCE#ERASURE#<erasure>` | id derived from the subject (one erasure per subject), `subject_type`, `subject_id`, `status` (`running`/`completed`), `counts`, `terms` (only while running), `expires_at` (TTL: the tenant's retention) |
//!
//! | change | conditions (by name) | event |
//! |---|---|---|
//! | [`Store::request_export`] | `unique_id` | `compliance.export.requested` (the worker's queue) |
//! | [`Store::start_export`] | [`EXPORT_FINISHED`]: `completed`/`failed` jobs are not redone | none |
//! | [`Store::complete_export`] | [`EXPORT_FINISHED`] | none (audited) |
//! | [`Store::begin_erasure`] | [`ERASURE_EXISTS`]: a second request continues the first | none |
//! | [`Store::erase_customer_record`] | [`SUBJECT_GONE`] | none (audited without the values) |
//! | [`Store::erase_user_record`] | [`SUBJECT_GONE`], `tenant_missing` | `user.deleted` |
//! | [`Store::finish_erasure`] | [`ERASURE_DONE`] | none (audited without the values) |
//!
//! An export reads the whole partition (`PK = T#<tenant>#`, every page) and
//! nothing else, so it cannot contain another tenant's items. An erasure
//! scrubs that same partition item by item ([`Store::scrub_partition`]):
//! each item that holds a personal value is rewritten attribute by attribute
//! under `attribute_exists(PK)` (a concurrent delete wins), an item whose key
//! is a personal value is deleted, and the subject's credential items go.
//! Every step is idempotent, so a retry of a `running` erasure (which keeps
//! its terms until it completes) finishes what a failed attempt started.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::{
    AttributeValue, ReturnValue,
    builders::{DeleteBuilder, UpdateBuilder},
};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{
    Item, PageRequest, Store, condition_failed, from_item, item_key as key, n, s, to_attribute, to_item,
    tx::{Cond, Tx, TxError},
};
use crate::{
    auth::TenantScope,
    domain::{
        audit::{AuditContext, Change},
        compliance::{
            EXPORT_FILE_DAYS, Erasure, ErasureStatus, ErasureTerms, ExportJob, ExportStatus, SubjectType,
            is_credential_item, is_structural_field, record_kind,
        },
        customer::Customer,
        now, rfc3339,
        user::User,
    },
    error::{AppError, AppResult},
    events::{Event, catalogue::ComplianceExportRequested},
};

pub const EXPORT_RESOURCE: &str = "compliance_export";
pub const ERASURE_RESOURCE: &str = "compliance_erasure";
const EXPORT_PREFIX: &str = "COMPLIANCE#EXPORT#";
const ERASURE_PREFIX: &str = "COMPLIANCE#ERASURE#";

/// The job is `completed` or `failed`: nothing more to do.
pub const EXPORT_FINISHED: Cond = Cond("export_finished");
/// An erasure of this subject exists already (continue it).
pub const ERASURE_EXISTS: Cond = Cond("erasure_exists");
/// The erasure completed meanwhile (another request finished it).
pub const ERASURE_DONE: Cond = Cond("erasure_done");
/// The subject's own record is gone or changed since it was read.
pub const SUBJECT_GONE: Cond = Cond("subject_gone");

fn export_key(scope: &TenantScope, id: Uuid) -> Item {
    key(scope, format!("{EXPORT_PREFIX}{id}"))
}

fn erasure_key(scope: &TenantScope, id: Uuid) -> Item {
    key(scope, format!("{ERASURE_PREFIX}{id}"))
}

/// Where the zips of a tenant's exports live.
pub fn exports_blob_prefix(scope: &TenantScope) -> String {
    format!("{}exports/", crate::blobs::tenant_prefix(scope))
}

/// Where one export's zip lives.
pub fn export_object_key(scope: &TenantScope, id: Uuid) -> String {
    format!("{}{id}.zip", exports_blob_prefix(scope))
}

/// Where a try-on session's results live.
pub fn tryon_blob_prefix(scope: &TenantScope, session_id: Uuid) -> String {
    format!("{}tryons/{session_id}/", crate::blobs::tenant_prefix(scope))
}

/// The one erasure of a subject: its id is derived from the subject, so a
/// repeated request finds the first one.
pub fn erasure_id(scope: &TenantScope, subject_type: SubjectType, subject_id: Uuid) -> Uuid {
    crate::domain::ids::derived_id(&[
        "compliance-erasure",
        &scope.tenant_id().to_string(),
        subject_type.as_str(),
        &subject_id.to_string(),
    ])
}

fn retention_ttl(at: DateTime<Utc>, days: i64) -> AttributeValue {
    n(at.timestamp() + days * 86_400)
}

/// What [`Store::start_export`] found.
#[derive(Debug)]
pub enum StartExport {
    /// Ours to build (again, from scratch, if a previous attempt died).
    Started(Box<ExportJob>),
    /// `completed` or `failed` before this delivery.
    Finished,
    Missing,
}

/// What one pass over the partition did.
#[derive(Debug, Default)]
pub struct ScrubReport {
    /// Items rewritten or deleted, by kind.
    pub counts: BTreeMap<String, i64>,
    /// The subject's try-on sessions (a customer's): their result images
    /// show the subject, so the caller deletes them from the bucket.
    pub tryon_sessions: Vec<Uuid>,
}

impl ScrubReport {
    fn count(&mut self, kind: impl Into<String>) {
        *self.counts.entry(kind.into()).or_default() += 1;
    }
}

fn text(item: &Item, name: &str) -> Option<String> {
    item.get(name).and_then(|v| v.as_s().ok()).cloned()
}

/// Scrubs one attribute value; `None` when nothing in it changed.
fn scrub_attribute(value: &AttributeValue, terms: &ErasureTerms, about: bool) -> Option<AttributeValue> {
    match value {
        AttributeValue::S(text) => terms.scrub_text(text, about).map(AttributeValue::S),
        AttributeValue::M(map) => {
            let mut changed = false;
            let out = map
                .iter()
                .map(|(k, v)| match scrub_attribute(v, terms, about && !is_structural_field(k)) {
                    Some(new) => {
                        changed = true;
                        (k.clone(), new)
                    }
                    None => (k.clone(), v.clone()),
                })
                .collect();
            changed.then_some(AttributeValue::M(out))
        }
        AttributeValue::L(list) => {
            let mut changed = false;
            let out = list
                .iter()
                .map(|v| match scrub_attribute(v, terms, about) {
                    Some(new) => {
                        changed = true;
                        new
                    }
                    None => v.clone(),
                })
                .collect();
            changed.then_some(AttributeValue::L(out))
        }
        AttributeValue::Ss(set) => {
            let mut changed = false;
            let mut out: Vec<String> = set
                .iter()
                .map(|v| match terms.scrub_text(v, about) {
                    Some(new) => {
                        changed = true;
                        new
                    }
                    None => v.clone(),
                })
                .collect();
            out.sort();
            out.dedup();
            changed.then_some(AttributeValue::Ss(out))
        }
        _ => None,
    }
}

/// True when any text in the value names the subject.
fn mentions(value: &AttributeValue, terms: &ErasureTerms) -> bool {
    match value {
        AttributeValue::S(text) => terms.names_subject(text),
        AttributeValue::M(map) => map.values().any(|v| mentions(v, terms)),
        AttributeValue::L(list) => list.iter().any(|v| mentions(v, terms)),
        AttributeValue::Ss(set) => set.iter().any(|v| terms.names_subject(v)),
        _ => false,
    }
}

impl Store {
    /// The TTL (`expires_at`, epoch seconds) of a record kept `days` at
    /// most, shortened to the tenant's retention when that is shorter: a
    /// copy of the tenant's data never outlives what the tenant allows.
    pub async fn capped_expiry(&self, scope: &TenantScope, days: i64) -> AppResult<i64> {
        let retention = self.audit_retention(scope).await?;
        Ok(now().timestamp() + days.min(retention) * 86_400)
    }

    /// Records an export request and asks the worker for it, in one
    /// transaction with its audit entry (who asked, when).
    pub async fn request_export(&self, scope: &TenantScope, audit: &AuditContext) -> AppResult<ExportJob> {
        let retention = self.audit_retention(scope).await?;
        let job = ExportJob {
            id: Uuid::now_v7(),
            tenant_id: scope.tenant_id(),
            status: ExportStatus::Pending,
            requested_by: audit.actor.clone(),
            created_at: now(),
            started_at: None,
            completed_at: None,
            attempts: 0,
            item_count: None,
            object_count: None,
            size_bytes: None,
            object_key: None,
            file_expires_at: None,
            error: None,
        };
        let mut item = to_item(&job)?;
        item.extend(export_key(scope, job.id));
        item.insert("expires_at".into(), retention_ttl(job.created_at, retention));
        let mut tx = Tx::new();
        tx.put_new(item, Cond::UNIQUE_ID);
        tx.audit(scope, audit, Change::created(EXPORT_RESOURCE, job.id, job.view(None)), retention);
        tx.emit(scope, Event::ComplianceExportRequested(ComplianceExportRequested { export_id: job.id }));
        tx.commit(self).await.map_err(|e| e.into_app_error(EXPORT_RESOURCE))?;
        Ok(job)
    }

    pub async fn get_export(&self, scope: &TenantScope, id: Uuid) -> AppResult<Option<ExportJob>> {
        self.get_as(export_key(scope, id)).await
    }

    /// The tenant's exports, newest first (ids are UUIDv7), one page.
    pub async fn list_exports(
        &self,
        scope: &TenantScope,
        page: &PageRequest,
    ) -> AppResult<(Vec<ExportJob>, Option<String>)> {
        let query = self.prefix_query(scope, EXPORT_PREFIX).scan_index_forward(false);
        self.list_page(query, page, &format!("exports|{}", scope.pk())).await
    }

    /// The newest export, if any.
    pub async fn last_export(&self, scope: &TenantScope) -> AppResult<Option<ExportJob>> {
        let output = self.prefix_query(scope, EXPORT_PREFIX).scan_index_forward(false).limit(1).send().await?;
        Ok(super::decode_listed(output.items.unwrap_or_default()).into_iter().next())
    }

    /// Moves a `pending` job (or a `running` one whose worker died) to
    /// `running`, counting the attempt.
    pub async fn start_export(&self, scope: &TenantScope, id: Uuid) -> AppResult<StartExport> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(export_key(scope, id)))
            .update_expression("SET #status = :running, started_at = :now ADD attempts :one")
            .condition_expression("attribute_exists(PK) AND #status IN (:pending, :running)")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":running", s(ExportStatus::Running.as_str()))
            .expression_attribute_values(":pending", s(ExportStatus::Pending.as_str()))
            .expression_attribute_values(":now", s(rfc3339(now())))
            .expression_attribute_values(":one", n(1))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(output) => Ok(StartExport::Started(Box::new(from_item(output.attributes.unwrap_or_default())?))),
            Err(err) if condition_failed(&err) => match self.get_export(scope, id).await? {
                Some(_) => Ok(StartExport::Finished),
                None => Ok(StartExport::Missing),
            },
            Err(err) => Err(err.into()),
        }
    }

    /// Every item of the tenant's partition, all pages, read consistently:
    /// what an export holds (before secrets are stripped) and what an
    /// erasure looks through.
    pub async fn partition_items(&self, scope: &TenantScope) -> AppResult<Vec<Item>> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("PK = :pk")
            .expression_attribute_values(":pk", s(scope.pk()))
            .consistent_read(true);
        self.query_all(query).await
    }

    /// Marks the job `completed` with what the zip holds, with its audit
    /// entry; false when it had finished already (another delivery won).
    pub async fn complete_export(
        &self,
        scope: &TenantScope,
        job: &ExportJob,
        counts: (i64, i64, i64),
        object_key: &str,
        audit: &AuditContext,
    ) -> AppResult<Option<ExportJob>> {
        let retention = self.audit_retention(scope).await?;
        let at = now();
        let (items, objects, size) = counts;
        let mut done = job.clone();
        done.status = ExportStatus::Completed;
        done.completed_at = Some(at);
        done.item_count = Some(items);
        done.object_count = Some(objects);
        done.size_bytes = Some(size);
        done.object_key = Some(object_key.to_owned());
        done.file_expires_at = Some(at + chrono::Duration::days(EXPORT_FILE_DAYS));
        let update = UpdateBuilder::default()
            .set_key(Some(export_key(scope, job.id)))
            .update_expression(
                "SET #status = :completed, completed_at = :at, item_count = :items, object_count = :objects, \
                 size_bytes = :size, object_key = :key, file_expires_at = :until REMOVE #error",
            )
            .condition_expression("#status = :running")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#error", "error")
            .expression_attribute_values(":completed", s(ExportStatus::Completed.as_str()))
            .expression_attribute_values(":running", s(ExportStatus::Running.as_str()))
            .expression_attribute_values(":at", s(rfc3339(at)))
            .expression_attribute_values(":items", n(items))
            .expression_attribute_values(":objects", n(objects))
            .expression_attribute_values(":size", n(size))
            .expression_attribute_values(":key", s(object_key))
            .expression_attribute_values(":until", s(rfc3339(at + chrono::Duration::days(EXPORT_FILE_DAYS))));
        let mut tx = Tx::new();
        tx.update(update, Some(EXPORT_FINISHED));
        tx.audit(scope, audit, Change::updated(EXPORT_RESOURCE, job.id, job.view(None), done.view(None)), retention);
        match tx.commit(self).await {
            Ok(()) => Ok(Some(done)),
            Err(TxError::Condition(EXPORT_FINISHED)) => Ok(None),
            Err(other) => Err(other.into_app_error(EXPORT_RESOURCE)),
        }
    }

    /// Marks a job that cannot succeed `failed`, with the reason.
    pub async fn fail_export(&self, scope: &TenantScope, id: Uuid, error: &str) -> AppResult<bool> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(export_key(scope, id)))
            .update_expression("SET #status = :failed, #error = :error, completed_at = :now")
            .condition_expression("#status IN (:pending, :running)")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#error", "error")
            .expression_attribute_values(":failed", s(ExportStatus::Failed.as_str()))
            .expression_attribute_values(":pending", s(ExportStatus::Pending.as_str()))
            .expression_attribute_values(":running", s(ExportStatus::Running.as_str()))
            .expression_attribute_values(":error", s(error))
            .expression_attribute_values(":now", s(rfc3339(now())))
            .send()
            .await;
        super::applied(result)
    }

    pub async fn get_erasure(&self, scope: &TenantScope, id: Uuid) -> AppResult<Option<Erasure>> {
        self.get_as(erasure_key(scope, id)).await
    }

    /// Records the erasure (`running`, with its terms) or, when one of the
    /// subject exists, answers that one with this attempt counted.
    pub async fn begin_erasure(&self, scope: &TenantScope, erasure: &Erasure) -> AppResult<Erasure> {
        let retention = self.audit_retention(scope).await?;
        let mut item = to_item(erasure)?;
        item.extend(erasure_key(scope, erasure.id));
        item.insert("expires_at".into(), retention_ttl(erasure.created_at, retention));
        let mut tx = Tx::new();
        tx.put_new(item, ERASURE_EXISTS);
        match tx.commit(self).await {
            Ok(()) => Ok(erasure.clone()),
            Err(TxError::Condition(ERASURE_EXISTS)) => {
                let output = self
                    .client
                    .update_item()
                    .table_name(&self.table)
                    .set_key(Some(erasure_key(scope, erasure.id)))
                    .update_expression("ADD attempts :one")
                    .condition_expression("attribute_exists(PK)")
                    .expression_attribute_values(":one", n(1))
                    .return_values(ReturnValue::AllNew)
                    .send()
                    .await?;
                from_item(output.attributes.unwrap_or_default())
            }
            Err(other) => Err(other.into_app_error(ERASURE_RESOURCE)),
        }
    }

    /// The customer, anonymised in place (try-on sessions and ledger
    /// entries keep pointing at it): no email, name or metadata, its
    /// external id replaced and its claim freed, its photo items gone (the
    /// caller deleted their objects first). False when it was gone already.
    pub async fn erase_customer_record(
        &self,
        scope: &TenantScope,
        customer: &Customer,
        audit: &AuditContext,
    ) -> AppResult<bool> {
        let retention = self.audit_retention(scope).await?;
        let photos = self
            .query_all(
                self.prefix_query(scope, format!("CUSTOMER#{}#PHOTO#", customer.id)).projection_expression("PK, SK"),
            )
            .await?;
        let at = rfc3339(now());
        let update = UpdateBuilder::default()
            .set_key(Some(key(scope, format!("CUSTOMER#{}", customer.id))))
            .update_expression(
                "SET external_id = :erased, metadata = :empty, photo_count = :zero, updated_at = :at, erased_at = :at \
                 REMOVE email, #name",
            )
            .condition_expression("attribute_exists(PK) AND updated_at = :seen")
            .expression_attribute_names("#name", "name")
            .expression_attribute_values(":erased", s(format!("erased-{}", customer.id)))
            .expression_attribute_values(":empty", AttributeValue::M(HashMap::new()))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":at", s(&at))
            .expression_attribute_values(":seen", s(rfc3339(customer.updated_at)));
        let mut tx = Tx::new();
        tx.update(update, Some(SUBJECT_GONE));
        tx.delete(
            DeleteBuilder::default().set_key(Some(key(scope, format!("CUSTOMEREXT#{}", customer.external_id)))),
            None,
        );
        for photo in photos.into_iter().take(super::tx::MAX_TX_ITEMS - 3) {
            tx.delete(DeleteBuilder::default().set_key(Some(photo)), None);
        }
        let change = Change {
            action: "erase",
            resource_type: super::customers::CUSTOMER_RESOURCE,
            resource_id: customer.id.to_string(),
            old_values: serde_json::json!({}),
            new_values: serde_json::json!({"erased": true, "photo_count": 0}),
        };
        tx.audit(scope, audit, change, retention);
        match tx.commit(self).await {
            Ok(()) => Ok(true),
            Err(TxError::Condition(SUBJECT_GONE)) => Ok(false),
            Err(other) => Err(other.into_app_error(ERASURE_RESOURCE)),
        }
    }

    /// The user removed from the tenant, as a delete does (seat and role
    /// counters, email claim, MFA enrolment; `user.deleted`, which names
    /// only the id), with an audit entry that records no personal value.
    /// False when the user was gone already.
    pub async fn erase_user_record(&self, scope: &TenantScope, user: &User, audit: &AuditContext) -> AppResult<bool> {
        let retention = self.audit_retention(scope).await?;
        let mut tx = Tx::new();
        tx.delete(
            DeleteBuilder::default()
                .set_key(Some(super::users::user_key(scope, user.id)))
                .condition_expression("attribute_exists(PK)"),
            Some(SUBJECT_GONE),
        );
        let role_counter = super::tenants::role_counter(user.role);
        super::quota::quota_change(
            &mut tx,
            scope,
            crate::domain::plans::Quota::Users,
            -1,
            None,
            &[(role_counter.as_str(), -1)],
        );
        tx.delete(DeleteBuilder::default().set_key(Some(super::users::email_key(&user.email))), None);
        tx.delete(DeleteBuilder::default().set_key(Some(super::mfa::enrollment_key(scope, user.id))), None);
        let change = Change {
            action: "erase",
            resource_type: "user",
            resource_id: user.id.to_string(),
            old_values: serde_json::json!({"role": user.role.as_str()}),
            new_values: serde_json::json!({"erased": true}),
        };
        tx.audit(scope, audit, change, retention);
        tx.emit(scope, user.deleted_event());
        let outcome = tx.commit(self).await;
        super::standing::forget_standing(user.id);
        match outcome {
            Ok(()) => Ok(true),
            Err(TxError::Condition(SUBJECT_GONE)) => Ok(false),
            Err(other) => Err(other.into_app_error(ERASURE_RESOURCE)),
        }
    }

    /// One pass over the tenant's partition that leaves no personal value
    /// of the subject in it (see the module docs). The erasure records are
    /// left alone (a running one holds the terms until it completes).
    pub async fn scrub_partition(
        &self,
        scope: &TenantScope,
        subject_type: SubjectType,
        terms: &ErasureTerms,
    ) -> AppResult<ScrubReport> {
        let mut report = ScrubReport::default();
        let subject = terms.subject_id.as_str();
        for item in self.partition_items(scope).await? {
            let Some(sk) = text(&item, "SK") else { continue };
            if sk.starts_with(ERASURE_PREFIX) {
                continue;
            }
            let item_key: Item =
                item.iter().filter(|(k, _)| *k == "PK" || *k == "SK").map(|(k, v)| (k.clone(), v.clone())).collect();
            let owner = text(&item, "user_id");
            // The subject's sign-in material goes whole.
            let credential = subject_type == SubjectType::User
                && (is_credential_item(&sk) || sk.starts_with("SSOIDENTITY#") || sk.starts_with("MFA#"))
                && (owner.as_deref() == Some(subject) || sk.contains(subject));
            let about = item.values().any(|v| mentions(v, terms));
            // A key that is a personal value cannot be rewritten (a key
            // that names the subject's id is not personal: the anonymised
            // customer keeps its own).
            let lower_sk = sk.to_lowercase();
            let personal_key = terms.emails.iter().any(|e| lower_sk.contains(e.as_str()))
                || (about && terms.values.iter().any(|v| sk.split('#').any(|part| part == v)));
            if credential || personal_key {
                self.client.delete_item().table_name(&self.table).set_key(Some(item_key)).send().await?;
                report.count(record_kind(&sk));
                continue;
            }
            if subject_type == SubjectType::Customer
                && sk.starts_with("TRYON#")
                && !sk.contains("#ITEM#")
                && text(&item, "customer_id").as_deref() == Some(subject)
                && let Ok(id) = Uuid::parse_str(&sk["TRYON#".len()..])
            {
                report.tryon_sessions.push(id);
            }
            // Stored idempotent answers are sealed under the caller's key,
            // which the platform never keeps: which one holds the subject
            // cannot be told, so every stored answer goes (the record
            // stays: a replay is refused, never run twice).
            if sk.starts_with("IDEM#") {
                if item.contains_key("body_sealed") {
                    let result = self
                        .client
                        .update_item()
                        .table_name(&self.table)
                        .set_key(Some(item_key))
                        .update_expression("REMOVE body_sealed, body_nonce SET body_erased = :yes")
                        .condition_expression("attribute_exists(PK)")
                        .expression_attribute_values(":yes", AttributeValue::Bool(true))
                        .send()
                        .await;
                    if super::applied(result)? {
                        report.count(record_kind(&sk));
                    }
                }
                continue;
            }
            let mut sets: Vec<(String, AttributeValue)> = Vec::new();
            let mut removes: Vec<String> = Vec::new();
            for (name, value) in &item {
                if name == "PK" || name == "SK" {
                    continue;
                }
                if let Some(new) = scrub_attribute(value, terms, about && !is_structural_field(name)) {
                    sets.push((name.clone(), new));
                }
            }
            // A try-on of the erased customer loses its result images (the
            // caller deletes the objects).
            if subject_type == SubjectType::Customer
                && sk.starts_with("TRYON#")
                && sk.contains("#ITEM#")
                && item.contains_key("result_key")
                && report.tryon_sessions.iter().any(|id| sk.starts_with(&format!("TRYON#{id}#")))
            {
                removes.push("result_key".into());
            }
            // A finished export's zip held the subject; the caller deleted it.
            if sk.starts_with(EXPORT_PREFIX) && item.contains_key("object_key") {
                removes.push("object_key".into());
            }
            if sets.is_empty() && removes.is_empty() {
                continue;
            }
            let mut update = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(item_key))
                .condition_expression("attribute_exists(PK)");
            let mut expression = String::new();
            if !sets.is_empty() {
                let parts: Vec<String> = (0..sets.len()).map(|i| format!("#s{i} = :s{i}")).collect();
                expression.push_str(&format!("SET {}", parts.join(", ")));
            }
            if !removes.is_empty() {
                let parts: Vec<String> = (0..removes.len()).map(|i| format!("#r{i}")).collect();
                expression.push_str(&format!(" REMOVE {}", parts.join(", ")));
            }
            for (i, (name, value)) in sets.into_iter().enumerate() {
                update = update
                    .expression_attribute_names(format!("#s{i}"), name)
                    .expression_attribute_values(format!(":s{i}"), value);
            }
            for (i, name) in removes.into_iter().enumerate() {
                update = update.expression_attribute_names(format!("#r{i}"), name);
            }
            if super::applied(update.update_expression(expression.trim()).send().await)? {
                report.count(record_kind(&sk));
            }
        }
        Ok(report)
    }

    /// Completes the erasure: its counts, its terms removed, and its audit
    /// entry (ids and counts only), in one transaction. A second caller
    /// gets the completed record.
    pub async fn finish_erasure(
        &self,
        scope: &TenantScope,
        erasure: &Erasure,
        counts: BTreeMap<String, i64>,
        audit: &AuditContext,
    ) -> AppResult<Erasure> {
        let retention = self.audit_retention(scope).await?;
        let mut done = erasure.clone();
        done.status = ErasureStatus::Completed;
        done.completed_at = Some(now());
        done.counts = counts;
        done.terms = None;
        let update = UpdateBuilder::default()
            .set_key(Some(erasure_key(scope, erasure.id)))
            .update_expression("SET #status = :completed, completed_at = :at, counts = :counts REMOVE terms")
            .condition_expression("#status = :running")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":completed", s(ErasureStatus::Completed.as_str()))
            .expression_attribute_values(":running", s(ErasureStatus::Running.as_str()))
            .expression_attribute_values(":at", s(rfc3339(done.completed_at.unwrap_or_else(now))))
            .expression_attribute_values(":counts", to_attribute(&serde_json::json!(done.counts))?);
        let mut tx = Tx::new();
        tx.update(update, Some(ERASURE_DONE));
        tx.audit(scope, audit, Change::created(ERASURE_RESOURCE, erasure.id, done.view()), retention);
        match tx.commit(self).await {
            Ok(()) => Ok(done),
            Err(TxError::Condition(ERASURE_DONE)) => {
                self.get_erasure(scope, erasure.id).await?.ok_or_else(|| AppError::not_found(ERASURE_RESOURCE))
            }
            Err(other) => Err(other.into_app_error(ERASURE_RESOURCE)),
        }
    }

    /// How many erasures the tenant has made (its compliance report).
    pub async fn erasure_count(&self, scope: &TenantScope) -> AppResult<i64> {
        let query = self.prefix_query(scope, ERASURE_PREFIX).select(aws_sdk_dynamodb::types::Select::Count);
        let mut total = 0_i64;
        let mut start = None;
        loop {
            let output = query.clone().set_exclusive_start_key(start.take()).send().await?;
            total += i64::from(output.count);
            match output.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(total),
            }
        }
    }
}
