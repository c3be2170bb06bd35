//! `GET /v1/billing/analytics/comprehensive` (seed 000 scenario 4 step 3),
//! computed from the hourly rollups and nothing else: every figure below is
//! a formula over them, the components' tiers, the subscription's base
//! price and the account's tax rate. Seed 000's `processing_efficiency`
//! and `cost_efficiency` have no source: `cost_efficiency` is answered
//! `not_applicable` (API.md), the other is left out.
//!
//! - The window is the last N days up to now; the previous window is the N
//!   days before it. An hour counts in the window its start falls in.
//! - `total_quantity`: the window's sum of a metric's hours; `total_cost`:
//!   that total priced by the component's tiers (as one billing period);
//!   `null` for a metric no component prices.
//! - `average_daily`: `total_quantity / N`, 2 decimals; `peak_day` and
//!   `peak_usage`: the day (in `timezone`) with the largest quantity.
//! - `base_subscription`: the monthly base x the fraction of each UTC
//!   calendar month the window covers (by seconds); `usage_charges`: the sum
//!   of `total_cost`; `total_revenue`: their sum; `tax_amount`:
//!   `round_half_even(total_revenue x rate / 100)`; `total_with_tax`.
//! - `month_over_month_growth`: `(usage_charges - previous) / previous`,
//!   4 decimals, where `previous` prices the previous window's totals the
//!   same way; `null` when `previous` is 0.
//! - `usage_trend`: `increasing` above +5 % growth, `decreasing` below
//!   -5 %, else `stable`; without a previous figure, `increasing` when there
//!   are charges now, else `stable`.
//! - `timezone`: `UTC` or a fixed offset (`+02:00`, `-0530`, `UTC+2`): days
//!   and hour buckets start at local midnight and local hours. IANA zone
//!   names are refused: a zone database is not worth its size in every
//!   function for one query parameter.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Duration, FixedOffset, NaiveDate, Timelike, Utc};
use rust_decimal::{Decimal, prelude::ToPrimitive};
use serde::Serialize;

use super::{
    component::{BUILT_IN_METERS, MeteredComponent},
    money::{MoneyString, money_string, quantity_json, round_cents},
    usage::{hour_of, hour_start, period_bounds, period_of},
};
use crate::error::AppError;

/// The longest window, in days.
pub const MAX_DAYS: i64 = 90;

crate::string_enum!(
    /// How the series is bucketed.
    Breakdown {
        Daily => "daily",
        Hourly => "hourly",
    }
);

/// The query, checked.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AnalyticsQuery {
    pub days: i64,
    pub breakdown: Breakdown,
    pub timezone: FixedOffset,
}

/// `UTC`, `Z`, `GMT`, `Etc/UTC`, or `[UTC]±HH[:MM]`.
pub fn parse_timezone(text: &str) -> Option<FixedOffset> {
    let upper = text.trim().to_ascii_uppercase();
    if matches!(upper.as_str(), "UTC" | "Z" | "GMT" | "ETC/UTC") {
        return FixedOffset::east_opt(0);
    }
    let rest = upper.strip_prefix("UTC").or_else(|| upper.strip_prefix("GMT")).unwrap_or(&upper);
    let (sign, digits) = match rest.as_bytes().first() {
        Some(b'+') => (1, &rest[1..]),
        Some(b'-') => (-1, &rest[1..]),
        _ => return None,
    };
    let (hours, minutes) = match digits.split_once(':') {
        Some((h, m)) => (h, m),
        None if digits.len() == 4 => digits.split_at(2),
        None => (digits, "0"),
    };
    if hours.is_empty() || hours.len() > 2 || minutes.len() > 2 {
        return None;
    }
    let (hours, minutes): (i32, i32) = (hours.parse().ok()?, minutes.parse().ok()?);
    if hours > 14 || minutes > 59 {
        return None;
    }
    FixedOffset::east_opt(sign * (hours * 3600 + minutes * 60))
}

