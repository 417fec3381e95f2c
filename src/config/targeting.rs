//! Validation of the targeting parts of a document: `segments`, and a
//! flag's `variants`, `default`, `off`, `rules`, `prerequisites`,
//! `bucket_by`, `seed` and `track`. Conditions compile here (regexes with a
//! size limit, case folding, versions, timestamps, attribute keys), so a
//! document that validates needs no more parsing.

use rustc_hash::FxHashMap;

use super::error::ProblemKind;
use super::node::Node;
use super::path::Path;
use super::problems::{field, is_valid_key, Validator};
use crate::bucket::BUCKETS;
use crate::context::AttributeKey;
use crate::flag::salt;
use crate::rule::{Rule, Segment, Serve, MAX_DEPTH};
use crate::variant::{Split, VariantType, VariantValue, Variants, IMPLICIT_OFF, IMPLICIT_ON};

const SEGMENT_FIELDS: &[&str] = &["when", "description"];
const SEGMENT_EXPECTED: &str = "`when`, `description`";
const RULE_FIELDS: &[&str] = &["when", "serve", "split", "bucket_by", "seed", "description"];
const RULE_EXPECTED: &str = "`when`, `serve`, `split`, `bucket_by`, `seed`, `description`";
const PREREQUISITE_FIELDS: &[&str] = &["flag", "enabled", "variants"];
const PREREQUISITE_EXPECTED: &str = "`flag`, and `enabled` or `variants`";

/// A document's segments: names to indices, and their compiled conditions.
#[derive(Default)]
pub(crate) struct Segments {
    pub(crate) index: FxHashMap<Box<str>, u32>,
    pub(crate) compiled: Vec<Segment>,
}

/// A flag's targeting, validated; prerequisites still by name.
#[derive(Debug)]
pub(crate) struct ValidTargeting {
    pub(crate) variants: Variants,
    pub(crate) default_variant: u16,
    pub(crate) off_variant: u16,
    pub(crate) rules: Vec<Rule>,
    pub(crate) prerequisites: Vec<PendingPrerequisite>,
    pub(crate) bucket_by: Option<AttributeKey>,
    pub(crate) seed: Option<Box<str>>,
    pub(crate) track: bool,
}

/// A prerequisite before the flag it names is resolved.
#[derive(Debug)]
pub(crate) struct PendingPrerequisite {
    pub(crate) flag: Box<str>,
    pub(crate) path: String,
    pub(crate) expect: PendingExpect,
}

#[derive(Debug)]
pub(crate) enum PendingExpect {
    Enabled(bool),
    /// Variant names, each with its path.
    Variants(Vec<(Box<str>, String)>),
}

impl Validator {
    /// `segments`: every segment compiled; references checked, cycles and
    /// over-deep nesting reported at the segment.
    pub(super) fn segments(&mut self, node: &Node, path: &Path<'_>) -> Segments {
        let mut segments = Segments::default();
        let Some(entries) = self.object(node, path) else {
            return segments;
        };
        for (name, _) in &entries {
            let next = segments.index.len() as u32;
            segments.index.entry((*name).into()).or_insert(next);
        }
        let mut edges: Vec<Vec<u32>> = Vec::with_capacity(entries.len());
        for (name, body) in &entries {
            let here = path.key(name);
            self.key_name(name, &here);
            let mut refs = Vec::new();
            let mut conditions = Vec::new();
            if let Some(fields) = self.record(body, &here, SEGMENT_FIELDS, SEGMENT_EXPECTED) {
                if let Some(when) = field(&fields, "when") {
                    conditions =
                        self.conditions(when, &here.key("when"), &segments.index, &mut refs);
                } else {
                    self.report(&here, ProblemKind::MissingField("when"));
                }
                if let Some(d) = field(&fields, "description") {
                    self.string(d, &here.key("description"));
                }
            }
            edges.push(refs);
            segments.compiled.push(conditions.into());
        }
        for (i, (name, _)) in entries.iter().enumerate() {
            match depth_from(i, &edges) {
                Depth::Cycle(cycle) => {
                    let names: Vec<&str> = cycle
                        .iter()
                        .filter_map(|&j| entries.get(j).map(|(n, _)| *n))
                        .collect();
                    self.report(
                        &path.key(name),
                        ProblemKind::Cycle {
                            what: "segment",
                            through: names.join(" -> "),
                        },
                    );
                }
                Depth::Finite(depth) if depth > MAX_DEPTH => self.report(
                    &path.key(name),
                    ProblemKind::TooDeep {
                        what: "segments",
                        depth,
                    },
                ),
                Depth::Finite(_) => {}
            }
        }
        segments
    }

