//! Targeting (JsonLogic, as flagd documents it) compiled once into a
//! [`Node`] tree: operations checked, constants parsed, `var`s resolved to
//! slots, `$ref`s to `$evaluators` inlined. Anything the evaluator would
//! not understand is refused here, with the JSON path of the offending
//! node.

use serde_json::{Map, Value};

use crate::config::ProblemKind;
use crate::context::AttributeKey;

use super::expr::{
    Arith, Fractional, Key, Lit, Node, Order, SemVer, Slot, Var, Weight, NO_VARIANT,
};
use super::semver::{OwnedVersion, SemverOp};
use super::{MAX_NESTING, MAX_NODES};

/// What compiling one flag's targeting needs.
pub(crate) struct Compiler<'d> {
    pub(crate) evaluators: Option<&'d Map<String, Value>>,
    /// The flag's variant names, in order.
    pub(crate) variants: &'d [Box<str>],
    pub(crate) flag_key: &'d str,
    /// The `$ref`s being expanded (cycle detection).
    stack: Vec<&'d str>,
    /// Nodes compiled so far: `$ref`s may expand a small document into a
    /// huge rule, so the total is bounded too.
    nodes: usize,
}

/// A refusal: the JSON path and what is wrong there.
pub(crate) type Refusal = (String, ProblemKind);

