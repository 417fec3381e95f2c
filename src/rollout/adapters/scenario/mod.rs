//! [`Scenario`]: a synthetic service history for simulations and tests — a
//! baseline of request rate, error rate, P95 latency, jobs down and firing
//! alerts, with events overriding it on `[from, to)` offsets from `start`.
//!
//! A scenario yields the same numbers two ways: rendered as OpenMetrics
//! samples for `promtool tsdb create-blocks-from openmetrics` (then read back
//! through a real Prometheus), or observed directly with the same window
//! arithmetic Prometheus applies (`rate`/`increase` over the window,
//! `histogram_quantile` over the buckets, 5-minute lookback for gauges), so a
//! simulation on either source reaches the same decisions.
//!
//! ```json
//! { "start": "2025-10-23T09:00:00Z", "duration": "7d", "step": "1m",
//!   "baseline": { "requests_per_second": 200, "error_rate": 0.0005, "p95_ms": 120,
//!                 "jobs_down": [], "critical_alerts": [] },
//!   "events": [ { "from": "30h", "to": "30h6m", "error_rate": 0.012 } ] }
//! ```

use crate::JsonError;
use std::fmt::Write as _;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::rollout::foundation::clock::Timestamp;
use crate::rollout::foundation::duration::serde_text;
use crate::rollout::model::gate::DEFAULT_HEALTH_JOBS;

mod gate;
mod latency;

pub use gate::ScenarioGate;
use latency::{add_latencies, histogram_quantile};

/// Upper bounds (seconds) of the `genesis_request_duration_seconds` buckets.
pub const LATENCY_BUCKETS: [f64; 10] = [0.05, 0.1, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5];

/// The service during one step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Conditions {
    /// Requests per second.
    pub requests_per_second: f64,
    /// Errors / requests, a fraction (0.0005 = 0.05%).
    pub error_rate: f64,
    /// 95th percentile latency, in milliseconds.
    pub p95_ms: f64,
    /// Jobs whose `up` is 0.
    #[serde(default)]
    pub jobs_down: Vec<String>,
    /// Names of firing critical alerts.
    #[serde(default)]
    pub critical_alerts: Vec<String>,
    /// The in cohort's error rate, when it differs from `error_rate` (which
    /// is then the out cohort's); cohort scenarios only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_error_rate: Option<f64>,
    /// The in cohort's P95 in ms, when it differs from `p95_ms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_p95_ms: Option<f64>,
    /// How many instances still apply the previous percentage of the
    /// schedule (report it, and serve with it).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub lagging_instances: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// A scenario's cohort series: the service labels its requests with the
/// rollout and the cohort, and each instance reports the percentage it
/// applies, following `schedule`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioCohorts {
    /// The rollout id (the `rollout` label).
    pub rollout: String,
    /// How many instances serve (default 2).
    #[serde(default = "two")]
    pub instances: u32,
    /// When the instances apply each percentage: from just after `at`
    /// (a controller moving at `at` sees the old percentage at `at` itself).
    /// Default: the six-day plan's healthy timeline.
    #[serde(default = "six_day_schedule")]
    pub schedule: Vec<ScheduleStep>,
}

/// One move of a cohort scenario's schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleStep {
    /// Offset from the start.
    #[serde(with = "serde_text")]
    pub at: Duration,
    /// The percentage from then on (0 to 100).
    pub percentage: f64,
}

fn two() -> u32 {
    2
}

fn six_day_schedule() -> Vec<ScheduleStep> {
    ScenarioCohorts::schedule_for(&crate::rollout::model::plan::Plan::six_day())
}

impl ScenarioCohorts {
    /// Cohorts of `rollout` on two instances following `plan`'s healthy
    /// timeline.
    #[must_use]
    pub fn following(rollout: &str, plan: &crate::rollout::model::plan::Plan) -> ScenarioCohorts {
        ScenarioCohorts {
            rollout: rollout.to_owned(),
            instances: 2,
            schedule: Self::schedule_for(plan),
        }
    }

