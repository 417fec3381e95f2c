//! [`Controller`]: open, tick, operate, run, deploy — every change through
//! [`Controller::commit`], the write protocol of the module docs.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::files::{ControllerFiles, FileFlags, FlagsWriter};
use super::gate_worker::GateWorker;
use super::lock::{host_name, EngineLock, LockHolder};
use super::requests::{
    new_request_id, user_name, Answer, AnswerError, Claimed, Mailbox, Request, REQUEST_TTL,
};
use super::ControllerError;
use crate::rollout::notify::{open_incident, Event, EventType, Outbox};
#[cfg(feature = "notify")]
use crate::rollout::notify::{ChannelStatus, Notifier, NotifyConfig};
use crate::rollout::{
    decide, format_duration, sweep_temp_files, AuditLog, AuditRecord, Clock, Decision, FlagsFile,
    HealthGate, HistoryEntry, Observation, OperationError, Phase, Plan, RolloutState, SystemClock,
    Timestamp, Verdict,
};
use crate::Percentage;

/// A person's operation on a rollout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "operation", rename_all = "snake_case", deny_unknown_fields)]
pub enum Operation {
    /// Start a ready rollout at stage 1.
    Start,
    /// Move to the next stage now.
    Promote {
        /// Why.
        reason: String,
    },
    /// Stop for a person; the percentage stays.
    Pause {
        /// Why.
        reason: String,
    },
    /// Resume a paused rollout, or restart a rolled-back one from stage 1.
    Resume {
        /// Why.
        reason: String,
    },
    /// Roll back to 0% now.
    Rollback {
        /// Why.
        reason: String,
    },
    /// Record a sign-off.
    SignOff {
        /// The plan's role.
        role: String,
        /// Who signs.
        name: String,
    },
}

impl Operation {
    /// `start`, `promote`, `pause`, `resume`, `rollback` or `signoff`.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Operation::Start => "start",
            Operation::Promote { .. } => "promote",
            Operation::Pause { .. } => "pause",
            Operation::Resume { .. } => "resume",
            Operation::Rollback { .. } => "rollback",
            Operation::SignOff { .. } => "signoff",
        }
    }
}

/// A follow-up write of a committed change that has not happened yet; the
/// next [`open`](ControllerBuilder::open) does it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "pending", rename_all = "snake_case")]
pub enum Pending {
    /// The flags file still shows the old percentage.
    Flags {
        /// Why the write failed.
        error: String,
    },
    /// Audit records are still only in the state's journal.
    Audit {
        /// Why the append failed.
        error: String,
    },
    /// Notification events are still only in the state.
    Outbox {
        /// Why the append failed.
        error: String,
    },
}

impl std::fmt::Display for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Pending::Flags { error } => write!(
                f,
                "the flags file was not updated ({error}); the next start of the controller writes it"
            ),
            Pending::Audit { error } => write!(
                f,
                "the audit record was not appended ({error}); the next start of the controller appends it"
            ),
            Pending::Outbox { error } => write!(
                f,
                "the notification was not added to the outbox ({error}); the next start of the controller adds it"
            ),
        }
    }
}

/// A committed change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Commit {
    /// The state's revision after the change.
    pub revision: u64,
    /// Follow-up writes still to do (empty when everything is written).
    pub pending: Vec<Pending>,
    /// What publishing did beyond the percentage (a broken flags file
    /// restored), one line each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// An operation applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Applied {
    /// The history entry it recorded.
    pub entry: HistoryEntry,
    /// The commit.
    pub commit: Commit,
    /// What opening the engine repaired, when [`Controller::submit`]
    /// applied the operation itself.
    #[serde(skip)]
    pub opened: OpenReport,
}

/// One tick: what the gate saw, what the policy decided, what was written.
#[derive(Debug, Clone, PartialEq)]
pub struct TickReport {
    /// What the gate saw.
    pub observation: Observation,
    /// The decision.
    pub decision: Decision,
    /// The commit.
    pub commit: Commit,
}

