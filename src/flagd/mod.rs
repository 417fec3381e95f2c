//! flagd flag definitions (cargo feature `flagd`): documents in the format
//! of `https://flagd.dev/schema/v0/flags.json` read into a normal
//! [`Snapshot`], so a [`FlagStore`](crate::FlagStore) and the OpenFeature
//! provider answer them as flagd would.
//!
//! ```
//! use genesis_flags::{Context, FlagStore, Reason, Snapshot};
//!
//! let snapshot = Snapshot::from_flagd_json(r##"{
//!   "$schema": "https://flagd.dev/schema/v0/flags.json",
//!   "flags": {
//!     "header-color": {
//!       "state": "ENABLED",
//!       "variants": { "red": "#FF0000", "blue": "#0000FF" },
//!       "defaultVariant": "red",
//!       "targeting": { "if": [{ "ends_with": [{ "var": "email" }, "@example.com"] }, "blue"] }
//!     }
//!   }
//! }"##)?;
//! let store = FlagStore::builder().build(snapshot);
//! let email = genesis_flags::AttributeKey::new("email");
//! let attributes = [email.string("ann@example.com")];
//! let view = store.view();
//! let served = view.variation("header-color", &Context::new("user-1", &attributes));
//! assert_eq!(served.str_or(""), "#0000FF");
//! assert_eq!(served.reason(), Reason::RuleMatch);
//! # Ok::<(), genesis_flags::ConfigError>(())
//! ```
//!
//! Each flag becomes a flag of the snapshot whose targeting is a rule
//! compiled once: operations checked, constants parsed, `var`s resolved to
//! attribute keys, `$ref`s inlined. Evaluating it reads the
//! [`Context`] directly (the targeting key is `targetingKey`,
//! a dotted `var` such as `user.name` reads the attribute of that name) and
//! allocates only for operations that build new strings or arrays (`cat`
//! outside `fractional`, `merge`, `missing`).
//!
//! Outcomes, as flagd gives them:
//!
//! | flagd                | [`Reason`]                | variant                          |
//! |----------------------|---------------------------|----------------------------------|
//! | `STATIC`             | `On`                      | the default variant              |
//! | `TARGETING_MATCH`    | `RuleMatch`               | what the rule returned           |
//! | `DEFAULT`            | `Default`                 | the default variant, or none (the caller's default) |
//! | `DISABLED`           | `KillSwitch`              | none                             |
//! | `GENERAL` error      | `Error`                   | none (the rule named no variant) |
//!
//! The repository's `docs/flagd.md` lists every operation, edge case and
//! the choices made where flagd's implementations differ.

mod compile;
mod eval;
mod expr;
mod murmur;
mod semver;

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::config::{ConfigError, Problem, ProblemKind, MAX_CONFIG_BYTES, MAX_REPORTED_PROBLEMS};
use crate::context::Context;
use crate::evaluation::{Evaluation, Reason};
use crate::flag::{Flag, FlagClass, FlagParts, Program, Targeting};
use crate::snapshot::Snapshot;
use crate::variant::{VariantType, VariantValue, Variants};

pub use crate::config::FLAGD_OPERATIONS as OPERATIONS;

use compile::Compiler;
use eval::{Env, Val};
use expr::{Node, NO_VARIANT};

/// The deepest nesting of operations (and `$ref`s) a targeting rule may
/// have; deeper rules are refused when the document is loaded.
pub const MAX_NESTING: usize = 64;

/// The most nodes (operations and constants) one flag's targeting may
/// compile to, `$ref`s expanded; larger rules are refused at load.
pub const MAX_NODES: usize = 100_000;

/// The `$schema` that marks a flagd document.
pub const FLAGD_SCHEMA: &str = "https://flagd.dev/schema/v0/flags.json";

