//! Lambda entry point of the webhook-dispatcher: wiring only (SQS batches
//! from the events queue and the deliveries queue).

use anyhow::Context;
use shared::{aws::AwsClients, config::Config, outbound::Fetcher, store::Store};
use webhook_dispatcher::Dispatcher;

// One thread: no function here gets more than one vCPU, and a second runtime
// thread only adds a cross-thread wake-up to every I/O (docs/performance.md).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init();
    let config = Config::from_env()?;
    let clients = AwsClients::new(&shared::aws::load_sdk_config().await);
    let dispatcher = Dispatcher {
        store: Store::new(clients.dynamodb.clone(), config.table_name.clone()),
        sqs: clients.sqs.clone(),
        deliveries_queue_url: std::env::var("WEBHOOK_DELIVERIES_QUEUE_URL").context("WEBHOOK_DELIVERIES_QUEUE_URL")?,
        http: Fetcher::new(config.local_mode)?,
        sealing: shared::keys::load_platform(clients.secrets.client()).await?.sealing,
    };
    shared::worker::run_worker(dispatcher).await
}
