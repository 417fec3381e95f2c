//! The rollout policy against its rules (module docs of `src/rollout/policy.rs`) and the
//! six-day plan (`Plan::six_day`): tier boundaries, a whole six-day
//! run, the final window, the no-data budget, and manual operations.

use crate::support::rollout as support;

use std::time::Duration;

use genesis_flags::rollout::{
    decide, Action, CheckKind, Observation, OperationError, Phase, Plan, Reading, RolloutState,
    ScriptedGate, Timestamp,
};
use support::{at_stage, run, t0, tick, HOUR, MINUTE};

/// Ticks each minute for `minutes` with `obs`; whether it rolled back, and when.
fn rolls_back_within(stage: usize, obs: Observation, minutes: u32) -> Option<Duration> {
    let mut state = at_stage(stage);
    let mut gate = ScriptedGate::new(obs);
    let events = run(
        &mut state,
        &mut gate,
        t0(),
        t0() + MINUTE * minutes,
        MINUTE,
        |_| true,
    );
    events
        .first()
        .filter(|d| matches!(d.action, Action::Rollback { .. }))
        .map(|d| d.at.since(t0()))
}

#[test]
fn error_rate_boundaries_per_tier() {
    // (stage, just under, just over): canary 0.5%, mid 0.8%, late 1.0%.
    for (stage, under, over) in [
        (1, 0.0049, 0.0051),
        (3, 0.0079, 0.0081),
        (5, 0.0099, 0.0101),
    ] {
        let healthy = Observation::healthy();
        assert_eq!(
            rolls_back_within(stage, healthy.clone().with_error_rate(under), 30),
            None,
            "stage {stage}: {under}"
        );
        assert_eq!(
            rolls_back_within(stage, healthy.with_error_rate(over), 30),
            Some(5 * MINUTE),
            "stage {stage}: {over} sustained 5 min must roll back on the tick at 5 min"
        );
    }
}

#[test]
fn p95_boundaries_per_tier() {
    for (stage, under, over) in [(2, 299.0, 301.0), (4, 399.0, 401.0), (6, 499.0, 501.0)] {
        let healthy = Observation::healthy();
        assert_eq!(
            rolls_back_within(stage, healthy.clone().with_p95_ms(under), 30),
            None,
            "stage {stage}"
        );
        assert_eq!(
            rolls_back_within(stage, healthy.with_p95_ms(over), 30),
            Some(5 * MINUTE),
            "stage {stage}"
        );
    }
}

#[test]
fn a_breach_must_span_five_minutes() {
    let spike = Observation::healthy().with_error_rate(0.02);
    for (second_tick, rolls_back) in [
        (Duration::from_secs(299), false),
        (Duration::from_secs(300), true),
    ] {
        let mut state = at_stage(1);
        assert_eq!(decide(&state, &spike, t0()).action, Action::Hold);
        state.apply(&decide(&state, &spike, t0()));
        let d = decide(&state, &spike, t0() + second_tick);
        assert_eq!(
            matches!(d.action, Action::Rollback { .. }),
            rolls_back,
            "breach for {second_tick:?}"
        );
        if rolls_back {
            assert_eq!(d.explanation.check, Some(CheckKind::ErrorRate));
            assert_eq!(d.explanation.value, Some(2.0));
            assert_eq!(d.explanation.threshold, Some(0.5));
            assert_eq!(d.explanation.streak.as_deref(), Some("5m"));
            assert_eq!(d.explanation.samples, Some(10_000.0));
            assert!(
                d.explanation.message.contains("canary"),
                "{}",
                d.explanation
            );
        }
    }
}

