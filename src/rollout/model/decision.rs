//! The policy's answer for one tick: [`Decision`], its [`Action`] and its
//! [`Explanation`].
//!
//! In the middle of the rollout's module graph, which is acyclic:
//! `phase` ← `decision` ← `state` ← `policy`. The state applies a decision
//! and the policy makes one; this module imports neither.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::change::{AuditEvent, ChangeKind};
use super::phase::{Phase, Streaks};
use super::verdict::{CheckKind, Verdicts};
use crate::rollout::foundation::clock::Timestamp;
use crate::Percentage;

/// What to do after a tick.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Stay where it is.
    Hold,
    /// Move to the next stage.
    Advance {
        /// The stage, 1-based.
        stage: usize,
        /// Its percentage.
        to: Percentage,
    },
    /// Stop for a person; the percentage stays.
    Pause {
        /// Why.
        why: String,
    },
    /// Set the percentage to 0 at once.
    Rollback {
        /// Why.
        why: String,
    },
    /// The rollout is done.
    Complete,
}

impl Action {
    /// What the audit log records of it: `hold`, or the change it makes.
    #[must_use]
    pub fn audit_event(&self) -> AuditEvent {
        match self {
            Action::Hold => AuditEvent::Hold,
            Action::Advance { .. } => ChangeKind::Advance.into(),
            Action::Pause { .. } => ChangeKind::Pause.into(),
            Action::Rollback { .. } => ChangeKind::Rollback.into(),
            Action::Complete => ChangeKind::Complete.into(),
        }
    }

    /// `hold`, `advance`, `pause`, `rollback` or `complete`.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Action::Hold => "hold",
            Action::Advance { .. } => "advance",
            Action::Pause { .. } => "pause",
            Action::Rollback { .. } => "rollback",
            Action::Complete => "complete",
        }
    }
}

/// Why a decision was made: the sentence, and the figures behind it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Explanation {
    /// One line for a person.
    pub message: String,
    /// The check that decided, if one did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check: Option<CheckKind>,
    /// Its value (error rate in percent, P95 in ms, failed checks).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// The threshold it was held to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    /// How long the breach ran, or how many ticks in a row failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub streak: Option<String>,
    /// Requests behind the ratios.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub samples: Option<f64>,
}

impl Explanation {
    /// An explanation of one sentence, without figures.
    pub(in crate::rollout) fn says(message: String) -> Self {
        Explanation {
            message,
            check: None,
            value: None,
            threshold: None,
            streak: None,
            samples: None,
        }
    }
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// The policy's answer for one tick, with everything needed to apply and
/// explain it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// The tick.
    pub at: Timestamp,
    /// What to do.
    pub action: Action,
    /// The stage when deciding.
    pub stage: usize,
    /// The percentage when deciding.
    pub percentage: Percentage,
    /// The tier whose thresholds applied.
    pub tier: String,
    /// Every check of this tick.
    pub verdicts: Verdicts,
    /// Why.
    pub explanation: Explanation,
    /// The streaks after this tick.
    pub streaks: Streaks,
    /// The phase after a Hold (a last stage's soak ending, the final window
    /// holding before the sign-offs).
    pub next_phase: Phase,
    /// Whether this tick restarts the final validation window.
    pub restart_window: bool,
}
