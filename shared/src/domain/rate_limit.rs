//! Request rate limits, per API key and per user, by the tenant's plan (the
//! rules; the count is `store::api_keys`, the headers `web::rate_limit`).
//!
//! A fixed one-minute window, counted in DynamoDB so that every Lambda
//! instance (and every local server process) shares it: one conditional
//! UpdateItem per request adds one to the caller's count for the current
//! window unless it already reached the limit. The update is the only write a
//! request pays for its limit (for an API key the same update also records
//! `last_used_at` and the usage count). A fixed window lets a caller send up
//! to twice the limit across a window boundary; the alternatives (sliding
//! logs, token buckets) need a read before the write or several writes, and
//! the limit is a guard against floods, not a billing meter.
//!
//! Every authenticated response carries the seeds' `X-RateLimit-Limit`,
//! `X-RateLimit-Remaining`, `X-RateLimit-Reset` (epoch seconds) and the IETF
//! draft's `RateLimit-Policy: "<policy>";q=<limit>;w=60` and
//! `RateLimit: "<policy>";r=<remaining>;t=<seconds to reset>`; a request over
//! the limit is 429 `rate_limited` with `Retry-After`.

use std::{
    collections::HashMap,
    sync::{Mutex, OnceLock},
    time::{Duration, Instant},
};

use http::{HeaderName, HeaderValue, StatusCode, header};
use serde_json::json;
use uuid::Uuid;

use crate::error::AppError;

pub const WINDOW_SECONDS: i64 = 60;

/// Who a count belongs to; also the policy name in the IETF headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    ApiKey,
    User,
    /// An integration provider's inbound webhooks (its `rate_limit_per_minute`).
    Provider,
}

impl Subject {
    pub fn policy(self) -> &'static str {
        match self {
            Subject::ApiKey => "api_key",
            Subject::User => "user",
            Subject::Provider => "integration_provider",
        }
    }
}

/// The window `now` (epoch seconds) falls in: its start and when it resets.
pub fn window_start(now: i64) -> i64 {
    now - now.rem_euclid(WINDOW_SECONDS)
}

/// Where a caller stands after a request was counted (or refused).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateStatus {
    pub subject: Subject,
    pub limit: i64,
    pub remaining: i64,
    /// Epoch seconds at which the window resets.
    pub reset_at: i64,
    pub now: i64,
    pub allowed: bool,
}

impl RateStatus {
    /// `count` is the caller's count in the window including this request
    /// when it was allowed; for a refused one it is the limit.
    pub fn new(subject: Subject, limit: i64, count: i64, now: i64, allowed: bool) -> Self {
        Self {
            subject,
            limit,
            remaining: (limit - count).max(0),
            reset_at: window_start(now) + WINDOW_SECONDS,
            now,
            allowed,
        }
    }

    pub fn seconds_to_reset(&self) -> i64 {
        (self.reset_at - self.now).max(1)
    }

    pub fn headers(&self) -> Vec<(HeaderName, String)> {
        let policy = self.subject.policy();
        vec![
            (HeaderName::from_static("x-ratelimit-limit"), self.limit.to_string()),
            (HeaderName::from_static("x-ratelimit-remaining"), self.remaining.to_string()),
            (HeaderName::from_static("x-ratelimit-reset"), self.reset_at.to_string()),
            (HeaderName::from_static("ratelimit-policy"), format!("\"{policy}\";q={};w={WINDOW_SECONDS}", self.limit)),
            (
                HeaderName::from_static("ratelimit"),
                format!("\"{policy}\";r={};t={}", self.remaining, self.seconds_to_reset()),
            ),
        ]
    }

    /// API.md's 429 for a refused request.
    pub fn refusal(&self) -> AppError {
        let retry_after = self.seconds_to_reset();
        let err = AppError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("rate limit of {} requests per minute reached; retry in {retry_after} s", self.limit),
        )
        .with_details(json!({
            "limit": self.limit,
            "window_seconds": WINDOW_SECONDS,
            "retry_after_seconds": retry_after,
            "reset_at": self.reset_at,
            "policy": self.subject.policy(),
        }));
        match HeaderValue::from_str(&retry_after.to_string()) {
            Ok(value) => err.with_header(header::RETRY_AFTER, value),
            Err(_) => err,
        }
    }
}

