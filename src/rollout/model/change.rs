//! What a change to a rollout is, named once: [`ChangeKind`] in the state's
//! history, [`AuditEvent`] on each line of the audit log, and
//! [`ChangeKind::event_type`] for what receivers hear of it.
//!
//! The names on disk are the ones earlier versions wrote (`start`,
//! `rollback`, `sign_off`, `hold`, ...), so old files still load.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::phase::Phase;

/// A committed change to a rollout, by the policy or a person.
///
/// ```
/// use genesis_flags::rollout::ChangeKind;
///
/// assert_eq!(ChangeKind::SignOff.as_str(), "sign_off");
/// assert_eq!(ChangeKind::from_name("rollback"), Some(ChangeKind::Rollback));
/// assert_eq!(ChangeKind::Rollback, "rollback");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum ChangeKind {
    /// The rollout was (re-)initialised at 0%.
    Init,
    /// It started at stage 1.
    Start,
    /// The policy moved it to the next stage.
    Advance,
    /// A person moved it to the next stage (or started it).
    Promote,
    /// It paused (the policy, or a person).
    Pause,
    /// A person resumed it.
    Resume,
    /// It rolled back to 0% (the policy, or a person).
    Rollback,
    /// A role signed off.
    SignOff,
    /// It completed.
    Complete,
}

impl ChangeKind {
    /// Every kind, in the order above.
    pub const ALL: [ChangeKind; 9] = [
        ChangeKind::Init,
        ChangeKind::Start,
        ChangeKind::Advance,
        ChangeKind::Promote,
        ChangeKind::Pause,
        ChangeKind::Resume,
        ChangeKind::Rollback,
        ChangeKind::SignOff,
        ChangeKind::Complete,
    ];

    /// The name on disk: `init`, `start`, `advance`, `promote`, `pause`,
    /// `resume`, `rollback`, `sign_off`, `complete`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Init => "init",
            ChangeKind::Start => "start",
            ChangeKind::Advance => "advance",
            ChangeKind::Promote => "promote",
            ChangeKind::Pause => "pause",
            ChangeKind::Resume => "resume",
            ChangeKind::Rollback => "rollback",
            ChangeKind::SignOff => "sign_off",
            ChangeKind::Complete => "complete",
        }
    }

    /// The kind named `name` (also `signoff`, the command's spelling).
    #[must_use]
    pub fn from_name(name: &str) -> Option<ChangeKind> {
        if name == "signoff" {
            return Some(ChangeKind::SignOff);
        }
        ChangeKind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// What receivers hear of this change made in phase `before`: a
    /// promotion out of `ready` starts the rollout; `init` is not told.
    #[must_use]
    pub fn event_type(self, before: Phase) -> Option<EventType> {
        Some(match self {
            ChangeKind::Init => return None,
            ChangeKind::Start => EventType::Started,
            ChangeKind::Promote if before == Phase::Ready => EventType::Started,
            ChangeKind::Advance | ChangeKind::Promote => EventType::Advanced,
            ChangeKind::Pause => EventType::Paused,
            ChangeKind::Resume => EventType::Resumed,
            ChangeKind::Rollback => EventType::RolledBack,
            ChangeKind::SignOff => EventType::SignedOff,
            ChangeKind::Complete => EventType::Completed,
        })
    }

    /// Whether it stopped the rollout's exposure from growing (a rollback or
    /// a pause): what an incident report starts from.
    #[must_use]
    pub fn stops_the_rollout(self) -> bool {
        matches!(self, ChangeKind::Rollback | ChangeKind::Pause)
    }
}

impl fmt::Display for ChangeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<str> for ChangeKind {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for ChangeKind {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl Serialize for ChangeKind {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ChangeKind {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = std::borrow::Cow::<str>::deserialize(deserializer)?;
        ChangeKind::from_name(&name).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "unknown change `{name}`, expected one of {}",
                ChangeKind::ALL.map(ChangeKind::as_str).join(", ")
            ))
        })
    }
}

/// What one line of the audit log is about.
///
/// Written as one string (`hold`, `rollback`, `daily_report`, ...); a name
/// this version does not know is kept as [`AuditEvent::Other`], so a log
/// written by a newer version still reads.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuditEvent {
    /// A committed change.
    Change(ChangeKind),
    /// A tick that changed nothing.
    Hold,
    /// A notice sent without a change (`daily_report`, `incident_update`).
    Notice(EventType),
    /// A notification that will not be delivered (every retry failed).
    NotificationGivenUp,
    /// A name this version does not know.
    Other(String),
}

impl AuditEvent {
    /// The name on disk.
    #[must_use]
    pub fn as_str(&self) -> &str {
        match self {
            AuditEvent::Change(kind) => kind.as_str(),
            AuditEvent::Hold => "hold",
            AuditEvent::Notice(kind) => kind.name(),
            AuditEvent::NotificationGivenUp => "notification_given_up",
            AuditEvent::Other(name) => name,
        }
    }

