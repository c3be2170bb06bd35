//! Tenant schedules: a sync connection's batch runs and a workflow's
//! `schedule` trigger, each an EventBridge Scheduler schedule in the
//! tenants' schedule group (`TenantSchedules` in template.yaml) whose target
//! is the worker's queue. What this module decides, free of I/O: which
//! expressions are accepted (Scheduler's own `rate(...)` and `cron(...)`),
//! when one fires next (shown in the API, and what the local server fires
//! on), the schedule's name, and the message it sends.
//!
//! The stored connection or workflow is the truth; the schedule only wakes
//! the worker. Every firing is checked against the stored item, so a
//! schedule left behind by a failed write or a crash (its item gone, or
//! holding another expression) starts nothing (docs/integrations.md,
//! "Schedules").

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Scheduler's placeholder for the time a firing was due; it replaces it in
/// the target's input (the local server does the same).
pub const SCHEDULED_TIME_PLACEHOLDER: &str = "<aws.scheduler.scheduled-time>";

/// The shortest period a tenant may ask for: Scheduler's own floor.
pub const MIN_RATE_SECONDS: u64 = 60;

/// A checked schedule expression, as Scheduler takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScheduleExpression {
    /// `rate(N minute|minutes|hour|hours|day|days)`, kept in seconds.
    Rate { seconds: u64, text: String },
    /// `cron(minutes hours day-of-month month day-of-week year)`, UTC.
    Cron { cron: Box<croner::Cron>, text: String },
}

impl ScheduleExpression {
    /// Scheduler's grammar; the error says what is wrong, for the field's
    /// 400.
    pub fn parse(expression: &str) -> Result<Self, String> {
        let expression = expression.trim();
        if let Some(inner) = expression.strip_prefix("rate(").and_then(|r| r.strip_suffix(')')) {
            return parse_rate(inner).map(|seconds| ScheduleExpression::Rate { seconds, text: expression.to_owned() });
        }
        if let Some(inner) = expression.strip_prefix("cron(").and_then(|r| r.strip_suffix(')')) {
            let cron = parse_cron(inner)?;
            return Ok(ScheduleExpression::Cron { cron: Box::new(cron), text: expression.to_owned() });
        }
        Err("must be rate(<n> minutes|hours|days) or cron(<minutes> <hours> <day-of-month> <month> <day-of-week> <year>)"
            .to_owned())
    }

    pub fn as_str(&self) -> &str {
        match self {
            ScheduleExpression::Rate { text, .. } | ScheduleExpression::Cron { text, .. } => text,
        }
    }

    /// The first firing after `after`. A rate counts from `anchor` (when the
    /// schedule was made or last changed), as Scheduler does; a cron from
    /// the calendar.
    pub fn next_after(&self, anchor: DateTime<Utc>, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            ScheduleExpression::Rate { seconds, .. } => {
                let period = i64::try_from(*seconds).ok()?;
                let elapsed = (after - anchor).num_seconds().max(0);
                let periods = elapsed / period + 1;
                anchor.checked_add_signed(chrono::Duration::seconds(periods.checked_mul(period)?))
            }
            ScheduleExpression::Cron { cron, .. } => cron.find_next_occurrence(&after, false).ok(),
        }
    }
}

fn parse_rate(inner: &str) -> Result<u64, String> {
    let bad = || "rate(...) takes a whole number and minute(s), hour(s) or day(s): rate(1 hour), rate(15 minutes)";
    let (count, unit) = inner.trim().split_once(char::is_whitespace).ok_or_else(bad)?;
    let count: u64 = count.parse().map_err(|_| bad())?;
    let unit_seconds = match unit.trim() {
        "minute" | "minutes" => 60,
        "hour" | "hours" => 3600,
        "day" | "days" => 86_400,
        _ => return Err(bad().to_owned()),
    };
    let seconds = count.checked_mul(unit_seconds).ok_or_else(bad)?;
    if seconds < MIN_RATE_SECONDS {
        return Err(format!("the shortest rate is {MIN_RATE_SECONDS} seconds (rate(1 minute))"));
    }
    // Scheduler's own limit on a rate's number.
    if count > 1_000_000 {
        return Err(bad().to_owned());
    }
    Ok(seconds)
}

/// Scheduler's six fields, its `?` rule (exactly one of day-of-month and
/// day-of-week is `?`), Quartz weekdays (1 = Sunday).
fn parse_cron(inner: &str) -> Result<croner::Cron, String> {
    let fields: Vec<&str> = inner.split_whitespace().collect();
    if fields.len() != 6 {
        return Err(
            "cron(...) takes six fields: minutes hours day-of-month month day-of-week year (cron(0 2 * * ? *))".into(),
        );
    }
    if (fields[2] == "?") == (fields[4] == "?") {
        return Err("cron(...): exactly one of day-of-month and day-of-week must be ?".into());
    }
    let parser = croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Required)
        .year(croner::parser::Year::Required)
        .alternative_weekdays(true)
        .build();
    // croner reads `?` as "any"; the one that is `?` is then `*`.
    let with_seconds =
        format!("0 {}", fields.iter().map(|f| if *f == "?" { "*" } else { f }).collect::<Vec<_>>().join(" "));
    parser.parse(&with_seconds).map_err(|e| format!("cron(...): {e}"))
}

crate::string_enum!(
    /// What a schedule starts.
    ScheduleTarget {
        SyncConnection => "sync_connection",
        Workflow => "workflow",
    }
);

