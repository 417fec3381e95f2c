//! Against real servers: Prometheus, Alertmanager, nginx, an SMTP server, chromium, and the example service.
//!
//! One test binary for many files (each file a module): the crate and the
//! shared helpers are linked once, not once per file.

/// Helpers shared by the modules below.
#[allow(dead_code)]
mod support {
    pub mod controller;
    pub mod live;
    pub mod prometheus;
    pub mod receivers;
}

mod cohort_gate;
mod cohort_live;
mod controller_live;
mod example_service;
mod http_source;
mod notify_live;
mod prometheus_gate;
