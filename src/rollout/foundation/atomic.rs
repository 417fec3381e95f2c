//! Atomic file writes in two phases: [`StagedFile::stage`] writes and syncs
//! a temporary file beside the target (nothing visible changes), and
//! [`StagedFile::commit`] renames it over the target and syncs the folder.
//! A crash at any point leaves the old file or the new one, never a mix; a
//! killed writer may leave a temporary file, which [`sweep_temp_files`]
//! removes.

use crate::FileError;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::state_error::StateError;
use crate::failpoint::failpoint;

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// The infix between a target's name and the writer's id in temp names.
const TEMP_INFIX: &str = ".tmp-";

/// A file written beside its target and fsynced, not yet visible.
///
/// Dropping it without [`commit`](Self::commit) removes the temporary file.
///
/// ```
/// use genesis_flags::rollout::files::StagedFile;
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("flags.json");
/// std::fs::write(&path, "old")?;
/// let staged = StagedFile::stage(&path, b"new", None)?;
/// assert_eq!(std::fs::read_to_string(&path)?, "old");
/// staged.commit()?;
/// assert_eq!(std::fs::read_to_string(&path)?, "new");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct StagedFile {
    temp: PathBuf,
    target: PathBuf,
    dir: PathBuf,
    /// Set once the temp has been renamed away (nothing left to remove).
    done: bool,
}

fn io_error<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StateError + 'a {
    move |source| StateError::Io(FileError::new(action, path.to_path_buf(), source))
}

fn folder_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn temp_prefix(path: &Path) -> String {
    let name = path
        .file_name()
        .map_or_else(|| "state".into(), |n| n.to_string_lossy().into_owned());
    format!(".{name}{TEMP_INFIX}")
}

