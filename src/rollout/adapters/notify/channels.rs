//! The delivery channels (feature `notify`): [`WebhookChannel`],
//! [`SlackChannel`], [`PagerDutyChannel`] and [`EmailChannel`], each one
//! attempt per call; retries are the sender's.

use std::time::Duration;

use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use super::config::{
    url_target, EmailConfig, PagerDutyConfig, Secret, SlackConfig, SmtpSecurity, WebhookConfig,
};
use crate::rollout::foundation::notify_error::DeliveryError;
use crate::rollout::model::event::{ChannelKind, Event, EventType};

/// One attempt to deliver one event.
pub trait Channel: Send {
    /// The channel's name (`webhook:1`, `slack`, `pagerduty`, `email`).
    fn name(&self) -> &str;
    /// Its kind: which events it receives.
    fn kind(&self) -> ChannelKind;
    /// Delivers `event` once.
    ///
    /// # Errors
    ///
    /// `DeliveryError`: `Status`/`Rejected` when the receiver answered with a
    /// refusal, `Transport` when it could not be reached, `Render` when the
    /// event cannot be rendered.
    fn deliver(&mut self, event: &Event) -> Result<(), DeliveryError>;
}

/// `sha256=<hex HMAC-SHA256(secret, body)>`, the `X-Genesis-Signature`
/// header's value.
#[must_use]
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    // HMAC takes keys of any length: new_from_slice cannot fail for it.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(body);
    let bytes = mac.finalize().into_bytes();
    let mut hex = String::with_capacity(7 + 64);
    hex.push_str("sha256=");
    for b in bytes {
        hex.push_str(&format!("{b:02x}"));
    }
    hex
}

fn agent(timeout: Duration) -> ureq::Agent {
    let config = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .user_agent(concat!("genesis-flags/", env!("CARGO_PKG_VERSION")))
        .build();
    ureq::Agent::new_with_config(config)
}

/// POSTs a JSON body; 2xx is delivered, 408/429/5xx are worth a retry, any
/// other status is refused for good.
fn post(
    agent: &ureq::Agent,
    url: &Secret,
    headers: &[(&str, String)],
    body: &[u8],
) -> Result<(), DeliveryError> {
    let target = url_target(url.expose());
    let mut request = agent
        .post(url.expose())
        .header("Content-Type", "application/json");
    for (k, v) in headers {
        request = request.header(*k, v.as_str());
    }
    let mut response = request.send(body).map_err(|e| DeliveryError::Transport {
        target: target.clone(),
        // A URL's path and query may hold a token: never in a message.
        message: match e {
            ureq::Error::Timeout(t) => format!("no answer within the {t} timeout"),
            other => other.to_string().replace(url.expose(), &target),
        },
    })?;
    let status = response.status().as_u16();
    if (200..300).contains(&status) {
        return Ok(());
    }
    if status == 408 || status == 429 || status >= 500 {
        return Err(DeliveryError::Status { status, target });
    }
    let text = response
        .body_mut()
        .with_config()
        .limit(4096)
        .read_to_string()
        .unwrap_or_default();
    Err(DeliveryError::Rejected {
        status,
        target,
        body: text.chars().take(200).collect(),
    })
}

fn to_body(value: &impl serde::Serialize) -> Result<Vec<u8>, DeliveryError> {
    serde_json::to_vec(value).map_err(|e| DeliveryError::Render(e.to_string()))
}

/// A webhook: the event JSON, signed when the webhook has a secret.
#[derive(Debug)]
pub struct WebhookChannel {
    name: String,
    config: WebhookConfig,
    agent: ureq::Agent,
}

impl WebhookChannel {
    /// A webhook channel; each attempt is bounded by `timeout`.
    #[must_use]
    pub fn new(config: WebhookConfig, timeout: Duration) -> WebhookChannel {
        WebhookChannel {
            name: format!("webhook:{}", config.name),
            config,
            agent: agent(timeout),
        }
    }
}

