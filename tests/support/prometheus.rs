//! A real Prometheus server for tests: a scenario's OpenMetrics samples
//! (`Scenario::openmetrics`), backfilled with `promtool tsdb create-blocks-from
//! openmetrics`, start `prometheus` on a free loopback port over that
//! storage, wait for `/-/ready`, and kill it when dropped (even on panic).
//!
//! Needs Debian's `prometheus` package (it ships `promtool`). When it is
//! missing, tests skip with a message, except under `CI=true`, where they
//! fail: `.ci/run` installs the package.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use genesis_flags::rollout::simulation::{Event, Scenario};
use genesis_flags::rollout::Timestamp;

/// A scenario starting `hours_ago` hours before now on a whole minute,
/// lasting `minutes`, healthy unless events say otherwise. Backfilled data
/// must lie at least a few hours in the past.
pub fn scenario_hours_ago(hours_ago: u64, minutes: u64) -> Scenario {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let start = Timestamp::from_unix_millis((now - hours_ago * 3600) / 60 * 60 * 1000);
    let mut s = Scenario::healthy(start);
    s.duration = Duration::from_secs(minutes * 60);
    s
}

/// The instant `minute` minutes into `s`.
pub fn minute(s: &Scenario, minute: u64) -> Timestamp {
    s.start + Duration::from_secs(minute * 60)
}

/// An event on minutes `[from, to)`.
pub fn event(from: u64, to: u64) -> Event {
    Event::between(Duration::from_secs(from * 60), Duration::from_secs(to * 60))
}

fn installed(binary: &str) -> bool {
    Command::new(binary)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether tests may run against a real server here. Under `CI=true` a
/// missing server is a failure, not a skip.
pub fn available(test: &str) -> bool {
    if installed("prometheus") && installed("promtool") {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{test}: `prometheus` and `promtool` are required under CI=true (apt-get install --no-install-recommends prometheus)");
    }
    eprintln!(
        "SKIPPED {test}: `prometheus`/`promtool` not installed (Debian package `prometheus`)"
    );
    false
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A GET on loopback, answering (status, body).
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text
        .split_once("\r\n\r\n")
        .map_or(String::new(), |(_, b)| b.to_owned());
    Some((status, body))
}

/// A running Prometheus over backfilled data; killed on drop.
pub struct PrometheusServer {
    child: Child,
    pub port: u16,
    pub url: String,
    _dir: tempfile::TempDir,
}

impl PrometheusServer {
    /// Backfills `openmetrics` and starts a server over it. `scrape` is the
    /// YAML of `scrape_configs` (`[]` when it only serves backfilled data).
    pub fn start(openmetrics: &str, scrape: &str) -> PrometheusServer {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        if !openmetrics.is_empty() {
            let input = dir.path().join("scenario.om");
            std::fs::write(&input, openmetrics).unwrap();
            let out = Command::new("promtool")
                .args(["tsdb", "create-blocks-from", "openmetrics"])
                .arg(&input)
                .arg(&data)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "promtool backfill failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let config = dir.path().join("prometheus.yml");
        std::fs::write(&config, format!("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs: {scrape}\n")).unwrap();
        Self::launch(dir, &config, &data)
    }

    fn launch(mut dir: tempfile::TempDir, config: &Path, data: &Path) -> PrometheusServer {
        for _attempt in 0..5 {
            let port = free_port();
            let child = Command::new("prometheus")
                .arg(format!("--config.file={}", config.display()))
                .arg(format!("--storage.tsdb.path={}", data.display()))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg("--storage.tsdb.retention.time=3650d")
                .arg("--log.level=warn")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start prometheus");
            let mut server = PrometheusServer {
                child,
                port,
                url: format!("http://127.0.0.1:{port}"),
                _dir: dir,
            };
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if let Some((200, _)) = http_get(port, "/-/ready") {
                    return server;
                }
                if let Ok(Some(_)) = server.child.try_wait() {
                    break; // exited: most likely the port was taken; retry
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = server.child.kill();
            let _ = server.child.wait();
            dir = std::mem::replace(&mut server._dir, tempfile::tempdir().unwrap());
        }
        panic!("prometheus did not become ready");
    }
}

impl Drop for PrometheusServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
