//! The controller engine as a library, with failure-injecting doubles: a
//! flags writer that fails, gates that error or hang, a manual clock.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use genesis_flags::rollout::controller::FlagsWriter;
use genesis_flags::rollout::{
    AuditLog, Clock, Controller, ControllerError, ManualClock, Observation, Operation, Phase, Plan,
    RolloutState, RunEnd, RunEvent, RunOptions, StopFlag, Timestamp,
};
use genesis_flags::Percentage;

const FLAGS: &str = r#"{
  "version": 1,
  "rollouts": {
    "phase_4_deployment": { "percentage": 0 }
  },
  "flags": {
    "htdag_enabled":  { "class": "critical", "rollout": "phase_4_deployment" },
    "halo_enabled":   { "class": "critical", "rollout": "phase_4_deployment" }
  }
}
"#;

fn t0() -> Timestamp {
    "2025-10-23T09:00:00Z".parse().unwrap()
}

struct Setup {
    _dir: tempfile::TempDir,
    state: PathBuf,
    flags: PathBuf,
    clock: ManualClock,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let flags = dir.path().join("flags.json");
    std::fs::write(&flags, FLAGS).unwrap();
    let state = dir.path().join("rollout-state.json");
    let clock = ManualClock::new(t0());
    Controller::init(
        &state,
        &flags,
        "phase_4_deployment",
        Plan::six_day(),
        false,
        &clock,
    )
    .unwrap();
    Setup {
        _dir: dir,
        state,
        flags,
        clock,
    }
}

fn healthy(_at: Timestamp) -> Observation {
    Observation::healthy()
}

fn flags_percentage(path: &Path) -> f64 {
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    v["rollouts"]["phase_4_deployment"]["percentage"]
        .as_f64()
        .unwrap()
}

fn audit_events(state: &Path) -> Vec<String> {
    let mut audit = state.as_os_str().to_owned();
    audit.push(".audit.jsonl");
    AuditLog::read(PathBuf::from(audit))
        .unwrap()
        .into_iter()
        .map(|r| r.event.to_string())
        .collect()
}

/// A flags writer that fails where told.
#[derive(Debug, Default)]
struct FailingFlags {
    /// What the writer says is published.
    published: Percentage,
    fail_prepare: bool,
    fail_publish: bool,
}

impl FlagsWriter for FailingFlags {
    fn describe(&self) -> String {
        "failing flags".into()
    }
    fn percentage(&self, _rollout: &str) -> Result<Percentage, ControllerError> {
        Ok(self.published)
    }
    fn prepare(&mut self, _: &str, _: Percentage) -> Result<bool, ControllerError> {
        if self.fail_prepare {
            return Err(ControllerError::Invalid {
                field: "flags".into(),
                message: "cannot create a temporary file: Permission denied".into(),
            });
        }
        Ok(true)
    }
    fn publish(&mut self) -> Result<(), ControllerError> {
        if self.fail_publish {
            return Err(ControllerError::Invalid {
                field: "flags".into(),
                message: "rename failed".into(),
            });
        }
        Ok(())
    }
    fn discard(&mut self) {}
}

