//! What every SQS worker does with a batch: handle each message on its own,
//! concurrently, and report only the failed ones back (partial batch
//! failure), so SQS redelivers just those and, past maxReceiveCount, moves
//! them to the DLQ.

use std::future::Future;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsMessage};

pub async fn handle_batch<'a, T, F, Fut>(records: &'a [SqsMessage], handle: F) -> SqsBatchResponse
where
    T: std::fmt::Debug,
    F: Fn(&'a SqsMessage) -> Fut,
    Fut: Future<Output = anyhow::Result<T>>,
{
    let results = futures::future::join_all(records.iter().map(handle)).await;
    let mut response = SqsBatchResponse::default();
    for (message, result) in records.iter().zip(results) {
        let id = message.message_id.clone().unwrap_or_default();
        match result {
            Ok(outcome) => tracing::info!(message_id = %id, ?outcome, "message handled"),
            Err(err) => {
                tracing::error!(message_id = %id, error = ?err, "message failed; SQS will redeliver it");
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = id;
                response.batch_item_failures.push(failure);
            }
        }
    }
    response
}
