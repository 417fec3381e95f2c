//! Command-line interface (clap derive).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Drives a genesis-flags staged rollout: deploy, watch, roll back, simulate.
#[derive(Debug, Parser)]
#[command(name = "controller", version, about)]
pub struct Cli {
    /// The rollout state file.
    #[arg(long, global = true, default_value = "rollout-state.json")]
    pub state: PathBuf,
    /// Output format.
    #[arg(long, global = true, value_enum, default_value_t = Output::Text)]
    pub output: Output,
    /// Log format (logs go to standard error).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,
    /// Log only warnings and errors (no start line, no per-tick lines).
    #[arg(long, global = true)]
    pub quiet: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Log formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One readable line per event.
    Human,
    /// One JSON object per event.
    Json,
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// For people.
    Text,
    /// One JSON object.
    Json,
}

/// Notification options of the commands that change a rollout.
#[derive(Debug, Clone, Args)]
pub struct NotifyArgs {
    /// Notify these channels (a JSON file: webhooks, slack, pagerduty,
    /// email, delivery) of what this command changes (feature `notify`).
    #[arg(long, value_name = "FILE")]
    pub notify: Option<PathBuf>,
    /// How long the command waits for its notifications before it exits;
    /// what is still pending goes out at the next start with --notify.
    #[arg(long, default_value = "10s", value_name = "DURATION")]
    pub notify_wait: String,
}

