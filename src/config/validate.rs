//! Walks a parsed [`Node`] tree against the schema, collecting every problem.

use rustc_hash::{FxHashMap, FxHashSet};

use super::error::{Problem, ProblemKind};
use super::node::Node;
use super::path::Path;
use super::problems::{is_valid_name, Validator};
use super::targeting::{depth_from_edges, PendingExpect, Segments, ValidTargeting};
use super::MAX_REPORTED_PROBLEMS;
use crate::flag::FlagClass;
use crate::percentage::Percentage;
use crate::rule::{Expect, Prerequisite, Segment, MAX_DEPTH};

/// A document that passed validation, ready to compile.
#[derive(Debug)]
pub(crate) struct ValidConfig {
    pub(crate) rollouts: Vec<(Box<str>, Percentage)>,
    pub(crate) flags: Vec<ValidFlag>,
    pub(crate) segments: Vec<Segment>,
}

#[derive(Debug)]
pub(crate) struct ValidFlag {
    pub(crate) name: Box<str>,
    pub(crate) class: FlagClass,
    pub(crate) enabled: bool,
    pub(crate) binding: Binding,
    pub(crate) include: Vec<Box<str>>,
    pub(crate) exclude: Vec<Box<str>>,
    pub(crate) description: Option<Box<str>>,
    pub(crate) targeting: ValidTargeting,
    /// Resolved after every flag is read.
    pub(crate) prerequisites: Vec<Prerequisite>,
}

#[derive(Debug)]
pub(crate) enum Binding {
    None,
    Rollout(Box<str>),
    Own(Percentage),
}

const TOP_FIELDS: &[&str] = &["version", "rollouts", "segments", "flags"];
const TOP_EXPECTED: &str = "`version`, `rollouts`, `segments`, `flags`";
const ROLLOUT_FIELDS: &[&str] = &["percentage", "description"];
const ROLLOUT_EXPECTED: &str = "`percentage`, `description`";
const FLAG_FIELDS: &[&str] = &[
    "class",
    "enabled",
    "rollout",
    "percentage",
    "include",
    "exclude",
    "description",
    "variants",
    "default",
    "off",
    "rules",
    "prerequisites",
    "bucket_by",
    "seed",
    "track",
];
const FLAG_EXPECTED: &str = "`class`, `enabled`, `rollout`, `percentage`, `include`, `exclude`, \
`description`, `variants`, `default`, `off`, `rules`, `prerequisites`, `bucket_by`, `seed`, `track`";
/// The fields [`Validator::targeting`] reads.
const TARGETING_FIELDS: &[&str] = &[
    "variants",
    "default",
    "off",
    "rules",
    "prerequisites",
    "bucket_by",
    "seed",
    "track",
];

pub(crate) fn validate(root: &Node) -> Result<ValidConfig, (Vec<Problem>, usize)> {
    let mut v = Validator::default();
    let config = v.document(root);
    if v.problems.is_empty() && v.omitted == 0 {
        Ok(config)
    } else {
        Err((v.problems, v.omitted))
    }
}

impl Validator {
    fn name(&mut self, name: &str, path: &Path<'_>) {
        if !is_valid_name(name) {
            self.report(path, ProblemKind::BadName(name.to_owned()));
        }
    }

