//! The few lines every Lambda binary shares: tracing, clients built once, run.

use anyhow::Result;
use axum::Router;

use crate::{
    aws::{AwsClients, load_sdk_config},
    config::Config,
    state::{AppState, Signing},
    telemetry::ColdStart,
};

/// Builds the state for an HTTP function (clients and keys once per cold
/// start; reading the keys also builds the HTTPS connector and loads the
/// credentials the first request would otherwise wait for; its connection
/// to DynamoDB is its own, another host than Secrets Manager's).
pub async fn http_state(signing: Signing, cold_start: &mut ColdStart) -> Result<AppState> {
    crate::telemetry::init();
    cold_start.mark("telemetry");
    let config = Config::from_env()?;
    cold_start.mark("config");
    let sdk = load_sdk_config().await;
    cold_start.mark("sdk_config");
    let clients = AwsClients::new(&sdk);
    cold_start.mark("clients");
    let keys = crate::state::LoadedKeys::load(&clients, signing).await?;
    cold_start.mark("keys");
    let state = AppState::build(config, &clients, keys)?;
    cold_start.mark("state");
    Ok(state)
}

/// Serves a route group under API Gateway: state built once per cold start,
/// the shared layers (request ids, JSON 404) around the group's routes.
pub async fn serve(routes: Router<AppState>, signing: Signing) -> Result<()> {
    let mut cold_start = ColdStart::begin();
    let state = http_state(signing, &mut cold_start).await?;
    let app = crate::http::finish_app(routes, state);
    cold_start.mark("router");
    cold_start.log();
    lambda_http::run(app).await.map_err(|e| anyhow::anyhow!(e))
}
