//! The example service and load generator as child processes, for live
//! tests: each instance on a free loopback port, ready once `/metrics`
//! answers, killed when dropped (even on panic). Also a PromQL instant
//! query against a running Prometheus.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Once;
use std::time::{Duration, Instant};

/// The example binaries, built once with every feature (as the controller's
/// support builds it, so both share one build).
pub fn example(name: &str) -> PathBuf {
    static BUILD: Once = Once::new();
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().unwrap().parent().unwrap().to_path_buf();
    let release = profile_dir.file_name().is_some_and(|n| n == "release");
    BUILD.call_once(|| {
        let mut cargo = Command::new(env!("CARGO"));
        cargo.current_dir(env!("CARGO_MANIFEST_DIR")).args([
            "build",
            "--quiet",
            "--example",
            "service",
            "--example",
            "loadgen",
            "--all-features",
        ]);
        if release {
            cargo.arg("--release");
        }
        let status = cargo.status().expect("run cargo");
        assert!(status.success(), "building the service examples failed");
    });
    let bin = profile_dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(bin.exists(), "{} is missing", bin.display());
    bin
}

/// A child process killed on drop.
pub struct Process {
    pub child: Child,
    pub name: String,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One HTTP/1.0 exchange on loopback: (status, body).
pub fn http(port: u16, method: &str, path: &str, body: &str) -> Option<(u16, String)> {
    http_to(
        std::net::IpAddr::from([127, 0, 0, 1]),
        port,
        method,
        path,
        body,
    )
}

/// One HTTP/1.0 exchange with `ip:port`: (status, body).
pub fn http_to(
    ip: std::net::IpAddr,
    port: u16,
    method: &str,
    path: &str,
    body: &str,
) -> Option<(u16, String)> {
    let mut s = TcpStream::connect((ip, port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text
        .split_once("\r\n\r\n")
        .map_or(String::new(), |(_, b)| b.to_owned());
    Some((status, body))
}

/// A service instance following `flags`, with `base_error_ratio` of every
/// request failing; its log goes to `dir/service-<port>.log`.
pub struct Service {
    pub port: u16,
    pub process: Process,
}

impl Service {
    pub fn start(dir: &Path, flags: &Path, base_error_ratio: f64) -> Service {
        Self::start_on(dir, flags, base_error_ratio, "127.0.0.1")
    }

    /// As `start`, listening on `host` (`0.0.0.0` for every interface).
    pub fn start_on(dir: &Path, flags: &Path, base_error_ratio: f64, host: &str) -> Service {
        let source = [std::ffi::OsStr::new("--flags"), flags.as_os_str()];
        Self::start_with(dir, &source, base_error_ratio, host)
    }

    /// An instance polling `url` for its flags (`--flags-url`).
    pub fn start_url(dir: &Path, url: &str) -> Service {
        let source = [
            std::ffi::OsStr::new("--flags-url"),
            std::ffi::OsStr::new(url),
        ];
        Self::start_with(dir, &source, 0.0, "127.0.0.1")
    }

    /// An instance with `source` (the flags arguments) on `host`.
    pub fn start_with(
        dir: &Path,
        source: &[&std::ffi::OsStr],
        base_error_ratio: f64,
        host: &str,
    ) -> Service {
        for _attempt in 0..5 {
            let port = free_port();
            let log = std::fs::File::create(dir.join(format!("service-{port}.log"))).unwrap();
            let child = Command::new(example("service"))
                .arg("--listen")
                .arg(format!("{host}:{port}"))
                .args(source)
                .args(["--poll", "200ms", "--base-error-ratio"])
                .arg(base_error_ratio.to_string())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("start the service example");
            let mut process = Process {
                child,
                name: format!("service :{port}"),
            };
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if let Some((200, _)) = http(port, "GET", "/metrics", "") {
                    return Service { port, process };
                }
                if let Ok(Some(_)) = process.child.try_wait() {
                    break; // most likely the port was taken: another one
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        panic!(
            "the service example did not start (logs in {})",
            dir.display()
        );
    }

    /// Sets the in-cohort fault; panics unless the service accepts it.
    pub fn fault(&self, error_ratio: f64) {
        let body = format!(r#"{{"error_ratio": {error_ratio}, "latency_ms": 0}}"#);
        let answer = http(self.port, "POST", "/admin/fault", &body);
        assert!(
            matches!(answer, Some((200, _))),
            "fault not set: {answer:?}"
        );
    }

    /// The value of one unlabelled-enough series line of `/metrics`.
    pub fn metric(&self, line_prefix: &str) -> Option<f64> {
        let (_, text) = http(self.port, "GET", "/metrics", "")?;
        text.lines()
            .find_map(|l| l.strip_prefix(line_prefix))
            .and_then(|v| v.trim().parse().ok())
    }
}

/// The load generator against `ports` at `rate` requests per second.
pub fn loadgen(dir: &Path, ports: &[u16], rate: u32) -> Process {
    let log = std::fs::File::create(dir.join("loadgen.log")).unwrap();
    let mut cmd = Command::new(example("loadgen"));
    for port in ports {
        cmd.arg("--target").arg(format!("127.0.0.1:{port}"));
    }
    let child = cmd
        .args(["--rate", &rate.to_string(), "--report-every", "5s"])
        .stdout(log)
        .stderr(Stdio::null())
        .spawn()
        .expect("start the loadgen example");
    Process {
        child,
        name: "loadgen".into(),
    }
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// An instant query's single value (`None` when empty, NaN or unreachable).
pub fn query(prometheus_port: u16, promql: &str) -> Option<f64> {
    let path = format!("/api/v1/query?query={}", percent_encode(promql));
    let (status, body) = http(prometheus_port, "GET", &path, "")?;
    if status != 200 {
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(&body).ok()?;
    let value = v["data"]["result"].get(0)?["value"][1]
        .as_str()?
        .parse::<f64>()
        .ok()?;
    value.is_finite().then_some(value)
}

/// Polls `condition` every 250 ms until it holds or `limit` passes.
pub fn wait_for(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    condition()
}
