//! [`FlagsFile`]: sets one rollout's percentage in a flags config file in
//! place. Only the bytes of that number change (key order, spacing, tabs,
//! CRLF line ends and a byte-order mark all survive); the file keeps its mode
//! and owner; a symlink stays a symlink and the file it points to is the one
//! rewritten, atomically.

use crate::FileError;
use std::fs;
use std::path::{Path, PathBuf};

use crate::config::{self, ConfigError};
use crate::rollout::foundation::atomic::StagedFile;
use crate::rollout::foundation::state_error::StateError;
use crate::{Percentage, Snapshot};

const BOM: char = '\u{feff}';

/// A flags file as the operator named it: absolute, symlinks *not* resolved,
/// so a later swap of the link is followed.
///
/// ```
/// use genesis_flags::{rollout::files::FlagsFile, Percentage};
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("flags.json");
/// std::fs::write(&path, "{\"version\": 1,\n \"rollouts\": {\"r\": {\"percentage\": 5}}}\n")?;
/// let file = FlagsFile::new(&path);
/// assert!(file.write("r", Percentage::from_percent(12.5)?)?);
/// assert_eq!(
///     std::fs::read_to_string(&path)?,
///     "{\"version\": 1,\n \"rollouts\": {\"r\": {\"percentage\": 12.5}}}\n"
/// );
/// assert_eq!(file.percentage("r")?.ppm(), 125_000);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FlagsFile {
    path: PathBuf,
}

/// Why a flags file could not be read or edited. The file is unchanged.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FlagsFileError {
    /// Resolving, inspecting or reading the file failed.
    #[error(transparent)]
    Io(FileError),
    /// The file is not a valid flag config.
    #[error("{} is not a valid flag config: {source}", describe(path))]
    Invalid {
        /// The file (empty for [`set_rollout_percentage`]).
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        source: ConfigError,
    },
    /// The config has no such rollout.
    #[error(
        "{} has no rollout `{rollout}` (its rollouts: {})",
        describe(path),
        list(known)
    )]
    NoRollout {
        /// The file (empty for [`set_rollout_percentage`]).
        path: PathBuf,
        /// The rollout asked for.
        rollout: String,
        /// The rollouts it has, in config order.
        known: Vec<String>,
    },
    /// The edited config would not be valid.
    #[error("setting rollouts.{rollout}.percentage would make {} invalid, so it was not changed: {source}", describe(path))]
    EditInvalid {
        /// The file (empty for [`set_rollout_percentage`]).
        path: PathBuf,
        /// The rollout.
        rollout: String,
        /// What would be wrong.
        #[source]
        source: ConfigError,
    },
    /// The number could not be located or the edit did not give the
    /// percentage asked for.
    #[error(
        "cannot set rollouts.{rollout}.percentage in {}: {message}; it was not changed",
        describe(path)
    )]
    Edit {
        /// The file (empty for [`set_rollout_percentage`]).
        path: PathBuf,
        /// The rollout.
        rollout: String,
        /// What went wrong.
        message: String,
    },
    /// Staging or committing the new content failed.
    #[error("cannot write {}: {source}", describe(path))]
    Write {
        /// The file as named.
        path: PathBuf,
        /// The atomic write's error (it names the folder or file involved).
        #[source]
        source: StateError,
    },
}

fn describe(path: &Path) -> String {
    if path.as_os_str().is_empty() {
        "the flag config".to_owned()
    } else {
        format!("flags file {}", path.display())
    }
}

fn list(known: &[String]) -> String {
    if known.is_empty() {
        "none".to_owned()
    } else {
        known.join(", ")
    }
}

impl FlagsFileError {
    fn at(self, file: &Path) -> Self {
        let file = file.to_path_buf();
        match self {
            FlagsFileError::Invalid { source, .. } => {
                FlagsFileError::Invalid { path: file, source }
            }
            FlagsFileError::NoRollout { rollout, known, .. } => FlagsFileError::NoRollout {
                path: file,
                rollout,
                known,
            },
            FlagsFileError::EditInvalid {
                rollout, source, ..
            } => FlagsFileError::EditInvalid {
                path: file,
                rollout,
                source,
            },
            FlagsFileError::Edit {
                rollout, message, ..
            } => FlagsFileError::Edit {
                path: file,
                rollout,
                message,
            },
            other => other,
        }
    }
}

