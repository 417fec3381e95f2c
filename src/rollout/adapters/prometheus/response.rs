//! Parsing Prometheus HTTP API responses (`/api/v1/query`,
//! `/api/v1/query_range`): every result type, values as strings (`NaN`,
//! `+Inf`, `-Inf` included), `warnings` and `infos` kept, and every failure
//! classified. Pure: no I/O, so it is fuzzed on its own.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;

/// Prometheus's `errorType`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorType {
    /// The query or a parameter is invalid (HTTP 400), e.g. a PromQL syntax error.
    BadData,
    /// The query could not be executed (HTTP 422).
    Execution,
    /// The query timed out on the server.
    Timeout,
    /// The query was canceled.
    Canceled,
    /// An internal server error.
    Internal,
    /// The server is not ready (HTTP 503).
    Unavailable,
    /// Anything else, verbatim.
    Other(String),
}

impl ErrorType {
    fn parse(s: &str) -> ErrorType {
        match s {
            "bad_data" => ErrorType::BadData,
            "execution" => ErrorType::Execution,
            "timeout" => ErrorType::Timeout,
            "canceled" => ErrorType::Canceled,
            "internal" => ErrorType::Internal,
            "unavailable" => ErrorType::Unavailable,
            other => ErrorType::Other(other.to_owned()),
        }
    }
}

impl fmt::Display for ErrorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ErrorType::BadData => "bad_data",
            ErrorType::Execution => "execution",
            ErrorType::Timeout => "timeout",
            ErrorType::Canceled => "canceled",
            ErrorType::Internal => "internal",
            ErrorType::Unavailable => "unavailable",
            ErrorType::Other(s) => s,
        })
    }
}

/// Why a query gave no usable answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    /// Prometheus answered with `"status": "error"`.
    #[error("Prometheus rejected the query ({error_type}, HTTP {status}): {message}")]
    Api {
        /// The `errorType`.
        error_type: ErrorType,
        /// The `error` message.
        message: String,
        /// The HTTP status.
        status: u16,
    },
    /// An HTTP error status without a Prometheus error body (a proxy's HTML page, say).
    #[error("HTTP {status} without a Prometheus error body: {body}")]
    Http {
        /// The HTTP status.
        status: u16,
        /// The start of the body.
        body: String,
    },
    /// Not the API's JSON: malformed, truncated, or missing fields.
    #[error("malformed response (HTTP {status}): {message}")]
    Malformed {
        /// The HTTP status.
        status: u16,
        /// What is wrong.
        message: String,
    },
    /// A well-formed answer of the wrong shape for the query.
    #[error("unexpected result: expected {expected}, got {found}")]
    Shape {
        /// What the query needs.
        expected: &'static str,
        /// What came back.
        found: String,
    },
    /// The server could not be reached.
    #[error("cannot connect: {0}")]
    Connect(String),
    /// The server did not answer in time.
    #[error("timed out: {0}")]
    Timeout(String),
    /// The body exceeded the configured limit.
    #[error("response larger than the limit of {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// Any other transport failure.
    #[error("request failed: {0}")]
    Transport(String),
}

/// One sample of an instant vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The series' labels (`__name__` included when present).
    pub metric: BTreeMap<String, String>,
    /// Evaluation time, Unix seconds.
    pub at: f64,
    /// The value (`NaN` and infinities allowed).
    pub value: f64,
}

/// One series of a range vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The series' labels.
    pub metric: BTreeMap<String, String>,
    /// `(Unix seconds, value)` pairs.
    pub values: Vec<(f64, f64)>,
}

/// The `data.result` of a query.
#[derive(Debug, Clone, PartialEq)]
pub enum QueryResult {
    /// An instant vector.
    Vector(Vec<Sample>),
    /// A range vector.
    Matrix(Vec<Series>),
    /// A scalar at an instant.
    Scalar {
        /// Unix seconds.
        at: f64,
        /// The value.
        value: f64,
    },
    /// A string at an instant.
    String {
        /// Unix seconds.
        at: f64,
        /// The string.
        value: String,
    },
}

impl QueryResult {
    fn kind(&self) -> String {
        match self {
            QueryResult::Vector(v) => format!("a vector of {} series", v.len()),
            QueryResult::Matrix(m) => format!("a matrix of {} series", m.len()),
            QueryResult::Scalar { .. } => "a scalar".to_owned(),
            QueryResult::String { .. } => "a string".to_owned(),
        }
    }
}

/// A successful answer, with the server's warnings and infos.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryResponse {
    /// The result.
    pub result: QueryResult,
    /// `warnings`, kept for the explanation.
    pub warnings: Vec<String>,
    /// `infos` (Prometheus 3), kept likewise.
    pub infos: Vec<String>,
}

