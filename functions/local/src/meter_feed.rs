//! The billing worker's stream source, locally: what Lambda's DynamoDB event
//! source mapping (`BillingWorkerFunction`'s `TableChanges` event in
//! template.yaml) does in AWS. A second reader of the table's stream, beside
//! the outbox relay ([`crate::relay`]), with its own position in
//! `LOCAL_DIR/meter-feed.json`. It starts at `TRIM_HORIZON`, keeps the
//! records the template's `FilterCriteria` keeps ([`keeps`]), turns them into
//! [`StreamChange`]s and hands them to
//! [`billing_worker::meter::handle_changes`] in batches of up to 1 000, as
//! the function's work (`in_function`, so the AWS call log and the registry's
//! IAM check see them as `BillingWorkerFunction`'s).
//!
//! A failed batch is retried with back-off and the position does not move
//! (Lambda's semantics: the shard waits for its batch); after
//! `MaximumRetryAttempts` (10) failed retries the batch's description goes
//! to the `OnFailure` queue (`STREAM_DLQ_URL_BILLING_WORKER`, the
//! `BillingMeterDLQ`) in Lambda's shape and the feed moves on. Not
//! emulated: `BisectBatchOnFunctionError` (the whole batch is retried).
//! The handler must count a redelivered batch once either way (its
//! per-tenant checkpoint does).

use std::{collections::HashMap, path::PathBuf, time::Duration};

use anyhow::Result;
use aws_sdk_dynamodbstreams::types::{AttributeValue as StreamValue, Record};
use billing_worker::meter::StreamChange;
use shared::{aws::call_log::in_function, store::Store};
use tokio::task::JoinHandle;

use crate::{
    BILLING_WORKER,
    stream_reader::{Consumer, Position, StreamReader},
};

/// The template's filter: `dynamodb.Keys.SK.S` with one of these prefixes...
pub const SK_PREFIXES: [&str; 3] = ["RATE#USER#", "APIKEY#", "BILLING#PERIOD#"];
/// ...or exactly the tenant item's SK (the tenant item also holds the
/// credit balance, `shared::store::credits`).
pub const SK_EXACT: &str = shared::store::tenants::TENANT_SK;

/// Records per handler call (the mapping's BatchSize).
const BATCH: usize = 1000;
/// The mapping's MaximumBatchingWindowInSeconds: one call per second with
/// what gathered, not one per request (which doubled moto's load per API
/// call in the suite, docs/performance.md).
const BATCHING_WINDOW: Duration = Duration::from_secs(1);
/// The mapping's MaximumRetryAttempts.
const MAX_RETRY_ATTEMPTS: u32 = 10;
const MAX_BACK_OFF: Duration = Duration::from_secs(2);

pub struct MeterFeed {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub store: Store,
    pub table: String,
    pub checkpoint: PathBuf,
    /// Where a batch goes after its retries (`None`: logged and skipped).
    pub on_failure_queue_url: Option<String>,
}

/// Whether the template's FilterCriteria keeps a record with these keys.
pub fn keeps(keys: &HashMap<String, StreamValue>) -> bool {
    match keys.get("SK") {
        Some(StreamValue::S(sk)) => sk == SK_EXACT || SK_PREFIXES.iter().any(|p| sk.starts_with(p)),
        _ => false,
    }
}

/// A stream record as the billing worker takes it; `None` for a record that
/// the filter drops or that lacks what a Lambda record always has.
pub fn to_change(record: &Record) -> Option<StreamChange> {
    let data = record.dynamodb()?;
    let keys = data.keys()?;
    if !keeps(keys) {
        return None;
    }
    Some(StreamChange {
        event_id: record.event_id()?.to_owned(),
        event_name: record.event_name()?.as_str().to_owned(),
        sequence_number: data.sequence_number()?.to_owned(),
        at_epoch_seconds: data.approximate_creation_date_time().map_or(0, |t| t.secs()),
        keys: convert_map(keys)?,
        old_image: match data.old_image() {
            Some(image) => Some(convert_map(image)?),
            None => None,
        },
        new_image: match data.new_image() {
            Some(image) => Some(convert_map(image)?),
            None => None,
        },
    })
}

fn convert_map(map: &HashMap<String, StreamValue>) -> Option<HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
    map.iter().map(|(k, v)| Some((k.clone(), convert(v)?))).collect()
}