/// Whether `text` looks like a flagd document: its `$schema` is flagd's.
/// Reads no further than the top-level `$schema`.
#[must_use]
pub fn is_flagd_document(text: &str) -> bool {
    #[derive(serde::Deserialize)]
    struct Probe {
        #[serde(rename = "$schema")]
        schema: Option<String>,
    }
    serde_json::from_str::<Probe>(text)
        .ok()
        .and_then(|p| p.schema)
        .is_some_and(|s| s.starts_with("https://flagd.dev/schema/"))
}

/// One compiled flagd flag: what [`Flag`] runs in place of its own rules.
#[derive(Debug)]
pub(crate) struct FlagdFlag {
    enabled: bool,
    default: Option<u16>,
    targeting: Option<Node>,
    names: Box<[Box<str>]>,
    /// The boolean value of each variant, if boolean.
    bools: Box<[Option<bool>]>,
    metadata: Map<String, Value>,
}

impl FlagdFlag {
    #[inline]
    fn serve(&self, variant: Option<u16>, reason: Reason) -> Evaluation {
        let enabled = match variant {
            Some(v) => self
                .bools
                .get(usize::from(v))
                .copied()
                .flatten()
                .unwrap_or(true),
            None => false,
        };
        Evaluation {
            enabled,
            reason,
            bucket: None,
            variant,
        }
    }

    fn named(&self, name: &str) -> Evaluation {
        match self.names.iter().position(|n| &**n == name) {
            Some(i) => self.serve(u16::try_from(i).ok(), Reason::RuleMatch),
            None => self.serve(None, Reason::Error),
        }
    }
}

impl Program for FlagdFlag {
    fn evaluate(&self, context: &Context<'_>) -> Evaluation {
        if !self.enabled {
            return self.serve(None, Reason::KillSwitch);
        }
        let Some(rule) = &self.targeting else {
            return match self.default {
                Some(_) => self.serve(self.default, Reason::On),
                None => self.serve(None, Reason::Default),
            };
        };
        match rule.eval(&Env { context }) {
            Val::Null => self.serve(self.default, Reason::Default),
            Val::Str(_, v) if v != NO_VARIANT => self.serve(Some(v), Reason::RuleMatch),
            Val::Str(s, _) => self.named(s),
            Val::Owned(s) => self.named(&s),
            Val::Bool(b) => self.named(if b { "true" } else { "false" }),
            // Numbers, arrays: no variant has such a name.
            _ => self.serve(None, Reason::Error),
        }
    }

    fn default_variant(&self) -> Option<u16> {
        self.default
    }

    fn metadata(&self) -> Option<&Map<String, Value>> {
        Some(&self.metadata)
    }

    fn constant(&self) -> Option<Evaluation> {
        // Disabled, or without targeting: no context is read.
        (!self.enabled || self.targeting.is_none()).then(|| self.evaluate(&Context::key_only("")))
    }
}

impl Snapshot {
    /// Parses a flagd flag-definition document
    /// (`https://flagd.dev/schema/v0/flags.json`), compiles its targeting
    /// and builds a snapshot (feature `flagd`; see the `flagd` module).
    ///
    /// Every problem is reported at once with its JSON path: an unknown
    /// operation, a `$ref` to a missing evaluator, a rule nested deeper
    /// than [`MAX_NESTING`], a `defaultVariant` that is not a variant,
    /// variants of mixed types. A store asked to load a bad document keeps
    /// its snapshot.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] with every problem and its JSON path when the text is
    /// not JSON, larger than [`MAX_CONFIG_BYTES`](crate::MAX_CONFIG_BYTES), or
    /// not a flagd document this crate can evaluate.
    #[cfg_attr(docsrs, doc(cfg(feature = "flagd")))]
    pub fn from_flagd_json(text: &str) -> Result<Snapshot, ConfigError> {
        if text.len() > MAX_CONFIG_BYTES {
            return Err(ConfigError::TooLarge {
                size: text.len() as u64,
                limit: MAX_CONFIG_BYTES as u64,
            });
        }
        let root: Value = serde_json::from_str(text)
            .map_err(|e| ConfigError::Syntax(crate::config::JsonError::from_serde(&e)))?;
        let mut problems = Vec::new();
        let flags = read_document(&root, &mut problems);
        if problems.is_empty() {
            return Ok(Snapshot::from_flags(flags));
        }
        let omitted = problems.len().saturating_sub(MAX_REPORTED_PROBLEMS);
        problems.truncate(MAX_REPORTED_PROBLEMS);
        Err(ConfigError::Invalid { problems, omitted })
    }
}

