//! The durable outbox of a rollout: the events (`S.outbox.jsonl`), one
//! delivery cursor per channel (`S.cursors/<channel>.json`) and the log of
//! deliveries and give-ups (`S.deliveries.jsonl`), beside the state file
//! `S`.
//!
//! The controller engine commits a change's events inside the state (like
//! its audit records), then appends them here; a crash between the two is
//! repaired by the next open. A channel's sender reads the events after its
//! cursor, delivers them in order and moves the cursor: what is after the
//! cursor is pending, also across a `kill -9`.

use crate::FileError;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::rollout::files::{sweep_temp_files, write_atomically};
use crate::rollout::foundation::notify_error::NotifyError;
use crate::rollout::model::event::{ChannelKind, Event};
use crate::rollout::Timestamp;

/// The outbox files of the state file `S`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outbox {
    /// `S.outbox.jsonl`: every event, one JSON object per line.
    pub events: PathBuf,
    /// `S.cursors/`: one file per channel.
    pub cursors: PathBuf,
    /// `S.deliveries.jsonl`: every delivery and give-up.
    pub deliveries: PathBuf,
}

/// Where a channel stands: the last event it was given (delivered or given
/// up).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// The channel (`webhook:1`, `slack`, `pagerduty`, `email`).
    pub channel: String,
    /// The revision of the last event handed over or given up.
    pub revision: u64,
}

/// How a delivery ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryOutcome {
    /// The receiver accepted it.
    Delivered,
    /// It kept failing past the give-up bound, or was refused for good.
    GivenUp,
}

/// One line of the delivery log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// The event id.
    pub id: String,
    /// The event type.
    #[serde(rename = "type")]
    pub kind: String,
    /// The channel.
    pub channel: String,
    /// When it ended.
    pub at: Timestamp,
    /// How.
    pub outcome: DeliveryOutcome,
    /// Attempts made.
    pub attempts: u32,
    /// The last error, if any attempt failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A channel's pending events.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PendingDeliveries {
    /// The channel.
    pub channel: String,
    /// The ids of the events not yet delivered, oldest first.
    pub pending: Vec<String>,
    /// The oldest pending event's time.
    pub oldest: Option<Timestamp>,
    /// The channel's last failed attempt, from the delivery log... or
    /// `None`.
    pub last_error: Option<String>,
}

fn io<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> NotifyError + 'a {
    move |source| NotifyError::Io(FileError::new(action, path.to_path_buf(), source))
}

/// Reads JSON lines; a torn last line (a writer killed mid-append, without
/// its newline) is ignored, any other bad line is an error.
fn read_lines<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Vec<T>, NotifyError> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io("cannot read", path)(e)),
    };
    let complete = text.ends_with('\n');
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str(line) {
            Ok(v) => out.push(v),
            Err(_) if i + 1 == lines.len() && !complete => {}
            Err(e) => {
                return Err(NotifyError::Corrupt {
                    path: path.to_path_buf(),
                    line: i + 1,
                    message: e.to_string(),
                })
            }
        }
    }
    Ok(out)
}

/// Appends JSON lines. `repair` (the events file, whose one writer holds
/// the engine lock) first cuts a torn last line left by a killed writer.
fn append_lines<T: Serialize>(path: &Path, items: &[T], repair: bool) -> Result<(), NotifyError> {
    if items.is_empty() {
        return Ok(());
    }
    let mut bytes = Vec::new();
    for item in items {
        serde_json::to_writer(&mut bytes, item)
            .map_err(|e| io("cannot write", path)(io::Error::other(e)))?;
        bytes.push(b'\n');
    }
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(io("cannot open", path))?;
    // A torn line left by a killed writer would glue onto ours: cut it (it
    // was never read as an event).
    if let Some(existing) = repair.then(|| fs::read(path).ok()).flatten() {
        if existing.last().is_some_and(|l| *l != b'\n') {
            let keep = existing
                .iter()
                .rposition(|b| *b == b'\n')
                .map_or(0, |i| i + 1);
            file.set_len(keep as u64)
                .map_err(io("cannot cut the torn line of", path))?;
        }
    }
    // One write: with O_APPEND it lands in one piece.
    file.write_all(&bytes)
        .map_err(io("cannot append to", path))?;
    file.sync_data().map_err(io("cannot sync", path))
}

impl Outbox {
    /// The outbox of the state file `state`.
    #[must_use]
    pub fn beside(state: &Path) -> Outbox {
        let with = |suffix: &str| {
            let mut name = state
                .file_name()
                .map_or_else(|| "rollout-state".into(), |n| n.to_os_string());
            name.push(suffix);
            state.with_file_name(name)
        };
        Outbox {
            events: with(".outbox.jsonl"),
            cursors: with(".cursors"),
            deliveries: with(".deliveries.jsonl"),
        }
    }

