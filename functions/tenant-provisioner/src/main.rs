//! Lambda entry point of the tenant-provisioner worker: wiring only (SQS
//! batches of `tenant.created`).

use shared::{aws::AwsClients, config::Config, store::Store};
use tenant_provisioner::Provisioner;

// One thread: no function here gets more than one vCPU, and a second runtime
// thread only adds a cross-thread wake-up to every I/O (docs/performance.md).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init();
    let config = Config::from_env()?;
    let clients = AwsClients::new(&shared::aws::load_sdk_config().await);
    let provisioner = Provisioner { store: Store::new(clients.dynamodb.clone(), config.table_name.clone()) };
    shared::worker::run_worker(provisioner).await
}
