//! The rollout controller: the tool an on-call engineer uses to run the
//! staged rollout of a genesis-flags rollout. A thin shell over
//! `genesis_flags::rollout::Controller`: argument parsing, rendering and the
//! chart live here; every change goes through the engine.
//!
//! ```text
//! cargo run --release --example controller -- simulate            # healthy week, no server
//! cargo run --release --example controller -- init --example-flags flags.json
//! cargo run --release --example controller -- init --flags flags.json --rollout phase_4_deployment
//! cargo run --release --example controller -- status --output json
//! ```
//!
//! Exit codes: 0 done; 1 the rollout is not healthy (rolled back, paused, a
//! breach during a wait, a failing check); 2 bad input or an unusable setup,
//! nothing changed.

mod chart;
mod cli;
mod gates;
mod health;
mod incident;
mod notify;
mod output;

use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::Duration;

use clap::Parser;
use genesis_flags::rollout::{
    parse_duration, simulate, Clock, Controller, ControllerError, DailyReport, EngineLock,
    FlagsFile, ManualClock, Operation, Outcome, Plan, RolloutState, RunEnd, RunOptions, Scenario,
    SimulationOptions, StatusView, StopFlag, SystemClock, Timestamp, Verdict,
};
use genesis_flags::Percentage;
use serde_json::json;

use cli::{Cli, Command, NotifyArgs, NotifyCommand, ScenarioCommand};
use output::{Failure, Out};

type Result<T> = std::result::Result<T, Failure>;

const GENESIS_FLAGS: &str = include_str!("../config/genesis.json");
/// The longest `deploy --wait`.
const MAX_WAIT_SECS: u64 = 7 * 86_400;
/// The most ticks a simulation may take.
const MAX_SIMULATED_TICKS: u128 = 2_000_000;

fn main() -> ExitCode {
    let cli = Cli::parse();
    output::init_logs(cli.log_format, cli.quiet);
    let out = Out::new(cli.output);
    match dispatch(&cli, &out) {
        Ok(code) => ExitCode::from(code),
        Err(f) => {
            out.fail(&f);
            ExitCode::from(f.code)
        }
    }
}

