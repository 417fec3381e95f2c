//! [`Event`]: what receivers get, one JSON object per event. Its `id`
//! (`<rollout>/<revision>`) is the committed change's and stays the same on
//! every retry and after a restart.

use serde::{Deserialize, Serialize};

pub use crate::rollout::model::change::EventType;
use crate::rollout::{
    AuditEvent, AuditRecord, CheckKind, CheckResult, DailyReport, Explanation, Phase, RolloutState,
    Timestamp, Verdicts,
};

/// The event schema version.
pub const EVENT_SCHEMA: u32 = 1;

/// One notification, as every webhook receives it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// [`EVENT_SCHEMA`].
    pub schema: u32,
    /// `<rollout>/<revision>`: unique per event, the same on every retry.
    pub id: String,
    /// What happened.
    #[serde(rename = "type")]
    pub kind: EventType,
    /// The rollout id.
    pub rollout: String,
    /// When it was decided.
    pub at: Timestamp,
    /// The stage after the event.
    pub stage: usize,
    /// The stages in the plan.
    pub stages: usize,
    /// The percentage after the event, in percent.
    pub percentage: f64,
    /// The percentage before it.
    pub previous_percentage: f64,
    /// The phase after the event.
    pub phase: Phase,
    /// Why, in one sentence with its figures.
    pub explanation: String,
    /// The check that decided, when one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<CheckKind>,
    /// Its value (error rate in percent, P95 in ms, failed checks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// The threshold it was held to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    /// The tier whose thresholds applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<String>,
    /// Every check of the tick behind it (empty for a person's operation).
    #[serde(default)]
    pub checks: Vec<CheckResult>,
    /// `policy`, `notifier`, or the person who acted.
    pub by: String,
    /// The incident this event belongs to (the id of the event that opened
    /// it), while a rollout is rolled back or paused and on the event that
    /// ends it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident: Option<String>,
    /// The daily stakeholder update (`daily_report` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<DailyReport>,
    /// The state revision that committed it.
    pub revision: u64,
}

impl Event {
    /// The audit record the notifier writes about this event (a notice it
    /// sent, a delivery it gave up), at `at`, saying `message`.
    pub(in crate::rollout) fn notifier_record(
        &self,
        kind: AuditEvent,
        at: Timestamp,
        tier: Option<String>,
        message: String,
    ) -> AuditRecord {
        AuditRecord {
            at,
            rollout: self.rollout.clone(),
            event: kind,
            stage: self.stage,
            percentage: crate::Percentage::from_percent(self.percentage)
                .unwrap_or(crate::Percentage::ZERO),
            tier,
            explanation: Explanation::says(message),
            verdicts: None,
            observation: None,
            by: "notifier".to_owned(),
            claimed_by: None,
            revision: None,
        }
    }

    /// The event of a committed change from `before` to `after` explained by
    /// `record`, if the change is one receivers hear of. `incident` is the
    /// open incident before the change.
    #[must_use]
    pub fn for_change(
        before: &RolloutState,
        after: &RolloutState,
        record: &AuditRecord,
        incident: Option<&str>,
    ) -> Option<Event> {
        let kind = match &record.event {
            AuditEvent::Change(change) => change.event_type(before.phase)?,
            AuditEvent::Hold
                if after.phase == Phase::AwaitingSignoff
                    && before.phase != Phase::AwaitingSignoff =>
            {
                EventType::AwaitingSignoff
            }
            _ => return None,
        };
        let mut event = Event::about(
            after,
            kind,
            record.at,
            &record.by,
            record.explanation.message.clone(),
        );
        event.previous_percentage = before.percentage.as_percent();
        event.check = record.explanation.check;
        event.value = record.explanation.value;
        event.threshold = record.explanation.threshold;
        event.tier = record
            .tier
            .clone()
            .or_else(|| Some(before.tier_name().to_owned()));
        event.checks = record
            .verdicts
            .as_ref()
            .map(|v| every_check(v, record.explanation.check))
            .unwrap_or_default();
        event.incident = match (incident, kind.opens_incident()) {
            (Some(open), _) => Some(open.to_owned()),
            (None, true) => Some(event.id.clone()),
            (None, false) => None,
        };
        Some(event)
    }

