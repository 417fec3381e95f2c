//! [`simulate`]: a whole plan on a simulated clock against a health gate — a
//! [`Scenario`](super::Scenario) read directly, or a real Prometheus holding
//! the scenario's samples.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::clock::Timestamp;
use super::decision::Action;
use super::duration::format_duration;
use super::gate::HealthGate;
use super::phase::Phase;
use super::plan::Plan;
use super::policy::decide;
use super::state::RolloutState;
use crate::Percentage;

/// How a simulation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The plan completed.
    Completed,
    /// A rollback threshold fired.
    RolledBack,
    /// The rollout paused for a person.
    Paused,
    /// The scenario ended first.
    InProgress,
}

/// One decision other than Hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimulationEvent {
    /// Time since the start, e.g. `30h5m`.
    pub offset: String,
    /// `advance`, `rollback`, `pause`, `complete`.
    pub decision: String,
    /// The stage after the decision.
    pub stage: usize,
    /// The percentage after the decision.
    pub percentage: Percentage,
    /// Why.
    pub why: String,
}

/// One tick's figures, for charts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimulationSample {
    /// Seconds since the start.
    pub offset_seconds: u64,
    /// The percentage after the tick.
    pub percentage: Percentage,
    /// Error rate in percent, if known.
    pub error_rate_percent: Option<f64>,
    /// P95 latency in ms, if known.
    pub p95_ms: Option<f64>,
}

/// The result of [`simulate`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Simulation {
    /// How it ended.
    pub outcome: Outcome,
    /// The percentage at the end.
    pub final_percentage: Percentage,
    /// Every decision other than Hold, in order.
    pub events: Vec<SimulationEvent>,
    /// Every tick's figures.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub samples: Vec<SimulationSample>,
    /// The final state.
    #[serde(skip)]
    pub state: Option<RolloutState>,
}

/// Options of a simulation.
#[derive(Debug, Clone)]
pub struct SimulationOptions {
    /// The rollout id.
    pub rollout: String,
    /// When stage 1 is deployed.
    pub start: Timestamp,
    /// When to stop if nothing ends the rollout first.
    pub until: Timestamp,
    /// Time between ticks.
    pub tick: Duration,
    /// Give every sign-off when the final window has held.
    pub auto_signoff: bool,
    /// Keep every tick's figures (for charts).
    pub keep_samples: bool,
}

/// Runs `plan` from stage 1 at `options.start`, one tick every
/// `options.tick`, until it completes, rolls back, pauses or reaches
/// `options.until`.
///
/// ```
/// use genesis_flags::rollout::{simulate, Outcome, Plan, Scenario, SimulationOptions};
/// use std::time::Duration;
///
/// let start = "2025-10-23T09:00:00Z".parse()?;
/// let scenario = Scenario::healthy(start);
/// let options = SimulationOptions {
///     rollout: "phase_4_deployment".into(),
///     start,
///     until: start + scenario.duration,
///     tick: Duration::from_secs(60),
///     auto_signoff: true,
///     keep_samples: false,
/// };
/// let run = simulate(Plan::six_day(), &mut scenario.gate(Duration::from_secs(300)), &options);
/// assert_eq!(run.outcome, Outcome::Completed);
/// assert_eq!(run.events.last().unwrap().offset, "144h");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn simulate(plan: Plan, gate: &mut impl HealthGate, options: &SimulationOptions) -> Simulation {
    let mut state = RolloutState::new(&options.rollout, plan, options.start);
    let mut events = Vec::new();
    let mut samples = Vec::new();
    if let Err(e) = state.start(options.start, "simulation") {
        // A fresh state always starts; say so if it somehow does not.
        events.push(SimulationEvent {
            offset: "0s".to_owned(),
            decision: "pause".to_owned(),
            stage: 0,
            percentage: Percentage::ZERO,
            why: e.to_string(),
        });
    }
    let tick = options.tick.max(Duration::from_millis(1));
    let mut now = options.start;
    let outcome = loop {
        if now > options.until {
            break Outcome::InProgress;
        }
        let observation = gate.observe(now);
        let mut decision = decide(&state, &observation, now);
        state.apply(&decision);
        if options.auto_signoff && state.phase == Phase::AwaitingSignoff {
            let roles: Vec<String> = state.missing_signoffs().map(str::to_owned).collect();
            for role in roles {
                let _ = state.sign_off(now, &role, "simulation");
            }
            decision = decide(&state, &observation, now);
            state.apply(&decision);
        }
        if options.keep_samples {
            samples.push(SimulationSample {
                offset_seconds: now.since(options.start).as_secs(),
                percentage: state.percentage,
                error_rate_percent: decision.verdicts.error_rate.value,
                p95_ms: decision.verdicts.p95.value,
            });
        }
        if decision.action != Action::Hold {
            events.push(SimulationEvent {
                offset: format_duration(now.since(options.start)),
                decision: decision.action.name().to_owned(),
                stage: state.stage,
                percentage: state.percentage,
                why: decision.explanation.message.clone(),
            });
        }
        match state.phase {
            Phase::Completed => break Outcome::Completed,
            Phase::RolledBack => break Outcome::RolledBack,
            Phase::Paused => break Outcome::Paused,
            _ => {}
        }
        now = now + tick;
    };
    Simulation {
        outcome,
        final_percentage: state.percentage,
        events,
        samples,
        state: Some(state),
    }
}
