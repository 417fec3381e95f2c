//! `--notify`: loading the channels, waiting for deliveries before a command
//! exits, `status`'s pending deliveries, `notify test` and `simulate
//! --notify`. Sending needs the `notify` feature; reading the outbox and
//! simulating do not.

use std::path::Path;
use std::time::Duration;

use genesis_flags::rollout::notify::{ChannelKind, NotifyConfig, Outbox, PendingDeliveries};
use genesis_flags::rollout::simulation::Scenario;
use genesis_flags::rollout::{
    parse_duration, Clock, Controller, ControllerBuilder, ManualClock, Phase, Plan, RolloutState,
    RunOptions, StopFlag,
};
use serde::Serialize;
use serde_json::json;

use crate::cli::NotifyArgs;
use crate::output::{Failure, Out};

type Result<T> = std::result::Result<T, Failure>;

/// The longest `--notify-wait`.
const MAX_NOTIFY_WAIT: Duration = Duration::from_secs(600);

/// Where a channel stands when a command exits.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub channel: String,
    pub delivered: usize,
    pub given_up: usize,
    pub pending: usize,
    pub last_error: Option<String>,
}

fn read_config(path: &Path) -> Result<NotifyConfig> {
    NotifyConfig::from_file(path).map_err(|e| Failure::input(e.to_string()).context(path))
}

/// The channels of `--notify`, checked (secrets read) before anything
/// changes.
pub fn load(args: &NotifyArgs) -> Result<Option<NotifyConfig>> {
    let wait = parse_duration(&args.notify_wait)
        .map_err(|e| Failure::input(format!("--notify-wait: {e}")))?;
    if wait > MAX_NOTIFY_WAIT {
        return Err(Failure::input("--notify-wait: at most 10m"));
    }
    let Some(path) = &args.notify else {
        return Ok(None);
    };
    if !cfg!(feature = "notify") {
        return Err(Failure::input("--notify needs the `notify` feature: cargo run --release --features notify --example controller -- ..."));
    }
    read_config(path).map(Some)
}

/// The builder, delivering to `config`'s channels.
#[cfg(feature = "notify")]
pub fn configure(builder: ControllerBuilder, config: Option<&NotifyConfig>) -> ControllerBuilder {
    match config {
        Some(c) => builder.notify(c.clone()),
        None => builder,
    }
}

/// The builder (no channels without the `notify` feature; `load` refused).
#[cfg(not(feature = "notify"))]
pub fn configure(builder: ControllerBuilder, _config: Option<&NotifyConfig>) -> ControllerBuilder {
    builder
}

/// The run's notices: the daily report and incident updates.
pub fn schedule(options: &mut RunOptions, config: Option<&NotifyConfig>) {
    if let Some(c) = config {
        options.daily_at = c.daily_at();
        options.incident_every = Some(c.delivery.incident_every);
    }
}

/// Waits up to `--notify-wait` for the engine's channels; what is left is
/// pending for the next start.
#[cfg(feature = "notify")]
pub fn finish(
    engine: Option<&Controller>,
    config: Option<&NotifyConfig>,
    args: &NotifyArgs,
) -> Result<Vec<Status>> {
    if config.is_none() {
        return Ok(Vec::new());
    }
    let Some(engine) = engine else {
        tracing::info!("the running controller applied it; it notifies its own --notify channels");
        return Ok(Vec::new());
    };
    let wait = parse_duration(&args.notify_wait)
        .map_err(|e| Failure::input(format!("--notify-wait: {e}")))?;
    Ok(engine
        .flush_notifications(wait)
        .into_iter()
        .map(|s| Status {
            channel: s.channel,
            delivered: s.delivered,
            given_up: s.given_up,
            pending: s.pending,
            last_error: s.last_error,
        })
        .collect())
}

/// Nothing to wait for without the `notify` feature.
#[cfg(not(feature = "notify"))]
pub fn finish(
    _engine: Option<&Controller>,
    _config: Option<&NotifyConfig>,
    _args: &NotifyArgs,
) -> Result<Vec<Status>> {
    Ok(Vec::new())
}

/// One line per channel, for a command's text output.
pub fn statuses_text(statuses: &[Status]) -> String {
    let mut text = String::new();
    for s in statuses {
        text.push_str(&format!(
            "\n  notify {}: {} delivered, {} given up, {} pending",
            s.channel, s.delivered, s.given_up, s.pending
        ));
        if s.pending > 0 {
            text.push_str(" (the next start with --notify sends them)");
        }
        if let Some(e) = s.last_error.as_ref().filter(|_| s.pending > 0) {
            text.push_str(&format!("; last error: {e}"));
        }
    }
    text
}

/// The statuses to the log.
pub fn log_statuses(statuses: &[Status]) {
    for s in statuses {
        if s.pending > 0 {
            tracing::warn!(
                channel = %s.channel,
                pending = s.pending,
                error = s.last_error.as_deref().unwrap_or(""),
                "notifications still pending; the next start with --notify sends them"
            );
        } else {
            tracing::info!(channel = %s.channel, delivered = s.delivered, given_up = s.given_up, "notifications delivered");
        }
    }
}

