//! EventBridge Scheduler, locally. moto stores the template's schedules
//! (`AWS::Scheduler::Schedule`, created by infra/local_stack.py) but never
//! fires them; the local server does: for each enabled `rate(...)` schedule
//! whose target is a queue it sends the target's `Input`, verbatim, as the
//! message body (what Scheduler sends to an SQS target), once per period.
//!
//! The schedules are read from `LOCAL_DIR/schedules.json`, which
//! local_stack.py writes from moto's `GetSchedule` answers right after
//! creating them (the workspace has no Scheduler SDK; a JSON file, like the
//! env file, keeps it that way and costs the server no call at start).
//!
//! Like Scheduler's rate schedules the first message goes out one period
//! after the start, then one per period. Locally an hour is long, so:
//! - `LOCAL_SCHEDULE_<NAME>_SECONDS` sets one schedule's period in seconds
//!   (`<NAME>`: the logical id in upper snake case, e.g.
//!   `LOCAL_SCHEDULE_BILLING_HOURLY_SCHEDULE_SECONDS=5`);
//! - `LOCAL_SCHEDULE_SPEEDUP=<factor>` divides every other period
//!   (`3600` makes an hourly schedule fire every second).
//!
//! `cron(...)` and `at(...)` expressions and non-SQS targets are listed in
//! the log and not fired.
//!
//! [`start_tenant`] fires the tenants' own schedules (scheduled sync
//! connections and workflows), which the API functions make in moto at run
//! time: it lists their group every second instead of reading a file.

use std::{path::Path, time::Duration};

use anyhow::{Context, Result};
use serde::Deserialize;
use tokio::task::JoinHandle;

/// Shortest local period, whatever the variables say.
const MIN_PERIOD: Duration = Duration::from_millis(100);
/// Sends of one firing before it is given up (Scheduler would retry and
/// then dead-letter; locally the next firing comes soon enough).
const SEND_ATTEMPTS: u32 = 5;

#[derive(Debug, Clone, Deserialize)]
pub struct Schedule {
    pub logical_id: String,
    pub name: String,
    pub expression: String,
    #[serde(default = "enabled")]
    pub state: String,
    /// The target queue's URL; `None` for a target that is not a queue.
    pub queue_url: Option<String>,
    pub input: Option<String>,
}

fn enabled() -> String {
    "ENABLED".to_owned()
}

#[derive(Deserialize)]
struct SchedulesFile {
    schedules: Vec<Schedule>,
}

/// The schedules local_stack.py wrote; none when the file is missing (a
/// stack made before schedules existed: `infra/stack.sh up` writes it).
pub fn read(path: &Path) -> Result<Vec<Schedule>> {
    match std::fs::read(path) {
        Ok(bytes) => {
            let file: SchedulesFile =
                serde_json::from_slice(&bytes).with_context(|| format!("reading {}", path.display()))?;
            Ok(file.schedules)
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            tracing::warn!(path = %path.display(), "no schedules file: re-run `infra/stack.sh up`; nothing is scheduled");
            Ok(Vec::new())
        }
        Err(err) => Err(err).with_context(|| format!("reading {}", path.display())),
    }
}

/// The period of `rate(N minute|minutes|hour|hours|day|days)`.
pub fn rate(expression: &str) -> Option<Duration> {
    let inner = expression.trim().strip_prefix("rate(")?.strip_suffix(')')?;
    let (count, unit) = inner.trim().split_once(char::is_whitespace)?;
    let count: u64 = count.parse().ok().filter(|n| *n > 0)?;
    let seconds = match unit.trim() {
        "minute" | "minutes" => 60,
        "hour" | "hours" => 3600,
        "day" | "days" => 86_400,
        _ => return None,
    };
    Some(Duration::from_secs(count.checked_mul(seconds)?))
}

/// `BillingHourlySchedule` -> `BILLING_HOURLY_SCHEDULE` (kebab case as
/// local_stack.py names resources, then upper snake).
pub fn env_name(logical_id: &str) -> String {
    let chars: Vec<char> = logical_id.chars().collect();
    let mut out = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if i > 0 && c.is_ascii_uppercase() {
            let prev = chars[i - 1];
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
            if prev.is_ascii_lowercase() || prev.is_ascii_digit() || (prev.is_ascii_uppercase() && next_lower) {
                out.push('_');
            }
        }
        out.push(if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' });
    }
    out
}

