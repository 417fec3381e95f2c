//! Fault injection for the flagged path: an error ratio and an added latency
//! applied to in-cohort requests only, switched at run time through
//! `POST /admin/fault`, which only loopback peers may call.
//!
//! Errors are spread exactly rather than drawn at random: with a ratio of
//! `r`, the `n`-th request fails when `floor(n r)` steps up, so any run of
//! `k` requests holds `k r` errors, give or take one. A fixed base ratio (for
//! every request, both cohorts) is spread the same way.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::App;

/// The longest latency an operator may inject.
const MAX_LATENCY_MS: u64 = 60_000;
const PPM: u64 = 1_000_000;

/// The body of `POST /admin/fault` (both fields default to 0: no fault).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    /// Share of in-cohort requests answered 500, in `[0, 1]`.
    #[serde(default)]
    pub error_ratio: f64,
    /// Milliseconds added to every in-cohort request.
    #[serde(default)]
    pub latency_ms: u64,
}

impl FaultSpec {
    fn error_ppm(self) -> Result<u64, String> {
        if !(0.0..=1.0).contains(&self.error_ratio) {
            return Err(format!(
                "error_ratio {} is outside [0, 1]",
                self.error_ratio
            ));
        }
        if self.latency_ms > MAX_LATENCY_MS {
            return Err(format!(
                "latency_ms {} is above {MAX_LATENCY_MS}",
                self.latency_ms
            ));
        }
        // In [0, 1e6] after the range check.
        Ok((self.error_ratio * PPM as f64).round() as u64)
    }
}

/// An error ratio spread exactly over the requests it sees.
#[derive(Debug, Default)]
struct Spread {
    ppm: AtomicU64,
    seen: AtomicU64,
}

impl Spread {
    fn new(ppm: u64) -> Self {
        Spread {
            ppm: AtomicU64::new(ppm),
            seen: AtomicU64::new(0),
        }
    }

    /// Whether this request is one of the failing ones.
    fn hits(&self) -> bool {
        let ppm = self.ppm.load(Ordering::Relaxed);
        if ppm == 0 {
            return false;
        }
        let n = self.seen.fetch_add(1, Ordering::Relaxed);
        (n + 1).wrapping_mul(ppm) / PPM != n.wrapping_mul(ppm) / PPM
    }
}

/// The faults in force.
#[derive(Debug)]
pub struct Faults {
    inside: Spread,
    latency_ms: AtomicU64,
    base: Spread,
}

/// What a request suffers.
pub struct Verdict {
    pub fail: bool,
    pub delay: Option<Duration>,
}

impl Faults {
    /// No injected fault; `base_ppm` of every request fails regardless.
    pub fn new(base_ppm: u64) -> Self {
        Faults {
            inside: Spread::new(0),
            latency_ms: AtomicU64::new(0),
            base: Spread::new(base_ppm.min(PPM)),
        }
    }

    /// Whether a request fails and how long it waits first.
    pub fn judge(&self, in_cohort: bool) -> Verdict {
        let base = self.base.hits();
        if !in_cohort {
            return Verdict {
                fail: base,
                delay: None,
            };
        }
        let injected = self.inside.hits();
        let latency = self.latency_ms.load(Ordering::Relaxed);
        Verdict {
            fail: base || injected,
            delay: (latency > 0).then(|| Duration::from_millis(latency)),
        }
    }

    fn current(&self) -> FaultSpec {
        FaultSpec {
            error_ratio: self.inside.ppm.load(Ordering::Relaxed) as f64 / PPM as f64,
            latency_ms: self.latency_ms.load(Ordering::Relaxed),
        }
    }

    fn set(&self, error_ppm: u64, latency_ms: u64) {
        self.inside.ppm.store(error_ppm, Ordering::Relaxed);
        self.latency_ms.store(latency_ms, Ordering::Relaxed);
    }
}

fn refuse(status: StatusCode, message: String) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

/// `POST /admin/fault`: sets the in-cohort fault; 403 unless the peer is on
/// loopback (checked before the body is read), 400 for a bad body.
pub async fn set(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    body: Bytes,
) -> Response {
    if !peer.ip().is_loopback() {
        return refuse(
            StatusCode::FORBIDDEN,
            format!("/admin/fault is for loopback peers only, not {}", peer.ip()),
        );
    }
    let spec: FaultSpec = match serde_json::from_slice(&body) {
        Ok(spec) => spec,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, format!("fault body: {e}")),
    };
    match spec.error_ppm() {
        Ok(ppm) => {
            app.faults.set(ppm, spec.latency_ms);
            tracing::info!(
                error_ratio = spec.error_ratio,
                latency_ms = spec.latency_ms,
                "fault set for the in cohort"
            );
            Json(app.faults.current()).into_response()
        }
        Err(message) => refuse(StatusCode::BAD_REQUEST, message),
    }
}

/// `GET /admin/fault`: the fault in force.
pub async fn get(State(app): State<App>) -> Json<FaultSpec> {
    Json(app.faults.current())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ratio_is_spread_exactly() {
        let s = Spread::new(50_000);
        let hits = (0..1000).filter(|_| s.hits()).count();
        assert_eq!(hits, 50);
        let none = Spread::new(0);
        assert!((0..1000).all(|_| !none.hits()));
    }

    #[test]
    fn out_of_cohort_requests_only_see_the_base() {
        let f = Faults::new(0);
        f.set(PPM, 400);
        let out = f.judge(false);
        assert!(!out.fail && out.delay.is_none());
        let inside = f.judge(true);
        assert!(inside.fail);
        assert_eq!(inside.delay, Some(Duration::from_millis(400)));
    }

    #[test]
    fn bad_specs_are_named() {
        let bad = FaultSpec {
            error_ratio: 1.5,
            latency_ms: 0,
        };
        assert!(bad.error_ppm().unwrap_err().contains("error_ratio 1.5"));
        let nan = FaultSpec {
            error_ratio: f64::NAN,
            latency_ms: 0,
        };
        assert!(nan.error_ppm().is_err());
    }
}
