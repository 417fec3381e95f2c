//! The pure decision function: `(state, observation, now) -> Decision`.
//!
//! No I/O and no clock: the same inputs always give the same decision, which
//! is what lets the rules below be property-tested.
//!
//! On each tick, in order:
//! 1. A rolled-back, completed or not-yet-started rollout holds.
//! 2. **Rollback** when a rollback threshold of the current tier is breached
//!    for long enough: the error rate or P95 latency breached on consecutive
//!    ticks spanning at least the tier's `sustained` duration (a Pass ends the
//!    run; NoData and Error neither extend nor end it), or the tier's number of
//!    consecutive ticks with a failed health check. With cohort series the
//!    in cohort's error rate and P95, and the in-vs-out tests, are held to the
//!    same rule, and the explanation says which cohorts were affected.
//!    Rollback applies even to a paused rollout or one awaiting sign-off.
//! 3. A paused rollout holds for a person.
//! 4. **Pause** after the plan's `no_data_budget` of continuous ticks with any
//!    NoData or Error.
//! 5. **Advance** to the next stage (never skipping one) when the soak is
//!    complete, every go criterion holds on this tick and no check is
//!    NoData/Error. With cohort series the soak starts once every instance
//!    applies the stage's percentage (until then the fleet check is NoData),
//!    and go needs the in-cohort sample (waived `max_sample_wait`, by default
//!    one more soak, after the soak's end).
//!
//! Without cohort series every explanation ends by saying that the global
//! series alone were judged (see `cohort` for the cohort rules).
//! 6. At the last stage, the final window (from reaching 100%) restarts on any
//!    go-criterion breach; **Complete** once it has held for its whole
//!    duration, the go criteria hold on this tick, and every sign-off is in.
//! 7. Otherwise **Hold**, saying what it waits for.
//!
//! The top of the rollout's module graph, which is acyclic:
//! `phase` ← `decision` ← `state` ← `policy`. The types of a decision live in
//! `decision`, so the state can apply one without importing this module.

use crate::rollout::foundation::clock::Timestamp;
// `Decision` and `Explanation` are re-exported for the modules that import
// them from here (durable.rs).
use crate::rollout::foundation::duration::format_duration;
use crate::rollout::model::cohort::CohortLedger;
pub(in crate::rollout) use crate::rollout::model::decision::{Action, Decision, Explanation};
use crate::rollout::model::gate::{Observation, Reading};
use crate::rollout::model::phase::{Phase, Streaks};
use crate::rollout::model::plan::Tier;
use crate::rollout::model::state::RolloutState;
use crate::rollout::model::verdict::{
    CheckKind, CheckResult, CohortContext, CohortVerdicts, Verdict, Verdicts,
};
use crate::Percentage;

