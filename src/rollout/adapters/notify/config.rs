//! [`NotifyConfig`]: the `--notify` file. Every section is optional; every
//! secret is given inline, by an environment variable (`*_env`) or by a file
//! (`*_file`), and never shows in `Debug`, logs, state or audit.
//!
//! ```json
//! {
//!   "webhooks":  [ { "url": "https://hooks.example.com/genesis", "secret_env": "GENESIS_WEBHOOK_SECRET" } ],
//!   "slack":     { "webhook_url_env": "SLACK_WEBHOOK_URL", "channel": "#genesis-alerts" },
//!   "pagerduty": { "routing_key_env": "PAGERDUTY_ROUTING_KEY" },
//!   "email":     { "smtp_url": "smtp://127.0.0.1:25", "from": "rollout@genesis.ai",
//!                  "to": ["devops@genesis.ai"], "daily_at": "09:00" },
//!   "delivery":  { "timeout": "10s", "retry_max": "1m", "give_up_after": "6h" }
//! }
//! ```

use crate::FileError;
use crate::JsonError;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::rollout::foundation::notify_error::NotifyError;
use crate::rollout::parse_duration;

/// The PagerDuty Events API v2 endpoint.
pub const PAGERDUTY_EVENTS_URL: &str = "https://events.pagerduty.com/v2/enqueue";

/// The largest notification file read.
pub const MAX_NOTIFY_FILE_BYTES: u64 = 1 << 20;

/// A secret value: a URL with a token, a routing key, a password. `Debug`
/// and `Display` print `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    #[must_use]
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value, for the one place that sends it.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// A URL's scheme and host (and port), without path, query or user: what
/// may be shown of a URL that carries a token.
#[must_use]
pub fn url_target(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit('@').next().unwrap_or(authority);
    if scheme.is_empty() {
        host.to_owned()
    } else {
        format!("{scheme}://{host}")
    }
}

/// One webhook: receives every event as JSON, signed when it has a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookConfig {
    /// Its channel name (`webhook:<name>`, default the 1-based position).
    pub name: String,
    /// Where to POST.
    pub url: Secret,
    /// The HMAC-SHA256 key of `X-Genesis-Signature`.
    pub secret: Option<Secret>,
}

/// Slack incoming webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlackConfig {
    /// The incoming webhook URL (a secret).
    pub webhook_url: Secret,
    /// The channel named in the message, e.g. `#genesis-alerts`.
    pub channel: Option<String>,
}

/// PagerDuty Events API v2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PagerDutyConfig {
    /// The integration's routing key (a secret).
    pub routing_key: Secret,
    /// The events endpoint ([`PAGERDUTY_EVENTS_URL`] by default).
    pub events_url: String,
}

/// How the SMTP connection is secured, from the URL's scheme and `tls`
/// query: `smtp://` plain, `smtp://...?tls=required` STARTTLS, `smtps://`
/// TLS from the first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// No TLS (a relay on localhost).
    Plain,
    /// STARTTLS, required.
    StartTls,
    /// TLS from the first byte (port 465).
    Tls,
}

/// Email over SMTP.
///
/// `Debug` output hides the login as well as the password: both come from
/// the environment or a file and are credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct EmailConfig {
    /// The SMTP server's host.
    pub host: String,
    /// Its port.
    pub port: u16,
    /// How the connection is secured.
    pub security: SmtpSecurity,
    /// The sender address.
    pub from: String,
    /// The recipients.
    pub to: Vec<String>,
    /// When the daily stakeholder update goes out, `(hour, minute)` UTC.
    pub daily_at: Option<(u8, u8)>,
    /// SMTP login, when the server asks for one.
    pub username: Option<String>,
    /// Its password.
    pub password: Option<Secret>,
}

impl fmt::Debug for EmailConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmailConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("from", &self.from)
            .field("to", &self.to)
            .field("daily_at", &self.daily_at)
            .field("username", &self.username.as_ref().map(|_| "***"))
            .field("password", &self.password)
            .finish()
    }
}

