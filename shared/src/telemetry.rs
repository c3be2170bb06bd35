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

/// The phases of one cold start, logged as one line when the function is
/// ready: Lambda reports only the init's total, and the bench's figure
/// (docs/performance.md) needs to know which phase to cut.
pub struct ColdStart {
    started: std::time::Instant,
    last: std::time::Instant,
    phases: Vec<(&'static str, std::time::Duration)>,
}

impl ColdStart {
    pub fn begin() -> Self {
        let now = std::time::Instant::now();
        Self { started: now, last: now, phases: Vec::with_capacity(6) }
    }

    /// Ends the phase named `phase` (the time since the previous mark).
    pub fn mark(&mut self, phase: &'static str) {
        let now = std::time::Instant::now();
        self.phases.push((phase, now - self.last));
        self.last = now;
    }

    pub fn log(self) {
        use std::fmt::Write as _;
        let mut phases = String::new();
        for (name, took) in &self.phases {
            let _ = write!(phases, "{}{name}={}us", if phases.is_empty() { "" } else { " " }, took.as_micros());
        }
        tracing::info!(total_us = self.started.elapsed().as_micros() as u64, %phases, "cold start");
    }
}