    /// The healthy timeline of `plan`: each stage at the end of the previous
    /// one's soak, from offset 0.
    #[must_use]
    pub fn schedule_for(plan: &crate::rollout::model::plan::Plan) -> Vec<ScheduleStep> {
        let mut at = Duration::ZERO;
        plan.stages
            .iter()
            .map(|stage| {
                let step = ScheduleStep {
                    at,
                    percentage: stage.percentage.as_percent(),
                };
                at += stage.soak;
                step
            })
            .collect()
    }

    /// The percentage applied at `offset` by an up-to-date instance and by a
    /// lagging one.
    fn percentages_at(&self, offset: Duration) -> (f64, f64) {
        let current = self.schedule.iter().rposition(|s| s.at < offset);
        let at = |i: Option<usize>| {
            i.and_then(|i| self.schedule.get(i))
                .map_or(0.0, |s| s.percentage)
        };
        (at(current), at(current.and_then(|i| i.checked_sub(1))))
    }
}

/// Overrides of the baseline on `[from, to)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    /// Offset from the start where it begins.
    #[serde(with = "serde_text")]
    pub from: Duration,
    /// Offset from the start where it ends (excluded).
    #[serde(with = "serde_text")]
    pub to: Duration,
    /// Overrides the request rate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_second: Option<f64>,
    /// Overrides the error rate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_rate: Option<f64>,
    /// Overrides the P95 latency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p95_ms: Option<f64>,
    /// Overrides the jobs down.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jobs_down: Option<Vec<String>>,
    /// Overrides the firing alerts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub critical_alerts: Option<Vec<String>>,
    /// Overrides the in cohort's error rate only (the flagged path fails).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_error_rate: Option<f64>,
    /// Overrides the in cohort's P95 only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_p95_ms: Option<f64>,
    /// Overrides how many instances lag on the previous percentage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lagging_instances: Option<u32>,
}

impl Event {
    /// An event on `[from, to)` that overrides nothing yet; set the fields
    /// to override.
    #[must_use]
    pub fn between(from: Duration, to: Duration) -> Event {
        Event {
            from,
            to,
            requests_per_second: None,
            error_rate: None,
            p95_ms: None,
            jobs_down: None,
            critical_alerts: None,
            in_error_rate: None,
            in_p95_ms: None,
            lagging_instances: None,
        }
    }
}

/// A synthetic service history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// The first sample's instant.
    pub start: Timestamp,
    /// How long it lasts.
    #[serde(with = "serde_text")]
    pub duration: Duration,
    /// Time between samples (default 1 minute).
    #[serde(with = "serde_text", default = "one_minute")]
    pub step: Duration,
    /// The conditions outside events.
    pub baseline: Conditions,
    /// Overrides, later ones winning.
    #[serde(default)]
    pub events: Vec<Event>,
    /// Cohort series instead of global ones, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cohorts: Option<ScenarioCohorts>,
}

fn one_minute() -> Duration {
    Duration::from_secs(60)
}

/// A scenario that does not hold together.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScenarioError {
    /// Not JSON, or not the scenario's shape.
    #[error("scenario is not valid: {0}")]
    Syntax(JsonError),
    /// A value out of range, with its field.
    #[error("scenario field {field}: {message}")]
    Invalid {
        /// e.g. `events[2].error_rate`.
        field: String,
        /// What is wrong.
        message: String,
    },
}

/// Cumulative counters at one sample.
#[derive(Debug, Clone, Default, PartialEq)]
struct Counters {
    requests: u64,
    errors: u64,
    /// Cumulative count per bucket of [`LATENCY_BUCKETS`], then `+Inf`.
    buckets: [u64; LATENCY_BUCKETS.len() + 1],
    sum: f64,
}

