//! The files an engine owns beside its state file, and the flags file it
//! writes through a [`FlagsWriter`].

use crate::FileError;
use std::path::{Path, PathBuf};

use std::fs;

use crate::rollout::files::{
    set_rollout_percentage, write_atomically, FlagsFile, FlagsFileError, StagedFile,
};
use crate::rollout::foundation::read::{read_regular, read_text, Follow, MAX_FILE_BYTES};
use crate::Percentage;

use crate::rollout::controller::ControllerError;

/// The files of one rollout, named after its state file `S`: the lock
/// `S.lock`, the audit log `S.audit.jsonl`, the request folder
/// `S.requests/` and the last flags document the controller published,
/// `S.published-flags.json`.
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
    /// A copy of the last valid flags document the controller read or
    /// published: what it restores when someone leaves the flags file
    /// invalid (see [`FileFlags`]).
    pub published: PathBuf,
}

impl ControllerFiles {
    /// The flags file `state` publishes to, resolved (a state records it
    /// relative to its own folder when it lies under it).
    #[must_use]
    pub fn flags_of(&self, state: &crate::rollout::RolloutState) -> Option<PathBuf> {
        state
            .flags_file
            .as_deref()
            .map(|p| super::protocol::resolve_flags_path(&self.state, p))
    }

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
            published: with(".published-flags.json"),
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
    ///
    /// # Errors
    ///
    /// `ControllerError::Flags` when the file cannot be read or gives the
    /// rollout no percentage.
    fn percentage(&self, rollout: &str) -> Result<Percentage, ControllerError>;
    /// Prepares publishing `percentage`, invisibly. `Ok(false)` when it is
    /// already published.
    ///
    /// # Errors
    ///
    /// `ControllerError::Flags` when the file cannot be read, edited or staged.
    fn prepare(&mut self, rollout: &str, percentage: Percentage) -> Result<bool, ControllerError>;
    /// Publishes what [`prepare`](Self::prepare) staged.
    ///
    /// # Errors
    ///
    /// `ControllerError::Flags`/`Io` when the staged file cannot replace the
    /// published one.
    fn publish(&mut self) -> Result<(), ControllerError>;
    /// Drops what was staged.
    fn discard(&mut self);
    /// What the last [`publish`](Self::publish) did beyond the percentage
    /// (e.g. a broken file replaced), one line each; taken once.
    fn take_notes(&mut self) -> Vec<String> {
        Vec::new()
    }
}

/// A [`FlagsWriter`] for a flags file: only the percentage's bytes change;
/// mode, owner and symlinks are kept; the file is replaced atomically beside
/// its real target.
///
/// **A flags file someone else made invalid** (a typo, a half-saved edit)
/// never stops a change from reaching the fleet: with a
/// [`last_good`](Self::last_good) copy, the writer publishes the last valid
/// document it read or published, with the new percentage, and keeps the
/// broken file beside the real one as `<name>.rejected-<its mtime>` for the
/// person who made it. Services refuse an invalid document anyway (they keep
/// serving the old one), so the fleet would otherwise never move.
#[derive(Debug)]
pub struct FileFlags {
    file: FlagsFile,
    staged: Option<StagedFile>,
    last_good: Option<PathBuf>,
    /// The broken content to keep, and where, when publishing restores.
    rejected: Option<(PathBuf, Vec<u8>)>,
    notes: Vec<String>,
}

impl FileFlags {
    /// A writer for the flags file at `path`.
    #[must_use]
    pub fn new(path: &Path) -> FileFlags {
        FileFlags {
            file: FlagsFile::new(path),
            staged: None,
            last_good: None,
            rejected: None,
            notes: Vec::new(),
        }
    }

    /// Keeps a copy of the last valid document at `copy`, and restores it
    /// when the flags file is found invalid.
    #[must_use]
    pub fn last_good(mut self, copy: PathBuf) -> FileFlags {
        self.last_good = Some(copy);
        self
    }