    /// A flag's targeting fields (the flag's other fields are checked by the caller).
    pub(super) fn targeting(
        &mut self,
        flag: &str,
        entries: &[(&str, &Node)],
        path: &Path<'_>,
        bound_to_rollout: bool,
        segments: &Segments,
    ) -> Option<ValidTargeting> {
        let mut ok = true;
        let (variants, declared) = match field(entries, "variants") {
            None => (Variants::implicit(), false),
            Some(node) => match self.variants(node, &path.key("variants")) {
                Some(v) => (v, true),
                None => (Variants::implicit(), false),
            },
        };
        if field(entries, "variants").is_some() && !declared {
            ok = false;
        }
        // When `variants` is invalid, its names still check the references
        // (so one mistake is reported once).
        let names: FxHashMap<&str, u16> = match field(entries, "variants") {
            Some(Node::Object(declared_entries)) if !declared => declared_entries
                .iter()
                .enumerate()
                .map(|(i, (name, _))| (name.as_str(), i as u16))
                .collect(),
            _ => (0..variants.len() as u16)
                .map(|i| (variants.name(i), i))
                .collect(),
        };
        let pick = |v: &mut Validator, key: &'static str, implicit: u16| -> Option<u16> {
            match field(entries, key) {
                None if declared && field(entries, "variants").is_some() => {
                    v.report(path, ProblemKind::MissingField(key));
                    None
                }
                None => Some(implicit),
                Some(node) => v.variant_ref(node, &path.key(key), &names),
            }
        };
        let default_variant = pick(self, "default", IMPLICIT_ON);
        let off_variant = pick(self, "off", IMPLICIT_OFF);

        let bucket_by = match field(entries, "bucket_by") {
            None => None,
            Some(node) => match self.string(node, &path.key("bucket_by")) {
                Some(name) => {
                    self.key_name(name, &path.key("bucket_by"));
                    Some(AttributeKey::new(name))
                }
                None => {
                    ok = false;
                    None
                }
            },
        };
        let seed: Option<Box<str>> = match field(entries, "seed") {
            None => None,
            Some(node) => match self.string(node, &path.key("seed")) {
                Some(s) => Some(s.into()),
                None => {
                    ok = false;
                    None
                }
            },
        };
        if bound_to_rollout {
            for key in ["bucket_by", "seed"] {
                if field(entries, key).is_some() {
                    self.report(&path.key(key), ProblemKind::RolloutBucketing);
                    ok = false;
                }
            }
        }
        let track = match field(entries, "track") {
            None => false,
            Some(node) => self.boolean(node, &path.key("track")).unwrap_or(false),
        };

        let mut rules = Vec::new();
        if let Some(node) = field(entries, "rules") {
            let rules_path = path.key("rules");
            match node {
                Node::Array(items) => {
                    for (i, item) in items.iter().enumerate() {
                        let context = RuleContext {
                            flag,
                            names: &names,
                            flag_seed: seed.as_deref(),
                            flag_bucket_by: bucket_by,
                            segments,
                        };
                        match self.rule(item, &rules_path.index(i), &context) {
                            Some(rule) => rules.push(rule),
                            None => ok = false,
                        }
                    }
                }
                other => {
                    self.wrong_type(&rules_path, "an array of rules", other);
                    ok = false;
                }
            }
        }

