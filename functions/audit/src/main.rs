//! Lambda entry point of the audit group: wiring only.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    shared::lambda::serve(audit::routes(), shared::state::Signing::VerifyOnly).await
}