/// Something that happened in [`Controller::run`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
// Events are handed out by reference, one per tick: their size costs nothing.
#[allow(clippy::large_enum_variant)]
pub enum RunEvent {
    /// A tick.
    Tick(TickReport),
    /// An operation, applied (or refused) for a person.
    Operation {
        /// What was asked.
        operation: Operation,
        /// Who asked.
        by: String,
        /// The outcome; `Err` is the refusal's message.
        outcome: Result<Applied, String>,
    },
    /// The engine retried publishing a committed percentage that the flags
    /// file did not show yet (users are exposed to the old one until it
    /// succeeds).
    Publish {
        /// The percentage the state holds.
        percentage: Percentage,
        /// `Err` says why the flags file still could not be written.
        outcome: Result<Vec<String>, String>,
    },
    /// A request in the request folder was refused before it was read
    /// (unsafe folder or file); nothing changed.
    RequestRefused {
        /// Why.
        reason: String,
    },
}

/// Why [`Controller::run`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunEnd {
    /// The rollout completed.
    Completed,
    /// The rollout rolled back.
    RolledBack,
    /// The rollout paused for a person.
    Paused,
    /// The stop flag was raised (between ticks; the state is saved).
    Stopped,
    /// The `until` instant passed.
    Until,
}

/// How an operator command is submitted (see
/// [`Controller::submit_with_options`]).
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

/// A flag raised to stop [`Controller::run`] between ticks (from a signal
/// handler, another thread, a test).
pub type StopFlag = Arc<AtomicBool>;

/// How [`Controller::run`] paces itself.
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

/// Who makes a change: it decides whether a flags file that cannot be
/// staged refuses it (see [`Controller::commit_with`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum By {
    /// The policy or the engine's own notices.
    Engine,
    /// A person's operation.
    Person,
}

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

enum Storage {
    /// In memory: every notification event, in order.
    Memory(Vec<Event>),
    Files(Box<FileStorage>),
}

struct FileStorage {
    files: ControllerFiles,
    _lock: EngineLock,
    audit: AuditLog,
    flags: Option<Box<dyn FlagsWriter>>,
    mailbox: Mailbox,
    outbox: Outbox,
    #[cfg(feature = "notify")]
    notifier: Option<Notifier>,
    /// Why the flags file does not show the committed percentage yet.
    flags_pending: Option<String>,
    /// When publishing was last retried.
    publish_tried: Option<Timestamp>,
    /// Whether receivers were told that users are still exposed.
    exposure_told: bool,
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

/// What [`ControllerBuilder::open`] found and repaired.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpenReport {
    /// Temporary files of killed writers, and stale requests, removed.
    pub swept: Vec<PathBuf>,
    /// Journal records appended to the audit log (a change committed before
    /// a crash).
    pub recovered_records: usize,
    /// The flags file was out of step with the state: `(found, written)`.
    pub reconciled: Option<(Percentage, Percentage)>,
    /// Notification events appended to the outbox (a change committed
    /// before a crash).
    pub recovered_events: usize,
    /// The flags file could not be brought in step with the state: the
    /// running engine retries it.
    pub pending: Vec<Pending>,
    /// What reconciling the flags file did beyond the percentage.
    pub notes: Vec<String>,
}

/// Opens a [`Controller`] on a state file.
pub struct ControllerBuilder {
    files: ControllerFiles,
    clock: Arc<dyn Clock>,
    gate: Option<Box<dyn HealthGate + Send>>,
    flags: Option<Box<dyn FlagsWriter>>,
    command: String,
    #[cfg(feature = "notify")]
    notify: Option<NotifyConfig>,
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

