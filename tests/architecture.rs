//! The crate's module graph, read from its `use` lines: no cycle anywhere in
//! `src/`, and the rollout module's layers point down only.
//!
//! Every `use` (and `pub use`) of a `crate::`, `super::`, `self::` or
//! child-module path in a
//! module's code (its `#[cfg(test)] mod tests` excluded) is an arrow from that
//! module to the module that *defines* the item: re-exports are followed, so
//! `use super::Plan` through `rollout/mod.rs` is an arrow to `rollout::plan`.
//! A module's arrows to its own ancestors' glue (`mod.rs` that only declares
//! and re-exports) are not counted. Paths written inline in the code (not in
//! a `use` line) are not read.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

/// A module path inside the crate, `[]` for the crate root.
type ModPath = Vec<String>;

struct Module {
    /// `(is_pub, path, alias)` of every `use` item, braces expanded.
    uses: Vec<(bool, Vec<String>, Option<String>)>,
}

struct Graph {
    modules: BTreeMap<ModPath, Module>,
}

impl Graph {
    fn read(src: &Path) -> Graph {
        let mut modules = BTreeMap::new();
        let mut stack = vec![src.to_path_buf()];
        while let Some(dir) = stack.pop() {
            for entry in fs::read_dir(&dir).expect("read src/") {
                let path = entry.expect("dir entry").path();
                if path.is_dir() {
                    stack.push(path);
                    continue;
                }
                if path.extension().and_then(|e| e.to_str()) != Some("rs") {
                    continue;
                }
                let relative = path.strip_prefix(src).expect("under src/");
                let mut segments: ModPath = relative
                    .with_extension("")
                    .iter()
                    .map(|s| s.to_string_lossy().into_owned())
                    .collect();
                if matches!(
                    segments.last().map(String::as_str),
                    Some("mod") | Some("lib")
                ) {
                    segments.pop();
                }
                let text = fs::read_to_string(&path).expect("read a source file");
                modules.insert(
                    segments,
                    Module {
                        uses: use_items(code_without_tests(&text)),
                    },
                );
            }
        }
        Graph { modules }
    }

    /// The absolute path of `segments` as written in module `at`, or `None`
    /// for an external crate's path (or `std`).
    fn absolute(&self, at: &[String], segments: &[String]) -> Option<Vec<String>> {
        let first = segments.first()?;
        match first.as_str() {
            "crate" => Some(segments[1..].to_vec()),
            "self" => Some(at.iter().chain(&segments[1..]).cloned().collect()),
            "super" => {
                let mut base = at.to_vec();
                let mut rest = segments;
                while rest.first().map(String::as_str) == Some("super") {
                    base.pop();
                    rest = &rest[1..];
                }
                base.extend(rest.iter().cloned());
                Some(base)
            }
            // A path that starts with a child module's name (`pub use plan::Plan;`).
            child => {
                let mut full = at.to_vec();
                full.push(child.to_owned());
                self.modules.contains_key(&full).then(|| {
                    full.into_iter()
                        .chain(segments[1..].iter().cloned())
                        .collect()
                })
            }
        }
    }

    /// The module that defines the item at the absolute path `full`.
    fn defining_module(&self, full: &[String], depth: usize) -> Option<ModPath> {
        for split in (0..=full.len()).rev() {
            let module = &full[..split];
            let Some(found) = self.modules.get(module) else {
                continue;
            };
            let rest = &full[split..];
            if let (Some(name), true) = (rest.first(), depth < 32) {
                for (is_pub, path, alias) in &found.uses {
                    let exported = alias.as_ref().or(path.last());
                    if *is_pub
                        && exported == Some(name)
                        && path.last().map(String::as_str) != Some("*")
                    {
                        if let Some(target) = self.absolute(module, path) {
                            let target: Vec<String> = target
                                .into_iter()
                                .chain(rest[1..].iter().cloned())
                                .collect();
                            return self.defining_module(&target, depth + 1);
                        }
                    }
                }
            }
            return Some(module.to_vec());
        }
        None
    }

    /// Module → the modules it uses.
    fn edges(&self) -> BTreeMap<ModPath, BTreeSet<ModPath>> {
        let mut edges = BTreeMap::new();
        for (at, module) in &self.modules {
            let mut targets = BTreeSet::new();
            for (_, path, _) in &module.uses {
                let mut path = path.clone();
                if path.last().map(String::as_str) == Some("*") {
                    path.pop();
                }
                let Some(full) = self.absolute(at, &path) else {
                    continue;
                };
                let Some(target) = self.defining_module(&full, 0) else {
                    continue;
                };
                let is_ancestor = target.len() <= at.len() && at[..target.len()] == target[..];
                if !is_ancestor {
                    targets.insert(target);
                }
            }
            edges.insert(at.clone(), targets);
        }
        edges
    }
}

