//! Lambda entry point of the tenant-provisioner worker: wiring only. It takes
//! two kinds of event: SQS batches of `tenant.created`, and the scheduled
//! sweep that re-drives tenants whose event was lost.

use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;
use shared::{aws::AwsClients, config::Config, events::EventPublisher, store::Store};
use tenant_provisioner::{Provisioner, SWEEP_MIN_AGE_SECONDS};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init();
    let config = Config::from_env()?;
    let clients = AwsClients::new(&shared::aws::load_sdk_config().await);
    let provisioner = Provisioner {
        store: Store::new(clients.dynamodb.clone(), config.table_name.clone()),
        events: EventPublisher::new(clients.eventbridge.clone(), config.event_bus_name.clone()),
    };
    let provisioner = &provisioner;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        if event.payload.get("Records").is_some() {
            let batch = serde_json::from_value(event.payload)?;
            Ok::<Value, lambda_runtime::Error>(serde_json::to_value(provisioner.handle_batch(batch).await)?)
        } else {
            let republished = provisioner.sweep(chrono::Duration::seconds(SWEEP_MIN_AGE_SECONDS)).await?;
            Ok(serde_json::json!({ "republished": republished }))
        }
    }))
    .await
}