fn problem(problems: &mut Vec<Problem>, path: String, kind: ProblemKind) {
    problems.push(Problem { path, kind });
}

fn type_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn key_path(parent: &str, key: &str) -> String {
    let plain = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    match (parent, plain) {
        ("", true) => key.to_owned(),
        (_, true) => format!("{parent}.{key}"),
        (_, false) => format!("{parent}[{key:?}]"),
    }
}

/// Reads the primitive metadata values of `value` at `path`.
fn read_metadata(
    value: Option<&Value>,
    path: &str,
    problems: &mut Vec<Problem>,
) -> Map<String, Value> {
    let Some(value) = value else {
        return Map::new();
    };
    let Value::Object(map) = value else {
        problem(
            problems,
            path.to_owned(),
            ProblemKind::WrongType {
                expected: "object",
                found: type_of(value),
            },
        );
        return Map::new();
    };
    let mut out = Map::new();
    for (k, v) in map {
        match v {
            Value::Bool(_) | Value::Number(_) | Value::String(_) => {
                out.insert(k.clone(), v.clone());
            }
            other => problem(
                problems,
                key_path(path, k),
                ProblemKind::WrongType {
                    expected: "boolean, number or string",
                    found: type_of(other),
                },
            ),
        }
    }
    out
}

fn read_document(root: &Value, problems: &mut Vec<Problem>) -> Vec<Flag> {
    let Value::Object(top) = root else {
        problem(
            problems,
            "$".into(),
            ProblemKind::WrongType {
                expected: "object",
                found: type_of(root),
            },
        );
        return Vec::new();
    };
    let evaluators = match top.get("$evaluators") {
        None => None,
        Some(Value::Object(e)) => Some(e),
        Some(other) => {
            problem(
                problems,
                "$evaluators".into(),
                ProblemKind::WrongType {
                    expected: "object",
                    found: type_of(other),
                },
            );
            None
        }
    };
    let set_metadata = read_metadata(top.get("metadata"), "metadata", problems);
    let flags = match top.get("flags") {
        Some(Value::Object(flags)) => flags,
        Some(other) => {
            problem(
                problems,
                "flags".into(),
                ProblemKind::WrongType {
                    expected: "object",
                    found: type_of(other),
                },
            );
            return Vec::new();
        }
        None => {
            problem(problems, "$".into(), ProblemKind::MissingField("flags"));
            return Vec::new();
        }
    };
    let mut out = Vec::with_capacity(flags.len());
    for (key, flag) in flags {
        let path = key_path("flags", key);
        if let Some(flag) = read_flag(key, flag, &path, evaluators, &set_metadata, problems) {
            out.push(flag);
        }
    }
    out
}

/// A flag's variants as read: names and values in order, and their type.
type ReadVariants = (Vec<(Box<str>, VariantValue)>, VariantType);

