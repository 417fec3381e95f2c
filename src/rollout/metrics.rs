//! The Prometheus metrics of a running rollout, computed by the crate and
//! rendered in the Prometheus text format (version 0.0.4) without a
//! dependency: a server (an HTTP listener, node-exporter's textfile
//! collector) only carries the text.
//!
//! ```text
//! RolloutMetrics::observe(event)            every RunEvent the engine hands out:
//!                                           transitions, rollbacks by reason,
//!                                           operator commands by result
//! GateMeter / MeteredGate<G>                gate query errors and duration
//! ChannelFigures::from_outbox(outbox)       notifications by channel and result
//! RolloutMetrics::render(state, now, notes) the families of the current state:
//!                                           only its rollout, so a finished or
//!                                           re-initialised one leaves no series
//! ```
//!
//! Rules of the families (the names and labels are a contract that alert
//! rules and dashboards rely on):
//!
//! 1. Every family has `# HELP` and `# TYPE`; counters end in `_total`;
//!    values are in base units (ratios, seconds, counts).
//! 2. Series are pre-initialised: every phase, verdict, transition kind,
//!    rollback reason and operator command is present from the first render.
//! 3. An enum is one series per value, 1 for the current one, 0 for the
//!    others.
//! 4. Only the rollout of the state rendered is labelled: counters of
//!    another rollout id (a re-initialised state) are dropped.
//!
//! The families and their meaning are listed in [`Family`].

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::controller::{Operation, RunEvent};
use super::notify::{DeliveryOutcome, Outbox};
use super::{
    Action, CheckKind, CheckResult, HealthGate, Observation, Phase, Reading, RolloutState,
    Timestamp, Verdict,
};

/// A metric family of the contract: its name, type and meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// `genesis_rollout_build_info` (gauge): The controller's version (always 1).
    BuildInfo,
    /// `genesis_rollout_info` (gauge): The rollout the controller drives and its plan (always 1).
    Info,
    /// `genesis_rollout_phase` (gauge): The rollout's phase: 1 for the current one, 0 for the others.
    Phase,
    /// `genesis_rollout_target_ratio` (gauge): The percentage the controller published, as a ratio (0..1).
    TargetRatio,
    /// `genesis_rollout_stage` (gauge): Index of the current stage (0 before the first and after a rollback).
    Stage,
    /// `genesis_rollout_stages` (gauge): Stages in the plan.
    Stages,
    /// `genesis_rollout_stage_started_timestamp_seconds` (gauge): When the current stage (or phase) began, Unix seconds.
    StageStartedTimestampSeconds,
    /// `genesis_rollout_soak_end_timestamp_seconds` (gauge): When the current stage's soak ends, Unix seconds (0 when not soaking).
    SoakEndTimestampSeconds,
    /// `genesis_rollout_expected_completion_timestamp_seconds` (gauge): When a healthy rollout completes, Unix seconds (0 when rolled back or paused).
    ExpectedCompletionTimestampSeconds,
    /// `genesis_rollout_transitions_total` (counter): Transitions applied by this controller, by kind.
    TransitionsTotal,
    /// `genesis_rollout_rollbacks_total` (counter): Rollbacks applied by this controller, by reason.
    RollbacksTotal,
    /// `genesis_rollout_check_verdict` (gauge): Each check's verdict at the last tick: 1 for the current one, 0 for the others (all 0 when not judged).
    CheckVerdict,
    /// `genesis_rollout_check_value` (gauge): Each check's value at the last tick, in its base unit (ratio, seconds, count, e-value).
    CheckValue,
    /// `genesis_rollout_check_threshold` (gauge): Each check's rollback threshold in force, in the unit of its value.
    CheckThreshold,
    /// `genesis_rollout_cohort_evalue` (gauge): The in-vs-out cohort test's e-value this stage (evidence that the flagged users fare worse).
    CohortEvalue,
    /// `genesis_rollout_cohort_evalue_threshold` (gauge): The e-value over which the cohort test rolls back.
    CohortEvalueThreshold,
    /// `genesis_rollout_fleet_instances` (gauge): Instances reporting the target percentage (converged) or another (lagging).
    FleetInstances,
    /// `genesis_rollout_operator_commands_total` (counter): Operator commands served by this controller, by command and result.
    OperatorCommandsTotal,
    /// `genesis_rollout_notifications_total` (counter): Notification deliveries, by channel and result (failed counts failed attempts).
    NotificationsTotal,
    /// `genesis_rollout_notifications_pending` (gauge): Notification events not yet delivered, by channel.
    NotificationsPending,
    /// `genesis_rollout_gate_query_errors_total` (counter): Health-gate readings that failed (a query error or timeout).
    GateQueryErrorsTotal,
    /// `genesis_rollout_gate_duration_seconds` (histogram): Time one health-gate observation took.
    GateDurationSeconds,
    /// `genesis_rollout_last_tick_timestamp_seconds` (gauge): When the last tick was judged, Unix seconds (0 before the first).
    LastTickTimestampSeconds,
    /// `genesis_rollout_observed_ratio` (gauge): The lowest percentage an instance of the fleet applies, as a ratio (0..1), at the last observation.
    ObservedRatio,
}

