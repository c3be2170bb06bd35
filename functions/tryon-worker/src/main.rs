//! Lambda entry point of the tryon-worker: wiring only (SQS batches of
//! `tryon.item.requested`).

use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;
use shared::{aws::AwsClients, blobs::Blobs, config::Config, events::EventPublisher, store::Store};
use tryon_worker::{TryonWorker, engine::ConfiguredEngine, outbound::Fetcher};

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
        let batch = serde_json::from_value(event.payload)?;
        Ok::<Value, lambda_runtime::Error>(serde_json::to_value(worker.handle_batch(batch).await)?)
    }))
    .await
}