    /// Copies the flags file to the last-good copy if it is a valid config
    /// (best effort: a failure only means an older copy is restored).
    pub fn remember(&self) {
        let Some(copy) = &self.last_good else {
            return;
        };
        let Ok(target) = self.file.target() else {
            return;
        };
        if self.file.snapshot().is_ok() {
            if let Ok(bytes) = read_regular(&target, Follow::Symlinks, MAX_FILE_BYTES) {
                // Written only when it changed: most opens write nothing.
                let same = read_regular(copy, Follow::Symlinks, MAX_FILE_BYTES)
                    .is_ok_and(|kept| kept == bytes);
                if !same {
                    let _ = write_atomically(copy, &bytes);
                }
            }
        }
    }

    /// Stages the last good document with `percentage`, keeping the broken
    /// file's content to put beside it.
    fn restore(
        &mut self,
        rollout: &str,
        percentage: Percentage,
        why: FlagsFileError,
    ) -> Result<bool, ControllerError> {
        let Some(copy) = self.last_good.clone() else {
            return Err(why.into());
        };
        let Ok(good) = read_text(&copy) else {
            return Err(why.into());
        };
        let Ok(text) = set_rollout_percentage(&good, rollout, percentage) else {
            return Err(why.into());
        };
        let target = self.file.target()?;
        let io = |action: &'static str, path: &Path| {
            let path = path.to_path_buf();
            move |source| ControllerError::Io(FileError::new(action, path, source))
        };
        let meta = fs::metadata(&target).map_err(io("cannot inspect", &target))?;
        let broken = read_regular(&target, Follow::Symlinks, MAX_FILE_BYTES)
            .map_err(io("cannot read", &target))?;
        let stamp = meta
            .modified()
            .ok()
            .and_then(|m| m.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs());
        let name = target
            .file_name()
            .map_or_else(|| "flags.json".into(), |n| n.to_string_lossy().into_owned());
        let mut keep = target.with_file_name(format!("{name}.rejected-{stamp}"));
        let mut n = 1;
        while keep.exists() {
            keep = target.with_file_name(format!("{name}.rejected-{stamp}-{n}"));
            n += 1;
        }
        self.staged = Some(
            StagedFile::stage(&target, text.as_bytes(), Some(&meta)).map_err(|source| {
                FlagsFileError::Write {
                    path: self.file.path().to_path_buf(),
                    source,
                }
            })?,
        );
        self.notes.push(format!(
            "{} was not a valid flag config ({why}); restored the last published document with {percentage}, the broken file is kept as {}",
            self.file.path().display(),
            keep.display()
        ));
        self.rejected = Some((keep, broken));
        Ok(true)
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
        self.rejected = None;
        self.notes.clear();
        match self.file.stage(rollout, percentage) {
            Ok(staged) => {
                self.staged = staged;
                Ok(self.staged.is_some())
            }
            Err(
                e @ (FlagsFileError::Invalid { .. }
                | FlagsFileError::NoRollout { .. }
                | FlagsFileError::EditInvalid { .. }
                | FlagsFileError::Edit { .. }),
            ) => self.restore(rollout, percentage, e),
            Err(e) => Err(e.into()),
        }
    }

    fn publish(&mut self) -> Result<(), ControllerError> {
        let Some(staged) = self.staged.take() else {
            return Ok(());
        };
        if let Some((keep, broken)) = &self.rejected {
            write_atomically(keep, broken)?;
        }
        staged.commit()?;
        self.rejected = None;
        self.remember();
        Ok(())
    }

    fn discard(&mut self) {
        self.staged = None;
        self.rejected = None;
        self.notes.clear();
    }

    fn take_notes(&mut self) -> Vec<String> {
        std::mem::take(&mut self.notes)
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
        assert_eq!(
            f.published,
            Path::new("ops/rollout-state.json.published-flags.json")
        );
    }
}