impl Family {
    /// Every family, in the rendering order.
    pub const ALL: [Family; 24] = [
        Family::BuildInfo,
        Family::Info,
        Family::Phase,
        Family::TargetRatio,
        Family::Stage,
        Family::Stages,
        Family::StageStartedTimestampSeconds,
        Family::SoakEndTimestampSeconds,
        Family::ExpectedCompletionTimestampSeconds,
        Family::TransitionsTotal,
        Family::RollbacksTotal,
        Family::CheckVerdict,
        Family::CheckValue,
        Family::CheckThreshold,
        Family::CohortEvalue,
        Family::CohortEvalueThreshold,
        Family::FleetInstances,
        Family::OperatorCommandsTotal,
        Family::NotificationsTotal,
        Family::NotificationsPending,
        Family::GateQueryErrorsTotal,
        Family::GateDurationSeconds,
        Family::LastTickTimestampSeconds,
        Family::ObservedRatio,
    ];

    /// The family's name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Family::BuildInfo => "genesis_rollout_build_info",
            Family::Info => "genesis_rollout_info",
            Family::Phase => "genesis_rollout_phase",
            Family::TargetRatio => "genesis_rollout_target_ratio",
            Family::Stage => "genesis_rollout_stage",
            Family::Stages => "genesis_rollout_stages",
            Family::StageStartedTimestampSeconds => {
                "genesis_rollout_stage_started_timestamp_seconds"
            }
            Family::SoakEndTimestampSeconds => "genesis_rollout_soak_end_timestamp_seconds",
            Family::ExpectedCompletionTimestampSeconds => {
                "genesis_rollout_expected_completion_timestamp_seconds"
            }
            Family::TransitionsTotal => "genesis_rollout_transitions_total",
            Family::RollbacksTotal => "genesis_rollout_rollbacks_total",
            Family::CheckVerdict => "genesis_rollout_check_verdict",
            Family::CheckValue => "genesis_rollout_check_value",
            Family::CheckThreshold => "genesis_rollout_check_threshold",
            Family::CohortEvalue => "genesis_rollout_cohort_evalue",
            Family::CohortEvalueThreshold => "genesis_rollout_cohort_evalue_threshold",
            Family::FleetInstances => "genesis_rollout_fleet_instances",
            Family::OperatorCommandsTotal => "genesis_rollout_operator_commands_total",
            Family::NotificationsTotal => "genesis_rollout_notifications_total",
            Family::NotificationsPending => "genesis_rollout_notifications_pending",
            Family::GateQueryErrorsTotal => "genesis_rollout_gate_query_errors_total",
            Family::GateDurationSeconds => "genesis_rollout_gate_duration_seconds",
            Family::LastTickTimestampSeconds => "genesis_rollout_last_tick_timestamp_seconds",
            Family::ObservedRatio => "genesis_rollout_observed_ratio",
        }
    }

    /// Its type: `gauge`, `counter` or `histogram`.
    #[must_use]
    pub fn kind(self) -> &'static str {
        match self {
            Family::BuildInfo
            | Family::Info
            | Family::Phase
            | Family::TargetRatio
            | Family::Stage
            | Family::Stages
            | Family::StageStartedTimestampSeconds
            | Family::SoakEndTimestampSeconds
            | Family::ExpectedCompletionTimestampSeconds
            | Family::CheckVerdict
            | Family::CheckValue
            | Family::CheckThreshold
            | Family::CohortEvalue
            | Family::CohortEvalueThreshold
            | Family::FleetInstances
            | Family::NotificationsPending
            | Family::LastTickTimestampSeconds
            | Family::ObservedRatio => "gauge",
            Family::TransitionsTotal
            | Family::RollbacksTotal
            | Family::OperatorCommandsTotal
            | Family::NotificationsTotal
            | Family::GateQueryErrorsTotal => "counter",
            Family::GateDurationSeconds => "histogram",
        }
    }

    /// Its meaning (the `# HELP` line).
    #[must_use]
    pub fn help(self) -> &'static str {
        match self {
            Family::BuildInfo => "The controller's version (always 1).",
            Family::Info => "The rollout the controller drives and its plan (always 1).",
            Family::Phase => "The rollout's phase: 1 for the current one, 0 for the others.",
            Family::TargetRatio => "The percentage the controller published, as a ratio (0..1).",
            Family::Stage => "Index of the current stage (0 before the first and after a rollback).",
            Family::Stages => "Stages in the plan.",
            Family::StageStartedTimestampSeconds => "When the current stage (or phase) began, Unix seconds.",
            Family::SoakEndTimestampSeconds => "When the current stage's soak ends, Unix seconds (0 when not soaking).",
            Family::ExpectedCompletionTimestampSeconds => "When a healthy rollout completes, Unix seconds (0 when rolled back or paused).",
            Family::TransitionsTotal => "Transitions applied by this controller, by kind.",
            Family::RollbacksTotal => "Rollbacks applied by this controller, by reason.",
            Family::CheckVerdict => "Each check's verdict at the last tick: 1 for the current one, 0 for the others (all 0 when not judged).",
            Family::CheckValue => "Each check's value at the last tick, in its base unit (ratio, seconds, count, e-value).",
            Family::CheckThreshold => "Each check's rollback threshold in force, in the unit of its value.",
            Family::CohortEvalue => "The in-vs-out cohort test's e-value this stage (evidence that the flagged users fare worse).",
            Family::CohortEvalueThreshold => "The e-value over which the cohort test rolls back.",
            Family::FleetInstances => "Instances reporting the target percentage (converged) or another (lagging).",
            Family::OperatorCommandsTotal => "Operator commands served by this controller, by command and result.",
            Family::NotificationsTotal => "Notification deliveries, by channel and result (failed counts failed attempts).",
            Family::NotificationsPending => "Notification events not yet delivered, by channel.",
            Family::GateQueryErrorsTotal => "Health-gate readings that failed (a query error or timeout).",
            Family::GateDurationSeconds => "Time one health-gate observation took.",
            Family::LastTickTimestampSeconds => "When the last tick was judged, Unix seconds (0 before the first).",
            Family::ObservedRatio => "The lowest percentage an instance of the fleet applies, as a ratio (0..1), at the last observation.",
        }
    }
}

