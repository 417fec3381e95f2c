//! The controller example, run as a binary: simulate, scenario rendering,
//! init/status and the manual operations on a real state and flags file.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

use crate::support::controller as bin;
use bin::{controller, run};

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

fn repo(path: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(path)
        .display()
        .to_string()
}

#[test]
fn simulate_runs_the_healthy_default_to_completion_at_144h() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), &["simulate", "--output", "json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = json(&out);
    assert_eq!(v["outcome"], "completed");
    assert_eq!(v["final_percentage"], 100.0);
    let events = v["events"].as_array().unwrap();
    let offsets: Vec<&str> = events
        .iter()
        .map(|e| e["offset"].as_str().unwrap())
        .collect();
    assert_eq!(offsets, ["12h", "24h", "48h", "72h", "96h", "144h"]);
    for key in ["offset", "decision", "stage", "percentage", "why"] {
        assert!(events[0].get(key).is_some(), "event without {key}");
    }
}

#[test]
fn simulate_a_scenario_file_with_a_chart() {
    let dir = tempfile::tempdir().unwrap();
    let chart = dir.path().join("run.svg");
    let out = run(
        dir.path(),
        &[
            "simulate",
            "--scenario",
            &repo("examples/scenarios/mixed.json"),
            "--output",
            "json",
            "--chart",
            chart.to_str().unwrap(),
        ],
    );
    // Paused for a person: a non-zero exit.
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = json(&out);
    assert_eq!(v["outcome"], "paused");
    let last = v["events"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (last["offset"].as_str(), last["decision"].as_str()),
        (Some("50h35m"), Some("pause"))
    );
    let svg = std::fs::read_to_string(&chart).unwrap();
    assert!(
        svg.starts_with("<svg") && svg.contains("pause 50h35m"),
        "{}",
        &svg[..200.min(svg.len())]
    );
}

#[test]
fn scenario_openmetrics_is_ready_for_promtool() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        dir.path(),
        &[
            "scenario",
            "openmetrics",
            "--scenario",
            &repo("examples/scenarios/mixed.json"),
            "--start",
            "2025-01-01T00:00:00Z",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("genesis_requests_total 0 1735689600"),
        "{}",
        &text[..200]
    );
    assert!(text.ends_with("# EOF\n"));
}

#[test]
fn init_status_and_operations_keep_state_and_flags_file_in_step() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert!(run(d, &["init", "--example-flags", "flags.json"])
        .status
        .success());
    let before: Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("flags.json")).unwrap()).unwrap();
    genesis_flags::FlagStore::from_file(d.join("flags.json")).unwrap();

    let out = run(
        d,
        &[
            "init",
            "--flags",
            "flags.json",
            "--rollout",
            "phase_4_deployment",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let again = run(
        d,
        &[
            "init",
            "--flags",
            "flags.json",
            "--rollout",
            "phase_4_deployment",
        ],
    );
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));

    let status = json(&run(d, &["status", "--output", "json"]));
    for key in ["rollout", "stage", "current_percentage", "phase"] {
        assert!(status.get(key).is_some(), "status without {key}");
    }
    assert_eq!(
        (status["stage"].as_u64(), status["phase"].as_str()),
        (Some(0), Some("ready"))
    );

    let flags_percentage = || -> f64 {
        let v: Value =
            serde_json::from_str(&std::fs::read_to_string(d.join("flags.json")).unwrap()).unwrap();
        v["rollouts"]["phase_4_deployment"]["percentage"]
            .as_f64()
            .unwrap()
    };
    assert_eq!(flags_percentage(), 0.0);

    let promoted = run(
        d,
        &["promote", "--reason", "go for stage 1", "--output", "json"],
    );
    assert!(
        promoted.status.success(),
        "{}",
        String::from_utf8_lossy(&promoted.stderr)
    );
    assert_eq!(json(&promoted)["current_percentage"], 5.0);
    assert_eq!(flags_percentage(), 5.0);
    // Only rollouts.<id>.percentage changed in the flags file.
    let mut after: Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("flags.json")).unwrap()).unwrap();
    after["rollouts"]["phase_4_deployment"]["percentage"] =
        before["rollouts"]["phase_4_deployment"]["percentage"].clone();
    assert_eq!(after, before);

    assert!(run(d, &["pause", "--reason", "looking at a ticket"])
        .status
        .success());
    assert_eq!(
        json(&run(d, &["status", "--output", "json"]))["phase"],
        "paused"
    );
    assert!(run(d, &["resume"]).status.success());
    let bad = run(d, &["signoff", "--role", "intern", "--name", "x"]);
    assert_eq!(bad.status.code(), Some(2));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("unknown sign-off role"), "{err}");

    assert!(run(d, &["rollback", "--reason", "error budget burn"])
        .status
        .success());
    assert_eq!(flags_percentage(), 0.0);
    let status = json(&run(d, &["status", "--output", "json"]));
    assert_eq!(
        (
            status["phase"].as_str(),
            status["current_percentage"].as_f64()
        ),
        (Some("rolled_back"), Some(0.0))
    );

    let report = run(d, &["report", "--output", "json"]);
    assert_eq!(json(&report)["status"], "ROLLED BACK");
    let audit = std::fs::read_to_string(d.join("rollout-state.json.audit.jsonl")).unwrap();
    // init, promote, pause, resume, rollback: every change is recorded.
    assert_eq!(audit.lines().count(), 5, "{audit}");
}