impl StagedFile {
    /// Writes `bytes` to a new temp file `.{name}.tmp-{pid}-{n}` in the
    /// target's folder and fsyncs it.
    ///
    /// When `like` is `Some(metadata)`, the temp gets that file's permission
    /// bits and (on unix) its owner and group, so the rename keeps them. The
    /// owner is changed only when it differs; when that is not permitted (not
    /// root), this fails rather than silently changing the file's owner.
    ///
    /// With `like`, the replacement also never shares the old file's size
    /// *and* modification second: web servers derive their validators from
    /// those two (nginx's `ETag` and `Last-Modified`), so a same-size
    /// rewrite within one second (5%, then a rollback to 0%) would be
    /// answered `304 Not Modified` to every conditional poll. Such a
    /// replacement's modification time is set one second past the old one's.
    /// On any error nothing visible has changed and the temp is removed.
    ///
    /// # Errors
    ///
    /// `StateError::Io` when the temporary file cannot be created, written,
    /// given the target's mode or synced (its owner only when that is
    /// permitted).
    pub fn stage(
        target: &Path,
        bytes: &[u8],
        like: Option<&fs::Metadata>,
    ) -> Result<StagedFile, StateError> {
        let dir = folder_of(target);
        let temp = dir.join(format!(
            "{}{}-{}",
            temp_prefix(target),
            std::process::id(),
            TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)
            .map_err(io_error(
                "cannot create a temporary file in the folder",
                &dir,
            ))?;
        // From here on, dropping `staged` removes the temp.
        let staged = StagedFile {
            temp,
            target: target.to_path_buf(),
            dir,
            done: false,
        };
        staged.fill(file, bytes, like)?;
        Ok(staged)
    }

    fn fill(
        &self,
        mut file: File,
        bytes: &[u8],
        like: Option<&fs::Metadata>,
    ) -> Result<(), StateError> {
        let target = self.target.as_path();
        file.write_all(bytes)
            .map_err(io_error("cannot write the new content of", target))?;
        failpoint("atomic.after_write");
        if let Some(like) = like {
            // Owner first: changing it may clear set-id bits that the mode restores.
            #[cfg(unix)]
            copy_owner(&file, like).map_err(io_error(
                "cannot give the new file the owner and group of",
                target,
            ))?;
            file.set_permissions(like.permissions()).map_err(io_error(
                "cannot give the new file the permissions of",
                target,
            ))?;
            distinct_validators(&file, like, bytes.len()).map_err(io_error(
                "cannot set the modification time of the new content of",
                target,
            ))?;
        }
        file.sync_all()
            .map_err(io_error("cannot sync the new content of", target))
    }

    /// The file this will replace.
    #[must_use]
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Renames the temp over the target and fsyncs the folder.
    ///
    /// # Errors
    ///
    /// `StateError::Io` when the rename or the folder's fsync fails.
    pub fn commit(mut self) -> Result<(), StateError> {
        failpoint("atomic.after_sync");
        fs::rename(&self.temp, &self.target).map_err(io_error("cannot replace", &self.target))?;
        self.done = true;
        failpoint("atomic.after_rename");
        sync_dir(&self.dir).map_err(io_error("cannot sync the folder of", &self.target))
    }
}

/// Whole seconds since the epoch (0 before it).
fn epoch_seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Moves `file`'s modification time past `like`'s second when the two would
/// otherwise share size and modification second (see [`StagedFile::stage`]).
fn distinct_validators(file: &File, like: &fs::Metadata, len: usize) -> io::Result<()> {
    if u64::try_from(len).ok() != Some(like.len()) {
        return Ok(());
    }
    let (old, new) = match (like.modified(), file.metadata()?.modified()) {
        (Ok(old), Ok(new)) => (epoch_seconds(old), epoch_seconds(new)),
        // A platform without modification times has no such validators.
        _ => return Ok(()),
    };
    if new > old {
        return Ok(());
    }
    file.set_modified(UNIX_EPOCH + Duration::from_secs(old.saturating_add(1)))
}

impl Drop for StagedFile {
    fn drop(&mut self) {
        if !self.done {
            let _ = fs::remove_file(&self.temp);
        }
    }
}

#[cfg(unix)]
fn copy_owner(file: &File, like: &fs::Metadata) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let now = file.metadata()?;
    let uid = (now.uid() != like.uid()).then(|| like.uid());
    let gid = (now.gid() != like.gid()).then(|| like.gid());
    if uid.is_none() && gid.is_none() {
        return Ok(());
    }
    std::os::unix::fs::fchown(file, uid, gid)
}

/// Writes `bytes` to `path` so that a crash leaves either the old file or
/// the new one, never a mix: temp file in the same folder, fsync, rename over
/// `path`, fsync of the folder ([`StagedFile::stage`] then
/// [`StagedFile::commit`]).
///
/// # Errors
///
/// `StateError::Io` when staging or committing fails; the file at `path` is
/// then the old one.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), StateError> {
    StagedFile::stage(path, bytes, None)?.commit()
}

/// Removes the temp files `.{name}.tmp-{pid}-{n}` left beside `path` by
/// killed writers and returns what it removed. `path` itself and any other
/// file are never touched.
///
/// The caller must hold the lock that serialises writers of `path`: a temp
/// being staged by a live writer looks the same as a leftover.
///
/// # Errors
///
/// `StateError::Io` when the folder cannot be read or a leftover cannot be
/// removed.
pub fn sweep_temp_files(path: &Path) -> Result<Vec<PathBuf>, StateError> {
    let dir = folder_of(path);
    let prefix = temp_prefix(path);
    let entries = fs::read_dir(&dir).map_err(io_error("cannot list the folder", &dir))?;
    let mut removed = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io_error("cannot list the folder", &dir))?;
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(&prefix)) else {
            continue;
        };
        if !is_writer_suffix(rest) {
            continue;
        }
        let file_type = entry
            .file_type()
            .map_err(io_error("cannot inspect", &entry.path()))?;
        if !file_type.is_file() {
            continue;
        }
        let leftover = entry.path();
        match fs::remove_file(&leftover) {
            Ok(()) => removed.push(leftover),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_error("cannot remove the leftover", &leftover)(e)),
        }
    }
    removed.sort();
    Ok(removed)
}

