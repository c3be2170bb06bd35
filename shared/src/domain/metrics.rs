//! The request rollups' model (`crate::metrics` fills them, `store::metrics`
//! keeps them): one tenant's (or the platform's) counts of one UTC day, and
//! the pure rules that read them (a percentile from the histogram, a rate).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// The latency histogram's bucket upper bounds (milliseconds, inclusive);
/// one more bucket counts the slower requests.
pub const LATENCY_BUCKETS_MS: [u64; 8] = [10, 25, 50, 100, 250, 500, 1_000, 2_500];
/// Distinct active users one tenant's day counts exactly (the item stays
/// well under DynamoDB's 400 KB); past it the figure is "at least".
pub const MAX_ACTIVE_USERS_COUNTED: usize = 10_000;

/// One tenant's (or the platform's) counts of one UTC day.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rollup {
    pub requests: i64,
    pub errors_4xx: i64,
    pub errors_5xx: i64,
    pub latency_ms_sum: i64,
    /// Requests per [`LATENCY_BUCKETS_MS`] bucket, then the slower ones.
    pub latency_buckets: [i64; LATENCY_BUCKETS_MS.len() + 1],
    pub active_users: BTreeSet<Uuid>,
    pub failed_sign_ins: i64,
    /// Requests by function (`CustomersFunction`): what features the
    /// tenant uses.
    pub services: BTreeMap<String, i64>,
}

impl Rollup {
    pub fn add_request(&mut self, status: u16, latency_ms: f64, user: Option<Uuid>) {
        self.add_request_to(None, status, latency_ms, user);
    }

    /// [`Self::add_request`], counted for `service` too.
    pub fn add_request_to(&mut self, service: Option<&str>, status: u16, latency_ms: f64, user: Option<Uuid>) {
        if let Some(service) = service {
            *self.services.entry(service.to_owned()).or_default() += 1;
        }
        self.requests += 1;
        self.errors_4xx += i64::from((400..500).contains(&status));
        self.errors_5xx += i64::from(status >= 500);
        self.latency_ms_sum += latency_ms.round() as i64;
        self.latency_buckets[bucket_of(latency_ms)] += 1;
        self.active_users.extend(user);
    }

    pub fn is_empty(&self) -> bool {
        self.requests == 0 && self.failed_sign_ins == 0
    }

    pub fn add(&mut self, other: &Rollup) {
        self.requests += other.requests;
        self.errors_4xx += other.errors_4xx;
        self.errors_5xx += other.errors_5xx;
        self.latency_ms_sum += other.latency_ms_sum;
        for (mine, theirs) in self.latency_buckets.iter_mut().zip(other.latency_buckets) {
            *mine += theirs;
        }
        self.active_users.extend(other.active_users.iter().copied());
        self.failed_sign_ins += other.failed_sign_ins;
        for (service, count) in &other.services {
            *self.services.entry(service.clone()).or_default() += count;
        }
    }

    /// The upper bound of the bucket that holds the `quantile` (0..1) of
    /// requests: "p95 was at most 250 ms". `None` without requests, or when
    /// it falls in the open last bucket (over 2.5 s).
    pub fn latency_at_most_ms(&self, quantile: f64) -> Option<u64> {
        if self.requests == 0 {
            return None;
        }
        let wanted = (quantile * self.requests as f64).ceil().max(1.0) as i64;
        let mut seen = 0;
        for (bucket, count) in self.latency_buckets.iter().enumerate() {
            seen += count;
            if seen >= wanted {
                return LATENCY_BUCKETS_MS.get(bucket).copied();
            }
        }
        None
    }
}

fn bucket_of(latency_ms: f64) -> usize {
    LATENCY_BUCKETS_MS.iter().position(|bound| latency_ms <= *bound as f64).unwrap_or(LATENCY_BUCKETS_MS.len())
}

/// The UTC day of `at`, as rollups are keyed.
pub fn day_of(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d").to_string()
}

/// The `days` UTC days ending with `at`'s, oldest first: a window of rollups.
pub fn days_ending(at: DateTime<Utc>, days: i64) -> Vec<String> {
    (0..days).rev().map(|back| day_of(at - chrono::Duration::days(back))).collect()
}

/// `part / whole × 100`, two decimals; `None` when `whole` is 0.
pub fn percent(part: i64, whole: i64) -> Option<f64> {
    (whole > 0).then(|| (part as f64 * 10_000.0 / whole as f64).round() / 100.0)
}