impl Scenario {
    /// Parses and checks a scenario.
    ///
    /// # Errors
    ///
    /// `ScenarioError::Syntax` (with its line and column) for text that is not
    /// a scenario; `Invalid` as for [`validate`](Self::validate).
    pub fn from_json(text: &str) -> Result<Scenario, ScenarioError> {
        let s: Scenario = serde_json::from_str(text)
            .map_err(|e| ScenarioError::Syntax(JsonError::from_serde(&e)))?;
        s.validate()?;
        Ok(s)
    }

    /// A healthy week: 200 rps, 0.05% errors, 120 ms P95, everything up.
    #[must_use]
    pub fn healthy(start: Timestamp) -> Scenario {
        Scenario {
            start,
            duration: Duration::from_secs(7 * 24 * 3600),
            step: one_minute(),
            baseline: Conditions {
                requests_per_second: 200.0,
                error_rate: 0.0005,
                p95_ms: 120.0,
                jobs_down: Vec::new(),
                critical_alerts: Vec::new(),
                in_error_rate: None,
                in_p95_ms: None,
                lagging_instances: 0,
            },
            events: Vec::new(),
            cohorts: None,
        }
    }

    /// Checks ranges: positive step and duration, at most 1,000,000 steps,
    /// events with `from < to`, rates and latencies in range.
    ///
    /// # Errors
    ///
    /// `ScenarioError::Invalid` naming the first value out of range.
    pub fn validate(&self) -> Result<(), ScenarioError> {
        let bad = |field: String, message: &str| {
            Err(ScenarioError::Invalid {
                field,
                message: message.to_owned(),
            })
        };
        if self.step.is_zero() {
            return bad("step".into(), "must be positive");
        }
        if self.duration.is_zero() {
            return bad("duration".into(), "must be positive");
        }
        if self.steps() > 1_000_000 {
            return bad(
                "duration".into(),
                "holds more than 1,000,000 steps; use a longer step",
            );
        }
        check_values(
            "baseline",
            Some(self.baseline.requests_per_second),
            Some(self.baseline.error_rate),
            Some(self.baseline.p95_ms),
        )?;
        if let Some(c) = &self.cohorts {
            if c.rollout.is_empty() {
                return bad("cohorts.rollout".into(), "must not be empty");
            }
            if !(1..=1000).contains(&c.instances) {
                return bad("cohorts.instances".into(), "must be 1 to 1000");
            }
            for (i, step) in c.schedule.iter().enumerate() {
                if !(step.percentage.is_finite() && (0.0..=100.0).contains(&step.percentage)) {
                    return bad(
                        format!("cohorts.schedule[{i}].percentage"),
                        "must be in [0, 100]",
                    );
                }
                if i > 0 && c.schedule[i - 1].at >= step.at {
                    return bad(
                        format!("cohorts.schedule[{i}].at"),
                        "must come after the previous step",
                    );
                }
            }
        }
        check_cohort_values(
            "baseline",
            self.baseline.in_error_rate,
            self.baseline.in_p95_ms,
        )?;
        for (i, e) in self.events.iter().enumerate() {
            check_cohort_values(&format!("events[{i}]"), e.in_error_rate, e.in_p95_ms)?;
            if let (Some(lag), Some(c)) = (e.lagging_instances, &self.cohorts) {
                if lag > c.instances {
                    return bad(
                        format!("events[{i}].lagging_instances"),
                        "exceeds cohorts.instances",
                    );
                }
            }
        }
        for (i, e) in self.events.iter().enumerate() {
            if e.from >= e.to {
                return bad(format!("events[{i}]"), "`from` must be before `to`");
            }
            check_values(
                &format!("events[{i}]"),
                e.requests_per_second,
                e.error_rate,
                e.p95_ms,
            )?;
        }
        Ok(())
    }

