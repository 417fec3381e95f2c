//! The Prometheus gate against a real Prometheus server holding a backfilled
//! scenario, and against a loopback stub that misbehaves in every way.

#![cfg(feature = "prometheus")]

use crate::support::prometheus as prom;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use genesis_flags::rollout::prometheus::{
    GateConfig, PrometheusClient, PrometheusGate, QueryError, ServerConfig,
};
use genesis_flags::rollout::simulation::{Event, Scenario};
use genesis_flags::rollout::{
    HealthGate, Observation, Plan, Reading, Timestamp, Verdict, Verdicts,
};
use prom::{event, minute, PrometheusServer};

fn gate_for(url: &str, extra: &str) -> PrometheusGate {
    let config = GateConfig::from_json(&format!(
        r#"{{ "prometheus": {{ "url": "{url}" }} {extra} }}"#
    ))
    .unwrap();
    PrometheusGate::new(config).unwrap()
}

fn judge(obs: &Observation, tier: &str) -> Verdicts {
    let plan = Plan::six_day();
    Verdicts::judge(obs, plan.tier(tier).unwrap(), &plan.go, plan.min_requests)
}

fn value(r: &Reading<f64>) -> f64 {
    match r {
        Reading::Value(v) => *v,
        other => panic!("expected a value, got {other:?}"),
    }
}

/// Ten hours ago, six hours of per-minute data with one event each hour.
fn scenario() -> Scenario {
    let mut s = prom::scenario_hours_ago(10, 360);
    s.events = vec![
        Event {
            error_rate: Some(0.012),
            ..event(60, 90)
        },
        Event {
            requests_per_second: Some(0.0),
            ..event(120, 180)
        },
        Event {
            jobs_down: Some(vec!["genesis".into()]),
            ..event(200, 230)
        },
        Event {
            critical_alerts: Some(vec!["GenesisHighErrorRate".into()]),
            ..event(250, 280)
        },
        Event {
            p95_ms: Some(450.0),
            ..event(300, 330)
        },
    ];
    s
}

#[test]
fn the_gate_reads_what_the_scenario_implies() {
    if !prom::available("the_gate_reads_what_the_scenario_implies") {
        return;
    }
    let s = scenario();
    let server = PrometheusServer::start(&s.openmetrics(), "[]");
    let mut gate = gate_for(&server.url, "");
    let at = |m: u64| minute(&s, m);

    // Healthy: 0.05% errors, P95 in the (0.1, 0.2] s bucket, 200 rps.
    let healthy = gate.observe(at(40));
    let error = value(&healthy.error_rate);
    assert!(
        (error - 0.0005).abs() <= 0.0005 * 0.01,
        "error ratio {error}"
    );
    let p95 = value(&healthy.p95_ms);
    assert!(
        p95 > 100.0 && p95 <= 200.0,
        "P95 {p95} ms outside its bucket (100, 200]"
    );
    let requests = value(&healthy.requests);
    assert!(
        (requests - 60_000.0).abs() <= 600.0,
        "requests in 5 min: {requests}"
    );
    let Reading::Value(checks) = &healthy.health else {
        panic!("{:?}", healthy.health)
    };
    assert_eq!(checks.len(), 5);
    assert!(checks.iter().all(|c| c.passed), "{checks:?}");
    assert_eq!(healthy.critical_alerts, Reading::Value(vec![]));
    let v = judge(&healthy, "canary");
    assert!(v.go(), "{v:?}");

    // The error spike: 1.2%, within 1% of the true ratio, a canary breach.
    let spike = gate.observe(at(80));
    let error = value(&spike.error_rate);
    assert!((error - 0.012).abs() <= 0.012 * 0.01, "error ratio {error}");
    assert_eq!(judge(&spike, "canary").error_rate.verdict, Verdict::Breach);

    // No traffic: NoData, never Pass.
    let quiet = gate.observe(at(150));
    let v = judge(&quiet, "canary");
    assert_eq!(
        v.error_rate.verdict,
        Verdict::NoData,
        "{:?}",
        quiet.error_rate
    );
    assert_eq!(v.p95.verdict, Verdict::NoData, "{:?}", quiet.p95_ms);

    // A job down fails its health check.
    let down = gate.observe(at(215));
    let Reading::Value(checks) = &down.health else {
        panic!("{:?}", down.health)
    };
    let failing: Vec<&str> = checks
        .iter()
        .filter(|c| !c.passed)
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(failing, ["genesis"]);
    assert_eq!(judge(&down, "canary").health.verdict, Verdict::Breach);

    // A firing critical alert shows up and blocks go.
    let alerting = gate.observe(at(265));
    assert_eq!(
        alerting.critical_alerts,
        Reading::Value(vec!["GenesisHighErrorRate".to_owned()])
    );
    assert!(!judge(&alerting, "canary").go());

    // The latency spike: P95 in the (0.4, 0.5] s bucket.
    let slow = gate.observe(at(320));
    let p95 = value(&slow.p95_ms);
    assert!(p95 > 400.0 && p95 <= 500.0, "P95 {p95}");
    assert_eq!(judge(&slow, "canary").p95.verdict, Verdict::Breach);

    // Past the data (lookback is 5 min): no data at all, not an error.
    let after = gate.observe(at(s.duration.as_secs() / 60 + 60));
    assert_eq!(after.error_rate, Reading::Missing);
    assert_eq!(after.health, Reading::Missing);
    assert!(judge(&after, "canary")
        .all()
        .iter()
        .any(|c| c.verdict == Verdict::NoData));
}

