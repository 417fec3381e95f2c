//! The health gate, from a gate file (feature `prometheus`).

use crate::output::Failure;
type Result<T> = std::result::Result<T, Failure>;
use genesis_flags::rollout::{CheckKind, HealthGate};
use std::path::Path;

/// The rendered queries, for display.
pub struct Queries {
    pub error_rate: String,
    pub p95: String,
    pub health: String,
    pub alerts: String,
}

impl Queries {
    pub fn for_check(&self, check: CheckKind) -> String {
        match check {
            CheckKind::ErrorRate => self.error_rate.clone(),
            CheckKind::P95Latency => self.p95.clone(),
            CheckKind::Health => self.health.clone(),
            _ => self.alerts.clone(),
        }
    }
}

#[cfg(feature = "prometheus")]
fn config(path: Option<&Path>) -> Result<genesis_flags::rollout::prometheus::GateConfig> {
    use genesis_flags::rollout::prometheus::GateConfig;
    match path {
        Some(p) => GateConfig::from_file(p).map_err(|e| Failure::from(e).context(p)),
        None => Ok(GateConfig::default()),
    }
}

#[cfg(feature = "prometheus")]
pub fn queries(path: Option<&Path>) -> Result<Queries> {
    let q = config(path)?.rendered_queries().map_err(Failure::from)?;
    let health = q
        .health_checks
        .iter()
        .map(|(n, e)| format!("{n}: {e}"))
        .collect::<Vec<_>>()
        .join("; ");
    Ok(Queries {
        error_rate: q.error_rate,
        p95: q.latency_p95_seconds,
        health,
        alerts: q.critical_alerts,
    })
}

#[cfg(feature = "prometheus")]
pub fn from_file(path: Option<&Path>) -> Result<Box<dyn HealthGate + Send>> {
    use genesis_flags::rollout::prometheus::PrometheusGate;
    Ok(Box::new(
        PrometheusGate::new(config(path)?).map_err(Failure::from)?,
    ))
}

#[cfg(feature = "prometheus")]
pub fn prometheus_url(url: &str) -> Result<Box<dyn HealthGate + Send>> {
    use genesis_flags::rollout::prometheus::{GateConfig, PrometheusGate, ServerConfig};
    let config = GateConfig {
        prometheus: ServerConfig {
            url: url.to_owned(),
            ..ServerConfig::default()
        },
        ..GateConfig::default()
    };
    Ok(Box::new(
        PrometheusGate::new(config).map_err(Failure::from)?,
    ))
}

#[cfg(not(feature = "prometheus"))]
fn missing() -> Failure {
    Failure::input("the Prometheus gate needs the `prometheus` feature: cargo run --release --features prometheus --example controller -- ...")
}

#[cfg(not(feature = "prometheus"))]
pub fn queries(_path: Option<&Path>) -> Result<Queries> {
    Err(missing())
}

#[cfg(not(feature = "prometheus"))]
pub fn from_file(_path: Option<&Path>) -> Result<Box<dyn HealthGate + Send>> {
    Err(missing())
}

#[cfg(not(feature = "prometheus"))]
pub fn prometheus_url(_url: &str) -> Result<Box<dyn HealthGate + Send>> {
    Err(missing())
}
