//! Cohort metrics: judging the flagged users (the **in** cohort) against the
//! others (the **out** cohort) of the same rollout.
//!
//! Services label `genesis_requests_total`, `genesis_errors_total` and
//! `genesis_request_duration_seconds_bucket` with `rollout` and
//! `cohort="in"|"out"`, and export `genesis_flags_rollout_percentage{rollout}`
//! (the percentage each instance applies). A gate that finds those series
//! attaches a [`CohortObservation`] to its [`Observation`](crate::rollout::Observation);
//! the policy then:
//!
//! 1. holds the in cohort's windowed error rate and P95 to the tier's
//!    rollback thresholds and the go criteria (the global ones still apply);
//! 2. accumulates the stage's counts in a [`CohortLedger`] (from the moment
//!    the fleet reports the stage's percentage) and runs two one-sided,
//!    anytime-valid tests on them: in-cohort errors against out-cohort
//!    errors, and in-cohort requests slower than the out cohort's P95 bucket
//!    against the out cohort's share ([`excess_test`]);
//! 3. passes go only with enough in-cohort requests to detect a doubling of
//!    the out cohort's error rate ([`required_in_requests`]), or the cap;
//! 4. holds (NoData) while an instance still applies another percentage or
//!    the in cohort's share of requests is far from the percentage.
//!
//! The test is a mixture of likelihood ratios, an e-process: conditioned
//! on the total count of events (errors, or slow requests), each event falls
//! in the in cohort with probability `π`; under the null hypothesis (the in
//! cohort's rate is at most `1 + margin` times the out cohort's)
//! `π ≤ π0 = s(1+m) / (s(1+m) + 1 − s)`, with `s` the in cohort's share of
//! requests. The statistic `M = Σ_k w_k · (π_k/π0)^e_in · ((1−π_k)/(1−π0))^e_out`
//! over alternatives `π_k > π0` is a non-negative supermartingale under the
//! null, so by Ville's inequality it ever reaches `1/α` with probability at
//! most `α`, however often it is looked at. The run's `α` is spent evenly
//! over the plan's stages and the two tests.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::rollout::foundation::clock::Timestamp;
use crate::rollout::foundation::reading::Reading;
use crate::Percentage;

/// Relative rate ratios (in over out) the test's mixture bets on, beyond the
/// margin; each is used when it exceeds `1 + margin`.
pub const MIXTURE_RATIOS: [f64; 7] = [1.5, 2.0, 3.0, 5.0, 10.0, 20.0, 50.0];

/// How the cohorts are compared (the gate file's `cohort` section).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CohortRules {
    /// The chance a healthy rollout is rolled back by the in-vs-out tests,
    /// over the whole plan (default 0.01), spent evenly over the stages and
    /// the two tests.
    #[serde(default = "default_alpha")]
    pub alpha: f64,
    /// How much worse, relatively, the in cohort may be before the excess
    /// counts (default 0.25: an in-cohort rate up to 1.25 times the out
    /// cohort's is tolerated).
    #[serde(default = "default_margin")]
    pub margin: f64,
    /// The fewest in-cohort errors in a window that can breach the tier's
    /// error-rate threshold (default 3): over a few dozen requests one stray
    /// error is already over 0.5%.
    #[serde(default = "default_min_in_errors")]
    pub min_in_errors: f64,
    /// The most in-cohort requests go ever waits for (default 1,000,000),
    /// whatever a doubling needs.
    #[serde(default = "default_cap")]
    pub max_required_in_requests: f64,
    /// How long after the soak's end go waits for that sample at most;
    /// then the stage may advance without it, and says so. Default (unset):
    /// the stage's own soak, so a stage lasts at most twice its soak for
    /// want of traffic.
    #[serde(
        with = "optional_duration",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub max_sample_wait: Option<Duration>,
    /// The in cohort's share of requests may differ from the percentage by
    /// this fraction of it (default 0.2: 4% to 6% at 5%) before the sample
    /// ratio counts as mismatched.
    #[serde(default = "default_srm")]
    pub sample_ratio_tolerance: f64,
}

