//! The request client: an operator command sent to the engine that holds a
//! rollout's lock, or applied directly when none does.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::engine::{load, Controller, ControllerBuilder, Requester};
use super::{Applied, Commit, ControllerError, ControllerFiles, Operation, SubmitOptions};
use crate::rollout::model::outcome::OpenReport;
use crate::rollout::store::lock::EngineLock;
use crate::rollout::store::requests::{new_request_id, Answer, Mailbox, Request, REQUEST_TTL};
use crate::rollout::{Clock, SystemClock};

impl Controller {
    /// Sends `operation` to the engine holding the lock of `state` and waits
    /// for its answer; when no engine holds it, opens the state and applies
    /// the operation directly. A request not answered in time is withdrawn:
    /// an `Err` means nothing changed.
    ///
    /// # Errors
    ///
    /// What the engine (running or opened here) refuses, as a
    /// `ControllerError`: `Refused` (the operation is not allowed now),
    /// `Locked`/`NotAnswered` (an engine holds the lock and did not answer in
    /// time), `Remote` (a running engine refused it), `State`/`Io` (the files).
    /// Every `Err` means nothing changed.
    pub fn submit(
        state: &Path,
        operation: &Operation,
        by: &str,
    ) -> Result<Applied, ControllerError> {
        Self::submit_with(state, operation, by, &|b| b).map(|(applied, _)| applied)
    }

    /// [`submit`](Self::submit), opening the engine through `configure`
    /// when no engine holds the lock (to give it notification channels, a
    /// clock...). Returns the engine, still open, when it applied the
    /// operation itself (`None` when a running engine did), so the caller
    /// can wait for its notifications before dropping it.
    ///
    /// # Errors
    ///
    /// As [`submit`](Self::submit), plus what `configure` returns.
    pub fn submit_with(
        state: &Path,
        operation: &Operation,
        by: &str,
        configure: &dyn Fn(ControllerBuilder) -> ControllerBuilder,
    ) -> Result<(Applied, Option<Controller>), ControllerError> {
        Self::submit_with_options(state, operation, by, &SubmitOptions::default(), configure)
    }

    /// [`submit_with`](Self::submit_with), applied only from the stage the
    /// person saw (`options.from_stage`), and withdrawn when
    /// `options.cancel` is raised before the engine claims it (Ctrl-C):
    /// [`ControllerError::Interrupted`], nothing changed.
    ///
    /// # Errors
    ///
    /// As [`submit_with`](Self::submit_with); `ControllerError::Interrupted`
    /// when `options.cancel` was raised first; `OperationError::Moved`/`Stale`
    /// (in `ControllerError::Refused`) when the rollout left the stage or
    /// revision the person saw.
    pub fn submit_with_options(
        state: &Path,
        operation: &Operation,
        by: &str,
        options: &SubmitOptions,
        configure: &dyn Fn(ControllerBuilder) -> ControllerBuilder,
    ) -> Result<(Applied, Option<Controller>), ControllerError> {
        let clock = SystemClock;
        let files = ControllerFiles::beside(state);
        let cancelled = || {
            options
                .cancel
                .as_ref()
                .is_some_and(|c| c.load(Ordering::SeqCst))
        };
        let direct = || -> Result<(Applied, Option<Controller>), ControllerError> {
            if cancelled() {
                return Err(ControllerError::Interrupted);
            }
            let (mut engine, opened) =
                configure(Controller::builder(&files.state).command(operation.name()))
                    .open_with_report()?;
            let mut requester = Requester::direct(by);
            requester.from_stage = options.from_stage;
            requester.from_revision = options.from_revision;
            let mut applied = engine.apply_request(operation, &requester, None)?;
            applied.opened = opened;
            Ok((applied, Some(engine)))
        };
        let remote = |answer: Answer| -> Result<(Applied, Option<Controller>), ControllerError> {
            answer
                .outcome
                .map(|a| (a, None))
                .map_err(ControllerError::Remote)
        };
        match direct() {
            Err(ControllerError::Locked { .. }) => {}
            other => return other,
        }
        let mailbox = Mailbox::new(files.requests.clone());
        let now = clock.now();
        let request = Request {
            id: new_request_id(now),
            operation: operation.clone(),
            by: by.to_owned(),
            sent: now,
            expires: now.saturating_add(REQUEST_TTL),
            from_stage: options.from_stage,
            from_revision: options.from_revision,
        };
        mailbox.send(&request)?;
        let started = Instant::now();
        let mut withdrawn_at: Option<Instant> = None;
        loop {
            if let Some(answer) = mailbox.take_answer(&request.id)? {
                return remote(answer);
            }
            if cancelled() && withdrawn_at.is_none() {
                if mailbox.withdraw(&request.id)? {
                    return Err(ControllerError::Interrupted);
                }
                // Claimed already: its answer says what happened.
                withdrawn_at = Some(Instant::now());
            }
            let held = EngineLock::is_held(&files.lock);
            let holder = EngineLock::holder(&files.lock);
            if !held && withdrawn_at.is_none() {
                // The engine stopped: take the request back and apply it here,
                // unless it was claimed (then its answer is coming, or the
                // history says whether it was applied).
                if mailbox.withdraw(&request.id)? {
                    return direct();
                }
                withdrawn_at = Some(Instant::now());
            }
            if withdrawn_at.is_none() && started.elapsed() >= REQUEST_TTL {
                if mailbox.withdraw(&request.id)? {
                    return Err(ControllerError::NotAnswered {
                        holder,
                        waited_secs: REQUEST_TTL.as_secs(),
                    });
                }
                withdrawn_at = Some(Instant::now());
            }
            if let Some(at) = withdrawn_at {
                // Claimed by the engine: wait for its answer; if the engine
                // died before answering, the state's history tells.
                if !held || at.elapsed() > Duration::from_secs(60) {
                    if let Some(answer) = mailbox.take_answer(&request.id)? {
                        return remote(answer);
                    }
                    let current = load(&files.state)?.state;
                    if let Some(entry) = current
                        .history
                        .iter()
                        .rev()
                        .find(|h| h.request.as_deref() == Some(request.id.as_str()))
                    {
                        return Ok((
                            Applied {
                                entry: entry.clone(),
                                commit: Commit {
                                    revision: current.revision,
                                    pending: Vec::new(),
                                    notes: Vec::new(),
                                },
                                opened: OpenReport::default(),
                            },
                            None,
                        ));
                    }
                    if !held {
                        return direct();
                    }
                    return Err(ControllerError::NotAnswered {
                        holder,
                        waited_secs: started.elapsed().as_secs(),
                    });
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
