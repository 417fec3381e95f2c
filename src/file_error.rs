//! [`FileError`]: an I/O failure on a file, with what was being done and
//! where; the one I/O error shape of every error type of the crate.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// An I/O failure on a file: what was being done (e.g. `cannot read plan`),
/// the file, and what the OS said.
///
/// ```
/// let e = genesis_flags::Snapshot::from_file("no/such/flags.json").unwrap_err();
/// assert!(e.to_string().starts_with("cannot read flag config no/such/flags.json: "));
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub struct FileError {
    /// What was being done, e.g. `cannot append to the audit log`.
    pub action: &'static str,
    /// The file.
    pub path: PathBuf,
    /// What the OS said.
    pub source: io::Error,
}

impl FileError {
    /// `action` failed on `path` with `source`.
    #[must_use]
    pub fn new(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        FileError {
            action,
            path: path.into(),
            source,
        }
    }

    /// The file.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The kind of the OS error.
    #[must_use]
    pub fn kind(&self) -> io::ErrorKind {
        self.source.kind()
    }
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.action,
            self.path.display(),
            self.source
        )
    }
}

impl std::error::Error for FileError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}
