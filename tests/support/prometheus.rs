//! A real Prometheus server for tests: render a scenario as OpenMetrics with
//! timestamps, backfill it with `promtool tsdb create-blocks-from
//! openmetrics`, start `prometheus` on a free loopback port over that
//! storage, wait for `/-/ready`, and kill it when dropped (even on panic).
//!
//! Needs Debian's `prometheus` package (it ships `promtool`). When it is
//! missing, tests skip with a message, except under `CI=true`, where they
//! fail: `.ci/run` installs the package.

#![allow(dead_code)]

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The histogram buckets of `genesis_request_duration_seconds`.
pub const BUCKETS: [f64; 10] = [0.05, 0.1, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5];
/// The jobs whose `up` the default health checks read.
pub const JOBS: [&str; 5] = [
    "prometheus",
    "alertmanager",
    "node-exporter",
    "grafana",
    "genesis",
];

/// What the service looks like during one minute.
#[derive(Debug, Clone)]
pub struct Conditions {
    pub requests_per_second: f64,
    /// A fraction (0.0005 = 0.05%).
    pub error_rate: f64,
    pub p95_ms: f64,
    pub jobs_down: Vec<String>,
    pub critical_alerts: Vec<String>,
}

impl Default for Conditions {
    fn default() -> Self {
        Conditions {
            requests_per_second: 200.0,
            error_rate: 0.0005,
            p95_ms: 120.0,
            jobs_down: Vec::new(),
            critical_alerts: Vec::new(),
        }
    }
}

/// A per-minute scenario: a baseline, and overrides on `[from, to)` minutes.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Unix seconds of the first sample (minute-aligned).
    pub start: u64,
    pub minutes: u64,
    pub baseline: Conditions,
    pub events: Vec<(u64, u64, Conditions)>,
}

impl Scenario {
    /// A scenario starting `hours_ago` hours before now, on a whole minute.
    pub fn hours_ago(hours_ago: u64, minutes: u64) -> Self {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        Scenario {
            start: (now - hours_ago * 3600) / 60 * 60,
            minutes,
            baseline: Conditions::default(),
            events: Vec::new(),
        }
    }

    pub fn with(mut self, from: u64, to: u64, f: impl FnOnce(&mut Conditions)) -> Self {
        let mut c = self.baseline.clone();
        f(&mut c);
        self.events.push((from, to, c));
        self
    }

    pub fn at_minute(&self, minute: u64) -> &Conditions {
        self.events
            .iter()
            .rev()
            .find(|(from, to, _)| (*from..*to).contains(&minute))
            .map_or(&self.baseline, |(_, _, c)| c)
    }

    /// Unix milliseconds of minute `m`.
    pub fn millis_at(&self, minute: u64) -> u64 {
        (self.start + minute * 60) * 1000
    }

    /// OpenMetrics text with timestamps in seconds, ending in `# EOF`.
    pub fn openmetrics(&self) -> String {
        // Cumulative counters per minute.
        let mut requests = 0u64;
        let mut errors = 0u64;
        let mut buckets = [0u64; BUCKETS.len()];
        let mut sum = 0.0f64;
        let mut count = 0u64;
        let (mut req_lines, mut err_lines, mut hist_lines, mut up_lines, mut alert_lines) = (
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
        );
        for m in 0..=self.minutes {
            let c = self.at_minute(m);
            let ts = self.start + m * 60;
            if m > 0 {
                let n = (c.requests_per_second * 60.0).round() as u64;
                let e = (n as f64 * c.error_rate).round() as u64;
                requests += n;
                errors += e;
                // 96% just under the P95, 4% at twice it: the 0.95 quantile
                // falls in the bucket holding the P95.
                let low = ((n as f64) * 0.96).round() as u64;
                let high = n - low;
                let (lat_low, lat_high) =
                    (c.p95_ms * 0.99 / 1000.0, (c.p95_ms * 2.0 / 1000.0).min(2.4));
                for (i, le) in BUCKETS.iter().enumerate() {
                    buckets[i] += if lat_low <= *le { low } else { 0 }
                        + if lat_high <= *le { high } else { 0 };
                }
                count += n;
                sum += low as f64 * lat_low + high as f64 * lat_high;
            }
            writeln!(req_lines, "genesis_requests_total {requests} {ts}").unwrap();
            writeln!(err_lines, "genesis_errors_total {errors} {ts}").unwrap();
            for (i, le) in BUCKETS.iter().enumerate() {
                writeln!(
                    hist_lines,
                    "genesis_request_duration_seconds_bucket{{le=\"{le}\"}} {} {ts}",
                    buckets[i]
                )
                .unwrap();
            }
            writeln!(
                hist_lines,
                "genesis_request_duration_seconds_bucket{{le=\"+Inf\"}} {count} {ts}"
            )
            .unwrap();
            writeln!(
                hist_lines,
                "genesis_request_duration_seconds_count {count} {ts}"
            )
            .unwrap();
            writeln!(
                hist_lines,
                "genesis_request_duration_seconds_sum {sum} {ts}"
            )
            .unwrap();
            for job in JOBS {
                let up = u8::from(!c.jobs_down.iter().any(|j| j == job));
                writeln!(up_lines, "up{{job=\"{job}\"}} {up} {ts}").unwrap();
            }
            for alert in &c.critical_alerts {
                writeln!(alert_lines, "ALERTS{{alertname=\"{alert}\",alertstate=\"firing\",severity=\"critical\"}} 1 {ts}").unwrap();
            }
        }
        let mut out = String::new();
        out.push_str("# TYPE genesis_requests counter\n");
        out.push_str(&req_lines);
        out.push_str("# TYPE genesis_errors counter\n");
        out.push_str(&err_lines);
        out.push_str("# TYPE genesis_request_duration_seconds histogram\n");
        out.push_str(&hist_lines);
        out.push_str("# TYPE up gauge\n");
        out.push_str(&sort_by_series(&up_lines));
        if !alert_lines.is_empty() {
            out.push_str("# TYPE ALERTS gauge\n");
            out.push_str(&sort_by_series(&alert_lines));
        }
        out.push_str("# EOF\n");
        out
    }
}

/// Groups lines by series (the text before the value), keeping time order
/// within each series.
fn sort_by_series(lines: &str) -> String {
    let mut series: Vec<(&str, Vec<&str>)> = Vec::new();
    for line in lines.lines() {
        let key = line.rsplitn(3, ' ').nth(2).unwrap_or(line);
        match series.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => v.push(line),
            None => series.push((key, vec![line])),
        }
    }
    series
        .into_iter()
        .flat_map(|(_, v)| v)
        .map(|l| format!("{l}\n"))
        .collect()
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
