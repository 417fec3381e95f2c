//! The file source: follow a path on disk.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use parking_lot::Mutex;

use super::{content_hash, Outcome, ReloadError, ReloadStats, Reloader, Source, Tracker};
use crate::config;
use crate::store::FlagStore;

/// How often the file is checked unless told otherwise.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);
/// Writes within this long of a read may share its modification time.
const RACY_WINDOW: Duration = Duration::from_secs(2);

/// Options for a file [`Reloader`] ([`Reloader::builder`]).
#[derive(Debug)]
#[must_use]
pub struct ReloaderBuilder {
    store: FlagStore,
    path: PathBuf,
    interval: Duration,
}

impl ReloaderBuilder {
    pub(super) fn new(store: FlagStore, path: PathBuf) -> Self {
        ReloaderBuilder {
            store,
            path,
            interval: DEFAULT_INTERVAL,
        }
    }

    /// How often to check the file (default 1 s).
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// Checks the file once now (so the store reflects it when this returns,
    /// if it is valid), then starts the polling thread.
    ///
    /// # Errors
    ///
    /// The I/O error when the polling thread cannot be started.
    pub fn spawn(self) -> std::io::Result<Reloader> {
        let watcher = Arc::new(FileSource {
            path: self.path,
            interval: self.interval,
            state: Mutex::new(WatchState {
                tracker: Tracker::new(self.store),
                seen: None,
            }),
        });
        watcher.check();
        Reloader::start(watcher)
    }
}

/// It follows the path, not the open file, so atomic renames and symlink
/// swaps (Kubernetes ConfigMap volumes) are seen.
#[derive(Debug)]
struct FileSource {
    path: PathBuf,
    interval: Duration,
    state: Mutex<WatchState>,
}

#[derive(Debug)]
struct WatchState {
    tracker: Tracker,
    /// What the file looked like when last read, and when that was.
    seen: Option<(Fingerprint, SystemTime)>,
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

impl Source for FileSource {
    fn check(&self) -> Outcome {
        let mut state = self.state.lock();
        state.tracker.stats.polls += 1;
        let fingerprint = Fingerprint::of(&self.path);
        if let Some((seen, read_at)) = &state.seen {
            let settled = match &fingerprint {
                Fingerprint::Present {
                    modified: Some(m), ..
                } => read_at.duration_since(*m).is_ok_and(|d| d > RACY_WINDOW),
                _ => true,
            };
            if *seen == fingerprint && settled {
                if matches!(fingerprint, Fingerprint::Present { .. }) {
                    state.tracker.stats.last_success = Some(SystemTime::now());
                }
                return Outcome::Unchanged;
            }
        }
        let read_at = SystemTime::now();
        state.seen = Some((fingerprint, read_at));
        let result = config::read_file(&self.path);
        let hash = match &result {
            Ok(text) => {
                state.tracker.stats.last_success = Some(read_at);
                content_hash(text.as_bytes())
            }
            // Hash the error text, so one persistent failure counts once.
            Err(e) => content_hash(e.to_string().as_bytes()) ^ 1,
        };
        state.tracker.offer(hash, || {
            result
                .and_then(|text| {
                    super::parse_document(&text).map_err(|e| e.in_file(self.path.clone()))
                })
                .map_err(ReloadError::from)
        })
    }

    fn next_delay(&self) -> Duration {
        self.interval
    }

    fn stats(&self) -> ReloadStats {
        self.state.lock().tracker.stats.clone()
    }

    fn path(&self) -> Option<&Path> {
        Some(&self.path)
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

    #[test]
    fn the_version_is_the_hash_of_the_installed_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.json");
        let good = r#"{"version":1,"flags":{"a":{}}}"#;
        fs::write(&path, good).unwrap();
        let store = FlagStore::from_json(r#"{"version":1}"#).unwrap();
        let reloader = Reloader::builder(store, &path)
            .interval(Duration::from_secs(3600))
            .spawn()
            .unwrap();
        let expected = format!("{:016x}", xxhash_rust::xxh3::xxh3_64(good.as_bytes()));
        assert_eq!(reloader.stats().version, Some(expected.clone()));
        fs::write(&path, "{").unwrap();
        reloader.check_now();
        let stats = reloader.stats();
        assert_eq!(
            stats.version,
            Some(expected),
            "a refused file is no version"
        );
        assert_eq!(stats.polls, 2);
        assert!(stats.last_success.is_some() && stats.last_error_at.is_some());
    }
}
