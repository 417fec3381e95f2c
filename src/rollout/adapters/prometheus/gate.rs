//! [`PrometheusGate`]: the policy's [`Observation`] for an instant, from a
//! real Prometheus server.

use std::thread;

use super::client::PrometheusClient;
use super::config::{GateConfig, GateError, RenderedQueries};
use super::response::{QueryError, QueryResponse, Sample};
use crate::rollout::foundation::clock::Timestamp;
use crate::rollout::model::cohort::{
    histogram_quantile, slow_counts, CohortFigures, CohortObservation, FleetPercentage,
};
use crate::rollout::model::gate::{HealthCheck, HealthGate, Observation, Reading};

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
    ///
    /// # Errors
    ///
    /// As [`PrometheusClient::new`](super::PrometheusClient::new), and
    /// `GateError::Template` for a query that cannot be rendered.
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
        jobs.extend([
            ("cohort_requests".to_owned(), q.cohort.requests.as_str()),
            ("cohort_errors".to_owned(), q.cohort.errors.as_str()),
            (
                "cohort_latency_buckets".to_owned(),
                q.cohort.latency_buckets.as_str(),
            ),
            (
                "rollout_percentage".to_owned(),
                q.cohort.rollout_percentage.as_str(),
            ),
        ]);
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

        let vector = |wanted: &str| -> Result<Vec<Sample>, String> {
            let Some((name, promql, result)) = find(wanted) else {
                return Ok(Vec::new());
            };
            result
                .as_ref()
                .map_err(Clone::clone)
                .and_then(|r| r.vector().map(<[_]>::to_vec))
                .map_err(|e| self.describe(&Named { name, promql }, at, &e))
        };
        let cohorts = self.cohorts(&vector);

        Observation {
            error_rate,
            p95_ms,
            requests,
            health,
            critical_alerts,
            cohorts,
            notes,
        }
    }
}

impl PrometheusGate {
    /// The cohort series of a tick, from the four cohort queries' vectors.
    fn cohorts(
        &self,
        vector: &dyn Fn(&str) -> Result<Vec<Sample>, String>,
    ) -> Reading<CohortObservation> {
        let q = &self.queries.cohort;
        let (requests, errors, buckets, fleet) = match (
            vector("cohort_requests"),
            vector("cohort_errors"),
            vector("cohort_latency_buckets"),
            vector("rollout_percentage"),
        ) {
            (Ok(r), Ok(e), Ok(b), f) => (r, e, b, f),
            (r, e, b, _) => {
                let why: Vec<String> = [r.err(), e.err(), b.err()].into_iter().flatten().collect();
                return Reading::Failed(why.join("; "));
            }
        };
        let by_cohort = |samples: &[Sample], cohort: &str| -> f64 {
            samples
                .iter()
                .filter(|s| s.metric.get("cohort").map(String::as_str) == Some(cohort))
                .map(|s| s.value)
                .filter(|v| v.is_finite())
                .sum()
        };
        if !requests.iter().any(|s| {
            matches!(
                s.metric.get("cohort").map(String::as_str),
                Some("in" | "out")
            )
        }) {
            return Reading::Missing;
        }
        let histogram = |cohort: &str| -> Vec<(f64, f64)> {
            let mut h: Vec<(f64, f64)> = buckets
                .iter()
                .filter(|s| s.metric.get("cohort").map(String::as_str) == Some(cohort))
                .filter_map(|s| {
                    let le = s.metric.get("le")?;
                    let bound = if le == "+Inf" {
                        f64::INFINITY
                    } else {
                        le.parse().ok()?
                    };
                    Some((bound, s.value))
                })
                .filter(|(le, v)| !le.is_nan() && v.is_finite())
                .collect();
            h.sort_by(|a, b| a.0.total_cmp(&b.0));
            h
        };
        let (in_h, out_h) = (histogram("in"), histogram("out"));
        let slow = slow_counts(&in_h, &out_h);
        let figures = |cohort: &str, h: &[(f64, f64)], slow: f64| {
            let p95 = histogram_quantile(0.95, h) * 1000.0;
            CohortFigures {
                requests: by_cohort(&requests, cohort),
                errors: by_cohort(&errors, cohort),
                p95_ms: p95.is_finite().then_some(p95),
                slow,
            }
        };
        let fleet = match fleet {
            Err(why) => Reading::Failed(why),
            Ok(samples) => {
                let values: Vec<(String, f64)> = samples
                    .iter()
                    .filter(|s| s.value.is_finite())
                    .map(|s| {
                        let who = s
                            .metric
                            .get("instance")
                            .cloned()
                            .unwrap_or_else(|| format!("{:?}", s.metric));
                        (who, s.value)
                    })
                    .collect();
                FleetPercentage::from_reports(&values).map_or(Reading::Missing, Reading::Value)
            }
        };
        Reading::Value(CohortObservation {
            selector: q.selector.clone(),
            window_seconds: q.window.as_secs_f64(),
            in_cohort: figures("in", &in_h, slow.map_or(0.0, |s| s.in_slow)),
            out_cohort: figures("out", &out_h, slow.map_or(0.0, |s| s.out_slow)),
            slow_above_ms: slow.map(|s| s.bound_seconds * 1000.0),
            fleet,
            rules: q.rules,
        })
    }
}