#[test]
fn bad_input_is_one_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["simulate", "--scenario", "nope.json"][..],
        &["status"],
        &["simulate", "--tick", "soon"],
        &["init", "--flags", "missing.json", "--rollout", "x"],
    ] {
        let out = run(dir.path(), args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("error: "), "{err}");
    }
}

const SHORT_PLAN: &str = r#"{ "name": "drill", "signoffs": [],
  "stages": [ { "percentage": 5, "soak": "1h", "report_every": "15m", "tier": "canary" },
              { "percentage": 25, "soak": "1h", "report_every": "15m", "tier": "mid" },
              { "percentage": 100, "soak": "1h", "report_every": "15m", "tier": "late" } ],
  "final": { "duration": "2h", "report_every": "1h", "tier": "late" },
  "tiers": { "canary": { "error_rate_percent": 0.5, "p95_ms": 300, "sustained": "5m", "consecutive_health_failures": 3 },
             "mid": { "error_rate_percent": 0.8, "p95_ms": 400, "sustained": "5m", "consecutive_health_failures": 4 },
             "late": { "error_rate_percent": 1.0, "p95_ms": 500, "sustained": "5m", "consecutive_health_failures": 5 } },
  "go": { "error_rate_percent_below": 0.1, "p95_ms_below": 200 } }"#;

const DRILL: &str = r#"{ "start": "2025-10-23T09:00:00Z", "duration": "8h", "step": "1m",
  "baseline": { "requests_per_second": 200, "error_rate": 0.0005, "p95_ms": 120 },
  "events": [ { "from": "50m", "to": "1h20m", "critical_alerts": ["GenesisDown"] } ] }"#;

fn drill_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("plan.json"), SHORT_PLAN).unwrap();
    std::fs::write(d.join("drill.json"), DRILL).unwrap();
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

fn history(d: &Path) -> Vec<(String, String, usize)> {
    let state = genesis_flags::rollout::RolloutState::load(d.join("rollout-state.json")).unwrap();
    // `init` is stamped with the wall clock; the drill's events are not.
    state
        .history
        .iter()
        .filter(|h| h.event != "init")
        .map(|h| (h.at.to_string(), h.event.to_string(), h.stage))
        .collect()
}

