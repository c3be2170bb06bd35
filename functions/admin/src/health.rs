//! Platform health from real checks (`GET /v1/admin/health`): each
//! dependency is called, concurrently, with a short timeout, and the
//! overall status follows the rules in [`overall`].

use std::{
    sync::{Mutex, OnceLock},
    time::{Duration, Instant},
};

use serde::Serialize;
use shared::{AppState, domain::ai::ModelCallsDay, metrics::Rollup};

/// One check's longest wait.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(2);
/// A check slower than this makes the platform `degraded`.
pub const SLOW_CHECK_MS: i64 = 1_000;
/// How long one process reuses its report.
pub const CACHE_FOR: Duration = Duration::from_secs(5);
/// Today's 5xx rate at or above this (in percent), over at least
/// [`ERROR_RATE_MIN_REQUESTS`] requests, makes the platform `degraded`.
pub const ERROR_RATE_DEGRADED_PERCENT: f64 = 5.0;
pub const ERROR_RATE_MIN_REQUESTS: i64 = 20;

shared::string_enum!(
    /// `healthy`, `degraded` or `unhealthy`.
    Status {
        Healthy => "healthy",
        Degraded => "degraded",
        Unhealthy => "unhealthy",
    }
);

/// What a check answers about its dependency.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Check {
    /// `healthy`, `degraded` (answered, slower than 1 s) or `unhealthy`
    /// (failed or timed out).
    pub status: Status,
    /// From the call to its answer (the timeout when it timed out).
    pub response_time_ms: i64,
    /// Why it failed.
    pub error: Option<String>,
}

/// A queue's check, with its depth.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct QueueCheck {
    /// The queue's logical name in template.yaml.
    pub name: String,
    /// `queue` or `dlq` (a dead-letter queue: anything in it needs a look).
    pub kind: String,
    #[serde(flatten)]
    pub check: Check,
    /// Messages waiting (`ApproximateNumberOfMessages`).
    pub messages: Option<i64>,
    /// Messages taken and not yet deleted (`ApproximateNumberOfMessagesNotVisible`).
    pub messages_in_flight: Option<i64>,
}

/// The table: the read of today's platform rollup.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct DatabaseCheck {
    #[serde(flatten)]
    pub check: Check,
    /// DynamoDB has no connection pool to report.
    #[schema(value_type = String, example = "not_applicable")]
    pub connection_pool: &'static str,
}

/// The AI backend, judged by the model calls the ai-worker made today
/// (UTC): the admin function does not call a model itself (only the worker
/// may: `bedrock:InvokeModel`), so a probe would cost a model call.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AiBackendCheck {
    /// `healthy`; `degraded` when the last call failed or, over at least
    /// 5 calls, 20 % or more failed; `not_applicable` without a call today.
    pub status: String,
    /// The configured backend (`AI_BACKEND`): `local`, `openai` or `bedrock`.
    pub backend: String,
    pub model: Option<String>,
    pub calls_today: i64,
    pub failures_today: i64,
    /// `failures_today / calls_today * 100`; null without calls.
    pub failure_rate_percentage: Option<f64>,
    /// `latency_ms_sum / calls_today`; null without calls.
    pub average_latency_ms: Option<f64>,
    pub last_call_at: Option<String>,
    /// `ok`, `throttled`, `unavailable`, `malformed` or `refused`.
    pub last_outcome: Option<String>,
    pub last_error: Option<String>,
    #[schema(value_type = String, example = "not_applicable")]
    pub gpu_utilization: &'static str,
}

/// Model calls that make the AI backend `degraded` when this share failed.
pub const AI_FAILURES_DEGRADED_PERCENT: f64 = 20.0;
pub const AI_FAILURES_MIN_CALLS: i64 = 5;