        let mut prerequisites = Vec::new();
        if let Some(node) = field(entries, "prerequisites") {
            let here = path.key("prerequisites");
            match node {
                Node::Array(items) => {
                    for (i, item) in items.iter().enumerate() {
                        match self.prerequisite(item, &here.index(i)) {
                            Some(p) => prerequisites.push(p),
                            None => ok = false,
                        }
                    }
                }
                other => {
                    self.wrong_type(&here, "an array of prerequisites", other);
                    ok = false;
                }
            }
        }

        let (Some(default_variant), Some(off_variant)) = (default_variant, off_variant) else {
            return None;
        };
        ok.then_some(ValidTargeting {
            variants,
            default_variant,
            off_variant,
            rules,
            prerequisites,
            bucket_by,
            seed,
            track,
        })
    }

    fn variants(&mut self, node: &Node, path: &Path<'_>) -> Option<Variants> {
        let entries = self.object(node, path)?;
        if entries.is_empty() {
            self.report(path, ProblemKind::NoVariants);
            return None;
        }
        if entries.len() > usize::from(u16::MAX) {
            self.report(path, ProblemKind::NoVariants);
            return None;
        }
        // Numbers: integers unless any is written as a float.
        let float = entries
            .iter()
            .any(|(_, v)| matches!(v, Node::Number(n) if n.is_f64()));
        let mut kind: Option<VariantType> = None;
        let mut values = Vec::with_capacity(entries.len());
        let mut ok = true;
        for (name, value) in &entries {
            let here = path.key(name);
            self.key_name(name, &here);
            let compiled = match value {
                Node::Bool(b) => VariantValue::Bool(*b),
                Node::String(s) => VariantValue::String(s.as_str().into()),
                Node::Number(n) if float => VariantValue::Float(n.as_f64().unwrap_or(f64::NAN)),
                Node::Number(n) => match n.as_i64() {
                    Some(i) => VariantValue::Integer(i),
                    None => {
                        self.report(&here, ProblemKind::IntegerRange(n.to_string()));
                        ok = false;
                        continue;
                    }
                },
                Node::Object(_) => VariantValue::Object(to_json_object(value)),
                other => {
                    self.wrong_type(&here, "a boolean, string, number or object", other);
                    ok = false;
                    continue;
                }
            };
            match kind {
                None => kind = Some(compiled.kind()),
                Some(k) if k != compiled.kind() => {
                    self.report(
                        &here,
                        ProblemKind::MixedVariantTypes {
                            expected: k.as_str(),
                            found: compiled.kind().as_str(),
                        },
                    );
                    ok = false;
                }
                Some(_) => {}
            }
            values.push(((*name).into(), compiled));
        }
        let kind = kind?;
        ok.then(|| Variants::new(values, kind))
    }

    fn variant_ref(
        &mut self,
        node: &Node,
        path: &Path<'_>,
        names: &FxHashMap<&str, u16>,
    ) -> Option<u16> {
        let name = self.string(node, path)?;
        match names.get(name) {
            Some(&i) => Some(i),
            None => {
                self.report(path, ProblemKind::UnknownVariant(name.to_owned()));
                None
            }
        }
    }

    fn rule(&mut self, node: &Node, path: &Path<'_>, context: &RuleContext<'_>) -> Option<Rule> {
        let fields = self.record(node, path, RULE_FIELDS, RULE_EXPECTED)?;
        let mut ok = fields.iter().all(|(k, _)| RULE_FIELDS.contains(k));
        let mut refs = Vec::new();
        let conditions = match field(&fields, "when") {
            Some(when) => {
                let before = self.problem_count();
                let c =
                    self.conditions(when, &path.key("when"), &context.segments.index, &mut refs);
                ok &= self.problem_count() == before;
                c
            }
            None => Vec::new(),
        };
        if let Some(d) = field(&fields, "description") {
            ok &= self.string(d, &path.key("description")).is_some();
        }
        let bucket_by = match field(&fields, "bucket_by") {
            Some(node) => match self.string(node, &path.key("bucket_by")) {
                Some(name) => {
                    self.key_name(name, &path.key("bucket_by"));
                    Some(AttributeKey::new(name))
                }
                None => {
                    ok = false;
                    None
                }
            },
            None => context.flag_bucket_by,
        };
        let seed = match field(&fields, "seed") {
            Some(node) => match self.string(node, &path.key("seed")) {
                Some(s) => Some(s),
                None => {
                    ok = false;
                    None
                }
            },
            None => context.flag_seed,
        };
        let serve = match (field(&fields, "serve"), field(&fields, "split")) {
            (Some(_), Some(_)) => {
                self.report(path, ProblemKind::ServeAndSplit);
                None
            }
            (None, None) => {
                self.report(path, ProblemKind::MissingField("serve"));
                None
            }
            (Some(node), None) => self
                .variant_ref(node, &path.key("serve"), context.names)
                .map(Serve::Variant),
            (None, Some(node)) => {
                self.split(node, &path.key("split"), context.names)
                    .map(|weights| {
                        Serve::Split(Split::new(&weights, salt(context.flag, seed), bucket_by))
                    })
            }
        };
        let serve = serve?;
        ok.then(|| Rule {
            conditions: conditions.into(),
            serve,
        })
    }

    fn split(
        &mut self,
        node: &Node,
        path: &Path<'_>,
        names: &FxHashMap<&str, u16>,
    ) -> Option<Vec<(u16, u32)>> {
        let entries = self.object(node, path)?;
        let mut weights = Vec::with_capacity(entries.len());
        let mut ok = true;
        let mut total: u64 = 0;
        for (name, weight) in entries {
            let here = path.key(name);
            let variant = match names.get(name) {
                Some(&i) => Some(i),
                None => {
                    self.report(&here, ProblemKind::UnknownVariant(name.to_owned()));
                    None
                }
            };
            let ppm = self.percentage(weight, &here).map(|p| p.ppm());
            match (variant, ppm) {
                (Some(v), Some(p)) => {
                    total += u64::from(p);
                    weights.push((v, p));
                }
                _ => ok = false,
            }
        }
        if ok && total != u64::from(BUCKETS) {
            self.report(path, ProblemKind::SplitSum(total));
            ok = false;
        }
        ok.then_some(weights)
    }

    fn prerequisite(&mut self, node: &Node, path: &Path<'_>) -> Option<PendingPrerequisite> {
        let fields = self.record(node, path, PREREQUISITE_FIELDS, PREREQUISITE_EXPECTED)?;
        if !fields.iter().all(|(k, _)| PREREQUISITE_FIELDS.contains(k)) {
            return None;
        }
        let Some(flag) = field(&fields, "flag") else {
            self.report(path, ProblemKind::MissingField("flag"));
            return None;
        };
        let flag = self.string(flag, &path.key("flag"))?;
        let expect = match (field(&fields, "enabled"), field(&fields, "variants")) {
            (Some(_), Some(_)) => {
                self.report(path, ProblemKind::EnabledAndVariants);
                return None;
            }
            (Some(e), None) => PendingExpect::Enabled(self.boolean(e, &path.key("enabled"))?),
            (None, None) => PendingExpect::Enabled(true),
            (None, Some(v)) => {
                let here = path.key("variants");
                let names = self.strings(v, &here)?;
                PendingExpect::Variants(
                    names
                        .into_iter()
                        .enumerate()
                        .map(|(i, n)| (n, here.index(i).to_string()))
                        .collect(),
                )
            }
        };
        Some(PendingPrerequisite {
            flag: flag.into(),
            path: path.key("flag").to_string(),
            expect,
        })
    }

    /// A flag key, variant, segment or attribute name: the wide name rule.
    pub(super) fn key_name(&mut self, name: &str, path: &Path<'_>) {
        if !is_valid_key(name) {
            self.report(path, ProblemKind::BadKey(name.to_owned()));
        }
    }
}

