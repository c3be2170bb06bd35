//! Lambda entry point of the integrations group: wiring only.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    shared::lambda::serve(integrations::routes(), shared::state::Signing::VerifyOnly).await
}