#[test]
fn a_template_prometheus_cannot_parse_is_an_error_naming_it() {
    if !prom::available("a_template_prometheus_cannot_parse_is_an_error_naming_it") {
        return;
    }
    let s = prom::scenario_hours_ago(4, 30);
    let server = PrometheusServer::start(&s.openmetrics(), "[]");
    let mut gate = gate_for(
        &server.url,
        r#", "queries": { "error_rate": "sum(rate(genesis_errors_total[5m]" }"#,
    );
    let obs = gate.observe(minute(&s, 20));
    let Reading::Failed(why) = &obs.error_rate else {
        panic!("{:?}", obs.error_rate)
    };
    assert!(
        why.contains("error_rate") && why.contains("bad_data"),
        "{why}"
    );
    assert!(why.contains(&server.url), "{why}");
    assert_eq!(judge(&obs, "canary").error_rate.verdict, Verdict::Error);
    // The other queries are unaffected.
    assert!(
        matches!(obs.requests, Reading::Value(_)),
        "{:?}",
        obs.requests
    );
}

#[test]
fn query_range_returns_a_matrix() {
    if !prom::available("query_range_returns_a_matrix") {
        return;
    }
    let s = prom::scenario_hours_ago(4, 60);
    let server = PrometheusServer::start(&s.openmetrics(), "[]");
    let client = PrometheusClient::new(&ServerConfig {
        url: server.url.clone(),
        ..ServerConfig::default()
    })
    .unwrap();
    let r = client
        .query_range(
            "up{job=\"genesis\"}",
            minute(&s, 10),
            minute(&s, 20),
            Duration::from_secs(60),
        )
        .unwrap();
    let genesis_flags::rollout::prometheus::QueryResult::Matrix(series) = &r.result else {
        panic!("{r:?}")
    };
    assert_eq!(series.len(), 1);
    assert_eq!(series[0].values.len(), 11);
}

/// A loopback server answering every request with `response` (raw HTTP).
fn stub(response: impl Fn() -> Vec<u8> + Send + 'static) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let reply = response();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
                let _ = stream.read(&mut buf);
                let _ = stream.write_all(&reply);
            });
        }
    });
    url
}

