//! The values an engine hands out: a person's [`Operation`], what a commit
//! did ([`Commit`], [`Applied`], [`Pending`]), a tick ([`TickReport`]), the
//! events of a run ([`RunEvent`]) and why it ended ([`RunEnd`]).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::rollout::{Decision, HistoryEntry, Observation};
use crate::Percentage;

/// A person's operation on a rollout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "operation", rename_all = "snake_case", deny_unknown_fields)]
pub enum Operation {
    /// Start a ready rollout at stage 1.
    Start,
    /// Move to the next stage now.
    Promote {
        /// Why.
        reason: String,
    },
    /// Stop for a person; the percentage stays.
    Pause {
        /// Why.
        reason: String,
    },
    /// Resume a paused rollout, or restart a rolled-back one from stage 1.
    Resume {
        /// Why.
        reason: String,
    },
    /// Roll back to 0% now.
    Rollback {
        /// Why.
        reason: String,
    },
    /// Record a sign-off.
    SignOff {
        /// The plan's role.
        role: String,
        /// Who signs.
        name: String,
    },
}

impl Operation {
    /// `start`, `promote`, `pause`, `resume`, `rollback` or `signoff`.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Operation::Start => "start",
            Operation::Promote { .. } => "promote",
            Operation::Pause { .. } => "pause",
            Operation::Resume { .. } => "resume",
            Operation::Rollback { .. } => "rollback",
            Operation::SignOff { .. } => "signoff",
        }
    }
}

/// A follow-up write of a committed change that has not happened yet; the
/// next [`open`](crate::rollout::controller::ControllerBuilder::open) does it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "pending", rename_all = "snake_case")]
pub enum Pending {
    /// The flags file still shows the old percentage.
    Flags {
        /// Why the write failed.
        error: String,
    },
    /// Audit records are still only in the state's journal.
    Audit {
        /// Why the append failed.
        error: String,
    },
    /// Notification events are still only in the state.
    Outbox {
        /// Why the append failed.
        error: String,
    },
}

impl std::fmt::Display for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Pending::Flags { error } => write!(
                f,
                "the flags file was not updated ({error}); the next start of the controller writes it"
            ),
            Pending::Audit { error } => write!(
                f,
                "the audit record was not appended ({error}); the next start of the controller appends it"
            ),
            Pending::Outbox { error } => write!(
                f,
                "the notification was not added to the outbox ({error}); the next start of the controller adds it"
            ),
        }
    }
}

/// A committed change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Commit {
    /// The state's revision after the change.
    pub revision: u64,
    /// Follow-up writes still to do (empty when everything is written).
    pub pending: Vec<Pending>,
    /// What publishing did beyond the percentage (a broken flags file
    /// restored), one line each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// An operation applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Applied {
    /// The history entry it recorded.
    pub entry: HistoryEntry,
    /// The commit.
    pub commit: Commit,
    /// What opening the engine repaired, when [`Controller::submit`](crate::rollout::controller::Controller::submit)
    /// applied the operation itself.
    #[serde(skip)]
    pub opened: OpenReport,
}

/// One tick: what the gate saw, what the policy decided, what was written.
#[derive(Debug, Clone, PartialEq)]
pub struct TickReport {
    /// What the gate saw.
    pub observation: Observation,
    /// The decision.
    pub decision: Decision,
    /// The commit.
    pub commit: Commit,
}

/// Something that happened in [`Controller::run`](crate::rollout::controller::Controller::run).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
// Events are handed out by reference, one per tick: their size costs nothing.
#[allow(clippy::large_enum_variant)]
pub enum RunEvent {
    /// A tick.
    Tick(TickReport),
    /// An operation, applied (or refused) for a person.
    Operation {
        /// What was asked.
        operation: Operation,
        /// Who asked.
        by: String,
        /// The outcome; `Err` is the refusal's message.
        outcome: Result<Applied, String>,
    },
    /// The engine retried publishing a committed percentage that the flags
    /// file did not show yet (users are exposed to the old one until it
    /// succeeds).
    Publish {
        /// The percentage the state holds.
        percentage: Percentage,
        /// `Err` says why the flags file still could not be written.
        outcome: Result<Vec<String>, String>,
    },
    /// A request in the request folder was refused before it was read
    /// (unsafe folder or file); nothing changed.
    RequestRefused {
        /// Why.
        reason: String,
    },
}

/// Why [`Controller::run`](crate::rollout::controller::Controller::run) returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunEnd {
    /// The rollout completed.
    Completed,
    /// The rollout rolled back.
    RolledBack,
    /// The rollout paused for a person.
    Paused,
    /// The stop flag was raised (between ticks; the state is saved).
    Stopped,
    /// The `until` instant passed.
    Until,
}

/// What [`ControllerBuilder::open`](crate::rollout::controller::ControllerBuilder::open) found and repaired.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpenReport {
    /// Temporary files of killed writers, and stale requests, removed.
    pub swept: Vec<PathBuf>,
    /// Journal records appended to the audit log (a change committed before
    /// a crash).
    pub recovered_records: usize,
    /// The flags file was out of step with the state: `(found, written)`.
    pub reconciled: Option<(Percentage, Percentage)>,
    /// Notification events appended to the outbox (a change committed
    /// before a crash).
    pub recovered_events: usize,
    /// The flags file could not be brought in step with the state: the
    /// running engine retries it.
    pub pending: Vec<Pending>,
    /// What reconciling the flags file did beyond the percentage.
    pub notes: Vec<String>,
}