    fn users(&mut self, node: &Node, path: &Path<'_>) -> Vec<Box<str>> {
        let Node::Array(items) = node else {
            self.wrong_type(path, "an array of user ids", node);
            return Vec::new();
        };
        let mut users = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            if let Some(user) = self.string(item, &path.index(i)) {
                users.push(user.into());
            }
        }
        users
    }

    fn document(&mut self, root: &Node) -> ValidConfig {
        let mut config = ValidConfig {
            rollouts: Vec::new(),
            flags: Vec::new(),
            segments: Vec::new(),
        };
        let path = Path::Root;
        let Some(top) = self.record(root, &path, TOP_FIELDS, TOP_EXPECTED) else {
            return config;
        };
        let field = |name: &str| top.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);

        match field("version") {
            None => self.report(&path, ProblemKind::MissingField("version")),
            Some(Node::Number(n)) if n.as_u64() == Some(1) => {}
            Some(Node::Number(n)) => {
                self.report(
                    &path.key("version"),
                    ProblemKind::UnsupportedVersion(n.to_string()),
                );
            }
            Some(other) => self.wrong_type(&path.key("version"), "the number 1", other),
        }

        // Rollouts first: flags refer to them wherever they sit in the file.
        let mut rollout_names = FxHashSet::default();
        if let Some(node) = field("rollouts") {
            let rollouts_path = path.key("rollouts");
            if let Some(entries) = self.object(node, &rollouts_path) {
                for (id, body) in entries {
                    rollout_names.insert(id);
                    let here = rollouts_path.key(id);
                    self.name(id, &here);
                    if let Some(p) = self.rollout(body, &here) {
                        config.rollouts.push((id.into(), p));
                    }
                }
            }
        }

        // Segments next: rules refer to them.
        let segments = match field("segments") {
            Some(node) => self.segments(node, &path.key("segments")),
            None => Segments::default(),
        };

        let mut flag_names = FxHashSet::default();
        if let Some(node) = field("flags") {
            let flags_path = path.key("flags");
            if let Some(entries) = self.object(node, &flags_path) {
                flag_names.extend(entries.iter().map(|(name, _)| *name));
                for (name, body) in entries {
                    let here = flags_path.key(name);
                    self.key_name(name, &here);
                    if let Some(flag) = self.flag(name, body, &here, &rollout_names, &segments) {
                        config.flags.push(flag);
                    }
                }
            }
        }
        config.segments = segments.compiled;
        self.resolve_prerequisites(&mut config, &flag_names);

        self.check_rollout_classes(&config, &path.key("rollouts"));
        config
    }

    fn rollout(&mut self, body: &Node, path: &Path<'_>) -> Option<Percentage> {
        let entries = self.record(body, path, ROLLOUT_FIELDS, ROLLOUT_EXPECTED)?;
        let mut percentage = None;
        let mut found = false;
        for (key, value) in entries {
            match key {
                "percentage" => {
                    found = true;
                    percentage = self.percentage(value, &path.key(key));
                }
                "description" => {
                    self.string(value, &path.key(key));
                }
                _ => {}
            }
        }
        if !found {
            self.report(path, ProblemKind::MissingField("percentage"));
        }
        percentage
    }

    fn flag(
        &mut self,
        name: &str,
        body: &Node,
        path: &Path<'_>,
        rollouts: &FxHashSet<&str>,
        segments: &Segments,
    ) -> Option<ValidFlag> {
        let entries = self.record(body, path, FLAG_FIELDS, FLAG_EXPECTED)?;
        let targeting =
            self.targeting(name, &entries, path, entries_has(body, "rollout"), segments);
        let mut ok = targeting.is_some();
        let targeting = targeting?;
        let mut flag = ValidFlag {
            name: name.into(),
            class: FlagClass::Critical,
            enabled: true,
            binding: Binding::None,
            include: Vec::new(),
            exclude: Vec::new(),
            description: None,
            targeting,
            prerequisites: Vec::new(),
        };
        let mut rollout = None;
        let mut own = None;
        for (key, value) in entries {
            let here = path.key(key);
            match key {
                "class" => match self.string(value, &here) {
                    Some("critical") => flag.class = FlagClass::Critical,
                    Some("experimental") => flag.class = FlagClass::Experimental,
                    Some(other) => {
                        self.report(&here, ProblemKind::UnknownClass(other.to_owned()));
                        ok = false;
                    }
                    None => ok = false,
                },
                "enabled" => match self.boolean(value, &here) {
                    Some(b) => flag.enabled = b,
                    None => ok = false,
                },
                "rollout" => match self.string(value, &here) {
                    Some(id) if rollouts.contains(id) => rollout = Some(id),
                    Some(id) => {
                        self.report(&here, ProblemKind::UnknownRollout(id.to_owned()));
                        ok = false;
                    }
                    None => ok = false,
                },
                "percentage" => match self.percentage(value, &here) {
                    Some(p) => own = Some(p),
                    None => ok = false,
                },
                "include" => flag.include = self.users(value, &here),
                "exclude" => flag.exclude = self.users(value, &here),
                "description" => {
                    flag.description = self.string(value, &here).map(Into::into);
                }
                key if TARGETING_FIELDS.contains(&key) => {}
                _ => ok = false,
            }
        }
        let has_rollout = entries_has(body, "rollout");
        let has_percentage = entries_has(body, "percentage");
        if has_rollout && has_percentage {
            self.report(path, ProblemKind::RolloutAndPercentage);
            ok = false;
        }
        flag.binding = match (rollout, own) {
            (Some(id), None) => Binding::Rollout(id.into()),
            (None, Some(p)) => Binding::Own(p),
            _ => Binding::None,
        };
        ok.then_some(flag)
    }

    /// Prerequisites by name -> by position; unknown flags and variants,
    /// cycles and over-deep chains are reported at the prerequisite.
    fn resolve_prerequisites(&mut self, config: &mut ValidConfig, all: &FxHashSet<&str>) {
        let positions: FxHashMap<Box<str>, u32> = config
            .flags
            .iter()
            .enumerate()
            .map(|(i, f)| (f.name.clone(), i as u32))
            .collect();
        let mut resolved: Vec<Vec<Prerequisite>> = Vec::with_capacity(config.flags.len());
        for flag in &config.flags {
            let mut list = Vec::new();
            for pending in &flag.targeting.prerequisites {
                let at = Path::Root;
                let Some(&position) = positions.get(&pending.flag) else {
                    if !all.contains(&*pending.flag) {
                        self.report_at(
                            &pending.path,
                            ProblemKind::UnknownFlag(pending.flag.to_string()),
                        );
                    }
                    continue;
                };
                let _ = at;
                let required = &config.flags[position as usize];
                let expect = match &pending.expect {
                    PendingExpect::Enabled(on) => Expect::Enabled(*on),
                    PendingExpect::Variants(names) => {
                        let mut indices = Vec::with_capacity(names.len());
                        for (name, path) in names {
                            let found = required
                                .targeting
                                .variants
                                .iter()
                                .position(|(n, _)| n == &**name);
                            match found {
                                Some(i) => indices.push(i as u16),
                                None => self
                                    .report_at(path, ProblemKind::UnknownVariant(name.to_string())),
                            }
                        }
                        Expect::Variants(indices.into())
                    }
                };
                list.push(Prerequisite {
                    flag: position,
                    expect,
                });
            }
            resolved.push(list);
        }
        let edges: Vec<Vec<u32>> = resolved
            .iter()
            .map(|list| list.iter().map(|p| p.flag).collect())
            .collect();
        for (i, flag) in config.flags.iter().enumerate() {
            if edges[i].is_empty() {
                continue;
            }
            let path = Path::Root;
            let flags_path = path.key("flags");
            let here = flags_path.key(&flag.name);
            let here = here.key("prerequisites");
            match depth_from_edges(i, &edges) {
                Err(cycle) => {
                    let names: Vec<&str> = cycle
                        .iter()
                        .filter_map(|&j| config.flags.get(j).map(|f| &*f.name))
                        .collect();
                    self.report(
                        &here,
                        ProblemKind::Cycle {
                            what: "prerequisite",
                            through: names.join(" -> "),
                        },
                    );
                }
                Ok(depth) if depth > MAX_DEPTH => self.report(
                    &here,
                    ProblemKind::TooDeep {
                        what: "prerequisites",
                        depth,
                    },
                ),
                Ok(_) => {}
            }
        }
        for (flag, list) in config.flags.iter_mut().zip(resolved) {
            flag.prerequisites = list;
        }
    }

    /// A problem at a path rendered earlier.
    fn report_at(&mut self, path: &str, kind: ProblemKind) {
        if self.problems.len() < MAX_REPORTED_PROBLEMS {
            self.problems.push(Problem {
                path: path.to_owned(),
                kind,
            });
        } else {
            self.omitted += 1;
        }
    }

    fn check_rollout_classes(&mut self, config: &ValidConfig, rollouts_path: &Path<'_>) {
        let mut classes: FxHashMap<&str, (Vec<&str>, Vec<&str>)> = FxHashMap::default();
        for flag in &config.flags {
            if let Binding::Rollout(id) = &flag.binding {
                let entry = classes.entry(id).or_default();
                match flag.class {
                    FlagClass::Critical => entry.0.push(&flag.name),
                    FlagClass::Experimental => entry.1.push(&flag.name),
                }
            }
        }
        for (id, _) in &config.rollouts {
            if let Some((critical, experimental)) = classes.get(&**id) {
                if !critical.is_empty() && !experimental.is_empty() {
                    self.report(
                        &rollouts_path.key(id),
                        ProblemKind::MixedClasses {
                            critical: critical.join(", "),
                            experimental: experimental.join(", "),
                        },
                    );
                }
            }
        }
    }
}