#[test]
fn a_pass_resets_the_streak_and_no_data_does_not() {
    let spike = Observation::healthy().with_error_rate(0.02);
    // breach, breach, pass, breach x5: the pass restarts the 5 minutes.
    let mut state = at_stage(1);
    let mut gate = ScriptedGate::new(spike.clone()).between(
        t0() + 2 * MINUTE,
        t0() + 3 * MINUTE,
        Observation::healthy(),
    );
    let events = run(&mut state, &mut gate, t0(), t0() + HOUR, MINUTE, |_| true);
    assert_eq!(
        events[0].at.since(t0()),
        8 * MINUTE,
        "rolled back 5 min after the pass"
    );

    // breach, no data, breach...: the no-data tick neither resets nor extends.
    let mut state = at_stage(1);
    let mut gate = ScriptedGate::new(spike).between(
        t0() + 2 * MINUTE,
        t0() + 3 * MINUTE,
        Observation::no_data(),
    );
    let events = run(&mut state, &mut gate, t0(), t0() + HOUR, MINUTE, |_| true);
    assert_eq!(events[0].at.since(t0()), 5 * MINUTE);
}

#[test]
fn no_data_never_rolls_back_a_breach_alone() {
    // The breach run reaches 5 min only on a no-data tick: no rollback then.
    let spike = Observation::healthy().with_error_rate(0.02);
    let mut state = at_stage(1);
    let mut gate = ScriptedGate::new(spike).between(
        t0() + 5 * MINUTE,
        t0() + 10 * MINUTE,
        Observation::no_data(),
    );
    let events = run(
        &mut state,
        &mut gate,
        t0(),
        t0() + 9 * MINUTE,
        MINUTE,
        |_| true,
    );
    assert!(events.is_empty(), "{events:?}");
    // The next breach tick, 10 min after the run began, rolls back.
    let d = tick(&mut state, &mut gate, t0() + 10 * MINUTE);
    assert!(matches!(d.action, Action::Rollback { .. }));
}

#[test]
fn consecutive_health_failures_per_tier() {
    for (stage, limit) in [(1, 3u32), (3, 4), (5, 5)] {
        let failing = Observation::healthy().with_failed_check("up{job=\"genesis\"}");
        let mut state = at_stage(stage);
        let mut gate = ScriptedGate::new(failing);
        for n in 1..limit {
            let d = tick(&mut state, &mut gate, t0() + MINUTE * n);
            assert_eq!(d.action, Action::Hold, "stage {stage}: {n} failures");
        }
        let d = tick(&mut state, &mut gate, t0() + MINUTE * limit);
        assert!(
            matches!(d.action, Action::Rollback { .. }),
            "stage {stage}: {limit} failures"
        );
        assert!(
            d.explanation.message.contains("up{job=\"genesis\"}"),
            "{}",
            d.explanation
        );
        assert_eq!(state.percentage.ppm(), 0);
        assert_eq!(state.phase, Phase::RolledBack);
    }
}

/// Signs every role of the six-day plan; sign-offs open at 100%.
fn signed(mut state: RolloutState) -> RolloutState {
    sign_all(&mut state, t0());
    state
}

fn sign_all(state: &mut RolloutState, at: Timestamp) {
    for role in ["deployment_lead", "on_call_engineer", "security_lead"] {
        state.sign_off(at, role, "someone").unwrap();
    }
}

/// Like `run` from `t0()`, signing every role as soon as the rollout reaches 100%.
fn run_signing_at_full(
    state: &mut RolloutState,
    gate: &mut ScriptedGate,
    until: Timestamp,
    step: Duration,
) -> Vec<genesis_flags::rollout::Decision> {
    let full = |d: &genesis_flags::rollout::Decision| matches!(d.action, Action::Advance { to, .. } if to.ppm() == 1_000_000);
    let mut events = run(state, gate, t0(), until, step, full);
    let reached = events.last().filter(|d| full(d)).expect("reached 100%").at;
    sign_all(state, reached);
    events.extend(run(state, gate, reached + step, until, step, |_| false));
    events
}

