//! The rollout: its policy, simulations, the controller engine and binary, crash recovery, the safety net, notifications (in-process receivers).
//!
//! One test binary for many files (each file a module): the crate and the
//! shared helpers are linked once, not once per file.

/// Helpers shared by the modules below.
#[allow(dead_code)]
mod support {
    pub mod controller;
    pub mod prometheus;
    pub mod receivers;
    pub mod rollout;
}

mod controller;
mod controller_crash;
mod controller_engine;
mod controller_operator;
mod controller_scenarios;
mod flags_file;
mod fuzz_corpus;
mod notify_config;
mod notify_delivery;
mod readme_examples;
mod rollout_policy;
mod rollout_properties;
mod rollout_simulate;
mod safety_net;
