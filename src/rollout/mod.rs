//! Staged percentage rollouts: plans, the pure policy that judges each tick,
//! and the durable state it moves.
//!
//! A [`Plan`] lists stages (5 → 10 → 25 → 50 → 75 → 100% by default), each
//! with a soak window and a [`Tier`] of auto-rollback thresholds, plus the go
//! criteria, a final validation window and the required sign-offs. Each tick,
//! a [`HealthGate`] produces an [`Observation`]; [`decide`] judges it against
//! the [`RolloutState`] and returns a [`Decision`] (hold, advance, pause,
//! roll back, complete) with its explanation; [`RolloutState::apply`] moves
//! the state; [`RolloutState::save`] writes it atomically. When the service
//! labels its series with the user's cohort, the observation carries a
//! [`CohortObservation`] and the policy judges the flagged users themselves,
//! and against the others ([`CohortVerdicts`], [`excess_test`](statistics::excess_test)).
//!
//! # Layers
//!
//! The module is built in layers, one folder each, whose `use` arrows point
//! down only (the crate's `tests/architecture.rs` reads them and fails on a
//! cycle, an arrow up, or a module outside the layer folders):
//!
//! | folder | layer |
//! |---|---|
//! | `adapters` | [`prometheus`], the [`notify`] channels, [`metrics`], [`simulation`] |
//! | `controller` | the engine ([`controller`]): sequencing only |
//! | `store` | state file, audit log, outbox, flags file, lock, request folder; a change as one value committed in one place |
//! | `policy` | [`decide`], pure |
//! | `model` | [`Plan`], [`RolloutState`], [`Observation`], verdicts, [`ChangeKind`] and [`AuditEvent`], records and events |
//! | `foundation` | the [`Clock`], durations, bounded [`read`]s, atomic [`files`] |
//!
//! The main path is here at the root; experts' items are in the submodules.
//!
//! ```
//! use genesis_flags::rollout::{decide, Action, ManualClock, Clock, Observation, Plan, RolloutState, Timestamp};
//! use std::time::Duration;
//!
//! let clock = ManualClock::new("2025-10-23T09:00:00Z".parse()?);
//! let mut state = RolloutState::new("phase_4_deployment", Plan::six_day(), clock.now());
//! state.start(clock.now(), "deployment lead")?;
//!
//! // Five minutes of errors above the canary tier's 0.5% roll back at once.
//! let spike = Observation::healthy().with_error_rate(0.012);
//! let decision = loop {
//!     let d = decide(&state, &spike, clock.now());
//!     state.apply(&d);
//!     if d.action != Action::Hold { break d; }
//!     clock.advance(Duration::from_secs(60));
//! };
//! assert!(matches!(decision.action, Action::Rollback { .. }));
//! assert_eq!(state.percentage.ppm(), 0);
//! println!("{}", decision.explanation);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod adapters;
pub mod controller;
mod foundation;
mod model;
mod policy;
mod store;

pub use adapters::{metrics, notify, prometheus};
pub use foundation::read;

pub use foundation::clock::{Clock, ManualClock, SystemClock, Timestamp, TimestampError};
pub use model::audit::{AuditLog, AuditRecord, HistoryEntry};
pub use model::change::{AuditEvent, ChangeKind};
pub use model::cohort::{
    CohortFigures, CohortLedger, CohortObservation, CohortRules, FleetPercentage,
};

/// The cohort gate's statistics, for experts: the e-value of the excess
/// test, the sample a stage needs, and quantiles of Prometheus histograms.
pub mod statistics {
    pub use super::model::cohort::{
        excess_test, histogram_quantile, log_e_value, required_in_requests, slow_counts,
        ExcessTest, SlowCounts, MIXTURE_RATIOS,
    };
}
// The controller's main path, also at the root; its experts' items
// (files, lock, writers, reports) only in `controller`.
#[doc(no_inline)]
pub use controller::{
    Applied, Commit, Controller, ControllerBuilder, ControllerError, Operation, RunEnd, RunEvent,
    RunOptions, StatusView, StopFlag, SubmitOptions, TickReport,
};
pub use model::daily::DailyReport;
pub use model::decision::{Action, Decision, Explanation};
pub use store::durable::StateError;

/// Writing files so a crash never leaves half of one: a temporary file in
/// the same folder, fsync, rename, fsync of the folder; and the flags file's
/// rollout percentages, edited in place.
pub mod files {
    pub use super::foundation::atomic::{sweep_temp_files, write_atomically, StagedFile};
    pub use super::store::flags_file::{set_rollout_percentage, FlagsFile, FlagsFileError};
}
pub use foundation::duration::{format_duration, parse_duration, DurationError};
pub use foundation::redact::redacted_message;
pub use model::gate::{
    HealthCheck, HealthGate, Observation, Reading, ScriptedGate, DEFAULT_HEALTH_JOBS,
};
pub use model::phase::{Phase, Streaks};
pub use model::plan::{
    GoCriteria, Plan, PlanError, Stage, Tier, Validation, MAX_HEALTH_FAILURES, MAX_MIN_REQUESTS,
    MAX_PLAN_DURATION,
};
pub use policy::decide;

/// Rehearsing a rollout: scenarios (what the service does, minute by
/// minute) and simulations of a plan against them, on a manual clock.
pub mod simulation {
    pub use super::adapters::scenario::{
        Conditions, Event, Scenario, ScenarioCohorts, ScenarioError, ScenarioGate, ScheduleStep,
        LATENCY_BUCKETS,
    };
    pub use super::adapters::simulate::{
        simulate, Outcome, Simulation, SimulationEvent, SimulationOptions, SimulationSample,
    };
}
pub use model::state::{OperationError, RolloutState, SignOff, STATE_SCHEMA};
pub use model::verdict::{
    CheckKind, CheckResult, CohortContext, CohortVerdicts, Verdict, Verdicts,
};
