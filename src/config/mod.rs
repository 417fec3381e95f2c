//! The flag config format (JSON): parse, validate every rule, report every
//! problem with its JSON path.
//!
//! ```json
//! {
//!   "version": 1,
//!   "rollouts": { "phase_4_deployment": { "percentage": 5 } },
//!   "flags": {
//!     "htdag_enabled":       { "class": "critical", "rollout": "phase_4_deployment" },
//!     "aatc_system_enabled": { "class": "experimental", "enabled": false },
//!     "maintenance_banner":  { "enabled": true },
//!     "new_checkout":        { "percentage": 12.5, "include": ["qa-1"], "exclude": ["vip-7"] }
//!   }
//! }
//! ```
//!
//! Flags may also declare `variants`, `default`, `off`, `rules`,
//! `prerequisites`, `bucket_by`, `seed` and `track`, and the document
//! `segments` (see the crate docs and docs/targeting.md in the repository).
//!
//! Rejected, each with the path where it occurs: unknown fields, duplicate
//! keys, flag keys that are empty, over 128 bytes or have characters other
//! than letters, digits, `_`, `.` and `-` (any script; never whitespace or
//! control characters), rollout ids outside `[a-z0-9_.-]{1,128}`, unknown
//! rollouts, a flag with both `rollout` and `percentage`, a rollout that binds
//! critical and experimental flags together, percentages that are not numbers
//! in `[0, 100]` with at most four decimals, a `version` other than 1,
//! documents over [`MAX_CONFIG_BYTES`], and in targeting: unknown operators,
//! values of the wrong type, regexes that do not compile or exceed
//! [`MAX_REGEX_BYTES`], variants of mixed types, unknown variants, splits that
//! do not sum to 100, unknown or circular segments and prerequisites.

mod conditions;
mod error;
mod json_error;
mod node;
mod path;
mod problems;
mod targeting;
mod validate;

use crate::FileError;
use std::fs::File;
use std::io::Read;
use std::path::Path;

pub use conditions::{MAX_REGEX_BYTES, OPERATORS};
pub use error::{ConfigError, Problem, ProblemKind};
#[cfg(feature = "rollout")]
pub(crate) use json_error::strip_position;
pub use json_error::JsonError;
pub(crate) use validate::{Binding, ValidConfig};

/// The largest config document accepted: 16 MiB.
pub const MAX_CONFIG_BYTES: usize = 16 * 1024 * 1024;

/// The operations a flagd targeting rule may use (feature `flagd`).
pub const FLAGD_OPERATIONS: &str = "if, ==, !=, ===, !==, <, <=, >, >=, !, !!, and, or, in, var, \
cat, substr, merge, missing, missing_some, +, -, *, /, %, min, max, fractional, sem_ver, \
starts_with, ends_with";

/// At most this many problems are listed in a [`ConfigError::Invalid`]; the
/// rest are counted.
pub const MAX_REPORTED_PROBLEMS: usize = 1000;

/// Parses and validates a document.
pub(crate) fn parse(text: &str) -> Result<ValidConfig, ConfigError> {
    if text.len() > MAX_CONFIG_BYTES {
        return Err(ConfigError::TooLarge {
            size: text.len() as u64,
            limit: MAX_CONFIG_BYTES as u64,
        });
    }
    let root: node::Node =
        serde_json::from_str(text).map_err(|e| ConfigError::Syntax(JsonError::from_serde(&e)))?;
    validate::validate(&root)
        .map_err(|(problems, omitted)| ConfigError::Invalid { problems, omitted })
}

/// Reads a config file, refusing files over [`MAX_CONFIG_BYTES`] without
/// reading them whole.
pub(crate) fn read_file(path: &Path) -> Result<String, ConfigError> {
    let io = |source| {
        ConfigError::Io(FileError::new(
            "cannot read flag config",
            path.to_path_buf(),
            source,
        ))
    };
    let file = File::open(path).map_err(io)?;
    let mut bytes = Vec::new();
    file.take(MAX_CONFIG_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() > MAX_CONFIG_BYTES {
        let size = std::fs::metadata(path).map_or(bytes.len() as u64, |m| m.len());
        return Err(ConfigError::TooLarge {
            size,
            limit: MAX_CONFIG_BYTES as u64,
        }
        .in_file(path.to_path_buf()));
    }
    String::from_utf8(bytes).map_err(|e| {
        let valid_up_to = e.utf8_error().valid_up_to();
        ConfigError::Syntax(JsonError::invalid_utf8(e.as_bytes(), valid_up_to))
            .in_file(path.to_path_buf())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax_errors_carry_line_and_column() {
        let err = parse("{\n  \"version\": 1,\n  \"flags\": {,}\n}").unwrap_err();
        assert_eq!(err.line_column(), Some((3, 13)));
        assert!(err.to_string().contains("line 3 column 13"), "{err}");
    }

    #[test]
    fn oversized_documents_are_refused_before_parsing() {
        let text = " ".repeat(MAX_CONFIG_BYTES + 1);
        assert!(matches!(parse(&text), Err(ConfigError::TooLarge { .. })));
    }
}
