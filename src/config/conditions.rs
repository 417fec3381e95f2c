//! The conditions of rules and segments: `attribute op value(s)`, segment
//! references, and what value each operator takes.

use rustc_hash::FxHashMap;

use super::error::ProblemKind;
use super::node::Node;
use super::path::Path;
use super::problems::{field, Validator};
use crate::context::AttributeKey;
use crate::rule::condition::{Compare, Condition, OwnedSemver, Test, TextOp};
use crate::rule::network::Network;
use crate::rule::text::fold;

/// The largest compiled regex a condition may use (`regex`'s size limit).
pub const MAX_REGEX_BYTES: usize = 64 * 1024;

/// The operators, as written in documents.
pub const OPERATORS: &str =
    "in, not_in, starts_with, ends_with, contains, matches, eq, ne, lt, le, gt, ge, \
semver_eq, semver_ne, semver_lt, semver_le, semver_gt, semver_ge, before, after, exists, in_cidr";

const CONDITION_FIELDS: &[&str] = &[
    "attribute",
    "op",
    "values",
    "value",
    "case_insensitive",
    "negate",
    "segment",
];
const CONDITION_EXPECTED: &str =
    "`attribute`, `op`, `values` or `value`, `case_insensitive`, `negate` (or `segment`, `negate`)";
const SEGMENT_REF_FIELDS: &[&str] = &["segment", "negate"];
const SEGMENT_REF_EXPECTED: &str = "`segment`, `negate`";
impl Validator {
    /// A `when` list. Segment references are resolved through `segments`
    /// (names to indices) and their indices pushed on `refs`.
    pub(super) fn conditions(
        &mut self,
        node: &Node,
        path: &Path<'_>,
        segments: &FxHashMap<Box<str>, u32>,
        refs: &mut Vec<u32>,
    ) -> Vec<Condition> {
        let Node::Array(items) = node else {
            self.wrong_type(path, "an array of conditions", node);
            return Vec::new();
        };
        items
            .iter()
            .enumerate()
            .filter_map(|(i, item)| self.condition(item, &path.index(i), segments, refs))
            .collect()
    }

    fn condition(
        &mut self,
        node: &Node,
        path: &Path<'_>,
        segments: &FxHashMap<Box<str>, u32>,
        refs: &mut Vec<u32>,
    ) -> Option<Condition> {
        let is_segment = matches!(node, Node::Object(e) if e.iter().any(|(k, _)| k == "segment"));
        let fields = if is_segment {
            self.record(node, path, SEGMENT_REF_FIELDS, SEGMENT_REF_EXPECTED)?
        } else {
            self.record(node, path, CONDITION_FIELDS, CONDITION_EXPECTED)?
        };
        let negate = match field(&fields, "negate") {
            Some(n) => self.boolean(n, &path.key("negate"))?,
            None => false,
        };
        if is_segment {
            let here = path.key("segment");
            let name = self.string(field(&fields, "segment")?, &here)?;
            let Some(&index) = segments.get(name) else {
                self.report(&here, ProblemKind::UnknownSegment(name.to_owned()));
                return None;
            };
            refs.push(index);
            return Some(Condition {
                attribute: AttributeKey::KEY,
                negate,
                test: Test::Segment(index),
            });
        }
        let Some(attribute) = field(&fields, "attribute") else {
            self.report(path, ProblemKind::MissingField("attribute"));
            return None;
        };
        let attribute_path = path.key("attribute");
        let attribute = self.string(attribute, &attribute_path)?;
        self.key_name(attribute, &attribute_path);
        let Some(op) = field(&fields, "op") else {
            self.report(path, ProblemKind::MissingField("op"));
            return None;
        };
        let op_path = path.key("op");
        let op = self.string(op, &op_path)?;
        let case_insensitive = match field(&fields, "case_insensitive") {
            Some(n) => self.boolean(n, &path.key("case_insensitive"))?,
            None => false,
        };
        let shape = Shape::of(op);
        let Some(shape) = shape else {
            self.report(&op_path, ProblemKind::UnknownOperator(op.to_owned()));
            return None;
        };
        // Fields the operator does not read are errors, not silently ignored.
        let (wanted, unwanted) = match shape.value {
            ValueShape::Strings | ValueShape::Networks => ("values", ["value", ""]),
            ValueShape::One(_) => ("value", ["values", ""]),
            ValueShape::Nothing => ("", ["value", "values"]),
        };
        for key in unwanted.iter().filter(|k| !k.is_empty()) {
            if field(&fields, key).is_some() {
                self.report(
                    &path.key(key),
                    ProblemKind::UnexpectedValue {
                        op: op.to_owned(),
                        expected: shape.expected(),
                    },
                );
                return None;
            }
        }
        if case_insensitive && !shape.folds {
            self.report(
                &path.key("case_insensitive"),
                ProblemKind::UnexpectedValue {
                    op: op.to_owned(),
                    expected: "no `case_insensitive`",
                },
            );
            return None;
        }
        let value_node = if wanted.is_empty() {
            None
        } else {
            match field(&fields, wanted) {
                Some(v) => Some(v),
                None => {
                    self.report(
                        path,
                        ProblemKind::MissingField(if wanted == "values" {
                            "values"
                        } else {
                            "value"
                        }),
                    );
                    return None;
                }
            }
        };
        let value_path = path.key(wanted);
        let test = match (shape.value, value_node) {
            (ValueShape::Nothing, _) | (_, None) => Test::Exists,
            (ValueShape::Networks, Some(node)) => {
                let strings = self.strings(node, &value_path)?;
                let mut networks = Vec::with_capacity(strings.len());
                for (i, text) in strings.iter().enumerate() {
                    match Network::parse(text) {
                        Some(n) => networks.push(n),
                        None => self
                            .report(&value_path.index(i), ProblemKind::BadCidr(text.to_string())),
                    }
                }
                if networks.len() != strings.len() {
                    return None;
                }
                Test::Cidr(networks.into())
            }
            (ValueShape::Strings, Some(node)) => {
                let strings = self.strings(node, &value_path)?;
                match shape.text {
                    Some(TextOp::Equals) if !case_insensitive => Test::exact(strings),
                    Some(text) => Test::text(
                        text,
                        if case_insensitive {
                            strings.iter().map(|s| fold(s)).collect()
                        } else {
                            strings.into()
                        },
                        case_insensitive,
                    ),
                    None => Test::Exists,
                }
            }
            (ValueShape::One(kind), Some(node)) => {
                self.one_value(kind, node, &value_path, case_insensitive)?
            }
        };
        Some(Condition {
            attribute: AttributeKey::new(attribute),
            negate: negate != shape.negated,
            test,
        })
    }