impl Channel for WebhookChannel {
    fn name(&self) -> &str {
        &self.name
    }
    fn kind(&self) -> ChannelKind {
        ChannelKind::Webhook
    }
    fn deliver(&mut self, event: &Event) -> Result<(), DeliveryError> {
        let body = to_body(event)?;
        let mut headers = vec![
            ("X-Genesis-Event", event.kind.name().to_owned()),
            ("X-Genesis-Delivery", event.id.clone()),
        ];
        if let Some(secret) = &self.config.secret {
            headers.push((
                "X-Genesis-Signature",
                signature(secret.expose().as_bytes(), &body),
            ));
        }
        post(&self.agent, &self.config.url, &headers, &body)
    }
}

fn figure(v: Option<f64>) -> String {
    v.map_or_else(
        || "-".into(),
        |v| format!("{}", (v * 1000.0).round() / 1000.0),
    )
}

/// The Slack Block Kit message of an event.
#[must_use]
pub fn slack_message(event: &Event, channel: Option<&str>) -> Value {
    let icon = match event.kind {
        EventType::RolledBack => ":red_circle:",
        EventType::Paused | EventType::IncidentUpdate => ":large_orange_circle:",
        EventType::Completed | EventType::SignedOff => ":white_check_mark:",
        EventType::DailyReport => ":memo:",
        _ => ":large_blue_circle:",
    };
    let moved = if (event.percentage - event.previous_percentage).abs() > f64::EPSILON {
        format!("{}% → {}%", event.previous_percentage, event.percentage)
    } else {
        format!("{}%", event.percentage)
    };
    let mut fields = vec![
        format!("*Stage*\n{}/{}", event.stage, event.stages),
        format!("*Percentage*\n{moved}"),
        format!("*Phase*\n{}", event.phase),
    ];
    if let Some(tier) = &event.tier {
        fields.push(format!("*Tier*\n{tier}"));
    }
    if let Some(check) = event.check {
        fields.push(format!("*Check*\n{check}"));
        fields.push(format!(
            "*Value / threshold*\n{} / {}",
            figure(event.value),
            figure(event.threshold)
        ));
    }
    if let Some(report) = &event.report {
        fields.push(format!("*Status*\n{}", report.status));
        fields.push(format!(
            "*Error rate / P95*\n{} % / {} ms",
            figure(report.error_rate_percent),
            figure(report.p95_ms)
        ));
        fields.push(format!("*Health checks*\n{}", report.health_checks));
        fields.push(format!(
            "*Progress*\nday {:.1} of {:.0}",
            report.progress_days, report.plan_days
        ));
    }
    fields.truncate(10);
    let mut blocks = vec![
        json!({ "type": "header", "text": { "type": "plain_text", "text": format!("{} {}", event.kind, event.rollout), "emoji": true } }),
        json!({ "type": "section", "text": { "type": "mrkdwn", "text": format!("{icon} *{}*\n{}", event.headline(), event.explanation) } }),
        json!({ "type": "section", "fields": fields.iter().map(|f| json!({ "type": "mrkdwn", "text": f })).collect::<Vec<_>>() }),
    ];
    let checks: Vec<String> = event
        .checks
        .iter()
        .map(|c| {
            format!(
                "• {}: *{}* (value {}, threshold {}) {}",
                c.check,
                c.verdict,
                figure(c.value),
                figure(c.threshold),
                c.detail
            )
        })
        .collect();
    if !checks.is_empty() {
        blocks.push(
            json!({ "type": "section", "text": { "type": "mrkdwn", "text": checks.join("\n") } }),
        );
    }
    if let Some(report) = &event.report {
        let updates = if report.key_updates.is_empty() {
            "none".to_owned()
        } else {
            report.key_updates.join("\n")
        };
        blocks.push(json!({ "type": "section", "text": { "type": "mrkdwn", "text": format!("*Key updates*\n{updates}\n*Next milestone*: {}", report.next_milestone) } }));
    }
    let mut context = format!("{} · by {} · {}", event.id, event.by, event.at);
    if let Some(incident) = &event.incident {
        context.push_str(&format!(" · incident {incident}"));
    }
    blocks
        .push(json!({ "type": "context", "elements": [ { "type": "mrkdwn", "text": context } ] }));
    let mut message = json!({
        "text": format!("{}: {}", event.headline(), event.explanation),
        "blocks": blocks,
    });
    if let Some(channel) = channel {
        message["channel"] = json!(channel);
    }
    message
}