impl FlagsFile {
    /// The file at `path`, made absolute against the current folder (with
    /// [`std::path::absolute`]; symlinks are never resolved here).
    pub fn new(path: impl Into<PathBuf>) -> FlagsFile {
        let path = path.into();
        let path = std::path::absolute(&path).unwrap_or(path);
        FlagsFile { path }
    }

    /// The path as named (absolute).
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file the path resolves to now (symlinks followed).
    ///
    /// # Errors
    ///
    /// `FlagsFileError::Io` when the path cannot be resolved.
    pub fn target(&self) -> Result<PathBuf, FlagsFileError> {
        fs::canonicalize(&self.path).map_err(|source| {
            FlagsFileError::Io(FileError::new("cannot resolve", self.path.clone(), source))
        })
    }

    fn read(&self, file: &Path) -> Result<String, FlagsFileError> {
        // A FIFO or a device would block or never end: regular files only.
        crate::rollout::foundation::read::open_regular(
            file,
            crate::rollout::foundation::read::Follow::Symlinks,
            u64::MAX,
        )
        .map_err(|source| {
            FlagsFileError::Io(FileError::new("cannot read", self.path.clone(), source))
        })?;
        config::read_file(file).map_err(|e| match e {
            ConfigError::Io(e) => {
                FlagsFileError::Io(FileError::new("cannot read", self.path.clone(), e.source))
            }
            ConfigError::File { source, .. } => FlagsFileError::Invalid {
                path: self.path.clone(),
                source: *source,
            },
            other => FlagsFileError::Invalid {
                path: self.path.clone(),
                source: other,
            },
        })
    }

    /// The parsed snapshot (errors name the file). A leading byte-order
    /// mark is ignored.
    ///
    /// # Errors
    ///
    /// `FlagsFileError::Io` when the file cannot be read; `Invalid` when it is
    /// not a valid config.
    pub fn snapshot(&self) -> Result<Snapshot, FlagsFileError> {
        let text = self.read(&self.path)?;
        Snapshot::from_json(strip_bom(&text)).map_err(|source| FlagsFileError::Invalid {
            path: self.path.clone(),
            source,
        })
    }

    /// The percentage the file gives `rollout`.
    ///
    /// # Errors
    ///
    /// As [`snapshot`](Self::snapshot); `NoRollout` when the file does not have
    /// `rollout`.
    pub fn percentage(&self, rollout: &str) -> Result<Percentage, FlagsFileError> {
        let snapshot = self.snapshot()?;
        percentage_of(&snapshot, rollout).map_err(|e| e.at(&self.path))
    }

    /// Prepares setting `rollout`'s percentage: reads the file the path
    /// resolves to, edits the number in place (only its bytes change),
    /// checks that the result is a valid config giving exactly `percentage`
    /// to `rollout`, and stages it beside the real file with that file's mode
    /// and owner ([`StagedFile`]). Nothing visible changes until
    /// [`StagedFile::commit`].
    ///
    /// Returns `Ok(None)` when the file already gives `rollout` that
    /// percentage (nothing to write).
    ///
    /// # Errors
    ///
    /// As [`snapshot`](Self::snapshot); `Edit`/`EditInvalid` when the number
    /// cannot be set or the result is not valid; `Write` when the temporary
    /// file cannot be staged.
    pub fn stage(
        &self,
        rollout: &str,
        percentage: Percentage,
    ) -> Result<Option<StagedFile>, FlagsFileError> {
        let target = self.target()?;
        let meta = fs::metadata(&target).map_err(|source| {
            FlagsFileError::Io(FileError::new("cannot inspect", target.clone(), source))
        })?;
        let text = self.read(&target)?;
        let Some(edited) = edit(&text, rollout, percentage).map_err(|e| e.at(&self.path))? else {
            return Ok(None);
        };
        StagedFile::stage(&target, edited.as_bytes(), Some(&meta))
            .map(Some)
            .map_err(|source| FlagsFileError::Write {
                path: self.path.clone(),
                source,
            })
    }

