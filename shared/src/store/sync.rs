//! Sync connections and their runs (`domain::sync`).
//!
//! | item | SK (under the tenant's `T#<tenant>#`) | notes |
//! |---|---|---|
//! | connection | `SYNCCONN#<id>` | the definition; `active_run_id`, `checkpoint`, `consecutive_failures` are the worker's, set by UpdateItem only, so an API edit (which bumps `version`) never writes them back stale |
//! | run | `SYNCRUN#<connection>#<run>` | status, page cursor, counts; ids are UUIDv7, so the prefix lists runs in time order; `expires_at` 90 days |
//! | mark | `SYNCMARK#<connection>#<key>` | `written_updated_at`: the target record's `updated_at` after this connection last wrote it (how a conflict is told); for a provider target, `sha256:<hex>` of the body last sent |
//! | conflict | `SYNCCONFLICT#<connection>#<key>` | a `manual` connection's record it did not write |
//!
//! One run at a time: starting one sets `active_run_id` on the connection
//! only if none is set, in the transaction that writes the run. A page's
//! checkpoint is conditioned on the page count it read, so a redelivered
//! message never counts a page twice.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, Delete, Update};
use serde_json::{Value, json};
use uuid::Uuid;

use super::{
    Item, PageRequest, Store, item_key as key, n,
    quota::tenant_counters,
    s, to_attribute, to_item,
    tx::{Cond, Tx, TxError},
};
use crate::{
    auth::TenantScope,
    domain::{
        alert::{Alert, AlertKind, AlertStatus, SYNC_FAILURE_ALERT_THRESHOLD, sync_alert_id},
        audit::{AuditContext, Change},
        now_rfc3339,
        sync::{
            MAX_SYNC_CONNECTIONS_PER_TENANT, RUN_RETENTION_DAYS, RunCounts, RunStatus, SyncConflict, SyncConnection,
            SyncRun,
        },
    },
    error::{AppError, AppResult},
    events::{Event, catalogue::IntegrationSyncFailing},
    store::alerts::alert_item,
};

pub const SYNC_CONNECTION_RESOURCE: &str = "sync_connection";
pub const SYNC_RUN_RESOURCE: &str = "sync_run";
pub const SYNC_CONFLICT_RESOURCE: &str = "sync_conflict";
const CONNECTION_COUNTER: &str = "sync_connection_count";
const CONNECTION_LIMIT: Cond = Cond("sync_connection_limit");
const CONNECTION_CHANGED: Cond = Cond("sync_connection_changed");
const RUN_ACTIVE: Cond = Cond("sync_run_active");
/// A run's id is taken: a scheduled firing delivered twice derives the
/// same run id.
const RUN_EXISTS: Cond = Cond("sync_run_exists");

/// The connection's alert and its event, in the transaction of the run
/// that made the failures in a row reach the threshold.
fn raise_sync_alert(
    tx: &mut Tx,
    scope: &TenantScope,
    connection: &SyncConnection,
    run: &SyncRun,
    error: &str,
) -> AppResult<()> {
    let alert = Alert {
        id: sync_alert_id(connection.id),
        kind: AlertKind::SyncFailing,
        status: AlertStatus::Open,
        subject_id: connection.id,
        subject_name: connection.name.clone(),
        provider_id: Some(connection.source.provider_id),
        workflow_id: None,
        message: error.to_owned(),
        consecutive_failures: Some(SYNC_FAILURE_ALERT_THRESHOLD),
        raised_at: now_rfc3339(),
        resolved_at: None,
        resolved_by: None,
    };
    tx.put(alert_item(scope, &alert)?);
    tx.emit(
        scope,
        Event::IntegrationSyncFailing(IntegrationSyncFailing {
            alert_id: alert.id,
            connection_id: connection.id,
            connection_name: connection.name.clone(),
            provider_id: connection.source.provider_id,
            consecutive_failures: SYNC_FAILURE_ALERT_THRESHOLD,
            run_id: run.id,
            last_error: error.to_owned(),
        }),
    );
    Ok(())
}

