//! Request latencies as the scenario's histogram holds them: `n` requests
//! spread over the buckets so Prometheus's `histogram_quantile` reads the
//! scenario's P95 back.

use super::*;

/// Adds `n` requests whose P95 is `p95_ms` to the buckets.
pub(super) fn add_latencies(acc: &mut Counters, p95_ms: f64, n: u64) {
    for (value, count) in latency_mix(p95_ms / 1000.0, n) {
        for (b, le) in LATENCY_BUCKETS.iter().enumerate() {
            if value <= *le {
                acc.buckets[b] += count;
            }
        }
        acc.buckets[LATENCY_BUCKETS.len()] += count;
        acc.sum += value * count as f64;
    }
}

/// `n` requests split over three latencies so that `histogram_quantile(0.95)`
/// over [`LATENCY_BUCKETS`] interpolates to `p95` (seconds): a share at the
/// lower bound of the bucket holding `p95`, a share just under its upper
/// bound, the rest above it.
pub(super) fn latency_mix(p95: f64, n: u64) -> [(f64, u64); 3] {
    let hi_index = LATENCY_BUCKETS.iter().position(|le| p95 <= *le);
    let Some(k) = hi_index else {
        // Beyond the last finite bucket: Prometheus answers that bucket's bound.
        let top = LATENCY_BUCKETS[LATENCY_BUCKETS.len() - 1];
        return [(top, 0), (top, 0), (p95, n)];
    };
    let hi = LATENCY_BUCKETS[k];
    let lo = if k == 0 { 0.0 } else { LATENCY_BUCKETS[k - 1] };
    let f = (p95 - lo) / (hi - lo);
    // Cumulative shares at `lo` and `hi`; linear interpolation of rank 0.95
    // between them lands on `p95`. In the first bucket interpolation starts
    // at 0 with nothing below, so P95s under 95% of its bound (47.5 ms) are
    // not representable and come out as 47.5 ms.
    let (at_lo, at_hi) = if k == 0 {
        (0.0, (0.95 * hi / p95).clamp(0.95, 1.0))
    } else if f >= 1.0 {
        (0.90, 0.95)
    } else if f <= 0.9 {
        ((0.95 - 0.99 * f) / (1.0 - f), 0.99)
    } else {
        let at_hi = 0.9501;
        ((0.95 - at_hi * f) / (1.0 - f), at_hi)
    };
    let low = (n as f64 * at_lo).round() as u64;
    let mid = ((n as f64 * at_hi).round() as u64).saturating_sub(low);
    let high = n.saturating_sub(low + mid);
    // Just under `hi` still counts in `hi`'s bucket; above `hi`, the next.
    [(lo, low), (hi - (hi - lo) * 1e-6, mid), (hi * 1.5, high)]
}

/// Prometheus's `histogram_quantile` over cumulative bucket counts (the last
/// one `+Inf`).
pub(super) fn histogram_quantile(q: f64, buckets: &[u64]) -> f64 {
    let Some(&total) = buckets.last() else {
        return f64::NAN;
    };
    if total == 0 {
        return f64::NAN;
    }
    let rank = q * total as f64;
    let Some(b) = buckets.iter().position(|&c| c as f64 >= rank) else {
        return f64::NAN;
    };
    if b == LATENCY_BUCKETS.len() {
        return LATENCY_BUCKETS[LATENCY_BUCKETS.len() - 1];
    }
    let (lo, prev) = if b == 0 {
        (0.0, 0)
    } else {
        (LATENCY_BUCKETS[b - 1], buckets[b - 1])
    };
    let hi = LATENCY_BUCKETS[b];
    let in_bucket = (buckets[b] - prev) as f64;
    if in_bucket == 0.0 {
        return hi;
    }
    lo + (hi - lo) * (rank - prev as f64) / in_bucket
}
