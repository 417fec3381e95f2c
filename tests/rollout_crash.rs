//! Crash safety of state saves: a child process saves states in a loop and
//! is killed with SIGKILL at random moments, many times. After every kill the
//! state file loads, and it is exactly one of the states the child wrote.

#![cfg(unix)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use genesis_flags::rollout::{Plan, RolloutState, Timestamp};

const CHILD_ENV: &str = "GENESIS_FLAGS_CRASH_CHILD";

/// The `k`-th state the child writes: its history has `k` entries, so the
/// loaded file says which one it is and can be compared whole.
fn state_number(k: u64) -> RolloutState {
    let t0 = Timestamp::from_unix_millis(1_761_210_000_000);
    let mut state = RolloutState::new("phase_4_deployment", Plan::six_day(), t0);
    state.start(t0, "crash-test").unwrap();
    for i in 0..k % 40 {
        let role = ["deployment_lead", "on_call_engineer", "security_lead"][(i % 3) as usize];
        let _ = state.sign_off(t0, role, &format!("person {i}"));
    }
    state.reason = Some(format!("write number {k}"));
    state
}

fn number_of(state: &RolloutState) -> Option<u64> {
    state
        .reason
        .as_deref()?
        .strip_prefix("write number ")?
        .parse()
        .ok()
}

/// Not a test of its own: the body of the child process, run by
/// `a_killed_writer_never_leaves_a_broken_state` with `--ignored --exact`.
#[test]
#[ignore = "the child process of the crash test"]
fn crash_child() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    let path = Path::new(&path);
    for k in 1.. {
        state_number(k).save(path).unwrap();
    }
}

#[test]
fn a_killed_writer_never_leaves_a_broken_state() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rollout-state.json");
    state_number(0).save(&path).unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut seen = std::collections::BTreeSet::new();
    let kills = 40;
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    for round in 0..kills {
        let mut child = Command::new(&exe)
            .args([
                "--ignored",
                "--exact",
                "crash_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, &path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Let it write for a random 5-60 ms, then SIGKILL it mid-flight.
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        std::thread::sleep(Duration::from_millis(5 + rng % 56));
        child.kill().unwrap();
        child.wait().unwrap();

        let state = RolloutState::load(&path)
            .unwrap_or_else(|e| panic!("after kill {round}, the state does not load: {e}"));
        let k = number_of(&state).expect("a state written by the child");
        assert_eq!(
            state,
            state_number(k),
            "after kill {round}: not one of the states written"
        );
        seen.insert(k);
    }
    // The kills landed at different points of the write loop.
    assert!(
        seen.len() > kills / 4,
        "only {} distinct states seen: {seen:?}",
        seen.len()
    );
    // No temporary files are left behind beyond the ones killed mid-write.
    let leftovers = std::fs::read_dir(dir.path()).unwrap().count() - 1;
    assert!(leftovers <= kills, "{leftovers} leftovers");
}

#[test]
fn corrupt_and_truncated_files_are_errors_not_resets() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    state_number(7).save(&path).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();

    std::fs::write(&path, &text[..text.len() / 2]).unwrap();
    let err = RolloutState::load(&path).unwrap_err().to_string();
    assert!(
        err.contains("is corrupt") && err.contains("state.json"),
        "{err}"
    );

    std::fs::write(&path, text.replace("\"schema\": 1", "\"schema\": 2")).unwrap();
    let err = RolloutState::load(&path).unwrap_err().to_string();
    assert!(err.contains("schema 2"), "{err}");

    std::fs::write(&path, text.replace("\"stage\": 1,", "\"stage\": 9,")).unwrap();
    let err = RolloutState::load(&path).unwrap_err().to_string();
    assert!(
        err.contains("inconsistent") && err.contains("stage 9"),
        "{err}"
    );

    std::fs::write(&path, text.replace("\"rollout\":", "\"rollout_id\":")).unwrap();
    let err = RolloutState::load(&path).unwrap_err().to_string();
    assert!(err.contains("unknown field `rollout_id`"), "{err}");

    let err = RolloutState::load(dir.path().join("missing.json"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("cannot read") && err.contains("missing.json"),
        "{err}"
    );
}

#[test]
fn audit_log_appends_one_json_line_per_record() {
    use genesis_flags::rollout::{decide, AuditLog, AuditRecord, Observation};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let mut state = state_number(0);
    let start = state.history[0].clone();
    let mut log = AuditLog::open(&path).unwrap();
    log.append(&AuditRecord::operation(&state.rollout, &start))
        .unwrap();
    let obs = Observation::healthy().with_error_rate(0.02);
    let at = state.since + Duration::from_secs(60);
    let d = decide(&state, &obs, at);
    state.apply(&d);
    log.append(&AuditRecord::decision(&state.rollout, &d, &obs))
        .unwrap();
    drop(log);
    // Reopening appends rather than truncating.
    AuditLog::open(&path)
        .unwrap()
        .append(&AuditRecord::operation(&state.rollout, &start))
        .unwrap();

    let records = AuditLog::read(&path).unwrap();
    assert_eq!(records.len(), 3);
    assert_eq!(records[0].event, "start");
    assert_eq!(records[1].event, "hold");
    assert_eq!(records[1].observation.as_ref(), Some(&obs));
    assert_eq!(
        records[1].verdicts.as_ref().unwrap().error_rate.value,
        Some(2.0)
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 3);
}
