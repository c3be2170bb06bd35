//! Sync runs (`SyncRunsQueue`, FIFO, one message group per connection):
//! a run reads its provider's API one page at a time, writes each page's
//! records to the connection's target (the tenant's customers, users,
//! projects or tasks through `shared::sync_targets`, or another provider's
//! API), and checkpoints the run (counts, the next page's cursor, the
//! largest cursor value seen) before the next page.
//!
//! - A message names a run; the run's stored checkpoint says where to go
//!   on, so a redelivered message (a crash, a timeout, a failed page)
//!   resumes after the last page that was checkpointed. A page replayed
//!   after a crash between its writes and its checkpoint writes the same
//!   target records again, by their key (a customer's `external_id`, an id
//!   derived from the key, the provider's `<path>/<key>`): no duplicates,
//!   and a record that already matches is not written.
//! - Once [`IntegrationsWorker::sync_budget`] is spent the run hands itself
//!   on: a new message in the same group, deduplicated by run and page.
//! - A page that keeps failing ends the run `failed` on the queue's last
//!   receive ([`SYNC_MAX_RECEIVES`], the redrive policy's; locally the
//!   local stack's); the connection counts the failure.
//!
//! Conflicts: each target record the connection writes gets a mark with the
//! `updated_at` the write left. A record whose target's `updated_at` is not
//! its mark (someone else changed it, or the connection never wrote it) is
//! a conflict, settled by the connection's rule (`domain::sync::resolve`).
//! A provider target cannot be read back: its mark is the hash of the body
//! last sent, so an unchanged record is not sent again, and its rule is
//! always `source_wins`.

use std::collections::HashMap;

use futures::StreamExt;

use serde_json::Value;
use shared::{
    audit::AuditContext,
    auth::{
        TenantScope,
        proofs::{OwnQueue, TenantSchedule},
    },
    domain::{
        ids::derived_id,
        now_rfc3339,
        schedule::{ScheduleTarget, ScheduledFiring},
        sync::{
            MAX_RECORDS_PER_PAGE, Resolution, RunCounts, RunStatus, SyncConflict, SyncConnection, SyncMode, SyncRun,
            TargetType, cursor_max, cursor_param, field, key_of, map_record, resolve,
        },
    },
    events::catalogue::IntegrationEventReceived,
    provider_api::ProviderApi,
    store::sync::{RunEnd, RunStart},
    sync_runs::{self, Started, SyncRunMessage},
    sync_targets::{PlatformTarget, TargetRecord, Written, key_fits},
};

use crate::{IntegrationsWorker, Outcome};

/// Receives of one run's message before the run is given up (the redrive
/// policy's maxReceiveCount in template.yaml says the same).
pub const SYNC_MAX_RECEIVES: u32 = 5;
/// Records of a page written at once (each its own target record).
const RECORDS_AT_ONCE: usize = 8;

/// What every record of one page shares.
#[derive(Clone, Copy)]
struct EachRecord<'a> {
    target: PlatformTarget<'a>,
    run: &'a SyncRun,
    /// A provider target's API (`None` for the platform's resources).
    provider: Option<&'a ProviderApi>,
}

/// An inbound event's records for a real-time connection, from `body`.
fn inbound_records(body: &Value, records_field: &str) -> Result<Vec<Value>, String> {
    match (field(body, records_field), body) {
        (Some(Value::Array(records)), _) if records.len() <= MAX_RECORDS_PER_PAGE => Ok(records.clone()),
        (Some(Value::Array(records)), _) => {
            Err(format!("an event of {} records (at most {MAX_RECORDS_PER_PAGE})", records.len()))
        }
        (_, Value::Object(_)) => Ok(vec![body.clone()]),
        _ => Err("the event's body is not a JSON object".to_owned()),
    }
}

/// What a page did, and where the source goes on.
struct PageResult {
    counts: RunCounts,
    next_cursor: Option<String>,
    max_cursor_value: Option<Value>,
    last_error: Option<String>,
}