    pub(super) fn strings(&mut self, node: &Node, path: &Path<'_>) -> Option<Vec<Box<str>>> {
        let Node::Array(items) = node else {
            self.wrong_type(path, "an array of strings", node);
            return None;
        };
        let mut out = Vec::with_capacity(items.len());
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            match self.string(item, &path.index(i)) {
                Some(s) => out.push(s.into()),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    fn one_value(
        &mut self,
        kind: OneValue,
        node: &Node,
        path: &Path<'_>,
        case_insensitive: bool,
    ) -> Option<Test> {
        match kind {
            OneValue::Number(compare) => match node {
                Node::Number(n) => n.as_f64().map(|f| Test::Number(compare, f)),
                other => {
                    self.wrong_type(path, "a number", other);
                    None
                }
            },
            OneValue::Semver(compare) => {
                let text = self.string(node, path)?;
                match OwnedSemver::new(text) {
                    Some(v) => Some(Test::Semver(compare, v)),
                    None => {
                        self.report(path, ProblemKind::BadSemver(text.to_owned()));
                        None
                    }
                }
            }
            OneValue::Time { before } => {
                let text = self.string(node, path)?;
                match crate::rule::time::parse_rfc3339(text) {
                    Some(t) if before => Some(Test::Before(t)),
                    Some(t) => Some(Test::After(t)),
                    None => {
                        self.report(path, ProblemKind::BadTimestamp(format!(
                            "{text:?} (expected YYYY-MM-DDTHH:MM:SS[.fraction] and Z or an offset +HH:MM)"
                        )));
                        None
                    }
                }
            }
            OneValue::Regex => {
                let text = self.string(node, path)?;
                let built = regex::RegexBuilder::new(text)
                    .case_insensitive(case_insensitive)
                    .size_limit(MAX_REGEX_BYTES)
                    .dfa_size_limit(MAX_REGEX_BYTES)
                    .build();
                match built {
                    Ok(r) => Some(Test::Matches(r)),
                    Err(e) => {
                        self.report(path, ProblemKind::BadRegex(e.to_string()));
                        None
                    }
                }
            }
        }
    }
}

#[derive(Clone, Copy)]
enum ValueShape {
    Strings,
    /// IP addresses and CIDR blocks.
    Networks,
    One(OneValue),
    Nothing,
}

#[derive(Clone, Copy)]
enum OneValue {
    Number(Compare),
    Semver(Compare),
    Time { before: bool },
    Regex,
}

#[derive(Clone, Copy)]
struct Shape {
    value: ValueShape,
    text: Option<TextOp>,
    negated: bool,
    folds: bool,
}

impl Shape {
    fn of(op: &str) -> Option<Shape> {
        let text = |t, negated| Shape {
            value: ValueShape::Strings,
            text: Some(t),
            negated,
            folds: true,
        };
        let one = |v, folds| Shape {
            value: ValueShape::One(v),
            text: None,
            negated: false,
            folds,
        };
        let compare = |suffix: &str| match suffix {
            "eq" => Some(Compare::Eq),
            "ne" => Some(Compare::Ne),
            "lt" => Some(Compare::Lt),
            "le" => Some(Compare::Le),
            "gt" => Some(Compare::Gt),
            "ge" => Some(Compare::Ge),
            _ => None,
        };
        Some(match op {
            "in" => text(TextOp::Equals, false),
            "not_in" => text(TextOp::Equals, true),
            "starts_with" => text(TextOp::StartsWith, false),
            "ends_with" => text(TextOp::EndsWith, false),
            "contains" => text(TextOp::Contains, false),
            "matches" => one(OneValue::Regex, true),
            "before" => one(OneValue::Time { before: true }, false),
            "after" => one(OneValue::Time { before: false }, false),
            "in_cidr" => Shape {
                value: ValueShape::Networks,
                text: None,
                negated: false,
                folds: false,
            },
            "exists" => Shape {
                value: ValueShape::Nothing,
                text: None,
                negated: false,
                folds: false,
            },
            _ => match op.strip_prefix("semver_") {
                Some(suffix) => one(OneValue::Semver(compare(suffix)?), false),
                None => one(OneValue::Number(compare(op)?), false),
            },
        })
    }

    fn expected(self) -> &'static str {
        match self.value {
            ValueShape::Strings => "`values`: an array of strings",
            ValueShape::Networks => "`values`: an array of IP addresses or CIDR blocks",
            ValueShape::One(OneValue::Number(_)) => "`value`: a number",
            ValueShape::One(OneValue::Semver(_)) => "`value`: a semantic version",
            ValueShape::One(OneValue::Time { .. }) => "`value`: an RFC 3339 timestamp",
            ValueShape::One(OneValue::Regex) => "`value`: a regular expression",
            ValueShape::Nothing => "no value",
        }
    }
}
