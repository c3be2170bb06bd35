//! Lambda entry point of the integrations worker: wiring only. Three queues
//! feed it: the bus's `integration.event.received`, the probe schedule and
//! scheduled connections' firings, and sync runs.

use integrations_worker::IntegrationsWorker;
use shared::{aws::AwsClients, config::Config, outbound::Fetcher, store::Store};

// One thread: no function here gets more than one vCPU, and a second runtime
// thread only adds a cross-thread wake-up to every I/O (docs/performance.md).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init();
    let config = Config::from_env()?;
    let clients = AwsClients::new(&shared::aws::load_sdk_config().await);
    let worker = IntegrationsWorker {
        store: Store::new(clients.dynamodb.clone(), config.table_name.clone()),
        sqs: clients.sqs.clone(),
        events_queue_url: std::env::var("INTEGRATION_EVENTS_QUEUE_URL")?,
        http: Fetcher::new(config.local_mode)?,
        sync_runs_queue_url: shared::sync_runs::queue_url()?,
        sync_budget: integrations_worker::sync::budget_from_env(),
        sync_max_receives: integrations_worker::sync::SYNC_MAX_RECEIVES,
        schedules: shared::schedules::TenantSchedules::new(clients.scheduler.clone()),
        sealing: shared::keys::load_platform(clients.secrets.client()).await?.sealing,
        blobs: shared::blobs::Blobs::new(clients.s3.clone(), config.blob_bucket_name.clone()),
    };
    shared::worker::run_worker(worker).await
}
