//! Lambda entry point of the tenants group: wiring only.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let state = shared::lambda::http_state(shared::state::Signing::VerifyOnly).await?;
    shared::lambda::run_http(tenants::router(state)).await
}
