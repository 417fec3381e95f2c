//! [`Reloader`]: follow a config file on disk, keep the last good snapshot.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, SystemTime};

use parking_lot::Mutex;
use xxhash_rust::xxh3::xxh3_64;

use crate::config::{self, ConfigError};
use crate::snapshot::Snapshot;
use crate::store::FlagStore;

/// How often the file is checked unless told otherwise.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);
/// Writes within this long of a read may share its modification time.
const RACY_WINDOW: Duration = Duration::from_secs(2);

/// Counts and the last error of a [`Reloader`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ReloadStats {
    /// Valid changes installed into the store (the first load included).
    pub reloads: u64,
    /// Changes refused (unreadable, not JSON, invalid); the store kept its snapshot.
    pub rejections: u64,
    /// The error of the last refused change, cleared by the next good one.
    pub last_error: Option<Arc<ConfigError>>,
    /// When the last good change was installed.
    pub last_reload: Option<SystemTime>,
}

/// Polls a config file and installs each valid change into a [`FlagStore`].
///
/// It follows the path, not the open file, so atomic renames and symlink
/// swaps (Kubernetes ConfigMap volumes) are seen. A change that does not parse
/// or validate is counted and kept as [`ReloadStats::last_error`]; the store
/// keeps its last good snapshot. The polling thread stops when the `Reloader`
/// is dropped.
///
/// ```
/// use std::time::Duration;
/// use genesis_flags::{FlagStore, Reloader};
///
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("flags.json");
/// std::fs::write(&path, r#"{"version":1,"flags":{"banner":{}}}"#)?;
///
/// let store = FlagStore::from_file(&path)?;
/// let reloader = Reloader::builder(store.clone(), &path)
///     .interval(Duration::from_millis(100))
///     .spawn()?;
///
/// std::fs::write(&path, "{ not json")?;
/// reloader.check_now();
/// assert!(store.is_enabled("banner", "u"));            // last good snapshot kept
/// assert!(reloader.stats().last_error.is_some());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Reloader {
    watcher: Arc<Watcher>,
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// Options for a [`Reloader`].
#[derive(Debug)]
#[must_use]
pub struct ReloaderBuilder {
    store: FlagStore,
    path: PathBuf,
    interval: Duration,
}

