//! The safety net holds: no ordinary fault switches off the auto-rollback,
//! and nothing outside the operator's identity acts in their name.
//!
//! One test (or more) per defect found by the adversarial review: a broken
//! flags file, a failed publish, a hostile request folder, forged identities,
//! a re-initialised state, concurrent promotes, incomplete notifications, the
//! first deploy of a cohort-gated rollout, secrets in parse errors, exit codes
//! and full disks, and the smaller items. Most drive the controller binary as
//! an operator would; the rest drive the engine as a library.

#![cfg(unix)]

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use genesis_flags::rollout::controller::{EngineLock, FlagsWriter};
use genesis_flags::rollout::{
    AuditLog, CheckKind, CohortFigures, CohortObservation, Controller, ControllerError,
    ManualClock, Observation, Operation, Phase, Plan, RolloutState, RunEnd, RunOptions, StopFlag,
    SystemClock, Timestamp, Verdict,
};
use genesis_flags::Percentage;
use serde_json::Value;

use crate::support::controller as bin;
use bin::{controller, run};

const FLAGS: &str = "{\n  \"version\": 1,\n  \"rollouts\": { \"phase_4_deployment\": { \"percentage\": 0 } },\n  \"flags\": {\n    \"htdag_enabled\": { \"rollout\": \"phase_4_deployment\" },\n    \"halo_enabled\": { \"rollout\": \"phase_4_deployment\" }\n  }\n}\n";

const MIXED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/scenarios/mixed.json");
const HEALTHY: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/examples/scenarios/cohort-healthy.json"
);

/// A healthy service whose errors jump to 5% from its third hour.
const BREACH: &str = r#"{ "start": "2025-10-23T09:00:00Z", "duration": "6h", "step": "1m",
  "baseline": { "requests_per_second": 200, "error_rate": 0.0005, "p95_ms": 120,
                "jobs_down": [], "critical_alerts": [] },
  "events": [ { "from": "3h", "to": "6h", "error_rate": 0.05 } ] }"#;

/// Generous: these tests must pass on a busy machine.
const DEADLINE: Duration = Duration::from_secs(60);

fn t0() -> Timestamp {
    "2025-10-23T09:00:00Z".parse().unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A rollout initialised by the library at `clock`'s now: its folder and
/// state file.
fn initialised(clock: &dyn genesis_flags::rollout::Clock) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let state_path = dir.path().join("rollout-state.json");
    std::fs::write(dir.path().join("flags.json"), FLAGS).unwrap();
    Controller::init(
        &state_path,
        &dir.path().join("flags.json"),
        "phase_4_deployment",
        Plan::six_day(),
        false,
        clock,
    )
    .unwrap();
    (dir, state_path)
}

