//! Lambda entry point of the workflows group: wiring only.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    shared::lambda::serve(workflows::routes(), shared::state::Signing::VerifyOnly).await
}
