//! Lambda entry point of the tenants group: wiring only.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    shared::lambda::serve(tenants::routes(), shared::state::Signing::VerifyOnly).await
}