    /// The event named `name`.
    #[must_use]
    pub fn from_name(name: &str) -> AuditEvent {
        if let Some(kind) = ChangeKind::from_name(name) {
            return AuditEvent::Change(kind);
        }
        match name {
            "hold" => AuditEvent::Hold,
            "notification_given_up" => AuditEvent::NotificationGivenUp,
            other => EventType::ALL
                .into_iter()
                .find(|t| t.name() == other)
                .map_or_else(|| AuditEvent::Other(other.to_owned()), AuditEvent::Notice),
        }
    }

    /// The change, when the record is about one.
    #[must_use]
    pub fn change(&self) -> Option<ChangeKind> {
        match self {
            AuditEvent::Change(kind) => Some(*kind),
            _ => None,
        }
    }
}

impl From<ChangeKind> for AuditEvent {
    fn from(kind: ChangeKind) -> Self {
        AuditEvent::Change(kind)
    }
}

impl fmt::Display for AuditEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<str> for AuditEvent {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for AuditEvent {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl Serialize for AuditEvent {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for AuditEvent {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = std::borrow::Cow::<str>::deserialize(deserializer)?;
        Ok(AuditEvent::from_name(&name))
    }
}

/// What a notification is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum EventType {
    /// The rollout started at stage 1.
    Started,
    /// It moved to the next stage (the policy, a promotion or a deploy).
    Advanced,
    /// It paused for a person.
    Paused,
    /// A person resumed it (a rolled-back rollout restarts at stage 1).
    Resumed,
    /// It rolled back to 0%.
    RolledBack,
    /// The final window held; sign-offs are awaited.
    AwaitingSignoff,
    /// A role signed off.
    SignedOff,
    /// The rollout completed.
    Completed,
    /// The daily stakeholder update.
    DailyReport,
    /// An update while the rollout stays rolled back or paused.
    IncidentUpdate,
    /// A test event (`notify test`), sent to check the channels.
    Test,
}

impl EventType {
    /// Every type, in the order above.
    pub const ALL: [EventType; 11] = [
        EventType::Started,
        EventType::Advanced,
        EventType::Paused,
        EventType::Resumed,
        EventType::RolledBack,
        EventType::AwaitingSignoff,
        EventType::SignedOff,
        EventType::Completed,
        EventType::DailyReport,
        EventType::IncidentUpdate,
        EventType::Test,
    ];

    /// The JSON name, e.g. `rolled_back`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            EventType::Started => "started",
            EventType::Advanced => "advanced",
            EventType::Paused => "paused",
            EventType::Resumed => "resumed",
            EventType::RolledBack => "rolled_back",
            EventType::AwaitingSignoff => "awaiting_signoff",
            EventType::SignedOff => "signed_off",
            EventType::Completed => "completed",
            EventType::DailyReport => "daily_report",
            EventType::IncidentUpdate => "incident_update",
            EventType::Test => "test",
        }
    }

    /// Whether this event opens an incident (PagerDuty `trigger`).
    #[must_use]
    pub fn opens_incident(self) -> bool {
        matches!(self, EventType::RolledBack | EventType::Paused)
    }

    /// Whether this event closes an open incident (PagerDuty `resolve`).
    #[must_use]
    pub fn closes_incident(self) -> bool {
        matches!(self, EventType::Resumed | EventType::Completed)
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_reads_back_as_itself() {
        for kind in ChangeKind::ALL {
            assert_eq!(ChangeKind::from_name(kind.as_str()), Some(kind));
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(serde_json::from_str::<ChangeKind>(&json).unwrap(), kind);
            assert_eq!(
                AuditEvent::from_name(kind.as_str()),
                AuditEvent::Change(kind)
            );
        }
        for kind in EventType::ALL {
            assert_eq!(AuditEvent::from_name(kind.name()), AuditEvent::Notice(kind));
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.name()));
        }
        for name in ["hold", "notification_given_up", "something_newer"] {
            let event = AuditEvent::from_name(name);
            assert_eq!(event.as_str(), name);
            let json = serde_json::to_string(&event).unwrap();
            assert_eq!(serde_json::from_str::<AuditEvent>(&json).unwrap(), event);
        }
        assert!(matches!(
            AuditEvent::from_name("something_newer"),
            AuditEvent::Other(_)
        ));
    }

    #[test]
    fn the_command_spelling_of_sign_off_reads_and_an_unknown_change_is_named() {
        assert_eq!(
            serde_json::from_str::<ChangeKind>("\"signoff\"").unwrap(),
            ChangeKind::SignOff
        );
        let err = serde_json::from_str::<ChangeKind>("\"rollbak\"").unwrap_err();
        assert!(
            err.to_string().contains("unknown change `rollbak`"),
            "{err}"
        );
    }

    #[test]
    fn a_promotion_out_of_ready_is_told_as_a_start() {
        assert_eq!(
            ChangeKind::Promote.event_type(Phase::Ready),
            Some(EventType::Started)
        );
        assert_eq!(
            ChangeKind::Promote.event_type(Phase::Soaking),
            Some(EventType::Advanced)
        );
        assert_eq!(ChangeKind::Init.event_type(Phase::Ready), None);
    }
}