/// What every authenticated request needs to know about its tenant: its
/// requests per minute, whether it may be used at all, and from where. Cached per warm
/// process so that it costs no read per request; a change reaches every
/// instance within [`POLICY_CACHE_TTL`] (at once in the process that made it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantPolicy {
    pub requests_per_minute: i64,
    /// False for an inactive or suspended tenant: its API keys are refused.
    pub usable: bool,
    /// The tenant's limits, read with the rest: a route that shows usage
    /// against them (`GET /v1/billing/usage`) reads no tenant item of its own.
    pub limits: super::plans::Limits,
    /// Seed 000's `configuration.security.ip_whitelisting`, when the tenant
    /// has one: requests from elsewhere are refused.
    pub allowed_addresses: Option<std::sync::Arc<[super::tenant::IpRange]>>,
    /// Seed 000's `configuration.security.session_timeout_minutes`, in
    /// seconds: no sign-in of the tenant's lasts longer.
    pub session_lifetime_seconds: Option<i64>,
    /// The tenant's plan: the `Tier` dimension of its request metrics.
    pub plan: String,
}

impl TenantPolicy {
    pub fn of(tenant: &super::tenant::Tenant) -> Self {
        let security = super::tenant::ConfigSecurity::of(tenant);
        Self {
            requests_per_minute: super::plans::requests_per_minute(tenant),
            usable: tenant.status != "inactive" && tenant.status != "suspended",
            limits: super::plans::effective_limits(tenant),
            allowed_addresses: security
                .as_ref()
                .and_then(|security| security.ip_whitelisting.clone())
                .filter(|ranges| !ranges.is_empty())
                .map(std::sync::Arc::from),
            session_lifetime_seconds: security
                .and_then(|security| security.session_timeout_minutes)
                .map(|minutes| minutes.get() * 60),
            plan: tenant.plan.clone(),
        }
    }

    /// Whether a request from `address` may act in the tenant.
    pub fn admits(&self, address: Option<&str>) -> bool {
        self.allowed_addresses.as_deref().is_none_or(|ranges| super::tenant::admitted(ranges, address))
    }
}

/// Also the worst-case delay before a tenant's deactivation stops its
/// tokens and keys in another process: a few seconds, like a user's
/// standing (`store::standing::STANDING_TTL`), for one GetItem per tenant
/// per process per interval.
pub const POLICY_CACHE_TTL: Duration = Duration::from_secs(5);

pub(crate) fn cached_policy(tenant_id: Uuid) -> Option<TenantPolicy> {
    let cache = policy_cache().lock().ok()?;
    cache.get(&tenant_id).filter(|(_, at)| at.elapsed() < POLICY_CACHE_TTL).map(|(policy, _)| policy.clone())
}

pub(crate) fn remember_policy(tenant_id: Uuid, policy: TenantPolicy) {
    if let Ok(mut cache) = policy_cache().lock() {
        if cache.len() > 10_000 {
            cache.clear();
        }
        cache.insert(tenant_id, (policy, Instant::now()));
    }
}

/// Drops the process's cached policy: the change that made it stale (a new
/// plan) sees its effect at once here, elsewhere within the cache's TTL.
pub(crate) fn forget_policy(tenant_id: Uuid) {
    if let Ok(mut cache) = policy_cache().lock() {
        cache.remove(&tenant_id);
    }
}

fn policy_cache() -> &'static Mutex<HashMap<Uuid, (TenantPolicy, Instant)>> {
    static CACHE: OnceLock<Mutex<HashMap<Uuid, (TenantPolicy, Instant)>>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_aligned_minutes() {
        assert_eq!(window_start(1_700_000_000), 1_699_999_980);
        assert_eq!(window_start(1_699_999_980), 1_699_999_980);
        assert_eq!(window_start(1_700_000_039), 1_700_000_040 - 60);
    }

    #[test]
    fn headers_carry_the_seed_and_ietf_fields() {
        let status = RateStatus::new(Subject::ApiKey, 100, 58, 1_699_999_990, true);
        let headers: HashMap<String, String> =
            status.headers().into_iter().map(|(k, v)| (k.as_str().to_owned(), v)).collect();
        assert_eq!(headers["x-ratelimit-limit"], "100");
        assert_eq!(headers["x-ratelimit-remaining"], "42");
        assert_eq!(headers["x-ratelimit-reset"], "1700000040");
        assert_eq!(headers["ratelimit-policy"], "\"api_key\";q=100;w=60");
        assert_eq!(headers["ratelimit"], "\"api_key\";r=42;t=50");
    }

    #[test]
    fn a_refusal_is_429_with_retry_after() {
        let status = RateStatus::new(Subject::User, 10, 10, 1_700_000_039, false);
        let err = status.refusal();
        assert_eq!(err.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(err.code(), "rate_limited");
        assert_eq!(status.seconds_to_reset(), 1);
        assert_eq!(status.remaining, 0);
    }
}