/// Retries, timeouts and the give-up bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryConfig {
    /// One attempt's time limit (connect and answer).
    pub timeout: Duration,
    /// The first retry's delay; each retry doubles it, with jitter.
    pub retry_base: Duration,
    /// The longest delay between retries.
    pub retry_max: Duration,
    /// An event still failing this long after it was committed is given up
    /// (and the give-up recorded in the audit log).
    pub give_up_after: Duration,
    /// How often an update goes out while a rollout stays rolled back or
    /// paused.
    pub incident_every: Duration,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            timeout: Duration::from_secs(10),
            retry_base: Duration::from_secs(1),
            retry_max: Duration::from_secs(60),
            give_up_after: Duration::from_secs(6 * 3600),
            incident_every: Duration::from_secs(3600),
        }
    }
}

/// A resolved `--notify` file: secrets read, every field checked.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NotifyConfig {
    /// Webhooks.
    pub webhooks: Vec<WebhookConfig>,
    /// Slack.
    pub slack: Option<SlackConfig>,
    /// PagerDuty.
    pub pagerduty: Option<PagerDutyConfig>,
    /// Email.
    pub email: Option<EmailConfig>,
    /// Retries and bounds.
    pub delivery: DeliveryConfig,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    webhooks: Vec<RawWebhook>,
    slack: Option<RawSlack>,
    pagerduty: Option<RawPagerDuty>,
    email: Option<RawEmail>,
    delivery: Option<RawDelivery>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebhook {
    name: Option<String>,
    url: Option<String>,
    url_env: Option<String>,
    url_file: Option<PathBuf>,
    secret: Option<String>,
    secret_env: Option<String>,
    secret_file: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSlack {
    webhook_url: Option<String>,
    webhook_url_env: Option<String>,
    webhook_url_file: Option<PathBuf>,
    channel: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPagerDuty {
    routing_key: Option<String>,
    routing_key_env: Option<String>,
    routing_key_file: Option<PathBuf>,
    events_url: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEmail {
    smtp_url: String,
    from: String,
    #[serde(default)]
    to: Vec<String>,
    daily_at: Option<String>,
    username: Option<String>,
    username_env: Option<String>,
    password: Option<String>,
    password_env: Option<String>,
    password_file: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDelivery {
    timeout: Option<String>,
    retry_base: Option<String>,
    retry_max: Option<String>,
    give_up_after: Option<String>,
    incident_every: Option<String>,
}

/// Where secrets come from: the process environment and the file system,
/// or a stand-in (tests, fuzzing).
pub trait SecretSource {
    /// The environment variable `name`.
    fn var(&self, name: &str) -> Option<String>;
    /// The contents of `path`.
    ///
    /// # Errors
    ///
    /// The I/O error of reading `path`.
    fn read(&self, path: &Path) -> std::io::Result<String>;
}

/// The process environment and the file system.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessSecrets;

impl SecretSource for ProcessSecrets {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
    fn read(&self, path: &Path) -> std::io::Result<String> {
        crate::rollout::foundation::read::read_text(path)
    }
}

/// One secret from its three spellings: exactly one must be given when
/// `required`.
struct SecretField<'a> {
    field: String,
    name: &'a str,
    inline: Option<&'a String>,
    env: Option<&'a String>,
    file: Option<&'a PathBuf>,
}

impl SecretField<'_> {
    fn resolve(
        &self,
        source: &dyn SecretSource,
        base: &Path,
        required: bool,
    ) -> Result<Option<Secret>, NotifyError> {
        let given = [
            self.inline.is_some(),
            self.env.is_some(),
            self.file.is_some(),
        ];
        let count = given.iter().filter(|g| **g).count();
        let name = self.name;
        let err = |suffix: &str, message: String| NotifyError::Secret {
            field: format!("{}.{name}{suffix}", self.field),
            message,
        };
        if count > 1 {
            return Err(err(
                "",
                format!("give one of {name}, {name}_env and {name}_file, not several"),
            ));
        }
        let value = if let Some(v) = self.inline {
            v.clone()
        } else if let Some(var) = self.env {
            source
                .var(var)
                .ok_or_else(|| err("_env", format!("the environment variable {var} is not set")))?
        } else if let Some(path) = self.file {
            let path = if path.is_absolute() {
                path.clone()
            } else {
                base.join(path)
            };
            source
                .read(&path)
                .map_err(|e| err("_file", format!("cannot read {}: {e}", path.display())))?
                .trim_end_matches(['\n', '\r'])
                .to_owned()
        } else if required {
            return Err(err(
                "",
                format!("missing: give {name}, {name}_env or {name}_file"),
            ));
        } else {
            return Ok(None);
        };
        if value.trim().is_empty() {
            return Err(err("", "is empty".into()));
        }
        Ok(Some(Secret(value)))
    }
}

fn http_url(field: &str, url: &str) -> Result<(), NotifyError> {
    let ok = (url.starts_with("http://") || url.starts_with("https://"))
        && !url_target(url).ends_with("://");
    if ok {
        Ok(())
    } else {
        Err(NotifyError::Invalid {
            field: field.into(),
            message: format!("{} is not an http(s) URL", url_target(url)),
        })
    }
}

fn duration(
    field: &str,
    text: Option<&String>,
    default: Duration,
) -> Result<Duration, NotifyError> {
    let Some(text) = text else {
        return Ok(default);
    };
    let d = parse_duration(text).map_err(|e| NotifyError::Invalid {
        field: format!("delivery.{field}"),
        message: e.to_string(),
    })?;
    let (min, max) = (Duration::from_millis(100), Duration::from_secs(7 * 86_400));
    if d < min || d > max {
        return Err(NotifyError::Invalid {
            field: format!("delivery.{field}"),
            message: format!("{text} is outside 100ms..=7d"),
        });
    }
    Ok(d)
}

/// `HH:MM` (24 h, UTC).
fn time_of_day(text: &str) -> Option<(u8, u8)> {
    let (h, m) = text.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m) = (h.parse::<u8>().ok()?, m.parse::<u8>().ok()?);
    (h < 24 && m < 60).then_some((h, m))
}

fn smtp_endpoint(url: &str) -> Result<(String, u16, SmtpSecurity), NotifyError> {
    let invalid = |message: String| NotifyError::Invalid {
        field: "email.smtp_url".into(),
        message,
    };
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| invalid("expected smtp://HOST[:PORT] or smtps://HOST[:PORT]".into()))?;
    let (authority, query) = rest.split_once('?').unwrap_or((rest, ""));
    let authority = authority.trim_end_matches('/');
    if authority.contains('@') {
        return Err(invalid(
            "put the login in username/password(_env|_file), not in the URL".into(),
        ));
    }
    let tls = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("tls="))
        .unwrap_or("");
    let security = match (scheme, tls) {
        ("smtp", "" | "none") => SmtpSecurity::Plain,
        ("smtp", "required" | "starttls") => SmtpSecurity::StartTls,
        ("smtps", "" | "wrapper") => SmtpSecurity::Tls,
        _ => {
            return Err(invalid(format!(
                "scheme {scheme:?} with tls={tls:?}: use smtp:// (plain), smtp://...?tls=required (STARTTLS) or smtps:// (TLS)"
            )))
        }
    };
    let default_port = match security {
        SmtpSecurity::Plain => 25,
        SmtpSecurity::StartTls => 587,
        SmtpSecurity::Tls => 465,
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || p.is_empty() => (
            h,
            p.parse::<u16>()
                .map_err(|_| invalid(format!("port {p:?} is not a number")))?,
        ),
        _ => (authority, default_port),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(invalid("no host".into()));
    }
    Ok((host.to_owned(), port, security))
}