    /// Every event, oldest first.
    ///
    /// # Errors
    ///
    /// `NotifyError::Io` when the outbox cannot be read; `Corrupt` naming a
    /// line that is not an event.
    pub fn read(&self) -> Result<Vec<Event>, NotifyError> {
        read_lines(&self.events)
    }

    /// The revision of the newest event (0 when there is none).
    ///
    /// # Errors
    ///
    /// As [`read`](Self::read).
    pub fn last_revision(&self) -> Result<u64, NotifyError> {
        Ok(self.read()?.last().map_or(0, |e| e.revision))
    }

    /// Appends the events newer than the newest already there (so appending
    /// a committed change twice, after a crash, adds it once). Returns how
    /// many were appended.
    ///
    /// # Errors
    ///
    /// As [`read`](Self::read); `NotifyError::Io` when the events cannot be
    /// written or synced.
    pub fn append(&self, events: &[Event]) -> Result<usize, NotifyError> {
        let last = self.last_revision()?;
        let new: Vec<&Event> = events.iter().filter(|e| e.revision > last).collect();
        append_lines(&self.events, &new, true)?;
        Ok(new.len())
    }

    /// The open incident: the `incident` of the newest event that carries
    /// one, unless that event closed it.
    ///
    /// # Errors
    ///
    /// As [`read`](Self::read).
    pub fn open_incident(&self) -> Result<Option<String>, NotifyError> {
        Ok(open_incident(&self.read()?))
    }

    fn cursor_path(&self, channel: &str) -> PathBuf {
        let safe: String = channel
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        self.cursors.join(format!("{safe}.json"))
    }

    /// A channel's cursor, `None` for a channel never started.
    ///
    /// # Errors
    ///
    /// `NotifyError::Io` when the cursor file cannot be read; `Corrupt` when it
    /// is not a cursor.
    pub fn cursor(&self, channel: &str) -> Result<Option<u64>, NotifyError> {
        let path = self.cursor_path(channel);
        match fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str::<Cursor>(&text)
                .map(|c| Some(c.revision))
                .map_err(|e| NotifyError::Corrupt {
                    path,
                    line: e.line(),
                    message: e.to_string(),
                }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io("cannot read", &path)(e)),
        }
    }

    /// Moves a channel's cursor (atomically, durably).
    ///
    /// # Errors
    ///
    /// `NotifyError::Io` when the cursor cannot be written atomically.
    pub fn set_cursor(&self, channel: &str, revision: u64) -> Result<(), NotifyError> {
        fs::create_dir_all(&self.cursors).map_err(io("cannot create", &self.cursors))?;
        let path = self.cursor_path(channel);
        let text = serde_json::to_vec(&Cursor {
            channel: channel.to_owned(),
            revision,
        })
        .map_err(|e| io("cannot write", &path)(io::Error::other(e)))?;
        write_atomically(&path, &text).map_err(|e| {
            NotifyError::Io(FileError::new(
                "cannot write the cursor",
                path.clone(),
                io::Error::other(e.to_string()),
            ))
        })
    }

    /// Removes the temporary files killed cursor writers left (the caller
    /// holds the engine lock, so no sender of another engine writes).
    ///
    /// # Errors
    ///
    /// `NotifyError::Io` when the folder cannot be read or a leftover cannot be
    /// removed.
    pub fn sweep(&self) -> Result<Vec<PathBuf>, NotifyError> {
        let entries = match fs::read_dir(&self.cursors) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io("cannot list", &self.cursors)(e)),
        };
        let mut targets: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let target = name.strip_prefix('.')?.rsplit_once(".tmp-")?.0.to_owned();
                Some(self.cursors.join(target))
            })
            .collect();
        targets.sort();
        targets.dedup();
        let mut removed = Vec::new();
        for t in targets {
            removed.extend(sweep_temp_files(&t).map_err(|e| {
                NotifyError::Io(FileError::new(
                    "cannot sweep",
                    t.clone(),
                    io::Error::other(e.to_string()),
                ))
            })?);
        }
        Ok(removed)
    }

    /// Every channel that has a cursor.
    ///
    /// # Errors
    ///
    /// `NotifyError::Io` when the folder or a cursor cannot be read; `Corrupt`
    /// for a cursor that is not one.
    pub fn channels(&self) -> Result<Vec<Cursor>, NotifyError> {
        let entries = match fs::read_dir(&self.cursors) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io("cannot list", &self.cursors)(e)),
        };
        let mut cursors = Vec::new();
        for entry in entries {
            let path = entry.map_err(io("cannot list", &self.cursors))?.path();
            if path.extension().is_some_and(|e| e == "json")
                && !path
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
            {
                let text = fs::read_to_string(&path).map_err(io("cannot read", &path))?;
                if let Ok(c) = serde_json::from_str::<Cursor>(&text) {
                    cursors.push(c);
                }
            }
        }
        cursors.sort_by(|a, b| a.channel.cmp(&b.channel));
        Ok(cursors)
    }

    /// Records a delivery or a give-up.
    ///
    /// # Errors
    ///
    /// `NotifyError::Io` when the line cannot be appended.
    pub fn record(&self, delivery: &Delivery) -> Result<(), NotifyError> {
        append_lines(&self.deliveries, std::slice::from_ref(delivery), false)
    }

    /// Every delivery and give-up, oldest first. The log is written by
    /// every channel's thread: a line a killed process left torn is
    /// skipped.
    ///
    /// # Errors
    ///
    /// `NotifyError::Io` when the log cannot be read.
    pub fn deliveries(&self) -> Result<Vec<Delivery>, NotifyError> {
        let text = match fs::read_to_string(&self.deliveries) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io("cannot read", &self.deliveries)(e)),
        };
        Ok(text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect())
    }

    /// What every channel with a cursor has still to deliver.
    ///
    /// # Errors
    ///
    /// As [`read`](Self::read) and [`channels`](Self::channels).
    pub fn pending(&self) -> Result<Vec<PendingDeliveries>, NotifyError> {
        let events = self.read()?;
        let mut out = Vec::new();
        for cursor in self.channels()? {
            let Some(kind) = ChannelKind::of(&cursor.channel) else {
                continue;
            };
            let pending: Vec<&Event> = events
                .iter()
                .filter(|e| e.revision > cursor.revision && kind.wants(e))
                .collect();
            out.push(PendingDeliveries {
                channel: cursor.channel.clone(),
                pending: pending.iter().map(|e| e.id.clone()).collect(),
                oldest: pending.first().map(|e| e.at),
                last_error: None,
            });
        }
        Ok(out)
    }
}

