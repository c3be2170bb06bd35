//! The rate-limit headers on every authenticated response (the rules are
//! `domain::rate_limit`, the count `store::api_keys`).

use std::sync::{Arc, Mutex};

use axum::{extract::Request, http::HeaderValue, middleware::Next, response::Response};

use crate::domain::rate_limit::RateStatus;

/// Filled by the `Principal` extractor, read on the way out by
/// [`rate_limit_headers`]: the extractor runs deep inside the handler, the
/// headers belong on whatever response leaves.
#[derive(Clone, Default)]
pub struct RateSlot(Arc<Mutex<Option<RateStatus>>>);

impl RateSlot {
    pub fn set(&self, status: RateStatus) {
        if let Ok(mut slot) = self.0.lock() {
            *slot = Some(status);
        }
    }

    fn take(&self) -> Option<RateStatus> {
        self.0.lock().ok().and_then(|mut slot| slot.take())
    }
}

/// Middleware: gives each request a slot and copies its status into the
/// response headers (successes, errors and the 429 alike).
pub async fn rate_limit_headers(mut request: Request, next: Next) -> Response {
    let slot = RateSlot::default();
    request.extensions_mut().insert(slot.clone());
    let mut response = next.run(request).await;
    if let Some(status) = slot.take() {
        for (name, value) in status.headers() {
            if let Ok(value) = HeaderValue::from_str(&value) {
                response.headers_mut().insert(name, value);
            }
        }
    }
    response
}
