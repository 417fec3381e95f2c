//! Operator requests to a running engine: a mailbox folder beside the state
//! file, `<state>.requests/`.
//!
//! A command that finds the lock held writes `<id>.request.json` (atomically)
//! and waits for `<id>.answer.json`. The engine polls the folder between and
//! during ticks; it *claims* a request by renaming it to `<id>.claimed.json`
//! (atomic: a request is either claimed by the engine or withdrawn by its
//! sender, never both), applies it through the same write protocol as a tick,
//! and answers. A sender that gives up withdraws its request by removing it;
//! if the removal finds it claimed, it waits for the answer instead. So a
//! command that reports failure has changed nothing, and one that reports
//! success was applied exactly once. Access is by the folder's permissions.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Applied, ControllerError, Operation};
use crate::rollout::clock::Timestamp;
use crate::rollout::write_atomically;

/// How long a request stays valid: the engine refuses one older than this,
/// and its sender withdraws it after this long without an answer.
pub const REQUEST_TTL: Duration = Duration::from_secs(10);

/// A request for a running engine to apply an operation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    /// Unique id, also recorded in the rollout's history.
    pub id: String,
    /// What to do.
    pub operation: Operation,
    /// Who asks.
    pub by: String,
    /// When it was sent.
    pub sent: Timestamp,
    /// After this instant the engine refuses it.
    pub expires: Timestamp,
}

/// The engine's answer to a [`Request`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Answer {
    /// The request.
    pub id: String,
    /// The outcome: the status after the change, or why it was refused.
    pub outcome: Result<Applied, AnswerError>,
}

/// Why a running engine refused a request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnswerError {
    /// One line per problem.
    pub message: String,
    /// Whether the refusal is about the rollout's health (exit 1) rather
    /// than the request (exit 2).
    #[serde(default)]
    pub unhealthy: bool,
}

/// The mailbox folder of a state file.
#[derive(Debug, Clone)]
pub struct Mailbox {
    dir: PathBuf,
}

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> ControllerError {
    let path = path.to_path_buf();
    move |source| ControllerError::Io {
        action,
        path,
        source,
    }
}

impl Mailbox {
    /// The mailbox at `dir` (created on first use).
    #[must_use]
    pub fn new(dir: PathBuf) -> Mailbox {
        Mailbox { dir }
    }

    /// The folder.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn file(&self, id: &str, kind: &str) -> PathBuf {
        self.dir.join(format!("{id}.{kind}.json"))
    }

    fn ensure_dir(&self) -> Result<(), ControllerError> {
        if self.dir.is_dir() {
            return Ok(());
        }
        let mut builder = fs::DirBuilder::new();
        #[cfg(unix)]
        {
            use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
            // Whoever may write the state's folder may send requests.
            let mode = self
                .dir
                .parent()
                .and_then(|p| fs::metadata(p).ok())
                .map_or(0o700, |m| m.permissions().mode() & 0o777);
            builder.mode(mode);
        }
        match builder.create(&self.dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(io_error("cannot create the request folder", &self.dir)(e)),
        }
    }

    /// Sends a request (sender side).
    pub fn send(&self, request: &Request) -> Result<(), ControllerError> {
        self.ensure_dir()?;
        let path = self.file(&request.id, "request");
        let bytes = serde_json::to_vec_pretty(request)
            .map_err(|e| io_error("cannot encode", &path)(io::Error::other(e)))?;
        write_atomically(&path, &bytes).map_err(ControllerError::State)
    }

    /// Withdraws an unclaimed request (sender side). `Ok(true)` when it was
    /// withdrawn, `Ok(false)` when the engine had already claimed it.
    pub fn withdraw(&self, id: &str) -> Result<bool, ControllerError> {
        let path = self.file(id, "request");
        match fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_error("cannot withdraw the request", &path)(e)),
        }
    }

    /// Takes the answer to `id`, if there is one yet (sender side).
    pub fn take_answer(&self, id: &str) -> Result<Option<Answer>, ControllerError> {
        let path = self.file(id, "answer");
        let text = match fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_error("cannot read the answer", &path)(e)),
        };
        let answer = serde_json::from_slice(&text)
            .map_err(|e| io_error("cannot read the answer", &path)(io::Error::other(e)))?;
        let _ = fs::remove_file(&path);
        Ok(Some(answer))
    }

    /// Whether the engine claimed `id` and has not answered yet.
    #[must_use]
    pub fn is_claimed(&self, id: &str) -> bool {
        self.file(id, "claimed").exists()
    }

    /// Claims every waiting request, oldest first (engine side). A request
    /// that cannot be parsed is answered with an error at once.
    pub fn claim_all(&self) -> Vec<Result<Request, (String, String)>> {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut ids: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                e.file_name()
                    .to_str()
                    .and_then(|n| n.strip_suffix(".request.json"))
                    .filter(|id| !id.starts_with('.'))
                    .map(str::to_owned)
            })
            .collect();
        ids.sort();
        let mut claimed = Vec::new();
        for id in ids {
            let from = self.file(&id, "request");
            let to = self.file(&id, "claimed");
            if fs::rename(&from, &to).is_err() {
                // Withdrawn meanwhile.
                continue;
            }
            let parsed = fs::read(&to)
                .map_err(|e| e.to_string())
                .and_then(|t| serde_json::from_slice::<Request>(&t).map_err(|e| e.to_string()));
            claimed.push(match parsed {
                Ok(r) if r.id == id => Ok(r),
                Ok(r) => Err((id, format!("request id {:?} does not match its file", r.id))),
                Err(e) => Err((id, format!("unreadable request: {e}"))),
            });
        }
        claimed
    }

    /// Answers a claimed request (engine side).
    pub fn answer(&self, answer: &Answer) -> Result<(), ControllerError> {
        let path = self.file(&answer.id, "answer");
        let bytes = serde_json::to_vec_pretty(answer)
            .map_err(|e| io_error("cannot encode", &path)(io::Error::other(e)))?;
        write_atomically(&path, &bytes).map_err(ControllerError::State)?;
        let _ = fs::remove_file(self.file(&answer.id, "claimed"));
        Ok(())
    }

    /// Removes what dead senders and engines left: requests past their
    /// expiry, claims never answered, answers never read (engine side, at
    /// open; the caller holds the lock). Returns the files removed.
    pub fn sweep(&self, now: Timestamp) -> Vec<PathBuf> {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut removed = Vec::new();
        for entry in entries.filter_map(|e| e.ok()) {
            let path = entry.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            let stale = if name.ends_with(".request.json") {
                fs::read(&path)
                    .ok()
                    .and_then(|t| serde_json::from_slice::<Request>(&t).ok())
                    .is_none_or(|r| r.expires < now)
            } else {
                let age = entry
                    .metadata()
                    .ok()
                    .and_then(|m| m.modified().ok())
                    .and_then(|m| m.elapsed().ok())
                    .unwrap_or(Duration::MAX);
                // Claims and answers: a minute is far past any sender's wait;
                // temp files of killed writers likewise.
                age > Duration::from_secs(60)
            };
            if stale && fs::remove_file(&path).is_ok() {
                removed.push(path);
            }
        }
        removed
    }
}

/// A fresh request id: time, pid and a counter, sortable by time.
#[must_use]
pub fn new_request_id(now: Timestamp) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    format!(
        "{:013}-{}-{}",
        now.unix_millis(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}
