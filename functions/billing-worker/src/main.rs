//! Lambda entry point of the billing worker: wiring only. One function,
//! two event sources: the table's stream (the meter) and the jobs queue.

// The meter and the jobs nest deep futures (the SDK's, in every commit): the
// layout of this entry point's future goes past the default query depth.
#![recursion_limit = "256"]

use billing_worker::{BillingWorker, meter};
use shared::{aws::AwsClients, blobs::Blobs, config::Config, store::Store};

// One thread: no function here gets more than one vCPU, and a second runtime
// thread only adds a cross-thread wake-up to every I/O (docs/performance.md).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init();
    let config = Config::from_env()?;
    let clients = AwsClients::new(&shared::aws::load_sdk_config().await);
    let worker = BillingWorker {
        store: Store::new(clients.dynamodb.clone(), config.table_name.clone()),
        blobs: Blobs::new(clients.s3.clone(), config.blob_bucket_name.clone()),
    };
    let worker = &worker;
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: lambda_runtime::LambdaEvent<serde_json::Value>| async move {
            let from_stream = event.payload["Records"][0]["eventSource"] == "aws:dynamodb";
            if from_stream {
                // An error fails the batch: Lambda bisects and retries it,
                // and the meter's checkpoints make a retry count once.
                meter::handle_changes(&worker.store, meter::changes_of_lambda_event(&event.payload)).await?;
                return Ok::<serde_json::Value, lambda_runtime::Error>(serde_json::json!({"batchItemFailures": []}));
            }
            let batch = serde_json::from_value(event.payload)?;
            Ok(serde_json::to_value(shared::worker::handle_batch(worker, batch).await)?)
        },
    ))
    .await
}