/// `{pid}-{n}`, both decimal.
fn is_writer_suffix(rest: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    rest.split_once('-')
        .is_some_and(|(pid, n)| digits(pid) && digits(n))
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn staged_is_invisible_until_commit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.json");
        fs::write(&path, "old").unwrap();
        let staged = StagedFile::stage(&path, b"new", None).unwrap();
        assert_eq!(staged.target(), path);
        assert_eq!(fs::read_to_string(&path).unwrap(), "old");
        assert_eq!(names(dir.path()).len(), 2);
        staged.commit().unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "new");
        assert_eq!(names(dir.path()), ["f.json"]);
    }

    #[test]
    fn a_same_size_replacement_never_shares_the_modification_second() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.json");
        fs::write(&path, "5").unwrap();
        let old = fs::metadata(&path).unwrap();
        for (bytes, bumped) in [(&b"0"[..], true), (&b"100"[..], false)] {
            let staged = StagedFile::stage(&path, bytes, Some(&old)).unwrap();
            staged.commit().unwrap();
            let new = fs::metadata(&path).unwrap();
            let (old_s, new_s) = (
                epoch_seconds(old.modified().unwrap()),
                epoch_seconds(new.modified().unwrap()),
            );
            if bumped {
                assert!(new_s > old_s, "{old_s} -> {new_s}");
            } else {
                // A different size is a different validator: the time is
                // left as written (within the same second or later).
                assert!(new_s <= epoch_seconds(SystemTime::now()));
            }
            fs::write(&path, "5").unwrap();
        }
    }

    #[test]
    fn dropping_a_staged_file_removes_the_temp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.json");
        fs::write(&path, "old").unwrap();
        drop(StagedFile::stage(&path, b"new", None).unwrap());
        assert_eq!(names(dir.path()), ["f.json"]);
        assert_eq!(fs::read_to_string(&path).unwrap(), "old");
    }

    #[test]
    fn write_atomically_creates_and_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.json");
        write_atomically(&path, b"one").unwrap();
        write_atomically(&path, b"two").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "two");
        assert_eq!(names(dir.path()), ["f.json"]);
    }

    #[test]
    fn a_missing_folder_is_named_in_the_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nowhere").join("f.json");
        let err = write_atomically(&path, b"x").unwrap_err().to_string();
        assert!(
            err.contains("cannot create a temporary file in the folder") && err.contains("nowhere"),
            "{err}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn like_copies_the_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.json");
        fs::write(&path, "old").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        let meta = fs::metadata(&path).unwrap();
        StagedFile::stage(&path, b"new", Some(&meta))
            .unwrap()
            .commit()
            .unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o640);
    }

    #[test]
    fn sweep_removes_only_writer_temps_of_that_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let keep = [
            "state.json",
            "other.json",
            ".other.json.tmp-1-2",
            ".state.json.tmp-x-1",
            ".state.json.tmp-12",
            ".state.json.tmp-1-2-3",
            "state.json.tmp-1-2",
        ];
        for name in keep {
            fs::write(dir.path().join(name), "x").unwrap();
        }
        fs::create_dir(dir.path().join(".state.json.tmp-5-5")).unwrap();
        let leftovers = [".state.json.tmp-123-0", ".state.json.tmp-7-41"];
        for name in leftovers {
            fs::write(dir.path().join(name), "partial").unwrap();
        }
        let removed = sweep_temp_files(&path).unwrap();
        let removed: Vec<_> = removed
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(removed, leftovers);
        let mut expected: Vec<&str> = keep.to_vec();
        expected.push(".state.json.tmp-5-5");
        expected.sort_unstable();
        assert_eq!(names(dir.path()), expected);
        assert!(sweep_temp_files(&path).unwrap().is_empty());
    }
}
