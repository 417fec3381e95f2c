//! The gate's JSON config: where Prometheus is, how to authenticate, and the
//! PromQL templates, with defaults for the Genesis metrics.

use crate::FileError;
use crate::JsonError;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::rollout::foundation::duration::{parse_duration, serde_text};
use crate::rollout::model::cohort::CohortRules;

/// The gate's config file.
///
/// ```
/// use genesis_flags::rollout::prometheus::GateConfig;
/// let config = GateConfig::from_json(r#"{ "prometheus": { "url": "http://127.0.0.1:9090" },
///                                          "variables": { "window": "30s" } }"#)?;
/// let queries = config.rendered_queries()?;
/// assert_eq!(queries.requests, "sum(increase(genesis_requests_total[30s]))");
/// # Ok::<(), genesis_flags::rollout::prometheus::GateError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GateConfig {
    /// The server.
    #[serde(default)]
    pub prometheus: ServerConfig,
    /// Values for `{{name}}` in the templates, inserted PromQL-escaped;
    /// merged over the defaults (`window` = `5m`). `rollout`, when set,
    /// selects the rollout's cohort series (see [`GateConfig::for_rollout`]).
    #[serde(default = "default_variables", deserialize_with = "merged_variables")]
    pub variables: BTreeMap<String, String>,
    /// The queries behind the observation.
    #[serde(default)]
    pub queries: Queries,
    /// Named health checks: each expression passes when it returns at least
    /// one series and none of them is 0.
    #[serde(default = "default_health_checks")]
    pub health_checks: BTreeMap<String, String>,
    /// How the flagged users are compared with the others.
    #[serde(default)]
    pub cohort: CohortRules,
}

/// Where the server is and how to reach it.
///
/// `Debug` output hides the credentials of a URL (`http://***@host:9090`).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Base URL, e.g. `http://127.0.0.1:9090` or `https://prometheus.internal`.
    ///
    /// Credentials in the URL (`http://user:password@host:9090`, percent-encoded
    /// as usual) are sent as basic auth and never shown: messages, `Debug`
    /// output and observations name the server without them. They cannot be
    /// combined with `basic_auth` or a bearer token. Prefer `basic_auth` with
    /// `password_env` or `password_file`, which keep the password out of the
    /// config file.
    #[serde(default = "default_url")]
    pub url: String,
    /// Connect timeout (default 2 s).
    #[serde(with = "serde_text", default = "default_connect_timeout")]
    pub connect_timeout: Duration,
    /// Read timeout for the whole answer (default 5 s).
    #[serde(with = "serde_text", default = "default_read_timeout")]
    pub read_timeout: Duration,
    /// Largest response body accepted (default 16 MiB).
    #[serde(default = "default_max_body")]
    pub max_response_bytes: u64,
    /// Environment variable holding a bearer token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_token_env: Option<String>,
    /// File holding a bearer token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_token_file: Option<PathBuf>,
    /// Basic authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basic_auth: Option<BasicAuthConfig>,
    /// PEM file of CA certificates to trust for `https` (instead of the
    /// built-in web roots).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
}

/// Basic authentication; the password comes from the environment or a file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuthConfig {
    /// The user name.
    pub username: String,
    /// Environment variable holding the password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_env: Option<String>,
    /// File holding the password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
}

/// The PromQL templates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Queries {
    /// Errors / requests (a fraction).
    #[serde(default = "default_error_rate")]
    pub error_rate: String,
    /// Requests in the window.
    #[serde(default = "default_requests")]
    pub requests: String,
    /// P95 latency, in seconds.
    #[serde(default = "default_p95")]
    pub latency_p95_seconds: String,
    /// Firing critical alerts (one series per alert; empty when none).
    #[serde(default = "default_alerts")]
    pub critical_alerts: String,
    /// Requests in the window by `cohort` (`in`, `out`). Default:
    /// `sum by (cohort) (increase(genesis_requests_total{<rollout>,cohort=~"in|out"}[{{window}}]))`,
    /// where `<rollout>` is `rollout="{{rollout}}"` when the `rollout`
    /// variable is set and `rollout!=""` (any rollout) otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cohort_requests: Option<String>,
    /// Errors in the window by `cohort`; the same default over
    /// `genesis_errors_total` (a cohort without the series has no errors).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cohort_errors: Option<String>,
    /// Latency bucket counts in the window by `cohort` and `le`; the same
    /// default over `genesis_request_duration_seconds_bucket`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cohort_latency_buckets: Option<String>,
    /// The percentage each instance applies, one series per instance.
    /// Default: `genesis_flags_rollout_percentage{<rollout>}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout_percentage: Option<String>,
}

