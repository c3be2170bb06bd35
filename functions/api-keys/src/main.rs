//! Lambda entry point of the api-keys group: wiring only.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    shared::lambda::serve(api_keys::routes(), shared::state::Signing::VerifyOnly).await
}
