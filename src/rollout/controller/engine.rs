//! [`Controller`]: open, tick, operate, run — every change a `Change`
//! value committed by `Controller::commit_change` and the write protocol
//! (`protocol.rs`). The
//! request server, the request client, the safe deploy, publishing retries
//! and the notices are `impl Controller` blocks of their own modules.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::gate_worker::GateWorker;
use super::{
    operator_name, Applied, Commit, ControllerError, OpenReport, Operation, Pending, RunEnd,
    RunEvent, RunOptions, StopFlag, TickReport,
};
use crate::rollout::files::{sweep_temp_files, FlagsFile};
use crate::rollout::model::event::{Event, EventType};
use crate::rollout::model::identity::{host_name, LockHolder};
use crate::rollout::store::change::{Actor, Change};
use crate::rollout::store::courier::{Courier, CourierContext, StartCourier};
use crate::rollout::store::durable::Committed;
use crate::rollout::store::files::{ControllerFiles, FileFlags, FlagsWriter};
use crate::rollout::store::lock::EngineLock;
use crate::rollout::store::outbox::{open_incident, Outbox};
use crate::rollout::store::protocol::{commit_files, resolve_flags_path, stored_flags_path};
use crate::rollout::store::requests::Mailbox;
use crate::rollout::{
    decide, AuditLog, AuditRecord, ChangeKind, Clock, HealthGate, HistoryEntry, Observation,
    OperationError, Phase, Plan, RolloutState, SystemClock, Timestamp,
};
use crate::Percentage;

pub(crate) enum Storage {
    /// In memory: every notification event, in order.
    Memory(Vec<Event>),
    Files(Box<FileStorage>),
}

pub(crate) struct FileStorage {
    pub(super) files: ControllerFiles,
    pub(super) _lock: EngineLock,
    pub(super) audit: AuditLog,
    pub(super) flags: Option<Box<dyn FlagsWriter>>,
    pub(super) mailbox: Mailbox,
    pub(super) outbox: Outbox,
    /// Delivers the outbox (the `notify` feature's channels), if given.
    pub(crate) courier: Option<Box<dyn Courier>>,
    /// Why the flags file does not show the committed percentage yet.
    pub(super) flags_pending: Option<String>,
    /// When publishing was last retried.
    pub(super) publish_tried: Option<Timestamp>,
    /// Whether receivers were told that users are still exposed.
    pub(super) exposure_told: bool,
}

/// What the engine remembers of its notifications: the open incident, when
/// it was last told, and the last daily report.
#[derive(Debug, Clone, Default)]
pub(super) struct Marks {
    pub(super) incident: Option<String>,
    pub(super) incident_noted: Option<Timestamp>,
    pub(super) daily_last: Option<Timestamp>,
}

impl Marks {
    fn from_events(events: &[Event], state: &RolloutState, now: Timestamp) -> Marks {
        let stopped = matches!(state.phase, Phase::Paused | Phase::RolledBack);
        let incident = open_incident(events).filter(|_| stopped);
        let incident_noted = incident.as_ref().and_then(|i| {
            events
                .iter()
                .rev()
                .find(|e| e.incident.as_ref() == Some(i))
                .map(|e| e.at)
        });
        let daily_last = events
            .iter()
            .rev()
            .find(|e| e.kind == EventType::DailyReport)
            .map_or(now, |e| e.at);
        Marks {
            incident,
            incident_noted,
            daily_last: Some(daily_last),
        }
    }

    fn observe(&mut self, events: &[Event]) {
        for e in events {
            if e.kind.closes_incident() {
                self.incident = None;
                self.incident_noted = None;
            } else if let Some(i) = &e.incident {
                self.incident = Some(i.clone());
                self.incident_noted = Some(e.at);
            }
            if e.kind == EventType::DailyReport {
                self.daily_last = Some(e.at);
            }
        }
    }
}