pub fn ai_check(backend: &str, day: Option<ModelCallsDay>) -> AiBackendCheck {
    let day = day.unwrap_or_default();
    let rate = shared::domain::metrics::percent(day.failures, day.calls);
    let average = (day.calls > 0).then(|| (day.latency_ms_sum as f64 / day.calls as f64 * 10.0).round() / 10.0);
    let status = if day.calls == 0 {
        "not_applicable"
    } else if day.last_outcome.as_deref() != Some("ok")
        || (day.calls >= AI_FAILURES_MIN_CALLS && rate.is_some_and(|r| r >= AI_FAILURES_DEGRADED_PERCENT))
    {
        "degraded"
    } else {
        "healthy"
    };
    AiBackendCheck {
        status: status.to_owned(),
        backend: backend.to_owned(),
        model: day.model,
        calls_today: day.calls,
        failures_today: day.failures,
        failure_rate_percentage: rate,
        average_latency_ms: average,
        last_call_at: day.last_at,
        last_outcome: day.last_outcome,
        last_error: day.last_error,
        gpu_utilization: "not_applicable",
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Services {
    pub database: DatabaseCheck,
    pub blob_storage: Check,
    pub event_bus: Check,
    /// The workflow interpreter state machine (Step Functions).
    pub workflow_engine: Check,
    pub queues: Vec<QueueCheck>,
    pub ai_services: AiBackendCheck,
}

/// Today's requests (UTC), from the platform rollup (`shared::metrics`:
/// what every process flushed, so a lower bound by its last few seconds).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct PerformanceMetrics {
    /// The start of the window: today, 00:00 UTC.
    pub since: String,
    pub requests: i64,
    /// `requests` over the seconds since `since`.
    pub requests_per_second: f64,
    /// `latency_ms_sum / requests`; null without requests.
    pub average_response_time_ms: Option<f64>,
    /// The upper bound of the latency bucket that holds the 95th
    /// percentile; null without requests or above the last bound (2.5 s).
    pub p95_response_time_ms_at_most: Option<u64>,
    /// `errors_5xx / requests * 100`; null without requests.
    pub error_rate_percentage: Option<f64>,
    /// `errors_4xx / requests * 100`; null without requests.
    pub client_error_rate_percentage: Option<f64>,
    pub failed_sign_ins: i64,
}

/// `GET /v1/admin/health`'s answer (seed 000's `status`, `timestamp`,
/// `services`, `performance_metrics`).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct HealthReport {
    pub status: Status,
    /// When the checks ran.
    pub timestamp: String,
    pub services: Services,
    pub performance_metrics: PerformanceMetrics,
    /// Each rule that made the status worse than `healthy`, in words.
    pub findings: Vec<String>,
}

/// What the checks call.
#[derive(Debug, Clone)]
pub struct Targets {
    /// `(logical name, URL)`; a name ending in `Dlq`/`DLQ` is a dead-letter queue.
    pub queues: Vec<(String, String)>,
    pub state_machine_arn: Option<String>,
    pub bus: String,
    /// `AI_BACKEND` (`local` when unset, as the ai-worker reads it).
    pub ai_backend: String,
}

impl Targets {
    /// `HEALTH_QUEUES` (`Name=url,...`), `WORKFLOW_STATE_MACHINE_ARN` and the
    /// bus from the config.
    pub fn from_env(state: &AppState) -> Self {
        let queues = std::env::var("HEALTH_QUEUES").unwrap_or_default();
        Targets {
            queues: queues
                .split(',')
                .filter_map(|pair| pair.split_once('='))
                .map(|(name, url)| (name.trim().to_owned(), url.trim().to_owned()))
                .filter(|(name, url)| !name.is_empty() && !url.is_empty())
                .collect(),
            state_machine_arn: std::env::var("WORKFLOW_STATE_MACHINE_ARN").ok().filter(|v| !v.is_empty()),
            bus: state.config.event_bus_name.clone(),
            ai_backend: std::env::var("AI_BACKEND").ok().filter(|v| !v.is_empty()).unwrap_or_else(|| "local".into()),
        }
    }
}

fn is_dlq(name: &str) -> bool {
    name.ends_with("Dlq") || name.ends_with("DLQ")
}

