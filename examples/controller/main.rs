//! The rollout controller: the tool an on-call engineer uses to run the
//! staged rollout of a genesis-flags rollout.
//!
//! ```text
//! cargo run --release --example controller -- simulate            # healthy week, no server
//! cargo run --release --example controller -- simulate --scenario examples/scenarios/mixed.json --output json
//! cargo run --release --example controller -- init --example-flags flags.json
//! cargo run --release --example controller -- init --flags flags.json --rollout phase_4_deployment
//! cargo run --release --example controller -- status --output json
//! ```
//!
//! Every state change is saved atomically before it is written to the flags
//! file, and only `rollouts.<id>.percentage` changes there.

mod chart;
mod cli;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use genesis_flags::rollout::{
    parse_duration, simulate, write_atomically, AuditLog, AuditRecord, Clock, HealthGate,
    HistoryEntry, Outcome, Phase, Plan, RolloutState, Scenario, SimulationOptions, SystemClock,
    Timestamp,
};
use genesis_flags::{Percentage, Snapshot};
use serde_json::json;

use cli::{Cli, Command, Output, ScenarioCommand, Strategy};

/// A failure: a one-line message and the exit code.
struct Failure {
    message: String,
    code: u8,
}

impl Failure {
    /// Bad input or an unusable setup: exit 2.
    fn input(message: impl Into<String>) -> Self {
        Failure {
            message: message.into(),
            code: 2,
        }
    }
}

impl<E: std::fmt::Display> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure::input(e.to_string().replace('\n', "; "))
    }
}

type Result<T> = std::result::Result<T, Failure>;

const GENESIS_FLAGS: &str = include_str!("../config/genesis.json");

fn main() -> ExitCode {
    let cli = Cli::parse();
    let logs = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false);
    match cli.log_format {
        cli::LogFormat::Human => logs.with_ansi(false).init(),
        cli::LogFormat::Json => logs.json().init(),
    }
    match dispatch(&cli) {
        Ok(code) => ExitCode::from(code),
        Err(f) => {
            eprintln!("error: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}

fn dispatch(cli: &Cli) -> Result<u8> {
    let now = SystemClock.now();
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
                write_atomically(path, GENESIS_FLAGS.as_bytes())?;
                emit(
                    cli.output,
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
            init(cli, flags, rollout, plan.as_deref(), *force, now)
        }
        Command::Status => status(cli, now),
        Command::Promote { reason } => operate(cli, now, |s| s.promote(now, &operator(), reason)),
        Command::Pause { reason } => operate(cli, now, |s| s.pause(now, &operator(), reason)),
        Command::Resume { reason } => operate(cli, now, |s| s.resume(now, &operator(), reason)),
        Command::Rollback { reason } => operate(cli, now, |s| s.rollback(now, &operator(), reason)),
        Command::Signoff { role, name } => operate(cli, now, |s| s.sign_off(now, role, name)),
        Command::Report => report(cli, now),
        Command::Simulate {
            scenario,
            plan,
            prometheus,
            chart,
            no_signoff,
            tick,
        } => run_simulation(
            cli,
            scenario.as_deref(),
            plan.as_deref(),
            prometheus.as_deref(),
            chart.as_deref(),
            *no_signoff,
            tick,
        ),
        Command::Deploy {
            strategy,
            wait,
            target_percentage,
            gate,
            tick,
        } => deploy(
            cli,
            *strategy,
            *wait,
            *target_percentage,
            gate.as_deref(),
            tick,
        ),
        Command::HealthCheck { gate } => health_check(cli, gate.as_deref()),
        Command::Run {
            gate,
            tick,
            scenario,
        } => run_autopilot(cli, gate.as_deref(), tick, scenario.as_deref()),
        Command::Scenario {
            command: ScenarioCommand::Openmetrics { scenario, start },
        } => {
            let mut s = load_scenario(scenario)?;
            if let Some(start) = start {
                s.start = start.parse::<Timestamp>()?;
            }
            print!("{}", s.openmetrics());
            Ok(0)
        }
    }
}

fn operator() -> String {
    std::env::var("USER").unwrap_or_else(|_| "operator".to_owned())
}

fn emit(output: Output, text: &str, value: &serde_json::Value) {
    match output {
        Output::Text => println!("{text}"),
        Output::Json => println!("{value}"),
    }
}

fn load_plan(path: Option<&Path>) -> Result<Plan> {
    match path {
        Some(p) => Plan::from_file(p)
            .map_err(|e| Failure::input(format!("{}: {e}", p.display()).replace('\n', "; "))),
        None => Ok(Plan::six_day()),
    }
}

fn load_scenario(path: &Path) -> Result<Scenario> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::input(format!("cannot read scenario {}: {e}", path.display())))?;
    Scenario::from_json(&text).map_err(|e| Failure::input(format!("{}: {e}", path.display())))
}