    /// The conditions at `offset` from the start.
    #[must_use]
    pub fn conditions_at(&self, offset: Duration) -> Conditions {
        let mut c = self.baseline.clone();
        for e in self
            .events
            .iter()
            .filter(|e| e.from <= offset && offset < e.to)
        {
            if let Some(v) = e.requests_per_second {
                c.requests_per_second = v;
            }
            if let Some(v) = e.error_rate {
                c.error_rate = v;
            }
            if let Some(v) = e.p95_ms {
                c.p95_ms = v;
            }
            if let Some(v) = &e.jobs_down {
                c.jobs_down.clone_from(v);
            }
            if let Some(v) = &e.critical_alerts {
                c.critical_alerts.clone_from(v);
            }
            if let Some(v) = e.in_error_rate {
                c.in_error_rate = Some(v);
            }
            if let Some(v) = e.in_p95_ms {
                c.in_p95_ms = Some(v);
            }
            if let Some(v) = e.lagging_instances {
                c.lagging_instances = v;
            }
        }
        c
    }

    fn steps(&self) -> u64 {
        (self.duration.as_millis() / self.step.as_millis().max(1)) as u64
    }

    /// Cumulative counters at every sample, sample 0 at the start: the
    /// totals (the sum of both cohorts in a cohort scenario).
    fn counters(&self) -> Vec<Counters> {
        if self.cohorts.is_some() {
            return self
                .cohort_counters()
                .iter()
                .map(|[a, b]| Counters {
                    requests: a.requests + b.requests,
                    errors: a.errors + b.errors,
                    buckets: std::array::from_fn(|i| a.buckets[i] + b.buckets[i]),
                    sum: a.sum + b.sum,
                })
                .collect();
        }
        let mut out = Vec::with_capacity(self.steps() as usize + 1);
        let mut acc = Counters::default();
        out.push(acc.clone());
        for i in 1..=self.steps() {
            // The step ending at sample i carries the conditions of its start.
            let c = self.conditions_at(self.step * (i - 1) as u32);
            let n = (c.requests_per_second * self.step.as_secs_f64()).round() as u64;
            acc.requests += n;
            acc.errors += (n as f64 * c.error_rate).round() as u64;
            add_latencies(&mut acc, c.p95_ms, n);
            out.push(acc.clone());
        }
        out
    }

    /// The percentage each instance applies at sample `i` (lagging ones
    /// first); empty without cohorts.
    fn instance_percentages(&self, i: u64) -> Vec<f64> {
        let Some(cohorts) = &self.cohorts else {
            return Vec::new();
        };
        let offset = self.step * i as u32;
        let (current, previous) = cohorts.percentages_at(offset);
        let lagging = self.conditions_at(offset).lagging_instances;
        (0..cohorts.instances)
            .map(|k| if k < lagging { previous } else { current })
            .collect()
    }

    /// Cumulative `[in, out]` counters at every sample of a cohort scenario.
    /// Errors and requests are rounded from exact running sums, so small
    /// rates are neither lost nor inflated.
    fn cohort_counters(&self) -> Vec<[Counters; 2]> {
        let mut out = Vec::with_capacity(self.steps() as usize + 1);
        let mut acc: [Counters; 2] = Default::default();
        let mut exact = [[0.0f64; 2]; 2]; // [cohort][requests, errors]
        out.push(acc.clone());
        for i in 1..=self.steps() {
            let c = self.conditions_at(self.step * (i - 1) as u32);
            let percentages = self.instance_percentages(i);
            let share = if percentages.is_empty() {
                0.0
            } else {
                percentages.iter().sum::<f64>() / percentages.len() as f64 / 100.0
            };
            let n = c.requests_per_second * self.step.as_secs_f64();
            let rates = [c.in_error_rate.unwrap_or(c.error_rate), c.error_rate];
            let p95s = [c.in_p95_ms.unwrap_or(c.p95_ms), c.p95_ms];
            for (k, part) in [n * share, n * (1.0 - share)].into_iter().enumerate() {
                exact[k][0] += part;
                exact[k][1] += part * rates[k];
                let requests = exact[k][0].round() as u64;
                let added = requests - acc[k].requests;
                acc[k].requests = requests;
                acc[k].errors = (exact[k][1].round() as u64).min(requests);
                add_latencies(&mut acc[k], p95s[k], added);
            }
            out.push(acc.clone());
        }
        out
    }