fn address(field: &str, text: &str) -> Result<String, NotifyError> {
    let t = text.trim();
    let ok = t
        .split_once('@')
        .is_some_and(|(l, d)| !l.is_empty() && !d.is_empty() && !d.contains('@'))
        && !t.contains(char::is_whitespace);
    if ok {
        Ok(t.to_owned())
    } else {
        Err(NotifyError::Invalid {
            field: field.into(),
            message: format!("{text:?} is not an email address"),
        })
    }
}

impl NotifyConfig {
    /// Reads and resolves the file at `path`; relative `*_file` paths are
    /// taken from the file's folder.
    ///
    /// # Errors
    ///
    /// `NotifyError::Io` when the file cannot be read; `Parse` (with its line
    /// and column, secrets redacted), `Invalid` (naming the field) or `Secret`
    /// (a secret that cannot be resolved).
    pub fn from_file(path: &Path) -> Result<NotifyConfig, NotifyError> {
        let io = |source| {
            NotifyError::Io(FileError::new(
                "cannot read the notification file",
                path.to_path_buf(),
                source,
            ))
        };
        let bytes = crate::rollout::foundation::read::read_regular(
            path,
            crate::rollout::foundation::read::Follow::Symlinks,
            MAX_NOTIFY_FILE_BYTES,
        )
        .map_err(io)?;
        let text = String::from_utf8(bytes).map_err(|_| {
            io(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "not UTF-8 text",
            ))
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::from_json(&text, base, &ProcessSecrets).map_err(|e| match e {
            NotifyError::Parse { error, .. } => NotifyError::Parse {
                path: path.to_path_buf(),
                error,
            },
            other => other,
        })
    }

    /// Parses and resolves a notification document; secrets come from
    /// `secrets`, relative `*_file` paths from `base`.
    ///
    /// # Errors
    ///
    /// `NotifyError::Parse`, `Invalid` or `Secret` as for
    /// [`from_file`](Self::from_file).
    pub fn from_json(
        text: &str,
        base: &Path,
        secrets: &dyn SecretSource,
    ) -> Result<NotifyConfig, NotifyError> {
        let raw: RawConfig = serde_json::from_str(text).map_err(|e| NotifyError::Parse {
            path: PathBuf::from("--notify"),
            error: JsonError::from_serde(&e).with_message(crate::rollout::redacted_message(&e)),
        })?;
        let mut config = NotifyConfig::default();
        for (i, w) in raw.webhooks.iter().enumerate() {
            let field = format!("webhooks[{i}]");
            let url = SecretField {
                field: field.clone(),
                name: "url",
                inline: w.url.as_ref(),
                env: w.url_env.as_ref(),
                file: w.url_file.as_ref(),
            }
            .resolve(secrets, base, true)?
            .unwrap_or_else(|| Secret::new(""));
            http_url(&format!("{field}.url"), url.expose())?;
            let secret = SecretField {
                field: field.clone(),
                name: "secret",
                inline: w.secret.as_ref(),
                env: w.secret_env.as_ref(),
                file: w.secret_file.as_ref(),
            }
            .resolve(secrets, base, false)?;
            let name = w.name.clone().unwrap_or_else(|| (i + 1).to_string());
            let valid = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !valid {
                return Err(NotifyError::Invalid {
                    field: format!("{field}.name"),
                    message: format!("{name:?}: use letters, digits, - and _"),
                });
            }
            if config
                .webhooks
                .iter()
                .any(|o: &WebhookConfig| o.name == name)
            {
                return Err(NotifyError::Invalid {
                    field: format!("{field}.name"),
                    message: format!("{name:?} names two webhooks"),
                });
            }
            config.webhooks.push(WebhookConfig { name, url, secret });
        }
        if let Some(s) = &raw.slack {
            let url = SecretField {
                field: "slack".into(),
                name: "webhook_url",
                inline: s.webhook_url.as_ref(),
                env: s.webhook_url_env.as_ref(),
                file: s.webhook_url_file.as_ref(),
            }
            .resolve(secrets, base, true)?
            .unwrap_or_else(|| Secret::new(""));
            http_url("slack.webhook_url", url.expose())?;
            config.slack = Some(SlackConfig {
                webhook_url: url,
                channel: s.channel.clone(),
            });
        }
        if let Some(p) = &raw.pagerduty {
            let key = SecretField {
                field: "pagerduty".into(),
                name: "routing_key",
                inline: p.routing_key.as_ref(),
                env: p.routing_key_env.as_ref(),
                file: p.routing_key_file.as_ref(),
            }
            .resolve(secrets, base, true)?
            .unwrap_or_else(|| Secret::new(""));
            let events_url = p
                .events_url
                .clone()
                .unwrap_or_else(|| PAGERDUTY_EVENTS_URL.to_owned());
            http_url("pagerduty.events_url", &events_url)?;
            config.pagerduty = Some(PagerDutyConfig {
                routing_key: key,
                events_url,
            });
        }
        if let Some(e) = &raw.email {
            let (host, port, security) = smtp_endpoint(&e.smtp_url)?;
            let from = address("email.from", &e.from)?;
            if e.to.is_empty() {
                return Err(NotifyError::Invalid {
                    field: "email.to".into(),
                    message: "no recipient".into(),
                });
            }
            let to =
                e.to.iter()
                    .enumerate()
                    .map(|(i, t)| address(&format!("email.to[{i}]"), t))
                    .collect::<Result<Vec<_>, _>>()?;
            let daily_at = e
                .daily_at
                .as_deref()
                .map(|t| {
                    time_of_day(t).ok_or_else(|| NotifyError::Invalid {
                        field: "email.daily_at".into(),
                        message: format!("{t:?} is not HH:MM (UTC, 24 h)"),
                    })
                })
                .transpose()?;
            let username = match (&e.username, &e.username_env) {
                (Some(_), Some(_)) => {
                    return Err(NotifyError::Secret {
                        field: "email.username".into(),
                        message: "give username or username_env, not both".into(),
                    })
                }
                (Some(u), None) => Some(u.clone()),
                (None, Some(var)) => Some(secrets.var(var).ok_or_else(|| NotifyError::Secret {
                    field: "email.username_env".into(),
                    message: format!("the environment variable {var} is not set"),
                })?),
                (None, None) => None,
            };
            let password = SecretField {
                field: "email".into(),
                name: "password",
                inline: e.password.as_ref(),
                env: e.password_env.as_ref(),
                file: e.password_file.as_ref(),
            }
            .resolve(secrets, base, username.is_some())?;
            if password.is_some() && username.is_none() {
                return Err(NotifyError::Invalid {
                    field: "email.password".into(),
                    message: "a password needs a username".into(),
                });
            }
            config.email = Some(EmailConfig {
                host,
                port,
                security,
                from,
                to,
                daily_at,
                username,
                password,
            });
        }
        if let Some(d) = &raw.delivery {
            let def = DeliveryConfig::default();
            config.delivery = DeliveryConfig {
                timeout: duration("timeout", d.timeout.as_ref(), def.timeout)?,
                retry_base: duration("retry_base", d.retry_base.as_ref(), def.retry_base)?,
                retry_max: duration("retry_max", d.retry_max.as_ref(), def.retry_max)?,
                give_up_after: duration(
                    "give_up_after",
                    d.give_up_after.as_ref(),
                    def.give_up_after,
                )?,
                incident_every: duration(
                    "incident_every",
                    d.incident_every.as_ref(),
                    def.incident_every,
                )?,
            };
        }
        Ok(config)
    }

    /// The channel names, in delivery-thread order: `webhook:<name>`...,
    /// `slack`, `pagerduty`, `email`.
    #[must_use]
    pub fn channels(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .webhooks
            .iter()
            .map(|w| format!("webhook:{}", w.name))
            .collect();
        if self.slack.is_some() {
            names.push("slack".into());
        }
        if self.pagerduty.is_some() {
            names.push("pagerduty".into());
        }
        if self.email.is_some() {
            names.push("email".into());
        }
        names
    }

    /// When the daily stakeholder update goes out, if email asks for one.
    #[must_use]
    pub fn daily_at(&self) -> Option<(u8, u8)> {
        self.email.as_ref().and_then(|e| e.daily_at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct Fake(HashMap<&'static str, &'static str>);
    impl SecretSource for Fake {
        fn var(&self, name: &str) -> Option<String> {
            self.0.get(name).map(|v| (*v).to_owned())
        }
        fn read(&self, path: &Path) -> std::io::Result<String> {
            self.0
                .get(path.to_str().unwrap_or(""))
                .map(|v| format!("{v}\n"))
                .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))
        }
    }

    fn parse(text: &str) -> Result<NotifyConfig, NotifyError> {
        let fake = Fake(HashMap::from([
            ("HOOK_SECRET", "s3cret"),
            ("SLACK_URL", "https://hooks.slack.test/T000/B000/XXXX"),
            ("/keys/pd", "pd-routing-key"),
        ]));
        NotifyConfig::from_json(text, Path::new("/keys"), &fake)
    }

    #[test]
    fn the_documented_file_resolves_every_spelling() {
        let c = parse(
            r##"{ "webhooks": [ { "url": "https://hooks.example.com/genesis", "secret_env": "HOOK_SECRET" } ],
                 "slack": { "webhook_url_env": "SLACK_URL", "channel": "#genesis-alerts" },
                 "pagerduty": { "routing_key_file": "pd" },
                 "email": { "smtp_url": "smtp://127.0.0.1:2525", "from": "rollout@genesis.ai",
                            "to": ["devops@genesis.ai"], "daily_at": "09:00" } }"##,
        )
        .unwrap();
        assert_eq!(c.webhooks[0].secret.as_ref().unwrap().expose(), "s3cret");
        assert_eq!(
            c.pagerduty.as_ref().unwrap().routing_key.expose(),
            "pd-routing-key"
        );
        assert_eq!(
            c.pagerduty.as_ref().unwrap().events_url,
            PAGERDUTY_EVENTS_URL
        );
        let e = c.email.as_ref().unwrap();
        assert_eq!(
            (e.host.as_str(), e.port, e.security),
            ("127.0.0.1", 2525, SmtpSecurity::Plain)
        );
        assert_eq!(c.daily_at(), Some((9, 0)));
        assert_eq!(c.channels(), ["webhook:1", "slack", "pagerduty", "email"]);
    }

