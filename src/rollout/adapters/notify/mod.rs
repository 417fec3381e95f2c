//! Notifications: every change of a rollout, told to people through Slack,
//! PagerDuty, email and signed webhooks, at least once and in order per
//! channel.
//!
//! The controller engine writes a change's [`Event`] into the state it
//! commits (the same write as the decision), then appends it to the
//! rollout's [`Outbox`]; a crash in between is repaired by the next open.
//! With the `notify` feature, a `Notifier` runs one thread per channel
//! that reads the outbox after the channel's cursor, delivers, retries with
//! exponential backoff and jitter, and gives up after a bounded time,
//! recording the give-up in the audit log. Decisions never wait for it: a
//! hung endpoint costs a tick nothing.
//!
//! What each channel receives:
//!
//! - **webhooks**: the [`Event`] JSON, one per POST, signed with
//!   `X-Genesis-Signature: sha256=<hex HMAC-SHA256(secret, body)>` when the
//!   webhook has a secret;
//! - **Slack**: a Block Kit message per event with the figures behind it
//!   (check, value, threshold, tier, stage, percentage);
//! - **PagerDuty** (Events API v2): `trigger` when a rollout rolls back or
//!   pauses, `resolve` with the same `dedup_key` when it resumes or
//!   completes;
//! - **email**: a mail on every rollback and the daily stakeholder update.

#[cfg(feature = "notify")]
mod channels;
mod config;
#[cfg(feature = "notify")]
mod courier;
#[cfg(feature = "notify")]
mod sender;

pub use crate::rollout::foundation::notify_error::{DeliveryError, NotifyError};
pub use crate::rollout::model::event::{ChannelKind, Event, EventType, EVENT_SCHEMA};
pub use crate::rollout::store::outbox::{
    open_incident, Cursor, Delivery, DeliveryOutcome, Outbox, PendingDeliveries,
};
#[cfg(feature = "notify")]
pub use channels::{
    signature, Channel, EmailChannel, PagerDutyChannel, SlackChannel, WebhookChannel,
};
pub use config::{
    url_target, DeliveryConfig, EmailConfig, NotifyConfig, PagerDutyConfig, ProcessSecrets, Secret,
    SecretSource, SlackConfig, SmtpSecurity, WebhookConfig, MAX_NOTIFY_FILE_BYTES,
    PAGERDUTY_EVENTS_URL,
};
#[cfg(feature = "notify")]
pub use sender::{send_test, ChannelStatus, Notifier};