/// The phases, in the order they are rendered.
pub const PHASES: [Phase; 7] = [
    Phase::Ready,
    Phase::Soaking,
    Phase::Validating,
    Phase::AwaitingSignoff,
    Phase::Paused,
    Phase::RolledBack,
    Phase::Completed,
];

/// The checks, in the order they are rendered.
pub const CHECKS: [CheckKind; 10] = [
    CheckKind::ErrorRate,
    CheckKind::P95Latency,
    CheckKind::Health,
    CheckKind::CriticalAlerts,
    CheckKind::InCohortErrorRate,
    CheckKind::InCohortP95Latency,
    CheckKind::CohortErrorExcess,
    CheckKind::CohortLatencyExcess,
    CheckKind::Fleet,
    CheckKind::CohortSample,
];

const VERDICTS: [Verdict; 4] = [
    Verdict::Pass,
    Verdict::Breach,
    Verdict::NoData,
    Verdict::Error,
];

/// The kinds of transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Transition {
    /// To the next stage (a tick, a start or a promote).
    Advance,
    /// To 0%.
    Rollback,
    /// Stopped for a person.
    Pause,
    /// Resumed by a person.
    Resume,
    /// Done.
    Complete,
}

impl Transition {
    const ALL: [Transition; 5] = [
        Transition::Advance,
        Transition::Rollback,
        Transition::Pause,
        Transition::Resume,
        Transition::Complete,
    ];

    /// The label value.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Transition::Advance => "advance",
            Transition::Rollback => "rollback",
            Transition::Pause => "pause",
            Transition::Resume => "resume",
            Transition::Complete => "complete",
        }
    }
}

/// Why a rollout rolled back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RollbackReason {
    /// A check breached for the sustained time (error rate, latency, the
    /// cohort tests, critical alerts).
    Breach,
    /// Health checks failed on consecutive ticks.
    Health,
    /// A person rolled back.
    Operator,
}

impl RollbackReason {
    const ALL: [RollbackReason; 3] = [
        RollbackReason::Breach,
        RollbackReason::Health,
        RollbackReason::Operator,
    ];

    /// The label value.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            RollbackReason::Breach => "breach",
            RollbackReason::Health => "health",
            RollbackReason::Operator => "operator",
        }
    }
}

const COMMANDS: [&str; 6] = ["start", "promote", "pause", "resume", "rollback", "signoff"];

/// The snake-case name of a check, as in the `check` label.
#[must_use]
pub fn check_name(kind: CheckKind) -> &'static str {
    match kind {
        CheckKind::ErrorRate => "error_rate",
        CheckKind::P95Latency => "p95_latency",
        CheckKind::Health => "health",
        CheckKind::CriticalAlerts => "critical_alerts",
        CheckKind::InCohortErrorRate => "in_cohort_error_rate",
        CheckKind::InCohortP95Latency => "in_cohort_p95_latency",
        CheckKind::CohortErrorExcess => "cohort_error_excess",
        CheckKind::CohortLatencyExcess => "cohort_latency_excess",
        CheckKind::Fleet => "fleet",
        CheckKind::CohortSample => "cohort_sample",
    }
}

/// A check's value (or threshold) in its base unit: the verdicts hold
/// error rates and shares in percent and latencies in ms.
#[must_use]
pub fn base_unit(kind: CheckKind, value: f64) -> f64 {
    match kind {
        CheckKind::ErrorRate | CheckKind::InCohortErrorRate | CheckKind::Fleet => value / 100.0,
        CheckKind::P95Latency | CheckKind::InCohortP95Latency => value / 1000.0,
        CheckKind::Health
        | CheckKind::CriticalAlerts
        | CheckKind::CohortErrorExcess
        | CheckKind::CohortLatencyExcess
        | CheckKind::CohortSample => value,
    }
}

