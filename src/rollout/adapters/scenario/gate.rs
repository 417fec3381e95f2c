//! [`ScenarioGate`]: a health gate reading a scenario directly, with the
//! window arithmetic Prometheus applies.

use std::time::Duration;

use crate::rollout::foundation::clock::Timestamp;
use crate::rollout::model::cohort::{
    histogram_quantile as cohort_quantile, slow_counts, CohortFigures, CohortObservation,
    CohortRules, FleetPercentage,
};
use crate::rollout::model::gate::{HealthCheck, HealthGate, Observation, Reading};

use super::*;

/// A [`HealthGate`] reading a [`Scenario`] directly (see [`Scenario::gate`]).
#[derive(Debug, Clone)]
pub struct ScenarioGate {
    pub(super) scenario: Scenario,
    pub(super) counters: Vec<Counters>,
    pub(super) cohort_counters: Vec<[Counters; 2]>,
    pub(super) window: Duration,
}

impl ScenarioGate {
    /// The last sample at or before `at`, if within the data.
    fn sample_at(&self, at: Timestamp) -> Option<usize> {
        if at < self.scenario.start {
            return None;
        }
        let i = (at.since(self.scenario.start).as_millis() / self.scenario.step.as_millis().max(1))
            as usize;
        Some(i.min(self.counters.len() - 1))
    }
}

impl HealthGate for ScenarioGate {
    fn observe(&mut self, at: Timestamp) -> Observation {
        let lookback = Duration::from_secs(300);
        let end = self.sample_at(at);
        // Like Prometheus: nothing within the lookback of `at` means no data.
        let fresh = end.is_some_and(|i| {
            at.since(self.scenario.start + self.scenario.step * i as u32) <= lookback
        });
        let (Some(end), true) = (end, fresh) else {
            return Observation {
                critical_alerts: Reading::Value(Vec::new()),
                ..Observation::no_data()
            };
        };
        let window_steps =
            (self.window.as_millis() / self.scenario.step.as_millis().max(1)) as usize;
        if end < 1 {
            return Observation {
                critical_alerts: Reading::Value(Vec::new()),
                ..Observation::no_data()
            };
        }
        let begin = end.saturating_sub(window_steps);
        let (a, b) = (&self.counters[begin], &self.counters[end]);
        let requests = (b.requests - a.requests) as f64;
        let errors = (b.errors - a.errors) as f64;
        // increase() extrapolates a partial window to its full length.
        let covered = (end - begin) as f64 / window_steps.max(1) as f64;
        let buckets: Vec<u64> = b
            .buckets
            .iter()
            .zip(&a.buckets)
            .map(|(x, y)| x - y)
            .collect();
        let c = self.scenario.conditions_at(self.scenario.step * end as u32);
        // ALERTS series exist only while firing, and an instant query still
        // sees a series whose last sample is within the lookback.
        let lookback_steps =
            (lookback.as_millis() / self.scenario.step.as_millis().max(1)) as usize;
        let mut alerts: Vec<String> = Vec::new();
        for j in end.saturating_sub(lookback_steps)..=end {
            for alert in self
                .scenario
                .conditions_at(self.scenario.step * j as u32)
                .critical_alerts
            {
                if !alerts.contains(&alert) {
                    alerts.push(alert);
                }
            }
        }
        alerts.sort();
        Observation {
            error_rate: Reading::Value(errors / requests),
            p95_ms: Reading::Value(histogram_quantile(0.95, &buckets) * 1000.0),
            requests: Reading::Value(requests / covered),
            health: Reading::Value(
                DEFAULT_HEALTH_JOBS
                    .iter()
                    .map(|job| HealthCheck {
                        name: (*job).to_owned(),
                        passed: !c.jobs_down.iter().any(|j| j == job),
                    })
                    .collect(),
            ),
            critical_alerts: Reading::Value(alerts),
            cohorts: self.cohorts(begin, end, covered),
            notes: Vec::new(),
        }
    }
}

impl ScenarioGate {
    /// The cohort series over samples `begin..=end`, as the default cohort
    /// queries read them.
    fn cohorts(&self, begin: usize, end: usize, covered: f64) -> Reading<CohortObservation> {
        let Some(cohorts) = &self.scenario.cohorts else {
            return Reading::Missing;
        };
        let (Some(a), Some(b)) = (
            self.cohort_counters.get(begin),
            self.cohort_counters.get(end),
        ) else {
            return Reading::Missing;
        };
        let histogram = |k: usize| -> Vec<(f64, f64)> {
            LATENCY_BUCKETS
                .iter()
                .copied()
                .chain([f64::INFINITY])
                .zip(b[k].buckets.iter().zip(&a[k].buckets))
                .map(|(le, (x, y))| (le, (x - y) as f64 / covered))
                .collect()
        };
        let (in_h, out_h) = (histogram(0), histogram(1));
        let slow = slow_counts(&in_h, &out_h);
        let figures = |k: usize, h: &[(f64, f64)], slow: f64| {
            let p95 = cohort_quantile(0.95, h) * 1000.0;
            CohortFigures {
                requests: (b[k].requests - a[k].requests) as f64 / covered,
                errors: (b[k].errors - a[k].errors) as f64 / covered,
                p95_ms: p95.is_finite().then_some(p95),
                slow,
            }
        };
        let reports: Vec<(String, f64)> = self
            .scenario
            .instance_percentages(end as u64)
            .into_iter()
            .enumerate()
            .map(|(k, percent)| (format!("instance-{k}"), percent))
            .collect();
        let fleet =
            FleetPercentage::from_reports(&reports).map_or(Reading::Missing, Reading::Value);
        let rollout = crate::rollout::adapters::prometheus::escape_label_value(&cohorts.rollout);
        Reading::Value(CohortObservation {
            selector: format!("rollout=\"{rollout}\""),
            window_seconds: self.window.as_secs_f64(),
            in_cohort: figures(0, &in_h, slow.map_or(0.0, |s| s.in_slow)),
            out_cohort: figures(1, &out_h, slow.map_or(0.0, |s| s.out_slow)),
            slow_above_ms: slow.map(|s| s.bound_seconds * 1000.0),
            fleet,
            rules: CohortRules::default(),
        })
    }
}
