//! The id of the request being served, kept for the whole request (and the
//! work it moves onto other tasks) so that error bodies, audit entries and
//! log lines can quote it. A leaf: every layer may read it.

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request being served, or `unknown` outside one.
pub fn current_request_id() -> String {
    REQUEST_ID.try_with(Clone::clone).unwrap_or_else(|_| "unknown".to_owned())
}

/// Runs `future` with `request_id` as the current request's id.
pub async fn with_request_id<F: std::future::Future>(request_id: String, future: F) -> F::Output {
    REQUEST_ID.scope(request_id, future).await
}
