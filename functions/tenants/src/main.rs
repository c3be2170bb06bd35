//! Lambda entry point of the tenants group: wiring only.

// One thread: no function here gets more than one vCPU, and a second runtime
// thread only adds a cross-thread wake-up to every I/O (docs/performance.md).
#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    shared::lambda::serve(tenants::routes(), shared::state::Signing::VerifyOnly).await
}
