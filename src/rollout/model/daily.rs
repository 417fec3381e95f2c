//! [`DailyReport`]: the daily stakeholder update on a rollout — status,
//! percentage, error rate, P95, health checks, key updates, next milestone,
//! progress and the sign-off roles. It serialises to JSON (the
//! `daily_report` notification carries it) and displays as text from the
//! same typed value.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::rollout::{ChangeKind, Phase, RolloutState, Timestamp};

/// The daily stakeholder update.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DailyReport {
    /// `ON TRACK`, `AT RISK` or `ROLLED BACK`.
    pub status: String,
    /// The rollout id.
    pub rollout: String,
    /// The percentage, in percent.
    pub rollout_percentage: f64,
    /// Current stage.
    pub stage: usize,
    /// Stages in the plan.
    #[serde(default)]
    pub stages: usize,
    /// The phase.
    pub phase: Phase,
    /// The last tick's error rate, in percent.
    pub error_rate_percent: Option<f64>,
    /// The last tick's P95, in ms.
    pub p95_ms: Option<f64>,
    /// The last tick's health checks, e.g. `5/5 passing`.
    pub health_checks: String,
    /// Events of the last 24 hours.
    pub key_updates: Vec<String>,
    /// What comes next.
    pub next_milestone: String,
    /// Days since the start, to a tenth.
    pub progress_days: f64,
    /// Days the plan takes when healthy.
    pub plan_days: f64,
    /// The sign-off roles and who signed, e.g. `security_lead: pending`.
    #[serde(default)]
    pub roles: Vec<String>,
}

impl DailyReport {
    /// The report on `state` at `now`.
    #[must_use]
    pub fn new(state: &RolloutState, now: Timestamp) -> DailyReport {
        let status = match state.phase {
            Phase::RolledBack => "ROLLED BACK",
            Phase::Paused => "AT RISK",
            _ if state
                .last_verdicts
                .as_ref()
                .is_some_and(|v| v.any_breach() || v.any_blind()) =>
            {
                "AT RISK"
            }
            _ => "ON TRACK",
        };
        let started = state
            .history
            .iter()
            .find(|h| h.event == ChangeKind::Start)
            .map_or(state.since, |h| h.at);
        let days = now.since(started).as_secs_f64() / 86_400.0;
        let v = state.last_verdicts.as_ref();
        let day = Duration::from_secs(86_400);
        let key_updates = state
            .history
            .iter()
            .filter(|h| now.since(h.at) <= day)
            .map(|h| {
                format!(
                    "{} {} → stage {} ({}): {}",
                    h.at, h.event, h.stage, h.percentage, h.why
                )
            })
            .collect();
        DailyReport {
            status: status.to_owned(),
            rollout: state.rollout.clone(),
            rollout_percentage: state.percentage.as_percent(),
            stage: state.stage,
            stages: state.plan.stages.len(),
            phase: state.phase,
            error_rate_percent: v.and_then(|v| v.error_rate.value),
            p95_ms: v.and_then(|v| v.p95.value),
            health_checks: v.map(|v| v.health.detail.clone()).unwrap_or_default(),
            key_updates,
            next_milestone: next_milestone(state),
            progress_days: (days * 10.0).round() / 10.0,
            plan_days: state.plan.estimated_duration().as_secs_f64() / 86_400.0,
            roles: state
                .plan
                .signoffs
                .iter()
                .map(|role| {
                    state.signoffs.iter().find(|s| &s.role == role).map_or_else(
                        || format!("{role}: pending"),
                        |s| format!("{role}: signed by {} at {}", s.name, s.at),
                    )
                })
                .collect(),
        }
    }
}

fn next_milestone(state: &RolloutState) -> String {
    match state.phase {
        Phase::Soaking => state
            .plan
            .stage(state.stage + 1)
            .map(|s| {
                format!(
                    "stage {} ({}) after the soak",
                    state.stage + 1,
                    s.percentage
                )
            })
            .unwrap_or_else(|| "final validation".into()),
        Phase::Validating | Phase::AwaitingSignoff => {
            let missing: Vec<&str> = state.missing_signoffs().collect();
            if missing.is_empty() {
                "completion".into()
            } else {
                format!("sign-offs: {}", missing.join(", "))
            }
        }
        Phase::Ready => "start (stage 1)".into(),
        Phase::Paused | Phase::RolledBack => "a person to resume".into(),
        Phase::Completed => "none: completed".into(),
    }
}

impl fmt::Display for DailyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Genesis rollout report — {}\n  rollout {} at {}% (stage {}/{}, {})\n  error rate {}, P95 {}, health checks {}\n  progress: day {:.1} of {:.0}\n  next milestone: {}\n  key updates (24 h):",
            self.status,
            self.rollout,
            self.rollout_percentage,
            self.stage,
            self.stages,
            self.phase,
            self.error_rate_percent.map_or_else(|| "n/a".into(), |e| format!("{e:.3}%")),
            self.p95_ms.map_or_else(|| "n/a".into(), |p| format!("{p:.0} ms")),
            if self.health_checks.is_empty() { "n/a" } else { &self.health_checks },
            self.progress_days,
            self.plan_days,
            self.next_milestone,
        )?;
        if self.key_updates.is_empty() {
            f.write_str(" none")?;
        }
        for u in &self.key_updates {
            write!(f, "\n    {u}")?;
        }
        if !self.roles.is_empty() {
            write!(f, "\n  roles:")?;
            for r in &self.roles {
                write!(f, "\n    {r}")?;
            }
        }
        Ok(())
    }
}