fn init(dir: &Path) {
    std::fs::write(dir.join("flags.json"), FLAGS).unwrap();
    let out = run(
        dir,
        &[
            "init",
            "--flags",
            "flags.json",
            "--rollout",
            "phase_4_deployment",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
}

fn state(dir: &Path) -> RolloutState {
    RolloutState::load(dir.join("rollout-state.json")).unwrap()
}

fn published(path: &Path) -> f64 {
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    v["rollouts"]["phase_4_deployment"]["percentage"]
        .as_f64()
        .unwrap()
}

fn audit(dir: &Path) -> Vec<genesis_flags::rollout::AuditRecord> {
    AuditLog::read(dir.join("rollout-state.json.audit.jsonl")).unwrap()
}

fn outbox(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("rollout-state.json.outbox.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Waits for `child` at most `within` (reading its output meanwhile, so a
/// full pipe never blocks it); kills it and fails when it hangs.
fn wait_for(mut child: Child, within: Duration, what: &str) -> Output {
    use std::io::Read;
    fn drain(pipe: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<Vec<u8>> {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut bytes);
            }
            bytes
        })
    }
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > within {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = Output {
        status: status.unwrap_or_else(|| child.wait().unwrap()),
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    };
    assert!(
        status.is_some(),
        "{what} hung for {within:?}: {}",
        text(&out)
    );
    out
}

fn spawn(dir: &Path, args: &[&str]) -> Child {
    Command::new(controller())
        .current_dir(dir)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn run_within(dir: &Path, args: &[&str]) -> Output {
    wait_for(spawn(dir, args), DEADLINE, &args.join(" "))
}

/// Polls `condition` until it holds, failing after [`DEADLINE`].
fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let started = Instant::now();
    while !condition() {
        assert!(
            started.elapsed() < DEADLINE,
            "{what}: not within {DEADLINE:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A `run` on the real clock over a healthy scenario: an engine that holds
/// the lock and serves requests for as long as the test needs it.
struct Engine {
    child: Option<Child>,
}

impl Engine {
    fn start(dir: &Path) -> Engine {
        let child = Command::new(controller())
            .current_dir(dir)
            .args([
                "run",
                "--scenario",
                HEALTHY,
                "--realtime",
                "--tick",
                "1s",
                "--wait-for-resume",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let lock = dir.join("rollout-state.json.lock");
        eventually("the engine takes the lock", || EngineLock::is_held(&lock));
        eventually("the engine starts the rollout", || {
            state(dir).phase == Phase::Soaking
        });
        Engine { child: Some(child) }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn requests(dir: &Path) -> PathBuf {
    dir.join("rollout-state.json.requests")
}

// 1. A colleague's typo in the flags file never silences the rollback.

#[test]
fn p1_a_broken_flags_file_never_stops_an_operators_rollback() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    init(d);
    let out = run(d, &["promote", "--reason", "start"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(published(&d.join("flags.json")), 5.0);
    // A colleague's edit with a stray ",,".
    let broken = std::fs::read_to_string(d.join("flags.json"))
        .unwrap()
        .replacen(",", ",,", 1);
    std::fs::write(d.join("flags.json"), &broken).unwrap();

    let out = run(d, &["rollback", "--reason", "errors"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(state(d).phase, Phase::RolledBack);
    // The fleet reaches 0% without a person: the last good document with
    // the new percentage, the broken one kept beside it.
    assert_eq!(published(&d.join("flags.json")), 0.0);
    let kept: Vec<_> = std::fs::read_dir(d)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("flags.json.rejected-")
        })
        .collect();
    assert_eq!(kept.len(), 1, "the broken file is kept beside");
    assert_eq!(std::fs::read_to_string(kept[0].path()).unwrap(), broken);
    assert!(
        text(&out).contains("restored"),
        "the output says what was done: {}",
        text(&out)
    );
}

#[test]
fn p1_run_rolls_back_through_a_broken_flags_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    init(d);
    std::fs::write(
        d.join("flags.json"),
        FLAGS.replacen("\"version\": 1,", "\"version\": 1,,", 1),
    )
    .unwrap();
    // Errors from the third hour: the rollback is decided, recorded, told
    // and published whatever the flags file says.
    std::fs::write(d.join("breach.json"), BREACH).unwrap();
    let out = run_within(d, &["run", "--scenario", "breach.json", "--tick", "1m"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let s = state(d);
    assert_eq!(s.phase, Phase::RolledBack);
    assert_eq!(published(&d.join("flags.json")), 0.0);
    assert!(audit(d).iter().any(|r| r.event == "rollback"));
    assert!(outbox(d).iter().any(|e| e["type"] == "rolled_back"));
}

// 2. A failed publish is retried by a running engine.

#[derive(Debug, Default)]
struct Published {
    percentage: Percentage,
    failing: bool,
    attempts: u32,
}

#[derive(Debug, Clone, Default)]
struct SharedFlags(Arc<Mutex<Published>>);

impl FlagsWriter for SharedFlags {
    fn describe(&self) -> String {
        "shared flags".into()
    }
    fn percentage(&self, _: &str) -> Result<Percentage, ControllerError> {
        Ok(self.0.lock().unwrap().percentage)
    }
    fn prepare(&mut self, _: &str, p: Percentage) -> Result<bool, ControllerError> {
        Ok(self.0.lock().unwrap().percentage != p)
    }
    fn publish(&mut self) -> Result<(), ControllerError> {
        let mut s = self.0.lock().unwrap();
        s.attempts += 1;
        if s.failing {
            return Err(ControllerError::Invalid {
                field: "flags".into(),
                message: "Operation not permitted (immutable file)".into(),
            });
        }
        Ok(())
    }
    fn discard(&mut self) {}
}

/// A writer whose `publish` makes what was prepared visible.
#[derive(Debug, Clone, Default)]
struct Immutable {
    shared: SharedFlags,
    staged: Option<Percentage>,
}

impl FlagsWriter for Immutable {
    fn describe(&self) -> String {
        "immutable flags".into()
    }
    fn percentage(&self, r: &str) -> Result<Percentage, ControllerError> {
        self.shared.percentage(r)
    }
    fn prepare(&mut self, r: &str, p: Percentage) -> Result<bool, ControllerError> {
        let moves = self.shared.prepare(r, p)?;
        self.staged = moves.then_some(p);
        Ok(moves)
    }
    fn publish(&mut self) -> Result<(), ControllerError> {
        self.shared.publish()?;
        if let Some(p) = self.staged.take() {
            self.shared.0.lock().unwrap().percentage = p;
        }
        Ok(())
    }
    fn discard(&mut self) {
        self.staged = None;
    }
}

#[test]
fn p2_a_failed_publish_is_retried_by_the_running_engine() {
    let clock = ManualClock::new(t0());
    let (_dir, state_path) = initialised(&clock);
    let writer = Immutable::default();
    let shared = writer.shared.clone();
    let mut engine = Controller::builder(&state_path)
        .clock(clock.clone())
        .gate(|_| Observation::healthy())
        .flags_writer(writer)
        .open()
        .unwrap();
    engine.apply(&Operation::Start, "alice").unwrap();
    assert_eq!(
        shared.0.lock().unwrap().percentage,
        Percentage::from_percent(5.0).unwrap()
    );
    // `chattr +i`: the rollback is committed, its publish fails.
    shared.0.lock().unwrap().failing = true;
    let applied = engine
        .apply(
            &Operation::Rollback {
                reason: "errors".into(),
            },
            "alice",
        )
        .unwrap();
    assert!(!applied.commit.pending.is_empty());
    assert_eq!(engine.state().phase, Phase::RolledBack);
    // `chattr -i`: the running engine writes it without a person.
    shared.0.lock().unwrap().failing = false;
    let mut options =
        RunOptions::simulated(Duration::from_secs(60)).until(t0() + Duration::from_secs(600));
    options.wait_for_resume = true;
    options.incident_every = Some(Duration::from_secs(60));
    let stop: StopFlag = Arc::new(AtomicBool::new(false));
    let end = engine.run(&options, &stop, &mut |_| {}).unwrap();
    assert_eq!(end, RunEnd::Until);
    assert_eq!(shared.0.lock().unwrap().percentage, Percentage::ZERO);
}

// 3. The request folder cannot freeze the engine.

fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(status.success());
}

#[test]
fn p3_a_fifo_in_the_request_folder_never_hangs_a_direct_rollback() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    init(d);
    let out = run(d, &["promote", "--reason", "start"]);
    assert!(out.status.success(), "{}", text(&out));
    std::fs::create_dir_all(requests(d)).unwrap();
    std::fs::set_permissions(requests(d), std::fs::Permissions::from_mode(0o700)).unwrap();
    mkfifo(&requests(d).join("x.request.json"));
    let out = run_within(d, &["rollback", "--reason", "errors"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(state(d).phase, Phase::RolledBack);
}

#[test]
fn p3_the_engine_serves_past_a_fifo_a_huge_and_a_symlinked_request() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    init(d);
    let _engine = Engine::start(d);
    let folder = requests(d);
    eventually("the engine makes its request folder", || folder.is_dir());
    mkfifo(&folder.join("0000000000000-1-fifo.request.json"));
    let huge = std::fs::File::create(folder.join("0000000000000-1-huge.request.json")).unwrap();
    huge.set_len(1 << 30).unwrap();
    drop(huge);
    let secret = d.join("secret.json");
    std::fs::write(&secret, "{\"db_password_field\": \"x\"}").unwrap();
    std::os::unix::fs::symlink(&secret, folder.join("0000000000000-1-link.request.json")).unwrap();

    let out = run_within(d, &["pause", "--reason", "checking"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(state(d).phase, Phase::Paused);
    // The bad requests are refused without echoing what they point at.
    for entry in std::fs::read_dir(&folder).unwrap().filter_map(|e| e.ok()) {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".answer.json") {
            let answer = std::fs::read_to_string(entry.path()).unwrap();
            assert!(!answer.contains("db_password_field"), "{name}: {answer}");
        }
    }
}

// 4. Anyone who can write the folder is not anyone.

const NOBODY: u32 = 65534;

fn chown(path: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap();
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(1)
        == 0
}

/// Whether the test can act as other users; outside CI a non-root run says
/// why it stops, under CI (which runs as root) it fails.
fn running_as_root(why: &str) -> bool {
    if is_root() {
        return true;
    }
    eprintln!("{why}");
    assert_ne!(
        std::env::var("CI").as_deref(),
        Ok("true"),
        "CI runs as root"
    );
    false
}

fn forged_request(folder: &Path, id: &str, operation: &str, by: &str) -> PathBuf {
    let now = now_millis();
    let body = format!(
        "{{\"id\":\"{id}\",\"operation\":{operation},\"by\":\"{by}\",\"sent\":\"{}\",\"expires\":\"{}\"}}",
        Timestamp::from_unix_millis(now),
        Timestamp::from_unix_millis(now + 30_000)
    );
    let tmp = folder.join(format!(".{id}.tmp"));
    std::fs::write(&tmp, body).unwrap();
    let path = folder.join(format!("{id}.request.json"));
    std::fs::rename(&tmp, &path).unwrap();
    path
}

fn now_millis() -> u64 {
    use genesis_flags::rollout::Clock;
    SystemClock.now().unix_millis()
}

#[test]
fn p4_identity_is_the_files_owner_and_the_claim_is_only_noted() {
    if !running_as_root("needs root to give a request another owner") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    init(d);
    let _engine = Engine::start(d);
    let folder = requests(d);
    eventually("the engine makes its request folder", || folder.is_dir());
    // A group the engine's operators share.
    chown(&folder, 0, NOBODY);
    std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o770)).unwrap();
    let id = format!("{:013}-1-forged", now_millis());
    let path = forged_request(
        &folder,
        &id,
        "{\"operation\":\"pause\",\"reason\":\"forged\"}",
        "deployment lead",
    );
    chown(&path, NOBODY, NOBODY);
    eventually("the engine applies it", || state(d).phase == Phase::Paused);
    let s = state(d);
    let entry = s.history.last().unwrap();
    assert_ne!(entry.by, "deployment lead", "the claim is not the identity");
    assert!(
        entry.by.contains("nobody") || entry.by.contains("65534"),
        "the owner of the file acted: {}",
        entry.by
    );
    // The state commits first; the audit record follows it.
    eventually("the pause is audited", || {
        audit(d).iter().any(|r| r.event == "pause")
    });
    let record = audit(d)
        .into_iter()
        .rev()
        .find(|r| r.event == "pause")
        .unwrap();
    assert_eq!(record.by, entry.by);
    assert!(
        serde_json::to_string(&entry)
            .unwrap()
            .contains("deployment lead"),
        "the claimed text is kept beside: {entry:?}"
    );
}

#[test]
fn p4_the_request_folder_is_private_whatever_the_parent_and_umask() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o1777)).unwrap();
    init(d);
    let _engine = Engine::start(d);
    eventually("the engine makes its request folder", || {
        requests(d).is_dir()
    });
    let mode = std::fs::metadata(requests(d)).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode & 0o007, 0, "others have no access: {mode:o}");
    assert_eq!(mode, 0o700, "{mode:o}");
}

#[test]
fn p4_a_folder_others_can_write_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    init(d);
    let _engine = Engine::start(d);
    let folder = requests(d);
    eventually("the engine makes its request folder", || folder.is_dir());
    std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o777)).unwrap();
    let id = format!("{:013}-1-open", now_millis());
    forged_request(
        &folder,
        &id,
        "{\"operation\":\"promote\",\"reason\":\"skip the soak\"}",
        "x",
    );
    // Give the engine many polls; it must not apply it.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        state(d).stage,
        1,
        "a request in a world-writable folder is refused"
    );
    assert_eq!(state(d).phase, Phase::Soaking);
}

#[test]
fn p4_a_second_user_can_pause_without_write_access_to_the_lock() {
    if !running_as_root("needs root to act as a second user") {
        return;
    }
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
    init(d);
    let _engine = Engine::start(d);
    let folder = requests(d);
    eventually("the engine makes its request folder", || folder.is_dir());
    chown(&folder, 0, NOBODY);
    std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o770)).unwrap();
    let out = wait_for(
        Command::new(controller())
            .current_dir(d)
            .uid(NOBODY)
            .gid(NOBODY)
            .env("USER", "deployment lead")
            .args(["pause", "--reason", "second user"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
        DEADLINE,
        "pause as a second user",
    );
    assert!(out.status.success(), "{}", text(&out));
    let s = state(d);
    assert_eq!(s.phase, Phase::Paused);
    let by = &s.history.last().unwrap().by;
    assert!(by.contains("nobody") || by.contains("65534"), "{by}");
}

// 5. Notifications survive a re-initialisation; ids never repeat.

#[test]
fn p5_events_and_ids_continue_across_a_reinitialisation() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    init(d);
    for op in [
        &["promote", "--reason", "go"][..],
        &["rollback", "--reason", "r"],
    ] {
        let out = run(d, op);
        assert!(out.status.success(), "{}", text(&out));
    }
    std::fs::remove_file(d.join("rollout-state.json")).unwrap();
    init(d);
    for op in [
        &["promote", "--reason", "go"][..],
        &["rollback", "--reason", "r"],
    ] {
        let out = run(d, op);
        assert!(out.status.success(), "{}", text(&out));
        assert!(!text(&out).contains("pending:"), "{}", text(&out));
    }
    let events = outbox(d);
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["started", "rolled_back", "started", "rolled_back"]);
    let mut ids: Vec<&str> = events.iter().map(|e| e["id"].as_str().unwrap()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 4, "ids never repeat: {ids:?}");
    // The audit log's revisions increase too.
    let revisions: Vec<u64> = audit(d).iter().filter_map(|r| r.revision).collect();
    assert!(revisions.windows(2).all(|w| w[0] < w[1]), "{revisions:?}");
}

