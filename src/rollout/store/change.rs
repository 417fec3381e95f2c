//! A change to a rollout as one value: [`Change`] carries the state after
//! it, its audit records and notifications, the revision it was decided on
//! and who made it. A tick, an operation and a notice each build one; the
//! engine commits it in one place, which computes the revision once (the
//! base plus one) and refuses a change decided on a revision that is no
//! longer the current one.

use super::durable::Committed;
use crate::rollout::controller::ControllerError;
use crate::rollout::model::event::Event;
use crate::rollout::{AuditRecord, RolloutState};

/// Who makes a change: it decides whether a flags file that cannot be
/// staged refuses it (see [`Change::refused_without_flags`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Actor {
    /// The policy, or the engine's own notices.
    Engine,
    /// A person's operation.
    Person,
}

/// One change, decided but not yet durable.
#[derive(Debug, Clone)]
pub(crate) struct Change {
    base: u64,
    next: RolloutState,
    records: Vec<AuditRecord>,
    events: Vec<Event>,
    by: Actor,
}

impl Change {
    /// The change from `before` to `next`, explained by `records` (the first
    /// one says what the change is); receivers hear of it when its kind is
    /// one they are told. `incident` is the incident open before it.
    pub(crate) fn new(
        before: &RolloutState,
        next: RolloutState,
        records: Vec<AuditRecord>,
        by: Actor,
        incident: Option<&str>,
    ) -> Change {
        let events = records
            .first()
            .and_then(|r| Event::for_change(before, &next, r, incident))
            .into_iter()
            .collect();
        Change {
            base: before.revision,
            next,
            records,
            events,
            by,
        }
    }

    /// A (re-)initialisation: `next` is the new state at revision `base`
    /// (revisions continue from the highest ever written); receivers are
    /// not told.
    pub(crate) fn starting_over(next: RolloutState, records: Vec<AuditRecord>) -> Change {
        Change {
            base: next.revision,
            next,
            records,
            events: Vec::new(),
            by: Actor::Person,
        }
    }

    /// The same change, also sending `extra` notifications.
    pub(crate) fn with_events(mut self, extra: Vec<Event>) -> Change {
        self.events.extend(extra);
        self
    }

    /// The state after the change (its revision not yet stamped).
    pub(crate) fn next(&self) -> &RolloutState {
        &self.next
    }

    /// The notifications it sends.
    pub(crate) fn events_mut(&mut self) -> &mut [Event] {
        &mut self.events
    }

    /// Whether a flags file that cannot be staged refuses this change: a
    /// person's move up (exposing more users is never urgent, and the person
    /// is there to fix the file). Every other change is committed anyway.
    pub(crate) fn refused_without_flags(&self, published: crate::Percentage) -> bool {
        self.by == Actor::Person && self.next.percentage > published
    }

    /// Refuses the change when `current` is not the revision it was decided
    /// on.
    pub(crate) fn check_base(&self, current: u64) -> Result<(), ControllerError> {
        if self.base == current {
            Ok(())
        } else {
            Err(ControllerError::Conflict {
                decided_on: self.base,
                current,
            })
        }
    }

    /// The change to commit: the revision computed once — the base plus
    /// one — stamped on the state, on each audit record and on each event
    /// (whose id is `<rollout>/<revision>`), the records and events as the
    /// state file's write-ahead log. Refused when the state moved since the
    /// change was decided (`current` is not its base): nothing is applied to
    /// a revision it did not see.
    pub(crate) fn stamped(self, current: u64) -> Result<Committed, ControllerError> {
        self.check_base(current)?;
        let revision = self.base + 1;
        let mut state = self.next;
        state.revision = revision;
        let mut journal = self.records;
        for record in &mut journal {
            record.revision = Some(revision);
        }
        let mut notifications = self.events;
        for event in &mut notifications {
            event.revision = revision;
            event.id = format!("{}/{revision}", state.rollout);
        }
        Ok(Committed {
            state,
            journal,
            notifications,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollout::{Plan, Timestamp};

    fn state() -> RolloutState {
        let t = Timestamp::from_unix_millis(1_700_000_000_000);
        let mut s = RolloutState::new("r", Plan::six_day(), t);
        s.revision = 7;
        s
    }

    #[test]
    fn the_revision_is_the_base_plus_one_on_the_state_records_and_events() {
        let before = state();
        let mut next = before.clone();
        let t = Timestamp::from_unix_millis(1_700_000_060_000);
        let entry = next.start(t, "ops").unwrap();
        let record = AuditRecord::operation("r", &entry);
        let change = Change::new(&before, next, vec![record], Actor::Person, None);
        let committed = change.stamped(7).unwrap();
        assert_eq!(committed.state.revision, 8);
        assert_eq!(committed.journal[0].revision, Some(8));
        assert_eq!(committed.journal[0].event, "start");
        assert_eq!(committed.notifications.len(), 1);
        assert_eq!(committed.notifications[0].id, "r/8");
        assert_eq!(committed.notifications[0].revision, 8);
    }

    #[test]
    fn a_change_decided_on_an_older_revision_is_refused() {
        let before = state();
        let change = Change::new(&before, before.clone(), Vec::new(), Actor::Engine, None);
        match change.stamped(8) {
            Err(ControllerError::Conflict {
                decided_on: 7,
                current: 8,
            }) => {}
            other => panic!("{other:?}"),
        }
    }
}