fn read_variants(
    value: Option<&Value>,
    path: &str,
    problems: &mut Vec<Problem>,
) -> Option<ReadVariants> {
    let map = match value {
        Some(Value::Object(map)) => map,
        Some(other) => {
            problem(
                problems,
                path.to_owned(),
                ProblemKind::WrongType {
                    expected: "object",
                    found: type_of(other),
                },
            );
            return None;
        }
        None => {
            let parent = path.strip_suffix(".variants").unwrap_or(path);
            problem(
                problems,
                parent.to_owned(),
                ProblemKind::MissingField("variants"),
            );
            return None;
        }
    };
    if map.is_empty() || map.len() > usize::from(u16::MAX) - 1 {
        problem(problems, path.to_owned(), ProblemKind::NoVariants);
        return None;
    }
    let kind_of = |v: &Value| -> Option<VariantType> {
        Some(match v {
            Value::Bool(_) => VariantType::Bool,
            Value::String(_) => VariantType::String,
            Value::Number(n) if n.is_i64() => VariantType::Integer,
            Value::Number(_) => VariantType::Float,
            Value::Object(_) => VariantType::Object,
            _ => return None,
        })
    };
    let numeric = |k: VariantType| matches!(k, VariantType::Integer | VariantType::Float);
    let mut kind: Option<VariantType> = None;
    let mut ok = true;
    for (name, v) in map {
        let Some(k) = kind_of(v) else {
            problem(
                problems,
                key_path(path, name),
                ProblemKind::WrongType {
                    expected: "boolean, number, string or object",
                    found: type_of(v),
                },
            );
            ok = false;
            continue;
        };
        kind = match kind {
            None => Some(k),
            Some(prev) if prev == k => Some(k),
            // Integers and floats together make a float flag.
            Some(prev) if numeric(prev) && numeric(k) => Some(VariantType::Float),
            Some(prev) => {
                problem(
                    problems,
                    key_path(path, name),
                    ProblemKind::MixedVariantTypes {
                        expected: prev.as_str(),
                        found: k.as_str(),
                    },
                );
                ok = false;
                Some(prev)
            }
        };
    }
    let kind = kind?;
    if !ok {
        return None;
    }
    let entries = map
        .iter()
        .map(|(name, v)| {
            let value = match (kind, v) {
                (VariantType::Bool, Value::Bool(b)) => VariantValue::Bool(*b),
                (VariantType::String, Value::String(s)) => VariantValue::String(s.as_str().into()),
                (VariantType::Integer, Value::Number(n)) => {
                    VariantValue::Integer(n.as_i64().unwrap_or_default())
                }
                (VariantType::Float, Value::Number(n)) => {
                    VariantValue::Float(n.as_f64().unwrap_or(f64::NAN))
                }
                (_, Value::Object(o)) => VariantValue::Object(o.clone()),
                _ => VariantValue::Bool(false),
            };
            (Box::<str>::from(name.as_str()), value)
        })
        .collect();
    Some((entries, kind))
}

