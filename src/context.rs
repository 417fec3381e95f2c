//! [`Context`]: who a request is for — a key and typed attributes — built on
//! the caller's stack and read by rules without allocating.
//!
//! Attribute names are resolved once to an [`AttributeKey`] (a small integer,
//! like a [`FlagHandle`](crate::FlagHandle) resolves a flag name): rules are
//! compiled against the same keys when a snapshot is built, so matching an
//! attribute on the hot path compares integers, never strings.
//!
//! ```
//! use genesis_flags::{AttributeKey, Context, FlagStore};
//!
//! let country = AttributeKey::new("country");     // once, at start-up
//! let plan = AttributeKey::new("plan");
//!
//! let store = FlagStore::from_json(r#"{"version": 1, "flags": {"new_checkout": {
//!     "rules": [{"when": [{"attribute": "country", "op": "in", "values": ["DE", "FR"]}],
//!                "serve": "on"}],
//!     "default": "off"}}}"#)?;
//!
//! // Per request, on the stack.
//! let attributes = [country.string("DE"), plan.string("pro")];
//! let context = Context::new("user-42", &attributes);
//! assert!(store.is_enabled_for("new_checkout", &context));
//! assert!(!store.is_enabled_for("new_checkout", &Context::new("user-42", &[])));
//! # Ok::<(), genesis_flags::ConfigError>(())
//! ```

use std::sync::{LazyLock, Mutex, PoisonError};
use std::time::SystemTime;

use rustc_hash::FxHashMap;

use crate::rule::semver::Semver;

/// The reserved attribute name that reads the context's key (the user id).
pub const KEY_ATTRIBUTE: &str = "key";

/// Every attribute name seen in this process, by key. Names come from flag
/// documents and from the caller's code; they are interned when a snapshot is
/// built or a key is created, never on the evaluation path.
struct Interner {
    ids: FxHashMap<Box<str>, u32>,
    names: Vec<&'static str>,
}

static INTERNER: LazyLock<Mutex<Interner>> = LazyLock::new(|| {
    Mutex::new(Interner {
        ids: FxHashMap::from_iter([(Box::from(KEY_ATTRIBUTE), 0)]),
        names: vec![KEY_ATTRIBUTE],
    })
});

/// An attribute name resolved once: the same name always gives the same key
/// in a process. Cheap to copy; create keys at start-up and keep them.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct AttributeKey(u32);

impl AttributeKey {
    /// The context's key itself (the name `"key"` in rules).
    pub const KEY: AttributeKey = AttributeKey(0);

    /// The key of `name` (interned for the life of the process; takes a lock).
    #[must_use]
    pub fn new(name: &str) -> Self {
        let mut interner = INTERNER.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(&id) = interner.ids.get(name) {
            return AttributeKey(id);
        }
        // Interned names live as long as the process: a leak bounded by the
        // distinct attribute names the process ever sees.
        let leaked: &'static str = Box::leak(Box::from(name));
        let id = u32::try_from(interner.names.len()).unwrap_or(u32::MAX);
        interner.names.push(leaked);
        interner.ids.insert(name.into(), id);
        AttributeKey(id)
    }

    /// The attribute's name.
    #[must_use]
    pub fn name(self) -> &'static str {
        let interner = INTERNER.lock().unwrap_or_else(PoisonError::into_inner);
        interner.names.get(self.0 as usize).copied().unwrap_or("")
    }

    /// `self = value` as a string attribute.
    #[must_use]
    pub fn string(self, value: &str) -> Attribute<'_> {
        Attribute::new(self, AttributeValue::String(value))
    }

    /// `self = value` as a number attribute.
    #[must_use]
    pub fn number(self, value: f64) -> Attribute<'static> {
        Attribute::new(self, AttributeValue::Number(value))
    }

    /// `self = value` as a boolean attribute.
    #[must_use]
    pub fn boolean(self, value: bool) -> Attribute<'static> {
        Attribute::new(self, AttributeValue::Bool(value))
    }

    /// `self = value` as a semantic version attribute.
    #[must_use]
    pub fn semver(self, value: Semver<'_>) -> Attribute<'_> {
        Attribute::new(self, AttributeValue::Semver(value))
    }

    /// `self = value` as a timestamp attribute.
    #[must_use]
    pub fn timestamp(self, value: SystemTime) -> Attribute<'static> {
        Attribute::new(self, AttributeValue::Timestamp(value))
    }

    /// `self = values` as a list of strings.
    #[must_use]
    pub fn list<'a>(self, values: &'a [&'a str]) -> Attribute<'a> {
        Attribute::new(self, AttributeValue::List(values))
    }
}

impl std::fmt::Debug for AttributeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AttributeKey({:?})", self.name())
    }
}