impl ReloaderBuilder {
    /// How often to check the file (default 1 s).
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// Checks the file once now (so the store reflects it when this returns,
    /// if it is valid), then starts the polling thread.
    pub fn spawn(self) -> std::io::Result<Reloader> {
        let watcher = Arc::new(Watcher {
            store: self.store,
            path: self.path,
            state: Mutex::new(WatchState::default()),
        });
        watcher.check();
        let (stop, stopped) = mpsc::channel::<()>();
        let polling = Arc::clone(&watcher);
        let interval = self.interval;
        let thread = thread::Builder::new()
            .name("genesis-flags-reload".into())
            .spawn(move || {
                // Any message, or the sender dropping, stops the loop.
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(interval) {
                    polling.check();
                }
            })?;
        Ok(Reloader {
            watcher,
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Reloader {
    /// Options for a reloader of `path` into `store`.
    pub fn builder(store: FlagStore, path: impl AsRef<Path>) -> ReloaderBuilder {
        ReloaderBuilder {
            store,
            path: path.as_ref().to_path_buf(),
            interval: DEFAULT_INTERVAL,
        }
    }

    /// A reloader with the default 1 s interval.
    pub fn spawn(store: FlagStore, path: impl AsRef<Path>) -> std::io::Result<Self> {
        Self::builder(store, path).spawn()
    }

    /// The file being watched.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.watcher.path
    }

    /// Counts and the last error.
    #[must_use]
    pub fn stats(&self) -> ReloadStats {
        self.watcher.state.lock().stats.clone()
    }

    /// Checks the file now instead of waiting for the next poll. Returns
    /// `true` when a change was installed.
    pub fn check_now(&self) -> bool {
        self.watcher.check() == Outcome::Installed
    }
}

impl Drop for Reloader {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            // The thread only polls; a panic there has nothing to hand back.
            let _ = thread.join();
        }
    }
}

#[derive(Debug)]
struct Watcher {
    store: FlagStore,
    path: PathBuf,
    state: Mutex<WatchState>,
}

#[derive(Debug, Default)]
struct WatchState {
    stats: ReloadStats,
    /// What the file looked like when last read, and when that was.
    seen: Option<(Fingerprint, SystemTime)>,
    /// Hash of the content last acted upon (installed or refused).
    content: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Fingerprint {
    Present {
        len: u64,
        modified: Option<SystemTime>,
        inode: u64,
    },
    Unreadable(String),
}

#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Unchanged,
    Installed,
    Refused,
}

impl Fingerprint {
    fn of(path: &Path) -> Self {
        match fs::metadata(path) {
            Ok(meta) => Fingerprint::Present {
                len: meta.len(),
                modified: meta.modified().ok(),
                inode: inode(&meta),
            },
            Err(e) => Fingerprint::Unreadable(e.kind().to_string()),
        }
    }
}

#[cfg(unix)]
fn inode(meta: &fs::Metadata) -> u64 {
    use std::os::unix::fs::MetadataExt;
    meta.ino()
}

#[cfg(not(unix))]
fn inode(_meta: &fs::Metadata) -> u64 {
    0
}

impl Watcher {
    fn check(&self) -> Outcome {
        let mut state = self.state.lock();
        let fingerprint = Fingerprint::of(&self.path);
        if let Some((seen, read_at)) = &state.seen {
            let settled = match &fingerprint {
                Fingerprint::Present {
                    modified: Some(m), ..
                } => read_at.duration_since(*m).is_ok_and(|d| d > RACY_WINDOW),
                _ => true,
            };
            if *seen == fingerprint && settled {
                return Outcome::Unchanged;
            }
        }
        let read_at = SystemTime::now();
        state.seen = Some((fingerprint, read_at));
        let result = config::read_file(&self.path);
        let hash = match &result {
            Ok(text) => xxh3_64(text.as_bytes()),
            // Hash the error text, so one persistent failure counts once.
            Err(e) => xxh3_64(e.to_string().as_bytes()) ^ 1,
        };
        if state.content == Some(hash) {
            return Outcome::Unchanged;
        }
        state.content = Some(hash);
        let parsed = result
            .and_then(|text| Snapshot::from_json(&text).map_err(|e| e.in_file(self.path.clone())));
        match parsed {
            Ok(snapshot) => {
                self.store.replace(snapshot);
                state.stats.reloads += 1;
                state.stats.last_error = None;
                state.stats.last_reload = Some(SystemTime::now());
                Outcome::Installed
            }
            Err(e) => {
                state.stats.rejections += 1;
                state.stats.last_error = Some(Arc::new(e));
                Outcome::Refused
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_good_and_bad_changes_once_each() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.json");
        fs::write(&path, r#"{"version":1,"flags":{"a":{}}}"#).unwrap();
        let store = FlagStore::from_json(r#"{"version":1}"#).unwrap();
        let reloader = Reloader::builder(store.clone(), &path)
            .interval(Duration::from_secs(3600))
            .spawn()
            .unwrap();
        assert!(store.is_enabled("a", "u"));
        assert_eq!(reloader.stats().reloads, 1);

        fs::write(&path, r#"{"version":1,"flags":{"a":{"percentage":150}}}"#).unwrap();
        assert!(!reloader.check_now());
        assert!(!reloader.check_now());
        let stats = reloader.stats();
        assert_eq!((stats.reloads, stats.rejections), (1, 1));
        assert!(stats
            .last_error
            .unwrap()
            .to_string()
            .contains("flags.a.percentage"));
        assert!(store.is_enabled("a", "u"));

        fs::write(&path, r#"{"version":1,"flags":{"a":{"enabled":false}}}"#).unwrap();
        assert!(reloader.check_now());
        assert!(!store.is_enabled("a", "u"));
        assert!(reloader.stats().last_error.is_none());
    }
}
