//! The example service's contract, over HTTP: the critical flags and the
//! cohort per request, the series names and labels of `/metrics`, the
//! reloader behind `genesis_flags_rollout_percentage`, source info and
//! reload errors, the in-cohort-only fault, the loopback-only admin
//! endpoint and a graceful stop on SIGTERM.

use crate::support::live;

use std::net::{IpAddr, UdpSocket};
use std::path::Path;
use std::time::Duration;

use live::{http, Service};
use serde_json::Value;

const GENESIS: &str = include_str!("../examples/config/genesis.json");

fn flags_at(path: &Path, percentage: u32) {
    let at_five = r#""percentage": 5,"#;
    assert!(
        GENESIS.contains(at_five),
        "the example config changed shape"
    );
    let text = GENESIS.replace(at_five, &format!(r#""percentage": {percentage},"#));
    // Write then rename, as deploy tools do: the reloader never sees half a file.
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn work(s: &Service, user: &str) -> (u16, Value) {
    let (status, body) = http(s.port, "GET", &format!("/work?user={user}"), "").unwrap();
    (status, serde_json::from_str(&body).unwrap())
}

const PERCENTAGE: &str = r#"genesis_flags_rollout_percentage{rollout="phase_4_deployment"} "#;

#[test]
fn requests_are_labelled_by_cohort_and_faults_hit_the_in_cohort_only() {
    let dir = tempfile::tempdir().unwrap();
    let flags = dir.path().join("flags.json");
    flags_at(&flags, 100);
    let s = Service::start(dir.path(), &flags, 0.0);

    let (status, body) = work(&s, "user-1");
    assert_eq!(status, 200);
    assert_eq!(body["cohort"], "in");
    assert_eq!(body["flags_on"], 10);

    // Every in-cohort request fails under a 100% fault.
    let (status, body) = http(s.port, "POST", "/admin/fault", r#"{"error_ratio": 1.0}"#).unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(work(&s, "user-2").0, 500);
    let (status, _) = http(s.port, "POST", "/admin/fault", r#"{"error_ratio": 2}"#).unwrap();
    assert_eq!(status, 400);

    // At 0% nobody is in: the fault touches no request.
    flags_at(&flags, 0);
    assert!(live::wait_for(Duration::from_secs(20), || s
        .metric(PERCENTAGE)
        == Some(0.0)));
    for u in 0..50 {
        let (status, body) = work(&s, &format!("user-{u}"));
        assert_eq!((status, body["cohort"].as_str()), (200, Some("out")));
        assert_eq!(body["flags_on"], 0);
    }

    let (_, text) = http(s.port, "GET", "/metrics", "").unwrap();
    for series in [
        r#"genesis_requests_total{rollout="phase_4_deployment",cohort="in"} 2"#,
        r#"genesis_errors_total{rollout="phase_4_deployment",cohort="in"} 1"#,
        r#"genesis_requests_total{rollout="phase_4_deployment",cohort="out"} 50"#,
        r#"genesis_errors_total{rollout="phase_4_deployment",cohort="out"} 0"#,
        r#"genesis_request_duration_seconds_bucket{le="0.2",rollout="phase_4_deployment",cohort="in"} 2"#,
        r#"genesis_request_duration_seconds_count{rollout="phase_4_deployment",cohort="out"} 50"#,
        "genesis_flags_reload_errors_total 0",
        "genesis_flags_ready 1",
    ] {
        assert!(
            text.lines().any(|l| l == series),
            "no `{series}` in\n{text}"
        );
    }
    // The store's exposure counts: at 0% every evaluation was out.
    let out = r#"genesis_flags_evaluations_total{flag="htdag_enabled",variant="off",reason="out_of_rollout"} "#;
    assert!(
        text.lines().any(|l| l.starts_with(out)),
        "no `{out}` in\n{text}"
    );
    let version = |text: &str| -> String {
        let line = text
            .lines()
            .find(|l| l.starts_with("genesis_flags_source_info{version=\""))
            .unwrap_or_else(|| panic!("no source info in\n{text}"));
        assert!(line.ends_with("} 1"), "{line}");
        line.to_owned()
    };
    let before = version(&text);
    let hash = format!(
        "{:016x}",
        xxhash_rust::xxh3::xxh3_64(&std::fs::read(&flags).unwrap())
    );
    assert!(
        before.contains(&hash),
        "{before} is not the file's xxh3 {hash}"
    );

    // A bad file is refused and counted; the last good flags stay.
    std::fs::write(&flags, "{ not json").unwrap();
    assert!(live::wait_for(Duration::from_secs(20), || {
        s.metric("genesis_flags_reload_errors_total ") == Some(1.0)
    }));
    assert_eq!(s.metric(PERCENTAGE), Some(0.0));
    let (_, text) = http(s.port, "GET", "/metrics", "").unwrap();
    assert_eq!(version(&text), before);
    flags_at(&flags, 100);
    assert!(live::wait_for(Duration::from_secs(20), || s
        .metric(PERCENTAGE)
        == Some(100.0)));
    let (_, text) = http(s.port, "GET", "/metrics", "").unwrap();
    assert_ne!(version(&text), before);
}

/// A non-loopback address of this machine, if it has one (no packet is sent:
/// connecting a UDP socket only picks the route).
fn outward_ip() -> Option<IpAddr> {
    let socket = UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect("192.0.2.1:9").ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

#[test]
fn the_admin_endpoint_is_for_loopback_peers_only() {
    let Some(ip) = outward_ip() else {
        eprintln!("SKIPPED the_admin_endpoint_is_for_loopback_peers_only: no non-loopback address");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let flags = dir.path().join("flags.json");
    flags_at(&flags, 100);
    let s = Service::start_on(dir.path(), &flags, 0.0, "0.0.0.0");
    let fault = r#"{"error_ratio": 1.0}"#;
    let (status, body) = live::http_to(ip, s.port, "POST", "/admin/fault", fault).unwrap();
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("loopback"), "{body}");
    // Refused before the body is read: a bad body from outside is still 403.
    let (status, _) = live::http_to(ip, s.port, "POST", "/admin/fault", "{ nope").unwrap();
    assert_eq!(status, 403);
    // The service itself answers from outside, and the fault was not set.
    let (status, _) = live::http_to(ip, s.port, "GET", "/work?user=u", "").unwrap();
    assert_eq!(status, 200);
    let (status, body) = http(s.port, "GET", "/admin/fault", "").unwrap();
    assert_eq!(status, 200);
    let current: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(current["error_ratio"], 0.0);
}

#[cfg(unix)]
#[test]
fn sigterm_stops_the_service_gracefully() {
    let dir = tempfile::tempdir().unwrap();
    let flags = dir.path().join("flags.json");
    flags_at(&flags, 100);
    let mut s = Service::start(dir.path(), &flags, 0.0);
    let pid = s.process.child.id().to_string();
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(sent.success());
    let mut status = None;
    assert!(live::wait_for(Duration::from_secs(30), || {
        status = s.process.child.try_wait().unwrap();
        status.is_some()
    }));
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{status:?}");
    let log = std::fs::read_to_string(dir.path().join(format!("service-{}.log", s.port))).unwrap();
    assert!(log.contains("shutting down"), "{log}");
}

#[test]
fn a_service_that_never_loaded_its_flags_says_so() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens there: no document is ever loaded.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let s = Service::start_url(dir.path(), &format!("http://127.0.0.1:{port}/flags.json"));
    assert!(live::wait_for(Duration::from_secs(20), || s
        .metric("genesis_flags_reload_errors_total ")
        .is_some_and(|n| n > 0.0)));
    assert_eq!(s.metric("genesis_flags_ready "), Some(0.0));
    assert_eq!(
        s.metric("genesis_flags_last_reload_success_timestamp_seconds "),
        Some(0.0)
    );
    assert_eq!(s.metric("genesis_flags_source_from_cache "), Some(0.0));
    // Every flag is off while nothing loaded, and the metrics above say why.
    assert_eq!(work(&s, "user-1").1["flags_on"], 0);

    // A service on a file loads it: ready, a recent success.
    let flags = dir.path().join("flags.json");
    flags_at(&flags, 100);
    let s = Service::start(dir.path(), &flags, 0.0);
    assert_eq!(s.metric("genesis_flags_ready "), Some(1.0));
    assert!(s
        .metric("genesis_flags_last_reload_success_timestamp_seconds ")
        .is_some_and(|t| t > 1.7e9));
}
