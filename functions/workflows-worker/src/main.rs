//! Lambda entry point of the workflows worker: wiring only. Two queues feed
//! it: the interpreter's step messages and the bus's events (triggers).

use shared::{aws::AwsClients, config::Config, outbound::Fetcher, store::Store, workflow_engine::Engine};
use workflows_worker::WorkflowsWorker;

// One thread: no function here gets more than one vCPU, and a second runtime
// thread only adds a cross-thread wake-up to every I/O (docs/performance.md).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init();
    let config = Config::from_env()?;
    let clients = AwsClients::new(&shared::aws::load_sdk_config().await);
    let worker = WorkflowsWorker {
        store: Store::new(clients.dynamodb.clone(), config.table_name.clone()),
        engine: Engine::from_env(clients.sfn.clone())?,
        http: Fetcher::new(config.local_mode)?,
        sealing: shared::keys::load_platform(clients.secrets.client()).await?.sealing,
        schedules: shared::schedules::TenantSchedules::new(clients.scheduler.clone()),
    };
    shared::worker::run_worker(worker).await
}
