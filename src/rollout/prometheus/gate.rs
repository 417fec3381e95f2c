//! [`PrometheusGate`]: the policy's [`Observation`] for an instant, from a
//! real Prometheus server.

use std::thread;

use super::client::PrometheusClient;
use super::config::{GateConfig, GateError, RenderedQueries};
use super::response::{QueryError, QueryResponse};
use crate::rollout::clock::Timestamp;
use crate::rollout::gate::{HealthCheck, HealthGate, Observation, Reading};

/// A [`HealthGate`] that queries Prometheus. All queries of one tick run
/// concurrently; each failure becomes a `Failed` reading whose message names
/// the query, the server, the instant and what happened.
///
/// ```no_run
/// use genesis_flags::rollout::prometheus::{GateConfig, PrometheusGate};
/// use genesis_flags::rollout::{HealthGate, SystemClock, Clock};
/// let mut gate = PrometheusGate::new(GateConfig::default())?;
/// let observation = gate.observe(SystemClock.now());
/// println!("{observation:?}");
/// # Ok::<(), genesis_flags::rollout::prometheus::GateError>(())
/// ```
#[derive(Debug, Clone)]
pub struct PrometheusGate {
    client: PrometheusClient,
    queries: RenderedQueries,
}

/// Which query, for messages.
struct Named<'a> {
    name: &'a str,
    promql: &'a str,
}

impl PrometheusGate {
    /// A gate for `config` (credentials and CA are read now).
    pub fn new(config: GateConfig) -> Result<Self, GateError> {
        Ok(PrometheusGate {
            client: PrometheusClient::new(&config.prometheus)?,
            queries: config.rendered_queries()?,
        })
    }

    /// The client, for ad-hoc queries.
    #[must_use]
    pub fn client(&self) -> &PrometheusClient {
        &self.client
    }

    /// The rendered queries.
    #[must_use]
    pub fn queries(&self) -> &RenderedQueries {
        &self.queries
    }

    fn describe(&self, q: &Named<'_>, at: Timestamp, e: &QueryError) -> String {
        format!(
            "query {} `{}` on {} at {at}: {e}",
            q.name,
            q.promql,
            self.client.url()
        )
    }

    /// Runs every query of a tick concurrently.
    fn run_all(&self, at: Timestamp) -> Vec<(String, String, Result<QueryResponse, QueryError>)> {
        let q = &self.queries;
        let mut jobs: Vec<(String, &str)> = vec![
            ("error_rate".to_owned(), &q.error_rate),
            ("requests".to_owned(), &q.requests),
            ("latency_p95_seconds".to_owned(), &q.latency_p95_seconds),
            ("critical_alerts".to_owned(), &q.critical_alerts),
        ];
        jobs.extend(
            q.health_checks
                .iter()
                .map(|(name, promql)| (format!("health_checks.{name}"), promql.as_str())),
        );
        thread::scope(|s| {
            let handles: Vec<_> = jobs
                .iter()
                .map(|(name, promql)| {
                    let client = &self.client;
                    (name, promql, s.spawn(move || client.query(promql, at)))
                })
                .collect();
            handles
                .into_iter()
                .map(|(name, promql, h)| {
                    let result = h.join().unwrap_or_else(|_| {
                        Err(QueryError::Transport(
                            "the query thread panicked".to_owned(),
                        ))
                    });
                    (name.clone(), (*promql).to_owned(), result)
                })
                .collect()
        })
    }
}

impl HealthGate for PrometheusGate {
    fn observe(&mut self, at: Timestamp) -> Observation {
        let results = self.run_all(at);
        let mut notes = Vec::new();
        for (name, _, result) in &results {
            if let Ok(r) = result {
                notes.extend(r.warnings.iter().map(|w| format!("{name}: warning: {w}")));
                notes.extend(r.infos.iter().map(|i| format!("{name}: info: {i}")));
            }
        }
        let find = |wanted: &str| results.iter().find(|(n, _, _)| n == wanted);
        let single = |wanted: &str, scale: f64| -> Reading<f64> {
            let Some((name, promql, result)) = find(wanted) else {
                return Reading::Missing;
            };
            let named = Named { name, promql };
            match result
                .as_ref()
                .map_err(Clone::clone)
                .and_then(QueryResponse::single_value)
            {
                Ok(Some(v)) => Reading::Value(v * scale),
                Ok(None) => Reading::Missing,
                Err(e) => Reading::Failed(self.describe(&named, at, &e)),
            }
        };
        let error_rate = single("error_rate", 1.0);
        let requests = single("requests", 1.0);
        let p95_ms = single("latency_p95_seconds", 1000.0);

        let critical_alerts = match find("critical_alerts") {
            Some((name, promql, result)) => match result
                .as_ref()
                .map_err(Clone::clone)
                .and_then(|r| r.vector().map(<[_]>::to_vec))
            {
                Ok(samples) => Reading::Value(
                    samples
                        .iter()
                        .filter(|s| s.value != 0.0)
                        .map(|s| {
                            s.metric
                                .get("alertname")
                                .cloned()
                                .unwrap_or_else(|| format!("{:?}", s.metric))
                        })
                        .collect(),
                ),
                Err(e) => Reading::Failed(self.describe(&Named { name, promql }, at, &e)),
            },
            None => Reading::Missing,
        };

        let mut checks = Vec::new();
        let mut failures = Vec::new();
        let mut empty = Vec::new();
        for (name, promql, result) in results
            .iter()
            .filter(|(n, _, _)| n.starts_with("health_checks."))
        {
            let check = name.trim_start_matches("health_checks.");
            match result
                .as_ref()
                .map_err(Clone::clone)
                .and_then(|r| r.vector().map(<[_]>::to_vec))
            {
                Ok(samples) if samples.is_empty() => empty.push(check.to_owned()),
                Ok(samples) => checks.push(HealthCheck {
                    name: check.to_owned(),
                    passed: samples.iter().all(|s| s.value != 0.0 && !s.value.is_nan()),
                }),
                Err(e) => failures.push(self.describe(&Named { name, promql }, at, &e)),
            }
        }
        let health = if !failures.is_empty() {
            Reading::Failed(failures.join("; "))
        } else if !empty.is_empty() {
            notes.push(format!("health checks without data: {}", empty.join(", ")));
            Reading::Missing
        } else {
            Reading::Value(checks)
        };

        Observation {
            error_rate,
            p95_ms,
            requests,
            health,
            critical_alerts,
            notes,
        }
    }
}
