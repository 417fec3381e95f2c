//! Judging one [`Observation`] against a tier and the go criteria.
//!
//! Each check yields a [`Verdict`]: **Pass**, **Breach** (counts toward
//! rollback), **NoData** (missing, NaN, or too few requests) or **Error** (the
//! source failed). Only Breach counts toward rollback; NoData and Error never
//! advance and never roll back.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::cohort::{excess_test, required_in_requests, CohortLedger, CohortObservation};
use super::gate::{Observation, Reading};
use super::plan::{GoCriteria, Tier};
use crate::rollout::foundation::clock::Timestamp;
use crate::Percentage;

/// The outcome of one check on one tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Within the threshold.
    Pass,
    /// Over the rollback threshold (or a failed health check): counts toward rollback.
    Breach,
    /// Nothing to judge: missing, NaN, or fewer requests than the floor.
    NoData,
    /// The source failed.
    Error,
}

impl Verdict {
    /// NoData or Error: the tick says nothing about this check.
    #[must_use]
    pub fn is_blind(self) -> bool {
        matches!(self, Verdict::NoData | Verdict::Error)
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Pass => "pass",
            Verdict::Breach => "breach",
            Verdict::NoData => "no_data",
            Verdict::Error => "error",
        })
    }
}

/// Which signal a check reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckKind {
    /// Errors / requests.
    ErrorRate,
    /// 95th percentile latency.
    P95Latency,
    /// Named health checks.
    Health,
    /// Firing critical alerts.
    CriticalAlerts,
    /// The in cohort's error rate over the window (the flagged users).
    InCohortErrorRate,
    /// The in cohort's 95th percentile latency over the window.
    InCohortP95Latency,
    /// In-cohort errors against out-cohort errors, over the stage.
    CohortErrorExcess,
    /// In-cohort requests slower than the out cohort's P95 bucket, against
    /// the out cohort's share, over the stage.
    CohortLatencyExcess,
    /// Every instance on the stage's percentage, and the in cohort's share
    /// of requests near it.
    Fleet,
    /// Enough in-cohort requests to detect a doubling of the error rate.
    CohortSample,
}

impl CheckKind {
    /// Whether the check judges the flagged users (the in cohort, or in
    /// against out), so it has nothing to judge while nobody is flagged.
    #[must_use]
    pub fn needs_flagged_users(self) -> bool {
        matches!(
            self,
            CheckKind::InCohortErrorRate
                | CheckKind::InCohortP95Latency
                | CheckKind::CohortErrorExcess
                | CheckKind::CohortLatencyExcess
                | CheckKind::CohortSample
        )
    }
}

impl fmt::Display for CheckKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CheckKind::ErrorRate => "error rate",
            CheckKind::P95Latency => "P95 latency",
            CheckKind::Health => "health checks",
            CheckKind::CriticalAlerts => "critical alerts",
            CheckKind::InCohortErrorRate => "in-cohort error rate",
            CheckKind::InCohortP95Latency => "in-cohort P95 latency",
            CheckKind::CohortErrorExcess => "in-vs-out error excess",
            CheckKind::CohortLatencyExcess => "in-vs-out latency excess",
            CheckKind::Fleet => "fleet percentage",
            CheckKind::CohortSample => "in-cohort sample",
        })
    }
}

/// One check's result: its verdict against the tier's rollback threshold,
/// the value seen, and whether it meets the go criterion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckResult {
    /// The check.
    pub check: CheckKind,
    /// Against the rollback threshold.
    pub verdict: Verdict,
    /// The value (error rate in percent, P95 in ms, failing checks, firing alerts).
    pub value: Option<f64>,
    /// The rollback threshold it was held to (none for alerts).
    pub threshold: Option<f64>,
    /// Whether the go criterion holds (`false` when there is no value).
    pub go: bool,
    /// Details: which checks failed, which alerts fire, why there is no data.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

/// All checks of one tick.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdicts {
    /// Error rate, in percent.
    pub error_rate: CheckResult,
    /// P95 latency, in ms.
    pub p95: CheckResult,
    /// Health checks (value: how many failed).
    pub health: CheckResult,
    /// Critical alerts (value: how many fire).
    pub alerts: CheckResult,
    /// Requests in the window, if known.
    pub requests: Option<f64>,
    /// The cohort checks, when the gate found cohort series.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cohort: Option<CohortVerdicts>,
    /// Which series were judged: the rollout's cohorts, or the global
    /// series only (and why).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub scope: String,
}

