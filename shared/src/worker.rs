//! The one way an SQS worker runs. A worker implements [`Worker`] (one
//! message in, an outcome or an error out); [`handle_batch`] gives it a
//! batch the way Lambda's event source mapping does, and [`run_worker`] is
//! its whole Lambda `main`. Each message is handled on its own, concurrently,
//! and only the failed ones are reported back (partial batch failure), so
//! SQS redelivers just those and, past maxReceiveCount, moves them to the
//! DLQ. The local server's pollers call [`handle_batch`] too.
//!
//! On Lambda each message must also be done before the invocation's
//! deadline ([`handle_batch_until`]): one still running when only
//! [`RESPONSE_MARGIN`] is left is cut off and reported failed, so the batch
//! answers in time and SQS redelivers that message alone. Past the deadline
//! Lambda would end the invocation and every message of the batch, finished
//! or not, would come back.

use std::{
    future::Future,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};

pub trait Worker: Send + Sync + 'static {
    /// What handling one message did (logged; tests assert it).
    type Outcome: std::fmt::Debug + Send;

    /// Handles one message. An error leaves it to SQS to redeliver: handling
    /// must be idempotent.
    fn handle(&self, message: &SqsMessage) -> impl Future<Output = anyhow::Result<Self::Outcome>> + Send;
}

/// What is left of an invocation for answering once the messages still
/// running are cut off: building and returning the batch response.
pub const RESPONSE_MARGIN: Duration = Duration::from_secs(2);

/// Handles every message of a batch concurrently; answers the failed ones.
pub async fn handle_batch<W: Worker>(worker: &W, event: SqsEvent) -> SqsBatchResponse {
    handle_batch_until(worker, event, None).await
}

/// [`handle_batch`], each message cut off at `deadline` (if any): a message
/// not handled by then is a failure like any other, redelivered by SQS. Its
/// handling stops at an `.await`, as it would when Lambda times out, which
/// [`Worker::handle`]'s idempotency already covers.
pub async fn handle_batch_until<W: Worker>(
    worker: &W,
    event: SqsEvent,
    deadline: Option<tokio::time::Instant>,
) -> SqsBatchResponse {
    let records = &event.records;
    let results = futures::future::join_all(records.iter().map(|m| async move {
        let Some(deadline) = deadline else { return worker.handle(m).await };
        tokio::time::timeout_at(deadline, worker.handle(m)).await.unwrap_or_else(|_| {
            Err(anyhow::anyhow!("not handled before the invocation's deadline (less {RESPONSE_MARGIN:?}); cut off"))
        })
    }))
    .await;
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

/// When a batch's messages must be done: the invocation's deadline
/// (lambda_runtime's `Context::deadline`, milliseconds since the epoch) less
/// [`RESPONSE_MARGIN`], on tokio's clock.
pub fn items_deadline(invocation_deadline_ms: u64) -> tokio::time::Instant {
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
    let left =
        Duration::from_millis(u64::try_from(u128::from(invocation_deadline_ms).saturating_sub(now_ms)).unwrap_or(0));
    tokio::time::Instant::now() + left.saturating_sub(RESPONSE_MARGIN)
}

/// A worker's Lambda `main`: built once per cold start by `build`, then fed
/// SQS batches until the environment is retired, each message cut off
/// before the invocation's deadline ([`items_deadline`]).
pub async fn run_worker<W: Worker>(worker: W) -> Result<(), lambda_runtime::Error> {
    let worker = &worker;
    lambda_runtime::run(lambda_runtime::service_fn(move |event: lambda_runtime::LambdaEvent<SqsEvent>| async move {
        let deadline = items_deadline(event.context.deadline);
        Ok::<SqsBatchResponse, lambda_runtime::Error>(handle_batch_until(worker, event.payload, Some(deadline)).await)
    }))
    .await
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// Handles `fast` at once and `slow` after a minute.
    #[derive(Default)]
    struct Sleepy {
        finished: AtomicUsize,
    }

    impl Worker for Sleepy {
        type Outcome = ();

        async fn handle(&self, message: &SqsMessage) -> anyhow::Result<()> {
            if message.body.as_deref() == Some("slow") {
                tokio::time::sleep(Duration::from_secs(60)).await;
            }
            self.finished.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    }

    fn batch(bodies: &[&str]) -> SqsEvent {
        let mut event = SqsEvent::default();
        for (n, body) in bodies.iter().enumerate() {
            let mut message = SqsMessage::default();
            message.message_id = Some(format!("m{n}"));
            message.body = Some((*body).to_owned());
            event.records.push(message);
        }
        event
    }

    #[tokio::test]
    async fn a_message_past_the_deadline_fails_alone_and_the_batch_answers_in_time() {
        let worker = Sleepy::default();
        let started = tokio::time::Instant::now();
        let deadline = started + Duration::from_millis(300);
        let response = handle_batch_until(&worker, batch(&["fast", "slow", "fast"]), Some(deadline)).await;
        let failed: Vec<&str> = response.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect();
        assert_eq!(failed, ["m1"], "only the slow message is retried");
        assert_eq!(worker.finished.load(Ordering::SeqCst), 2);
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(300) && took < Duration::from_secs(5),
            "answered at the deadline: {took:?}"
        );
    }

    #[tokio::test]
    async fn the_deadline_leaves_the_margin_of_what_lambda_gives() {
        let now_ms =
            u64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_millis()).expect("ms");
        let left = items_deadline(now_ms + 30_000).saturating_duration_since(tokio::time::Instant::now());
        assert!(left <= Duration::from_secs(28) && left > Duration::from_secs(27), "{left:?}");
        // An invocation already past its deadline cuts off at once.
        assert!(items_deadline(now_ms.saturating_sub(1_000)) <= tokio::time::Instant::now());
    }
}