fn init(
    cli: &Cli,
    flags: &Path,
    rollout: &str,
    plan: Option<&Path>,
    force: bool,
    now: Timestamp,
) -> Result<u8> {
    if cli.state.exists() && !force {
        return Err(Failure::input(format!(
            "{} already holds a rollout; pass --force to start over",
            cli.state.display()
        )));
    }
    let snapshot = Snapshot::from_file(flags)?;
    let Some(status) = snapshot.rollout_status(rollout) else {
        let known: Vec<String> = snapshot.rollouts().map(|r| r.id).collect();
        return Err(Failure::input(format!(
            "{} has no rollout {rollout:?} (it has: {})",
            flags.display(),
            known.join(", ")
        )));
    };
    let plan = load_plan(plan)?;
    let mut state = RolloutState::new(rollout, plan, now);
    state.flags_file = Some(absolute(flags));
    // Save first, then make the flags file agree (0%).
    state.save(&cli.state)?;
    write_percentage(flags, rollout, Percentage::ZERO)?;
    emit(
        cli.output,
        &format!(
            "rollout {rollout} initialised at 0% ({} flags bound; was {}); state in {}",
            status.flags.len(),
            status.percentage,
            cli.state.display()
        ),
        &json!({ "rollout": rollout, "stage": 0, "current_percentage": 0, "phase": "ready", "flags": status.flags }),
    );
    Ok(0)
}

fn absolute(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}

/// Rewrites `rollouts.<id>.percentage` of a flags file, validating the result
/// before writing it atomically. Nothing else in the file changes.
fn write_percentage(flags: &Path, rollout: &str, percentage: Percentage) -> Result<()> {
    let text = std::fs::read_to_string(flags)
        .map_err(|e| Failure::input(format!("cannot read {}: {e}", flags.display())))?;
    let mut doc: serde_json::Value = serde_json::from_str(&text)?;
    let slot = doc
        .get_mut("rollouts")
        .and_then(|r| r.get_mut(rollout))
        .and_then(|r| r.as_object_mut())
        .ok_or_else(|| Failure::input(format!("{} has no rollout {rollout:?}", flags.display())))?;
    slot.insert("percentage".into(), serde_json::to_value(percentage)?);
    let mut new_text = serde_json::to_string_pretty(&doc)?;
    new_text.push('\n');
    Snapshot::from_json(&new_text)
        .map_err(|e| Failure::input(format!("the updated flags file would be invalid: {e}")))?;
    write_atomically(flags, new_text.as_bytes())?;
    Ok(())
}

fn load_state(cli: &Cli) -> Result<RolloutState> {
    RolloutState::load(&cli.state).map_err(|e| {
        if !cli.state.exists() {
            Failure::input(format!(
                "no rollout state at {} (run `init` first)",
                cli.state.display()
            ))
        } else {
            Failure::from(e)
        }
    })
}

fn audit_path(state: &Path) -> PathBuf {
    let mut name = state
        .file_name()
        .map_or_else(|| "rollout-state".into(), |n| n.to_os_string());
    name.push(".audit.jsonl");
    state.with_file_name(name)
}