/// Runs `call` with the timeout; its latency and outcome.
async fn timed<T, E: std::fmt::Display>(call: impl Future<Output = Result<T, E>>) -> (Check, Option<T>) {
    let started = Instant::now();
    let outcome = tokio::time::timeout(CHECK_TIMEOUT, call).await;
    let response_time_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    let (status, error, value) = match outcome {
        Ok(Ok(value)) if response_time_ms > SLOW_CHECK_MS => (Status::Degraded, None, Some(value)),
        Ok(Ok(value)) => (Status::Healthy, None, Some(value)),
        Ok(Err(err)) => (Status::Unhealthy, Some(error_text(&err)), None),
        Err(_) => (Status::Unhealthy, Some(format!("no answer within {} s", CHECK_TIMEOUT.as_secs())), None),
    };
    (Check { status, response_time_ms, error }, value)
}

/// An SDK error's own words, short.
fn error_text(err: &dyn std::fmt::Display) -> String {
    err.to_string().chars().take(300).collect()
}

async fn queue_check(sqs: &aws_sdk_sqs::Client, name: &str, url: &str) -> QueueCheck {
    use aws_sdk_sqs::types::QueueAttributeName as Attribute;
    let call = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(Attribute::ApproximateNumberOfMessages)
        .attribute_names(Attribute::ApproximateNumberOfMessagesNotVisible)
        .send();
    let (check, answer) = timed(async { call.await.map_err(aws_sdk_sqs::Error::from) }).await;
    let attribute = |wanted: Attribute| {
        answer.as_ref().and_then(|a| a.attributes()).and_then(|a| a.get(&wanted)).and_then(|v| v.parse::<i64>().ok())
    };
    QueueCheck {
        name: name.to_owned(),
        kind: if is_dlq(name) { "dlq" } else { "queue" }.to_owned(),
        check,
        messages: attribute(Attribute::ApproximateNumberOfMessages),
        messages_in_flight: attribute(Attribute::ApproximateNumberOfMessagesNotVisible),
    }
}

/// Runs every check at once and judges the answers.
pub async fn report(state: &AppState, targets: &Targets) -> HealthReport {
    let now = shared::domain::now();
    let today = shared::metrics::day_of(now);
    let database = timed(state.store.platform_rollup(&today));
    let blob_storage = timed(state.blobs.reachable());
    let event_bus = timed(async {
        state.eventbridge.describe_event_bus().name(&targets.bus).send().await.map_err(aws_sdk_eventbridge::Error::from)
    });
    let workflow_engine = async {
        match &targets.state_machine_arn {
            Some(arn) => {
                let call = state.sfn.client().describe_state_machine().state_machine_arn(arn).send();
                timed(async { call.await.map_err(aws_sdk_sfn::Error::from) }).await.0
            }
            None => Check {
                status: Status::Unhealthy,
                response_time_ms: 0,
                error: Some("WORKFLOW_STATE_MACHINE_ARN is not set".to_owned()),
            },
        }
    };
    let queues = futures::future::join_all(targets.queues.iter().map(|(name, url)| queue_check(&state.sqs, name, url)));
    let model_calls = state.store.model_calls_today();
    let ((database, rollup), (blob_storage, _), (event_bus, _), workflow_engine, queues, model_calls) =
        tokio::join!(database, blob_storage, event_bus, workflow_engine, queues, model_calls);
    let rollup = rollup.flatten().unwrap_or_default();
    let services = Services {
        database: DatabaseCheck { check: database, connection_pool: "not_applicable" },
        blob_storage,
        event_bus,
        workflow_engine,
        queues,
        ai_services: ai_check(&targets.ai_backend, model_calls.ok().flatten()),
    };
    let performance_metrics = performance(&rollup, now);
    let (status, findings) = overall(&services, &performance_metrics);
    HealthReport { status, timestamp: shared::domain::rfc3339(now), services, performance_metrics, findings }
}

