//! [`PrometheusClient`]: a thin, blocking client of the Prometheus HTTP API
//! on `ureq`, with timeouts, optional bearer or basic auth, optional custom
//! CA for `https`, and a bounded response size.

use std::fmt;
use std::io::ErrorKind;
use std::time::Duration;

use base64::Engine as _;

use super::config::{percent_decode, redact_url, split_userinfo, GateError, ServerConfig};
use super::response::{parse_response, QueryError, QueryResponse};
use crate::rollout::foundation::clock::Timestamp;

/// A credential: never printed, never in `Debug` output.
#[derive(Clone)]
struct Secret(String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// A client of one Prometheus server. Credentials in the configured URL
/// are sent as basic auth and never shown: [`url`](Self::url) and every
/// message give the URL without them.
#[derive(Clone)]
pub struct PrometheusClient {
    base: String,
    agent: ureq::Agent,
    /// The full `Authorization` header value, if any.
    authorization: Option<Secret>,
    max_body: u64,
}

impl fmt::Debug for PrometheusClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrometheusClient")
            .field("url", &self.base)
            .field("authorization", &self.authorization)
            .field("max_body", &self.max_body)
            .finish()
    }
}

fn read_secret(
    env: Option<&str>,
    file: Option<&std::path::Path>,
    what: &str,
) -> Result<Option<Secret>, GateError> {
    if let Some(var) = env {
        return match std::env::var(var) {
            Ok(v) if !v.trim().is_empty() => Ok(Some(Secret(v.trim().to_owned()))),
            _ => Err(GateError::Credentials(format!(
                "{what}: environment variable {var} is not set or empty"
            ))),
        };
    }
    if let Some(path) = file {
        return match crate::rollout::foundation::read::read_text(path) {
            Ok(v) if !v.trim().is_empty() => Ok(Some(Secret(v.trim().to_owned()))),
            Ok(_) => Err(GateError::Credentials(format!(
                "{what}: {} is empty",
                path.display()
            ))),
            Err(e) => Err(GateError::Credentials(format!(
                "{what}: cannot read {}: {e}",
                path.display()
            ))),
        };
    }
    Ok(None)
}

impl PrometheusClient {
    /// A client for `config`: reads the credentials and the CA file now, so
    /// a bad setup fails here rather than on the first tick.
    ///
    /// # Errors
    ///
    /// `GateError::Url` for an unusable URL; `Credentials` when a credential
    /// cannot be read; `Tls` when the CA file cannot be used.
    pub fn new(config: &ServerConfig) -> Result<Self, GateError> {
        let (base, userinfo) = split_userinfo(config.url.trim_end_matches('/'));
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(GateError::Url {
                url: redact_url(&config.url),
                message: "must start with http:// or https://".to_owned(),
            });
        }
        let url_basic = match userinfo {
            Some(userinfo) => {
                let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
                let decoded = percent_decode(user).zip(percent_decode(password));
                let Some((user, password)) = decoded else {
                    return Err(GateError::Url {
                        url: redact_url(&config.url),
                        message: "the credentials are not valid percent-encoded UTF-8".to_owned(),
                    });
                };
                let token =
                    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
                Some(Secret(format!("Basic {token}")))
            }
            None => None,
        };
        let bearer = read_secret(
            config.bearer_token_env.as_deref(),
            config.bearer_token_file.as_deref(),
            "bearer token",
        )?;
        let basic = match &config.basic_auth {
            Some(b) => {
                let password = read_secret(
                    b.password_env.as_deref(),
                    b.password_file.as_deref(),
                    "basic auth password",
                )?
                .ok_or_else(|| {
                    GateError::Credentials(
                        "basic_auth needs password_env or password_file".to_owned(),
                    )
                })?;
                let token = base64::engine::general_purpose::STANDARD
                    .encode(format!("{}:{}", b.username, password.0));
                Some(Secret(format!("Basic {token}")))
            }
            None => None,
        };
        if bearer.is_some() && basic.is_some() {
            return Err(GateError::Credentials(
                "configure a bearer token or basic auth, not both".to_owned(),
            ));
        }
        if url_basic.is_some() && (bearer.is_some() || basic.is_some()) {
            return Err(GateError::Credentials(format!(
                "prometheus.url {} carries credentials: remove them, or drop basic_auth and the bearer token",
                redact_url(&config.url)
            )));
        }
        let authorization = bearer
            .map(|t| Secret(format!("Bearer {}", t.0)))
            .or(basic)
            .or(url_basic);