/// Slack incoming webhook: a Block Kit message per event.
#[derive(Debug)]
pub struct SlackChannel {
    config: SlackConfig,
    agent: ureq::Agent,
}

impl SlackChannel {
    /// A Slack channel; each attempt is bounded by `timeout`.
    #[must_use]
    pub fn new(config: SlackConfig, timeout: Duration) -> SlackChannel {
        SlackChannel {
            config,
            agent: agent(timeout),
        }
    }
}

impl Channel for SlackChannel {
    fn name(&self) -> &str {
        "slack"
    }
    fn kind(&self) -> ChannelKind {
        ChannelKind::Slack
    }
    fn deliver(&mut self, event: &Event) -> Result<(), DeliveryError> {
        let body = to_body(&slack_message(event, self.config.channel.as_deref()))?;
        post(&self.agent, &self.config.webhook_url, &[], &body)
    }
}

/// The PagerDuty Events API v2 bodies of an event: a `trigger` for an event
/// opening (or continuing) an incident, a `resolve` for one closing it; a
/// test event triggers at `info` and resolves at once.
#[must_use]
pub fn pagerduty_bodies(event: &Event, routing_key: &str, source: &str) -> Vec<Value> {
    let test_key = format!("genesis-flags/{}/test", event.id);
    let Some(key) = event
        .dedup_key()
        .or_else(|| (event.kind == EventType::Test).then_some(test_key))
    else {
        return Vec::new();
    };
    let resolve =
        json!({ "routing_key": routing_key, "event_action": "resolve", "dedup_key": key });
    if event.kind.closes_incident() {
        return vec![resolve];
    }
    let severity = match event.kind {
        EventType::RolledBack => "critical",
        EventType::Test => "info",
        _ => "warning",
    };
    let mut summary = format!("{}: {}", event.headline(), event.explanation);
    if summary.len() > 1000 {
        let mut cut = 1000;
        while !summary.is_char_boundary(cut) {
            cut -= 1;
        }
        summary.truncate(cut);
    }
    let trigger = json!({
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": key,
        "payload": {
            "summary": summary,
            "source": source,
            "severity": severity,
            "timestamp": event.at,
            "component": event.rollout,
            "group": "genesis-flags",
            "class": event.kind.name(),
            "custom_details": {
                "event_id": event.id,
                "type": event.kind.name(),
                "stage": event.stage,
                "percentage": event.percentage,
                "previous_percentage": event.previous_percentage,
                "phase": event.phase,
                "explanation": event.explanation,
                "check": event.check,
                "value": event.value,
                "threshold": event.threshold,
                "tier": event.tier,
                "by": event.by,
                "checks": event.checks,
            }
        }
    });
    if event.kind == EventType::Test {
        vec![trigger, resolve]
    } else {
        vec![trigger]
    }
}

/// PagerDuty Events API v2.
#[derive(Debug)]
pub struct PagerDutyChannel {
    config: PagerDutyConfig,
    source: String,
    agent: ureq::Agent,
}

impl PagerDutyChannel {
    /// A PagerDuty channel naming `source` (the controller's host) in its
    /// alerts; each attempt is bounded by `timeout`.
    #[must_use]
    pub fn new(config: PagerDutyConfig, source: &str, timeout: Duration) -> PagerDutyChannel {
        PagerDutyChannel {
            config,
            source: source.to_owned(),
            agent: agent(timeout),
        }
    }
}

impl Channel for PagerDutyChannel {
    fn name(&self) -> &str {
        "pagerduty"
    }
    fn kind(&self) -> ChannelKind {
        ChannelKind::PagerDuty
    }
    fn deliver(&mut self, event: &Event) -> Result<(), DeliveryError> {
        let url = Secret::new(self.config.events_url.clone());
        for body in pagerduty_bodies(event, self.config.routing_key.expose(), &self.source) {
            post(&self.agent, &url, &[], &to_body(&body)?)?;
        }
        Ok(())
    }
}