impl AnalyticsQuery {
    /// From the query string: `period` (`<N>d`, 1 to 90, default `30d`),
    /// `breakdown` (`daily` default, `hourly`), `timezone` (default UTC).
    pub fn parse(params: &HashMap<String, String>) -> Result<AnalyticsQuery, AppError> {
        let mut errors = Vec::new();
        let mut names: Vec<&String> = params.keys().collect();
        names.sort();
        for name in names {
            if !matches!(name.as_str(), "period" | "breakdown" | "timezone") {
                errors.push(crate::error::FieldError::new(name.as_str(), "is not a parameter of this operation"));
            }
        }
        let days = match params.get("period") {
            None => 30,
            Some(text) => match text.strip_suffix('d').and_then(|n| n.parse::<i64>().ok()) {
                Some(n) if (1..=MAX_DAYS).contains(&n) => n,
                _ => {
                    errors.push(crate::error::FieldError::new(
                        "period",
                        format!("must be <N>d with N from 1 to {MAX_DAYS} (30d)"),
                    ));
                    30
                }
            },
        };
        let breakdown = match params.get("breakdown") {
            None => Breakdown::Daily,
            Some(text) => Breakdown::parse(text).unwrap_or_else(|| {
                errors.push(crate::error::FieldError::new("breakdown", "must be one of daily, hourly"));
                Breakdown::Daily
            }),
        };
        let timezone = match params.get("timezone") {
            None => FixedOffset::east_opt(0),
            Some(text) => parse_timezone(text).or_else(|| {
                errors.push(crate::error::FieldError::new(
                    "timezone",
                    "must be UTC or a fixed offset such as +02:00 (IANA zone names are not supported)",
                ));
                FixedOffset::east_opt(0)
            }),
        };
        if !errors.is_empty() {
            return Err(AppError::validation(errors));
        }
        let timezone = timezone.ok_or_else(|| AppError::invalid_field("timezone", "is out of range"))?;
        Ok(AnalyticsQuery { days, breakdown, timezone })
    }

    /// The first and last hour keys to read: the previous window's first
    /// hour to now's.
    pub fn hours_to_read(&self, now: DateTime<Utc>) -> (String, String) {
        (hour_of(now - Duration::days(2 * self.days)), hour_of(now))
    }
}

/// The window.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AnalyticsPeriod {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub days: i64,
}

/// Seed 000's `summary` (module doc for each formula).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AnalyticsSummary {
    #[schema(value_type = MoneyString)]
    pub total_revenue: String,
    #[schema(value_type = MoneyString)]
    pub base_subscription: String,
    #[schema(value_type = MoneyString)]
    pub usage_charges: String,
    #[schema(value_type = MoneyString)]
    pub tax_amount: String,
    #[schema(value_type = MoneyString)]
    pub total_with_tax: String,
}

/// One metric over the window.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct MetricBreakdown {
    #[schema(value_type = f64)]
    pub total_quantity: serde_json::Number,
    /// `null` when no component prices the metric.
    #[schema(value_type = Option<MoneyString>, required = true)]
    pub total_cost: Option<String>,
    #[schema(value_type = f64)]
    pub average_daily: serde_json::Number,
    /// `YYYY-MM-DD` in `timezone`; `null` when nothing was counted.
    #[schema(required = true)]
    pub peak_day: Option<NaiveDate>,
    #[schema(value_type = f64)]
    pub peak_usage: serde_json::Number,
}

crate::string_enum!(
    /// The direction of usage charges against the previous window.
    UsageTrend {
        Increasing => "increasing",
        Decreasing => "decreasing",
        Stable => "stable",
    }
);

crate::string_enum!(
    /// A figure with no source (API.md: never invented).
    NotApplicable {
        NotApplicable => "not_applicable",
    }
);

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AnalyticsTrends {
    /// A fraction (0.15 is +15 %); `null` when the previous window had no charges.
    #[schema(required = true)]
    pub month_over_month_growth: Option<f64>,
    pub usage_trend: UsageTrend,
    pub cost_efficiency: NotApplicable,
}

/// One bucket of the series.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct SeriesPoint {
    /// The bucket's start, in `timezone`.
    #[schema(value_type = String, format = DateTime)]
    pub start: DateTime<FixedOffset>,
    #[schema(value_type = BTreeMap<String, f64>)]
    pub quantities: BTreeMap<String, serde_json::Number>,
}