/// A typed attribute value, borrowed from the caller.
///
/// Rules convert where it is unambiguous: a string is parsed as a number,
/// a semantic version or an RFC 3339 timestamp when the operator needs one
/// (without allocating); a value that does not convert does not match.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum AttributeValue<'a> {
    /// A string.
    String(&'a str),
    /// A number.
    Number(f64),
    /// A boolean (matched by `in` against `"true"` / `"false"`).
    Bool(bool),
    /// A semantic version (see [`Semver::parse`]).
    Semver(Semver<'a>),
    /// A point in time.
    Timestamp(SystemTime),
    /// A list of strings: a string operator matches if any element does.
    List(&'a [&'a str]),
}

/// One attribute of a [`Context`]: a key and its value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Attribute<'a> {
    key: AttributeKey,
    value: AttributeValue<'a>,
}

impl<'a> Attribute<'a> {
    /// `key = value`.
    #[must_use]
    pub const fn new(key: AttributeKey, value: AttributeValue<'a>) -> Self {
        Attribute { key, value }
    }

    /// The attribute's key.
    #[must_use]
    pub const fn key(&self) -> AttributeKey {
        self.key
    }

    /// The attribute's value.
    #[must_use]
    pub const fn value(&self) -> AttributeValue<'a> {
        self.value
    }
}

/// One request's subject: its key (the user id, bucketed by percentages and
/// matched by `include`/`exclude`) and its attributes (matched by rules).
///
/// Four words, `Copy`, built on the stack over a slice of [`Attribute`]s.
/// A missing attribute is a defined case: every operator is false on it
/// (before `negate`). When an attribute appears twice, the first one counts.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    key: &'a str,
    attributes: &'a [Attribute<'a>],
}

impl<'a> Context<'a> {
    /// A context for `key` with `attributes`.
    #[must_use]
    pub const fn new(key: &'a str, attributes: &'a [Attribute<'a>]) -> Self {
        Context { key, attributes }
    }

    /// A context with a key and no attributes (what `is_enabled(name, user)` uses).
    #[must_use]
    pub const fn key_only(key: &'a str) -> Self {
        Context {
            key,
            attributes: &[],
        }
    }

    /// The context's key.
    #[must_use]
    pub const fn key(&self) -> &'a str {
        self.key
    }

    /// The attributes.
    #[must_use]
    pub const fn attributes(&self) -> &'a [Attribute<'a>] {
        self.attributes
    }

    /// The value of `key` (the reserved [`AttributeKey::KEY`] reads the
    /// context's key; an empty key is missing).
    #[inline]
    #[must_use]
    pub fn get(&self, key: AttributeKey) -> Option<AttributeValue<'a>> {
        if key == AttributeKey::KEY {
            return (!self.key.is_empty()).then_some(AttributeValue::String(self.key));
        }
        self.find(key).copied()
    }

    /// The value of a non-reserved attribute, by reference.
    #[inline(always)]
    pub(crate) fn find(&self, key: AttributeKey) -> Option<&'a AttributeValue<'a>> {
        self.attributes
            .iter()
            .find(|a| a.key == key)
            .map(|a| &a.value)
    }

    /// The string a percentage buckets by: the context's key, or a string
    /// attribute. `None` (no percentage holds it) when missing, empty or not
    /// a string.
    #[inline]
    pub(crate) fn bucket_key(&self, by: Option<AttributeKey>) -> Option<&'a str> {
        let key = match by {
            None => self.key,
            Some(attribute) => match self.get(attribute)? {
                AttributeValue::String(s) => s,
                _ => return None,
            },
        };
        (!key.is_empty()).then_some(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_intern_to_stable_keys() {
        let a = AttributeKey::new("ctx_test_country");
        assert_eq!(a, AttributeKey::new("ctx_test_country"));
        assert_ne!(a, AttributeKey::new("ctx_test_plan"));
        assert_eq!(a.name(), "ctx_test_country");
        assert_eq!(AttributeKey::new("key"), AttributeKey::KEY);
    }

    #[test]
    fn missing_and_first_wins() {
        let a = AttributeKey::new("ctx_test_a");
        let attrs = [a.string("x"), a.string("y")];
        let ctx = Context::new("u", &attrs);
        assert_eq!(ctx.get(a), Some(AttributeValue::String("x")));
        assert_eq!(ctx.get(AttributeKey::new("ctx_test_b")), None);
        assert_eq!(
            ctx.get(AttributeKey::KEY),
            Some(AttributeValue::String("u"))
        );
        assert_eq!(Context::key_only("").get(AttributeKey::KEY), None);
    }

    #[test]
    fn bucket_keys_are_non_empty_strings() {
        let tenant = AttributeKey::new("ctx_test_tenant");
        let n = AttributeKey::new("ctx_test_n");
        let attrs = [tenant.string("t-1"), n.number(3.0)];
        let ctx = Context::new("u", &attrs);
        assert_eq!(ctx.bucket_key(None), Some("u"));
        assert_eq!(ctx.bucket_key(Some(tenant)), Some("t-1"));
        assert_eq!(ctx.bucket_key(Some(n)), None);
        assert_eq!(Context::key_only("").bucket_key(None), None);
    }
}
