//! The notification parsers and events through the public API: the fuzz
//! corpus replayed, and properties of the events any sequence of decisions
//! and operations produces (ids, incidents, PagerDuty keys).

#[path = "support/notify_fuzz.rs"]
mod notify_fuzz;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use genesis_flags::rollout::notify::{ChannelKind, Event, EventType, NotifyConfig, ProcessSecrets};
use genesis_flags::rollout::{Controller, ManualClock, Observation, Operation, Plan, RolloutState};
use proptest::prelude::*;

#[test]
fn the_notify_corpus_replays_cleanly() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/notify_config");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 5);
    let (mut configs, mut events) = (0, 0);
    for path in files {
        let data = std::fs::read(&path).unwrap();
        notify_fuzz::check_notify_config(&data);
        let text = String::from_utf8_lossy(&data);
        struct Set;
        impl genesis_flags::rollout::notify::SecretSource for Set {
            fn var(&self, _: &str) -> Option<String> {
                Some("https://hooks.test/v".into())
            }
            fn read(&self, _: &Path) -> std::io::Result<String> {
                Ok("https://hooks.test/f".into())
            }
        }
        configs += usize::from(NotifyConfig::from_json(&text, Path::new("."), &Set).is_ok());
        events += usize::from(serde_json::from_str::<Event>(&text).is_ok());
    }
    assert!(
        configs >= 2 && events >= 1,
        "{configs} configs, {events} events parse"
    );
}

#[test]
fn a_missing_environment_variable_is_named_and_nothing_else() {
    let e = NotifyConfig::from_json(
        r#"{ "slack": { "webhook_url_env": "GENESIS_TEST_SURELY_UNSET_VARIABLE" } }"#,
        Path::new("."),
        &ProcessSecrets,
    )
    .unwrap_err()
    .to_string();
    assert_eq!(
        e,
        "slack.webhook_url_env: the environment variable GENESIS_TEST_SURELY_UNSET_VARIABLE is not set"
    );
}

#[derive(Debug, Clone)]
enum Step {
    Tick { breach: bool },
    Promote,
    Pause,
    Resume,
    Rollback,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => any::<bool>().prop_map(|breach| Step::Tick { breach }),
        1 => Just(Step::Promote),
        1 => Just(Step::Pause),
        1 => Just(Step::Resume),
        1 => Just(Step::Rollback),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Whatever happens: ids are unique and follow the revisions; an
    /// incident is opened by a rollback or pause and carried until a resume
    /// or completion closes it; PagerDuty resolves only the incident it
    /// triggered, with the same key.
    #[test]
    fn events_keep_their_ids_and_incidents(steps in prop::collection::vec(step(), 1..60)) {
        let clock = ManualClock::new("2025-10-23T09:00:00Z".parse().unwrap());
        let breach = Arc::new(AtomicBool::new(false));
        let b = Arc::clone(&breach);
        let gate = move |_at| {
            if b.load(Ordering::SeqCst) {
                Observation::healthy().with_error_rate(0.05)
            } else {
                Observation::healthy()
            }
        };
        let state = RolloutState::new("r", Plan::six_day(), genesis_flags::rollout::Clock::now(&clock));
        let mut engine = Controller::in_memory(state, Box::new(gate), clock.clone());
        let _ = engine.apply(&Operation::Start, "lead");
        for s in &steps {
            clock.advance(Duration::from_secs(120));
            let reason = "why".to_owned();
            let _ = match s {
                Step::Tick { breach: x } => {
                    breach.store(*x, Ordering::SeqCst);
                    engine.tick().map(|_| ())
                }
                Step::Promote => engine.apply(&Operation::Promote { reason }, "p").map(|_| ()),
                Step::Pause => engine.apply(&Operation::Pause { reason }, "p").map(|_| ()),
                Step::Resume => engine.apply(&Operation::Resume { reason }, "p").map(|_| ()),
                Step::Rollback => engine.apply(&Operation::Rollback { reason }, "p").map(|_| ()),
            };
        }
        let events = engine.notifications();
        prop_assert_eq!(events[0].kind, EventType::Started);
        let mut last = 0;
        let mut open: Option<String> = None;
        let mut paged: Option<String> = None;
        for e in events {
            prop_assert!(e.revision > last, "revisions increase");
            last = e.revision;
            prop_assert_eq!(&e.id, &format!("r/{}", e.revision));
            match (&open, e.kind.opens_incident()) {
                (None, true) => prop_assert_eq!(e.incident.as_ref(), Some(&e.id)),
                (Some(i), _) => prop_assert_eq!(e.incident.as_ref(), Some(i)),
                (None, false) => prop_assert!(e.incident.is_none()),
            }
            if ChannelKind::PagerDuty.wants(e) {
                if e.kind.closes_incident() {
                    prop_assert_eq!(paged.take(), e.dedup_key());
                } else {
                    if let Some(p) = &paged {
                        prop_assert_eq!(Some(p.clone()), e.dedup_key(), "one key per incident");
                    }
                    paged = e.dedup_key();
                }
            }
            if e.kind.closes_incident() {
                open = None;
            } else if e.incident.is_some() {
                open = e.incident.clone();
            }
        }
    }
}
