//! The controller against a real Prometheus: `deploy --wait` watching a
//! service that Prometheus scrapes every second (a small exporter inside the
//! test), and `simulate --prometheus` on backfilled scenario samples.

#![cfg(feature = "prometheus")]

use crate::support::controller as bin;
use crate::support::prometheus as prom;
use bin::run;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Output;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

/// Serves `/metrics` for a service doing 200 requests/s at the error rate
/// (in ppm) held by the returned atomic; counters grow with wall time.
fn exporter() -> (u16, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let error_ppm = Arc::new(AtomicU64::new(500));
    let errors = Arc::clone(&error_ppm);
    std::thread::spawn(move || {
        let started = Instant::now();
        let (mut requests, mut failed, mut last) = (0f64, 0f64, 0f64);
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 2048];
            let _ = stream.read(&mut buf);
            let now = started.elapsed().as_secs_f64();
            let new = (now - last) * 200.0;
            last = now;
            requests += new;
            failed += new * errors.load(Ordering::SeqCst) as f64 / 1e6;
            let (r, f) = (requests.round(), failed.round());
            let body = format!(
                "# TYPE genesis_requests_total counter\ngenesis_requests_total {r}\n\
                 # TYPE genesis_errors_total counter\ngenesis_errors_total {f}\n\
                 # TYPE genesis_request_duration_seconds histogram\n\
                 genesis_request_duration_seconds_bucket{{le=\"0.1\"}} {r}\n\
                 genesis_request_duration_seconds_bucket{{le=\"0.2\"}} {r}\n\
                 genesis_request_duration_seconds_bucket{{le=\"+Inf\"}} {r}\n\
                 genesis_request_duration_seconds_sum {}\ngenesis_request_duration_seconds_count {r}\n",
                r * 0.08
            );
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (port, error_ppm)
}

const PLAN: &str = r#"{ "name": "live", "signoffs": [],
  "stages": [ { "percentage": 5, "soak": "1h", "report_every": "15m", "tier": "canary" },
              { "percentage": 100, "soak": "1h", "report_every": "15m", "tier": "late" } ],
  "final": { "duration": "1h", "report_every": "1h", "tier": "late" },
  "tiers": { "canary": { "error_rate_percent": 0.5, "p95_ms": 300, "sustained": "4s", "consecutive_health_failures": 3 },
             "late": { "error_rate_percent": 1.0, "p95_ms": 500, "sustained": "4s", "consecutive_health_failures": 5 } },
  "go": { "error_rate_percent_below": 0.1, "p95_ms_below": 200 } }"#;

fn setup(url: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("plan.json"), PLAN).unwrap();
    std::fs::write(
        d.join("gate.json"),
        format!(
            r#"{{ "prometheus": {{ "url": "{url}" }}, "variables": {{ "window": "30s" }},
                 "health_checks": {{ "genesis": "up{{job=\"genesis\"}}" }} }}"#
        ),
    )
    .unwrap();
    assert!(run(d, &["init", "--example-flags", "flags.json"])
        .status
        .success());
    let out = run(
        d,
        &[
            "init",
            "--flags",
            "flags.json",
            "--rollout",
            "phase_4_deployment",
            "--plan",
            "plan.json",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}

fn flags_percentage(d: &Path) -> Value {
    let v: Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("flags.json")).unwrap()).unwrap();
    v["rollouts"]["phase_4_deployment"]["percentage"].clone()
}

