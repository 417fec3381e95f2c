//! The files an engine owns beside its state file, and the flags file it
//! writes through a [`FlagsWriter`].

use std::path::{Path, PathBuf};

use crate::rollout::{FlagsFile, StagedFile};
use crate::Percentage;

use super::ControllerError;

/// The files of one rollout, named after its state file `S`: the lock
/// `S.lock`, the audit log `S.audit.jsonl` and the request folder
/// `S.requests/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControllerFiles {
    /// The state file.
    pub state: PathBuf,
    /// The engine lock.
    pub lock: PathBuf,
    /// The audit log (JSON lines).
    pub audit: PathBuf,
    /// The operator request folder.
    pub requests: PathBuf,
}

impl ControllerFiles {
    /// The files beside `state`.
    #[must_use]
    pub fn beside(state: impl Into<PathBuf>) -> ControllerFiles {
        let state = state.into();
        let with = |suffix: &str| {
            let mut name = state
                .file_name()
                .map_or_else(|| "rollout-state".into(), |n| n.to_os_string());
            name.push(suffix);
            state.with_file_name(name)
        };
        ControllerFiles {
            lock: with(".lock"),
            audit: with(".audit.jsonl"),
            requests: with(".requests"),
            state,
        }
    }
}

/// Where the engine publishes a rollout's percentage: in two steps, so a
/// change is staged (and can fail) before the state commits, and published
/// after.
///
/// [`FileFlags`] is the implementation for a flags file on disk; tests
/// inject writers that fail.
pub trait FlagsWriter: Send + std::fmt::Debug {
    /// For messages: the file or place written.
    fn describe(&self) -> String;
    /// The percentage published now.
    fn percentage(&self, rollout: &str) -> Result<Percentage, ControllerError>;
    /// Prepares publishing `percentage`, invisibly. `Ok(false)` when it is
    /// already published.
    fn prepare(&mut self, rollout: &str, percentage: Percentage) -> Result<bool, ControllerError>;
    /// Publishes what [`prepare`](Self::prepare) staged.
    fn publish(&mut self) -> Result<(), ControllerError>;
    /// Drops what was staged.
    fn discard(&mut self);
}

/// A [`FlagsWriter`] for a flags file: only the percentage's bytes change;
/// mode, owner and symlinks are kept; the file is replaced atomically beside
/// its real target.
#[derive(Debug)]
pub struct FileFlags {
    file: FlagsFile,
    staged: Option<StagedFile>,
}

impl FileFlags {
    /// A writer for the flags file at `path`.
    #[must_use]
    pub fn new(path: &Path) -> FileFlags {
        FileFlags {
            file: FlagsFile::new(path),
            staged: None,
        }
    }
}

impl FlagsWriter for FileFlags {
    fn describe(&self) -> String {
        self.file.path().display().to_string()
    }

    fn percentage(&self, rollout: &str) -> Result<Percentage, ControllerError> {
        Ok(self.file.percentage(rollout)?)
    }

    fn prepare(&mut self, rollout: &str, percentage: Percentage) -> Result<bool, ControllerError> {
        self.staged = self.file.stage(rollout, percentage)?;
        Ok(self.staged.is_some())
    }

    fn publish(&mut self) -> Result<(), ControllerError> {
        match self.staged.take() {
            Some(staged) => Ok(staged.commit()?),
            None => Ok(()),
        }
    }

    fn discard(&mut self) {
        self.staged = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_named_after_the_state_file() {
        let f = ControllerFiles::beside("ops/rollout-state.json");
        assert_eq!(f.lock, Path::new("ops/rollout-state.json.lock"));
        assert_eq!(f.audit, Path::new("ops/rollout-state.json.audit.jsonl"));
        assert_eq!(f.requests, Path::new("ops/rollout-state.json.requests"));
    }
}
