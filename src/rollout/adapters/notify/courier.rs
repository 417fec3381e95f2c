//! The channels as the controller engine's courier: what
//! [`ControllerBuilder::notify`] plugs into an engine, and how the engine's
//! owner waits for the channels ([`Controller::flush_notifications`]).

use std::any::Any;
use std::time::Duration;

use super::config::NotifyConfig;
use super::sender::{ChannelStatus, Notifier};
use crate::rollout::controller::engine::Storage;
use crate::rollout::controller::{Controller, ControllerBuilder, ControllerError};
use crate::rollout::store::courier::{Courier, CourierContext, StartCourier};

impl Courier for Notifier {
    fn wake(&self) {
        Notifier::wake(self);
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

impl ControllerBuilder {
    /// Starts `courier` when the engine opens, to deliver its outbox.
    fn courier(mut self, courier: StartCourier) -> Self {
        self.courier = Some(courier);
        self
    }

    /// Delivers the rollout's notifications to these channels while the
    /// engine is open (feature `notify`).
    #[must_use]
    pub fn notify(self, config: NotifyConfig) -> Self {
        self.courier(Box::new(move |context: CourierContext| {
            let notifier = Notifier::start(
                &config,
                context.outbox,
                context.audit,
                &context.source,
                context.clock,
            )
            .map_err(ControllerError::from)?;
            Ok(Box::new(notifier) as Box<dyn Courier>)
        }))
    }
}

impl Controller {
    /// Waits up to `within` for the channels to deliver what is pending
    /// (feature `notify`); returns each channel's status (empty without
    /// channels).
    pub fn flush_notifications(&self, within: Duration) -> Vec<ChannelStatus> {
        let courier = match &self.storage {
            Storage::Files(s) => s.courier.as_deref(),
            Storage::Memory(_) => None,
        };
        courier
            .and_then(|courier| courier.as_any().downcast_ref::<Notifier>())
            .map(|notifier| notifier.flush(within))
            .unwrap_or_default()
    }
}
