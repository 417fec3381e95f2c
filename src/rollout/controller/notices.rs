//! The notices an engine sends on its own schedule, each committed like any
//! change: the daily stakeholder update at a fixed time of day (UTC), and an
//! hourly (configurable) update while a rollout stays rolled back or paused.

use super::engine::Controller;
use super::{ControllerError, RunOptions};
use crate::rollout::model::event::{Event, EventType};
use crate::rollout::store::change::{Actor, Change};
use crate::rollout::DailyReport;
use crate::rollout::{format_duration, AuditEvent, Phase, Timestamp};

const DAY_MS: u64 = 86_400_000;

/// The last `(hour, minute)` UTC at or before `now`.
fn last_slot(now: Timestamp, (hour, minute): (u8, u8)) -> Timestamp {
    let day = now.unix_millis() / DAY_MS * DAY_MS;
    let offset = (u64::from(hour) * 3600 + u64::from(minute) * 60) * 1000;
    let today = day + offset;
    Timestamp::from_unix_millis(if today <= now.unix_millis() {
        today
    } else {
        today.saturating_sub(DAY_MS)
    })
}

impl Controller {
    /// Commits a notice: its audit record and the event, the state
    /// unchanged.
    fn commit_notice(&mut self, event: Event) -> Result<(), ControllerError> {
        let record = event.notifier_record(
            AuditEvent::Notice(event.kind),
            event.at,
            event.tier.clone(),
            event.explanation.clone(),
        );
        let change = Change::new(
            &self.state,
            self.state.clone(),
            vec![record],
            Actor::Engine,
            None,
        )
        .with_events(vec![event]);
        self.commit_change(change).map(drop)
    }

    /// Commits an event of `kind` about the rollout as it stands, told by
    /// the notifier (e.g. that users are still exposed), in the open
    /// incident if there is one.
    pub(super) fn tell(
        &mut self,
        kind: EventType,
        now: Timestamp,
        explanation: String,
    ) -> Result<(), ControllerError> {
        let mut event = Event::about(&self.state, kind, now, "notifier", explanation);
        event.incident = self.marks.incident.clone();
        self.commit_notice(event)?;
        Ok(())
    }

    /// When the next notice is due, if one is scheduled.
    pub(super) fn next_notice(&self, options: &RunOptions) -> Option<Timestamp> {
        let incident = options.incident_every.and_then(|every| {
            let noted = self.marks.incident_noted?;
            self.marks.incident.as_ref()?;
            Some(noted.saturating_add(every))
        });
        let daily = options.daily_at.map(|at| {
            let now = self.clock.now();
            Timestamp::from_unix_millis(last_slot(now, at).unix_millis() + DAY_MS)
        });
        [incident, daily].into_iter().flatten().min()
    }

    /// Commits the notices that are due now.
    pub(super) fn send_due_notices(&mut self, options: &RunOptions) -> Result<(), ControllerError> {
        let now = self.clock.now();
        if let Some(at) = options.daily_at {
            let slot = last_slot(now, at);
            if self.marks.daily_last.is_none_or(|last| last < slot) {
                let report = DailyReport::new(&self.state, now);
                let mut event = Event::about(
                    &self.state,
                    EventType::DailyReport,
                    now,
                    "notifier",
                    format!(
                        "daily update: {} at {}% (stage {}/{}), next: {}",
                        report.status,
                        report.rollout_percentage,
                        report.stage,
                        report.stages,
                        report.next_milestone
                    ),
                );
                event.incident = self.marks.incident.clone();
                event.report = Some(report);
                self.commit_notice(event)?;
            }
        }
        let stopped = matches!(self.state.phase, Phase::RolledBack | Phase::Paused);
        if let (Some(every), Some(incident), true) =
            (options.incident_every, self.marks.incident.clone(), stopped)
        {
            let noted = self.marks.incident_noted.unwrap_or(self.state.since);
            if now >= noted.saturating_add(every) {
                let since = self
                    .state
                    .history
                    .iter()
                    .rev()
                    .find(|h| h.event.stops_the_rollout())
                    .map_or(self.state.since, |h| h.at);
                let mut event = Event::about(
                    &self.state,
                    EventType::IncidentUpdate,
                    now,
                    "notifier",
                    format!(
                        "still {} at {} for {} (since {since}): {}; waiting for a person to resume",
                        self.state.phase,
                        self.state.percentage,
                        format_duration(now.since(since)),
                        self.state.reason.as_deref().unwrap_or("no reason recorded"),
                    ),
                );
                event.incident = Some(incident);
                self.commit_notice(event)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_slot_is_today_or_yesterday() {
        let t = |s: &str| s.parse::<Timestamp>().unwrap();
        assert_eq!(
            last_slot(t("2025-10-23T10:00:00Z"), (9, 0)),
            t("2025-10-23T09:00:00Z")
        );
        assert_eq!(
            last_slot(t("2025-10-23T09:00:00Z"), (9, 0)),
            t("2025-10-23T09:00:00Z")
        );
        assert_eq!(
            last_slot(t("2025-10-23T08:59:59Z"), (9, 0)),
            t("2025-10-22T09:00:00Z")
        );
    }
}
