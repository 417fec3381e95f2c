//! Output: results on standard output (text or one JSON object), logs and
//! errors on standard error (errors as JSON on standard output under
//! `--output json`). A closed pipe ends the output quietly, never a panic.

use std::cell::Cell;
use std::fmt::{self, Display};
use std::io::Write;
use std::path::Path;

use genesis_flags::rollout::{CheckKind, ControllerError, Verdict, Verdicts};
use serde::Serialize;

use genesis_flags::rollout::RunEvent;
use serde_json::json;

use crate::cli::{Cli, LogFormat, Output};

/// A failure: the message (one problem per line) and the exit code.
#[derive(Debug)]
pub struct Failure {
    pub message: String,
    pub code: u8,
}

impl Failure {
    /// Bad input or an unusable setup: exit 2.
    pub fn input(message: impl Into<String>) -> Self {
        Failure {
            message: message.into(),
            code: 2,
        }
    }

    /// Something changed, then the command could not finish or continue:
    /// exit 3 (see the README's exit codes).
    pub fn after_change(message: impl Into<String>) -> Self {
        Failure {
            message: message.into(),
            code: 3,
        }
    }

    /// The same failure, naming the file it came from.
    pub fn context(mut self, path: &Path) -> Self {
        let shown = path.display().to_string();
        if !self.message.contains(&shown) {
            self.message = format!("{shown}: {}", self.message);
        }
        self
    }
}

impl From<ControllerError> for Failure {
    fn from(e: ControllerError) -> Self {
        // A breach found by a safe deploy or a refused request about health
        // is "not healthy" (1); everything else changed nothing (2).
        Failure {
            code: if e.is_unhealthy() { 1 } else { 2 },
            message: e.to_string(),
        }
    }
}

macro_rules! input_errors {
    ($($t:ty),*) => {$(
        impl From<$t> for Failure {
            fn from(e: $t) -> Self {
                Failure::input(e.to_string())
            }
        }
    )*};
}
input_errors!(
    genesis_flags::rollout::StateError,
    genesis_flags::rollout::PlanError,
    genesis_flags::rollout::simulation::ScenarioError,
    genesis_flags::rollout::notify::NotifyError
);
#[cfg(feature = "prometheus")]
input_errors!(genesis_flags::rollout::prometheus::GateError);

/// Where results go.
pub struct Out {
    format: Output,
    closed: Cell<bool>,
}

impl Out {
    pub fn new(format: Output) -> Out {
        Out {
            format,
            closed: Cell::new(false),
        }
    }

    fn write(&self, text: &str) {
        if self.closed.get() {
            return;
        }
        let mut stdout = std::io::stdout().lock();
        if writeln!(stdout, "{text}")
            .and_then(|()| stdout.flush())
            .is_err()
        {
            // A closed pipe (`| head`): stop writing, keep working.
            self.closed.set(true);
        }
    }

    /// One result: `text` for people, `value` as one JSON line.
    pub fn emit(&self, text: &dyn Display, value: &impl Serialize) {
        match self.format {
            Output::Text => self.write(&text.to_string()),
            Output::Json => match serde_json::to_string(value) {
                Ok(line) => self.write(&line),
                Err(e) => self.write(&serde_json::json!({ "error": e.to_string() }).to_string()),
            },
        }
    }

    /// Raw text (already formatted), whatever the output format.
    pub fn raw(&self, text: &str) {
        self.write(text.trim_end_matches('\n'));
    }

    /// A failure: `error: ...` lines on standard error, or a JSON object with
    /// `error` (and `problems`, one per line) under `--output json`.
    pub fn fail(&self, f: &Failure) {
        match self.format {
            Output::Text => {
                let _ = writeln!(std::io::stderr(), "error: {}", f.message);
            }
            Output::Json => {
                let mut lines = f.message.lines().map(str::trim);
                let first = lines.next().unwrap_or_default().trim_end_matches(':');
                let problems: Vec<&str> = lines.filter(|l| !l.is_empty()).collect();
                let mut value = serde_json::json!({ "error": first, "exit_code": f.code });
                if !problems.is_empty() {
                    value["problems"] = serde_json::json!(problems);
                }
                self.write(&value.to_string());
            }
        }
    }
}