fn http(status: &str, content_type: &str, body: &str) -> Vec<u8> {
    format!("HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).into_bytes()
}

fn fast_client(url: &str, max: u64) -> PrometheusClient {
    PrometheusClient::new(&ServerConfig {
        url: url.to_owned(),
        connect_timeout: Duration::from_millis(500),
        read_timeout: Duration::from_millis(700),
        max_response_bytes: max,
        ..ServerConfig::default()
    })
    .unwrap()
}

fn query(url: &str) -> Result<Option<f64>, QueryError> {
    fast_client(url, 16 << 20)
        .query("x", Timestamp::from_unix_millis(1_700_000_000_000))
        .and_then(|r| r.single_value())
}

#[test]
fn faults_are_errors_or_no_data_never_a_pass() {
    let json = "application/json";
    let refused = {
        let port = prom::free_port();
        format!("http://127.0.0.1:{port}")
    };
    let cases: Vec<(&str, String, &str)> = vec![
        ("connection refused", refused, "cannot connect"),
        (
            "400 bad_data",
            stub(move || {
                http(
                    "400 Bad Request",
                    json,
                    r#"{"status":"error","errorType":"bad_data","error":"1:5: parse error: unclosed left parenthesis"}"#,
                )
            }),
            "bad_data",
        ),
        (
            "422 execution",
            stub(move || {
                http(
                    "422 Unprocessable Entity",
                    json,
                    r#"{"status":"error","errorType":"execution","error":"found duplicate series"}"#,
                )
            }),
            "execution",
        ),
        (
            "503 unavailable",
            stub(move || {
                http(
                    "503 Service Unavailable",
                    json,
                    r#"{"status":"error","errorType":"unavailable","error":"TSDB not ready"}"#,
                )
            }),
            "unavailable",
        ),
        (
            "502 HTML",
            stub(move || {
                http(
                    "502 Bad Gateway",
                    "text/html",
                    "<html><body><h1>502 Bad Gateway</h1></body></html>",
                )
            }),
            "HTTP 502 without a Prometheus error body",
        ),
        (
            "malformed JSON",
            stub(move || http("200 OK", json, "{\"status\": \"success\", \"data\": ")),
            "malformed",
        ),
        (
            "truncated body",
            stub(move || {
                let mut r = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 500\r\nConnection: close\r\n\r\n".to_vec();
                r.extend_from_slice(br#"{"status":"success","data":{"resultType":"vector","res"#);
                r
            }),
            "truncated response",
        ),
        (
            "several series",
            stub(move || {
                http(
                    "200 OK",
                    json,
                    r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"pod":"a"},"value":[1,"1"]},{"metric":{"pod":"b"},"value":[1,"2"]}]}}"#,
                )
            }),
            "a vector of 2 series",
        ),
    ];
    for (name, url, needle) in cases {
        let err = query(&url).expect_err(name);
        assert!(err.to_string().contains(needle), "{name}: {err}");
    }
}

#[test]
fn a_server_that_never_answers_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming() {
            held.push(s); // accept, never answer
        }
    });
    let started = Instant::now();
    let err = query(&url).unwrap_err();
    assert!(matches!(err, QueryError::Timeout(_)), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn a_50_mb_body_is_cut_off_at_the_limit() {
    let url = stub(|| {
        let mut r = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 52428800\r\nConnection: close\r\n\r\n".to_vec();
        r.resize(r.len() + 50 * 1024 * 1024, b' ');
        r
    });
    // A patient client: this test is about the size limit, and a loaded
    // machine may take a while to produce the first byte of 50 MB.
    let patient = PrometheusClient::new(&ServerConfig {
        url: url.clone(),
        read_timeout: Duration::from_secs(30),
        max_response_bytes: 1 << 20,
        ..ServerConfig::default()
    })
    .unwrap();
    let err = patient
        .query("x", Timestamp::from_unix_millis(1_700_000_000_000))
        .unwrap_err();
    assert!(
        matches!(err, QueryError::TooLarge { limit: 1_048_576 }),
        "{err}"
    );
}

#[test]
fn nan_values_are_no_data_and_failures_name_the_query_and_server() {
    let nan = stub(|| {
        http(
            "200 OK",
            "application/json",
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700000000,"NaN"]}]}}"#,
        )
    });
    let mut gate = gate_for(&nan, "");
    let obs = gate.observe(Timestamp::from_unix_millis(1_700_000_000_000));
    assert!(matches!(obs.error_rate, Reading::Value(v) if v.is_nan()));
    let v = judge(&obs, "canary");
    assert_eq!(v.error_rate.verdict, Verdict::NoData);
    assert!(!v.go());

    let html = stub(|| http("502 Bad Gateway", "text/html", "<html>bad gateway</html>"));
    let mut gate = gate_for(&html, "");
    let obs = gate.observe(Timestamp::from_unix_millis(1_700_000_000_000));
    let Reading::Failed(why) = &obs.error_rate else {
        panic!("{:?}", obs.error_rate)
    };
    assert!(
        why.contains("query error_rate") && why.contains(&html) && why.contains("HTTP 502"),
        "{why}"
    );
    let v = judge(&obs, "canary");
    assert!(v.all().iter().all(|c| c.verdict == Verdict::Error), "{v:?}");
}

