//! Lambda entry point of the credits group: wiring only.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    shared::lambda::serve(credits::routes(), shared::state::Signing::VerifyOnly).await
}
