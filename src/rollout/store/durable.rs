//! The state file: atomic saves (temp file in the same folder, fsync,
//! rename, fsync of the folder; see [`StagedFile`](crate::rollout::files::StagedFile)),
//! strict loads.
//!
//! The file holds the domain state ([`RolloutState`]) and, beside its
//! fields, the write-ahead log of the last committed change: its audit
//! records (`journal`) and notification events (`notifications`), kept
//! until the next change so a crash between the commit and the appends
//! loses nothing. The log is the store's ([`Committed`]); the domain value
//! never carries it, and [`RolloutState::load`] reads a state file with or
//! without one.

use crate::FileError;
use std::io;
use std::path::{Path, PathBuf};

pub use crate::rollout::foundation::atomic::write_atomically;
pub use crate::rollout::foundation::state_error::StateError;
use serde::Serialize;

use crate::rollout::model::audit::AuditRecord;
use crate::rollout::model::event::Event;
use crate::rollout::model::phase::Phase;
use crate::rollout::model::state::{RolloutState, STATE_SCHEMA};
use crate::{JsonError, Percentage};

/// The keys of the write-ahead log beside the state's fields in the file.
const JOURNAL: &str = "journal";
const NOTIFICATIONS: &str = "notifications";

/// A committed change as the state file holds it: the state after it, and
/// its write-ahead log (the audit records and notification events, each
/// stamped with the state's revision).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Committed {
    /// The state after the change.
    pub(crate) state: RolloutState,
    /// The change's audit records.
    pub(crate) journal: Vec<AuditRecord>,
    /// The change's notification events.
    pub(crate) notifications: Vec<Event>,
}

/// The file's shape: the state's fields, then the log (omitted when empty),
/// exactly as the state file has always been written.
#[derive(Serialize)]
struct StateFileOut<'a> {
    #[serde(flatten)]
    state: &'a RolloutState,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    journal: &'a [AuditRecord],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    notifications: &'a [Event],
}

impl Committed {
    /// Saves the state and its log atomically.
    pub(crate) fn save(&self, path: &Path) -> Result<(), StateError> {
        save_json(
            path,
            &StateFileOut {
                state: &self.state,
                journal: &self.journal,
                notifications: &self.notifications,
            },
        )
    }

    /// Loads a state file with its log (an empty one when it has none).
    pub(crate) fn load(path: &Path) -> Result<Committed, StateError> {
        let text = read_state_text(path)?;
        parse_state_file(&text).map_err(|e| e.at(path))
    }
}

fn save_json(path: &Path, value: &impl Serialize) -> Result<(), StateError> {
    let mut text = serde_json::to_vec_pretty(value).map_err(|e| {
        StateError::Io(FileError::new(
            "cannot serialise the state for",
            path.to_path_buf(),
            io::Error::other(e),
        ))
    })?;
    text.push(b'\n');
    crate::failpoint::fail_io("state.save").map_err(|source| {
        StateError::Io(FileError::new(
            "cannot save the state to",
            path.to_path_buf(),
            source,
        ))
    })?;
    write_atomically(path, &text)
}

fn read_state_text(path: &Path) -> Result<String, StateError> {
    crate::rollout::foundation::read::read_text(path)
        .map_err(|source| StateError::Io(FileError::new("cannot read", path.to_path_buf(), source)))
}

fn corrupt(error: JsonError) -> StateError {
    StateError::Corrupt {
        path: PathBuf::new(),
        error,
    }
}

