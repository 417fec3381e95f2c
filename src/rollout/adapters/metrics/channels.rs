//! Notifications by channel and result, read from the outbox ([`ChannelFigures`]).

use std::collections::BTreeMap;

use crate::rollout::adapters::notify::{DeliveryOutcome, Outbox};

/// One notification channel's figures.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChannelFigures {
    /// The channel (`webhook:1`, `slack`, ...).
    pub channel: String,
    /// Events delivered.
    pub sent: u64,
    /// Failed attempts (of events delivered later or given up).
    pub failed: u64,
    /// Events given up.
    pub given_up: u64,
    /// Events not yet delivered.
    pub pending: u64,
}

impl ChannelFigures {
    /// The figures of every channel of `outbox` (its delivery log and
    /// cursors), plus `configured` channels with none yet, so that their
    /// series exist from the start.
    ///
    /// # Errors
    ///
    /// `NotifyError` when the outbox's delivery log or cursors cannot be read.
    pub fn from_outbox(
        outbox: &Outbox,
        configured: &[String],
    ) -> Result<Vec<ChannelFigures>, crate::rollout::adapters::notify::NotifyError> {
        let mut by: BTreeMap<String, ChannelFigures> = configured
            .iter()
            .map(|c| {
                (
                    c.clone(),
                    ChannelFigures {
                        channel: c.clone(),
                        ..ChannelFigures::default()
                    },
                )
            })
            .collect();
        fn entry<'a>(
            by: &'a mut BTreeMap<String, ChannelFigures>,
            channel: &str,
        ) -> &'a mut ChannelFigures {
            by.entry(channel.to_owned())
                .or_insert_with(|| ChannelFigures {
                    channel: channel.to_owned(),
                    ..ChannelFigures::default()
                })
        }
        for d in outbox.deliveries()? {
            let f = entry(&mut by, &d.channel);
            match d.outcome {
                DeliveryOutcome::Delivered => {
                    f.sent += 1;
                    f.failed += u64::from(d.attempts.saturating_sub(1));
                }
                DeliveryOutcome::GivenUp => {
                    f.given_up += 1;
                    f.failed += u64::from(d.attempts);
                }
            }
        }
        for p in outbox.pending()? {
            entry(&mut by, &p.channel).pending = p.pending.len() as u64;
        }
        Ok(by.into_values().collect())
    }
}