/// Applies a manual operation: state saved first, then the flags file, then
/// the audit log.
fn operate(
    cli: &Cli,
    _now: Timestamp,
    op: impl FnOnce(
        &mut RolloutState,
    ) -> std::result::Result<HistoryEntry, genesis_flags::rollout::OperationError>,
) -> Result<u8> {
    let _lock = lock_state(&cli.state)?;
    let mut state = load_state(cli)?;
    reconcile(&state)?;
    let entry = op(&mut state)?;
    state.save(&cli.state)?;
    if let Some(flags) = &state.flags_file {
        write_percentage(flags, &state.rollout, state.percentage)?;
    }
    AuditLog::open(audit_path(&cli.state))?
        .append(&AuditRecord::operation(&state.rollout, &entry))?;
    emit(
        cli.output,
        &format!(
            "{}: stage {} at {} ({}): {}",
            entry.event, state.stage, state.percentage, state.phase, entry.why
        ),
        &status_json(&state, SystemClock.now()),
    );
    Ok(0)
}

fn status_json(state: &RolloutState, now: Timestamp) -> serde_json::Value {
    let soak_left = state
        .current_stage()
        .filter(|_| state.phase == Phase::Soaking)
        .map(|s| genesis_flags::rollout::format_duration((state.since + s.soak).since(now)));
    json!({
        "rollout": state.rollout,
        "stage": state.stage,
        "stages": state.plan.stages.len(),
        "current_percentage": state.percentage.as_percent(),
        "phase": state.phase.as_str(),
        "since": state.since.to_string(),
        "time_in_stage": genesis_flags::rollout::format_duration(now.since(state.since)),
        "soak_left": soak_left,
        "tier": state.tier_name(),
        "reason": state.reason,
        "missing_signoffs": state.missing_signoffs().collect::<Vec<_>>(),
        "last_tick": state.last_tick.map(|t| t.to_string()),
        "last_verdicts": state.last_verdicts,
        "flags_file": state.flags_file,
    })
}

fn status(cli: &Cli, now: Timestamp) -> Result<u8> {
    let state = load_state(cli)?;
    let v = status_json(&state, now);
    let mut text = format!(
        "rollout {}: stage {}/{} at {} — {}\n  since {} ({} in stage)",
        state.rollout,
        state.stage,
        state.plan.stages.len(),
        state.percentage,
        state.phase,
        state.since,
        v["time_in_stage"].as_str().unwrap_or("?"),
    );
    if let Some(left) = v["soak_left"].as_str() {
        text.push_str(&format!(", soak left {left}"));
    }
    if let Some(reason) = &state.reason {
        text.push_str(&format!("\n  reason: {reason}"));
    }
    if let Some(verdicts) = &state.last_verdicts {
        for c in verdicts.all() {
            text.push_str(&format!(
                "\n  {}: {} (value {}, threshold {})",
                c.check,
                c.verdict,
                c.value.map_or("-".into(), |v| format!("{v:.3}")),
                c.threshold.map_or("-".into(), |v| format!("{v}")),
            ));
        }
    }
    emit(cli.output, &text, &v);
    Ok(0)
}

