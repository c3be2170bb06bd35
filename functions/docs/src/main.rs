//! Lambda entry point of the docs group: wiring only. It answers from what
//! is compiled in (the committed document, the vendored Redoc bundle), so
//! it builds no AWS client and reads no configuration.

// One thread: no function here gets more than one vCPU, and a second runtime
// thread only adds a cross-thread wake-up to every I/O (docs/performance.md).
#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    shared::telemetry::init();
    docs::lambda::run(docs::app()).await.map_err(|e| anyhow::anyhow!(e))
}
