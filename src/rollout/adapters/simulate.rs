//! [`simulate`]: a whole plan on a simulated clock (the controller engine's
//! loop on a manual clock) against a health gate — a
//! [`Scenario`](crate::rollout::Scenario) read directly, or a real Prometheus holding
//! the scenario's samples.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::rollout::controller::{Controller, RunEnd, RunEvent, RunOptions, StopFlag};
use crate::rollout::foundation::clock::{ManualClock, Timestamp};
use crate::rollout::foundation::duration::format_duration;
use crate::rollout::model::decision::{Action, Decision};
use crate::rollout::model::gate::HealthGate;
use crate::rollout::model::plan::Plan;
use crate::rollout::model::state::RolloutState;
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
/// It is the [`Controller`]'s loop on a [`ManualClock`], with the state in
/// memory: what a simulation decides is what `run` decides on the same
/// observations.
///
/// ```
/// use genesis_flags::rollout::simulation::{simulate, Outcome, Scenario, SimulationOptions};
/// use genesis_flags::rollout::Plan;
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
/// let run = simulate(Plan::six_day(), scenario.gate(Duration::from_secs(300)), &options);
/// assert_eq!(run.outcome, Outcome::Completed);
/// assert_eq!(run.events.last().unwrap().offset, "144h");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn simulate(
    plan: Plan,
    gate: impl HealthGate + Send + 'static,
    options: &SimulationOptions,
) -> Simulation {
    let clock = ManualClock::new(options.start);
    let state = RolloutState::new(&options.rollout, plan, options.start);
    let mut engine = Controller::in_memory(state, Box::new(gate), clock);
    let mut events = Vec::new();
    let mut samples: Vec<SimulationSample> = Vec::new();
    let mut run_options =
        RunOptions::simulated(options.tick.max(Duration::from_millis(1))).until(options.until);
    run_options.auto_signoff = options.auto_signoff;
    let stop = StopFlag::default();
    let end = engine.run(&run_options, &stop, &mut |event| {
        let RunEvent::Tick(report) = event else {
            return;
        };
        let decision = &report.decision;
        let at = decision.at;
        let after = &report.decision;
        if options.keep_samples {
            let sample = SimulationSample {
                offset_seconds: at.since(options.start).as_secs(),
                percentage: percentage_after(after),
                error_rate_percent: decision.verdicts.error_rate.value,
                p95_ms: decision.verdicts.p95.value,
            };
            // A second judgement at the same instant (after sign-offs)
            // replaces the first.
            match samples.last_mut() {
                Some(last) if last.offset_seconds == sample.offset_seconds => *last = sample,
                _ => samples.push(sample),
            }
        }
        if decision.action != Action::Hold {
            events.push(SimulationEvent {
                offset: format_duration(at.since(options.start)),
                decision: decision.action.name().to_owned(),
                stage: stage_after(after),
                percentage: percentage_after(after),
                why: decision.explanation.message.clone(),
            });
        }
    });
    let outcome = match end {
        Ok(RunEnd::Completed) => Outcome::Completed,
        Ok(RunEnd::RolledBack) => Outcome::RolledBack,
        Ok(RunEnd::Paused) => Outcome::Paused,
        Ok(RunEnd::Stopped | RunEnd::Until) => Outcome::InProgress,
        Err(e) => {
            // In memory nothing fails but a plan the state refuses; say so.
            events.push(SimulationEvent {
                offset: format_duration(engine.now().since(options.start)),
                decision: "pause".to_owned(),
                stage: engine.state().stage,
                percentage: engine.state().percentage,
                why: e.to_string(),
            });
            Outcome::Paused
        }
    };
    let state = engine.state().clone();
    Simulation {
        outcome,
        final_percentage: state.percentage,
        events,
        samples,
        state: Some(state),
    }
}

/// The stage a decision leaves the rollout at.
fn stage_after(d: &Decision) -> usize {
    match &d.action {
        Action::Advance { stage, .. } => *stage,
        Action::Rollback { .. } => 0,
        _ => d.stage,
    }
}

/// The percentage a decision leaves the rollout at.
fn percentage_after(d: &Decision) -> Percentage {
    match &d.action {
        Action::Advance { to, .. } => *to,
        Action::Rollback { .. } => Percentage::ZERO,
        _ => d.percentage,
    }
}
