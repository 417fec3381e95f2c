//! The Prometheus metrics of a running rollout, computed by the crate and
//! rendered in the Prometheus text format (version 0.0.4) without a
//! dependency: a server (an HTTP listener, node-exporter's textfile
//! collector) only carries the text.
//!
//! ```text
//! RolloutMetrics::observe(event)            every RunEvent the engine hands out:
//!                                           transitions, rollbacks by reason,
//!                                           operator commands by result
//! GateMeter / MeteredGate<G>                gate query errors and duration
//! ChannelFigures::from_outbox(outbox)       notifications by channel and result
//! RolloutMetrics::render(state, now, notes) the families of the current state:
//!                                           only its rollout, so a finished or
//!                                           re-initialised one leaves no series
//! ```
//!
//! Rules of the families (the names and labels are a contract that alert
//! rules and dashboards rely on):
//!
//! 1. Every family has `# HELP` and `# TYPE`; counters end in `_total`;
//!    values are in base units (ratios, seconds, counts).
//! 2. Series are pre-initialised: every phase, verdict, transition kind,
//!    rollback reason and operator command is present from the first render.
//! 3. An enum is one series per value, 1 for the current one, 0 for the
//!    others.
//! 4. Only the rollout of the state rendered is labelled: counters of
//!    another rollout id (a re-initialised state) are dropped.
//!
//! The families and their meaning are listed in [`Family`].

mod channels;
mod family;
mod gate;
mod text;

pub use channels::ChannelFigures;
pub use family::{base_unit, check_name, Family, RollbackReason, Transition, CHECKS, PHASES};
use family::{COMMANDS, VERDICTS};
pub use gate::{FleetSeen, GateMeter, GateStats, MeteredGate, GATE_BUCKETS};
use text::{number, Text};

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::time::Duration;

use crate::rollout::controller::{Operation, RunEvent};
use crate::rollout::{Action, CheckKind, CheckResult, Phase, RolloutState, Timestamp};

/// The counters of one rollout id.
#[derive(Debug, Clone, Default)]
struct Counters {
    transitions: BTreeMap<Transition, u64>,
    rollbacks: BTreeMap<RollbackReason, u64>,
    /// `(command, applied)`.
    commands: BTreeMap<(&'static str, bool), u64>,
}

/// What the engine did, counted from its [`RunEvent`]s, rendered with the
/// state's gauges.
#[derive(Debug, Clone)]
pub struct RolloutMetrics {
    version: String,
    /// The rollout the counters belong to.
    rollout: Option<String>,
    counters: Counters,
    gate: GateMeter,
}

impl RolloutMetrics {
    /// Metrics of a controller of `version`, its gate measured by `gate`.
    #[must_use]
    pub fn new(version: &str, gate: GateMeter) -> RolloutMetrics {
        RolloutMetrics {
            version: version.to_owned(),
            rollout: None,
            counters: Counters::default(),
            gate,
        }
    }

    /// Counts what `event` of the rollout `rollout` did.
    pub fn observe(&mut self, rollout: &str, event: &RunEvent) {
        if self.rollout.as_deref() != Some(rollout) {
            self.rollout = Some(rollout.to_owned());
            self.counters = Counters::default();
        }
        let c = &mut self.counters;
        match event {
            RunEvent::Tick(report) => {
                let (transition, reason) = match &report.decision.action {
                    Action::Hold => (None, None),
                    Action::Advance { .. } => (Some(Transition::Advance), None),
                    Action::Pause { .. } => (Some(Transition::Pause), None),
                    Action::Complete => (Some(Transition::Complete), None),
                    Action::Rollback { .. } => (
                        Some(Transition::Rollback),
                        Some(
                            if report.decision.explanation.check == Some(CheckKind::Health) {
                                RollbackReason::Health
                            } else {
                                RollbackReason::Breach
                            },
                        ),
                    ),
                };
                if let Some(t) = transition {
                    *c.transitions.entry(t).or_default() += 1;
                }
                if let Some(r) = reason {
                    *c.rollbacks.entry(r).or_default() += 1;
                }
            }
            RunEvent::Operation {
                operation, outcome, ..
            } => {
                let applied = outcome.is_ok();
                *c.commands.entry((operation.name(), applied)).or_default() += 1;
                if !applied {
                    return;
                }
                let transition = match operation {
                    Operation::Start | Operation::Promote { .. } => Some(Transition::Advance),
                    Operation::Pause { .. } => Some(Transition::Pause),
                    Operation::Resume { .. } => Some(Transition::Resume),
                    Operation::Rollback { .. } => Some(Transition::Rollback),
                    Operation::SignOff { .. } => None,
                };
                if let Some(t) = transition {
                    *c.transitions.entry(t).or_default() += 1;
                }
                if matches!(operation, Operation::Rollback { .. }) {
                    *c.rollbacks.entry(RollbackReason::Operator).or_default() += 1;
                }
            }
            // Publishing retries and refused request files are not
            // transitions; they are in the log.
            _ => {}
        }
    }

