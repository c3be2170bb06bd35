//! Everything the functions share, in layers that only look down (checked by
//! `tests/architecture.rs`):
//! - `error`, `config`, `request_id`: leaves every layer may use.
//! - `events`: the event catalogue and the bus (events reach the bus only
//!   through the outbox, `store::tx`).
//! - `domain`: entities, statuses, rules, validation, audit entries, rate
//!   limit rules; no I/O.
//! - `auth`: tokens, passwords, API keys, the `Principal` and the proofs that
//!   yield a `TenantScope`.
//! - `store`: the DynamoDB table (keys, conditions, transactions with their
//!   audit entries and outbox events, cursors); `blobs`: the S3 bucket.
//! - `web`: extractors, middleware, the API.md error body, app assembly.
//! - `aws`: the SDK clients; `keys`: the platform's key rings from Secrets
//!   Manager; `sealing`, `webhook_signing`: crypto helpers;
//!   `outbound` (feature): the SSRF-safe HTTP client; `worker`: the SQS
//!   worker runner; `workflow_engine`: Step Functions calls of the workflows;
//!   `telemetry`: logs.
#![forbid(unsafe_code)]

pub mod auth;
pub mod aws;
pub mod blobs;
pub mod config;
pub mod domain;
pub mod error;
pub mod events;
pub mod keys;
pub mod mail;
pub mod metrics;
#[cfg(feature = "outbound")]
pub mod outbound;
pub mod provider_api;
pub mod request_id;
pub mod schedules;
pub mod sealing;
pub mod store;
pub mod sync_runs;
pub mod sync_targets;
pub mod telemetry;
pub mod web;
pub mod webhook_signing;
pub mod worker;
pub mod workflow_engine;

// Paths the function crates use.
pub use domain::{audit, rate_limit, validate};
pub use error::{AppError, AppResult};
pub use web::{AppState, http, idempotency, lambda, state};
