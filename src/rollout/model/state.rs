//! [`RolloutState`]: where a rollout is, and the transitions that move it,
//! by the policy ([`apply`](RolloutState::apply)) or by a person
//! ([`promote`](RolloutState::promote), [`pause`](RolloutState::pause),
//! [`resume`](RolloutState::resume), [`rollback`](RolloutState::rollback),
//! [`sign_off`](RolloutState::sign_off)).
//!
//! Module graph (acyclic): `phase` ← `decision` ← `state` ← `policy`; this
//! module imports [`Phase`], [`Streaks`] and the [`Decision`] it applies, and
//! never the policy that makes decisions.

use serde::{Deserialize, Serialize};

use super::audit::HistoryEntry;
use super::change::ChangeKind;
use super::decision::{Action, Decision};
use crate::rollout::foundation::clock::Timestamp;
// Re-exported for the modules that import them from here (durable.rs).
pub(in crate::rollout) use super::phase::{Phase, Streaks};
use super::plan::{Plan, Stage};
use super::verdict::{CheckKind, Verdict, Verdicts};
use crate::Percentage;

/// The state file's schema version.
pub const STATE_SCHEMA: u32 = 1;

/// A recorded sign-off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignOff {
    /// The role, one of the plan's.
    pub role: String,
    /// Who signed.
    pub name: String,
    /// When.
    pub at: Timestamp,
}

/// A manual operation the state refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum OperationError {
    /// The operation does not apply in this phase.
    #[error("cannot {operation} a rollout that is {phase}")]
    NotAllowed {
        /// The operation.
        operation: &'static str,
        /// The current phase.
        phase: Phase,
    },
    /// Promotion while a rollback threshold is breached.
    #[error("promotion refused: {check} is {value} against a rollback threshold of {threshold} ({tier} tier)")]
    ThresholdBreached {
        /// The breached check.
        check: CheckKind,
        /// Its value on the last tick.
        value: f64,
        /// The threshold.
        threshold: f64,
        /// The tier.
        tier: String,
    },
    /// Promotion at the last stage.
    #[error("promotion refused: already at the last stage ({0}); completion needs the final window and the sign-offs")]
    LastStage(Percentage),
    /// A role the plan does not ask for.
    #[error("unknown sign-off role {role:?}; the plan asks for: {expected}")]
    UnknownRole {
        /// The role given.
        role: String,
        /// The plan's roles.
        expected: String,
    },
    /// A role that already signed.
    #[error("{role} already signed off (by {by})")]
    AlreadySigned {
        /// The role.
        role: String,
        /// Who signed it.
        by: String,
    },
    /// An empty reason or name.
    #[error("{0} must not be empty")]
    Empty(&'static str),
    /// The rollout moved since the person looked: an operation sent for
    /// the stage they saw is refused, so two operators never skip a stage.
    #[error("{operation} refused: the rollout is at stage {stage} ({percentage}) now, not stage {seen} as seen{}; nothing changed", last.as_ref().map(|l| format!(" (last change: {l})")).unwrap_or_default())]
    Moved {
        /// The operation.
        operation: &'static str,
        /// The stage the person saw.
        seen: usize,
        /// The stage now.
        stage: usize,
        /// The percentage now.
        percentage: Percentage,
        /// The last change, for the message.
        last: Option<String>,
    },
    /// The rollout changed since the person looked: an operation sent for
    /// the revision they saw (the status page's actions) is refused.
    #[error("{operation} refused: the rollout is at revision {revision} now, not revision {seen} as seen; nothing changed")]
    Stale {
        /// The operation.
        operation: &'static str,
        /// The revision the person saw.
        seen: u64,
        /// The revision now.
        revision: u64,
    },
    /// A sign-off before the rollout reached its last stage (100%).
    #[error(
        "sign-off refused: the rollout is at stage {stage} ({percentage}); sign-offs open at 100%"
    )]
    SignoffTooEarly {
        /// The current stage (0 before the start).
        stage: usize,
        /// The current percentage.
        percentage: Percentage,
    },
}