impl QueryResponse {
    /// The one value of a query that must yield at most one series: `None`
    /// for an empty vector, an error for several series or a matrix/string.
    ///
    /// # Errors
    ///
    /// `QueryError::Shape` for several series or a result that is not a vector
    /// or scalar.
    pub fn single_value(&self) -> Result<Option<f64>, QueryError> {
        match &self.result {
            QueryResult::Vector(v) if v.is_empty() => Ok(None),
            QueryResult::Vector(v) if v.len() == 1 => Ok(v.first().map(|s| s.value)),
            QueryResult::Scalar { value, .. } => Ok(Some(*value)),
            other => Err(QueryError::Shape {
                expected: "a single series or a scalar",
                found: other.kind(),
            }),
        }
    }

    /// The samples of an instant vector (an error for other result types).
    ///
    /// # Errors
    ///
    /// `QueryError::Shape` for a result that is not an instant vector.
    pub fn vector(&self) -> Result<&[Sample], QueryError> {
        match &self.result {
            QueryResult::Vector(v) => Ok(v),
            other => Err(QueryError::Shape {
                expected: "an instant vector",
                found: other.kind(),
            }),
        }
    }
}

#[derive(Deserialize)]
struct Envelope {
    status: String,
    data: Option<Data>,
    #[serde(rename = "errorType")]
    error_type: Option<String>,
    error: Option<String>,
    #[serde(default)]
    warnings: Vec<String>,
    #[serde(default)]
    infos: Vec<String>,
}

#[derive(Deserialize)]
struct Data {
    #[serde(rename = "resultType")]
    result_type: String,
    result: serde_json::Value,
}

#[derive(Deserialize)]
struct RawSample {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    value: (f64, String),
}

#[derive(Deserialize)]
struct RawSeries {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    values: Vec<(f64, String)>,
}

/// A sample value as Prometheus writes it: a decimal, `NaN`, `+Inf`, `-Inf`.
pub fn parse_value(text: &str) -> Option<f64> {
    match text {
        "NaN" => Some(f64::NAN),
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        other => other.parse().ok().filter(|v: &f64| v.is_finite()),
    }
}

/// The first `n` characters of a body, for messages.
fn snippet(body: &[u8], n: usize) -> String {
    let text = String::from_utf8_lossy(body);
    let trimmed: String = text.chars().take(n).collect();
    let one_line = trimmed.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.chars().count() > n {
        format!("{one_line}...")
    } else {
        one_line
    }
}

