//! Judging one [`Observation`] against a tier and the go criteria.
//!
//! Each check yields a [`Verdict`]: **Pass**, **Breach** (counts toward
//! rollback), **NoData** (missing, NaN, or too few requests) or **Error** (the
//! source failed). Only Breach counts toward rollback; NoData and Error never
//! advance and never roll back.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::gate::{Observation, Reading};
use super::plan::{GoCriteria, Tier};

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
}

impl fmt::Display for CheckKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CheckKind::ErrorRate => "error rate",
            CheckKind::P95Latency => "P95 latency",
            CheckKind::Health => "health checks",
            CheckKind::CriticalAlerts => "critical alerts",
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
        }
    }

    /// The four checks, in a fixed order.
    #[must_use]
    pub fn all(&self) -> [&CheckResult; 4] {
        [&self.error_rate, &self.p95, &self.health, &self.alerts]
    }

    /// Whether any check had NoData or Error this tick.
    #[must_use]
    pub fn any_blind(&self) -> bool {
        self.all().iter().any(|c| c.verdict.is_blind())
    }

    /// Whether every go criterion holds (which needs every value present).
    #[must_use]
    pub fn go(&self) -> bool {
        !self.any_blind() && self.all().iter().all(|c| c.go)
    }

    /// The checks whose go criterion fails on a value (not for lack of data).
    pub fn go_failures(&self) -> impl Iterator<Item = &CheckResult> {
        self.all()
            .into_iter()
            .filter(|c| !c.go && !c.verdict.is_blind())
    }

    /// Whether any rollback threshold is breached this tick.
    #[must_use]
    pub fn any_breach(&self) -> bool {
        self.all().iter().any(|c| c.verdict == Verdict::Breach)
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
