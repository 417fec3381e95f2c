//! The controller engine: the one owner of a rollout's state file, lock,
//! audit log, flags file, health gate and clock. Ticks and people change a
//! rollout only through it, by one write protocol.
//!
//! ```
//! use genesis_flags::rollout::{Clock, Controller, ManualClock, Observation, Operation, Plan, RunEnd, RunOptions};
//! use std::time::Duration;
//!
//! let dir = tempfile::tempdir()?;
//! let flags = dir.path().join("flags.json");
//! std::fs::write(&flags, r#"{ "version": 1,
//!   "rollouts": { "phase_4_deployment": { "percentage": 0 } },
//!   "flags": { "htdag_enabled": { "rollout": "phase_4_deployment" } } }"#)?;
//! let state = dir.path().join("rollout-state.json");
//! let clock = ManualClock::new("2025-10-23T09:00:00Z".parse()?);
//!
//! // `init` writes the state at 0%; `open` locks it, sweeps what killed
//! // writers left, finishes a pending change and reconciles the flags file.
//! Controller::init(&state, &flags, "phase_4_deployment", Plan::six_day(), false, &clock)?;
//! let mut engine = Controller::builder(&state)
//!     .clock(clock.clone())
//!     .gate(|_at| Observation::healthy())
//!     .open()?;
//! engine.apply(&Operation::Start, "deployment lead")?;
//! assert!(std::fs::read_to_string(&flags)?.contains(r#""percentage": 5 }"#));
//!
//! // Twelve hours of healthy ticks (simulated) move it to stage 2.
//! let options = RunOptions::simulated(Duration::from_secs(15 * 60))
//!     .until(clock.now() + Duration::from_secs(12 * 3600));
//! let end = engine.run(&options, &Default::default(), &mut |_event| {})?;
//! assert_eq!(end, RunEnd::Until);
//! assert_eq!(engine.state().stage, 2);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # The write protocol
//!
//! Every change — a tick's decision or a person's operation — is a new
//! [`RolloutState`](crate::rollout::RolloutState) plus the audit records that explain it, committed so that
//! it happens entirely or not at all as an operator sees it:
//!
//! 1. **Stage** the flags file if the percentage moves: the file is read, its
//!    one number edited, the result validated and written to a temporary
//!    file beside the real target (mode and owner kept), fsynced. Nothing is
//!    visible yet; a failure here (say, a folder that cannot be written)
//!    changes nothing and the operation fails.
//! 2. **Commit**: the state is saved atomically (temporary file, fsync,
//!    rename, fsync of the folder) with its revision number and, in its
//!    `journal`, the audit records of this change. This is the commit point.
//! 3. **Publish** the staged flags file (rename over the target).
//! 4. **Append** the audit records, each carrying the revision.
//! 5. **Queue** the change's notification event (committed in the state
//!    with the decision) in the rollout's
//!    [`Outbox`](crate::rollout::notify::Outbox), where the channels'
//!    senders pick it up; a slow or dead receiver never delays a change.
//!
//! A failure or a crash after step 2 leaves the change committed with its
//! follow-ups pending: [`Commit::pending`] says which, and the next
//! [`open`](ControllerBuilder::open) finishes them (the flags file is
//! reconciled with the state; journal records the log lacks are appended,
//! and so are notification events the outbox lacks).
//! Before step 2 nothing is visible, and `open` sweeps the temporary files.
//!
//! # Operators while an engine runs
//!
//! [`Controller::submit`] sends an [`Operation`] to the engine holding the
//! lock, through a request folder beside the state file; the engine applies
//! it within a poll interval (200 ms in [`RunOptions::real_time`]), also
//! while it waits for a slow health gate, and answers. A request that is not
//! answered in time is withdrawn, so a failed command has changed nothing.

mod client;
mod deploy;
pub(crate) mod engine;
mod gate_worker;
mod notices;
mod options;
mod publish;
mod report;
mod serve;

pub use crate::rollout::model::identity::{host_name, operator_name, LockHolder};
pub use crate::rollout::model::outcome::{
    Applied, Commit, OpenReport, Operation, Pending, RunEnd, RunEvent, TickReport,
};
pub use crate::rollout::store::error::{ControllerError, Refusal};
pub use crate::rollout::store::files::{ControllerFiles, FileFlags, FlagsWriter};
pub use crate::rollout::store::lock::EngineLock;
/// The daily stakeholder update (also at [`crate::rollout::DailyReport`]).
pub use crate::rollout::DailyReport;
pub use engine::{Controller, ControllerBuilder};
pub use options::{RunOptions, StopFlag, SubmitOptions, PUBLISH_RETRY, TICK_BOUNDS};
pub use report::StatusView;
