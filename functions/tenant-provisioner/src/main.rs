//! Lambda entry point of the tenant-provisioner worker: wiring only.

use lambda_runtime::{LambdaEvent, service_fn};
use shared::{aws::AwsClients, config::Config, events::EventPublisher, store::Store};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init();
    let config = Config::from_env()?;
    let clients = AwsClients::new(&shared::aws::load_sdk_config().await);
    let provisioner = tenant_provisioner::Provisioner {
        store: Store::new(clients.dynamodb.clone(), config.table_name.clone()),
        events: EventPublisher::new(clients.eventbridge.clone(), config.event_bus_name.clone()),
    };
    let provisioner = &provisioner;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<aws_lambda_events::event::sqs::SqsEvent>| async move {
            Ok::<_, lambda_runtime::Error>(provisioner.handle_batch(event.payload).await)
        },
    ))
    .await
}