// 6. Concurrent promotes move one stage; an interrupted command withdraws.

#[test]
fn p6_two_operators_promoting_at_once_move_one_stage() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    init(d);
    let _engine = Engine::start(d);
    assert_eq!(state(d).stage, 1);
    let a = spawn(d, &["promote", "--from-stage", "1", "--reason", "a"]);
    let b = spawn(d, &["promote", "--from-stage", "1", "--reason", "b"]);
    let a = wait_for(a, DEADLINE, "promote a");
    let b = wait_for(b, DEADLINE, "promote b");
    let ok = [&a, &b].iter().filter(|o| o.status.success()).count();
    assert_eq!(ok, 1, "exactly one applies:\n{}\n{}", text(&a), text(&b));
    let refused = if a.status.success() { &b } else { &a };
    assert_eq!(refused.status.code(), Some(2), "{}", text(refused));
    assert!(text(refused).contains("stage"), "{}", text(refused));
    assert_eq!(state(d).stage, 2, "the 10% stage is not skipped");
}

#[test]
fn p6_an_interrupted_command_withdraws_its_request() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    init(d);
    let before = std::fs::read(d.join("rollout-state.json")).unwrap();
    // Something holds the lock and serves nothing.
    let lock = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(d.join("rollout-state.json.lock"))
        .unwrap();
    lock.try_lock().unwrap();
    let child = spawn(d, &["rollback", "--reason", "ctrl-c"]);
    eventually("the request is sent", || {
        std::fs::read_dir(requests(d)).is_ok_and(|entries| {
            entries
                .filter_map(|e| e.ok())
                .any(|e| e.file_name().to_string_lossy().ends_with(".request.json"))
        })
    });
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = wait_for(child, DEADLINE, "the interrupted rollback");
    assert!(!out.status.success(), "{}", text(&out));
    let left: Vec<String> = std::fs::read_dir(requests(d))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".request.json"))
        .collect();
    assert!(left.is_empty(), "the request was withdrawn: {left:?}");
    drop(lock);
    assert_eq!(std::fs::read(d.join("rollout-state.json")).unwrap(), before);
}