fn dispatch(cli: &Cli, out: &Out) -> Result<u8> {
    let operate = |op: Operation, notify: &NotifyArgs| operate(cli, out, &op, notify);
    match &cli.command {
        Command::Init {
            flags,
            rollout,
            plan,
            example_flags,
            force,
        } => {
            if let Some(path) = example_flags {
                if path.exists() && !force {
                    return Err(Failure::input(format!(
                        "{} exists; pass --force to replace it",
                        path.display()
                    )));
                }
                genesis_flags::rollout::write_atomically(path, GENESIS_FLAGS.as_bytes())
                    .map_err(Failure::from)?;
                out.emit(
                    &format!("wrote the Genesis flag set to {}", path.display()),
                    &json!({ "written": path }),
                );
                return Ok(0);
            }
            let (Some(flags), Some(rollout)) = (flags, rollout) else {
                return Err(Failure::input(
                    "init needs --flags and --rollout (or --example-flags)",
                ));
            };
            init(cli, out, flags, rollout, plan.as_deref(), *force)
        }
        Command::Status => {
            let state = load_state(&cli.state)?;
            let lock = genesis_flags::rollout::ControllerFiles::beside(&cli.state).lock;
            let view = StatusView::new(&state, SystemClock.now(), EngineLock::holder(&lock));
            let pending = notify::pending(&cli.state)?;
            let mut value =
                serde_json::to_value(&view).map_err(|e| Failure::input(e.to_string()))?;
            value["notifications"] = json!(pending);
            out.emit(&format!("{view}{}", notify::pending_text(&pending)), &value);
            Ok(0)
        }
        Command::Promote { reason, notify } => operate(
            Operation::Promote {
                reason: reason.clone(),
            },
            notify,
        ),
        Command::Pause { reason, notify } => operate(
            Operation::Pause {
                reason: reason.clone(),
            },
            notify,
        ),
        Command::Resume { reason, notify } => operate(
            Operation::Resume {
                reason: reason.clone(),
            },
            notify,
        ),
        Command::Rollback { reason, notify } => operate(
            Operation::Rollback {
                reason: reason.clone(),
            },
            notify,
        ),
        Command::Signoff { role, name, notify } => operate(
            Operation::SignOff {
                role: role.clone(),
                name: name.clone(),
            },
            notify,
        ),
        Command::Notify {
            command: NotifyCommand::Test { notify },
        } => notify::test(cli, out, notify),
        Command::IncidentReport => incident::report(cli, out),
        Command::Report => {
            let report = DailyReport::new(&load_state(&cli.state)?, SystemClock.now());
            out.emit(&report, &report);
            Ok(0)
        }
        Command::Simulate {
            scenario,
            plan,
            prometheus,
            chart,
            no_signoff,
            tick,
            notify,
        } => match notify {
            Some(config) => notify::simulate(
                out,
                config,
                load_plan(plan.as_deref())?,
                scenario_or_healthy(scenario.as_deref())?,
                tick_option(tick)?,
                !no_signoff,
            ),
            None => run_simulation(
                out,
                scenario.as_deref(),
                plan.as_deref(),
                prometheus.as_deref(),
                chart.as_deref(),
                *no_signoff,
                tick,
            ),
        },
        Command::Deploy {
            strategy: _,
            wait,
            target_percentage,
            gate,
            tick,
            notify,
        } => deploy(
            cli,
            out,
            *wait,
            *target_percentage,
            gate.as_deref(),
            tick,
            notify,
        ),
        Command::HealthCheck { gate } => health::health_check(cli, out, gate.as_deref()),
        Command::Run {
            gate,
            tick,
            scenario,
            realtime,
            wait_for_resume,
            notify,
        } => run_autopilot(
            cli,
            out,
            &Autopilot {
                gate: gate.as_deref(),
                tick,
                scenario: scenario.as_deref(),
                realtime: *realtime,
                wait_for_resume: *wait_for_resume,
                notify,
            },
        ),
        Command::Scenario {
            command: ScenarioCommand::Openmetrics { scenario, start },
        } => {
            let mut s = load_scenario(scenario)?;
            if let Some(start) = start {
                s.start = start
                    .parse::<Timestamp>()
                    .map_err(|e| Failure::input(format!("--start: {e}")))?;
            }
            out.raw(&s.openmetrics());
            Ok(0)
        }
    }
}

fn load_state(path: &Path) -> Result<RolloutState> {
    if !path.exists() {
        return Err(ControllerError::NoState {
            path: path.to_path_buf(),
        }
        .into());
    }
    RolloutState::load(path).map_err(Failure::from)
}

fn load_plan(path: Option<&Path>) -> Result<Plan> {
    match path {
        Some(p) => Plan::from_file(p).map_err(|e| Failure::from(e).context(p)),
        None => Ok(Plan::six_day()),
    }
}

fn load_scenario(path: &Path) -> Result<Scenario> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::input(format!("cannot read scenario {}: {e}", path.display())))?;
    Scenario::from_json(&text).map_err(|e| Failure::from(e).context(path))
}

fn tick_option(text: &str) -> Result<Duration> {
    let tick = parse_duration(text).map_err(|e| Failure::input(format!("--tick: {e}")))?;
    RunOptions::real_time(tick).validate()?;
    Ok(tick)
}

fn init(
    cli: &Cli,
    out: &Out,
    flags: &Path,
    rollout: &str,
    plan: Option<&Path>,
    force: bool,
) -> Result<u8> {
    let plan = load_plan(plan)?;
    let snapshot = FlagsFile::new(flags)
        .snapshot()
        .map_err(ControllerError::from)?;
    let status = snapshot.rollout_status(rollout);
    Controller::init(&cli.state, flags, rollout, plan, force, &SystemClock)?;
    let bound = status.as_ref().map_or(Vec::new(), |s| s.flags.clone());
    let was = status.map_or(Percentage::ZERO, |s| s.percentage);
    out.emit(
        &format!(
            "rollout {rollout} initialised at 0% ({} flags bound; was {was}); state in {}",
            bound.len(),
            cli.state.display()
        ),
        &json!({ "rollout": rollout, "stage": 0, "current_percentage": 0, "phase": "ready", "flags": bound }),
    );
    Ok(0)
}