/// Opens a [`Controller`] on a state file.
pub struct ControllerBuilder {
    files: ControllerFiles,
    clock: Arc<dyn Clock>,
    gate: Option<Box<dyn HealthGate + Send>>,
    flags: Option<Box<dyn FlagsWriter>>,
    command: String,
    pub(crate) courier: Option<StartCourier>,
}

impl std::fmt::Debug for ControllerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControllerBuilder")
            .field("files", &self.files)
            .field("command", &self.command)
            .finish_non_exhaustive()
    }
}

impl ControllerBuilder {
    /// The clock (default: [`SystemClock`]).
    #[must_use]
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The health gate (needed for ticks).
    #[must_use]
    pub fn gate(mut self, gate: impl HealthGate + Send + 'static) -> Self {
        self.gate = Some(Box::new(gate));
        self
    }

    /// A boxed health gate.
    #[must_use]
    pub fn boxed_gate(mut self, gate: Box<dyn HealthGate + Send>) -> Self {
        self.gate = Some(gate);
        self
    }

    /// Publishes the percentage through `writer` instead of the state's flags
    /// file.
    #[must_use]
    pub fn flags_writer(mut self, writer: impl FlagsWriter + 'static) -> Self {
        self.flags = Some(Box::new(writer));
        self
    }

    /// What the lock file says the holder is doing (default `controller`).
    #[must_use]
    pub fn command(mut self, command: &str) -> Self {
        command.clone_into(&mut self.command);
        self
    }

    /// Takes the lock, sweeps what killed writers left, loads the state,
    /// finishes a change committed before a crash and reconciles the flags
    /// file with the state.
    ///
    /// # Errors
    ///
    /// `ControllerError::Locked` when another engine holds the lock; `NoState`
    /// when there is no state file; `State` when it cannot be loaded (corrupt,
    /// unknown schema, inconsistent); `Io` when a file cannot be opened.
    pub fn open(self) -> Result<Controller, ControllerError> {
        self.open_with_report().map(|(c, _)| c)
    }

    /// [`open`](Self::open), saying what it repaired.
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open).
    pub fn open_with_report(self) -> Result<(Controller, OpenReport), ControllerError> {
        let now = self.clock.now();
        let lock = EngineLock::acquire(&self.files.lock, &holder(&self.command, now))?;
        let mut report = OpenReport::default();
        report.swept.extend(sweep_temp_files(&self.files.state)?);
        report
            .swept
            .extend(sweep_temp_files(&self.files.published)?);
        let Committed {
            state,
            journal,
            notifications,
        } = load(&self.files.state)?;
        let flags_path = state
            .flags_file
            .as_deref()
            .map(|p| resolve_flags_path(&self.files.state, p));
        let mut flags = self.flags.or_else(|| {
            flags_path.as_deref().map(|p| {
                let writer = FileFlags::new(p).last_good(self.files.published.clone());
                writer.remember();
                Box::new(writer) as Box<dyn FlagsWriter>
            })
        });
        if let Some(path) = &flags_path {
            if let Ok(target) = FlagsFile::new(path).target() {
                report.swept.extend(sweep_temp_files(&target)?);
            }
        }
        let mailbox = Mailbox::new(self.files.requests.clone());
        mailbox.ensure_dir()?;
        report.swept.extend(mailbox.sweep(now));
        let mut audit = AuditLog::open(&self.files.audit)?;
        // A change committed before a crash: its journal records the log lacks.
        let logged = AuditLog::last_revision(&self.files.audit)?;
        for record in &journal {
            if record
                .revision
                .is_some_and(|r| logged.is_none_or(|l| r > l))
            {
                audit.append(record)?;
                report.recovered_records += 1;
            }
        }
        // Its notification events the outbox lacks.
        let outbox = Outbox::beside(&self.files.state);
        report.swept.extend(outbox.sweep()?);
        report.recovered_events = outbox.append(&notifications)?;
        let marks = Marks::from_events(&outbox.read()?, &state, now);
        // Bring the flags file in step with the state. A failure never
        // stops the engine from opening: the decision is committed, the
        // running engine retries the publish and says users are exposed.
        let mut flags_pending = None;
        if let Some(writer) = flags.as_mut() {
            let found = writer.percentage(&state.rollout).ok();
            if found != Some(state.percentage) {
                let published = writer
                    .prepare(&state.rollout, state.percentage)
                    .and_then(|staged| if staged { writer.publish() } else { Ok(()) });
                match published {
                    Ok(()) => {
                        report.notes.extend(writer.take_notes());
                        report.reconciled = found.map(|found| (found, state.percentage));
                    }
                    Err(e) => {
                        writer.discard();
                        report.pending.push(Pending::Flags {
                            error: e.to_string(),
                        });
                        flags_pending = Some(e.to_string());
                    }
                }
            }
        }
        let courier = match self.courier {
            Some(start) => Some(start(CourierContext {
                outbox: outbox.clone(),
                audit: self.files.audit.clone(),
                source: format!("genesis-flags controller on {}", host_name()),
                clock: Arc::clone(&self.clock),
            })?),
            None => None,
        };
        let controller = Controller {
            state,
            storage: Storage::Files(Box::new(FileStorage {
                files: self.files,
                _lock: lock,
                audit,
                flags,
                mailbox,
                outbox,
                courier,
                flags_pending,
                publish_tried: None,
                exposure_told: false,
            })),
            gate: self.gate.map(GateWorker::spawn),
            clock: self.clock,
            served: Vec::new(),
            marks,
        };
        Ok((controller, report))
    }
}

