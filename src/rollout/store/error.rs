//! [`ControllerError`]: why the engine refused or failed, with where.

use crate::FileError;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::rollout::model::identity::LockHolder;
use crate::rollout::{OperationError, PlanError, StateError, Timestamp};

/// Why a controller operation failed. Whatever the variant, the operation
/// changed nothing (see [`Commit::pending`](crate::rollout::controller::Commit::pending) for
/// the one exception, a change committed whose follow-up writes are pending).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ControllerError {
    /// A file operation failed.
    #[error(transparent)]
    Io(FileError),
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
    #[error("the running controller refused: {0}")]
    Remote(Refusal),
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
            ControllerError::Remote(e) => e.is_unhealthy(),
            _ => false,
        }
    }
}

/// Why a running engine refused a request: a typed value, as it crosses
/// the request folder in the answer file. Its text is what the same refusal
/// says when no engine runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "refusal", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Refusal {
    /// The request could not be read safely (not a regular file, too large,
    /// writable by others, not a request), or its id does not match its file.
    #[error("{reason}")]
    Unreadable {
        /// What is wrong with it.
        reason: String,
    },
    /// The request expired before the engine took it.
    #[error("the request expired at {at}")]
    Expired {
        /// When it expired.
        at: Timestamp,
    },
    /// The rollout moved since the sender saw it.
    #[error("{operation} refused: the rollout is at revision {revision} now, not revision {seen} as seen; nothing changed")]
    Stale {
        /// The operation.
        operation: String,
        /// The revision the sender saw.
        seen: u64,
        /// The revision now.
        revision: u64,
    },
    /// The rollout's state refused the operation (an [`OperationError`]).
    #[error("{message}")]
    Operation {
        /// The state's refusal.
        message: String,
    },
    /// A safe deploy would not be safe now; one line per reason.
    #[error("deploy refused:{}", reasons.iter().map(|r| format!("\n  {r}")).collect::<String>())]
    NotSafe {
        /// Every reason.
        reasons: Vec<String>,
        /// Whether a check breached (the rollout is not healthy).
        unhealthy: bool,
    },
    /// The change was decided on a revision that is no longer current.
    #[error("a change decided on revision {decided_on} was not applied: the rollout is at revision {current} now; nothing changed")]
    Conflict {
        /// The revision the change was decided on.
        decided_on: u64,
        /// The revision the state is at.
        current: u64,
    },
    /// Any other failure while applying it (the engine's files, bad input).
    #[error("{message}")]
    Failed {
        /// What went wrong.
        message: String,
        /// Whether it is about the rollout's health (exit 1) rather than the
        /// request (exit 2).
        #[serde(default)]
        unhealthy: bool,
    },
}

impl Refusal {
    /// Whether the refusal is about the rollout's health (exit 1) rather
    /// than the request (exit 2).
    #[must_use]
    pub fn is_unhealthy(&self) -> bool {
        match self {
            Refusal::NotSafe { unhealthy, .. } | Refusal::Failed { unhealthy, .. } => *unhealthy,
            _ => false,
        }
    }
}

impl From<&ControllerError> for Refusal {
    fn from(error: &ControllerError) -> Self {
        match error {
            ControllerError::Refused(OperationError::Stale {
                operation,
                seen,
                revision,
            }) => Refusal::Stale {
                operation: (*operation).to_owned(),
                seen: *seen,
                revision: *revision,
            },
            ControllerError::Refused(e) => Refusal::Operation {
                message: e.to_string(),
            },
            ControllerError::NotSafe { reasons, unhealthy } => Refusal::NotSafe {
                reasons: reasons.clone(),
                unhealthy: *unhealthy,
            },
            ControllerError::Conflict {
                decided_on,
                current,
            } => Refusal::Conflict {
                decided_on: *decided_on,
                current: *current,
            },
            ControllerError::Remote(refusal) => refusal.clone(),
            other => Refusal::Failed {
                message: other.to_string(),
                unhealthy: other.is_unhealthy(),
            },
        }
    }
}

/// An answer's refusal as an engine of an earlier version wrote it (one
/// line of text and a bit), or typed.
#[derive(Deserialize)]
#[serde(untagged)]
pub(crate) enum RefusalOnDisk {
    Typed(Refusal),
    Text {
        message: String,
        #[serde(default)]
        unhealthy: bool,
    },
}

impl From<RefusalOnDisk> for Refusal {
    fn from(read: RefusalOnDisk) -> Self {
        match read {
            RefusalOnDisk::Typed(refusal) => refusal,
            RefusalOnDisk::Text { message, unhealthy } => Refusal::Failed { message, unhealthy },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollout::store::requests::Answer;

    fn through_the_folder(refusal: Refusal) -> Refusal {
        let answer = Answer {
            id: "a".into(),
            outcome: Err(refusal),
        };
        let text = serde_json::to_string(&answer).unwrap();
        let read: Answer = serde_json::from_str(&text).unwrap();
        read.outcome.unwrap_err()
    }

    #[test]
    fn refusals_cross_the_request_folder_typed_and_say_what_a_direct_refusal_says() {
        let stale = OperationError::Stale {
            operation: "pause",
            seen: 4,
            revision: 5,
        };
        let direct = ControllerError::Refused(stale);
        let refusal = through_the_folder(Refusal::from(&direct));
        assert_eq!(
            refusal,
            Refusal::Stale {
                operation: "pause".into(),
                seen: 4,
                revision: 5
            }
        );
        assert_eq!(refusal.to_string(), direct.to_string());
        let not_safe = ControllerError::NotSafe {
            reasons: vec!["error rate 2% > 0.5%".into()],
            unhealthy: true,
        };
        let refusal = through_the_folder(Refusal::from(&not_safe));
        assert!(refusal.is_unhealthy());
        assert!(ControllerError::Remote(refusal.clone()).is_unhealthy());
        assert_eq!(refusal.to_string(), not_safe.to_string());
        let conflict = ControllerError::Conflict {
            decided_on: 2,
            current: 3,
        };
        let refusal = through_the_folder(Refusal::from(&conflict));
        assert_eq!(
            refusal,
            Refusal::Conflict {
                decided_on: 2,
                current: 3
            }
        );
        assert_eq!(refusal.to_string(), conflict.to_string());
        let at = Timestamp::from_unix_millis(1_700_000_000_000);
        assert_eq!(
            through_the_folder(Refusal::Expired { at }),
            Refusal::Expired { at }
        );
    }

    #[test]
    fn an_answer_an_earlier_engine_wrote_still_reads() {
        let text =
            r#"{"id":"a","outcome":{"Err":{"message":"deploy refused: breach","unhealthy":true}}}"#;
        let read: Answer = serde_json::from_str(text).unwrap();
        let refusal = read.outcome.unwrap_err();
        assert_eq!(refusal.to_string(), "deploy refused: breach");
        assert!(refusal.is_unhealthy());
    }
}