impl std::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerConfig")
            .field("url", &redact_url(&self.url))
            .field("connect_timeout", &self.connect_timeout)
            .field("read_timeout", &self.read_timeout)
            .field("max_response_bytes", &self.max_response_bytes)
            .field("bearer_token_env", &self.bearer_token_env)
            .field("bearer_token_file", &self.bearer_token_file)
            .field("basic_auth", &self.basic_auth)
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

/// Splits the userinfo (`user:password`) out of a URL: the URL without it,
/// and the userinfo, if any. The authority runs from after `://` (or the
/// start) to the first `/`, `?` or `#`; the userinfo ends at its last `@`.
pub(crate) fn split_userinfo(url: &str) -> (String, Option<&str>) {
    let start = url.find("://").map_or(0, |i| i + 3);
    let rest = url.get(start..).unwrap_or_default();
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = rest.get(..authority_end).unwrap_or_default();
    match authority.rfind('@') {
        Some(at) => {
            let scheme = url.get(..start).unwrap_or_default();
            let after = rest.get(at + 1..).unwrap_or_default();
            (format!("{scheme}{after}"), authority.get(..at))
        }
        None => (url.to_owned(), None),
    }
}

/// The URL for display: any userinfo replaced by `***`
/// (`http://ops:hunter2@host:9090` shows as `http://***@host:9090`).
pub(crate) fn redact_url(url: &str) -> String {
    match split_userinfo(url) {
        (without, Some(_)) => {
            let start = without.find("://").map_or(0, |i| i + 3);
            let (scheme, rest) = without.split_at(start);
            format!("{scheme}***@{rest}")
        }
        (without, None) => without,
    }
}

/// Decodes `%XX` escapes of a URL's userinfo; `None` if malformed or not UTF-8.
#[cfg_attr(not(feature = "prometheus"), allow(dead_code))]
pub(crate) fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            url: default_url(),
            connect_timeout: default_connect_timeout(),
            read_timeout: default_read_timeout(),
            max_response_bytes: default_max_body(),
            bearer_token_env: None,
            bearer_token_file: None,
            basic_auth: None,
            ca_file: None,
        }
    }
}

impl Default for Queries {
    fn default() -> Self {
        Queries {
            error_rate: default_error_rate(),
            requests: default_requests(),
            latency_p95_seconds: default_p95(),
            critical_alerts: default_alerts(),
            cohort_requests: None,
            cohort_errors: None,
            cohort_latency_buckets: None,
            rollout_percentage: None,
        }
    }
}

impl Default for GateConfig {
    fn default() -> Self {
        GateConfig {
            prometheus: ServerConfig::default(),
            variables: default_variables(),
            queries: Queries::default(),
            health_checks: default_health_checks(),
            cohort: CohortRules::default(),
        }
    }
}

fn default_url() -> String {
    "http://127.0.0.1:9090".to_owned()
}
fn default_connect_timeout() -> Duration {
    Duration::from_secs(2)
}
fn default_read_timeout() -> Duration {
    Duration::from_secs(5)
}
fn default_max_body() -> u64 {
    16 * 1024 * 1024
}
fn default_variables() -> BTreeMap<String, String> {
    BTreeMap::from([("window".to_owned(), "5m".to_owned())])
}
/// A file's variables over the defaults: a file that sets only `rollout`
/// keeps `window`.
fn merged_variables<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    let given = BTreeMap::<String, String>::deserialize(deserializer)?;
    let mut variables = default_variables();
    variables.extend(given);
    Ok(variables)
}