/// The cohort checks of one tick.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CohortVerdicts {
    /// The in cohort's error rate (percent) against the tier and go.
    pub in_error_rate: CheckResult,
    /// The in cohort's P95 (ms) against the tier and go.
    pub in_p95: CheckResult,
    /// The in-vs-out error test (value: the e-value).
    pub error_excess: CheckResult,
    /// The in-vs-out slow-request test (value: the e-value).
    pub latency_excess: CheckResult,
    /// Fleet convergence and sample ratio (value: the in share, percent).
    pub fleet: CheckResult,
    /// The in-cohort sample for go (value: in-cohort requests so far).
    pub sample: CheckResult,
    /// The out cohort's error rate over the window, percent, if known.
    pub out_error_rate: Option<f64>,
    /// The out cohort's P95 over the window, ms, if known.
    pub out_p95: Option<f64>,
}

impl CohortVerdicts {
    /// The six checks, in a fixed order.
    #[must_use]
    pub fn all(&self) -> [&CheckResult; 6] {
        [
            &self.in_error_rate,
            &self.in_p95,
            &self.error_excess,
            &self.latency_excess,
            &self.fleet,
            &self.sample,
        ]
    }
}

impl Verdicts {
    /// Judges `obs` against the rollback thresholds of `tier` and `go`.
    #[must_use]
    pub fn judge(obs: &Observation, tier: &Tier, go: &GoCriteria, min_requests: f64) -> Verdicts {
        let requests = obs.requests.value().copied().filter(|r| r.is_finite());
        // Too little traffic makes both ratios meaningless.
        let starved = match &obs.requests {
            Reading::Value(r) if r.is_finite() => (*r < min_requests)
                .then(|| format!("{r} requests, under the floor of {min_requests}")),
            Reading::Value(_) => Some("request count is NaN".to_owned()),
            Reading::Missing => None,
            Reading::Failed(_) => None,
        };
        let error_rate = ratio_check(
            CheckKind::ErrorRate,
            &obs.error_rate,
            starved.as_deref(),
            100.0,
            tier.error_rate_percent,
            go.error_rate_percent_below,
        );
        let p95 = ratio_check(
            CheckKind::P95Latency,
            &obs.p95_ms,
            starved.as_deref(),
            1.0,
            tier.p95_ms,
            go.p95_ms_below,
        );
        let health = match &obs.health {
            Reading::Value(checks) if checks.is_empty() => {
                blind(CheckKind::Health, Verdict::NoData, "no health checks")
            }
            Reading::Value(checks) => {
                let failed: Vec<&str> = checks
                    .iter()
                    .filter(|c| !c.passed)
                    .map(|c| c.name.as_str())
                    .collect();
                CheckResult {
                    check: CheckKind::Health,
                    verdict: if failed.is_empty() {
                        Verdict::Pass
                    } else {
                        Verdict::Breach
                    },
                    value: Some(failed.len() as f64),
                    threshold: Some(f64::from(tier.consecutive_health_failures)),
                    go: failed.is_empty(),
                    detail: if failed.is_empty() {
                        format!("{}/{} passing", checks.len(), checks.len())
                    } else {
                        format!(
                            "{}/{} passing; failing: {}",
                            checks.len() - failed.len(),
                            checks.len(),
                            failed.join(", ")
                        )
                    },
                }
            }
            Reading::Missing => blind(CheckKind::Health, Verdict::NoData, "no health data"),
            Reading::Failed(why) => blind(CheckKind::Health, Verdict::Error, why),
        };
        let alerts = match &obs.critical_alerts {
            Reading::Value(firing) => CheckResult {
                check: CheckKind::CriticalAlerts,
                // Alerts block advancing; they are not a rollback threshold.
                verdict: Verdict::Pass,
                value: Some(firing.len() as f64),
                threshold: None,
                go: firing.is_empty() || !go.no_critical_alerts,
                detail: if firing.is_empty() {
                    String::new()
                } else {
                    format!("firing: {}", firing.join(", "))
                },
            },
            Reading::Missing => blind(CheckKind::CriticalAlerts, Verdict::NoData, "no alert data"),
            Reading::Failed(why) => blind(CheckKind::CriticalAlerts, Verdict::Error, why),
        };
        Verdicts {
            error_rate,
            p95,
            health,
            alerts,
            requests,
            cohort: None,
            scope: String::new(),
        }
    }

