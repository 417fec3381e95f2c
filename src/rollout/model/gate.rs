//! What the policy sees of the service each tick: an [`Observation`],
//! produced by a [`HealthGate`] (Prometheus in production, a script in tests
//! and simulations).

use serde::{Deserialize, Serialize};

use super::cohort::CohortObservation;
use crate::rollout::foundation::clock::Timestamp;
pub use crate::rollout::foundation::reading::Reading;

fn missing<T>() -> Reading<T> {
    Reading::Missing
}

/// One named health check and whether it passed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthCheck {
    /// e.g. `up{job="genesis"}`.
    pub name: String,
    /// Whether it passed.
    pub passed: bool,
}

/// What the health gate saw at one instant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    /// Errors / requests over the window, as a fraction (0.005 = 0.5%).
    pub error_rate: Reading<f64>,
    /// 95th percentile latency over the window, in milliseconds.
    pub p95_ms: Reading<f64>,
    /// Requests in the window (the sample behind the two ratios).
    pub requests: Reading<f64>,
    /// Named health checks.
    pub health: Reading<Vec<HealthCheck>>,
    /// Names of firing critical alerts.
    pub critical_alerts: Reading<Vec<String>>,
    /// The cohort series of the rollout (flagged users against the others),
    /// when the service exports them; `Missing` means the policy judges the
    /// global series only, and says so.
    #[serde(default = "missing", skip_serializing_if = "Reading::is_missing")]
    pub cohorts: Reading<CohortObservation>,
    /// Warnings from the source, kept for the explanation.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// The default health checks: `up` of these jobs.
pub const DEFAULT_HEALTH_JOBS: [&str; 5] = [
    "prometheus",
    "alertmanager",
    "node-exporter",
    "grafana",
    "genesis",
];

impl Observation {
    /// A healthy service: 0.05% errors, 120 ms P95, 10,000 requests, all five
    /// default health checks up, no alerts.
    #[must_use]
    pub fn healthy() -> Self {
        Observation {
            error_rate: Reading::Value(0.0005),
            p95_ms: Reading::Value(120.0),
            requests: Reading::Value(10_000.0),
            health: Reading::Value(
                DEFAULT_HEALTH_JOBS
                    .iter()
                    .map(|job| HealthCheck {
                        name: format!("up{{job=\"{job}\"}}"),
                        passed: true,
                    })
                    .collect(),
            ),
            critical_alerts: Reading::Value(Vec::new()),
            cohorts: Reading::Missing,
            notes: Vec::new(),
        }
    }

    /// Nothing at all (every signal missing).
    #[must_use]
    pub fn no_data() -> Self {
        Observation {
            error_rate: Reading::Missing,
            p95_ms: Reading::Missing,
            requests: Reading::Missing,
            health: Reading::Missing,
            critical_alerts: Reading::Missing,
            cohorts: Reading::Missing,
            notes: Vec::new(),
        }
    }

    /// Every signal failed with `why` (the source is down).
    #[must_use]
    pub fn failed(why: &str) -> Self {
        Observation {
            error_rate: Reading::Failed(why.to_owned()),
            p95_ms: Reading::Failed(why.to_owned()),
            requests: Reading::Failed(why.to_owned()),
            health: Reading::Failed(why.to_owned()),
            critical_alerts: Reading::Failed(why.to_owned()),
            cohorts: Reading::Failed(why.to_owned()),
            notes: Vec::new(),
        }
    }

    /// This observation with another error rate (a fraction).
    #[must_use]
    pub fn with_error_rate(mut self, rate: f64) -> Self {
        self.error_rate = Reading::Value(rate);
        self
    }

    /// This observation with another P95 latency (ms).
    #[must_use]
    pub fn with_p95_ms(mut self, ms: f64) -> Self {
        self.p95_ms = Reading::Value(ms);
        self
    }

    /// This observation with the named health check failing.
    #[must_use]
    pub fn with_failed_check(mut self, name: &str) -> Self {
        if let Reading::Value(checks) = &mut self.health {
            match checks.iter_mut().find(|c| c.name == name) {
                Some(c) => c.passed = false,
                None => checks.push(HealthCheck {
                    name: name.to_owned(),
                    passed: false,
                }),
            }
        }
        self
    }

    /// This observation with cohort series.
    #[must_use]
    pub fn with_cohorts(mut self, cohorts: CohortObservation) -> Self {
        self.cohorts = Reading::Value(cohorts);
        self
    }

    /// This observation with a firing critical alert.
    #[must_use]
    pub fn with_alert(mut self, alert: &str) -> Self {
        if let Reading::Value(alerts) = &mut self.critical_alerts {
            alerts.push(alert.to_owned());
        }
        self
    }
}

/// A source of observations.
pub trait HealthGate {
    /// Observes the service as of instant `at`.
    fn observe(&mut self, at: Timestamp) -> Observation;
}

impl<F: FnMut(Timestamp) -> Observation> HealthGate for F {
    fn observe(&mut self, at: Timestamp) -> Observation {
        self(at)
    }
}

/// A gate that plays a script: a baseline observation, overridden on
/// half-open intervals `[from, to)` (later entries win).
///
/// ```
/// use genesis_flags::rollout::{HealthGate, Observation, ScriptedGate, Timestamp};
/// let t = |s: u64| Timestamp::from_unix_millis(s * 1000);
/// let mut gate = ScriptedGate::new(Observation::healthy())
///     .between(t(60), t(120), Observation::healthy().with_error_rate(0.02));
/// assert_eq!(gate.observe(t(90)).error_rate.value(), Some(&0.02));
/// assert_eq!(gate.observe(t(120)), Observation::healthy());
/// ```
#[derive(Debug, Clone)]
pub struct ScriptedGate {
    baseline: Observation,
    events: Vec<(Timestamp, Timestamp, Observation)>,
}

impl ScriptedGate {
    /// A gate that always returns `baseline`.
    #[must_use]
    pub fn new(baseline: Observation) -> Self {
        ScriptedGate {
            baseline,
            events: Vec::new(),
        }
    }

    /// Returns `observation` instead on `[from, to)`.
    #[must_use]
    pub fn between(mut self, from: Timestamp, to: Timestamp, observation: Observation) -> Self {
        self.events.push((from, to, observation));
        self
    }
}

impl HealthGate for ScriptedGate {
    fn observe(&mut self, at: Timestamp) -> Observation {
        self.events
            .iter()
            .rev()
            .find(|(from, to, _)| *from <= at && at < *to)
            .map_or_else(|| self.baseline.clone(), |(_, _, o)| o.clone())
    }
}
