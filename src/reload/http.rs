//! The HTTP source (cargo feature `http`): poll a URL with conditional
//! requests, keep the last good snapshot.
//!
//! Each poll sends the last `200` response's `ETag` as `If-None-Match` and
//! its `Last-Modified` as `If-Modified-Since`; a `304` costs no download and
//! no rebuild, and a `200` whose bytes hash to the document already acted
//! upon costs no rebuild either.
//!
//! Racy validators. Many servers (nginx among them) derive the `ETag` from
//! the file's modification time in whole seconds and its size, and
//! `Last-Modified` has one-second resolution. Two writes of the same size
//! within one second (a rollout at `5`, then a rollback to `0`) keep both
//! validators, and a conditional poll made between them would be answered
//! `304` forever. So validators are trusted only when the response that
//! carried them was served at least [`racy_window`] after its
//! `Last-Modified` (by the server's `Date` header, else this machine's
//! clock): a later write then necessarily has a later modification second.
//! Until then every poll is unconditional, and the content hash decides
//! whether anything changed. Right after a change this costs at most one or
//! two full downloads; a document that has settled is polled with `304`s.
//!
//! [`racy_window`]: HttpReloaderBuilder::racy_window

use crate::FileError;
use std::fmt;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use xxhash_rust::xxh3::xxh3_64_with_seed;

use super::{content_hash, Outcome, ReloadError, ReloadStats, Reloader, Source, Tracker};
use crate::config::{self, ConfigError, MAX_CONFIG_BYTES};
use crate::snapshot::Snapshot;
use crate::store::FlagStore;

const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);
const DEFAULT_JITTER: f64 = 0.1;
const MAX_JITTER: f64 = 0.5;
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(60);
const DEFAULT_RACY_WINDOW: Duration = Duration::from_secs(2);

/// Options for an HTTP [`Reloader`] ([`Reloader::http`]).
///
/// ```no_run
/// use std::time::Duration;
/// use genesis_flags::{FlagStore, Reloader, Snapshot};
///
/// let store = FlagStore::builder().build(Snapshot::empty());  // all flags off until loaded
/// let reloader = Reloader::http(store.clone(), "http://flags.internal/flags.json")
///     .interval(Duration::from_secs(5))
///     .cache_file("/var/cache/genesis/flags.json")
///     .spawn()?;
/// println!("serving flags version {:?}", reloader.stats().version);
/// # Ok::<(), genesis_flags::ReloadError>(())
/// ```
#[must_use]
pub struct HttpReloaderBuilder {
    store: FlagStore,
    url: String,
    interval: Duration,
    jitter: f64,
    connect_timeout: Duration,
    read_timeout: Duration,
    max_backoff: Duration,
    max_bytes: u64,
    racy_window: Duration,
    cache: Option<PathBuf>,
    headers: Vec<(String, String)>,
}

impl fmt::Debug for HttpReloaderBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpReloaderBuilder")
            .field("url", &redact(&self.url))
            .field("interval", &self.interval)
            .field("jitter", &self.jitter)
            .field("connect_timeout", &self.connect_timeout)
            .field("read_timeout", &self.read_timeout)
            .field("max_backoff", &self.max_backoff)
            .field("max_bytes", &self.max_bytes)
            .field("racy_window", &self.racy_window)
            .field("cache", &self.cache)
            .field("headers", &self.headers.len())
            .finish()
    }
}

impl HttpReloaderBuilder {
    pub(super) fn new(store: FlagStore, url: String) -> Self {
        HttpReloaderBuilder {
            store,
            url,
            interval: DEFAULT_INTERVAL,
            jitter: DEFAULT_JITTER,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            read_timeout: DEFAULT_READ_TIMEOUT,
            max_backoff: DEFAULT_MAX_BACKOFF,
            max_bytes: MAX_CONFIG_BYTES as u64,
            racy_window: DEFAULT_RACY_WINDOW,
            cache: None,
            headers: Vec::new(),
        }
    }