    /// The families in the Prometheus text format: `state` as of `now`,
    /// the counters of its rollout, `notifications` per channel.
    #[must_use]
    pub fn render(
        &self,
        state: Option<&RolloutState>,
        now: Timestamp,
        notifications: &[ChannelFigures],
    ) -> String {
        let mut text = Text::default();
        for family in Family::ALL {
            let (name, kind, help) = (family.name(), family.kind(), family.help());
            let _ = writeln!(text.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
            match family {
                Family::BuildInfo => {
                    text.series(name, &[("version", &self.version)], 1.0);
                }
                Family::NotificationsTotal => {
                    for n in notifications {
                        for (result, v) in [
                            ("sent", n.sent),
                            ("failed", n.failed),
                            ("given_up", n.given_up),
                        ] {
                            text.series(
                                name,
                                &[("channel", &n.channel), ("result", result)],
                                v as f64,
                            );
                        }
                    }
                }
                Family::NotificationsPending => {
                    for n in notifications {
                        text.series(name, &[("channel", &n.channel)], n.pending as f64);
                    }
                }
                Family::GateQueryErrorsTotal => {
                    let errors = self.gate.stats().errors;
                    text.series(name, &[], errors as f64);
                }
                Family::GateDurationSeconds => {
                    let stats = self.gate.stats();
                    for (bound, count) in GATE_BUCKETS.iter().zip(&stats.buckets) {
                        text.series(
                            &format!("{name}_bucket"),
                            &[("le", &number(*bound))],
                            *count as f64,
                        );
                    }
                    text.series(
                        &format!("{name}_bucket"),
                        &[("le", "+Inf")],
                        stats.count as f64,
                    );
                    text.series(&format!("{name}_sum"), &[], stats.sum_seconds);
                    text.series(&format!("{name}_count"), &[], stats.count as f64);
                }
                _ => {
                    if let Some(state) = state {
                        self.render_rollout(&mut text, family, state, now);
                    }
                }
            }
        }
        text.0
    }

    fn render_rollout(
        &self,
        text: &mut Text,
        family: Family,
        state: &RolloutState,
        now: Timestamp,
    ) {
        let name = family.name();
        let rollout = state.rollout.as_str();
        let r = ("rollout", rollout);
        let counters = if self.rollout.as_deref() == Some(rollout) {
            self.counters.clone()
        } else {
            Counters::default()
        };
        let verdicts: HashMap<CheckKind, &CheckResult> = state
            .last_verdicts
            .iter()
            .flat_map(|v| {
                [&v.error_rate, &v.p95, &v.health, &v.alerts]
                    .into_iter()
                    .chain(v.cohort.iter().flat_map(|c| c.all()))
            })
            .map(|c| (c.check, c))
            .collect();
        match family {
            Family::Info => text.series(name, &[r, ("plan", &state.plan.name)], 1.0),
            Family::Phase => {
                for phase in PHASES {
                    text.series(
                        name,
                        &[r, ("phase", phase.as_str())],
                        f64::from(u8::from(phase == state.phase)),
                    );
                }
            }
            Family::TargetRatio => {
                text.series(name, &[r], state.percentage.as_percent() / 100.0);
            }
            Family::Stage => text.series(name, &[r], state.stage as f64),
            Family::Stages => text.series(name, &[r], state.plan.stages.len() as f64),
            Family::StageStartedTimestampSeconds => {
                text.series(name, &[r], seconds(state.since));
            }
            Family::SoakEndTimestampSeconds => {
                let end = soak_end(state).map_or(0.0, seconds);
                text.series(name, &[r], end);
            }
            Family::ExpectedCompletionTimestampSeconds => {
                let at = expected_completion(state, now).map_or(0.0, seconds);
                text.series(name, &[r], at);
            }
            Family::TransitionsTotal => {
                for t in Transition::ALL {
                    let v = counters.transitions.get(&t).copied().unwrap_or(0);
                    text.series(name, &[r, ("kind", t.as_str())], v as f64);
                }
            }
            Family::RollbacksTotal => {
                for reason in RollbackReason::ALL {
                    let v = counters.rollbacks.get(&reason).copied().unwrap_or(0);
                    text.series(name, &[r, ("reason", reason.as_str())], v as f64);
                }
            }
            Family::CheckVerdict => {
                for kind in CHECKS {
                    let current = verdicts.get(&kind).map(|c| c.verdict);
                    for verdict in VERDICTS {
                        text.series(
                            name,
                            &[
                                r,
                                ("check", check_name(kind)),
                                ("verdict", &verdict.to_string()),
                            ],
                            f64::from(u8::from(current == Some(verdict))),
                        );
                    }
                }
            }
            Family::CheckValue | Family::CheckThreshold => {
                for kind in CHECKS {
                    let Some(c) = verdicts.get(&kind) else {
                        continue;
                    };
                    let v = if family == Family::CheckValue {
                        c.value
                    } else {
                        c.threshold
                    };
                    if let Some(v) = v.filter(|v| v.is_finite()) {
                        text.series(name, &[r, ("check", check_name(kind))], base_unit(kind, v));
                    }
                }
            }
            Family::CohortEvalue | Family::CohortEvalueThreshold => {
                for (metric, kind) in [
                    ("errors", CheckKind::CohortErrorExcess),
                    ("latency", CheckKind::CohortLatencyExcess),
                ] {
                    let Some(c) = verdicts.get(&kind) else {
                        continue;
                    };
                    let v = if family == Family::CohortEvalue {
                        c.value
                    } else {
                        c.threshold
                    };
                    if let Some(v) = v.filter(|v| v.is_finite()) {
                        text.series(name, &[r, ("metric", metric)], v);
                    }
                }
            }
            Family::FleetInstances => {
                if let Some(fleet) = self.gate.stats().fleet {
                    let target = state.percentage.as_percent();
                    let converged = fleet
                        .percents
                        .iter()
                        .filter(|p| (*p - target).abs() < 1e-4)
                        .count();
                    let lagging = fleet.percents.len() - converged;
                    text.series(name, &[r, ("state", "converged")], converged as f64);
                    text.series(name, &[r, ("state", "lagging")], lagging as f64);
                }
            }
            Family::OperatorCommandsTotal => {
                for command in COMMANDS {
                    for (result, applied) in [("applied", true), ("refused", false)] {
                        let v = counters
                            .commands
                            .get(&(command, applied))
                            .copied()
                            .unwrap_or(0);
                        text.series(
                            name,
                            &[r, ("command", command), ("result", result)],
                            v as f64,
                        );
                    }
                }
            }
            Family::LastTickTimestampSeconds => {
                text.series(name, &[r], state.last_tick.map_or(0.0, seconds));
            }
            Family::ObservedRatio => {
                let fleet = self.gate.stats().fleet;
                let lowest = fleet.and_then(|f| f.percents.into_iter().reduce(f64::min));
                if let Some(lowest) = lowest {
                    text.series(name, &[r], lowest / 100.0);
                }
            }
            // Not labelled by rollout: rendered by `render`.
            Family::BuildInfo
            | Family::NotificationsTotal
            | Family::NotificationsPending
            | Family::GateQueryErrorsTotal
            | Family::GateDurationSeconds => {}
        }
    }
}

/// When the current stage's soak ends, while soaking.
#[must_use]
pub fn soak_end(state: &RolloutState) -> Option<Timestamp> {
    let stage = state.current_stage()?;
    (state.phase == Phase::Soaking).then(|| state.since.saturating_add(stage.soak))
}

/// When a healthy rollout completes, as far as the plan says (the
/// remaining soaks, then the final window; the sign-offs counted as
/// instant): `None` when it is rolled back or paused.
#[must_use]
pub fn expected_completion(state: &RolloutState, now: Timestamp) -> Option<Timestamp> {
    let plan = &state.plan;
    let last = plan.stages.len();
    let validation = plan.validation.duration;
    let window_end = |from: Timestamp| from.saturating_add(validation);
    // The time from entering stage `s` (1-based) to the end.
    let from_stage = |s: usize| -> Duration {
        let before_last: Duration = plan
            .stages
            .iter()
            .enumerate()
            .filter(|(i, _)| i + 1 >= s && i + 1 < last)
            .map(|(_, st)| st.soak)
            .sum();
        let last_soak = plan.stages.last().map_or(Duration::ZERO, |st| st.soak);
        before_last + validation.max(last_soak)
    };
    match state.phase {
        Phase::Ready => Some(now.saturating_add(from_stage(1))),
        Phase::Soaking if state.stage == last => {
            let soak = soak_end(state).unwrap_or(now);
            let window = state.window_since.map_or(soak, window_end);
            Some(soak.max(window))
        }
        Phase::Soaking => Some(state.since.saturating_add(from_stage(state.stage))),
        Phase::Validating => Some(state.window_since.map_or(now, window_end).max(now)),
        Phase::AwaitingSignoff => Some(now),
        Phase::Completed => Some(state.since),
        Phase::Paused | Phase::RolledBack => None,
    }
}

fn seconds(t: Timestamp) -> f64 {
    t.unix_millis() as f64 / 1000.0
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::rollout::controller::{Applied, Commit, OpenReport};
    use crate::rollout::{HistoryEntry, Observation, Plan};
    use crate::Percentage;

    fn at(secs: u64) -> Timestamp {
        Timestamp::from_unix_millis(secs * 1000)
    }

    fn applied(event: &str) -> Result<Applied, String> {
        Ok(Applied {
            entry: HistoryEntry {
                at: at(10),
                event: crate::rollout::ChangeKind::from_name(event).expect("a change"),
                stage: 0,
                percentage: Percentage::ZERO,
                why: "test".into(),
                by: "alice".into(),
                claimed_by: None,
                request: None,
            },
            commit: Commit {
                revision: 2,
                pending: Vec::new(),
                notes: Vec::new(),
            },
            opened: OpenReport::default(),
        })
    }

    /// `name{labels}` -> value.
    fn samples(text: &str) -> BTreeMap<String, f64> {
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| {
                let (k, v) = l.rsplit_once(' ').unwrap();
                (k.to_owned(), v.parse().unwrap())
            })
            .collect()
    }