/// Parses a state file: the schema first (so a newer file says so instead
/// of "unknown field"), the log taken out, then the state, strictly.
fn parse_state_file(text: &str) -> Result<Committed, StateError> {
    let mut value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| corrupt(JsonError::from_serde(&e)))?;
    let schema = value.get("schema").and_then(serde_json::Value::as_u64);
    if schema != Some(u64::from(STATE_SCHEMA)) {
        return Err(StateError::Schema {
            path: PathBuf::new(),
            found: schema.unwrap_or(0),
            expected: STATE_SCHEMA,
        });
    }
    let (journal, notifications) = match value.as_object_mut() {
        Some(map) => (
            take_log(text, map.remove(JOURNAL), JOURNAL)?,
            take_log(text, map.remove(NOTIFICATIONS), NOTIFICATIONS)?,
        ),
        None => (Vec::new(), Vec::new()),
    };
    let state: RolloutState = match serde_json::from_value(value) {
        Ok(state) => state,
        Err(e) => return Err(positioned(text, &e)),
    };
    state.check().map_err(|message| StateError::Inconsistent {
        path: PathBuf::new(),
        message,
    })?;
    Ok(Committed {
        state,
        journal,
        notifications,
    })
}

/// One part of the log, or the error with the line of its key.
fn take_log<T: serde::de::DeserializeOwned>(
    text: &str,
    value: Option<serde_json::Value>,
    key: &str,
) -> Result<Vec<T>, StateError> {
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    serde_json::from_value(value)
        .map_err(|e| corrupt(JsonError::at_key(text, key, format!("{key}: {e}"))))
}

/// The error of the state's fields, with its position in the text: the
/// strict parser of the whole text finds the same error at its place when
/// it comes before the log's keys (always, in files this crate writes).
fn positioned(text: &str, error: &serde_json::Error) -> StateError {
    let message = error.to_string();
    match serde_json::from_str::<RolloutState>(text) {
        Err(e) if crate::config::strip_position(&e) == message => {
            corrupt(JsonError::from_serde(&e))
        }
        _ => corrupt(JsonError::new(0, 0, message)),
    }
}