/// The subject and plain-text body of an event's mail.
#[must_use]
pub fn email_text(event: &Event) -> (String, String) {
    if let Some(r) = event
        .report
        .as_ref()
        .filter(|_| event.kind == EventType::DailyReport)
    {
        let subject = format!(
            "[Genesis] Daily rollout update: {} — {}",
            event.rollout, r.status
        );
        let updates = if r.key_updates.is_empty() {
            "  none\n".to_owned()
        } else {
            r.key_updates.iter().map(|u| format!("  - {u}\n")).collect()
        };
        let roles = if r.roles.is_empty() {
            "  none\n".to_owned()
        } else {
            r.roles.iter().map(|u| format!("  - {u}\n")).collect()
        };
        let body = format!(
            "Genesis rollout — daily stakeholder update ({at})\n\n\
             Status: {status}\n\
             Rollout: {rollout} at {pct}% (stage {stage} of {stages}, {phase})\n\
             Error rate: {err}\n\
             P95 latency: {p95}\n\
             Health checks: {health}\n\n\
             Key updates since the last report:\n{updates}\n\
             Next milestone: {next}\n\
             Go-live progress: {done:.1}/{days:.0} days\n\n\
             Roles:\n{roles}\n\
             Event {id}\n",
            at = event.at,
            status = r.status,
            rollout = r.rollout,
            pct = r.rollout_percentage,
            stage = r.stage,
            stages = r.stages,
            phase = r.phase,
            err = r
                .error_rate_percent
                .map_or_else(|| "n/a".into(), |e| format!("{e:.3}%")),
            p95 = r
                .p95_ms
                .map_or_else(|| "n/a".into(), |p| format!("{p:.0} ms")),
            health = if r.health_checks.is_empty() {
                "n/a"
            } else {
                &r.health_checks
            },
            next = r.next_milestone,
            done = r.progress_days.min(r.plan_days),
            days = r.plan_days,
            id = event.id,
        );
        return (subject, body);
    }
    let subject = match event.kind {
        EventType::RolledBack => format!(
            "[Genesis] ROLLED BACK: {} {}% -> {}%",
            event.rollout, event.previous_percentage, event.percentage
        ),
        EventType::Test => format!("[Genesis] Test notification for {}", event.rollout),
        _ => format!("[Genesis] {}", event.headline()),
    };
    // Plain ASCII arrows: the subject stays readable in every client.
    let subject = subject.replace('→', "->");
    let checks: String = event
        .checks
        .iter()
        .map(|c| {
            format!(
                "  - {}: {} (value {}, threshold {}) {}\n",
                c.check,
                c.verdict,
                figure(c.value),
                figure(c.threshold),
                c.detail
            )
        })
        .collect();
    let body = format!(
        "{headline}\n\nWhy: {why}\nWhen: {at}\nBy: {by}\nTier: {tier}\nCheck: {check}, value {value} against a threshold of {threshold}\n\nChecks at the decision:\n{checks}\nEvent {id}{incident}\n",
        headline = event.headline(),
        why = event.explanation,
        at = event.at,
        by = event.by,
        tier = event.tier.as_deref().unwrap_or("-"),
        check = event.check.map_or_else(|| "-".into(), |c| c.to_string()),
        value = figure(event.value),
        threshold = figure(event.threshold),
        checks = if checks.is_empty() { "  none\n".into() } else { checks },
        id = event.id,
        incident = event
            .incident
            .as_ref()
            .map(|i| format!(", incident {i}"))
            .unwrap_or_default(),
    );
    (subject, body.replace('→', "->"))
}

/// Email over SMTP (lettre): plain, STARTTLS or TLS.
#[derive(Debug)]
pub struct EmailChannel {
    config: EmailConfig,
    transport: lettre::SmtpTransport,
}