    #[test]
    fn a_fresh_rollout_has_every_series_pre_initialised() {
        let state = RolloutState::new("r", Plan::six_day(), at(0));
        let text =
            RolloutMetrics::new("1.2.3", GateMeter::default()).render(Some(&state), at(0), &[]);
        // 1. HELP and TYPE for every family, in order.
        for f in Family::ALL {
            let (name, kind) = (f.name(), f.kind());
            assert!(text.contains(&format!("# TYPE {name} {kind}\n")), "{name}");
            assert!(text.contains(&format!("# HELP {name} ")), "{name}");
        }
        let s = samples(&text);
        // 3. One phase at 1.
        let phases: f64 = PHASES
            .iter()
            .map(|p| {
                s[&format!(
                    "genesis_rollout_phase{{rollout=\"r\",phase=\"{}\"}}",
                    p.as_str()
                )]
            })
            .sum();
        assert_eq!(phases, 1.0);
        assert_eq!(
            s["genesis_rollout_phase{rollout=\"r\",phase=\"ready\"}"],
            1.0
        );
        // 2. Counters and verdicts at 0 before anything happened.
        assert_eq!(
            s["genesis_rollout_rollbacks_total{rollout=\"r\",reason=\"operator\"}"],
            0.0
        );
        assert_eq!(
            s["genesis_rollout_transitions_total{rollout=\"r\",kind=\"complete\"}"],
            0.0
        );
        assert_eq!(
            s["genesis_rollout_operator_commands_total{rollout=\"r\",command=\"signoff\",result=\"refused\"}"],
            0.0
        );
        assert_eq!(
            s["genesis_rollout_check_verdict{rollout=\"r\",check=\"cohort_sample\",verdict=\"pass\"}"],
            0.0
        );
        assert_eq!(s["genesis_rollout_build_info{version=\"1.2.3\"}"], 1.0);
        assert_eq!(s["genesis_rollout_stages{rollout=\"r\"}"], 6.0);
        // A ready rollout completes after the plan's healthy length.
        let expected = Plan::six_day().estimated_duration().as_secs_f64();
        assert_eq!(
            s["genesis_rollout_expected_completion_timestamp_seconds{rollout=\"r\"}"],
            expected
        );
    }