/// Decides what a rollout in `state` does at `now`, having observed `obs`.
///
/// ```
/// use genesis_flags::rollout::{decide, Action, Observation, Plan, RolloutState, Timestamp};
/// use std::time::Duration;
///
/// let t0 = Timestamp::from_unix_millis(0);
/// let mut state = RolloutState::new("phase_4_deployment", Plan::six_day(), t0);
/// state.start(t0, "alice")?;
/// let healthy = Observation::healthy();
/// assert_eq!(decide(&state, &healthy, t0 + Duration::from_secs(3600)).action, Action::Hold);
/// let d = decide(&state, &healthy, t0 + Duration::from_secs(12 * 3600));
/// assert!(matches!(d.action, Action::Advance { stage: 2, .. }));
/// # Ok::<(), genesis_flags::rollout::OperationError>(())
/// ```
#[must_use]
pub fn decide(state: &RolloutState, obs: &Observation, now: Timestamp) -> Decision {
    let tier_name = state.tier_name().to_owned();
    let Some(tier) = state.plan.tier(&tier_name) else {
        // A validated plan always has its tiers; a hand-edited state may not.
        let lenient = Tier {
            error_rate_percent: 100.0,
            p95_ms: f64::MAX,
            sustained: std::time::Duration::MAX,
            consecutive_health_failures: u32::MAX,
        };
        let verdicts = Verdicts::judge(obs, &lenient, &state.plan.go, state.plan.min_requests);
        let why = format!("the plan has no tier {tier_name:?}");
        let explanation = Explanation::says(why.clone());
        let action = match state.phase {
            Phase::Soaking | Phase::Validating | Phase::AwaitingSignoff => Action::Pause { why },
            _ => Action::Hold,
        };
        return finish(
            state,
            now,
            tier_name,
            verdicts,
            state.streaks,
            action,
            explanation,
        );
    };
    let (verdicts, ledger) = judge(state, obs, tier, now);
    let hold = |message: String| (Action::Hold, Explanation::says(message));

    // 1. Terminal and not-started phases change only by hand.
    match state.phase {
        Phase::Ready => {
            let (a, e) = hold("not started".to_owned());
            return finish(state, now, tier_name, verdicts, state.streaks, a, e);
        }
        Phase::RolledBack => {
            let why = state.reason.as_deref().unwrap_or("rolled back");
            let (a, e) = hold(format!(
                "rolled back ({why}); waiting for a person to resume"
            ));
            return finish(state, now, tier_name, verdicts, state.streaks, a, e);
        }
        Phase::Completed => {
            let (a, e) = hold("completed".to_owned());
            return finish(state, now, tier_name, verdicts, state.streaks, a, e);
        }
        _ => {}
    }
    let mut streaks = state.streaks.after(&verdicts, now);
    streaks.cohort = ledger;

    // 2. Rollback on a sustained breach: of the global series, of the in
    //    cohort, or of the in-vs-out tests.
    let sustained = |check: &CheckResult, since: Option<Timestamp>| {
        let since = since?;
        let span = now.since(since);
        (check.verdict == Verdict::Breach && span >= tier.sustained).then_some(span)
    };
    let mut candidates = vec![
        (&verdicts.error_rate, streaks.error_rate_since),
        (&verdicts.p95, streaks.p95_since),
    ];
    if let Some(c) = &verdicts.cohort {
        candidates.extend([
            (&c.in_error_rate, streaks.in_error_rate_since),
            (&c.in_p95, streaks.in_p95_since),
            (&c.error_excess, streaks.error_excess_since),
            (&c.latency_excess, streaks.latency_excess_since),
        ]);
    }
    let mut rollback = None;
    for (check, since) in candidates {
        if let Some(span) = sustained(check, since) {
            let why = format!(
                "{} for {} (sustained limit {}) at stage {} ({}){}",
                describe_breach(check, &tier_name),
                format_duration(span),
                format_duration(tier.sustained),
                state.stage,
                state.percentage,
                affected(&verdicts, check.check, tier),
            );
            let explanation = Explanation {
                message: why.clone(),
                check: Some(check.check),
                value: check.value,
                threshold: check.threshold,
                streak: Some(format_duration(span)),
                samples: verdicts.requests,
            };
            rollback = Some((why, explanation));
            break;
        }
    }
    if let Some((why, explanation)) = rollback {
        return finish(
            state,
            now,
            tier_name,
            verdicts,
            streaks,
            Action::Rollback { why },
            explanation,
        );
    }
    if verdicts.health.verdict == Verdict::Breach
        && streaks.health_failures >= tier.consecutive_health_failures
    {
        let why = format!(
            "health checks failed on {} consecutive ticks (limit {} in the {tier_name} tier): {} at stage {} ({})",
            streaks.health_failures,
            tier.consecutive_health_failures,
            verdicts.health.detail,
            state.stage,
            state.percentage,
        );
        let explanation = Explanation {
            message: why.clone(),
            check: Some(CheckKind::Health),
            value: verdicts.health.value,
            threshold: Some(f64::from(tier.consecutive_health_failures)),
            streak: Some(format!("{} ticks", streaks.health_failures)),
            samples: verdicts.requests,
        };
        return finish(
            state,
            now,
            tier_name,
            verdicts,
            streaks,
            Action::Rollback { why },
            explanation,
        );
    }

    // 3. Paused: only a person moves it on.
    if state.phase == Phase::Paused {
        let why = state.reason.as_deref().unwrap_or("paused");
        let (a, e) = hold(format!("paused ({why}); waiting for a person to resume"));
        return finish(state, now, tier_name, verdicts, streaks, a, e);
    }

    // 4. Too long without data.
    if let Some(since) = streaks.blind_since {
        let span = now.since(since);
        if span >= state.plan.no_data_budget {
            let blind: Vec<String> = verdicts
                .checks()
                .filter(|c| c.verdict.is_blind())
                .map(|c| format!("{} {} ({})", c.check, c.verdict, c.detail))
                .collect();
            let why = format!(
                "no usable data for {} (budget {}): {}",
                format_duration(span),
                format_duration(state.plan.no_data_budget),
                blind.join("; ")
            );
            let explanation = Explanation {
                streak: Some(format_duration(span)),
                samples: verdicts.requests,
                ..Explanation::says(why.clone())
            };
            return finish(
                state,
                now,
                tier_name,
                verdicts,
                streaks,
                Action::Pause { why },
                explanation,
            );
        }
    }

    // 5-7. Progress.
    let Some(stage) = state.current_stage() else {
        let (a, e) = hold(format!("stage {} is not in the plan", state.stage));
        return finish(state, now, tier_name, verdicts, streaks, a, e);
    };
    // After a move the soak starts when every instance applies the stage's
    // percentage (cohort series only); until then the fleet check is NoData.
    let soak_from = match &verdicts.cohort {
        Some(_) => streaks.cohort.soak_from(state.since),
        None => Some(state.since),
    };
    let Some(soak_from) = soak_from else {
        let waiting = verdicts
            .cohort
            .as_ref()
            .map_or(String::new(), |c| c.fleet.detail.clone());
        let (a, e) = hold(format!(
            "the soak at {} has not started: {waiting}",
            stage.percentage
        ));
        return finish(state, now, tier_name, verdicts, streaks, a, e);
    };
    let soak_end = soak_from + stage.soak;
    let mut verdicts = verdicts;
    waive_sample_after_wait(&mut verdicts, obs, soak_end, stage.soak, now);
    let go = verdicts.go();
    let go_failures: Vec<String> = verdicts.go_failures().map(describe_go_failure).collect();
    let blind = verdicts.any_blind();

    if !state.at_last_stage() {
        let (action, explanation) = if now < soak_end {
            hold(format!(
                "soaking at {}: {} left",
                stage.percentage,
                format_duration(soak_end.since(now))
            ))
        } else if blind {
            hold("soak complete; waiting for a tick with every check reporting".to_owned())
        } else if !go {
            hold(format!(
                "soak complete; go criteria not met: {}",
                go_failures.join("; ")
            ))
        } else {
            let next = state.stage.saturating_add(1);
            let to = state
                .plan
                .stage(next)
                .map_or(Percentage::HUNDRED, |s| s.percentage);
            let message = format!(
                "soak of {} at {} complete and go criteria hold ({}); advancing to stage {next} ({to})",
                format_duration(stage.soak),
                stage.percentage,
                go_summary(&verdicts)
            );
            (
                Action::Advance { stage: next, to },
                Explanation {
                    samples: verdicts.requests,
                    ..Explanation::says(message)
                },
            )
        };
        return finish(
            state,
            now,
            tier_name,
            verdicts,
            streaks,
            action,
            explanation,
        );
    }

    // The last stage: the final window runs from reaching 100%.
    let restart = !go_failures.is_empty();
    let window_since = if restart {
        now
    } else {
        state.window_since.unwrap_or(state.since)
    };
    let window_end = window_since + state.plan.validation.duration;
    let soak_done = now >= soak_end;
    let mut next_phase = if soak_done && state.phase == Phase::Soaking {
        Phase::Validating
    } else {
        state.phase
    };
    let (action, explanation) = if restart {
        if next_phase == Phase::AwaitingSignoff {
            next_phase = Phase::Validating;
        }
        hold(format!(
            "go criteria failed during final validation ({}); the {} window restarts",
            go_failures.join("; "),
            format_duration(state.plan.validation.duration)
        ))
    } else if now < window_end || !soak_done {
        let left = window_end.max(soak_end).since(now);
        hold(format!(
            "final validation at {}: {} left",
            stage.percentage,
            format_duration(left)
        ))
    } else if !go {
        hold("final window complete; waiting for a tick with every check reporting".to_owned())
    } else {
        let missing: Vec<&str> = state.missing_signoffs().collect();
        if missing.is_empty() {
            let message = format!(
                "final validation of {} held ({}) and all sign-offs are in",
                format_duration(state.plan.validation.duration),
                go_summary(&verdicts)
            );
            (
                Action::Complete,
                Explanation {
                    samples: verdicts.requests,
                    ..Explanation::says(message)
                },
            )
        } else {
            next_phase = Phase::AwaitingSignoff;
            hold(format!(
                "final validation held; awaiting sign-off from {}",
                missing.join(", ")
            ))
        }
    };
    let mut decision = finish(
        state,
        now,
        tier_name,
        verdicts,
        streaks,
        action,
        explanation,
    );
    decision.next_phase = next_phase;
    decision.restart_window = restart;
    decision
}

