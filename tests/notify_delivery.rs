//! Delivery against real local receivers, through the engine: order and ids
//! per channel, retries on 5xx, timeouts and refused connections, a hung
//! receiver that never delays a decision, give-ups recorded in the audit
//! log.

#![cfg(feature = "notify")]

use crate::support::receivers;

use std::path::Path;
use std::time::Duration;

use genesis_flags::rollout::notify::{
    DeliveryOutcome, EventType, NotifyConfig, Outbox, ProcessSecrets,
};
use genesis_flags::rollout::{
    AuditLog, Clock, Controller, ManualClock, Observation, Operation, Plan, SystemClock,
};
use receivers::{hmac_sha256_hex, Receiver};
use serde_json::Value;

const FLAGS: &str = r#"{ "version": 1,
  "rollouts": { "phase_4_deployment": { "percentage": 0 } },
  "flags": { "htdag_enabled": { "rollout": "phase_4_deployment" } } }"#;

fn setup(dir: &Path, clock: &dyn Clock) {
    std::fs::write(dir.join("flags.json"), FLAGS).unwrap();
    Controller::init(
        &dir.join("state.json"),
        &dir.join("flags.json"),
        "phase_4_deployment",
        Plan::six_day(),
        false,
        clock,
    )
    .unwrap();
}

fn config(dir: &Path, json: &str) -> NotifyConfig {
    NotifyConfig::from_json(json, dir, &ProcessSecrets).unwrap()
}

fn open(dir: &Path, notify: NotifyConfig, clock: impl Clock + 'static) -> Controller {
    Controller::builder(dir.join("state.json"))
        .clock(clock)
        .gate(|_at| Observation::healthy())
        .notify(notify)
        .open()
        .unwrap()
}

fn ids(hits: &[receivers::Hit]) -> Vec<String> {
    hits.iter()
        .map(|h| h.json()["id"].as_str().unwrap_or("").to_owned())
        .collect()
}

/// The event id in a Slack message's context line.
fn slack_ids(hits: &[receivers::Hit]) -> Vec<String> {
    hits.iter()
        .map(|h| {
            let m = h.json();
            let blocks = m["blocks"].as_array().cloned().unwrap_or_default();
            let context = blocks.last().map(|b| b["elements"][0]["text"].clone());
            context
                .and_then(|t| {
                    t.as_str()
                        .map(|t| t.split(' ').next().unwrap_or("").to_owned())
                })
                .unwrap_or_default()
        })
        .collect()
}

fn outbox_ids(dir: &Path) -> Vec<String> {
    Outbox::beside(&dir.join("state.json"))
        .read()
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect()
}

fn reason(text: &str) -> String {
    text.to_owned()
}