    /// How often to poll (default 5 s), before jitter.
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// Each wait is the interval times a random factor in
    /// `[1 - jitter, 1 + jitter]`, so a fleet started together does not poll
    /// together (default 0.1; clamped to `[0, 0.5]`).
    pub fn jitter(mut self, jitter: f64) -> Self {
        self.jitter = if jitter.is_finite() {
            jitter.clamp(0.0, MAX_JITTER)
        } else {
            DEFAULT_JITTER
        };
        self
    }

    /// How long to wait for a connection (default 2 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long to wait for the response head, and again for the body
    /// (default 10 s).
    pub fn read_timeout(mut self, timeout: Duration) -> Self {
        self.read_timeout = timeout;
        self
    }

    /// After failed fetches the wait doubles from the interval up to this
    /// (default 60 s, never less than the interval), and returns to the
    /// interval after the next success.
    pub fn max_backoff(mut self, max: Duration) -> Self {
        self.max_backoff = max;
        self
    }

    /// The largest body accepted, in bytes (default and upper bound
    /// [`MAX_CONFIG_BYTES`]). A larger body is a failed fetch.
    pub fn max_bytes(mut self, max: u64) -> Self {
        self.max_bytes = max.min(MAX_CONFIG_BYTES as u64);
        self
    }

    /// How long after its `Last-Modified` a response must have been served
    /// for its validators to be trusted (default 2 s; see the module notes on
    /// racy validators). Raise it when the writer's clock and the server's
    /// may differ, or when files are staged long before they are renamed
    /// into place.
    pub fn racy_window(mut self, window: Duration) -> Self {
        self.racy_window = window;
        self
    }

    /// Keeps a copy of the last good document in `path` (written atomically
    /// after each change), so a reloader that starts while the server cannot
    /// be reached starts from it; [`ReloadStats::from_cache`] says so.
    pub fn cache_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.cache = Some(path.into());
        self
    }

    /// Sends a header with every request (an `Authorization` for a private
    /// bucket, say). Checked by [`spawn`](Self::spawn).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Fetches the document once now (so the store reflects it when this
    /// returns, if it is valid; else the cache is loaded, if there is one),
    /// then starts the polling thread. Blocks at most for the timeouts.
    ///
    /// The store keeps its snapshot when neither the server nor the cache
    /// gives a good document: build it over [`Snapshot::empty`] to have
    /// every flag off until one arrives. Fails only on a URL that is not
    /// `http://` or `https://`, a header that is not valid, or a thread that
    /// cannot start.
    ///
    /// # Errors
    ///
    /// [`ReloadError`] for a URL that is not `http://` or `https://`, a header
    /// that is not valid, or a thread that cannot start.
    pub fn spawn(self) -> Result<Reloader, ReloadError> {
        let shown = redact(&self.url);
        let url_error = |message: String| ReloadError::Url {
            url: shown.clone(),
            message,
        };
        let uri: ureq::http::Uri = self
            .url
            .parse()
            .map_err(|e: ureq::http::uri::InvalidUri| url_error(e.to_string()))?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) {
            return Err(url_error("the scheme must be http or https".to_owned()));
        }
        if uri.host().is_none_or(str::is_empty) {
            return Err(url_error("there is no host".to_owned()));
        }
        for (name, value) in &self.headers {
            ureq::http::HeaderName::try_from(name.as_str())
                .map_err(|e| url_error(format!("header name {name:?}: {e}")))?;
            ureq::http::HeaderValue::try_from(value.as_str())
                .map_err(|e| url_error(format!("header {name}: {e}")))?;
        }
        let agent_config = ureq::Agent::config_builder()
            .timeout_connect(Some(self.connect_timeout))
            .timeout_recv_response(Some(self.read_timeout))
            .timeout_recv_body(Some(self.read_timeout))
            .timeout_global(Some(self.connect_timeout + self.read_timeout * 2))
            .http_status_as_error(false)
            .user_agent(concat!("genesis-flags/", env!("CARGO_PKG_VERSION")))
            .build();
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
            ^ u64::from(std::process::id());
        let source = Arc::new(HttpSource {
            url: self.url,
            shown,
            agent: ureq::Agent::new_with_config(agent_config),
            headers: self.headers,
            interval: self.interval,
            jitter: self.jitter,
            max_backoff: self.max_backoff.max(self.interval),
            max_bytes: self.max_bytes,
            racy_window: self.racy_window,
            cache: self.cache,
            fetch: Mutex::new(None),
            pacing: Mutex::new(Pacing {
                failures: 0,
                rng: xxh3_64_with_seed(b"genesis-flags-http", seed),
            }),
            tracker: Mutex::new(Tracker::new(self.store)),
        });
        source.check();
        if source.tracker.lock().stats.reloads == 0 {
            source.load_cache();
        }
        Reloader::start(source).map_err(ReloadError::Spawn)
    }
}

