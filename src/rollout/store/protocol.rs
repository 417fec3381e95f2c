//! The write protocol on files: stage the flags file, commit the state with
//! its journal, publish, append the audit records and the outbox; and where
//! a state records its flags file.

use std::path::{Path, PathBuf};

use super::durable::Committed;
use super::files::{ControllerFiles, FlagsWriter};
use crate::rollout::controller::{Commit, ControllerError, Pending};
use crate::rollout::store::outbox::Outbox;
use crate::rollout::AuditLog;

/// The write protocol on files (see the module docs).
pub(in crate::rollout) fn commit_files(
    files: &ControllerFiles,
    audit: &mut AuditLog,
    mut flags: Option<&mut (dyn FlagsWriter + 'static)>,
    next: &Committed,
) -> Result<Commit, ControllerError> {
    // 1. The caller staged the flags file (nothing visible yet): `flags`
    // is the writer holding it.
    let staged = flags.is_some();
    // 2. Commit: the state, with the journal of this change (stamped with
    // its revision by `Change::stamped`).
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
        revision: next.state.revision,
        pending,
        notes,
    })
}

/// The flags path as the state records it: relative to the state file's
/// folder when it lies under it (so a moved folder keeps working and never
/// writes the old place), absolute otherwise.
pub(in crate::rollout) fn stored_flags_path(state: &Path, flags: &Path) -> PathBuf {
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
pub(in crate::rollout) fn resolve_flags_path(state: &Path, recorded: &Path) -> PathBuf {
    if recorded.is_absolute() {
        return recorded.to_path_buf();
    }
    let folder = state.parent().unwrap_or(Path::new(""));
    let joined = folder.join(recorded);
    std::path::absolute(&joined).unwrap_or(joined)
}