#[test]
fn a_healthy_six_day_run_completes_at_144_hours() {
    let plan = Plan::six_day();
    let mut state = RolloutState::new("phase_4_deployment", plan, t0());
    state.start(t0(), "lead").unwrap();
    let mut gate = ScriptedGate::new(Observation::healthy());
    let events = run_signing_at_full(&mut state, &mut gate, t0() + 200 * HOUR, MINUTE);
    let visited: Vec<(u64, String)> = events
        .iter()
        .map(|d| {
            let what = match &d.action {
                Action::Advance { to, .. } => to.to_string(),
                other => other.name().to_owned(),
            };
            (d.at.since(t0()).as_secs() / 3600, what)
        })
        .collect();
    let expected: Vec<(u64, String)> = [
        (12, "10%"),
        (24, "25%"),
        (48, "50%"),
        (72, "75%"),
        (96, "100%"),
        (144, "complete"),
    ]
    .iter()
    .map(|(h, s)| (*h, s.to_string()))
    .collect();
    assert_eq!(visited, expected);
    let done = events.last().unwrap();
    assert_eq!(done.at.since(t0()), state.plan.estimated_duration());
    assert_eq!(done.at.since(t0()), 144 * HOUR);
    assert_eq!(state.phase, Phase::Completed);
    assert_eq!(
        state
            .history
            .iter()
            .filter(|h| h.event == "advance")
            .count(),
        5
    );
}

#[test]
fn completion_waits_for_sign_offs() {
    let mut state = at_stage(6);
    let mut gate = ScriptedGate::new(Observation::healthy());
    let events = run(
        &mut state,
        &mut gate,
        t0(),
        t0() + 60 * HOUR,
        MINUTE,
        |_| true,
    );
    assert!(events.is_empty(), "completed without sign-offs: {events:?}");
    assert_eq!(state.phase, Phase::AwaitingSignoff);
    state
        .sign_off(t0() + 60 * HOUR, "deployment_lead", "a")
        .unwrap();
    state
        .sign_off(t0() + 60 * HOUR, "on_call_engineer", "b")
        .unwrap();
    let d = tick(&mut state, &mut gate, t0() + 61 * HOUR);
    assert_eq!(d.action, Action::Hold);
    assert!(
        d.explanation.message.contains("security_lead"),
        "{}",
        d.explanation
    );
    state
        .sign_off(t0() + 61 * HOUR, "security_lead", "c")
        .unwrap();
    let d = tick(&mut state, &mut gate, t0() + 61 * HOUR + MINUTE);
    assert_eq!(d.action, Action::Complete);
}

#[test]
fn a_go_breach_in_the_final_window_restarts_it() {
    // 0.2% errors: over the go limit (0.1%), under the late tier's rollback (1%).
    let mut state = signed(at_stage(6));
    let mut gate = ScriptedGate::new(Observation::healthy()).between(
        t0() + 30 * HOUR,
        t0() + 30 * HOUR + MINUTE,
        Observation::healthy().with_error_rate(0.002),
    );
    let events = run(
        &mut state,
        &mut gate,
        t0(),
        t0() + 100 * HOUR,
        MINUTE,
        |_| false,
    );
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].action, Action::Complete);
    assert_eq!(events[0].at.since(t0()), 30 * HOUR + 48 * HOUR);
}

#[test]
fn a_critical_alert_blocks_advancing_but_does_not_roll_back() {
    let mut state = at_stage(1);
    let mut gate = ScriptedGate::new(Observation::healthy()).between(
        t0() + 11 * HOUR,
        t0() + 13 * HOUR,
        Observation::healthy().with_alert("GenesisHighLatency"),
    );
    let events = run(
        &mut state,
        &mut gate,
        t0(),
        t0() + 20 * HOUR,
        MINUTE,
        |_| true,
    );
    assert!(matches!(events[0].action, Action::Advance { stage: 2, .. }));
    assert_eq!(
        events[0].at.since(t0()),
        13 * HOUR,
        "advanced once the alert stopped"
    );
}

#[test]
fn thirty_minutes_without_data_pause_for_a_person() {
    let mut state = at_stage(2);
    let mut gate = ScriptedGate::new(Observation::healthy()).between(
        t0() + HOUR,
        t0() + 3 * HOUR,
        Observation::failed("prometheus unreachable"),
    );
    let events = run(&mut state, &mut gate, t0(), t0() + 2 * HOUR, MINUTE, |_| {
        true
    });
    assert_eq!(events.len(), 1);
    let Action::Pause { why } = &events[0].action else {
        panic!("{events:?}")
    };
    assert_eq!(events[0].at.since(t0()), HOUR + 30 * MINUTE);
    assert!(why.contains("prometheus unreachable"), "{why}");
    assert_eq!(state.phase, Phase::Paused);
    assert_eq!(
        state.percentage.ppm(),
        100_000,
        "a pause keeps the percentage"
    );

    // Paused: it holds even when healthy, until a person resumes.
    let d = tick(
        &mut state,
        &mut ScriptedGate::new(Observation::healthy()),
        t0() + 20 * HOUR,
    );
    assert_eq!(d.action, Action::Hold);
    state
        .resume(t0() + 20 * HOUR, "oncall", "prometheus is back")
        .unwrap();
    assert_eq!(state.phase, Phase::Soaking);
    let d = tick(
        &mut state,
        &mut ScriptedGate::new(Observation::healthy()),
        t0() + 20 * HOUR + MINUTE,
    );
    assert!(
        matches!(d.action, Action::Advance { stage: 3, .. }),
        "{d:?}"
    );
}

