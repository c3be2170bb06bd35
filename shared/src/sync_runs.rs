//! The sync runs queue's message (`SyncRunsQueue`, FIFO): which run of
//! which connection to take up. The API sends the first one; the worker
//! sends a continuation when its time budget is spent. The message group is
//! the connection, so one connection's messages are taken one at a time
//! and in order; the deduplication id is the run and its page count, so a
//! message sent twice for the same point of a run is delivered once.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{
    auth::TenantScope,
    domain::{
        now_rfc3339,
        sync::{RunCounts, RunStatus, SyncConnection, SyncRun},
    },
    error::{AppError, AppResult},
    store::{Store, sync::RunStart},
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncRunMessage {
    pub tenant_id: Uuid,
    pub connection_id: Uuid,
    pub run_id: Uuid,
}

/// The queue's body: `{"sync_run": {...}}`, so the worker tells it from the
/// other messages it takes.
#[derive(Debug, Serialize, Deserialize)]
pub struct SyncRunEnvelope {
    pub sync_run: SyncRunMessage,
}

/// The queue, from `SYNC_RUNS_QUEUE_URL`.
pub fn queue_url() -> anyhow::Result<String> {
    std::env::var("SYNC_RUNS_QUEUE_URL").map_err(|_| anyhow::anyhow!("SYNC_RUNS_QUEUE_URL is not set"))
}

/// Sends the message for `run` at `pages_done` pages.
pub async fn send(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    message: SyncRunMessage,
    pages_done: i64,
) -> anyhow::Result<()> {
    let body = serde_json::to_string(&SyncRunEnvelope { sync_run: message })?;
    sqs.send_message()
        .queue_url(queue_url)
        .message_body(body)
        .message_group_id(message.connection_id.to_string())
        .message_deduplication_id(format!("{}-{pages_done}", message.run_id))
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("{}", aws_sdk_sqs::error::DisplayErrorContext(&e)))?;
    Ok(())
}

/// A run of `connection`, `queued`, reading after its checkpoint when its
/// mode reads changes only.
pub fn new_run(scope: &TenantScope, connection: &SyncConnection, trigger: &str, run_id: Uuid) -> SyncRun {
    SyncRun {
        id: run_id,
        connection_id: connection.id,
        tenant_id: scope.tenant_id(),
        status: RunStatus::Queued,
        sync_mode: connection.sync_mode,
        trigger: trigger.to_owned(),
        started_after: if connection.sync_mode.reads_changes_only() { connection.checkpoint.clone() } else { None },
        page_cursor: None,
        max_cursor_value: None,
        counts: RunCounts::default(),
        invocations: 0,
        last_error: None,
        created_at: now_rfc3339(),
        started_at: None,
        finished_at: None,
        duration_ms: None,
    }
}

/// What [`start`] did.
#[derive(Debug)]
pub enum Started {
    /// The run is queued.
    Run(Box<SyncRun>),
    /// Another run holds the connection (its id, if it still does).
    InProgress(Option<Uuid>),
    /// A run with this id exists (a scheduled firing delivered again).
    AlreadyStarted,
}

/// Starts a run of `connection` (the API's manual run, a schedule's
/// firing): claims the connection for it and queues its first message. A
/// run that cannot be queued is ended at once, so the connection is free.
pub async fn start(
    store: &Store,
    sqs: &aws_sdk_sqs::Client,
    scope: &TenantScope,
    connection: &SyncConnection,
    trigger: &str,
    run_id: Uuid,
) -> AppResult<Started> {
    // A run reading after the checkpoint starts from the connection as
    // read only if no run succeeded since: a run ending between the read
    // and the start would otherwise have its records read again.
    let mut connection = std::borrow::Cow::Borrowed(connection);
    let mut attempts = 0;
    let run = loop {
        let run = new_run(scope, &connection, trigger, run_id);
        let started = if run.started_after.is_some() || connection.sync_mode.reads_changes_only() {
            store.start_sync_run_after(scope, &run, &connection).await?
        } else {
            store.start_sync_run(scope, &run).await?
        };
        match started {
            RunStart::Started => break run,
            RunStart::InProgress => {
                let active = store.get_sync_connection(scope, connection.id).await?.and_then(|c| c.active_run_id);
                return Ok(Started::InProgress(active));
            }
            RunStart::AlreadyStarted => return Ok(Started::AlreadyStarted),
            RunStart::CheckpointMoved if attempts < 3 => {
                attempts += 1;
                let fresh = store.get_sync_connection(scope, connection.id).await?;
                connection = std::borrow::Cow::Owned(fresh.ok_or_else(|| AppError::not_found("sync connection"))?);
            }
            RunStart::CheckpointMoved => {
                return Err(AppError::conflict(
                    "the connection's runs kept finishing while this one started; try again",
                ));
            }
        }
    };
    let message = SyncRunMessage { tenant_id: scope.tenant_id(), connection_id: connection.id, run_id: run.id };
    let sent = match queue_url() {
        Ok(queue_url) => send(sqs, &queue_url, message, 0).await,
        Err(err) => Err(err),
    };
    if let Err(err) = sent {
        store.abandon_sync_run(scope, &run, "the run could not be queued").await?;
        return Err(AppError::internal(err));
    }
    Ok(Started::Run(Box::new(run)))
}