// 7. Events carry every check the policy judged, the deciding one first.

fn cohort(in_rate: f64, out_rate: f64, percent: f64, in_requests: f64) -> CohortObservation {
    let figures = |n: f64, rate: f64| CohortFigures {
        requests: n,
        errors: (n * rate).round(),
        p95_ms: (n > 0.0).then_some(120.0),
        slow: (n * 0.01).round(),
    };
    CohortObservation::converged(
        "phase_4_deployment",
        Duration::from_secs(300),
        Percentage::from_percent(percent).unwrap(),
        figures(in_requests, in_rate),
        figures(60_000.0 - in_requests, out_rate),
    )
}

#[test]
fn p7_a_flagged_only_rollback_event_names_the_deciding_check_first() {
    let mut state = RolloutState::new("phase_4_deployment", Plan::six_day(), t0());
    state.start(t0(), "alice").unwrap();
    let clock = ManualClock::new(t0() + Duration::from_secs(60));
    let gate = |_| {
        let c = cohort(0.05, 0.0005, 5.0, 3_000.0);
        Observation::healthy()
            .with_error_rate((3_000.0 * 0.05 + 57_000.0 * 0.0005) / 60_000.0)
            .with_cohorts(c)
    };
    let mut engine = Controller::in_memory(state, Box::new(gate), clock);
    let stop: StopFlag = Arc::new(AtomicBool::new(false));
    let options =
        RunOptions::simulated(Duration::from_secs(60)).until(t0() + Duration::from_secs(7200));
    let end = engine.run(&options, &stop, &mut |_| {}).unwrap();
    assert_eq!(end, RunEnd::RolledBack);
    let event = engine
        .notifications()
        .iter()
        .find(|e| e.kind.name() == "rolled_back")
        .unwrap();
    assert_eq!(event.check, Some(CheckKind::InCohortErrorRate));
    let first = event.checks.first().expect("checks");
    assert_eq!(
        first.check,
        CheckKind::InCohortErrorRate,
        "{:?}",
        event.checks
    );
    assert_eq!(first.verdict, Verdict::Breach);
    assert_eq!(
        event.checks.len(),
        10,
        "every check judged: {:?}",
        event.checks
    );
}