/// The counters of one rollout id.
#[derive(Debug, Clone, Default)]
struct Counters {
    transitions: BTreeMap<Transition, u64>,
    rollbacks: BTreeMap<RollbackReason, u64>,
    /// `(command, applied)`.
    commands: BTreeMap<(&'static str, bool), u64>,
}

/// What the engine did, counted from its [`RunEvent`]s, rendered with the
/// state's gauges.
#[derive(Debug, Clone)]
pub struct RolloutMetrics {
    version: String,
    /// The rollout the counters belong to.
    rollout: Option<String>,
    counters: Counters,
    gate: GateMeter,
}

impl RolloutMetrics {
    /// Metrics of a controller of `version`, its gate measured by `gate`.
    #[must_use]
    pub fn new(version: &str, gate: GateMeter) -> RolloutMetrics {
        RolloutMetrics {
            version: version.to_owned(),
            rollout: None,
            counters: Counters::default(),
            gate,
        }
    }

    /// Counts what `event` of the rollout `rollout` did.
    pub fn observe(&mut self, rollout: &str, event: &RunEvent) {
        if self.rollout.as_deref() != Some(rollout) {
            self.rollout = Some(rollout.to_owned());
            self.counters = Counters::default();
        }
        let c = &mut self.counters;
        match event {
            RunEvent::Tick(report) => {
                let (transition, reason) = match &report.decision.action {
                    Action::Hold => (None, None),
                    Action::Advance { .. } => (Some(Transition::Advance), None),
                    Action::Pause { .. } => (Some(Transition::Pause), None),
                    Action::Complete => (Some(Transition::Complete), None),
                    Action::Rollback { .. } => (
                        Some(Transition::Rollback),
                        Some(
                            if report.decision.explanation.check == Some(CheckKind::Health) {
                                RollbackReason::Health
                            } else {
                                RollbackReason::Breach
                            },
                        ),
                    ),
                };
                if let Some(t) = transition {
                    *c.transitions.entry(t).or_default() += 1;
                }
                if let Some(r) = reason {
                    *c.rollbacks.entry(r).or_default() += 1;
                }
            }
            RunEvent::Operation {
                operation, outcome, ..
            } => {
                let applied = outcome.is_ok();
                *c.commands.entry((operation.name(), applied)).or_default() += 1;
                if !applied {
                    return;
                }
                let transition = match operation {
                    Operation::Start | Operation::Promote { .. } => Some(Transition::Advance),
                    Operation::Pause { .. } => Some(Transition::Pause),
                    Operation::Resume { .. } => Some(Transition::Resume),
                    Operation::Rollback { .. } => Some(Transition::Rollback),
                    Operation::SignOff { .. } => None,
                };
                if let Some(t) = transition {
                    *c.transitions.entry(t).or_default() += 1;
                }
                if matches!(operation, Operation::Rollback { .. }) {
                    *c.rollbacks.entry(RollbackReason::Operator).or_default() += 1;
                }
            }
            // Publishing retries and refused request files are not
            // transitions; they are in the log.
            _ => {}
        }
    }

