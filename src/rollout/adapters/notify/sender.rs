//! [`Notifier`]: one thread per channel, delivering the outbox in order,
//! with retries, backoff, jitter and a bounded give-up. Decisions never wait
//! for it.

use crate::FileError;
use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hasher};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::channels::{Channel, EmailChannel, PagerDutyChannel, SlackChannel, WebhookChannel};
use super::config::{DeliveryConfig, NotifyConfig};
use crate::rollout::foundation::notify_error::{DeliveryError, NotifyError};
use crate::rollout::model::event::Event;
use crate::rollout::store::outbox::{Delivery, DeliveryOutcome, Outbox};
use crate::rollout::AuditEvent;
use crate::rollout::{AuditLog, Clock};

/// Where one channel stands in this process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChannelStatus {
    /// The channel.
    pub channel: String,
    /// Events still to deliver.
    pub pending: usize,
    /// Events delivered by this process.
    pub delivered: usize,
    /// Events given up by this process.
    pub given_up: usize,
    /// Attempts on the event in hand.
    pub attempts: u32,
    /// The last failure, if the event in hand failed.
    pub last_error: Option<String>,
}

struct Shared {
    stop: AtomicBool,
    wake: Mutex<u64>,
    woken: Condvar,
    status: Mutex<BTreeMap<String, ChannelStatus>>,
}

impl Shared {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Waits until `deadline`, a stop, or (when `on_wake`) new events.
    /// Returns false when stopped.
    fn wait_until(&self, deadline: Instant, on_wake: bool) -> bool {
        let Ok(mut generation) = self.wake.lock() else {
            return false;
        };
        let seen = *generation;
        loop {
            if self.stopped() {
                return false;
            }
            if on_wake && *generation != seen {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return true;
            }
            match self.woken.wait_timeout(generation, deadline - now) {
                Ok((g, _)) => generation = g,
                Err(_) => return false,
            }
        }
    }

    fn update(&self, channel: &str, f: impl FnOnce(&mut ChannelStatus)) {
        if let Ok(mut all) = self.status.lock() {
            if let Some(s) = all.get_mut(channel) {
                f(s);
            }
        }
    }
}

/// Delivers a rollout's outbox to its channels, one thread per channel so a
/// hung endpoint delays only itself. Dropping it stops the threads between
/// attempts (an attempt in flight ends within the delivery timeout).
pub struct Notifier {
    shared: Arc<Shared>,
    outbox: Outbox,
    threads: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier")
            .field("outbox", &self.outbox)
            .field("channels", &self.statuses())
            .finish_non_exhaustive()
    }
}

/// What a channel thread needs.
struct Worker {
    channel: Box<dyn Channel>,
    outbox: Outbox,
    audit: PathBuf,
    delivery: DeliveryConfig,
    clock: Arc<dyn Clock>,
    shared: Arc<Shared>,
}

/// The channels of a configuration.
pub(crate) fn channels(
    config: &NotifyConfig,
    source: &str,
) -> Result<Vec<Box<dyn Channel>>, DeliveryError> {
    let timeout = config.delivery.timeout;
    let mut out: Vec<Box<dyn Channel>> = Vec::new();
    for w in &config.webhooks {
        out.push(Box::new(WebhookChannel::new(w.clone(), timeout)));
    }
    if let Some(s) = &config.slack {
        out.push(Box::new(SlackChannel::new(s.clone(), timeout)));
    }
    if let Some(p) = &config.pagerduty {
        out.push(Box::new(PagerDutyChannel::new(p.clone(), source, timeout)));
    }
    if let Some(e) = &config.email {
        out.push(Box::new(EmailChannel::new(e.clone(), timeout)?));
    }
    Ok(out)
}