fn report(cli: &Cli, now: Timestamp) -> Result<u8> {
    let state = load_state(cli)?;
    let status = match state.phase {
        Phase::RolledBack => "ROLLED BACK",
        Phase::Paused => "AT RISK",
        _ if state
            .last_verdicts
            .as_ref()
            .is_some_and(|v| v.any_breach() || v.any_blind()) =>
        {
            "AT RISK"
        }
        _ => "ON TRACK",
    };
    let started = state
        .history
        .iter()
        .find(|h| h.event == "start")
        .map_or(state.since, |h| h.at);
    let days = now.since(started).as_secs_f64() / 86_400.0;
    let total_days = state.plan.estimated_duration().as_secs_f64() / 86_400.0;
    let v = state.last_verdicts.as_ref();
    let error = v.and_then(|v| v.error_rate.value);
    let p95 = v.and_then(|v| v.p95.value);
    let health = v.map(|v| v.health.detail.clone()).unwrap_or_default();
    let day = Duration::from_secs(86_400);
    let updates: Vec<String> = state
        .history
        .iter()
        .filter(|h| now.since(h.at) <= day)
        .map(|h| {
            format!(
                "{} {} → stage {} ({}): {}",
                h.at, h.event, h.stage, h.percentage, h.why
            )
        })
        .collect();
    let next = match state.phase {
        Phase::Soaking => state
            .plan
            .stage(state.stage + 1)
            .map(|s| {
                format!(
                    "stage {} ({}) after the soak",
                    state.stage + 1,
                    s.percentage
                )
            })
            .unwrap_or_else(|| "final validation".into()),
        Phase::Validating | Phase::AwaitingSignoff => {
            let missing: Vec<&str> = state.missing_signoffs().collect();
            if missing.is_empty() {
                "completion".into()
            } else {
                format!("sign-offs: {}", missing.join(", "))
            }
        }
        Phase::Ready => "start (stage 1)".into(),
        Phase::Paused | Phase::RolledBack => "a person to resume".into(),
        Phase::Completed => "none: completed".into(),
    };
    let value = json!({
        "status": status, "rollout": state.rollout, "rollout_percentage": state.percentage.as_percent(),
        "stage": state.stage, "phase": state.phase.as_str(),
        "error_rate_percent": error, "p95_ms": p95, "health_checks": health,
        "key_updates": updates, "next_milestone": next,
        "progress_days": (days * 10.0).round() / 10.0, "plan_days": total_days,
    });
    let text = format!(
        "Genesis rollout report — {status}\n  rollout {} at {} (stage {}/{}, {})\n  error rate {}, P95 {}, health checks {}\n  progress: day {:.1} of {:.0}\n  next milestone: {next}\n  key updates (24 h):{}",
        state.rollout,
        state.percentage,
        state.stage,
        state.plan.stages.len(),
        state.phase,
        error.map_or("n/a".into(), |e| format!("{e:.3}%")),
        p95.map_or("n/a".into(), |p| format!("{p:.0} ms")),
        if health.is_empty() { "n/a".into() } else { health },
        days,
        total_days,
        if updates.is_empty() { " none".into() } else { updates.iter().map(|u| format!("\n    {u}")).collect::<String>() },
    );
    emit(cli.output, &text, &value);
    Ok(0)
}

fn run_simulation(
    cli: &Cli,
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
        None => Scenario::healthy("2025-10-23T09:00:00Z".parse::<Timestamp>()?),
    };
    let tick: Duration = parse_duration(tick)?;
    let options = SimulationOptions {
        rollout: "phase_4_deployment".into(),
        start: scenario.start,
        until: scenario.start + scenario.duration,
        tick,
        auto_signoff: !no_signoff,
        keep_samples: chart.is_some(),
    };
    let mut gate: Box<dyn HealthGate> = match prometheus {
        None => Box::new(scenario.gate(Duration::from_secs(300))),
        Some(url) => prometheus_gate(url)?,
    };
    let sim = simulate(plan, &mut |at: Timestamp| gate.observe(at), &options);
    if let Some(path) = chart {
        let title = format!(
            "simulation: {:?}, final {}",
            sim.outcome, sim.final_percentage
        );
        std::fs::write(path, chart::svg(&sim, &title))
            .map_err(|e| Failure::input(format!("cannot write {}: {e}", path.display())))?;
    }
    match cli.output {
        Output::Json => println!(
            "{}",
            serde_json::to_string(&json!({
                "outcome": sim.outcome, "final_percentage": sim.final_percentage.as_percent(), "events": sim.events,
            }))?
        ),
        Output::Text => {
            for e in &sim.events {
                println!(
                    "{:>8}  {:<9} stage {} ({:>4})  {}",
                    e.offset,
                    e.decision,
                    e.stage,
                    e.percentage.to_string(),
                    e.why
                );
            }
            println!("outcome: {:?} at {}", sim.outcome, sim.final_percentage);
        }
    }
    Ok(match sim.outcome {
        Outcome::Completed | Outcome::InProgress => 0,
        Outcome::RolledBack | Outcome::Paused => 1,
    })
}

