//! Watching a rollout (issue 19): the controller's metrics (`promtool check
//! metrics`, the contract's families and labels, the textfile), the status
//! page and its API (401, 409, a GET changes nothing, an action audited),
//! the alert rules fed with real scrapes of the controller, and the Grafana
//! dashboard's every query against a real Prometheus scraping a real run.
//!
//! Needs Debian's `prometheus` package (`promtool`, `prometheus`); under
//! `CI=true` a missing one fails the tests.

#![cfg(feature = "notify")]

#[path = "support/controller.rs"]
mod bin;
#[path = "support/prometheus.rs"]
mod prom;
#[path = "support/receivers.rs"]
mod receivers;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

const ROLLOUT: &str = "phase_4_deployment";
const TOKEN: &str = "status-page-token-for-tests-0123456789";

/// Stage 1 soaks 4 s; stage 2 an hour. Three failed health ticks in a row
/// roll back (reason `health`).
const PLAN: &str = r#"{ "name": "observe", "signoffs": ["deployment_lead"],
  "stages": [ { "percentage": 5, "soak": "4s", "report_every": "15m", "tier": "canary" },
              { "percentage": 10, "soak": "1h", "report_every": "15m", "tier": "canary" },
              { "percentage": 100, "soak": "1h", "report_every": "15m", "tier": "late" } ],
  "final": { "duration": "1h", "report_every": "1h", "tier": "late" },
  "tiers": { "canary": { "error_rate_percent": 0.5, "p95_ms": 300, "sustained": "2s", "consecutive_health_failures": 3 },
             "late": { "error_rate_percent": 1.0, "p95_ms": 500, "sustained": "2s", "consecutive_health_failures": 5 } },
  "go": { "error_rate_percent_below": 0.1, "p95_ms_below": 200 } }"#;

/// Read on the real clock from offset 10m (the run's start): cohort
/// series on two instances; with `outage`, the `genesis` job is down from
/// 10 s to 25 s into the run (a rollback needs three failed ticks in it).
fn scenario(outage: bool) -> String {
    let events = if outage {
        r#", "events": [ { "from": "10m10s", "to": "10m25s", "jobs_down": ["genesis"] } ]"#
    } else {
        ""
    };
    format!(
        r#"{{ "start": "2025-10-23T09:00:00Z", "duration": "3h", "step": "1s",
  "baseline": {{ "requests_per_second": 400, "error_rate": 0.0005, "p95_ms": 120 }},
  "cohorts": {{ "rollout": "{ROLLOUT}", "instances": 2 }}{events} }}"#
    )
}

/// The families of the contract, each with its labels.
const CONTRACT: [(&str, &[&str]); 23] = [
    ("genesis_rollout_build_info", &["version"]),
    ("genesis_rollout_info", &["rollout", "plan"]),
    ("genesis_rollout_phase", &["rollout", "phase"]),
    ("genesis_rollout_target_ratio", &["rollout"]),
    ("genesis_rollout_stage", &["rollout"]),
    ("genesis_rollout_stages", &["rollout"]),
    (
        "genesis_rollout_stage_started_timestamp_seconds",
        &["rollout"],
    ),
    ("genesis_rollout_soak_end_timestamp_seconds", &["rollout"]),
    (
        "genesis_rollout_expected_completion_timestamp_seconds",
        &["rollout"],
    ),
    ("genesis_rollout_transitions_total", &["rollout", "kind"]),
    ("genesis_rollout_rollbacks_total", &["rollout", "reason"]),
    (
        "genesis_rollout_check_verdict",
        &["rollout", "check", "verdict"],
    ),
    ("genesis_rollout_check_value", &["rollout", "check"]),
    ("genesis_rollout_check_threshold", &["rollout", "check"]),
    ("genesis_rollout_cohort_evalue", &["rollout", "metric"]),
    (
        "genesis_rollout_cohort_evalue_threshold",
        &["rollout", "metric"],
    ),
    ("genesis_rollout_fleet_instances", &["rollout", "state"]),
    (
        "genesis_rollout_operator_commands_total",
        &["rollout", "command", "result"],
    ),
    (
        "genesis_rollout_notifications_total",
        &["channel", "result"],
    ),
    ("genesis_rollout_notifications_pending", &["channel"]),
    ("genesis_rollout_gate_query_errors_total", &[]),
    ("genesis_rollout_gate_duration_seconds_count", &[]),
    ("genesis_rollout_last_tick_timestamp_seconds", &["rollout"]),
];

// ---------------------------------------------------------------- helpers

