//! Reading the files the controller is given, safely: only regular files
//! (never a FIFO, a device or a socket, which could block or never end),
//! opened without blocking, and bounded before they are read.
//!
//! Every file the controller reads goes through [`read_regular`]: plans,
//! gate and notification files, scenarios, the state, the flags file and
//! operator requests (which also refuse symlinks, see [`Follow`]).

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::path::Path;

/// The largest plan, gate, notification, scenario, state or flags file the
/// controller reads (16 MiB, the flags config's own limit).
pub const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// Whether a symlink at the path itself is followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Follow {
    /// Follow it (configuration files: Kubernetes mounts them as symlinks).
    Symlinks,
    /// Refuse it (operator requests: a link could point anywhere).
    NoSymlinks,
}

fn refused(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

/// Opens `path` for reading without blocking and checks it is a regular
/// file of at most `limit` bytes; returns it with its metadata.
///
/// # Errors
///
/// What the OS says, or `InvalidInput` with "not a regular file" or "larger
/// than N bytes".
pub fn open_regular(
    path: &Path,
    follow: Follow,
    limit: u64,
) -> io::Result<(File, std::fs::Metadata)> {
    let mut options = OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        let mut flags = libc::O_NONBLOCK | libc::O_NOCTTY;
        if follow == Follow::NoSymlinks {
            flags |= libc::O_NOFOLLOW;
        }
        options.custom_flags(flags);
    }
    let file = options.open(path).map_err(|e| {
        // O_NOFOLLOW on a symlink fails with ELOOP.
        #[cfg(unix)]
        if follow == Follow::NoSymlinks && e.raw_os_error() == Some(libc::ELOOP) {
            return refused("not a regular file (a symlink)".to_owned());
        }
        e
    })?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(refused("not a regular file".to_owned()));
    }
    if meta.len() > limit {
        return Err(refused(format!(
            "larger than {limit} bytes ({} bytes)",
            meta.len()
        )));
    }
    Ok((file, meta))
}

/// Reads the regular file at `path`, at most `limit` bytes (a file that
/// grows past the limit while it is read is refused too).
///
/// # Errors
///
/// As [`open_regular`], or a read error.
pub fn read_regular(path: &Path, follow: Follow, limit: u64) -> io::Result<Vec<u8>> {
    let (file, meta) = open_regular(path, follow, limit)?;
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(refused(format!("larger than {limit} bytes")));
    }
    Ok(bytes)
}

/// [`read_regular`] of a UTF-8 text file, following symlinks, at most
/// [`MAX_FILE_BYTES`].
///
/// # Errors
///
/// As [`read_regular`], or `InvalidData` when the file is not UTF-8.
pub fn read_text(path: &Path) -> io::Result<String> {
    let bytes = read_regular(path, Follow::Symlinks, MAX_FILE_BYTES)?;
    String::from_utf8(bytes)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not UTF-8 text"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regular_files_are_read_within_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.json");
        std::fs::write(&path, b"{}").unwrap();
        assert_eq!(read_text(&path).unwrap(), "{}");
        let err = read_regular(&path, Follow::Symlinks, 1).unwrap_err();
        assert!(err.to_string().contains("larger than 1 bytes"), "{err}");
    }

    #[cfg(unix)]
    #[test]
    fn devices_fifos_and_refused_symlinks_are_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let err = read_text(Path::new("/dev/zero")).unwrap_err();
        assert!(err.to_string().contains("not a regular file"), "{err}");
        let fifo = dir.path().join("fifo");
        assert!(std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success());
        let err = read_text(&fifo).unwrap_err();
        assert!(err.to_string().contains("not a regular file"), "{err}");
        let target = dir.path().join("target.json");
        std::fs::write(&target, b"{}").unwrap();
        let link = dir.path().join("link.json");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert_eq!(read_text(&link).unwrap(), "{}");
        let err = read_regular(&link, Follow::NoSymlinks, 10).unwrap_err();
        assert!(err.to_string().contains("symlink"), "{err}");
    }
}
