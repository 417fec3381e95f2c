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

mod autopilot;
mod chart;
mod cli;
mod gates;
mod health;
mod incident;
mod notify;
mod observe;
mod output;
mod simulation;
mod ui;

use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::Duration;

use clap::Parser;
use genesis_flags::rollout::controller::EngineLock;
use genesis_flags::rollout::files::FlagsFile;
use genesis_flags::rollout::simulation::Scenario;
use genesis_flags::rollout::{
    parse_duration, Clock, Controller, ControllerError, DailyReport, Operation, Plan, RolloutState,
    RunOptions, StatusView, StopFlag, SubmitOptions, SystemClock, Timestamp,
};
use genesis_flags::Percentage;
use serde_json::json;

use cli::{Cli, Command, NotifyArgs, NotifyCommand, ScenarioCommand};
use output::{Failure, Out};

type Result<T> = std::result::Result<T, Failure>;

const GENESIS_FLAGS: &str = include_str!("../config/genesis.json");

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
                genesis_flags::rollout::files::write_atomically(path, GENESIS_FLAGS.as_bytes())
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
            let (text, value) = status_report(&cli.state)?;
            out.emit(&text, &value);
            Ok(0)
        }
        Command::Promote {
            reason,
            from_stage,
            notify,
        } => {
            // The stage the person saw: a promote never moves from another.
            let seen = match from_stage {
                Some(stage) => *stage,
                None => load_state(&cli.state)?.stage,
            };
            operate_from(
                cli,
                out,
                &Operation::Promote {
                    reason: reason.clone(),
                },
                notify,
                Some(seen),
            )
        }
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
            None => simulation::run_simulation(
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
            observe,
        } => autopilot::deploy(
            cli,
            out,
            &autopilot::Deploy {
                wait: *wait,
                target: *target_percentage,
                gate: gate.as_deref(),
                tick,
                notify,
                observe,
            },
        ),
        Command::HealthCheck { gate } => health::health_check(cli, out, gate.as_deref()),
        Command::Run {
            gate,
            tick,
            scenario,
            realtime,
            wait_for_resume,
            notify,
            observe,
        } => autopilot::run_autopilot(
            cli,
            out,
            &autopilot::Autopilot {
                gate: gate.as_deref(),
                tick,
                scenario: scenario.as_deref(),
                realtime: *realtime,
                wait_for_resume: *wait_for_resume,
                notify,
                observe,
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

/// What `status` prints: the text and the JSON (also the status page's
/// `GET /api/v1/status`).
pub fn status_report(path: &Path) -> Result<(String, serde_json::Value)> {
    let state = load_state(path)?;
    let lock = genesis_flags::rollout::controller::ControllerFiles::beside(path).lock;
    let view = StatusView::new(&state, SystemClock.now(), EngineLock::holder(&lock));
    let pending = notify::pending(path)?;
    let mut value = serde_json::to_value(&view).map_err(|e| Failure::input(e.to_string()))?;
    value["notifications"] = json!(pending);
    // What the fleet is told now: users are exposed to whatever the
    // flags file says, whatever the state says.
    let files = genesis_flags::rollout::controller::ControllerFiles::beside(path);
    let published = files
        .flags_of(&state)
        .map(|p| FlagsFile::new(p).percentage(&state.rollout));
    let exposure = match &published {
        Some(Ok(p)) if *p != state.percentage => format!(
            "\nUSERS STILL EXPOSED: the flags file shows {p}, the rollout is at {}; the running controller (or the next command) writes it",
            state.percentage
        ),
        Some(Err(e)) => format!(
            "\nUSERS MAY STILL BE EXPOSED: the flags file cannot be read ({e}); the running controller (or the next command) restores it"
        ),
        _ => String::new(),
    };
    value["published_percentage"] = match &published {
        Some(Ok(p)) => json!(p.as_percent()),
        _ => serde_json::Value::Null,
    };
    value["flags_in_step"] = json!(matches!(&published, Some(Ok(p)) if *p == state.percentage));
    Ok((
        format!("{view}{exposure}{}", notify::pending_text(&pending)),
        value,
    ))
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
    let text = genesis_flags::rollout::read::read_text(path)
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
    operate_from(cli, out, op, notify, None)
}

/// An operator command applied only from `from_stage` (when given). Ctrl-C
/// withdraws a request the running engine has not taken (nothing changes).
/// Exit 0 when everything was written, 3 when the change was committed but
/// a follow-up write is pending.
fn operate_from(
    cli: &Cli,
    out: &Out,
    op: &Operation,
    notify: &NotifyArgs,
    from_stage: Option<usize>,
) -> Result<u8> {
    let channels = notify::load(notify)?;
    let cancel = StopFlag::default();
    let flag = cancel.clone();
    let _ = ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst));
    let options = SubmitOptions::default()
        .from_stage(from_stage)
        .cancel(cancel);
    let (applied, engine) =
        Controller::submit_with_options(&cli.state, op, &operator(), &options, &|b| {
            notify::configure(b, channels.as_ref())
        })?;
    let notified = notify::finish(engine.as_ref(), channels.as_ref(), notify)?;
    output::log_open_report(&applied.opened);
    // The change's own outcome; the status beside it is read afterwards.
    let state = load_state(&cli.state)?;
    let e = &applied.entry;
    let mut text = format!(
        "{}: stage {} at {} (revision {}): {}",
        e.event, e.stage, e.percentage, applied.commit.revision, e.why
    );
    for n in &applied.commit.notes {
        text.push_str(&format!("\n  note: {n}"));
    }
    for p in &applied.commit.pending {
        text.push_str(&format!("\n  pending: {p}"));
    }
    text.push_str(&notify::statuses_text(&notified));
    let mut value = serde_json::to_value(StatusView::new(&state, SystemClock.now(), None))
        .map_err(|e| Failure::input(e.to_string()))?;
    value["outcome"] = json!(e);
    value["revision"] = json!(applied.commit.revision);
    value["pending"] = json!(applied.commit.pending);
    value["notes"] = json!(applied.commit.notes);
    if channels.is_some() {
        value["notifications"] = json!(notified);
    }
    out.emit(&text, &value);
    Ok(if applied.commit.pending.is_empty() {
        0
    } else {
        3
    })
}

fn operator() -> String {
    genesis_flags::rollout::controller::operator_name()
}
