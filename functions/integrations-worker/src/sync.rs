//! Sync runs (`SyncRunsQueue`, FIFO, one message group per connection):
//! a run reads its provider's API one page at a time, writes each page's
//! records to the tenant's customers, and checkpoints the run (counts, the
//! next page's cursor, the largest cursor value seen) before the next page.
//!
//! - A message names a run; the run's stored checkpoint says where to go
//!   on, so a redelivered message (a crash, a timeout, a failed page)
//!   resumes after the last page that was checkpointed. A page replayed
//!   after a crash between its writes and its checkpoint writes the same
//!   customers again, by their `external_id`: no duplicates, and a customer
//!   that already matches is not written.
//! - Once [`IntegrationsWorker::sync_budget`] is spent the run hands itself
//!   on: a new message in the same group, deduplicated by run and page.
//! - A page that keeps failing ends the run `failed` on the queue's last
//!   receive ([`SYNC_MAX_RECEIVES`], the redrive policy's; locally the
//!   local stack's); the connection counts the failure.
//!
//! Conflicts: each customer the connection writes gets a mark with the
//! `updated_at` the write left. A record whose customer's `updated_at` is
//! not its mark (someone else changed it, or the connection never wrote
//! it) is a conflict, settled by the connection's rule
//! (`domain::sync::resolve`).

use std::collections::HashMap;

use futures::StreamExt;

use serde_json::{Map, Value};
use shared::{
    audit::AuditContext,
    auth::{
        TenantScope,
        proofs::{OwnQueue, TenantSchedule},
    },
    domain::{
        customer::{Customer, ExternalId, Metadata},
        ids::derived_id,
        now_rfc3339, rfc3339,
        schedule::{ScheduleTarget, ScheduledFiring},
        sync::{
            MAX_RECORDS_PER_PAGE, Resolution, RunCounts, RunStatus, SyncConflict, SyncConnection, SyncMode, SyncRun,
            cursor_max, cursor_param, field, key_of, map_record, resolve,
        },
        validate::is_email,
    },
    events::catalogue::IntegrationEventReceived,
    store::{
        customers::CustomerFields,
        sync::{RunEnd, RunStart},
    },
    sync_runs::{self, Started, SyncRunMessage},
};

use crate::{IntegrationsWorker, Outcome};

/// Receives of one run's message before the run is given up (the redrive
/// policy's maxReceiveCount in template.yaml says the same).
pub const SYNC_MAX_RECEIVES: u32 = 5;
/// Records of a page written at once (each its own customer).
const RECORDS_AT_ONCE: usize = 8;

/// What every record of one page shares.
#[derive(Clone, Copy)]
struct EachRecord<'a> {
    scope: &'a TenantScope,
    connection: &'a SyncConnection,
    run: &'a SyncRun,
    audit: &'a AuditContext,
}

