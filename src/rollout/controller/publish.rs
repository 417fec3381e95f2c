//! Publishing retried: a committed percentage the flags file does not show
//! yet is written again by the running engine, and receivers are told that
//! users are still exposed.

use super::engine::{Controller, Storage};
use super::{RunEvent, PUBLISH_RETRY};
use crate::rollout::format_duration;
use crate::rollout::model::event::EventType;

impl Controller {
    /// Why the flags file does not show the committed percentage yet, if it
    /// does not.
    #[must_use]
    pub fn flags_pending(&self) -> Option<&str> {
        match &self.storage {
            Storage::Files(s) => s.flags_pending.as_deref(),
            Storage::Memory(_) => None,
        }
    }

    /// Retries publishing a committed percentage the flags file does not
    /// show (at most every [`PUBLISH_RETRY`]); the first failure of an
    /// episode is also told to receivers. Returns what happened, if it tried.
    pub fn retry_publish(&mut self) -> Option<RunEvent> {
        let now = self.clock.now();
        let rollout = self.state.rollout.clone();
        let percentage = self.state.percentage;
        let Storage::Files(s) = &mut self.storage else {
            return None;
        };
        s.flags_pending.as_ref()?;
        if s.publish_tried
            .is_some_and(|t| now.since(t) < PUBLISH_RETRY)
        {
            return None;
        }
        s.publish_tried = Some(now);
        let writer = s.flags.as_deref_mut()?;
        let outcome = writer.prepare(&rollout, percentage).and_then(|staged| {
            if staged {
                writer.publish()
            } else {
                Ok(())
            }
        });
        let outcome = match outcome {
            Ok(()) => {
                s.flags_pending = None;
                Ok(writer.take_notes())
            }
            Err(e) => {
                writer.discard();
                s.flags_pending = Some(e.to_string());
                Err(e.to_string())
            }
        };
        if let Err(error) = &outcome {
            if !s.exposure_told {
                s.exposure_told = true;
                let explanation = format!(
                    "the flags file still does not show {percentage} ({error}): users are still exposed to the old percentage; the controller retries every {}",
                    format_duration(PUBLISH_RETRY)
                );
                let _ = self.tell(EventType::IncidentUpdate, now, explanation);
            }
        }
        Some(RunEvent::Publish {
            percentage,
            outcome,
        })
    }
}
