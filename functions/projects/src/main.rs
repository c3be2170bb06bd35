//! Lambda entry point of the projects group: wiring only.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let state = shared::lambda::http_state(shared::state::Signing::VerifyOnly).await?;
    shared::lambda::run_http(projects::router(state)).await
}