impl IntegrationsWorker {
    /// A connection's schedule fired: start a run, once per firing (the
    /// run's id is derived from the connection and the firing's time), and
    /// only if the connection still holds this schedule and is active. A
    /// run in progress makes the firing a no-op: runs never overlap.
    pub async fn scheduled_sync(&self, firing: &ScheduledFiring) -> anyhow::Result<Outcome> {
        anyhow::ensure!(
            firing.target == ScheduleTarget::SyncConnection,
            "a {} firing on the sync queue",
            firing.target
        );
        let scope = TenantSchedule::scope(firing);
        let connection = self.store.get_sync_connection(&scope, firing.id).await?;
        let Some(connection) =
            connection.as_ref().filter(|c| c.schedule.as_deref() == Some(firing.expression.as_str()))
        else {
            // Gone or made manual: the schedule is deleted. Holding another
            // expression: the newer schedule is the connection's, and this
            // firing is an old one in flight.
            if connection.is_none_or(|c| c.schedule.is_none()) {
                self.schedules.remove(firing.target, firing.id).await?;
            }
            return Ok(Outcome::ScheduleStale);
        };
        if !connection.is_active {
            return Ok(Outcome::SyncSkipped);
        }
        let run_id = derived_id(&[&connection.id.to_string(), &firing.scheduled_time, "scheduled run"]);
        match sync_runs::start(&self.store, &self.sqs, &scope, connection, "schedule", run_id).await? {
            Started::Run(_) => Ok(Outcome::SyncScheduled),
            Started::InProgress(active) => {
                tracing::info!(connection = %connection.id, ?active, "a scheduled run waits for none: one is in progress");
                Ok(Outcome::SyncSkipped)
            }
            Started::AlreadyStarted => Ok(Outcome::SyncSkipped),
        }
    }

    /// A real-time connection's inbound event: its records (the body's
    /// `records_field` array, else the body as one record) applied as one
    /// run (`trigger: "event"`, id derived from the connection and the
    /// event, so a redelivered event resumes or skips its run). The
    /// checkpoint is not moved: it stays the API reads' own. A run in
    /// progress makes the event wait (an error: the events queue retries it).
    pub async fn apply_inbound(
        &self,
        scope: &TenantScope,
        received: &IntegrationEventReceived,
    ) -> anyhow::Result<usize> {
        let connections = self.store.all_sync_connections(scope).await?;
        let listening: Vec<&SyncConnection> = connections
            .iter()
            .filter(|c| c.real_time && c.is_active && c.source.provider_id == received.provider_id)
            .collect();
        if listening.is_empty() {
            return Ok(0);
        }
        // Read before any run starts: a body that cannot be read fails the
        // event (retried), never a run left holding its connection.
        let large_body = if received.payload_on_bus { None } else { Some(self.inbound_body(scope, received).await?) };
        let body = large_body.as_ref().unwrap_or(&received.data);
        let mut applied = 0;
        for connection in listening {
            let run_id = derived_id(&[&connection.id.to_string(), &received.inbound_id.to_string(), "event run"]);
            let fresh = sync_runs::new_run(scope, connection, "event", run_id);
            let fresh = SyncRun { started_after: None, ..fresh };
            let run = match self.store.start_sync_run(scope, &fresh).await? {
                RunStart::Started => fresh,
                // This event's run exists: an earlier delivery started it
                // (and may still hold the connection with it). Finished, the
                // event is done here; unfinished, this delivery takes it up.
                RunStart::AlreadyStarted | RunStart::InProgress | RunStart::CheckpointMoved => {
                    match self.store.get_sync_run(scope, connection.id, run_id).await? {
                        Some(run) if !matches!(run.status, RunStatus::Succeeded | RunStatus::Failed) => run,
                        Some(_) => continue,
                        None => {
                            let active = self.store.get_sync_connection(scope, connection.id).await?;
                            anyhow::bail!(
                                "connection {}: run {:?} is in progress; the event waits for it",
                                connection.id,
                                active.and_then(|c| c.active_run_id)
                            )
                        }
                    }
                }
            };
            let Some(run) = self.store.sync_run_picked_up(scope, &run).await? else { continue };
            let records = match inbound_records(body, &connection.source.records_field) {
                Ok(records) => records,
                Err(why) => {
                    self.store.finish_sync_run(scope, &run, RunEnd::Failed(&why)).await?;
                    continue;
                }
            };
            if run.counts.pages == 0 {
                let page = self.write_records(scope, connection, &run, &records).await?;
                if !self.store.checkpoint_sync_page(scope, &run, 0, &page.counts, None, None).await? {
                    continue;
                }
                if let Some(error) = page.last_error {
                    self.store.note_sync_error(scope, &run, &error).await?;
                }
            }
            self.store.finish_sync_run(scope, &SyncRun { max_cursor_value: None, ..run }, RunEnd::Succeeded).await?;
            applied += 1;
        }
        Ok(applied)
    }