    #[test]
    fn events_are_counted_by_kind_reason_and_result() {
        let mut m = RolloutMetrics::new("1", GateMeter::default());
        let rollback = Operation::Rollback { reason: "x".into() };
        m.observe(
            "r",
            &RunEvent::Operation {
                operation: Operation::Start,
                by: "a".into(),
                outcome: applied("start"),
            },
        );
        m.observe(
            "r",
            &RunEvent::Operation {
                operation: rollback.clone(),
                by: "a".into(),
                outcome: applied("rollback"),
            },
        );
        m.observe(
            "r",
            &RunEvent::Operation {
                operation: rollback,
                by: "a".into(),
                outcome: Err("no".into()),
            },
        );
        let state = RolloutState::new("r", Plan::six_day(), at(0));
        let s = samples(&m.render(Some(&state), at(0), &[]));
        assert_eq!(
            s["genesis_rollout_transitions_total{rollout=\"r\",kind=\"advance\"}"],
            1.0
        );
        assert_eq!(
            s["genesis_rollout_transitions_total{rollout=\"r\",kind=\"rollback\"}"],
            1.0
        );
        assert_eq!(
            s["genesis_rollout_rollbacks_total{rollout=\"r\",reason=\"operator\"}"],
            1.0
        );
        assert_eq!(
            s["genesis_rollout_rollbacks_total{rollout=\"r\",reason=\"breach\"}"],
            0.0
        );
        assert_eq!(
            s["genesis_rollout_operator_commands_total{rollout=\"r\",command=\"rollback\",result=\"applied\"}"],
            1.0
        );
        assert_eq!(
            s["genesis_rollout_operator_commands_total{rollout=\"r\",command=\"rollback\",result=\"refused\"}"],
            1.0
        );
    }

