//! Lambda entry point of the compliance-worker: wiring only (SQS batches of
//! `compliance.export.requested`).

use compliance_worker::ComplianceWorker;
use shared::{aws::AwsClients, blobs::Blobs, config::Config, store::Store};

// One thread: no function here gets more than one vCPU, and a second runtime
// thread only adds a cross-thread wake-up to every I/O (docs/performance.md).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init();
    let config = Config::from_env()?;
    let clients = AwsClients::new(&shared::aws::load_sdk_config().await);
    let worker = ComplianceWorker {
        store: Store::new(clients.dynamodb.clone(), config.table_name.clone()),
        blobs: Blobs::new(clients.s3.clone(), config.blob_bucket_name.clone()),
    };
    shared::worker::run_worker(worker).await
}