/// Logs to standard error; `--quiet` keeps warnings and errors only.
pub fn init_logs(format: LogFormat, quiet: bool) {
    let level = if quiet {
        tracing::Level::WARN
    } else {
        tracing::Level::INFO
    };
    let logs = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(level)
        .with_target(false);
    match format {
        LogFormat::Human => logs.with_ansi(false).init(),
        LogFormat::Json => logs.json().init(),
    }
}

/// Each check's verdict and value, on one line.
pub fn checks_line(v: &Verdicts) -> String {
    v.checks()
        .map(|c| match c.value {
            Some(value) => format!("{} {} {value:.3}", c.check, c.verdict),
            None => format!("{} {}", c.check, c.verdict),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// One row of `health-check`.
#[derive(Debug, Serialize)]
pub struct CheckRow {
    pub check: CheckKind,
    pub verdict: Verdict,
    pub pass: bool,
    pub value: Option<f64>,
    pub threshold: Option<f64>,
    pub detail: String,
    pub query: String,
}

impl Display for CheckRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let figure = |v: Option<f64>| v.map_or_else(|| "null".into(), |v| v.to_string());
        write!(
            f,
            "{:<5} {:<16} {:<8} value {} threshold {}  {}  [{}]",
            if self.pass { "PASS" } else { "FAIL" },
            self.check.to_string(),
            self.verdict.to_string(),
            figure(self.value),
            figure(self.threshold),
            self.detail,
            self.query
        )
    }
}

/// What opening the engine found and repaired.
pub fn log_open_report(report: &genesis_flags::rollout::controller::OpenReport) {
    for path in &report.swept {
        tracing::info!("swept {}", path.display());
    }
    if report.recovered_records > 0 {
        tracing::warn!(
            "finished a change committed before a crash: {} audit records appended",
            report.recovered_records
        );
    }
    if report.recovered_events > 0 {
        tracing::warn!(
            "finished a change committed before a crash: {} notification events queued",
            report.recovered_events
        );
    }
    if let Some((found, written)) = report.reconciled {
        tracing::warn!("reconciled: the flags file said {found}; rewrote it to {written}");
    }
    for note in &report.notes {
        tracing::warn!("{note}");
    }
    for pending in &report.pending {
        tracing::error!("USERS STILL EXPOSED: {pending}");
    }
}

/// Per-tick progress to the log; decisions other than hold, and operator
/// requests, also to standard output.
pub fn log_event(cli: &Cli, out: &Out, event: &RunEvent) {
    match event {
        RunEvent::Tick(t) => {
            let d = &t.decision;
            let checks = checks_line(&d.verdicts);
            if !cli.quiet {
                tracing::info!(
                    "tick {} stage {} ({}) {}: {checks} — {}",
                    d.at,
                    d.stage,
                    d.percentage,
                    d.action.name(),
                    d.explanation
                );
            }
            for p in &t.commit.pending {
                tracing::error!("pending: {p}");
            }
            if d.action != genesis_flags::rollout::Action::Hold {
                out.emit(
                    &format!(
                        "{}  {:<9} stage {} ({})  {}",
                        d.at,
                        d.action.name(),
                        d.stage,
                        d.percentage,
                        d.explanation
                    ),
                    &json!({ "at": d.at, "decision": d.action.name(), "stage": d.stage,
                             "percentage": d.percentage.as_percent(), "why": d.explanation.message }),
                );
            }
        }
        RunEvent::Operation {
            operation,
            by,
            outcome,
        } => match outcome {
            Ok(a) => tracing::info!(
                "{} by {by}: stage {} at {}: {}",
                operation.name(),
                a.entry.stage,
                a.entry.percentage,
                a.entry.why
            ),
            Err(e) => tracing::warn!("{} by {by} refused: {e}", operation.name()),
        },
        RunEvent::Publish {
            percentage,
            outcome,
        } => match outcome {
            Ok(notes) => {
                tracing::warn!("the flags file now shows {percentage}: published after a failure");
                for n in notes {
                    tracing::warn!("{n}");
                }
            }
            Err(e) => tracing::error!(
                "USERS STILL EXPOSED: the flags file does not show {percentage} yet: {e}; retrying"
            ),
        },
        RunEvent::RequestRefused { reason } => {
            tracing::error!("operator request refused: {reason}")
        }
        _ => {}
    }
}