/// The text before the module's unit tests.
fn code_without_tests(text: &str) -> &str {
    match text.find("#[cfg(test)]\nmod tests") {
        Some(at) => &text[..at],
        None => text,
    }
}

/// Every `use` item of `code`, braces expanded.
fn use_items(code: &str) -> Vec<(bool, Vec<String>, Option<String>)> {
    let mut items = Vec::new();
    let code: String = code
        .lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut rest = code.as_str();
    while let Some(at) = find_use(rest) {
        let (is_pub, start) = at;
        let Some(end) = rest[start..].find(';') else {
            break;
        };
        let tree: String = rest[start..start + end]
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        for (path, alias) in expand(&tree) {
            items.push((is_pub, path, alias));
        }
        rest = &rest[start + end..];
    }
    items
}

/// The next `use` statement: whether it is `pub`, and where its tree starts.
fn find_use(code: &str) -> Option<(bool, usize)> {
    let mut offset = 0;
    for line in code.split_inclusive('\n') {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        let (is_pub, after) = if let Some(rest) = trimmed.strip_prefix("pub ") {
            (true, rest)
        } else if trimmed.starts_with("pub(") {
            let close = trimmed.find(')').map_or(0, |c| c + 1);
            (false, trimmed[close..].trim_start())
        } else {
            (false, trimmed)
        };
        if let Some(tree) = after.strip_prefix("use ") {
            let start = offset + indent + (trimmed.len() - tree.len());
            return Some((is_pub, start));
        }
        offset += line.len();
    }
    None
}

/// `a::{b, c::{d as e}}` → `a::b`, `a::c::d` (alias `e`).
fn expand(tree: &str) -> Vec<(Vec<String>, Option<String>)> {
    let tree = tree.trim();
    if let Some(open) = tree.find('{') {
        let prefix = tree[..open].trim_end_matches("::").trim();
        let body = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
        let mut parts = Vec::new();
        let (mut depth, mut start) = (0, 0);
        for (i, c) in body.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    parts.push(&body[start..i]);
                    start = i + 1;
                }
                _ => {}
            }
        }
        parts.push(&body[start..]);
        let mut out = Vec::new();
        for part in parts.into_iter().map(str::trim).filter(|p| !p.is_empty()) {
            for (path, alias) in expand(part) {
                let mut full: Vec<String> = if prefix.is_empty() {
                    Vec::new()
                } else {
                    prefix.split("::").map(str::to_owned).collect()
                };
                if path != ["self"] {
                    full.extend(path);
                }
                out.push((full, alias));
            }
        }
        return out;
    }
    let (path, alias) = match tree.split_once(" as ") {
        Some((path, alias)) => (path, Some(alias.trim().to_owned())),
        None => (tree, None),
    };
    vec![(path.trim().split("::").map(str::to_owned).collect(), alias)]
}

fn name(path: &[String]) -> String {
    if path.is_empty() {
        "crate".to_owned()
    } else {
        path.join("::")
    }
}

/// Strongly connected components with more than one module (Tarjan).
fn cycles(edges: &BTreeMap<ModPath, BTreeSet<ModPath>>) -> Vec<Vec<ModPath>> {
    struct Walk<'a> {
        edges: &'a BTreeMap<ModPath, BTreeSet<ModPath>>,
        index: BTreeMap<&'a ModPath, usize>,
        low: BTreeMap<&'a ModPath, usize>,
        stack: Vec<&'a ModPath>,
        on_stack: BTreeSet<&'a ModPath>,
        found: Vec<Vec<ModPath>>,
    }
    impl<'a> Walk<'a> {
        fn visit(&mut self, v: &'a ModPath) {
            let n = self.index.len();
            self.index.insert(v, n);
            self.low.insert(v, n);
            self.stack.push(v);
            self.on_stack.insert(v);
            let edges = self.edges;
            for w in edges.get(v).into_iter().flatten() {
                let Some((w, _)) = edges.get_key_value(w) else {
                    continue;
                };
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let low = self.low[v].min(self.low[w]);
                    self.low.insert(v, low);
                } else if self.on_stack.contains(w) {
                    let low = self.low[v].min(self.index[w]);
                    self.low.insert(v, low);
                }
            }
            if self.low[v] == self.index[v] {
                let mut component = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(w);
                    component.push(w.clone());
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort();
                    self.found.push(component);
                }
            }
        }
    }
    let mut walk = Walk {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for v in edges.keys() {
        if !walk.index.contains_key(v) {
            walk.visit(v);
        }
    }
    walk.found
}

