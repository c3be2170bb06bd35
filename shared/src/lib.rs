//! Everything the functions share. Layout:
//! - `config`: settings from the environment, read once per cold start.
//! - `aws`: the SDK clients, built from one `SdkConfig`; `blobs`: the S3 bucket.
//! - `error`: the one error type and the API.md error body.
//! - `http`: request ids, JSON extraction, list parameters, health.
//! - `validate`: field-by-field body validation.
//! - `auth`: access tokens, passwords, the `Principal` extractor and scopes.
//! - `domain`: tenants and users as values, with their rules.
//! - `store`: the DynamoDB table (keys, conditions, cursors).
//! - `events`: domain events on EventBridge; `audit`: the audit trail.
//! - `rate_limit`: per-key and per-user limits; `idempotency`: replayable POSTs.
//! - `state`: what handlers can reach; `lambda`: binary wiring; `telemetry`: logs.
#![forbid(unsafe_code)]

pub mod audit;
pub mod auth;
pub mod aws;
pub mod blobs;
pub mod config;
pub mod domain;
pub mod error;
pub mod events;
pub mod http;
pub mod idempotency;
pub mod lambda;
#[cfg(feature = "outbound")]
pub mod outbound;
pub mod rate_limit;
pub mod sealing;
pub mod sqs_batch;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod validate;
pub mod webhook_signing;

pub use error::{AppError, AppResult};
pub use state::AppState;