/// The failure message of a reading, if the source failed.
fn failure<T>(r: &genesis_flags::rollout::Reading<T>) -> Option<&str> {
    match r {
        genesis_flags::rollout::Reading::Failed(why) => Some(why),
        _ => None,
    }
}

/// Holds `<state>.lock` exclusively for the life of the returned file: one
/// controller per state file.
fn lock_state(state: &Path) -> Result<std::fs::File> {
    let mut name = state
        .file_name()
        .map_or_else(|| "rollout-state".into(), |n| n.to_os_string());
    name.push(".lock");
    let path = state.with_file_name(name);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| Failure::input(format!("cannot open the lock {}: {e}", path.display())))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(Failure::input(format!(
            "another controller is running on {} (it holds {})",
            state.display(),
            path.display()
        ))),
        Err(std::fs::TryLockError::Error(e)) => Err(Failure::input(format!(
            "cannot lock {}: {e}",
            path.display()
        ))),
    }
}

/// The percentage a flags file gives a rollout.
fn flags_percentage(flags: &Path, rollout: &str) -> Result<Percentage> {
    let snapshot = Snapshot::from_file(flags)?;
    snapshot
        .rollout_status(rollout)
        .map(|s| s.percentage)
        .ok_or_else(|| Failure::input(format!("{} has no rollout {rollout:?}", flags.display())))
}

/// The state is saved before the flags file is written; after a crash
/// between the two, the flags file is brought back in line with the state.
fn reconcile(state: &RolloutState) -> Result<()> {
    if let Some(flags) = &state.flags_file {
        let on_disk = flags_percentage(flags, &state.rollout)?;
        if on_disk != state.percentage {
            write_percentage(flags, &state.rollout, state.percentage)?;
            tracing::warn!(
                flags = %flags.display(),
                was = %on_disk,
                now = %state.percentage,
                "reconciled: the flags file was out of step with the state; rewrote it"
            );
        }
    }
    Ok(())
}

/// One tick: observe, decide, apply, log, save the state, then write the
/// flags file if the percentage moved.
fn tick(
    cli: &Cli,
    state: &mut RolloutState,
    gate: &mut dyn FnMut(Timestamp) -> genesis_flags::rollout::Observation,
    audit: &mut AuditLog,
    now: Timestamp,
) -> Result<genesis_flags::rollout::Decision> {
    let observation = gate(now);
    let decision = genesis_flags::rollout::decide(state, &observation, now);
    let before = state.percentage;
    state.apply(&decision);
    // Audit, then the state (the commit point), then the flags file: a crash
    // in between repeats the tick (the audit log may hold it twice) or is
    // repaired by `reconcile` on the next start; nothing is lost.
    audit.append(&AuditRecord::decision(
        &state.rollout,
        &decision,
        &observation,
    ))?;
    state.save(&cli.state)?;
    if state.percentage != before {
        if let Some(flags) = &state.flags_file {
            write_percentage(flags, &state.rollout, state.percentage)?;
        }
    }
    tracing::debug!(at = %now, decision = decision.action.name(), why = %decision.explanation, "tick");
    if decision.action != genesis_flags::rollout::Action::Hold {
        tracing::info!(at = %now, decision = decision.action.name(), stage = state.stage, percentage = %state.percentage, why = %decision.explanation, "decision");
        let line = json!({ "at": now.to_string(), "decision": decision.action.name(), "stage": state.stage,
            "percentage": state.percentage.as_percent(), "why": decision.explanation.message });
        match cli.output {
            Output::Json => println!("{line}"),
            Output::Text => println!(
                "{now}  {:<9} stage {} ({})  {}",
                decision.action.name(),
                state.stage,
                state.percentage,
                decision.explanation
            ),
        }
    }
    Ok(decision)
}

