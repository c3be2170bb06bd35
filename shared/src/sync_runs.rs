//! The sync runs queue's message (`SyncRunsQueue`, FIFO): which run of
//! which connection to take up. The API sends the first one; the worker
//! sends a continuation when its time budget is spent. The message group is
//! the connection, so one connection's messages are taken one at a time
//! and in order; the deduplication id is the run and its page count, so a
//! message sent twice for the same point of a run is delivered once.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

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
