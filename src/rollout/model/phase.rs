//! [`Phase`]: where a rollout stands, and [`Streaks`]: the running counts
//! behind the sustained-breach rules.
//!
//! The bottom of the rollout's module graph, which is acyclic:
//! `phase` ← `decision` ← `state` ← `policy`. This module imports neither of
//! the others.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::cohort::CohortLedger;
use super::verdict::{CheckResult, CohortVerdicts, Verdict, Verdicts};
use crate::rollout::foundation::clock::Timestamp;

/// Where a rollout stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Initialised at 0%, not started.
    Ready,
    /// Holding a stage's percentage through its soak window.
    Soaking,
    /// At 100%, the last soak done, inside the final validation window.
    Validating,
    /// The final window held; waiting for the sign-offs.
    AwaitingSignoff,
    /// Stopped for a person (by hand, or after too long without data).
    Paused,
    /// Rolled back to 0%; terminal until a person resumes (from stage 1).
    RolledBack,
    /// Done: 100%, validated, signed off.
    Completed,
}

impl Phase {
    /// The snake_case name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Ready => "ready",
            Phase::Soaking => "soaking",
            Phase::Validating => "validating",
            Phase::AwaitingSignoff => "awaiting_signoff",
            Phase::Paused => "paused",
            Phase::RolledBack => "rolled_back",
            Phase::Completed => "completed",
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Running counts behind the sustained-breach rules.
///
/// A breach streak starts at the first Breach tick and grows with each
/// Breach tick; a Pass ends it; NoData and Error neither extend nor end it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Streaks {
    /// First tick of the current run of error-rate breaches.
    pub error_rate_since: Option<Timestamp>,
    /// First tick of the current run of P95 breaches.
    pub p95_since: Option<Timestamp>,
    /// Consecutive ticks with a failed health check.
    pub health_failures: u32,
    /// First tick of the current run of ticks with any NoData/Error.
    pub blind_since: Option<Timestamp>,
    /// First tick of the current run of in-cohort error-rate breaches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_error_rate_since: Option<Timestamp>,
    /// First tick of the current run of in-cohort P95 breaches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_p95_since: Option<Timestamp>,
    /// First tick of the current run of significant in-vs-out error excesses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_excess_since: Option<Timestamp>,
    /// First tick of the current run of significant in-vs-out latency excesses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_excess_since: Option<Timestamp>,
    /// The stage's cohort counts (empty without cohort series).
    #[serde(default, skip_serializing_if = "CohortLedger::is_empty")]
    pub cohort: CohortLedger,
}

impl Streaks {
    /// The streaks after a tick with `verdicts` at `now`.
    #[must_use]
    pub fn after(self, verdicts: &Verdicts, now: Timestamp) -> Streaks {
        let run = |since: Option<Timestamp>, v: Verdict| match v {
            Verdict::Breach => Some(since.unwrap_or(now)),
            Verdict::Pass => None,
            Verdict::NoData | Verdict::Error => since,
        };
        // Without cohort series a cohort run neither grows nor ends.
        let cohort_run =
            |since: Option<Timestamp>, pick: fn(&CohortVerdicts) -> &CheckResult| match &verdicts
                .cohort
            {
                Some(c) => run(since, pick(c).verdict),
                None => since,
            };
        Streaks {
            error_rate_since: run(self.error_rate_since, verdicts.error_rate.verdict),
            p95_since: run(self.p95_since, verdicts.p95.verdict),
            health_failures: match verdicts.health.verdict {
                Verdict::Breach => self.health_failures.saturating_add(1),
                Verdict::Pass => 0,
                Verdict::NoData | Verdict::Error => self.health_failures,
            },
            blind_since: if verdicts.any_blind() {
                Some(self.blind_since.unwrap_or(now))
            } else {
                None
            },
            in_error_rate_since: cohort_run(self.in_error_rate_since, |c| &c.in_error_rate),
            in_p95_since: cohort_run(self.in_p95_since, |c| &c.in_p95),
            error_excess_since: cohort_run(self.error_excess_since, |c| &c.error_excess),
            latency_excess_since: cohort_run(self.latency_excess_since, |c| &c.latency_excess),
            cohort: self.cohort,
        }
    }
}
