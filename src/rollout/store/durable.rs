//! Durable rollout state: atomic saves (temp file in the same folder, fsync,
//! rename, fsync of the folder; see [`StagedFile`](crate::rollout::StagedFile)),
//! strict loads, and an append-only audit log of JSON lines.

use std::io;
use std::path::{Path, PathBuf};

pub use crate::rollout::foundation::atomic::write_atomically;
pub use crate::rollout::foundation::state_error::StateError;
use crate::rollout::model::phase::Phase;
use crate::rollout::model::state::{RolloutState, STATE_SCHEMA};
use crate::Percentage;

impl RolloutState {
    /// Saves the state atomically (see the module docs).
    ///
    /// # Errors
    ///
    /// `StateError::Io` when the file cannot be written atomically.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), StateError> {
        let path = path.as_ref();
        let mut text = serde_json::to_vec_pretty(self).map_err(|e| StateError::Io {
            action: "cannot serialise the state for",
            path: path.to_path_buf(),
            source: io::Error::other(e),
        })?;
        text.push(b'\n');
        crate::failpoint::fail_io("state.save").map_err(|source| StateError::Io {
            action: "cannot save the state to",
            path: path.to_path_buf(),
            source,
        })?;
        write_atomically(path, &text)
    }

    /// Loads a saved state. A truncated, corrupt or inconsistent file is an
    /// error; it is never silently reset.
    ///
    /// # Errors
    ///
    /// `StateError::Io` when the file cannot be read; `Corrupt` (with the line
    /// and column), `Schema` or `Inconsistent` when it is not a state this
    /// version can use.
    pub fn load(path: impl AsRef<Path>) -> Result<RolloutState, StateError> {
        let path = path.as_ref();
        let text =
            crate::rollout::foundation::read::read_text(path).map_err(|source| StateError::Io {
                action: "cannot read",
                path: path.to_path_buf(),
                source,
            })?;
        RolloutState::from_json(&text).map_err(|e| e.at(path))
    }

    /// Parses a saved state (see [`load`](Self::load)).
    ///
    /// # Errors
    ///
    /// `StateError::Corrupt`, `Schema` or `Inconsistent` as for
    /// [`load`](Self::load).
    pub fn from_json(text: &str) -> Result<RolloutState, StateError> {
        let corrupt = |e: serde_json::Error| StateError::Corrupt {
            path: PathBuf::new(),
            line: e.line(),
            column: e.column(),
            message: crate::config::strip_position(&e),
        };
        // The schema first, so a newer file says so instead of "unknown field".
        let value: serde_json::Value = serde_json::from_str(text).map_err(corrupt)?;
        let schema = value.get("schema").and_then(serde_json::Value::as_u64);
        if schema != Some(u64::from(STATE_SCHEMA)) {
            return Err(StateError::Schema {
                path: PathBuf::new(),
                found: schema.unwrap_or(0),
                expected: STATE_SCHEMA,
            });
        }
        let state: RolloutState = serde_json::from_str(text).map_err(corrupt)?;
        state.check().map_err(|message| StateError::Inconsistent {
            path: PathBuf::new(),
            message,
        })?;
        Ok(state)
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