/// The local period of a schedule: its own variable, else its rate divided
/// by the speed-up; `None` when it is not a rate.
pub fn local_period(schedule: &Schedule, var: impl Fn(&str) -> Option<String>) -> Option<Duration> {
    let own = var(&format!("LOCAL_SCHEDULE_{}_SECONDS", env_name(&schedule.logical_id)))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .map(Duration::from_secs_f64);
    let period = match own {
        Some(period) => period,
        None => {
            let speedup = var("LOCAL_SCHEDULE_SPEEDUP")
                .and_then(|v| v.trim().parse::<f64>().ok())
                .filter(|f| f.is_finite() && *f > 0.0)
                .unwrap_or(1.0);
            rate(&schedule.expression)?.div_f64(speedup)
        }
    };
    Some(period.max(MIN_PERIOD))
}

/// One task per schedule the local server can fire.
pub fn start(sqs: &aws_sdk_sqs::Client, path: &Path) -> Result<Vec<JoinHandle<()>>> {
    let mut handles = Vec::new();
    for schedule in read(path)? {
        if schedule.state != "ENABLED" {
            tracing::info!(schedule = %schedule.name, "schedule disabled; not fired");
            continue;
        }
        let (Some(queue_url), Some(period)) =
            (schedule.queue_url.clone(), local_period(&schedule, |name| std::env::var(name).ok()))
        else {
            tracing::warn!(
                schedule = %schedule.name, expression = %schedule.expression,
                "only rate(...) schedules with an SQS target are fired locally"
            );
            continue;
        };
        let sqs = sqs.clone();
        handles.push(tokio::spawn(async move {
            tracing::info!(schedule = %schedule.name, period_ms = period.as_millis() as u64, %queue_url, "schedule started");
            let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                fire(&sqs, &schedule, &queue_url).await;
            }
        }));
    }
    Ok(handles)
}

/// Scheduler's delivery: the Input as the message body, nothing added.
async fn fire(sqs: &aws_sdk_sqs::Client, schedule: &Schedule, queue_url: &str) {
    let body = schedule.input.clone().unwrap_or_else(|| "{}".to_owned());
    let mut back_off = Duration::from_millis(100);
    for attempt in 1..=SEND_ATTEMPTS {
        match sqs.send_message().queue_url(queue_url).message_body(&body).send().await {
            Ok(_) => {
                tracing::info!(schedule = %schedule.name, "schedule fired");
                return;
            }
            Err(err) => {
                tracing::warn!(
                    schedule = %schedule.name, attempt,
                    error = %aws_sdk_sqs::error::DisplayErrorContext(&err), "schedule could not send; retrying"
                );
                tokio::time::sleep(back_off).await;
                back_off *= 2;
            }
        }
    }
    tracing::error!(schedule = %schedule.name, "schedule firing dropped after {SEND_ATTEMPTS} attempts");
}

// ------------------------------------------------------------ tenant schedules --

/// How often the tenants' group is listed for schedules made, changed or
/// deleted since (`LOCAL_TENANT_SCHEDULE_POLL_MS`).
const DEFAULT_TENANT_POLL: Duration = Duration::from_millis(1000);

/// A tenant schedule as the local server tracks it.
struct Tracked {
    modified: Option<aws_sdk_scheduler::primitives::DateTime>,
    /// `None` for one the local server cannot fire (disabled, not a queue).
    firing: Option<Firing>,
}

struct Firing {
    expression: shared::domain::schedule::ScheduleExpression,
    queue_url: String,
    input: String,
    /// When the schedule was seen made or changed: a rate counts from here.
    anchor: chrono::DateTime<chrono::Utc>,
    next: chrono::DateTime<chrono::Utc>,
}