/// The streams SDK's AttributeValue as the DynamoDB SDK's (the same wire
/// type in two crates).
pub fn convert(value: &StreamValue) -> Option<aws_sdk_dynamodb::types::AttributeValue> {
    use aws_sdk_dynamodb::{primitives::Blob, types::AttributeValue as V};
    let blob = |b: &aws_sdk_dynamodbstreams::primitives::Blob| Blob::new(b.as_ref().to_vec());
    Some(match value {
        StreamValue::S(s) => V::S(s.clone()),
        StreamValue::N(n) => V::N(n.clone()),
        StreamValue::B(b) => V::B(blob(b)),
        StreamValue::Ss(v) => V::Ss(v.clone()),
        StreamValue::Ns(v) => V::Ns(v.clone()),
        StreamValue::Bs(v) => V::Bs(v.iter().map(blob).collect()),
        StreamValue::M(m) => V::M(convert_map(m)?),
        StreamValue::L(l) => V::L(l.iter().map(convert).collect::<Option<_>>()?),
        StreamValue::Null(b) => V::Null(*b),
        StreamValue::Bool(b) => V::Bool(*b),
        _ => return None,
    })
}

impl MeterFeed {
    pub fn spawn(self) -> JoinHandle<()> {
        tokio::spawn(async move {
            let sdk = shared::aws::load_sdk_config().await;
            let streams = aws_sdk_dynamodbstreams::Client::new(&sdk);
            loop {
                if let Err(err) = self.run(&streams).await {
                    tracing::warn!(error = ?err, "meter feed stopped; restarting");
                    tokio::time::sleep(MAX_BACK_OFF).await;
                }
            }
        })
    }

    async fn run(&self, streams: &aws_sdk_dynamodbstreams::Client) -> Result<()> {
        StreamReader {
            dynamodb: &self.dynamodb,
            streams,
            table: &self.table,
            checkpoint: &self.checkpoint,
            name: "meter feed",
            idle_poll: BATCHING_WINDOW,
            batching_window: true,
        }
        .run(self)
        .await
    }

    /// The handler's call and its retries; the stream position waits.
    async fn deliver(&self, batch: &[StreamChange], from: &Position) {
        let mut back_off = Duration::from_millis(50);
        for attempt in 0..=MAX_RETRY_ATTEMPTS {
            let result =
                in_function(BILLING_WORKER, billing_worker::meter::handle_changes(&self.store, batch.to_vec())).await;
            match result {
                Ok(()) => {
                    tracing::debug!(count = batch.len(), "stream changes metered");
                    return;
                }
                Err(err) if attempt < MAX_RETRY_ATTEMPTS => {
                    tracing::warn!(error = %format!("{err:#}"), attempt, count = batch.len(), "the meter failed a batch; retrying");
                    tokio::time::sleep(back_off).await;
                    back_off = (back_off * 2).min(MAX_BACK_OFF);
                }
                Err(err) => {
                    tracing::error!(error = %format!("{err:#}"), count = batch.len(), "the meter failed a batch after its retries");
                }
            }
        }
        self.park(batch, from).await;
    }

    /// Lambda's OnFailure record for a stream batch: where it was, not what.
    async fn park(&self, batch: &[StreamChange], from: &Position) {
        let Some(queue_url) = &self.on_failure_queue_url else {
            tracing::error!("no STREAM_DLQ_URL_BILLING_WORKER: the failed batch is skipped");
            return;
        };
        let (Some(first), Some(last)) = (batch.first(), batch.last()) else { return };
        let at = |secs: i64| chrono::DateTime::from_timestamp(secs, 0).unwrap_or_default().to_rfc3339();
        let body = serde_json::json!({
            "requestContext": {
                "requestId": uuid::Uuid::new_v4(),
                "functionArn": format!("local:{BILLING_WORKER}"),
                "condition": "RetryAttemptsExhausted",
                "approximateInvokeCount": MAX_RETRY_ATTEMPTS + 1,
            },
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
            "version": "1.0",
            "timestamp": chrono::Utc::now().to_rfc3339(),
            "DDBStreamBatchInfo": {
                "shardId": from.shard_id,
                "startSequenceNumber": first.sequence_number,
                "endSequenceNumber": last.sequence_number,
                "approximateArrivalOfFirstRecord": at(first.at_epoch_seconds),
                "approximateArrivalOfLastRecord": at(last.at_epoch_seconds),
                "batchSize": batch.len(),
                "streamArn": from.stream_arn,
            },
        });
        match self.sqs.send_message().queue_url(queue_url).message_body(body.to_string()).send().await {
            Ok(_) => tracing::error!(count = batch.len(), "failed stream batch parked in the meter DLQ"),
            Err(err) => tracing::error!(
                error = %aws_sdk_sqs::error::DisplayErrorContext(&err),
                "could not park the failed stream batch; it is skipped"
            ),
        }
    }
}