/// What starting a run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStart {
    Started,
    /// Another run of the connection is queued or running.
    InProgress,
    /// A run with this id exists already (a repeated scheduled firing).
    AlreadyStarted,
    /// A run succeeded after the connection was read: read it again (its
    /// checkpoint moved).
    CheckpointMoved,
}

fn connection_key(scope: &TenantScope, id: Uuid) -> Item {
    key(scope, format!("SYNCCONN#{id}"))
}

fn run_key(scope: &TenantScope, connection_id: Uuid, run_id: Uuid) -> Item {
    key(scope, format!("SYNCRUN#{connection_id}#{run_id}"))
}

fn mark_key(scope: &TenantScope, connection_id: Uuid, record_key: &str) -> Item {
    key(scope, format!("SYNCMARK#{connection_id}#{record_key}"))
}

fn conflict_key(scope: &TenantScope, connection_id: Uuid, record_key: &str) -> Item {
    key(scope, format!("SYNCCONFLICT#{connection_id}#{record_key}"))
}

/// BatchGetItem takes at most 100 keys.
const BATCH_KEYS: usize = 100;

/// How a run ended, for [`Store::finish_run`].
pub enum RunEnd<'a> {
    Succeeded,
    Failed(&'a str),
}

impl Store {
    /// A new connection, counted against
    /// [`MAX_SYNC_CONNECTIONS_PER_TENANT`], audited.
    pub async fn create_sync_connection(
        &self,
        scope: &TenantScope,
        connection: &SyncConnection,
        audit: &AuditContext,
    ) -> AppResult<()> {
        let mut item = to_item(connection)?;
        item.extend(connection_key(scope, connection.id));
        let mut tx = Tx::new();
        tx.put_new(item, Cond::UNIQUE_ID);
        let (count, expression) = tenant_counters(scope, &[(CONNECTION_COUNTER.to_owned(), 1)]);
        tx.update(
            count
                .update_expression(expression)
                .condition_expression("attribute_exists(PK) AND (attribute_not_exists(#c0) OR #c0 < :max)")
                .expression_attribute_values(":max", n(MAX_SYNC_CONNECTIONS_PER_TENANT)),
            Some(CONNECTION_LIMIT),
        );
        tx.audit(
            scope,
            audit,
            Change::created(SYNC_CONNECTION_RESOURCE, connection.id, connection),
            self.audit_retention(scope).await?,
        );
        match tx.commit(self).await {
            Ok(()) => Ok(()),
            Err(TxError::Condition(CONNECTION_LIMIT)) => Err(AppError::conflict(format!(
                "a tenant may have at most {MAX_SYNC_CONNECTIONS_PER_TENANT} sync connections; delete one first"
            ))
            .with_details(json!({
                "reason": "too_many_sync_connections",
                "max_sync_connections": MAX_SYNC_CONNECTIONS_PER_TENANT
            }))),
            Err(e) => Err(e.into_app_error(SYNC_CONNECTION_RESOURCE)),
        }
    }

    pub async fn get_sync_connection(&self, scope: &TenantScope, id: Uuid) -> AppResult<Option<SyncConnection>> {
        self.get_as(connection_key(scope, id)).await
    }

    /// The tenant's connections in creation order, one page.
    pub async fn list_sync_connections(
        &self,
        scope: &TenantScope,
        page: &PageRequest,
    ) -> AppResult<(Vec<SyncConnection>, Option<String>)> {
        let query = self.prefix_query(scope, "SYNCCONN#").consistent_read(true);
        let context = format!("sync-connections|{}", scope.pk());
        self.list_page(query, page, &context).await
    }

    /// Every connection of the tenant (at most 25): the monitoring views.
    pub async fn all_sync_connections(&self, scope: &TenantScope) -> AppResult<Vec<SyncConnection>> {
        Ok(super::decode_listed(self.query_all(self.prefix_query(scope, "SYNCCONN#")).await?))
    }

