//! The engine lock: one engine per state file, and a lock file that says who
//! holds it.
//!
//! The lock is an advisory `flock` on `<state>.lock`, held for the life of a
//! [`EngineLock`]; the kernel releases it when the process dies, however it
//! dies. The file's contents name the holder (pid, host, since, command) so a
//! refused command can say who is in the way.

// `File::try_lock` is stable since 1.89, which the `rollout` feature needs
// (see Cargo.toml); the crate's rust-version (1.87) is the evaluator's.
#![allow(clippy::incompatible_msrv)]

use crate::FileError;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::rollout::controller::ControllerError;
use crate::rollout::model::identity::LockHolder;

/// How long [`EngineLock::acquire`] retries a lock held by a process that
/// does not say who it is (a probe, or an engine between taking the lock
/// and writing its name).
const PROBE_GRACE: std::time::Duration = std::time::Duration::from_millis(500);

/// An exclusive hold on a state file's engine lock; released on drop.
#[derive(Debug)]
pub struct EngineLock {
    file: File,
    path: PathBuf,
}

impl EngineLock {
    /// Takes the lock at `path` without waiting, and writes `holder` into it.
    ///
    /// # Errors
    ///
    /// [`ControllerError::Locked`] naming the holder when another engine
    /// holds it; [`ControllerError::Io`] when the file cannot be opened.
    pub fn acquire(path: &Path, holder: &LockHolder) -> Result<EngineLock, ControllerError> {
        let io = |action: &'static str| {
            let path = path.to_path_buf();
            move |source| ControllerError::Io(FileError::new(action, path, source))
        };
        let file = match OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(path)
        {
            Ok(file) => file,
            // A second operator may not write the lock: whether someone
            // holds it is all they need to know (their request goes to the
            // running engine then).
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                if let Some(refusal) = Self::refusal(path) {
                    return Err(refusal);
                }
                return Err(io("cannot open the lock")(e));
            }
            Err(e) => return Err(io("cannot open the lock")(e)),
        };
        // A probe (`status`, `is_held`) holds the lock for an instant and
        // writes no holder: a lock held by nobody who says so is retried
        // for a moment instead of refusing a starting engine.
        let started = std::time::Instant::now();
        let mut file = file;
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(std::fs::TryLockError::WouldBlock) => {
                    let named = read_holder(&mut file);
                    if named.is_some() || started.elapsed() > PROBE_GRACE {
                        return Err(ControllerError::Locked {
                            lock: path.to_path_buf(),
                            holder: named,
                        });
                    }
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(io("cannot lock")(e)),
            }
        }
        // Best effort: a full disk must never block an emergency rollback
        // for want of the informational holder text.
        if let Ok(mut text) = serde_json::to_vec(holder) {
            text.push(b'\n');
            let _ = file
                .set_len(0)
                .and_then(|()| file.seek(SeekFrom::Start(0)))
                .and_then(|_| file.write_all(&text));
        }
        Ok(EngineLock {
            file,
            path: path.to_path_buf(),
        })
    }

    /// `Locked` when some engine holds the lock at `path` (opened read-only).
    fn refusal(path: &Path) -> Option<ControllerError> {
        Self::is_held(path).then(|| ControllerError::Locked {
            lock: path.to_path_buf(),
            holder: Self::holder(path),
        })
    }

    /// The lock file.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether some process holds the lock at `path` now.
    #[must_use]
    pub fn is_held(path: &Path) -> bool {
        let Ok(file) = OpenOptions::new().read(true).open(path) else {
            return false;
        };
        matches!(file.try_lock(), Err(std::fs::TryLockError::WouldBlock))
    }

    /// Who holds the lock at `path` now, if anyone does and the lock file
    /// says who.
    #[must_use]
    pub fn holder(path: &Path) -> Option<LockHolder> {
        let mut file = OpenOptions::new().read(true).open(path).ok()?;
        match file.try_lock() {
            // Nobody holds it (and we let go at once).
            Ok(()) => None,
            Err(_) => read_holder(&mut file),
        }
    }
}

impl Drop for EngineLock {
    fn drop(&mut self) {
        // Say nobody holds it; the kernel drops the lock with the file.
        let _ = self.file.set_len(0);
    }
}

fn read_holder(file: &mut File) -> Option<LockHolder> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.take(4096).read_to_string(&mut text).ok()?;
    serde_json::from_str(text.trim()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollout::controller::host_name;
    use crate::rollout::Timestamp;

    fn holder(command: &str) -> LockHolder {
        LockHolder {
            pid: std::process::id(),
            host: host_name(),
            since: Timestamp::from_unix_millis(1_761_210_000_000),
            command: command.to_owned(),
        }
    }

    #[test]
    fn a_second_engine_is_refused_and_told_who_holds_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json.lock");
        let first = EngineLock::acquire(&path, &holder("run")).unwrap();
        assert_eq!(EngineLock::holder(&path), Some(holder("run")));
        match EngineLock::acquire(&path, &holder("promote")) {
            Err(ControllerError::Locked {
                holder: Some(h), ..
            }) => assert_eq!(h.command, "run"),
            other => panic!("{other:?}"),
        }
        drop(first);
        assert_eq!(EngineLock::holder(&path), None);
        let again = EngineLock::acquire(&path, &holder("promote")).unwrap();
        assert_eq!(EngineLock::holder(again.path()).unwrap().command, "promote");
    }
}