/// A loopback server that records each request's head and answers `body`.
fn recording_stub(body: &'static str) -> (String, std::sync::mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let tx = tx.clone();
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 8192];
                let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
                let n = stream.read(&mut buf).unwrap_or(0);
                let _ = tx.send(String::from_utf8_lossy(&buf[..n]).into_owned());
                let _ = stream.write_all(&http("200 OK", "application/json", body));
            });
        }
    });
    (url, rx)
}

#[test]
fn credentials_are_sent_and_warnings_kept() {
    let body = r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700000000,"1"]}]},"warnings":["query touched 3 blocks"],"infos":["histogram bucket le=0.3 is sparse"]}"#;

    let (url, requests) = recording_stub(body);
    std::env::set_var("GENESIS_FLAGS_TEST_BEARER", "tok-123");
    let config = GateConfig::from_json(&format!(
        r#"{{ "prometheus": {{ "url": "{url}", "bearer_token_env": "GENESIS_FLAGS_TEST_BEARER" }} }}"#
    ))
    .unwrap();
    let mut gate = PrometheusGate::new(config).unwrap();
    let obs = gate.observe(Timestamp::from_unix_millis(1_700_000_000_000));
    let head = requests.recv_timeout(Duration::from_secs(2)).unwrap();
    assert!(
        head.contains("Authorization: Bearer tok-123")
            || head.contains("authorization: Bearer tok-123"),
        "{head}"
    );
    assert!(head.contains("time=1700000000.000"), "{head}");
    assert!(
        !format!("{gate:?}").contains("tok-123"),
        "the token leaked into Debug output"
    );
    assert!(
        obs.notes
            .iter()
            .any(|n| n.contains("warning: query touched 3 blocks")),
        "{:?}",
        obs.notes
    );
    assert!(
        obs.notes
            .iter()
            .any(|n| n.contains("info: histogram bucket")),
        "{:?}",
        obs.notes
    );

    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("password");
    std::fs::write(&secret, "hunter2\n").unwrap();
    let (url, requests) = recording_stub(body);
    let config = GateConfig::from_json(&format!(
        r#"{{ "prometheus": {{ "url": "{url}", "basic_auth": {{ "username": "ops", "password_file": {:?} }} }} }}"#,
        secret.display().to_string()
    ))
    .unwrap();
    let client = PrometheusClient::new(&config.prometheus).unwrap();
    client
        .query("up", Timestamp::from_unix_millis(1_700_000_000_000))
        .unwrap();
    let head = requests.recv_timeout(Duration::from_secs(2)).unwrap();
    // base64("ops:hunter2")
    assert!(head.contains("Basic b3BzOmh1bnRlcjI="), "{head}");
}

/// Asserts `hunter2` is nowhere in an observation: its Debug output, its
/// JSON, or any failure message or note.
fn assert_no_password(obs: &Observation) {
    let json = serde_json::to_string(obs).unwrap();
    let debug = format!("{obs:?}");
    assert!(!json.contains("hunter2"), "{json}");
    assert!(!debug.contains("hunter2"), "{debug}");
    assert!(
        !obs.notes.iter().any(|n| n.contains("hunter2")),
        "{:?}",
        obs.notes
    );
}