impl Consumer for MeterFeed {
    async fn consume(&self, records: &[Record], from: &Position) {
        let changes: Vec<StreamChange> = records.iter().filter_map(to_change).collect();
        for batch in changes.chunks(BATCH) {
            self.deliver(batch, from).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_dynamodbstreams::types::{OperationType, StreamRecord};

    use super::*;

    fn keys(sk: &str) -> HashMap<String, StreamValue> {
        HashMap::from([("PK".to_owned(), StreamValue::S("T#t1#".into())), ("SK".to_owned(), StreamValue::S(sk.into()))])
    }

    #[test]
    fn the_filter_is_the_templates() {
        for sk in ["RATE#USER#u1#2026-01-01T10:00", "APIKEY#k1", "BILLING#PERIOD#2026-01", "TENANT"] {
            assert!(keeps(&keys(sk)), "{sk}");
        }
        for sk in ["TENANTX", "USER#u1", "BILLING#SETTINGS#ACCOUNT", "USAGE#HOUR#2026-01-01T10", "CREDIT#1", "EVENT#1"]
        {
            assert!(!keeps(&keys(sk)), "{sk}");
        }
        let template = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../template.yaml"))
            .expect("template.yaml");
        let pattern = r#"{"dynamodb":{"Keys":{"SK":{"S":[{"prefix":"RATE#USER#"},{"prefix":"APIKEY#"},{"prefix":"BILLING#PERIOD#"},"TENANT"]}}}}"#;
        assert!(template.contains(pattern), "template.yaml's FilterCriteria changed: change keeps() with it");
    }

    #[test]
    fn records_become_changes() {
        let old = HashMap::from([
            ("SK".to_owned(), StreamValue::S("APIKEY#k1".into())),
            ("usage_count".to_owned(), StreamValue::N("41".into())),
        ]);
        let mut new = old.clone();
        new.insert("usage_count".into(), StreamValue::N("42".into()));
        new.insert(
            "nested".into(),
            StreamValue::M(HashMap::from([
                ("l".to_owned(), StreamValue::L(vec![StreamValue::Bool(true), StreamValue::Null(true)])),
                ("ss".to_owned(), StreamValue::Ss(vec!["a".into()])),
                ("b".to_owned(), StreamValue::B(aws_sdk_dynamodbstreams::primitives::Blob::new(vec![1, 2]))),
            ])),
        );
        let record = Record::builder()
            .event_id("e1")
            .event_name(OperationType::Modify)
            .dynamodb(
                StreamRecord::builder()
                    .set_keys(Some(keys("APIKEY#k1")))
                    .set_old_image(Some(old))
                    .set_new_image(Some(new))
                    .sequence_number("000000000000000000042")
                    .approximate_creation_date_time(aws_sdk_dynamodbstreams::primitives::DateTime::from_secs(
                        1_767_261_600,
                    ))
                    .build(),
            )
            .build();
        let change = to_change(&record).expect("kept");
        assert_eq!(change.event_id, "e1");
        assert_eq!(change.event_name, "MODIFY");
        assert_eq!(change.sequence_number, "000000000000000000042");
        assert_eq!(change.at_epoch_seconds, 1_767_261_600);
        use aws_sdk_dynamodb::types::AttributeValue as V;
        assert_eq!(change.keys["SK"], V::S("APIKEY#k1".into()));
        assert_eq!(change.old_image.as_ref().expect("old")["usage_count"], V::N("41".into()));
        let new = change.new_image.expect("new");
        assert_eq!(new["usage_count"], V::N("42".into()));
        let V::M(nested) = &new["nested"] else { panic!("map") };
        assert_eq!(nested["l"], V::L(vec![V::Bool(true), V::Null(true)]));
        assert_eq!(nested["ss"], V::Ss(vec!["a".into()]));
        assert_eq!(nested["b"], V::B(aws_sdk_dynamodb::primitives::Blob::new(vec![1, 2])));

        let dropped = Record::builder()
            .event_id("e2")
            .event_name(OperationType::Insert)
            .dynamodb(StreamRecord::builder().set_keys(Some(keys("USER#u1"))).sequence_number("43").build())
            .build();
        assert!(to_change(&dropped).is_none());
    }
}
