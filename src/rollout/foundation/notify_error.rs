//! [`NotifyError`]: why a notification file is unusable or a delivery
//! failed, with where.

use crate::FileError;
use crate::JsonError;
use std::path::PathBuf;

/// Why a `--notify` file cannot be used, or the outbox cannot be read or
/// written. Never carries a secret's value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NotifyError {
    /// A file could not be read or written.
    #[error(transparent)]
    Io(FileError),
    /// The notification file is not valid JSON or has fields it should not.
    #[error("{}:{}:{}: {}", path.display(), error.line, error.column, error.message)]
    Parse {
        /// The file.
        path: PathBuf,
        /// Where, and what serde said (secrets redacted).
        error: JsonError,
    },
    /// A field is missing or out of bounds.
    #[error("{field}: {message}")]
    Invalid {
        /// The JSON path, e.g. `webhooks[0].url`.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// A secret could not be read from its environment variable or file.
    /// The message names the variable or file, never a value.
    #[error("{field}: {message}")]
    Secret {
        /// The JSON path of the secret, e.g. `slack.webhook_url_env`.
        field: String,
        /// What is missing.
        message: String,
    },
    /// A line of the outbox is not an event.
    #[error("{}:{line}: not a notification event: {message}", path.display())]
    Corrupt {
        /// The outbox file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What serde said.
        message: String,
    },
}

/// Why one delivery attempt failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DeliveryError {
    /// The receiver answered with a status that is worth retrying (5xx,
    /// 408, 429).
    #[error("HTTP {status} from {target}")]
    Status {
        /// The status code.
        status: u16,
        /// Where (scheme and host only).
        target: String,
    },
    /// The receiver refused the event for good (another 4xx): retrying
    /// cannot help, so it is given up at once.
    #[error("HTTP {status} from {target}, refused for good: {body}")]
    Rejected {
        /// The status code.
        status: u16,
        /// Where (scheme and host only).
        target: String,
        /// The start of the answer's body.
        body: String,
    },
    /// No answer: connection refused, a timeout, a TLS or SMTP failure.
    #[error("{target}: {message}")]
    Transport {
        /// Where (scheme and host only).
        target: String,
        /// What failed.
        message: String,
    },
    /// The event cannot be rendered for this channel.
    #[error("cannot render the event: {0}")]
    Render(String),
}

impl DeliveryError {
    /// Whether retrying may help.
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        !matches!(
            self,
            DeliveryError::Rejected { .. } | DeliveryError::Render(_)
        )
    }
}