#[test]
fn credentials_in_the_url_are_used_and_never_shown() {
    let t = Timestamp::from_unix_millis(1_700_000_000_000);
    let with_password = |url: &str| url.replacen("http://", "http://ops:hunter2@", 1);
    let config_for = |url: &str| {
        GateConfig::from_json(&format!(
            r#"{{ "prometheus": {{ "url": "{}", "connect_timeout": "500ms", "read_timeout": "700ms" }} }}"#,
            with_password(url)
        ))
        .unwrap()
    };

    // Sent as basic auth.
    let (url, requests) = recording_stub(
        r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700000000,"1"]}]}}"#,
    );
    let config = config_for(&url);
    assert!(!format!("{config:?}").contains("hunter2"), "{config:?}");
    let gate = PrometheusGate::new(config).unwrap();
    gate.client().query("up", t).unwrap();
    let head = requests.recv_timeout(Duration::from_secs(2)).unwrap();
    // base64("ops:hunter2")
    assert!(head.contains("Basic b3BzOmh1bnRlcjI="), "{head}");
    assert!(!format!("{gate:?}").contains("hunter2"), "{gate:?}");
    assert_eq!(gate.client().url(), url);

    // A refused connection: every reading fails, naming the server without the password.
    let refused = format!("http://127.0.0.1:{}", prom::free_port());
    let mut gate = PrometheusGate::new(config_for(&refused)).unwrap();
    let obs = gate.observe(t);
    let Reading::Failed(why) = &obs.error_rate else {
        panic!("{:?}", obs.error_rate)
    };
    assert!(
        why.contains(&refused) && why.contains("cannot connect"),
        "{why}"
    );
    assert_no_password(&obs);
    let err = gate.client().query("up", t).unwrap_err();
    assert!(!format!("{err} {err:?}").contains("hunter2"), "{err:?}");

    // A server that never answers: timeouts, the same.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let silent = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming() {
            held.push(s); // accept, never answer
        }
    });
    let mut gate = PrometheusGate::new(config_for(&silent)).unwrap();
    let obs = gate.observe(t);
    let Reading::Failed(why) = &obs.requests else {
        panic!("{:?}", obs.requests)
    };
    assert!(why.contains(&silent) && why.contains("timed out"), "{why}");
    assert_no_password(&obs);

    // A URL that is refused says so without the password.
    let err = PrometheusGate::new(
        GateConfig::from_json(r#"{ "prometheus": { "url": "ftp://ops:hunter2@host:9090" } }"#)
            .unwrap(),
    )
    .unwrap_err();
    let shown = format!("{err} {err:?}");
    assert!(
        shown.contains("ftp://***@host:9090") && !shown.contains("hunter2"),
        "{shown}"
    );
}

/// The scenario observed directly and through a real Prometheus holding its
/// samples agree at every minute: same errors, latency, traffic, health and
/// alerts. This is what lets a simulation use either source.
#[test]
fn direct_and_prometheus_observations_agree() {
    if !prom::available("direct_and_prometheus_observations_agree") {
        return;
    }
    let s = scenario();
    let server = PrometheusServer::start(&s.openmetrics(), "[]");
    let mut through_prometheus = gate_for(&server.url, "");
    let mut direct = s.gate(Duration::from_secs(300));
    let close = |a: &Reading<f64>, b: &Reading<f64>, tol: f64| match (a, b) {
        (Reading::Value(x), Reading::Value(y)) => {
            (x.is_nan() && y.is_nan()) || (x - y).abs() <= tol * x.abs().max(1.0)
        }
        (x, y) => x == y,
    };
    let sorted = |r: &Reading<Vec<genesis_flags::rollout::HealthCheck>>| match r {
        Reading::Value(v) => {
            let mut v: Vec<(String, bool)> = v.iter().map(|c| (c.name.clone(), c.passed)).collect();
            v.sort();
            Some(v)
        }
        _ => None,
    };
    for m in 6..s.duration.as_secs() / 60 {
        let at = minute(&s, m);
        let (p, d) = (through_prometheus.observe(at), direct.observe(at));
        assert!(
            close(&p.error_rate, &d.error_rate, 1e-9),
            "minute {m}: error rate {:?} vs {:?}",
            p.error_rate,
            d.error_rate
        );
        assert!(
            close(&p.p95_ms, &d.p95_ms, 1e-6),
            "minute {m}: P95 {:?} vs {:?}",
            p.p95_ms,
            d.p95_ms
        );
        assert!(
            close(&p.requests, &d.requests, 1e-9),
            "minute {m}: requests {:?} vs {:?}",
            p.requests,
            d.requests
        );
        assert_eq!(sorted(&p.health), sorted(&d.health), "minute {m}: health");
        assert_eq!(p.critical_alerts, d.critical_alerts, "minute {m}: alerts");
    }
}

