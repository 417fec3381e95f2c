//! Helpers for rollout tests: states at a given stage, and driving ticks on a
//! manual clock.

#![allow(dead_code)]

use std::time::Duration;

use genesis_flags::rollout::{
    decide, Action, Decision, HealthGate, Phase, Plan, RolloutState, Timestamp,
};

pub const MINUTE: Duration = Duration::from_secs(60);
pub const HOUR: Duration = Duration::from_secs(3600);

pub fn t0() -> Timestamp {
    "2025-10-23T09:00:00Z".parse().unwrap()
}

/// A started six-day rollout moved to `stage` (1-based) at `t0()`.
pub fn at_stage(stage: usize) -> RolloutState {
    let plan = Plan::six_day();
    let mut state = RolloutState::new("phase_4_deployment", plan, t0());
    state.start(t0(), "test").unwrap();
    state.stage = stage;
    state.percentage = state.plan.stage(stage).unwrap().percentage;
    state.since = t0();
    if state.at_last_stage() {
        state.window_since = Some(t0());
    }
    state
}

/// One tick: decide and apply. Returns the decision.
pub fn tick(state: &mut RolloutState, gate: &mut impl HealthGate, now: Timestamp) -> Decision {
    let obs = gate.observe(now);
    let d = decide(state, &obs, now);
    state.apply(&d);
    d
}

/// Ticks every `step` from `from` until a decision other than Hold, or until
/// `until`. Returns every non-Hold decision and the time of the last tick.
pub fn run(
    state: &mut RolloutState,
    gate: &mut impl HealthGate,
    from: Timestamp,
    until: Timestamp,
    step: Duration,
    stop_on: impl Fn(&Decision) -> bool,
) -> Vec<Decision> {
    let mut events = Vec::new();
    let mut now = from;
    while now <= until {
        let d = tick(state, gate, now);
        if d.action != Action::Hold {
            let stop = stop_on(&d);
            events.push(d);
            if stop || matches!(state.phase, Phase::Completed) {
                break;
            }
        }
        now = now + step;
    }
    events
}