fn default_error_rate() -> String {
    "sum(rate(genesis_errors_total[{{window}}])) / sum(rate(genesis_requests_total[{{window}}]))"
        .to_owned()
}
fn default_requests() -> String {
    "sum(increase(genesis_requests_total[{{window}}]))".to_owned()
}
fn default_p95() -> String {
    "histogram_quantile(0.95, sum by (le) (rate(genesis_request_duration_seconds_bucket[{{window}}])))".to_owned()
}
fn default_alerts() -> String {
    "ALERTS{alertstate=\"firing\",severity=\"critical\"}".to_owned()
}
fn default_health_checks() -> BTreeMap<String, String> {
    crate::rollout::DEFAULT_HEALTH_JOBS
        .iter()
        .map(|job| ((*job).to_owned(), format!("up{{job=\"{job}\"}}")))
        .collect()
}

/// Why a gate could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GateError {
    /// The config file could not be read.
    #[error(transparent)]
    Io(FileError),
    /// The config is not valid JSON for a gate.
    #[error("gate config is not valid: {0}")]
    Syntax(JsonError),
    /// A number is out of its bounds.
    #[error("{field}: {message}")]
    Bounds {
        /// The field, e.g. `prometheus.connect_timeout`.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// A template refers to an unknown variable or is malformed.
    #[error("query template `{name}`: {message}")]
    Template {
        /// `queries.error_rate`, `health_checks.genesis`, ...
        name: String,
        /// What is wrong.
        message: String,
    },
    /// A secret could not be read.
    #[error("credentials: {0}")]
    Credentials(String),
    /// TLS setup failed (the CA file).
    #[error("TLS: {0}")]
    Tls(String),
    /// The URL is not http(s), or its credentials are malformed.
    #[error("prometheus.url {url:?}: {message}")]
    Url {
        /// The URL given, its credentials replaced by `***`.
        url: String,
        /// What is wrong.
        message: String,
    },
}

/// The templates with their variables filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderedQueries {
    /// Errors / requests.
    pub error_rate: String,
    /// Requests in the window.
    pub requests: String,
    /// P95 latency in seconds.
    pub latency_p95_seconds: String,
    /// Firing critical alerts.
    pub critical_alerts: String,
    /// Named health checks.
    pub health_checks: Vec<(String, String)>,
    /// The cohort queries.
    pub cohort: CohortQueries,
}

/// The cohort queries, rendered.
#[derive(Debug, Clone, PartialEq)]
pub struct CohortQueries {
    /// The rollout's label matcher, e.g. `rollout="phase_4_deployment"`.
    pub selector: String,
    /// The window, for the counts' arithmetic.
    pub window: Duration,
    /// Requests by cohort.
    pub requests: String,
    /// Errors by cohort.
    pub errors: String,
    /// Latency buckets by cohort and `le`.
    pub latency_buckets: String,
    /// The percentage of each instance.
    pub rollout_percentage: String,
    /// How to compare the cohorts.
    pub rules: CohortRules,
}

/// Escapes a value for a PromQL double-quoted string (label values).
///
/// ```
/// use genesis_flags::rollout::prometheus::escape_label_value;
/// assert_eq!(escape_label_value(r#"a"b\c"#), r#"a\"b\\c"#);
/// ```
#[must_use]
pub fn escape_label_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out
}

/// Replaces every `{{name}}` in `template` with the escaped variable.
// Hidden: public only so the fuzz targets (`tests/support/fuzz_checks.rs`,
// `fuzz/`) can reach it; users get rendered queries from
// `GateConfig::rendered_queries`.
#[doc(hidden)]
pub fn render_template(
    name: &str,
    template: &str,
    variables: &BTreeMap<String, String>,
) -> Result<String, GateError> {
    let error = |message: String| GateError::Template {
        name: name.to_owned(),
        message,
    };
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        let close = after
            .find("}}")
            .ok_or_else(|| error("`{{` without a closing `}}`".to_owned()))?;
        let var = after[..close].trim();
        let value = variables.get(var).ok_or_else(|| {
            let known: Vec<&str> = variables.keys().map(String::as_str).collect();
            error(format!(
                "unknown variable {var:?} (defined: {})",
                known.join(", ")
            ))
        })?;
        out.push_str(&escape_label_value(value));
        rest = &after[close + 2..];
    }
    if rest.contains("}}") {
        return Err(error("`}}` without an opening `{{`".to_owned()));
    }
    out.push_str(rest);
    if out.trim().is_empty() {
        return Err(error("the query is empty".to_owned()));
    }
    Ok(out)
}

