//! Lambda entry point of the users group: wiring only.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    shared::lambda::serve(users::routes(), shared::state::Signing::VerifyOnly).await
}
