//! [`ConfigError`] and the [`Problem`]s of an invalid document.

use crate::FileError;
use std::fmt;
use std::path::PathBuf;

use super::json_error::JsonError;

/// Why a flag config was rejected. The store that was asked to load it keeps
/// its previous snapshot.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error(transparent)]
    Io(FileError),
    /// The document is larger than [`MAX_CONFIG_BYTES`](crate::MAX_CONFIG_BYTES).
    #[error("flag config is {size} bytes, over the limit of {limit} bytes")]
    TooLarge {
        /// Its size in bytes (at least; reading stops past the limit).
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The document is not JSON.
    #[error("flag config is not valid JSON: {0}")]
    Syntax(JsonError),
    /// The document is JSON but breaks the schema: every problem found.
    #[error("{}", Problems(problems, *omitted))]
    Invalid {
        /// Each problem, with its JSON path, in document order.
        problems: Vec<Problem>,
        /// Problems past the first [`MAX_REPORTED_PROBLEMS`](crate::config::MAX_REPORTED_PROBLEMS), counted only.
        omitted: usize,
    },
    /// An error in a named file.
    #[error("{}: {source}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// The error in it.
        #[source]
        source: Box<ConfigError>,
    },
}

impl ConfigError {
    /// The schema problems, if the document was JSON but invalid.
    #[must_use]
    pub fn problems(&self) -> &[Problem] {
        match self {
            ConfigError::Invalid { problems, .. } => problems,
            ConfigError::File { source, .. } => source.problems(),
            _ => &[],
        }
    }

    /// Line and column (1-based) of a syntax error.
    #[must_use]
    pub fn line_column(&self) -> Option<(usize, usize)> {
        match self {
            ConfigError::Syntax(e) => Some((e.line, e.column)),
            ConfigError::File { source, .. } => source.line_column(),
            _ => None,
        }
    }

    pub(crate) fn in_file(self, path: PathBuf) -> Self {
        match self {
            already @ (ConfigError::Io(_) | ConfigError::File { .. }) => already,
            other => ConfigError::File {
                path,
                source: Box::new(other),
            },
        }
    }
}

struct Problems<'a>(&'a [Problem], usize);

impl fmt::Display for Problems<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Problems(problems, omitted) = *self;
        let total = problems.len() + omitted;
        if let [only] = problems {
            if omitted == 0 {
                return write!(f, "invalid flag config: {only}");
            }
        }
        write!(f, "invalid flag config ({total} problems):")?;
        for p in problems {
            write!(f, "\n  {p}")?;
        }
        if omitted > 0 {
            write!(f, "\n  ... and {omitted} more")?;
        }
        Ok(())
    }
}

/// One schema problem: where (`path`, e.g. `flags.new_checkout.percentage`)
/// and what.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    /// The JSON path: `$` for the root, then `.key`, `["odd key"]` or `[index]`.
    pub path: String,
    /// What is wrong there.
    pub kind: ProblemKind,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.kind)
    }
}