/// Classifies and parses an API response.
///
/// ```
/// use genesis_flags::rollout::prometheus::{parse_response, QueryError, ErrorType};
/// let ok = br#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700000000,"0.25"]}]}}"#;
/// assert_eq!(parse_response(200, ok)?.single_value()?, Some(0.25));
///
/// let bad = br#"{"status":"error","errorType":"bad_data","error":"1:5: parse error"}"#;
/// assert!(matches!(parse_response(400, bad), Err(QueryError::Api { error_type: ErrorType::BadData, .. })));
/// # Ok::<(), QueryError>(())
/// ```
// Hidden: public only so the fuzz targets (`tests/support/fuzz_checks.rs`,
// `fuzz/`) can reach it; users get responses from `PrometheusClient`.
#[doc(hidden)]
pub fn parse_response(status: u16, body: &[u8]) -> Result<QueryResponse, QueryError> {
    let envelope: Envelope = match serde_json::from_slice(body) {
        Ok(e) => e,
        Err(e) if !(200..300).contains(&status) => {
            let _ = e;
            return Err(QueryError::Http {
                status,
                body: snippet(body, 160),
            });
        }
        Err(e) => {
            return Err(QueryError::Malformed {
                status,
                message: e.to_string(),
            })
        }
    };
    let malformed = |message: String| QueryError::Malformed { status, message };
    match envelope.status.as_str() {
        "error" => Err(QueryError::Api {
            error_type: ErrorType::parse(envelope.error_type.as_deref().unwrap_or("")),
            message: envelope.error.unwrap_or_default(),
            status,
        }),
        "success" => {
            let data = envelope
                .data
                .ok_or_else(|| malformed("`data` is missing".to_owned()))?;
            let value = |text: &str| {
                parse_value(text)
                    .ok_or_else(|| malformed(format!("sample value {text:?} is not a number")))
            };
            let result = match data.result_type.as_str() {
                "vector" => {
                    let raw: Vec<RawSample> = serde_json::from_value(data.result)
                        .map_err(|e| malformed(format!("vector: {e}")))?;
                    let samples = raw
                        .into_iter()
                        .map(|s| {
                            Ok(Sample {
                                metric: s.metric,
                                at: s.value.0,
                                value: value(&s.value.1)?,
                            })
                        })
                        .collect::<Result<_, QueryError>>()?;
                    QueryResult::Vector(samples)
                }
                "matrix" => {
                    let raw: Vec<RawSeries> = serde_json::from_value(data.result)
                        .map_err(|e| malformed(format!("matrix: {e}")))?;
                    let series = raw
                        .into_iter()
                        .map(|s| {
                            let values = s
                                .values
                                .iter()
                                .map(|(at, v)| Ok((*at, value(v)?)))
                                .collect::<Result<_, QueryError>>()?;
                            Ok(Series {
                                metric: s.metric,
                                values,
                            })
                        })
                        .collect::<Result<_, QueryError>>()?;
                    QueryResult::Matrix(series)
                }
                "scalar" => {
                    let (at, v): (f64, String) = serde_json::from_value(data.result)
                        .map_err(|e| malformed(format!("scalar: {e}")))?;
                    QueryResult::Scalar {
                        at,
                        value: value(&v)?,
                    }
                }
                "string" => {
                    let (at, v): (f64, String) = serde_json::from_value(data.result)
                        .map_err(|e| malformed(format!("string: {e}")))?;
                    QueryResult::String { at, value: v }
                }
                other => return Err(malformed(format!("unknown resultType {other:?}"))),
            };
            Ok(QueryResponse {
                result,
                warnings: envelope.warnings,
                infos: envelope.infos,
            })
        }
        other => Err(malformed(format!("unknown status {other:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_as_prometheus_writes_them() {
        assert!(parse_value("NaN").unwrap().is_nan());
        assert_eq!(parse_value("+Inf"), Some(f64::INFINITY));
        assert_eq!(parse_value("-Inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_value("99.99999999999999"), Some(99.99999999999999));
        assert_eq!(parse_value("1e-3"), Some(0.001));
        assert_eq!(parse_value("abc"), None);
        assert_eq!(parse_value(""), None);
    }

    #[test]
    fn every_result_type_parses() {
        let matrix = br#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"job":"a"},"values":[[1,"1"],[2,"NaN"]]}]}}"#;
        let r = parse_response(200, matrix).unwrap();
        let QueryResult::Matrix(m) = &r.result else {
            panic!("{r:?}")
        };
        assert_eq!(m[0].values.len(), 2);
        assert!(r.single_value().is_err());

        let scalar =
            br#"{"status":"success","data":{"resultType":"scalar","result":[1.5,"-Inf"]}}"#;
        assert_eq!(
            parse_response(200, scalar).unwrap().single_value().unwrap(),
            Some(f64::NEG_INFINITY)
        );

        let string =
            br#"{"status":"success","data":{"resultType":"string","result":[1.5,"hello"]}}"#;
        assert!(matches!(
            parse_response(200, string).unwrap().result,
            QueryResult::String { .. }
        ));

        let warned = br#"{"status":"success","data":{"resultType":"vector","result":[]},"warnings":["w1"],"infos":["i1"]}"#;
        let r = parse_response(200, warned).unwrap();
        assert_eq!(
            (r.warnings.as_slice(), r.infos.as_slice()),
            (&["w1".to_owned()][..], &["i1".to_owned()][..])
        );
        assert_eq!(r.single_value().unwrap(), None);
    }

    #[test]
    fn failures_are_classified() {
        for (status, body, want) in [
            (
                422,
                &br#"{"status":"error","errorType":"execution","error":"many-to-many"}"#[..],
                "execution",
            ),
            (
                503,
                br#"{"status":"error","errorType":"unavailable","error":"not ready"}"#,
                "unavailable",
            ),
            (
                200,
                br#"{"status":"error","errorType":"timeout","error":"query timed out"}"#,
                "timeout",
            ),
        ] {
            let err = parse_response(status, body).unwrap_err();
            assert!(err.to_string().contains(want), "{err}");
        }
        let html = parse_response(502, b"<html><body>Bad Gateway</body></html>").unwrap_err();
        assert!(
            matches!(html, QueryError::Http { status: 502, .. }),
            "{html}"
        );
        assert!(html.to_string().contains("Bad Gateway"));
        let truncated =
            parse_response(200, br#"{"status":"success","data":{"resultType":"vec"#).unwrap_err();
        assert!(
            matches!(truncated, QueryError::Malformed { .. }),
            "{truncated}"
        );
        let bad_value = parse_response(200, br#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"x"]}]}}"#).unwrap_err();
        assert!(bad_value.to_string().contains("\"x\""), "{bad_value}");
        let two = br#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"a":"1"},"value":[1,"1"]},{"metric":{"a":"2"},"value":[1,"2"]}]}}"#;
        let err = parse_response(200, two)
            .unwrap()
            .single_value()
            .unwrap_err();
        assert!(err.to_string().contains("a vector of 2 series"), "{err}");
    }
}
