//! Request metrics (docs/operations.md, "Metrics"). Every HTTP function
//! emits, per request:
//!
//! - one CloudWatch Embedded Metric Format line on stdout (Lambda sends it
//!   to CloudWatch Logs, which turns it into metrics without an API call):
//!   `Requests`, `Latency`, `ClientErrors`, `ServerErrors` by `Service` and
//!   `Route`, and by `Service` and `Tier` (the tenant's plan); the tenant id,
//!   status and request id ride along as properties;
//! - its share of per-tenant and platform-wide daily rollups (requests, 4xx,
//!   5xx, a latency histogram, active users, failed sign-ins), kept in the
//!   process and added to DynamoDB by a background task every
//!   `METRICS_FLUSH_SECONDS` (10): never a DynamoDB call on the request
//!   path. A process that ends between two flushes loses its last counts,
//!   so a rollup is a lower bound of the traffic; the EMF metrics are the
//!   exact figures.
//!
//! `METRICS_EMF` sends the lines elsewhere: `off`, or a file path (the local
//! server writes `$LOCAL_DIR/metrics.emf.jsonl`, which the suite checks).

use std::{
    collections::HashMap,
    io::Write,
    sync::{Arc, Mutex, OnceLock},
    time::Duration,
};

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use uuid::Uuid;

pub use crate::domain::metrics::{LATENCY_BUCKETS_MS, MAX_ACTIVE_USERS_COUNTED, Rollup, day_of, days_ending, percent};
use crate::store::Store;

pub const NAMESPACE: &str = "SaasPlatform";
/// Who a request acted for, filled by the `Principal` extractor once the
/// credentials are verified (the middleware reads it on the way out).
#[derive(Clone, Default)]
pub struct CallerSlot(Arc<Mutex<Option<Caller>>>);

#[derive(Debug, Clone, PartialEq)]
pub struct Caller {
    pub tenant_id: Uuid,
    /// The tenant's plan.
    pub tier: String,
    /// A person (a token, or an API key's creator).
    pub user_id: Option<Uuid>,
}

impl CallerSlot {
    pub fn set(&self, caller: Caller) {
        if let Ok(mut slot) = self.0.lock() {
            *slot = Some(caller);
        }
    }

    pub fn take(&self) -> Option<Caller> {
        self.0.lock().ok().and_then(|mut slot| slot.take())
    }
}

/// One served request.
#[derive(Debug, Clone)]
pub struct Sample {
    /// The function (its template logical id, or Lambda's function name).
    pub service: String,
    /// `GET /v1/customers/{id}`: the route's template, never the raw path.
    pub route: String,
    pub status: u16,
    pub latency_ms: f64,
    pub caller: Option<Caller>,
    pub request_id: String,
    pub at: DateTime<Utc>,
}

/// The sample as one EMF document.
pub fn emf(sample: &Sample) -> Value {
    let tier = sample.caller.as_ref().map_or("none", |c| c.tier.as_str());
    let mut line = Map::new();
    line.insert(
        "_aws".into(),
        json!({
            "Timestamp": sample.at.timestamp_millis(),
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [["Service", "Route"], ["Service", "Tier"]],
                "Metrics": [
                    {"Name": "Requests", "Unit": "Count"},
                    {"Name": "Latency", "Unit": "Milliseconds"},
                    {"Name": "ClientErrors", "Unit": "Count"},
                    {"Name": "ServerErrors", "Unit": "Count"}
                ]
            }]
        }),
    );
    line.insert("Service".into(), json!(sample.service));
    line.insert("Route".into(), json!(sample.route));
    line.insert("Tier".into(), json!(tier));
    line.insert("Requests".into(), json!(1));
    line.insert("Latency".into(), json!((sample.latency_ms * 1000.0).round() / 1000.0));
    line.insert("ClientErrors".into(), json!(i32::from((400..500).contains(&sample.status))));
    line.insert("ServerErrors".into(), json!(i32::from(sample.status >= 500)));
    line.insert("status".into(), json!(sample.status));
    line.insert("request_id".into(), json!(sample.request_id));
    if let Some(caller) = &sample.caller {
        line.insert("tenant_id".into(), json!(caller.tenant_id));
    }
    Value::Object(line)
}

/// What this process counted and has not flushed yet.
#[derive(Default)]
struct Pending {
    tenants: HashMap<(Uuid, String), Rollup>,
    platform: HashMap<String, Rollup>,
}

