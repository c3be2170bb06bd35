//! The few lines every Lambda binary shares: tracing, clients built once, run.

use anyhow::Result;
use axum::Router;

use crate::{
    aws::{AwsClients, load_sdk_config},
    config::Config,
    state::{AppState, Signing},
};

/// Builds the state for an HTTP function (clients and keys once per cold
/// start; reading the keys also opens the connection and loads the
/// credentials the first request would otherwise wait for).
pub async fn http_state(signing: Signing) -> Result<AppState> {
    crate::telemetry::init();
    let sdk = load_sdk_config().await;
    let clients = AwsClients::new(&sdk);
    AppState::load(Config::from_env()?, &clients, signing).await
}

/// Serves a route group under API Gateway: state built once per cold start,
/// the shared layers (request ids, JSON 404) around the group's routes.
pub async fn serve(routes: Router<AppState>, signing: Signing) -> Result<()> {
    let state = http_state(signing).await?;
    let app = crate::http::finish_app(routes, state);
    lambda_http::run(app).await.map_err(|e| anyhow::anyhow!(e))
}