fn default_alpha() -> f64 {
    0.01
}
fn default_margin() -> f64 {
    0.25
}
fn default_min_in_errors() -> f64 {
    3.0
}
fn default_cap() -> f64 {
    1_000_000.0
}
/// `Option<Duration>` as `"12h"` text.
mod optional_duration {
    use crate::rollout::foundation::duration::{format_duration, parse_duration};
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub(in crate::rollout) fn serialize<S: Serializer>(
        d: &Option<Duration>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&format_duration(*d)),
            None => s.serialize_none(),
        }
    }

    pub(in crate::rollout) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        let text = String::deserialize(d)?;
        parse_duration(&text)
            .map(Some)
            .map_err(serde::de::Error::custom)
    }
}
fn default_srm() -> f64 {
    0.2
}

impl Default for CohortRules {
    fn default() -> Self {
        CohortRules {
            alpha: default_alpha(),
            margin: default_margin(),
            min_in_errors: default_min_in_errors(),
            max_required_in_requests: default_cap(),
            max_sample_wait: None,
            sample_ratio_tolerance: default_srm(),
        }
    }
}

impl CohortRules {
    /// What is wrong with these rules, if anything: `(field, message)`.
    #[must_use]
    pub fn problem(&self) -> Option<(&'static str, String)> {
        if !(self.alpha > 0.0 && self.alpha < 1.0) {
            return Some(("alpha", format!("{} is not in (0, 1)", self.alpha)));
        }
        if !(self.margin >= 0.0 && self.margin < 1.0) {
            return Some((
                "margin",
                format!(
                    "{} is not in [0, 1) (a doubling must stay detectable)",
                    self.margin
                ),
            ));
        }
        if !(self.min_in_errors >= 0.0 && self.min_in_errors <= 1e6) {
            return Some((
                "min_in_errors",
                format!("{} is not in [0, 1000000]", self.min_in_errors),
            ));
        }
        if !(self.max_required_in_requests >= 1.0 && self.max_required_in_requests <= 1e12) {
            return Some((
                "max_required_in_requests",
                format!("{} is not in [1, 1e12]", self.max_required_in_requests),
            ));
        }
        if self
            .max_sample_wait
            .is_some_and(|w| w > Duration::from_secs(366 * 24 * 3600))
        {
            return Some(("max_sample_wait", "is longer than a year".to_owned()));
        }
        if !(self.sample_ratio_tolerance > 0.0 && self.sample_ratio_tolerance < 1.0) {
            return Some((
                "sample_ratio_tolerance",
                format!("{} is not in (0, 1)", self.sample_ratio_tolerance),
            ));
        }
        None
    }

    /// The e-value one test of one stage must reach: `2 · stages / α`.
    #[must_use]
    pub fn evidence_threshold(&self, stages: usize) -> f64 {
        2.0 * stages.max(1) as f64 / self.alpha
    }
}

/// One cohort's figures over the gate's window.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CohortFigures {
    /// Requests in the window.
    pub requests: f64,
    /// Errors in the window.
    pub errors: f64,
    /// 95th percentile latency in ms, if there were requests.
    pub p95_ms: Option<f64>,
    /// Requests slower than the out cohort's P95 bucket bound.
    pub slow: f64,
}

impl CohortFigures {
    /// Errors / requests, if there were requests.
    #[must_use]
    pub fn error_rate(&self) -> Option<f64> {
        (self.requests > 0.0).then(|| self.errors / self.requests)
    }
}

/// What the instances report on `genesis_flags_rollout_percentage`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FleetPercentage {
    /// The lowest percentage an instance applies.
    pub min_percent: f64,
    /// The highest.
    pub max_percent: f64,
    /// How many instances report.
    pub instances: usize,
    /// Each instance and its percentage, `instance=percent`, for messages.
    pub reports: Vec<String>,
}

impl FleetPercentage {
    /// The fleet from each instance's name and percentage; `None` without
    /// any instance.
    #[must_use]
    pub fn from_reports(reports: &[(String, f64)]) -> Option<FleetPercentage> {
        if reports.is_empty() {
            return None;
        }
        let percents = reports.iter().map(|(_, percent)| *percent);
        Some(FleetPercentage {
            min_percent: percents.clone().fold(f64::INFINITY, f64::min),
            max_percent: percents.fold(f64::NEG_INFINITY, f64::max),
            instances: reports.len(),
            reports: reports
                .iter()
                .map(|(instance, percent)| format!("{instance}={percent}%"))
                .collect(),
        })
    }