/// The durable state of one rollout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolloutState {
    /// [`STATE_SCHEMA`].
    pub schema: u32,
    /// The rollout id in the flags file (e.g. `phase_4_deployment`).
    pub rollout: String,
    /// The flags file a controller writes the percentage to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flags_file: Option<std::path::PathBuf>,
    /// The plan being followed.
    pub plan: Plan,
    /// Current stage, 1-based; 0 before the start and after a rollback.
    pub stage: usize,
    /// Current percentage.
    pub percentage: Percentage,
    /// Current phase.
    pub phase: Phase,
    /// When the current stage began (or the phase, for ready/rolled back).
    pub since: Timestamp,
    /// Start of the final validation window: reaching 100%, moved forward by
    /// any go-criterion breach inside the window.
    pub window_since: Option<Timestamp>,
    /// The phase a pause interrupted.
    pub paused_from: Option<Phase>,
    /// Why it is paused or rolled back.
    pub reason: Option<String>,
    /// Breach, failure and no-data runs.
    pub streaks: Streaks,
    /// Sign-offs given.
    pub signoffs: Vec<SignOff>,
    /// The last tick judged, and what it showed.
    pub last_tick: Option<Timestamp>,
    /// The verdicts of the last tick.
    pub last_verdicts: Option<Verdicts>,
    /// Every event but holds.
    pub history: Vec<HistoryEntry>,
    /// One per committed change; the controller engine's store stamps it
    /// on the state and on the change's audit records and events. (The
    /// state file also holds the last change's audit records and events,
    /// its write-ahead log: that is the store's, not part of this value.)
    #[serde(default)]
    pub revision: u64,
}

/// Refuses an empty reason or name.
fn not_empty(text: &str, what: &'static str) -> Result<(), OperationError> {
    if text.trim().is_empty() {
        Err(OperationError::Empty(what))
    } else {
        Ok(())
    }
}

impl RolloutState {
    /// A rollout of `rollout` initialised at 0%, not started.
    #[must_use]
    pub fn new(rollout: &str, plan: Plan, now: Timestamp) -> Self {
        RolloutState {
            schema: STATE_SCHEMA,
            rollout: rollout.to_owned(),
            flags_file: None,
            plan,
            stage: 0,
            percentage: Percentage::ZERO,
            phase: Phase::Ready,
            since: now,
            window_since: None,
            paused_from: None,
            reason: None,
            streaks: Streaks::default(),
            signoffs: Vec::new(),
            last_tick: None,
            last_verdicts: None,
            history: Vec::new(),
            revision: 0,
        }
    }

    /// The current stage's definition (none at stage 0).
    #[must_use]
    pub fn current_stage(&self) -> Option<&Stage> {
        self.plan.stage(self.stage)
    }

    /// Whether the current stage is the plan's last.
    #[must_use]
    pub fn at_last_stage(&self) -> bool {
        self.stage == self.plan.stages.len() && self.stage > 0
    }

    /// The tier that applies now: the final window's once the last soak is
    /// done, the current stage's, or the first stage's before the start.
    #[must_use]
    pub fn tier_name(&self) -> &str {
        match (self.phase, self.current_stage()) {
            (Phase::Validating | Phase::AwaitingSignoff | Phase::Completed, _) => {
                &self.plan.validation.tier
            }
            (_, Some(stage)) => &stage.tier,
            (_, None) => self
                .plan
                .stages
                .first()
                .map_or(&self.plan.validation.tier, |s| &s.tier),
        }
    }

    /// Roles still to sign off.
    pub fn missing_signoffs(&self) -> impl Iterator<Item = &str> {
        self.plan
            .signoffs
            .iter()
            .filter(|role| !self.signoffs.iter().any(|s| &s.role == *role))
            .map(String::as_str)
    }

    /// Applies a decision of [`decide`](crate::rollout::policy::decide) made on this
    /// state. Returns the history entry it recorded, if any.
    pub fn apply(&mut self, decision: &Decision) -> Option<HistoryEntry> {
        let at = decision.at;
        self.streaks = decision.streaks;
        self.last_tick = Some(at);
        self.last_verdicts = Some(decision.verdicts.clone());
        if decision.restart_window {
            self.window_since = Some(at);
        }
        let why = decision.explanation.message.clone();
        match &decision.action {
            Action::Hold => {
                self.phase = decision.next_phase;
                None
            }
            Action::Advance { stage, to } => {
                self.enter_stage(*stage, *to, at);
                Some(self.record(at, ChangeKind::Advance, why, "policy"))
            }
            Action::Pause { why } => {
                self.paused_from = Some(self.phase);
                self.phase = Phase::Paused;
                self.reason = Some(why.clone());
                Some(self.record(at, ChangeKind::Pause, why.clone(), "policy"))
            }
            Action::Rollback { why } => {
                self.roll_back(at, why);
                Some(self.record(at, ChangeKind::Rollback, why.clone(), "policy"))
            }
            Action::Complete => {
                self.phase = Phase::Completed;
                self.since = at;
                Some(self.record(at, ChangeKind::Complete, why, "policy"))
            }
        }
    }