fn finish(
    state: &RolloutState,
    now: Timestamp,
    tier: String,
    verdicts: Verdicts,
    streaks: Streaks,
    action: Action,
    mut explanation: Explanation,
) -> Decision {
    // Without cohort series every explanation says what was judged instead.
    let mut action = action;
    if verdicts.cohort.is_none() && !verdicts.scope.is_empty() {
        let suffix = format!(" [{}]", verdicts.scope);
        explanation.message.push_str(&suffix);
        if let Action::Rollback { why } | Action::Pause { why } = &mut action {
            why.push_str(&suffix);
        }
    }
    Decision {
        at: now,
        action,
        stage: state.stage,
        percentage: state.percentage,
        tier,
        verdicts,
        explanation,
        streaks,
        next_phase: state.phase,
        restart_window: false,
    }
}

/// The tick's verdicts, the cohort ones included, and the stage's cohort
/// ledger after the tick.
fn judge(
    state: &RolloutState,
    obs: &Observation,
    tier: &Tier,
    now: Timestamp,
) -> (Verdicts, CohortLedger) {
    let plan = &state.plan;
    let mut verdicts = Verdicts::judge(obs, tier, &plan.go, plan.min_requests);
    let mut ledger = state.streaks.cohort;
    match &obs.cohorts {
        Reading::Value(c) => {
            ledger = ledger.after(c, state.percentage, now);
            let context = CohortContext {
                tier,
                go: &plan.go,
                min_requests: plan.min_requests,
                percentage: state.percentage,
                stages: plan.stages.len(),
                now,
            };
            verdicts.cohort = Some(CohortVerdicts::judge(c, &ledger, &context));
            verdicts.scope = format!("cohort series {{{}}}", c.selector);
        }
        Reading::Missing => {
            verdicts.scope =
                "global series only: the gate found no cohort series for this rollout".to_owned();
        }
        Reading::Failed(why) => {
            verdicts.cohort = Some(CohortVerdicts::failed(why));
            verdicts.scope = "cohort series: the query failed".to_owned();
        }
    }
    (verdicts, ledger)
}

