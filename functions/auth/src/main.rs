//! Lambda entry point of the auth group: wiring only.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let state = shared::lambda::http_state(shared::state::Signing::Issue).await?;
    shared::lambda::run_http(auth::router(state)).await
}