    /// Saves the definition fields of `new` if `old.version` is still the
    /// stored one; false when it is not (the caller answers 409). The
    /// worker's fields are not written.
    pub async fn update_sync_connection(
        &self,
        scope: &TenantScope,
        old: &SyncConnection,
        new: &SyncConnection,
        audit: &AuditContext,
    ) -> AppResult<bool> {
        // A manual connection has no `schedule` attribute at all.
        let schedule_clause = if new.schedule.is_some() { ", #schedule = :schedule" } else { " REMOVE #schedule" };
        let update = Update::builder()
            .set_key(Some(connection_key(scope, old.id)))
            .update_expression(format!(
                "SET #name = :name, #source = :source, sync_mode = :mode, conflict_resolution = :rule, \
                 field_mapping = :mapping, is_active = :active, real_time = :real_time, version = :next, \
                 updated_at = :now{schedule_clause}"
            ))
            .expression_attribute_names("#schedule", "schedule")
            .condition_expression("version = :expected")
            .expression_attribute_names("#name", "name")
            .expression_attribute_names("#source", "source")
            .expression_attribute_values(":name", s(&new.name))
            .expression_attribute_values(
                ":source",
                to_attribute(&serde_json::to_value(&new.source).map_err(AppError::internal)?)?,
            )
            .expression_attribute_values(":mode", s(new.sync_mode.as_str()))
            .expression_attribute_values(":rule", s(new.conflict_resolution.as_str()))
            .expression_attribute_values(":mapping", to_attribute(&Value::Object(new.field_mapping.clone()))?)
            .expression_attribute_values(":active", AttributeValue::Bool(new.is_active))
            .expression_attribute_values(":real_time", AttributeValue::Bool(new.real_time))
            .expression_attribute_values(":next", n(new.version))
            .expression_attribute_values(":now", s(&new.updated_at))
            .expression_attribute_values(":expected", n(old.version));
        let update = match &new.schedule {
            Some(expression) => update.expression_attribute_values(":schedule", s(expression)),
            None => update,
        };
        let mut tx = Tx::new();
        tx.update(update, Some(CONNECTION_CHANGED));
        tx.audit(
            scope,
            audit,
            Change::updated(SYNC_CONNECTION_RESOURCE, new.id, old, new),
            self.audit_retention(scope).await?,
        );
        match tx.commit(self).await {
            Ok(()) => Ok(true),
            Err(TxError::Condition(CONNECTION_CHANGED)) => Ok(false),
            Err(e) => Err(e.into_app_error(SYNC_CONNECTION_RESOURCE)),
        }
    }

    /// Deletes the connection (a run in progress stops at its next page:
    /// the worker finds no connection). False when it changed meanwhile.
    pub async fn delete_sync_connection(
        &self,
        scope: &TenantScope,
        connection: &SyncConnection,
        audit: &AuditContext,
    ) -> AppResult<bool> {
        let mut tx = Tx::new();
        tx.delete(
            Delete::builder()
                .set_key(Some(connection_key(scope, connection.id)))
                .condition_expression("version = :expected")
                .expression_attribute_values(":expected", n(connection.version)),
            Some(CONNECTION_CHANGED),
        );
        let (count, expression) = tenant_counters(scope, &[(CONNECTION_COUNTER.to_owned(), -1)]);
        tx.update(count.update_expression(expression), None);
        tx.audit(
            scope,
            audit,
            Change::deleted(SYNC_CONNECTION_RESOURCE, connection.id, connection),
            self.audit_retention(scope).await?,
        );
        match tx.commit(self).await {
            Ok(()) => Ok(true),
            Err(TxError::Condition(CONNECTION_CHANGED)) => Ok(false),
            Err(e) => Err(e.into_app_error(SYNC_CONNECTION_RESOURCE)),
        }
    }

    /// Writes `run` (queued) and makes it the connection's active run;
    /// false when another run is active.
    pub async fn start_sync_run(&self, scope: &TenantScope, run: &SyncRun) -> AppResult<RunStart> {
        self.start_run(scope, run, None).await
    }