impl Notifier {
    /// Starts delivering `outbox` to the channels of `config`. A channel
    /// seen for the first time starts after the events already in the
    /// outbox; a known one resumes at its cursor (what a killed controller
    /// left pending goes out now). `audit` is the audit log that records
    /// give-ups; `source` names this controller (host) to PagerDuty.
    ///
    /// # Errors
    ///
    /// `NotifyError::Invalid` when a channel cannot be built from `config`;
    /// `Io`/`Corrupt` when the outbox or its cursors cannot be read.
    pub fn start(
        config: &NotifyConfig,
        outbox: Outbox,
        audit: PathBuf,
        source: &str,
        clock: Arc<dyn Clock>,
    ) -> Result<Notifier, NotifyError> {
        let channels = channels(config, source).map_err(|e| NotifyError::Invalid {
            field: "email".into(),
            message: e.to_string(),
        })?;
        let last = outbox.last_revision()?;
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            wake: Mutex::new(0),
            woken: Condvar::new(),
            status: Mutex::new(BTreeMap::new()),
        });
        for channel in &channels {
            if outbox.cursor(channel.name())?.is_none() {
                outbox.set_cursor(channel.name(), last)?;
            }
            if let Ok(mut all) = shared.status.lock() {
                all.insert(
                    channel.name().to_owned(),
                    ChannelStatus {
                        channel: channel.name().to_owned(),
                        pending: 0,
                        delivered: 0,
                        given_up: 0,
                        attempts: 0,
                        last_error: None,
                    },
                );
            }
        }
        let mut threads = Vec::new();
        for channel in channels {
            let worker = Worker {
                channel,
                outbox: outbox.clone(),
                audit: audit.clone(),
                delivery: config.delivery,
                clock: Arc::clone(&clock),
                shared: Arc::clone(&shared),
            };
            let name = format!("notify-{}", worker.channel.name());
            let handle = std::thread::Builder::new()
                .name(name)
                .spawn(move || worker.run())
                .map_err(|source| {
                    NotifyError::Io(FileError::new(
                        "cannot start the delivery thread for",
                        outbox.events.clone(),
                        source,
                    ))
                })?;
            threads.push(handle);
        }
        Ok(Notifier {
            shared,
            outbox,
            threads,
        })
    }

    /// Tells the channels that new events are in the outbox.
    pub fn wake(&self) {
        if let Ok(mut g) = self.shared.wake.lock() {
            *g = g.wrapping_add(1);
        }
        self.shared.woken.notify_all();
    }

    /// Every channel's status.
    #[must_use]
    pub fn statuses(&self) -> Vec<ChannelStatus> {
        self.shared
            .status
            .lock()
            .map(|s| s.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Waits up to `within` for every channel to reach the end of the
    /// outbox; returns the channels' statuses (pending counts from the
    /// outbox's cursors).
    pub fn flush(&self, within: Duration) -> Vec<ChannelStatus> {
        self.wake();
        let deadline = Instant::now() + within;
        loop {
            let pending = self.outbox.pending().unwrap_or_default();
            let mine: Vec<String> = self.statuses().into_iter().map(|s| s.channel).collect();
            let left: usize = pending
                .iter()
                .filter(|p| mine.contains(&p.channel))
                .map(|p| p.pending.len())
                .sum();
            if left == 0 || Instant::now() >= deadline {
                let mut statuses = self.statuses();
                for s in &mut statuses {
                    s.pending = pending
                        .iter()
                        .find(|p| p.channel == s.channel)
                        .map_or(0, |p| p.pending.len());
                }
                return statuses;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }
}

impl Drop for Notifier {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.woken.notify_all();
        // Threads between attempts end at once; one in the middle of an
        // attempt ends when the attempt's timeout passes. Not joined: a
        // process exiting must not wait for a hung receiver.
        self.threads.clear();
    }
}

/// The delay before retry `attempt` (1-based): `base · 2^(attempt-1)`,
/// capped at `max`, times a jitter in [0.5, 1).
#[must_use]
pub(crate) fn backoff(attempt: u32, base: Duration, max: Duration) -> Duration {
    let exp = base.saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
    let capped = exp.min(max);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(attempt);
    let jitter = 0.5 + (h.finish() % 1000) as f64 / 2000.0;
    capped.mul_f64(jitter)
}

impl Worker {
    fn name(&self) -> String {
        self.channel.name().to_owned()
    }

    fn run(mut self) {
        let name = self.name();
        let kind = self.channel.kind();
        while !self.shared.stopped() {
            let cursor = match self.outbox.cursor(&name) {
                Ok(c) => c.unwrap_or(0),
                Err(e) => {
                    self.shared
                        .update(&name, |s| s.last_error = Some(e.to_string()));
                    self.shared
                        .wait_until(Instant::now() + Duration::from_secs(1), true);
                    continue;
                }
            };
            let events = match self.outbox.read() {
                Ok(e) => e,
                Err(e) => {
                    self.shared
                        .update(&name, |s| s.last_error = Some(e.to_string()));
                    self.shared
                        .wait_until(Instant::now() + Duration::from_secs(1), true);
                    continue;
                }
            };
            let pending: Vec<&Event> = events
                .iter()
                .filter(|e| e.revision > cursor && kind.wants(e))
                .collect();
            self.shared.update(&name, |s| s.pending = pending.len());
            let Some(event) = pending.first().copied() else {
                if let Some(last) = events.last().filter(|l| l.revision > cursor) {
                    let _ = self.outbox.set_cursor(&name, last.revision);
                }
                self.shared
                    .wait_until(Instant::now() + Duration::from_millis(500), true);
                continue;
            };
            let event = event.clone();
            if !self.deliver(&event) {
                return;
            }
        }
    }

    /// Delivers one event until it is delivered or given up; false when
    /// stopped first (the event stays pending).
    fn deliver(&mut self, event: &Event) -> bool {
        let name = self.name();
        let mut attempts = 0u32;
        loop {
            if self.shared.stopped() {
                return false;
            }
            attempts += 1;
            self.shared.update(&name, |s| s.attempts = attempts);
            let result = self.channel.deliver(event);
            if self.shared.stopped() && result.is_err() {
                return false;
            }
            match result {
                Ok(()) => {
                    if self.outbox.set_cursor(&name, event.revision).is_err() {
                        // Retried (delivered twice at worst: at least once).
                        self.shared
                            .wait_until(Instant::now() + Duration::from_secs(1), false);
                        continue;
                    }
                    let _ = self.outbox.record(&Delivery {
                        id: event.id.clone(),
                        kind: event.kind.name().to_owned(),
                        channel: name.clone(),
                        at: self.clock.now(),
                        outcome: DeliveryOutcome::Delivered,
                        attempts,
                        error: None,
                    });
                    self.shared.update(&name, |s| {
                        s.delivered += 1;
                        s.attempts = 0;
                        s.last_error = None;
                    });
                    return true;
                }
                Err(error) => {
                    self.shared
                        .update(&name, |s| s.last_error = Some(error.to_string()));
                    let age = self.clock.now().since(event.at);
                    if !error.is_retryable() || age >= self.delivery.give_up_after {
                        self.give_up(event, attempts, &error);
                        return true;
                    }
                    let delay =
                        backoff(attempts, self.delivery.retry_base, self.delivery.retry_max);
                    if !self.shared.wait_until(Instant::now() + delay, false) {
                        return false;
                    }
                }
            }
        }
    }

    fn give_up(&mut self, event: &Event, attempts: u32, error: &DeliveryError) {
        let name = self.name();
        let now = self.clock.now();
        let message = format!(
            "gave up delivering {} {} to {name} after {attempts} attempt(s) over {}: {error}",
            event.kind,
            event.id,
            crate::rollout::format_duration(now.since(event.at)),
        );
        let record = event.notifier_record(AuditEvent::NotificationGivenUp, now, None, message);
        if let Ok(mut log) = AuditLog::open(&self.audit) {
            let _ = log.append(&record);
        }
        let _ = self.outbox.record(&Delivery {
            id: event.id.clone(),
            kind: event.kind.name().to_owned(),
            channel: name.clone(),
            at: now,
            outcome: DeliveryOutcome::GivenUp,
            attempts,
            error: Some(error.to_string()),
        });
        let _ = self.outbox.set_cursor(&name, event.revision);
        self.shared.update(&name, |s| {
            s.given_up += 1;
            s.attempts = 0;
        });
    }
}

/// Sends `event` once to every channel of `config` now, without the outbox
/// (`notify test`): one result per channel.
pub fn send_test(
    config: &NotifyConfig,
    source: &str,
    event: &Event,
) -> Vec<(String, Result<(), DeliveryError>)> {
    match channels(config, source) {
        Err(e) => vec![("email".into(), Err(e))],
        Ok(channels) => channels
            .into_iter()
            .map(|mut c| (c.name().to_owned(), c.deliver(event)))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_the_cap_with_jitter() {
        let (base, max) = (Duration::from_secs(1), Duration::from_secs(60));
        for attempt in 1..30 {
            let d = backoff(attempt, base, max);
            let full = base.saturating_mul(1 << (attempt - 1).min(20)).min(max);
            assert!(d >= full / 2 && d <= full, "{attempt}: {d:?} of {full:?}");
        }
    }
}