#[test]
fn a_hung_receiver_never_delays_a_decision_nor_the_other_channels() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    setup(d, &SystemClock);
    let slack = Receiver::start(200);
    slack.hang_all(true);
    let hook = Receiver::start(200);
    let notify = config(
        d,
        &format!(
            r##"{{ "webhooks": [ {{ "url": "{}", "secret": "k" }} ],
                  "slack": {{ "webhook_url": "{}", "channel": "#genesis-alerts" }},
                  "delivery": {{ "timeout": "60s", "retry_base": "100ms", "retry_max": "200ms" }} }}"##,
            hook.url("/hook"),
            slack.url("/slack")
        ),
    );
    let mut engine = open(d, notify, SystemClock);
    engine.apply(&Operation::Start, "lead").unwrap();
    // Slack holds the `started` event...
    assert!(
        slack.wait_for(60, |_| slack.hanging() == 1),
        "slack never got the first event"
    );
    // ... and a rollback is decided and published meanwhile.
    let applied = engine
        .apply(
            &Operation::Rollback {
                reason: reason("error spike"),
            },
            "oncall",
        )
        .unwrap();
    assert!(applied.commit.pending.is_empty());
    assert!(std::fs::read_to_string(d.join("flags.json"))
        .unwrap()
        .contains(r#""percentage": 0 }"#));
    assert_eq!(slack.hanging(), 1, "the rollback waited for slack");
    assert_eq!(
        slack.hits().len(),
        1,
        "slack's order: nothing after the hung event"
    );
    // The webhook is not held up by slack.
    assert!(
        hook.wait_for(60, |h| h.len() >= 2),
        "webhook: {:?}",
        ids(&hook.hits())
    );
    assert_eq!(ids(&hook.accepted()), outbox_ids(d));
    // Slack comes back: the hung event is retried with the same id, then the
    // rollback follows, in order.
    slack.hang_all(false);
    slack.release();
    assert!(slack.wait_for(60, |_| slack.accepted().len() >= 2));
    let all = slack_ids(&slack.hits());
    assert_eq!(all[0], all[1], "the retry carries the same id");
    assert_eq!(slack_ids(&slack.accepted()), outbox_ids(d));
    let rollback = slack.accepted()[1].json();
    assert_eq!(rollback["channel"], "#genesis-alerts");
    assert!(
        rollback["text"].as_str().unwrap().contains("ROLLED BACK"),
        "{rollback}"
    );
    let fields = rollback["blocks"][2]["fields"].to_string();
    assert!(
        fields.contains("5% → 0%") && fields.contains("*Tier*\\ncanary"),
        "{fields}"
    );
}

#[test]
fn refused_then_up_delivers_everything_in_order_with_the_same_ids() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    setup(d, &SystemClock);
    let hook = Receiver::start_down(200);
    let notify = config(
        d,
        &format!(
            r#"{{ "webhooks": [ {{ "url": "{}", "secret": "s3cret", "name": "ops" }} ],
                  "delivery": {{ "timeout": "5s", "retry_base": "100ms", "retry_max": "300ms" }} }}"#,
            hook.url("/genesis")
        ),
    );
    let mut engine = open(d, notify, SystemClock);
    engine.apply(&Operation::Start, "lead").unwrap();
    engine
        .apply(
            &Operation::Promote {
                reason: reason("ahead of plan"),
            },
            "lead",
        )
        .unwrap();
    engine
        .apply(
            &Operation::Rollback {
                reason: reason("bad canary"),
            },
            "oncall",
        )
        .unwrap();
    // Nothing could be delivered: all three are pending.
    let pending = Outbox::beside(&d.join("state.json")).pending().unwrap();
    assert_eq!(pending[0].channel, "webhook:ops");
    assert_eq!(pending[0].pending.len(), 3);
    hook.up();
    assert!(
        hook.wait_for(60, |h| h.len() >= 3),
        "{:?}",
        ids(&hook.hits())
    );
    let hits = hook.accepted();
    assert_eq!(ids(&hits), outbox_ids(d));
    let types: Vec<&str> = hits
        .iter()
        .map(|h| h.header("X-Genesis-Event").unwrap())
        .collect();
    assert_eq!(types, ["started", "advanced", "rolled_back"]);
    for h in &hits {
        let expected = format!("sha256={}", hmac_sha256_hex(b"s3cret", &h.body));
        assert_eq!(h.header("X-Genesis-Signature"), Some(expected.as_str()));
        let e = h.json();
        assert_eq!(e["schema"], 1);
        assert_eq!(e["rollout"], "phase_4_deployment");
    }
    let rollback = hits[2].json();
    assert_eq!(rollback["percentage"], 0.0);
    assert_eq!(rollback["previous_percentage"], 10.0);
    assert_eq!(rollback["explanation"], "bad canary");
    assert_eq!(rollback["incident"], rollback["id"]);
    let flushed = engine.flush_notifications(Duration::from_secs(30));
    assert_eq!(flushed[0].pending, 0);
}

#[test]
fn a_5xx_is_retried_and_a_4xx_is_given_up_at_once_in_the_audit_log() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    setup(d, &SystemClock);
    let flaky = Receiver::start(200);
    flaky.fail_next(2, 503);
    let wrong = Receiver::start(200);
    wrong.fail_next(100, 404);
    let notify = config(
        d,
        &format!(
            r#"{{ "webhooks": [ {{ "url": "{}" }}, {{ "url": "{}" }} ],
                  "delivery": {{ "retry_base": "100ms", "retry_max": "200ms" }} }}"#,
            flaky.url("/a"),
            wrong.url("/b")
        ),
    );
    let mut engine = open(d, notify, SystemClock);
    engine.apply(&Operation::Start, "lead").unwrap();
    assert!(flaky.wait_for(60, |_| flaky.accepted().len() == 1));
    let statuses: Vec<u16> = flaky.hits().iter().map(|h| h.status).collect();
    assert_eq!(statuses, [503, 503, 200]);
    let all = ids(&flaky.hits());
    assert!(all.iter().all(|i| i == &all[0]), "{all:?}");
    let flushed = engine.flush_notifications(Duration::from_secs(60));
    assert!(flushed.iter().all(|s| s.pending == 0), "{flushed:?}");
    assert_eq!(wrong.hits().len(), 1, "a 404 is not retried");
    let audit = AuditLog::read(d.join("state.json.audit.jsonl")).unwrap();
    let given_up: Vec<_> = audit
        .iter()
        .filter(|r| r.event == "notification_given_up")
        .collect();
    assert_eq!(given_up.len(), 1);
    assert!(
        given_up[0].explanation.message.contains("webhook:2"),
        "{}",
        given_up[0].explanation.message
    );
    assert!(given_up[0].explanation.message.contains("HTTP 404"));
    assert!(
        !given_up[0].explanation.message.contains("/b"),
        "no URL path in the audit log"
    );
    let deliveries = Outbox::beside(&d.join("state.json")).deliveries().unwrap();
    let outcomes: Vec<(&str, DeliveryOutcome)> = deliveries
        .iter()
        .map(|x| (x.channel.as_str(), x.outcome))
        .collect();
    assert!(outcomes.contains(&("webhook:1", DeliveryOutcome::Delivered)));
    assert!(outcomes.contains(&("webhook:2", DeliveryOutcome::GivenUp)));
}

