//! The one way an SQS worker runs. A worker implements [`Worker`] (one
//! message in, an outcome or an error out); [`handle_batch`] gives it a
//! batch the way Lambda's event source mapping does, and [`run_worker`] is
//! its whole Lambda `main`. Each message is handled on its own, concurrently,
//! and only the failed ones are reported back (partial batch failure), so
//! SQS redelivers just those and, past maxReceiveCount, moves them to the
//! DLQ. The local server's pollers call [`handle_batch`] too.

use std::future::Future;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};

pub trait Worker: Send + Sync + 'static {
    /// What handling one message did (logged; tests assert it).
    type Outcome: std::fmt::Debug + Send;

    /// Handles one message. An error leaves it to SQS to redeliver: handling
    /// must be idempotent.
    fn handle(&self, message: &SqsMessage) -> impl Future<Output = anyhow::Result<Self::Outcome>> + Send;
}

/// Handles every message of a batch concurrently; answers the failed ones.
pub async fn handle_batch<W: Worker>(worker: &W, event: SqsEvent) -> SqsBatchResponse {
    let records = &event.records;
    let results = futures::future::join_all(records.iter().map(|m| worker.handle(m))).await;
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

/// A worker's Lambda `main`: built once per cold start by `build`, then fed
/// SQS batches until the environment is retired.
pub async fn run_worker<W: Worker>(worker: W) -> Result<(), lambda_runtime::Error> {
    let worker = &worker;
    lambda_runtime::run(lambda_runtime::service_fn(move |event: lambda_runtime::LambdaEvent<SqsEvent>| async move {
        Ok::<SqsBatchResponse, lambda_runtime::Error>(handle_batch(worker, event.payload).await)
    }))
    .await
}