/// Who asks for an operation: the identity that acts, what the request
/// claimed (when it differs), and the stage the person saw.
#[derive(Debug, Clone)]
pub(super) struct Requester {
    pub(super) by: String,
    pub(super) claimed: Option<String>,
    pub(super) from_stage: Option<usize>,
    pub(super) from_revision: Option<u64>,
}

impl Requester {
    pub(super) fn direct(by: &str) -> Requester {
        Requester {
            by: by.to_owned(),
            claimed: None,
            from_stage: None,
            from_revision: None,
        }
    }
}

fn holder(command: &str, now: Timestamp) -> LockHolder {
    LockHolder {
        pid: std::process::id(),
        host: host_name(),
        since: now,
        command: command.to_owned(),
    }
}

pub(super) fn load(path: &Path) -> Result<Committed, ControllerError> {
    match Committed::load(path) {
        Ok(s) => Ok(s),
        Err(_) if !path.exists() => Err(ControllerError::NoState {
            path: path.to_path_buf(),
        }),
        Err(e) => Err(e.into()),
    }
}

/// The engine of one rollout. See the [module docs](super).
pub struct Controller {
    pub(super) state: RolloutState,
    pub(crate) storage: Storage,
    gate: Option<GateWorker>,
    pub(super) clock: Arc<dyn Clock>,
    /// Operator requests served while waiting for the gate, not yet reported.
    served: Vec<RunEvent>,
    pub(super) marks: Marks,
}

impl std::fmt::Debug for Controller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Controller")
            .field("rollout", &self.state.rollout)
            .field("stage", &self.state.stage)
            .field("phase", &self.state.phase)
            .finish_non_exhaustive()
    }
}

impl Controller {
    /// A builder for the engine of the state file `state`.
    #[must_use]
    pub fn builder(state: impl Into<PathBuf>) -> ControllerBuilder {
        ControllerBuilder {
            files: ControllerFiles::beside(state),
            clock: Arc::new(SystemClock),
            gate: None,
            flags: None,
            command: "controller".to_owned(),
            courier: None,
        }
    }

    /// An engine with no files: the same loop on a state in memory
    /// (simulations).
    #[must_use]
    pub fn in_memory(
        state: RolloutState,
        gate: Box<dyn HealthGate + Send>,
        clock: impl Clock + 'static,
    ) -> Controller {
        let now = clock.now();
        let marks = Marks::from_events(&[], &state, now);
        Controller {
            state,
            storage: Storage::Memory(Vec::new()),
            gate: Some(GateWorker::spawn(gate)),
            clock: Arc::new(clock),
            served: Vec::new(),
            marks,
        }
    }