    fn enter_stage(&mut self, stage: usize, percentage: Percentage, at: Timestamp) {
        self.stage = stage;
        self.percentage = percentage;
        self.since = at;
        self.phase = Phase::Soaking;
        if percentage == Percentage::HUNDRED && self.window_since.is_none() {
            self.window_since = Some(at);
        }
    }

    fn roll_back(&mut self, at: Timestamp, why: &str) {
        self.stage = 0;
        self.percentage = Percentage::ZERO;
        self.phase = Phase::RolledBack;
        self.since = at;
        self.window_since = None;
        self.paused_from = None;
        self.reason = Some(why.to_owned());
        self.streaks = Streaks::default();
        // A rollback overrides any pending approval.
        self.signoffs.clear();
    }

    fn record(&mut self, at: Timestamp, event: ChangeKind, why: String, by: &str) -> HistoryEntry {
        let entry = HistoryEntry {
            at,
            event,
            stage: self.stage,
            percentage: self.percentage,
            why,
            by: by.to_owned(),
            claimed_by: None,
            request: None,
        };
        self.history.push(entry.clone());
        entry
    }

    fn first_stage(&self) -> (usize, Percentage) {
        (
            1,
            self.plan
                .stages
                .first()
                .map_or(Percentage::HUNDRED, |s| s.percentage),
        )
    }

    /// Starts a ready rollout at stage 1.
    ///
    /// # Errors
    ///
    /// `OperationError::NotAllowed` unless the rollout is ready.
    pub fn start(&mut self, now: Timestamp, by: &str) -> Result<HistoryEntry, OperationError> {
        if self.phase != Phase::Ready {
            return Err(OperationError::NotAllowed {
                operation: "start",
                phase: self.phase,
            });
        }
        let (stage, to) = self.first_stage();
        self.enter_stage(stage, to, now);
        Ok(self.record(
            now,
            ChangeKind::Start,
            format!("started at stage 1 ({to})"),
            by,
        ))
    }

    /// Moves to the next stage now, skipping the rest of the soak. Refused
    /// while a rollback threshold is breached, and at the last stage.
    ///
    /// # Errors
    ///
    /// `OperationError::NotAllowed` in a phase that cannot move;
    /// `ThresholdBreached` while a rollback threshold is breached;
    /// `LastStage` at the last stage; `Empty` for an empty reason.
    pub fn promote(
        &mut self,
        now: Timestamp,
        by: &str,
        reason: &str,
    ) -> Result<HistoryEntry, OperationError> {
        not_empty(reason, "the reason to promote")?;
        match self.phase {
            Phase::Ready => {
                let (stage, to) = self.first_stage();
                self.enter_stage(stage, to, now);
                return Ok(self.record(now, ChangeKind::Promote, reason.to_owned(), by));
            }
            Phase::Soaking => {}
            phase => {
                return Err(OperationError::NotAllowed {
                    operation: "promote",
                    phase,
                })
            }
        }
        if let Some(breach) = self
            .last_verdicts
            .as_ref()
            .and_then(|v| v.checks().find(|c| c.verdict == Verdict::Breach))
        {
            return Err(OperationError::ThresholdBreached {
                check: breach.check,
                value: breach.value.unwrap_or(f64::NAN),
                threshold: breach.threshold.unwrap_or(f64::NAN),
                tier: self.tier_name().to_owned(),
            });
        }
        let next = self.stage.saturating_add(1);
        let Some(to) = self.plan.stage(next).map(|s| s.percentage) else {
            return Err(OperationError::LastStage(self.percentage));
        };
        self.enter_stage(next, to, now);
        Ok(self.record(now, ChangeKind::Promote, reason.to_owned(), by))
    }