// 8. At 0% the empty in cohort does not block the first stage.

#[test]
fn p8_the_first_safe_deploy_of_a_cohort_gated_rollout_can_start() {
    let clock = ManualClock::new(t0());
    let (_dir, state_path) = initialised(&clock);
    let gate = |_| Observation::healthy().with_cohorts(cohort(0.0005, 0.0005, 0.0, 0.0));
    let mut engine = Controller::builder(&state_path)
        .clock(clock)
        .gate(gate)
        .open()
        .unwrap();
    let applied = engine
        .deploy_safe(
            Percentage::from_percent(5.0).unwrap(),
            "alice",
            &RunOptions::real_time(Duration::from_secs(60)),
        )
        .unwrap();
    assert_eq!(applied.entry.stage, 1);
    // The global checks still block it.
    let mut state = RolloutState::new("phase_4_deployment", Plan::six_day(), t0());
    state.flags_file = None;
    let mut blind = Controller::in_memory(
        state,
        Box::new(|_| {
            Observation::healthy()
                .with_error_rate(0.02)
                .with_cohorts(cohort(0.0005, 0.0005, 0.0, 0.0))
        }),
        ManualClock::new(t0()),
    );
    let refused = blind
        .deploy_safe(
            Percentage::from_percent(5.0).unwrap(),
            "alice",
            &RunOptions::real_time(Duration::from_secs(60)),
        )
        .unwrap_err();
    assert!(refused.is_unhealthy(), "{refused}");
}