    /// The percentage of each instance, read back from [`reports`](Self::reports)
    /// (`instance=percent%`); a report that does not parse is left out.
    #[must_use]
    pub fn percents(&self) -> Vec<f64> {
        self.reports
            .iter()
            .filter_map(|r| r.rsplit_once('='))
            .filter_map(|(_, p)| p.trim_end_matches('%').parse().ok())
            .collect()
    }

    /// Whether every instance applies `target` (within 1 ppm).
    #[must_use]
    pub fn converged_on(&self, target: Percentage) -> bool {
        let t = target.as_percent();
        self.instances > 0
            && (self.min_percent - t).abs() < 1e-4
            && (self.max_percent - t).abs() < 1e-4
    }
}

/// The cohort series of one rollout at one instant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CohortObservation {
    /// The rollout the series belong to, as selected (`rollout="..."`).
    pub selector: String,
    /// The window the counts cover, in seconds.
    pub window_seconds: f64,
    /// The flagged users.
    pub in_cohort: CohortFigures,
    /// The others.
    pub out_cohort: CohortFigures,
    /// The out cohort's P95 bucket bound, in ms, that `slow` counts above.
    pub slow_above_ms: Option<f64>,
    /// The percentage each instance applies.
    pub fleet: Reading<FleetPercentage>,
    /// How to compare the cohorts.
    pub rules: CohortRules,
}

/// The stage's cumulative cohort counts, kept in the rollout's streaks.
///
/// Counts are added each tick as the window's counts times
/// `min(1, time since the last tick / window)`, so overlapping windows add
/// up to each request once. Values are always finite.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct CohortLedger {
    /// The percentage the counts belong to (a move starts a new ledger).
    pub percentage: Percentage,
    /// When every instance first reported the percentage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub converged_at: Option<Timestamp>,
    /// Whether a tick saw the fleet not yet converged.
    #[serde(default)]
    pub waited: bool,
    /// The last tick that added counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_at: Option<Timestamp>,
    /// In-cohort requests.
    pub in_requests: f64,
    /// In-cohort errors.
    pub in_errors: f64,
    /// In-cohort requests slower than the out cohort's P95 bucket.
    pub in_slow: f64,
    /// Out-cohort requests.
    pub out_requests: f64,
    /// Out-cohort errors.
    pub out_errors: f64,
    /// Out-cohort requests slower than their P95 bucket.
    pub out_slow: f64,
}

// Every field is finite (`add` refuses anything else), so equality is
// reflexive.
impl Eq for CohortLedger {}

impl CohortLedger {
    /// Whether nothing was recorded (no cohort series seen this stage).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        *self == CohortLedger::default()
    }

    /// The ledger after a tick at `now` with the rollout at `percentage`.
    #[must_use]
    pub fn after(self, obs: &CohortObservation, percentage: Percentage, now: Timestamp) -> Self {
        let mut next = if self.percentage == percentage {
            self
        } else {
            CohortLedger {
                percentage,
                ..CohortLedger::default()
            }
        };
        let converged = match &obs.fleet {
            Reading::Value(f) => f.converged_on(percentage),
            _ => false,
        };
        if !converged {
            if next.converged_at.is_none() {
                next.waited = true;
            }
            next.last_at = None;
            return next;
        }
        if next.converged_at.is_none() {
            next.converged_at = Some(now);
        }
        if let Some(prev) = next.last_at {
            let window = obs.window_seconds.max(1e-3);
            let weight = (now.since(prev).as_secs_f64() / window).min(1.0);
            let add = |acc: &mut f64, v: f64| {
                let v = v * weight;
                if v.is_finite() && v >= 0.0 {
                    *acc += v;
                }
            };
            add(&mut next.in_requests, obs.in_cohort.requests);
            add(&mut next.in_errors, obs.in_cohort.errors);
            add(&mut next.in_slow, obs.in_cohort.slow);
            add(&mut next.out_requests, obs.out_cohort.requests);
            add(&mut next.out_errors, obs.out_cohort.errors);
            add(&mut next.out_slow, obs.out_cohort.slow);
        }
        next.last_at = Some(now);
        next
    }

    /// When the stage's soak starts: the move itself (`since`) when the
    /// fleet had converged by the first tick after it, else when it did.
    #[must_use]
    pub fn soak_from(&self, since: Timestamp) -> Option<Timestamp> {
        match (self.converged_at, self.waited) {
            (Some(at), true) => Some(at.max(since)),
            (Some(_), false) => Some(since),
            (None, _) => None,
        }
    }
}

