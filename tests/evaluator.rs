//! The evaluator: bucketing, configs, stores, views, targeting, flagd documents, reloads, the OpenFeature provider, and the module graph.
//!
//! One test binary for many files (each file a module): the crate and the
//! shared helpers are linked once, not once per file.

mod architecture;
mod bad_configs;
mod bucket_properties;
mod bucket_vectors;
mod concurrency;
mod evaluate;
mod flagd;
mod kubernetes;
mod openfeature;
mod reload;
mod store_model;
mod targeting;
mod user_view;
