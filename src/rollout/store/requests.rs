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
//! success was applied exactly once.
//!
//! Who may act, and as whom: the engine creates the folder `0700` (only its
//! own user), whatever the parent's mode and the umask; an administrator may
//! open it to a group of operators (`chgrp ops; chmod 0770`). The engine
//! refuses to serve a folder, or a request, that others can write, and a
//! request that is not a regular file with one link (a FIFO, a symlink, a
//! device, a hard link to someone else's file) or is larger than
//! [`MAX_REQUEST_BYTES`]; it opens requests without following symlinks and
//! without blocking. The requester is the owner of the request file (its
//! uid, named from the user database); the `by` text in the request is only
//! recorded beside it as a claim.

use crate::FileError;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::error::{Refusal, RefusalOnDisk};
use crate::rollout::controller::{Applied, ControllerError, Operation};
use crate::rollout::files::write_atomically;
use crate::rollout::foundation::clock::Timestamp;
use crate::rollout::model::identity::user_name;

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
    /// The stage the sender saw: the engine refuses the request if the
    /// rollout is at another stage now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_stage: Option<usize>,
    /// The revision the sender saw: the engine refuses the request if the
    /// rollout has changed since.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_revision: Option<u64>,
}

/// The engine's answer to a [`Request`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "AnswerOnDisk")]
pub struct Answer {
    /// The request.
    pub id: String,
    /// The outcome: the status after the change, or why it was refused.
    pub outcome: Result<Applied, Refusal>,
}

/// An answer as read: its refusal typed, or as an earlier engine wrote it.
#[derive(Deserialize)]
struct AnswerOnDisk {
    id: String,
    outcome: Result<Applied, RefusalOnDisk>,
}

impl From<AnswerOnDisk> for Answer {
    fn from(read: AnswerOnDisk) -> Self {
        Answer {
            id: read.id,
            outcome: read.outcome.map_err(Refusal::from),
        }
    }
}

/// The largest request the engine reads.
pub const MAX_REQUEST_BYTES: u64 = 16 * 1024;

/// A request the engine claimed, with who sent it.
#[derive(Debug, Clone, PartialEq)]
pub struct Claimed {
    /// The request as sent.
    pub request: Request,
    /// Who sent it: the owner of the request file.
    pub owner: String,
}

/// The mailbox folder of a state file.
#[derive(Debug, Clone)]
pub struct Mailbox {
    dir: PathBuf,
}

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> ControllerError {
    let path = path.to_path_buf();
    move |source| ControllerError::Io(FileError::new(action, path, source))
}

impl Mailbox {
    /// The mailbox at `dir` (created on first use).
    #[must_use]
    pub fn new(dir: PathBuf) -> Mailbox {
        Mailbox { dir }
    }

    fn file(&self, id: &str, kind: &str) -> PathBuf {
        self.dir.join(format!("{id}.{kind}.json"))
    }

    /// Creates the folder `0700` if it is missing (the engine at open, a
    /// sender on first use); an existing folder keeps its mode and group.
    pub fn ensure_dir(&self) -> Result<(), ControllerError> {
        if self.dir.is_dir() {
            return Ok(());
        }
        let mut builder = fs::DirBuilder::new();
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            builder.mode(0o700);
        }
        match builder.create(&self.dir) {
            Ok(()) => {
                // The umask only removes bits; set it exactly anyway.
                #[cfg(unix)]
                {
                    use std::os::unix::fs::PermissionsExt;
                    fs::set_permissions(&self.dir, fs::Permissions::from_mode(0o700)).map_err(
                        io_error("cannot set the mode of the request folder", &self.dir),
                    )?;
                }
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(io_error("cannot create the request folder", &self.dir)(e)),
        }
    }

    /// Why the engine must not serve the folder now, if it must not: it is
    /// not a real folder, or others can write it.
    #[must_use]
    pub fn unsafe_folder(&self) -> Option<String> {
        let meta = fs::symlink_metadata(&self.dir).ok()?;
        if !meta.is_dir() {
            return Some(format!(
                "{} is not a folder; no request is served",
                self.dir.display()
            ));
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            if meta.mode() & 0o002 != 0 {
                return Some(format!(
                    "{} is writable by every user (mode {:o}); no request is served until it is not (chmod o-w)",
                    self.dir.display(),
                    meta.mode() & 0o7777
                ));
            }
        }
        None
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
        let read = crate::rollout::foundation::read::read_regular(
            &path,
            crate::rollout::foundation::read::Follow::NoSymlinks,
            1 << 20,
        );
        let text = match read {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_error("cannot read the answer", &path)(e)),
        };
        let answer = serde_json::from_slice(&text)
            .map_err(|e| io_error("cannot read the answer", &path)(io::Error::other(e)))?;
        let _ = fs::remove_file(&path);
        Ok(Some(answer))
    }

    /// Claims every waiting request, oldest first (engine side). A request
    /// that cannot be used (see the module docs) is answered with an error
    /// at once, naming what is wrong with the file but never its content.
    pub fn claim_all(&self) -> Vec<Result<Claimed, (String, Refusal)>> {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut ids: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                e.file_name()
                    .to_str()
                    .and_then(|n| n.strip_suffix(".request.json"))
                    .filter(|id| !id.starts_with('.') && valid_id(id))
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
            claimed.push(match read_request(&to) {
                Ok(c) if c.request.id == id => Ok(c),
                Ok(_) => Err((
                    id,
                    Refusal::Unreadable {
                        reason: "the request id does not match its file name".to_owned(),
                    },
                )),
                Err(e) => Err((
                    id,
                    Refusal::Unreadable {
                        reason: format!("request refused: {e}"),
                    },
                )),
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
                read_request(&path).map_or(true, |c| c.request.expires < now)
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

/// Ids are made by [`new_request_id`]: digits, letters, `-` and `_`.
fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Reads a request file safely: no symlink, no FIFO or device, one link,
/// not writable by others, at most [`MAX_REQUEST_BYTES`]; the sender is the
/// file's owner. Errors never quote the content.
fn read_request(path: &Path) -> Result<Claimed, String> {
    use crate::rollout::foundation::read::{open_regular, Follow};
    use std::io::Read;
    let (file, meta) =
        open_regular(path, Follow::NoSymlinks, MAX_REQUEST_BYTES).map_err(|e| e.to_string())?;
    #[cfg(unix)]
    let owner = {
        use std::os::unix::fs::MetadataExt;
        if meta.nlink() != 1 {
            return Err("the request file has other links".to_owned());
        }
        if meta.mode() & 0o002 != 0 {
            return Err("the request file is writable by every user".to_owned());
        }
        user_name(meta.uid())
    };
    #[cfg(not(unix))]
    let owner = {
        let _ = &meta;
        crate::rollout::model::identity::operator_name()
    };
    let mut bytes = Vec::new();
    file.take(MAX_REQUEST_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > MAX_REQUEST_BYTES {
        return Err(format!("larger than {MAX_REQUEST_BYTES} bytes"));
    }
    let request = serde_json::from_slice::<Request>(&bytes)
        .map_err(|_| "not a valid request document".to_owned())?;
    Ok(Claimed { request, owner })
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