fn read_flag(
    key: &str,
    flag: &Value,
    path: &str,
    evaluators: Option<&Map<String, Value>>,
    set_metadata: &Map<String, Value>,
    problems: &mut Vec<Problem>,
) -> Option<Flag> {
    let Value::Object(fields) = flag else {
        problem(
            problems,
            path.to_owned(),
            ProblemKind::WrongType {
                expected: "object",
                found: type_of(flag),
            },
        );
        return None;
    };
    let before = problems.len();
    let enabled = match fields.get("state") {
        Some(Value::String(s)) if s == "ENABLED" => true,
        Some(Value::String(s)) if s == "DISABLED" => false,
        Some(other) => {
            problem(
                problems,
                key_path(path, "state"),
                ProblemKind::BadState(other.to_string()),
            );
            false
        }
        None => {
            problem(
                problems,
                path.to_owned(),
                ProblemKind::MissingField("state"),
            );
            false
        }
    };
    let variants = read_variants(
        fields.get("variants"),
        &key_path(path, "variants"),
        problems,
    );
    let names: Vec<Box<str>> = variants
        .as_ref()
        .map(|(entries, _)| entries.iter().map(|(n, _)| n.clone()).collect())
        .unwrap_or_default();
    let default = match fields.get("defaultVariant") {
        None | Some(Value::Null) => None,
        Some(Value::String(name)) => match names.iter().position(|n| **n == **name) {
            Some(i) => u16::try_from(i).ok(),
            None => {
                if variants.is_some() {
                    problem(
                        problems,
                        key_path(path, "defaultVariant"),
                        ProblemKind::UnknownVariant(name.clone()),
                    );
                }
                None
            }
        },
        Some(other) => {
            problem(
                problems,
                key_path(path, "defaultVariant"),
                ProblemKind::WrongType {
                    expected: "string or null",
                    found: type_of(other),
                },
            );
            None
        }
    };
    let targeting_path = key_path(path, "targeting");
    let targeting = match fields.get("targeting") {
        None | Some(Value::Null) => None,
        // An empty object is no targeting (flagd's own reading).
        Some(Value::Object(map)) if map.is_empty() => None,
        Some(rule @ Value::Object(_)) => {
            let mut compiler = Compiler::new(evaluators, &names, key);
            match compiler.compile(rule, &targeting_path, 0) {
                Ok(node) => Some(node),
                Err((at, kind)) => {
                    problem(problems, at, kind);
                    None
                }
            }
        }
        Some(other) => {
            problem(
                problems,
                targeting_path,
                ProblemKind::WrongType {
                    expected: "object",
                    found: type_of(other),
                },
            );
            None
        }
    };
    let mut metadata = set_metadata.clone();
    metadata.extend(read_metadata(
        fields.get("metadata"),
        &key_path(path, "metadata"),
        problems,
    ));
    if problems.len() > before {
        return None;
    }
    let (entries, kind) = variants?;
    let bools = entries
        .iter()
        .map(|(_, v)| v.as_bool())
        .collect::<Vec<_>>()
        .into();
    let program = FlagdFlag {
        enabled,
        default,
        targeting,
        names: names.into(),
        bools,
        metadata,
    };
    Some(Flag::new(FlagParts {
        name: key.into(),
        class: FlagClass::Critical,
        enabled: true,
        targeting: Targeting::Everyone,
        include: Default::default(),
        exclude: Default::default(),
        description: None,
        rules: Vec::new(),
        prerequisites: Vec::new(),
        bucket_by: None,
        seed: None,
        variants: Variants::new(entries, kind),
        default_variant: default.unwrap_or(0),
        off_variant: default.unwrap_or(0),
        track: false,
        program: Some(Arc::new(program)),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::AttributeKey;

    #[test]
    fn a_constant_flag_answers_from_the_index_as_its_program_would() {
        let snapshot = Snapshot::from_flagd_json(
            r#"{"flags": {
                "static": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "on"},
                "static-off": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off"},
                "text": {"state": "ENABLED", "variants": {"a": "x", "b": "y"}, "defaultVariant": "b"},
                "disabled": {"state": "DISABLED", "variants": {"on": true, "off": false}, "defaultVariant": "on"},
                "no-default": {"state": "ENABLED", "variants": {"on": true, "off": false}},
                "targeted": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off",
                             "targeting": {"if": [{"==": [{"var": "tier"}, "gold"]}, "on", null]}}
            }}"#,
        )
        .unwrap();
        let tier = AttributeKey::new("tier");
        let attrs = [tier.string("gold")];
        for name in [
            "static",
            "static-off",
            "text",
            "disabled",
            "no-default",
            "targeted",
        ] {
            let program = snapshot.flag(name).unwrap().program().unwrap();
            assert_eq!(program.constant().is_some(), name != "targeted", "{name}");
            for key in ["", "u1", "someone-else"] {
                let context = Context::new(key, &attrs);
                let want = program.evaluate(&context);
                assert_eq!(
                    snapshot.evaluate_context(name, &context, false),
                    want,
                    "{name} {key}"
                );
                assert_eq!(
                    snapshot.evaluate(name, key, false),
                    program.evaluate(&Context::key_only(key)),
                    "{name} {key}"
                );
            }
        }
        let e = snapshot.evaluate("disabled", "u1", true);
        assert_eq!(
            (e.enabled, e.reason, e.variant),
            (false, Reason::KillSwitch, None)
        );
        let e = snapshot.evaluate("static-off", "u1", false);
        assert_eq!(
            (e.enabled, e.reason, e.variant),
            (false, Reason::On, Some(1))
        );
    }
}