#[test]
fn deploy_waits_on_a_live_service_and_rolls_back_a_breach() {
    if !prom::available("deploy_waits_on_a_live_service_and_rolls_back_a_breach") {
        return;
    }
    let (port, error_ppm) = exporter();
    let scrape = format!("[{{ job_name: genesis, scrape_interval: 1s, static_configs: [{{ targets: ['127.0.0.1:{port}'] }}] }}]");
    let server = prom::PrometheusServer::start("", &scrape);
    // Enough scrapes for rate() over 30 s.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ready = prom::http_get(
            server.port,
            "/api/v1/query?query=count_over_time(up%7Bjob%3D%22genesis%22%7D%5B30s%5D)",
        )
        .is_some_and(|(_, body)| {
            body.contains("\"value\"") && !body.contains("\"1\"]") && !body.contains("\"2\"]")
        });
        if ready || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    std::thread::sleep(Duration::from_secs(3));

    // Healthy: exit 0, the flags file at 5%.
    let healthy = setup(&server.url);
    let out = run(
        healthy.path(),
        &[
            "deploy",
            "--strategy",
            "safe",
            "--wait",
            "6",
            "--target-percentage",
            "5",
            "--gate",
            "gate.json",
            "--tick",
            "2s",
            "--metrics-textfile",
            "metrics.prom",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(flags_percentage(healthy.path()), 5);
    // `deploy --wait` exports the rollout it watched (the families are
    // tested in tests/observe.rs).
    let textfile = std::fs::read_to_string(healthy.path().join("metrics.prom")).unwrap();
    for line in [
        "genesis_rollout_phase{rollout=\"phase_4_deployment\",phase=\"soaking\"} 1",
        "genesis_rollout_stage{rollout=\"phase_4_deployment\"} 1",
        "genesis_rollout_target_ratio{rollout=\"phase_4_deployment\"} 0.05",
        "genesis_rollout_check_verdict{rollout=\"phase_4_deployment\",check=\"error_rate\",verdict=\"pass\"} 1",
    ] {
        assert!(textfile.lines().any(|l| l == line), "{line} not in:\n{textfile}");
    }
    assert!(
        textfile.lines().any(
            |l| l.starts_with("genesis_rollout_gate_duration_seconds_count ") && !l.ends_with(" 0")
        ),
        "{textfile}"
    );

    // An unreachable Prometheus: a one-line error, nothing written.
    let unreachable = setup(&format!("http://127.0.0.1:{}", prom::free_port()));
    let out = run(
        unreachable.path(),
        &[
            "deploy",
            "--wait",
            "1",
            "--target-percentage",
            "5",
            "--gate",
            "gate.json",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    // One line per check, each naming why it is blind.
    assert!(
        err.contains("deploy refused") && err.contains("cannot connect"),
        "{err}"
    );
    assert!(
        err.lines()
            .skip(1)
            .all(|l| l.starts_with("  ") && l.contains("never moves blind")),
        "{err}"
    );
    assert_eq!(flags_percentage(unreachable.path()), 0);

    // Not the next stage: refused, nothing written.
    let out = run(
        healthy.path(),
        &[
            "deploy",
            "--wait",
            "1",
            "--target-percentage",
            "50",
            "--gate",
            "gate.json",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("next stage"));
    assert_eq!(flags_percentage(healthy.path()), 5);

    // 5% errors: sustained past the tier's 4 s, rolled back to 0, non-zero exit.
    error_ppm.store(50_000, Ordering::SeqCst);
    std::thread::sleep(Duration::from_secs(12)); // the 30 s window fills with errors
                                                 // A safe deploy on a breach does not move: exit 1, the flags file stays.
    let breach = setup(&server.url);
    let out = run(
        breach.path(),
        &[
            "deploy",
            "--wait",
            "20",
            "--target-percentage",
            "5",
            "--gate",
            "gate.json",
            "--tick",
            "1s",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("error rate: breach"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(flags_percentage(breach.path()), 0);

    // The rollout already at 5%: `run` rolls it back to 0, non-zero exit.
    let out = run(
        healthy.path(),
        &["run", "--gate", "gate.json", "--tick", "1s"],
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("rollback"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(flags_percentage(healthy.path()), 0);

    // health-check reports the breach and exits non-zero.
    let out = run(
        breach.path(),
        &["health-check", "--gate", "gate.json", "--output", "json"],
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["pass"], false);
    let error_check = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "error_rate")
        .unwrap()
        .clone();
    assert_eq!(error_check["verdict"], "breach");
    assert!(error_check["query"]
        .as_str()
        .unwrap()
        .contains("genesis_errors_total[30s]"));
}

#[test]
fn simulate_on_prometheus_agrees_with_the_direct_simulation() {
    if !prom::available("simulate_on_prometheus_agrees_with_the_direct_simulation") {
        return;
    }
    let mut s = prom::scenario_hours_ago(9, 300);
    s.events = vec![genesis_flags::rollout::simulation::Event {
        error_rate: Some(0.02),
        ..prom::event(70, 120)
    }];
    let server = prom::PrometheusServer::start(&s.openmetrics(), "[]");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("scenario.json"), serde_json::to_string(&s).unwrap()).unwrap();
    std::fs::write(d.join("plan.json"), PLAN.replace("\"4s\"", "\"5m\"")).unwrap();
    let args = [
        "simulate",
        "--scenario",
        "scenario.json",
        "--plan",
        "plan.json",
        "--output",
        "json",
    ];
    let direct = run(d, &args);
    let mut with_prometheus = args.to_vec();
    with_prometheus.extend(["--prometheus", &server.url]);
    let via = run(d, &with_prometheus);
    let parse = |o: &Output| -> Value {
        serde_json::from_slice(&o.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stderr)))
    };
    let (a, b) = (parse(&direct), parse(&via));
    assert_eq!(a["outcome"], "rolled_back");
    assert_eq!(a["events"], b["events"]);
    assert_eq!(a["outcome"], b["outcome"]);
}