#[test]
fn run_killed_at_random_ticks_finishes_with_the_same_decisions() {
    let args = ["run", "--scenario", "drill.json", "--tick", "1m"];
    let whole = drill_dir();
    let out = run(whole.path(), &args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected = history(whole.path());
    let events: Vec<&str> = expected.iter().map(|(_, e, _)| e.as_str()).collect();
    assert_eq!(
        events,
        ["start", "advance", "advance", "complete"],
        "{expected:?}"
    );

    let broken = drill_dir();
    let mut kills = 0;
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    loop {
        let mut child = Command::new(controller())
            .current_dir(broken.path())
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(std::time::Duration::from_millis(20 + seed % 120));
        match child.try_wait().unwrap() {
            Some(status) => {
                assert!(status.success());
                break;
            }
            None => {
                child.kill().unwrap(); // SIGKILL
                child.wait().unwrap();
                kills += 1;
            }
        }
        assert!(kills < 200, "never finished");
    }
    assert!(
        kills >= 1,
        "the run finished before any kill; the drill is too short to test anything"
    );
    assert_eq!(history(broken.path()), expected, "after {kills} kills");
    let flags: Value =
        serde_json::from_str(&std::fs::read_to_string(broken.path().join("flags.json")).unwrap())
            .unwrap();
    assert_eq!(flags["rollouts"]["phase_4_deployment"]["percentage"], 100);
}

#[test]
fn a_lock_holder_that_does_not_answer_leaves_the_state_unchanged() {
    let dir = drill_dir();
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.path().join("rollout-state.json.lock"))
        .unwrap();
    lock.try_lock().unwrap();
    let before = std::fs::read(dir.path().join("rollout-state.json")).unwrap();
    // Operator commands go to the holder as requests; this holder never
    // answers, so the request is withdrawn and nothing changes.
    let out = run(dir.path(), &["promote"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("did not answer") && stderr.contains("nothing changed"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read(dir.path().join("rollout-state.json")).unwrap(),
        before
    );
    // `init --force` is never applied under a running engine.
    let out = run(
        dir.path(),
        &[
            "init",
            "--flags",
            "flags.json",
            "--rollout",
            "phase_4_deployment",
            "--force",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("another controller holds"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    drop(lock);
    assert!(run(dir.path(), &["promote"]).status.success());
}

#[test]
fn a_flags_file_out_of_step_with_the_state_is_repaired() {
    let dir = drill_dir();
    let d = dir.path();
    // A crash after the state was saved but before the flags file was written.
    let text = std::fs::read_to_string(d.join("flags.json")).unwrap();
    let mut v: Value = serde_json::from_str(&text).unwrap();
    v["rollouts"]["phase_4_deployment"]["percentage"] = 42.into();
    std::fs::write(
        d.join("flags.json"),
        serde_json::to_string_pretty(&v).unwrap(),
    )
    .unwrap();
    let out = run(d, &["promote"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("reconciled"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("flags.json")).unwrap()).unwrap();
    assert_eq!(v["rollouts"]["phase_4_deployment"]["percentage"], 5);
}

#[cfg(unix)]
#[test]
fn sigterm_stops_run_between_ticks_with_the_state_saved() {
    let dir = drill_dir();
    let d = dir.path();
    // A week of one-minute ticks: far longer than the signal takes to arrive.
    std::fs::write(d.join("week.json"), DRILL.replace("\"8h\"", "\"7d\"")).unwrap();
    std::fs::write(
        d.join("plan.json"),
        SHORT_PLAN.replace("\"1h\"", "\"100h\""),
    )
    .unwrap();
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
            "--force",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let child = Command::new(controller())
        .current_dir(d)
        .args(["run", "--scenario", "week.json", "--tick", "1m"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(400));
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("stopped between ticks"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let state = genesis_flags::rollout::RolloutState::load(d.join("rollout-state.json")).unwrap();
    assert_eq!(
        state.phase,
        genesis_flags::rollout::Phase::Soaking,
        "it stopped mid-rollout"
    );
    assert!(state.last_tick.is_some());
}