/// The pending deliveries of every channel that has a cursor.
pub fn pending(state: &Path) -> Result<Vec<PendingDeliveries>> {
    let mut pending = Outbox::beside(state)
        .pending()
        .map_err(|e| Failure::input(e.to_string()))?;
    let deliveries = Outbox::beside(state).deliveries().unwrap_or_default();
    for p in &mut pending {
        p.last_error = deliveries
            .iter()
            .rev()
            .find(|d| d.channel == p.channel)
            .and_then(|d| d.error.clone());
    }
    Ok(pending)
}

/// `status`'s lines about notifications.
pub fn pending_text(pending: &[PendingDeliveries]) -> String {
    let mut text = String::new();
    for p in pending {
        if p.pending.is_empty() {
            text.push_str(&format!("\n  notify {}: nothing pending", p.channel));
        } else {
            text.push_str(&format!(
                "\n  notify {}: {} pending since {} ({})",
                p.channel,
                p.pending.len(),
                p.oldest.map(|t| t.to_string()).unwrap_or_default(),
                p.pending.join(", ")
            ));
        }
    }
    text
}

/// `notify test`: one test event to every channel, now, each result
/// printed. Exit 1 when a channel failed.
#[cfg(feature = "notify")]
pub fn test(cli: &crate::cli::Cli, out: &Out, path: &Path) -> Result<u8> {
    use genesis_flags::rollout::controller::host_name;
    use genesis_flags::rollout::notify::{send_test, Event, EventType};
    use genesis_flags::rollout::SystemClock;
    let config = read_config(path)?;
    let now = SystemClock.now();
    let state = RolloutState::load(&cli.state)
        .unwrap_or_else(|_| RolloutState::new("genesis-flags", Plan::six_day(), now));
    let mut event = Event::about(
        &state,
        EventType::Test,
        now,
        &crate::operator(),
        format!(
            "test notification from the genesis-flags controller on {}",
            host_name()
        ),
    );
    event.id = format!("{}/test-{}", state.rollout, now.unix_millis());
    let results = send_test(
        &config,
        &format!("genesis-flags controller on {}", host_name()),
        &event,
    );
    if results.is_empty() {
        return Err(Failure::input(format!(
            "{}: no channel configured",
            path.display()
        )));
    }
    let failed = results.iter().filter(|(_, r)| r.is_err()).count();
    let text: Vec<String> = results
        .iter()
        .map(|(c, r)| match r {
            Ok(()) => format!("{c}: ok"),
            Err(e) => format!("{c}: FAILED: {e}"),
        })
        .collect();
    let value: Vec<_> = results
        .iter()
        .map(|(c, r)| json!({ "channel": c, "ok": r.is_ok(), "error": r.as_ref().err().map(ToString::to_string) }))
        .collect();
    out.emit(
        &format!("test event {}\n{}", event.id, text.join("\n")),
        &json!({ "id": event.id, "results": value }),
    );
    Ok(u8::from(failed > 0))
}

/// `notify test` needs the `notify` feature.
#[cfg(not(feature = "notify"))]
pub fn test(_cli: &crate::cli::Cli, _out: &Out, _path: &Path) -> Result<u8> {
    Err(Failure::input("notify test needs the `notify` feature: cargo run --release --features notify --example controller -- ..."))
}

/// `simulate --notify`: the run on a simulated clock, its notifications
/// (with the channels that would get each) as JSON lines; nothing is sent.
pub fn simulate(
    out: &Out,
    config: &Path,
    plan: Plan,
    scenario: Scenario,
    tick: Duration,
    auto_signoff: bool,
) -> Result<u8> {
    let config = read_config(config)?;
    let clock = ManualClock::new(scenario.start);
    let state = RolloutState::new("phase_4_deployment", plan, scenario.start);
    let mut engine = Controller::in_memory(
        state,
        Box::new(scenario.gate(Duration::from_secs(300))),
        clock.clone(),
    );
    let mut options = RunOptions::simulated(tick).until(scenario.start + scenario.duration);
    options.auto_signoff = auto_signoff;
    options.wait_for_resume = true;
    schedule(&mut options, Some(&config));
    let end = engine.run(&options, &StopFlag::default(), &mut |_| {});
    let channels = config.channels();
    let mut lines = String::new();
    for event in engine.notifications() {
        let to: Vec<&String> = channels
            .iter()
            .filter(|c| ChannelKind::of(c).is_some_and(|k| k.wants(event)))
            .collect();
        let line = json!({ "channels": to, "event": event });
        lines.push_str(&line.to_string());
        lines.push('\n');
    }
    out.raw(&lines);
    end.map_err(Failure::from)?;
    let phase = engine.state().phase;
    tracing::info!(
        "simulation: {} at {} after {}, {} notifications",
        phase,
        engine.state().percentage,
        genesis_flags::rollout::format_duration(clock.now().since(scenario.start)),
        engine.notifications().len()
    );
    Ok(u8::from(matches!(phase, Phase::RolledBack | Phase::Paused)))
}
