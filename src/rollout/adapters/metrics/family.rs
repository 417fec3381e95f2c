//! The families of the contract ([`Family`]) and the label values they take.

use crate::rollout::{CheckKind, Phase, Verdict};

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

pub(super) const VERDICTS: [Verdict; 4] = [
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
    pub(super) const ALL: [Transition; 5] = [
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
    pub(super) const ALL: [RollbackReason; 3] = [
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

pub(super) const COMMANDS: [&str; 6] =
    ["start", "promote", "pause", "resume", "rollback", "signoff"];

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