/// An inbound event's records for a real-time connection.
fn inbound_records(received: &IntegrationEventReceived, records_field: &str) -> Result<Vec<Value>, String> {
    if !received.payload_on_bus {
        return Err("the event's body is over 64 KiB: a real-time sync takes it from the bus only".to_owned());
    }
    match (field(&received.data, records_field), &received.data) {
        (Some(Value::Array(records)), _) if records.len() <= MAX_RECORDS_PER_PAGE => Ok(records.clone()),
        (Some(Value::Array(records)), _) => {
            Err(format!("an event of {} records (at most {MAX_RECORDS_PER_PAGE})", records.len()))
        }
        (_, Value::Object(_)) => Ok(vec![received.data.clone()]),
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
        let mut applied = 0;
        for connection in
            connections.iter().filter(|c| c.real_time && c.is_active && c.source.provider_id == received.provider_id)
        {
            let run_id = derived_id(&[&connection.id.to_string(), &received.inbound_id.to_string(), "event run"]);
            let fresh = sync_runs::new_run(scope, connection, "event", run_id);
            let fresh = SyncRun { started_after: None, ..fresh };
            let run = match self.store.start_sync_run(scope, &fresh).await? {
                RunStart::Started => fresh,
                // This event's run exists: an earlier delivery started it
                // (and may still hold the connection with it). Finished, the
                // event is done here; unfinished, this delivery takes it up.
                RunStart::AlreadyStarted | RunStart::InProgress => {
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
            let records = match inbound_records(received, &connection.source.records_field) {
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
        let provider = self
            .store
            .get_provider(scope, connection.source.provider_id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("the connection's provider was deleted"))?;
        let base = provider.api_base_url.ok_or_else(|| anyhow::anyhow!("the provider has no api_base_url"))?;
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
            let page = self.read_page(scope, connection, run, &base).await?;
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
        base: &str,
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
        let url = shared::outbound::url_with_query(&format!("{}{}", base.trim_end_matches('/'), source.path), &pairs)
            .map_err(|problem| anyhow::anyhow!("the source URL: {problem}"))?;
        let reply = self
            .http
            .call_json("GET", &url, &[], None)
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
            let Some(key) = key_of(record, &source.primary_key).filter(|k| ExternalId::parse(k).is_ok()) else {
                page.counts.errors += 1;
                page.last_error =
                    Some(format!("a record without a usable {} (visible ASCII, 1-128)", source.primary_key));
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
        let customers = self.store.customers_by_external_ids(scope, &keys).await?;
        let marks = self.store.sync_marks(scope, connection.id, &keys).await?;
        let audit = AuditContext::system("integrations-worker");
        let each = EachRecord { scope, connection, run, audit: &audit };
        // Different records touch different customers: a few at a time.
        let mut pending = Vec::with_capacity(keyed.len());
        for (key, record) in keyed {
            let (customer, mark) = (customers.get(&key), marks.get(&key));
            pending.push(self.write_keyed(&each, key, record, customer, mark));
        }
        let results: Vec<(String, Result<RunCounts, String>)> =
            futures::stream::iter(pending).buffer_unordered(RECORDS_AT_ONCE).collect().await;
        for (key, result) in results {
            match result {
                Ok(written) => page.counts.add(&written),
                Err(problem) => {
                    page.counts.errors += 1;
                    page.last_error = Some(format!("record {key}: {problem}"));
                }
            }
        }
        Ok(page)
    }

    /// [`Self::write_record`] with the record's key beside its result.
    async fn write_keyed(
        &self,
        each: &EachRecord<'_>,
        key: String,
        record: &Value,
        existing: Option<&Customer>,
        mark: Option<&String>,
    ) -> (String, Result<RunCounts, String>) {
        let written = self.write_record(each, &key, record, existing, mark).await;
        (key, written)
    }

    /// One record: what it changed, or why the target refused it.
    async fn write_record(
        &self,
        each: &EachRecord<'_>,
        key: &str,
        record: &Value,
        existing: Option<&Customer>,
        mark: Option<&String>,
    ) -> Result<RunCounts, String> {
        let EachRecord { scope, connection, run, audit } = *each;
        let source = &connection.source;
        let mut counts = RunCounts::default();
        let deletion =
            run.sync_mode == SyncMode::Delta && field(record, &source.deleted_field) == Some(&Value::Bool(true));
        let mapped = map_record(record, &connection.field_mapping)?;
        if let Some(Some(email)) = &mapped.email
            && !is_email(email)
        {
            return Err("email: not a valid email address".to_owned());
        }
        if let Some(Some(name)) = &mapped.name
            && !(1..=200).contains(&name.chars().count())
        {
            return Err("name: must have 1 to 200 characters".to_owned());
        }
        let Some(customer) = existing else {
            if deletion {
                counts.records_unchanged += 1;
                return Ok(counts);
            }
            let fields = fields_of(&mapped, None)?;
            let (created, _) =
                self.store.upsert_customer(scope, key, &fields, audit).await.map_err(|e| e.to_string())?;
            self.mark(scope, connection, key, &created, None).await?;
            counts.records_created += 1;
            return Ok(counts);
        };
        let written_at = rfc3339(customer.updated_at);
        let changed_since_written = mark != Some(&written_at);
        let source_time = source.cursor_field.as_deref().and_then(|f| field(record, f));
        let (resolution, conflict) =
            resolve(connection.conflict_resolution, changed_since_written, source_time, &written_at);
        if conflict {
            counts.conflicts += 1;
        }
        match resolution {
            Resolution::Keep => counts.records_unchanged += 1,
            Resolution::Hold => {
                let conflict = SyncConflict {
                    connection_id: connection.id,
                    key: key.to_owned(),
                    customer_id: customer.id,
                    source_fields: mapped.to_json(),
                    target_fields: serde_json::to_value(customer.view()).map_err(|e| e.to_string())?,
                    run_id: run.id,
                    detected_at: now_rfc3339(),
                };
                self.store.put_sync_conflict(scope, &conflict).await.map_err(|e| e.to_string())?;
                counts.records_unchanged += 1;
            }
            Resolution::Apply if deletion => {
                self.store.delete_customer(scope, customer.id, audit).await.map_err(|e| e.to_string())?;
                counts.records_deleted += 1;
            }
            Resolution::Apply => {
                let fields = fields_of(&mapped, Some(customer))?;
                if !changes(&fields, customer) {
                    // Nothing to write; the mark says so for next time.
                    counts.records_unchanged += 1;
                    self.mark(scope, connection, key, customer, mark).await?;
                    return Ok(counts);
                }
                let (after, _) =
                    self.store.upsert_customer(scope, key, &fields, audit).await.map_err(|e| e.to_string())?;
                if after.updated_at == customer.updated_at {
                    counts.records_unchanged += 1;
                } else {
                    counts.records_updated += 1;
                }
                self.mark(scope, connection, key, &after, mark).await?;
            }
        }
        Ok(counts)
    }

    /// Remembers the `updated_at` this connection's write left (skipped
    /// when the mark says so already).
    async fn mark(
        &self,
        scope: &TenantScope,
        connection: &SyncConnection,
        key: &str,
        customer: &Customer,
        mark: Option<&String>,
    ) -> Result<(), String> {
        let written_at = rfc3339(customer.updated_at);
        if mark == Some(&written_at) {
            return Ok(());
        }
        self.store.put_sync_mark(scope, connection.id, key, &written_at).await.map_err(|e| e.to_string())
    }
}

/// Whether the upsert would change the customer.
fn changes(fields: &CustomerFields, customer: &Customer) -> bool {
    fields.email.as_ref().is_some_and(|email| *email != customer.email)
        || fields.name.as_ref().is_some_and(|name| *name != customer.name)
        || fields.metadata.as_ref().is_some_and(|metadata| *metadata != customer.metadata)
}

/// The upsert's fields: mapped metadata keys go over the customer's own
/// (the rest of its metadata stays), checked as the API checks metadata.
fn fields_of(
    mapped: &shared::domain::sync::MappedFields,
    existing: Option<&Customer>,
) -> Result<CustomerFields, String> {
    let metadata = if mapped.metadata.is_empty() {
        None
    } else {
        let mut merged: Map<String, Value> = existing.map(|c| c.metadata.clone()).unwrap_or_default();
        merged.extend(mapped.metadata.clone());
        Some(Metadata::parse(Value::Object(merged)).map_err(|problem| format!("metadata: {problem}"))?.into_inner())
    };
    Ok(CustomerFields { email: mapped.email.clone(), name: mapped.name.clone(), metadata })
}

/// `SYNC_TIME_BUDGET_SECONDS` (template.yaml: 20 of the 30 s timeout), 20
/// when unset or unreadable.
pub fn budget_from_env() -> std::time::Duration {
    let seconds = std::env::var("SYNC_TIME_BUDGET_SECONDS").ok().and_then(|v| v.parse::<f64>().ok()).unwrap_or(20.0);
    std::time::Duration::from_secs_f64(seconds.clamp(0.0, 900.0))
}