/// What is wrong at a [`Problem`]'s path.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ProblemKind {
    /// A value of the wrong JSON type.
    #[error("expected {expected}, found {found}")]
    WrongType {
        /// What the schema wants.
        expected: &'static str,
        /// What the document has.
        found: &'static str,
    },
    /// A required field is absent.
    #[error("missing required field `{0}`")]
    MissingField(&'static str),
    /// A field the schema does not know.
    #[error("unknown field `{field}`, expected one of {expected}")]
    UnknownField {
        /// The field.
        field: String,
        /// The fields allowed here.
        expected: &'static str,
    },
    /// A key that appears twice in one object.
    #[error("duplicate key `{0}`")]
    DuplicateKey(String),
    /// A rollout id outside `[a-z0-9_.-]{{1,128}}`.
    #[error("invalid name {0:?}: rollout ids are 1 to 128 characters of a-z, 0-9, '_', '.', '-'")]
    BadName(String),
    /// A flag key (or variant, segment or attribute name) that is empty,
    /// over 128 bytes, or has characters other than letters, digits, `_`,
    /// `.` and `-` (whitespace and control characters are never allowed).
    #[error("invalid name {0:?}: keys are 1 to 128 bytes of letters, digits, '_', '.', '-'")]
    BadKey(String),
    /// `version` is not 1.
    #[error("unsupported version {0}, expected 1")]
    UnsupportedVersion(String),
    /// `class` is not `critical` or `experimental`.
    #[error("unknown class {0:?}, expected \"critical\" or \"experimental\"")]
    UnknownClass(String),
    /// A flag names a rollout that `rollouts` does not define.
    #[error("unknown rollout {0:?}: it is not defined under `rollouts`")]
    UnknownRollout(String),
    /// A flag with both `rollout` and `percentage`.
    #[error("has both `rollout` and `percentage`; a flag takes at most one")]
    RolloutAndPercentage,
    /// A percentage that is not finite, not in `[0, 100]`, or finer than 4 decimals.
    #[error("{0}")]
    Percentage(#[from] crate::PercentageError),
    /// A condition's `op` that is not an operator.
    #[error("unknown operator {0:?}, expected one of {ops}", ops = crate::config::OPERATORS)]
    UnknownOperator(String),
    /// A condition's value that the operator does not take (or a
    /// `case_insensitive` on an operator that has no case).
    #[error("operator `{op}` takes {expected}")]
    UnexpectedValue {
        /// The operator.
        op: String,
        /// What it takes.
        expected: &'static str,
    },
    /// A regular expression that does not parse or compiles over
    /// [`MAX_REGEX_BYTES`](crate::config::MAX_REGEX_BYTES).
    #[error("bad regular expression: {0}")]
    BadRegex(String),
    /// A value that is not a semantic version.
    #[error("{0:?} is not a semantic version (major.minor.patch[-pre][+build])")]
    BadSemver(String),
    /// An `in_cidr` value that is not an IP address or a CIDR block.
    #[error("{0:?} is not an IP address or a CIDR block (like 10.0.0.0/8 or 2001:db8::/32)")]
    BadCidr(String),
    /// A value that is not an RFC 3339 timestamp.
    #[error("not an RFC 3339 timestamp: {0}")]
    BadTimestamp(String),
    /// An integer variant outside the 64-bit range.
    #[error("{0} does not fit a 64-bit integer")]
    IntegerRange(String),
    /// `variants` that is empty.
    #[error("a flag's `variants` needs 1 to 65535 variants")]
    NoVariants,
    /// A variant whose type differs from the flag's first variant.
    #[error("variants of mixed types: expected {expected} like the first variant, found {found}")]
    MixedVariantTypes {
        /// The type of the first variant.
        expected: &'static str,
        /// The type here.
        found: &'static str,
    },
    /// A variant name the flag does not declare.
    #[error("unknown variant {0:?}: it is not one of the flag's variants")]
    UnknownVariant(String),
    /// A split whose weights do not sum to 100.
    #[error("the split's weights sum to {}%, not 100%", *.0 as f64 / 10_000.0)]
    SplitSum(u64),
    /// A rule with both `serve` and `split`.
    #[error("has both `serve` and `split`; a rule takes one")]
    ServeAndSplit,
    /// A prerequisite with both `enabled` and `variants`.
    #[error("has both `enabled` and `variants`; a prerequisite takes one")]
    EnabledAndVariants,
    /// A condition naming a segment that `segments` does not define.
    #[error("unknown segment {0:?}: it is not defined under `segments`")]
    UnknownSegment(String),
    /// A prerequisite naming a flag the document does not define.
    #[error("unknown flag {0:?}: it is not defined under `flags`")]
    UnknownFlag(String),
    /// Segments or prerequisites that refer to themselves.
    #[error("circular {what} reference: {through}")]
    Cycle {
        /// `"segment"` or `"prerequisite"`.
        what: &'static str,
        /// The names around the cycle.
        through: String,
    },
    /// Segments or prerequisites nested deeper than
    /// [`MAX_DEPTH`](crate::rule::MAX_DEPTH).
    #[error("{what} nest {depth} deep, over the limit of 16")]
    TooDeep {
        /// `"segments"` or `"prerequisites"`.
        what: &'static str,
        /// The depth found.
        depth: usize,
    },
    /// `bucket_by` or `seed` on a flag bound to a shared rollout (whose
    /// flags all bucket by the context key, salted by the rollout id).
    #[error("a flag bound to a rollout buckets as the rollout does; `bucket_by` and `seed` apply to a flag's own percentage and to rule splits")]
    RolloutBucketing,
    /// A flagd targeting rule that is not usable as written.
    #[error("invalid targeting: {0}")]
    InvalidTargeting(String),
    /// A flagd targeting operation this crate does not evaluate.
    #[error("unsupported operation `{0}`, expected one of {ops}", ops = crate::config::FLAGD_OPERATIONS)]
    UnsupportedOperation(String),
    /// A flagd `$ref` to an evaluator that `$evaluators` does not define.
    #[error("unknown evaluator {0:?}: it is not defined under `$evaluators`")]
    UnknownEvaluator(String),
    /// A flagd targeting rule nested deeper than the limit.
    #[error("targeting nests deeper than {0} levels")]
    NestingTooDeep(usize),
    /// A flagd flag `state` other than `ENABLED` or `DISABLED`.
    #[error("unknown state {0}, expected \"ENABLED\" or \"DISABLED\"")]
    BadState(String),
    /// A rollout that binds critical and experimental flags together.
    #[error("binds critical flags ({critical}) and experimental flags ({experimental}) together; a rollout may not mix classes")]
    MixedClasses {
        /// The critical flags bound to it.
        critical: String,
        /// The experimental flags bound to it.
        experimental: String,
    },
}