fn pending() -> &'static Mutex<Pending> {
    static PENDING: OnceLock<Mutex<Pending>> = OnceLock::new();
    PENDING.get_or_init(Mutex::default)
}

enum Sink {
    Stdout,
    File(Mutex<std::fs::File>),
    Off,
}

fn sink() -> &'static Sink {
    static SINK: OnceLock<Sink> = OnceLock::new();
    SINK.get_or_init(|| match std::env::var("METRICS_EMF").ok().filter(|v| !v.is_empty()).as_deref() {
        None | Some("stdout") => Sink::Stdout,
        Some("off") => Sink::Off,
        Some(path) => match std::fs::OpenOptions::new().create(true).append(true).open(path) {
            Ok(file) => Sink::File(Mutex::new(file)),
            Err(err) => {
                tracing::warn!(%err, path, "METRICS_EMF names a file that does not open: metrics go to stdout");
                Sink::Stdout
            }
        },
    })
}

/// Emits the sample's EMF line and counts it in the rollups.
pub fn record(sample: &Sample) {
    let line = emf(sample).to_string();
    match sink() {
        // One write of the whole line: lines from concurrent requests never
        // interleave (stdout's lock is held for the call).
        Sink::Stdout => {
            let _ = writeln!(std::io::stdout().lock(), "{line}");
        }
        Sink::File(file) => {
            if let Ok(mut file) = file.lock() {
                let _ = writeln!(file, "{line}");
            }
        }
        Sink::Off => {}
    }
    let day = day_of(sample.at);
    let user = sample.caller.as_ref().and_then(|c| c.user_id);
    if let Ok(mut pending) = pending().lock() {
        if let Some(caller) = &sample.caller {
            let rollup = pending.tenants.entry((caller.tenant_id, day.clone())).or_default();
            rollup.add_request_to(Some(&sample.service), sample.status, sample.latency_ms, user);
        }
        // The platform's day counts people only through the tenants'.
        let platform = pending.platform.entry(day).or_default();
        platform.add_request_to(Some(&sample.service), sample.status, sample.latency_ms, None);
    }
}

/// A wrong password for an account of `tenant_id`.
pub fn record_failed_sign_in(tenant_id: Uuid) {
    let day = day_of(Utc::now());
    if let Ok(mut pending) = pending().lock() {
        pending.tenants.entry((tenant_id, day.clone())).or_default().failed_sign_ins += 1;
        pending.platform.entry(day).or_default().failed_sign_ins += 1;
    }
}

/// `METRICS_FLUSH_SECONDS`, 10 when unset.
fn flush_interval() -> Duration {
    let seconds = std::env::var("METRICS_FLUSH_SECONDS").ok().and_then(|v| v.parse::<f64>().ok()).unwrap_or(10.0);
    Duration::from_secs_f64(seconds.clamp(0.1, 300.0))
}

/// Starts this process's flusher once (from its first request, whose
/// function it works for in the call log).
pub fn ensure_flusher(store: &Store) {
    static STARTED: OnceLock<()> = OnceLock::new();
    STARTED.get_or_init(|| {
        let store = store.clone();
        tokio::spawn(crate::aws::call_log::carry(async move {
            let mut ticks = tokio::time::interval(flush_interval());
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                if let Err(err) = flush(&store).await {
                    tracing::warn!(error = %err, "metrics rollups not flushed; kept for the next try");
                }
            }
        }));
    });
}

/// Adds what this process counted to the stored rollups; what a write
/// fails for is put back for the next flush. The number of rollups written.
pub async fn flush(store: &Store) -> crate::error::AppResult<usize> {
    let taken = match pending().lock() {
        Ok(mut pending) => std::mem::take(&mut *pending),
        Err(_) => return Ok(0),
    };
    let mut written = 0;
    let mut failed = Pending::default();
    let mut last_error = None;
    for ((tenant_id, day), rollup) in taken.tenants {
        let scope = crate::auth::proofs::MeasuredRequest::scope(tenant_id);
        match store.add_tenant_rollup(&scope, &day, &rollup).await {
            Ok(()) => written += 1,
            Err(err) => {
                last_error = Some(err);
                failed.tenants.insert((tenant_id, day), rollup);
            }
        }
    }
    for (day, rollup) in taken.platform {
        match store.add_platform_rollup(&day, &rollup).await {
            Ok(()) => written += 1,
            Err(err) => {
                last_error = Some(err);
                failed.platform.insert(day, rollup);
            }
        }
    }
    if let Ok(mut pending) = pending().lock() {
        for (key, rollup) in failed.tenants {
            pending.tenants.entry(key).or_default().add(&rollup);
        }
        for (day, rollup) in failed.platform {
            pending.platform.entry(day).or_default().add(&rollup);
        }
    }
    match last_error {
        Some(err) => Err(err),
        None => Ok(written),
    }
}