impl GateConfig {
    /// Parses a gate config; omitted fields take the defaults.
    ///
    /// # Errors
    ///
    /// `GateError::Syntax` (with its line and column, credentials redacted) for
    /// text that is not a gate config; `Bounds` for a number out of bounds;
    /// `Template` for a query that names an unknown variable.
    pub fn from_json(text: &str) -> Result<GateConfig, GateError> {
        let config: GateConfig = serde_json::from_str(text).map_err(|e| {
            GateError::Syntax(
                JsonError::from_serde(&e).with_message(crate::rollout::redacted_message(&e)),
            )
        })?;
        config.check_bounds()?;
        config.rendered_queries()?;
        Ok(config)
    }

    /// Checks every number against its bounds: a zero timeout or body limit
    /// would make every observation an Error, and an absurd one a hang.
    ///
    /// # Errors
    ///
    /// `GateError::Bounds` naming the field, its value and its bounds.
    pub fn check_bounds(&self) -> Result<(), GateError> {
        let p = &self.prometheus;
        let c = &self.cohort;
        let secs = Duration::from_secs;
        let durations = [
            (
                "prometheus.connect_timeout",
                p.connect_timeout,
                Duration::from_millis(100),
                secs(60),
            ),
            (
                "prometheus.read_timeout",
                p.read_timeout,
                Duration::from_millis(100),
                secs(600),
            ),
            (
                "cohort.max_sample_wait",
                c.max_sample_wait.unwrap_or(Duration::ZERO),
                Duration::ZERO,
                secs(30 * 86_400),
            ),
        ];
        for (field, value, min, max) in durations {
            if value < min || value > max {
                return Err(GateError::Bounds {
                    field,
                    message: format!(
                        "{} is outside {}..={}",
                        crate::rollout::format_duration(value),
                        crate::rollout::format_duration(min),
                        crate::rollout::format_duration(max)
                    ),
                });
            }
        }
        if !(1024..=1 << 30).contains(&p.max_response_bytes) {
            return Err(GateError::Bounds {
                field: "prometheus.max_response_bytes",
                message: format!("{} is outside 1024..=1073741824", p.max_response_bytes),
            });
        }
        let numbers = [
            ("cohort.alpha", c.alpha, f64::MIN_POSITIVE, 0.5),
            ("cohort.margin", c.margin, 0.0, 1.0),
            ("cohort.min_in_errors", c.min_in_errors, 0.0, 1e9),
            (
                "cohort.max_required_in_requests",
                c.max_required_in_requests,
                1.0,
                1e12,
            ),
            (
                "cohort.sample_ratio_tolerance",
                c.sample_ratio_tolerance,
                0.0,
                1.0,
            ),
        ];
        for (field, value, min, max) in numbers {
            if !(value.is_finite() && (min..=max).contains(&value)) {
                return Err(GateError::Bounds {
                    field,
                    message: format!("{value} is outside {min}..={max}"),
                });
            }
        }
        Ok(())
    }

    /// Reads a gate config file.
    ///
    /// # Errors
    ///
    /// `GateError::Io` when the file cannot be read; otherwise as
    /// [`from_json`](Self::from_json).
    pub fn from_file(path: impl AsRef<Path>) -> Result<GateConfig, GateError> {
        let path = path.as_ref();
        let text = crate::rollout::foundation::read::read_text(path).map_err(|source| {
            GateError::Io(FileError::new(
                "cannot read gate config",
                path.to_path_buf(),
                source,
            ))
        })?;
        GateConfig::from_json(&text)
    }

    /// This config with the `rollout` variable set to `rollout` unless the
    /// file sets it: the cohort queries then select that rollout's series.
    #[must_use]
    pub fn for_rollout(mut self, rollout: &str) -> GateConfig {
        self.variables
            .entry("rollout".to_owned())
            .or_insert_with(|| rollout.to_owned());
        self
    }