/// The validators of the last `200`, and whether they may be sent.
#[derive(Debug)]
struct Validators {
    etag: Option<String>,
    last_modified: Option<String>,
    trusted: bool,
}

#[derive(Debug)]
struct Pacing {
    /// Consecutive failed fetches.
    failures: u32,
    /// splitmix64 state, for jitter.
    rng: u64,
}

struct HttpSource {
    url: String,
    shown: String,
    agent: ureq::Agent,
    headers: Vec<(String, String)>,
    interval: Duration,
    jitter: f64,
    max_backoff: Duration,
    max_bytes: u64,
    racy_window: Duration,
    cache: Option<PathBuf>,
    /// Held for a whole fetch, so checks never overlap; stats never wait on it.
    fetch: Mutex<Option<Validators>>,
    pacing: Mutex<Pacing>,
    tracker: Mutex<Tracker>,
}

impl fmt::Debug for HttpSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpSource")
            .field("url", &self.shown)
            .field("interval", &self.interval)
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}

impl Source for HttpSource {
    fn check(&self) -> Outcome {
        let mut validators = self.fetch.lock();
        let outcome = self.fetch_once(&mut validators);
        let mut pacing = self.pacing.lock();
        pacing.failures = if outcome == Outcome::Failed {
            pacing.failures.saturating_add(1)
        } else {
            0
        };
        outcome
    }

    fn next_delay(&self) -> Duration {
        let mut pacing = self.pacing.lock();
        let base = backoff(self.interval, self.max_backoff, pacing.failures);
        pacing.rng = splitmix64(pacing.rng);
        // 53 random bits as a float in [0, 1).
        let unit = (pacing.rng >> 11) as f64 / (1u64 << 53) as f64;
        let factor = 1.0 + self.jitter * (2.0 * unit - 1.0);
        Duration::try_from_secs_f64(base.as_secs_f64() * factor).unwrap_or(base)
    }

    fn stats(&self) -> ReloadStats {
        self.tracker.lock().stats.clone()
    }

    fn url(&self) -> Option<&str> {
        Some(&self.shown)
    }
}

