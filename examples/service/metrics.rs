//! The cohort series of the service, with `prometheus-client`:
//!
//! ```text
//! genesis_requests_total{rollout, cohort}             counter
//! genesis_errors_total{rollout, cohort}               counter
//! genesis_request_duration_seconds{rollout, cohort}   histogram (a bucket at 0.2 s)
//! genesis_flags_rollout_percentage{rollout}           gauge: the percentage this instance applies
//! genesis_flags_source_info{version}                  1, version = hex xxh3 of the flags file
//! genesis_flags_reload_errors_total                   counter
//! genesis_flags_evaluations_total{flag, variant, reason} counter: the store's exposure counts
//!                                                     (flag="" for names no snapshot knew)
//! genesis_flags_ready                                 1 once a flags document is loaded
//! genesis_flags_source_from_cache                     1 while serving the cache file, not the source
//! genesis_flags_last_reload_success_timestamp_seconds when the source was last read (0: never)
//! ```
//!
//! Request series are resolved once at start (one rollout, two cohorts), so a
//! request touches two counters and a histogram and never builds a label set.

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use genesis_flags::{Cohort, FlagStore, Reloader};
use parking_lot::Mutex;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Request duration buckets, in seconds (the gate reads `le="0.2"`).
const DURATION_BUCKETS: [f64; 12] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.5, 5.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CohortLabels {
    rollout: String,
    cohort: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RolloutLabels {
    rollout: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabels {
    version: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EvaluationLabels {
    flag: String,
    variant: String,
    reason: String,
}

/// One cohort's request series.
#[derive(Clone)]
struct Series {
    requests: Counter,
    errors: Counter,
    duration: Histogram,
}

#[derive(Default)]
struct Seen {
    /// Refused documents and failed fetches counted so far.
    errors: u64,
    version: Option<String>,
    /// Exposure counts already added to the counters.
    evaluations: HashMap<EvaluationLabels, u64>,
}

/// What the service measures and how it renders `/metrics`.
pub struct Metrics {
    registry: Registry,
    inside: Series,
    outside: Series,
    percentage: Family<RolloutLabels, Gauge<f64, AtomicU64>>,
    source_info: Family<VersionLabels, Gauge>,
    reload_errors: Counter,
    evaluations: Family<EvaluationLabels, Counter>,
    ready: Gauge,
    from_cache: Gauge,
    last_success: Gauge<f64, AtomicU64>,
    /// What `/metrics` last saw of the reloader; held while rendering, so
    /// concurrent scrapes each see whole series.
    seen: Mutex<Seen>,
}

impl Metrics {
    /// Registers every series; `rollout` labels the request series.
    pub fn new(rollout: &str) -> Self {
        let mut registry = Registry::default();
        let requests = Family::<CohortLabels, Counter>::default();
        let errors = Family::<CohortLabels, Counter>::default();
        let duration =
            Family::<CohortLabels, Histogram, fn() -> Histogram>::new_with_constructor(|| {
                Histogram::new(DURATION_BUCKETS)
            });
        let percentage = Family::<RolloutLabels, Gauge<f64, AtomicU64>>::default();
        let source_info = Family::<VersionLabels, Gauge>::default();
        let reload_errors = Counter::default();
        let evaluations = Family::<EvaluationLabels, Counter>::default();
        let ready = Gauge::default();
        let from_cache = Gauge::default();
        let last_success = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "genesis_flags_source_from_cache",
            "1 while the flags applied come from the local cache file, not the source (the source was never reached)",
            from_cache.clone(),
        );
        registry.register(
            "genesis_flags_last_reload_success_timestamp_seconds",
            "When the source was last read successfully (0: never); alert on its age",
            last_success.clone(),
        );
        registry.register(
            "genesis_flags_evaluations",
            "Flag evaluations by flag, served variant and reason (flag=\"\" for unknown names)",
            evaluations.clone(),
        );
        registry.register(
            "genesis_flags_ready",
            "1 once a flags document is loaded",
            ready.clone(),
        );
        // prometheus-client appends `_total` to counters.
        registry.register(
            "genesis_requests",
            "Requests served, by rollout and the user's cohort in it",
            requests.clone(),
        );
        registry.register(
            "genesis_errors",
            "Requests answered with an error, by rollout and cohort",
            errors.clone(),
        );
        registry.register(
            "genesis_request_duration_seconds",
            "Request duration, by rollout and cohort",
            duration.clone(),
        );
        registry.register(
            "genesis_flags_rollout_percentage",
            "The percentage of each rollout this instance applies",
            percentage.clone(),
        );
        registry.register(
            "genesis_flags_source_info",
            "The flags document this instance applies (hex xxh3 of its bytes)",
            source_info.clone(),
        );
        registry.register(
            "genesis_flags_reload_errors",
            "Flags documents refused and fetches failed (the last good one stays)",
            reload_errors.clone(),
        );
        let series = |cohort: Cohort| {
            let labels = CohortLabels {
                rollout: rollout.to_owned(),
                cohort: cohort.as_str().to_owned(),
            };
            Series {
                requests: requests.get_or_create_owned(&labels),
                errors: errors.get_or_create_owned(&labels),
                duration: duration.get_or_create_owned(&labels),
            }
        };
        Metrics {
            registry,
            inside: series(Cohort::In),
            outside: series(Cohort::Out),
            percentage,
            source_info,
            reload_errors,
            evaluations,
            ready,
            from_cache,
            last_success,
            seen: Mutex::new(Seen::default()),
        }
    }

    /// Records one request of `cohort`.
    pub fn record(&self, cohort: Cohort, failed: bool, elapsed: Duration) {
        let series = match cohort {
            Cohort::In => &self.inside,
            Cohort::Out => &self.outside,
        };
        series.requests.inc();
        if failed {
            series.errors.inc();
        }
        series.duration.observe(elapsed.as_secs_f64());
    }

    /// Brings the flag-source series up to date, then renders every series
    /// as OpenMetrics text.
    pub fn render(&self, store: &FlagStore, reloader: &Reloader) -> String {
        let mut seen = self.seen.lock();
        self.refresh(&mut seen, store, reloader);
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }

    fn refresh(&self, seen: &mut Seen, store: &FlagStore, reloader: &Reloader) {
        // Exactly the rollouts of the snapshot applied now: one that left the
        // file is no longer applied, so its gauge goes.
        self.percentage.clear();
        for status in store.snapshot().rollouts() {
            self.percentage
                .get_or_create(&RolloutLabels { rollout: status.id })
                .set(status.percentage.as_percent());
        }
        self.ready.set(i64::from(store.is_ready()));
        // The store's counts are totals; the counters take the increase.
        for count in store.exposures() {
            let labels = EvaluationLabels {
                flag: count.flag.unwrap_or_default(),
                variant: count.variant,
                reason: count.reason.as_str().to_owned(),
            };
            let before = seen.evaluations.get(&labels).copied().unwrap_or(0);
            if count.count > before {
                self.evaluations
                    .get_or_create(&labels)
                    .inc_by(count.count - before);
                seen.evaluations.insert(labels, count.count);
            }
        }
        let stats = reloader.stats();
        self.from_cache.set(i64::from(stats.from_cache));
        self.last_success.set(
            stats
                .last_success
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0.0, |d| d.as_secs_f64()),
        );
        let errors = stats.rejections.saturating_add(stats.fetch_errors);
        self.reload_errors
            .inc_by(errors.saturating_sub(seen.errors));
        seen.errors = errors;
        if stats.version != seen.version {
            // The reloader names each installed document by its bytes
            // (the same for the file and the HTTP source).
            self.source_info.clear();
            if let Some(version) = &stats.version {
                self.source_info
                    .get_or_create(&VersionLabels {
                        version: version.clone(),
                    })
                    .set(1);
            }
            seen.version = stats.version;
        }
    }
}