// 9. Parse errors never echo values.

#[test]
fn p9_malformed_notify_and_gate_files_never_print_their_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    init(d);
    let cases = [
        (
            "notify.json",
            r#"{"slack": "https://hooks.slack.com/services/T0/B0/SECRETSLACK"}"#,
        ),
        (
            "notify.json",
            r#"{"slack": {"webhook_url": "https://hooks.slack.com/services/T0/B0/SECRETSLACK", "channel": 5}}"#,
        ),
        (
            "notify.json",
            r#"{"pagerduty": {"routing_key": ["SECRETROUTING"]}}"#,
        ),
        (
            "notify.json",
            r#"{"pagerduty": {"routing_key": "SECRETROUTING", "events_url": 7}}"#,
        ),
        (
            "notify.json",
            r#"{"email": {"smtp_url": 9, "from": "a@b.c", "to": ["d@e.f"], "password": "SECRETPASSWORD"}}"#,
        ),
        (
            "notify.json",
            r#"{"email": {"smtp_url": "smtp://u:SECRETPASSWORD@127.0.0.1:25", "from": 1, "to": []}}"#,
        ),
        (
            "notify.json",
            r#"{"webhooks": [{"url": "https://h.example/SECRETHOOK", "secret": 5}]}"#,
        ),
        ("notify.json", r#"{"webhooks": "SECRETHOOK"}"#),
        (
            "gate.json",
            r#"{"prometheus": "http://u:SECRETPROM@127.0.0.1:9090"}"#,
        ),
        (
            "gate.json",
            r#"{"prometheus": {"url": "http://u:SECRETPROM@127.0.0.1:9090", "timeout": 5}}"#,
        ),
        (
            "gate.json",
            r#"{"prometheus": {"url": "http://u:SECRETPROM@127.0.0.1:9090" "x": 1}}"#,
        ),
    ];
    for (file, body) in cases {
        std::fs::write(d.join(file), body).unwrap();
        for output in ["text", "json"] {
            let args: Vec<&str> = if file == "gate.json" {
                vec!["--output", output, "health-check", "--gate", "gate.json"]
            } else {
                vec![
                    "--output",
                    output,
                    "pause",
                    "--reason",
                    "x",
                    "--notify",
                    "notify.json",
                ]
            };
            let out = run(d, &args);
            assert_eq!(out.status.code(), Some(2), "{body}: {}", text(&out));
            let all = text(&out);
            assert!(!all.contains("SECRET"), "{body} ({output}): {all}");
            assert!(all.contains(file), "the error still names the file: {all}");
        }
    }
    assert_eq!(state(d).phase, Phase::Ready, "nothing changed");
}