    fn cohort_queries(&self) -> Result<CohortQueries, GateError> {
        let v = &self.variables;
        let window_text = v.get("window").map_or("5m", String::as_str);
        let window = parse_duration(window_text).map_err(|e| GateError::Template {
            name: "variables.window".to_owned(),
            message: format!("the cohort counts need the window as a duration: {e}"),
        })?;
        if let Some((field, message)) = self.cohort.problem() {
            return Err(GateError::Template {
                name: format!("cohort.{field}"),
                message,
            });
        }
        let selector = match v.get("rollout") {
            Some(id) => format!("rollout=\"{}\"", escape_label_value(id)),
            None => "rollout!=\"\"".to_owned(),
        };
        let by_cohort = |metric: &str, by: &str| {
            format!(
                "sum by ({by}) (increase({metric}{{{selector},cohort=~\"in|out\"}}[{{{{window}}}}]))"
            )
        };
        let q = &self.queries;
        let render = |name: &str, given: &Option<String>, default: String| {
            render_template(name, given.as_deref().unwrap_or(&default), v)
        };
        Ok(CohortQueries {
            requests: render(
                "queries.cohort_requests",
                &q.cohort_requests,
                by_cohort("genesis_requests_total", "cohort"),
            )?,
            errors: render(
                "queries.cohort_errors",
                &q.cohort_errors,
                by_cohort("genesis_errors_total", "cohort"),
            )?,
            latency_buckets: render(
                "queries.cohort_latency_buckets",
                &q.cohort_latency_buckets,
                by_cohort("genesis_request_duration_seconds_bucket", "cohort, le"),
            )?,
            rollout_percentage: render(
                "queries.rollout_percentage",
                &q.rollout_percentage,
                format!("genesis_flags_rollout_percentage{{{selector}}}"),
            )?,
            selector,
            window,
            rules: self.cohort,
        })
    }