    /// [`stage`](Self::stage) then [`StagedFile::commit`]; returns whether
    /// the file changed.
    ///
    /// # Errors
    ///
    /// As [`stage`](Self::stage); `Write` when the staged file cannot replace
    /// the real one.
    pub fn write(&self, rollout: &str, percentage: Percentage) -> Result<bool, FlagsFileError> {
        match self.stage(rollout, percentage)? {
            None => Ok(false),
            Some(staged) => {
                staged.commit().map_err(|source| FlagsFileError::Write {
                    path: self.path.clone(),
                    source,
                })?;
                Ok(true)
            }
        }
    }
}

fn strip_bom(text: &str) -> &str {
    text.strip_prefix(BOM).unwrap_or(text)
}

fn percentage_of(snapshot: &Snapshot, rollout: &str) -> Result<Percentage, FlagsFileError> {
    snapshot
        .rollout_status(rollout)
        .map(|s| s.percentage)
        .ok_or_else(|| FlagsFileError::NoRollout {
            path: PathBuf::new(),
            rollout: rollout.to_owned(),
            known: snapshot.rollouts().map(|r| r.id).collect(),
        })
}

/// The number as a config writes it: the shortest exact decimal (`5`,
/// `12.5`, `0.0001`, `100`), the same value [`Percentage`] serialises to.
fn format_number(percentage: Percentage) -> String {
    let shown = percentage.to_string();
    shown.trim_end_matches('%').to_owned()
}

/// The text with `rollouts.<rollout>.percentage` set to `percentage`, every
/// other byte unchanged (a byte-order mark, tabs and CRLF included). When the
/// rollout has no `percentage` member, `"percentage": N` is inserted as its
/// first member. The result is checked to be a valid config giving exactly
/// `percentage` to `rollout`; if the text already does, it is returned as is.
///
/// ```
/// use genesis_flags::{rollout::files::set_rollout_percentage, Percentage};
/// let text = "{\"version\":1,\"rollouts\":{\"r\":{\"percentage\":5.0}},\"flags\":{}}";
/// let edited = set_rollout_percentage(text, "r", Percentage::from_percent(0.0001)?)?;
/// assert_eq!(edited, "{\"version\":1,\"rollouts\":{\"r\":{\"percentage\":0.0001}},\"flags\":{}}");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
///
/// `FlagsFileError::Invalid` when `text` is not a valid config; `NoRollout`
/// without the rollout; `Edit`/`EditInvalid` when the member cannot be set or
/// the result is not valid.
pub fn set_rollout_percentage(
    text: &str,
    rollout: &str,
    percentage: Percentage,
) -> Result<String, FlagsFileError> {
    Ok(edit(text, rollout, percentage)?.unwrap_or_else(|| text.to_owned()))
}

/// As [`set_rollout_percentage`], `None` when nothing changes.
fn edit(
    text: &str,
    rollout: &str,
    percentage: Percentage,
) -> Result<Option<String>, FlagsFileError> {
    let body = strip_bom(text);
    let offset = text.len() - body.len();
    let edit_error = |message: String| FlagsFileError::Edit {
        path: PathBuf::new(),
        rollout: rollout.to_owned(),
        message,
    };
    // A document invalid only for lack of this rollout's percentage can be
    // mended by the edit; anything else wrong is reported as it is.
    let before = match Snapshot::from_json(body) {
        Ok(snapshot) => {
            if percentage_of(&snapshot, rollout)? == percentage {
                return Ok(None);
            }
            None
        }
        Err(e @ (ConfigError::Syntax(_) | ConfigError::TooLarge { .. })) => {
            return Err(FlagsFileError::Invalid {
                path: PathBuf::new(),
                source: e,
            })
        }
        Err(e) => Some(e),
    };
    let invalid = |located: String, before: Option<ConfigError>| match before {
        Some(source) => FlagsFileError::Invalid {
            path: PathBuf::new(),
            source,
        },
        None => edit_error(located),
    };
    let splice = match locate(body, rollout) {
        Ok(Some(splice)) => splice,
        Ok(None) => {
            return Err(invalid(
                format!("no rollout object `{rollout}` found"),
                before,
            ))
        }
        Err(message) => return Err(invalid(message, before)),
    };
    let number = format_number(percentage);
    let mut out = String::with_capacity(text.len() + number.len() + 16);
    let end = match splice {
        Splice::Replace { start, end } => {
            out.push_str(&text[..offset + start]);
            out.push_str(&number);
            end
        }
        Splice::Insert { at, separator } => {
            out.push_str(&text[..offset + at]);
            out.push_str("\"percentage\": ");
            out.push_str(&number);
            if let Some(separator) = separator {
                out.push(',');
                out.push_str(&body[separator.0..separator.1]);
            }
            at
        }
    };
    out.push_str(&text[offset + end..]);
    let after =
        Snapshot::from_json(strip_bom(&out)).map_err(|source| FlagsFileError::EditInvalid {
            path: PathBuf::new(),
            rollout: rollout.to_owned(),
            source,
        })?;
    match after.rollout_status(rollout).map(|s| s.percentage) {
        Some(p) if p == percentage => Ok(Some(out)),
        found => Err(edit_error(format!(
            "the edited config gives {} instead of {percentage}",
            found.map_or_else(|| "no such rollout".to_owned(), |p| p.to_string())
        ))),
    }
}