#[test]
fn an_event_failing_past_the_bound_is_given_up_and_the_next_goes_out() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let clock = ManualClock::new("2025-10-23T09:00:00Z".parse().unwrap());
    setup(d, &clock);
    let hook = Receiver::start(200);
    hook.fail_next(usize::MAX, 500);
    let notify = config(
        d,
        &format!(
            r#"{{ "webhooks": [ {{ "url": "{}" }} ],
                  "delivery": {{ "retry_base": "100ms", "retry_max": "100ms", "give_up_after": "10m" }} }}"#,
            hook.url("/x")
        ),
    );
    let mut engine = open(d, notify, clock.clone());
    engine.apply(&Operation::Start, "lead").unwrap();
    assert!(hook.wait_for(60, |h| h.len() >= 3), "retries");
    // Ten minutes later (on the engine's clock) it is given up...
    clock.advance(Duration::from_secs(601));
    let audit = d.join("state.json.audit.jsonl");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(&audit)
        .unwrap()
        .contains("notification_given_up")
    {
        assert!(std::time::Instant::now() < deadline, "never given up");
        std::thread::sleep(Duration::from_millis(50));
    }
    // ... and the next event is delivered.
    hook.fail_next(0, 500);
    engine
        .apply(
            &Operation::Pause {
                reason: reason("look"),
            },
            "lead",
        )
        .unwrap();
    assert!(hook.wait_for(60, |_| hook.accepted().len() == 1));
    assert_eq!(hook.accepted()[0].json()["type"], "paused");
}

#[test]
fn secrets_never_reach_the_state_the_outbox_or_the_audit_log() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    setup(d, &SystemClock);
    let hook = Receiver::start(200);
    let notify = config(
        d,
        &format!(
            r#"{{ "webhooks": [ {{ "url": "{}", "secret": "TOPSECRET-1" }} ],
                  "pagerduty": {{ "routing_key": "TOPSECRET-2", "events_url": "{}" }} }}"#,
            hook.url("/x?token=TOPSECRET-3"),
            hook.url("/pd")
        ),
    );
    assert!(!format!("{notify:?}").contains("TOPSECRET"));
    let mut engine = open(d, notify, SystemClock);
    engine.apply(&Operation::Start, "lead").unwrap();
    engine
        .apply(
            &Operation::Rollback {
                reason: reason("x"),
            },
            "lead",
        )
        .unwrap();
    let flushed = engine.flush_notifications(Duration::from_secs(60));
    assert!(flushed.iter().all(|s| s.pending == 0), "{flushed:?}");
    assert!(!format!("{flushed:?}").contains("TOPSECRET"));
    for entry in std::fs::read_dir(d).unwrap() {
        let p = entry.unwrap().path();
        if p.is_file() {
            let text = std::fs::read_to_string(&p).unwrap_or_default();
            assert!(
                !text.contains("TOPSECRET"),
                "{} holds a secret",
                p.display()
            );
        }
    }
    // PagerDuty got the trigger (the rollback), with the key in the body.
    let pd: Vec<Value> = hook
        .hits()
        .iter()
        .filter(|h| h.path == "/pd")
        .map(|h| h.json())
        .collect();
    assert_eq!(pd.len(), 1);
    assert_eq!(pd[0]["routing_key"], "TOPSECRET-2");
    assert_eq!(pd[0]["event_action"], "trigger");
    let _ = EventType::RolledBack;
}