/// The tenants' schedules (`TENANT_SCHEDULE_GROUP`), made and deleted at
/// run time by the API functions: listed every poll, each enabled one with
/// a queue target fired when due, Scheduler's `<aws.scheduler.scheduled-time>`
/// filled in. A rate's period is divided by `LOCAL_TENANT_SCHEDULE_SPEEDUP`
/// (the suite fires `rate(1 minute)` every 2 s); a cron's times are the
/// calendar's.
pub fn start_tenant(scheduler: aws_sdk_scheduler::Client, sqs: aws_sdk_sqs::Client) -> Option<JoinHandle<()>> {
    let Ok(group) = std::env::var("TENANT_SCHEDULE_GROUP") else {
        tracing::warn!("TENANT_SCHEDULE_GROUP is not set: tenant schedules are not fired");
        return None;
    };
    let speedup = std::env::var("LOCAL_TENANT_SCHEDULE_SPEEDUP")
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|f| f.is_finite() && *f >= 1.0)
        .unwrap_or(1.0);
    let poll = std::env::var("LOCAL_TENANT_SCHEDULE_POLL_MS")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(DEFAULT_TENANT_POLL, |ms| Duration::from_millis(ms.max(50)));
    Some(tokio::spawn(async move {
        let mut tracked: std::collections::HashMap<String, Tracked> = std::collections::HashMap::new();
        let mut ticks = tokio::time::interval(poll);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            if let Err(err) = refresh(&scheduler, &sqs, &group, speedup, &mut tracked).await {
                tracing::warn!(error = %err, "tenant schedules not listed; trying again");
                continue;
            }
            let now = chrono::Utc::now();
            for (name, schedule) in &mut tracked {
                let Some(firing) = schedule.firing.as_mut().filter(|f| f.next <= now) else { continue };
                let due = firing.next;
                let body = firing.input.replace(
                    shared::domain::schedule::SCHEDULED_TIME_PLACEHOLDER,
                    &due.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                );
                match sqs.send_message().queue_url(&firing.queue_url).message_body(body).send().await {
                    Ok(_) => tracing::info!(schedule = %name, "tenant schedule fired"),
                    Err(err) => tracing::warn!(
                        schedule = %name, error = %aws_sdk_sqs::error::DisplayErrorContext(&err),
                        "tenant schedule could not send; this firing is dropped"
                    ),
                }
                firing.next = next_local(&firing.expression, firing.anchor, now, speedup);
            }
        }
    }))
}

/// The next firing after `now`, a rate's period divided by `speedup`.
fn next_local(
    expression: &shared::domain::schedule::ScheduleExpression,
    anchor: chrono::DateTime<chrono::Utc>,
    now: chrono::DateTime<chrono::Utc>,
    speedup: f64,
) -> chrono::DateTime<chrono::Utc> {
    use shared::domain::schedule::ScheduleExpression;
    match expression {
        ScheduleExpression::Rate { seconds, .. } => {
            let period = Duration::from_secs(*seconds).div_f64(speedup).max(MIN_PERIOD);
            let period = chrono::Duration::from_std(period).unwrap_or(chrono::Duration::seconds(60));
            let elapsed = (now - anchor).num_milliseconds().max(0);
            let periods = elapsed / period.num_milliseconds().max(1) + 1;
            anchor + period * i32::try_from(periods).unwrap_or(i32::MAX)
        }
        ScheduleExpression::Cron { .. } => {
            expression.next_after(anchor, now).unwrap_or(now + chrono::Duration::days(366))
        }
    }
}

