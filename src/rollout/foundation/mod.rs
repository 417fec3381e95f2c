//! The foundation every layer reads: the [`Clock`](crate::rollout::Clock)
//! and timestamps, durations, bounded reads of files people write, the
//! redaction of secrets from parse errors, atomic file writes, and the
//! error types of the state file and the notifications.

pub(crate) mod atomic;
pub(crate) mod clock;
pub(crate) mod duration;
pub(crate) mod notify_error;
pub mod read;
pub(crate) mod reading;
pub(crate) mod redact;
pub(crate) mod state_error;