#[test]
fn every_change_moves_state_flags_and_audit_together() {
    let s = setup();
    let mut engine = Controller::builder(&s.state)
        .clock(s.clock.clone())
        .gate(healthy)
        .open()
        .unwrap();
    let applied = engine.apply(&Operation::Start, "alice").unwrap();
    assert!(applied.commit.pending.is_empty());
    assert_eq!(flags_percentage(&s.flags), 5.0);
    s.clock.advance(Duration::from_secs(60));
    engine
        .apply(
            &Operation::Promote {
                reason: "by hand".into(),
            },
            "alice",
        )
        .unwrap();
    assert_eq!(flags_percentage(&s.flags), 10.0);
    let saved = RolloutState::load(&s.state).unwrap();
    assert_eq!(
        (saved.stage, saved.revision),
        (2, applied.commit.revision + 1)
    );
    assert_eq!(audit_events(&s.state), ["init", "start", "promote"]);
    // Only the number changed in the flags file.
    assert_eq!(
        std::fs::read_to_string(&s.flags).unwrap(),
        FLAGS.replace(r#""percentage": 0 }"#, r#""percentage": 10 }"#)
    );
}

#[test]
fn a_flags_write_that_cannot_be_staged_changes_nothing_and_a_retry_promotes_once() {
    let s = setup();
    {
        let mut engine = Controller::builder(&s.state)
            .clock(s.clock.clone())
            .open()
            .unwrap();
        engine.apply(&Operation::Start, "alice").unwrap();
    }
    let before = std::fs::read(&s.state).unwrap();
    let mut engine = Controller::builder(&s.state)
        .clock(s.clock.clone())
        .flags_writer(FailingFlags {
            published: Percentage::from_percent(5.0).unwrap(),
            fail_prepare: true,
            ..FailingFlags::default()
        })
        .open()
        .unwrap();
    let err = engine
        .apply(
            &Operation::Promote {
                reason: "go".into(),
            },
            "alice",
        )
        .unwrap_err();
    assert!(err.to_string().contains("Permission denied"), "{err}");
    assert_eq!(engine.state().stage, 1, "the engine's state moved");
    assert_eq!(
        std::fs::read(&s.state).unwrap(),
        before,
        "the state file moved"
    );
    assert_eq!(audit_events(&s.state), ["init", "start"]);
    drop(engine);
    // After the fix: one promote, to stage 2, not two.
    let mut engine = Controller::builder(&s.state)
        .clock(s.clock.clone())
        .open()
        .unwrap();
    engine
        .apply(
            &Operation::Promote {
                reason: "go".into(),
            },
            "alice",
        )
        .unwrap();
    assert_eq!(engine.state().stage, 2);
    assert_eq!(flags_percentage(&s.flags), 10.0);
}

#[test]
fn a_publish_that_fails_after_the_commit_is_pending_and_finished_by_the_next_open() {
    let s = setup();
    let mut engine = Controller::builder(&s.state)
        .clock(s.clock.clone())
        .flags_writer(FailingFlags {
            fail_publish: true,
            ..FailingFlags::default()
        })
        .open()
        .unwrap();
    let applied = engine.apply(&Operation::Start, "alice").unwrap();
    assert_eq!(applied.commit.pending.len(), 1, "{:?}", applied.commit);
    assert!(applied.commit.pending[0].to_string().contains("next start"));
    drop(engine);
    // The real file still says 0%; the next open reconciles it.
    assert_eq!(flags_percentage(&s.flags), 0.0);
    let (_engine, report) = Controller::builder(&s.state)
        .clock(s.clock.clone())
        .open_with_report()
        .unwrap();
    assert_eq!(
        report.reconciled,
        Some((Percentage::ZERO, Percentage::from_percent(5.0).unwrap()))
    );
    assert_eq!(flags_percentage(&s.flags), 5.0);
}

#[test]
fn init_never_overrides_a_running_engine() {
    let s = setup();
    let _running = Controller::builder(&s.state)
        .command("run")
        .clock(s.clock.clone())
        .open()
        .unwrap();
    let err = Controller::init(
        &s.state,
        &s.flags,
        "phase_4_deployment",
        Plan::six_day(),
        true,
        &s.clock,
    )
    .unwrap_err();
    match &err {
        ControllerError::Locked {
            holder: Some(h), ..
        } => {
            assert_eq!(h.command, "run");
            assert_eq!(h.pid, std::process::id());
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("`run` (pid"), "{err}");
}

#[test]
fn leftovers_of_killed_writers_are_swept_at_open() {
    let s = setup();
    let dir = s.state.parent().unwrap();
    let leftover = dir.join(".rollout-state.json.tmp-999999-3");
    let flags_leftover = dir.join(".flags.json.tmp-999999-4");
    std::fs::write(&leftover, "{ half a state").unwrap();
    std::fs::write(&flags_leftover, "{ half").unwrap();
    let (_engine, report) = Controller::builder(&s.state).open_with_report().unwrap();
    assert!(!leftover.exists() && !flags_leftover.exists());
    assert_eq!(report.swept.len(), 2, "{:?}", report.swept);
}

#[test]
fn a_safe_deploy_never_moves_blind_early_or_past_the_next_stage() {
    let s = setup();
    let blind = |_at: Timestamp| Observation::no_data();
    let mut engine = Controller::builder(&s.state)
        .clock(s.clock.clone())
        .gate(blind)
        .open()
        .unwrap();
    let options = RunOptions::simulated(Duration::from_secs(60));
    let five = Percentage::from_percent(5.0).unwrap();
    match engine.deploy_safe(five, "alice", &options).unwrap_err() {
        ControllerError::NotSafe { reasons, unhealthy } => {
            assert!(!unhealthy);
            assert_eq!(reasons.len(), 4, "{reasons:?}");
            assert!(
                reasons.iter().all(|r| r.contains("never moves blind")),
                "{reasons:?}"
            );
        }
        other => panic!("{other:?}"),
    }
    drop(engine);
    let mut engine = Controller::builder(&s.state)
        .clock(s.clock.clone())
        .gate(healthy)
        .open()
        .unwrap();
    engine.deploy_safe(five, "alice", &options).unwrap();
    assert_eq!(flags_percentage(&s.flags), 5.0);
    // Again at once: the soak is not over, nothing moves.
    let ten = Percentage::from_percent(10.0).unwrap();
    let err = engine.deploy_safe(ten, "alice", &options).unwrap_err();
    assert!(err.to_string().contains("soak of 12h ends at"), "{err}");
    let err = engine
        .deploy_safe(Percentage::from_percent(50.0).unwrap(), "alice", &options)
        .unwrap_err();
    assert!(err.to_string().contains("stage 2 is 10%"), "{err}");
    assert_eq!(engine.state().stage, 1);
    // After the soak, with every check passing, it moves one stage.
    s.clock.advance(Duration::from_secs(12 * 3600));
    engine.deploy_safe(ten, "alice", &options).unwrap();
    assert_eq!(flags_percentage(&s.flags), 10.0);
}

#[test]
fn a_safe_deploy_on_a_breach_is_refused_as_unhealthy() {
    let s = setup();
    let spike = |_at: Timestamp| Observation::healthy().with_error_rate(0.02);
    let mut engine = Controller::builder(&s.state).gate(spike).open().unwrap();
    let err = engine
        .deploy_safe(
            Percentage::from_percent(5.0).unwrap(),
            "alice",
            &RunOptions::simulated(Duration::from_secs(60)),
        )
        .unwrap_err();
    assert!(err.is_unhealthy(), "{err}");
    assert!(err.to_string().contains("error rate: breach"), "{err}");
    assert_eq!(engine.state().phase, Phase::Ready);
}

#[test]
fn a_hung_gate_holds_and_pauses_but_never_blocks_a_rollback() {
    let s = setup();
    let hung = |_at: Timestamp| -> Observation {
        std::thread::sleep(Duration::from_secs(3600));
        Observation::healthy()
    };
    let state_path = s.state.clone();
    let engine = std::thread::spawn(move || {
        let mut engine = Controller::builder(&state_path)
            .gate(hung)
            .command("run")
            .open()
            .unwrap();
        let mut options = RunOptions::real_time(Duration::from_secs(1));
        options.gate_timeout = Duration::from_millis(500);
        let stop = StopFlag::default();
        let end = engine.run(&options, &stop, &mut |_| {}).unwrap();
        (end, engine.state().clone())
    });
    // Wait until the engine has started the rollout.
    let deadline = Instant::now() + Duration::from_secs(60);
    while RolloutState::load(&s.state).unwrap().phase != Phase::Soaking {
        assert!(Instant::now() < deadline, "the engine never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let asked = Instant::now();
    let applied = Controller::submit(
        &s.state,
        &Operation::Rollback {
            reason: "emergency".into(),
        },
        "bob",
    )
    .unwrap();
    let took = asked.elapsed();
    assert_eq!(applied.entry.event, "rollback");
    assert!(
        applied.entry.request.is_some(),
        "applied by the running engine"
    );
    assert!(took < Duration::from_secs(2), "took {took:?}");
    let (end, state) = engine.join().unwrap();
    assert_eq!(end, RunEnd::RolledBack);
    assert_eq!(state.percentage, Percentage::ZERO);
    assert_eq!(flags_percentage(&s.flags), 0.0);
}

#[test]
fn operator_commands_reach_a_running_engine_and_sign_offs_wait_for_100() {
    let s = setup();
    let state_path = s.state.clone();
    let stop: StopFlag = Arc::new(AtomicBool::new(false));
    let stop_engine = stop.clone();
    let engine = std::thread::spawn(move || {
        let mut engine = Controller::builder(&state_path)
            .gate(healthy)
            .command("run")
            .open()
            .unwrap();
        let mut served = Vec::new();
        let end = engine
            .run(
                &RunOptions::real_time(Duration::from_secs(1)),
                &stop_engine,
                &mut |e| {
                    if let RunEvent::Operation { operation, .. } = e {
                        served.push(operation.name());
                    }
                },
            )
            .unwrap();
        (end, served)
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    while RolloutState::load(&s.state).unwrap().phase != Phase::Soaking {
        assert!(Instant::now() < deadline, "the engine never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let signoff = Operation::SignOff {
        role: "security_lead".into(),
        name: "carol".into(),
    };
    let err = Controller::submit(&s.state, &signoff, "carol").unwrap_err();
    // The running engine's refusal arrives typed: the state refused it.
    assert!(
        matches!(
            err,
            ControllerError::Remote(genesis_flags::rollout::controller::Refusal::Operation { .. })
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("100%"), "{err}");
    let promoted = Controller::submit(
        &s.state,
        &Operation::Promote {
            reason: "ok".into(),
        },
        "bob",
    )
    .unwrap();
    assert_eq!(promoted.entry.stage, 2);
    assert_eq!(flags_percentage(&s.flags), 10.0);
    stop.store(true, Ordering::SeqCst);
    let (end, served) = engine.join().unwrap();
    assert_eq!(end, RunEnd::Stopped);
    assert_eq!(served, ["start", "signoff", "promote"]);
}

#[test]
fn a_simulated_run_is_the_same_loop_on_a_manual_clock() {
    let s = setup();
    let mut engine = Controller::builder(&s.state)
        .clock(s.clock.clone())
        .gate(healthy)
        .open()
        .unwrap();
    let options = RunOptions::simulated(Duration::from_secs(15 * 60))
        .until(t0() + Duration::from_secs(7 * 86_400));
    let end = engine
        .run(&options, &StopFlag::default(), &mut |_| {})
        .unwrap();
    assert_eq!(end, RunEnd::Completed);
    assert_eq!(s.clock.now(), t0() + Duration::from_secs(144 * 3600));
    assert_eq!(flags_percentage(&s.flags), 100.0);
    let events = audit_events(&s.state);
    assert_eq!(events.iter().filter(|e| *e == "advance").count(), 5);
    assert_eq!(events.iter().filter(|e| *e == "sign_off").count(), 3);
    assert_eq!(events.last().map(String::as_str), Some("complete"));
}

/// A 5-minute window of 60,000 requests, 5% of them flagged, every instance
/// on `percent` unless `lagging` reports 0% on one of two instances.
fn cohort_gate(
    in_rate: f64,
    out_rate: f64,
    percent: f64,
    lagging: bool,
) -> impl FnMut(Timestamp) -> Observation + Send + 'static {
    use genesis_flags::rollout::{CohortFigures, CohortObservation, FleetPercentage, Reading};
    move |_at| {
        let figures = |n: f64, rate: f64| CohortFigures {
            requests: n,
            errors: (n * rate).round(),
            p95_ms: Some(120.0),
            slow: (n * 0.01).round(),
        };
        let (inn, out) = (figures(3_000.0, in_rate), figures(57_000.0, out_rate));
        let global = (inn.errors + out.errors) / 60_000.0;
        let mut cohorts = CohortObservation::converged(
            "phase_4_deployment",
            Duration::from_secs(300),
            Percentage::from_percent(percent).unwrap(),
            inn,
            out,
        );
        if lagging {
            let reports = [("a".to_owned(), percent), ("b".to_owned(), 0.0)];
            cohorts.fleet = Reading::Value(FleetPercentage::from_reports(&reports).unwrap());
        }
        Observation::healthy()
            .with_error_rate(global)
            .with_cohorts(cohorts)
    }
}

#[test]
fn a_safe_deploy_judges_the_cohort_checks_too() {
    let s = setup();
    let options = RunOptions::simulated(Duration::from_secs(60));
    let mut engine = Controller::builder(&s.state)
        .clock(s.clock.clone())
        .gate(healthy)
        .open()
        .unwrap();
    engine
        .deploy_safe(Percentage::from_percent(5.0).unwrap(), "alice", &options)
        .unwrap();
    drop(engine);
    s.clock.advance(Duration::from_secs(12 * 3600));
    let ten = Percentage::from_percent(10.0).unwrap();

    // 5% errors among the flagged users, 0.05% elsewhere: 0.3% globally,
    // under the canary tier's global threshold, but the in cohort breaches.
    let mut engine = Controller::builder(&s.state)
        .clock(s.clock.clone())
        .gate(cohort_gate(0.05, 0.0005, 5.0, false))
        .open()
        .unwrap();
    let err = engine.deploy_safe(ten, "alice", &options).unwrap_err();
    assert!(err.is_unhealthy(), "{err}");
    assert!(err.to_string().contains("in-cohort error rate"), "{err}");
    assert!(
        !err.to_string().contains("\n  error rate: breach"),
        "the global rate does not breach: {err}"
    );
    assert_eq!(engine.state().stage, 1);
    drop(engine);

    // An instance still on 0%: the fleet has not converged; never blind.
    let mut engine = Controller::builder(&s.state)
        .clock(s.clock.clone())
        .gate(cohort_gate(0.0005, 0.0005, 5.0, true))
        .open()
        .unwrap();
    let err = engine.deploy_safe(ten, "alice", &options).unwrap_err();
    assert!(!err.is_unhealthy(), "{err}");
    assert!(err.to_string().contains("fleet percentage"), "{err}");
    assert_eq!(engine.state().stage, 1);
    assert_eq!(flags_percentage(&s.flags), 5.0);
}

#[test]
fn a_deploys_watch_never_outlasts_the_stage_soak() {
    let s = setup();
    let mut engine = Controller::builder(&s.state)
        .clock(s.clock.clone())
        .gate(healthy)
        .open()
        .unwrap();
    let options = RunOptions::simulated(Duration::from_secs(60));
    engine
        .deploy_safe(Percentage::from_percent(5.0).unwrap(), "alice", &options)
        .unwrap();
    let soak_end = engine.state().since + Duration::from_secs(12 * 3600);
    // A short wait is kept as asked.
    let hour = Duration::from_secs(3600);
    assert_eq!(engine.watch_deadline(hour), s.clock.now() + hour);
    // A day's wait stops just before the 12 h soak ends: healthy all along,
    // the rollout is still at 5% when the watch ends.
    let until = engine.watch_deadline(24 * hour);
    assert!(until < soak_end && soak_end.since(until) < Duration::from_secs(1));
    let end = engine
        .run(
            &options.clone().until(until),
            &StopFlag::default(),
            &mut |_| {},
        )
        .unwrap();
    assert_eq!(end, RunEnd::Until);
    assert_eq!(engine.state().stage, 1);
    assert_eq!(flags_percentage(&s.flags), 5.0);
    // Watched to the end of the day instead, the autopilot would have moved.
    let end = engine
        .run(
            &options.clone().until(soak_end + hour),
            &StopFlag::default(),
            &mut |_| {},
        )
        .unwrap();
    assert_eq!(end, RunEnd::Until);
    assert_eq!(engine.state().stage, 2, "the contrast: run advances");
}
