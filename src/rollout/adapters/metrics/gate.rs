//! The gate's own figures: query errors and durations ([`GateMeter`], [`MeteredGate`]).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::rollout::{HealthGate, Observation, Reading, Timestamp};

/// The upper bounds of the gate duration histogram, in seconds.
pub const GATE_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The fleet as the last observation saw it (the gate is the rollout's).
#[derive(Debug, Clone, PartialEq)]
pub struct FleetSeen {
    /// The percentage each instance applies.
    pub percents: Vec<f64>,
}

/// The gate's figures so far.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GateStats {
    /// Failed readings (each query of an observation that failed).
    pub errors: u64,
    /// Observations per bucket of [`GATE_BUCKETS`] (cumulative).
    pub buckets: [u64; 12],
    /// Observations.
    pub count: u64,
    /// Their total duration.
    pub sum_seconds: f64,
    /// The fleet of the last observation that saw one.
    pub fleet: Option<FleetSeen>,
}

/// Where a [`MeteredGate`] records, shared with the metrics.
#[derive(Debug, Clone, Default)]
pub struct GateMeter(Arc<Mutex<GateStats>>);

impl GateMeter {
    /// The figures so far.
    #[must_use]
    pub fn stats(&self) -> GateStats {
        self.0.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Records one observation that took `took`.
    pub fn record(&self, observation: &Observation, took: Duration) {
        let Ok(mut s) = self.0.lock() else { return };
        let secs = took.as_secs_f64();
        s.count += 1;
        s.sum_seconds += secs;
        for (bound, count) in GATE_BUCKETS.iter().zip(s.buckets.iter_mut()) {
            if secs <= *bound {
                *count += 1;
            }
        }
        let o = observation;
        let failed = [
            matches!(o.error_rate, Reading::Failed(_)),
            matches!(o.p95_ms, Reading::Failed(_)),
            matches!(o.requests, Reading::Failed(_)),
            matches!(o.health, Reading::Failed(_)),
            matches!(o.critical_alerts, Reading::Failed(_)),
            matches!(o.cohorts, Reading::Failed(_)),
            matches!(&o.cohorts, Reading::Value(c) if matches!(c.fleet, Reading::Failed(_))),
        ];
        s.errors += failed.iter().filter(|f| **f).count() as u64;
        if let Reading::Value(c) = &o.cohorts {
            if let Reading::Value(f) = &c.fleet {
                s.fleet = Some(FleetSeen {
                    percents: f.percents(),
                });
            }
        }
    }
}

/// A gate whose every observation is timed and counted in a [`GateMeter`].
#[derive(Debug)]
pub struct MeteredGate<G> {
    gate: G,
    meter: GateMeter,
}

impl<G: HealthGate> MeteredGate<G> {
    /// `gate`, measured into `meter`.
    pub fn new(gate: G, meter: GateMeter) -> Self {
        MeteredGate { gate, meter }
    }
}

impl<G: HealthGate> HealthGate for MeteredGate<G> {
    fn observe(&mut self, at: Timestamp) -> Observation {
        let started = Instant::now();
        let observation = self.gate.observe(at);
        self.meter.record(&observation, started.elapsed());
        observation
    }
}
