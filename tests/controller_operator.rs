//! The controller binary as an operator meets it: bounds on every number,
//! no panic on a closed pipe, errors as JSON, a corrupt state refused,
//! credentials never printed, the flags file's bytes, mode and symlinks kept.

#![cfg(unix)]

use std::io::Read;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::support::controller as bin;
use bin::{controller, run};

const FLAGS: &str = "{\n  \"version\": 1,\n  \"rollouts\": { \"phase_4_deployment\": { \"percentage\": 0 } },\n  \"flags\": {\n    \"htdag_enabled\": { \"rollout\": \"phase_4_deployment\" }\n  }\n}\n";

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn init(dir: &Path, flags: &str) {
    let out = run(
        dir,
        &["init", "--flags", flags, "--rollout", "phase_4_deployment"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn numbers_from_a_person_are_bounded_and_nothing_moves() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("flags.json"), FLAGS).unwrap();
    init(dir.path(), "flags.json");
    let before = std::fs::read(dir.path().join("rollout-state.json")).unwrap();
    for args in [
        &[
            "deploy",
            "--target-percentage",
            "5",
            "--wait",
            "18446744073709551615",
        ][..],
        &["deploy", "--target-percentage", "5", "--tick", "0s"],
        &["deploy", "--target-percentage", "500"],
        &["simulate", "--tick", "0s"],
        &["simulate", "--tick", "1ms"],
        &["run", "--tick", "10d"],
    ] {
        let out = run(dir.path(), args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(
            !stderr(&out).contains("panicked"),
            "{args:?}: {}",
            stderr(&out)
        );
        let first = stderr(&out).lines().next().unwrap_or_default().to_owned();
        assert!(
            first.contains("--wait")
                || first.contains("--tick")
                || first.contains("--target-percentage"),
            "{args:?}: the error does not name the argument: {first}"
        );
    }
    assert_eq!(
        std::fs::read(dir.path().join("rollout-state.json")).unwrap(),
        before
    );
}

#[test]
fn a_closed_stdout_is_not_a_panic() {
    for args in [
        &["simulate"][..],
        &[
            "scenario",
            "openmetrics",
            "--scenario",
            concat!(env!("CARGO_MANIFEST_DIR"), "/examples/scenarios/mixed.json"),
        ],
    ] {
        let mut child = Command::new(controller())
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Read one line, then close the pipe (as `| head -1` does).
        let mut stdout = child.stdout.take().unwrap();
        let mut first = [0u8; 16];
        let _ = stdout.read(&mut first).unwrap();
        drop(stdout);
        let mut err = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        let status = child.wait().unwrap();
        assert_ne!(status.code(), Some(101), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

#[test]
fn errors_are_json_under_output_json_and_listings_keep_one_problem_per_line() {
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("plan.json");
    let mut bad: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/examples/plans/six-day.json"
        ))
        .unwrap(),
    )
    .unwrap();
    bad["stages"][0]["soak"] = "213503982334d".into();
    bad["tiers"]["canary"]["sustained"] = "30d".into();
    std::fs::write(&plan, bad.to_string()).unwrap();
    let out = run(
        dir.path(),
        &[
            "simulate",
            "--plan",
            plan.to_str().unwrap(),
            "--output",
            "json",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    assert!(v["error"].as_str().unwrap().contains("plan.json"), "{v}");
    let problems = v["problems"].as_array().unwrap();
    assert!(
        problems
            .iter()
            .any(|p| p.as_str().unwrap().starts_with("stages[0].soak")),
        "{v}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.as_str().unwrap().starts_with("tiers.canary.sustained")),
        "{v}"
    );
    // In text, one problem per line.
    let out = run(dir.path(), &["simulate", "--plan", plan.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let text = stderr(&out);
    assert!(text.lines().count() >= 3, "{text}");
    assert!(
        text.lines()
            .any(|l| l.trim_start().starts_with("stages[0].soak")),
        "{text}"
    );
}

#[test]
fn a_corrupt_state_is_an_error_for_health_check_and_status() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("rollout-state.json"),
        "{ \"schema\": 1, \"stage\": ",
    )
    .unwrap();
    for args in [&["health-check"][..], &["status"], &["report"]] {
        let out = run(dir.path(), args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("corrupt"),
            "{args:?}: {}",
            stderr(&out)
        );
    }
}

#[test]
fn credentials_in_the_gate_url_are_never_printed() {
    let dir = tempfile::tempdir().unwrap();
    // A port nobody listens on: every query fails with a message naming the server.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let gate = dir.path().join("gate.json");
    std::fs::write(
        &gate,
        format!(r#"{{ "prometheus": {{ "url": "http://ops:hunter2@127.0.0.1:{port}" }} }}"#),
    )
    .unwrap();
    for output in ["text", "json"] {
        let out = run(
            dir.path(),
            &[
                "health-check",
                "--gate",
                gate.to_str().unwrap(),
                "--output",
                output,
            ],
        );
        let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
        assert!(!all.contains("hunter2"), "{all}");
        assert!(out.status.code().is_some_and(|c| c != 0), "{all}");
    }
}

#[test]
fn timestamps_with_an_offset_are_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        dir.path(),
        &[
            "scenario",
            "openmetrics",
            "--scenario",
            concat!(env!("CARGO_MANIFEST_DIR"), "/examples/scenarios/mixed.json"),
            "--start",
            "2025-10-23T09:00:00+02:00",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    // 07:00 UTC, in seconds.
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(" 1761202800"),
        "no sample at 07:00Z"
    );
}

#[test]
fn the_flags_file_keeps_its_bytes_mode_and_symlink() {
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("real");
    std::fs::create_dir(&real).unwrap();
    std::fs::write(real.join("flags.json"), FLAGS).unwrap();
    std::fs::set_permissions(
        real.join("flags.json"),
        std::fs::Permissions::from_mode(0o640),
    )
    .unwrap();
    symlink("real/flags.json", dir.path().join("flags.json")).unwrap();
    init(dir.path(), "flags.json");
    let out = run(dir.path(), &["promote", "--reason", "go"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let link = std::fs::symlink_metadata(dir.path().join("flags.json")).unwrap();
    assert!(link.file_type().is_symlink(), "the symlink was replaced");
    let text = std::fs::read_to_string(real.join("flags.json")).unwrap();
    assert_eq!(
        text,
        FLAGS.replace("\"percentage\": 0 }", "\"percentage\": 5 }")
    );
    let mode = std::fs::metadata(real.join("flags.json"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o640);
    // Sign-offs open only at 100%.
    let out = run(
        dir.path(),
        &["signoff", "--role", "security_lead", "--name", "carol"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("100%"), "{}", stderr(&out));
}

#[test]
fn run_logs_a_start_line_and_one_line_per_tick() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("flags.json"), FLAGS).unwrap();
    init(dir.path(), "flags.json");
    let scenario = dir.path().join("s.json");
    std::fs::write(
        &scenario,
        r#"{ "start": "2025-10-23T09:00:00Z", "duration": "10m", "step": "1m",
             "baseline": { "requests_per_second": 200, "error_rate": 0.0005, "p95_ms": 120,
                           "jobs_down": [], "critical_alerts": [] },
             "events": [] }"#,
    )
    .unwrap();
    let out = run(
        dir.path(),
        &[
            "run",
            "--scenario",
            scenario.to_str().unwrap(),
            "--tick",
            "1m",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.lines()
            .next()
            .unwrap_or_default()
            .contains("run: rollout phase_4_deployment"),
        "{err}"
    );
    let ticks = err.lines().filter(|l| l.contains(" tick 2025-")).count();
    assert_eq!(ticks, 11, "{err}");
    assert!(err.contains("error rate pass"), "{err}");
    // --quiet: the same run without the start and tick lines.
    let again = tempfile::tempdir().unwrap();
    std::fs::write(again.path().join("flags.json"), FLAGS).unwrap();
    init(again.path(), "flags.json");
    let quiet = run(
        again.path(),
        &[
            "run",
            "--scenario",
            scenario.to_str().unwrap(),
            "--tick",
            "1m",
            "--quiet",
        ],
    );
    assert!(quiet.status.success(), "{}", stderr(&quiet));
    let state: Value = serde_json::from_str(
        &std::fs::read_to_string(again.path().join("rollout-state.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        state["last_tick"], "2025-10-23T09:10:00Z",
        "the quiet run did not tick"
    );
    assert!(
        !stderr(&quiet).contains(" tick 2025-"),
        "{}",
        stderr(&quiet)
    );
}