/// The figures of one in-vs-out test.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ExcessTest {
    /// In-cohort events (errors or slow requests).
    pub in_events: f64,
    /// In-cohort requests.
    pub in_requests: f64,
    /// Out-cohort events.
    pub out_events: f64,
    /// Out-cohort requests.
    pub out_requests: f64,
    /// The in cohort's rate over the out cohort's (NaN when undefined).
    pub ratio: f64,
    /// The e-value: evidence that the ratio exceeds `1 + margin`.
    pub e_value: f64,
    /// The e-value that counts as significant.
    pub threshold: f64,
}

impl ExcessTest {
    /// Whether the excess is significant.
    #[must_use]
    pub fn significant(&self) -> bool {
        self.e_value >= self.threshold
    }
}

impl fmt::Display for ExcessTest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rate = |e: f64, n: f64| if n > 0.0 { 100.0 * e / n } else { f64::NAN };
        let ratio = if self.ratio.is_finite() {
            format!("{:.2}", self.ratio)
        } else {
            "-".to_owned()
        };
        write!(
            f,
            "in {}/{} ({:.3}%) vs out {}/{} ({:.3}%), ratio {ratio}, e-value {} (significant at {:.0})",
            count(self.in_events),
            count(self.in_requests),
            rate(self.in_events, self.in_requests),
            count(self.out_events),
            count(self.out_requests),
            rate(self.out_events, self.out_requests),
            readable(self.e_value),
            self.threshold
        )
    }
}