struct RuleContext<'a> {
    flag: &'a str,
    names: &'a FxHashMap<&'a str, u16>,
    flag_seed: Option<&'a str>,
    flag_bucket_by: Option<AttributeKey>,
    segments: &'a Segments,
}

enum Depth {
    Finite(usize),
    Cycle(Vec<usize>),
}

/// The longest chain of references from `start` (1 for a node without
/// any), or a cycle through it. Graphs are small; a DFS per node is enough.
pub(crate) fn depth_from_edges(start: usize, edges: &[Vec<u32>]) -> Result<usize, Vec<usize>> {
    match depth_from(start, edges) {
        Depth::Finite(d) => Ok(d),
        Depth::Cycle(c) => Err(c),
    }
}

fn depth_from(start: usize, edges: &[Vec<u32>]) -> Depth {
    // Iterative DFS with an explicit stack: never recursion on input.
    let mut on_path = vec![false; edges.len()];
    let mut memo: Vec<Option<usize>> = vec![None; edges.len()];
    let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
    if let Some(flag) = on_path.get_mut(start) {
        *flag = true;
    }
    while let Some(&mut (node, ref mut next)) = stack.last_mut() {
        let children = edges.get(node).map_or(&[][..], |e| &e[..]);
        if let Some(&child) = children.get(*next) {
            *next += 1;
            let child = child as usize;
            if on_path.get(child).copied().unwrap_or(false) {
                let from = stack.iter().position(|&(n, _)| n == child).unwrap_or(0);
                let mut cycle: Vec<usize> = stack[from..].iter().map(|&(n, _)| n).collect();
                cycle.push(child);
                return Depth::Cycle(cycle);
            }
            if memo.get(child).copied().flatten().is_none() {
                if let Some(flag) = on_path.get_mut(child) {
                    *flag = true;
                }
                stack.push((child, 0));
            }
        } else {
            let depth = 1 + children
                .iter()
                .filter_map(|&c| memo.get(c as usize).copied().flatten())
                .max()
                .unwrap_or(0);
            if let Some(m) = memo.get_mut(node) {
                *m = Some(depth);
            }
            if let Some(flag) = on_path.get_mut(node) {
                *flag = false;
            }
            stack.pop();
        }
    }
    Depth::Finite(memo.get(start).copied().flatten().unwrap_or(1))
}

