//! `--ui-listen`: the status page (server-rendered HTML, no JavaScript) and
//! its API.
//!
//! ```text
//! GET  /                 the page
//! GET  /api/v1/status    the JSON of `status --output json` (with `revision`)
//! POST /api/v1/{pause,resume,rollback,signoff}
//!      Authorization: Bearer TOKEN      401 without it, or without --ui-token-file
//!      {"revision": N, "reason": "...", "role": "...", "name": "..."}
//!                                       409 when N is not the current revision
//!                                       200 with the applied outcome
//! ```
//!
//! An action is an operator command like any other: it goes through the
//! engine's request path (`Controller::submit_with_options`, applied only
//! at the revision the person saw), and the audit log records the
//! controller's user as `by` and "NAME (status page)" as `claimed_by`. A GET
//! reads the state file and the outbox, and never writes.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::{Path as UrlPath, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use genesis_flags::rollout::controller::Refusal;
use genesis_flags::rollout::metrics::{expected_completion, soak_end};
use genesis_flags::rollout::{
    format_duration, ChangeKind, Clock, Controller, ControllerError, Operation, OperationError,
    Phase, RolloutState, StatusView, SubmitOptions, SystemClock, Timestamp, Verdict,
};
use serde::Deserialize;
use serde_json::json;

use crate::observe::{action_text, Shared};

/// The routes of the page and its API.
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/api/v1/status", get(status))
        .route("/api/v1/{action}", post(act))
        .with_state(shared)
}

fn error(code: StatusCode, message: &str) -> Response {
    (code, Json(json!({ "error": message }))).into_response()
}

