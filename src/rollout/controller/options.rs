//! How an engine runs ([`RunOptions`]) and how an operator command is
//! submitted ([`SubmitOptions`]).

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use super::ControllerError;
#[cfg(doc)]
use crate::rollout::OperationError;
use crate::rollout::{format_duration, Timestamp};

/// How an operator command is submitted (see
/// [`Controller::submit_with_options`](super::Controller::submit_with_options)).
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct SubmitOptions {
    /// The stage the person saw: the operation is refused if the rollout
    /// is at another stage when it is applied.
    pub from_stage: Option<usize>,
    /// Raised (e.g. by a Ctrl-C handler) to withdraw the request while the
    /// running engine has not claimed it.
    pub cancel: Option<StopFlag>,
    /// The revision the person saw: the operation is refused
    /// ([`OperationError::Stale`]) if the rollout has changed since.
    pub from_revision: Option<u64>,
}

impl SubmitOptions {
    /// Options applying from `stage`.
    #[must_use]
    pub fn from_stage(mut self, stage: Option<usize>) -> Self {
        self.from_stage = stage;
        self
    }

    /// Options applying only at `revision`.
    #[must_use]
    pub fn from_revision(mut self, revision: Option<u64>) -> Self {
        self.from_revision = revision;
        self
    }

    /// Options withdrawn when `cancel` is raised.
    #[must_use]
    pub fn cancel(mut self, cancel: StopFlag) -> Self {
        self.cancel = Some(cancel);
        self
    }
}

/// A flag raised to stop [`Controller::run`](super::Controller::run) between ticks (from a signal
/// handler, another thread, a test).
pub type StopFlag = Arc<AtomicBool>;

/// How [`Controller::run`](super::Controller::run) paces itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOptions {
    /// Time between ticks.
    pub tick: Duration,
    /// How often to look for operator requests while waiting; `None` waits
    /// for each tick in one step (simulations).
    pub poll: Option<Duration>,
    /// Stop after this instant.
    pub until: Option<Timestamp>,
    /// How long one health-gate observation may take before it counts as an
    /// Error.
    pub gate_timeout: Duration,
    /// Give every missing sign-off as soon as the final window has held
    /// (simulations only).
    pub auto_signoff: bool,
    /// Stay through a rollback or a pause instead of returning: serve
    /// operator requests (a `resume` goes on ticking) and send incident
    /// updates.
    pub wait_for_resume: bool,
    /// While the rollout is rolled back or paused, an `incident_update`
    /// event this often.
    pub incident_every: Option<Duration>,
    /// A `daily_report` event every day at this `(hour, minute)` UTC.
    pub daily_at: Option<(u8, u8)>,
}

/// How often a running engine retries a flags file it could not write.
pub const PUBLISH_RETRY: Duration = Duration::from_secs(5);

/// Bounds on the time between ticks.
pub const TICK_BOUNDS: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(86_400));

impl RunOptions {
    /// A real-time run: operator requests served every 200 ms, a gate
    /// timeout of 30 s (or the tick, if shorter).
    #[must_use]
    pub fn real_time(tick: Duration) -> RunOptions {
        RunOptions {
            tick,
            poll: Some(Duration::from_millis(200)),
            until: None,
            gate_timeout: Duration::from_secs(30).min(tick.max(Duration::from_secs(1))),
            auto_signoff: false,
            wait_for_resume: false,
            incident_every: None,
            daily_at: None,
        }
    }

    /// A simulated run (a [`ManualClock`](crate::rollout::ManualClock)): one
    /// step per tick, sign-offs given automatically.
    #[must_use]
    pub fn simulated(tick: Duration) -> RunOptions {
        RunOptions {
            tick,
            poll: None,
            until: None,
            gate_timeout: Duration::from_secs(60),
            auto_signoff: true,
            wait_for_resume: false,
            incident_every: None,
            daily_at: None,
        }
    }

    /// These options, stopping after `until`.
    #[must_use]
    pub fn until(mut self, until: Timestamp) -> RunOptions {
        self.until = Some(until);
        self
    }

    /// Checks the tick against [`TICK_BOUNDS`].
    ///
    /// # Errors
    ///
    /// `ControllerError::Invalid` naming the tick and the bounds.
    pub fn validate(&self) -> Result<(), ControllerError> {
        let (min, max) = TICK_BOUNDS;
        if self.tick < min || self.tick > max {
            return Err(ControllerError::Invalid {
                field: "--tick".into(),
                message: format!(
                    "{} is outside {}..={}",
                    format_duration(self.tick),
                    format_duration(min),
                    format_duration(max)
                ),
            });
        }
        Ok(())
    }
}