#[test]
fn no_data_or_errors_never_advance() {
    let mut state = at_stage(1);
    for obs in [Observation::no_data(), Observation::failed("timeout")] {
        let d = decide(&state, &obs, t0() + 13 * HOUR);
        assert_eq!(d.action, Action::Hold, "{obs:?}");
    }
    let mut partial = Observation::healthy();
    partial.p95_ms = Reading::Failed("bad_data".into());
    assert_eq!(
        decide(&state, &partial, t0() + 13 * HOUR).action,
        Action::Hold
    );
    assert!(matches!(
        decide(&state, &Observation::healthy(), t0() + 13 * HOUR).action,
        Action::Advance { .. }
    ));
    state.apply(&decide(&state, &Observation::healthy(), t0() + 13 * HOUR));
    assert_eq!(state.stage, 2);
}

#[test]
fn promote_skips_the_soak_unless_a_threshold_is_breached() {
    let mut state = at_stage(1);
    let mut gate = ScriptedGate::new(Observation::healthy().with_error_rate(0.02));
    tick(&mut state, &mut gate, t0() + MINUTE);
    let err = state
        .promote(t0() + 2 * MINUTE, "alice", "looks fine")
        .unwrap_err();
    assert!(
        matches!(
            err,
            OperationError::ThresholdBreached {
                check: CheckKind::ErrorRate,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("error rate is 2"), "{err}");

    tick(
        &mut state,
        &mut ScriptedGate::new(Observation::healthy()),
        t0() + 3 * MINUTE,
    );
    let entry = state
        .promote(t0() + 4 * MINUTE, "alice", "canary verified by hand")
        .unwrap();
    assert_eq!((entry.stage, state.percentage.ppm()), (2, 100_000));
    assert_eq!(entry.by, "alice");
    assert!(matches!(
        state.promote(t0(), "alice", ""),
        Err(OperationError::Empty(_))
    ));

    let mut last = at_stage(6);
    assert!(matches!(
        last.promote(t0(), "alice", "ship it"),
        Err(OperationError::LastStage(_))
    ));
}

#[test]
fn rollback_overrides_a_pause_and_pending_sign_offs_and_resume_restarts() {
    let mut state = signed(at_stage(6));
    state.pause(t0(), "bob", "investigating a ticket").unwrap();
    // A sustained breach (over the late tier's 500 ms) rolls back even a paused rollout.
    let mut gate = ScriptedGate::new(Observation::healthy().with_p95_ms(550.0));
    let events = run(&mut state, &mut gate, t0(), t0() + HOUR, MINUTE, |_| true);
    assert!(matches!(events[0].action, Action::Rollback { .. }));
    assert_eq!(state.phase, Phase::RolledBack);
    assert!(
        state.signoffs.is_empty(),
        "a rollback clears pending sign-offs"
    );

    // Terminal until a person resumes, which restarts from stage 1.
    let d = tick(
        &mut state,
        &mut ScriptedGate::new(Observation::healthy()),
        t0() + 40 * HOUR,
    );
    assert_eq!(d.action, Action::Hold);
    state
        .resume(t0() + 41 * HOUR, "bob", "fixed the cache")
        .unwrap();
    assert_eq!(
        (state.stage, state.percentage.ppm(), state.phase),
        (1, 50_000, Phase::Soaking)
    );

    // A manual rollback from awaiting sign-off.
    let mut waiting = at_stage(6);
    waiting.phase = Phase::AwaitingSignoff;
    waiting.rollback(t0(), "carol", "security finding").unwrap();
    assert_eq!(
        (waiting.percentage.ppm(), waiting.phase),
        (0, Phase::RolledBack)
    );
    assert_eq!(waiting.reason.as_deref(), Some("security finding"));
}

#[test]
fn sign_offs_are_checked() {
    let mut state = at_stage(6);
    let err = state.sign_off(t0(), "intern", "dave").unwrap_err();
    assert!(
        err.to_string()
            .contains("deployment_lead, on_call_engineer, security_lead"),
        "{err}"
    );
    state.sign_off(t0(), "security_lead", "erin").unwrap();
    let err = state.sign_off(t0(), "security_lead", "frank").unwrap_err();
    assert_eq!(
        err.to_string(),
        "security_lead already signed off (by erin)"
    );
}

#[test]
fn sign_offs_open_at_100_percent() {
    let mut ready = RolloutState::new("phase_4_deployment", Plan::six_day(), t0());
    let err = ready.sign_off(t0(), "security_lead", "erin").unwrap_err();
    assert!(
        matches!(err, OperationError::SignoffTooEarly { stage: 0, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("sign-offs open at 100%"), "{err}");
    for stage in 1..=5 {
        let mut state = at_stage(stage);
        let err = state.sign_off(t0(), "security_lead", "erin").unwrap_err();
        assert!(
            matches!(err, OperationError::SignoffTooEarly { stage: s, .. } if s == stage),
            "{err:?}"
        );
        state.pause(t0(), "bob", "looking").unwrap();
        assert!(state.sign_off(t0(), "security_lead", "erin").is_err());
        assert!(state.signoffs.is_empty());
        assert!(!state.history.iter().any(|h| h.event == "sign_off"));
    }
    assert_eq!(
        at_stage(2)
            .sign_off(t0(), "security_lead", "erin")
            .unwrap_err()
            .to_string(),
        "sign-off refused: the rollout is at stage 2 (10%); sign-offs open at 100%"
    );
    // At 100%: soaking, validating, awaiting sign-off, or paused there.
    for phase in [Phase::Soaking, Phase::Validating, Phase::AwaitingSignoff] {
        let mut state = at_stage(6);
        state.phase = phase;
        state.sign_off(t0(), "security_lead", "erin").unwrap();
        state.pause(t0(), "bob", "looking").unwrap();
        state.sign_off(t0(), "on_call_engineer", "frank").unwrap();
        assert_eq!(state.signoffs.len(), 2);
    }
    let mut rolled_back = signed(at_stage(6));
    rolled_back.rollback(t0(), "carol", "finding").unwrap();
    assert!(matches!(
        rolled_back.sign_off(t0(), "security_lead", "erin"),
        Err(OperationError::NotAllowed { .. })
    ));
}

#[test]
fn the_shipped_plans_load() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/plans");
    let six = Plan::from_file(dir.join("six-day.json")).unwrap();
    assert_eq!(
        six,
        Plan::six_day(),
        "six-day.json must equal the built-in default"
    );
    let seven = Plan::from_file(dir.join("seven-day.json")).unwrap();
    let targets: Vec<u32> = seven
        .stages
        .iter()
        .map(|s| s.percentage.ppm() / 10_000)
        .collect();
    assert_eq!(targets, [0, 5, 10, 25, 50, 75, 100]);
    assert!(seven
        .stages
        .iter()
        .all(|s| (8 * HOUR..=24 * HOUR).contains(&s.soak)));
    assert_eq!(seven.estimated_duration(), 168 * HOUR);

    // A healthy run of the seven-day plan takes seven days.
    let mut state = RolloutState::new("phase_4_deployment", seven, t0());
    state.start(t0(), "lead").unwrap();
    let events = run_signing_at_full(
        &mut state,
        &mut ScriptedGate::new(Observation::healthy()),
        t0() + 200 * HOUR,
        5 * MINUTE,
    );
    assert_eq!(events.last().unwrap().action, Action::Complete);
    assert_eq!(events.last().unwrap().at.since(t0()), 168 * HOUR);
}