    /// The families in the Prometheus text format: `state` as of `now`,
    /// the counters of its rollout, `notifications` per channel.
    #[must_use]
    pub fn render(
        &self,
        state: Option<&RolloutState>,
        now: Timestamp,
        notifications: &[ChannelFigures],
    ) -> String {
        let mut text = Text::default();
        for family in Family::ALL {
            let (name, kind, help) = (family.name(), family.kind(), family.help());
            let _ = writeln!(text.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
            match family {
                Family::BuildInfo => {
                    text.series(name, &[("version", &self.version)], 1.0);
                }
                Family::NotificationsTotal => {
                    for n in notifications {
                        for (result, v) in [
                            ("sent", n.sent),
                            ("failed", n.failed),
                            ("given_up", n.given_up),
                        ] {
                            text.series(
                                name,
                                &[("channel", &n.channel), ("result", result)],
                                v as f64,
                            );
                        }
                    }
                }
                Family::NotificationsPending => {
                    for n in notifications {
                        text.series(name, &[("channel", &n.channel)], n.pending as f64);
                    }
                }
                Family::GateQueryErrorsTotal => {
                    let errors = self.gate.stats().errors;
                    text.series(name, &[], errors as f64);
                }
                Family::GateDurationSeconds => {
                    let stats = self.gate.stats();
                    for (bound, count) in GATE_BUCKETS.iter().zip(&stats.buckets) {
                        text.series(
                            &format!("{name}_bucket"),
                            &[("le", &number(*bound))],
                            *count as f64,
                        );
                    }
                    text.series(
                        &format!("{name}_bucket"),
                        &[("le", "+Inf")],
                        stats.count as f64,
                    );
                    text.series(&format!("{name}_sum"), &[], stats.sum_seconds);
                    text.series(&format!("{name}_count"), &[], stats.count as f64);
                }
                _ => {
                    if let Some(state) = state {
                        self.render_rollout(&mut text, family, state, now);
                    }
                }
            }
        }
        text.0
    }

    fn render_rollout(
        &self,
        text: &mut Text,
        family: Family,
        state: &RolloutState,
        now: Timestamp,
    ) {
        let name = family.name();
        let rollout = state.rollout.as_str();
        let r = ("rollout", rollout);
        let counters = if self.rollout.as_deref() == Some(rollout) {
            self.counters.clone()
        } else {
            Counters::default()
        };
        let verdicts: HashMap<CheckKind, &CheckResult> = state
            .last_verdicts
            .iter()
            .flat_map(|v| {
                [&v.error_rate, &v.p95, &v.health, &v.alerts]
                    .into_iter()
                    .chain(v.cohort.iter().flat_map(|c| c.all()))
            })
            .map(|c| (c.check, c))
            .collect();
        match family {
            Family::Info => text.series(name, &[r, ("plan", &state.plan.name)], 1.0),
            Family::Phase => {
                for phase in PHASES {
                    text.series(
                        name,
                        &[r, ("phase", phase.as_str())],
                        f64::from(u8::from(phase == state.phase)),
                    );
                }
            }
            Family::TargetRatio => {
                text.series(name, &[r], state.percentage.as_percent() / 100.0);
            }
            Family::Stage => text.series(name, &[r], state.stage as f64),
            Family::Stages => text.series(name, &[r], state.plan.stages.len() as f64),
            Family::StageStartedTimestampSeconds => {
                text.series(name, &[r], seconds(state.since));
            }
            Family::SoakEndTimestampSeconds => {
                let end = soak_end(state).map_or(0.0, seconds);
                text.series(name, &[r], end);
            }
            Family::ExpectedCompletionTimestampSeconds => {
                let at = expected_completion(state, now).map_or(0.0, seconds);
                text.series(name, &[r], at);
            }
            Family::TransitionsTotal => {
                for t in Transition::ALL {
                    let v = counters.transitions.get(&t).copied().unwrap_or(0);
                    text.series(name, &[r, ("kind", t.as_str())], v as f64);
                }
            }
            Family::RollbacksTotal => {
                for reason in RollbackReason::ALL {
                    let v = counters.rollbacks.get(&reason).copied().unwrap_or(0);
                    text.series(name, &[r, ("reason", reason.as_str())], v as f64);
                }
            }
            Family::CheckVerdict => {
                for kind in CHECKS {
                    let current = verdicts.get(&kind).map(|c| c.verdict);
                    for verdict in VERDICTS {
                        text.series(
                            name,
                            &[
                                r,
                                ("check", check_name(kind)),
                                ("verdict", &verdict.to_string()),
                            ],
                            f64::from(u8::from(current == Some(verdict))),
                        );
                    }
                }
            }
            Family::CheckValue | Family::CheckThreshold => {
                for kind in CHECKS {
                    let Some(c) = verdicts.get(&kind) else {
                        continue;
                    };
                    let v = if family == Family::CheckValue {
                        c.value
                    } else {
                        c.threshold
                    };
                    if let Some(v) = v.filter(|v| v.is_finite()) {
                        text.series(name, &[r, ("check", check_name(kind))], base_unit(kind, v));
                    }
                }
            }
            Family::CohortEvalue | Family::CohortEvalueThreshold => {
                for (metric, kind) in [
                    ("errors", CheckKind::CohortErrorExcess),
                    ("latency", CheckKind::CohortLatencyExcess),
                ] {
                    let Some(c) = verdicts.get(&kind) else {
                        continue;
                    };
                    let v = if family == Family::CohortEvalue {
                        c.value
                    } else {
                        c.threshold
                    };
                    if let Some(v) = v.filter(|v| v.is_finite()) {
                        text.series(name, &[r, ("metric", metric)], v);
                    }
                }
            }
            Family::FleetInstances => {
                if let Some(fleet) = self.gate.stats().fleet {
                    let target = state.percentage.as_percent();
                    let converged = fleet
                        .percents
                        .iter()
                        .filter(|p| (*p - target).abs() < 1e-4)
                        .count();
                    let lagging = fleet.percents.len() - converged;
                    text.series(name, &[r, ("state", "converged")], converged as f64);
                    text.series(name, &[r, ("state", "lagging")], lagging as f64);
                }
            }
            Family::OperatorCommandsTotal => {
                for command in COMMANDS {
                    for (result, applied) in [("applied", true), ("refused", false)] {
                        let v = counters
                            .commands
                            .get(&(command, applied))
                            .copied()
                            .unwrap_or(0);
                        text.series(
                            name,
                            &[r, ("command", command), ("result", result)],
                            v as f64,
                        );
                    }
                }
            }
            Family::LastTickTimestampSeconds => {
                text.series(name, &[r], state.last_tick.map_or(0.0, seconds));
            }
            Family::ObservedRatio => {
                let fleet = self.gate.stats().fleet;
                let lowest = fleet.and_then(|f| f.percents.into_iter().reduce(f64::min));
                if let Some(lowest) = lowest {
                    text.series(name, &[r], lowest / 100.0);
                }
            }
            // Not labelled by rollout: rendered by `render`.
            Family::BuildInfo
            | Family::NotificationsTotal
            | Family::NotificationsPending
            | Family::GateQueryErrorsTotal
            | Family::GateDurationSeconds => {}
        }
    }
}

/// When the current stage's soak ends, while soaking.
#[must_use]
pub fn soak_end(state: &RolloutState) -> Option<Timestamp> {
    let stage = state.current_stage()?;
    (state.phase == Phase::Soaking).then(|| state.since.saturating_add(stage.soak))
}

/// When a healthy rollout completes, as far as the plan says (the
/// remaining soaks, then the final window; the sign-offs counted as
/// instant): `None` when it is rolled back or paused.
#[must_use]
pub fn expected_completion(state: &RolloutState, now: Timestamp) -> Option<Timestamp> {
    let plan = &state.plan;
    let last = plan.stages.len();
    let validation = plan.validation.duration;
    let window_end = |from: Timestamp| from.saturating_add(validation);
    // The time from entering stage `s` (1-based) to the end.
    let from_stage = |s: usize| -> Duration {
        let before_last: Duration = plan
            .stages
            .iter()
            .enumerate()
            .filter(|(i, _)| i + 1 >= s && i + 1 < last)
            .map(|(_, st)| st.soak)
            .sum();
        let last_soak = plan.stages.last().map_or(Duration::ZERO, |st| st.soak);
        before_last + validation.max(last_soak)
    };
    match state.phase {
        Phase::Ready => Some(now.saturating_add(from_stage(1))),
        Phase::Soaking if state.stage == last => {
            let soak = soak_end(state).unwrap_or(now);
            let window = state.window_since.map_or(soak, window_end);
            Some(soak.max(window))
        }
        Phase::Soaking => Some(state.since.saturating_add(from_stage(state.stage))),
        Phase::Validating => Some(state.window_since.map_or(now, window_end).max(now)),
        Phase::AwaitingSignoff => Some(now),
        Phase::Completed => Some(state.since),
        Phase::Paused | Phase::RolledBack => None,
    }
}

fn seconds(t: Timestamp) -> f64 {
    t.unix_millis() as f64 / 1000.0
}

/// A sample value as the text format writes it.
fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

#[derive(Default)]
struct Text(String);

impl Text {
    fn series(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.0.push_str(name);
        if !labels.is_empty() {
            self.0.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.0.push(',');
                }
                let _ = write!(self.0, "{k}=\"{}\"", escape(v));
            }
            self.0.push('}');
        }
        let _ = writeln!(self.0, " {}", number(value));
    }
}

