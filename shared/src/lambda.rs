//! The few lines every Lambda binary shares: tracing, clients built once, run.

use anyhow::Result;
use axum::Router;

use crate::{
    aws::{AwsClients, load_sdk_config},
    config::Config,
    state::{AppState, Signing},
};

/// Builds the state for an HTTP function (clients once per cold start).
pub async fn http_state(signing: Signing) -> Result<AppState> {
    crate::telemetry::init();
    let sdk = load_sdk_config().await;
    let clients = AwsClients::new(&sdk);
    AppState::build(Config::from_env()?, &clients, signing)
}

/// Serves a group's router under API Gateway.
pub async fn run_http(router: Router) -> Result<()> {
    lambda_http::run(router).await.map_err(|e| anyhow::anyhow!(e))
}
