//! Lambda entry point of the auth group: wiring only.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    shared::lambda::serve(auth::routes(), shared::state::Signing::Issue).await
}