fn crate_graph() -> BTreeMap<ModPath, BTreeSet<ModPath>> {
    Graph::read(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src")).edges()
}

#[test]
fn no_module_of_the_crate_is_part_of_a_cycle() {
    let edges = crate_graph();
    assert!(edges.len() > 50, "read only {} modules", edges.len());
    let found = cycles(&edges);
    let mut report = String::new();
    for component in &found {
        report.push_str("cycle:\n");
        for module in component {
            let inside: Vec<String> = edges[module]
                .iter()
                .filter(|t| component.contains(t))
                .map(|t| name(t))
                .collect();
            report.push_str(&format!("  {} -> {}\n", name(module), inside.join(", ")));
        }
    }
    assert!(found.is_empty(), "{report}");
}

/// The rollout's layers, lowest first, one folder each under `src/rollout`:
/// a module may use its own layer and the ones below, never one above.
const ROLLOUT_LAYERS: [(&str, &str); 6] = [
    (
        "foundation",
        "time, bounded reads, atomic files, file errors",
    ),
    ("model", "plan, state, records, observations, events"),
    ("policy", "pure decisions"),
    (
        "store",
        "the state file, audit log, outbox, flags file, lock, requests, the commit",
    ),
    (
        "controller",
        "the engine: run loop, request server and client, safe deploy",
    ),
    (
        "adapters",
        "Prometheus, notification channels, metrics, simulation",
    ),
];

/// The layer of a rollout module: the folder it is in (`None` for the
/// `rollout` root, which only declares and re-exports, and for a module
/// outside the rollout).
fn rollout_layer(module: &[String]) -> Option<Result<usize, String>> {
    if module.first().map(String::as_str) != Some("rollout") || module.len() < 2 {
        return None;
    }
    let folder = &module[1];
    Some(
        ROLLOUT_LAYERS
            .iter()
            .position(|(name, _)| name == folder)
            .ok_or_else(|| folder.clone()),
    )
}

#[test]
fn the_rollout_layers_point_down_only() {
    let edges = crate_graph();
    let mut problems = Vec::new();
    for (folder, _) in ROLLOUT_LAYERS {
        let path = vec!["rollout".to_owned(), folder.to_owned()];
        if !edges.contains_key(&path) {
            problems.push(format!(
                "the layer folder src/rollout/{folder} was not read"
            ));
        }
    }
    for module in edges.keys() {
        if let Some(Err(folder)) = rollout_layer(module) {
            problems.push(format!(
                "{} is in `{folder}`, which is no layer (move it into a layer folder)",
                name(module)
            ));
        }
    }
    // The evaluator never reaches into the rollout (it compiles without it).
    let in_rollout = |m: &ModPath| m.first().map(String::as_str) == Some("rollout");
    for (module, targets) in &edges {
        if !module.is_empty() && !in_rollout(module) {
            for target in targets.iter().filter(|t| in_rollout(t)) {
                problems.push(format!(
                    "the evaluator's {} uses {}",
                    name(module),
                    name(target)
                ));
            }
        }
    }
    for (module, targets) in &edges {
        let Some(Ok(from)) = rollout_layer(module) else {
            continue;
        };
        for target in targets {
            if let Some(Ok(to)) = rollout_layer(target) {
                if to > from {
                    problems.push(format!(
                        "{} ({}: {}) uses {} ({}), a layer above",
                        name(module),
                        ROLLOUT_LAYERS[from].0,
                        ROLLOUT_LAYERS[from].1,
                        name(target),
                        ROLLOUT_LAYERS[to].0,
                    ));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_reader_finds_arrows_through_re_exports_and_braces() {
    let items = use_items("use super::{a::{B, c as d}, self as me};\npub use crate::x::Y;\n");
    let paths: Vec<String> = items
        .iter()
        .map(|(p, path, a)| format!("{p} {} {a:?}", path.join("::")))
        .collect();
    assert_eq!(
        paths,
        [
            "false super::a::B None",
            "false super::a::c Some(\"d\")",
            "false super Some(\"me\")",
            "true crate::x::Y None"
        ]
    );
    // Arrows reach the defining module through a re-export at a root.
    let edges = crate_graph();
    let policy = vec!["rollout".to_owned(), "policy".to_owned()];
    assert!(edges.contains_key(&policy), "rollout::policy not read");
    assert!(
        edges[&policy].contains(&vec![
            "rollout".to_owned(),
            "model".to_owned(),
            "plan".to_owned()
        ]),
        "policy -> plan not found: {:?}",
        edges[&policy]
    );
    // A cycle is found when there is one.
    let a = vec!["a".to_owned()];
    let b = vec!["b".to_owned()];
    let looped = BTreeMap::from([
        (a.clone(), BTreeSet::from([b.clone()])),
        (b.clone(), BTreeSet::from([a.clone()])),
    ]);
    assert_eq!(cycles(&looped), vec![vec![a, b]]);
}