    /// The four global checks, in a fixed order (see [`Verdicts::checks`]
    /// for the cohort ones too).
    #[must_use]
    pub fn all(&self) -> [&CheckResult; 4] {
        [&self.error_rate, &self.p95, &self.health, &self.alerts]
    }

    /// Every check of the tick: the four global ones, then the cohort ones
    /// if any.
    pub fn checks(&self) -> impl Iterator<Item = &CheckResult> {
        self.all()
            .into_iter()
            .chain(self.cohort.iter().flat_map(|c| c.all()))
    }

    /// Whether any check had NoData or Error this tick.
    #[must_use]
    pub fn any_blind(&self) -> bool {
        self.checks().any(|c| c.verdict.is_blind())
    }

    /// Whether every go criterion holds (which needs every value present).
    #[must_use]
    pub fn go(&self) -> bool {
        !self.any_blind() && self.checks().all(|c| c.go)
    }

    /// The checks whose go criterion fails on a value (not for lack of data).
    pub fn go_failures(&self) -> impl Iterator<Item = &CheckResult> {
        self.checks().filter(|c| !c.go && !c.verdict.is_blind())
    }

    /// Whether any rollback threshold is breached this tick.
    #[must_use]
    pub fn any_breach(&self) -> bool {
        self.checks().any(|c| c.verdict == Verdict::Breach)
    }
}

/// What the cohort checks need besides the observation and the ledger.
#[derive(Debug, Clone, Copy)]
pub struct CohortContext<'a> {
    /// The tier whose rollback thresholds apply.
    pub tier: &'a Tier,
    /// The go criteria.
    pub go: &'a GoCriteria,
    /// The plan's request floor for a window.
    pub min_requests: f64,
    /// The stage's percentage.
    pub percentage: Percentage,
    /// How many stages the plan has (the tests' alpha is spent over them).
    pub stages: usize,
    /// The tick.
    pub now: Timestamp,
}

impl CohortVerdicts {
    /// Every cohort check an Error: the cohort queries failed with `why`.
    #[must_use]
    pub fn failed(why: &str) -> CohortVerdicts {
        let error = |check| blind(check, Verdict::Error, why);
        CohortVerdicts {
            in_error_rate: error(CheckKind::InCohortErrorRate),
            in_p95: error(CheckKind::InCohortP95Latency),
            error_excess: error(CheckKind::CohortErrorExcess),
            latency_excess: error(CheckKind::CohortLatencyExcess),
            fleet: error(CheckKind::Fleet),
            sample: error(CheckKind::CohortSample),
            out_error_rate: None,
            out_p95: None,
        }
    }

