//! [`Reloader`]: follow a flags source and keep the last good snapshot.
//!
//! Two sources share one rule: a document is parsed and validated before it
//! is installed, and a document that is refused, or a read that fails, never
//! replaces the snapshot the store already has (last known good).
//!
//! - A file on disk ([`Reloader::builder`]): followed by path, so atomic
//!   renames and Kubernetes ConfigMap symlink swaps are seen.
//! - A URL ([`Reloader::http`], cargo feature `http`): polled with
//!   `If-None-Match` / `If-Modified-Since`, with jitter, timeouts, backoff on
//!   errors, a size limit and an optional on-disk cache.
//!
//! Both count what they did in [`ReloadStats`], including the installed
//! document's [`version`](ReloadStats::version): the hex xxh3 of its bytes,
//! the same on every instance that runs the same document whatever served it.

mod error;
mod file;
#[cfg(feature = "http")]
mod http;

use std::fmt;
use std::path::Path;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, SystemTime};

use xxhash_rust::xxh3::xxh3_64;

use crate::snapshot::Snapshot;
use crate::store::FlagStore;

pub use error::ReloadError;
pub use file::ReloaderBuilder;
#[cfg(feature = "http")]
pub use http::HttpReloaderBuilder;

/// Counts, times and the last error of a [`Reloader`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ReloadStats {
    /// Valid changes installed into the store (the first load included).
    /// Each one built a snapshot; nothing else does.
    pub reloads: u64,
    /// Documents refused (file: unreadable, not JSON, invalid; HTTP: not
    /// UTF-8, not JSON, invalid); the store kept its snapshot. A document is
    /// counted once however often it is read again.
    pub rejections: u64,
    /// Fetches that failed (HTTP only: connection, timeout, an HTTP status
    /// other than 200 and 304, a body over the size limit or cut short); the
    /// store kept its snapshot.
    pub fetch_errors: u64,
    /// Checks of the source made so far (polls and [`Reloader::check_now`]).
    pub polls: u64,
    /// HTTP `304 Not Modified` answers: checks that cost no download and no
    /// rebuild.
    pub not_modified: u64,
    /// The error of the last failed check (a refused document or a failed
    /// fetch), cleared when the source next serves the installed document
    /// or a good new one.
    pub last_error: Option<Arc<ReloadError>>,
    /// When `last_error` happened.
    pub last_error_at: Option<SystemTime>,
    /// When the last good change was installed.
    pub last_reload: Option<SystemTime>,
    /// When the source last answered (a file found readable, an HTTP 200 or
    /// 304).
    pub last_success: Option<SystemTime>,
    /// The installed document's version: the hex xxh3 of its bytes (16
    /// digits). `None` until a document is installed by this reloader.
    pub version: Option<String>,
    /// The HTTP `ETag` of the last document downloaded, when the server sent
    /// one. Not a version: servers that derive it from the modification
    /// second and size give two documents the same `ETag`.
    pub etag: Option<String>,
    /// Whether the installed document came from the on-disk cache because
    /// the server could not be reached (HTTP only); cleared when the server
    /// next serves a document.
    pub from_cache: bool,
    /// The last failure to read or write the on-disk cache (HTTP only); it
    /// never changes the store.
    pub cache_error: Option<Arc<ReloadError>>,
}

/// Follows a flags source and installs each valid change into a [`FlagStore`].
///
/// A change that does not parse or validate is counted and kept as
/// [`ReloadStats::last_error`]; the store keeps its last good snapshot. The
/// polling thread stops when the `Reloader` is dropped.
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
pub struct Reloader {
    source: Arc<dyn Source>,
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl fmt::Debug for Reloader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reloader")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl Reloader {
    /// Options for a reloader of the file at `path` into `store`.
    pub fn builder(store: FlagStore, path: impl AsRef<Path>) -> ReloaderBuilder {
        ReloaderBuilder::new(store, path.as_ref().to_path_buf())
    }

    /// A file reloader with the default 1 s interval.
    ///
    /// # Errors
    ///
    /// The I/O error when the polling thread cannot be started.
    pub fn spawn(store: FlagStore, path: impl AsRef<Path>) -> std::io::Result<Self> {
        Self::builder(store, path).spawn()
    }

