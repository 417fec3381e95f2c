//! Who is acting: the holder of an engine lock, the operator at the keyboard,
//! the owner of a request file, this machine.

use serde::{Deserialize, Serialize};

use crate::rollout::foundation::clock::Timestamp;

/// Who holds an engine lock, as written in the lock file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockHolder {
    /// The holder's process id.
    pub pid: u32,
    /// The holder's host name.
    pub host: String,
    /// When it took the lock.
    pub since: Timestamp,
    /// What it is doing (`run`, `deploy`, `promote`, ...).
    pub command: String,
}

impl std::fmt::Display for LockHolder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`{}` (pid {} on {}, since {})",
            self.command, self.pid, self.host, self.since
        )
    }
}

/// The user name of `uid`, or `uid N` when the user database has none.
#[must_use]
pub fn user_name(uid: u32) -> String {
    #[cfg(unix)]
    if let Ok(Some(user)) = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)) {
        return user.name;
    }
    format!("uid {uid}")
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

/// This machine's host name, for lock holders and audit records.
#[must_use]
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown-host".to_owned())
}