fn scenario_or_healthy(path: Option<&Path>) -> Result<Scenario> {
    match path {
        Some(p) => load_scenario(p),
        None => Ok(Scenario::healthy(
            "2025-10-23T09:00:00Z"
                .parse::<Timestamp>()
                .map_err(|e| Failure::input(e.to_string()))?,
        )),
    }
}

/// An operator command: applied here, or by the running engine.
fn operate(cli: &Cli, out: &Out, op: &Operation, notify: &NotifyArgs) -> Result<u8> {
    let channels = notify::load(notify)?;
    let (applied, engine) = Controller::submit_with(&cli.state, op, &operator(), &|b| {
        notify::configure(b, channels.as_ref())
    })?;
    let notified = notify::finish(engine.as_ref(), channels.as_ref(), notify)?;
    output::log_open_report(&applied.opened);
    let state = load_state(&cli.state)?;
    let e = &applied.entry;
    let mut text = format!(
        "{}: stage {} at {} ({}): {}",
        e.event, e.stage, e.percentage, state.phase, e.why
    );
    for p in &applied.commit.pending {
        text.push_str(&format!("\n  pending: {p}"));
    }
    text.push_str(&notify::statuses_text(&notified));
    let mut value = serde_json::to_value(StatusView::new(&state, SystemClock.now(), None))
        .map_err(|e| Failure::input(e.to_string()))?;
    value["pending"] = json!(applied.commit.pending);
    if channels.is_some() {
        value["notifications"] = json!(notified);
    }
    out.emit(&text, &value);
    Ok(0)
}

fn operator() -> String {
    genesis_flags::rollout::operator_name()
}

fn run_simulation(
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
            genesis_flags::rollout::format_duration(tick),
            genesis_flags::rollout::format_duration(scenario.duration)
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

/// Signals end `run` and `deploy` between ticks; the state is always saved.
fn stop_on_signals() -> StopFlag {
    let stop = StopFlag::default();
    let flag = stop.clone();
    let _ = ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst));
    stop
}

fn deploy(
    cli: &Cli,
    out: &Out,
    wait: u64,
    target: f64,
    gate: Option<&Path>,
    tick: &str,
    notify: &NotifyArgs,
) -> Result<u8> {
    // Every number first: a bad one changes nothing.
    let tick = tick_option(tick)?;
    if wait > MAX_WAIT_SECS {
        return Err(Failure::input(format!(
            "--wait: {wait} seconds is more than the limit of {MAX_WAIT_SECS} (7 days)"
        )));
    }
    let target = Percentage::from_percent(target)
        .map_err(|e| Failure::input(format!("--target-percentage: {e}")))?;
    let channels = notify::load(notify)?;
    let mut engine = notify::configure(
        Controller::builder(&cli.state)
            .command("deploy")
            .boxed_gate(gates::from_file(gate)?),
        channels.as_ref(),
    )
    .open()?;
    let mut options = RunOptions::real_time(tick);
    notify::schedule(&mut options, channels.as_ref());
    let result = deploy_on(cli, out, &mut engine, target, wait, &options);
    let notified = notify::finish(Some(&engine), channels.as_ref(), notify)?;
    notify::log_statuses(&notified);
    result
}