/// Watching a running rollout: metrics and the status page.
#[derive(Debug, Clone, Default, Args)]
pub struct ObserveArgs {
    /// Serve the rollout's metrics (Prometheus text format) at /metrics on
    /// this address: HOST:PORT, or PORT alone for 127.0.0.1:PORT.
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<String>,
    /// Write the same metrics to this file (atomically) after every tick
    /// and command, for node-exporter's textfile collector.
    #[arg(long, value_name = "PATH")]
    pub metrics_textfile: Option<PathBuf>,
    /// Serve the status page (/) and its API (/api/v1/...) on this address:
    /// HOST:PORT, or PORT alone for 127.0.0.1:PORT.
    #[arg(long, value_name = "ADDR")]
    pub ui_listen: Option<String>,
    /// The bearer token (first line of the file, 16 characters or more)
    /// that allows the page's actions; without it the page is read-only.
    #[arg(long, value_name = "PATH", requires = "ui_listen")]
    pub ui_token_file: Option<PathBuf>,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start a rollout at 0% for a rollout of a flags file, or write the Genesis flag set.
    Init {
        /// The flags file (a valid genesis-flags config).
        #[arg(long, required_unless_present = "example_flags")]
        flags: Option<PathBuf>,
        /// The rollout id in the flags file.
        #[arg(long, required_unless_present = "example_flags")]
        rollout: Option<String>,
        /// A plan file (default: the six-day plan).
        #[arg(long)]
        plan: Option<PathBuf>,
        /// Write the Genesis flag set (examples/config/genesis.json) to this file and stop.
        #[arg(long, conflicts_with_all = ["flags", "rollout", "plan"])]
        example_flags: Option<PathBuf>,
        /// Replace an existing state file.
        #[arg(long)]
        force: bool,
    },
    /// Where the rollout stands.
    Status,
    /// Move to the next stage now, skipping the rest of the soak.
    Promote {
        /// Why.
        #[arg(long, default_value = "promoted by hand")]
        reason: String,
        /// Promote only from this stage (default: the stage `status` shows
        /// now); refused if the rollout has moved meanwhile, so two
        /// operators never skip a stage.
        #[arg(long)]
        from_stage: Option<usize>,
        /// Notifications.
        #[command(flatten)]
        notify: NotifyArgs,
    },
    /// Pause for a person; the percentage stays.
    Pause {
        /// Why.
        #[arg(long)]
        reason: String,
        /// Notifications.
        #[command(flatten)]
        notify: NotifyArgs,
    },
    /// Resume a paused rollout, or restart a rolled-back one from stage 1.
    Resume {
        /// Why.
        #[arg(long, default_value = "resumed by hand")]
        reason: String,
        /// Notifications.
        #[command(flatten)]
        notify: NotifyArgs,
    },
    /// Roll back to 0% now.
    Rollback {
        /// Why.
        #[arg(long)]
        reason: String,
        /// Notifications.
        #[command(flatten)]
        notify: NotifyArgs,
    },
    /// Record a sign-off.
    Signoff {
        /// The role (deployment_lead, on_call_engineer, security_lead).
        #[arg(long)]
        role: String,
        /// Who signs.
        #[arg(long)]
        name: String,
        /// Notifications.
        #[command(flatten)]
        notify: NotifyArgs,
    },
    /// The daily stakeholder update.
    Report,
    /// Run a whole plan on a simulated clock against a scenario.
    Simulate {
        /// The scenario file (default: a healthy week).
        #[arg(long)]
        scenario: Option<PathBuf>,
        /// A plan file (default: the six-day plan).
        #[arg(long)]
        plan: Option<PathBuf>,
        /// Read metrics from this Prometheus (holding the scenario's samples)
        /// instead of the scenario itself.
        #[arg(long)]
        prometheus: Option<String>,
        /// Write an SVG chart of the run.
        #[arg(long)]
        chart: Option<PathBuf>,
        /// Do not give the sign-offs automatically at the end.
        #[arg(long)]
        no_signoff: bool,
        /// Time between ticks (1s to 1d).
        #[arg(long, default_value = "1m")]
        tick: String,
        /// Write the notifications the run would send to these channels, as
        /// JSON lines on standard output, instead of the run's summary
        /// (nothing is sent).
        #[arg(long, value_name = "FILE")]
        notify: Option<PathBuf>,
    },
    /// Move to the next stage, write the flags file, then watch the gate.
    Deploy {
        /// Only `safe`: the next stage of the plan, nothing else.
        #[arg(long, value_enum, default_value_t = Strategy::Safe)]
        strategy: Strategy,
        /// Seconds to watch the gate after the move (at most 7 days).
        #[arg(long, default_value_t = 300)]
        wait: u64,
        /// The percentage to move to (must be the next stage's with `safe`).
        #[arg(long)]
        target_percentage: f64,
        /// The gate config (default: the Genesis queries on 127.0.0.1:9090).
        #[arg(long)]
        gate: Option<PathBuf>,
        /// Time between gate checks while waiting.
        #[arg(long, default_value = "15s")]
        tick: String,
        /// Notifications.
        #[command(flatten)]
        notify: NotifyArgs,
        /// Metrics and the status page while waiting.
        #[command(flatten)]
        observe: ObserveArgs,
    },
    /// Evaluate the gate once now and print every check.
    HealthCheck {
        /// The gate config.
        #[arg(long)]
        gate: Option<PathBuf>,
    },
    /// Autopilot: tick, decide, apply, log, until completed, rolled back or paused.
    Run {
        /// The gate config.
        #[arg(long)]
        gate: Option<PathBuf>,
        /// Time between ticks.
        #[arg(long, default_value = "60s")]
        tick: String,
        /// Read a scenario instead of Prometheus, on a simulated clock that
        /// moves one tick per tick (for drills and tests).
        #[arg(long, hide = true)]
        scenario: Option<PathBuf>,
        /// With --scenario: read it on the real clock, its offset 10m being
        /// the moment `run` starts (for live drills and tests).
        #[arg(long, hide = true, requires = "scenario")]
        realtime: bool,
        /// Stay through a rollback or a pause: send incident updates
        /// (hourly by default) and go on ticking after a `resume`.
        #[arg(long)]
        wait_for_resume: bool,
        /// Notifications.
        #[command(flatten)]
        notify: NotifyArgs,
        /// Metrics and the status page.
        #[command(flatten)]
        observe: ObserveArgs,
    },
    /// Notification tools.
    Notify {
        /// What to do.
        #[command(subcommand)]
        command: NotifyCommand,
    },
    /// The post-incident timeline (Markdown) of the last rollback or pause,
    /// from the audit log and the outbox.
    IncidentReport,
    /// Scenario tools.
    Scenario {
        /// What to do with the scenario.
        #[command(subcommand)]
        command: ScenarioCommand,
    },
}

/// Deployment strategies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Strategy {
    /// Only to the next stage of the plan.
    Safe,
}

/// Scenario tools.
#[derive(Debug, Subcommand)]
pub enum ScenarioCommand {
    /// Render a scenario as OpenMetrics with timestamps, for `promtool tsdb
    /// create-blocks-from openmetrics`.
    Openmetrics {
        /// The scenario file.
        #[arg(long)]
        scenario: PathBuf,
        /// Override the scenario's start (RFC 3339).
        #[arg(long)]
        start: Option<String>,
    },
}

/// Notification tools.
#[derive(Debug, Subcommand)]
pub enum NotifyCommand {
    /// Send a test event to every channel now and print each result.
    Test {
        /// The notification file.
        #[arg(long, value_name = "FILE")]
        notify: PathBuf,
    },
}
