//! The health gate, from a gate file (feature `prometheus`), its cohort
//! queries bound to the rollout of the state file when there is one.

use crate::output::Failure;
type Result<T> = std::result::Result<T, Failure>;
use genesis_flags::rollout::{CheckKind, HealthGate, RolloutState};
use std::path::Path;

/// The rendered queries, for display.
pub struct Queries {
    pub error_rate: String,
    pub p95: String,
    pub health: String,
    pub alerts: String,
    pub cohort_requests: String,
    pub cohort_errors: String,
    pub cohort_latency: String,
    pub rollout_percentage: String,
}

impl Queries {
    pub fn for_check(&self, check: CheckKind) -> String {
        match check {
            CheckKind::ErrorRate => self.error_rate.clone(),
            CheckKind::P95Latency => self.p95.clone(),
            CheckKind::Health => self.health.clone(),
            CheckKind::InCohortErrorRate | CheckKind::CohortErrorExcess => {
                format!("{}; {}", self.cohort_errors, self.cohort_requests)
            }
            CheckKind::InCohortP95Latency | CheckKind::CohortLatencyExcess => {
                self.cohort_latency.clone()
            }
            CheckKind::Fleet => format!("{}; {}", self.rollout_percentage, self.cohort_requests),
            CheckKind::CohortSample => self.cohort_requests.clone(),
            _ => self.alerts.clone(),
        }
    }
}

/// The rollout of the state file, when it loads: the cohort queries select
/// its series (`rollout="..."`) unless the gate file names one.
pub fn rollout_of(state: &Path) -> Option<String> {
    RolloutState::load(state).ok().map(|s| s.rollout)
}

#[cfg(feature = "prometheus")]
fn config(
    path: Option<&Path>,
    rollout: Option<&str>,
) -> Result<genesis_flags::rollout::prometheus::GateConfig> {
    use genesis_flags::rollout::prometheus::GateConfig;
    let config = match path {
        Some(p) => GateConfig::from_file(p).map_err(|e| Failure::from(e).context(p))?,
        None => GateConfig::default(),
    };
    Ok(match rollout {
        Some(id) => config.for_rollout(id),
        None => config,
    })
}

#[cfg(feature = "prometheus")]
pub fn queries(path: Option<&Path>, rollout: Option<&str>) -> Result<Queries> {
    let q = config(path, rollout)?
        .rendered_queries()
        .map_err(Failure::from)?;
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
        cohort_requests: q.cohort.requests,
        cohort_errors: q.cohort.errors,
        cohort_latency: q.cohort.latency_buckets,
        rollout_percentage: q.cohort.rollout_percentage,
    })
}

#[cfg(feature = "prometheus")]
pub fn from_file(path: Option<&Path>, rollout: Option<&str>) -> Result<Box<dyn HealthGate + Send>> {
    use genesis_flags::rollout::prometheus::PrometheusGate;
    Ok(Box::new(
        PrometheusGate::new(config(path, rollout)?).map_err(Failure::from)?,
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
pub fn queries(_path: Option<&Path>, _rollout: Option<&str>) -> Result<Queries> {
    Err(missing())
}

#[cfg(not(feature = "prometheus"))]
pub fn from_file(
    _path: Option<&Path>,
    _rollout: Option<&str>,
) -> Result<Box<dyn HealthGate + Send>> {
    Err(missing())
}

#[cfg(not(feature = "prometheus"))]
pub fn prometheus_url(_url: &str) -> Result<Box<dyn HealthGate + Send>> {
    Err(missing())
}