fn deploy_on(
    cli: &Cli,
    out: &Out,
    engine: &mut Controller,
    target: Percentage,
    wait: u64,
    options: &RunOptions,
) -> Result<u8> {
    let applied = engine.deploy_safe(target, &operator(), options)?;
    tracing::info!(
        "deploy: stage {} at {}; watching the gate for {wait}s",
        applied.entry.stage,
        applied.entry.percentage
    );
    let until = engine.now().saturating_add(Duration::from_secs(wait));
    let end = engine.run(
        &options.clone().until(until),
        &stop_on_signals(),
        &mut |e| {
            output::log_event(cli, out, e);
        },
    )?;
    let state = engine.state();
    let view = StatusView::new(state, engine.now(), None);
    match end {
        RunEnd::RolledBack | RunEnd::Paused => {
            tracing::error!(
                "deploy: {} at {}: {}",
                state.phase,
                state.percentage,
                state.reason.as_deref().unwrap_or("")
            );
            Ok(1)
        }
        RunEnd::Stopped | RunEnd::Completed => Ok(0),
        RunEnd::Until => {
            let bad = state.last_verdicts.as_ref().map_or_else(
                || vec!["no tick judged".to_owned()],
                |v| {
                    v.all()
                        .iter()
                        .filter(|c| c.verdict != Verdict::Pass)
                        .map(|c| format!("{} {} {}", c.check, c.verdict, c.detail))
                        .collect()
                },
            );
            if bad.is_empty() {
                out.emit(
                    &format!("deploy: healthy at {} for {wait}s", state.percentage),
                    &view,
                );
                Ok(0)
            } else {
                tracing::warn!(checks = %bad.join("; "), "deploy: not healthy at the end of the wait");
                Ok(1)
            }
        }
    }
}

/// What `run` was asked.
struct Autopilot<'a> {
    gate: Option<&'a Path>,
    tick: &'a str,
    scenario: Option<&'a Path>,
    realtime: bool,
    wait_for_resume: bool,
    notify: &'a NotifyArgs,
}

fn run_autopilot(cli: &Cli, out: &Out, args: &Autopilot<'_>) -> Result<u8> {
    let tick = tick_option(args.tick)?;
    let channels = notify::load(args.notify)?;
    let builder = notify::configure(
        Controller::builder(&cli.state).command("run"),
        channels.as_ref(),
    );
    let (mut engine, mut options) = match args.scenario.map(load_scenario).transpose()? {
        // A live drill: the scenario read on the real clock, its offset
        // 10m being now (so the gate's 5-minute window is full at once).
        Some(mut s) if args.realtime => {
            s.start = Timestamp::from_unix_millis(
                SystemClock.now().unix_millis().saturating_sub(600_000),
            );
            let engine = builder
                .gate(s.gate(Duration::from_secs(300)))
                .open_with_report()?;
            (engine, RunOptions::real_time(tick))
        }
        // A drill: the scenario on a simulated clock, one tick per step.
        Some(s) => {
            let state = load_state(&cli.state)?;
            let clock = ManualClock::new(state.last_tick.map_or(s.start, |t| t + tick));
            let mut options = RunOptions::simulated(tick).until(s.start + s.duration);
            options.auto_signoff = false;
            let engine = builder
                .clock(clock)
                .gate(s.gate(Duration::from_secs(300)))
                .open_with_report()?;
            (engine, options)
        }
        None => (
            builder
                .boxed_gate(gates::from_file(args.gate)?)
                .open_with_report()?,
            RunOptions::real_time(tick),
        ),
    };
    options.wait_for_resume = args.wait_for_resume;
    notify::schedule(&mut options, channels.as_ref());
    let (engine, report) = (&mut engine.0, engine.1);
    output::log_open_report(&report);
    let s = engine.state();
    tracing::info!(
        "run: rollout {} at stage {} ({}, {}), a tick every {}",
        s.rollout,
        s.stage,
        s.percentage,
        s.phase,
        genesis_flags::rollout::format_duration(tick)
    );
    let end = engine.run(&options, &stop_on_signals(), &mut |e| {
        output::log_event(cli, out, e)
    });
    let notified = notify::finish(Some(engine), channels.as_ref(), args.notify)?;
    notify::log_statuses(&notified);
    let end = end?;
    let s = engine.state();
    match end {
        RunEnd::Stopped => tracing::info!(
            "run: stopped between ticks at stage {} ({}); the state is saved",
            s.stage,
            s.percentage
        ),
        RunEnd::Until => tracing::info!(
            "run: the scenario ended at stage {} ({})",
            s.stage,
            s.percentage
        ),
        _ => tracing::info!("run: {} at stage {} ({})", s.phase, s.stage, s.percentage),
    }
    Ok(match end {
        RunEnd::RolledBack | RunEnd::Paused => 1,
        RunEnd::Completed | RunEnd::Stopped | RunEnd::Until => 0,
    })
}