impl HttpSource {
    fn fetch_once(&self, validators: &mut Option<Validators>) -> Outcome {
        let mut request = self.agent.get(&self.url);
        for (name, value) in &self.headers {
            request = request.header(name.as_str(), value.as_str());
        }
        let conditional = validators.as_ref().filter(|v| v.trusted);
        if let Some(v) = conditional {
            if let Some(etag) = &v.etag {
                request = request.header("if-none-match", etag.as_str());
            }
            if let Some(modified) = &v.last_modified {
                request = request.header("if-modified-since", modified.as_str());
            }
        }
        let sent_validators = conditional.is_some();
        let response = match request.call() {
            Ok(response) => response,
            Err(e) => return self.failed(self.classify(e)),
        };
        let now = SystemTime::now();
        match response.status().as_u16() {
            304 if sent_validators => {
                let mut tracker = self.tracker.lock();
                tracker.stats.polls += 1;
                tracker.stats.not_modified += 1;
                tracker.stats.last_success = Some(now);
                tracker.unchanged()
            }
            200 => {
                let header = |name: &str| {
                    response
                        .headers()
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned)
                };
                let etag = header("etag");
                let last_modified = header("last-modified");
                let served = header("date")
                    .and_then(|d| httpdate::parse_http_date(&d).ok())
                    .unwrap_or(now);
                let body = response
                    .into_body()
                    .with_config()
                    .limit(self.max_bytes)
                    .read_to_vec();
                let bytes = match body {
                    Ok(bytes) => bytes,
                    Err(e) => return self.failed(self.classify(e)),
                };
                *validators = (etag.is_some() || last_modified.is_some()).then(|| Validators {
                    trusted: settled(last_modified.as_deref(), served, self.racy_window),
                    etag: etag.clone(),
                    last_modified,
                });
                self.offer(&bytes, etag, now)
            }
            status => self.failed(ReloadError::Status {
                url: self.shown.clone(),
                status,
            }),
        }
    }

    /// A downloaded document.
    fn offer(&self, bytes: &[u8], etag: Option<String>, now: SystemTime) -> Outcome {
        let mut tracker = self.tracker.lock();
        tracker.stats.polls += 1;
        tracker.stats.last_success = Some(now);
        tracker.stats.etag = etag;
        let outcome = tracker.offer(content_hash(bytes), || self.parse(bytes));
        if tracker.installed {
            tracker.stats.from_cache = false;
        }
        if outcome == Outcome::Installed {
            if let Some(path) = &self.cache {
                tracker.stats.cache_error = write_cache(path, bytes).err().map(|source| {
                    Arc::new(ReloadError::CacheWrite(FileError::new(
                        "cannot write the flags cache",
                        path.clone(),
                        source,
                    )))
                });
            }
        }
        outcome
    }

    fn parse(&self, bytes: &[u8]) -> Result<Snapshot, ReloadError> {
        let refused = |source: ConfigError| ReloadError::Refused {
            url: self.shown.clone(),
            source,
        };
        let text = std::str::from_utf8(bytes).map_err(|e| refused(utf8_error(bytes, &e)))?;
        super::parse_document(text).map_err(refused)
    }

    fn failed(&self, e: ReloadError) -> Outcome {
        let mut tracker = self.tracker.lock();
        tracker.stats.polls += 1;
        tracker.failed(e)
    }

    /// Installs the cached document, if there is a good one.
    fn load_cache(&self) {
        let Some(path) = &self.cache else {
            return;
        };
        let loaded = config::read_file(path).and_then(|text| {
            super::parse_document(&text)
                .map(|snapshot| (content_hash(text.as_bytes()), snapshot))
                .map_err(|e| e.in_file(path.clone()))
        });
        let mut tracker = self.tracker.lock();
        match loaded {
            Ok((hash, snapshot)) => {
                tracker.store.replace(snapshot);
                // When the server answered with a refused document, that is
                // still what it serves: keep it as the content acted upon,
                // so its 304s keep the error and its bytes are not counted
                // twice.
                if tracker.content.is_none() {
                    tracker.content = Some(hash);
                    tracker.installed = true;
                }
                tracker.stats.reloads += 1;
                tracker.stats.last_reload = Some(SystemTime::now());
                tracker.stats.version = Some(super::version_of(hash));
                tracker.stats.from_cache = true;
            }
            // No cache yet: nothing to say.
            Err(ConfigError::Io(e)) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => tracker.stats.cache_error = Some(Arc::new(ReloadError::Config(e))),
        }
    }

    fn classify(&self, e: ureq::Error) -> ReloadError {
        let url = self.shown.clone();
        match e {
            ureq::Error::BodyExceedsLimit(_) => ReloadError::TooLarge {
                url,
                limit: self.max_bytes,
            },
            ureq::Error::Timeout(t) => ReloadError::Fetch {
                url,
                message: format!("no answer within the {t} timeout"),
            },
            ureq::Error::Io(io) => ReloadError::Fetch {
                url,
                message: io.to_string(),
            },
            other => ReloadError::Fetch {
                url,
                message: other.to_string(),
            },
        }
    }
}

/// Whether validators served at `served` for a document last modified at
/// `last_modified` may be sent: only once a later write must carry a later
/// modification second. Without `Last-Modified` the `ETag` is taken as the
/// server's word (object stores derive it from the content); an unreadable
/// `Last-Modified` is never trusted.
fn settled(last_modified: Option<&str>, served: SystemTime, window: Duration) -> bool {
    match last_modified {
        None => true,
        Some(text) => httpdate::parse_http_date(text)
            .is_ok_and(|modified| served.duration_since(modified).is_ok_and(|d| d >= window)),
    }
}

