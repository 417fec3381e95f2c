//! [`JsonError`]: where a JSON document stops being readable, and what the
//! parser said; the one positioned error of every JSON file the crate reads
//! (flag configs, flagd documents, plans, gate and notification files,
//! scenarios, rollout state files).

use std::fmt;

/// Where a JSON document stops being readable (1-based line and column;
/// 0 when the parser could not place the problem), and what the parser
/// said, without the position it appends.
///
/// ```
/// let e = genesis_flags::Snapshot::from_json("{\n  \"flags\": [}").unwrap_err();
/// assert_eq!(e.line_column(), Some((2, 13)));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct JsonError {
    /// 1-based line (0 when unknown).
    pub line: usize,
    /// 1-based column (0 when unknown).
    pub column: usize,
    /// What is wrong, without the position.
    pub message: String,
}

impl JsonError {
    /// A problem at a position.
    #[must_use]
    pub fn new(line: usize, column: usize, message: impl Into<String>) -> Self {
        JsonError {
            line,
            column,
            message: message.into(),
        }
    }

    /// What serde_json said, its position taken out of the message.
    pub(crate) fn from_serde(e: &serde_json::Error) -> Self {
        JsonError::new(e.line(), e.column(), strip_position(e))
    }

    /// Bytes that are not UTF-8: the position of the first invalid byte.
    pub(crate) fn invalid_utf8(bytes: &[u8], valid_up_to: usize) -> Self {
        let valid = &bytes[..valid_up_to.min(bytes.len())];
        let (line, column) = position(valid);
        JsonError::new(line, column, "invalid UTF-8")
    }

    /// A problem with the value of `"key"` in `text`, placed at the key (or
    /// unplaced when the key is not found).
    #[cfg_attr(not(feature = "rollout"), allow(dead_code))]
    pub(crate) fn at_key(text: &str, key: &str, message: impl Into<String>) -> Self {
        let needle = format!("\"{key}\"");
        let (line, column) = text
            .find(&needle)
            .map_or((0, 0), |at| position(&text.as_bytes()[..at]));
        JsonError::new(line, column, message)
    }

    /// The same position with another message (e.g. redacted).
    #[must_use]
    #[cfg_attr(not(feature = "rollout"), allow(dead_code))]
    pub(crate) fn with_message(mut self, message: String) -> Self {
        self.message = message;
        self
    }
}

/// The 1-based line and column just after `before`.
fn position(before: &[u8]) -> (usize, usize) {
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let column = before.len()
        - before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1)
        + 1;
    (line, column)
}

/// serde_json's message without the " at line L column C" it appends.
pub(crate) fn strip_position(e: &serde_json::Error) -> String {
    let full = e.to_string();
    match full.rfind(" at line ") {
        Some(i) => full[..i].to_owned(),
        None => full,
    }
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if self.line > 0 {
            write!(f, " at line {} column {}", self.line, self.column)?;
        }
        Ok(())
    }
}

impl std::error::Error for JsonError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_and_unknown_ones_are_not_printed() {
        let e = serde_json::from_str::<serde_json::Value>("{\n  \"a\": }").unwrap_err();
        let j = JsonError::from_serde(&e);
        assert_eq!((j.line, j.column), (2, 8));
        assert_eq!(j.to_string(), format!("{} at line 2 column 8", j.message));
        assert!(!j.message.contains(" at line "));
        assert_eq!(JsonError::new(0, 0, "lost").to_string(), "lost");
        let bad = b"{\n  \"a\": \"\xff\"}";
        let u = JsonError::invalid_utf8(bad, 10);
        assert_eq!((u.line, u.column), (2, 9));
        let k = JsonError::at_key("{\n  \"x\": 1,\n  \"journal\": 2}", "journal", "no");
        assert_eq!((k.line, k.column), (3, 3));
        assert_eq!(JsonError::at_key("{}", "journal", "no").line, 0);
    }
}
