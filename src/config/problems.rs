//! The problem list a document's validation fills ([`Validator`]): every
//! problem with its JSON path, up to `MAX_REPORTED_PROBLEMS` listed and the
//! rest counted; the checks of JSON shapes every part of a document needs;
//! and what a valid name is.

use rustc_hash::FxHashSet;

use super::error::{Problem, ProblemKind};
use super::node::Node;
use super::path::Path;
use super::MAX_REPORTED_PROBLEMS;
use crate::percentage::Percentage;

/// Whether `name` is a valid flag key (or variant, segment or attribute
/// name): 1 to 128 bytes of Unicode letters and digits, `_`, `.`, `-` and
/// pictographs (emoji and the symbol blocks: U+2190 to U+2BFF, U+1F000 to
/// U+1FAFF); never whitespace, control or invisible format characters.
pub(crate) fn is_valid_key(name: &str) -> bool {
    (1..=128).contains(&name.len()) && name.chars().all(|c| {
        c.is_alphanumeric()
            || matches!(c, '_' | '.' | '-' | '\u{2190}'..='\u{2BFF}' | '\u{1F000}'..='\u{1FAFF}')
    })
}

/// Whether `name` matches `[a-z0-9_.-]{1,128}` (rollout ids).
pub(crate) fn is_valid_name(name: &str) -> bool {
    (1..=128).contains(&name.len())
        && name
            .bytes()
            .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-'))
}

/// The member `name` of an object's entries.
pub(super) fn field<'n>(entries: &[(&str, &'n Node)], name: &str) -> Option<&'n Node> {
    entries.iter().find(|(k, _)| *k == name).map(|(_, v)| *v)
}

/// Collects the problems of one document.
#[derive(Default)]
pub(super) struct Validator {
    pub(super) problems: Vec<Problem>,
    pub(super) omitted: usize,
}

impl Validator {
    /// Problems found so far (listed or counted).
    pub(super) fn problem_count(&self) -> usize {
        self.problems.len() + self.omitted
    }

    pub(super) fn report(&mut self, path: &Path<'_>, kind: ProblemKind) {
        if self.problems.len() < MAX_REPORTED_PROBLEMS {
            self.problems.push(Problem {
                path: path.to_string(),
                kind,
            });
        } else {
            self.omitted += 1;
        }
    }

    pub(super) fn wrong_type(&mut self, path: &Path<'_>, expected: &'static str, found: &Node) {
        self.report(
            path,
            ProblemKind::WrongType {
                expected,
                found: found.kind(),
            },
        );
    }

    /// The entries of an object, first occurrence of each key; later
    /// duplicates are reported. `None` (reported) when `node` is not an object.
    pub(super) fn object<'n>(
        &mut self,
        node: &'n Node,
        path: &Path<'_>,
    ) -> Option<Vec<(&'n str, &'n Node)>> {
        let Node::Object(entries) = node else {
            self.wrong_type(path, "an object", node);
            return None;
        };
        let mut seen = FxHashSet::default();
        let mut unique = Vec::with_capacity(entries.len());
        for (key, value) in entries {
            if seen.insert(key.as_str()) {
                unique.push((key.as_str(), value));
            } else {
                self.report(&path.key(key), ProblemKind::DuplicateKey(key.clone()));
            }
        }
        Some(unique)
    }

    /// Like [`object`](Self::object), for records with a fixed set of fields.
    pub(super) fn record<'n>(
        &mut self,
        node: &'n Node,
        path: &Path<'_>,
        allowed: &[&str],
        expected: &'static str,
    ) -> Option<Vec<(&'n str, &'n Node)>> {
        let entries = self.object(node, path)?;
        for (key, _) in &entries {
            if !allowed.contains(key) {
                self.report(
                    &path.key(key),
                    ProblemKind::UnknownField {
                        field: (*key).to_owned(),
                        expected,
                    },
                );
            }
        }
        Some(entries)
    }

    pub(super) fn percentage(&mut self, node: &Node, path: &Path<'_>) -> Option<Percentage> {
        let Node::Number(n) = node else {
            self.wrong_type(path, "a number", node);
            return None;
        };
        let value = n.as_f64().unwrap_or(f64::NAN);
        match Percentage::from_percent(value) {
            Ok(p) => Some(p),
            Err(e) => {
                self.report(path, ProblemKind::Percentage(e));
                None
            }
        }
    }

    pub(super) fn string<'n>(&mut self, node: &'n Node, path: &Path<'_>) -> Option<&'n str> {
        match node {
            Node::String(s) => Some(s),
            other => {
                self.wrong_type(path, "a string", other);
                None
            }
        }
    }

    pub(super) fn boolean(&mut self, node: &Node, path: &Path<'_>) -> Option<bool> {
        match node {
            Node::Bool(b) => Some(*b),
            other => {
                self.wrong_type(path, "a boolean", other);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_keys_take_mixed_case_and_utf8_letters() {
        for good in [
            "HtDag",
            "ünï.Ω-9_x",
            "新功能",
            &"a".repeat(128),
            &"é".repeat(64),
            "Feature.UTF-8.😊_φriend_你好_🌍",
            "deploy→prod★",
        ] {
            assert!(is_valid_key(good), "{good:?}");
        }
        for bad in [
            "",
            "a b",
            "tab\t",
            "nl\n",
            "nbsp\u{a0}",
            "ctl\u{7}",
            &"é".repeat(65),
            "a/b",
            "a:b",
            "zero\u{200b}width",
            "rtl\u{202e}",
            "joiner\u{200d}",
        ] {
            assert!(!is_valid_key(bad), "{bad:?}");
        }
    }
}
