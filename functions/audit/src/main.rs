//! Lambda entry point of the audit group: wiring only.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let state = shared::lambda::http_state(shared::state::Signing::VerifyOnly).await?;
    shared::lambda::run_http(audit::router(state)).await
}