/// Where the new number goes, in byte offsets of the text without its BOM.
#[derive(Debug, PartialEq, Eq)]
enum Splice {
    /// The existing number's span.
    Replace { start: usize, end: usize },
    /// Before the first member (at `at`); `separator` is the whitespace
    /// between `{` and that member, repeated after the inserted one. `None`
    /// for an empty object.
    Insert {
        at: usize,
        separator: Option<(usize, usize)>,
    },
}

/// Finds `rollouts.<rollout>.percentage` at the top level. `Ok(None)` when
/// there is no such rollout object.
fn locate(body: &str, rollout: &str) -> Result<Option<Splice>, String> {
    let mut scan = Scanner::new(body);
    scan.ws();
    let Some(rollouts) = scan.member("rollouts")? else {
        return Ok(None);
    };
    let mut scan = Scanner::at(body, rollouts.0);
    if scan.peek() != Some(b'{') {
        return Ok(None);
    }
    let Some(object) = scan.member(rollout)? else {
        return Ok(None);
    };
    let mut scan = Scanner::at(body, object.0);
    if scan.peek() != Some(b'{') {
        return Ok(None);
    }
    let open = object.0;
    if let Some((start, end)) = scan.member("percentage")? {
        return match body.as_bytes().get(start) {
            Some(b'-' | b'0'..=b'9') => Ok(Some(Splice::Replace { start, end })),
            _ => Err(format!(
                "its percentage is not a number: {}",
                body.get(start..end).unwrap_or_default()
            )),
        };
    }
    let mut scan = Scanner::at(body, open + 1);
    scan.ws();
    Ok(Some(match scan.peek() {
        Some(b'}') => Splice::Insert {
            at: open + 1,
            separator: None,
        },
        _ => Splice::Insert {
            at: scan.pos,
            separator: Some((open + 1, scan.pos)),
        },
    }))
}