    /// Delivers the rollout's notifications to these channels while the
    /// engine is open (feature `notify`).
    #[cfg(feature = "notify")]
    #[must_use]
    pub fn notify(mut self, config: NotifyConfig) -> Self {
        self.notify = Some(config);
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
    pub fn open(self) -> Result<Controller, ControllerError> {
        self.open_with_report().map(|(c, _)| c)
    }

    /// [`open`](Self::open), saying what it repaired.
    pub fn open_with_report(self) -> Result<(Controller, OpenReport), ControllerError> {
        let now = self.clock.now();
        let lock = EngineLock::acquire(&self.files.lock, &holder(&self.command, now))?;
        let mut report = OpenReport::default();
        report.swept.extend(sweep_temp_files(&self.files.state)?);
        report
            .swept
            .extend(sweep_temp_files(&self.files.published)?);
        let state = load(&self.files.state)?;
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
        for record in &state.journal {
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
        report.recovered_events = outbox.append(&state.notifications)?;
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
        #[cfg(feature = "notify")]
        let notifier = match &self.notify {
            Some(config) => Some(Notifier::start(
                config,
                outbox.clone(),
                self.files.audit.clone(),
                &format!("genesis-flags controller on {}", host_name()),
                Arc::clone(&self.clock),
            )?),
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
                #[cfg(feature = "notify")]
                notifier,
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
struct Requester {
    by: String,
    claimed: Option<String>,
    from_stage: Option<usize>,
    from_revision: Option<u64>,
}

impl Requester {
    fn direct(by: &str) -> Requester {
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

fn load(path: &Path) -> Result<RolloutState, ControllerError> {
    match RolloutState::load(path) {
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
    storage: Storage,
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
            #[cfg(feature = "notify")]
            notify: None,
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
            event: "init".into(),
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
        let commit = commit_files(
            &files,
            &mut audit,
            staged.then_some(&mut writer as &mut (dyn FlagsWriter + 'static)),
            &mut next,
            vec![AuditRecord::operation(rollout, &entry)],
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

    /// Commits `next` and its audit records by the write protocol (a
    /// policy decision or a notice: committed even when the flags file
    /// cannot be written).
    fn commit(
        &mut self,
        next: RolloutState,
        records: Vec<AuditRecord>,
    ) -> Result<Commit, ControllerError> {
        self.commit_with(next, records, Vec::new(), By::Engine)
    }

    /// Commits `next`, its audit records, the notification event of the
    /// change (if receivers hear of it) and `extra` events.
    ///
    /// The decision never depends on the flags file: a change whose flags
    /// cannot even be staged is committed anyway, with the flags pending
    /// (the running engine retries them, and the event says users still
    /// see the old percentage). One exception: a person's move *up* is
    /// refused with nothing changed, since exposing more users is never
    /// urgent and the person is there to fix the file.
    pub(super) fn commit_with(
        &mut self,
        mut next: RolloutState,
        records: Vec<AuditRecord>,
        extra: Vec<Event>,
        by: By,
    ) -> Result<Commit, ControllerError> {
        next.revision = self.state.revision;
        let mut events: Vec<Event> = records
            .first()
            .and_then(|r| Event::for_change(&self.state, &next, r, self.marks.incident.as_deref()))
            .into_iter()
            .collect();
        events.extend(extra);
        let commit = match &mut self.storage {
            Storage::Memory(log) => {
                next.notifications = events;
                next.revision += 1;
                log.extend(next.notifications.iter().cloned());
                Commit {
                    revision: next.revision,
                    pending: Vec::new(),
                    notes: Vec::new(),
                }
            }
            Storage::Files(s) => {
                let before = self.state.percentage;
                let moves = next.percentage != before;
                // 1. Stage the flags file: nothing visible yet.
                let mut staged = false;
                let mut unstaged = None;
                if let (true, Some(w)) = (moves, s.flags.as_deref_mut()) {
                    match w.prepare(&next.rollout, next.percentage) {
                        Ok(b) => staged = b,
                        Err(e) if by == By::Person && next.percentage > before => return Err(e),
                        Err(e) => {
                            w.discard();
                            unstaged = Some(e.to_string());
                        }
                    }
                }
                if let Some(error) = &unstaged {
                    for event in &mut events {
                        event.explanation.push_str(&format!(
                            "; users still see {before}: the flags file could not be written ({error}), the controller retries"
                        ));
                    }
                }
                next.notifications = events;
                let flags = if staged { s.flags.as_deref_mut() } else { None };
                let mut commit = commit_files(&s.files, &mut s.audit, flags, &mut next, records)?;
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
                #[cfg(feature = "notify")]
                if let Some(n) = &s.notifier {
                    if !next.notifications.is_empty() {
                        n.wake();
                    }
                }
                commit
            }
        };
        self.marks.observe(&next.notifications);
        self.state = next;
        Ok(commit)
    }

    /// Why the flags file does not show the committed percentage yet, if it
    /// does not.
    #[must_use]
    pub fn flags_pending(&self) -> Option<&str> {
        match &self.storage {
            Storage::Files(s) => s.flags_pending.as_deref(),
            Storage::Memory(_) => None,
        }
    }

    /// Retries publishing a committed percentage the flags file does not
    /// show (at most every [`PUBLISH_RETRY`]); the first failure of an
    /// episode is also told to receivers. Returns what happened, if it tried.
    pub fn retry_publish(&mut self) -> Option<RunEvent> {
        let now = self.clock.now();
        let rollout = self.state.rollout.clone();
        let percentage = self.state.percentage;
        let Storage::Files(s) = &mut self.storage else {
            return None;
        };
        s.flags_pending.as_ref()?;
        if s.publish_tried
            .is_some_and(|t| now.since(t) < PUBLISH_RETRY)
        {
            return None;
        }
        s.publish_tried = Some(now);
        let writer = s.flags.as_deref_mut()?;
        let outcome = writer.prepare(&rollout, percentage).and_then(|staged| {
            if staged {
                writer.publish()
            } else {
                Ok(())
            }
        });
        let outcome = match outcome {
            Ok(()) => {
                s.flags_pending = None;
                Ok(writer.take_notes())
            }
            Err(e) => {
                writer.discard();
                s.flags_pending = Some(e.to_string());
                Err(e.to_string())
            }
        };
        if let Err(error) = &outcome {
            if !s.exposure_told {
                s.exposure_told = true;
                let explanation = format!(
                    "the flags file still does not show {percentage} ({error}): users are still exposed to the old percentage; the controller retries every {}",
                    format_duration(PUBLISH_RETRY)
                );
                let _ = self.tell(EventType::IncidentUpdate, now, explanation);
            }
        }
        Some(RunEvent::Publish {
            percentage,
            outcome,
        })
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

    /// Waits up to `within` for the channels to deliver what is pending
    /// (feature `notify`); returns each channel's status (empty without
    /// channels).
    #[cfg(feature = "notify")]
    pub fn flush_notifications(&self, within: Duration) -> Vec<ChannelStatus> {
        match &self.storage {
            Storage::Files(s) => s
                .notifier
                .as_ref()
                .map(|n| n.flush(within))
                .unwrap_or_default(),
            Storage::Memory(_) => Vec::new(),
        }
    }

    /// One tick now: observe, decide, commit.
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
    fn observe(
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
    pub fn apply(&mut self, operation: &Operation, by: &str) -> Result<Applied, ControllerError> {
        self.apply_request(operation, &Requester::direct(by), None)
    }

    /// Applies an operation for `by` now, only if the rollout is still at
    /// `stage` (the stage the person saw): a second operator's `promote`
    /// sent at the same time is refused instead of skipping a stage.
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

    fn apply_request(
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
        let commit = self.commit_with(next, vec![record], Vec::new(), By::Person)?;
        Ok(Applied {
            entry,
            commit,
            opened: OpenReport::default(),
        })
    }

    /// Applies every waiting operator request and answers it. The folder is
    /// served only while others cannot write it; a request that cannot be
    /// read safely is refused and answered (see [`Mailbox`]).
    pub fn serve_requests(&mut self) -> Vec<RunEvent> {
        let Storage::Files(s) = &self.storage else {
            return Vec::new();
        };
        let mailbox = s.mailbox.clone();
        if let Some(reason) = mailbox.unsafe_folder() {
            return vec![RunEvent::RequestRefused { reason }];
        }
        let mut events = Vec::new();
        for claimed in mailbox.claim_all() {
            let (id, outcome, event) = match claimed {
                Err((id, why)) => {
                    events.push(RunEvent::RequestRefused {
                        reason: format!("request {id}: {why}"),
                    });
                    (
                        id,
                        Err(AnswerError {
                            message: why,
                            unhealthy: false,
                        }),
                        None,
                    )
                }
                Ok(Claimed { request, owner }) => {
                    let now = self.clock.now();
                    let requester = Requester {
                        claimed: (request.by != owner).then(|| request.by.clone()),
                        by: owner,
                        from_stage: request.from_stage,
                        from_revision: request.from_revision,
                    };
                    let result = if request.expires < now {
                        Err(AnswerError {
                            message: format!("the request expired at {}", request.expires),
                            unhealthy: false,
                        })
                    } else {
                        self.apply_request(&request.operation, &requester, Some(&request.id))
                            .map_err(|e| AnswerError {
                                message: e.to_string(),
                                unhealthy: e.is_unhealthy(),
                            })
                    };
                    let event = RunEvent::Operation {
                        operation: request.operation.clone(),
                        by: requester.by.clone(),
                        outcome: result.clone().map_err(|e| e.message),
                    };
                    (request.id, result, Some(event))
                }
            };
            let _ = mailbox.answer(&Answer { id, outcome });
            events.extend(event);
        }
        events
    }

    /// Ticks until the rollout completes, rolls back or pauses, `stop` is
    /// raised or `options.until` passes; serves operator requests meanwhile.
    /// A ready rollout is started first.
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

    /// When a watch of `wait` from now should end so that it never moves the
    /// rollout on its own: `wait` from now, but before the current stage's
    /// soak can end (a tick before then cannot advance). A safe deploy
    /// watches its new stage this long; the next move is a person's (another
    /// deploy) or the autopilot's (`run`).
    #[must_use]
    pub fn watch_deadline(&self, wait: Duration) -> Timestamp {
        let wait_end = self.clock.now().saturating_add(wait);
        let state = &self.state;
        match (state.phase, state.current_stage()) {
            (Phase::Soaking, Some(stage)) => {
                let soak_end = state.since.saturating_add(stage.soak);
                let before_soak_end =
                    Timestamp::from_unix_millis(soak_end.unix_millis().saturating_sub(1));
                wait_end.min(before_soak_end)
            }
            _ => wait_end,
        }
    }

    /// A safe deploy: moves to the next stage, whose percentage must be
    /// `target`, only when the current stage's soak is over and every check
    /// is Pass now with the go criteria met. Refusals name every reason and
    /// change nothing.
    pub fn deploy_safe(
        &mut self,
        target: Percentage,
        by: &str,
        options: &RunOptions,
    ) -> Result<Applied, ControllerError> {
        let now = self.clock.now();
        let state = &self.state;
        let next_stage = state.stage + 1;
        let mut reasons = Vec::new();
        match state.phase {
            Phase::Ready | Phase::Soaking => {}
            phase => reasons.push(format!(
                "the rollout is {phase}; deploy moves only a ready or soaking rollout"
            )),
        }
        match state.plan.stage(next_stage) {
            None => reasons.push(format!(
                "stage {} ({}) is the plan's last; nothing to deploy",
                state.stage, state.percentage
            )),
            Some(stage) if stage.percentage != target => reasons.push(format!(
                "--strategy safe moves only to the next stage of the plan: stage {next_stage} is {}, not {target}",
                stage.percentage
            )),
            Some(_) => {}
        }
        if let (Phase::Soaking, Some(stage)) = (state.phase, state.current_stage()) {
            let ends = state.since.saturating_add(stage.soak);
            if now < ends {
                reasons.push(format!(
                    "stage {}'s soak of {} ends at {ends} ({} left)",
                    state.stage,
                    format_duration(stage.soak),
                    format_duration(ends.since(now))
                ));
            }
        }
        if !reasons.is_empty() {
            return Err(ControllerError::NotSafe {
                reasons,
                unhealthy: false,
            });
        }
        // Every check must pass now, and the go criteria hold.
        let observation = self.observe(now, options)?;
        let tier_name = self.state.tier_name().to_owned();
        if self.state.plan.tier(&tier_name).is_none() {
            return Err(ControllerError::NotSafe {
                reasons: vec![format!("the plan has no tier {tier_name:?}")],
                unhealthy: false,
            });
        }
        // The policy's own verdicts: the global checks and, when the gate
        // sees cohort series, the in-cohort, in-vs-out, fleet and sample
        // checks with the stage's ledger.
        let verdicts = crate::rollout::decide(&self.state, &observation, now).verdicts;
        let mut unhealthy = false;
        // At 0% nobody is flagged: the in cohort is empty, so its checks
        // (and the in-vs-out comparison) cannot speak yet and never block
        // the first stage. The global checks and the fleet still do.
        let nobody_flagged = self.state.percentage == Percentage::ZERO;
        let judged = verdicts
            .checks()
            .filter(|c| !(nobody_flagged && c.check.needs_flagged_users()));
        for c in judged {
            match c.verdict {
                Verdict::Pass if c.go => {}
                Verdict::Pass => reasons.push(format!(
                    "{}: {} misses the go criterion ({})",
                    c.check,
                    c.value.map_or_else(|| "-".into(), |v| format!("{v:.3}")),
                    c.detail
                )),
                Verdict::Breach => {
                    unhealthy = true;
                    reasons.push(format!(
                        "{}: breach, {} against a threshold of {} ({tier_name} tier) {}",
                        c.check,
                        c.value.map_or_else(|| "-".into(), |v| format!("{v:.3}")),
                        c.threshold.map_or_else(|| "-".into(), |v| format!("{v}")),
                        c.detail
                    ));
                }
                Verdict::NoData | Verdict::Error => reasons.push(format!(
                    "{}: {} — deploy never moves blind ({})",
                    c.check, c.verdict, c.detail
                )),
            }
        }
        if !reasons.is_empty() {
            return Err(ControllerError::NotSafe { reasons, unhealthy });
        }
        let op = if self.state.phase == Phase::Ready {
            Operation::Start
        } else {
            Operation::Promote {
                reason: format!("deploy --strategy safe --target-percentage {target}"),
            }
        };
        self.apply(&op, by)
    }

    /// Sends `operation` to the engine holding the lock of `state` and waits
    /// for its answer; when no engine holds it, opens the state and applies
    /// the operation directly. A request not answered in time is withdrawn:
    /// an `Err` means nothing changed.
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
                    let current = load(&files.state)?;
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

/// The write protocol on files (see the module docs).
fn commit_files(
    files: &ControllerFiles,
    audit: &mut AuditLog,
    mut flags: Option<&mut (dyn FlagsWriter + 'static)>,
    next: &mut RolloutState,
    mut records: Vec<AuditRecord>,
) -> Result<Commit, ControllerError> {
    // 1. The caller staged the flags file (nothing visible yet): `flags`
    // is the writer holding it.
    let staged = flags.is_some();
    // 2. Commit: the state, with the journal of this change.
    next.revision += 1;
    for r in &mut records {
        r.revision = Some(next.revision);
    }
    next.journal = records;
    if let Err(e) = next.save(&files.state) {
        if let Some(w) = flags.as_deref_mut() {
            w.discard();
        }
        return Err(e.into());
    }
    crate::failpoint::failpoint("controller.committed");
    let mut pending = Vec::new();
    let mut notes = Vec::new();
    // 3. Publish the flags file.
    if staged {
        if let Some(w) = flags {
            match w.publish() {
                Ok(()) => notes = w.take_notes(),
                Err(e) => pending.push(Pending::Flags {
                    error: e.to_string(),
                }),
            }
        }
    }
    crate::failpoint::failpoint("controller.published");
    // 4. Append the audit records.
    for record in &next.journal {
        if let Err(e) = audit.append(record) {
            pending.push(Pending::Audit {
                error: e.to_string(),
            });
            break;
        }
    }
    // 5. Append the notification events to the outbox: the senders pick
    // them up from there.
    if !next.notifications.is_empty() {
        if let Err(e) = Outbox::beside(&files.state).append(&next.notifications) {
            pending.push(Pending::Outbox {
                error: e.to_string(),
            });
        }
    }
    Ok(Commit {
        revision: next.revision,
        pending,
        notes,
    })
}

/// Who is at the keyboard: the user name of the process's real user id
/// (never `$USER`, which anyone can set). Elsewhere than Unix, `$USER` or
/// `operator`.
#[must_use]
pub fn operator_name() -> String {
    #[cfg(unix)]
    {
        user_name(nix::unistd::getuid().as_raw())
    }
    #[cfg(not(unix))]
    {
        std::env::var("USER")
            .ok()
            .filter(|u| !u.trim().is_empty())
            .unwrap_or_else(|| "operator".to_owned())
    }
}

/// The flags path as the state records it: relative to the state file's
/// folder when it lies under it (so a moved folder keeps working and never
/// writes the old place), absolute otherwise.
fn stored_flags_path(state: &Path, flags: &Path) -> PathBuf {
    let folder = std::path::absolute(state)
        .ok()
        .and_then(|s| s.parent().map(Path::to_path_buf));
    folder
        .and_then(|f| flags.strip_prefix(&f).ok().map(Path::to_path_buf))
        .filter(|rel| !rel.as_os_str().is_empty())
        .unwrap_or_else(|| flags.to_path_buf())
}

/// The flags path a state records, resolved: a relative one is taken from
/// the state file's folder (older states record absolute paths).
pub(super) fn resolve_flags_path(state: &Path, recorded: &Path) -> PathBuf {
    if recorded.is_absolute() {
        return recorded.to_path_buf();
    }
    let folder = state.parent().unwrap_or(Path::new(""));
    let joined = folder.join(recorded);
    std::path::absolute(&joined).unwrap_or(joined)
}
