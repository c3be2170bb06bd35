//! Reading the table's DynamoDB stream from a kept position, as AWS's
//! stream pollers do (the outbox Pipe, the billing worker's event source
//! mapping): from `TRIM_HORIZON` the first time, then after the last
//! sequence number handled, kept in a file of `LOCAL_DIR` so a restarted
//! server goes on where it stopped. The consumer ([`Consumer`]) returns only
//! once a page of records is handled, so the position never passes what
//! was not. The emulator keeps one shard per stream; AWS splits shards over
//! time, which its pollers follow for us.

use std::{future::Future, path::Path, time::Duration};

use anyhow::{Context, Result};
use aws_sdk_dynamodbstreams::{
    error::DisplayErrorContext,
    types::{Record, ShardIteratorType},
};

/// Records per GetRecords (the stream's limit).
const PAGE: i32 = 1000;

/// Where a page of records came from.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Position {
    pub stream_arn: String,
    pub shard_id: String,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Checkpoint {
    #[serde(flatten)]
    position: Position,
    sequence_number: String,
}

/// What a reader hands each page of records to.
pub trait Consumer {
    /// Handles the page (waiting and retrying as its AWS counterpart would);
    /// the position moves past it once this returns.
    fn consume(&self, records: &[Record], from: &Position) -> impl Future<Output = ()> + Send;
}

pub struct StreamReader<'a> {
    pub dynamodb: &'a aws_sdk_dynamodb::Client,
    pub streams: &'a aws_sdk_dynamodbstreams::Client,
    pub table: &'a str,
    pub checkpoint: &'a Path,
    /// Who reads, for the logs ("outbox relay", "meter feed").
    pub name: &'static str,
    /// The wait after an empty page, or after every page with
    /// `batching_window` (Lambda's MaximumBatchingWindowInSeconds: records
    /// gather for that long, so a handler gets them together rather than
    /// one per request).
    pub idle_poll: Duration,
    pub batching_window: bool,
}

impl StreamReader<'_> {
    /// Reads until the stream fails (the caller restarts it).
    pub async fn run(&self, consumer: &impl Consumer) -> Result<()> {
        let stream_arn = self.stream_arn().await?;
        let shard_id = self.shard_id(&stream_arn).await?;
        let position = Position { stream_arn, shard_id };
        let mut iterator = self.first_iterator(&position).await?;
        tracing::info!(stream_arn = %position.stream_arn, "{} started", self.name);
        loop {
            let output = self
                .streams
                .get_records()
                .shard_iterator(&iterator)
                .limit(PAGE)
                .send()
                .await
                .map_err(|e| anyhow::anyhow!("{}", DisplayErrorContext(&e)))?;
            let records = output.records();
            if !records.is_empty() {
                consumer.consume(records, &position).await;
            }
            if let Some(last) = records.iter().rev().find_map(|r| r.dynamodb()?.sequence_number()) {
                self.save(&Checkpoint { position: position.clone(), sequence_number: last.to_owned() });
            }
            match output.next_shard_iterator() {
                Some(next) => iterator = next.to_owned(),
                None => anyhow::bail!("the shard was closed"),
            }
            if records.is_empty() || self.batching_window {
                tokio::time::sleep(self.idle_poll).await;
            }
        }
    }

    async fn stream_arn(&self) -> Result<String> {
        let table = self
            .dynamodb
            .describe_table()
            .table_name(self.table)
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("{}", aws_sdk_dynamodb::error::DisplayErrorContext(&e)))?;
        table.table().and_then(|t| t.latest_stream_arn()).map(str::to_owned).with_context(|| {
            format!("the table has no stream: template.yaml's StreamSpecification feeds the {}", self.name)
        })
    }

    async fn shard_id(&self, stream_arn: &str) -> Result<String> {
        let stream = self
            .streams
            .describe_stream()
            .stream_arn(stream_arn)
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("{}", DisplayErrorContext(&e)))?;
        stream
            .stream_description()
            .and_then(|d| d.shards().first())
            .and_then(|s| s.shard_id())
            .map(str::to_owned)
            .context("the stream has no shard")
    }

    async fn first_iterator(&self, position: &Position) -> Result<String> {
        let saved = self
            .load()
            .filter(|c| c.position.stream_arn == position.stream_arn && c.position.shard_id == position.shard_id);
        let request = self.streams.get_shard_iterator().stream_arn(&position.stream_arn).shard_id(&position.shard_id);
        let request = match &saved {
            Some(c) => {
                request.shard_iterator_type(ShardIteratorType::AfterSequenceNumber).sequence_number(&c.sequence_number)
            }
            None => request.shard_iterator_type(ShardIteratorType::TrimHorizon),
        };
        let output = request.send().await.map_err(|e| anyhow::anyhow!("{}", DisplayErrorContext(&e)))?;
        output.shard_iterator().map(str::to_owned).context("no shard iterator")
    }

    fn load(&self) -> Option<Checkpoint> {
        serde_json::from_slice(&std::fs::read(self.checkpoint).ok()?).ok()
    }

    fn save(&self, checkpoint: &Checkpoint) {
        let write = serde_json::to_vec(checkpoint)
            .map_err(anyhow::Error::from)
            .and_then(|bytes| Ok(std::fs::write(self.checkpoint, bytes)?));
        if let Err(err) = write {
            tracing::warn!(error = ?err, path = %self.checkpoint.display(), "could not keep the {} position", self.name);
        }
    }
}