    /// [`Self::start_sync_run`] for a run that reads after the checkpoint of
    /// `connection` as read: refused with [`RunStart::CheckpointMoved`] when
    /// a run succeeded since (its checkpoint would be skipped, and records it
    /// already applied read again). `last_successful_sync_at` moves with
    /// every success, the checkpoint only with some: comparing it is exact
    /// and a scalar.
    pub async fn start_sync_run_after(
        &self,
        scope: &TenantScope,
        run: &SyncRun,
        connection: &SyncConnection,
    ) -> AppResult<RunStart> {
        self.start_run(scope, run, Some(connection.last_successful_sync_at.as_deref())).await
    }

    async fn start_run(
        &self,
        scope: &TenantScope,
        run: &SyncRun,
        success_seen: Option<Option<&str>>,
    ) -> AppResult<RunStart> {
        let mut item = to_item(run)?;
        item.extend(run_key(scope, run.connection_id, run.id));
        item.insert("expires_at".into(), n(chrono::Utc::now().timestamp() + RUN_RETENTION_DAYS * 86_400));
        // One condition on the connection (a transaction may not name an
        // item twice): no active run and, when guarded, no success since.
        let mut connection = Update::builder()
            .set_key(Some(connection_key(scope, run.connection_id)))
            .update_expression("SET active_run_id = :run, last_run_at = :now")
            .expression_attribute_values(":run", s(run.id.to_string()))
            .expression_attribute_values(":now", s(&run.created_at));
        connection = match success_seen {
            None => connection.condition_expression("attribute_exists(PK) AND attribute_not_exists(active_run_id)"),
            Some(Some(at)) => connection
                .condition_expression(
                    "attribute_exists(PK) AND attribute_not_exists(active_run_id) AND last_successful_sync_at = :seen",
                )
                .expression_attribute_values(":seen", s(at)),
            // serde_dynamo writes a `None` as NULL: "never succeeded" is
            // either no attribute or a NULL one.
            Some(None) => connection
                .condition_expression(
                    "attribute_exists(PK) AND attribute_not_exists(active_run_id) \
                     AND (attribute_not_exists(last_successful_sync_at) OR attribute_type(last_successful_sync_at, :null))",
                )
                .expression_attribute_values(":null", s("NULL")),
        };
        let mut tx = Tx::new();
        tx.update(connection, Some(RUN_ACTIVE));
        tx.put_new(item, RUN_EXISTS);
        match tx.commit(self).await {
            Ok(()) => Ok(RunStart::Started),
            Err(TxError::Condition(RUN_ACTIVE)) if success_seen.is_some() => {
                let now = self.get_sync_connection(scope, run.connection_id).await?;
                Ok(if now.is_some_and(|c| c.active_run_id.is_none()) {
                    RunStart::CheckpointMoved
                } else {
                    RunStart::InProgress
                })
            }
            Err(TxError::Condition(RUN_ACTIVE)) => Ok(RunStart::InProgress),
            Err(TxError::Condition(RUN_EXISTS)) => Ok(RunStart::AlreadyStarted),
            Err(e) => Err(e.into_app_error(SYNC_RUN_RESOURCE)),
        }
    }

    /// Takes back a run whose start message could not be sent.
    pub async fn abandon_sync_run(&self, scope: &TenantScope, run: &SyncRun, why: &str) -> AppResult<()> {
        self.finish_sync_run(scope, run, RunEnd::Failed(why)).await.map(|_| ())
    }

    pub async fn get_sync_run(
        &self,
        scope: &TenantScope,
        connection_id: Uuid,
        run_id: Uuid,
    ) -> AppResult<Option<SyncRun>> {
        self.get_as(run_key(scope, connection_id, run_id)).await
    }