/// What breaks the rules of the EMF specification (CloudWatch's
/// "Specification: Embedded metric format") in `document`, member by
/// member; empty when it is a valid EMF document. The suite checks the
/// lines the local server wrote with it.
pub fn emf_problems(document: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let Some(root) = document.as_object() else { return vec!["the document is not an object".into()] };
    let Some(aws) = root.get("_aws").and_then(Value::as_object) else {
        return vec!["no _aws object".into()];
    };
    let timestamp = aws.get("Timestamp").and_then(Value::as_i64);
    if timestamp.is_none_or(|ms| ms <= 0) {
        problems.push("_aws.Timestamp is not a number of milliseconds".into());
    }
    let Some(directives) = aws.get("CloudWatchMetrics").and_then(Value::as_array) else {
        problems.push("_aws.CloudWatchMetrics is not an array".into());
        return problems;
    };
    for directive in directives {
        let namespace = directive.get("Namespace").and_then(Value::as_str).unwrap_or_default();
        if namespace.is_empty() || namespace.len() > 1024 {
            problems.push("a Namespace of 1 to 1024 characters".into());
        }
        for set in directive.get("Dimensions").and_then(Value::as_array).into_iter().flatten() {
            let keys = set.as_array().cloned().unwrap_or_default();
            if keys.len() > 30 {
                problems.push("a dimension set of over 30 dimensions".into());
            }
            for key in keys {
                let member = key.as_str().and_then(|k| root.get(k));
                if !member.is_some_and(|v| v.as_str().is_some_and(|s| !s.is_empty() && s.len() <= 1024)) {
                    problems.push(format!("dimension {key} is not a string member of the root"));
                }
            }
        }
        let metrics = directive.get("Metrics").and_then(Value::as_array).cloned().unwrap_or_default();
        if metrics.is_empty() || metrics.len() > 100 {
            problems.push("1 to 100 metrics".into());
        }
        for metric in metrics {
            let name = metric.get("Name").and_then(Value::as_str).unwrap_or_default();
            if !root.get(name).is_some_and(Value::is_number) {
                problems.push(format!("metric {name} is not a number member of the root"));
            }
            let unit = metric.get("Unit").and_then(Value::as_str);
            if unit.is_some_and(|u| !["Count", "Milliseconds", "Seconds", "Bytes", "None", "Percent"].contains(&u)) {
                problems.push(format!("metric {name} has an unknown unit"));
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(status: u16, latency_ms: f64) -> Sample {
        Sample {
            service: "CustomersFunction".into(),
            route: "GET /v1/customers/{id}".into(),
            status,
            latency_ms,
            caller: Some(Caller { tenant_id: Uuid::now_v7(), tier: "starter".into(), user_id: None }),
            request_id: "r-1".into(),
            at: Utc::now(),
        }
    }

    #[test]
    fn a_request_is_one_valid_emf_document_with_its_dimensions_and_figures() {
        let line = emf(&sample(503, 12.3456));
        assert_eq!(emf_problems(&line), Vec::<String>::new());
        assert_eq!((line["ServerErrors"].as_i64(), line["ClientErrors"].as_i64()), (Some(1), Some(0)));
        assert_eq!(line["Latency"], json!(12.346));
        assert_eq!(line["Tier"], "starter");
        let anonymous = emf(&Sample { caller: None, ..sample(401, 1.0) });
        assert_eq!(emf_problems(&anonymous), Vec::<String>::new());
        assert_eq!(anonymous["Tier"], "none");
        assert!(
            emf_problems(&json!({"_aws": {"Timestamp": 1, "CloudWatchMetrics": [{"Namespace": "n",
            "Dimensions": [["Missing"]], "Metrics": [{"Name": "Absent"}]}]}}))
            .len()
                == 2
        );
    }
}