fn exit_code(phase: Phase) -> u8 {
    match phase {
        Phase::RolledBack | Phase::Paused => 1,
        _ => 0,
    }
}

fn run_autopilot(
    cli: &Cli,
    gate_path: Option<&Path>,
    tick_text: &str,
    scenario: Option<&Path>,
) -> Result<u8> {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let tick_every = parse_duration(tick_text)?;
    if tick_every.is_zero() {
        return Err(Failure::input("--tick must be positive"));
    }
    let _lock = lock_state(&cli.state)?;
    let mut state = load_state(cli)?;
    reconcile(&state)?;
    let mut audit = AuditLog::open(audit_path(&cli.state))?;
    let simulated = scenario.map(load_scenario).transpose()?;
    let mut gate: Box<dyn FnMut(Timestamp) -> genesis_flags::rollout::Observation> =
        match &simulated {
            Some(s) => {
                let mut g = s.gate(Duration::from_secs(300));
                Box::new(move |at| g.observe(at))
            }
            None => {
                let mut g = make_gate(gate_path)?;
                Box::new(move |at| g.observe(at))
            }
        };
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = Arc::clone(&stop);
        // Between ticks, SIGINT/SIGTERM end the loop; the state is always saved.
        let _ = ctrlc::set_handler(move || stop.store(true, Ordering::SeqCst));
    }
    let clock = |state: &RolloutState| match &simulated {
        Some(s) => state.last_tick.map_or(s.start, |t| t + tick_every),
        None => SystemClock.now(),
    };
    if state.phase == Phase::Ready {
        let now = clock(&state);
        let entry = state.start(now, &operator())?;
        state.save(&cli.state)?;
        if let Some(flags) = &state.flags_file {
            write_percentage(flags, &state.rollout, state.percentage)?;
        }
        audit.append(&AuditRecord::operation(&state.rollout, &entry))?;
    }
    loop {
        if matches!(
            state.phase,
            Phase::Completed | Phase::RolledBack | Phase::Paused
        ) {
            tracing::info!(
                "run: {} at stage {} ({})",
                state.phase,
                state.stage,
                state.percentage
            );
            return Ok(exit_code(state.phase));
        }
        if stop.load(Ordering::SeqCst) {
            tracing::info!(
                "run: stopped between ticks at stage {} ({}); the state is saved",
                state.stage,
                state.percentage
            );
            return Ok(0);
        }
        let now = clock(&state);
        if let Some(s) = &simulated {
            if now > s.start + s.duration {
                tracing::info!(
                    "run: the scenario ended at stage {} ({})",
                    state.stage,
                    state.percentage
                );
                return Ok(0);
            }
        }
        tick(cli, &mut state, &mut *gate, &mut audit, now)?;
        if simulated.is_none() {
            let until = std::time::Instant::now() + tick_every;
            while std::time::Instant::now() < until && !stop.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(100).min(tick_every));
            }
        }
    }
}