/// The whole answer.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AnalyticsView {
    pub period: AnalyticsPeriod,
    pub breakdown: Breakdown,
    /// The offset days start at (`+00:00` for UTC).
    pub timezone: String,
    pub summary: AnalyticsSummary,
    pub usage_breakdown: BTreeMap<String, MetricBreakdown>,
    pub trends: AnalyticsTrends,
    pub series: Vec<SeriesPoint>,
}

/// `base_monthly` x the fraction of each UTC calendar month `[start, end)`
/// covers, by seconds.
pub fn prorated_base(base_monthly: Decimal, start: DateTime<Utc>, end: DateTime<Utc>) -> Decimal {
    let mut total = Decimal::ZERO;
    let mut cursor = start;
    while cursor < end {
        let Some((month_start, month_end)) = period_bounds(&period_of(cursor)) else { break };
        let until = end.min(month_end);
        total += base_monthly * Decimal::from((until - cursor).num_seconds())
            / Decimal::from((month_end - month_start).num_seconds().max(1));
        cursor = month_end;
    }
    total
}

fn local_hour(at: DateTime<Utc>, tz: FixedOffset) -> DateTime<FixedOffset> {
    let local = at.with_timezone(&tz);
    local.with_minute(0).and_then(|t| t.with_second(0)).and_then(|t| t.with_nanosecond(0)).unwrap_or(local)
}

fn local_midnight(date: NaiveDate, tz: FixedOffset) -> Option<DateTime<FixedOffset>> {
    date.and_hms_opt(0, 0, 0)?.and_local_timezone(tz).single()
}