    /// OpenMetrics samples with timestamps in seconds, ending in `# EOF`, for
    /// `promtool tsdb create-blocks-from openmetrics`.
    #[must_use]
    pub fn openmetrics(&self) -> String {
        let counters = self.counters();
        let ts = |i: usize| (self.start + self.step * i as u32).unix_millis() as f64 / 1000.0;
        // Global series carry no labels; a cohort scenario's carry the
        // rollout and the cohort (global queries sum over them).
        let series: Vec<(String, Vec<Counters>)> = match &self.cohorts {
            None => vec![(String::new(), counters.clone())],
            Some(cohorts) => {
                let split = self.cohort_counters();
                let rollout =
                    crate::rollout::adapters::prometheus::escape_label_value(&cohorts.rollout);
                ["in", "out"]
                    .iter()
                    .enumerate()
                    .map(|(k, cohort)| {
                        (
                            format!("rollout=\"{rollout}\",cohort=\"{cohort}\""),
                            split.iter().map(|c| c[k].clone()).collect(),
                        )
                    })
                    .collect()
            }
        };
        let braces = |labels: &str| {
            if labels.is_empty() {
                String::new()
            } else {
                format!("{{{labels}}}")
            }
        };
        let with_le = |labels: &str, le: &str| {
            if labels.is_empty() {
                format!("{{le=\"{le}\"}}")
            } else {
                format!("{{{labels},le=\"{le}\"}}")
            }
        };
        let mut out = String::new();
        let _ = writeln!(out, "# TYPE genesis_requests counter");
        for (labels, counters) in &series {
            for (i, c) in counters.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "genesis_requests_total{} {} {}",
                    braces(labels),
                    c.requests,
                    ts(i)
                );
            }
        }
        let _ = writeln!(out, "# TYPE genesis_errors counter");
        for (labels, counters) in &series {
            for (i, c) in counters.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "genesis_errors_total{} {} {}",
                    braces(labels),
                    c.errors,
                    ts(i)
                );
            }
        }
        let _ = writeln!(out, "# TYPE genesis_request_duration_seconds histogram");
        for (labels, counters) in &series {
            for (i, c) in counters.iter().enumerate() {
                for (b, le) in LATENCY_BUCKETS.iter().enumerate() {
                    let _ = writeln!(
                        out,
                        "genesis_request_duration_seconds_bucket{} {} {}",
                        with_le(labels, &le.to_string()),
                        c.buckets[b],
                        ts(i)
                    );
                }
                let total = c.buckets[LATENCY_BUCKETS.len()];
                let _ = writeln!(
                    out,
                    "genesis_request_duration_seconds_bucket{} {total} {}",
                    with_le(labels, "+Inf"),
                    ts(i)
                );
                let _ = writeln!(
                    out,
                    "genesis_request_duration_seconds_count{} {total} {}",
                    braces(labels),
                    ts(i)
                );
                let _ = writeln!(
                    out,
                    "genesis_request_duration_seconds_sum{} {} {}",
                    braces(labels),
                    c.sum,
                    ts(i)
                );
            }
        }
        if let Some(cohorts) = &self.cohorts {
            let rollout =
                crate::rollout::adapters::prometheus::escape_label_value(&cohorts.rollout);
            let _ = writeln!(out, "# TYPE genesis_flags_rollout_percentage gauge");
            for k in 0..cohorts.instances as usize {
                for i in 0..counters.len() {
                    let p = self.instance_percentages(i as u64);
                    let _ = writeln!(
                        out,
                        "genesis_flags_rollout_percentage{{rollout=\"{rollout}\",instance=\"instance-{k}\"}} {} {}",
                        p.get(k).copied().unwrap_or(0.0),
                        ts(i)
                    );
                }
            }
        }
        let _ = writeln!(out, "# TYPE up gauge");
        for job in DEFAULT_HEALTH_JOBS {
            for i in 0..counters.len() {
                let c = self.conditions_at(self.step * i as u32);
                let up = u8::from(!c.jobs_down.iter().any(|j| j == job));
                let _ = writeln!(out, "up{{job=\"{job}\"}} {up} {}", ts(i));
            }
        }
        let mut alerts: Vec<&String> = self
            .events
            .iter()
            .filter_map(|e| e.critical_alerts.as_ref())
            .flatten()
            .chain(&self.baseline.critical_alerts)
            .collect();
        alerts.sort();
        alerts.dedup();
        if !alerts.is_empty() {
            let _ = writeln!(out, "# TYPE ALERTS gauge");
            for alert in alerts {
                for i in 0..counters.len() {
                    if self
                        .conditions_at(self.step * i as u32)
                        .critical_alerts
                        .contains(alert)
                    {
                        let _ = writeln!(
                            out,
                            "ALERTS{{alertname=\"{}\",alertstate=\"firing\",severity=\"critical\"}} 1 {}",
                            crate::rollout::adapters::prometheus::escape_label_value(alert),
                            ts(i)
                        );
                    }
                }
            }
        }
        out.push_str("# EOF\n");
        out
    }

    /// A gate that observes this scenario directly, over `window` (the `5m`
    /// of the default queries), as Prometheus would over the rendered samples.
    #[must_use]
    pub fn gate(&self, window: Duration) -> ScenarioGate {
        ScenarioGate {
            counters: self.counters(),
            cohort_counters: if self.cohorts.is_some() {
                self.cohort_counters()
            } else {
                Vec::new()
            },
            scenario: self.clone(),
            window,
        }
    }
}