/// [`report`], reused for [`CACHE_FOR`] within a process.
pub async fn cached_report(state: &AppState, targets: &Targets) -> HealthReport {
    static CACHE: OnceLock<Mutex<Option<(Instant, HealthReport)>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Mutex::default);
    if let Ok(cached) = cache.lock()
        && let Some((at, report)) = cached.as_ref()
        && at.elapsed() < CACHE_FOR
    {
        return report.clone();
    }
    let fresh = report(state, targets).await;
    if let Ok(mut cached) = cache.lock() {
        *cached = Some((Instant::now(), fresh.clone()));
    }
    fresh
}

/// Today's figures from the platform rollup.
pub fn performance(rollup: &Rollup, now: chrono::DateTime<chrono::Utc>) -> PerformanceMetrics {
    use chrono::Timelike;
    let midnight = now.with_hour(0).and_then(|t| t.with_minute(0)).and_then(|t| t.with_second(0)).unwrap_or(now);
    let midnight = midnight.with_nanosecond(0).unwrap_or(midnight);
    let seconds = (now - midnight).num_milliseconds().max(1_000) as f64 / 1000.0;
    PerformanceMetrics {
        since: shared::domain::rfc3339(midnight),
        requests: rollup.requests,
        requests_per_second: (rollup.requests as f64 / seconds * 1000.0).round() / 1000.0,
        average_response_time_ms: (rollup.requests > 0)
            .then(|| (rollup.latency_ms_sum as f64 * 10.0 / rollup.requests as f64).round() / 10.0),
        p95_response_time_ms_at_most: rollup.latency_at_most_ms(0.95),
        error_rate_percentage: shared::metrics::percent(rollup.errors_5xx, rollup.requests),
        client_error_rate_percentage: shared::metrics::percent(rollup.errors_4xx, rollup.requests),
        failed_sign_ins: rollup.failed_sign_ins,
    }
}

/// The status and why: `unhealthy` when the table, the bucket or the bus
/// fails (requests and the outbox stop); `degraded` when a queue or the
/// state machine fails, a DLQ holds messages, a check is slow, or today's
/// 5xx rate is at least 5% over at least 20 requests; else `healthy`.
pub fn overall(services: &Services, performance: &PerformanceMetrics) -> (Status, Vec<String>) {
    let mut findings = Vec::new();
    let mut status = Status::Healthy;
    let mut worsen = |to: Status, finding: String| {
        if to == Status::Unhealthy || status == Status::Healthy {
            status = to;
        }
        findings.push(finding);
    };
    let core = [
        ("database", &services.database.check),
        ("blob_storage", &services.blob_storage),
        ("event_bus", &services.event_bus),
    ];
    for (name, check) in core {
        match check.status {
            Status::Unhealthy => worsen(Status::Unhealthy, format!("{name} is unreachable: {}", error_of(check))),
            Status::Degraded => worsen(Status::Degraded, format!("{name} answered in {} ms", check.response_time_ms)),
            Status::Healthy => {}
        }
    }
    match services.workflow_engine.status {
        Status::Unhealthy => {
            worsen(
                Status::Degraded,
                format!("workflow_engine is unreachable: {}", error_of(&services.workflow_engine)),
            );
        }
        Status::Degraded => worsen(
            Status::Degraded,
            format!("workflow_engine answered in {} ms", services.workflow_engine.response_time_ms),
        ),
        Status::Healthy => {}
    }
    for queue in &services.queues {
        match queue.check.status {
            Status::Unhealthy => {
                worsen(Status::Degraded, format!("queue {} is unreachable: {}", queue.name, error_of(&queue.check)));
            }
            Status::Degraded => {
                worsen(
                    Status::Degraded,
                    format!("queue {} answered in {} ms", queue.name, queue.check.response_time_ms),
                );
            }
            Status::Healthy => {}
        }
        if queue.kind == "dlq"
            && let Some(waiting) = queue.messages.filter(|m| *m > 0)
        {
            worsen(Status::Degraded, format!("dead-letter queue {} holds {waiting} message(s)", queue.name));
        }
    }
    if services.ai_services.status == "degraded" {
        let ai = &services.ai_services;
        worsen(
            Status::Degraded,
            format!(
                "the AI backend ({}): {} of today's {} model calls failed, the last one {}",
                ai.backend,
                ai.failures_today,
                ai.calls_today,
                ai.last_outcome.as_deref().unwrap_or("?")
            ),
        );
    }
    if performance.requests >= ERROR_RATE_MIN_REQUESTS
        && let Some(rate) = performance.error_rate_percentage.filter(|r| *r >= ERROR_RATE_DEGRADED_PERCENT)
    {
        worsen(Status::Degraded, format!("{rate}% of today's {} requests failed with a 5xx", performance.requests));
    }
    (status, findings)
}

