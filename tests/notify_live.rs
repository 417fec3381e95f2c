//! The controller binary with real receivers: a live run (a scenario on the
//! real clock, a tick a second) telling a signed webhook, Slack, PagerDuty
//! and a real SMTP server; faults (a webhook down, Slack hanging, PagerDuty
//! answering 500) that never move a decision; a `kill -9` with events
//! pending; `notify test`, `simulate --notify`, `incident-report` and
//! `status`.

#![cfg(feature = "notify")]

use crate::support::controller as bin;
use crate::support::receivers;

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use receivers::{hmac_sha256_hex, Receiver, Smtp};
use serde_json::Value;

const PLAN: &str = r#"{ "name": "live", "signoffs": [],
  "stages": [ { "percentage": 5, "soak": "3s", "report_every": "15m", "tier": "canary" },
              { "percentage": 10, "soak": "1h", "report_every": "15m", "tier": "canary" },
              { "percentage": 100, "soak": "1h", "report_every": "15m", "tier": "late" } ],
  "final": { "duration": "1h", "report_every": "1h", "tier": "late" },
  "tiers": { "canary": { "error_rate_percent": 0.5, "p95_ms": 300, "sustained": "2s", "consecutive_health_failures": 3 },
             "late": { "error_rate_percent": 1.0, "p95_ms": 500, "sustained": "2s", "consecutive_health_failures": 5 } },
  "go": { "error_rate_percent_below": 0.1, "p95_ms_below": 200 } }"#;

/// Healthy, then (8 s into the run) half the requests fail: stage 1 soaks
/// 3 s, stage 2 rolls back after 2 s of breach.
const SCENARIO: &str = r#"{ "start": "2025-10-23T09:00:00Z", "duration": "2h", "step": "1s",
  "baseline": { "requests_per_second": 200, "error_rate": 0.0005, "p95_ms": 120 },
  "events": [ { "from": "10m8s", "to": "2h", "error_rate": 0.5 } ] }"#;

const SECRET: &str = "webhook-secret-for-tests";

fn controller(dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(bin::controller());
    c.current_dir(dir)
        .args(args)
        .env("GENESIS_WEBHOOK_SECRET", SECRET)
        .env_remove("GENESIS_FLAGS_FAILPOINTS");
    c
}

fn run(dir: &Path, args: &[&str]) -> Output {
    controller(dir, args).output().unwrap()
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

fn setup(dir: &Path) {
    std::fs::write(dir.join("plan.json"), PLAN).unwrap();
    std::fs::write(dir.join("scenario.json"), SCENARIO).unwrap();
    std::fs::write(dir.join("pd-key"), "pd-routing-key-for-tests\n").unwrap();
    ok(&run(dir, &["init", "--example-flags", "flags.json"]));
    ok(&run(
        dir,
        &[
            "init",
            "--flags",
            "flags.json",
            "--rollout",
            "phase_4_deployment",
            "--plan",
            "plan.json",
        ],
    ));
}

fn write_notify(
    dir: &Path,
    hook: &Receiver,
    slack: &Receiver,
    pd: &Receiver,
    smtp: Option<&Smtp>,
    delivery: &str,
) {
    let email = smtp.map_or(String::new(), |s| {
        format!(
            r#", "email": {{ "smtp_url": "smtp://127.0.0.1:{}", "from": "rollout@genesis.ai",
                 "to": ["devops@genesis.ai"], "daily_at": "09:00" }}"#,
            s.port
        )
    });
    std::fs::write(
        dir.join("notify.json"),
        format!(
            r##"{{ "webhooks": [ {{ "url": "{}", "secret_env": "GENESIS_WEBHOOK_SECRET" }} ],
                 "slack": {{ "webhook_url": "{}", "channel": "#genesis-alerts" }},
                 "pagerduty": {{ "routing_key_file": "pd-key", "events_url": "{}" }}{email},
                 "delivery": {delivery} }}"##,
            hook.url("/genesis"),
            slack.url("/services/T0/B0/X"),
            pd.url("/v2/enqueue")
        ),
    )
    .unwrap();
}

fn percentage(dir: &Path) -> f64 {
    let text = std::fs::read_to_string(dir.join("flags.json")).unwrap_or_default();
    let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    v["rollouts"]["phase_4_deployment"]["percentage"]
        .as_f64()
        .unwrap_or(-1.0)
}

