//! Lambda entry point of the projects group: wiring only.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    shared::lambda::serve(projects::routes(), shared::state::Signing::VerifyOnly).await
}
