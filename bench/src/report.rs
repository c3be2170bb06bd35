//! Statistics over the samples and the markdown tables the bench prints.

use std::{collections::BTreeMap, fmt::Write as _, time::Duration};

use crate::proxy::Call;

/// One answered invocation.
pub struct Sample {
    pub latency: Duration,
    /// The answer's status as the check saw it (`200`, `no failures`, ...).
    pub status: String,
    pub calls: Vec<Call>,
}

impl Sample {
    /// Time the invocation's AWS calls spent in moto (summed; they are sequential).
    pub fn aws_time(&self) -> Duration {
        self.calls.iter().filter_map(Call::duration).sum()
    }
}

/// All spawns of one function's cold-start series.
pub struct Cold {
    pub request: String,
    /// Spawn -> first `/next`.
    pub init: Vec<Duration>,
    /// Spawn -> first answer; `latency` of each sample is that figure.
    pub first: Vec<Sample>,
    pub init_calls: Vec<Vec<Call>>,
    /// VmHWM right after the first answer, KiB.
    pub rss_kib: Vec<u64>,
    /// The same spawns with moto's recorded answers replayed at memory speed.
    pub replayed_init: Vec<Duration>,
    pub replayed_first: Vec<Sample>,
    /// The hello-world floor's init, one spawn next to each replayed spawn
    /// (empty for the floor itself): the unit of that spawn's ratio.
    pub floor_alongside: Vec<Duration>,
    /// Replayed calls answered by substitution (`proxy` module doc).
    pub substituted: usize,
}

/// One process serving request after request.
pub struct Warm {
    pub kinds: Vec<(String, Vec<Sample>)>,
    pub warmups: usize,
    /// VmHWM at the end of the run, KiB.
    pub rss_kib: u64,
    /// The same run in a second process, moto's answers replayed.
    pub replayed: Vec<(String, Vec<Sample>)>,
    /// Per kind: the process's CPU time over the replayed invocations, per invocation.
    pub replayed_cpu: Vec<Duration>,
    pub replayed_rss_kib: u64,
    pub substituted: usize,
}

pub struct FunctionReport {
    pub name: &'static str,
    pub binary: String,
    pub binary_bytes: u64,
    pub cold: Cold,
    pub warm: Warm,
    /// moto's VmHWM at the end of the function's runs, KiB, when known.
    pub moto_peak_rss_kib: Option<u64>,
    /// Figures of a function's own (printed under its tables and the summary).
    pub notes: Vec<String>,
}

impl Warm {
    /// Adds another warm run of the same function (another process).
    pub fn merge(&mut self, other: Warm) {
        self.kinds.extend(other.kinds);
        self.warmups += other.warmups;
        self.rss_kib = self.rss_kib.max(other.rss_kib);
        self.replayed.extend(other.replayed);
        self.replayed_cpu.extend(other.replayed_cpu);
        self.replayed_rss_kib = self.replayed_rss_kib.max(other.replayed_rss_kib);
        self.substituted += other.substituted;
    }
}

/// Nearest-rank percentile of sorted values (`p` in 0..=100).
pub fn percentile<T: Copy>(sorted: &[T], p: f64) -> Option<T> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

fn sorted(values: &[Duration]) -> Vec<Duration> {
    let mut values = values.to_vec();
    values.sort();
    values
}

pub fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 10.0 { format!("{ms:.2} ms") } else { format!("{ms:.1} ms") }
}

fn cell(value: Option<Duration>) -> String {
    value.map_or_else(|| "–".to_owned(), ms)
}

pub fn mib(bytes: u64) -> String {
    format!("{} MiB", mib_number(bytes))
}

fn mib_number(bytes: u64) -> String {
    format!("{:.2}", bytes as f64 / (1024.0 * 1024.0))
}

/// `11538824` -> `11,538,824`.
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// `200 ×20`, or `200 ×19, 201 ×1`.
fn tally<'a>(values: impl IntoIterator<Item = &'a str>) -> String {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for value in values {
        *counts.entry(value).or_default() += 1;
    }
    counts.iter().map(|(v, n)| format!("{v} ×{n}")).collect::<Vec<_>>().join(", ")
}

