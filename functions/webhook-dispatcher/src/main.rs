//! Lambda entry point of the webhook-dispatcher: wiring only (SQS batches
//! from the events queue and the deliveries queue).

use anyhow::Context;
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;
use shared::{aws::AwsClients, config::Config, events::EventPublisher, outbound::Fetcher, store::Store};
use webhook_dispatcher::Dispatcher;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init();
    let config = Config::from_env()?;
    let clients = AwsClients::new(&shared::aws::load_sdk_config().await);
    let dispatcher = Dispatcher {
        store: Store::new(clients.dynamodb.clone(), config.table_name.clone()),
        events: EventPublisher::new(clients.eventbridge.clone(), config.event_bus_name.clone()),
        sqs: clients.sqs.clone(),
        deliveries_queue_url: std::env::var("WEBHOOK_DELIVERIES_QUEUE_URL").context("WEBHOOK_DELIVERIES_QUEUE_URL")?,
        http: Fetcher::new(config.local_mode)?,
        platform_secret: config.require_cursor_secret()?.to_owned(),
    };
    let dispatcher = &dispatcher;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let batch = serde_json::from_value(event.payload)?;
        Ok::<Value, lambda_runtime::Error>(serde_json::to_value(dispatcher.handle_batch(batch).await)?)
    }))
    .await
}
