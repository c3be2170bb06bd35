//! Lambda entry point of the compliance group: wiring only.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    shared::lambda::serve(compliance::routes(), shared::state::Signing::VerifyOnly).await
}
