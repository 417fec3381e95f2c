//! `simulate`: a plan run on a manual clock against a scenario (or a
//! Prometheus), printed as a table and optionally drawn as a chart.

use std::path::Path;
use std::time::Duration;

use genesis_flags::rollout::simulation::{simulate, Outcome, Scenario, SimulationOptions};
use genesis_flags::rollout::{format_duration, Timestamp};
use serde_json::json;

use crate::output::{Failure, Out};
use crate::{chart, gates, load_plan, load_scenario, tick_option, Result};

/// The most ticks a simulation may take.
const MAX_SIMULATED_TICKS: u128 = 2_000_000;

pub fn run_simulation(
    out: &Out,
    scenario: Option<&Path>,
    plan: Option<&Path>,
    prometheus: Option<&str>,
    chart: Option<&Path>,
    no_signoff: bool,
    tick: &str,
) -> Result<u8> {
    let plan = load_plan(plan)?;
    let scenario = match scenario {
        Some(p) => load_scenario(p)?,
        None => Scenario::healthy(
            "2025-10-23T09:00:00Z"
                .parse::<Timestamp>()
                .map_err(|e| Failure::input(e.to_string()))?,
        ),
    };
    let tick = tick_option(tick)?;
    if scenario.duration.as_millis() / tick.as_millis().max(1) > MAX_SIMULATED_TICKS {
        return Err(Failure::input(format!(
            "--tick: {} over the scenario's {} is more than {MAX_SIMULATED_TICKS} ticks",
            format_duration(tick),
            format_duration(scenario.duration)
        )));
    }
    let options = SimulationOptions {
        rollout: "phase_4_deployment".into(),
        start: scenario.start,
        until: scenario.start + scenario.duration,
        tick,
        auto_signoff: !no_signoff,
        keep_samples: chart.is_some(),
    };
    let sim = match prometheus {
        None => simulate(plan, scenario.gate(Duration::from_secs(300)), &options),
        Some(url) => {
            let mut gate = gates::prometheus_url(url)?;
            simulate(plan, move |at| gate.observe(at), &options)
        }
    };
    if let Some(path) = chart {
        let title = format!(
            "simulation: {:?}, final {}",
            sim.outcome, sim.final_percentage
        );
        std::fs::write(path, chart::svg(&sim, &title))
            .map_err(|e| Failure::input(format!("cannot write {}: {e}", path.display())))?;
    }
    let text: String = sim
        .events
        .iter()
        .map(|e| {
            format!(
                "{:>8}  {:<9} stage {} ({:>4})  {}\n",
                e.offset,
                e.decision,
                e.stage,
                e.percentage.to_string(),
                e.why
            )
        })
        .chain(std::iter::once(format!(
            "outcome: {:?} at {}",
            sim.outcome, sim.final_percentage
        )))
        .collect();
    out.emit(
        &text,
        &json!({ "outcome": sim.outcome, "final_percentage": sim.final_percentage.as_percent(), "events": sim.events }),
    );
    Ok(match sim.outcome {
        Outcome::Completed | Outcome::InProgress => 0,
        Outcome::RolledBack | Outcome::Paused => 1,
    })
}