    /// Pauses the rollout for a person; the percentage stays.
    ///
    /// # Errors
    ///
    /// `OperationError::NotAllowed` when the rollout is not running; `Empty`
    /// for an empty reason.
    pub fn pause(
        &mut self,
        now: Timestamp,
        by: &str,
        reason: &str,
    ) -> Result<HistoryEntry, OperationError> {
        not_empty(reason, "the reason to pause")?;
        match self.phase {
            Phase::Soaking | Phase::Validating | Phase::AwaitingSignoff => {
                self.paused_from = Some(self.phase);
                self.phase = Phase::Paused;
                self.reason = Some(reason.to_owned());
                Ok(self.record(now, ChangeKind::Pause, reason.to_owned(), by))
            }
            phase => Err(OperationError::NotAllowed {
                operation: "pause",
                phase,
            }),
        }
    }

    /// Resumes a paused rollout where it was, or restarts a rolled-back one
    /// from stage 1.
    ///
    /// # Errors
    ///
    /// `OperationError::NotAllowed` unless the rollout is paused or rolled
    /// back; `Empty` for an empty reason.
    pub fn resume(
        &mut self,
        now: Timestamp,
        by: &str,
        reason: &str,
    ) -> Result<HistoryEntry, OperationError> {
        not_empty(reason, "the reason to resume")?;
        match self.phase {
            Phase::Paused => {
                self.phase = self.paused_from.take().unwrap_or(Phase::Soaking);
                self.reason = None;
                // The no-data budget starts over.
                self.streaks.blind_since = None;
            }
            Phase::RolledBack => {
                let (stage, to) = self.first_stage();
                self.reason = None;
                self.window_since = None;
                self.streaks = Streaks::default();
                self.enter_stage(stage, to, now);
            }
            phase => {
                return Err(OperationError::NotAllowed {
                    operation: "resume",
                    phase,
                })
            }
        }
        Ok(self.record(now, ChangeKind::Resume, reason.to_owned(), by))
    }

    /// Rolls back to 0% at once, from any phase but completed; overrides a
    /// pause or a pending sign-off.
    ///
    /// # Errors
    ///
    /// `OperationError::NotAllowed` when the rollout is ready, completed or
    /// rolled back already; `Empty` for an empty reason.
    pub fn rollback(
        &mut self,
        now: Timestamp,
        by: &str,
        reason: &str,
    ) -> Result<HistoryEntry, OperationError> {
        not_empty(reason, "the reason to roll back")?;
        if matches!(
            self.phase,
            Phase::Completed | Phase::RolledBack | Phase::Ready
        ) {
            return Err(OperationError::NotAllowed {
                operation: "roll back",
                phase: self.phase,
            });
        }
        self.roll_back(now, reason);
        Ok(self.record(now, ChangeKind::Rollback, reason.to_owned(), by))
    }

    /// Records a sign-off for one of the plan's roles. Sign-offs open once
    /// the rollout is at its last stage (100%): soaking there, validating,
    /// awaiting sign-off, or paused there; earlier they are refused with
    /// [`OperationError::SignoffTooEarly`].
    ///
    /// # Errors
    ///
    /// `OperationError::NotAllowed` once completed or rolled back;
    /// `SignoffTooEarly` before the last stage; `UnknownRole`
    /// for a role the plan does not list; `AlreadySigned` for a role that
    /// signed; `Empty` for an empty name.
    pub fn sign_off(
        &mut self,
        now: Timestamp,
        role: &str,
        name: &str,
    ) -> Result<HistoryEntry, OperationError> {
        not_empty(name, "the name signing off")?;
        if matches!(self.phase, Phase::Completed | Phase::RolledBack) {
            return Err(OperationError::NotAllowed {
                operation: "sign off",
                phase: self.phase,
            });
        }
        if !self.plan.signoffs.iter().any(|r| r == role) {
            return Err(OperationError::UnknownRole {
                role: role.to_owned(),
                expected: self.plan.signoffs.join(", "),
            });
        }
        let at_full = matches!(
            self.phase,
            Phase::Soaking | Phase::Validating | Phase::AwaitingSignoff | Phase::Paused
        ) && self.at_last_stage();
        if !at_full {
            return Err(OperationError::SignoffTooEarly {
                stage: self.stage,
                percentage: self.percentage,
            });
        }
        if let Some(done) = self.signoffs.iter().find(|s| s.role == role) {
            return Err(OperationError::AlreadySigned {
                role: role.to_owned(),
                by: done.name.clone(),
            });
        }
        self.signoffs.push(SignOff {
            role: role.to_owned(),
            name: name.to_owned(),
            at: now,
        });
        Ok(self.record(now, ChangeKind::SignOff, format!("{role} signed off"), name))
    }
}