        let mut tls = ureq::tls::TlsConfig::builder();
        if let Some(ca) = &config.ca_file {
            let pem = crate::rollout::foundation::read::read_regular(
                ca,
                crate::rollout::foundation::read::Follow::Symlinks,
                crate::rollout::foundation::read::MAX_FILE_BYTES,
            )
            .map_err(|e| GateError::Tls(format!("cannot read CA file {}: {e}", ca.display())))?;
            let mut certs = Vec::new();
            for item in ureq::tls::parse_pem(&pem) {
                match item {
                    Ok(ureq::tls::PemItem::Certificate(c)) => certs.push(c),
                    Ok(_) => {}
                    Err(e) => return Err(GateError::Tls(format!("CA file {}: {e}", ca.display()))),
                }
            }
            if certs.is_empty() {
                return Err(GateError::Tls(format!(
                    "CA file {} holds no certificate",
                    ca.display()
                )));
            }
            tls = tls.root_certs(ureq::tls::RootCerts::new_with_certs(&certs));
        }
        let agent_config = ureq::Agent::config_builder()
            .timeout_connect(Some(config.connect_timeout))
            .timeout_recv_response(Some(config.read_timeout))
            .timeout_recv_body(Some(config.read_timeout))
            .timeout_global(Some(config.connect_timeout + config.read_timeout))
            .http_status_as_error(false)
            .tls_config(tls.build())
            .user_agent(concat!("genesis-flags/", env!("CARGO_PKG_VERSION")))
            .build();
        Ok(PrometheusClient {
            base,
            agent: ureq::Agent::new_with_config(agent_config),
            authorization,
            max_body: config.max_response_bytes,
        })
    }

    /// The server's base URL, without any credentials it was configured with.
    #[must_use]
    pub fn url(&self) -> &str {
        &self.base
    }

    /// Evaluates `promql` at the instant `at` (`/api/v1/query`).
    ///
    /// # Errors
    ///
    /// `QueryError`: `Connect`, `Timeout` or `Transport` when the server cannot
    /// be reached in time; `Http`/`Api` when it refuses the query; `TooLarge`
    /// past the body limit; `Malformed` for a body that is not Prometheus JSON.
    pub fn query(&self, promql: &str, at: Timestamp) -> Result<QueryResponse, QueryError> {
        self.get(
            "/api/v1/query",
            &[("query", promql.to_owned()), ("time", unix_seconds(at))],
        )
    }

    /// Evaluates `promql` over `[start, end]` every `step` (`/api/v1/query_range`).
    ///
    /// # Errors
    ///
    /// As [`query`](Self::query).
    pub fn query_range(
        &self,
        promql: &str,
        start: Timestamp,
        end: Timestamp,
        step: Duration,
    ) -> Result<QueryResponse, QueryError> {
        self.get(
            "/api/v1/query_range",
            &[
                ("query", promql.to_owned()),
                ("start", unix_seconds(start)),
                ("end", unix_seconds(end)),
                ("step", format!("{}", step.as_secs_f64())),
            ],
        )
    }

    fn get(&self, path: &str, params: &[(&str, String)]) -> Result<QueryResponse, QueryError> {
        let mut request = self.agent.get(format!("{}{path}", self.base));
        for (k, v) in params {
            request = request.query(k, v);
        }
        if let Some(auth) = &self.authorization {
            request = request.header("Authorization", &auth.0);
        }
        let mut response = request.call().map_err(|e| classify(e, self.max_body))?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(self.max_body)
            .read_to_vec()
            .map_err(|e| classify(e, self.max_body))?;
        parse_response(status, &body)
    }
}