fn invalid(path: &str, message: impl Into<String>) -> Refusal {
    (
        path.to_owned(),
        ProblemKind::InvalidTargeting(message.into()),
    )
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn child(path: &str, key: &str) -> String {
    let plain = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if plain {
        format!("{path}.{key}")
    } else {
        format!("{path}[{key:?}]")
    }
}

fn index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

impl<'d> Compiler<'d> {
    pub(crate) fn new(
        evaluators: Option<&'d Map<String, Value>>,
        variants: &'d [Box<str>],
        flag_key: &'d str,
    ) -> Self {
        Compiler {
            evaluators,
            variants,
            flag_key,
            stack: Vec::new(),
            nodes: 0,
        }
    }

    fn string(&self, s: &str) -> Lit {
        let variant = self
            .variants
            .iter()
            .position(|v| &**v == s)
            .and_then(|i| u16::try_from(i).ok())
            .unwrap_or(NO_VARIANT);
        Lit::Str(s.into(), variant)
    }

    /// Compiles `value` found at `path`, `depth` levels down.
    pub(crate) fn compile(
        &mut self,
        value: &'d Value,
        path: &str,
        depth: usize,
    ) -> Result<Node, Refusal> {
        if depth > MAX_NESTING {
            return Err((path.to_owned(), ProblemKind::NestingTooDeep(MAX_NESTING)));
        }
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(invalid(
                path,
                format!("the rule expands to more than {MAX_NODES} nodes (through `$ref`s?)"),
            ));
        }
        match value {
            Value::Null => Ok(Node::Lit(Lit::Null)),
            Value::Bool(b) => Ok(Node::Lit(Lit::Bool(*b))),
            Value::Number(n) => Ok(Node::Lit(Lit::Num(n.as_f64().unwrap_or(f64::NAN)))),
            Value::String(s) => Ok(Node::Lit(self.string(s))),
            Value::Array(items) => {
                let nodes = items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| self.compile(v, &index(path, i), depth + 1))
                    .collect::<Result<Vec<_>, _>>()?;
                if nodes.iter().all(|n| matches!(n, Node::Lit(_))) {
                    let lits = nodes
                        .into_iter()
                        .map(|n| match n {
                            Node::Lit(l) => l,
                            _ => Lit::Null,
                        })
                        .collect();
                    Ok(Node::Lit(Lit::Array(lits)))
                } else {
                    Ok(Node::Array(nodes.into()))
                }
            }
            Value::Object(map) => self.operation(map, path, depth),
        }
    }

    fn operation(
        &mut self,
        map: &'d Map<String, Value>,
        path: &str,
        depth: usize,
    ) -> Result<Node, Refusal> {
        let mut entries = map.iter();
        let (Some((op, args)), None) = (entries.next(), entries.next()) else {
            return Err(invalid(
                path,
                format!(
                    "an operation is an object with exactly one key, found {} keys",
                    map.len()
                ),
            ));
        };
        let here = child(path, op);
        if op == "$ref" {
            return self.reference(args, &here, depth);
        }
        if op == "var" {
            return self.var(args, &here, depth);
        }
        if op == "missing" || op == "missing_some" {
            return self.missing(op, args, &here);
        }
        // Arguments: an array, or one value standing for a one-element array.
        let args: Vec<Node> = match args {
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, v)| self.compile(v, &index(&here, i), depth + 1))
                .collect::<Result<_, _>>()?,
            single => vec![self.compile(single, &here, depth + 1)?],
        };
        let count = args.len();
        let arity = |min: usize, max: usize, what: &str| -> Result<(), Refusal> {
            if count < min || count > max {
                Err(invalid(
                    &here,
                    format!("`{op}` takes {what}, found {count} argument(s)"),
                ))
            } else {
                Ok(())
            }
        };
        let pair = |args: Vec<Node>| -> Box<[Node; 2]> {
            let mut it = args.into_iter();
            let a = it.next().unwrap_or(Node::Lit(Lit::Null));
            let b = it.next().unwrap_or(Node::Lit(Lit::Null));
            Box::new([a, b])
        };
        Ok(match op.as_str() {
            "if" | "?:" => Node::If(args.into()),
            "and" => {
                arity(1, usize::MAX, "at least one argument")?;
                Node::And(args.into())
            }
            "or" => {
                arity(1, usize::MAX, "at least one argument")?;
                Node::Or(args.into())
            }
            "!" => {
                arity(1, 1, "one argument")?;
                Node::Not(Box::new(
                    args.into_iter().next().unwrap_or(Node::Lit(Lit::Null)),
                ))
            }
            "!!" => {
                arity(1, 1, "one argument")?;
                Node::Truthy(Box::new(
                    args.into_iter().next().unwrap_or(Node::Lit(Lit::Null)),
                ))
            }
            "==" | "!=" => {
                arity(2, 2, "two arguments")?;
                Node::LooseEq(pair(args), op == "!=")
            }
            "===" | "!==" => {
                arity(2, 2, "two arguments")?;
                Node::StrictEq(pair(args), op == "!==")
            }
            "<" | "<=" => {
                arity(2, 3, "two or three arguments")?;
                let order = if op == "<" { Order::Lt } else { Order::Le };
                Node::Compare(order, args.into())
            }
            ">" | ">=" => {
                arity(2, 2, "two arguments")?;
                let order = if op == ">" { Order::Gt } else { Order::Ge };
                Node::Compare(order, args.into())
            }
            "in" => {
                arity(2, 2, "two arguments")?;
                Node::In(pair(args))
            }
            "cat" => Node::Cat(args.into()),
            "substr" => {
                arity(2, 3, "two or three arguments")?;
                Node::Substr(args.into())
            }
            "merge" => Node::Merge(args.into()),
            "+" | "*" | "min" | "max" => {
                let a = match op.as_str() {
                    "+" => Arith::Add,
                    "*" => Arith::Mul,
                    "min" => Arith::Min,
                    _ => Arith::Max,
                };
                Node::Arith(a, args.into())
            }
            "-" => {
                arity(1, 2, "one or two arguments")?;
                Node::Arith(Arith::Sub, args.into())
            }
            "/" | "%" => {
                arity(2, 2, "two arguments")?;
                let a = if op == "/" { Arith::Div } else { Arith::Rem };
                Node::Arith(a, args.into())
            }
            "starts_with" => {
                arity(2, 2, "two arguments")?;
                Node::StartsWith(pair(args))
            }
            "ends_with" => {
                arity(2, 2, "two arguments")?;
                Node::EndsWith(pair(args))
            }
            "sem_ver" => {
                arity(3, 3, "three arguments (version, operator, version)")?;
                let mut it = args.into_iter();
                let left = it.next().unwrap_or(Node::Lit(Lit::Null));
                let op_node = it.next().unwrap_or(Node::Lit(Lit::Null));
                let right = it.next().unwrap_or(Node::Lit(Lit::Null));
                let Node::Lit(Lit::Str(op_text, _)) = &op_node else {
                    return Err(invalid(
                        &index(&here, 1),
                        "the `sem_ver` operator is a constant string (=, !=, <, <=, >, >=, ^, ~)",
                    ));
                };
                // flagd answers null for an unknown operator (its testbed
                // checks it), so the rule serves the default.
                let Some(sem_op) = SemverOp::parse(op_text) else {
                    return Ok(Node::Lit(Lit::Null));
                };
                let right_const = match &right {
                    Node::Lit(Lit::Str(s, _)) => OwnedVersion::parse(s),
                    _ => None,
                };
                Node::SemVer(Box::new(SemVer {
                    left,
                    op: sem_op,
                    right,
                    right_const,
                }))
            }
            "fractional" => self.fractional(args, &here)?,
            _ => {
                return Err((here.clone(), ProblemKind::UnsupportedOperation(op.clone())));
            }
        })
    }

    fn reference(&mut self, name: &'d Value, path: &str, depth: usize) -> Result<Node, Refusal> {
        let Value::String(name) = name else {
            return Err(invalid(
                path,
                format!(
                    "`$ref` names an evaluator: expected a string, found {}",
                    json_type(name)
                ),
            ));
        };
        if self.stack.contains(&name.as_str()) {
            return Err(invalid(
                path,
                format!("circular `$ref` through {}", self.stack.join(" -> ")),
            ));
        }
        let Some(target) = self.evaluators.and_then(|e| e.get(name.as_str())) else {
            return Err((path.to_owned(), ProblemKind::UnknownEvaluator(name.clone())));
        };
        self.stack.push(name);
        let node = self.compile(target, &child("$evaluators", name), depth + 1);
        self.stack.pop();
        node
    }

    fn slot(&self, name: &str, path: &str) -> Result<Result<Slot, Lit>, Refusal> {
        Ok(Ok(match name {
            "targetingKey" => Slot::TargetingKey,
            "$flagd.timestamp" => Slot::Timestamp,
            "$flagd.flagKey" => return Ok(Err(self.string(self.flag_key))),
            "" | "$flagd" => {
                return Err(invalid(
                    path,
                    "reading the whole context or `$flagd` as one value is not supported",
                ))
            }
            other => Slot::Attribute(AttributeKey::new(other)),
        }))
    }

    fn var(&mut self, args: &'d Value, path: &str, depth: usize) -> Result<Node, Refusal> {
        let (name, default) = match args {
            Value::Array(items) => match items.as_slice() {
                [name] => (name, None),
                [name, default] => (name, Some(default)),
                _ => {
                    return Err(invalid(
                        path,
                        format!(
                            "`var` takes a name and an optional default, found {} items",
                            items.len()
                        ),
                    ))
                }
            },
            name => (name, None),
        };
        let name = match name {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            other => {
                return Err(invalid(
                    path,
                    format!(
                        "`var` names a context value with a constant string, found {}",
                        json_type(other)
                    ),
                ))
            }
        };
        let default = match default {
            Some(d) => Some(Box::new(self.compile(d, &index(path, 1), depth + 1)?)),
            None => None,
        };
        Ok(match self.slot(&name, path)? {
            Ok(slot) => Node::Var(Var { slot, default }),
            Err(constant) => Node::Lit(constant),
        })
    }

    fn keys(&self, items: &[Value], path: &str) -> Result<Box<[Key]>, Refusal> {
        items
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let Value::String(name) = v else {
                    return Err(invalid(
                        &index(path, i),
                        "`missing` takes constant names (strings)",
                    ));
                };
                let slot = match self.slot(name, path)? {
                    Ok(slot) => slot,
                    // `$flagd.flagKey` is never missing: read it as the key.
                    Err(_) => Slot::TargetingKey,
                };
                Ok(Key {
                    name: name.as_str().into(),
                    slot,
                })
            })
            .collect()
    }

    fn missing(&mut self, op: &str, args: &'d Value, path: &str) -> Result<Node, Refusal> {
        if op == "missing" {
            let items: &[Value] = match args {
                Value::Array(items) => match items.as_slice() {
                    [Value::Array(inner)] => inner,
                    all => all,
                },
                single => std::slice::from_ref(single),
            };
            return Ok(Node::Missing(self.keys(items, path)?));
        }
        let Value::Array(items) = args else {
            return Err(invalid(path, "`missing_some` takes [count, [names...]]"));
        };
        match items.as_slice() {
            [Value::Number(n), Value::Array(names)] => {
                let need = n
                    .as_u64()
                    .and_then(|n| usize::try_from(n).ok())
                    .ok_or_else(|| {
                        invalid(&index(path, 0), "the count is a non-negative integer")
                    })?;
                Ok(Node::MissingSome(need, self.keys(names, &index(path, 1))?))
            }
            _ => Err(invalid(path, "`missing_some` takes [count, [names...]]")),
        }
    }

    fn fractional(&mut self, args: Vec<Node>, path: &str) -> Result<Node, Refusal> {
        let mut args = args.into_iter().peekable();
        // A first argument that is not a bucket (an array) is the bucketing
        // expression.
        let by = match args.peek() {
            Some(Node::Lit(Lit::Array(_)) | Node::Array(_)) | None => None,
            Some(_) => args.next(),
        };
        let offset = usize::from(by.is_some());
        let mut buckets = Vec::new();
        let mut total = Some(0u64);
        for (i, bucket) in args.enumerate() {
            let here = index(path, i + offset);
            let mut items: Vec<Node> = match bucket {
                Node::Lit(Lit::Array(lits)) => lits.into_vec().into_iter().map(Node::Lit).collect(),
                Node::Array(nodes) => nodes.into_vec(),
                _ => {
                    return Err(invalid(
                        &here,
                        "a `fractional` bucket is an array [variant, weight]",
                    ))
                }
            };
            if items.is_empty() || items.len() > 2 {
                return Err(invalid(
                    &here,
                    "a `fractional` bucket is [variant] or [variant, weight]",
                ));
            }
            let weight = if items.len() == 2 {
                match items.pop() {
                    // A negative weight counts as 0, as flagd clamps it
                    // (the testbed's `fractional-negative-weight-flag`) and
                    // as a computed weight is clamped in `eval`.
                    Some(Node::Lit(Lit::Num(w))) => {
                        if !(w.is_finite() && w.fract() == 0.0 && w <= f64::from(i32::MAX)) {
                            return Err(invalid(
                                &index(&here, 1),
                                format!("a `fractional` weight is an integer up to 2^31 - 1 (a negative one counts as 0), found {w}"),
                            ));
                        }
                        Weight::Const(w.max(0.0) as u64)
                    }
                    Some(Node::Lit(_)) => {
                        return Err(invalid(
                            &index(&here, 1),
                            "a `fractional` weight is a number",
                        ))
                    }
                    Some(expr) => {
                        total = None;
                        Weight::Expr(expr)
                    }
                    None => Weight::Const(1),
                }
            } else {
                Weight::Const(1)
            };
            if let (Some(t), Weight::Const(w)) = (total, &weight) {
                total = Some(t + w);
            }
            let name = items.pop().unwrap_or(Node::Lit(Lit::Null));
            buckets.push((name, weight));
        }
        if buckets.is_empty() {
            return Err(invalid(path, "`fractional` needs at least one bucket"));
        }
        if total.is_some_and(|t| t > i32::MAX as u64) {
            return Err(invalid(path, "the `fractional` weights sum over 2^31 - 1"));
        }
        Ok(Node::Fractional(Box::new(Fractional {
            by,
            flag_key: self.flag_key.into(),
            buckets: buckets.into(),
            total,
        })))
    }
}