/// The open incident of a list of events (see [`Outbox::open_incident`]).
#[must_use]
pub fn open_incident(events: &[Event]) -> Option<String> {
    let last = events.iter().rev().find(|e| e.incident.is_some())?;
    if last.kind.closes_incident() {
        None
    } else {
        last.incident.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollout::model::event::EventType;
    use crate::rollout::{Plan, RolloutState};

    fn event(revision: u64, kind: EventType) -> Event {
        let mut state = RolloutState::new("r", Plan::six_day(), Timestamp::EPOCH);
        state.revision = revision - 1;
        Event::about(&state, kind, Timestamp::EPOCH, "t", "x".into())
    }

    #[test]
    fn appending_twice_adds_once_and_a_torn_line_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::beside(&dir.path().join("s.json"));
        assert_eq!(outbox.append(&[event(1, EventType::Started)]).unwrap(), 1);
        assert_eq!(outbox.append(&[event(1, EventType::Started)]).unwrap(), 0);
        // A writer killed mid-line.
        let mut f = OpenOptions::new()
            .append(true)
            .open(&outbox.events)
            .unwrap();
        f.write_all(br#"{"schema":1,"id":"r/2","ty"#).unwrap();
        assert_eq!(outbox.read().unwrap().len(), 1);
        assert_eq!(outbox.append(&[event(2, EventType::Advanced)]).unwrap(), 1);
        let ids: Vec<String> = outbox.read().unwrap().into_iter().map(|e| e.id).collect();
        assert_eq!(ids, ["r/1", "r/2"]);
    }

    #[test]
    fn cursors_say_what_is_pending_per_channel() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::beside(&dir.path().join("s.json"));
        let mut rollback = event(2, EventType::RolledBack);
        rollback.incident = Some(rollback.id.clone());
        outbox
            .append(&[event(1, EventType::Started), rollback])
            .unwrap();
        outbox.set_cursor("slack", 0).unwrap();
        outbox.set_cursor("pagerduty", 0).unwrap();
        outbox.set_cursor("webhook:1", 1).unwrap();
        let pending = outbox.pending().unwrap();
        let by: Vec<(&str, usize)> = pending
            .iter()
            .map(|p| (p.channel.as_str(), p.pending.len()))
            .collect();
        assert_eq!(by, [("pagerduty", 1), ("slack", 2), ("webhook:1", 1)]);
        assert_eq!(outbox.open_incident().unwrap().as_deref(), Some("r/2"));
        // A cursor writer killed before its rename left a temp: swept.
        let temp = outbox.cursors.join(".slack.json.tmp-999999-0");
        std::fs::write(&temp, "{").unwrap();
        assert_eq!(outbox.sweep().unwrap(), std::slice::from_ref(&temp));
        assert!(!temp.exists());
        assert_eq!(outbox.cursor("slack").unwrap(), Some(0));
    }
}