/// The schedule's name in the tenants' group: the target's id is unique
/// across tenants, and Scheduler names are at most 64 characters.
pub fn schedule_name(target: ScheduleTarget, id: Uuid) -> String {
    let prefix = match target {
        ScheduleTarget::SyncConnection => "sync",
        ScheduleTarget::Workflow => "workflow",
    };
    format!("{prefix}-{}", id.simple())
}

/// What a firing sends to the worker's queue: `{"scheduled": {...}}`.
/// `expression` is the one the schedule was made with, so a firing of a
/// schedule the item no longer holds is told apart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduledFiring {
    pub target: ScheduleTarget,
    pub tenant_id: Uuid,
    pub id: Uuid,
    pub expression: String,
    /// When the firing was due (Scheduler's placeholder, filled in).
    pub scheduled_time: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ScheduledEnvelope {
    pub scheduled: ScheduledFiring,
}

impl ScheduledFiring {
    /// The schedule's input: this firing with the placeholder for its time.
    pub fn input(target: ScheduleTarget, tenant_id: Uuid, id: Uuid, expression: &str) -> String {
        let firing = ScheduledFiring {
            target,
            tenant_id,
            id,
            expression: expression.to_owned(),
            scheduled_time: SCHEDULED_TIME_PLACEHOLDER.to_owned(),
        };
        serde_json::to_string(&ScheduledEnvelope { scheduled: firing }).unwrap_or_default()
    }

    /// A queue message that is a firing; `None` for any other message.
    pub fn from_body(body: &str) -> Option<ScheduledFiring> {
        serde_json::from_str::<ScheduledEnvelope>(body).ok().map(|e| e.scheduled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).expect("valid").with_timezone(&Utc)
    }

    #[test]
    fn rates_are_schedulers_grammar_with_its_floor() {
        let hour = ScheduleExpression::parse("rate(1 hour)").expect("valid");
        assert!(matches!(hour, ScheduleExpression::Rate { seconds: 3600, .. }));
        assert!(matches!(
            ScheduleExpression::parse("rate(15 minutes)"),
            Ok(ScheduleExpression::Rate { seconds: 900, .. })
        ));
        assert!(matches!(
            ScheduleExpression::parse("rate(2 days)"),
            Ok(ScheduleExpression::Rate { seconds: 172_800, .. })
        ));
        for bad in ["rate(0 minutes)", "rate(1 week)", "rate(x hours)", "rate(1)", "rate(-1 hours)", "hourly", ""] {
            assert!(ScheduleExpression::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(hour.as_str(), "rate(1 hour)");
    }

    #[test]
    fn crons_take_six_fields_and_one_question_mark() {
        assert!(ScheduleExpression::parse("cron(0 2 * * ? *)").is_ok());
        assert!(ScheduleExpression::parse("cron(15 10 ? * MON-FRI *)").is_ok());
        assert!(ScheduleExpression::parse("cron(0 8 1 * ? 2027)").is_ok());
        assert!(ScheduleExpression::parse("cron(0 2 * * * *)").is_err(), "no ?");
        assert!(ScheduleExpression::parse("cron(0 2 ? * ? *)").is_err(), "two ?");
        assert!(ScheduleExpression::parse("cron(0 2 * * ?)").is_err(), "five fields");
        assert!(ScheduleExpression::parse("cron(61 2 * * ? *)").is_err(), "minute 61");
    }

    #[test]
    fn next_firings() {
        let anchor = at("2026-12-02T10:00:00Z");
        let hourly = ScheduleExpression::parse("rate(1 hour)").expect("valid");
        assert_eq!(hourly.next_after(anchor, anchor), Some(at("2026-12-02T11:00:00Z")));
        assert_eq!(hourly.next_after(anchor, at("2026-12-02T12:30:00Z")), Some(at("2026-12-02T13:00:00Z")));
        let nightly = ScheduleExpression::parse("cron(0 2 * * ? *)").expect("valid");
        assert_eq!(nightly.next_after(anchor, anchor), Some(at("2026-12-03T02:00:00Z")));
        // Quartz weekdays: 2 is Monday; 2026-12-07 is a Monday.
        let mondays = ScheduleExpression::parse("cron(30 9 ? * 2 *)").expect("valid");
        assert_eq!(mondays.next_after(anchor, anchor), Some(at("2026-12-07T09:30:00Z")));
        let weekdays = ScheduleExpression::parse("cron(30 9 ? * MON-FRI *)").expect("valid");
        assert_eq!(weekdays.next_after(anchor, anchor), Some(at("2026-12-03T09:30:00Z")));
    }

    #[test]
    fn a_firing_round_trips_through_its_input() {
        let (tenant, id) = (Uuid::now_v7(), Uuid::now_v7());
        let input = ScheduledFiring::input(ScheduleTarget::Workflow, tenant, id, "rate(1 hour)");
        let filled = input.replace(SCHEDULED_TIME_PLACEHOLDER, "2026-12-02T11:00:00Z");
        let firing = ScheduledFiring::from_body(&filled).expect("valid");
        assert_eq!((firing.target, firing.tenant_id, firing.id), (ScheduleTarget::Workflow, tenant, id));
        assert_eq!(firing.scheduled_time, "2026-12-02T11:00:00Z");
        assert!(ScheduledFiring::from_body(r#"{"job":"probe"}"#).is_none());
        assert_eq!(schedule_name(ScheduleTarget::SyncConnection, id).len(), 37);
    }
}