fn check_cohort_values(
    at: &str,
    error_rate: Option<f64>,
    p95: Option<f64>,
) -> Result<(), ScenarioError> {
    check_values(at, None, error_rate, p95).map_err(|e| match e {
        ScenarioError::Invalid { field, message } => ScenarioError::Invalid {
            field: field
                .replace(".error_rate", ".in_error_rate")
                .replace(".p95_ms", ".in_p95_ms"),
            message,
        },
        other => other,
    })
}

fn check_values(
    at: &str,
    rps: Option<f64>,
    error_rate: Option<f64>,
    p95: Option<f64>,
) -> Result<(), ScenarioError> {
    let bad = |field: &str, message: String| {
        Err(ScenarioError::Invalid {
            field: format!("{at}.{field}"),
            message,
        })
    };
    if let Some(v) = rps {
        if !(v.is_finite() && (0.0..=1e7).contains(&v)) {
            return bad(
                "requests_per_second",
                format!("{v} is not in [0, 10000000]"),
            );
        }
    }
    if let Some(v) = error_rate {
        if !(v.is_finite() && (0.0..=1.0).contains(&v)) {
            return bad("error_rate", format!("{v} is not a fraction in [0, 1]"));
        }
    }
    if let Some(v) = p95 {
        if !(v.is_finite() && v > 0.0 && v <= 600_000.0) {
            return bad("p95_ms", format!("{v} is not in (0, 600000] ms"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::latency::latency_mix;
    use super::*;
    use crate::rollout::model::gate::{HealthGate, Reading};

    fn t0() -> Timestamp {
        "2025-10-23T09:00:00Z".parse().unwrap()
    }

    #[test]
    fn the_latency_mix_interpolates_to_the_p95() {
        for p95_ms in [
            48.0, 50.0, 75.0, 120.0, 199.0, 200.0, 260.0, 301.0, 399.0, 450.0, 499.0, 501.0, 900.0,
            2400.0,
        ] {
            let mix = latency_mix(p95_ms / 1000.0, 1_000_000);
            let mut buckets = vec![0u64; LATENCY_BUCKETS.len() + 1];
            for (value, count) in mix {
                for (b, le) in LATENCY_BUCKETS.iter().enumerate() {
                    if value <= *le {
                        buckets[b] += count;
                    }
                }
                buckets[LATENCY_BUCKETS.len()] += count;
            }
            let q = histogram_quantile(0.95, &buckets) * 1000.0;
            assert!(
                (q - p95_ms).abs() < 0.05,
                "p95 {p95_ms} ms interpolates to {q}"
            );
        }
        let floor = latency_mix(0.030, 1000);
        assert_eq!(floor[0].1, 0, "nothing below the first bucket");
    }

    #[test]
    fn events_override_only_what_they_name() {
        let s = Scenario::from_json(
            r#"{ "start": "2025-10-23T09:00:00Z", "duration": "2h", "step": "1m",
                 "baseline": { "requests_per_second": 200, "error_rate": 0.0005, "p95_ms": 120 },
                 "events": [ { "from": "30m", "to": "36m", "error_rate": 0.012 },
                             { "from": "50m", "to": "1h", "jobs_down": ["genesis"] } ] }"#,
        )
        .unwrap();
        assert_eq!(
            s.conditions_at(Duration::from_secs(30 * 60)).error_rate,
            0.012
        );
        assert_eq!(
            s.conditions_at(Duration::from_secs(36 * 60)).error_rate,
            0.0005
        );
        assert_eq!(
            s.conditions_at(Duration::from_secs(55 * 60)).jobs_down,
            ["genesis"]
        );
        assert_eq!(s.conditions_at(Duration::from_secs(55 * 60)).p95_ms, 120.0);
    }

    #[test]
    fn direct_observation_follows_the_window() {
        let mut s = Scenario::healthy(t0());
        s.duration = Duration::from_secs(3 * 3600);
        s.events.push(Event {
            error_rate: Some(0.012),
            ..Event::between(Duration::from_secs(3600), Duration::from_secs(3600 + 360))
        });
        let mut gate = s.gate(Duration::from_secs(300));
        let at = |m: u64| t0() + Duration::from_secs(m * 60);
        let healthy = gate.observe(at(30));
        assert!((healthy.error_rate.value().unwrap() - 0.0005).abs() < 1e-4);
        assert!((healthy.p95_ms.value().unwrap() - 120.0).abs() < 0.5);
        assert_eq!(healthy.requests.value(), Some(&60_000.0));
        // One minute into the spike, the 5-minute window holds one bad minute.
        let one = gate.observe(at(61)).error_rate.value().copied().unwrap();
        assert!((one - (0.012 + 4.0 * 0.0005) / 5.0).abs() < 1e-4, "{one}");
        let full = gate.observe(at(65)).error_rate.value().copied().unwrap();
        assert!((full - 0.012).abs() < 1e-4, "{full}");
        // Past the data: no data.
        assert_eq!(gate.observe(at(4 * 60)).error_rate, Reading::Missing);
    }

    #[test]
    fn bad_scenarios_name_the_field() {
        let err = Scenario::from_json(
            r#"{ "start": "2025-10-23T09:00:00Z", "duration": "1h",
                 "baseline": { "requests_per_second": 200, "error_rate": 1.5, "p95_ms": 120 } }"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("baseline.error_rate"), "{err}");
        let err = Scenario::from_json(
            r#"{ "start": "2025-10-23T09:00:00Z", "duration": "1h",
                 "baseline": { "requests_per_second": 200, "error_rate": 0.001, "p95_ms": 120 },
                 "events": [ { "from": "30m", "to": "10m", "p95_ms": 400 } ] }"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("events[0]"), "{err}");
    }

    #[test]
    fn openmetrics_ends_with_eof_and_uses_seconds() {
        let mut s = Scenario::healthy(t0());
        s.duration = Duration::from_secs(600);
        let text = s.openmetrics();
        assert!(text.ends_with("# EOF\n"));
        assert!(
            text.contains(&format!("genesis_requests_total 0 {}", t0().unix_seconds())),
            "{}",
            &text[..200]
        );
        assert!(text.contains("up{job=\"genesis\"} 1"));
    }
}