fn entries_has(node: &Node, key: &str) -> bool {
    matches!(node, Node::Object(entries) if entries.iter().any(|(k, _)| k == key))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(text: &str) -> Vec<String> {
        let node: Node = serde_json::from_str(text).unwrap();
        match validate(&node) {
            Ok(_) => Vec::new(),
            Err((problems, _)) => problems.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn names_follow_the_pattern() {
        assert!(is_valid_name("htdag_enabled"));
        assert!(is_valid_name("a.b-c_9"));
        assert!(is_valid_name(&"a".repeat(128)));
        assert!(!is_valid_name(&"a".repeat(129)));
        assert!(!is_valid_name(""));
        assert!(!is_valid_name("Upper"));
        assert!(!is_valid_name("with space"));
        assert!(!is_valid_name("ünï"));
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let found = problems(
            r#"{"version":2,"extra":1,"rollouts":{"r":{"percentage":5}},
                "flags":{"B d":{},"x":{"percentage":150},"y":{"rollout":"nope"},
                         "z":{"rollout":"r","percentage":5}}}"#,
        );
        assert_eq!(
            found,
            [
                "extra: unknown field `extra`, expected one of `version`, `rollouts`, `segments`, `flags`",
                "version: unsupported version 2, expected 1",
                r#"flags["B d"]: invalid name "B d": keys are 1 to 128 bytes of letters, digits, '_', '.', '-'"#,
                "flags.x.percentage: 150 is outside 0..=100",
                r#"flags.y.rollout: unknown rollout "nope": it is not defined under `rollouts`"#,
                "flags.z: has both `rollout` and `percentage`; a flag takes at most one",
            ]
        );
    }

    #[test]
    fn mixed_rollouts_name_their_flags() {
        let found = problems(
            r#"{"version":1,"rollouts":{"r":{"percentage":5}},
                "flags":{"a":{"rollout":"r"},"b":{"rollout":"r","class":"experimental"}}}"#,
        );
        assert_eq!(found.len(), 1);
        assert!(
            found[0].starts_with("rollouts.r: binds critical flags (a) and experimental flags (b)")
        );
    }

    #[test]
    fn a_valid_document_has_no_problems() {
        let node: Node = serde_json::from_str(
            r#"{"version":1,"rollouts":{"r":{"percentage":5}},
                "flags":{"a":{"rollout":"r"},"b":{"percentage":12.5,"include":["u"],"exclude":[]},
                         "c":{"enabled":false,"class":"experimental"}}}"#,
        )
        .unwrap();
        let config = validate(&node).unwrap();
        assert_eq!(config.rollouts.len(), 1);
        assert_eq!(config.flags.len(), 3);
    }
}
