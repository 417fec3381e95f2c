//! Properties of the policy over random observation sequences.

use crate::support::rollout as support;

use std::time::Duration;

use genesis_flags::rollout::{
    decide, Action, Observation, Phase, Plan, RolloutState, Timestamp, Verdict,
};
use proptest::prelude::*;
use support::t0;

#[derive(Debug, Clone)]
enum Tick {
    Healthy,
    /// Error rate in hundredths of a percent (e.g. 120 = 1.2%).
    Errors(u32),
    /// P95 in ms.
    Latency(u32),
    HealthFail,
    Alert,
    NoData,
    Failed,
}

impl Tick {
    fn observation(&self) -> Observation {
        let h = Observation::healthy();
        match self {
            Tick::Healthy => h,
            Tick::Errors(cp) => h.with_error_rate(f64::from(*cp) / 10_000.0),
            Tick::Latency(ms) => h.with_p95_ms(f64::from(*ms)),
            Tick::HealthFail => h.with_failed_check("up{job=\"genesis\"}"),
            Tick::Alert => h.with_alert("GenesisDown"),
            Tick::NoData => Observation::no_data(),
            Tick::Failed => Observation::failed("connection refused"),
        }
    }

    fn blind(&self) -> bool {
        matches!(self, Tick::NoData | Tick::Failed)
    }
}

fn tick_strategy() -> impl Strategy<Value = Tick> {
    prop_oneof![
        16 => Just(Tick::Healthy),
        2 => (0u32..200).prop_map(Tick::Errors),
        2 => (100u32..700).prop_map(Tick::Latency),
        1 => Just(Tick::HealthFail),
        1 => Just(Tick::Alert),
        1 => Just(Tick::NoData),
        1 => Just(Tick::Failed),
    ]
}

/// Ticks: (minutes since the previous tick, what it shows). Runs of the same
/// observation make sustained breaches likely.
fn sequence() -> impl Strategy<Value = Vec<(u64, Tick)>> {
    prop::collection::vec(
        (
            prop_oneof![1u64..=5, 1u64..=240],
            tick_strategy(),
            1usize..12,
        ),
        1..40,
    )
    .prop_map(|runs| {
        runs.into_iter()
            .flat_map(|(step, tick, n)| std::iter::repeat_n((step, tick), n))
            .collect()
    })
}

/// An independent model of a breach run: the first Breach tick of the
/// current run, ended by a Pass, untouched by NoData/Error.
fn run_start(start: Option<Timestamp>, verdict: Verdict, now: Timestamp) -> Option<Timestamp> {
    match verdict {
        Verdict::Breach => Some(start.unwrap_or(now)),
        Verdict::Pass => None,
        _ => start,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn policy_invariants_hold_on_every_tick(ticks in sequence()) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("state.json");
        let plan = Plan::six_day();
        let mut state = RolloutState::new("phase_4_deployment", plan.clone(), t0());
        state.start(t0(), "test").unwrap();
        let mut now = t0();
        let (mut error_start, mut p95_start) = (None, None);
        for (i, (step, tick)) in ticks.iter().enumerate() {
            now = now + Duration::from_secs(step * 60);
            let obs = tick.observation();
            let before = state.clone();
            let d = decide(&before, &obs, now);

            // Deterministic.
            prop_assert_eq!(&d, &decide(&before, &obs, now));

            let live = matches!(before.phase, Phase::Soaking | Phase::Validating | Phase::AwaitingSignoff | Phase::Paused);
            if live {
                error_start = run_start(error_start, d.verdicts.error_rate.verdict, now);
                p95_start = run_start(p95_start, d.verdicts.p95.verdict, now);
            }

            match &d.action {
                Action::Advance { stage, to } => {
                    let soak = before.current_stage().unwrap().soak;
                    prop_assert!(now >= before.since + soak, "advanced before the soak ended");
                    prop_assert_eq!(*stage, before.stage + 1, "skipped a stage");
                    prop_assert_eq!(*to, plan.stage(*stage).unwrap().percentage);
                    prop_assert!(!tick.blind(), "advanced on NoData/Error");
                    prop_assert!(d.verdicts.go());
                }
                Action::Complete => prop_assert!(!tick.blind()),
                Action::Rollback { .. } => prop_assert!(!tick.blind(), "rolled back on NoData/Error"),
                Action::Hold | Action::Pause { .. } => {}
            }

            // A breach sustained for the tier's duration rolls back on that tick.
            let tier = plan.tier(&d.tier).unwrap();
            let sustained = |start: Option<Timestamp>, v: Verdict| {
                v == Verdict::Breach && start.is_some_and(|s| now.since(s) >= tier.sustained)
            };
            if live && (sustained(error_start, d.verdicts.error_rate.verdict) || sustained(p95_start, d.verdicts.p95.verdict)) {
                prop_assert!(matches!(d.action, Action::Rollback { .. }), "tick {}: sustained breach but {:?}", i, d.action);
            }

            state.apply(&d);
            if let Action::Rollback { .. } = d.action {
                prop_assert_eq!(state.percentage.ppm(), 0);
                error_start = None;
                p95_start = None;
            } else {
                prop_assert!(state.percentage >= before.percentage, "percentage went down without a rollback");
            }

            // The state survives a save/load round trip at every tick.
            state.save(&file).unwrap();
            prop_assert_eq!(&RolloutState::load(&file).unwrap(), &state);
        }
    }
}
