//! Adapters above the engine: the Prometheus health gate, the notification
//! channels, the controller's own metrics, and simulations of a plan.

pub mod metrics;
pub mod notify;
pub mod prometheus;
pub(crate) mod scenario;
pub(crate) mod simulate;
