//! `incident-report`: the post-incident timeline of the last rollback or
//! pause, in Markdown, from the audit log and the outbox — when the breach
//! began, the values against the thresholds, when each channel was told, who
//! did what, and the time to rollback.

use std::fmt::Write as _;

use genesis_flags::rollout::controller::ControllerFiles;
use genesis_flags::rollout::notify::{DeliveryOutcome, EventType, Outbox};
use genesis_flags::rollout::{
    format_duration, AuditEvent, AuditLog, AuditRecord, ChangeKind, Timestamp,
};
use serde_json::json;

use crate::cli::Cli;
use crate::output::{Failure, Out};

type Result<T> = std::result::Result<T, Failure>;

fn figure(v: Option<f64>) -> String {
    v.map_or_else(
        || "-".into(),
        |v| format!("{}", (v * 1000.0).round() / 1000.0),
    )
}

fn breaching(r: &AuditRecord) -> bool {
    r.verdicts.as_ref().is_some_and(|v| v.any_breach())
}

pub fn report(cli: &Cli, out: &Out) -> Result<u8> {
    let files = ControllerFiles::beside(&cli.state);
    if !files.audit.exists() {
        return Err(Failure::input(format!(
            "no audit log at {} (nothing has happened yet)",
            files.audit.display()
        )));
    }
    let records = AuditLog::read(&files.audit).map_err(Failure::from)?;
    let outbox = Outbox::beside(&cli.state);
    let events = outbox.read().map_err(|e| Failure::input(e.to_string()))?;
    let deliveries = outbox
        .deliveries()
        .map_err(|e| Failure::input(e.to_string()))?;
    // The last rollback or pause.
    let Some(stop_index) = records
        .iter()
        .rposition(|r| r.event.change().is_some_and(ChangeKind::stops_the_rollout))
    else {
        return Err(Failure::input(format!(
            "{}: no rollback or pause to report on",
            files.audit.display()
        )));
    };
    let stop = &records[stop_index];
    // The breach began at the first tick of the breaching run before it.
    let mut began = stop_index;
    while began > 0
        && records[began - 1].event == AuditEvent::Hold
        && breaching(&records[began - 1])
    {
        began -= 1;
    }
    let began_at = if breaching(&records[began]) {
        records[began].at
    } else {
        stop.at
    };
    let event = events
        .iter()
        .rev()
        .find(|e| e.at == stop.at && matches!(e.kind, EventType::RolledBack | EventType::Paused));
    let incident = event.and_then(|e| e.incident.clone());
    let ended = records[stop_index + 1..].iter().find(|r| {
        matches!(
            r.event.change(),
            Some(ChangeKind::Resume | ChangeKind::Complete | ChangeKind::Init)
        )
    });
    let what = if stop.event == AuditEvent::Change(ChangeKind::Rollback) {
        "Rollback"
    } else {
        "Pause"
    };
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# Incident report: {} — {what} at {}\n",
        stop.rollout, stop.at
    );
    let _ = writeln!(md, "## Summary\n");
    let _ = writeln!(md, "- **What**: {}", stop.explanation.message);
    let _ = writeln!(
        md,
        "- **Stage before**: {} at {}",
        stop.stage, stop.percentage
    );
    let _ = writeln!(md, "- **Decided by**: {}", stop.by);
    let _ = writeln!(md, "- **Breach began**: {began_at}");
    let _ = writeln!(
        md,
        "- **{what}**: {} (time to {}: {})",
        stop.at,
        what.to_lowercase(),
        format_duration(stop.at.since(began_at))
    );
    match ended {
        Some(r) => {
            let _ = writeln!(
                md,
                "- **Ended**: {} by {} ({}), {} after the {}",
                r.at,
                r.by,
                r.event,
                format_duration(r.at.since(stop.at)),
                what.to_lowercase()
            );
        }
        None => {
            let _ = writeln!(md, "- **Ended**: not yet (still stopped)");
        }
    }
    if let Some(i) = &incident {
        let _ = writeln!(md, "- **Incident**: `{i}`");
    }
    let _ = writeln!(md, "\n## Values against the thresholds\n");
    let _ = writeln!(
        md,
        "| check | verdict | value | threshold | detail |\n|---|---|---|---|---|"
    );
    match &stop.verdicts {
        Some(v) => {
            for c in v.checks() {
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {} | {} |",
                    c.check,
                    c.verdict,
                    figure(c.value),
                    figure(c.threshold),
                    c.detail.replace('|', "/")
                );
            }
        }
        None => {
            let _ = writeln!(md, "| (a person's operation: no tick behind it) | | | | |");
        }
    }
    if let Some(tier) = &stop.tier {
        let _ = writeln!(
            md,
            "\nTier: {tier}. Decisive: {} {} against {}{}.",
            stop.explanation
                .check
                .map(|c| c.to_string())
                .unwrap_or_else(|| "-".into()),
            figure(stop.explanation.value),
            figure(stop.explanation.threshold),
            stop.explanation
                .streak
                .as_ref()
                .map(|s| format!(", for {s}"))
                .unwrap_or_default()
        );
    }
    // The timeline: from the change before the breach to the end.
    let from = records[..began]
        .iter()
        .rposition(|r| r.event != AuditEvent::Hold)
        .unwrap_or(began);
    let to = ended.map_or(Timestamp::MAX, |r| r.at);
    let mut rows: Vec<(Timestamp, String, String, String)> = Vec::new();
    for r in &records[from..] {
        if r.at > to {
            break;
        }
        if r.event == AuditEvent::Hold && !breaching(r) {
            continue;
        }
        let what = if r.event == AuditEvent::Hold {
            "breach (hold)".to_owned()
        } else {
            r.event.to_string()
        };
        rows.push((
            r.at,
            what,
            r.by.clone(),
            r.explanation.message.replace('|', "/"),
        ));
    }
    let ids: Vec<&str> = events
        .iter()
        .filter(|e| e.at >= records[from].at && e.at <= to)
        .map(|e| e.id.as_str())
        .collect();
    for d in deliveries.iter().filter(|d| ids.contains(&d.id.as_str())) {
        let how = match d.outcome {
            DeliveryOutcome::Delivered => format!("told {}", d.channel),
            DeliveryOutcome::GivenUp => format!("GAVE UP on {}", d.channel),
        };
        rows.push((
            d.at,
            how,
            "notifier".into(),
            format!(
                "{} `{}` after {} attempt(s){}",
                d.kind,
                d.id,
                d.attempts,
                d.error
                    .as_ref()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default()
            ),
        ));
    }
    rows.sort_by_key(|r| r.0);
    let _ = writeln!(
        md,
        "\n## Timeline (UTC)\n\n| time | what | by | detail |\n|---|---|---|---|"
    );
    for (at, what, by, detail) in &rows {
        let _ = writeln!(md, "| {at} | {what} | {by} | {detail} |");
    }
    let _ = writeln!(md, "\n## Notifications\n");
    let stop_events: Vec<_> = events
        .iter()
        .filter(|e| {
            e.at >= stop.at
                && e.at <= to
                && (Some(&e.id) == event.map(|e| &e.id)
                    || e.incident.is_some() && e.incident == incident)
        })
        .collect();
    if stop_events.is_empty() {
        let _ = writeln!(
            md,
            "No notification events (was the controller run with --notify?)."
        );
    } else {
        let _ = writeln!(
            md,
            "| event | type | channel | outcome | at | after the {} |\n|---|---|---|---|---|---|",
            what.to_lowercase()
        );
        for e in &stop_events {
            let told: Vec<_> = deliveries.iter().filter(|d| d.id == e.id).collect();
            if told.is_empty() {
                let _ = writeln!(md, "| `{}` | {} | - | pending | - | - |", e.id, e.kind);
            }
            for d in told {
                let _ = writeln!(
                    md,
                    "| `{}` | {} | {} | {:?} | {} | {} |",
                    e.id,
                    e.kind,
                    d.channel,
                    d.outcome,
                    d.at,
                    format_duration(d.at.since(stop.at))
                );
            }
        }
    }
    let _ = writeln!(md, "\n## Who did what\n");
    let people: Vec<&AuditRecord> = records[from..]
        .iter()
        .filter(|r| r.by != "policy" && r.by != "notifier" && r.at <= to)
        .collect();
    if people.is_empty() {
        let _ = writeln!(md, "Nobody: the policy acted alone.");
    }
    for r in people {
        let _ = writeln!(
            md,
            "- {} — **{}** {}: {}",
            r.at, r.by, r.event, r.explanation.message
        );
    }
    out.emit(&md, &json!({ "rollout": stop.rollout, "event": stop.event, "at": stop.at, "breach_began": began_at, "time_to_stop_seconds": stop.at.since(began_at).as_secs(), "incident": incident, "markdown": md }));
    Ok(0)
}
