//! The Prometheus health gate: the gate's JSON config with PromQL templates
//! ([`GateConfig`]) and the API response types ([`QueryResponse`]) are
//! always available; the HTTP client ([`PrometheusClient`]) and the gate
//! ([`PrometheusGate`]) need the cargo feature `prometheus` (which adds
//! `ureq` with rustls).
//!
//! `parse_response` and `render_template` are public but hidden from the
//! docs: the fuzz targets call them directly; users reach them through
//! [`PrometheusClient`] and [`GateConfig::rendered_queries`].

#[cfg(feature = "prometheus")]
mod client;
mod config;
#[cfg(feature = "prometheus")]
mod gate;
mod response;

#[cfg(feature = "prometheus")]
pub use client::PrometheusClient;
pub use config::{
    escape_label_value, render_template, BasicAuthConfig, CohortQueries, GateConfig, GateError,
    Queries, RenderedQueries, ServerConfig,
};
#[cfg(feature = "prometheus")]
pub use gate::PrometheusGate;
pub use response::{
    parse_response, parse_value, ErrorType, QueryError, QueryResponse, QueryResult, Sample, Series,
};