fn deploy(
    cli: &Cli,
    _strategy: Strategy,
    wait: u64,
    target: f64,
    gate_path: Option<&Path>,
    tick_text: &str,
) -> Result<u8> {
    let tick_every = parse_duration(tick_text)?;
    if tick_every.is_zero() {
        return Err(Failure::input("--tick must be positive"));
    }
    let target = Percentage::from_percent(target)
        .map_err(|e| Failure::input(format!("--target-percentage: {e}")))?;
    let _lock = lock_state(&cli.state)?;
    let mut state = load_state(cli)?;
    reconcile(&state)?;
    let next = state.stage + 1;
    let Some(stage) = state.plan.stage(next) else {
        return Err(Failure::input(format!(
            "stage {} ({}) is the plan's last; nothing to deploy",
            state.stage, state.percentage
        )));
    };
    if stage.percentage != target {
        return Err(Failure::input(format!(
            "--strategy safe moves only to the next stage of the plan: stage {next} is {}, not {target}",
            stage.percentage
        )));
    }
    let mut gate = make_gate(gate_path)?;
    let now = SystemClock.now();
    // Pre-flight: a gate that cannot answer is bad input; nothing is written.
    let probe = gate.observe(now);
    for (what, reading) in [
        ("error rate", failure(&probe.error_rate)),
        ("P95", failure(&probe.p95_ms)),
        ("requests", failure(&probe.requests)),
    ] {
        if let Some(why) = reading {
            return Err(Failure::input(format!(
                "cannot deploy: the health gate failed ({what}): {why}"
            )));
        }
    }
    let entry = if state.phase == Phase::Ready {
        state.start(now, &operator())?
    } else {
        state.promote(
            now,
            &operator(),
            &format!("deploy --strategy safe --target-percentage {target}"),
        )?
    };
    state.save(&cli.state)?;
    if let Some(flags) = &state.flags_file {
        write_percentage(flags, &state.rollout, state.percentage)?;
    }
    let mut audit = AuditLog::open(audit_path(&cli.state))?;
    audit.append(&AuditRecord::operation(&state.rollout, &entry))?;
    tracing::info!(
        "deploy: stage {} at {}; watching the gate for {wait}s",
        state.stage,
        state.percentage
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(wait);
    loop {
        let now = SystemClock.now();
        tick(cli, &mut state, &mut |at| gate.observe(at), &mut audit, now)?;
        match state.phase {
            Phase::RolledBack => {
                tracing::error!(
                    "deploy: rolled back to 0%: {}",
                    state.reason.as_deref().unwrap_or("")
                );
                return Ok(1);
            }
            Phase::Paused => {
                tracing::warn!(
                    why = state.reason.as_deref().unwrap_or(""),
                    "deploy: paused"
                );
                return Ok(1);
            }
            _ => {}
        }
        if std::time::Instant::now() + tick_every > deadline {
            break;
        }
        std::thread::sleep(tick_every);
    }
    // Healthy means the last tick judged every check, with no breach.
    if let Some(v) = &state.last_verdicts {
        if v.any_breach() || v.any_blind() {
            let bad: Vec<String> = v
                .all()
                .iter()
                .filter(|c| c.verdict != genesis_flags::rollout::Verdict::Pass)
                .map(|c| format!("{} {} {}", c.check, c.verdict, c.detail))
                .collect();
            tracing::warn!(checks = %bad.join("; "), "deploy: not healthy at the end of the wait");
            return Ok(1);
        }
    }
    emit(
        cli.output,
        &format!("deploy: healthy at {} for {wait}s", state.percentage),
        &status_json(&state, SystemClock.now()),
    );
    Ok(0)
}

fn health_check(cli: &Cli, gate_path: Option<&Path>) -> Result<u8> {
    let plan_and_tier = RolloutState::load(&cli.state)
        .ok()
        .map(|s| (s.plan.clone(), s.tier_name().to_owned()));
    let (plan, tier_name) = plan_and_tier.unwrap_or_else(|| {
        let plan = Plan::six_day();
        let tier = plan
            .stages
            .first()
            .map_or_else(|| plan.validation.tier.clone(), |s| s.tier.clone());
        (plan, tier)
    });
    let tier = plan
        .tier(&tier_name)
        .ok_or_else(|| Failure::input(format!("the plan has no tier {tier_name:?}")))?;
    let queries = gate_queries(gate_path)?;
    let mut gate = make_gate(gate_path)?;
    let now = SystemClock.now();
    let obs = gate.observe(now);
    let verdicts = genesis_flags::rollout::Verdicts::judge(&obs, tier, &plan.go, plan.min_requests);
    let mut all_pass = true;
    let mut rows = Vec::new();
    for c in verdicts.all() {
        let pass = c.verdict == genesis_flags::rollout::Verdict::Pass
            && (c.check != genesis_flags::rollout::CheckKind::CriticalAlerts || c.go);
        all_pass &= pass;
        let query = match c.check {
            genesis_flags::rollout::CheckKind::ErrorRate => queries.0.clone(),
            genesis_flags::rollout::CheckKind::P95Latency => queries.1.clone(),
            genesis_flags::rollout::CheckKind::Health => queries.2.clone(),
            genesis_flags::rollout::CheckKind::CriticalAlerts => queries.3.clone(),
        };
        rows.push(
            json!({ "check": c.check, "verdict": c.verdict, "pass": pass, "value": c.value,
            "threshold": c.threshold, "detail": c.detail, "query": query }),
        );
    }
    let text = rows
        .iter()
        .map(|r| {
            format!(
                "{:<5} {:<16} {:<8} value {} threshold {}  {}  [{}]",
                if r["pass"] == true { "PASS" } else { "FAIL" },
                r["check"].as_str().unwrap_or(""),
                r["verdict"].as_str().unwrap_or(""),
                r["value"],
                r["threshold"],
                r["detail"].as_str().unwrap_or(""),
                r["query"].as_str().unwrap_or("")
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
    emit(
        cli.output,
        &format!("health check at {now} ({tier_name} tier)\n{text}"),
        &json!({ "at": now.to_string(), "tier": tier_name, "pass": all_pass, "checks": rows }),
    );
    Ok(u8::from(!all_pass))
}

#[cfg(feature = "prometheus")]
fn gate_config(path: Option<&Path>) -> Result<genesis_flags::rollout::prometheus::GateConfig> {
    use genesis_flags::rollout::prometheus::GateConfig;
    match path {
        Some(p) => {
            GateConfig::from_file(p).map_err(|e| Failure::input(format!("{}: {e}", p.display())))
        }
        None => Ok(GateConfig::default()),
    }
}

#[cfg(feature = "prometheus")]
fn gate_queries(path: Option<&Path>) -> Result<(String, String, String, String)> {
    let q = gate_config(path)?.rendered_queries()?;
    let health = q
        .health_checks
        .iter()
        .map(|(n, e)| format!("{n}: {e}"))
        .collect::<Vec<_>>()
        .join("; ");
    Ok((
        q.error_rate,
        q.latency_p95_seconds,
        health,
        q.critical_alerts,
    ))
}

#[cfg(not(feature = "prometheus"))]
fn gate_queries(_path: Option<&Path>) -> Result<(String, String, String, String)> {
    Err(no_prometheus())
}

#[cfg(feature = "prometheus")]
fn make_gate(path: Option<&Path>) -> Result<Box<dyn HealthGate>> {
    Ok(Box::new(
        genesis_flags::rollout::prometheus::PrometheusGate::new(gate_config(path)?)?,
    ))
}

#[cfg(not(feature = "prometheus"))]
fn make_gate(_path: Option<&Path>) -> Result<Box<dyn HealthGate>> {
    Err(no_prometheus())
}

#[cfg(not(feature = "prometheus"))]
fn no_prometheus() -> Failure {
    Failure::input("the Prometheus gate needs the `prometheus` feature: cargo run --release --features prometheus --example controller -- ...")
}

#[cfg(feature = "prometheus")]
fn prometheus_gate(url: &str) -> Result<Box<dyn HealthGate>> {
    use genesis_flags::rollout::prometheus::{GateConfig, PrometheusGate, ServerConfig};
    let config = GateConfig {
        prometheus: ServerConfig {
            url: url.to_owned(),
            ..ServerConfig::default()
        },
        ..GateConfig::default()
    };
    Ok(Box::new(PrometheusGate::new(config)?))
}

#[cfg(not(feature = "prometheus"))]
fn prometheus_gate(_url: &str) -> Result<Box<dyn HealthGate>> {
    Err(no_prometheus())
}