    /// An event of `kind` about `state` as it stands (daily reports,
    /// incident updates, tests). The id is that of the state's next
    /// revision: the engine commits the event with it.
    #[must_use]
    pub fn about(
        state: &RolloutState,
        kind: EventType,
        at: Timestamp,
        by: &str,
        explanation: String,
    ) -> Event {
        let revision = state.revision + 1;
        Event {
            schema: EVENT_SCHEMA,
            id: format!("{}/{revision}", state.rollout),
            kind,
            rollout: state.rollout.clone(),
            at,
            stage: state.stage,
            stages: state.plan.stages.len(),
            percentage: state.percentage.as_percent(),
            previous_percentage: state.percentage.as_percent(),
            phase: state.phase,
            explanation,
            check: None,
            value: None,
            threshold: None,
            tier: Some(state.tier_name().to_owned()),
            checks: state
                .last_verdicts
                .as_ref()
                .map(|v| every_check(v, None))
                .unwrap_or_default(),
            by: by.to_owned(),
            incident: None,
            report: None,
            revision,
        }
    }

    /// A PagerDuty `dedup_key` for this event's incident.
    #[must_use]
    pub fn dedup_key(&self) -> Option<String> {
        self.incident.as_ref().map(|i| format!("genesis-flags/{i}"))
    }

    /// One line for a person: `rolled_back phase_4_deployment: stage 2 10% → 0%: why`.
    #[must_use]
    pub fn headline(&self) -> String {
        let what = match self.kind {
            EventType::Started => "started",
            EventType::Advanced => "advanced",
            EventType::Paused => "PAUSED",
            EventType::Resumed => "resumed",
            EventType::RolledBack => "ROLLED BACK",
            EventType::AwaitingSignoff => "awaiting sign-off",
            EventType::SignedOff => "signed off",
            EventType::Completed => "completed",
            EventType::DailyReport => "daily report",
            EventType::IncidentUpdate => "still stopped",
            EventType::Test => "test",
        };
        let moved = if (self.percentage - self.previous_percentage).abs() > f64::EPSILON {
            format!("{}% → {}%", self.previous_percentage, self.percentage)
        } else {
            format!("{}%", self.percentage)
        };
        format!(
            "{} {what}: stage {}/{} at {moved}",
            self.rollout, self.stage, self.stages
        )
    }
}

/// Every check the policy judged (the global ones and, with cohort series,
/// the cohort ones), the deciding check first.
fn every_check(verdicts: &Verdicts, deciding: Option<CheckKind>) -> Vec<CheckResult> {
    let mut checks: Vec<CheckResult> = verdicts.checks().cloned().collect();
    if let Some(i) = deciding.and_then(|d| checks.iter().position(|c| c.check == d)) {
        let first = checks.remove(i);
        checks.insert(0, first);
    }
    checks
}

/// A delivery channel's kind, which decides the events it receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelKind {
    /// Every event.
    Webhook,
    /// Every event.
    Slack,
    /// `trigger` on the event opening an incident, `resolve` on the one
    /// closing it.
    PagerDuty,
    /// Rollbacks, daily reports and tests.
    Email,
}

impl ChannelKind {
    /// The kind of a channel name (`webhook:1`, `slack`, ...).
    #[must_use]
    pub fn of(channel: &str) -> Option<ChannelKind> {
        match channel {
            "slack" => Some(ChannelKind::Slack),
            "pagerduty" => Some(ChannelKind::PagerDuty),
            "email" => Some(ChannelKind::Email),
            c if c.starts_with("webhook:") => Some(ChannelKind::Webhook),
            _ => None,
        }
    }

    /// Whether this channel receives `event`.
    #[must_use]
    pub fn wants(self, event: &Event) -> bool {
        match self {
            ChannelKind::Webhook | ChannelKind::Slack => true,
            ChannelKind::PagerDuty => {
                event.kind == EventType::Test
                    || (event.incident.is_some()
                        && (event.kind.closes_incident() || event.kind.opens_incident()))
            }
            ChannelKind::Email => matches!(
                event.kind,
                EventType::RolledBack | EventType::DailyReport | EventType::Test
            ),
        }
    }
}