/// The controller child, killed on drop.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn controller(dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(bin::controller());
    c.current_dir(dir)
        .args(args)
        .env("GENESIS_WEBHOOK_SECRET", "secret-for-tests")
        .env_remove("GENESIS_FLAGS_FAILPOINTS");
    c
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{:?}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn setup(dir: &Path, outage: bool) {
    std::fs::write(dir.join("plan.json"), PLAN).unwrap();
    std::fs::write(dir.join("scenario.json"), scenario(outage)).unwrap();
    std::fs::write(dir.join("token"), format!("{TOKEN}\n")).unwrap();
    ok(&controller(dir, &["init", "--example-flags", "flags.json"])
        .output()
        .unwrap());
    ok(&controller(
        dir,
        &[
            "init",
            "--flags",
            "flags.json",
            "--rollout",
            ROLLOUT,
            "--plan",
            "plan.json",
        ],
    )
    .output()
    .unwrap());
}

/// `run` on the real clock, a tick a second, staying through a rollback,
/// with `extra` arguments; its log in `dir/run.log`.
fn start_run(dir: &Path, extra: &[String]) -> Running {
    let log = std::fs::File::create(dir.join("run.log")).unwrap();
    let mut args: Vec<String> = [
        "run",
        "--scenario",
        "scenario.json",
        "--realtime",
        "--tick",
        "1s",
        "--wait-for-resume",
    ]
    .map(String::from)
    .to_vec();
    args.extend_from_slice(extra);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Running(
        controller(dir, &args)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    )
}

fn log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("run.log")).unwrap_or_default()
}

/// One HTTP/1.0 exchange on loopback: (status, body).
fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(20))).ok()?;
    let mut request = format!(
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    s.write_all(request.as_bytes()).ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text
        .split_once("\r\n\r\n")
        .map_or(String::new(), |(_, b)| b.to_owned());
    Some((status, body))
}

fn get(port: u16, path: &str) -> (u16, String) {
    http(port, "GET", path, &[], "").unwrap_or_else(|| panic!("GET {path} on {port}: no answer"))
}

fn wait_for(dir: &Path, what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if cond() {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(cond(), "timed out waiting for {what}; log:\n{}", log(dir));
}

fn status(port: u16) -> Value {
    let (code, body) = get(port, "/api/v1/status");
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

/// `name{labels}` -> value of every sample line.
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').unwrap();
            (series.to_owned(), value.parse::<f64>().unwrap())
        })
        .collect()
}

/// The family name of a series key.
fn family(series: &str) -> &str {
    series.split('{').next().unwrap()
}

/// The label names of a series key.
fn label_names(series: &str) -> BTreeSet<String> {
    let Some((_, labels)) = series.split_once('{') else {
        return BTreeSet::new();
    };
    labels
        .trim_end_matches('}')
        .split("\",")
        .filter(|p| !p.is_empty())
        .map(|p| p.split('=').next().unwrap().to_owned())
        .collect()
}

fn value(scrape: &BTreeMap<String, f64>, series: &str) -> f64 {
    *scrape
        .get(series)
        .unwrap_or_else(|| panic!("{series} missing from the scrape: {scrape:#?}"))
}

fn promtool_check_metrics(text: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "promtool check metrics complained:\n{said}\non:\n{text}"
    );
}