/// A minimal JSON scanner over a document that serde_json has accepted or
/// may reject: it never trusts the input and never recurses.
struct Scanner<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Scanner<'a> {
    fn new(text: &'a str) -> Self {
        Scanner::at(text, 0)
    }

    fn at(text: &'a str, pos: usize) -> Self {
        Scanner {
            bytes: text.as_bytes(),
            pos,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    fn expect(&mut self, byte: u8) -> Result<(), String> {
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(format!(
                "expected `{}` at byte {}",
                char::from(byte),
                self.pos
            ))
        }
    }

    /// A string starting here; its span, quotes included.
    fn string(&mut self) -> Result<(usize, usize), String> {
        let start = self.pos;
        self.expect(b'"')?;
        loop {
            match self.peek() {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok((start, self.pos));
                }
                // The escaped byte is never a quote that ends the string;
                // `\uXXXX` digits are plain bytes.
                Some(b'\\') => self.pos += 2,
                Some(_) => self.pos += 1,
                None => return Err(format!("unterminated string at byte {start}")),
            }
        }
    }

    /// Skips a value starting here; its span.
    fn value(&mut self) -> Result<(usize, usize), String> {
        let start = self.pos;
        match self.peek() {
            Some(b'"') => {
                self.string()?;
            }
            Some(b'{' | b'[') => {
                let mut depth = 0usize;
                loop {
                    match self.peek() {
                        Some(b'"') => {
                            self.string()?;
                        }
                        Some(b'{' | b'[') => {
                            depth += 1;
                            self.pos += 1;
                        }
                        Some(b'}' | b']') => {
                            self.pos += 1;
                            depth = depth.saturating_sub(1);
                            if depth == 0 {
                                break;
                            }
                        }
                        Some(_) => self.pos += 1,
                        None => return Err(format!("unterminated value at byte {start}")),
                    }
                }
            }
            _ => {
                while let Some(b) = self.peek() {
                    if matches!(b, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r') {
                        break;
                    }
                    self.pos += 1;
                }
                if self.pos == start {
                    return Err(format!("expected a value at byte {start}"));
                }
            }
        }
        Ok((start, self.pos))
    }

    /// Walks the object starting here and returns the span of the value of
    /// its first member named `key` (escapes decoded).
    fn member(&mut self, key: &str) -> Result<Option<(usize, usize)>, String> {
        self.expect(b'{')?;
        self.ws();
        if self.peek() == Some(b'}') {
            return Ok(None);
        }
        loop {
            self.ws();
            let (ks, ke) = self.string()?;
            self.ws();
            self.expect(b':')?;
            self.ws();
            let value = self.value()?;
            if key_is(self.bytes.get(ks..ke).unwrap_or_default(), key) {
                return Ok(Some(value));
            }
            self.ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => return Ok(None),
                _ => return Err(format!("expected `,` or `}}` at byte {}", self.pos)),
            }
        }
    }
}