/// A label value escaped for the text format.
fn escape(v: &str) -> String {
    v.replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
}

/// The upper bounds of the gate duration histogram, in seconds.
pub const GATE_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The fleet as the last observation saw it (the gate is the rollout's).
#[derive(Debug, Clone, PartialEq)]
pub struct FleetSeen {
    /// The percentage each instance applies.
    pub percents: Vec<f64>,
}

/// The gate's figures so far.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GateStats {
    /// Failed readings (each query of an observation that failed).
    pub errors: u64,
    /// Observations per bucket of [`GATE_BUCKETS`] (cumulative).
    pub buckets: [u64; 12],
    /// Observations.
    pub count: u64,
    /// Their total duration.
    pub sum_seconds: f64,
    /// The fleet of the last observation that saw one.
    pub fleet: Option<FleetSeen>,
}

/// Where a [`MeteredGate`] records, shared with the metrics.
#[derive(Debug, Clone, Default)]
pub struct GateMeter(Arc<Mutex<GateStats>>);

impl GateMeter {
    /// The figures so far.
    #[must_use]
    pub fn stats(&self) -> GateStats {
        self.0.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Records one observation that took `took`.
    pub fn record(&self, observation: &Observation, took: Duration) {
        let Ok(mut s) = self.0.lock() else { return };
        let secs = took.as_secs_f64();
        s.count += 1;
        s.sum_seconds += secs;
        for (bound, count) in GATE_BUCKETS.iter().zip(s.buckets.iter_mut()) {
            if secs <= *bound {
                *count += 1;
            }
        }
        let o = observation;
        let failed = [
            matches!(o.error_rate, Reading::Failed(_)),
            matches!(o.p95_ms, Reading::Failed(_)),
            matches!(o.requests, Reading::Failed(_)),
            matches!(o.health, Reading::Failed(_)),
            matches!(o.critical_alerts, Reading::Failed(_)),
            matches!(o.cohorts, Reading::Failed(_)),
            matches!(&o.cohorts, Reading::Value(c) if matches!(c.fleet, Reading::Failed(_))),
        ];
        s.errors += failed.iter().filter(|f| **f).count() as u64;
        if let Reading::Value(c) = &o.cohorts {
            if let Reading::Value(f) = &c.fleet {
                s.fleet = Some(FleetSeen {
                    percents: f.percents(),
                });
            }
        }
    }
}

/// A gate whose every observation is timed and counted in a [`GateMeter`].
#[derive(Debug)]
pub struct MeteredGate<G> {
    gate: G,
    meter: GateMeter,
}

impl<G: HealthGate> MeteredGate<G> {
    /// `gate`, measured into `meter`.
    pub fn new(gate: G, meter: GateMeter) -> Self {
        MeteredGate { gate, meter }
    }
}

impl<G: HealthGate> HealthGate for MeteredGate<G> {
    fn observe(&mut self, at: Timestamp) -> Observation {
        let started = Instant::now();
        let observation = self.gate.observe(at);
        self.meter.record(&observation, started.elapsed());
        observation
    }
}

/// One notification channel's figures.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChannelFigures {
    /// The channel (`webhook:1`, `slack`, ...).
    pub channel: String,
    /// Events delivered.
    pub sent: u64,
    /// Failed attempts (of events delivered later or given up).
    pub failed: u64,
    /// Events given up.
    pub given_up: u64,
    /// Events not yet delivered.
    pub pending: u64,
}

