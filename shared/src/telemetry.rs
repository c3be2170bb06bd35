//! Logging: JSON lines in Lambda (CloudWatch parses them), readable text locally.
//! Nothing here ever logs a secret: handlers log ids, never bodies or headers.

use tracing_subscriber::{EnvFilter, fmt};

pub fn init() {
    let filter = EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let in_lambda = std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some();
    let builder = fmt().with_env_filter(filter).with_target(false);
    let result = if in_lambda {
        // Lambda stamps its own time and request id on each line.
        builder.json().flatten_event(true).without_time().with_current_span(true).try_init()
    } else {
        builder.compact().try_init()
    };
    // A second init (tests, local server) keeps the first subscriber.
    let _ = result;
}