    /// Options for a reloader that polls `url` (`http://` or `https://`)
    /// into `store` (cargo feature `http`).
    #[cfg(feature = "http")]
    pub fn http(store: FlagStore, url: impl Into<String>) -> HttpReloaderBuilder {
        HttpReloaderBuilder::new(store, url.into())
    }

    /// The file being watched; `None` for an HTTP source.
    #[must_use]
    pub fn path(&self) -> Option<&Path> {
        self.source.path()
    }

    /// The URL being polled (credentials and query string hidden); `None`
    /// for a file source.
    #[must_use]
    pub fn url(&self) -> Option<&str> {
        self.source.url()
    }

    /// Counts, times and the last error.
    #[must_use]
    pub fn stats(&self) -> ReloadStats {
        self.source.stats()
    }

    /// Whether this reloader has installed a document (its first load).
    /// A store built with [`FlagStoreBuilder::pending`](crate::FlagStoreBuilder::pending)
    /// becomes ready with it (see [`FlagStore::wait_ready`]).
    #[must_use]
    pub fn has_loaded(&self) -> bool {
        self.source.stats().reloads > 0
    }

    /// Waits until [`has_loaded`](Self::has_loaded), at most `timeout`;
    /// returns whether it has (polls the counters every few milliseconds).
    pub fn wait_loaded(&self, timeout: std::time::Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if self.has_loaded() {
                return true;
            }
            if std::time::Instant::now() >= deadline {
                return false;
            }
            thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    /// Checks the source now instead of waiting for the next poll. Returns
    /// `true` when a change was installed.
    pub fn check_now(&self) -> bool {
        self.source.check() == Outcome::Installed
    }

    /// Starts the polling thread over a source already checked once.
    fn start(source: Arc<dyn Source>) -> std::io::Result<Reloader> {
        let (stop, stopped) = mpsc::channel::<()>();
        let polling = Arc::clone(&source);
        let thread = thread::Builder::new()
            .name("genesis-flags-reload".into())
            .spawn(move || {
                // Any message, or the sender dropping, stops the loop.
                while let Err(RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(polling.next_delay())
                {
                    polling.check();
                }
            })?;
        Ok(Reloader {
            source,
            stop: Some(stop),
            thread: Some(thread),
        })
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

/// One kind of flags source, polled by a [`Reloader`]'s thread.
trait Source: Send + Sync + fmt::Debug + 'static {
    /// Reads the source once and installs a valid change.
    fn check(&self) -> Outcome;
    /// How long to wait before the next check.
    fn next_delay(&self) -> Duration;
    /// A copy of the counters.
    fn stats(&self) -> ReloadStats;
    /// The watched file, for a file source.
    fn path(&self) -> Option<&Path> {
        None
    }
    /// The polled URL, for an HTTP source.
    fn url(&self) -> Option<&str> {
        None
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Unchanged,
    Installed,
    Refused,
    Failed,
}

/// What both sources do with what they read: dedupe by content hash, parse,
/// install or refuse, and count.
#[derive(Debug)]
struct Tracker {
    store: FlagStore,
    stats: ReloadStats,
    /// Hash of the content last acted upon (installed or refused).
    content: Option<u64>,
    /// Whether that content was installed.
    installed: bool,
}

impl Tracker {
    fn new(store: FlagStore) -> Self {
        Tracker {
            store,
            stats: ReloadStats::default(),
            content: None,
            installed: false,
        }
    }

    /// Offers content whose hash is `hash`: nothing is parsed when it is the
    /// content last acted upon.
    fn offer(
        &mut self,
        hash: u64,
        parse: impl FnOnce() -> Result<Snapshot, ReloadError>,
    ) -> Outcome {
        if self.content == Some(hash) {
            return self.unchanged();
        }
        self.content = Some(hash);
        match parse() {
            Ok(snapshot) => {
                self.store.replace(snapshot);
                self.installed = true;
                self.stats.reloads += 1;
                self.stats.last_error = None;
                self.stats.last_error_at = None;
                self.stats.last_reload = Some(SystemTime::now());
                self.stats.version = Some(version_of(hash));
                Outcome::Installed
            }
            Err(e) => {
                self.installed = false;
                self.stats.rejections += 1;
                self.error(e);
                Outcome::Refused
            }
        }
    }

    /// The source still serves what was last acted upon.
    fn unchanged(&mut self) -> Outcome {
        if self.installed {
            self.stats.last_error = None;
            self.stats.last_error_at = None;
        }
        Outcome::Unchanged
    }

    /// A read that failed before any document was seen.
    #[cfg_attr(not(feature = "http"), allow(dead_code))]
    fn failed(&mut self, e: ReloadError) -> Outcome {
        self.stats.fetch_errors += 1;
        self.error(e);
        Outcome::Failed
    }

    fn error(&mut self, e: ReloadError) {
        self.stats.last_error = Some(Arc::new(e));
        self.stats.last_error_at = Some(SystemTime::now());
    }
}

/// The hash of a document's bytes, as [`ReloadStats::version`] shows it.
fn content_hash(bytes: &[u8]) -> u64 {
    xxh3_64(bytes)
}

fn version_of(hash: u64) -> String {
    format!("{hash:016x}")
}

/// Parses a document a reloader read: with the feature `flagd`, a flagd
/// document when its `$schema` is flagd's
/// (`https://flagd.dev/schema/v0/flags.json`), otherwise the native format.
pub(crate) fn parse_document(text: &str) -> Result<Snapshot, crate::config::ConfigError> {
    #[cfg(feature = "flagd")]
    if crate::flagd::is_flagd_document(text) {
        return Snapshot::from_flagd_json(text);
    }
    Snapshot::from_json(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_is_the_hex_xxh3_of_the_bytes() {
        assert_eq!(version_of(content_hash(b"")), "2d06800538d394c2");
        assert_eq!(version_of(1), "0000000000000001");
    }

    #[test]
    fn a_refused_document_keeps_the_snapshot_and_counts_once() {
        let store = FlagStore::from_json(r#"{"version":1,"flags":{"a":{}}}"#).unwrap();
        let mut tracker = Tracker::new(store.clone());
        let bad = || Err(ReloadError::from(Snapshot::from_json("{").unwrap_err()));
        assert_eq!(tracker.offer(7, bad), Outcome::Refused);
        assert_eq!(tracker.offer(7, bad), Outcome::Unchanged);
        assert_eq!(tracker.stats.rejections, 1);
        assert!(
            tracker.stats.last_error.is_some(),
            "a bad document is still served"
        );
        assert!(store.is_enabled("a", "u"));
        assert_eq!(
            tracker.offer(8, || Ok(Snapshot::empty())),
            Outcome::Installed
        );
        assert_eq!(tracker.stats.version.as_deref(), Some("0000000000000008"));
        assert!(tracker.stats.last_error.is_none());
    }

    #[cfg(feature = "flagd")]
    #[test]
    fn a_file_reloader_follows_a_flagd_document_by_its_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("flags.flagd.json");
        let doc = |default: &str| {
            format!(
                r#"{{"$schema": "https://flagd.dev/schema/v0/flags.json", "flags": {{"f": {{
                    "state": "ENABLED", "variants": {{"on": true, "off": false}},
                    "defaultVariant": "{default}"}}}}}}"#
            )
        };
        std::fs::write(&path, doc("on")).unwrap();
        let store = FlagStore::builder().build(Snapshot::empty());
        let reloader = Reloader::builder(store.clone(), &path)
            .interval(std::time::Duration::from_secs(3600))
            .spawn()
            .unwrap();
        assert!(store.is_enabled("f", "u"));
        std::fs::write(&path, doc("off")).unwrap();
        assert!(reloader.check_now());
        assert!(!store.is_enabled("f", "u"));
        // A bad flagd document is refused with its path; the snapshot stays.
        std::fs::write(&path, doc("nope")).unwrap();
        assert!(!reloader.check_now());
        let error = reloader.stats().last_error.unwrap().to_string();
        assert!(error.contains("flags.f.defaultVariant"), "{error}");
        assert!(store.view().snapshot().flag("f").is_some());
    }
}