    /// A body too large for the bus, from S3 at the event's `payload_key`,
    /// which must be under this tenant's and provider's own prefix.
    async fn inbound_body(&self, scope: &TenantScope, received: &IntegrationEventReceived) -> anyhow::Result<Value> {
        let prefix = format!("tenants/{}/integrations/{}/", scope.tenant_id(), received.provider_id);
        anyhow::ensure!(received.payload_key.starts_with(&prefix), "the event's payload_key is not under {prefix}");
        let bytes = self
            .blobs
            .get(&received.payload_key)
            .await?
            .ok_or_else(|| anyhow::anyhow!("the event's body is gone from {}", received.payload_key))?;
        Ok(serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    /// Takes up a run where its checkpoint left it.
    pub async fn run_sync(&self, message: SyncRunMessage, receive: u32) -> anyhow::Result<Outcome> {
        let scope = OwnQueue::scope(message.tenant_id);
        let Some(run) = self.store.get_sync_run(&scope, message.connection_id, message.run_id).await? else {
            return Ok(Outcome::SyncSkipped);
        };
        if matches!(run.status, RunStatus::Succeeded | RunStatus::Failed) {
            return Ok(Outcome::SyncSkipped);
        }
        let Some(connection) = self.store.get_sync_connection(&scope, message.connection_id).await? else {
            self.store.finish_sync_run(&scope, &run, RunEnd::Failed("the connection was deleted")).await?;
            return Ok(Outcome::SyncSkipped);
        };
        let Some(mut run) = self.store.sync_run_picked_up(&scope, &run).await? else {
            return Ok(Outcome::SyncSkipped);
        };
        match self.sync_pages(&scope, &connection, &mut run).await {
            Ok(outcome) => Ok(outcome),
            Err(err) => {
                let why = format!("{err:#}");
                if receive >= self.sync_max_receives {
                    self.store.finish_sync_run(&scope, &run, RunEnd::Failed(&why)).await?;
                    return Ok(Outcome::SyncFailed);
                }
                self.store.note_sync_error(&scope, &run, &why).await?;
                // Back to the queue: the redelivery resumes at the checkpoint.
                Err(err)
            }
        }
    }

    async fn sync_pages(
        &self,
        scope: &TenantScope,
        connection: &SyncConnection,
        run: &mut SyncRun,
    ) -> anyhow::Result<Outcome> {
        let source = ProviderApi::open(&self.store, &self.sealing, scope, connection.source.provider_id)
            .await
            .map_err(|why| anyhow::anyhow!("the source: {why}"))?;
        let deadline = std::time::Instant::now() + self.sync_budget;
        let mut first_page = true;
        loop {
            // A connection deleted meanwhile stops the run before its next
            // page (one read per page; the first was read just before).
            if !std::mem::take(&mut first_page) && self.store.get_sync_connection(scope, connection.id).await?.is_none()
            {
                self.store.finish_sync_run(scope, run, RunEnd::Failed("the connection was deleted")).await?;
                return Ok(Outcome::SyncSkipped);
            }
            let page = self.read_page(scope, connection, run, &source).await?;
            let pages_before = run.counts.pages;
            let mut counts = run.counts.clone();
            counts.add(&page.counts);
            if !self
                .store
                .checkpoint_sync_page(
                    scope,
                    run,
                    pages_before,
                    &counts,
                    page.next_cursor.as_deref(),
                    page.max_cursor_value.as_ref(),
                )
                .await?
            {
                // Another delivery of this run is ahead: it goes on.
                return Ok(Outcome::SyncSkipped);
            }
            run.counts = counts;
            run.page_cursor = page.next_cursor;
            run.max_cursor_value = page.max_cursor_value;
            if let Some(error) = page.last_error {
                self.store.note_sync_error(scope, run, &error).await?;
            }
            if run.page_cursor.is_none() {
                self.store.finish_sync_run(scope, run, RunEnd::Succeeded).await?;
                return Ok(Outcome::Synced(run.counts.pages));
            }
            if std::time::Instant::now() >= deadline {
                let message =
                    SyncRunMessage { tenant_id: scope.tenant_id(), connection_id: connection.id, run_id: run.id };
                sync_runs::send(&self.sqs, &self.sync_runs_queue_url, message, run.counts.pages).await?;
                return Ok(Outcome::SyncContinued(run.counts.pages));
            }
        }
    }

    /// Reads the page after the run's checkpoint and writes its records.
    async fn read_page(
        &self,
        scope: &TenantScope,
        connection: &SyncConnection,
        run: &SyncRun,
        provider: &ProviderApi,
    ) -> anyhow::Result<PageResult> {
        let source = &connection.source;
        let mut query: Vec<(&str, String)> = Vec::new();
        if let Some(cursor) = &run.page_cursor {
            query.push((&source.cursor_param, cursor.clone()));
        }
        if run.sync_mode != SyncMode::Full
            && let Some(since) = &run.started_after
        {
            query.push((&source.since_param, cursor_param(since)));
        }
        let pairs: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let url = shared::outbound::url_with_query(&provider.url(&source.path), &pairs)
            .map_err(|problem| anyhow::anyhow!("the source URL: {problem}"))?;
        let reply = self
            .http
            .call_json("GET", &url, &provider.auth_headers(None), None)
            .await
            .map_err(|problem| anyhow::anyhow!("the provider's API: {problem}"))?;
        anyhow::ensure!((200..300).contains(&reply.status), "the provider's API answered {}", reply.status);
        let records = field(&reply.body, &source.records_field)
            .and_then(Value::as_array)
            .ok_or_else(|| anyhow::anyhow!("the provider's answer has no {} array", source.records_field))?;
        anyhow::ensure!(
            records.len() <= MAX_RECORDS_PER_PAGE,
            "a page of {} records (at most {MAX_RECORDS_PER_PAGE})",
            records.len()
        );
        let next_cursor = match field(&reply.body, &source.next_cursor_field) {
            Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        let mut page = self.write_records(scope, connection, run, records).await?;
        page.next_cursor = next_cursor;
        Ok(page)
    }

    /// Writes a page's records to the connection's target. An `Err` is a
    /// failure of the page (the store, or a provider target that did not
    /// answer or answered 5xx/429): the page is read again from its
    /// checkpoint. A record the target refuses is the record's error.
    async fn write_records(
        &self,
        scope: &TenantScope,
        connection: &SyncConnection,
        run: &SyncRun,
        records: &[Value],
    ) -> anyhow::Result<PageResult> {
        let source = &connection.source;
        let mut page = PageResult {
            counts: RunCounts { pages: 1, ..RunCounts::default() },
            next_cursor: None,
            max_cursor_value: run.max_cursor_value.clone(),
            last_error: None,
        };
        // The page's records by key, the last of a repeated key winning.
        let mut keyed: Vec<(String, &Value)> = Vec::with_capacity(records.len());
        let mut position: HashMap<String, usize> = HashMap::new();
        for record in records {
            page.counts.records_read += 1;
            if let Some(cursor) = source.cursor_field.as_deref().and_then(|f| field(record, f)) {
                page.max_cursor_value = cursor_max(page.max_cursor_value.take(), cursor);
            }
            let Some(key) = key_of(record, &source.primary_key).filter(|k| key_fits(connection.target, k)) else {
                page.counts.errors += 1;
                page.last_error = Some(match connection.target {
                    TargetType::Customers => {
                        format!("a record without a usable {} (visible ASCII, 1-128)", source.primary_key)
                    }
                    _ => format!("a record without a usable {} (1-128 characters)", source.primary_key),
                });
                continue;
            };
            match position.get(&key) {
                Some(&at) => keyed[at].1 = record,
                None => {
                    position.insert(key.clone(), keyed.len());
                    keyed.push((key, record));
                }
            }
        }
        let keys: Vec<String> = keyed.iter().map(|(k, _)| k.clone()).collect();
        let audit = AuditContext::system("integrations-worker");
        let target = PlatformTarget { store: &self.store, scope, connection, audit: &audit };
        let provider = match connection.target {
            TargetType::Provider => {
                let provider_id = connection.target_config.provider_id.unwrap_or_default();
                let api = ProviderApi::open(&self.store, &self.sealing, scope, provider_id)
                    .await
                    .map_err(|why| anyhow::anyhow!("the target: {why}"))?;
                Some(api)
            }
            _ => None,
        };
        let mut current = target.current(&keys).await?;
        let marks = self.store.sync_marks(scope, connection.id, &keys).await?;
        let each = EachRecord { target, run, provider: provider.as_ref() };
        // Different records touch different target records: a few at a time.
        let mut pending = Vec::with_capacity(keyed.len());
        for (key, record) in keyed {
            let existing = current.remove(&key);
            let mark = marks.get(&key).cloned();
            pending.push(self.write_keyed(each, key, record, existing, mark));
        }
        let results: Vec<(String, Result<RunCounts, RecordError>)> =
            futures::stream::iter(pending).buffer_unordered(RECORDS_AT_ONCE).collect().await;
        for (key, result) in results {
            match result {
                Ok(written) => page.counts.add(&written),
                Err(RecordError::Refused(problem)) => {
                    page.counts.errors += 1;
                    page.last_error = Some(format!("record {key}: {problem}"));
                }
                Err(RecordError::Page(err)) => return Err(err.context(format!("record {key}"))),
            }
        }
        Ok(page)
    }

    /// [`Self::write_record`] with the record's key beside its result.
    async fn write_keyed(
        &self,
        each: EachRecord<'_>,
        key: String,
        record: &Value,
        existing: Option<TargetRecord>,
        mark: Option<String>,
    ) -> (String, Result<RunCounts, RecordError>) {
        let written = match each.provider {
            Some(provider) => self.send_record(each, provider, &key, record, mark.as_ref()).await,
            None => write_record(each, &key, record, existing.as_ref(), mark.as_ref()).await,
        };
        (key, written)
    }

    /// One record to a provider target: `PUT <path>/<key>` with the mapped
    /// body unless its hash is the mark's (sent already); a deletion is a
    /// `DELETE` of a record this connection sent.
    async fn send_record(
        &self,
        each: EachRecord<'_>,
        provider: &ProviderApi,
        key: &str,
        record: &Value,
        mark: Option<&String>,
    ) -> Result<RunCounts, RecordError> {
        let PlatformTarget { store, scope, connection, .. } = each.target;
        let mut counts = RunCounts::default();
        let path = connection.target_config.path.as_deref().unwrap_or_default();
        let url = shared::outbound::url_with_segment(&provider.url(path.trim_end_matches('/')), key)
            .map_err(RecordError::Refused)?;
        let deletion = is_deletion(connection, each.run, record);
        let body = Value::Object(map_record(record, &connection.field_mapping));
        let hash = format!("sha256:{}", shared::store::integrations::sha256_hex(body.to_string().as_bytes()));
        if deletion && mark.is_none() || !deletion && mark == Some(&hash) {
            counts.records_unchanged += 1;
            return Ok(counts);
        }
        let (method, body) = if deletion { ("DELETE", None) } else { ("PUT", Some(&body)) };
        let mut headers = vec![("idempotency-key", format!("{}:{key}:{hash}", connection.id))];
        headers.extend(provider.auth_headers(body));
        let reply = self
            .http
            .call_json(method, &url, &headers, body)
            .await
            .map_err(|problem| RecordError::Page(anyhow::anyhow!("the target provider: {problem}")))?;
        match reply.status {
            200..=299 => {}
            // Gone already is what a deletion wants.
            404 | 410 if deletion => {}
            429 | 500.. => {
                return Err(RecordError::Page(anyhow::anyhow!("the target provider answered {}", reply.status)));
            }
            status => return Err(RecordError::Refused(format!("the target provider answered {status}"))),
        }
        if deletion {
            store.delete_sync_mark(scope, connection.id, key).await.map_err(|e| RecordError::Page(e.into()))?;
            counts.records_deleted += 1;
        } else {
            store.put_sync_mark(scope, connection.id, key, &hash).await.map_err(|e| RecordError::Page(e.into()))?;
            if mark.is_some() {
                counts.records_updated += 1;
            } else {
                counts.records_created += 1;
            }
        }
        Ok(counts)
    }
}

/// Why a record was not written: the target refused it (the record's
/// error; the run goes on), or the page cannot go on (read again).
enum RecordError {
    Refused(String),
    Page(anyhow::Error),
}

fn is_deletion(connection: &SyncConnection, run: &SyncRun, record: &Value) -> bool {
    run.sync_mode == SyncMode::Delta && field(record, &connection.source.deleted_field) == Some(&Value::Bool(true))
}

/// One record to a platform target: what it changed, or why the target
/// refused it.
async fn write_record(
    each: EachRecord<'_>,
    key: &str,
    record: &Value,
    existing: Option<&TargetRecord>,
    mark: Option<&String>,
) -> Result<RunCounts, RecordError> {
    let target = each.target;
    let PlatformTarget { store, scope, connection, .. } = target;
    let mut counts = RunCounts::default();
    let deletion = is_deletion(connection, each.run, record);
    let mapped = map_record(record, &connection.field_mapping);
    let Some(current) = existing else {
        if deletion {
            counts.records_unchanged += 1;
            return Ok(counts);
        }
        let created = match target.write(key, &mapped, None).await.map_err(RecordError::Refused)? {
            Written::Created(created) | Written::Updated(created) | Written::Unchanged(created) => created,
        };
        remember(each, key, &created, None).await?;
        counts.records_created += 1;
        return Ok(counts);
    };
    let changed_since_written = mark != Some(&current.updated_at);
    let source_time = connection.source.cursor_field.as_deref().and_then(|f| field(record, f));
    let (resolution, conflict) =
        resolve(connection.conflict_resolution, changed_since_written, source_time, &current.updated_at);
    if conflict {
        counts.conflicts += 1;
    }
    match resolution {
        Resolution::Keep => counts.records_unchanged += 1,
        Resolution::Hold => {
            let conflict = SyncConflict {
                connection_id: connection.id,
                key: key.to_owned(),
                target_id: current.id,
                source_fields: Value::Object(mapped),
                target_fields: current.view.clone(),
                run_id: each.run.id,
                detected_at: now_rfc3339(),
            };
            store.put_sync_conflict(scope, &conflict).await.map_err(|e| RecordError::Page(e.into()))?;
            counts.records_unchanged += 1;
        }
        Resolution::Apply if deletion => {
            target.delete(current).await.map_err(RecordError::Refused)?;
            counts.records_deleted += 1;
        }
        Resolution::Apply => {
            match target.write(key, &mapped, Some(current)).await.map_err(RecordError::Refused)? {
                Written::Updated(after) => {
                    counts.records_updated += 1;
                    remember(each, key, &after, mark).await?;
                }
                // Nothing to write; the mark says so for next time.
                Written::Unchanged(after) | Written::Created(after) => {
                    counts.records_unchanged += 1;
                    remember(each, key, &after, mark).await?;
                }
            }
        }
    }
    Ok(counts)
}

/// Remembers the `updated_at` this connection's write left (skipped when
/// the mark says so already).
async fn remember(
    each: EachRecord<'_>,
    key: &str,
    record: &TargetRecord,
    mark: Option<&String>,
) -> Result<(), RecordError> {
    if mark == Some(&record.updated_at) {
        return Ok(());
    }
    let PlatformTarget { store, scope, connection, .. } = each.target;
    store.put_sync_mark(scope, connection.id, key, &record.updated_at).await.map_err(|e| RecordError::Page(e.into()))
}

/// `SYNC_TIME_BUDGET_SECONDS` (template.yaml: 20 of the 30 s timeout), 20
/// when unset or unreadable.
pub fn budget_from_env() -> std::time::Duration {
    let seconds = std::env::var("SYNC_TIME_BUDGET_SECONDS").ok().and_then(|v| v.parse::<f64>().ok()).unwrap_or(20.0);
    std::time::Duration::from_secs_f64(seconds.clamp(0.0, 900.0))
}
