//! [`ReloadError`]: why a check of a flags source changed nothing.

use crate::FileError;
use std::io;

use crate::config::ConfigError;

/// Why a [`Reloader`](crate::Reloader) check installed nothing, or why an
/// HTTP reloader could not start. The store keeps its snapshot in every case.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReloadError {
    /// A file (the flags file, or the on-disk cache) was unreadable or
    /// refused (not UTF-8, not JSON, invalid): the error names the file and
    /// says where.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The document downloaded from `url` was refused (not UTF-8, not JSON,
    /// invalid): the error says where.
    #[error("the flag config at {url} is refused: {source}")]
    Refused {
        /// The URL, credentials and query string hidden.
        url: String,
        /// What is wrong with the document.
        #[source]
        source: ConfigError,
    },
    /// The request failed: no connection, a timeout, or a body cut short.
    #[error("cannot fetch the flag config from {url}: {message}")]
    Fetch {
        /// The URL, credentials and query string hidden.
        url: String,
        /// What the client said.
        message: String,
    },
    /// The server answered with a status other than 200 or 304.
    #[error("the flag config at {url} answered HTTP {status}")]
    Status {
        /// The URL, credentials and query string hidden.
        url: String,
        /// The HTTP status.
        status: u16,
    },
    /// The body is larger than the reloader's size limit.
    #[error("the flag config at {url} is over the limit of {limit} bytes")]
    TooLarge {
        /// The URL, credentials and query string hidden.
        url: String,
        /// The limit in bytes.
        limit: u64,
    },
    /// The URL is not an `http://` or `https://` URL.
    #[error("invalid flags URL {url}: {message}")]
    Url {
        /// The URL as given, credentials and query string hidden.
        url: String,
        /// What is wrong with it.
        message: String,
    },
    /// The on-disk cache could not be written.
    #[error(transparent)]
    CacheWrite(FileError),
    /// The polling thread could not be started.
    #[error("cannot start the flags reload thread: {0}")]
    Spawn(#[source] io::Error),
}
