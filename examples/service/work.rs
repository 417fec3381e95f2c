//! `GET /work?user=ID`: what a Genesis request does with the flags. It reads
//! the ten critical flags through one per-user view (one hash of the user
//! for the shared rollout), learns the user's cohort from the same view,
//! suffers the in-cohort fault if any, and is recorded under its cohort.

use std::time::Instant;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use genesis_flags::Cohort;
use serde::Deserialize;
use serde_json::json;

use crate::App;

/// The ten critical Genesis flags, bound to `phase_4_deployment` in
/// `examples/config/genesis.json`.
pub const CRITICAL: [&str; 10] = [
    "htdag_enabled",
    "halo_enabled",
    "aop_enabled",
    "error_handling_enabled",
    "circuit_breaker_enabled",
    "otel_tracing_enabled",
    "otel_metrics_enabled",
    "performance_monitoring_enabled",
    "cost_optimization_enabled",
    "security_hardening_enabled",
];

#[derive(Debug, Deserialize)]
pub struct WorkQuery {
    user: String,
}

pub async fn work(State(app): State<App>, Query(query): Query<WorkQuery>) -> Response {
    let started = Instant::now();
    let (cohort, on) = {
        let view = app.store.for_user(&query.user);
        // An unknown rollout holds nobody.
        let cohort = view.cohort(&app.rollout).unwrap_or(Cohort::Out);
        let on = app
            .critical
            .iter()
            .filter(|h| view.is_enabled_handle(h))
            .count();
        (cohort, on)
    };
    let verdict = app.faults.judge(cohort.is_in());
    if let Some(delay) = verdict.delay {
        tokio::time::sleep(delay).await;
    }
    app.metrics.record(cohort, verdict.fail, started.elapsed());
    let body = json!({ "user": query.user, "cohort": cohort.as_str(), "flags_on": on });
    if verdict.fail {
        (StatusCode::INTERNAL_SERVER_ERROR, Json(body)).into_response()
    } else {
        Json(body).into_response()
    }
}