    #[test]
    fn a_re_initialised_rollout_leaves_no_series_of_the_old_one() {
        let mut m = RolloutMetrics::new("1", GateMeter::default());
        m.observe(
            "old",
            &RunEvent::Operation {
                operation: Operation::Start,
                by: "a".into(),
                outcome: applied("start"),
            },
        );
        let state = RolloutState::new("new", Plan::six_day(), at(0));
        let text = m.render(Some(&state), at(0), &[]);
        assert!(!text.contains("rollout=\"old\""), "{text}");
        let s = samples(&text);
        assert_eq!(
            s["genesis_rollout_transitions_total{rollout=\"new\",kind=\"advance\"}"],
            0.0
        );
    }

    #[test]
    fn label_values_are_escaped_and_gate_durations_bucketed() {
        let meter = GateMeter::default();
        meter.record(&Observation::healthy(), Duration::from_millis(30));
        meter.record(&Observation::failed("down"), Duration::from_secs(3));
        let state = RolloutState::new("a\"b\\c", Plan::six_day(), at(0));
        let text = RolloutMetrics::new("1", meter).render(Some(&state), at(0), &[]);
        assert!(
            text.contains(r#"genesis_rollout_stage{rollout="a\"b\\c"} 0"#),
            "{text}"
        );
        let s = samples(&text);
        assert_eq!(
            s["genesis_rollout_gate_duration_seconds_bucket{le=\"0.025\"}"],
            0.0
        );
        assert_eq!(
            s["genesis_rollout_gate_duration_seconds_bucket{le=\"0.05\"}"],
            1.0
        );
        assert_eq!(
            s["genesis_rollout_gate_duration_seconds_bucket{le=\"5\"}"],
            2.0
        );
        assert_eq!(
            s["genesis_rollout_gate_duration_seconds_bucket{le=\"+Inf\"}"],
            2.0
        );
        assert_eq!(s["genesis_rollout_gate_duration_seconds_count"], 2.0);
        assert!(s["genesis_rollout_gate_query_errors_total"] >= 5.0);
    }
}
