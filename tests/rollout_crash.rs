//! Crash safety of state saves. A child process (this test binary, running
//! the ignored `crash_child`) saves states 1, 2, 3, ... and prints `saved k`
//! after each save returns. It dies either deterministically at a crash
//! point of the atomic write (feature `failpoints`) or from a SIGKILL at a
//! random moment. After every death the state file loads, it is exactly one
//! of the states the child wrote, and it is the last acknowledged one or the
//! one after. No assertion depends on the machine's speed.

#![cfg(unix)]

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use genesis_flags::rollout::files::sweep_temp_files;
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

/// Not a test of its own: the body of the child process, run with
/// `--ignored --exact`. It continues from the state on disk, so numbers grow
/// across children, and acknowledges each save on stdout.
#[test]
#[ignore = "the child process of the crash tests"]
fn crash_child() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    let path = Path::new(&path);
    let first = RolloutState::load(path)
        .ok()
        .as_ref()
        .and_then(number_of)
        .map_or(1, |k| k + 1);
    let mut out = std::io::stdout().lock();
    for k in first.. {
        state_number(k).save(path).unwrap();
        // Straight to fd 1 (the harness does not capture it), flushed.
        writeln!(out, "saved {k}").unwrap();
        out.flush().unwrap();
    }
}

fn spawn_child(path: &Path, failpoints: Option<&str>) -> Child {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args(["--ignored", "--exact", "crash_child", "--test-threads=1"])
        .env(CHILD_ENV, path)
        .env_remove("GENESIS_FLAGS_FAILPOINTS")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(spec) = failpoints {
        command.env("GENESIS_FLAGS_FAILPOINTS", spec);
    }
    command.spawn().unwrap()
}

/// The last `saved k` the child printed in a whole line (the first may
/// share its line with the harness's `test crash_child ... `).
fn last_acknowledged(stdout: &str) -> Option<u64> {
    let whole = &stdout[..stdout.rfind('\n').map_or(0, |i| i + 1)];
    whole
        .lines()
        .rev()
        .find_map(|l| l.split_once("saved ")?.1.trim().parse().ok())
}

/// The state on disk is whole, written by the child, and either the last
/// acknowledged one (`acked`) or the one after (the death came after its
/// rename). Returns its number.
fn check_state(path: &Path, acked: u64, context: &str) -> u64 {
    let state = RolloutState::load(path)
        .unwrap_or_else(|e| panic!("{context}: the state does not load: {e}"));
    let k = number_of(&state).unwrap_or_else(|| panic!("{context}: not a state of the child"));
    assert_eq!(
        state,
        state_number(k),
        "{context}: not one of the states written"
    );
    assert!(
        k == acked || k == acked + 1,
        "{context}: state {k} on disk, but the last acknowledged save was {acked}"
    );
    k
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Deterministic deaths: for each crash point of the atomic write and each
/// N, the child aborts the N-th time it reaches that point.
#[cfg(feature = "failpoints")]
#[test]
fn a_writer_dying_at_each_crash_point_leaves_the_old_or_the_new_state() {
    use std::os::unix::process::ExitStatusExt;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rollout-state.json");
    state_number(0).save(&path).unwrap();
    let mut before = 0;
    for point in [
        "atomic.after_write",
        "atomic.after_sync",
        "atomic.after_rename",
    ] {
        for n in [1u64, 2, 5] {
            let context = format!("{point}={n}");
            let child = spawn_child(&path, Some(&context));
            let output = child.wait_with_output().unwrap();
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(
                output.status.signal(),
                Some(6),
                "{context}: the child did not abort: {:?} {stderr}",
                output.status
            );
            assert!(
                stderr.contains(&format!("failpoint {point} hit")),
                "{context}: {stderr}"
            );
            // The child acknowledged exactly the saves before the N-th.
            let stdout = String::from_utf8_lossy(&output.stdout);
            let acked = last_acknowledged(&stdout).unwrap_or(before);
            assert_eq!(acked, before + n - 1, "{context}: {stdout}");
            let k = check_state(&path, acked, &context);
            // Before the rename the old state stays; after it, the new one.
            let renamed = point == "atomic.after_rename";
            assert_eq!(k, if renamed { acked + 1 } else { acked }, "{context}");

            // A death before the rename leaves its temp; the sweep removes it
            // and nothing else.
            let removed = sweep_temp_files(&path).unwrap();
            assert_eq!(
                removed.len(),
                usize::from(!renamed),
                "{context}: {removed:?}"
            );
            assert_eq!(names(dir.path()), ["rollout-state.json"], "{context}");
            before = k;
        }
    }
}

/// Random deaths: SIGKILL after a random delay. Only machine-independent
/// facts are checked, whatever the delay hit (even before the first save).
#[test]
fn a_killed_writer_never_leaves_a_broken_state() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rollout-state.json");
    state_number(0).save(&path).unwrap();
    let mut before = 0;
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    for round in 0..20 {
        let mut child = spawn_child(&path, None);
        let mut stdout = child.stdout.take().unwrap();
        // Drained as it comes, so a full pipe never stalls the child.
        let reader = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stdout.read_to_string(&mut text);
            text
        });
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        std::thread::sleep(Duration::from_millis(5 + rng % 56));
        child.kill().unwrap();
        child.wait().unwrap();
        let stdout = reader.join().unwrap();
        let acked = last_acknowledged(&stdout).unwrap_or(before);
        assert!(
            acked >= before,
            "round {round}: acknowledged {acked} < {before}"
        );
        before = check_state(&path, acked, &format!("after kill {round}"));
        // A kill mid-write may leave one temp; the sweep takes exactly those.
        let removed = sweep_temp_files(&path).unwrap();
        assert!(removed.len() <= 1, "round {round}: {removed:?}");
        assert_eq!(names(dir.path()), ["rollout-state.json"], "round {round}");
    }
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
