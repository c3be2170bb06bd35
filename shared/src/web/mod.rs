//! The web layer: what turns an HTTP request into a call of the layers below
//! and its answer into the API.md shapes. Nothing below (`domain`, `store`,
//! `auth`, `events`) knows it exists.
//! - [`extract`]: the typed edge: `Body<T>`, `PathIds<T>`, `ListQuery<F>`,
//!   `Patch<T>` (one 400 naming every bad field).
//! - [`http`]: request ids, the query string, pages,
//!   health, the shared layers around a group's routes (`finish_app`).
//! - [`principal`]: the `Principal` extractor (tokens, API keys, the rate
//!   count); [`audit`]: `AuditContext` and `ClientInfo` extractors.
//! - [`idempotency`]: replayable POSTs; [`rate_limit`]: the limit headers.
//! - [`error`]: the API.md error body; [`state`]: what handlers reach;
//!   [`lambda`]: a route group's Lambda `main`.

pub mod audit;
pub mod error;
pub mod extract;
pub mod http;
pub mod idempotency;
pub mod lambda;
pub mod openapi;
pub mod principal;
pub mod rate_limit;
pub mod state;

pub use rate_limit::rate_limit_headers;
pub use state::AppState;