    #[test]
    fn debug_never_shows_a_secret() {
        let c = parse(
            r#"{ "webhooks": [ { "url": "https://h.example/x?token=abc", "secret": "hunter2" } ],
                 "slack": { "webhook_url_env": "SLACK_URL" } }"#,
        )
        .unwrap();
        let debug = format!("{c:?}");
        for secret in ["hunter2", "token=abc", "XXXX", "T000"] {
            assert!(!debug.contains(secret), "{secret} in {debug}");
        }
    }

    #[test]
    fn problems_name_the_field_and_never_the_value() {
        let cases = [
            (r#"{ "slack": {} }"#, "slack.webhook_url"),
            (
                r#"{ "slack": { "webhook_url_env": "NOPE" } }"#,
                "slack.webhook_url_env",
            ),
            (
                r#"{ "webhooks": [ { "url": "ftp://x/y" } ] }"#,
                "webhooks[0].url",
            ),
            (
                r#"{ "webhooks": [ { "url": "https://a/b", "secret": "x", "secret_env": "HOOK_SECRET" } ] }"#,
                "webhooks[0].secret",
            ),
            (
                r#"{ "email": { "smtp_url": "smtp://h", "from": "a@b", "to": [] } }"#,
                "email.to",
            ),
            (
                r#"{ "email": { "smtp_url": "smtp://h", "from": "a@b", "to": ["c@d"], "daily_at": "9am" } }"#,
                "email.daily_at",
            ),
            (
                r#"{ "email": { "smtp_url": "smtp://u:p@h", "from": "a@b", "to": ["c@d"] } }"#,
                "email.smtp_url",
            ),
            (r#"{ "delivery": { "timeout": "0s" } }"#, "delivery.timeout"),
        ];
        for (text, field) in cases {
            let e = parse(text).unwrap_err().to_string();
            assert!(e.starts_with(field), "{text}: {e}");
        }
        let e = parse(r#"{ "slak": {} }"#).unwrap_err();
        assert!(
            matches!(&e, NotifyError::Parse { error, .. } if error.line == 1),
            "{e}"
        );
    }

    #[test]
    fn smtp_urls_choose_the_security() {
        let t = smtp_endpoint;
        assert_eq!(
            t("smtp://mx").unwrap(),
            ("mx".into(), 25, SmtpSecurity::Plain)
        );
        assert_eq!(
            t("smtp://mx?tls=required").unwrap(),
            ("mx".into(), 587, SmtpSecurity::StartTls)
        );
        assert_eq!(
            t("smtps://mx:4650").unwrap(),
            ("mx".into(), 4650, SmtpSecurity::Tls)
        );
        assert!(t("http://mx").is_err());
    }

    #[test]
    fn url_targets_drop_path_query_and_login() {
        assert_eq!(
            url_target("https://u:p@hooks.slack.com/services/T/B/X?a=1"),
            "https://hooks.slack.com"
        );
        assert_eq!(
            url_target("http://127.0.0.1:8080/x"),
            "http://127.0.0.1:8080"
        );
    }
}