/// The analytics of the window (module doc). `hours` are the rollups of
/// [`AnalyticsQuery::hours_to_read`] (`usage::hour_of` keys).
pub fn analytics(
    now: DateTime<Utc>,
    query: &AnalyticsQuery,
    hours: &[(String, BTreeMap<String, Decimal>)],
    components: &[MeteredComponent],
    base_monthly: Option<Decimal>,
    tax_rate_percent: Decimal,
) -> Result<AnalyticsView, AppError> {
    let tz = query.timezone;
    let start = now - Duration::days(query.days);
    let previous_start = start - Duration::days(query.days);
    let (first, previous_first, last) = (hour_of(start), hour_of(previous_start), hour_of(now));
    let mut metrics: Vec<String> = BUILT_IN_METERS.iter().map(|m| (*m).to_owned()).collect();
    for name in components.iter().map(|c| &c.name).chain(hours.iter().flat_map(|(_, m)| m.keys())) {
        if !metrics.contains(name) {
            metrics.push(name.clone());
        }
    }
    let mut totals: BTreeMap<&str, Decimal> = BTreeMap::new();
    let mut previous: BTreeMap<&str, Decimal> = BTreeMap::new();
    let mut daily: BTreeMap<NaiveDate, BTreeMap<&str, Decimal>> = BTreeMap::new();
    let mut buckets: BTreeMap<DateTime<FixedOffset>, BTreeMap<&str, Decimal>> = BTreeMap::new();
    for (key, quantities) in hours {
        let Some(at) = hour_start(key) else { continue };
        if key.as_str() >= first.as_str() && key.as_str() <= last.as_str() {
            let day = at.with_timezone(&tz).date_naive();
            let bucket = match query.breakdown {
                Breakdown::Daily => local_midnight(day, tz).unwrap_or_else(|| local_hour(at, tz)),
                Breakdown::Hourly => local_hour(at, tz),
            };
            for (metric, quantity) in quantities {
                *totals.entry(metric).or_default() += *quantity;
                *daily.entry(day).or_default().entry(metric).or_default() += *quantity;
                *buckets.entry(bucket).or_default().entry(metric).or_default() += *quantity;
            }
        } else if key.as_str() >= previous_first.as_str() && key.as_str() < first.as_str() {
            for (metric, quantity) in quantities {
                *previous.entry(metric).or_default() += *quantity;
            }
        }
    }
    // Every bucket of the window, empty ones included, so a chart has no holes.
    let mut series = Vec::new();
    let mut cursor = match query.breakdown {
        Breakdown::Daily => {
            local_midnight(start.with_timezone(&tz).date_naive(), tz).unwrap_or_else(|| local_hour(start, tz))
        }
        Breakdown::Hourly => local_hour(start, tz),
    };
    let step = match query.breakdown {
        Breakdown::Daily => Duration::days(1),
        Breakdown::Hourly => Duration::hours(1),
    };
    while cursor <= now.with_timezone(&tz) {
        let found = buckets.get(&cursor);
        let quantities = metrics
            .iter()
            .map(|m| (m.clone(), quantity_json(found.and_then(|b| b.get(m.as_str())).copied().unwrap_or_default())))
            .collect();
        series.push(SeriesPoint { start: cursor, quantities });
        cursor += step;
    }
    let price = |name: &str, quantity: Decimal| {
        components.iter().find(|c| c.name == name).map(|c| c.pricing().price(quantity).amount)
    };
    let days = Decimal::from(query.days);
    let mut usage_breakdown = BTreeMap::new();
    let mut usage_charges = Decimal::ZERO;
    for metric in &metrics {
        let total = totals.get(metric.as_str()).copied().unwrap_or_default();
        let cost = price(metric, total);
        usage_charges = usage_charges.saturating_add(cost.unwrap_or_default());
        let peak = daily
            .iter()
            .filter_map(|(day, m)| m.get(metric.as_str()).map(|q| (*day, *q)))
            .filter(|(_, q)| *q > Decimal::ZERO)
            .fold(None::<(NaiveDate, Decimal)>, |best, (day, q)| match best {
                Some((_, top)) if top >= q => best,
                _ => Some((day, q)),
            });
        usage_breakdown.insert(
            metric.clone(),
            MetricBreakdown {
                total_quantity: quantity_json(total),
                total_cost: cost.map(money_string),
                average_daily: quantity_json((total / days).round_dp(2)),
                peak_day: peak.map(|(day, _)| day),
                peak_usage: quantity_json(peak.map_or(Decimal::ZERO, |(_, q)| q)),
            },
        );
    }
    let previous_charges = previous
        .iter()
        .filter_map(|(metric, quantity)| price(metric, *quantity))
        .fold(Decimal::ZERO, Decimal::saturating_add);
    let growth = (!previous_charges.is_zero())
        .then(|| (usage_charges.saturating_sub(previous_charges) / previous_charges).round_dp(4).to_f64())
        .flatten();
    let usage_trend = match growth {
        Some(g) if g > 0.05 => UsageTrend::Increasing,
        Some(g) if g < -0.05 => UsageTrend::Decreasing,
        Some(_) => UsageTrend::Stable,
        None if usage_charges > Decimal::ZERO => UsageTrend::Increasing,
        None => UsageTrend::Stable,
    };
    let base = round_cents(base_monthly.map_or(Decimal::ZERO, |b| prorated_base(b, start, now)));
    let total_revenue = base.saturating_add(usage_charges);
    let tax = round_cents(total_revenue.saturating_mul(tax_rate_percent) / Decimal::ONE_HUNDRED);
    Ok(AnalyticsView {
        period: AnalyticsPeriod { start, end: now, days: query.days },
        breakdown: query.breakdown,
        timezone: tz.to_string(),
        summary: AnalyticsSummary {
            total_revenue: money_string(total_revenue),
            base_subscription: money_string(base),
            usage_charges: money_string(usage_charges),
            tax_amount: money_string(tax),
            total_with_tax: money_string(total_revenue.saturating_add(tax)),
        },
        usage_breakdown,
        trends: AnalyticsTrends {
            month_over_month_growth: growth,
            usage_trend,
            cost_efficiency: NotApplicable::NotApplicable,
        },
        series,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::domain::billing::component::tests::seed_components;

    fn query(pairs: &[(&str, &str)]) -> Result<AnalyticsQuery, Vec<String>> {
        let params = pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        AnalyticsQuery::parse(&params).map_err(|e| e.invalid_fields())
    }

    #[test]
    fn the_query_is_checked() {
        let q = query(&[("period", "30d"), ("breakdown", "daily")]).expect("valid");
        assert_eq!((q.days, q.breakdown), (30, Breakdown::Daily));
        assert_eq!(query(&[]).expect("defaults").days, 30);
        assert_eq!(query(&[("timezone", "+02:00")]).expect("valid").timezone.local_minus_utc(), 7200);
        assert_eq!(query(&[("timezone", "UTC-0530")]).expect("valid").timezone.local_minus_utc(), -19800);
        assert_eq!(query(&[("period", "91d")]), Err(vec!["period".to_owned()]));
        assert_eq!(query(&[("period", "30")]), Err(vec!["period".to_owned()]));
        assert_eq!(query(&[("breakdown", "weekly")]), Err(vec!["breakdown".to_owned()]));
        assert_eq!(query(&[("timezone", "Europe/Paris")]), Err(vec!["timezone".to_owned()]));
        assert_eq!(query(&[("limit", "1")]), Err(vec!["limit".to_owned()]));
    }

    fn hours(pairs: &[(&str, &str, i64)]) -> Vec<(String, BTreeMap<String, Decimal>)> {
        let mut map: BTreeMap<String, BTreeMap<String, Decimal>> = BTreeMap::new();
        for (hour, metric, q) in pairs {
            *map.entry((*hour).to_owned()).or_default().entry((*metric).to_owned()).or_default() += Decimal::from(*q);
        }
        map.into_iter().collect()
    }

    #[test]
    fn figures_come_from_the_rollups() {
        let now: DateTime<Utc> = "2024-01-31T12:00:00Z".parse().expect("time");
        let q = query(&[("period", "10d")]).expect("valid");
        let rollups = hours(&[
            ("2024-01-25T10", "api_calls", 125_000),
            ("2024-01-25T22", "api_calls", 25_000),
            ("2024-01-26T01", "api_calls", 50_000),
            ("2024-01-27T00", "ai_requests", 500),
            // The previous window (2024-01-11T12 .. 2024-01-21T12).
            ("2024-01-15T14", "api_calls", 100_000),
            // Before both: ignored.
            ("2024-01-01T00", "api_calls", 1),
        ]);
        let view = analytics(now, &q, &rollups, &seed_components(), Some(Decimal::from(3100)), Decimal::from(10))
            .expect("view");
        let json = serde_json::to_value(&view).expect("json");
        let api = &json["usage_breakdown"]["api_calls"];
        assert_eq!(api["total_quantity"], 200_000);
        // 100 + 100,000 x 0.0008.
        assert_eq!(api["total_cost"], "180.00");
        assert_eq!(api["average_daily"], 20_000);
        assert_eq!((api["peak_day"].as_str(), &api["peak_usage"]), (Some("2024-01-25"), &json!(150_000)));
        // 500 x 0.05.
        assert_eq!(json["usage_breakdown"]["ai_requests"]["total_cost"], "25.00");
        // 10 of January's 31 days: 3100 x 10/31.
        assert_eq!(json["summary"]["base_subscription"], "1000.00");
        assert_eq!(json["summary"]["usage_charges"], "205.00");
        assert_eq!(json["summary"]["total_revenue"], "1205.00");
        assert_eq!(json["summary"]["tax_amount"], "120.50");
        assert_eq!(json["summary"]["total_with_tax"], "1325.50");
        // Previous: 100,000 calls = 100.00; now 205.00: +105 %.
        assert_eq!(json["trends"]["month_over_month_growth"], 1.05);
        assert_eq!(json["trends"]["usage_trend"], "increasing");
        assert_eq!(json["trends"]["cost_efficiency"], "not_applicable");
        assert_eq!(view.series.len(), 11);
        // In UTC+03:00 the 22:00 hour belongs to the 26th.
        let east = query(&[("period", "10d"), ("timezone", "+03:00")]).expect("valid");
        let shifted = analytics(now, &east, &rollups, &seed_components(), None, Decimal::ZERO).expect("view");
        assert_eq!(shifted.usage_breakdown["api_calls"].peak_day, Some("2024-01-25".parse().expect("date")));
        assert_eq!(shifted.usage_breakdown["api_calls"].peak_usage, quantity_json(Decimal::from(125_000)));
        let hourly = query(&[("period", "1d"), ("breakdown", "hourly")]).expect("valid");
        let view = analytics(now, &hourly, &[], &[], None, Decimal::ZERO).expect("view");
        assert_eq!(view.series.len(), 25);
        assert_eq!(view.trends.month_over_month_growth, None);
        assert_eq!(view.trends.usage_trend, UsageTrend::Stable);
    }
}
