//! Lambda entry point of the ai group: wiring only.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    shared::lambda::serve(ai::routes(), shared::state::Signing::VerifyOnly).await
}