/// The in-cohort sample rule gives way `max_sample_wait` (default: the
/// stage's soak) after the soak's end: go no longer waits for it, and its
/// detail says so.
fn waive_sample_after_wait(
    verdicts: &mut Verdicts,
    obs: &Observation,
    soak_end: Timestamp,
    soak: std::time::Duration,
    now: Timestamp,
) {
    let (Some(c), Reading::Value(cohorts)) = (&mut verdicts.cohort, &obs.cohorts) else {
        return;
    };
    let wait = cohorts.rules.max_sample_wait.unwrap_or(soak);
    if !c.sample.go && now >= soak_end + wait {
        c.sample.go = true;
        c.sample.detail = format!(
            "{}; waived: {} past the soak's end (max_sample_wait)",
            c.sample.detail,
            format_duration(wait)
        );
    }
}

/// One line for a breached check.
fn describe_breach(check: &CheckResult, tier: &str) -> String {
    let value = check.value.unwrap_or(f64::NAN);
    let threshold = check.threshold.unwrap_or(f64::NAN);
    match check.check {
        CheckKind::ErrorRate | CheckKind::InCohortErrorRate => format!(
            "{} {value:.3}% above the {tier} threshold of {threshold}%{}",
            check.check,
            detail(check)
        ),
        CheckKind::P95Latency | CheckKind::InCohortP95Latency => format!(
            "{} {value:.3} ms above the {tier} threshold of {threshold} ms{}",
            check.check,
            detail(check)
        ),
        _ => format!("{} significant: {}", check.check, check.detail),
    }
}

