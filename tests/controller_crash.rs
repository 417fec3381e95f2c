//! The controller binary killed at each step of the write protocol (crash
//! points of the `failpoints` feature, so where it dies does not depend on
//! the machine's speed): the next command finishes the change exactly once.

#![cfg(all(unix, feature = "failpoints"))]

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

use crate::support::controller as bin;
use bin::{controller, run};

const FLAGS: &str = "{\n  \"version\": 1,\n  \"rollouts\": { \"phase_4_deployment\": { \"percentage\": 0 } },\n  \"flags\": {\n    \"htdag_enabled\": { \"rollout\": \"phase_4_deployment\" }\n  }\n}\n";

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A rollout initialised at 0% in a fresh folder.
fn initialised() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("flags.json"), FLAGS).unwrap();
    let out = run(
        dir.path(),
        &[
            "init",
            "--flags",
            "flags.json",
            "--rollout",
            "phase_4_deployment",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    dir
}

/// Runs the controller with the crash point `spec` armed; it must die there.
fn crash(dir: &Path, spec: &str, args: &[&str]) {
    let out = Command::new(controller())
        .current_dir(dir)
        .env("GENESIS_FLAGS_FAILPOINTS", spec)
        .args(args)
        .output()
        .unwrap();
    assert!(!out.status.success(), "{spec}: the command did not crash");
    let name = spec.split('=').next().unwrap();
    assert!(
        stderr(&out).contains(&format!("failpoint {name} hit")),
        "{spec}: {}",
        stderr(&out)
    );
}

fn stage(dir: &Path) -> u64 {
    let state: Value =
        serde_json::from_slice(&std::fs::read(dir.join("rollout-state.json")).unwrap()).unwrap();
    state["stage"].as_u64().unwrap()
}

fn flags_percentage(dir: &Path) -> u64 {
    let flags: Value =
        serde_json::from_slice(&std::fs::read(dir.join("flags.json")).unwrap()).unwrap();
    flags["rollouts"]["phase_4_deployment"]["percentage"]
        .as_u64()
        .unwrap()
}

/// The `event` field of every audit record, in order.
fn audit_events(dir: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(dir.join("rollout-state.json.audit.jsonl")).unwrap();
    text.lines()
        .map(|line| {
            let record: Value = serde_json::from_str(line).unwrap();
            record["event"].as_str().unwrap().to_owned()
        })
        .collect()
}

fn temp_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains(".tmp-"))
        .collect()
}

/// The next command that opens the engine: a pause, which moves nothing.
fn next_command(dir: &Path) -> Output {
    let out = run(dir, &["pause", "--reason", "after the crash"]);
    assert!(out.status.success(), "{}", stderr(&out));
    out
}

#[test]
fn killed_after_the_state_commit_the_next_command_publishes_and_journals_once() {
    let dir = initialised();
    crash(dir.path(), "controller.committed=1", &["promote"]);
    // The state moved; the flags file and the audit log did not yet.
    assert_eq!(stage(dir.path()), 1);
    assert_eq!(flags_percentage(dir.path()), 0);
    assert_eq!(audit_events(dir.path()), ["init"]);
    assert!(!temp_files(dir.path()).is_empty(), "the staged flags file");

    let out = next_command(dir.path());
    assert!(
        stderr(&out).contains("reconciled"),
        "the open says what it finished: {}",
        stderr(&out)
    );
    assert_eq!(flags_percentage(dir.path()), 5);
    assert_eq!(stage(dir.path()), 1, "no second promote");
    assert_eq!(audit_events(dir.path()), ["init", "promote", "pause"]);
    assert!(
        temp_files(dir.path()).is_empty(),
        "{:?}",
        temp_files(dir.path())
    );

    // A further open finds nothing left to do.
    let out = run(dir.path(), &["resume"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stderr(&out).contains("reconciled"), "{}", stderr(&out));
    assert_eq!(
        audit_events(dir.path()),
        ["init", "promote", "pause", "resume"]
    );
}

#[test]
fn killed_after_publishing_the_next_command_appends_the_audit_record_once() {
    let dir = initialised();
    crash(dir.path(), "controller.published=1", &["promote"]);
    assert_eq!(stage(dir.path()), 1);
    assert_eq!(flags_percentage(dir.path()), 5);
    assert_eq!(audit_events(dir.path()), ["init"]);

    let out = next_command(dir.path());
    assert!(
        stderr(&out).contains("audit record"),
        "the open says it finished the journal: {}",
        stderr(&out)
    );
    assert_eq!(flags_percentage(dir.path()), 5);
    assert_eq!(audit_events(dir.path()), ["init", "promote", "pause"]);
}

#[test]
fn killed_before_the_state_commit_nothing_happened_and_a_retry_moves_one_stage() {
    let dir = initialised();
    let state_before = std::fs::read(dir.path().join("rollout-state.json")).unwrap();
    // The first atomic write of a promote stages the flags file.
    crash(dir.path(), "atomic.after_sync=1", &["promote"]);
    assert_eq!(
        std::fs::read(dir.path().join("rollout-state.json")).unwrap(),
        state_before
    );
    assert_eq!(flags_percentage(dir.path()), 0);
    assert_eq!(audit_events(dir.path()), ["init"]);

    let out = run(dir.path(), &["promote"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stage(dir.path()), 1, "one stage, not two");
    assert_eq!(flags_percentage(dir.path()), 5);
    assert_eq!(audit_events(dir.path()), ["init", "promote"]);
    assert!(
        temp_files(dir.path()).is_empty(),
        "{:?}",
        temp_files(dir.path())
    );
}

#[test]
fn a_rollback_killed_after_its_commit_still_reaches_zero() {
    let dir = initialised();
    let out = run(dir.path(), &["promote"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(flags_percentage(dir.path()), 5);

    crash(
        dir.path(),
        "controller.committed=1",
        &["rollback", "--reason", "drill"],
    );
    assert_eq!(flags_percentage(dir.path()), 5, "not yet published");
    let out = run(dir.path(), &["status", "--output", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["phase"], "rolled_back", "{status}");
    assert_eq!(status["current_percentage"], 0.0, "{status}");

    // A resume opens the engine on the rolled-back rollout: it first
    // publishes the rollback's 0%, then restarts at stage 1.
    let out = run(dir.path(), &["resume"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("rewrote it to 0%"),
        "the rollback was published before the resume: {}",
        stderr(&out)
    );
    assert_eq!(
        audit_events(dir.path()),
        ["init", "promote", "rollback", "resume"]
    );
}
