//! Lambda entry point of the integrations worker: wiring only. Two queues
//! feed it: the bus's `integration.event.received` and the probe schedule.

use integrations_worker::IntegrationsWorker;
use shared::{aws::AwsClients, config::Config, outbound::Fetcher, store::Store};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init();
    let config = Config::from_env()?;
    let clients = AwsClients::new(&shared::aws::load_sdk_config().await);
    let worker = IntegrationsWorker {
        store: Store::new(clients.dynamodb.clone(), config.table_name.clone()),
        sqs: clients.sqs.clone(),
        events_queue_url: std::env::var("INTEGRATION_EVENTS_QUEUE_URL")?,
        http: Fetcher::new(config.local_mode)?,
    };
    shared::worker::run_worker(worker).await
}