fn detail(check: &CheckResult) -> String {
    if check.detail.is_empty() {
        String::new()
    } else {
        format!(" ({})", check.detail)
    }
}

/// Which cohorts a breach of `kind` affects, when cohort series exist:
/// both (the out cohort over the same threshold too) or the flagged users
/// only.
fn affected(verdicts: &Verdicts, kind: CheckKind, tier: &Tier) -> String {
    let Some(c) = &verdicts.cohort else {
        return String::new();
    };
    let (inn, out, threshold, unit) = match kind {
        CheckKind::ErrorRate | CheckKind::InCohortErrorRate | CheckKind::CohortErrorExcess => (
            c.in_error_rate.value,
            c.out_error_rate,
            tier.error_rate_percent,
            "%",
        ),
        CheckKind::P95Latency | CheckKind::InCohortP95Latency | CheckKind::CohortLatencyExcess => {
            (c.in_p95.value, c.out_p95, tier.p95_ms, " ms")
        }
        _ => return String::new(),
    };
    let show = |v: Option<f64>| v.map_or("no data".to_owned(), |v| format!("{v:.3}{unit}"));
    if out.is_some_and(|o| o > threshold) {
        format!(
            "; both cohorts affected (in {}, out {})",
            show(inn),
            show(out)
        )
    } else {
        format!(
            "; the flagged users only (in {}, out {})",
            show(inn),
            show(out)
        )
    }
}

fn describe_go_failure(c: &CheckResult) -> String {
    match c.check {
        CheckKind::ErrorRate => format!(
            "error rate {:.3}% not below the go limit",
            c.value.unwrap_or(f64::NAN)
        ),
        CheckKind::P95Latency => format!(
            "P95 {:.1} ms not below the go limit",
            c.value.unwrap_or(f64::NAN)
        ),
        CheckKind::Health => format!("health checks: {}", c.detail),
        CheckKind::CriticalAlerts => format!("critical alerts {}", c.detail),
        CheckKind::InCohortErrorRate => format!(
            "in-cohort error rate {:.3}% not below the go limit ({})",
            c.value.unwrap_or(f64::NAN),
            c.detail
        ),
        CheckKind::InCohortP95Latency => format!(
            "in-cohort P95 {:.1} ms not below the go limit ({})",
            c.value.unwrap_or(f64::NAN),
            c.detail
        ),
        CheckKind::CohortErrorExcess
        | CheckKind::CohortLatencyExcess
        | CheckKind::Fleet
        | CheckKind::CohortSample => format!("{}: {}", c.check, c.detail),
    }
}

fn go_summary(v: &Verdicts) -> String {
    let global = format!(
        "error rate {:.3}%, P95 {:.0} ms, health {}, {} critical alerts",
        v.error_rate.value.unwrap_or(f64::NAN),
        v.p95.value.unwrap_or(f64::NAN),
        v.health.detail,
        v.alerts.value.unwrap_or(f64::NAN)
    );
    match &v.cohort {
        None => global,
        Some(c) => format!(
            "{global}; in cohort: error rate {:.3}% ({}), P95 {:.0} ms; {}; {}; {}",
            c.in_error_rate.value.unwrap_or(f64::NAN),
            c.in_error_rate.detail,
            c.in_p95.value.unwrap_or(f64::NAN),
            c.error_excess.detail,
            c.latency_excess.detail,
            c.sample.detail
        ),
    }
}