/// Calls per request by operation: `dynamodb:GetItem ×3, dynamodb:PutItem ×1`;
/// a count that varies between requests is shown as its mean.
pub fn calls_per_request(per_request: &[Vec<Call>]) -> String {
    if per_request.is_empty() {
        return "–".to_owned();
    }
    let mut totals: BTreeMap<&str, usize> = BTreeMap::new();
    for calls in per_request {
        for call in calls {
            *totals.entry(call.name.as_str()).or_default() += 1;
        }
    }
    if totals.is_empty() {
        return "none".to_owned();
    }
    let n = per_request.len();
    totals
        .iter()
        .map(|(name, total)| {
            if total.is_multiple_of(n) {
                format!("{name} ×{}", total / n)
            } else {
                format!("{name} ×{:.2} (mean)", *total as f64 / n as f64)
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// moto's time per operation (head sent -> first byte back).
pub fn moto_table(calls: &[Call]) -> String {
    let mut by_name: BTreeMap<&str, Vec<Duration>> = BTreeMap::new();
    for call in calls {
        if let Some(duration) = call.duration() {
            by_name.entry(call.name.as_str()).or_default().push(duration);
        }
    }
    let mut out = "| AWS operation (through moto) | calls | median | p95 | max |\n|---|--:|--:|--:|--:|\n".to_owned();
    for (name, durations) in by_name {
        let durations = sorted(&durations);
        let _ = writeln!(
            out,
            "| `{name}` | {} | {} | {} | {} |",
            durations.len(),
            cell(percentile(&durations, 50.0)),
            cell(percentile(&durations, 95.0)),
            cell(durations.last().copied())
        );
    }
    out
}

const HEADER: &str = "| measure | request | n | min | median | p95 | p99 | max | of which waiting on AWS (median) | answers | AWS calls per request |\n|---|---|--:|--:|--:|--:|--:|--:|--:|---|---|\n";

/// One function's tables: latencies, then memory and size.
pub fn function_tables(report: &FunctionReport, arch: &str) -> String {
    let mut out = String::new();
    let cold = &report.cold;
    let _ = writeln!(out, "### {}\n", report.name);
    let _ = writeln!(
        out,
        "Binary `{}`: {} bytes ({}), {arch} build (deploys are arm64, built by cargo-lambda/zig; not buildable here).\n",
        report.binary,
        grouped(report.binary_bytes),
        mib(report.binary_bytes)
    );
    out.push_str(HEADER);

    out.push_str(&init_row("cold: init (spawn → first `/next`)", &cold.init, &calls_per_request(&cold.init_calls)));
    out.push_str(&row("cold: spawn → first answer", &cold.request, &cold.first, false));
    for (label, samples) in &report.warm.kinds {
        out.push_str(&row("warm", label, samples, true));
    }
    out.push_str(&init_row("replayed cold: init", &cold.replayed_init, "–"));
    if !cold.floor_alongside.is_empty() {
        out.push_str(&init_row("replayed cold: the floor's init, spawned alongside", &cold.floor_alongside, "–"));
    }
    out.push_str(&row("replayed cold: spawn → first answer", &cold.request, &cold.replayed_first, false));
    for (label, samples) in &report.warm.replayed {
        out.push_str(&row("replayed warm", label, samples, true));
    }

    // The calls of the measured invocations (not the setup's, nor the warm-ups').
    let measured: Vec<Call> = cold
        .init_calls
        .iter()
        .flatten()
        .chain(cold.first.iter().chain(report.warm.kinds.iter().flat_map(|(_, s)| s)).flat_map(|s| &s.calls))
        .cloned()
        .collect();
    if cold.substituted + report.warm.substituted > 0 {
        let _ = writeln!(
            out,
            "\nReplayed calls answered by substitution (no recorded call at their place): {} cold, {} warm.",
            cold.substituted, report.warm.substituted
        );
    }
    let ratios = paired_ratios(cold);
    if let (Some(min), Some(p50), Some(max)) = (ratios.first(), percentile(&ratios, 50.0), ratios.last()) {
        let within = pairs_within_bound(&ratios);
        let by_order = |first| {
            percentile(&paired_ratios_of(cold, Some(first)), 50.0)
                .map_or_else(|| "–".to_owned(), |r| format!("{r:.2}×"))
        };
        let _ = writeln!(
            out,
            "\nEach replayed init over the floor's spawned next to it (alternately before and after): \
             p50 {p50:.2}×, min {min:.2}×, max {max:.2}×; {within} of {} pairs ≤ {INIT_BOUND}×. \
             p50 with the floor spawned first: {}; second: {}.",
            ratios.len(),
            by_order(true),
            by_order(false)
        );
    }
    for note in &report.notes {
        let _ = writeln!(out, "\n{note}");
    }
    let _ = writeln!(out);
    out.push_str(&moto_table(&measured));

    let rss = {
        let mut rss = cold.rss_kib.clone();
        rss.sort_unstable();
        rss
    };
    let warm_invocations: usize = report.warm.kinds.iter().map(|(_, s)| s.len()).sum::<usize>() + report.warm.warmups;
    let _ = writeln!(out, "\n| peak RSS (VmHWM) | |\n|---|--:|");
    if let (Some(median), Some(min), Some(max)) = (percentile(&rss, 50.0), rss.first(), rss.last()) {
        let _ = writeln!(
            out,
            "| after the cold start's first answer (median of {}; min–max) | {} ({}–{}) |",
            rss.len(),
            mib(median * 1024),
            mib_number(min * 1024),
            mib_number(max * 1024)
        );
    }
    let _ = writeln!(
        out,
        "| after the warm run (one process, {warm_invocations} invocations) | {} |",
        mib(report.warm.rss_kib * 1024)
    );
    if let Some(moto) = report.moto_peak_rss_kib {
        let _ = writeln!(
            out,
            "| moto (the emulator, not the function) by the end of this function's runs | {} |",
            mib(moto * 1024)
        );
    }
    out
}

/// Own time of an invocation: its latency minus the time its AWS calls took
/// to be answered (sequential calls; replayed answers take microseconds).
fn own(sample: &Sample) -> Duration {
    sample.latency.saturating_sub(sample.aws_time())
}

fn median(values: &[Duration]) -> Option<Duration> {
    percentile(&sorted(values), 50.0)
}

fn ratio(value: Option<Duration>, base: Option<Duration>) -> String {
    match (value, base) {
        (Some(v), Some(b)) if !b.is_zero() => format!("{:.1}×", v.as_secs_f64() / b.as_secs_f64()),
        _ => "–".to_owned(),
    }
}

/// Each replayed init over the floor's init spawned next to it, sorted;
/// `order` keeps only the pairs whose floor went first (`Some(true)`: the
/// even spawns) or second (`Some(false)`), to show any bias of the order.
fn paired_ratios_of(cold: &Cold, order: Option<bool>) -> Vec<f64> {
    let mut ratios: Vec<f64> = cold
        .replayed_init
        .iter()
        .zip(&cold.floor_alongside)
        .enumerate()
        .filter(|(i, (_, floor))| !floor.is_zero() && order.is_none_or(|first| first == (i % 2 == 0)))
        .map(|(_, (init, floor))| init.as_secs_f64() / floor.as_secs_f64())
        .collect();
    ratios.sort_by(f64::total_cmp);
    ratios
}

fn paired_ratios(cold: &Cold) -> Vec<f64> {
    paired_ratios_of(cold, None)
}

/// Issue 19's bound on a function's init, as a multiple of the floor's.
const INIT_BOUND: f64 = 2.0;

fn pairs_within_bound(ratios: &[f64]) -> usize {
    ratios.iter().filter(|r| **r <= INIT_BOUND).count()
}

/// `1.8× (7/10 ≤ 2×)`: the median of the paired ratios, and how many pairs
/// meet issue 19's bound.
fn paired_cell(cold: &Cold) -> String {
    let ratios = paired_ratios(cold);
    match percentile(&ratios, 50.0) {
        Some(p50) => {
            let within = pairs_within_bound(&ratios);
            format!("{p50:.1}× ({within}/{} ≤ {INIT_BOUND}×)", ratios.len())
        }
        None => "–".to_owned(),
    }
}

/// One row per function and request kind: the issue 19 figures side by side.
/// `floor` names the hello-world report whose replayed init is the run's
/// floor; each function's own spawns also carry a floor measured alongside.
pub fn summary(reports: &[FunctionReport], floor: &str) -> String {
    let floor_init = reports.iter().find(|r| r.name == floor).and_then(|r| median(&r.cold.replayed_init));
    let mut out = String::from(
        "| function | init, replayed (p50) | floor alongside (p50) | × floor alongside (p50 of pairs) \
         | × the run's floor | init against moto (p50) | warm request | own time p50 | own p95 \
         | CPU per request | latency against moto p50 | AWS calls per request | peak RSS warm | binary |\n\
         |---|--:|--:|--:|--:|--:|---|--:|--:|--:|--:|---|--:|--:|\n",
    );
    for report in reports {
        let init = median(&report.cold.replayed_init);
        let moto_init = median(&report.cold.init);
        for (i, (label, replayed)) in report.warm.replayed.iter().enumerate() {
            let own_times = sorted(&replayed.iter().map(own).collect::<Vec<_>>());
            let against_moto = report.warm.kinds.get(i).map(|(_, samples)| samples.as_slice()).unwrap_or_default();
            let calls: Vec<Vec<Call>> = against_moto.iter().map(|s| s.calls.clone()).collect();
            let first = i == 0;
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | `{label}` | {} | {} | {} | {} | {} | {} | {} |",
                if first { format!("**{}**", report.name) } else { String::new() },
                if first { cell(init) } else { String::new() },
                if first { cell(median(&report.cold.floor_alongside)) } else { String::new() },
                if first { paired_cell(&report.cold) } else { String::new() },
                if first { ratio(init, floor_init) } else { String::new() },
                if first { cell(moto_init) } else { String::new() },
                cell(percentile(&own_times, 50.0)),
                cell(percentile(&own_times, 95.0)),
                cell(report.warm.replayed_cpu.get(i).copied()),
                cell(median(&against_moto.iter().map(|s| s.latency).collect::<Vec<_>>())),
                calls_per_request(&calls),
                if first { mib(report.warm.replayed_rss_kib * 1024) } else { String::new() },
                if first { mib(report.binary_bytes) } else { String::new() },
            );
        }
    }
    out
}

/// An init row: spawn -> first `/next` over the spawns (no request, no p99).
fn init_row(measure: &str, init: &[Duration], calls: &str) -> String {
    let init = sorted(init);
    format!(
        "| {measure} | – | {} | {} | {} | {} | – | {} | – | – | {calls} |\n",
        init.len(),
        cell(init.first().copied()),
        cell(percentile(&init, 50.0)),
        cell(percentile(&init, 95.0)),
        cell(init.last().copied()),
    )
}

fn row(measure: &str, request: &str, samples: &[Sample], with_p99: bool) -> String {
    let latencies = sorted(&samples.iter().map(|s| s.latency).collect::<Vec<_>>());
    let aws = sorted(&samples.iter().map(Sample::aws_time).collect::<Vec<_>>());
    let any_calls = samples.iter().any(|s| !s.calls.is_empty());
    let calls: Vec<Vec<Call>> = samples.iter().map(|s| s.calls.clone()).collect();
    format!(
        "| {measure} | `{request}` | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
        samples.len(),
        cell(latencies.first().copied()),
        cell(percentile(&latencies, 50.0)),
        cell(percentile(&latencies, 95.0)),
        if with_p99 { cell(percentile(&latencies, 99.0)) } else { "–".to_owned() },
        cell(latencies.last().copied()),
        if any_calls { cell(percentile(&aws, 50.0)) } else { "–".to_owned() },
        tally(samples.iter().map(|s| s.status.as_str())),
        calls_per_request(&calls),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let values: Vec<u32> = (1..=20).collect();
        assert_eq!(percentile(&values, 50.0), Some(10));
        assert_eq!(percentile(&values, 95.0), Some(19));
        assert_eq!(percentile(&values, 99.0), Some(20));
        assert_eq!(percentile(&values, 0.0), Some(1));
        assert_eq!(percentile::<u32>(&[], 50.0), None);
        let two_hundred: Vec<u32> = (1..=200).collect();
        assert_eq!(percentile(&two_hundred, 99.0), Some(198));
    }

    #[test]
    fn paired_ratios_use_the_floor_spawned_alongside() {
        let ms = Duration::from_millis;
        let cold = Cold {
            request: String::new(),
            init: vec![],
            first: vec![],
            init_calls: vec![],
            rss_kib: vec![],
            replayed_init: vec![ms(6), ms(3), ms(5)],
            replayed_first: vec![],
            // A slow stretch doubles both inits of the first pair: its ratio stays 2.
            floor_alongside: vec![ms(3), ms(1), ms(2)],
            substituted: 0,
        };
        assert_eq!(paired_ratios(&cold), [2.0, 2.5, 3.0]);
        assert_eq!(paired_ratios_of(&cold, Some(true)), [2.0, 2.5]);
        assert_eq!(paired_ratios_of(&cold, Some(false)), [3.0]);
        assert_eq!(paired_cell(&cold), "2.5× (1/3 ≤ 2×)");
        let floor_itself = Cold { floor_alongside: vec![], ..cold };
        assert_eq!(paired_cell(&floor_itself), "–");
    }

    #[test]
    fn numbers_are_grouped() {
        assert_eq!(grouped(11_538_824), "11,538,824");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1000), "1,000");
    }

    #[test]
    fn calls_are_counted_per_request() {
        let call = |name: &str| Call { name: name.to_owned(), at: std::time::Instant::now(), answered: None };
        let login = vec![call("dynamodb:GetItem"), call("dynamodb:PutItem"), call("dynamodb:GetItem")];
        assert_eq!(calls_per_request(&[login.clone(), login]), "dynamodb:GetItem ×2, dynamodb:PutItem ×1");
        assert_eq!(calls_per_request(&[vec![call("events:PutEvents")], vec![]]), "events:PutEvents ×0.50 (mean)");
        assert_eq!(calls_per_request(&[vec![]]), "none");
    }
}
