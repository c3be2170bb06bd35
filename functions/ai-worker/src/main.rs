//! Lambda entry point of the ai-worker: wiring only (SQS batches of
//! `ai.phase.requested`).

use ai_worker::{AiWorker, backend::ConfiguredBackend};
use shared::{aws::AwsClients, blobs::Blobs, config::Config, store::Store};

// One thread: no function here gets more than one vCPU, and a second runtime
// thread only adds a cross-thread wake-up to every I/O (docs/performance.md).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init();
    let config = Config::from_env()?;
    let sdk_config = shared::aws::load_sdk_config().await;
    let clients = AwsClients::new(&sdk_config);
    let worker = AiWorker {
        store: Store::new(clients.dynamodb.clone(), config.table_name.clone()),
        blobs: Blobs::new(clients.s3.clone(), config.blob_bucket_name.clone()),
        backend: ConfiguredBackend::from_env(&sdk_config)?,
    };
    shared::worker::run_worker(worker).await
}