/// A whole (short) plan simulated on a real Prometheus holding a scenario's
/// samples reaches the same decisions, at the same ticks, as the simulation
/// that reads the scenario directly.
#[test]
fn simulations_agree_on_either_source() {
    use genesis_flags::rollout::simulation::{simulate, Outcome, SimulationOptions};
    if !prom::available("simulations_agree_on_either_source") {
        return;
    }
    let plan = Plan::from_json(
        r#"{ "name": "short", "signoffs": ["deployment_lead"],
             "stages": [ { "percentage": 5, "soak": "20m", "report_every": "5m", "tier": "canary" },
                         { "percentage": 25, "soak": "20m", "report_every": "5m", "tier": "mid" },
                         { "percentage": 100, "soak": "20m", "report_every": "5m", "tier": "late" } ],
             "final": { "duration": "40m", "report_every": "10m", "tier": "late" },
             "tiers": { "canary": { "error_rate_percent": 0.5, "p95_ms": 300, "sustained": "5m", "consecutive_health_failures": 3 },
                        "mid": { "error_rate_percent": 0.8, "p95_ms": 400, "sustained": "5m", "consecutive_health_failures": 4 },
                        "late": { "error_rate_percent": 1.0, "p95_ms": 500, "sustained": "5m", "consecutive_health_failures": 5 } },
             "go": { "error_rate_percent_below": 0.1, "p95_ms_below": 200 } }"#,
    )
    .unwrap();
    let cases = [
        // An alert holds stage 1 past its soak; then it completes.
        (
            vec![Event {
                critical_alerts: Some(vec!["GenesisDown".into()]),
                ..event(15, 30)
            }],
            Outcome::Completed,
        ),
        // Errors in stage 2 (mid) roll back.
        (
            vec![Event {
                error_rate: Some(0.02),
                ..event(45, 70)
            }],
            Outcome::RolledBack,
        ),
        // A job down in stage 1 (canary) rolls back on the third failed tick.
        (
            vec![Event {
                jobs_down: Some(vec!["grafana".into()]),
                ..event(10, 20)
            }],
            Outcome::RolledBack,
        ),
    ];
    for (events, expected) in cases {
        let mut s = prom::scenario_hours_ago(8, 240);
        s.events = events;
        let server = PrometheusServer::start(&s.openmetrics(), "[]");
        let options = SimulationOptions {
            rollout: "phase_4_deployment".into(),
            start: s.start,
            until: s.start + Duration::from_secs(230 * 60),
            tick: Duration::from_secs(60),
            auto_signoff: true,
            keep_samples: false,
        };
        let direct = simulate(plan.clone(), s.gate(Duration::from_secs(300)), &options);
        let via_prometheus = simulate(plan.clone(), gate_for(&server.url, ""), &options);
        let brief = |sim: &genesis_flags::rollout::simulation::Simulation| {
            sim.events
                .iter()
                .map(|e| (e.offset.clone(), e.decision.clone(), e.stage))
                .collect::<Vec<_>>()
        };
        assert_eq!(brief(&via_prometheus), brief(&direct), "{:?}", s.events);
        assert_eq!(via_prometheus.outcome, direct.outcome);
        assert_eq!(direct.outcome, expected, "{:?}", direct.events);
    }
}
