//! The store: the state file, the audit log, the notification outbox, the
//! flags file, the engine's lock and request folder, and a change made
//! durable in one place ([`change`]: the revision computed once, a
//! compare-and-swap on it, the write protocol in [`protocol`]).

pub(crate) mod change;
pub(crate) mod courier;
pub(crate) mod durable;
pub(crate) mod error;
pub(crate) mod files;
pub(crate) mod flags_file;
pub(crate) mod lock;
pub(crate) mod outbox;
pub(crate) mod protocol;
pub(crate) mod requests;