fn file_bytes(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .filter(|(name, _)| name != "run.log" && name != "metrics.prom")
        .collect()
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

// ------------------------------------------------------------------ tests

/// One live run: healthy, then the `genesis` job down for 10 s (a rollback
/// for health), then resumed from the status page. Checks the metrics at
/// each step, the textfile, the page and its API, and feeds the three
/// scrapes to `promtool test rules`: `GenesisRolloutRolledBack` fires on
/// the rolled-back scrape and resolves on the resumed one.
#[test]
fn a_watched_rollout_metrics_page_api_and_rules_from_real_scrapes() {
    if !prom::available("a_watched_rollout_metrics_page_api_and_rules_from_real_scrapes") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    setup(d, true);
    let hook = receivers::Receiver::start(200);
    std::fs::write(
        d.join("notify.json"),
        format!(
            r#"{{ "webhooks": [ {{ "url": "{}" }} ] }}"#,
            hook.url("/hook")
        ),
    )
    .unwrap();
    let (mport, uport) = (prom::free_port(), prom::free_port());
    let _run = start_run(
        d,
        &[
            "--metrics-listen".into(),
            mport.to_string(),
            "--metrics-textfile".into(),
            "metrics.prom".into(),
            "--ui-listen".into(),
            format!("127.0.0.1:{uport}"),
            "--ui-token-file".into(),
            "token".into(),
            "--notify".into(),
            "notify.json".into(),
        ],
    );
    let scrape = || {
        http(mport, "GET", "/metrics", &[], "")
            .filter(|(c, _)| *c == 200)
            .map(|(_, b)| b)
    };
    let phase = |s: &BTreeMap<String, f64>, p: &str| {
        s.get(&format!(
            "genesis_rollout_phase{{rollout=\"{ROLLOUT}\",phase=\"{p}\"}}"
        ))
        .copied()
    };

    // 1. Soaking, the checks judged: every family of the contract, with its
    //    labels, pre-initialised, and nothing promtool complains about.
    let mut soaking = String::new();
    wait_for(
        d,
        "a judged tick while soaking",
        Duration::from_secs(60),
        || {
            soaking = scrape().unwrap_or_default();
            let s = samples(&soaking);
            phase(&s, "soaking") == Some(1.0)
                && s.keys()
                    .any(|k| k.starts_with("genesis_rollout_cohort_evalue{"))
        },
    );
    promtool_check_metrics(&soaking);
    let s1 = samples(&soaking);
    for (name, labels) in CONTRACT {
        let series: Vec<&String> = s1.keys().filter(|k| family(k) == name).collect();
        assert!(!series.is_empty(), "{name} missing:\n{soaking}");
        for k in series {
            let want: BTreeSet<String> = labels.iter().map(|l| (*l).to_owned()).collect();
            assert_eq!(label_names(k), want, "{k}");
        }
    }
    for p in [
        "ready",
        "validating",
        "awaiting_signoff",
        "paused",
        "rolled_back",
        "completed",
    ] {
        assert_eq!(phase(&s1, p), Some(0.0), "phase {p}");
    }
    for reason in ["breach", "health", "operator"] {
        assert_eq!(
            value(
                &s1,
                &format!(
                    "genesis_rollout_rollbacks_total{{rollout=\"{ROLLOUT}\",reason=\"{reason}\"}}"
                )
            ),
            0.0
        );
    }
    let checks = [
        "error_rate",
        "p95_latency",
        "health",
        "critical_alerts",
        "in_cohort_error_rate",
        "in_cohort_p95_latency",
        "cohort_error_excess",
        "cohort_latency_excess",
        "fleet",
        "cohort_sample",
    ];
    for check in checks {
        let one_hot: f64 = ["pass", "breach", "no_data", "error"]
            .iter()
            .map(|v| value(&s1, &format!("genesis_rollout_check_verdict{{rollout=\"{ROLLOUT}\",check=\"{check}\",verdict=\"{v}\"}}")))
            .sum();
        assert_eq!(one_hot, 1.0, "{check}: one verdict at a time");
    }
    // Base units: 0.05% errors is a ratio of 0.0005, 120 ms is 0.12 s.
    let er = value(
        &s1,
        &format!("genesis_rollout_check_value{{rollout=\"{ROLLOUT}\",check=\"error_rate\"}}"),
    );
    assert!((er - 0.0005).abs() < 0.0002, "error rate {er}");
    let p95 = value(
        &s1,
        &format!("genesis_rollout_check_value{{rollout=\"{ROLLOUT}\",check=\"p95_latency\"}}"),
    );
    assert!(p95 > 0.05 && p95 < 0.3, "p95 {p95} s");
    assert_eq!(
        value(
            &s1,
            &format!(
                "genesis_rollout_check_threshold{{rollout=\"{ROLLOUT}\",check=\"error_rate\"}}"
            )
        ),
        0.005
    );
    let stage = value(
        &s1,
        &format!("genesis_rollout_stage{{rollout=\"{ROLLOUT}\"}}"),
    );
    let target = value(
        &s1,
        &format!("genesis_rollout_target_ratio{{rollout=\"{ROLLOUT}\"}}"),
    );
    assert!(
        (stage, target) == (1.0, 0.05) || (stage, target) == (2.0, 0.1),
        "stage {stage} at {target}"
    );
    assert_eq!(
        value(
            &s1,
            &format!("genesis_rollout_stages{{rollout=\"{ROLLOUT}\"}}")
        ),
        3.0
    );
    let last_tick = value(
        &s1,
        &format!("genesis_rollout_last_tick_timestamp_seconds{{rollout=\"{ROLLOUT}\"}}"),
    );
    assert!(
        (unix_now() - last_tick).abs() < 120.0,
        "last tick {last_tick}"
    );
    assert!(value(&s1, "genesis_rollout_gate_duration_seconds_count") >= 1.0);
    assert_eq!(
        value(
            &s1,
            &format!("genesis_rollout_transitions_total{{rollout=\"{ROLLOUT}\",kind=\"advance\"}}")
        ),
        stage,
        "the start and each advance"
    );

    // 2. The page of a live run, and its JSON.
    let (code, html) = get(uport, "/");
    assert_eq!(code, 200);
    for needle in [
        ROLLOUT,
        "id=\"timeline\"",
        "id=\"checks\"",
        "error rate",
        "id=\"cohort\"",
        "id=\"decisions\"",
        "id=\"signoffs\"",
        "deployment_lead",
    ] {
        assert!(html.contains(needle), "{needle} not on the page:\n{html}");
    }
    assert!(!html.contains("<script"), "the page needs no JavaScript");

    // 3. Rolled back for health (three failed ticks of the `genesis` job).
    wait_for(d, "the rollback", Duration::from_secs(90), || {
        status(uport)["phase"] == "rolled_back"
    });
    let mut rolled_back = String::new();
    wait_for(
        d,
        "the rollback in the metrics",
        Duration::from_secs(30),
        || {
            rolled_back = scrape().unwrap_or_default();
            phase(&samples(&rolled_back), "rolled_back") == Some(1.0)
        },
    );
    promtool_check_metrics(&rolled_back);
    let s2 = samples(&rolled_back);
    assert_eq!(phase(&s2, "soaking"), Some(0.0));
    let rollbacks: Vec<&str> = rolled_back
        .lines()
        .filter(|l| l.starts_with("genesis_rollout_rollbacks_total{"))
        .collect();
    assert_eq!(
        value(
            &s2,
            &format!("genesis_rollout_rollbacks_total{{rollout=\"{ROLLOUT}\",reason=\"health\"}}")
        ),
        1.0,
        "rollbacks by reason: {rollbacks:?}; the status: {}",
        status(uport)
    );
    assert_eq!(
        value(
            &s2,
            &format!(
                "genesis_rollout_transitions_total{{rollout=\"{ROLLOUT}\",kind=\"rollback\"}}"
            )
        ),
        1.0
    );
    assert_eq!(
        value(
            &s2,
            &format!("genesis_rollout_target_ratio{{rollout=\"{ROLLOUT}\"}}")
        ),
        0.0
    );
    assert_eq!(
        value(
            &s2,
            &format!(
                "genesis_rollout_expected_completion_timestamp_seconds{{rollout=\"{ROLLOUT}\"}}"
            )
        ),
        0.0
    );

    // The textfile holds the same families and passes promtool too.
    wait_for(
        d,
        "the textfile at the rollback",
        Duration::from_secs(30),
        || {
            std::fs::read_to_string(d.join("metrics.prom"))
                .is_ok_and(|t| phase(&samples(&t), "rolled_back") == Some(1.0))
        },
    );
    let textfile = std::fs::read_to_string(d.join("metrics.prom")).unwrap();
    promtool_check_metrics(&textfile);
    let families =
        |t: &str| -> BTreeSet<String> { samples(t).keys().map(|k| family(k).to_owned()).collect() };
    assert_eq!(families(&textfile), families(&rolled_back));

    // 4. The API: the JSON of `status --output json`; 401; 409; a GET
    //    changes nothing (the run waits for a person: nothing else moves).
    let api = status(uport);
    let cli: Value = serde_json::from_str(&ok(&controller(d, &["status", "--output", "json"])
        .output()
        .unwrap()))
    .unwrap();
    let keys = |v: &Value| {
        v.as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect::<BTreeSet<_>>()
    };
    assert_eq!(keys(&api), keys(&cli));
    for k in [
        "rollout",
        "revision",
        "phase",
        "stage",
        "current_percentage",
        "reason",
        "notifications",
        "engine",
    ] {
        assert_eq!(api[k], cli[k], "{k}");
    }
    let revision = api["revision"].as_u64().unwrap();
    let before = file_bytes(d);
    let body =
        format!(r#"{{"revision": {revision}, "reason": "from the page", "name": "mallory"}}"#);
    for (auth, what) in [
        (None, "no token"),
        (Some("Bearer wrong-token-0123456789abcdef"), "a wrong token"),
        (Some(TOKEN), "the token without its scheme"),
    ] {
        let headers: Vec<(&str, &str)> = auth.map(|a| ("Authorization", a)).into_iter().collect();
        let (code, answer) = http(uport, "POST", "/api/v1/resume", &headers, &body).unwrap();
        assert_eq!(code, 401, "{what}: {answer}");
    }
    let bearer = format!("Bearer {TOKEN}");
    let auth = [("Authorization", bearer.as_str())];
    let stale = format!(
        r#"{{"revision": {}, "reason": "from an old page", "name": "alice"}}"#,
        revision - 1
    );
    let (code, answer) = http(uport, "POST", "/api/v1/resume", &auth, &stale).unwrap();
    assert_eq!(code, 409, "{answer}");
    assert_eq!(
        serde_json::from_str::<Value>(&answer).unwrap()["revision"],
        revision
    );
    for path in [
        "/",
        "/api/v1/status",
        "/api/v1/resume",
        "/api/v1/rollback",
        "/metrics?x",
        "/nope",
    ] {
        let _ = http(uport, "GET", path, &auth, &body);
    }
    assert_eq!(get(uport, "/api/v1/resume").0, 405, "actions are POST-only");
    for _ in 0..3 {
        let _ = scrape();
    }
    let after = file_bytes(d);
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>(),
        "files appeared or vanished"
    );
    for (name, bytes) in &before {
        assert!(
            after[name] == *bytes,
            "{name} changed on GETs, a 401 or a 409"
        );
    }
    assert_eq!(status(uport)["revision"], revision);

    // 5. Resumed from the page once the outage is over: through the
    //    engine, audited with who acted.
    let started = api_started(&api, d);
    let healthy_from = started + 27.0;
    while unix_now() < healthy_from {
        std::thread::sleep(Duration::from_millis(200));
    }
    let resume = format!(r#"{{"revision": {revision}, "reason": "outage over", "name": "alice"}}"#);
    let (code, answer) = http(uport, "POST", "/api/v1/resume", &auth, &resume).unwrap();
    assert_eq!(code, 200, "{answer}\n{}", log(d));
    let applied: Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(applied["outcome"]["event"], "resume");
    assert_eq!(applied["outcome"]["claimed_by"], "alice (status page)");
    assert!(applied["revision"].as_u64().unwrap() > revision);
    let audit = std::fs::read_to_string(d.join("rollout-state.json.audit.jsonl"))
        .or_else(|_| std::fs::read_to_string(d.join("rollout-state.audit.jsonl")))
        .unwrap_or_default();
    assert!(
        audit.contains("alice (status page)"),
        "not audited:\n{audit}"
    );
    let mut resumed = String::new();
    wait_for(
        d,
        "the resume in the metrics",
        Duration::from_secs(30),
        || {
            resumed = scrape().unwrap_or_default();
            let s = samples(&resumed);
            phase(&s, "rolled_back") == Some(0.0)
        },
    );
    let s3 = samples(&resumed);
    assert_eq!(
        value(&s3, &format!("genesis_rollout_operator_commands_total{{rollout=\"{ROLLOUT}\",command=\"resume\",result=\"applied\"}}")),
        1.0
    );

    // 6. The alert rules on these three real scrapes, ten minutes each.
    rules_on_scrapes(&[&soaking, &rolled_back, &resumed]);
}

/// When the run started, from the state's history (the `start` entry).
fn api_started(_api: &Value, dir: &Path) -> f64 {
    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("rollout-state.json")).unwrap())
            .unwrap();
    let at = state["history"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["event"] == "start")
        .expect("a start in the history")["at"]
        .as_str()
        .unwrap()
        .to_owned();
    let out = Command::new("date")
        .args(["-d", &at, "+%s.%N"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// Writes a `promtool test rules` file whose input series are `scrapes`
/// (each held for ten one-minute samples) and runs it: the rolled-back
/// alert is silent on the first, fires on the second, resolves on the
/// third.
fn rules_on_scrapes(scrapes: &[&str]) {
    let parsed: Vec<BTreeMap<String, f64>> = scrapes.iter().map(|s| samples(s)).collect();
    let all: BTreeSet<&String> = parsed.iter().flat_map(|p| p.keys()).collect();
    let mut yaml = String::from(
        "rule_files:\n  - RULES\nevaluation_interval: 1m\ntests:\n  - interval: 1m\n    input_series:\n",
    );
    let rules =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/prometheus/genesis-rollout.rules.yml");
    yaml = yaml.replace("RULES", &rules.display().to_string());
    for series in all {
        let values: Vec<String> = parsed
            .iter()
            .flat_map(|p| {
                let v = p.get(series).map_or("_".to_owned(), |v| format!("{v}"));
                std::iter::repeat_n(v, 10)
            })
            .collect();
        yaml.push_str(&format!(
            "      - series: '{series}'\n        values: '{}'\n",
            values.join(" ")
        ));
    }
    let alert = format!(
        "        exp_alerts:\n          - exp_labels: {{severity: critical, rollout: {ROLLOUT}, phase: rolled_back}}\n            exp_annotations:\n              summary: \"Rollout {ROLLOUT} rolled back\"\n              description: \"Rollout {ROLLOUT} is rolled back to 0%; run `controller incident-report` for the timeline and `controller resume` to start again from stage 1.\"\n"
    );
    yaml.push_str(&format!(
        "    alert_rule_test:\n      - alertname: GenesisRolloutRolledBack\n        eval_time: 5m\n        exp_alerts: []\n      - alertname: GenesisRolloutRolledBack\n        eval_time: 15m\n{alert}      - alertname: GenesisRolloutRolledBack\n        eval_time: 25m\n        exp_alerts: []\n"
    ));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("scraped.test.yml");
    std::fs::write(&file, &yaml).unwrap();
    let out = Command::new("promtool")
        .args(["test", "rules"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "promtool test rules on real scrapes failed:\n{}{}\n{yaml}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Debian's `chromium`, headless; under `CI=true` a missing one fails.
fn chromium_available(test: &str) -> bool {
    let found = Command::new("chromium")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found && std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{test}: `chromium` is required under CI=true (apt-get install --no-install-recommends chromium)");
    }
    if !found {
        eprintln!("SKIPPED the browser part of {test}: `chromium` not installed");
    }
    found
}

/// Runs headless chromium with `args` on `url` (its own profile), killed
/// after 120 s; returns its standard output.
fn chromium(args: &[String], url: &str) -> String {
    let profile = tempfile::tempdir().unwrap();
    let mut child = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromium");
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within 120 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    reader.join().unwrap()
}

/// Without `--ui-token-file` the page is read-only: every action is 401,
/// and nothing changes. The page of this live run in a real browser
/// (headless chromium): its DOM shows the stage, the percentage and the
/// checks; its screenshot is kept as `target/status-page.png` (and copied
/// to `docs/status-page.png` with `GENESIS_UPDATE_SCREENSHOT=1`).
#[test]
fn without_a_token_file_the_page_is_read_only() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    setup(d, false);
    let uport = prom::free_port();
    let _run = start_run(d, &["--ui-listen".into(), uport.to_string()]);
    wait_for(d, "the page", Duration::from_secs(60), || {
        http(uport, "GET", "/api/v1/status", &[], "")
            .is_some_and(|(c, b)| c == 200 && b.contains("\"soaking\""))
    });
    let revision = status(uport)["revision"].as_u64().unwrap();
    for action in ["pause", "resume", "rollback", "signoff"] {
        let body = format!(
            r#"{{"revision": {revision}, "reason": "r", "role": "deployment_lead", "name": "n"}}"#
        );
        let bearer = format!("Bearer {TOKEN}");
        let (code, answer) = http(
            uport,
            "POST",
            &format!("/api/v1/{action}"),
            &[("Authorization", &bearer)],
            &body,
        )
        .unwrap();
        assert_eq!(code, 401, "{action}: {answer}");
        assert!(answer.contains("read-only"), "{answer}");
    }
    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("rollout-state.json")).unwrap())
            .unwrap();
    assert!(
        state["history"]
            .as_array()
            .unwrap()
            .iter()
            .all(|h| h["event"] != "pause"),
        "nothing paused"
    );

    if !chromium_available("without_a_token_file_the_page_is_read_only") {
        return;
    }
    let url = format!("http://127.0.0.1:{uport}/");
    // Once the cohort tests have counts, so the page shows every figure.
    wait_for(
        d,
        "the e-values on the page",
        Duration::from_secs(60),
        || get(uport, "/").1.contains("significant at"),
    );
    let dom = chromium(&["--dump-dom".into()], &url);
    // The stage and its percentage (the plan's), whichever stage it is at.
    let shown = |id: &str| {
        let open = format!("<span id=\"{id}\">");
        let from = dom
            .find(&open)
            .unwrap_or_else(|| panic!("no #{id} in the DOM:\n{dom}"))
            + open.len();
        dom[from..from + dom[from..].find('<').unwrap()].to_owned()
    };
    assert!(
        [("1", "5%"), ("2", "10%")]
            .contains(&(shown("stage").as_str(), shown("percentage").as_str())),
        "stage {} at {}:\n{dom}",
        shown("stage"),
        shown("percentage")
    );
    assert_eq!(shown("rollout"), ROLLOUT);
    for needle in [
        "<strong id=\"phase\">soaking</strong>",
        "<td>error rate</td>",
        "<td>P95 latency</td>",
        "<td>in-vs-out error excess</td>",
        "id=\"timeline\"",
        "id=\"cohort\"",
        "Read-only",
    ] {
        assert!(dom.contains(needle), "{needle} not in the DOM:\n{dom}");
    }
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
    std::fs::create_dir_all(&target).unwrap();
    let shot = target.join("status-page.png");
    let _ = std::fs::remove_file(&shot);
    chromium(
        &[
            format!("--screenshot={}", shot.display()),
            "--window-size=1200,1700".into(),
            "--hide-scrollbars".into(),
        ],
        &url,
    );
    let png = std::fs::read(&shot).expect("chromium wrote the screenshot");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "{} bytes",
        png.len()
    );
    if std::env::var("GENESIS_UPDATE_SCREENSHOT").is_ok_and(|v| v == "1") {
        std::fs::copy(
            &shot,
            Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/status-page.png"),
        )
        .unwrap();
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

/// A range query over the last `seconds`, as a dashboard panel runs it:
/// `Ok(series count)` or the error Prometheus gave.
fn range_query(port: u16, promql: &str, seconds: u64) -> Result<usize, String> {
    let end = unix_now();
    let path = format!(
        "/api/v1/query_range?query={}&start={}&end={end}&step=1",
        percent_encode(promql),
        end - seconds as f64
    );
    let (code, body) = http(port, "GET", &path, &[], "").ok_or("no answer")?;
    let v: Value = serde_json::from_str(&body).map_err(|e| format!("{e}: {body}"))?;
    if code != 200 || v["status"] != "success" {
        return Err(format!("{code}: {body}"));
    }
    Ok(v["data"]["result"].as_array().map_or(0, Vec::len))
}

/// Every panel of the Grafana dashboard: no Angular panel, a unit and a
/// description each, a `datasource` variable; and every query, run against
/// a real Prometheus scraping a real controller run, fails for none and
/// comes back empty for none.
#[test]
fn every_dashboard_query_returns_data_from_a_real_run() {
    if !prom::available("every_dashboard_query_returns_data_from_a_real_run") {
        return;
    }
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/grafana/genesis-rollout.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let vars = dashboard["templating"]["list"].as_array().unwrap();
    assert!(
        vars.iter().any(|v| v["name"] == "datasource"
            && v["type"] == "datasource"
            && v["query"] == "prometheus"),
        "a datasource variable"
    );
    let panels = dashboard["panels"].as_array().unwrap();
    let mut queries = Vec::new();
    for p in panels {
        let title = p["title"].as_str().unwrap();
        let kind = p["type"].as_str().unwrap();
        assert!(
            ["timeseries", "stat", "state-timeline", "table", "bargauge", "gauge"].contains(&kind),
            "{title}: panel type {kind} (Angular panels such as graph or singlestat are not allowed)"
        );
        assert!(
            p["description"].as_str().is_some_and(|d| !d.is_empty()),
            "{title}: no description"
        );
        assert!(
            p["fieldConfig"]["defaults"]["unit"]
                .as_str()
                .is_some_and(|u| !u.is_empty()),
            "{title}: no unit"
        );
        assert_eq!(p["datasource"]["uid"], "${datasource}", "{title}");
        for t in p["targets"].as_array().unwrap() {
            queries.push((title.to_owned(), t["expr"].as_str().unwrap().to_owned()));
        }
    }
    assert!(queries.len() >= 15, "{} queries", queries.len());

    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    setup(d, false);
    let hook = receivers::Receiver::start(200);
    std::fs::write(
        d.join("notify.json"),
        format!(
            r#"{{ "webhooks": [ {{ "url": "{}" }} ] }}"#,
            hook.url("/hook")
        ),
    )
    .unwrap();
    let mport = prom::free_port();
    let _run = start_run(
        d,
        &[
            "--metrics-listen".into(),
            format!("127.0.0.1:{mport}"),
            "--notify".into(),
            "notify.json".into(),
        ],
    );
    let server = prom::PrometheusServer::start(
        "",
        &format!(
            "[{{job_name: my-controller, scrape_interval: 1s, static_configs: [{{targets: ['127.0.0.1:{mport}']}}]}}]"
        ),
    );
    // Scraped long enough for the cohort tests' e-values, a delivered
    // notification and the rate windows of the panels.
    wait_for(
        d,
        "e-values and deliveries in Prometheus",
        Duration::from_secs(120),
        || {
            range_query(server.port, "genesis_rollout_cohort_evalue", 30) == Ok(2)
                && range_query(
                    server.port,
                    r#"genesis_rollout_notifications_total{result="sent"} > 0"#,
                    30,
                ) == Ok(1)
                && range_query(
                    server.port,
                    "genesis_rollout_gate_duration_seconds_count",
                    30,
                )
                .is_ok_and(|n| n > 0)
        },
    );
    std::thread::sleep(Duration::from_secs(5));
    let mut failures = Vec::new();
    for (title, expr) in &queries {
        let promql = expr
            .replace("$rollout", ROLLOUT)
            .replace("$__rate_interval", "15s");
        match range_query(server.port, &promql, 60) {
            Ok(0) => failures.push(format!("{title}: {promql}: empty")),
            Ok(_) => {}
            Err(e) => failures.push(format!("{title}: {promql}: {e}")),
        }
    }
    // The rollout variable's query.
    assert_eq!(range_query(server.port, "genesis_rollout_info", 60), Ok(1));
    assert!(
        failures.is_empty(),
        "{}\nlog:\n{}",
        failures.join("\n"),
        log(d)
    );
}

/// A running Alertmanager (Debian's `prometheus-alertmanager`) routing
/// everything to `webhook` at once, resolved notifications included;
/// killed on drop.
struct Alertmanager {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Alertmanager {
    fn start(webhook: &str) -> Alertmanager {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("alertmanager.yml");
        std::fs::write(
            &config,
            format!(
                "route:\n  receiver: hook\n  group_by: [alertname, rollout]\n  group_wait: 1s\n  group_interval: 1s\n  repeat_interval: 1h\nreceivers:\n  - name: hook\n    webhook_configs:\n      - url: '{webhook}'\n        send_resolved: true\n"
            ),
        )
        .unwrap();
        for _attempt in 0..5 {
            let port = prom::free_port();
            let mut child = Command::new("prometheus-alertmanager")
                .arg(format!("--config.file={}", config.display()))
                .arg(format!(
                    "--storage.path={}",
                    dir.path().join("data").display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg("--cluster.listen-address=")
                .arg("--log.level=warn")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start prometheus-alertmanager");
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if let Some((200, _)) = http(port, "GET", "/-/ready", &[], "") {
                    return Alertmanager {
                        child,
                        port,
                        _dir: dir,
                    };
                }
                if let Ok(Some(_)) = child.try_wait() {
                    break; // most likely the port was taken: another one
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("alertmanager did not become ready");
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn alertmanager_available(test: &str) -> bool {
    let found = Command::new("prometheus-alertmanager")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found && std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{test}: `prometheus-alertmanager` is required under CI=true (apt-get install --no-install-recommends prometheus-alertmanager)");
    }
    if !found {
        eprintln!("SKIPPED {test}: `prometheus-alertmanager` not installed");
    }
    found
}

/// Whether an Alertmanager notification in `hits` has
/// `GenesisRolloutRolledBack` of the rollout with `status`.
fn rolled_back(hits: &[receivers::Hit], status: &str) -> bool {
    hits.iter().any(|h| {
        let v = h.json();
        v["status"] == status
            && v["alerts"].as_array().is_some_and(|a| {
                a.iter().any(|a| {
                    a["labels"]["alertname"] == "GenesisRolloutRolledBack"
                        && a["labels"]["rollout"] == ROLLOUT
                        && a["status"] == status
                })
            })
    })
}

/// The whole chain, live: the controller rolls back (its `genesis` job
/// down), a real Prometheus scraping it evaluates the shipped rules, a real
/// Alertmanager tells a webhook that `GenesisRolloutRolledBack` fires; the
/// rollout resumed from the status page, the webhook hears it resolve.
#[test]
fn a_rollback_reaches_alertmanager_and_resolves() {
    let test = "a_rollback_reaches_alertmanager_and_resolves";
    if !prom::available(test) || !alertmanager_available(test) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    setup(d, true);
    let hook = receivers::Receiver::start(200);
    let am = Alertmanager::start(&hook.url("/alerts"));
    let (mport, uport) = (prom::free_port(), prom::free_port());
    let _run = start_run(
        d,
        &[
            "--metrics-listen".into(),
            mport.to_string(),
            "--ui-listen".into(),
            uport.to_string(),
            "--ui-token-file".into(),
            "token".into(),
        ],
    );
    let rules =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/prometheus/genesis-rollout.rules.yml");
    let _prometheus = prom::PrometheusServer::start(
        "",
        &format!(
            "[{{job_name: genesis-rollout, static_configs: [{{targets: ['127.0.0.1:{mport}']}}]}}]\nrule_files: ['{}']\nalerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['127.0.0.1:{}']\n",
            rules.display(),
            am.port
        ),
    );
    assert!(
        hook.wait_for(120, |h| rolled_back(h, "firing")),
        "no firing GenesisRolloutRolledBack reached the webhook: {:?}\nlog:\n{}",
        hook.hits().iter().map(|h| h.json()).collect::<Vec<_>>(),
        log(d)
    );
    assert!(
        !rolled_back(&hook.hits(), "resolved"),
        "resolved before anyone resumed"
    );

    // Resumed once the outage is over: the alert resolves.
    let api = status(uport);
    assert_eq!(api["phase"], "rolled_back");
    let healthy_from = api_started(&api, d) + 27.0;
    while unix_now() < healthy_from {
        std::thread::sleep(Duration::from_millis(200));
    }
    let bearer = format!("Bearer {TOKEN}");
    let body = format!(
        r#"{{"revision": {}, "reason": "outage over", "name": "alice"}}"#,
        api["revision"]
    );
    let (code, answer) = http(
        uport,
        "POST",
        "/api/v1/resume",
        &[("Authorization", &bearer)],
        &body,
    )
    .unwrap();
    assert_eq!(code, 200, "{answer}");
    assert!(
        hook.wait_for(120, |h| rolled_back(h, "resolved")),
        "GenesisRolloutRolledBack never resolved at the webhook: {:?}\nlog:\n{}",
        hook.hits().iter().map(|h| h.json()).collect::<Vec<_>>(),
        log(d)
    );
}

/// The condition behind the page's 409, in the engine's request path: an
/// operation sent for a revision that is no longer the current one is
/// refused, typed, and changes nothing; at the current revision it applies.
#[test]
fn an_operation_for_a_stale_revision_is_refused_by_the_engine() {
    use genesis_flags::rollout::{
        Controller, ControllerError, Operation, OperationError, Plan, RolloutState, SubmitOptions,
        SystemClock,
    };
    let dir = tempfile::tempdir().unwrap();
    let flags = dir.path().join("flags.json");
    std::fs::write(
        &flags,
        r#"{ "version": 1, "rollouts": { "r": { "percentage": 0 } }, "flags": { "f": { "rollout": "r" } } }"#,
    )
    .unwrap();
    let state = dir.path().join("rollout-state.json");
    Controller::init(&state, &flags, "r", Plan::six_day(), false, &SystemClock).unwrap();
    let revision = RolloutState::load(&state).unwrap().revision;
    let pause = Operation::Pause {
        reason: "look".into(),
    };
    let stale = SubmitOptions::default().from_revision(Some(revision + 1));
    let refused = Controller::submit_with_options(&state, &pause, "alice", &stale, &|b| b);
    assert!(
        matches!(
            refused,
            Err(ControllerError::Refused(OperationError::Stale { seen, revision: now, .. }))
                if seen == revision + 1 && now == revision
        ),
        "{:?}",
        refused.map(|(a, _)| a)
    );
    assert_eq!(RolloutState::load(&state).unwrap().revision, revision);
    let start = SubmitOptions::default().from_revision(Some(revision));
    let (applied, _) =
        Controller::submit_with_options(&state, &Operation::Start, "alice", &start, &|b| b)
            .unwrap();
    assert_eq!(applied.commit.revision, revision + 1);
}