impl ChannelFigures {
    /// The figures of every channel of `outbox` (its delivery log and
    /// cursors), plus `configured` channels with none yet, so that their
    /// series exist from the start.
    ///
    /// # Errors
    ///
    /// `NotifyError` when the outbox's delivery log or cursors cannot be read.
    pub fn from_outbox(
        outbox: &Outbox,
        configured: &[String],
    ) -> Result<Vec<ChannelFigures>, super::notify::NotifyError> {
        let mut by: BTreeMap<String, ChannelFigures> = configured
            .iter()
            .map(|c| {
                (
                    c.clone(),
                    ChannelFigures {
                        channel: c.clone(),
                        ..ChannelFigures::default()
                    },
                )
            })
            .collect();
        fn entry<'a>(
            by: &'a mut BTreeMap<String, ChannelFigures>,
            channel: &str,
        ) -> &'a mut ChannelFigures {
            by.entry(channel.to_owned())
                .or_insert_with(|| ChannelFigures {
                    channel: channel.to_owned(),
                    ..ChannelFigures::default()
                })
        }
        for d in outbox.deliveries()? {
            let f = entry(&mut by, &d.channel);
            match d.outcome {
                DeliveryOutcome::Delivered => {
                    f.sent += 1;
                    f.failed += u64::from(d.attempts.saturating_sub(1));
                }
                DeliveryOutcome::GivenUp => {
                    f.given_up += 1;
                    f.failed += u64::from(d.attempts);
                }
            }
        }
        for p in outbox.pending()? {
            entry(&mut by, &p.channel).pending = p.pending.len() as u64;
        }
        Ok(by.into_values().collect())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::rollout::controller::{Applied, Commit, OpenReport};
    use crate::rollout::{HistoryEntry, Plan};
    use crate::Percentage;

    fn at(secs: u64) -> Timestamp {
        Timestamp::from_unix_millis(secs * 1000)
    }

    fn applied(event: &str) -> Result<Applied, String> {
        Ok(Applied {
            entry: HistoryEntry {
                at: at(10),
                event: crate::rollout::ChangeKind::from_name(event).expect("a change"),
                stage: 0,
                percentage: Percentage::ZERO,
                why: "test".into(),
                by: "alice".into(),
                claimed_by: None,
                request: None,
            },
            commit: Commit {
                revision: 2,
                pending: Vec::new(),
                notes: Vec::new(),
            },
            opened: OpenReport::default(),
        })
    }

    /// `name{labels}` -> value.
    fn samples(text: &str) -> BTreeMap<String, f64> {
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| {
                let (k, v) = l.rsplit_once(' ').unwrap();
                (k.to_owned(), v.parse().unwrap())
            })
            .collect()
    }

    #[test]
    fn a_fresh_rollout_has_every_series_pre_initialised() {
        let state = RolloutState::new("r", Plan::six_day(), at(0));
        let text =
            RolloutMetrics::new("1.2.3", GateMeter::default()).render(Some(&state), at(0), &[]);
        // 1. HELP and TYPE for every family, in order.
        for f in Family::ALL {
            let (name, kind) = (f.name(), f.kind());
            assert!(text.contains(&format!("# TYPE {name} {kind}\n")), "{name}");
            assert!(text.contains(&format!("# HELP {name} ")), "{name}");
        }
        let s = samples(&text);
        // 3. One phase at 1.
        let phases: f64 = PHASES
            .iter()
            .map(|p| {
                s[&format!(
                    "genesis_rollout_phase{{rollout=\"r\",phase=\"{}\"}}",
                    p.as_str()
                )]
            })
            .sum();
        assert_eq!(phases, 1.0);
        assert_eq!(
            s["genesis_rollout_phase{rollout=\"r\",phase=\"ready\"}"],
            1.0
        );
        // 2. Counters and verdicts at 0 before anything happened.
        assert_eq!(
            s["genesis_rollout_rollbacks_total{rollout=\"r\",reason=\"operator\"}"],
            0.0
        );
        assert_eq!(
            s["genesis_rollout_transitions_total{rollout=\"r\",kind=\"complete\"}"],
            0.0
        );
        assert_eq!(
            s["genesis_rollout_operator_commands_total{rollout=\"r\",command=\"signoff\",result=\"refused\"}"],
            0.0
        );
        assert_eq!(
            s["genesis_rollout_check_verdict{rollout=\"r\",check=\"cohort_sample\",verdict=\"pass\"}"],
            0.0
        );
        assert_eq!(s["genesis_rollout_build_info{version=\"1.2.3\"}"], 1.0);
        assert_eq!(s["genesis_rollout_stages{rollout=\"r\"}"], 6.0);
        // A ready rollout completes after the plan's healthy length.
        let expected = Plan::six_day().estimated_duration().as_secs_f64();
        assert_eq!(
            s["genesis_rollout_expected_completion_timestamp_seconds{rollout=\"r\"}"],
            expected
        );
    }

    #[test]
    fn events_are_counted_by_kind_reason_and_result() {
        let mut m = RolloutMetrics::new("1", GateMeter::default());
        let rollback = Operation::Rollback { reason: "x".into() };
        m.observe(
            "r",
            &RunEvent::Operation {
                operation: Operation::Start,
                by: "a".into(),
                outcome: applied("start"),
            },
        );
        m.observe(
            "r",
            &RunEvent::Operation {
                operation: rollback.clone(),
                by: "a".into(),
                outcome: applied("rollback"),
            },
        );
        m.observe(
            "r",
            &RunEvent::Operation {
                operation: rollback,
                by: "a".into(),
                outcome: Err("no".into()),
            },
        );
        let state = RolloutState::new("r", Plan::six_day(), at(0));
        let s = samples(&m.render(Some(&state), at(0), &[]));
        assert_eq!(
            s["genesis_rollout_transitions_total{rollout=\"r\",kind=\"advance\"}"],
            1.0
        );
        assert_eq!(
            s["genesis_rollout_transitions_total{rollout=\"r\",kind=\"rollback\"}"],
            1.0
        );
        assert_eq!(
            s["genesis_rollout_rollbacks_total{rollout=\"r\",reason=\"operator\"}"],
            1.0
        );
        assert_eq!(
            s["genesis_rollout_rollbacks_total{rollout=\"r\",reason=\"breach\"}"],
            0.0
        );
        assert_eq!(
            s["genesis_rollout_operator_commands_total{rollout=\"r\",command=\"rollback\",result=\"applied\"}"],
            1.0
        );
        assert_eq!(
            s["genesis_rollout_operator_commands_total{rollout=\"r\",command=\"rollback\",result=\"refused\"}"],
            1.0
        );
    }

    #[test]
    fn a_re_initialised_rollout_leaves_no_series_of_the_old_one() {
        let mut m = RolloutMetrics::new("1", GateMeter::default());
        m.observe(
            "old",
            &RunEvent::Operation {
                operation: Operation::Start,
                by: "a".into(),
                outcome: applied("start"),
            },
        );
        let state = RolloutState::new("new", Plan::six_day(), at(0));
        let text = m.render(Some(&state), at(0), &[]);
        assert!(!text.contains("rollout=\"old\""), "{text}");
        let s = samples(&text);
        assert_eq!(
            s["genesis_rollout_transitions_total{rollout=\"new\",kind=\"advance\"}"],
            0.0
        );
    }

    #[test]
    fn label_values_are_escaped_and_gate_durations_bucketed() {
        let meter = GateMeter::default();
        meter.record(&Observation::healthy(), Duration::from_millis(30));
        meter.record(&Observation::failed("down"), Duration::from_secs(3));
        let state = RolloutState::new("a\"b\\c", Plan::six_day(), at(0));
        let text = RolloutMetrics::new("1", meter).render(Some(&state), at(0), &[]);
        assert!(
            text.contains(r#"genesis_rollout_stage{rollout="a\"b\\c"} 0"#),
            "{text}"
        );
        let s = samples(&text);
        assert_eq!(
            s["genesis_rollout_gate_duration_seconds_bucket{le=\"0.025\"}"],
            0.0
        );
        assert_eq!(
            s["genesis_rollout_gate_duration_seconds_bucket{le=\"0.05\"}"],
            1.0
        );
        assert_eq!(
            s["genesis_rollout_gate_duration_seconds_bucket{le=\"5\"}"],
            2.0
        );
        assert_eq!(
            s["genesis_rollout_gate_duration_seconds_bucket{le=\"+Inf\"}"],
            2.0
        );
        assert_eq!(s["genesis_rollout_gate_duration_seconds_count"], 2.0);
        assert!(s["genesis_rollout_gate_query_errors_total"] >= 5.0);
    }
}