/// Lists the group; reads each schedule that is new or changed since.
async fn refresh(
    scheduler: &aws_sdk_scheduler::Client,
    sqs: &aws_sdk_sqs::Client,
    group: &str,
    speedup: f64,
    tracked: &mut std::collections::HashMap<String, Tracked>,
) -> Result<()> {
    let mut listed = Vec::new();
    let mut token = None;
    loop {
        let page = scheduler.list_schedules().group_name(group).set_next_token(token).send().await?;
        for summary in page.schedules() {
            if let Some(name) = summary.name() {
                listed.push((name.to_owned(), summary.last_modification_date().copied()));
            }
        }
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    tracked.retain(|name, _| listed.iter().any(|(n, _)| n == name));
    for (name, modified) in listed {
        if tracked.get(&name).is_some_and(|t| t.modified == modified) {
            continue;
        }
        let schedule = scheduler.get_schedule().group_name(group).name(&name).send().await?;
        let firing = firing_of(sqs, &schedule, speedup).await;
        if firing.is_none() {
            tracing::info!(schedule = %name, "tenant schedule not fired locally (disabled, or not a queue target)");
        }
        tracked.insert(name, Tracked { modified, firing });
    }
    Ok(())
}

async fn firing_of(
    sqs: &aws_sdk_sqs::Client,
    schedule: &aws_sdk_scheduler::operation::get_schedule::GetScheduleOutput,
    speedup: f64,
) -> Option<Firing> {
    if schedule.state() != Some(&aws_sdk_scheduler::types::ScheduleState::Enabled) {
        return None;
    }
    let expression = shared::domain::schedule::ScheduleExpression::parse(schedule.schedule_expression()?).ok()?;
    let target = schedule.target()?;
    // arn:aws:sqs:<region>:<account>:<name>
    let queue_name = target.arn().strip_prefix("arn:aws:sqs:")?.splitn(3, ':').nth(2)?;
    let queue_url = sqs.get_queue_url().queue_name(queue_name).send().await.ok()?.queue_url()?.to_owned();
    let anchor = chrono::Utc::now();
    Some(Firing {
        next: next_local(&expression, anchor, anchor, speedup),
        expression,
        queue_url,
        input: target.input().unwrap_or("{}").to_owned(),
        anchor,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hourly() -> Schedule {
        Schedule {
            logical_id: "BillingHourlySchedule".into(),
            name: "saas-local-billing-hourly-schedule".into(),
            expression: "rate(1 hour)".into(),
            state: "ENABLED".into(),
            queue_url: Some("http://127.0.0.1:4566/123456789012/q".into()),
            input: Some(r#"{"job":"hourly"}"#.into()),
        }
    }

    #[test]
    fn rates() {
        assert_eq!(rate("rate(1 minute)"), Some(Duration::from_secs(60)));
        assert_eq!(rate("rate(5 minutes)"), Some(Duration::from_secs(300)));
        assert_eq!(rate("rate(1 hour)"), Some(Duration::from_secs(3600)));
        assert_eq!(rate("rate(2 hours)"), Some(Duration::from_secs(7200)));
        assert_eq!(rate("rate(1 day)"), Some(Duration::from_secs(86_400)));
        assert_eq!(rate("rate(0 hours)"), None);
        assert_eq!(rate("rate(1 week)"), None);
        assert_eq!(rate("cron(0 * * * ? *)"), None);
        assert_eq!(rate("at(2026-01-01T00:00:00)"), None);
    }

    #[test]
    fn env_names() {
        assert_eq!(env_name("BillingHourlySchedule"), "BILLING_HOURLY_SCHEDULE");
        assert_eq!(env_name("BillingJobsDLQ"), "BILLING_JOBS_DLQ");
    }

    #[test]
    fn local_periods() {
        let none = |_: &str| None;
        assert_eq!(local_period(&hourly(), none), Some(Duration::from_secs(3600)));
        let fast = |name: &str| (name == "LOCAL_SCHEDULE_SPEEDUP").then(|| "3600".to_owned());
        assert_eq!(local_period(&hourly(), fast), Some(Duration::from_secs(1)));
        let own = |name: &str| match name {
            "LOCAL_SCHEDULE_BILLING_HOURLY_SCHEDULE_SECONDS" => Some("2.5".to_owned()),
            "LOCAL_SCHEDULE_SPEEDUP" => Some("3600".to_owned()),
            _ => None,
        };
        assert_eq!(local_period(&hourly(), own), Some(Duration::from_millis(2500)));
        let tiny = |name: &str| (name == "LOCAL_SCHEDULE_SPEEDUP").then(|| "1e9".to_owned());
        assert_eq!(local_period(&hourly(), tiny), Some(MIN_PERIOD));
        let cron = Schedule { expression: "cron(0 * * * ? *)".into(), ..hourly() };
        assert_eq!(local_period(&cron, none), None);
    }

    #[test]
    fn reads_what_local_stack_writes() -> Result<()> {
        let dir = std::env::temp_dir().join(format!("schedules-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir)?;
        let path = dir.join("schedules.json");
        assert!(read(&path)?.is_empty());
        std::fs::write(
            &path,
            r#"{"schedules": [{"logical_id": "BillingHourlySchedule", "name": "n", "arn": "a",
                "expression": "rate(1 hour)", "state": "ENABLED", "target_arn": "t",
                "queue_url": "http://q", "input": "{\"job\":\"hourly\"}"}]}"#,
        )?;
        let schedules = read(&path)?;
        std::fs::remove_dir_all(&dir)?;
        assert_eq!(schedules.len(), 1);
        assert_eq!(schedules[0].input.as_deref(), Some(r#"{"job":"hourly"}"#));
        assert_eq!(schedules[0].queue_url.as_deref(), Some("http://q"));
        Ok(())
    }

    #[test]
    fn tenant_rates_are_sped_up_and_crons_are_not() {
        use shared::domain::schedule::ScheduleExpression;
        let anchor =
            chrono::DateTime::parse_from_rfc3339("2026-12-02T10:00:00Z").expect("valid").with_timezone(&chrono::Utc);
        let minute = ScheduleExpression::parse("rate(1 minute)").expect("valid");
        assert_eq!(next_local(&minute, anchor, anchor, 30.0), anchor + chrono::Duration::seconds(2));
        assert_eq!(
            next_local(&minute, anchor, anchor + chrono::Duration::seconds(5), 30.0),
            anchor + chrono::Duration::seconds(6)
        );
        assert_eq!(next_local(&minute, anchor, anchor, 1.0), anchor + chrono::Duration::seconds(60));
        let nightly = ScheduleExpression::parse("cron(0 2 * * ? *)").expect("valid");
        let next = next_local(&nightly, anchor, anchor, 30.0);
        assert_eq!(next.to_rfc3339(), "2026-12-03T02:00:00+00:00");
    }
}