fn to_json_object(node: &Node) -> serde_json::Map<String, serde_json::Value> {
    match to_json(node) {
        serde_json::Value::Object(map) => map,
        _ => serde_json::Map::new(),
    }
}

fn to_json(node: &Node) -> serde_json::Value {
    use serde_json::Value;
    match node {
        Node::Null => Value::Null,
        Node::Bool(b) => Value::Bool(*b),
        Node::Number(n) => Value::Number(n.clone()),
        Node::String(s) => Value::String(s.clone()),
        Node::Array(items) => Value::Array(items.iter().map(to_json).collect()),
        // Duplicate keys were reported by `object`; the last one wins here.
        Node::Object(entries) => Value::Object(
            entries
                .iter()
                .map(|(k, v)| (k.clone(), to_json(v)))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use crate::config::parse;

    fn problems(text: &str) -> Vec<String> {
        match parse(text) {
            Ok(_) => Vec::new(),
            Err(e) => e.problems().iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn a_targeted_document_validates() {
        let text = r##"{"version":1,
            "segments":{"beta":{"when":[{"attribute":"plan","op":"in","values":["beta"]}]},
                        "eu_beta":{"when":[{"segment":"beta"},{"attribute":"country","op":"in","values":["DE"]}]}},
            "flags":{
              "base":{},
              "color":{"variants":{"red":"red","blue":"blue"},"default":"red","off":"blue",
                "bucket_by":"tenant","seed":"2",
                "prerequisites":[{"flag":"base"}],
                "rules":[
                  {"when":[{"segment":"eu_beta","negate":true},
                           {"attribute":"version","op":"semver_ge","value":"1.2.3-rc.1"},
                           {"attribute":"email","op":"ends_with","values":["@X.COM"],"case_insensitive":true},
                           {"attribute":"id","op":"matches","value":"^u-[0-9]+$"},
                           {"attribute":"age","op":"ge","value":18},
                           {"attribute":"at","op":"before","value":"2030-01-01T00:00:00Z"},
                           {"attribute":"vip","op":"exists"}],
                   "serve":"blue"},
                  {"split":{"red":33.3333,"blue":66.6667}}]}}}"##;
        assert_eq!(problems(text), Vec::<String>::new());
    }

    #[test]
    fn cidr_values_are_addresses_or_blocks() {
        let doc = |values: &str| {
            format!(
                r#"{{"version":1,"flags":{{"f":{{"default":"off","rules":[{{"when":[
                    {{"attribute":"ip","op":"in_cidr","values":{values}}}],"serve":"on"}}]}}}}}}"#
            )
        };
        assert_eq!(
            problems(&doc(r#"["10.0.0.0/8","::1","2001:db8::/32"]"#)),
            Vec::<String>::new()
        );
        let found = problems(&doc(r#"["10.0.0.0/8","10.1/8","::/129"]"#));
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].starts_with(
            r#"flags.f.rules[0].when[0].values[1]: "10.1/8" is not an IP address or a CIDR block"#
        ));
        assert!(found[1].starts_with("flags.f.rules[0].when[0].values[2]:"));
        assert_eq!(problems(&doc(r#""10.0.0.0/8""#)).len(), 1);
    }

    #[test]
    fn each_problem_names_its_path() {
        let text = r#"{"version":1,
            "segments":{"a":{"when":[{"segment":"b"}]},"b":{"when":[{"segment":"a"}]},
                        "c":{"when":[{"segment":"nope"}]}},
            "flags":{
              "f":{"variants":{"x":"s","y":1},"default":"z","off":"x"},
              "g":{"variants":{"x":1,"y":2},"default":"x","off":"y",
                   "rules":[{"when":[{"attribute":"a","op":"like","values":[]}],"serve":"x"},
                            {"when":[{"attribute":"a","op":"lt","value":"3"}],"serve":"x"},
                            {"when":[{"attribute":"a","op":"semver_lt","value":"1.2"}],"serve":"x"},
                            {"when":[{"attribute":"a","op":"matches","value":"(a{1000}){1000}"}],"serve":"x"},
                            {"split":{"x":50,"y":40}},
                            {"serve":"x","split":{"x":100}}]},
              "p":{"prerequisites":[{"flag":"q"}]},
              "q":{"prerequisites":[{"flag":"p"},{"flag":"ghost"},{"flag":"plain","variants":["w"]}]},
              "plain":{},
              "r":{"rollout":"none","bucket_by":"tenant"}}}"#;
        let found = problems(text);
        let expect = [
            "segments.a: circular segment reference: a -> b -> a",
            "segments.b: circular segment reference: b -> a -> b",
            r#"segments.c.when[0].segment: unknown segment "nope""#,
            "flags.f.variants.y: variants of mixed types: expected string",
            r#"flags.f.default: unknown variant "z""#,
            r#"flags.g.rules[0].when[0].op: unknown operator "like""#,
            "flags.g.rules[1].when[0].value: expected a number, found a string",
            r#"flags.g.rules[2].when[0].value: "1.2" is not a semantic version"#,
            "flags.g.rules[3].when[0].value: bad regular expression",
            "flags.g.rules[4].split: the split's weights sum to 90%, not 100%",
            "flags.g.rules[5]: has both `serve` and `split`",
            "flags.r.bucket_by: a flag bound to a rollout buckets as the rollout does",
            r#"flags.q.prerequisites[1].flag: unknown flag "ghost""#,
            r#"flags.q.prerequisites[2].variants[0]: unknown variant "w""#,
            "flags.p.prerequisites: circular prerequisite reference: p -> q -> p",
        ];
        for e in expect {
            assert!(
                found.iter().any(|f| f.starts_with(e)),
                "missing {e:?} in {found:#?}"
            );
        }
    }

    #[test]
    fn deep_chains_are_refused() {
        let mut flags = vec![r#""f0":{}"#.to_owned()];
        for i in 1..=17 {
            flags.push(format!(
                r#""f{i}":{{"prerequisites":[{{"flag":"f{}"}}]}}"#,
                i - 1
            ));
        }
        let text = format!(r#"{{"version":1,"flags":{{{}}}}}"#, flags.join(","));
        let found = problems(&text);
        assert!(
            found
                .iter()
                .any(|p| p.contains("prerequisites nest 17 deep")),
            "{found:?}"
        );
    }
}
