//! `deploy` and `run`: the engine driven on the real clock (or a scenario
//! drill), logging each tick, until the wait ends, the rollout ends or a
//! signal stops it between ticks.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Duration;

use genesis_flags::rollout::{
    format_duration, Clock, Controller, HealthGate, ManualClock, RunEnd, RunOptions, StatusView,
    StopFlag, SystemClock, Timestamp, Verdict,
};
use genesis_flags::Percentage;

use crate::cli::{Cli, NotifyArgs, ObserveArgs};
use crate::observe::Observer;
use crate::output::{self, Failure, Out};
use crate::{gates, load_scenario, load_state, notify, operator, tick_option, Result};

/// The longest `deploy --wait`.
const MAX_WAIT_SECS: u64 = 7 * 86_400;

/// Signals end `run` and `deploy` between ticks; the state is always saved.
fn stop_on_signals() -> StopFlag {
    let stop = StopFlag::default();
    let flag = stop.clone();
    let _ = ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst));
    stop
}

/// What `deploy` was asked.
pub struct Deploy<'a> {
    pub wait: u64,
    pub target: f64,
    pub gate: Option<&'a Path>,
    pub tick: &'a str,
    pub notify: &'a NotifyArgs,
    pub observe: &'a ObserveArgs,
}

pub fn deploy(cli: &Cli, out: &Out, args: &Deploy<'_>) -> Result<u8> {
    let Deploy {
        wait,
        target,
        gate,
        tick,
        notify,
        observe,
    } = *args;
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
    let rollout = gates::rollout_of(&cli.state);
    let observer = Observer::start(
        observe,
        &cli.state,
        rollout.as_deref().unwrap_or(""),
        channels.as_ref().map(|c| c.channels()).unwrap_or_default(),
    )?;
    let mut gate = gates::from_file(gate, rollout.as_deref())?;
    if let Some(o) = &observer {
        gate = o.meter(gate);
    }
    let mut engine = notify::configure(
        Controller::builder(&cli.state)
            .command("deploy")
            .boxed_gate(gate),
        channels.as_ref(),
    )
    .open()?;
    let mut options = RunOptions::real_time(tick);
    notify::schedule(&mut options, channels.as_ref());
    let result = deploy_on(
        cli,
        out,
        &mut engine,
        &Watch {
            target,
            wait,
            options: &options,
            observer: observer.as_ref(),
        },
    );
    if let Some(o) = &observer {
        o.finish();
    }
    let notified = notify::finish(Some(&engine), channels.as_ref(), notify)?;
    notify::log_statuses(&notified);
    result
}

/// What `deploy` watches.
struct Watch<'a> {
    target: Percentage,
    wait: u64,
    options: &'a RunOptions,
    observer: Option<&'a Observer>,
}

fn deploy_on(cli: &Cli, out: &Out, engine: &mut Controller, watch: &Watch<'_>) -> Result<u8> {
    let Watch {
        target,
        wait,
        options,
        observer,
    } = *watch;
    let applied = engine.deploy_safe(target, &operator(), options)?;
    tracing::info!(
        "deploy: stage {} at {}; watching the gate for {wait}s",
        applied.entry.stage,
        applied.entry.percentage
    );
    // Never past the stage's soak: a deploy moves one stage, not two.
    let started = engine.now();
    let asked = started.saturating_add(Duration::from_secs(wait));
    let until = engine.watch_deadline(Duration::from_secs(wait));
    if until < asked {
        tracing::info!(
            "deploy: the stage's soak ends at {}; watching until then, never past it",
            until
        );
    }
    let end = engine.run(
        &options.clone().until(until),
        &stop_on_signals(),
        &mut |e| {
            output::log_event(cli, out, e);
            if let Some(o) = observer {
                o.event(e);
            }
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
                    v.checks()
                        .filter(|c| c.verdict != Verdict::Pass)
                        .map(|c| format!("{} {} {}", c.check, c.verdict, c.detail))
                        .collect()
                },
            );
            if bad.is_empty() {
                out.emit(
                    &format!(
                        "deploy: healthy at {} for {}",
                        state.percentage,
                        format_duration(until.since(started))
                    ),
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
pub struct Autopilot<'a> {
    pub gate: Option<&'a Path>,
    pub tick: &'a str,
    pub scenario: Option<&'a Path>,
    pub realtime: bool,
    pub wait_for_resume: bool,
    pub notify: &'a NotifyArgs,
    pub observe: &'a ObserveArgs,
}

pub fn run_autopilot(cli: &Cli, out: &Out, args: &Autopilot<'_>) -> Result<u8> {
    let tick = tick_option(args.tick)?;
    let channels = notify::load(args.notify)?;
    let observer = Observer::start(
        args.observe,
        &cli.state,
        &load_state(&cli.state)?.rollout,
        channels.as_ref().map(|c| c.channels()).unwrap_or_default(),
    )?;
    let meter = |gate: Box<dyn HealthGate + Send>| match &observer {
        Some(o) => o.meter(gate),
        None => gate,
    };
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
                .boxed_gate(meter(Box::new(s.gate(Duration::from_secs(300)))))
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
                .boxed_gate(meter(Box::new(s.gate(Duration::from_secs(300)))))
                .open_with_report()?;
            (engine, options)
        }
        None => (
            builder
                .boxed_gate(meter(gates::from_file(
                    args.gate,
                    gates::rollout_of(&cli.state).as_deref(),
                )?))
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
        format_duration(tick)
    );
    let started_at = engine.state().revision;
    let end = engine.run(&options, &stop_on_signals(), &mut |e| {
        output::log_event(cli, out, e);
        if let Some(o) = &observer {
            o.event(e);
        }
    });
    if let Some(o) = &observer {
        o.finish();
    }
    let notified = notify::finish(Some(engine), channels.as_ref(), args.notify)?;
    notify::log_statuses(&notified);
    let end = match end {
        Ok(end) => end,
        // Exit 2 says "nothing changed": after a commit, say otherwise.
        Err(e) if engine.state().revision != started_at => {
            return Err(Failure::after_change(format!(
                "{e}; the run had changed the rollout (revision {started_at} -> {}) before it stopped, and the state file holds every change",
                engine.state().revision
            )))
        }
        Err(e) => return Err(e.into()),
    };
    if let Some(error) = engine.flags_pending() {
        tracing::error!(
            "run: stopping while the flags file does not show {} ({error}); users are still exposed until the next start writes it",
            engine.state().percentage
        );
        return Ok(3);
    }
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