/// The days the nightly ranking looks back over.
pub const RANKING_WINDOW_DAYS: i64 = 30;

/// What the nightly aggregate measures a tenant by.
#[derive(Debug, Clone, PartialEq)]
pub struct TenantActivity {
    pub tenant_id: Uuid,
    pub plan: String,
    /// Distinct active users over [`RANKING_WINDOW_DAYS`].
    pub active_users: i64,
    pub requests: i64,
}

/// A tenant's place among the tenants of its plan, as of one night.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct TenantRank {
    /// The UTC day the aggregate ran.
    pub as_of: String,
    pub plan: String,
    /// 1 is the most active.
    pub rank: i64,
    /// Tenants of the plan ranked.
    pub of: i64,
    /// `100 × (of − rank) / (of − 1)`, rounded: the share of the plan's
    /// other tenants this one is ahead of (100 when it is alone).
    pub percentile: i64,
    pub active_users_30d: i64,
    pub requests_30d: i64,
}

/// Ranks each plan's tenants by distinct active users over the window,
/// then requests, then id (a stable order for ties).
pub fn rank_by_plan(mut activity: Vec<TenantActivity>, as_of: &str) -> Vec<(Uuid, TenantRank)> {
    activity.sort_by(|a, b| {
        a.plan
            .cmp(&b.plan)
            .then(b.active_users.cmp(&a.active_users))
            .then(b.requests.cmp(&a.requests))
            .then(a.tenant_id.cmp(&b.tenant_id))
    });
    let mut ranked = Vec::with_capacity(activity.len());
    for plan in activity.chunk_by(|a, b| a.plan == b.plan) {
        let of = plan.len() as i64;
        for (index, tenant) in plan.iter().enumerate() {
            let rank = index as i64 + 1;
            let percentile = if of == 1 { 100 } else { ((of - rank) as f64 * 100.0 / (of - 1) as f64).round() as i64 };
            ranked.push((
                tenant.tenant_id,
                TenantRank {
                    as_of: as_of.to_owned(),
                    plan: tenant.plan.clone(),
                    rank,
                    of,
                    percentile,
                    active_users_30d: tenant.active_users,
                    requests_30d: tenant.requests,
                },
            ));
        }
    }
    ranked
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenants_rank_within_their_plan_by_people_then_requests() {
        let tenant = |plan: &str, users: i64, requests: i64| TenantActivity {
            tenant_id: Uuid::now_v7(),
            plan: plan.into(),
            active_users: users,
            requests,
        };
        let (busy, quiet, tied, alone) =
            (tenant("free", 9, 10), tenant("free", 1, 500), tenant("free", 9, 3), tenant("starter", 0, 0));
        let ranked = rank_by_plan(vec![quiet.clone(), alone.clone(), tied.clone(), busy.clone()], "2026-12-02");
        let of = |t: &TenantActivity| ranked.iter().find(|(id, _)| *id == t.tenant_id).map(|(_, r)| r.clone());
        let (b, t, q, a) = (of(&busy), of(&tied), of(&quiet), of(&alone));
        assert_eq!(b.map(|r| (r.rank, r.of, r.percentile)), Some((1, 3, 100)));
        assert_eq!(t.map(|r| (r.rank, r.percentile)), Some((2, 50)), "same people, fewer requests");
        assert_eq!(q.map(|r| (r.rank, r.percentile)), Some((3, 0)));
        assert_eq!(a.map(|r| (r.rank, r.of, r.percentile)), Some((1, 1, 100)));
    }

    #[test]
    fn the_histogram_answers_the_bucket_that_holds_a_quantile() {
        let mut rollup = Rollup::default();
        assert_eq!(rollup.latency_at_most_ms(0.5), None);
        for latency in [5.0, 8.0, 30.0, 30.0, 40.0, 90.0, 200.0, 300.0, 900.0, 4_000.0] {
            rollup.add_request(200, latency, None);
        }
        assert_eq!(rollup.latency_at_most_ms(0.5), Some(50));
        assert_eq!(rollup.latency_at_most_ms(0.9), Some(1_000));
        assert_eq!(rollup.latency_at_most_ms(0.99), None, "over the last bound");
        assert_eq!(rollup.latency_buckets.iter().sum::<i64>(), 10);
    }
}