fn error_of(check: &Check) -> &str {
    check.error.as_deref().unwrap_or("no answer")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn up() -> Check {
        Check { status: Status::Healthy, response_time_ms: 3, error: None }
    }

    fn services(queues: Vec<QueueCheck>) -> Services {
        Services {
            database: DatabaseCheck { check: up(), connection_pool: "not_applicable" },
            blob_storage: up(),
            event_bus: up(),
            workflow_engine: up(),
            queues,
            ai_services: ai_check("local", None),
        }
    }

    fn queue(name: &str, messages: i64, check: Check) -> QueueCheck {
        let kind = if is_dlq(name) { "dlq" } else { "queue" };
        QueueCheck {
            name: name.into(),
            kind: kind.into(),
            check,
            messages: Some(messages),
            messages_in_flight: Some(0),
        }
    }

    #[test]
    fn the_status_follows_the_worst_rule_and_names_each_finding() {
        let quiet = performance(&Rollup::default(), shared::domain::now());
        assert_eq!(overall(&services(vec![queue("TryonRequestsQueue", 5, up())]), &quiet), (Status::Healthy, vec![]));
        let (status, findings) = overall(&services(vec![queue("TryonRequestsDlq", 2, up())]), &quiet);
        assert_eq!(status, Status::Degraded);
        assert_eq!(findings, ["dead-letter queue TryonRequestsDlq holds 2 message(s)"]);
        let down = Check { status: Status::Unhealthy, response_time_ms: 2_000, error: Some("refused".into()) };
        let mut broken = services(vec![queue("TryonRequestsDlq", 2, up())]);
        broken.event_bus = down;
        let (status, findings) = overall(&broken, &quiet);
        assert_eq!((status, findings.len()), (Status::Unhealthy, 2), "{findings:?}");
        let mut failing = Rollup::default();
        for n in 0..20 {
            failing.add_request(if n == 0 { 500 } else { 200 }, 10.0, None);
        }
        let busy = performance(&failing, shared::domain::now());
        assert_eq!(busy.error_rate_percentage, Some(5.0));
        assert_eq!(overall(&services(vec![]), &busy).0, Status::Degraded);
    }

    #[test]
    fn the_ai_backend_is_judged_by_todays_calls() {
        assert_eq!(ai_check("local", None).status, "not_applicable");
        let day = |calls, failures, last: &str| ModelCallsDay {
            calls,
            failures,
            latency_ms_sum: calls * 10,
            last_outcome: Some(last.to_owned()),
            ..ModelCallsDay::default()
        };
        let fine = ai_check("openai", Some(day(10, 1, "ok")));
        assert_eq!(
            (fine.status.as_str(), fine.failure_rate_percentage, fine.average_latency_ms),
            ("healthy", Some(10.0), Some(10.0))
        );
        assert_eq!(ai_check("openai", Some(day(10, 2, "ok"))).status, "degraded", "20 % failed");
        assert_eq!(ai_check("openai", Some(day(4, 2, "ok"))).status, "healthy", "too few calls to judge a rate");
        assert_eq!(ai_check("openai", Some(day(3, 1, "throttled"))).status, "degraded", "the last call failed");
        let mut services = services(vec![]);
        services.ai_services = ai_check("bedrock", Some(day(3, 1, "unavailable")));
        let (status, findings) = overall(&services, &performance(&Rollup::default(), chrono::Utc::now()));
        assert_eq!(status, Status::Degraded);
        assert!(findings[0].starts_with("the AI backend (bedrock): 1 of today's 3 model calls failed"), "{findings:?}");
    }
}