// 10. Exit codes say what happened; a full disk never blocks a rollback.

#[test]
fn p10_a_run_that_changed_then_could_not_continue_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    init(d);
    // The third state write of the run fails (a full or failing volume).
    let out = wait_for(
        Command::new(controller())
            .current_dir(d)
            .env("GENESIS_FLAGS_FAILPOINTS", "state.save=3!")
            .args(["run", "--scenario", MIXED, "--tick", "1m"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
        DEADLINE,
        "run",
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert_ne!(state(d).phase, Phase::Ready, "it changed before it failed");
}

#[test]
fn p10_a_full_disk_never_blocks_an_emergency_rollback() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    init(d);
    let out = run(d, &["promote", "--reason", "go"]);
    assert!(out.status.success(), "{}", text(&out));
    // The lock file's volume is full: the holder text cannot be written.
    std::fs::remove_file(d.join("rollout-state.json.lock")).ok();
    std::os::unix::fs::symlink("/dev/full", d.join("rollout-state.json.lock")).unwrap();
    let out = run(d, &["rollback", "--reason", "emergency"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(state(d).phase, Phase::RolledBack);
    assert_eq!(published(&d.join("flags.json")), 0.0);
}

// 11. The smaller items.

#[test]
fn p11_operator_output_is_the_changes_own_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    init(d);
    let out = run(d, &["--output", "json", "promote", "--reason", "go"]);
    assert!(out.status.success(), "{}", text(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["outcome"]["event"], "promote", "{v}");
    assert_eq!(v["outcome"]["stage"], 1, "{v}");
    assert_eq!(v["revision"], state(d).revision, "{v}");
}

#[test]
fn p11_operator_audit_records_keep_the_stage_before() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    init(d);
    for _ in 0..2 {
        let out = run(d, &["promote", "--reason", "go"]);
        assert!(out.status.success(), "{}", text(&out));
    }
    let promotes: Vec<_> = audit(d)
        .into_iter()
        .filter(|r| r.event == "promote")
        .collect();
    assert_eq!(promotes.len(), 2);
    assert_eq!(
        (promotes[0].stage, promotes[0].percentage.as_percent()),
        (0, 0.0)
    );
    assert_eq!(
        (promotes[1].stage, promotes[1].percentage.as_percent()),
        (1, 5.0)
    );
}

#[test]
fn p11_a_tick_is_decided_on_the_state_after_the_change_it_waited_behind() {
    let (dir, state_path) = initialised(&SystemClock);
    let sent = Arc::new(AtomicBool::new(false));
    let gate_sent = Arc::clone(&sent);
    let operator_state = state_path.clone();
    // A slow gate; an operator pauses while it is being read.
    let gate = move |_| {
        if !gate_sent.swap(true, Ordering::SeqCst) {
            let s = operator_state.clone();
            let t = std::thread::spawn(move || {
                Controller::submit(
                    &s,
                    &Operation::Pause {
                        reason: "look".into(),
                    },
                    "bob",
                )
            });
            std::thread::sleep(Duration::from_millis(1500));
            assert!(t.join().unwrap().is_ok());
        }
        Observation::healthy()
    };
    let mut engine = Controller::builder(&state_path).gate(gate).open().unwrap();
    engine.apply(&Operation::Start, "alice").unwrap();
    let stop: StopFlag = Arc::new(AtomicBool::new(false));
    let mut options = RunOptions::real_time(Duration::from_secs(1));
    options.poll = Some(Duration::from_millis(50));
    let end = engine.run(&options, &stop, &mut |_| {}).unwrap();
    assert_eq!(end, RunEnd::Paused);
    let records = AuditLog::read(dir.path().join("rollout-state.json.audit.jsonl")).unwrap();
    let at: Vec<Timestamp> = records.iter().map(|r| r.at).collect();
    assert!(
        at.windows(2).all(|w| w[0] <= w[1]),
        "audit in time order: {records:#?}"
    );
    let pause = records.iter().position(|r| r.event == "pause").unwrap();
    // The tick that waited behind the pause judged the paused state.
    assert!(records[pause + 1..]
        .iter()
        .all(|r| r.event != "advance" && r.event != "rollback"));
    if let Some(tick) = records[pause + 1..].first() {
        assert_eq!(tick.revision, records[pause].revision.map(|r| r + 1));
    }
}

#[test]
fn p11_probing_the_lock_never_refuses_a_starting_engine() {
    let (dir, state_path) = initialised(&SystemClock);
    let lock = dir.path().join("rollout-state.json.lock");
    let done = Arc::new(AtomicBool::new(false));
    let prober = {
        let done = Arc::clone(&done);
        let lock = lock.clone();
        std::thread::spawn(move || {
            while !done.load(Ordering::SeqCst) {
                let _ = EngineLock::is_held(&lock);
                let _ = EngineLock::holder(&lock);
            }
        })
    };
    let mut refused = 0;
    for _ in 0..200 {
        match Controller::builder(&state_path).open() {
            Ok(engine) => drop(engine),
            Err(ControllerError::Locked { .. }) => refused += 1,
            Err(e) => panic!("{e}"),
        }
    }
    done.store(true, Ordering::SeqCst);
    prober.join().unwrap();
    assert_eq!(refused, 0, "starts refused by a probe");
}

#[test]
fn p11_a_moved_folder_writes_its_own_flags_file() {
    let top = tempfile::tempdir().unwrap();
    let a = top.path().join("a");
    std::fs::create_dir(&a).unwrap();
    init(&a);
    let b = top.path().join("b");
    std::fs::rename(&a, &b).unwrap();
    // Someone puts a file at the old path.
    std::fs::create_dir(&a).unwrap();
    std::fs::write(a.join("flags.json"), FLAGS).unwrap();
    let out = run(&b, &["promote", "--reason", "go"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(published(&b.join("flags.json")), 5.0);
    assert_eq!(
        published(&a.join("flags.json")),
        0.0,
        "the old path is left alone"
    );
}

#[test]
fn p11_every_file_read_is_bounded_and_regular() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    init(d);
    mkfifo(&d.join("fifo.json"));
    let cases: [&[&str]; 6] = [
        &["simulate", "--plan", "/dev/zero"],
        &["simulate", "--scenario", "/dev/zero"],
        &["health-check", "--gate", "/dev/zero"],
        &["pause", "--reason", "x", "--notify", "fifo.json"],
        &["health-check", "--gate", "fifo.json"],
        &[
            "init",
            "--flags",
            "fifo.json",
            "--rollout",
            "phase_4_deployment",
            "--force",
        ],
    ];
    for args in cases {
        let out = run_within(d, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        assert!(
            text(&out).contains("not a regular file"),
            "{args:?}: {}",
            text(&out)
        );
    }
    assert_eq!(state(d).phase, Phase::Ready);
}

#[test]
fn p11_gate_numbers_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    init(d);
    for (field, body) in [
        (
            "connect_timeout",
            r#"{"prometheus": {"url": "http://127.0.0.1:9", "connect_timeout": "0s"}}"#,
        ),
        (
            "max_response_bytes",
            r#"{"prometheus": {"url": "http://127.0.0.1:9", "max_response_bytes": 0}}"#,
        ),
        (
            "read_timeout",
            r#"{"prometheus": {"url": "http://127.0.0.1:9", "read_timeout": "400d"}}"#,
        ),
    ] {
        std::fs::write(d.join("gate.json"), body).unwrap();
        let out = run(d, &["health-check", "--gate", "gate.json"]);
        assert_eq!(out.status.code(), Some(2), "{body}: {}", text(&out));
        assert!(text(&out).contains(field), "{body}: {}", text(&out));
    }
}

#[test]
fn p11_go_thresholds_must_be_stricter_than_rollback_thresholds() {
    let mut plan: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/examples/plans/six-day.json"
        ))
        .unwrap(),
    )
    .unwrap();
    plan["go"]["error_rate_percent_below"] = 0.9.into();
    let err = Plan::from_json(&plan.to_string()).unwrap_err().to_string();
    assert!(err.contains("go") && err.contains("canary"), "{err}");
    plan["go"]["error_rate_percent_below"] = 0.1.into();
    plan["go"]["p95_ms_below"] = 350.into();
    let err = Plan::from_json(&plan.to_string()).unwrap_err().to_string();
    assert!(err.contains("p95"), "{err}");
}
