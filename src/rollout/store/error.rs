//! [`ControllerError`]: why the engine refused or failed, with where.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::rollout::model::identity::LockHolder;
use crate::rollout::{OperationError, PlanError, StateError};

/// Why a controller operation failed. Whatever the variant, the operation
/// changed nothing (see [`Commit::pending`](crate::rollout::controller::Commit::pending) for
/// the one exception, a change committed whose follow-up writes are pending).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ControllerError {
    /// A file operation failed.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// Saving or loading the state, or writing atomically, failed.
    #[error(transparent)]
    State(#[from] StateError),
    /// The notification file or the outbox is unusable.
    #[error(transparent)]
    Notify(#[from] crate::rollout::foundation::notify_error::NotifyError),
    /// The flags file cannot be read, edited or written.
    #[error(transparent)]
    Flags(#[from] crate::rollout::files::FlagsFileError),
    /// The plan is not valid.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// Another engine holds the lock.
    #[error("another controller holds {}{}; stop it first", lock.display(), holder.as_ref().map(|h| format!(": {h}")).unwrap_or_default())]
    Locked {
        /// The lock file.
        lock: PathBuf,
        /// Who holds it, when the lock file says.
        holder: Option<LockHolder>,
    },
    /// There is no state file yet.
    #[error("no rollout state at {} (run `init` first)", path.display())]
    NoState {
        /// The state file.
        path: PathBuf,
    },
    /// `init` would replace an existing rollout without `force`.
    #[error("{} already holds a rollout; pass --force to start over", path.display())]
    Exists {
        /// The state file.
        path: PathBuf,
    },
    /// The rollout's state refused the operation.
    #[error(transparent)]
    Refused(#[from] OperationError),
    /// A safe deploy would not be safe now; one line per reason.
    #[error("deploy refused:{}", reasons.iter().map(|r| format!("\n  {r}")).collect::<String>())]
    NotSafe {
        /// Every reason, one per line.
        reasons: Vec<String>,
        /// Whether a check breached (the rollout is not healthy) rather than
        /// being unknown or early.
        unhealthy: bool,
    },
    /// A number or setting given by a person is out of bounds.
    #[error("{field}: {message}")]
    Invalid {
        /// The argument or field, e.g. `--tick`.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// The engine has no health gate, and the operation needs one.
    #[error("this operation needs a health gate")]
    NoGate,
    /// The running engine refused the request.
    #[error("the running controller refused: {}", .0.message)]
    Remote(AnswerError),
    /// The command was interrupted before the running engine took its
    /// request; the request was withdrawn and nothing changed.
    #[error("interrupted: the request was withdrawn and nothing changed")]
    Interrupted,
    /// A change was decided on a revision that is no longer the current one
    /// (the state moved while it was being decided); nothing changed.
    #[error("a change decided on revision {decided_on} was not applied: the rollout is at revision {current} now; nothing changed")]
    Conflict {
        /// The revision the change was decided on.
        decided_on: u64,
        /// The revision the state is at.
        current: u64,
    },
    /// The running engine did not answer in time; the request was
    /// withdrawn, so nothing changed.
    #[error("the running controller {} did not answer within {}s; the request was withdrawn and nothing changed", holder.as_ref().map(ToString::to_string).unwrap_or_default(), waited_secs)]
    NotAnswered {
        /// Who holds the lock.
        holder: Option<LockHolder>,
        /// How long the sender waited.
        waited_secs: u64,
    },
}

impl ControllerError {
    /// Whether the failure says the rollout is not healthy (a breach), as
    /// opposed to bad input or an unusable setup.
    #[must_use]
    pub fn is_unhealthy(&self) -> bool {
        match self {
            ControllerError::NotSafe { unhealthy, .. } => *unhealthy,
            ControllerError::Remote(e) => e.unhealthy,
            _ => false,
        }
    }
}

/// Why a running engine refused a request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnswerError {
    /// One line per problem.
    pub message: String,
    /// Whether the refusal is about the rollout's health (exit 1) rather
    /// than the request (exit 2).
    #[serde(default)]
    pub unhealthy: bool,
}