fn unix_seconds(t: Timestamp) -> String {
    let ms = t.unix_millis();
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

fn classify(e: ureq::Error, limit: u64) -> QueryError {
    match e {
        ureq::Error::Timeout(t) => QueryError::Timeout(format!("no answer within the {t} timeout")),
        ureq::Error::BodyExceedsLimit(_) => QueryError::TooLarge { limit },
        ureq::Error::ConnectionFailed | ureq::Error::HostNotFound => QueryError::Connect(e.to_string()),
        ureq::Error::Io(io) => match io.kind() {
            ErrorKind::ConnectionRefused | ErrorKind::ConnectionReset | ErrorKind::NotFound | ErrorKind::AddrNotAvailable => {
                QueryError::Connect(io.to_string())
            }
            ErrorKind::TimedOut | ErrorKind::WouldBlock => QueryError::Timeout(io.to_string()),
            ErrorKind::UnexpectedEof => {
                QueryError::Transport("truncated response: the server closed the connection before the whole answer arrived".to_owned())
            }
            _ => QueryError::Transport(io.to_string()),
        },
        other => QueryError::Transport(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_show_in_debug() {
        let config = ServerConfig {
            bearer_token_env: Some("GENESIS_FLAGS_TEST_TOKEN_DEBUG".into()),
            ..ServerConfig::default()
        };
        std::env::set_var("GENESIS_FLAGS_TEST_TOKEN_DEBUG", "s3cr3t-token");
        let client = PrometheusClient::new(&config).unwrap();
        let shown = format!("{client:?}");
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert!(shown.contains("***"), "{shown}");
    }

    #[test]
    fn url_credentials_become_basic_auth_and_are_never_shown() {
        let config = ServerConfig {
            url: "http://ops:hunt%65r2@127.0.0.1:9090/".into(),
            ..ServerConfig::default()
        };
        let client = PrometheusClient::new(&config).unwrap();
        assert_eq!(client.url(), "http://127.0.0.1:9090");
        let Some(Secret(auth)) = &client.authorization else {
            panic!("no authorization")
        };
        // base64("ops:hunter2")
        assert_eq!(auth, "Basic b3BzOmh1bnRlcjI=");
        let shown = format!("{client:?}");
        assert!(!shown.contains("hunt"), "{shown}");

        std::env::set_var("GENESIS_FLAGS_TEST_TOKEN_URL", "tok");
        let both = ServerConfig {
            url: "http://ops:hunter2@127.0.0.1:9090".into(),
            bearer_token_env: Some("GENESIS_FLAGS_TEST_TOKEN_URL".into()),
            ..ServerConfig::default()
        };
        let err = PrometheusClient::new(&both).unwrap_err().to_string();
        assert!(
            err.contains("http://***@127.0.0.1:9090") && !err.contains("hunter2"),
            "{err}"
        );
        for url in ["ftp://ops:hunter2@host", "http://ops:hunter2%zz@host"] {
            let bad = ServerConfig {
                url: url.into(),
                ..ServerConfig::default()
            };
            let err = PrometheusClient::new(&bad).unwrap_err();
            let shown = format!("{err} {err:?}");
            assert!(
                !shown.contains("hunter2") && shown.contains("***@host"),
                "{shown}"
            );
        }
    }

    #[test]
    fn bad_setups_fail_early_and_say_why() {
        let missing = ServerConfig {
            bearer_token_env: Some("GENESIS_FLAGS_SURELY_UNSET_VAR".into()),
            ..ServerConfig::default()
        };
        let err = PrometheusClient::new(&missing).unwrap_err().to_string();
        assert!(err.contains("GENESIS_FLAGS_SURELY_UNSET_VAR"), "{err}");
        let url = ServerConfig {
            url: "127.0.0.1:9090".into(),
            ..ServerConfig::default()
        };
        assert!(PrometheusClient::new(&url)
            .unwrap_err()
            .to_string()
            .contains("http://"));
        let ca = ServerConfig {
            ca_file: Some("/nonexistent/ca.pem".into()),
            ..ServerConfig::default()
        };
        assert!(PrometheusClient::new(&ca)
            .unwrap_err()
            .to_string()
            .contains("CA file"));
    }

    #[test]
    fn times_are_unix_seconds_with_millis() {
        assert_eq!(
            unix_seconds(Timestamp::from_unix_millis(1_700_000_000_250)),
            "1700000000.250"
        );
    }
}
