//! Who delivers what the outbox holds. An engine on files may be given a
//! courier to start when it opens (the `notify` feature's channels plug in
//! here, see `ControllerBuilder::notify`); the engine wakes it after each
//! commit that appended notifications. The engine knows nothing else of
//! channels, so it compiles the same with and without them.

// Without the `notify` feature nothing starts a courier: the seam stays,
// unused.
#![cfg_attr(not(feature = "notify"), allow(dead_code))]

use std::any::Any;
use std::path::PathBuf;
use std::sync::Arc;

use crate::rollout::controller::ControllerError;
use crate::rollout::store::outbox::Outbox;
use crate::rollout::Clock;

/// What a courier is started with.
pub(crate) struct CourierContext {
    /// The engine's outbox.
    pub(crate) outbox: Outbox,
    /// The audit log (records of notifications given up).
    pub(crate) audit: PathBuf,
    /// This controller, as receivers are told (host name).
    pub(crate) source: String,
    /// The engine's clock.
    pub(crate) clock: Arc<dyn Clock>,
}

/// Delivers the outbox while the engine is open; stops when dropped.
pub(crate) trait Courier: Send {
    /// New events are in the outbox.
    fn wake(&self);

    /// The courier itself, for the adapter that started it.
    fn as_any(&self) -> &dyn Any;
}

/// Starts a courier when the engine opens.
pub(crate) type StartCourier =
    Box<dyn FnOnce(CourierContext) -> Result<Box<dyn Courier>, ControllerError> + Send>;
