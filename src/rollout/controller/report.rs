//! What a person reads about a rollout: [`StatusView`] (where it stands).
//! It serialises to JSON and displays as text from the same typed value
//! (so does the stakeholder update,
//! [`DailyReport`](crate::rollout::DailyReport)).

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

use crate::rollout::model::identity::LockHolder;
use crate::rollout::{format_duration, Phase, RolloutState, Timestamp, Verdicts};

/// Where a rollout stands now.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatusView {
    /// The rollout id.
    pub rollout: String,
    /// Current stage (0 before the start and after a rollback).
    pub stage: usize,
    /// Stages in the plan.
    pub stages: usize,
    /// The percentage, in percent.
    pub current_percentage: f64,
    /// The phase (`soaking`, `paused`, ...).
    pub phase: Phase,
    /// When the stage (or phase) began.
    pub since: Timestamp,
    /// Time in the stage, e.g. `3h15m`.
    pub time_in_stage: String,
    /// Soak left while soaking.
    pub soak_left: Option<String>,
    /// The tier whose thresholds apply.
    pub tier: String,
    /// Why it is paused or rolled back.
    pub reason: Option<String>,
    /// Roles still to sign off.
    pub missing_signoffs: Vec<String>,
    /// The last tick judged.
    pub last_tick: Option<Timestamp>,
    /// Its verdicts.
    pub last_verdicts: Option<Verdicts>,
    /// The flags file written.
    pub flags_file: Option<PathBuf>,
    /// The state's revision (one per committed change).
    pub revision: u64,
    /// The engine holding the lock, if one runs.
    pub engine: Option<LockHolder>,
}

impl StatusView {
    /// The view of `state` at `now`; `engine` is who holds the lock.
    #[must_use]
    pub fn new(state: &RolloutState, now: Timestamp, engine: Option<LockHolder>) -> StatusView {
        let soak_left = state
            .current_stage()
            .filter(|_| state.phase == Phase::Soaking)
            .map(|s| format_duration(state.since.saturating_add(s.soak).since(now)));
        StatusView {
            rollout: state.rollout.clone(),
            stage: state.stage,
            stages: state.plan.stages.len(),
            current_percentage: state.percentage.as_percent(),
            phase: state.phase,
            since: state.since,
            time_in_stage: format_duration(now.since(state.since)),
            soak_left,
            tier: state.tier_name().to_owned(),
            reason: state.reason.clone(),
            missing_signoffs: state.missing_signoffs().map(str::to_owned).collect(),
            last_tick: state.last_tick,
            last_verdicts: state.last_verdicts.clone(),
            flags_file: state.flags_file.clone(),
            revision: state.revision,
            engine,
        }
    }
}

fn figure(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.3}"))
}

impl fmt::Display for StatusView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "rollout {}: stage {}/{} at {}% — {}\n  since {} ({} in stage)",
            self.rollout,
            self.stage,
            self.stages,
            self.current_percentage,
            self.phase,
            self.since,
            self.time_in_stage
        )?;
        if let Some(left) = &self.soak_left {
            write!(f, ", soak left {left}")?;
        }
        if let Some(reason) = &self.reason {
            write!(f, "\n  reason: {reason}")?;
        }
        if !self.missing_signoffs.is_empty() && self.phase != Phase::Completed {
            write!(
                f,
                "\n  sign-offs missing: {}",
                self.missing_signoffs.join(", ")
            )?;
        }
        if let Some(engine) = &self.engine {
            write!(f, "\n  engine: {engine}")?;
        }
        if let Some(verdicts) = &self.last_verdicts {
            for c in verdicts.checks() {
                write!(
                    f,
                    "\n  {}: {} (value {}, threshold {})",
                    c.check,
                    c.verdict,
                    figure(c.value),
                    c.threshold.map_or_else(|| "-".into(), |v| v.to_string()),
                )?;
            }
        }
        Ok(())
    }
}