fn outbox(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("rollout-state.json.outbox.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn field(v: &[Value], key: &str) -> Vec<String> {
    v.iter()
        .map(|e| e[key].as_str().unwrap_or("").to_owned())
        .collect()
}

fn bodies(r: &Receiver) -> Vec<Value> {
    r.accepted().iter().map(receivers::Hit::json).collect()
}

fn slack_id(m: &Value) -> String {
    let blocks = m["blocks"].as_array().cloned().unwrap_or_default();
    let text = blocks
        .last()
        .map(|b| b["elements"][0]["text"].clone())
        .unwrap_or(Value::Null);
    text.as_str()
        .unwrap_or("")
        .split(' ')
        .next()
        .unwrap_or("")
        .to_owned()
}

fn status_json(dir: &Path) -> Value {
    serde_json::from_str(&ok(&run(dir, &["status", "--output", "json"]))).unwrap()
}

#[test]
fn a_live_run_tells_every_channel_and_a_resume_resolves_the_page() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    setup(d);
    let (hook, slack, pd) = (
        Receiver::start(200),
        Receiver::start(200),
        Receiver::start(202),
    );
    let smtp = Smtp::start(d);
    write_notify(
        d,
        &hook,
        &slack,
        &pd,
        smtp.as_ref(),
        r#"{ "retry_base": "200ms", "retry_max": "1s" }"#,
    );

    // The run waits up to 10 s (--notify-wait) for its notifications after
    // the rollback, then exits: what it delivered by then went out within
    // 10 s of the flags file reaching 0.
    let out = run(
        d,
        &[
            "run",
            "--scenario",
            "scenario.json",
            "--realtime",
            "--tick",
            "1s",
            "--notify",
            "notify.json",
            "--notify-wait",
            "10s",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(percentage(d), 0.0);
    let status = status_json(d);
    for channel in status["notifications"].as_array().unwrap() {
        assert_eq!(
            channel["pending"],
            Value::Array(vec![]),
            "{channel} still pending after the run"
        );
    }
    let events = outbox(d);
    assert_eq!(
        field(&events, "type"),
        ["started", "advanced", "rolled_back"]
    );

    // The webhook: every event, signed, in order, with the figures.
    let hits = hook.accepted();
    assert_eq!(field(&bodies(&hook), "id"), field(&events, "id"));
    for h in &hits {
        let expected = format!("sha256={}", hmac_sha256_hex(SECRET.as_bytes(), &h.body));
        assert_eq!(h.header("X-Genesis-Signature"), Some(expected.as_str()));
    }
    let rollback = hits[2].json();
    assert_eq!(rollback["type"], "rolled_back");
    assert_eq!(
        (
            rollback["percentage"].as_f64(),
            rollback["previous_percentage"].as_f64()
        ),
        (Some(0.0), Some(10.0))
    );
    assert_eq!(rollback["check"], "error_rate");
    assert_eq!(rollback["threshold"], 0.5);
    assert!(rollback["value"].as_f64().unwrap() > 0.5, "{rollback}");
    assert_eq!(rollback["checks"].as_array().unwrap().len(), 4);
    assert!(rollback["explanation"]
        .as_str()
        .unwrap()
        .contains("canary threshold"));

    // Slack: a message per event, the rollback's with its figures.
    let messages = bodies(&slack);
    assert_eq!(
        messages.iter().map(slack_id).collect::<Vec<_>>(),
        field(&events, "id")
    );
    let m = messages[2].to_string();
    for needle in [
        "ROLLED BACK",
        "#genesis-alerts",
        "*Check*\\nerror rate",
        "/ 0.5",
        "10% → 0%",
        "*Tier*\\ncanary",
    ] {
        assert!(m.contains(needle), "{needle} missing from {m}");
    }

    // PagerDuty: a trigger for the rollback.
    let pages = bodies(&pd);
    assert_eq!(pages.len(), 1, "{pages:?}");
    let trigger = &pages[0];
    assert_eq!(trigger["event_action"], "trigger");
    assert_eq!(trigger["routing_key"], "pd-routing-key-for-tests");
    assert_eq!(trigger["payload"]["severity"], "critical");
    assert_eq!(trigger["payload"]["custom_details"]["threshold"], 0.5);
    assert!(trigger["payload"]["source"]
        .as_str()
        .unwrap()
        .starts_with("genesis-flags controller on "));
    let key = trigger["dedup_key"].as_str().unwrap().to_owned();
    assert!(key.ends_with(events[2]["id"].as_str().unwrap()), "{key}");

    // Email: the rollback mail.
    if let Some(smtp) = &smtp {
        let mails = smtp.messages();
        assert_eq!(mails.len(), 1, "{mails:?}");
        let mail = &mails[0];
        assert!(
            mail.contains("Subject: [Genesis] ROLLED BACK: phase_4_deployment 10% -> 0%"),
            "{mail}"
        );
        assert!(mail.contains("devops@genesis.ai") && mail.contains("rollout@genesis.ai"));
        assert!(mail.contains(events[2]["id"].as_str().unwrap()));
    }

    // A resume resolves the page with the same key.
    ok(&run(
        d,
        &["resume", "--reason", "fixed", "--notify", "notify.json"],
    ));
    assert!(pd.wait_for(60, |_| pd.accepted().len() == 2));
    let resolve = &bodies(&pd)[1];
    assert_eq!(resolve["event_action"], "resolve");
    assert_eq!(resolve["dedup_key"], key.as_str());
    assert!(hook.wait_for(60, |_| hook.accepted().len() == 4));
    assert_eq!(bodies(&hook)[3]["type"], "resumed");
    assert_eq!(bodies(&hook)[3]["incident"], events[2]["id"]);

    // The post-incident timeline.
    let report = ok(&run(d, &["incident-report"]));
    for needle in [
        "# Incident report: phase_4_deployment",
        "Breach began",
        "time to rollback",
        "| error rate | breach |",
        "told webhook:1",
        "told pagerduty",
        "resume",
        "fixed",
    ] {
        assert!(report.contains(needle), "{needle} missing from\n{report}");
    }
}

fn wait_until(secs: u64, what: &str, ok: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn spawn(dir: &Path, args: &[&str]) -> Child {
    controller(dir, args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn audit_events(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("rollout-state.json.audit.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["event"]
                .as_str()
                .unwrap_or("")
                .to_owned()
        })
        .filter(|e| e != "hold")
        .collect()
}

#[test]
fn a_dead_webhook_and_a_hung_slack_move_no_decision_and_a_kill_9_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    setup(d);
    let hook = Receiver::start_down(200);
    let slack = Receiver::start(200);
    slack.hang_next(1);
    let pd = Receiver::start(202);
    pd.fail_next(2, 500);
    write_notify(
        d,
        &hook,
        &slack,
        &pd,
        None,
        r#"{ "timeout": "2s", "retry_base": "200ms", "retry_max": "1s", "incident_every": "3s" }"#,
    );
    let args = [
        "run",
        "--scenario",
        "scenario.json",
        "--realtime",
        "--tick",
        "1s",
        "--wait-for-resume",
        "--notify",
        "notify.json",
    ];
    let mut first = spawn(d, &args);
    wait_until(120, "the rollback", || {
        percentage(d) == 0.0 && outbox(d).len() >= 3
    });
    // The decisions are those of a healthy delivery, taken while the webhook
    // was down and Slack held its first request.
    assert_eq!(audit_events(d), ["init", "start", "advance", "rollback"]);
    assert!(hook.hits().is_empty());
    assert_eq!(slack.hits()[0].status, 0, "slack's first request hung");
    // kill -9 with the webhook's events pending.
    first.kill().unwrap();
    first.wait().unwrap();
    let status = status_json(d);
    let pending: Vec<String> = status["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["channel"] == "webhook:1")
        .map(|c| {
            c["pending"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i.as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap();
    let before: Vec<String> = field(&outbox(d), "id");
    assert_eq!(pending, before, "everything pending for the webhook");
    let text = ok(&run(d, &["status"]));
    assert!(
        text.contains("notify webhook:1:") && text.contains("pending since"),
        "{text}"
    );

    // The receivers come back; a restart delivers what was pending, same ids.
    hook.up();
    slack.release();
    let mut second = spawn(d, &args);
    wait_until(120, "the webhook's events", || {
        hook.accepted().len() >= before.len()
    });
    let delivered = field(&bodies(&hook), "id");
    assert_eq!(delivered[..before.len()], before[..]);
    assert_eq!(
        field(&bodies(&hook)[..3], "type"),
        ["started", "advanced", "rolled_back"]
    );
    // Slack: every event, in order, the hung one retried with its id.
    wait_until(120, "slack", || {
        let ids: Vec<String> = bodies(&slack).iter().map(slack_id).collect();
        ids.len() >= before.len() && ids[..before.len()] == before[..]
    });
    // PagerDuty: the trigger, after two 500s, with one dedup key.
    wait_until(120, "pagerduty", || pd.accepted().len() == 1);
    let keys: Vec<String> = pd
        .hits()
        .iter()
        .map(|h| h.json()["dedup_key"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        keys.len() >= 3 && keys.iter().all(|k| k == &keys[0]),
        "{keys:?}"
    );
    // While rolled back, incident updates follow (every 3 s here).
    wait_until(120, "an incident update", || {
        bodies(&hook).iter().any(|e| {
            e["type"] == "incident_update" && e["incident"] == Value::String(before[2].clone())
        })
    });
    // A resume is applied by the running engine, which resolves the page.
    let out = ok(&run(
        d,
        &["resume", "--reason", "fixed", "--notify", "notify.json"],
    ));
    assert!(out.contains("resume: stage 1"), "{out}");
    wait_until(120, "the resolve", || {
        pd.accepted()
            .iter()
            .any(|h| h.json()["event_action"] == "resolve")
    });
    let resolve = pd
        .accepted()
        .into_iter()
        .map(|h| h.json())
        .find(|b| b["event_action"] == "resolve")
        .unwrap();
    assert_eq!(resolve["dedup_key"], keys[0].as_str());
    // A SIGTERM stops the waiting run cleanly.
    let pid = second.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let code = second.wait().unwrap();
    assert_eq!(code.code(), Some(0));
    let decisions: Vec<String> = audit_events(d)
        .into_iter()
        .filter(|e| e != "incident_update")
        .collect();
    assert_eq!(
        decisions[..5],
        ["init", "start", "advance", "rollback", "resume"]
    );
}

#[test]
fn notify_test_reports_every_channel() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    setup(d);
    let (hook, slack, pd) = (
        Receiver::start(200),
        Receiver::start(200),
        Receiver::start(202),
    );
    slack.fail_next(1, 500);
    let smtp = Smtp::start(d);
    write_notify(d, &hook, &slack, &pd, smtp.as_ref(), "{}");
    let out = run(
        d,
        &[
            "notify",
            "test",
            "--notify",
            "notify.json",
            "--output",
            "json",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "slack failed");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let results = v["results"].as_array().unwrap();
    let by: Vec<(String, bool)> = results
        .iter()
        .map(|r| {
            (
                r["channel"].as_str().unwrap().to_owned(),
                r["ok"].as_bool().unwrap(),
            )
        })
        .collect();
    assert!(by.contains(&("webhook:1".into(), true)));
    assert!(by.contains(&("slack".into(), false)));
    assert!(by.contains(&("pagerduty".into(), true)));
    assert!(results
        .iter()
        .any(|r| r["error"].as_str().is_some_and(|e| e.contains("HTTP 500"))));
    assert_eq!(bodies(&hook)[0]["type"], "test");
    let pages = bodies(&pd);
    assert_eq!(field(&pages, "event_action"), ["trigger", "resolve"]);
    assert_eq!(pages[0]["payload"]["severity"], "info");
    assert_eq!(pages[0]["dedup_key"], pages[1]["dedup_key"]);
    if let Some(smtp) = &smtp {
        assert!(by.contains(&("email".into(), true)));
        assert!(smtp.messages()[0].contains("Test notification"));
    }
}

#[test]
fn simulate_writes_the_notifications_and_sends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (hook, slack, pd) = (
        Receiver::start(200),
        Receiver::start(200),
        Receiver::start(202),
    );
    std::fs::write(
        d.join("spike.json"),
        r#"{ "start": "2025-10-23T09:00:00Z", "duration": "3d", "step": "1m",
             "baseline": { "requests_per_second": 200, "error_rate": 0.0005, "p95_ms": 120 },
             "events": [ { "from": "30h", "to": "31h", "error_rate": 0.012 } ] }"#,
    )
    .unwrap();
    std::fs::write(
        d.join("notify.json"),
        format!(
            r#"{{ "webhooks": [ {{ "url": "{}" }} ], "slack": {{ "webhook_url": "{}" }},
                 "pagerduty": {{ "routing_key": "k", "events_url": "{}" }},
                 "email": {{ "smtp_url": "smtp://127.0.0.1:9", "from": "a@genesis.ai", "to": ["devops@genesis.ai"], "daily_at": "09:00" }} }}"#,
            hook.url("/"),
            slack.url("/"),
            pd.url("/")
        ),
    )
    .unwrap();
    let out = run(
        d,
        &[
            "simulate",
            "--scenario",
            "spike.json",
            "--tick",
            "1m",
            "--notify",
            "notify.json",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let types: Vec<String> = lines
        .iter()
        .map(|l| l["event"]["type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        types[..3],
        ["started", "advanced", "daily_report"],
        "{types:?}"
    );
    let rb = lines
        .iter()
        .find(|l| l["event"]["type"] == "rolled_back")
        .unwrap();
    assert_eq!(
        rb["channels"],
        serde_json::json!(["webhook:1", "slack", "pagerduty", "email"])
    );
    let updates: Vec<&Value> = lines
        .iter()
        .filter(|l| l["event"]["type"] == "incident_update")
        .collect();
    assert!(
        updates.len() >= 24,
        "hourly updates while rolled back: {}",
        updates.len()
    );
    assert!(updates
        .iter()
        .all(|u| u["event"]["incident"] == rb["event"]["id"]));
    assert_eq!(
        updates[0]["channels"],
        serde_json::json!(["webhook:1", "slack"])
    );
    let daily = lines
        .iter()
        .find(|l| l["event"]["type"] == "daily_report")
        .unwrap();
    assert_eq!(daily["event"]["at"], "2025-10-24T09:00:00Z");
    assert_eq!(daily["event"]["report"]["status"], "ON TRACK");
    assert!(daily["channels"]
        .as_array()
        .unwrap()
        .contains(&Value::from("email")));
    let ids: Vec<&str> = lines
        .iter()
        .map(|l| l["event"]["id"].as_str().unwrap())
        .collect();
    let mut unique = ids.clone();
    unique.dedup();
    assert_eq!(unique.len(), ids.len());
    assert!(hook.hits().is_empty() && slack.hits().is_empty() && pd.hits().is_empty());
}

#[cfg(feature = "failpoints")]
#[test]
fn a_crash_right_after_the_commit_still_notifies_at_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    setup(d);
    let (hook, slack, pd) = (
        Receiver::start(200),
        Receiver::start(200),
        Receiver::start(202),
    );
    write_notify(d, &hook, &slack, &pd, None, "{}");
    ok(&run(
        d,
        &["promote", "--reason", "go", "--notify", "notify.json"],
    ));
    assert!(hook.wait_for(60, |h| h.len() == 1));
    let out = controller(
        d,
        &["rollback", "--reason", "spike", "--notify", "notify.json"],
    )
    .env("GENESIS_FLAGS_FAILPOINTS", "controller.committed=1")
    .output()
    .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("failpoint controller.committed hit"));
    // Committed (the state says rolled back) but not in the outbox yet.
    assert_eq!(status_json(d)["phase"], "rolled_back");
    assert_eq!(outbox(d).len(), 1);
    ok(&run(
        d,
        &["resume", "--reason", "fixed", "--notify", "notify.json"],
    ));
    assert!(hook.wait_for(60, |h| h.len() == 3));
    let types = field(&bodies(&hook), "type");
    assert_eq!(types, ["started", "rolled_back", "resumed"]);
    assert!(pd.wait_for(60, |_| pd.accepted().len() == 2));
    assert_eq!(field(&bodies(&pd), "event_action"), ["trigger", "resolve"]);
}

#[test]
fn an_unusable_notify_file_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    setup(d);
    ok(&run(d, &["promote", "--reason", "go"]));
    let state = std::fs::read(d.join("rollout-state.json")).unwrap();
    std::fs::write(
        d.join("bad.json"),
        r#"{ "slack": { "webhook_url_env": "GENESIS_TEST_UNSET_SLACK_URL" } }"#,
    )
    .unwrap();
    for (file, says) in [
        ("missing.json", "missing.json"),
        ("bad.json", "slack.webhook_url_env: the environment variable GENESIS_TEST_UNSET_SLACK_URL is not set"),
    ] {
        let out = controller(d, &["pause", "--reason", "x", "--notify", file])
            .env_remove("GENESIS_TEST_UNSET_SLACK_URL")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(says), "{stderr}");
        assert_eq!(std::fs::read(d.join("rollout-state.json")).unwrap(), state);
    }
    assert_eq!(outbox(d).len(), 1, "only the start");
}