async fn status(State(shared): State<Arc<Shared>>) -> Response {
    let path = shared.state.clone();
    match tokio::task::spawn_blocking(move || crate::status_report(&path)).await {
        Ok(Ok((_, value))) => Json(value).into_response(),
        Ok(Err(f)) => error(StatusCode::SERVICE_UNAVAILABLE, &f.message),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

/// Compares in time independent of where the inputs differ (the length
/// of the expected token is not a secret).
fn same_token(given: &[u8], expected: &[u8]) -> bool {
    let mut diff = u8::from(given.len() != expected.len());
    for (i, e) in expected.iter().enumerate() {
        diff |= e ^ given.get(i).copied().unwrap_or(0);
    }
    diff == 0
}

/// The body of an action.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ActionBody {
    revision: u64,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    name: Option<String>,
}

async fn act(
    State(shared): State<Arc<Shared>>,
    UrlPath(action): UrlPath<String>,
    headers: HeaderMap,
    body: String,
) -> Response {
    // 1. Who: the token, before anything else is read.
    let Some(token) = &shared.token else {
        return error(
            StatusCode::UNAUTHORIZED,
            "the status page is read-only: the controller was started without --ui-token-file",
        );
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if !same_token(given.as_bytes(), token.as_bytes()) {
        let mut r = error(StatusCode::UNAUTHORIZED, "a valid bearer token is required");
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, "Bearer".parse().expect("header"));
        return r;
    }
    // 2. What.
    let body: ActionBody = match serde_json::from_str(&body) {
        Ok(b) => b,
        Err(e) => return error(StatusCode::BAD_REQUEST, &format!("body: {e}")),
    };
    let who = body.name.clone().unwrap_or_else(|| "token holder".into());
    let reason = || {
        body.reason
            .clone()
            .ok_or((StatusCode::BAD_REQUEST, "body: `reason` is required"))
    };
    let operation = match action.as_str() {
        "pause" => reason().map(|reason| Operation::Pause { reason }),
        "resume" => reason().map(|reason| Operation::Resume { reason }),
        "rollback" => reason().map(|reason| Operation::Rollback { reason }),
        "signoff" => match (&body.role, &body.name) {
            (Some(role), Some(name)) => Ok(Operation::SignOff {
                role: role.clone(),
                name: name.clone(),
            }),
            _ => Err((
                StatusCode::BAD_REQUEST,
                "body: `role` and `name` are required",
            )),
        },
        _ => Err((
            StatusCode::NOT_FOUND,
            "actions: pause, resume, rollback, signoff",
        )),
    };
    let operation = match operation {
        Ok(op) => op,
        Err((code, message)) => return error(code, message),
    };
    // 3. Through the engine's request path, at the revision seen.
    let seen = body.revision;
    let path = shared.state.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        let current = RolloutState::load(&path).map(|s| s.revision).ok();
        if current.is_some_and(|c| c != seen) {
            return Err((StatusCode::CONFLICT, current, None));
        }
        let by = format!("{who} (status page)");
        let options = SubmitOptions::default().from_revision(Some(seen));
        match Controller::submit_with_options(&path, &operation, &by, &options, &|b| b) {
            Ok((applied, _)) => Ok(applied),
            Err(e) => {
                let now = RolloutState::load(&path).map(|s| s.revision).ok();
                // The running engine's refusal is typed: a stale revision
                // is a conflict whoever applied the request.
                let stale = matches!(
                    e,
                    ControllerError::Refused(OperationError::Stale { .. })
                        | ControllerError::Remote(Refusal::Stale { .. } | Refusal::Conflict { .. })
                );
                let code = if stale {
                    StatusCode::CONFLICT
                } else {
                    StatusCode::UNPROCESSABLE_ENTITY
                };
                Err((code, now, Some(e.to_string())))
            }
        }
    })
    .await;
    match outcome {
        Ok(Ok(applied)) => Json(json!({
            "outcome": applied.entry,
            "revision": applied.commit.revision,
            "pending": applied.commit.pending,
        }))
        .into_response(),
        Ok(Err((code, revision, message))) => (
            code,
            Json(json!({
                "error": message.unwrap_or_else(|| format!(
                    "the rollout changed since revision {seen}; nothing changed"
                )),
                "revision": revision,
            })),
        )
            .into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

async fn page(State(shared): State<Arc<Shared>>) -> Response {
    match tokio::task::spawn_blocking(move || render(&shared)).await {
        Ok(html) => ([(header::CACHE_CONTROL, "no-store")], Html(html)).into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn figure(v: Option<f64>) -> String {
    v.map_or_else(|| "–".into(), |v| format!("{v:.3}"))
}

fn when(t: Option<Timestamp>) -> String {
    t.map_or_else(|| "–".into(), |t| t.to_string())
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:1.5em;color:#222;max-width:70em}\
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left}\
th{background:#f3f3f3}.pass{background:#d8f5d8}.breach{background:#f8c8c8}.no_data,.error{background:#fde9b8}\
.current{font-weight:bold;background:#e4eefc}.done{color:#666}h1 small{font-weight:normal;color:#555}\
.banner{padding:.6em 1em;margin:.5em 0;border-radius:4px}.rolled_back,.paused{background:#f8c8c8}\
.soaking,.validating{background:#e4eefc}.completed{background:#d8f5d8}.awaiting_signoff,.ready{background:#fde9b8}";

/// The page: every section from the committed state, the outbox and the
/// ticks this controller judged.
fn render(shared: &Shared) -> String {
    let now = SystemClock.now();
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"15\"><title>Rollout status</title>\
         <style>{STYLE}</style></head><body>"
    );
    let Some(state) = shared.load_state() else {
        let _ = write!(
            h,
            "<h1>Rollout status</h1><p>The state file {} cannot be read.</p></body></html>",
            esc(&shared.state.display().to_string())
        );
        return h;
    };
    let view = StatusView::new(&state, now, None);
    let _ = write!(
        h,
        "<h1>Rollout <span id=\"rollout\">{}</span> <small>plan {}</small></h1>\
         <div class=\"banner {}\"><strong id=\"phase\">{}</strong> — stage <span id=\"stage\">{}</span> of {} \
         at <span id=\"percentage\">{}%</span> (tier {}), revision <span id=\"revision\">{}</span></div>",
        esc(&state.rollout),
        esc(&state.plan.name),
        state.phase.as_str(),
        state.phase.as_str(),
        state.stage,
        state.plan.stages.len(),
        view.current_percentage,
        esc(&view.tier),
        state.revision
    );
    if let Some(reason) = &state.reason {
        let _ = write!(h, "<p><strong>Reason:</strong> {}</p>", esc(reason));
    }
    let soak = match (soak_end(&state), &view.soak_left) {
        (Some(end), Some(left)) => format!("soak ends {end} ({left} left)"),
        _ => "not soaking".into(),
    };
    let _ = write!(
        h,
        "<p id=\"soak\">Since {} ({} in this stage); {}; expected completion: {}.</p>",
        state.since,
        esc(&view.time_in_stage),
        esc(&soak),
        expected_completion(&state, now).map_or_else(
            || "none while rolled back or paused".into(),
            |t| t.to_string()
        )
    );
    timeline(&mut h, &state);
    checks(&mut h, &state, shared);
    cohort(&mut h, &state);
    decisions(&mut h, &state, shared);
    notifications(&mut h, shared);
    signoffs(&mut h, &state);
    let _ = write!(
        h,
        "<h2>Acting</h2><p>{}</p><p><small>Last tick judged: {}; page rendered {now}. \
         The JSON of this page is at <a href=\"/api/v1/status\">/api/v1/status</a>.</small></p></body></html>",
        if shared.token.is_some() {
            "Pause, resume, rollback and sign-off are POSTs to <code>/api/v1/{action}</code> with the bearer token \
             and the revision shown above; they are audited like any operator command."
        } else {
            "Read-only: the controller was started without <code>--ui-token-file</code>."
        },
        when(state.last_tick)
    );
    h
}

fn timeline(h: &mut String, state: &RolloutState) {
    h.push_str("<h2>Stages</h2><table id=\"timeline\"><tr><th>Stage</th><th>Percentage</th><th>Soak</th><th>Tier</th><th>Entered</th><th></th></tr>");
    for (i, stage) in state.plan.stages.iter().enumerate() {
        let n = i + 1;
        let entered = state
            .history
            .iter()
            .rev()
            .find(|e| {
                e.stage == n
                    && matches!(
                        e.event,
                        ChangeKind::Start | ChangeKind::Advance | ChangeKind::Promote
                    )
            })
            .map(|e| e.at.to_string())
            .unwrap_or_default();
        let (class, mark) = match n.cmp(&state.stage) {
            std::cmp::Ordering::Less => ("done", "done"),
            std::cmp::Ordering::Equal => ("current", "current"),
            std::cmp::Ordering::Greater => ("", ""),
        };
        let _ = write!(
            h,
            "<tr class=\"{class}\"><td>{n}</td><td>{}</td><td>{}</td><td>{}</td><td>{entered}</td><td>{mark}</td></tr>",
            stage.percentage,
            format_duration(stage.soak),
            esc(&stage.tier)
        );
    }
    let _ = write!(
        h,
        "<tr><td>final window</td><td>100%</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr></table>",
        format_duration(state.plan.validation.duration),
        esc(&state.plan.validation.tier),
        when(state.window_since),
        if state.phase == Phase::Validating { "current" } else { "" }
    );
}

fn checks(h: &mut String, state: &RolloutState, shared: &Shared) {
    h.push_str("<h2>Checks</h2>");
    let Some(verdicts) = &state.last_verdicts else {
        h.push_str("<p id=\"checks\">No tick judged yet.</p>");
        return;
    };
    let recent = shared.recent.lock().expect("recent lock").clone();
    h.push_str("<table id=\"checks\"><tr><th>Check</th><th>Verdict</th><th>Value</th><th>Threshold</th><th>History (oldest first)</th><th>Detail</th></tr>");
    let all = [
        &verdicts.error_rate,
        &verdicts.p95,
        &verdicts.health,
        &verdicts.alerts,
    ]
    .into_iter()
    .chain(verdicts.cohort.iter().flat_map(|c| c.all()));
    for c in all {
        let history: String = recent
            .iter()
            .filter_map(|d| {
                let v = &d.verdicts;
                [&v.error_rate, &v.p95, &v.health, &v.alerts]
                    .into_iter()
                    .chain(v.cohort.iter().flat_map(|c| c.all()))
                    .find(|x| x.check == c.check)
                    .map(|x| x.verdict)
            })
            .map(|v| {
                format!(
                    "<span class=\"{v}\" title=\"{v}\">{}</span>",
                    match v {
                        Verdict::Pass => "✓",
                        Verdict::Breach => "✗",
                        Verdict::NoData => "?",
                        Verdict::Error => "!",
                    }
                )
            })
            .collect();
        let _ = write!(
            h,
            "<tr><td>{}</td><td class=\"{}\">{}</td><td>{}</td><td>{}</td><td>{history}</td><td>{}</td></tr>",
            esc(&c.check.to_string()),
            c.verdict,
            c.verdict,
            figure(c.value),
            figure(c.threshold),
            esc(&c.detail)
        );
    }
    h.push_str("</table><p><small>Error rates and shares in percent, latencies in ms, e-values without unit.</small></p>");
}

fn cohort(h: &mut String, state: &RolloutState) {
    h.push_str("<h2>Cohorts: flagged users (in) against the others (out)</h2>");
    let Some(c) = state.last_verdicts.as_ref().and_then(|v| v.cohort.as_ref()) else {
        h.push_str("<p id=\"cohort\">No cohort series at the last tick (global series only).</p>");
        return;
    };
    let _ = write!(
        h,
        "<table id=\"cohort\"><tr><th></th><th>In</th><th>Out</th></tr>\
         <tr><td>Error rate (%)</td><td>{}</td><td>{}</td></tr>\
         <tr><td>P95 latency (ms)</td><td>{}</td><td>{}</td></tr></table>\
         <table><tr><th>Test</th><th>E-value</th><th>Rolls back over</th><th>Verdict</th></tr>\
         <tr><td>errors</td><td>{}</td><td>{}</td><td class=\"{}\">{}</td></tr>\
         <tr><td>latency</td><td>{}</td><td>{}</td><td class=\"{}\">{}</td></tr></table>",
        figure(c.in_error_rate.value),
        figure(c.out_error_rate),
        figure(c.in_p95.value),
        figure(c.out_p95),
        figure(c.error_excess.value),
        figure(c.error_excess.threshold),
        c.error_excess.verdict,
        c.error_excess.verdict,
        figure(c.latency_excess.value),
        figure(c.latency_excess.threshold),
        c.latency_excess.verdict,
        c.latency_excess.verdict,
    );
}

fn decisions(h: &mut String, state: &RolloutState, shared: &Shared) {
    h.push_str("<h2>Last decisions</h2><table id=\"decisions\"><tr><th>At</th><th>Decision</th><th>Stage</th><th>Why</th></tr>");
    let recent = shared.recent.lock().expect("recent lock").clone();
    for d in recent.iter().rev().take(10) {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            d.at,
            esc(&action_text(&d.action)),
            d.stage,
            esc(&d.explanation.message)
        );
    }
    h.push_str("</table><h2>Changes</h2><table id=\"history\"><tr><th>At</th><th>Event</th><th>Stage</th><th>Percentage</th><th>By</th><th>Why</th></tr>");
    for e in state.history.iter().rev().take(15) {
        let by = match &e.claimed_by {
            Some(claim) => format!("{} (for {claim})", e.by),
            None => e.by.clone(),
        };
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            e.at,
            esc(e.event.as_str()),
            e.stage,
            e.percentage,
            esc(&by),
            esc(&e.why)
        );
    }
    h.push_str("</table>");
}

fn notifications(h: &mut String, shared: &Shared) {
    h.push_str("<h2>Pending notifications</h2>");
    match crate::notify::pending(&shared.state) {
        Ok(pending) if pending.iter().any(|p| !p.pending.is_empty()) => {
            h.push_str("<table id=\"notifications\"><tr><th>Channel</th><th>Pending</th><th>Oldest</th><th>Last error</th></tr>");
            for p in &pending {
                let _ = write!(
                    h,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    esc(&p.channel),
                    p.pending.len(),
                    when(p.oldest),
                    esc(p.last_error.as_deref().unwrap_or(""))
                );
            }
            h.push_str("</table>");
        }
        Ok(_) => h.push_str("<p id=\"notifications\">None.</p>"),
        Err(f) => {
            let _ = write!(
                h,
                "<p id=\"notifications\">Cannot read the outbox: {}</p>",
                esc(&f.message)
            );
        }
    }
}

fn signoffs(h: &mut String, state: &RolloutState) {
    h.push_str("<h2>Sign-offs</h2>");
    if state.plan.signoffs.is_empty() {
        h.push_str("<p id=\"signoffs\">The plan asks for none.</p>");
        return;
    }
    h.push_str("<table id=\"signoffs\"><tr><th>Role</th><th>Signed by</th><th>At</th></tr>");
    for role in &state.plan.signoffs {
        let signed = state.signoffs.iter().find(|s| &s.role == role);
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(role),
            signed.map_or_else(|| "missing".into(), |s| esc(&s.name)),
            when(signed.map(|s| s.at))
        );
    }
    h.push_str("</table>");
}

#[cfg(test)]
mod tests {
    use super::same_token;

    #[test]
    fn tokens_compare_whole() {
        assert!(same_token(b"0123456789abcdef", b"0123456789abcdef"));
        assert!(!same_token(b"0123456789abcdeF", b"0123456789abcdef"));
        assert!(!same_token(b"0123456789abcdef0", b"0123456789abcdef"));
        assert!(!same_token(b"", b"0123456789abcdef"));
    }
}