/// A count for people: whole when it is (counts from a window scaled to a
/// tick are fractional), else one decimal, so `0.4/144` never reads `0/144`.
fn count(v: f64) -> String {
    if (v - v.round()).abs() < 0.05 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// An e-value for people: fixed-point between 0.001 and 10,000, else
/// scientific.
fn readable(v: f64) -> String {
    if v == 0.0 || (1e-3..1e4).contains(&v) {
        format!("{v:.3}")
    } else {
        format!("{v:.2e}")
    }
}

/// `ln(exp(a) + exp(b))` without overflow.
fn log_add(a: f64, b: f64) -> f64 {
    if a == f64::NEG_INFINITY {
        return b;
    }
    let (hi, lo) = if a > b { (a, b) } else { (b, a) };
    hi + (lo - hi).exp().ln_1p()
}

/// `π` for a rate ratio `rho` at in-share `s`.
fn share_of_events(rho: f64, s: f64) -> f64 {
    rho * s / (rho * s + 1.0 - s)
}

/// The natural log of the mixture e-value for `in_events` of `in_requests`
/// against `out_events` of `out_requests`, with relative `margin`.
#[must_use]
pub fn log_e_value(
    in_events: f64,
    in_requests: f64,
    out_events: f64,
    out_requests: f64,
    margin: f64,
) -> f64 {
    if in_requests <= 0.0 || out_requests <= 0.0 {
        return 0.0;
    }
    let s = in_requests / (in_requests + out_requests);
    let pi0 = share_of_events(1.0 + margin, s);
    let ratios: Vec<f64> = MIXTURE_RATIOS
        .iter()
        .copied()
        .filter(|r| *r > 1.0 + margin)
        .collect();
    let log_w = -(ratios.len().max(1) as f64).ln();
    let mut total = f64::NEG_INFINITY;
    for rho in ratios {
        let pi = share_of_events(rho, s);
        let llr = in_events * (pi / pi0).ln() + out_events * ((1.0 - pi) / (1.0 - pi0)).ln();
        total = log_add(total, log_w + llr);
    }
    if total.is_finite() {
        total
    } else {
        0.0
    }
}

/// The in-vs-out test on cumulative counts.
#[must_use]
pub fn excess_test(
    in_events: f64,
    in_requests: f64,
    out_events: f64,
    out_requests: f64,
    margin: f64,
    threshold: f64,
) -> ExcessTest {
    let ratio = if in_requests > 0.0 && out_requests > 0.0 && out_events > 0.0 {
        (in_events / in_requests) / (out_events / out_requests)
    } else {
        f64::NAN
    };
    ExcessTest {
        in_events,
        in_requests,
        out_events,
        out_requests,
        ratio,
        e_value: log_e_value(in_events, in_requests, out_events, out_requests, margin)
            .min(700.0)
            .exp(),
        threshold,
    }
}

/// In-cohort requests needed before go: enough that the test's expected
/// log e-value under a doubling of the out cohort's error rate `r` reaches
/// the threshold,
///
/// ```text
/// n = (ln(threshold) + ln K) / (r · (2·ln(π2/π0) + ((1−s)/s)·ln((1−π2)/(1−π0))))
/// ```
///
/// with `s` the percentage as a share, `π0` and `π2` the in cohort's share
/// of errors at rate ratios `1 + margin` and 2, and `K` the mixture's size;
/// capped at `rules.max_required_in_requests`. The out cohort's rate is
/// taken as at least `1 / (out requests + 1)` so that an out cohort without
/// errors still asks for a finite sample. `None` at 0% or 100% (nothing to
/// compare with).
#[must_use]
pub fn required_in_requests(
    out_errors: f64,
    out_requests: f64,
    share: f64,
    threshold: f64,
    rules: &CohortRules,
) -> Option<f64> {
    if !(share > 0.0 && share < 1.0) {
        return None;
    }
    if out_requests < 1.0 {
        // No baseline yet: ask for the most.
        return Some(rules.max_required_in_requests);
    }
    let r = (out_errors / out_requests.max(1.0)).max(1.0 / (out_requests + 1.0));
    let pi0 = share_of_events(1.0 + rules.margin, share);
    let pi2 = share_of_events(2.0, share);
    let k = MIXTURE_RATIOS
        .iter()
        .filter(|x| **x > 1.0 + rules.margin)
        .count()
        .max(1) as f64;
    let per_request =
        r * (2.0 * (pi2 / pi0).ln() + (1.0 - share) / share * ((1.0 - pi2) / (1.0 - pi0)).ln());
    let need = if per_request > 0.0 {
        (threshold.ln() + k.ln()) / per_request
    } else {
        f64::INFINITY
    };
    Some(need.min(rules.max_required_in_requests))
}

/// Prometheus's `histogram_quantile` over cumulative `(upper bound, count)`
/// buckets sorted by bound, the last one `+Inf`: linear interpolation inside
/// the bucket holding the rank, the last finite bound when it falls in
/// `+Inf`, NaN without observations.
#[must_use]
pub fn histogram_quantile(q: f64, buckets: &[(f64, f64)]) -> f64 {
    let Some(&(_, total)) = buckets.last() else {
        return f64::NAN;
    };
    if total <= 0.0 || buckets.len() < 2 {
        return f64::NAN;
    }
    let rank = q * total;
    let Some(b) = buckets.iter().position(|(_, c)| *c >= rank) else {
        return f64::NAN;
    };
    if b == buckets.len() - 1 {
        return buckets[b - 1].0;
    }
    let (lo, prev) = if b == 0 {
        (0.0, 0.0)
    } else {
        (buckets[b - 1].0, buckets[b - 1].1)
    };
    let (hi, count) = buckets[b];
    let in_bucket = count - prev;
    if in_bucket <= 0.0 {
        return hi;
    }
    lo + (hi - lo) * (rank - prev) / in_bucket
}

/// Requests above the out cohort's P95 bucket bound, in each cohort.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SlowCounts {
    /// The bound, in seconds: the smallest finite bucket bound holding 95%
    /// of the out cohort's requests.
    pub bound_seconds: f64,
    /// In-cohort requests above it.
    pub in_slow: f64,
    /// Out-cohort requests above it.
    pub out_slow: f64,
}

/// The out cohort's P95 bucket bound and each cohort's requests above it,
/// from cumulative `(upper bound, count)` buckets sorted by bound. `None`
/// when the out cohort has no requests or its P95 falls in `+Inf`.
#[must_use]
pub fn slow_counts(in_buckets: &[(f64, f64)], out_buckets: &[(f64, f64)]) -> Option<SlowCounts> {
    let out_total = out_buckets.last()?.1;
    if out_total <= 0.0 {
        return None;
    }
    let (bound, out_at) = out_buckets
        .iter()
        .copied()
        .find(|(le, c)| le.is_finite() && *c >= 0.95 * out_total)?;
    let in_total = in_buckets.last().map_or(0.0, |b| b.1);
    let in_at = in_buckets
        .iter()
        .find(|(le, _)| (*le - bound).abs() < 1e-12)
        .map_or(in_total, |b| b.1);
    Some(SlowCounts {
        bound_seconds: bound,
        in_slow: (in_total - in_at).max(0.0),
        out_slow: (out_total - out_at).max(0.0),
    })
}

