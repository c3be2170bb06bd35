//! Lambda entry point of the SAML group: wiring only.

// One thread: no function here gets more than one vCPU, and a second runtime
// thread only adds a cross-thread wake-up to every I/O (docs/performance.md).
#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    // The ACS issues no tokens: the auth group's callback does.
    shared::lambda::serve(saml::routes(), shared::state::Signing::VerifyOnly).await
}