    /// Initialises a rollout of `rollout` in the flags file `flags` at 0%
    /// with `plan`, under the lock. Refuses to replace an existing state
    /// unless `force`, and never while another engine holds the lock.
    ///
    /// # Errors
    ///
    /// `ControllerError::Exists` when a state exists and `force` is not given;
    /// `Locked` while another engine holds the lock; `Flags` when the flags
    /// file is not a valid config with the rollout; `Plan` for an invalid plan;
    /// `State`/`Io` when a file cannot be written.
    pub fn init(
        state: &Path,
        flags: &Path,
        rollout: &str,
        plan: Plan,
        force: bool,
        clock: &dyn Clock,
    ) -> Result<Applied, ControllerError> {
        plan.validate()?;
        let files = ControllerFiles::beside(state);
        let now = clock.now();
        let _lock = EngineLock::acquire(&files.lock, &holder("init", now))?;
        if files.state.exists() && !force {
            return Err(ControllerError::Exists {
                path: files.state.clone(),
            });
        }
        sweep_temp_files(&files.state)?;
        let flags_file = FlagsFile::new(flags);
        // Checks the file parses and has the rollout.
        flags_file.percentage(rollout)?;
        let mut next = RolloutState::new(rollout, plan, now);
        next.flags_file = Some(stored_flags_path(&files.state, flags_file.path()));
        // Revisions (and so event ids) never repeat, even when the state
        // file was lost: continue from the highest the state, the audit log
        // or the outbox has seen.
        let previous = RolloutState::load(&files.state).ok();
        next.revision = [
            previous.as_ref().map_or(0, |p| p.revision),
            AuditLog::last_revision(&files.audit)?.unwrap_or(0),
            Outbox::beside(&files.state).last_revision().unwrap_or(0),
        ]
        .into_iter()
        .max()
        .unwrap_or(0);
        let entry = HistoryEntry {
            at: now,
            event: ChangeKind::Init,
            stage: 0,
            percentage: Percentage::ZERO,
            why: format!("initialised at 0% from {}", flags_file.path().display()),
            by: operator_name(),
            claimed_by: None,
            request: None,
        };
        next.history.push(entry.clone());
        let mut writer = FileFlags::new(flags_file.path()).last_good(files.published.clone());
        writer.remember();
        let mut audit = AuditLog::open(&files.audit)?;
        let staged = writer.prepare(rollout, next.percentage)?;
        let base = next.revision;
        let next = Change::starting_over(next, vec![AuditRecord::operation(rollout, &entry)])
            .stamped(base)?;
        let commit = commit_files(
            &files,
            &mut audit,
            staged.then_some(&mut writer as &mut (dyn FlagsWriter + 'static)),
            &next,
        )?;
        Ok(Applied {
            entry,
            commit,
            opened: OpenReport::default(),
        })
    }

    /// The rollout's state.
    #[must_use]
    pub fn state(&self) -> &RolloutState {
        &self.state
    }

    /// The engine's files, unless it runs in memory.
    #[must_use]
    pub fn files(&self) -> Option<&ControllerFiles> {
        match &self.storage {
            Storage::Memory(_) => None,
            Storage::Files(f) => Some(&f.files),
        }
    }

    /// The engine's clock.
    #[must_use]
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Commits a tick's `next` state and its audit records (a policy
    /// decision: committed even when the flags file cannot be written).
    fn commit(
        &mut self,
        next: RolloutState,
        records: Vec<AuditRecord>,
    ) -> Result<Commit, ControllerError> {
        let change = Change::new(
            &self.state,
            next,
            records,
            Actor::Engine,
            self.marks.incident.as_deref(),
        );
        self.commit_change(change)
    }

    /// Commits one [`Change`] by the write protocol: the one place a change
    /// becomes durable, its revision computed once (see
    /// [`Change::stamped`]).
    ///
    /// The decision never depends on the flags file: a change whose flags
    /// cannot even be staged is committed anyway, with the flags pending
    /// (the running engine retries them, and the event says users still
    /// see the old percentage). One exception: a person's move *up* is
    /// refused with nothing changed, since exposing more users is never
    /// urgent and the person is there to fix the file.
    pub(super) fn commit_change(&mut self, mut change: Change) -> Result<Commit, ControllerError> {
        let current = self.state.revision;
        change.check_base(current)?;
        let (next, commit) = match &mut self.storage {
            Storage::Memory(log) => {
                let next = change.stamped(current)?;
                log.extend(next.notifications.iter().cloned());
                let commit = Commit {
                    revision: next.state.revision,
                    pending: Vec::new(),
                    notes: Vec::new(),
                };
                (next, commit)
            }
            Storage::Files(s) => {
                let before = self.state.percentage;
                let target = change.next().percentage;
                let moves = target != before;
                // 1. Stage the flags file: nothing visible yet.
                let mut staged = false;
                let mut unstaged = None;
                if let (true, Some(w)) = (moves, s.flags.as_deref_mut()) {
                    match w.prepare(&change.next().rollout, target) {
                        Ok(b) => staged = b,
                        Err(e) if change.refused_without_flags(before) => return Err(e),
                        Err(e) => {
                            w.discard();
                            unstaged = Some(e.to_string());
                        }
                    }
                }
                if let Some(error) = &unstaged {
                    for event in change.events_mut() {
                        event.explanation.push_str(&format!(
                            "; users still see {before}: the flags file could not be written ({error}), the controller retries"
                        ));
                    }
                }
                let next = match change.stamped(current) {
                    Ok(next) => next,
                    Err(e) => {
                        if let Some(w) = s.flags.as_deref_mut().filter(|_| staged) {
                            w.discard();
                        }
                        return Err(e);
                    }
                };
                let flags = if staged { s.flags.as_deref_mut() } else { None };
                let mut commit = commit_files(&s.files, &mut s.audit, flags, &next)?;
                if let Some(error) = unstaged {
                    commit.pending.insert(0, Pending::Flags { error });
                }
                if moves {
                    s.flags_pending = commit.pending.iter().find_map(|p| match p {
                        Pending::Flags { error } => Some(error.clone()),
                        _ => None,
                    });
                    s.exposure_told = false;
                }
                if let Some(courier) = &s.courier {
                    if !next.notifications.is_empty() {
                        courier.wake();
                    }
                }
                (next, commit)
            }
        };
        self.marks.observe(&next.notifications);
        self.state = next.state;
        Ok(commit)
    }

    /// Every notification event of an engine in memory (simulations), in
    /// order; empty for an engine on files (their events are in the outbox).
    #[must_use]
    pub fn notifications(&self) -> &[Event] {
        match &self.storage {
            Storage::Memory(log) => log,
            Storage::Files(_) => &[],
        }
    }

    /// The outbox of an engine on files.
    #[must_use]
    pub fn outbox(&self) -> Option<&Outbox> {
        match &self.storage {
            Storage::Memory(_) => None,
            Storage::Files(s) => Some(&s.outbox),
        }
    }

    /// One tick now: observe, decide, commit.
    ///
    /// # Errors
    ///
    /// `ControllerError::NoGate` when the engine has no health gate;
    /// `State`/`Io` when the change cannot be committed.
    pub fn tick(&mut self) -> Result<TickReport, ControllerError> {
        self.tick_with(&RunOptions::real_time(Duration::from_secs(60)))
    }

    fn tick_with(&mut self, options: &RunOptions) -> Result<TickReport, ControllerError> {
        let at = self.clock.now();
        let seen = self.state.revision;
        let observation = self.observe(at, options)?;
        // Operator requests served while the gate was read may have moved
        // the state: the decision is taken on the state as it is now (never
        // on the revision the observation started from), at the time it is
        // taken, so the audit log stays in order.
        let now = if self.state.revision == seen {
            at
        } else {
            self.clock.now().max(at)
        };
        let decision = decide(&self.state, &observation, now);
        let mut next = self.state.clone();
        next.apply(&decision);
        let record = AuditRecord::decision(&next.rollout, &decision, &observation);
        let commit = self.commit(next, vec![record])?;
        Ok(TickReport {
            observation,
            decision,
            commit,
        })
    }

    /// Observes through the gate worker, serving operator requests while it
    /// waits.
    pub(super) fn observe(
        &mut self,
        at: Timestamp,
        options: &RunOptions,
    ) -> Result<Observation, ControllerError> {
        let mut worker = self.gate.take().ok_or(ControllerError::NoGate)?;
        let slice = options.poll.unwrap_or(options.gate_timeout);
        let mut served = Vec::new();
        let observation = worker.observe(at, options.gate_timeout, slice, &mut || {
            served.extend(self.serve_requests());
        });
        self.gate = Some(worker);
        self.served.extend(served);
        Ok(observation)
    }

    /// Applies an operation for `by` now.
    ///
    /// # Errors
    ///
    /// `ControllerError::Refused` when the state refuses the operation
    /// (`OperationError`); `Flags` when a move up cannot stage the flags file;
    /// `State`/`Io` when the change cannot be committed.
    pub fn apply(&mut self, operation: &Operation, by: &str) -> Result<Applied, ControllerError> {
        self.apply_request(operation, &Requester::direct(by), None)
    }

    /// Applies an operation for `by` now, only if the rollout is still at
    /// `stage` (the stage the person saw): a second operator's `promote`
    /// sent at the same time is refused instead of skipping a stage.
    ///
    /// # Errors
    ///
    /// As [`apply`](Self::apply); `OperationError::Moved` (in
    /// `ControllerError::Refused`) when the rollout is no longer at `stage`.
    pub fn apply_from(
        &mut self,
        operation: &Operation,
        by: &str,
        stage: usize,
    ) -> Result<Applied, ControllerError> {
        let mut requester = Requester::direct(by);
        requester.from_stage = Some(stage);
        self.apply_request(operation, &requester, None)
    }

    pub(super) fn apply_request(
        &mut self,
        operation: &Operation,
        requester: &Requester,
        request: Option<&str>,
    ) -> Result<Applied, ControllerError> {
        let now = self.clock.now();
        if let Some(seen) = requester.from_revision {
            if seen != self.state.revision {
                return Err(OperationError::Stale {
                    operation: operation.name(),
                    seen,
                    revision: self.state.revision,
                }
                .into());
            }
        }
        if let Some(seen) = requester.from_stage {
            if seen != self.state.stage {
                return Err(OperationError::Moved {
                    operation: operation.name(),
                    seen,
                    stage: self.state.stage,
                    percentage: self.state.percentage,
                    last: self
                        .state
                        .history
                        .last()
                        .map(|h| format!("{} by {} at {}", h.event, h.by, h.at)),
                }
                .into());
            }
        }
        let before = self.state.clone();
        let mut next = self.state.clone();
        let by = requester.by.as_str();
        let mut entry = match operation {
            Operation::Start => next.start(now, by)?,
            Operation::Promote { reason } => next.promote(now, by, reason)?,
            Operation::Pause { reason } => next.pause(now, by, reason)?,
            Operation::Resume { reason } => next.resume(now, by, reason)?,
            Operation::Rollback { reason } => next.rollback(now, by, reason)?,
            Operation::SignOff { role, name } => next.sign_off(now, role, name)?,
        };
        entry.request = request.map(str::to_owned);
        entry.claimed_by = requester.claimed.clone();
        if let Some(last) = next.history.last_mut() {
            last.request.clone_from(&entry.request);
            last.claimed_by.clone_from(&entry.claimed_by);
        }
        // The audit record keeps the stage and percentage before the change.
        let mut record = AuditRecord::operation(&next.rollout, &entry);
        record.stage = before.stage;
        record.percentage = before.percentage;
        let change = Change::new(
            &self.state,
            next,
            vec![record],
            Actor::Person,
            self.marks.incident.as_deref(),
        );
        let commit = self.commit_change(change)?;
        Ok(Applied {
            entry,
            commit,
            opened: OpenReport::default(),
        })
    }

    /// Ticks until the rollout completes, rolls back or pauses, `stop` is
    /// raised or `options.until` passes; serves operator requests meanwhile.
    /// A ready rollout is started first.
    ///
    /// # Errors
    ///
    /// `ControllerError::Invalid` for a tick outside the bounds; `NoGate`
    /// without a health gate; `State`/`Io` when a change cannot be committed.
    pub fn run(
        &mut self,
        options: &RunOptions,
        stop: &StopFlag,
        on_event: &mut dyn FnMut(&RunEvent),
    ) -> Result<RunEnd, ControllerError> {
        options.validate()?;
        if self.gate.is_none() {
            return Err(ControllerError::NoGate);
        }
        if self.state.phase == Phase::Ready {
            let applied = self.apply(&Operation::Start, &operator_name())?;
            on_event(&RunEvent::Operation {
                operation: Operation::Start,
                by: applied.entry.by.clone(),
                outcome: Ok(applied),
            });
        }
        loop {
            let served = self.serve_requests();
            for event in std::mem::take(&mut self.served).iter().chain(&served) {
                on_event(event);
            }
            if let Some(event) = self.retry_publish() {
                on_event(&event);
            }
            self.send_due_notices(options)?;
            let stopped = match self.state.phase {
                Phase::Completed => return Ok(RunEnd::Completed),
                Phase::RolledBack if !options.wait_for_resume => return Ok(RunEnd::RolledBack),
                Phase::Paused if !options.wait_for_resume => return Ok(RunEnd::Paused),
                Phase::RolledBack | Phase::Paused => true,
                _ => false,
            };
            if stop.load(Ordering::SeqCst) {
                return Ok(RunEnd::Stopped);
            }
            let now = self.clock.now();
            if stopped {
                // Waiting for a person: requests, notices, the end.
                if options.until.is_some_and(|u| now > u) {
                    return Ok(RunEnd::Until);
                }
                let next = [self.next_notice(options), options.until]
                    .into_iter()
                    .flatten()
                    .min();
                match (options.poll, next) {
                    (Some(poll), next) => self.clock.sleep(next.map_or(poll, |n| {
                        poll.min(n.since(now).max(Duration::from_millis(1)))
                    })),
                    (None, Some(next)) => self
                        .clock
                        .sleep(next.since(now).max(Duration::from_millis(1))),
                    (None, None) => {
                        return Ok(if self.state.phase == Phase::Paused {
                            RunEnd::Paused
                        } else {
                            RunEnd::RolledBack
                        })
                    }
                }
                continue;
            }
            let due = self
                .state
                .last_tick
                .map_or(now, |t| t.saturating_add(options.tick));
            if now < due {
                let wait = due.since(now);
                self.clock.sleep(options.poll.map_or(wait, |p| p.min(wait)));
                continue;
            }
            if options.until.is_some_and(|u| now > u) {
                return Ok(RunEnd::Until);
            }
            let report = self.tick_with(options)?;
            for event in std::mem::take(&mut self.served) {
                on_event(&event);
            }
            let awaiting = self.state.phase == Phase::AwaitingSignoff;
            on_event(&RunEvent::Tick(report));
            if options.auto_signoff && awaiting {
                let roles: Vec<String> = self.state.missing_signoffs().map(str::to_owned).collect();
                for role in roles {
                    let op = Operation::SignOff {
                        role,
                        name: "simulation".into(),
                    };
                    let outcome = self.apply(&op, "simulation").map_err(|e| e.to_string());
                    on_event(&RunEvent::Operation {
                        operation: op,
                        by: "simulation".into(),
                        outcome,
                    });
                }
                // Judge again at the same instant, with the sign-offs in.
                let report = self.tick_with(options)?;
                on_event(&RunEvent::Tick(report));
            }
        }
    }
}
