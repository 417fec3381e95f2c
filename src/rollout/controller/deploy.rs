//! The safe deploy: one stage, only when the soak is over and every check
//! passes now; and how long a deploy may watch its stage.

use std::time::Duration;

use super::engine::Controller;
use super::{Applied, ControllerError, Operation, RunOptions};
use crate::rollout::{format_duration, Phase, Timestamp, Verdict};
use crate::Percentage;

impl Controller {
    /// When a watch of `wait` from now should end so that it never moves the
    /// rollout on its own: `wait` from now, but before the current stage's
    /// soak can end (a tick before then cannot advance). A safe deploy
    /// watches its new stage this long; the next move is a person's (another
    /// deploy) or the autopilot's (`run`).
    #[must_use]
    pub fn watch_deadline(&self, wait: Duration) -> Timestamp {
        let wait_end = self.clock.now().saturating_add(wait);
        let state = &self.state;
        match (state.phase, state.current_stage()) {
            (Phase::Soaking, Some(stage)) => {
                let soak_end = state.since.saturating_add(stage.soak);
                let before_soak_end =
                    Timestamp::from_unix_millis(soak_end.unix_millis().saturating_sub(1));
                wait_end.min(before_soak_end)
            }
            _ => wait_end,
        }
    }

    /// A safe deploy: moves to the next stage, whose percentage must be
    /// `target`, only when the current stage's soak is over and every check
    /// is Pass now with the go criteria met. Refusals name every reason and
    /// change nothing.
    ///
    /// # Errors
    ///
    /// `ControllerError::NotSafe` naming every reason a deploy is refused (soak
    /// not over, a check not passing, the target not the next stage's
    /// percentage), and the errors of [`apply`](Self::apply).
    pub fn deploy_safe(
        &mut self,
        target: Percentage,
        by: &str,
        options: &RunOptions,
    ) -> Result<Applied, ControllerError> {
        let now = self.clock.now();
        let state = &self.state;
        let next_stage = state.stage + 1;
        let mut reasons = Vec::new();
        match state.phase {
            Phase::Ready | Phase::Soaking => {}
            phase => reasons.push(format!(
                "the rollout is {phase}; deploy moves only a ready or soaking rollout"
            )),
        }
        match state.plan.stage(next_stage) {
            None => reasons.push(format!(
                "stage {} ({}) is the plan's last; nothing to deploy",
                state.stage, state.percentage
            )),
            Some(stage) if stage.percentage != target => reasons.push(format!(
                "--strategy safe moves only to the next stage of the plan: stage {next_stage} is {}, not {target}",
                stage.percentage
            )),
            Some(_) => {}
        }
        if let (Phase::Soaking, Some(stage)) = (state.phase, state.current_stage()) {
            let ends = state.since.saturating_add(stage.soak);
            if now < ends {
                reasons.push(format!(
                    "stage {}'s soak of {} ends at {ends} ({} left)",
                    state.stage,
                    format_duration(stage.soak),
                    format_duration(ends.since(now))
                ));
            }
        }
        if !reasons.is_empty() {
            return Err(ControllerError::NotSafe {
                reasons,
                unhealthy: false,
            });
        }
        // Every check must pass now, and the go criteria hold.
        let observation = self.observe(now, options)?;
        let tier_name = self.state.tier_name().to_owned();
        if self.state.plan.tier(&tier_name).is_none() {
            return Err(ControllerError::NotSafe {
                reasons: vec![format!("the plan has no tier {tier_name:?}")],
                unhealthy: false,
            });
        }
        // The policy's own verdicts: the global checks and, when the gate
        // sees cohort series, the in-cohort, in-vs-out, fleet and sample
        // checks with the stage's ledger.
        let verdicts = crate::rollout::decide(&self.state, &observation, now).verdicts;
        let mut unhealthy = false;
        // At 0% nobody is flagged: the in cohort is empty, so its checks
        // (and the in-vs-out comparison) cannot speak yet and never block
        // the first stage. The global checks and the fleet still do.
        let nobody_flagged = self.state.percentage == Percentage::ZERO;
        let judged = verdicts
            .checks()
            .filter(|c| !(nobody_flagged && c.check.needs_flagged_users()));
        for c in judged {
            match c.verdict {
                Verdict::Pass if c.go => {}
                Verdict::Pass => reasons.push(format!(
                    "{}: {} misses the go criterion ({})",
                    c.check,
                    c.value.map_or_else(|| "-".into(), |v| format!("{v:.3}")),
                    c.detail
                )),
                Verdict::Breach => {
                    unhealthy = true;
                    reasons.push(format!(
                        "{}: breach, {} against a threshold of {} ({tier_name} tier) {}",
                        c.check,
                        c.value.map_or_else(|| "-".into(), |v| format!("{v:.3}")),
                        c.threshold.map_or_else(|| "-".into(), |v| format!("{v}")),
                        c.detail
                    ));
                }
                Verdict::NoData | Verdict::Error => reasons.push(format!(
                    "{}: {} — deploy never moves blind ({})",
                    c.check, c.verdict, c.detail
                )),
            }
        }
        if !reasons.is_empty() {
            return Err(ControllerError::NotSafe { reasons, unhealthy });
        }
        let op = if self.state.phase == Phase::Ready {
            Operation::Start
        } else {
            Operation::Promote {
                reason: format!("deploy --strategy safe --target-percentage {target}"),
            }
        };
        self.apply(&op, by)
    }
}