#[cfg(test)]
mod tests {
    use crate::{Reason, Snapshot};

    fn doc(buckets: &str) -> String {
        format!(
            r#"{{"flags": {{"f": {{"state": "ENABLED", "variants": {{"one": 1, "two": 2, "d": 0}},
                "defaultVariant": "d", "targeting": {{"fractional": [{{"var": "targetingKey"}}, {buckets}]}}}}}}}}"#
        )
    }

    #[test]
    fn a_negative_constant_weight_counts_as_zero() {
        let snapshot = Snapshot::from_flagd_json(&doc(r#"["one", -50], ["two", 100]"#)).unwrap();
        let flag = snapshot.flag("f").unwrap();
        for key in ["any-user", "a", "b", "c", "jon@company.com"] {
            let e = snapshot.evaluate("f", key, false);
            assert_eq!(e.reason, Reason::RuleMatch, "{key}");
            assert_eq!(
                e.variant.map(|v| flag.variant_name(v)),
                Some("two"),
                "{key}"
            );
        }
        // All weights zero (or negative): no bucket, the default variant.
        let snapshot = Snapshot::from_flagd_json(&doc(r#"["one", -1], ["two", 0]"#)).unwrap();
        let e = snapshot.evaluate("f", "any-user", false);
        assert_eq!(e.reason, Reason::Default);
        // Still refused: a fraction, or a weight over 2^31 - 1.
        for bad in [
            r#"["one", 1.5]"#,
            r#"["one", 2147483648]"#,
            r#"["one", -0.5]"#,
        ] {
            assert!(Snapshot::from_flagd_json(&doc(bad)).is_err(), "{bad}");
        }
    }
}