/// The wait after `failures` consecutive failed fetches: the interval, then
/// doubling, capped.
fn backoff(interval: Duration, max: Duration, failures: u32) -> Duration {
    if failures <= 1 {
        return interval;
    }
    let factor = 1u32 << (failures - 1).min(20);
    interval.checked_mul(factor).map_or(max, |d| d.min(max))
}

fn splitmix64(state: u64) -> u64 {
    let mut z = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A body that is not UTF-8, as the file reader reports it.
fn utf8_error(bytes: &[u8], e: &std::str::Utf8Error) -> ConfigError {
    ConfigError::Syntax(crate::config::JsonError::invalid_utf8(
        bytes,
        e.valid_up_to(),
    ))
}

/// Writes `bytes` to `path` through a temporary file and a rename, so a
/// reader never sees half a cache.
fn write_cache(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let name = path.file_name().map_or_else(
        || "flags-cache".into(),
        |n| n.to_string_lossy().into_owned(),
    );
    let tmp = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    let written = File::create(&tmp).and_then(|mut file| {
        file.write_all(bytes)?;
        file.sync_all()
    });
    let renamed = written.and_then(|()| fs::rename(&tmp, path));
    if renamed.is_err() {
        // Best effort: a leftover temporary file is harmless.
        let _ = fs::remove_file(&tmp);
    }
    renamed
}

/// The URL without credentials or query string (signed object-store URLs
/// carry their secret there), for messages and stats.
fn redact(url: &str) -> String {
    let (base, rest) = match url.find(['?', '#']) {
        Some(i) => (&url[..i], "?..."),
        None => (url, ""),
    };
    let shown = match base.find("://") {
        Some(i) => {
            let after = &base[i + 3..];
            let authority = &after[..after.find('/').unwrap_or(after.len())];
            match authority.rfind('@') {
                Some(at) => format!("{}://***@{}", &base[..i], &after[at + 1..]),
                None => base.to_owned(),
            }
        }
        None => base.to_owned(),
    };
    format!("{shown}{rest}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Read};
    use std::net::TcpListener;

    const GOOD: &str = r#"{"version":1,"flags":{"f":{}}}"#;

    fn at(text: &str) -> SystemTime {
        httpdate::parse_http_date(text).unwrap()
    }

    #[test]
    fn validators_are_trusted_only_once_the_second_is_over() {
        let modified = "Fri, 27 Nov 2026 18:00:00 GMT";
        let window = DEFAULT_RACY_WINDOW;
        assert!(
            !settled(Some(modified), at(modified), window),
            "same second"
        );
        assert!(!settled(
            Some(modified),
            at("Fri, 27 Nov 2026 18:00:01 GMT"),
            window
        ));
        assert!(settled(
            Some(modified),
            at("Fri, 27 Nov 2026 18:00:02 GMT"),
            window
        ));
        assert!(
            !settled(Some(modified), at("Fri, 27 Nov 2026 17:59:00 GMT"), window),
            "skew"
        );
        assert!(
            !settled(Some("yesterday"), at(modified), window),
            "unreadable"
        );
        assert!(settled(None, at(modified), window), "ETag alone");
    }

    proptest::proptest! {
        /// Validators are trusted exactly when the response was served a
        /// whole window after the document's modification second.
        #[test]
        fn trust_starts_exactly_at_the_window(
            modified in 0u64..4_000_000_000,
            after in -5i64..10,
            window in 0u64..5,
        ) {
            let lm = UNIX_EPOCH + Duration::from_secs(modified);
            let served = if after >= 0 {
                lm + Duration::from_secs(after as u64)
            } else {
                lm - Duration::from_secs(after.unsigned_abs())
            };
            let text = httpdate::fmt_http_date(lm);
            let trusted = settled(Some(&text), served, Duration::from_secs(window));
            proptest::prop_assert_eq!(trusted, after >= window as i64);
        }

        /// Waits never fall under the interval nor exceed the cap, and
        /// never shrink as failures go on.
        #[test]
        fn backoff_is_bounded_and_monotonic(
            interval_ms in 1u64..100_000,
            cap_ms in 1u64..1_000_000,
            failures in 0u32..100,
        ) {
            let interval = Duration::from_millis(interval_ms);
            let cap = Duration::from_millis(cap_ms).max(interval);
            let now = backoff(interval, cap, failures);
            let next = backoff(interval, cap, failures + 1);
            proptest::prop_assert!(interval <= now && now <= cap && now <= next);
        }
    }

    #[test]
    fn backoff_doubles_then_caps() {
        let s = Duration::from_secs;
        let waits: Vec<_> = (0..6).map(|n| backoff(s(5), s(30), n)).collect();
        assert_eq!(waits, [s(5), s(5), s(10), s(20), s(30), s(30)]);
        assert_eq!(backoff(s(5), s(30), u32::MAX), s(30));
    }

    #[test]
    fn urls_lose_credentials_and_queries() {
        assert_eq!(
            redact("https://u:p@h.example/f.json?sig=x"),
            "https://***@h.example/f.json?..."
        );
        assert_eq!(redact("http://h:8080/a@b"), "http://h:8080/a@b");
        assert_eq!(redact("http://h/f.json"), "http://h/f.json");
    }

    #[test]
    fn bad_urls_and_headers_are_refused_at_spawn() {
        let store = || FlagStore::builder().build(Snapshot::empty());
        for url in ["ftp://h/f.json", "not a url", "http:///f.json"] {
            let e = Reloader::http(store(), url).spawn().unwrap_err();
            assert!(matches!(e, ReloadError::Url { .. }), "{url}: {e}");
        }
        let e = Reloader::http(store(), "http://127.0.0.1:9/f")
            .header("bad name", "v")
            .spawn()
            .unwrap_err();
        assert!(e.to_string().contains("header name"), "{e}");
    }

    /// A one-shot server answering each connection with `answer`.
    fn serve(answers: Vec<String>) -> (String, std::thread::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/flags.json", listener.local_addr().unwrap());
        let thread = std::thread::spawn(move || {
            for answer in answers {
                let (mut stream, _) = listener.accept().unwrap();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                while reader.read_line(&mut line).unwrap() > 2 {
                    line.clear();
                }
                stream.write_all(answer.as_bytes()).unwrap();
                let _ = stream.flush();
                drop(stream);
            }
        });
        (url, thread)
    }

    fn ok(body: &str, declared: usize) -> String {
        format!("HTTP/1.1 200 OK\r\nContent-Length: {declared}\r\nConnection: close\r\n\r\n{body}")
    }

    #[test]
    fn a_body_cut_short_or_too_large_is_a_failed_fetch() {
        let cut = &GOOD[..GOOD.len() / 2];
        let (url, server) = serve(vec![
            ok(GOOD, GOOD.len()),
            ok(cut, GOOD.len()),
            ok(GOOD, GOOD.len()),
            "HTTP/1.1 503 Busy\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_owned(),
        ]);
        let store = FlagStore::builder().build(Snapshot::empty());
        let reloader = Reloader::http(store.clone(), url)
            .interval(Duration::from_secs(3600))
            .max_bytes(GOOD.len() as u64)
            .spawn()
            .unwrap();
        assert!(store.is_enabled("f", "u"));
        assert!(!reloader.check_now(), "a truncated body was installed");
        let stats = reloader.stats();
        assert_eq!((stats.fetch_errors, stats.rejections), (1, 0), "{stats:?}");
        assert!(
            matches!(stats.last_error.as_deref(), Some(ReloadError::Fetch { .. })),
            "{stats:?}"
        );
        // Same body, served again: unchanged, and the error is cleared.
        assert!(!reloader.check_now());
        assert!(reloader.stats().last_error.is_none());
        assert!(!reloader.check_now());
        let stats = reloader.stats();
        assert!(
            matches!(
                stats.last_error.as_deref(),
                Some(ReloadError::Status { status: 503, .. })
            ),
            "{stats:?}"
        );
        assert_eq!((stats.reloads, stats.fetch_errors, stats.polls), (1, 2, 4));
        assert!(store.is_enabled("f", "u"));
        server.join().unwrap();
    }

    #[test]
    fn the_cache_stands_in_for_a_refused_document_without_hiding_it() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("cache.json");
        fs::write(&cache, GOOD).unwrap();
        let bad = r#"{"version":2}"#;
        let (url, server) = serve(vec![
            ok(bad, bad.len()),
            ok(bad, bad.len()),
            ok(GOOD, GOOD.len()),
        ]);
        let store = FlagStore::builder().build(Snapshot::empty());
        let reloader = Reloader::http(store.clone(), url)
            .interval(Duration::from_secs(3600))
            .cache_file(&cache)
            .spawn()
            .unwrap();
        assert!(store.is_enabled("f", "u"), "the cache was not loaded");
        let stats = reloader.stats();
        assert!(stats.from_cache && stats.last_error.is_some(), "{stats:?}");
        assert!(!reloader.check_now(), "the same bad document again");
        let stats = reloader.stats();
        assert_eq!(stats.rejections, 1, "{stats:?}");
        assert!(stats.last_error.is_some() && stats.from_cache, "{stats:?}");
        assert!(reloader.check_now(), "the good document once served");
        let stats = reloader.stats();
        assert!(stats.last_error.is_none() && !stats.from_cache, "{stats:?}");
        server.join().unwrap();
    }

    #[test]
    fn a_body_over_the_limit_is_refused_without_reading_it_all() {
        let big = format!("{GOOD}{}", " ".repeat(100));
        let (url, server) = serve(vec![ok(&big, big.len())]);
        let store = FlagStore::builder().build(Snapshot::empty());
        let reloader = Reloader::http(store.clone(), url)
            .interval(Duration::from_secs(3600))
            .max_bytes(64)
            .spawn()
            .unwrap();
        let stats = reloader.stats();
        assert!(
            matches!(
                stats.last_error.as_deref(),
                Some(ReloadError::TooLarge { limit: 64, .. })
            ),
            "{stats:?}"
        );
        assert!(!store.is_enabled("f", "u"));
        server.join().unwrap();
    }

    #[test]
    fn a_body_that_is_not_utf8_is_refused_with_its_position() {
        let bytes = b"{\"version\":1,\n\"flags\":{\"\xff\":{}}}";
        let mut answer = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            bytes.len()
        )
        .into_bytes();
        answer.extend_from_slice(bytes);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/f", listener.local_addr().unwrap());
        let server = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut head = [0u8; 1024];
            let _ = stream.read(&mut head).unwrap();
            stream.write_all(&answer).unwrap();
        });
        let store = FlagStore::builder().build(Snapshot::empty());
        let reloader = Reloader::http(store, url).spawn().unwrap();
        let error = reloader.stats().last_error.unwrap().to_string();
        assert!(
            error.contains("invalid UTF-8 at line 2 column 11"),
            "{error}"
        );
        assert!(error.contains("/f"), "the URL is named: {error}");
        server.join().unwrap();
    }

    #[test]
    fn jitter_stays_within_its_bounds() {
        let store = FlagStore::builder().build(Snapshot::empty());
        let source = HttpSource {
            url: String::new(),
            shown: String::new(),
            agent: ureq::Agent::new_with_defaults(),
            headers: Vec::new(),
            interval: Duration::from_secs(10),
            jitter: 0.1,
            max_backoff: Duration::from_secs(60),
            max_bytes: 1,
            racy_window: DEFAULT_RACY_WINDOW,
            cache: None,
            fetch: Mutex::new(None),
            pacing: Mutex::new(Pacing {
                failures: 0,
                rng: 1,
            }),
            tracker: Mutex::new(Tracker::new(store)),
        };
        let waits: Vec<Duration> = (0..200).map(|_| source.next_delay()).collect();
        assert!(waits
            .iter()
            .all(|w| *w >= Duration::from_secs(9) && *w <= Duration::from_secs(11)));
        assert!(waits.iter().any(|w| *w < Duration::from_millis(9_500)));
        assert!(waits.iter().any(|w| *w > Duration::from_millis(10_500)));
    }
}
