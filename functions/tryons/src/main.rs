//! Lambda entry point of the tryons group: wiring only.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    shared::lambda::serve(tryons::routes(), shared::state::Signing::VerifyOnly).await
}