impl EmailChannel {
    /// An email channel; each attempt is bounded by `timeout`.
    ///
    /// # Errors
    ///
    /// `DeliveryError::Transport` when the SMTP transport cannot be built (a
    /// bad relay host, TLS setup).
    pub fn new(config: EmailConfig, timeout: Duration) -> Result<EmailChannel, DeliveryError> {
        use lettre::transport::smtp::authentication::Credentials;
        use lettre::SmtpTransport;
        let target = format!("smtp://{}:{}", config.host, config.port);
        let tls_error = |e: lettre::transport::smtp::Error| DeliveryError::Transport {
            target: target.clone(),
            message: e.to_string(),
        };
        let mut builder = match config.security {
            SmtpSecurity::Plain => SmtpTransport::builder_dangerous(&config.host),
            SmtpSecurity::StartTls => {
                SmtpTransport::starttls_relay(&config.host).map_err(tls_error)?
            }
            SmtpSecurity::Tls => SmtpTransport::relay(&config.host).map_err(tls_error)?,
        }
        .port(config.port)
        .timeout(Some(timeout));
        if let (Some(user), Some(password)) = (&config.username, &config.password) {
            builder =
                builder.credentials(Credentials::new(user.clone(), password.expose().to_owned()));
        }
        Ok(EmailChannel {
            transport: builder.build(),
            config,
        })
    }
}

impl Channel for EmailChannel {
    fn name(&self) -> &str {
        "email"
    }
    fn kind(&self) -> ChannelKind {
        ChannelKind::Email
    }
    fn deliver(&mut self, event: &Event) -> Result<(), DeliveryError> {
        use lettre::message::header::ContentType;
        use lettre::{Message, Transport};
        let render = |e: String| DeliveryError::Render(e);
        let (subject, body) = email_text(event);
        let mut builder = Message::builder()
            .from(
                self.config
                    .from
                    .parse()
                    .map_err(|e| render(format!("from: {e}")))?,
            )
            .subject(subject)
            // The same id on every retry: a receiver can drop duplicates.
            .message_id(Some(format!(
                "<{}@genesis-flags>",
                event.id.replace(['<', '>', ' '], "_")
            )))
            .header(ContentType::TEXT_PLAIN);
        for to in &self.config.to {
            builder = builder.to(to.parse().map_err(|e| render(format!("to: {e}")))?);
        }
        let message = builder.body(body).map_err(|e| render(e.to_string()))?;
        let target = format!("smtp://{}:{}", self.config.host, self.config.port);
        match self.transport.send(&message) {
            Ok(_) => Ok(()),
            Err(e) if e.is_permanent() => Err(DeliveryError::Rejected {
                status: e.status().map_or(550, u16::from),
                target,
                body: e.to_string(),
            }),
            Err(e) => Err(DeliveryError::Transport {
                target,
                message: e.to_string(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollout::{DailyReport, Plan, RolloutState, Timestamp};

    fn daily() -> Event {
        let start: Timestamp = "2025-10-23T09:00:00Z".parse().unwrap();
        let mut state = RolloutState::new("phase_4_deployment", Plan::six_day(), start);
        state.start(start, "lead").unwrap();
        let now: Timestamp = "2025-10-25T09:00:00Z".parse().unwrap();
        let mut e = Event::about(
            &state,
            EventType::DailyReport,
            now,
            "notifier",
            "daily".into(),
        );
        e.report = Some(DailyReport::new(&state, now));
        e
    }

    #[test]
    fn the_daily_mail_follows_the_stakeholder_template() {
        let (subject, body) = email_text(&daily());
        assert_eq!(
            subject,
            "[Genesis] Daily rollout update: phase_4_deployment — ON TRACK"
        );
        for line in [
            "Status: ON TRACK",
            "Rollout: phase_4_deployment at 5% (stage 1 of 6, soaking)",
            "Error rate: n/a",
            "Key updates since the last report:",
            "Next milestone: stage 2 (10%) after the soak",
            "Go-live progress: 2.0/6 days",
            "deployment_lead: pending",
        ] {
            assert!(body.contains(line), "{line:?} missing from\n{body}");
        }
    }

    #[test]
    fn slack_shows_the_daily_figures_and_pagerduty_ignores_them() {
        let e = daily();
        let m = slack_message(&e, None).to_string();
        assert!(
            m.contains("*Status*\\nON TRACK") && m.contains("day 2.0 of 6"),
            "{m}"
        );
        assert!(pagerduty_bodies(&e, "k", "s").is_empty());
    }

    #[test]
    fn signature_matches_rfc_4231_case_2() {
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