    /// The templates rendered with the variables.
    ///
    /// # Errors
    ///
    /// `GateError::Template` naming the query and the unknown variable.
    pub fn rendered_queries(&self) -> Result<RenderedQueries, GateError> {
        let v = &self.variables;
        let q = &self.queries;
        Ok(RenderedQueries {
            error_rate: render_template("queries.error_rate", &q.error_rate, v)?,
            requests: render_template("queries.requests", &q.requests, v)?,
            latency_p95_seconds: render_template(
                "queries.latency_p95_seconds",
                &q.latency_p95_seconds,
                v,
            )?,
            critical_alerts: render_template("queries.critical_alerts", &q.critical_alerts, v)?,
            health_checks: self
                .health_checks
                .iter()
                .map(|(name, t)| {
                    Ok((
                        name.clone(),
                        render_template(&format!("health_checks.{name}"), t, v)?,
                    ))
                })
                .collect::<Result<_, GateError>>()?,
            cohort: self.cohort_queries()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_genesis_queries() {
        let q = GateConfig::default().rendered_queries().unwrap();
        assert_eq!(
            q.error_rate,
            "sum(rate(genesis_errors_total[5m])) / sum(rate(genesis_requests_total[5m]))"
        );
        assert_eq!(q.requests, "sum(increase(genesis_requests_total[5m]))");
        assert_eq!(
            q.latency_p95_seconds,
            "histogram_quantile(0.95, sum by (le) (rate(genesis_request_duration_seconds_bucket[5m])))"
        );
        assert_eq!(
            q.critical_alerts,
            "ALERTS{alertstate=\"firing\",severity=\"critical\"}"
        );
        let names: Vec<&str> = q.health_checks.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "alertmanager",
                "genesis",
                "grafana",
                "node-exporter",
                "prometheus"
            ]
        );
        assert_eq!(GateConfig::from_json("{}").unwrap(), GateConfig::default());
        let c = &q.cohort;
        assert_eq!(
            c.requests,
            "sum by (cohort) (increase(genesis_requests_total{rollout!=\"\",cohort=~\"in|out\"}[5m]))"
        );
        assert_eq!(
            c.rollout_percentage,
            "genesis_flags_rollout_percentage{rollout!=\"\"}"
        );
        assert_eq!(c.window, Duration::from_secs(300));
    }

    #[test]
    fn the_rollout_variable_selects_its_series_escaped() {
        let q = GateConfig::default()
            .for_rollout("phase\"4")
            .rendered_queries()
            .unwrap();
        assert_eq!(
            q.cohort.latency_buckets,
            "sum by (cohort, le) (increase(genesis_request_duration_seconds_bucket{rollout=\"phase\\\"4\",cohort=~\"in|out\"}[5m]))"
        );
        // A file's own `rollout` wins.
        let file = GateConfig::from_json(r#"{"variables": {"rollout": "mine"}}"#).unwrap();
        let q = file.for_rollout("other").rendered_queries().unwrap();
        assert_eq!(q.cohort.selector, "rollout=\"mine\"");
        let demo = GateConfig::from_json(r#"{"cohort": {"max_sample_wait": "0s"}}"#).unwrap();
        assert_eq!(demo.cohort.max_sample_wait, Some(Duration::ZERO));
        assert_eq!(GateConfig::default().cohort.max_sample_wait, None);
        let err = GateConfig::from_json(r#"{"cohort": {"margin": 2}}"#).unwrap_err();
        assert!(err.to_string().contains("cohort.margin"), "{err}");
        let err = GateConfig::from_json(r#"{"variables": {"window": "5 minutes"}}"#).unwrap_err();
        assert!(err.to_string().contains("variables.window"), "{err}");
    }

    #[test]
    fn variables_are_escaped_and_checked() {
        let vars = BTreeMap::from([("service".to_owned(), "a\"} or vector(1) #".to_owned())]);
        let q = render_template("t", "up{service=\"{{service}}\"}", &vars).unwrap();
        assert_eq!(q, r#"up{service="a\"} or vector(1) #"}"#);
        let err = render_template("queries.requests", "x{{nope}}", &vars)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("queries.requests") && err.contains("\"nope\""),
            "{err}"
        );
        assert!(render_template("t", "x{{service", &vars).is_err());
        assert!(render_template("t", "   ", &vars).is_err());
    }

    #[test]
    fn userinfo_is_split_and_redacted() {
        for (url, without, userinfo, shown) in [
            (
                "http://ops:hunter2@host:9090",
                "http://host:9090",
                Some("ops:hunter2"),
                "http://***@host:9090",
            ),
            (
                "https://a%40b:p@ss@h/x?y=@z#@",
                "https://h/x?y=@z#@",
                Some("a%40b:p@ss"),
                "https://***@h/x?y=@z#@",
            ),
            (
                "ops:hunter2@host:9090",
                "host:9090",
                Some("ops:hunter2"),
                "***@host:9090",
            ),
            (
                "http://host:9090/p@th",
                "http://host:9090/p@th",
                None,
                "http://host:9090/p@th",
            ),
            ("http://h", "http://h", None, "http://h"),
            ("", "", None, ""),
            ("ü@ü", "ü", Some("ü"), "***@ü"),
        ] {
            assert_eq!(split_userinfo(url), (without.to_owned(), userinfo), "{url}");
            assert_eq!(redact_url(url), shown, "{url}");
        }
        assert_eq!(percent_decode("a%40b%3A").as_deref(), Some("a@b:"));
        assert_eq!(percent_decode("%4"), None);
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(percent_decode("%ff"), None);
        let config = ServerConfig {
            url: "http://ops:hunter2@host:9090".into(),
            ..ServerConfig::default()
        };
        let shown = format!("{config:?}");
        assert!(
            !shown.contains("hunter2") && shown.contains("http://***@host:9090"),
            "{shown}"
        );
    }

    proptest::proptest! {
        #[test]
        fn redaction_never_shows_the_userinfo(
            user in "[a-z0-9%:]{1,12}",
            host in "[a-z0-9.:@/?#]{0,20}",
        ) {
            let secret = format!("{user}SECRET");
            let url = format!("http://{secret}@{host}");
            proptest::prop_assert!(!redact_url(&url).contains("SECRET"));
            proptest::prop_assert!(!split_userinfo(&url).0.contains("SECRET"));
        }
    }

    #[test]
    fn unknown_fields_are_refused_with_a_position() {
        let err = GateConfig::from_json("{\n \"prometheus\": {\"ur\": \"x\"}}").unwrap_err();
        assert!(matches!(&err, GateError::Syntax(e) if e.line == 2), "{err}");
        assert!(err.to_string().contains("unknown field `ur`"), "{err}");
    }
}
