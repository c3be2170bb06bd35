//! Lambda entry point of the customers group: wiring only.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    shared::lambda::serve(customers::routes(), shared::state::Signing::VerifyOnly).await
}