/// Reading helper for observations built by hand.
impl CohortObservation {
    /// Cohort figures for a window, with every instance on `percentage`:
    /// `in_figures` and `out_figures` as given, default rules.
    #[must_use]
    pub fn converged(
        rollout: &str,
        window: Duration,
        percentage: Percentage,
        in_figures: CohortFigures,
        out_figures: CohortFigures,
    ) -> Self {
        CohortObservation {
            selector: format!("rollout=\"{rollout}\""),
            window_seconds: window.as_secs_f64(),
            in_cohort: in_figures,
            out_cohort: out_figures,
            slow_above_ms: None,
            fleet: Reading::Value(FleetPercentage {
                min_percent: percentage.as_percent(),
                max_percent: percentage.as_percent(),
                instances: 1,
                reports: vec![format!("all={}", percentage.as_percent())],
            }),
            rules: CohortRules::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excess_figures_read_as_counts_and_an_undefined_ratio_as_a_dash() {
        let test = ExcessTest {
            in_events: 0.43,
            in_requests: 144.0,
            out_events: 0.0,
            out_requests: 4357.0,
            ratio: f64::NAN,
            e_value: 1.7,
            threshold: 1200.0,
        };
        let text = test.to_string();
        assert!(
            text.starts_with("in 0.4/144 (0.299%) vs out 0/4357"),
            "{text}"
        );
        assert!(text.contains("ratio -,"), "{text}");
    }

    fn fig(requests: f64, errors: f64) -> CohortFigures {
        CohortFigures {
            requests,
            errors,
            p95_ms: Some(120.0),
            slow: requests * 0.05,
        }
    }

    #[test]
    fn the_e_value_grows_with_an_excess_and_not_without() {
        // Same rate in both cohorts: no evidence, however much data.
        let same = excess_test(50.0, 100_000.0, 950.0, 1_900_000.0, 0.25, 1200.0);
        assert!(same.e_value < 1.0 && !same.significant(), "{same}");
        // Tenfold: overwhelming.
        let ten = excess_test(500.0, 100_000.0, 950.0, 1_900_000.0, 0.25, 1200.0);
        assert!(ten.significant(), "{ten}");
        assert!((ten.ratio - 10.0).abs() < 1e-9);
        // Within the margin (1.2x): no evidence.
        let within = excess_test(60.0, 100_000.0, 950.0, 1_900_000.0, 0.25, 1200.0);
        assert!(!within.significant(), "{within}");
        // Nothing to compare with.
        assert_eq!(log_e_value(5.0, 0.0, 5.0, 10.0, 0.25), 0.0);
        assert_eq!(log_e_value(5.0, 10.0, 5.0, 0.0, 0.25), 0.0);
    }

    #[test]
    fn the_required_sample_detects_a_doubling() {
        let rules = CohortRules::default();
        let threshold = rules.evidence_threshold(6);
        let n = required_in_requests(950.0, 1_900_000.0, 0.05, threshold, &rules).unwrap();
        // Expected counts under a doubling at n in-cohort requests reach the
        // threshold.
        let r = 950.0 / 1_900_000.0;
        let out_n = n * 19.0;
        let at_n = excess_test(2.0 * r * n, n, r * out_n, out_n, rules.margin, threshold);
        assert!(
            (at_n.e_value / threshold) > 0.9 && (at_n.e_value / threshold) < 1.5,
            "{at_n} for n = {n}"
        );
        assert_eq!(
            required_in_requests(0.0, 0.0, 0.05, threshold, &rules),
            Some(rules.max_required_in_requests)
        );
        assert_eq!(
            required_in_requests(1.0, 10.0, 1.0, threshold, &rules),
            None
        );
    }

    #[test]
    fn the_ledger_counts_each_request_once_and_restarts_on_a_move() {
        let five = Percentage::from_percent(5.0).unwrap();
        let obs = CohortObservation::converged(
            "r",
            Duration::from_secs(300),
            five,
            fig(1500.0, 1.0),
            fig(28_500.0, 15.0),
        );
        let t = |m: u64| Timestamp::from_unix_millis(m * 60_000);
        let mut ledger = CohortLedger::default();
        for m in 0..=60 {
            ledger = ledger.after(&obs, five, t(m));
        }
        // 60 one-minute gaps, each a fifth of the 5-minute window.
        assert!(
            (ledger.in_requests - 60.0 * 300.0).abs() < 1e-6,
            "{ledger:?}"
        );
        assert_eq!(ledger.soak_from(t(0)), Some(t(0)));
        let ten = Percentage::from_percent(10.0).unwrap();
        let moved = ledger.after(&obs, ten, t(61));
        assert_eq!(moved.in_requests, 0.0);
        assert!(moved.waited && moved.converged_at.is_none());
        assert_eq!(moved.soak_from(t(61)), None);
    }

    #[test]
    fn slow_counts_use_the_out_cohorts_p95_bucket() {
        let out = [
            (0.1, 900.0),
            (0.2, 960.0),
            (0.5, 990.0),
            (f64::INFINITY, 1000.0),
        ];
        let inn = [
            (0.1, 10.0),
            (0.2, 30.0),
            (0.5, 80.0),
            (f64::INFINITY, 100.0),
        ];
        assert_eq!(
            slow_counts(&inn, &out),
            Some(SlowCounts {
                bound_seconds: 0.2,
                in_slow: 70.0,
                out_slow: 40.0
            })
        );
        assert!((histogram_quantile(0.5, &inn) - 0.32).abs() < 1e-9);
        assert!(histogram_quantile(0.95, &[]).is_nan());
    }

    #[test]
    fn rules_are_checked() {
        assert!(CohortRules::default().problem().is_none());
        let bad = CohortRules {
            margin: 1.5,
            ..CohortRules::default()
        };
        assert_eq!(bad.problem().map(|p| p.0), Some("margin"));
    }

    proptest::proptest! {
        #[test]
        fn the_e_value_is_finite_and_grows_with_in_cohort_events(
            in_events in 0.0f64..1e4,
            extra in 0.0f64..1e3,
            in_requests in 1.0f64..1e7,
            out_events in 0.0f64..1e5,
            out_requests in 1.0f64..1e8,
            margin in 0.0f64..0.99,
        ) {
            let a = log_e_value(in_events, in_requests, out_events, out_requests, margin);
            let b = log_e_value(in_events + extra, in_requests, out_events, out_requests, margin);
            proptest::prop_assert!(a.is_finite() && b.is_finite());
            proptest::prop_assert!(b >= a - 1e-9, "{a} then {b}");
            let rules = CohortRules { margin, ..CohortRules::default() };
            let need = required_in_requests(out_events, out_requests, 0.05, 1200.0, &rules);
            proptest::prop_assert!(need.is_some_and(|n| n > 0.0 && n <= rules.max_required_in_requests));
        }

        #[test]
        fn the_ledger_only_grows_within_a_stage(
            windows in proptest::collection::vec((0.0f64..1e5, 0.0f64..1e3, 0u64..600), 1..40),
        ) {
            let five = Percentage::from_percent(5.0).unwrap_or_default();
            let mut ledger = CohortLedger::default();
            let mut now = Timestamp::from_unix_millis(0);
            for (requests, errors, gap) in windows {
                let obs = CohortObservation::converged(
                    "r",
                    Duration::from_secs(300),
                    five,
                    fig(requests, errors.min(requests)),
                    fig(requests * 19.0, errors.min(requests)),
                );
                now = now + Duration::from_secs(gap);
                let next = ledger.after(&obs, five, now);
                proptest::prop_assert!(next.in_requests >= ledger.in_requests);
                proptest::prop_assert!(next.in_errors >= ledger.in_errors);
                proptest::prop_assert!(next.in_errors <= next.in_requests + 1e-6);
                // Converged on the first tick, and stays so.
                proptest::prop_assert_eq!(next.converged_at, Some(ledger.converged_at.unwrap_or(now)));
                ledger = next;
            }
        }
    }
}
