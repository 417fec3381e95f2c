//! The checks of the `notify_config` fuzz target, shared with the corpus
//! replay test: a `--notify` document and an outbox line never panic the
//! parsers, and what parses keeps its invariants.

#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

use genesis_flags::rollout::notify::{Event, NotifyConfig, SecretSource};

/// Every variable is set (a URL holding a token; a user name for
/// `*USER*`); every file reads as a URL holding another.
struct Everything;

impl SecretSource for Everything {
    fn var(&self, name: &str) -> Option<String> {
        Some(if name.contains("USER") {
            "smtp-user".into()
        } else {
            "https://hooks.test/from-env-secret".into()
        })
    }
    fn read(&self, _path: &Path) -> std::io::Result<String> {
        Ok("https://hooks.test/from-file-secret\n".into())
    }
}

pub fn check_notify_config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(config) = NotifyConfig::from_json(text, Path::new("."), &Everything) {
        let debug = format!("{config:?}");
        assert!(!debug.contains("from-env-secret") && !debug.contains("from-file-secret"));
        let names = config.channels();
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), names.len(), "channel names are unique");
        if let Some((h, m)) = config.daily_at() {
            assert!(h < 24 && m < 60);
        }
        let d = config.delivery;
        for x in [
            d.timeout,
            d.retry_base,
            d.retry_max,
            d.give_up_after,
            d.incident_every,
        ] {
            assert!(x >= Duration::from_millis(100) && x <= Duration::from_secs(7 * 86_400));
        }
    }
    // The same bytes as an outbox line: an event that parses round-trips.
    if let Ok(event) = serde_json::from_str::<Event>(text) {
        let again = serde_json::to_string(&event).unwrap();
        let back: Event = serde_json::from_str(&again).unwrap();
        assert_eq!(
            serde_json::to_value(&back).unwrap(),
            serde_json::to_value(&event).unwrap()
        );
    }
}
