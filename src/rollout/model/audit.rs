//! The history of a rollout: [`HistoryEntry`] (kept in the state),
//! [`AuditRecord`] (one line of the audit log, with the figures behind a
//! decision) and the append-only [`AuditLog`].

use crate::config::strip_position;
use crate::FileError;
use crate::JsonError;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::change::{AuditEvent, ChangeKind};
use super::decision::{Decision, Explanation};
use super::gate::Observation;
use super::verdict::Verdicts;
use crate::rollout::foundation::clock::Timestamp;
use crate::rollout::foundation::state_error::StateError;
use crate::Percentage;

/// One event of a rollout's history: every decision but Hold, and every
/// manual operation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// When.
    pub at: Timestamp,
    /// What changed (`start`, `advance`, `rollback`, ... on disk).
    pub event: ChangeKind,
    /// The stage after the event.
    pub stage: usize,
    /// The percentage after the event.
    pub percentage: Percentage,
    /// Why.
    pub why: String,
    /// `policy` or the person who acted (for a request served by a running
    /// engine, the owner of the request file).
    pub by: String,
    /// What the request said its sender was, when that differs from `by`:
    /// a claim, recorded but never trusted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claimed_by: Option<String>,
    /// The operator request that asked for it, when a running engine
    /// applied it for someone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
}

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// When.
    pub at: Timestamp,
    /// The rollout.
    pub rollout: String,
    /// What the record is about: a tick that held, a change (the policy's
    /// or a person's), a notice (`hold`, `advance`, `sign_off`, ... on disk).
    pub event: AuditEvent,
    /// The stage and percentage before the event.
    pub stage: usize,
    /// The percentage before the event.
    pub percentage: Percentage,
    /// The tier that applied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tier: Option<String>,
    /// Why, with the figures.
    pub explanation: Explanation,
    /// Every check of the tick.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verdicts: Option<Verdicts>,
    /// What the gate saw.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observation: Option<Observation>,
    /// `policy`, or who acted.
    pub by: String,
    /// What the request said its sender was, when that differs from `by`
    /// (e.g. the name given on the status page): recorded, never trusted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claimed_by: Option<String>,
    /// The state revision that committed this record (engine writes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<u64>,
}

impl AuditRecord {
    /// The record of a policy decision and the observation behind it.
    #[must_use]
    pub fn decision(rollout: &str, decision: &Decision, observation: &Observation) -> Self {
        AuditRecord {
            at: decision.at,
            rollout: rollout.to_owned(),
            event: decision.action.audit_event(),
            stage: decision.stage,
            percentage: decision.percentage,
            tier: Some(decision.tier.clone()),
            explanation: decision.explanation.clone(),
            verdicts: Some(decision.verdicts.clone()),
            observation: Some(observation.clone()),
            by: "policy".to_owned(),
            claimed_by: None,
            revision: None,
        }
    }

    /// The record of a manual operation.
    #[must_use]
    pub fn operation(rollout: &str, entry: &HistoryEntry) -> Self {
        AuditRecord {
            at: entry.at,
            rollout: rollout.to_owned(),
            event: entry.event.into(),
            stage: entry.stage,
            percentage: entry.percentage,
            tier: None,
            explanation: Explanation::says(entry.why.clone()),
            verdicts: None,
            observation: None,
            by: entry.by.clone(),
            claimed_by: entry.claimed_by.clone(),
            revision: None,
        }
    }
}

/// An append-only audit log: one JSON object per line, synced per record.
#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    file: File,
}

impl AuditLog {
    /// Opens (creating if needed) the log for appending.
    ///
    /// # Errors
    ///
    /// `StateError::Io` when the log cannot be created or opened for appending.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StateError> {
        let path = path.as_ref().to_path_buf();
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|source| {
                StateError::Io(FileError::new(
                    "cannot open the audit log",
                    path.clone(),
                    source,
                ))
            })?;
        Ok(AuditLog { path, file })
    }

    /// Appends one record and syncs it to disk.
    ///
    /// # Errors
    ///
    /// `StateError::Io` when the line cannot be written or synced.
    pub fn append(&mut self, record: &AuditRecord) -> Result<(), StateError> {
        let io = |source| {
            StateError::Io(FileError::new(
                "cannot append to the audit log",
                self.path.clone(),
                source,
            ))
        };
        let mut line = serde_json::to_vec(record).map_err(|e| io(io::Error::other(e)))?;
        line.push(b'\n');
        // One write of the whole line: with O_APPEND it lands in one piece.
        self.file.write_all(&line).map_err(io)?;
        self.file.sync_data().map_err(io)
    }

    /// The revision of the last record of the log at `path` that carries
    /// one (`None` for a missing or empty log). Reads only the log's tail.
    ///
    /// # Errors
    ///
    /// `StateError::Io` when the log exists but cannot be read.
    pub fn last_revision(path: impl AsRef<Path>) -> Result<Option<u64>, StateError> {
        let path = path.as_ref();
        let io = |source| {
            StateError::Io(FileError::new(
                "cannot read the audit log",
                path.to_path_buf(),
                source,
            ))
        };
        let mut file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(e)),
        };
        let len = file.metadata().map_err(io)?.len();
        // Records are a few kB; the tail holds the last complete ones.
        let from = len.saturating_sub(1 << 20);
        file.seek(SeekFrom::Start(from)).map_err(io)?;
        let mut tail = Vec::new();
        file.read_to_end(&mut tail).map_err(io)?;
        #[derive(Deserialize)]
        struct Revision {
            revision: Option<u64>,
        }
        Ok(tail
            .split(|b| *b == b'\n')
            .rev()
            .filter_map(|line| serde_json::from_slice::<Revision>(line).ok())
            .find_map(|r| r.revision))
    }

    /// Reads every record of a log (for reports and tests).
    ///
    /// # Errors
    ///
    /// `StateError::Io` when the log cannot be read; `StateError::Corrupt`
    /// naming the line that is not an audit record.
    pub fn read(path: impl AsRef<Path>) -> Result<Vec<AuditRecord>, StateError> {
        let path = path.as_ref();
        let text = fs::read_to_string(path).map_err(|source| {
            StateError::Io(FileError::new(
                "cannot read the audit log",
                path.to_path_buf(),
                source,
            ))
        })?;
        text.lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| {
                serde_json::from_str(l).map_err(|e| StateError::Corrupt {
                    path: path.to_path_buf(),
                    error: JsonError::new(i + 1, e.column(), strip_position(&e)),
                })
            })
            .collect()
    }
}
