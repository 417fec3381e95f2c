//! Why a state file, the audit log or an atomic write failed: the store's one
//! error type, with the file it is about.

use std::io;
use std::path::{Path, PathBuf};

/// Why a state file could not be saved or loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// Reading, writing, syncing or renaming failed.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// The file is not a rollout state (truncated, corrupt, wrong shape).
    #[error("rollout state {} is corrupt: {message}{}; it was not changed (restore it from a backup or the audit log)", path.display(), at_position(*line, *column))]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// 1-based line (0 when the parser could not place the problem).
        line: usize,
        /// 1-based column.
        column: usize,
        /// What the parser said.
        message: String,
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
            StateError::Corrupt {
                line,
                column,
                message,
                ..
            } => StateError::Corrupt {
                path: file.to_path_buf(),
                line,
                column,
                message,
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

/// ` at line L column C`, or nothing when the position is unknown (0).
fn at_position(line: usize, column: usize) -> String {
    if line == 0 {
        String::new()
    } else {
        format!(" at line {line} column {column}")
    }
}