    /// Judges the cohort series `c` of one tick, with the stage's counts in
    /// `ledger` (already updated with this tick).
    #[must_use]
    pub fn judge(
        c: &CohortObservation,
        ledger: &CohortLedger,
        ctx: &CohortContext<'_>,
    ) -> CohortVerdicts {
        let inn = &c.in_cohort;
        let starved = if inn.requests.is_finite() && inn.requests < ctx.min_requests {
            Some(format!(
                "{} in-cohort requests, under the floor of {}",
                inn.requests, ctx.min_requests
            ))
        } else {
            None
        };
        let rate = inn.error_rate().map_or(Reading::Missing, Reading::Value);
        let mut in_error_rate = ratio_check(
            CheckKind::InCohortErrorRate,
            &rate,
            starved.as_deref(),
            100.0,
            ctx.tier.error_rate_percent,
            ctx.go.error_rate_percent_below,
        );
        if in_error_rate.value.is_some() {
            in_error_rate.detail = format!(
                "in cohort {:.0} errors / {:.0} requests",
                inn.errors, inn.requests
            );
            if in_error_rate.verdict == Verdict::Breach && inn.errors < c.rules.min_in_errors {
                in_error_rate.verdict = Verdict::Pass;
                in_error_rate.detail = format!(
                    "{}; over the threshold on fewer than {} errors (min_in_errors): not a breach",
                    in_error_rate.detail, c.rules.min_in_errors
                );
            }
        }
        let p95 = inn.p95_ms.map_or(Reading::Missing, Reading::Value);
        let mut in_p95 = ratio_check(
            CheckKind::InCohortP95Latency,
            &p95,
            starved.as_deref(),
            1.0,
            ctx.tier.p95_ms,
            ctx.go.p95_ms_below,
        );
        if in_p95.value.is_some() {
            in_p95.detail = format!("in cohort, {:.0} requests", inn.requests);
        }
        let threshold = c.rules.evidence_threshold(ctx.stages);
        let full = ctx.percentage >= Percentage::HUNDRED;
        let excess = |check: CheckKind, in_events: f64, out_events: f64, what: &str| {
            if full {
                return pass(
                    check,
                    if check == CheckKind::CohortErrorExcess {
                        "errors: no out cohort to compare with at 100%"
                    } else {
                        "latency: no out cohort to compare with at 100%"
                    },
                );
            }
            if ledger.in_requests <= 0.0 || ledger.out_requests <= 0.0 {
                return pass(check, "no counts for this stage yet");
            }
            let test = excess_test(
                in_events,
                ledger.in_requests,
                out_events,
                ledger.out_requests,
                c.rules.margin,
                threshold,
            );
            let significant = test.significant();
            CheckResult {
                check,
                verdict: if significant {
                    Verdict::Breach
                } else {
                    Verdict::Pass
                },
                value: Some(test.e_value),
                threshold: Some(threshold),
                go: !significant,
                detail: format!(
                    "{what} this stage: {test}; margin {}%",
                    c.rules.margin * 100.0
                ),
            }
        };
        let error_excess = excess(
            CheckKind::CohortErrorExcess,
            ledger.in_errors,
            ledger.out_errors,
            "errors",
        );
        let mut latency_excess = excess(
            CheckKind::CohortLatencyExcess,
            ledger.in_slow,
            ledger.out_slow,
            "requests slower than the out cohort's P95 bucket",
        );
        if let (Some(bound), false) = (c.slow_above_ms, full) {
            latency_excess.detail = format!("{} (bucket bound {bound} ms)", latency_excess.detail);
        }
        let fleet = fleet_check(c, ledger, ctx);
        let share = ctx.percentage.as_percent() / 100.0;
        let sample = match required_in_requests(
            ledger.out_errors,
            ledger.out_requests,
            share,
            threshold,
            &c.rules,
        ) {
            None => pass(
                CheckKind::CohortSample,
                "nothing to compare with at this percentage",
            ),
            Some(need) => {
                let enough = ledger.in_requests >= need;
                CheckResult {
                    check: CheckKind::CohortSample,
                    verdict: Verdict::Pass,
                    value: Some(ledger.in_requests),
                    threshold: Some(need),
                    go: enough,
                    detail: format!(
                        "{:.0} in-cohort requests this stage, {:.0} needed to detect a doubling of the out cohort's {:.4}% error rate (cap {:.0})",
                        ledger.in_requests,
                        need,
                        100.0 * ledger.out_errors / ledger.out_requests.max(1.0),
                        c.rules.max_required_in_requests
                    ),
                }
            }
        };
        CohortVerdicts {
            in_error_rate,
            in_p95,
            error_excess,
            latency_excess,
            fleet,
            sample,
            out_error_rate: c.out_cohort.error_rate().map(|r| r * 100.0),
            out_p95: c.out_cohort.p95_ms,
        }
    }
}

fn pass(check: CheckKind, detail: &str) -> CheckResult {
    CheckResult {
        check,
        verdict: Verdict::Pass,
        value: None,
        threshold: None,
        go: true,
        detail: detail.to_owned(),
    }
}

