//! Lambda entry point of the billing group: wiring only.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    shared::lambda::serve(billing::routes(), shared::state::Signing::VerifyOnly).await
}