    /// A connection's runs, newest first, one page.
    pub async fn list_sync_runs(
        &self,
        scope: &TenantScope,
        connection_id: Uuid,
        page: &PageRequest,
    ) -> AppResult<(Vec<SyncRun>, Option<String>)> {
        let query = self.prefix_query(scope, format!("SYNCRUN#{connection_id}#")).scan_index_forward(false);
        let context = format!("sync-runs|{}|{connection_id}", scope.pk());
        self.list_page(query, page, &context).await
    }

    /// The worker picked the run up: `running`, one more invocation, the
    /// start time kept from the first. None when the run is over (or gone).
    pub async fn sync_run_picked_up(&self, scope: &TenantScope, run: &SyncRun) -> AppResult<Option<SyncRun>> {
        let output = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(run_key(scope, run.connection_id, run.id)))
            .update_expression(
                "SET #status = :running, started_at = if_not_exists(started_at, :now) ADD invocations :one",
            )
            .condition_expression("#status IN (:queued, :running)")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":running", s(RunStatus::Running.as_str()))
            .expression_attribute_values(":queued", s(RunStatus::Queued.as_str()))
            .expression_attribute_values(":now", s(now_rfc3339()))
            .expression_attribute_values(":one", n(1))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
            .send()
            .await;
        match output {
            Ok(output) => output.attributes.map(super::from_item).transpose(),
            Err(err) if super::condition_failed(&err) => Ok(None),
            Err(err) => Err(err.into()),
        }
    }

    /// A page's checkpoint: the counts after it, the next page's cursor and
    /// the largest cursor value so far. False when `pages_before` is not
    /// the stored page count any more (another delivery got there first).
    pub async fn checkpoint_sync_page(
        &self,
        scope: &TenantScope,
        run: &SyncRun,
        pages_before: i64,
        counts: &RunCounts,
        next_cursor: Option<&str>,
        max_cursor_value: Option<&Value>,
    ) -> AppResult<bool> {
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(run_key(scope, run.connection_id, run.id)))
            .condition_expression("#status = :running AND counts.pages = :before")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":running", s(RunStatus::Running.as_str()))
            .expression_attribute_values(":before", n(pages_before))
            .expression_attribute_values(
                ":counts",
                to_attribute(&serde_json::to_value(counts).map_err(AppError::internal)?)?,
            );
        let mut set = vec!["counts = :counts"];
        let mut remove = Vec::new();
        match next_cursor {
            Some(cursor) => {
                set.push("page_cursor = :cursor");
                update = update.expression_attribute_values(":cursor", s(cursor));
            }
            None => remove.push("page_cursor"),
        }
        if let Some(max) = max_cursor_value {
            set.push("max_cursor_value = :max");
            update = update.expression_attribute_values(":max", to_attribute(max)?);
        }
        let mut expression = format!("SET {}", set.join(", "));
        if !remove.is_empty() {
            expression.push_str(&format!(" REMOVE {}", remove.join(", ")));
        }
        super::applied(update.update_expression(expression).send().await)
    }

    /// Notes why the last attempt at a page failed (the run goes on).
    pub async fn note_sync_error(&self, scope: &TenantScope, run: &SyncRun, error: &str) -> AppResult<()> {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(run_key(scope, run.connection_id, run.id)))
            .update_expression("SET last_error = :error")
            .condition_expression("attribute_exists(PK)")
            .expression_attribute_values(":error", s(truncate(error)))
            .send()
            .await
            .map(|_| ())
            .or_else(|err| if super::condition_failed(&err) { Ok(()) } else { Err(err.into()) })
    }

    /// Ends the run and frees the connection for the next one, in one
    /// transaction: a success moves the checkpoint to the largest cursor
    /// value the run saw and clears the failure count; a failure counts
    /// one more. False when the run had ended already.
    pub async fn finish_sync_run(&self, scope: &TenantScope, run: &SyncRun, end: RunEnd<'_>) -> AppResult<bool> {
        let now = chrono::Utc::now();
        let started = run
            .started_at
            .as_deref()
            .unwrap_or(&run.created_at)
            .parse::<chrono::DateTime<chrono::Utc>>()
            .unwrap_or(now);
        let duration = (now - started).num_milliseconds().max(0);
        let (status, error) = match end {
            RunEnd::Succeeded => (RunStatus::Succeeded, None),
            RunEnd::Failed(why) => (RunStatus::Failed, Some(truncate(why))),
        };
        let mut run_update = Update::builder()
            .set_key(Some(run_key(scope, run.connection_id, run.id)))
            .condition_expression("#status IN (:queued, :running)")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":status", s(status.as_str()))
            .expression_attribute_values(":queued", s(RunStatus::Queued.as_str()))
            .expression_attribute_values(":running", s(RunStatus::Running.as_str()))
            .expression_attribute_values(":now", s(crate::domain::rfc3339(now)))
            .expression_attribute_values(":duration", n(duration));
        run_update = match &error {
            Some(error) => run_update
                .update_expression(
                    "SET #status = :status, finished_at = :now, duration_ms = :duration, last_error = :error",
                )
                .expression_attribute_values(":error", s(error)),
            None => run_update.update_expression("SET #status = :status, finished_at = :now, duration_ms = :duration"),
        };
        let mut connection = Update::builder()
            .set_key(Some(connection_key(scope, run.connection_id)))
            .condition_expression("active_run_id = :run")
            .expression_attribute_values(":run", s(run.id.to_string()));
        connection = match (&error, &run.max_cursor_value) {
            (None, Some(max)) => connection
                .update_expression(
                    "SET checkpoint = :max, last_successful_sync_at = :now, consecutive_failures = :zero \
                     REMOVE active_run_id",
                )
                .expression_attribute_values(":max", to_attribute(max)?)
                .expression_attribute_values(":now", s(crate::domain::rfc3339(now)))
                .expression_attribute_values(":zero", n(0)),
            (None, None) => connection
                .update_expression(
                    "SET last_successful_sync_at = :now, consecutive_failures = :zero REMOVE active_run_id",
                )
                .expression_attribute_values(":now", s(crate::domain::rfc3339(now)))
                .expression_attribute_values(":zero", n(0)),
            (Some(_), _) => connection
                .update_expression("ADD consecutive_failures :one REMOVE active_run_id")
                .expression_attribute_values(":one", n(1)),
        };
        let mut tx = Tx::new();
        tx.update(run_update, Some(RUN_ACTIVE));
        // A deleted connection has no run to free: the run still ends. Its
        // failures in a row are exact here: only the run it holds
        // (`active_run_id`, the condition) finishes.
        let stored: Option<SyncConnection> = self.get_as(connection_key(scope, run.connection_id)).await?;
        if let Some(stored) = &stored {
            tx.update(connection, None);
            if let Some(error) = &error
                && stored.consecutive_failures + 1 == SYNC_FAILURE_ALERT_THRESHOLD
            {
                raise_sync_alert(&mut tx, scope, stored, run, error)?;
            }
        }
        match tx.commit(self).await {
            Ok(()) => {}
            Err(TxError::Condition(RUN_ACTIVE)) => return Ok(false),
            Err(e) => return Err(e.into_app_error(SYNC_RUN_RESOURCE)),
        }
        if error.is_none() && stored.is_some_and(|c| c.consecutive_failures >= SYNC_FAILURE_ALERT_THRESHOLD) {
            self.resolve_alert(scope, sync_alert_id(run.connection_id), "auto").await?;
        }
        Ok(true)
    }

    /// Forgets the checkpoint: the next incremental run reads everything.
    /// False while a run is active (or when the connection went).
    pub async fn reset_sync_checkpoint(
        &self,
        scope: &TenantScope,
        connection: &SyncConnection,
        audit: &AuditContext,
    ) -> AppResult<bool> {
        let mut after = connection.clone();
        after.checkpoint = None;
        let mut tx = Tx::new();
        tx.update(
            Update::builder()
                .set_key(Some(connection_key(scope, connection.id)))
                .update_expression("REMOVE checkpoint")
                .condition_expression("attribute_exists(PK) AND attribute_not_exists(active_run_id)"),
            Some(RUN_ACTIVE),
        );
        tx.audit(
            scope,
            audit,
            Change::updated(SYNC_CONNECTION_RESOURCE, connection.id, connection, &after),
            self.audit_retention(scope).await?,
        );
        match tx.commit(self).await {
            Ok(()) => Ok(true),
            Err(TxError::Condition(RUN_ACTIVE)) => Ok(false),
            Err(e) => Err(e.into_app_error(SYNC_CONNECTION_RESOURCE)),
        }
    }

    /// For each record key: the target's `updated_at` this connection's
    /// last write left (a provider target: the sent body's hash).
    pub async fn sync_marks(
        &self,
        scope: &TenantScope,
        connection_id: Uuid,
        record_keys: &[String],
    ) -> AppResult<HashMap<String, String>> {
        let prefix = format!("SYNCMARK#{connection_id}#");
        let mut marks = HashMap::new();
        for chunk in record_keys.chunks(BATCH_KEYS) {
            let keys = chunk.iter().map(|k| mark_key(scope, connection_id, k)).collect();
            for item in self.batch_get(keys, None, true).await? {
                let record = item.get("SK").and_then(|v| v.as_s().ok()).and_then(|sk| sk.strip_prefix(&prefix));
                let written = item.get("written_updated_at").and_then(|v| v.as_s().ok());
                if let (Some(record), Some(written)) = (record, written) {
                    marks.insert(record.to_owned(), written.clone());
                }
            }
        }
        Ok(marks)
    }

    pub async fn put_sync_mark(
        &self,
        scope: &TenantScope,
        connection_id: Uuid,
        record_key: &str,
        written_updated_at: &str,
    ) -> AppResult<()> {
        let mut item = mark_key(scope, connection_id, record_key);
        item.insert("written_updated_at".into(), s(written_updated_at));
        self.client.put_item().table_name(&self.table).set_item(Some(item)).send().await?;
        Ok(())
    }

    /// Forgets what the connection wrote for a key (a provider target's
    /// record it deleted).
    pub async fn delete_sync_mark(&self, scope: &TenantScope, connection_id: Uuid, record_key: &str) -> AppResult<()> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(mark_key(scope, connection_id, record_key)))
            .send()
            .await?;
        Ok(())
    }

    /// Records (or replaces) a `manual` connection's conflict.
    pub async fn put_sync_conflict(&self, scope: &TenantScope, conflict: &SyncConflict) -> AppResult<()> {
        let mut item = to_item(conflict)?;
        item.extend(conflict_key(scope, conflict.connection_id, &conflict.key));
        self.client.put_item().table_name(&self.table).set_item(Some(item)).send().await?;
        Ok(())
    }

    /// A connection's open conflicts by record key, one page.
    pub async fn list_sync_conflicts(
        &self,
        scope: &TenantScope,
        connection_id: Uuid,
        page: &PageRequest,
    ) -> AppResult<(Vec<SyncConflict>, Option<String>)> {
        let query = self.prefix_query(scope, format!("SYNCCONFLICT#{connection_id}#")).consistent_read(true);
        let context = format!("sync-conflicts|{}|{connection_id}", scope.pk());
        self.list_page(query, page, &context).await
    }

    pub async fn get_sync_conflict(
        &self,
        scope: &TenantScope,
        connection_id: Uuid,
        record_key: &str,
    ) -> AppResult<Option<SyncConflict>> {
        self.get_as(conflict_key(scope, connection_id, record_key)).await
    }

    pub async fn delete_sync_conflict(
        &self,
        scope: &TenantScope,
        connection_id: Uuid,
        record_key: &str,
    ) -> AppResult<()> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(conflict_key(scope, connection_id, record_key)))
            .send()
            .await?;
        Ok(())
    }
}

/// Errors are kept short: a provider's whole answer is not a message.
fn truncate(text: &str) -> String {
    text.chars().take(500).collect()
}
