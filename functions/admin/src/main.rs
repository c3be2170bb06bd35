//! Lambda entry point of the admin group: wiring only.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    shared::lambda::serve(admin::routes(), shared::state::Signing::VerifyOnly).await
}