/// Whether a raw JSON string (quotes included) decodes to `key`.
fn key_is(raw: &[u8], key: &str) -> bool {
    if !raw.contains(&b'\\') {
        return raw.len() >= 2 && &raw[1..raw.len() - 1] == key.as_bytes();
    }
    serde_json::from_slice::<String>(raw).is_ok_and(|k| k == key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pct(percent: f64) -> Percentage {
        Percentage::from_percent(percent).unwrap()
    }

    fn set(text: &str, rollout: &str, percent: f64) -> String {
        set_rollout_percentage(text, rollout, pct(percent)).unwrap()
    }

    #[test]
    fn numbers_are_written_like_percentage_serialises() {
        for ppm in (0..=1_000_000)
            .step_by(997)
            .chain([0, 1, 125_000, 1_000_000])
        {
            let p = Percentage::from_ppm(ppm).unwrap();
            let number = format_number(p);
            assert_eq!(number, serde_json::to_string(&p).unwrap());
            assert_eq!(serde_json::from_str::<Percentage>(&number).unwrap(), p);
        }
        assert_eq!(format_number(pct(0.0001)), "0.0001");
        assert_eq!(format_number(pct(100.0)), "100");
    }

    #[test]
    fn minified_only_the_number_changes() {
        let text = r#"{"version":1,"rollouts":{"a":{"percentage":5},"b":{"percentage":5}},"flags":{"x":{"percentage":5},"y":{"rollout":"b"}}}"#;
        assert_eq!(
            set(text, "b", 12.5),
            text.replace(r#""b":{"percentage":5}"#, r#""b":{"percentage":12.5}"#)
        );
        assert_eq!(
            set(text, "a", 100.0),
            text.replace(r#""a":{"percentage":5}"#, r#""a":{"percentage":100}"#)
        );
    }

    #[test]
    fn pretty_crlf_tabs_and_bom_survive() {
        let text = "\u{feff}{\r\n\t\"version\": 1,\r\n\t\"rollouts\": {\r\n\t\t\"r\": {\r\n\t\t\t\"description\": \"x\",\r\n\t\t\t\"percentage\" :\t5\r\n\t\t}\r\n\t}\r\n}\r\n";
        let out = set(text, "r", 0.0001);
        assert_eq!(out, text.replace(":\t5\r", ":\t0.0001\r"));
    }

    #[test]
    fn escaped_keys_are_decoded() {
        let text = r#"{"version":1,"\u0072ollouts":{"\u0072":{"description":"\"}{\\","percent\u0061ge":5}}}"#;
        let out = set(text, "r", 25.0);
        assert_eq!(out, text.replace(":5}", ":25}"));
    }

    #[test]
    fn percentage_keys_elsewhere_are_left_alone() {
        // Flags before rollouts, a flag with its own percentage, a nested
        // `rollouts`-looking string, and a rollout listed first that is not
        // the one asked for.
        let text = r#"{
  "flags": {
    "own": { "percentage": 5, "description": "rollouts: {\"r\": {\"percentage\": 5}}" },
    "bound": { "rollout": "r" }
  },
  "version": 1,
  "rollouts": {
    "q": { "percentage": 5 },
    "r": { "description": "{[\"percentage\": 5]}", "percentage": 5.0 }
  }
}"#;
        let out = set(text, "r", 50.0);
        assert_eq!(
            out,
            text.replace("\"percentage\": 5.0", "\"percentage\": 50")
        );
    }

    #[test]
    fn a_missing_percentage_is_inserted_first() {
        let base = r#"{"version":1,"rollouts":{"r":ROLLOUT},"flags":{}}"#;
        let cases = [
            ("{}", r#"{"percentage": 5}"#),
            ("{ }", r#"{"percentage": 5 }"#),
            (
                r#"{ "description": "d" }"#,
                r#"{ "percentage": 5, "description": "d" }"#,
            ),
            (
                "{\n      \"description\": \"d\"\n    }",
                "{\n      \"percentage\": 5,\n      \"description\": \"d\"\n    }",
            ),
        ];
        for (before, after) in cases {
            let text = base.replace("ROLLOUT", before);
            assert_eq!(set(&text, "r", 5.0), base.replace("ROLLOUT", after));
        }
    }

    #[test]
    fn unchanged_when_it_already_says_so() {
        let text = r#"{"version":1,"rollouts":{"r":{"percentage":5.00}}}"#;
        assert_eq!(edit(text, "r", pct(5.0)).unwrap(), None);
        assert_eq!(set(text, "r", 5.0), text);
    }

    #[test]
    fn unknown_rollouts_and_invalid_documents_are_refused() {
        let text = r#"{"version":1,"rollouts":{"a":{"percentage":5},"b":{"percentage":5}}}"#;
        let err = set_rollout_percentage(text, "c", pct(5.0)).unwrap_err();
        assert!(matches!(err, FlagsFileError::NoRollout { ref known, .. } if known == &["a", "b"]));
        assert!(
            err.to_string()
                .contains("has no rollout `c` (its rollouts: a, b)"),
            "{err}"
        );

        let err = set_rollout_percentage("{nope", "a", pct(5.0)).unwrap_err();
        assert!(matches!(err, FlagsFileError::Invalid { .. }), "{err}");

        // Invalid for another reason than the percentage: still refused.
        let text = r#"{"version":2,"rollouts":{"a":{}}}"#;
        let err = set_rollout_percentage(text, "a", pct(5.0)).unwrap_err();
        assert!(matches!(err, FlagsFileError::EditInvalid { .. }), "{err}");
        assert!(err.to_string().contains("version"), "{err}");

        // A percentage that is not a number is not overwritten.
        let text = r#"{"version":1,"rollouts":{"a":{"percentage":"5"}}}"#;
        let err = set_rollout_percentage(text, "a", pct(5.0)).unwrap_err();
        assert!(matches!(err, FlagsFileError::Invalid { .. }), "{err}");
    }

    #[test]
    fn the_scanner_survives_garbage() {
        for text in [
            "",
            "{",
            "{\"",
            "{\"rollouts\"",
            "{\"rollouts\":",
            "{\"rollouts\":{\"r\":{",
            "{\"rollouts\":{\"r\":{\"percentage\"",
            "[",
            "\"\\",
            "{\"a\":[[[[",
        ] {
            let _ = locate(text, "r");
        }
    }

    /// A random valid config, with the span of the target's number.
    fn config() -> impl Strategy<Value = (String, String, (usize, usize), Percentage)> {
        let ws = prop::sample::select(vec![
            "", " ", "  ", "\n", "\r\n", "\t", "\r\n\t\t", "\n    ",
        ]);
        let number = (0u32..=1_000_000, 0usize..3).prop_map(|(ppm, style)| {
            let p = Percentage::from_ppm(ppm).unwrap();
            let text = match style {
                0 => format_number(p),
                1 => format!("{:.4}", p.as_percent()),
                _ => format!("{}e0", format_number(p)),
            };
            (text, p)
        });
        (
            prop::collection::vec((number, any::<bool>(), any::<bool>()), 1..4),
            prop::collection::vec(ws, 40),
            any::<prop::sample::Index>(),
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(|(rollouts, ws, target, flags_first, bom)| {
                let mut w = ws.into_iter().cycle();
                let mut s = String::new();
                if bom {
                    s.push(BOM);
                }
                let target = target.index(rollouts.len());
                let mut span = (0, 0);
                let mut old = Percentage::ZERO;
                let mut out = |s: &mut String, part: &str| {
                    s.push_str(part);
                    s.push_str(w.next().unwrap());
                };
                let flags = |s: &mut String, out: &mut dyn FnMut(&mut String, &str)| {
                    out(s, "\"flags\"");
                    out(s, ":");
                    out(s, "{");
                    out(s, "\"own\"");
                    out(s, ":{");
                    out(s, "\"percentage\"");
                    out(s, ":");
                    out(s, "7");
                    out(s, ",");
                    out(s, "\"description\":\"{\\\"percentage\\\": 1}\"");
                    out(s, "}");
                    for i in 0..rollouts.len() {
                        out(s, ",");
                        out(s, &format!("\"f{i}\":{{\"rollout\":\"r{i}\"}}"));
                    }
                    out(s, "}");
                };
                out(&mut s, "{");
                out(&mut s, "\"version\"");
                out(&mut s, ":");
                out(&mut s, "1");
                out(&mut s, ",");
                if flags_first {
                    flags(&mut s, &mut out);
                    out(&mut s, ",");
                }
                out(&mut s, "\"rollouts\"");
                out(&mut s, ":");
                out(&mut s, "{");
                for (i, ((text, p), escaped, described)) in rollouts.iter().enumerate() {
                    if i > 0 {
                        out(&mut s, ",");
                    }
                    out(&mut s, &format!("\"r{i}\""));
                    out(&mut s, ":");
                    out(&mut s, "{");
                    if *described {
                        out(&mut s, "\"description\":\"}\\\\\"");
                        out(&mut s, ",");
                    }
                    out(
                        &mut s,
                        if *escaped {
                            "\"per\\u0063entage\""
                        } else {
                            "\"percentage\""
                        },
                    );
                    out(&mut s, ":");
                    if i == target {
                        span.0 = s.len();
                        span.1 = s.len() + text.len();
                        old = *p;
                    }
                    out(&mut s, text);
                    out(&mut s, "}");
                }
                out(&mut s, "}");
                if !flags_first {
                    out(&mut s, ",");
                    flags(&mut s, &mut out);
                }
                out(&mut s, "}");
                (s, format!("r{target}"), span, old)
            })
    }

    proptest! {
        #[test]
        fn only_the_number_changes((text, rollout, (start, end), old) in config(), ppm in 0u32..=1_000_000) {
            let p = Percentage::from_ppm(ppm).unwrap();
            prop_assert!(Snapshot::from_json(strip_bom(&text)).is_ok(), "{}", text);
            let out = set_rollout_percentage(&text, &rollout, p).unwrap();
            if old == p {
                prop_assert_eq!(&out, &text);
            } else {
                let expected = format!("{}{}{}", &text[..start], format_number(p), &text[end..]);
                prop_assert_eq!(&out, &expected);
            }
            let snapshot = Snapshot::from_json(strip_bom(&out)).unwrap();
            prop_assert_eq!(snapshot.rollout_status(&rollout).unwrap().percentage, p);
        }
    }
}
