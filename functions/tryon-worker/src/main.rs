//! Lambda entry point of the tryon-worker: wiring only. Two kinds of event:
//! SQS batches of `tryon.item.requested`, and the scheduled sweep that
//! republishes item events lost between a session's commit and PutEvents.

use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;
use shared::{aws::AwsClients, blobs::Blobs, config::Config, events::EventPublisher, store::Store};
use tryon_worker::{SWEEP_MIN_AGE_SECONDS, TryonWorker, engine::ConfiguredEngine, outbound::Fetcher};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init();
    let config = Config::from_env()?;
    let clients = AwsClients::new(&shared::aws::load_sdk_config().await);
    let worker = TryonWorker {
        store: Store::new(clients.dynamodb.clone(), config.table_name.clone()),
        blobs: Blobs::new(clients.s3.clone(), config.blob_bucket_name.clone()),
        events: EventPublisher::new(clients.eventbridge.clone(), config.event_bus_name.clone()),
        engine: ConfiguredEngine::from_env()?,
        garments: Fetcher::new(config.local_mode)?,
    };
    let worker = &worker;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        if event.payload.get("Records").is_some() {
            let batch = serde_json::from_value(event.payload)?;
            Ok::<Value, lambda_runtime::Error>(serde_json::to_value(worker.handle_batch(batch).await)?)
        } else {
            let republished = worker.sweep(chrono::Duration::seconds(SWEEP_MIN_AGE_SECONDS)).await?;
            Ok(serde_json::json!({ "republished": republished }))
        }
    }))
    .await
}