/// Every instance on the percentage, then (a window after that) the in
/// cohort's share of requests near it.
fn fleet_check(
    c: &CohortObservation,
    ledger: &CohortLedger,
    ctx: &CohortContext<'_>,
) -> CheckResult {
    let target = ctx.percentage.as_percent();
    let fleet = match &c.fleet {
        Reading::Failed(why) => return blind(CheckKind::Fleet, Verdict::Error, why),
        Reading::Missing => {
            return blind(
                CheckKind::Fleet,
                Verdict::NoData,
                &format!(
                    "no genesis_flags_rollout_percentage{{{}}} series: cannot tell which percentage the instances apply",
                    c.selector
                ),
            )
        }
        Reading::Value(f) => f,
    };
    if !fleet.converged_on(ctx.percentage) {
        return blind(
            CheckKind::Fleet,
            Verdict::NoData,
            &format!(
                "waiting for every instance to apply {target}%: {} instances report {}% to {}% ({}); the soak starts when they all do",
                fleet.instances,
                fleet.min_percent,
                fleet.max_percent,
                fleet.reports.join(", ")
            ),
        );
    }
    let total = c.in_cohort.requests + c.out_cohort.requests;
    let settled = ledger
        .converged_at
        .is_some_and(|at| ctx.now.since(at).as_secs_f64() >= c.window_seconds);
    if !settled || total <= 0.0 {
        return pass(
            CheckKind::Fleet,
            &format!(
                "{} instances on {target}%; the sample ratio is judged once a whole window follows",
                fleet.instances
            ),
        );
    }
    let expected = target / 100.0;
    let share = c.in_cohort.requests / total;
    let sd = (expected * (1.0 - expected) / total).sqrt();
    let off = (share - expected).abs();
    let mismatch = off > c.rules.sample_ratio_tolerance * expected && (sd == 0.0 || off / sd > 4.0);
    let detail = format!(
        "{} instances on {target}%; in cohort {:.3}% of {total:.0} requests (expected {target}% ± {}%)",
        fleet.instances,
        share * 100.0,
        c.rules.sample_ratio_tolerance * target
    );
    if mismatch {
        return blind(
            CheckKind::Fleet,
            Verdict::NoData,
            &format!("sample ratio mismatch: {detail}"),
        );
    }
    CheckResult {
        value: Some(share * 100.0),
        ..pass(CheckKind::Fleet, &detail)
    }
}

fn blind(check: CheckKind, verdict: Verdict, why: &str) -> CheckResult {
    CheckResult {
        check,
        verdict,
        value: None,
        threshold: None,
        go: false,
        detail: why.to_owned(),
    }
}

/// A ratio-like check: `value * scale` against `threshold` (rollback, `>`)
/// and `go_below` (`<`).
fn ratio_check(
    check: CheckKind,
    reading: &Reading<f64>,
    starved: Option<&str>,
    scale: f64,
    threshold: f64,
    go_below: f64,
) -> CheckResult {
    match reading {
        Reading::Failed(why) => blind(check, Verdict::Error, why),
        Reading::Missing => blind(check, Verdict::NoData, "no data"),
        Reading::Value(v) if !v.is_finite() => {
            blind(check, Verdict::NoData, &format!("value is {v}"))
        }
        Reading::Value(_) if starved.is_some() => {
            blind(check, Verdict::NoData, starved.unwrap_or_default())
        }
        Reading::Value(v) => {
            let value = v * scale;
            CheckResult {
                check,
                verdict: if value > threshold {
                    Verdict::Breach
                } else {
                    Verdict::Pass
                },
                value: Some(value),
                threshold: Some(threshold),
                go: value < go_below,
                detail: String::new(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollout::Plan;

    fn judge(obs: &Observation, tier: &str) -> Verdicts {
        let plan = Plan::six_day();
        Verdicts::judge(obs, plan.tier(tier).unwrap(), &plan.go, plan.min_requests)
    }

    #[test]
    fn healthy_passes_everything() {
        let v = judge(&Observation::healthy(), "canary");
        assert!(v.go() && !v.any_blind() && !v.any_breach());
    }

    #[test]
    fn nan_missing_and_starved_are_no_data_and_failures_are_errors() {
        let nan = judge(&Observation::healthy().with_error_rate(f64::NAN), "canary");
        assert_eq!(nan.error_rate.verdict, Verdict::NoData);
        let mut starved = Observation::healthy();
        starved.requests = Reading::Value(3.0);
        let v = judge(&starved, "canary");
        assert_eq!(
            (v.error_rate.verdict, v.p95.verdict),
            (Verdict::NoData, Verdict::NoData)
        );
        assert!(
            v.error_rate.detail.contains("under the floor"),
            "{}",
            v.error_rate.detail
        );
        let v = judge(&Observation::failed("connection refused"), "canary");
        assert!(v.all().iter().all(|c| c.verdict == Verdict::Error));
        assert!(!v.go());
        let v = judge(&Observation::no_data(), "canary");
        assert!(v.all().iter().all(|c| c.verdict == Verdict::NoData));
    }

    #[test]
    fn alerts_block_go_but_do_not_breach() {
        let v = judge(&Observation::healthy().with_alert("GenesisDown"), "late");
        assert!(!v.go() && !v.any_breach());
        assert_eq!(v.alerts.detail, "firing: GenesisDown");
    }
}