impl RolloutState {
    /// Saves the state atomically (see the module docs).
    ///
    /// # Errors
    ///
    /// `StateError::Io` when the file cannot be written atomically.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), StateError> {
        save_json(path.as_ref(), self)
    }

    /// Loads a saved state. A truncated, corrupt or inconsistent file is an
    /// error; it is never silently reset. A file an engine wrote also holds
    /// the last change's write-ahead log; it is read and left aside.
    ///
    /// # Errors
    ///
    /// `StateError::Io` when the file cannot be read; `Corrupt` (with the line
    /// and column), `Schema` or `Inconsistent` when it is not a state this
    /// version can use.
    pub fn load(path: impl AsRef<Path>) -> Result<RolloutState, StateError> {
        Committed::load(path.as_ref()).map(|c| c.state)
    }

    /// Parses a saved state (see [`load`](Self::load)).
    ///
    /// # Errors
    ///
    /// `StateError::Corrupt`, `Schema` or `Inconsistent` as for
    /// [`load`](Self::load).
    pub fn from_json(text: &str) -> Result<RolloutState, StateError> {
        parse_state_file(text).map(|c| c.state)
    }

    fn check(&self) -> Result<(), String> {
        self.plan.validate().map_err(|e| e.to_string())?;
        if self.stage > self.plan.stages.len() {
            return Err(format!(
                "stage {} but the plan has {} stages",
                self.stage,
                self.plan.stages.len()
            ));
        }
        let expected = self
            .plan
            .stage(self.stage)
            .map_or(Percentage::ZERO, |s| s.percentage);
        if self.percentage != expected {
            return Err(format!(
                "stage {} is {expected} in the plan but the state says {}",
                self.stage, self.percentage
            ));
        }
        let started = !matches!(self.phase, Phase::Ready | Phase::RolledBack);
        if started != (self.stage > 0) && self.phase != Phase::Paused {
            return Err(format!("phase {} at stage {}", self.phase, self.stage));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollout::{Plan, Timestamp};

    /// A started rollout and the change that started it, stamped.
    fn committed() -> Committed {
        let t = Timestamp::from_unix_millis(1_700_000_000_000);
        let before = RolloutState::new("r", Plan::six_day(), t);
        let mut state = before.clone();
        let entry = state.start(t, "ops").unwrap();
        state.revision = 3;
        let mut record = AuditRecord::operation("r", &entry);
        record.revision = Some(3);
        let mut event = Event::for_change(&before, &state, &record, None).unwrap();
        event.revision = 3;
        Committed {
            state,
            journal: vec![record],
            notifications: vec![event],
        }
    }

    #[test]
    fn the_log_is_beside_the_state_in_the_file_and_not_in_the_domain_value() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let c = committed();
        c.save(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value[JOURNAL][0]["event"], "start", "{text}");
        assert_eq!(value[NOTIFICATIONS][0]["revision"], 3, "{text}");
        // The log's keys come last, after every field of the state.
        let state_keys = serde_json::to_value(&c.state).unwrap();
        let state_keys = state_keys.as_object().unwrap();
        assert!(!state_keys.contains_key(JOURNAL) && !state_keys.contains_key(NOTIFICATIONS));
        let last_state_key = state_keys
            .keys()
            .map(|k| text.find(&format!("\"{k}\"")).unwrap())
            .max();
        assert!(last_state_key < text.find("\"journal\""));
        // Both loaders read it; the domain one leaves the log aside.
        assert_eq!(Committed::load(&path).unwrap(), c);
        assert_eq!(RolloutState::load(&path).unwrap(), c.state);
        // A state saved by itself has no log, and loads the same.
        c.state.save(&path).unwrap();
        let loaded = Committed::load(&path).unwrap();
        assert_eq!(loaded.state, c.state);
        assert!(loaded.journal.is_empty() && loaded.notifications.is_empty());
    }

    #[test]
    fn a_bad_log_or_an_unknown_field_is_corrupt_with_its_position() {
        let c = committed();
        let mut value = serde_json::to_value(&c.state).unwrap();
        value[JOURNAL] = serde_json::json!([{ "nonsense": true }]);
        let text = serde_json::to_string_pretty(&value).unwrap();
        match RolloutState::from_json(&text) {
            Err(StateError::Corrupt { error, .. }) => {
                let (line, message) = (error.line, error.message);
                assert!(message.starts_with("journal: "), "{message}");
                let want = text
                    .lines()
                    .position(|l| l.contains("\"journal\""))
                    .unwrap()
                    + 1;
                assert_eq!(line, want);
            }
            other => panic!("{other:?}"),
        }
        let mut value = serde_json::to_value(&c.state).unwrap();
        value["stagee"] = serde_json::json!(1);
        let text = serde_json::to_string_pretty(&value).unwrap();
        match RolloutState::from_json(&text) {
            Err(StateError::Corrupt { error, .. }) => {
                let (line, message) = (error.line, error.message);
                assert!(message.contains("unknown field `stagee`"), "{message}");
                assert!(line > 1, "{line}");
            }
            other => panic!("{other:?}"),
        }
    }
}

#[cfg(test)]
mod older_files {
    use super::*;

    /// A state file written before the log left the domain state (an engine
    /// of the previous layout: `init`, `promote`, `pause`).
    const WRITTEN_BEFORE: &str = include_str!("../../../tests/data/state/paused-with-log.json");

    #[test]
    fn a_state_file_written_before_loads_and_is_written_back_byte_for_byte() {
        let c = parse_state_file(WRITTEN_BEFORE).unwrap();
        assert_eq!(c.state.revision, 3);
        assert_eq!(c.state.phase, Phase::Paused);
        assert_eq!(c.journal.len(), 1);
        assert_eq!(c.journal[0].revision, Some(3));
        assert_eq!(c.notifications.len(), 1);
        assert_eq!(
            RolloutState::from_json(WRITTEN_BEFORE).unwrap(),
            c.state,
            "the domain loader reads the same state"
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        c.save(&path).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), WRITTEN_BEFORE);
    }
}
