//! Lambda entry point of the webhooks group: wiring only.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    shared::lambda::serve(webhooks::routes(), shared::state::Signing::VerifyOnly).await
}
