//! Why a state file, the audit log or an atomic write failed: the store's one
//! error type, with the file it is about.

use crate::FileError;
use crate::JsonError;
use std::path::{Path, PathBuf};

/// Why a state file could not be saved or loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// Reading, writing, syncing or renaming failed.
    #[error(transparent)]
    Io(FileError),
    /// The file is not a rollout state (truncated, corrupt, wrong shape).
    #[error("rollout state {} is corrupt: {error}; it was not changed (restore it from a backup or the audit log)", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Where, and what the parser said.
        error: JsonError,
    },
    /// A schema this version does not read.
    #[error("rollout state {} has schema {found}; this version reads schema {expected}", path.display())]
    Schema {
        /// The file.
        path: PathBuf,
        /// The schema in the file.
        found: u64,
        /// The schema this version reads.
        expected: u32,
    },
    /// Well-formed but inconsistent (e.g. a stage the plan does not have).
    #[error("rollout state {} is inconsistent: {message}", path.display())]
    Inconsistent {
        /// The file.
        path: PathBuf,
        /// What does not add up.
        message: String,
    },
}

impl StateError {
    /// The same error, about `file`.
    pub(crate) fn at(self, file: &Path) -> Self {
        match self {
            StateError::Corrupt { error, .. } => StateError::Corrupt {
                path: file.to_path_buf(),
                error,
            },
            StateError::Schema {
                found, expected, ..
            } => StateError::Schema {
                path: file.to_path_buf(),
                found,
                expected,
            },
            StateError::Inconsistent { message, .. } => StateError::Inconsistent {
                path: file.to_path_buf(),
                message,
            },
            other => other,
        }
    }
}
