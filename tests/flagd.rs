//! flagd: the testbed's scenarios (open-feature/flagd-testbed,
//! `evaluator/gherkin/*.feature`) over its flag documents
//! (`tests/data/flagd/`), as tables; load-time refusals; the OpenFeature
//! provider over a flagd document; property tests.
//!
//! Run with `cargo test --all-features --test evaluator flagd:: -- --nocapture`
//! to see the per-feature table (`passing/applicable`).
#![cfg(all(feature = "flagd", feature = "openfeature"))]

use std::collections::BTreeMap;

use genesis_flags::openfeature::GenesisProvider;
use genesis_flags::{
    AttributeKey, Context, FlagStore, ProblemKind, Reason, Snapshot, VariantType, VariantValue,
};
use open_feature::{EvaluationContext, EvaluationErrorCode, EvaluationReason, StructValue, Value};
use proptest::prelude::*;

#[path = "support/flagd_fuzz.rs"]
mod flagd_fuzz;

/// The type a scenario asks for.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Ty {
    Boolean,
    Str,
    Integer,
    Float,
    Object,
}

/// A context value of a scenario.
#[derive(Debug, Clone, Copy)]
enum Field {
    Str(&'static str),
    /// `user.name`-style nested property: outer key, inner key, value.
    Nested(&'static str, &'static str),
    /// An integer (the testbed's `with type "Integer"`).
    Int(i64),
}

/// What a scenario expects.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    /// The resolved value (as the feature file writes it).
    Value(&'static str),
    /// No value (the caller's default, without an error).
    Absent,
}

#[derive(Debug, Clone, Copy)]
struct Scenario {
    feature: &'static str,
    flag: &'static str,
    ty: Ty,
    default: &'static str,
    key: Option<&'static str>,
    fields: &'static [(&'static str, Field)],
    expect: Expect,
    reason: Option<&'static str>,
    error: Option<&'static str>,
    /// The document the provider suite loads for it (its `selector`).
    doc: Doc,
    /// The flag metadata it expects (provider suite's metadata.feature).
    metadata: Option<&'static [(&'static str, Meta)]>,
    /// Where this crate answers otherwise than the scenario as written, by
    /// design: what it answers instead and why (docs/flagd.md).
    instead: Option<Instead>,
}

const fn s(
    feature: &'static str,
    flag: &'static str,
    ty: Ty,
    default: &'static str,
    expect: &'static str,
) -> Scenario {
    Scenario {
        feature,
        flag,
        ty,
        default,
        key: None,
        fields: &[],
        expect: Expect::Value(expect),
        reason: None,
        error: None,
        doc: Doc::Provider,
        metadata: None,
        instead: None,
    }
}

impl Scenario {
    const fn key(mut self, key: &'static str) -> Self {
        self.key = Some(key);
        self
    }
    const fn fields(mut self, fields: &'static [(&'static str, Field)]) -> Self {
        self.fields = fields;
        self
    }
    const fn reason(mut self, reason: &'static str) -> Self {
        self.reason = Some(reason);
        self
    }
    const fn error(mut self, error: &'static str) -> Self {
        self.error = Some(error);
        self
    }
    const fn absent(mut self) -> Self {
        self.expect = Expect::Absent;
        self
    }
    const fn doc(mut self, doc: Doc) -> Self {
        self.doc = doc;
        self
    }
    const fn metadata(mut self, metadata: &'static [(&'static str, Meta)]) -> Self {
        self.metadata = Some(metadata);
        self
    }
    const fn instead(mut self, instead: Instead) -> Self {
        self.instead = Some(instead);
        self
    }
}

use Field::{Nested as N, Str as S};
use Ty::{Boolean, Float as Flt, Integer, Object, Str as Text};

const EVAL: &str = "evaluation.feature";
const ERR: &str = "errors.feature";
const TGT: &str = "targeting.feature";
const DIS: &str = "disabled.feature";
const NDV: &str = "no-default-variant.feature";
const STR: &str = "string.feature";
const PRE: &str = "precision.feature";
const REF: &str = "evaluator-refs.feature";
const SEM: &str = "semver.feature";
const FRA: &str = "fractional.feature";

const OBJECT: &str =
    r#"{"showImages": true,"title": "Check out these pics!","imagesPerPage": 100}"#;
const BALLMER: &[(&str, Field)] = &[("email", S("ballmer@macrosoft.com"))];

macro_rules! version {
    ($v:literal) => {
        &[("version", S($v))]
    };
}
macro_rules! name {
    ($v:literal) => {
        &[("user", N("name", $v))]
    };
}

/// The scenarios whose flags the testbed's documents define.
const SCENARIOS: &[Scenario] = &[
    // evaluation.feature: basic values of every type.
    s(EVAL, "boolean-flag", Boolean, "false", "true"),
    s(EVAL, "string-flag", Text, "bye", "hi"),
    s(EVAL, "integer-flag", Integer, "1", "10"),
    s(EVAL, "float-flag", Flt, "0.1", "0.5"),
    s(EVAL, "object-flag", Object, "{}", OBJECT),
    // errors.feature
    s(ERR, "missing-flag", Text, "uh-oh", "uh-oh").error("FLAG_NOT_FOUND"),
    s(ERR, "wrong-flag", Integer, "13", "13").error("TYPE_MISMATCH"),
    s(ERR, "boolean-flag", Text, "fallback", "fallback").error("TYPE_MISMATCH"),
    s(ERR, "boolean-flag", Integer, "1", "1").error("TYPE_MISMATCH"),
    s(ERR, "boolean-flag", Flt, "0.1", "0.1").error("TYPE_MISMATCH"),
    s(ERR, "string-flag", Boolean, "false", "false").error("TYPE_MISMATCH"),
    s(ERR, "string-flag", Integer, "1", "1").error("TYPE_MISMATCH"),
    s(ERR, "string-flag", Flt, "0.1", "0.1").error("TYPE_MISMATCH"),
    s(ERR, "integer-flag", Boolean, "false", "false").error("TYPE_MISMATCH"),
    s(ERR, "integer-flag", Text, "fallback", "fallback").error("TYPE_MISMATCH"),
    s(ERR, "float-flag", Boolean, "false", "false").error("TYPE_MISMATCH"),
    s(ERR, "float-flag", Text, "fallback", "fallback").error("TYPE_MISMATCH"),
    // targeting.feature
    s(TGT, "targeting-key-flag", Text, "fallback", "hit")
        .key("5c3d8535-f81a-4478-a6d3-afaa4d51199e")
        .reason("TARGETING_MATCH"),
    s(TGT, "targeting-key-flag", Text, "fallback", "miss")
        .key("f20bd32d-703b-48b6-bc8e-79d53c85134a")
        .reason("DEFAULT"),
    // disabled.feature
    s(DIS, "disabled-boolean-flag", Boolean, "false", "")
        .absent()
        .reason("DISABLED"),
    s(DIS, "disabled-string-flag", Text, "bye", "")
        .absent()
        .reason("DISABLED"),
    s(DIS, "disabled-integer-flag", Integer, "1", "")
        .absent()
        .reason("DISABLED"),
    s(DIS, "disabled-float-flag", Flt, "0.1", "")
        .absent()
        .reason("DISABLED"),
    s(DIS, "disabled-object-flag", Object, "{}", "")
        .absent()
        .reason("DISABLED"),
    // no-default-variant.feature
    s(NDV, "null-default-flag", Boolean, "true", "true").reason("DEFAULT"),
    s(NDV, "null-default-flag", Boolean, "false", "false").reason("DEFAULT"),
    s(NDV, "undefined-default-flag", Integer, "100", "100").reason("DEFAULT"),
    s(
        NDV,
        "no-default-flag-null-targeting-variant",
        Text,
        "Inventor",
        "Inventor",
    )
    .fields(&[("email", S("wozniak@orange.com"))])
    .reason("DEFAULT"),
    s(
        NDV,
        "no-default-flag-null-targeting-variant",
        Text,
        "CEO",
        "CEO",
    )
    .fields(&[("email", S("jobs@orange.com"))])
    .reason("TARGETING_MATCH"),
    s(
        NDV,
        "no-default-flag-undefined-targeting-variant",
        Text,
        "Retired",
        "Retired",
    )
    .fields(&[("email", S("wozniak@orange.com"))])
    .reason("DEFAULT"),
    // string.feature
    s(STR, "starts-ends-flag", Text, "fallback", "prefix").fields(&[("id", S("abcdef"))]),
    s(STR, "starts-ends-flag", Text, "fallback", "postfix").fields(&[("id", S("uvwxyz"))]),
    s(STR, "starts-ends-flag", Text, "fallback", "prefix").fields(&[("id", S("abcxyz"))]),
    s(STR, "starts-ends-flag", Text, "fallback", "none").fields(&[("id", S("lmnopq"))]),
    // precision.feature
    s(PRE, "large-integer-flag", Integer, "1", "2147483647").reason("STATIC"),
    s(PRE, "integral-float-flag", Flt, "0.1", "10.0").reason("STATIC"),
    s(PRE, "huge-integer-flag", Integer, "1", "9007199254740991").reason("STATIC"),
    // evaluator-refs.feature
    s(REF, "some-email-targeted-flag", Text, "fallback", "hi").fields(BALLMER),
    s(
        REF,
        "some-other-email-targeted-flag",
        Text,
        "fallback",
        "yes",
    )
    .fields(BALLMER),
    // semver.feature
    s(
        SEM,
        "equal-greater-lesser-version-flag",
        Text,
        "fallback",
        "equal",
    )
    .fields(version!("2.0.0")),
    s(
        SEM,
        "equal-greater-lesser-version-flag",
        Text,
        "fallback",
        "greater",
    )
    .fields(version!("2.1.0")),
    s(
        SEM,
        "equal-greater-lesser-version-flag",
        Text,
        "fallback",
        "lesser",
    )
    .fields(version!("1.9.0")),
    s(
        SEM,
        "equal-greater-lesser-version-flag",
        Text,
        "fallback",
        "lesser",
    )
    .fields(version!("2.0.0-alpha")),
    s(
        SEM,
        "equal-greater-lesser-version-flag",
        Text,
        "fallback",
        "none",
    )
    .fields(version!("2.0.0.0")),
    s(SEM, "major-minor-version-flag", Text, "fallback", "minor").fields(version!("3.0.1")),
    s(SEM, "major-minor-version-flag", Text, "fallback", "major").fields(version!("3.1.0")),
    s(SEM, "major-minor-version-flag", Text, "fallback", "none").fields(version!("4.0.0")),
    s(
        SEM,
        "semver-invalid-version-flag",
        Text,
        "wrong",
        "fallback",
    )
    .fields(version!("not-a-version")),
    s(
        SEM,
        "semver-invalid-operator-flag",
        Text,
        "wrong",
        "fallback",
    )
    .fields(version!("1.0.0")),
    s(SEM, "semver-v-prefix-flag", Text, "fallback", "match").fields(version!("1.0.0")),
    s(SEM, "semver-v-prefix-flag", Text, "fallback", "match").fields(version!("v1.0.0")),
    s(SEM, "semver-v-prefix-flag", Text, "fallback", "no-match").fields(version!("2.0.0")),
    s(
        SEM,
        "semver-partial-version-flag",
        Text,
        "fallback",
        "match",
    )
    .fields(version!("1.5.0")),
    s(
        SEM,
        "semver-partial-version-flag",
        Text,
        "fallback",
        "match",
    )
    .fields(version!("1.0.0")),
    s(
        SEM,
        "semver-partial-version-flag",
        Text,
        "fallback",
        "no-match",
    )
    .fields(version!("2.0.0")),
    s(SEM, "semver-build-metadata-flag", Text, "fallback", "match").fields(version!("1.0.0")),
    s(SEM, "semver-build-metadata-flag", Text, "fallback", "match").fields(version!("1.0.0+other")),
    s(
        SEM,
        "semver-build-metadata-flag",
        Text,
        "fallback",
        "no-match",
    )
    .fields(version!("2.0.0")),
    // fractional.feature, v2 (the current algorithm)
    s(FRA, "fractional-flag", Text, "fallback", "hearts").fields(name!("jack")),
    s(FRA, "fractional-flag", Text, "fallback", "spades").fields(name!("queen")),
    s(FRA, "fractional-flag", Text, "fallback", "clubs").fields(name!("ten")),
    s(FRA, "fractional-flag", Text, "fallback", "diamonds").fields(name!("nine")),
    s(FRA, "fractional-flag", Text, "fallback", "clubs").fields(name!("3")),
    s(FRA, "fractional-flag-shorthand", Text, "fallback", "heads").key("jon@company.com"),
    s(FRA, "fractional-flag-shorthand", Text, "fallback", "tails").key("jane@company.com"),
    s(
        FRA,
        "fractional-flag-A-shared-seed",
        Text,
        "fallback",
        "hearts",
    )
    .fields(name!("seven")),
    s(
        FRA,
        "fractional-flag-A-shared-seed",
        Text,
        "fallback",
        "diamonds",
    )
    .fields(name!("eight")),
    s(
        FRA,
        "fractional-flag-A-shared-seed",
        Text,
        "fallback",
        "clubs",
    )
    .fields(name!("nine")),
    s(
        FRA,
        "fractional-flag-A-shared-seed",
        Text,
        "fallback",
        "spades",
    )
    .fields(name!("two")),
    s(
        FRA,
        "fractional-single-entry-flag",
        Text,
        "fallback",
        "single",
    ),
    s(
        FRA,
        "fractional-flag-B-shared-seed",
        Text,
        "fallback",
        "ace-of-hearts",
    )
    .fields(name!("seven")),
    s(
        FRA,
        "fractional-flag-B-shared-seed",
        Text,
        "fallback",
        "ace-of-diamonds",
    )
    .fields(name!("eight")),
    s(
        FRA,
        "fractional-flag-B-shared-seed",
        Text,
        "fallback",
        "ace-of-clubs",
    )
    .fields(name!("nine")),
    s(
        FRA,
        "fractional-flag-B-shared-seed",
        Text,
        "fallback",
        "ace-of-spades",
    )
    .fields(name!("two")),
    s(FRA, "fractional-hash-edge-flag", Text, "fallback", "lower").key("ejOoVL"),
    s(FRA, "fractional-hash-edge-flag", Text, "fallback", "lower").key("bY9fO-"),
    s(FRA, "fractional-hash-edge-flag", Text, "fallback", "lower").key("SI7p-"),
    s(FRA, "fractional-hash-edge-flag", Text, "fallback", "upper").key("6LvT0"),
    s(FRA, "fractional-hash-edge-flag", Text, "fallback", "upper").key("ceQdGm"),
    s(
        FRA,
        "fractional-nested-if-flag",
        Text,
        "fallback",
        "premium",
    )
    .key("jon@company.com")
    .fields(&[("tier", S("premium"))]),
    s(
        FRA,
        "fractional-nested-if-flag",
        Text,
        "fallback",
        "standard",
    )
    .key("jon@company.com")
    .fields(&[("tier", S("basic"))]),
    s(
        FRA,
        "fractional-nested-if-flag",
        Text,
        "fallback",
        "standard",
    )
    .key("user1")
    .fields(&[("tier", S("premium"))]),
    s(
        FRA,
        "fractional-nested-if-flag",
        Text,
        "fallback",
        "standard",
    )
    .key("user1")
    .fields(&[("tier", S("basic"))]),
    s(FRA, "fractional-nested-var-flag", Text, "fallback", "red")
        .key("jon@company.com")
        .fields(&[("color", S("red"))]),
    s(FRA, "fractional-nested-var-flag", Text, "fallback", "green")
        .key("jon@company.com")
        .fields(&[("color", S("green"))]),
    s(FRA, "fractional-nested-var-flag", Text, "fallback", "blue")
        .key("user1")
        .fields(&[("color", S("red"))]),
    s(
        FRA,
        "fractional-nested-var-flag",
        Text,
        "fallback",
        "fallback",
    )
    .key("jon@company.com")
    .fields(&[("color", S("yellow"))])
    .error("GENERAL"),
    s(
        FRA,
        "fractional-nested-var-flag",
        Text,
        "fallback",
        "fallback",
    )
    .key("jon@company.com")
    .fields(&[("color", S(""))])
    .error("GENERAL"),
    s(
        FRA,
        "fractional-nested-weight-flag",
        Text,
        "fallback",
        "red",
    )
    .key("jon@company.com")
    .fields(&[("tier", S("premium"))]),
    s(
        FRA,
        "fractional-nested-weight-flag",
        Text,
        "fallback",
        "blue",
    )
    .key("jon@company.com")
    .fields(&[("tier", S("basic"))]),
    s(
        FRA,
        "fractional-nested-weight-flag",
        Text,
        "fallback",
        "red",
    )
    .key("user1")
    .fields(&[("tier", S("premium"))]),
    s(
        FRA,
        "fractional-nested-weight-flag",
        Text,
        "fallback",
        "blue",
    )
    .key("user1")
    .fields(&[("tier", S("basic"))]),
    s(
        FRA,
        "fractional-as-condition-flag",
        Text,
        "zero",
        "hundreds",
    )
    .key("some-targeting-key"),
    s(
        FRA,
        "fractional-as-condition-false-flag",
        Text,
        "zero",
        "ones",
    )
    .key("some-targeting-key"),
    s(
        FRA,
        "fractional-null-bucket-key-flag",
        Text,
        "wrong",
        "fallback",
    ),
];

/// Scenarios of the same feature files that are not applicable, with why.
const NOT_APPLICABLE: &[(&str, usize, &str)] = &[
    (STR, 4, "flags starts-with-/ends-with-non-string-flag and -wrong-args-flag are in no testbed document"),
    (REF, 3, "flag nested-ref-targeted-flag is in no testbed document"),
    (FRA, 17, "@fractional-v1 examples: the legacy float bucketing, superseded by v2"),
];

const TESTKIT: &str = include_str!("data/flagd/testkit-flags.json");
const DISABLED: &str = include_str!("data/flagd/disabled-flags.json");
const PRECISION: &str = include_str!("data/flagd/precision-flags.json");
const BROKEN_REF_FLAG: &str = "ref-to-nonexistent-evaluator-flag";

/// The testbed's documents as one: the testkit (less its flag whose `$ref`
/// names no evaluator, which this crate refuses at load; see
/// `a_ref_to_a_missing_evaluator_is_a_parse_error_at_load`) and the
/// provider suite's disabled and precision flags.
fn testbed_document() -> String {
    let mut doc: serde_json::Value = serde_json::from_str(TESTKIT).unwrap();
    let flags = doc["flags"].as_object_mut().unwrap();
    assert!(flags.remove(BROKEN_REF_FLAG).is_some());
    for other in [DISABLED, PRECISION] {
        let other: serde_json::Value = serde_json::from_str(other).unwrap();
        for (k, v) in other["flags"].as_object().unwrap() {
            flags.insert(k.clone(), v.clone());
        }
    }
    doc.to_string()
}

/// What a flagd evaluator answers: a value (or none), a reason, an error code.
#[derive(Debug, PartialEq)]
struct Outcome {
    value: Option<String>,
    reason: String,
    error: Option<String>,
}

fn render(value: &VariantValue) -> String {
    match value {
        VariantValue::Bool(b) => b.to_string(),
        VariantValue::String(s) => s.to_string(),
        VariantValue::Integer(i) => i.to_string(),
        VariantValue::Float(f) => format!("{f:?}"),
        VariantValue::Object(o) => serde_json::Value::Object(o.clone()).to_string(),
        _ => String::new(),
    }
}

fn wanted(ty: Ty) -> VariantType {
    match ty {
        Boolean => VariantType::Bool,
        Text => VariantType::String,
        Integer => VariantType::Integer,
        Flt => VariantType::Float,
        Object => VariantType::Object,
    }
}

fn reason_name(reason: Reason) -> &'static str {
    match reason {
        Reason::On => "STATIC",
        Reason::RuleMatch => "TARGETING_MATCH",
        Reason::Default => "DEFAULT",
        Reason::KillSwitch => "DISABLED",
        Reason::Split => "SPLIT",
        _ => "ERROR",
    }
}

/// Evaluates a scenario on the store, as flagd's evaluator would answer.
fn evaluate(store: &FlagStore, sc: &Scenario) -> Outcome {
    let attributes: Vec<_> = sc
        .fields
        .iter()
        .map(|(k, f)| match *f {
            S(v) => AttributeKey::new(k).string(v),
            N(inner, v) => AttributeKey::new(&format!("{k}.{inner}")).string(v),
            Field::Int(i) => AttributeKey::new(k).number(i as f64),
        })
        .collect();
    let context = Context::new(sc.key.unwrap_or(""), &attributes);
    let view = store.view();
    let snapshot = view.snapshot();
    let error = |code: &str| Outcome {
        value: Some(sc.default.to_owned()),
        reason: "ERROR".into(),
        error: Some(code.into()),
    };
    let Some(flag) = snapshot.flag(sc.flag) else {
        return error("FLAG_NOT_FOUND");
    };
    let served = flag.variant_type();
    let asked = wanted(sc.ty);
    if served != asked && !(asked == VariantType::Float && served == VariantType::Integer) {
        return error("TYPE_MISMATCH");
    }
    let variation = view.variation(sc.flag, &context);
    if variation.reason() == Reason::Error {
        return error("GENERAL");
    }
    Outcome {
        value: variation.value().map(render),
        reason: reason_name(variation.reason()).into(),
        error: None,
    }
}

fn value_matches(ty: Ty, got: &str, want: &str) -> bool {
    match ty {
        Flt => got.parse::<f64>().ok() == want.parse::<f64>().ok(),
        Object => {
            serde_json::from_str::<serde_json::Value>(got).ok()
                == serde_json::from_str::<serde_json::Value>(&want.replace("\\\"", "\"")).ok()
        }
        _ => got == want,
    }
}

fn check(outcome: &Outcome, sc: &Scenario) -> Result<(), std::string::String> {
    let value = match sc.expect {
        // An absent value: the caller's default applies, without an error.
        Expect::Absent => {
            if outcome.value.is_some() || outcome.error.is_some() {
                return Err(format!("expected no value, got {outcome:?}"));
            }
            None
        }
        Expect::Value(want) => {
            let got = outcome
                .value
                .clone()
                .unwrap_or_else(|| sc.default.to_owned());
            if !value_matches(sc.ty, &got, want) {
                return Err(format!("value {got:?}, expected {want:?} ({outcome:?})"));
            }
            Some(got)
        }
    };
    if let Some(reason) = sc.reason {
        if outcome.reason != reason {
            return Err(format!(
                "reason {}, expected {reason} (value {value:?})",
                outcome.reason
            ));
        }
    }
    if outcome.error.as_deref() != sc.error {
        return Err(format!(
            "error {:?}, expected {:?}",
            outcome.error, sc.error
        ));
    }
    Ok(())
}

#[test]
fn testbed_scenarios() {
    let store = FlagStore::builder().build(Snapshot::from_flagd_json(&testbed_document()).unwrap());
    let mut table: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let mut failures = Vec::new();
    for sc in SCENARIOS {
        let entry = table.entry(sc.feature).or_default();
        entry.1 += 1;
        match check(&evaluate(&store, sc), sc) {
            Ok(()) => entry.0 += 1,
            Err(why) => failures.push(format!(
                "{} {} {:?} {:?}: {why}",
                sc.feature, sc.flag, sc.key, sc.fields
            )),
        }
    }
    println!("flagd testbed (evaluator/gherkin), passing/applicable:");
    for (feature, (pass, all)) in &table {
        println!("  {feature:<28} {pass}/{all}");
    }
    for (feature, n, why) in NOT_APPLICABLE {
        println!("  not applicable: {feature} x{n}: {why}");
    }
    let (pass, all) = table.values().fold((0, 0), |(p, a), (x, y)| (p + x, a + y));
    println!("  {:<28} {pass}/{all}", "total");
    assert!(
        failures.is_empty(),
        "{} failing:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn a_ref_to_a_missing_evaluator_is_a_parse_error_at_load() {
    let e = Snapshot::from_flagd_json(TESTKIT).unwrap_err();
    let problems = e.problems();
    assert_eq!(problems.len(), 1, "{e}");
    assert_eq!(
        problems[0].path,
        r#"flags.ref-to-nonexistent-evaluator-flag.targeting.if[0]["$ref"]"#
    );
    assert!(e.to_string().contains("nonexistent_evaluator"), "{e}");
    // A store keeps its snapshot when asked to load it.
    let good = testbed_document();
    let store = FlagStore::builder().build(Snapshot::from_flagd_json(&good).unwrap());
    assert!(Snapshot::from_flagd_json(TESTKIT).is_err());
    assert!(store.view().snapshot().flag("boolean-flag").is_some());
}

#[test]
fn unusable_rules_are_refused_with_their_path() {
    let doc = |targeting: &str| {
        format!(
            r#"{{"flags": {{"f": {{"state": "ENABLED", "variants": {{"a": "a", "b": "b"}},
                "defaultVariant": "a", "targeting": {targeting}}}}}}}"#
        )
    };
    let cases: &[(&str, &str, &str)] = &[
        (
            r#"{"regex": [{"var": "x"}, "a"]}"#,
            "flags.f.targeting.regex",
            "unsupported operation `regex`",
        ),
        (
            r#"{"if": [{"==": [1]}, "a"]}"#,
            "flags.f.targeting.if[0][\"==\"]",
            "two arguments",
        ),
        (
            r#"{"fractional": [["a", 1.5]]}"#,
            "flags.f.targeting.fractional[0][1]",
            "integer",
        ),
        (
            r#"{"fractional": []}"#,
            "flags.f.targeting.fractional",
            "at least one bucket",
        ),
        (
            r#"{"var": {"cat": ["a"]}}"#,
            "flags.f.targeting.var",
            "constant string",
        ),
        (
            r#"{"if": [true, "a"], "or": [1]}"#,
            "flags.f.targeting",
            "exactly one key",
        ),
        (
            r#"{"$ref": "x"}"#,
            "flags.f.targeting[\"$ref\"]",
            "unknown evaluator",
        ),
        (r#"[1]"#, "flags.f.targeting", "expected object"),
    ];
    for (targeting, path, message) in cases {
        let e = Snapshot::from_flagd_json(&doc(targeting)).unwrap_err();
        let p = &e.problems()[0];
        assert_eq!(&p.path, path, "{targeting}: {e}");
        assert!(e.to_string().contains(message), "{targeting}: {e}");
    }
    // Document-level problems, all at once.
    let e = Snapshot::from_flagd_json(
        r#"{"flags": {"a": {"state": "ON", "variants": {"x": 1, "y": "s"}, "defaultVariant": "z"},
                      "b": {"variants": {"x": true}}}}"#,
    )
    .unwrap_err();
    let paths: Vec<_> = e.problems().iter().map(|p| p.path.as_str()).collect();
    assert_eq!(
        paths,
        ["flags.a.state", "flags.a.variants.y", "flags.b"],
        "{e}"
    );
}

#[test]
fn nesting_is_bounded_with_a_clear_error() {
    let mut rule = String::from("true");
    for _ in 0..200 {
        rule = format!(r#"{{"!": [{rule}]}}"#);
    }
    let doc = format!(
        r#"{{"flags": {{"f": {{"state": "ENABLED", "variants": {{"a": true}}, "defaultVariant": "a", "targeting": {rule}}}}}}}"#
    );
    let e = Snapshot::from_flagd_json(&doc).unwrap_err();
    assert!(
        e.problems()
            .iter()
            .any(|p| p.kind == ProblemKind::NestingTooDeep(genesis_flags::flagd::MAX_NESTING))
            || matches!(e, genesis_flags::ConfigError::Syntax(_)),
        "{e}"
    );
    // A cycle of $refs is refused, not expanded forever.
    let e = Snapshot::from_flagd_json(
        r#"{"flags": {"f": {"state": "ENABLED", "variants": {"a": true}, "defaultVariant": "a",
             "targeting": {"$ref": "x"}}},
            "$evaluators": {"x": {"!": [{"$ref": "y"}]}, "y": {"$ref": "x"}}}"#,
    )
    .unwrap_err();
    assert!(e.to_string().contains("circular"), "{e}");
}

fn provider() -> GenesisProvider {
    GenesisProvider::new(
        FlagStore::builder().build(Snapshot::from_flagd_json(&testbed_document()).unwrap()),
    )
}

#[test]
fn the_provider_answers_all_five_types_with_flagd_reasons() {
    let p = provider();
    let ctx = EvaluationContext::default().with_targeting_key("u");
    let b = p.resolve("boolean-flag", &ctx).unwrap();
    assert!(b.value);
    assert_eq!(
        (b.variant.as_deref(), b.reason),
        (Some("on"), Some(EvaluationReason::Static))
    );
    assert_eq!(p.resolve_string("string-flag", &ctx).unwrap().value, "hi");
    assert_eq!(p.resolve_int("integer-flag", &ctx).unwrap().value, 10);
    assert_eq!(p.resolve_float("float-flag", &ctx).unwrap().value, 0.5);
    let o = p.resolve_struct("object-flag", &ctx).unwrap().value;
    assert_eq!(o.fields["imagesPerPage"], Value::Int(100));
    // Targeting through a nested structure (user.name), fractional.
    let user = StructValue {
        fields: [("name".to_owned(), Value::String("jack".into()))].into(),
    };
    let nested = EvaluationContext::default().with_custom_field(
        "user",
        open_feature::EvaluationContextFieldValue::new_struct(user),
    );
    let f = p.resolve_string("fractional-flag", &nested).unwrap();
    assert_eq!(
        (f.value.as_str(), f.reason),
        ("hearts", Some(EvaluationReason::TargetingMatch))
    );
    // Default, disabled, errors.
    let miss = EvaluationContext::default().with_targeting_key("nobody");
    assert_eq!(
        p.resolve_string("targeting-key-flag", &miss)
            .unwrap()
            .reason,
        Some(EvaluationReason::Default)
    );
    let d = p.resolve("disabled-boolean-flag", &ctx).unwrap();
    assert_eq!(d.reason, Some(EvaluationReason::Disabled));
    for flag in ["nope", "boolean-flag"] {
        let e = p.resolve_int(flag, &ctx).unwrap_err();
        let want = if flag == "nope" {
            EvaluationErrorCode::FlagNotFound
        } else {
            EvaluationErrorCode::TypeMismatch
        };
        assert_eq!(e.code, want);
    }
    assert!(p.resolve_struct("nope", &ctx).is_err() && p.resolve_float("nope", &ctx).is_err());
    assert!(matches!(
        p.resolve("null-default-flag", &ctx).unwrap_err().code,
        EvaluationErrorCode::General(_)
    ));
    let yellow = EvaluationContext::default()
        .with_targeting_key("jon@company.com")
        .with_custom_field("color", "yellow");
    assert!(matches!(
        p.resolve_string("fractional-nested-var-flag", &yellow)
            .unwrap_err()
            .code,
        EvaluationErrorCode::General(_)
    ));
    // Metadata: the document's, typed.
    let m = p
        .resolve("metadata-flag", &ctx)
        .unwrap()
        .flag_metadata
        .unwrap()
        .values;
    assert_eq!(m.len(), 4);
    assert_eq!(
        m["string"],
        open_feature::FlagMetadataValue::String("1.0.2".into())
    );
    assert_eq!(m["integer"], open_feature::FlagMetadataValue::Int(2));
    assert_eq!(m["boolean"], open_feature::FlagMetadataValue::Bool(true));
    assert_eq!(m["float"], open_feature::FlagMetadataValue::Float(0.1));
}

#[test]
fn flag_set_metadata_is_merged_under_the_flags_own() {
    let s = Snapshot::from_flagd_json(
        r#"{"metadata": {"team": "core", "version": 1},
            "flags": {"f": {"state": "ENABLED", "variants": {"a": true}, "defaultVariant": "a",
                            "metadata": {"version": 2}}}}"#,
    )
    .unwrap();
    let m = s.flag("f").unwrap().metadata().unwrap();
    assert_eq!(m["team"], "core");
    assert_eq!(m["version"], 2);
    assert!(genesis_flags::flagd::is_flagd_document(
        r#"{"$schema": "https://flagd.dev/schema/v0/flags.json", "flags": {}}"#
    ));
    assert!(!genesis_flags::flagd::is_flagd_document(
        r#"{"version": 1, "flags": {}}"#
    ));
}

fn fractional_doc(weights: &[u32]) -> String {
    let variants: Vec<_> = (0..weights.len())
        .map(|i| format!(r#""v{i}": {i}"#))
        .collect();
    let buckets: Vec<_> = weights
        .iter()
        .enumerate()
        .map(|(i, w)| format!(r#"["v{i}", {w}]"#))
        .collect();
    format!(
        r#"{{"flags": {{"f": {{"state": "ENABLED", "variants": {{{}}}, "defaultVariant": "v0",
             "targeting": {{"fractional": [{}]}}}}}}}}"#,
        variants.join(","),
        buckets.join(",")
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    /// Fractional shares converge to the weights.
    #[test]
    fn fractional_shares_converge_to_weights(weights in proptest::collection::vec(1u32..50, 2..5)) {
        let store = FlagStore::builder().build(Snapshot::from_flagd_json(&fractional_doc(&weights)).unwrap());
        let view = store.view();
        let n = 20_000;
        let mut counts = vec![0usize; weights.len()];
        for i in 0..n {
            let key = format!("user-{i}");
            let v = view.variation("f", &Context::key_only(&key));
            counts[usize::from(v.evaluation().variant.unwrap())] += 1;
        }
        let total: u32 = weights.iter().sum();
        for (c, w) in counts.iter().zip(&weights) {
            let expected = f64::from(*w) / f64::from(total);
            let got = *c as f64 / n as f64;
            prop_assert!((got - expected).abs() < 0.015, "{got} vs {expected} ({weights:?})");
        }
    }

    /// Evaluation never panics and always answers with a known variant or
    /// none, whatever the context.
    #[test]
    fn evaluation_is_total_on_arbitrary_contexts(
        key in ".{0,12}",
        email in ".{0,16}",
        version in "[v0-9.a-z+-]{0,10}",
        n in proptest::num::f64::ANY,
    ) {
        let store = FlagStore::builder().build(Snapshot::from_flagd_json(&testbed_document()).unwrap());
        let view = store.view();
        let attributes = [
            AttributeKey::new("email").string(&email),
            AttributeKey::new("version").string(&version),
            AttributeKey::new("user.name").number(n),
            AttributeKey::new("id").number(n),
            AttributeKey::new("tier").string(&email),
            AttributeKey::new("color").string(&version),
        ];
        let context = Context::new(&key, &attributes);
        for flag in view.snapshot().flags() {
            let v = view.variation(flag.name(), &context);
            if let Some(i) = v.evaluation().variant {
                prop_assert!(flag.variant_value(i).is_some());
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Differential test against flagd's official Rust engine
// (`flagd-evaluation-engine`, with the resolution steps `open-feature-flagd`
// wraps around it: DISABLED, `{}` targeting is STATIC, a rule's variant is
// TARGETING_MATCH, null is DEFAULT, an unknown variant is GENERAL).
// ---------------------------------------------------------------------------

/// splitmix64: a seeded generator, so every run checks the same cases.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

const EMAILS: &[&str] = &[
    "ann@example.com",
    "bob@corp.io",
    "ballmer@macrosoft.com",
    "",
    "x",
];
const TIERS: &[&str] = &["premium", "basic", "free", "42", ""];
const VERSIONS: &[&str] = &[
    "1.0.0",
    "2.1.3",
    "2.0.0-alpha",
    "v1.2.3",
    "1.2",
    "3",
    "1.0.0+b",
    "x.y",
    "10.0.0",
];
const KEYS: &[&str] = &[
    "user-1",
    "user-2",
    "jon@company.com",
    "5c3d8535",
    "ceQdGm",
    "u",
];
const VARIANTS: &[&str] = &["a", "b", "c"];

/// A random value expression over the context.
fn gen_value(r: &mut Rng, depth: usize) -> serde_json::Value {
    use serde_json::json;
    let leaf = depth == 0 || r.below(3) == 0;
    if leaf {
        return match r.below(9) {
            0 => json!({"var": "email"}),
            1 => json!({"var": "age"}),
            2 => json!({"var": "tier"}),
            3 => json!({"var": ["tier", "none"]}),
            4 => json!({"var": "targetingKey"}),
            5 => json!(r.pick(TIERS)),
            6 => json!(r.below(100)),
            7 => json!({"var": "user.plan"}),
            _ => json!({"var": "$flagd.flagKey"}),
        };
    }
    let a = gen_value(r, depth - 1);
    let b = gen_value(r, depth - 1);
    match r.below(8) {
        0 => json!({"cat": [a, "-", b]}),
        1 => json!({"substr": [a, r.below(5) as i64 - 2]}),
        2..=4 => gen_num(r, depth),
        5 => json!({"merge": [a, [b]]}),
        6 => json!({"if": [gen_cond(r, depth - 1), a, b]}),
        _ => json!({"+": [a, b]}),
    }
}

/// A random numeric expression (JsonLogic's arithmetic reads numbers).
fn gen_num(r: &mut Rng, depth: usize) -> serde_json::Value {
    use serde_json::json;
    if depth == 0 || r.below(3) == 0 {
        return match r.below(3) {
            0 => json!({"var": ["age", 0]}),
            1 => json!(r.below(50)),
            _ => json!(r.below(9) as f64 / 2.0),
        };
    }
    let a = gen_num(r, depth - 1);
    let b = gen_num(r, depth - 1);
    match r.below(7) {
        0 => json!({"+": [a, b]}),
        1 => json!({"-": [a, b]}),
        2 => json!({"*": [a, b]}),
        3 => json!({"/": [a, {"+": [b, 1]}]}),
        4 => json!({"%": [a, 7]}),
        5 => json!({"min": [a, b]}),
        _ => json!({"max": [a, b, 3]}),
    }
}

/// A random condition.
fn gen_cond(r: &mut Rng, depth: usize) -> serde_json::Value {
    use serde_json::json;
    let a = gen_value(r, depth.saturating_sub(1));
    let b = gen_value(r, depth.saturating_sub(1));
    match r.below(if depth == 0 { 14 } else { 19 }) {
        0 => json!({"==": [a, b]}),
        1 => json!({"!=": [a, b]}),
        2 => json!({"===": [a, b]}),
        3 => json!({"!==": [a, b]}),
        4 => json!({"<": [a, b]}),
        5 => json!({"<=": [a, b]}),
        6 => json!({">": [a, b]}),
        7 => json!({">=": [{"var": "age"}, r.below(80)]}),
        8 => json!({"<": [10, {"var": "age"}, 60]}),
        9 => json!({"in": [{"var": "tier"}, ["premium", "basic", 42]]}),
        10 => json!({"in": [r.pick(&["corp", "example", "@", ""]), {"var": "email"}]}),
        11 => json!({"starts_with": [{"var": "email"}, r.pick(&["ann", "b", ""])]}),
        12 => json!({"ends_with": [{"var": "email"}, r.pick(&[".com", ".io", "x"])]}),
        13 => {
            json!({"sem_ver": [{"var": "version"}, r.pick(&["=", "!=", "<", "<=", ">", ">=", "^", "~"]), r.pick(VERSIONS)]})
        }
        14 => json!({"!": [gen_cond(r, depth - 1)]}),
        15 => json!({"and": [gen_cond(r, depth - 1), gen_cond(r, depth - 1)]}),
        16 => json!({"or": [gen_cond(r, depth - 1), {"!!": [a]}]}),
        17 => json!({"!": {"missing": ["email", "tier"]}}),
        _ => json!({"!": {"missing_some": [1, ["email", "tier", "age"]]}}),
    }
}

fn gen_fractional(r: &mut Rng) -> serde_json::Value {
    use serde_json::json;
    let mut args = Vec::new();
    match r.below(3) {
        0 => {}
        1 => args.push(json!({"cat": [{"var": "$flagd.flagKey"}, {"var": "email"}]})),
        _ => args.push(json!({"var": "targetingKey"})),
    }
    for v in VARIANTS.iter().take(2 + r.below(2)) {
        args.push(json!([v, r.below(60)]));
    }
    json!({"fractional": args})
}

/// A random targeting rule that returns a variant name or null.
fn gen_targeting(r: &mut Rng, fractional: bool) -> serde_json::Value {
    use serde_json::json;
    if fractional {
        return gen_fractional(r);
    }
    match r.below(5) {
        0 => json!({}),
        1 => json!({"if": [gen_cond(r, 2), r.pick(VARIANTS)]}),
        2 => {
            json!({"if": [gen_cond(r, 2), r.pick(VARIANTS), gen_cond(r, 1), r.pick(VARIANTS), r.pick(VARIANTS)]})
        }
        3 => json!({"if": [gen_cond(r, 2), r.pick(VARIANTS), null]}),
        _ => {
            json!({"if": [gen_cond(r, 1), {"if": [gen_cond(r, 1), r.pick(VARIANTS), r.pick(VARIANTS)]}, r.pick(VARIANTS)]})
        }
    }
}

/// One generated context, for both engines.
#[derive(Clone, Copy)]
struct GenContext {
    key: Option<&'static str>,
    email: Option<&'static str>,
    tier: Option<&'static str>,
    version: Option<&'static str>,
    age: Option<f64>,
    plan: Option<&'static str>,
}

fn gen_context(r: &mut Rng) -> GenContext {
    let maybe =
        |r: &mut Rng, items: &'static [&'static str]| (r.below(5) != 0).then(|| *r.pick(items));
    GenContext {
        key: maybe(r, KEYS),
        email: maybe(r, EMAILS),
        tier: maybe(r, TIERS),
        version: maybe(r, VERSIONS),
        age: (r.below(5) != 0)
            .then(|| r.below(90) as f64 + if r.below(4) == 0 { 0.5 } else { 0.0 }),
        plan: maybe(r, TIERS),
    }
}

/// An outcome both sides can state: variant, reason, or an error class.
#[derive(Debug, Clone, PartialEq)]
enum Answer {
    Served(std::string::String, &'static str),
    Error(&'static str),
}

fn ours(store: &FlagStore, c: &GenContext) -> Answer {
    let mut attributes = Vec::new();
    if let Some(e) = c.email {
        attributes.push(AttributeKey::new("email").string(e));
    }
    if let Some(t) = c.tier {
        attributes.push(AttributeKey::new("tier").string(t));
    }
    if let Some(v) = c.version {
        attributes.push(AttributeKey::new("version").string(v));
    }
    if let Some(a) = c.age {
        attributes.push(AttributeKey::new("age").number(a));
    }
    if let Some(p) = c.plan {
        attributes.push(AttributeKey::new("user.plan").string(p));
    }
    let view = store.view();
    let v = view.variation("f", &Context::new(c.key.unwrap_or(""), &attributes));
    match (v.name(), v.reason()) {
        (Some(name), reason) => Answer::Served(name.to_owned(), reason_name(reason)),
        (None, Reason::Error) => Answer::Error("GENERAL"),
        (None, Reason::KillSwitch) => Answer::Error("DISABLED"),
        (None, _) => Answer::Error("NO_VARIANT"),
    }
}

fn official(doc: &str, c: &GenContext, operator: &flagd_evaluation_engine::Operator) -> Answer {
    let parsed = flagd_evaluation_engine::FlagParser::parse_string(doc).unwrap();
    let flag = &parsed.flags["f"];
    if flag.state == "DISABLED" {
        return Answer::Error("DISABLED");
    }
    let mut ctx = EvaluationContext::default();
    if let Some(k) = c.key {
        ctx = ctx.with_targeting_key(k);
    }
    if let Some(e) = c.email {
        ctx = ctx.with_custom_field("email", e);
    }
    if let Some(t) = c.tier {
        ctx = ctx.with_custom_field("tier", t);
    }
    if let Some(v) = c.version {
        ctx = ctx.with_custom_field("version", v);
    }
    if let Some(a) = c.age {
        ctx = if a.fract() == 0.0 {
            ctx.with_custom_field("age", a as i64)
        } else {
            ctx.with_custom_field("age", a)
        };
    }
    if let Some(p) = c.plan {
        let user = StructValue {
            fields: [("plan".to_owned(), Value::String(p.into()))].into(),
        };
        ctx = ctx.with_custom_field(
            "user",
            open_feature::EvaluationContextFieldValue::new_struct(user),
        );
    }
    let (variant, reason) = if flag.get_targeting() == "{}" {
        (flag.default_variant.clone(), "STATIC")
    } else {
        match operator.apply("f", &flag.get_targeting(), &ctx) {
            Ok(Some(v)) => (v, "TARGETING_MATCH"),
            Ok(None) => (flag.default_variant.clone(), "DEFAULT"),
            // datalogic-rs throws on NaN where JsonLogic computes with it.
            Err(e) if e.to_string().contains(r#""NaN""#) => return Answer::Error("THROWN_NAN"),
            Err(_) => return Answer::Error("PARSE_ERROR"),
        }
    };
    if flag.variants.contains_key(&variant) {
        Answer::Served(variant, reason)
    } else {
        Answer::Error("GENERAL")
    }
}

/// Why the two sides may differ, each documented in docs/flagd.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Deviation {
    /// The engine hashes a CBOR encoding of the bucketing value (a draft
    /// flagd proposal); flagd's specification and testbed (v2) hash its
    /// UTF-8 bytes. Checked: our bucket is the v2 formula, theirs the CBOR one.
    FractionalCbor,
    /// The engine answers null for `fractional` without a targeting key;
    /// the testbed's single-bucket scenario expects a bucket.
    FractionalNoKey,
    /// The engine throws where an arithmetic result is NaN (JsonLogic
    /// computes on with NaN: comparisons false, the value falsy).
    ThrowsOnNaN,
    /// The engine reads versions with the strict `semver` crate: no `v`
    /// prefix, no partial version, build metadata compared; flagd's testbed
    /// accepts the first two and ignores build metadata. Checked: the engine
    /// agrees once the versions are written in full without build metadata.
    SemverStrict,
    /// JsonLogic's `missing` counts `""` as missing; the engine does not.
    /// Checked: the engine agrees once the empty values are left out.
    MissingEmptyString,
    /// JsonLogic's `null == ""` is false (JavaScript's loose equality); the
    /// engine's is true. Checked: the engine agrees once the missing values
    /// are present (as a value equal to nothing else).
    LooseNullEquality,
    /// Arithmetic over a missing or empty value is NaN in JsonLogic (`+`
    /// and `*` read operands with parseFloat); the engine reads 0. Checked:
    /// the rule computes on a value the context lacks or has empty.
    EmptyArithmetic,
}

/// The version as the strict `semver` crate compares it the way flagd's
/// testbed does: no `v`, written in full (`1.2` is `1.2.0`), no build
/// metadata.
fn full_version(v: &str) -> std::string::String {
    let v = v.trim_start_matches(['v', 'V']);
    let v = v.split('+').next().unwrap_or_default();
    let (core, rest) = v.find('-').map_or((v, ""), |i| v.split_at(i));
    match core.matches('.').count() {
        0 => format!("{core}.0.0{rest}"),
        1 => format!("{core}.0{rest}"),
        _ => v.to_owned(),
    }
}

/// Variables read under an arithmetic operation of `rule`.
fn arithmetic_vars(rule: &serde_json::Value, inside: bool, out: &mut Vec<std::string::String>) {
    match rule {
        serde_json::Value::Object(map) => {
            for (op, args) in map {
                if op == "var" {
                    if inside {
                        let name = args
                            .as_str()
                            .or_else(|| args[0].as_str())
                            .unwrap_or_default();
                        let defaulted = args.as_array().is_some_and(|a| a.len() > 1);
                        if !defaulted {
                            out.push(name.to_owned());
                        }
                    }
                } else {
                    let arith = matches!(op.as_str(), "+" | "-" | "*" | "/" | "%" | "min" | "max");
                    arithmetic_vars(args, inside || arith, out);
                }
            }
        }
        serde_json::Value::Array(items) => {
            items.iter().for_each(|i| arithmetic_vars(i, inside, out))
        }
        _ => {}
    }
}

/// Explains a disagreement that is not about `fractional`: the input is
/// changed in the way each deviation says, cumulatively, and the engine must
/// then agree with this crate (or fail only on NaN). The first change that
/// was needed names the deviation.
fn explain_other(
    doc: &str,
    targeting: &serde_json::Value,
    c: &GenContext,
    ours_answer: &Answer,
    theirs: &Answer,
    operator: &flagd_evaluation_engine::Operator,
) -> Option<Deviation> {
    if *theirs == Answer::Error("THROWN_NAN") {
        return Some(Deviation::ThrowsOnNaN);
    }
    let settled = |a: &Answer| a == ours_answer || *a == Answer::Error("THROWN_NAN");
    let mut doc = doc.to_owned();
    let mut c = *c;
    let mut first = None;
    if doc.contains("sem_ver") {
        for v in VERSIONS {
            doc = doc.replace(&format!("\"{v}\""), &format!("\"{}\"", full_version(v)));
        }
        c.version = c
            .version
            .map(|v| &*Box::leak(full_version(v).into_boxed_str()));
        first = first.or(Some(Deviation::SemverStrict));
        if settled(&official(&doc, &c, operator)) {
            return first;
        }
    }
    if doc.contains("missing") && (c.email == Some("") || c.tier == Some("")) {
        c.email = c.email.filter(|e| !e.is_empty());
        c.tier = c.tier.filter(|t| !t.is_empty());
        first = first.or(Some(Deviation::MissingEmptyString));
        if settled(&official(&doc, &c, operator)) {
            return first;
        }
    }
    if doc.contains("\"==\"") || doc.contains("\"!=\"") {
        let before = (c.email, c.tier, c.plan);
        c.email = c.email.or(Some("\u{1}"));
        c.tier = c.tier.or(Some("\u{1}"));
        c.plan = c.plan.or(Some("\u{1}"));
        if (c.email, c.tier, c.plan) != before {
            first = first.or(Some(Deviation::LooseNullEquality));
            if settled(&official(&doc, &c, operator)) {
                return first;
            }
        }
    }
    // Arithmetic over a missing or empty value: NaN in JsonLogic (its `+`
    // and `*` use parseFloat), 0 in the engine.
    let mut vars = Vec::new();
    arithmetic_vars(targeting, false, &mut vars);
    let absent = |name: &str| match name {
        "email" => c.email.is_none_or(str::is_empty),
        "tier" => c.tier.is_none_or(str::is_empty),
        "user.plan" => c.plan.is_none_or(str::is_empty),
        "targetingKey" => c.key.is_none(),
        "age" => c.age.is_none(),
        _ => false,
    };
    if vars.iter().any(|v| absent(v)) {
        return Some(first.unwrap_or(Deviation::EmptyArithmetic));
    }
    None
}

/// The variant `fractional` picks for `bytes` under weights `w`.
fn pick_by_hash(
    bytes: &[u8],
    weights: &[(std::string::String, u64)],
) -> Option<std::string::String> {
    let total: u64 = weights.iter().map(|(_, w)| w).sum();
    if total == 0 {
        return None;
    }
    let hash = murmur3::murmur3_32(&mut std::io::Cursor::new(bytes), 0).unwrap();
    let bucket = (u64::from(hash) * total) >> 32;
    let mut end = 0;
    for (name, w) in weights {
        end += w;
        if bucket < end {
            return Some(name.clone());
        }
    }
    None
}

/// Explains a fractional disagreement by recomputing both sides
/// independently: ours with the specification's v2 bytes, theirs with the
/// CBOR bytes. `None` when that does not explain it.
fn explain_fractional(
    targeting: &serde_json::Value,
    c: &GenContext,
    a: &Answer,
    b: &Answer,
) -> Option<Deviation> {
    let args = targeting["fractional"].as_array()?;
    let (by, buckets) = match args.first()? {
        serde_json::Value::Array(_) => (None, &args[..]),
        first => (Some(first), &args[1..]),
    };
    let weights: Vec<(std::string::String, u64)> = buckets
        .iter()
        .map(|b| {
            (
                b[0].as_str().unwrap_or_default().to_owned(),
                b[1].as_u64().unwrap_or(1),
            )
        })
        .collect();
    let cbor = |v: &ciborium::Value| {
        let mut out = Vec::new();
        ciborium::into_writer(v, &mut out).unwrap();
        out
    };
    let (v2, v3): (Option<Vec<u8>>, Option<Vec<u8>>) = match by {
        None => {
            let key = c.key.unwrap_or("");
            let v2 = Some(format!("f{key}").into_bytes());
            let v3 = (!key.is_empty()).then(|| {
                cbor(&ciborium::Value::Array(vec![
                    ciborium::Value::Text("f".into()),
                    ciborium::Value::Text(key.into()),
                ]))
            });
            (v2, v3)
        }
        Some(by) => {
            let text = if by.get("cat").is_some() {
                Some(format!("f{}", c.email.unwrap_or("")))
            } else {
                c.key.map(str::to_owned)
            };
            let v3 = text
                .as_ref()
                .map(|t| cbor(&ciborium::Value::Text(t.clone())));
            (text.map(std::string::String::into_bytes), v3)
        }
    };
    let expect = |bytes: Option<Vec<u8>>| -> Answer {
        match bytes.and_then(|b| pick_by_hash(&b, &weights)) {
            Some(v) => Answer::Served(v, "TARGETING_MATCH"),
            None => Answer::Served("a".into(), "DEFAULT"),
        }
    };
    let theirs_is_cbor = expect(v3.clone()) == *b;
    let ours_is_v2 = expect(v2) == *a;
    match (ours_is_v2, theirs_is_cbor, v3.is_none()) {
        (true, true, true) => Some(Deviation::FractionalNoKey),
        (true, true, false) => Some(Deviation::FractionalCbor),
        _ => None,
    }
}

#[test]
fn differential_against_the_official_rust_engine() {
    let operator = flagd_evaluation_engine::Operator::new();
    let mut rng = Rng(0x5eed_f1a6_d000_0018);
    let documents = 2500;
    let contexts = 4;
    let (mut cases, mut agree) = (0usize, 0usize);
    let mut explained: BTreeMap<Deviation, usize> = BTreeMap::new();
    let mut unexplained = Vec::new();
    for i in 0..documents {
        let fractional = i % 5 == 0;
        let targeting = gen_targeting(&mut rng, fractional);
        let state = if rng.below(25) == 0 {
            "DISABLED"
        } else {
            "ENABLED"
        };
        let doc = serde_json::json!({
            "flags": {"f": {
                "state": state,
                "variants": {"a": "A", "b": "B", "c": "C"},
                "defaultVariant": "a",
                "targeting": targeting,
            }}
        })
        .to_string();
        let store = FlagStore::builder()
            .build(Snapshot::from_flagd_json(&doc).unwrap_or_else(|e| panic!("{doc}: {e}")));
        for _ in 0..contexts {
            let c = gen_context(&mut rng);
            cases += 1;
            let a = ours(&store, &c);
            let b = official(&doc, &c, &operator);
            if a == b {
                agree += 1;
                continue;
            }
            let why = if fractional {
                explain_fractional(&targeting, &c, &a, &b)
            } else {
                explain_other(&doc, &targeting, &c, &a, &b, &operator)
            };
            match why {
                Some(d) => *explained.entry(d).or_default() += 1,
                None => unexplained.push(format!("{doc}\n  key={:?} email={:?} tier={:?} version={:?} age={:?} plan={:?}\n  ours={a:?} official={b:?}", c.key, c.email, c.tier, c.version, c.age, c.plan)),
            }
        }
    }
    println!("differential vs flagd-evaluation-engine 0.1: {cases} cases, {agree} agree");
    for (d, n) in &explained {
        println!("  explained {d:?}: {n}");
    }
    println!("  unexplained: {}", unexplained.len());
    for u in unexplained.iter().take(12) {
        println!("{u}");
    }
    assert!(
        unexplained.is_empty(),
        "{} unexplained disagreements",
        unexplained.len()
    );
}

/// The committed corpus of the `flagd` fuzz target, replayed, plus
/// documents built to hit the bounds: deep nesting and `$ref` blow-up are
/// refused at load, quickly.
#[test]
fn fuzz_corpus_and_bounds() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/corpus/flagd");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        flagd_fuzz::check_flagd(&std::fs::read(entry.unwrap().path()).unwrap());
        n += 1;
    }
    assert!(n >= 3, "the corpus has {n} files");
    // Twenty evaluators, each referring to the next twice: 2^20 nodes if expanded.
    let mut evaluators = serde_json::Map::new();
    for i in 0..20 {
        let next = if i == 19 {
            serde_json::json!(true)
        } else {
            serde_json::json!({"and": [{"$ref": format!("e{}", i + 1)}, {"$ref": format!("e{}", i + 1)}]})
        };
        evaluators.insert(format!("e{i}"), next);
    }
    let doc = serde_json::json!({"flags": {"f": {"state": "ENABLED", "variants": {"a": true},
        "defaultVariant": "a", "targeting": {"$ref": "e0"}}}, "$evaluators": evaluators})
    .to_string();
    let start = std::time::Instant::now();
    let e = Snapshot::from_flagd_json(&doc).unwrap_err();
    assert!(e.to_string().contains("nodes"), "{e}");
    assert!(start.elapsed() < std::time::Duration::from_secs(5));
    flagd_fuzz::check_flagd(doc.as_bytes());
}

// ---------------------------------------------------------------------------
// The provider suite: open-feature/flagd-testbed's `gherkin/*.feature` (the
// scenarios every flagd provider runs), evaluated through `GenesisProvider`
// over the documents the suite loads (`tests/data/flagd/`).
// ---------------------------------------------------------------------------

/// A document the provider suite loads (what its `selector` option names).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Doc {
    /// `flags/allFlags.json`, the suite's default: see [`provider_document`].
    Provider,
    /// `rawflags/selector-flags.json`.
    SelectorFlags,
    /// `rawflags/selector-flag-combined-metadata.json`.
    CombinedMetadata,
}

/// A flag metadata value a scenario expects.
#[derive(Debug, Clone, Copy)]
enum Meta {
    Str(&'static str),
    Int(i64),
    Float(f64),
    Bool(bool),
}

/// What this crate answers instead of the scenario as written.
#[derive(Debug, Clone, Copy)]
enum Instead {
    /// The provider answers this outcome (value, reason, error code):
    /// `SDK_DISABLED` or `SDK_NO_DEFAULT` says why.
    Answers(
        &'static str,
        &'static str,
        Option<&'static str>,
        &'static str,
    ),
    /// The flag's document is refused at load, with the flag's JSON path
    /// (flagd loads it and answers `PARSE_ERROR` for that flag).
    RefusedAtLoad,
}

/// The Rust SDK (0.3) hands a provider no caller's default and cannot
/// resolve without a value, so a disabled flag serves its default variant
/// with `DISABLED` (flagd's providers hand back the caller's default).
const SDK_DISABLED: &str = "disabled: the default variant's value";
/// The same: without a default variant the provider answers `GENERAL`, and
/// the SDK hands back the caller's default with reason `ERROR` (flagd's
/// providers: the caller's default with reason `DEFAULT`).
const SDK_NO_DEFAULT: &str = "no default variant: an error";
/// An operator that fails on its input (`sem_ver` on a non-version or with
/// an unknown operator, `starts_with`/`ends_with` on a non-string,
/// `fractional` without a bucketing value or with no weight) answers null,
/// as flagd's do; inside an `if`, JsonLogic then takes the else branch
/// (json-logic-js, flagd-evaluation-engine, this crate). The provider
/// suite's flags wrap these operators in `if`s whose else branch names a
/// variant, and expect the default variant instead (docs/flagd.md).
const IF_NULL_ELSE: &str = "operator error inside `if`: the else branch";

const P_EVAL: &str = "evaluation.feature";
const P_OFF: &str = "offline.feature";
const P_TGT: &str = "targeting.feature";
const P_ERR: &str = "errors.feature";
const P_DIS: &str = "disabled.feature";
const P_META: &str = "metadata.feature";

const ALL_FLAGS: &str = include_str!("data/flagd/allFlags.json");
const EDGE_CASES: &str = include_str!("data/flagd/edge-case-flags.json");
const SELECTOR_FLAGS: &str = include_str!("data/flagd/selector-flags.json");
const COMBINED_METADATA: &str = include_str!("data/flagd/selector-flag-combined-metadata.json");
/// Flags whose documents this crate refuses at load (flagd answers
/// `PARSE_ERROR` when they are evaluated): left out of the provider
/// document, each checked by `refused_at_load`.
const REFUSED: &[&str] = &[
    BROKEN_REF_FLAG,
    "error-targeting-flag",
    "starts-with-wrong-args-flag",
    "ends-with-wrong-args-flag",
    "semver-wrong-args-flag",
];

/// The suite's default document: `flags/allFlags.json` (the testbed's merge
/// of `flags/*.json`; the stored copy predates some flags), then
/// `edge-case-flags.json`, `disabled-flags.json`, `precision-flags.json`
/// over it, then the flags of the evaluator bundle (`testkit-flags.json`)
/// the stored merge lacks; less the flags in [`REFUSED`].
fn provider_document() -> String {
    let mut doc: serde_json::Value = serde_json::from_str(ALL_FLAGS).unwrap();
    let flags = doc["flags"].as_object_mut().unwrap();
    for other in [EDGE_CASES, DISABLED, PRECISION] {
        let other: serde_json::Value = serde_json::from_str(other).unwrap();
        for (k, v) in other["flags"].as_object().unwrap() {
            flags.insert(k.clone(), v.clone());
        }
    }
    let testkit: serde_json::Value = serde_json::from_str(TESTKIT).unwrap();
    for (k, v) in testkit["flags"].as_object().unwrap() {
        flags.entry(k.clone()).or_insert_with(|| v.clone());
    }
    for name in REFUSED {
        flags.remove(*name);
    }
    doc.to_string()
}

/// The flag's definition, alone in a document with the evaluators it may
/// use, is refused with a problem at the flag's path.
fn refused_at_load(flag: &str) -> bool {
    let mut flags = serde_json::Map::new();
    for text in [ALL_FLAGS, EDGE_CASES, TESTKIT] {
        let doc: serde_json::Value = serde_json::from_str(text).unwrap();
        if let Some(v) = doc["flags"].get(flag) {
            flags.insert(flag.to_owned(), v.clone());
        }
    }
    let evaluators =
        serde_json::from_str::<serde_json::Value>(TESTKIT).unwrap()["$evaluators"].clone();
    let doc = serde_json::json!({"flags": flags, "$evaluators": evaluators}).to_string();
    match Snapshot::from_flagd_json(&doc) {
        Ok(_) => false,
        Err(e) => {
            let prefix = format!("flags.{flag}.targeting");
            !flags.is_empty() && e.problems().iter().all(|p| p.path.starts_with(&prefix))
        }
    }
}

const P_BALLMER: &[(&str, Field)] = &[("email", S("ballmer@macrosoft.com"))];
const P_NONE: &[(&str, Field)] = &[("email", S("ballmer@none.com"))];
const NO_EMAIL: &[(&str, Field)] = &[("email", S(""))];
const WOZNIAK: &[(&str, Field)] = &[("email", S("wozniak@orange.com"))];
const OTHER: &[(&str, Field)] = &[("email", S("user@example.com"))];
const NUM: &[(&str, Field)] = &[("num", Field::Int(123))];
const LOAD: Instead = Instead::RefusedAtLoad;

/// One row per scenario (or example) of the provider suite.
const PROVIDER_SCENARIOS: &[Scenario] = &[
    // evaluation.feature: values, zero values (with and without targeting),
    // flags without a default variant.
    s(P_EVAL, "boolean-flag", Boolean, "false", "true"),
    s(P_EVAL, "string-flag", Text, "bye", "hi"),
    s(P_EVAL, "integer-flag", Integer, "1", "10"),
    s(P_EVAL, "float-flag", Flt, "0.1", "0.5"),
    s(P_EVAL, "boolean-zero-flag", Boolean, "true", "false").reason("STATIC"),
    s(P_EVAL, "string-zero-flag", Text, "hi", "").reason("STATIC"),
    s(P_EVAL, "integer-zero-flag", Integer, "1", "0").reason("STATIC"),
    s(P_EVAL, "float-zero-flag", Flt, "0.1", "0.0").reason("STATIC"),
    s(
        P_EVAL,
        "boolean-targeted-zero-flag",
        Boolean,
        "true",
        "false",
    )
    .fields(P_BALLMER)
    .reason("TARGETING_MATCH"),
    s(P_EVAL, "string-targeted-zero-flag", Text, "hi", "")
        .fields(P_BALLMER)
        .reason("TARGETING_MATCH"),
    s(P_EVAL, "integer-targeted-zero-flag", Integer, "1", "0")
        .fields(P_BALLMER)
        .reason("TARGETING_MATCH"),
    s(P_EVAL, "float-targeted-zero-flag", Flt, "0.1", "0.0")
        .fields(P_BALLMER)
        .reason("TARGETING_MATCH"),
    s(
        P_EVAL,
        "boolean-targeted-zero-flag",
        Boolean,
        "true",
        "false",
    )
    .fields(P_NONE)
    .reason("DEFAULT"),
    s(P_EVAL, "string-targeted-zero-flag", Text, "hi", "")
        .fields(P_NONE)
        .reason("DEFAULT"),
    s(P_EVAL, "integer-targeted-zero-flag", Integer, "1", "0")
        .fields(P_NONE)
        .reason("DEFAULT"),
    s(P_EVAL, "float-targeted-zero-flag", Flt, "0.1", "0.0")
        .fields(P_NONE)
        .reason("DEFAULT"),
    s(P_EVAL, "null-default-flag", Boolean, "true", "true")
        .fields(NO_EMAIL)
        .reason("DEFAULT")
        .instead(Instead::Answers(
            "true",
            "ERROR",
            Some("GENERAL"),
            SDK_NO_DEFAULT,
        )),
    s(P_EVAL, "null-default-flag", Boolean, "false", "false")
        .fields(NO_EMAIL)
        .reason("DEFAULT")
        .instead(Instead::Answers(
            "false",
            "ERROR",
            Some("GENERAL"),
            SDK_NO_DEFAULT,
        )),
    s(P_EVAL, "undefined-default-flag", Integer, "100", "100")
        .fields(NO_EMAIL)
        .reason("DEFAULT")
        .instead(Instead::Answers(
            "100",
            "ERROR",
            Some("GENERAL"),
            SDK_NO_DEFAULT,
        )),
    s(
        P_EVAL,
        "no-default-flag-null-targeting-variant",
        Text,
        "Inventor",
        "Inventor",
    )
    .fields(WOZNIAK)
    .reason("DEFAULT")
    .instead(Instead::Answers(
        "Inventor",
        "ERROR",
        Some("GENERAL"),
        SDK_NO_DEFAULT,
    )),
    s(
        P_EVAL,
        "no-default-flag-null-targeting-variant",
        Text,
        "Founder",
        "Founder",
    )
    .fields(WOZNIAK)
    .reason("DEFAULT")
    .instead(Instead::Answers(
        "Founder",
        "ERROR",
        Some("GENERAL"),
        SDK_NO_DEFAULT,
    )),
    s(
        P_EVAL,
        "no-default-flag-null-targeting-variant",
        Text,
        "CEO",
        "CEO",
    )
    .fields(&[("email", S("jobs@orange.com"))])
    .reason("TARGETING_MATCH"),
    s(
        P_EVAL,
        "no-default-flag-undefined-targeting-variant",
        Text,
        "Retired",
        "Retired",
    )
    .fields(WOZNIAK)
    .reason("DEFAULT")
    .instead(Instead::Answers(
        "Retired",
        "ERROR",
        Some("GENERAL"),
        SDK_NO_DEFAULT,
    )),
    // offline.feature: the same values from a file, in process.
    s(P_OFF, "boolean-flag", Boolean, "false", "true"),
    s(P_OFF, "string-flag", Text, "bye", "hi"),
    s(P_OFF, "integer-flag", Integer, "1", "10"),
    s(P_OFF, "float-flag", Flt, "0.1", "0.5"),
    s(P_OFF, "boolean-zero-flag", Boolean, "true", "false"),
    s(P_OFF, "string-zero-flag", Text, "hi", ""),
    s(P_OFF, "integer-zero-flag", Integer, "1", "0"),
    s(P_OFF, "float-zero-flag", Flt, "0.1", "0.0"),
    // errors.feature: a type the flag does not serve.
    s(P_ERR, "string-flag", Boolean, "false", "false")
        .reason("ERROR")
        .error("TYPE_MISMATCH"),
    s(P_ERR, "string-flag", Integer, "1", "1")
        .reason("ERROR")
        .error("TYPE_MISMATCH"),
    s(P_ERR, "string-flag", Flt, "0.1", "0.1")
        .reason("ERROR")
        .error("TYPE_MISMATCH"),
    s(P_ERR, "wrong-flag", Boolean, "false", "false")
        .reason("ERROR")
        .error("TYPE_MISMATCH"),
    s(P_ERR, "boolean-flag", Text, "fallback", "fallback")
        .reason("ERROR")
        .error("TYPE_MISMATCH"),
    s(P_ERR, "boolean-flag", Integer, "1", "1")
        .reason("ERROR")
        .error("TYPE_MISMATCH"),
    s(P_ERR, "boolean-flag", Flt, "0.1", "0.1")
        .reason("ERROR")
        .error("TYPE_MISMATCH"),
    s(P_ERR, "integer-flag", Boolean, "false", "false")
        .reason("ERROR")
        .error("TYPE_MISMATCH"),
    s(P_ERR, "integer-flag", Text, "fallback", "fallback")
        .reason("ERROR")
        .error("TYPE_MISMATCH"),
    s(P_ERR, "float-flag", Boolean, "false", "false")
        .reason("ERROR")
        .error("TYPE_MISMATCH"),
    s(P_ERR, "float-flag", Text, "fallback", "fallback")
        .reason("ERROR")
        .error("TYPE_MISMATCH"),
    // disabled.feature: the caller's default with DISABLED.
    s(P_DIS, "disabled-boolean-flag", Boolean, "false", "false")
        .reason("DISABLED")
        .instead(Instead::Answers("true", "DISABLED", None, SDK_DISABLED)),
    s(P_DIS, "disabled-string-flag", Text, "bye", "bye")
        .reason("DISABLED")
        .instead(Instead::Answers("hi", "DISABLED", None, SDK_DISABLED)),
    s(P_DIS, "disabled-integer-flag", Integer, "1", "1")
        .reason("DISABLED")
        .instead(Instead::Answers("10", "DISABLED", None, SDK_DISABLED)),
    s(P_DIS, "disabled-float-flag", Flt, "0.1", "0.1")
        .reason("DISABLED")
        .instead(Instead::Answers("0.5", "DISABLED", None, SDK_DISABLED)),
    s(P_DIS, "disabled-object-flag", Object, "{}", "{}")
        .reason("DISABLED")
        .instead(Instead::Answers(OBJECT, "DISABLED", None, SDK_DISABLED)),
    s(P_DIS, "cross-flagset-flag", Boolean, "false", "false")
        .reason("DISABLED")
        .instead(Instead::Answers("true", "DISABLED", None, SDK_DISABLED)),
    s(P_DIS, "cross-flagset-flag", Boolean, "false", "true")
        .doc(Doc::SelectorFlags)
        .reason("STATIC"),
    // metadata.feature
    s(P_META, "metadata-flag", Boolean, "true", "false").metadata(&[
        ("string", Meta::Str("a")),
        ("integer", Meta::Int(1)),
        ("float", Meta::Float(1.2)),
        ("boolean", Meta::Bool(true)),
    ]),
    s(P_META, "combined-metadata-flag", Boolean, "true", "false")
        .doc(Doc::CombinedMetadata)
        .metadata(&[
            ("string", Meta::Str("a")),
            ("integer", Meta::Int(1)),
            ("float", Meta::Float(1.2)),
            ("boolean", Meta::Bool(true)),
            ("flag-set-string", Meta::Str("c")),
            ("flag-set-integer", Meta::Int(3)),
            ("flag-set-float", Meta::Float(3.2)),
            ("flag-set-boolean", Meta::Bool(false)),
        ]),
    s(P_META, "boolean-flag", Boolean, "true", "true").metadata(&[]),
    // targeting.feature
    s(P_TGT, "some-email-targeted-flag", Text, "fallback", "hi").fields(P_BALLMER),
    s(
        P_TGT,
        "some-other-email-targeted-flag",
        Text,
        "fallback",
        "yes",
    )
    .fields(P_BALLMER),
    s(P_TGT, "ref-whitespace-compact-flag", Text, "fallback", "hi")
        .fields(P_BALLMER)
        .reason("TARGETING_MATCH"),
    s(
        P_TGT,
        "ref-whitespace-space-after-colon-flag",
        Text,
        "fallback",
        "hi",
    )
    .fields(P_BALLMER)
    .reason("TARGETING_MATCH"),
    s(
        P_TGT,
        "ref-whitespace-space-around-colon-flag",
        Text,
        "fallback",
        "hi",
    )
    .fields(P_BALLMER)
    .reason("TARGETING_MATCH"),
    s(
        P_TGT,
        "ref-whitespace-compact-flag",
        Text,
        "fallback",
        "bye",
    )
    .fields(OTHER)
    .reason("TARGETING_MATCH"),
    s(
        P_TGT,
        "ref-whitespace-space-after-colon-flag",
        Text,
        "fallback",
        "bye",
    )
    .fields(OTHER)
    .reason("TARGETING_MATCH"),
    s(
        P_TGT,
        "ref-whitespace-space-around-colon-flag",
        Text,
        "fallback",
        "bye",
    )
    .fields(OTHER)
    .reason("TARGETING_MATCH"),
    s(P_TGT, BROKEN_REF_FLAG, Text, "fallback", "fallback")
        .error("PARSE_ERROR")
        .instead(LOAD),
    s(P_TGT, "fractional-flag", Text, "fallback", "hearts").fields(name!("jack")),
    s(P_TGT, "fractional-flag", Text, "fallback", "spades").fields(name!("queen")),
    s(P_TGT, "fractional-flag", Text, "fallback", "clubs").fields(name!("ten")),
    s(P_TGT, "fractional-flag", Text, "fallback", "diamonds").fields(name!("nine")),
    s(P_TGT, "fractional-flag", Text, "fallback", "clubs").fields(name!("3")),
    s(
        P_TGT,
        "fractional-flag-shorthand",
        Text,
        "fallback",
        "heads",
    )
    .key("jon@company.com"),
    s(
        P_TGT,
        "fractional-flag-shorthand",
        Text,
        "fallback",
        "tails",
    )
    .key("jane@company.com"),
    s(
        P_TGT,
        "fractional-single-entry-flag",
        Text,
        "fallback",
        "single",
    ),
    s(
        P_TGT,
        "fractional-flag-A-shared-seed",
        Text,
        "fallback",
        "hearts",
    )
    .fields(name!("seven")),
    s(
        P_TGT,
        "fractional-flag-A-shared-seed",
        Text,
        "fallback",
        "diamonds",
    )
    .fields(name!("eight")),
    s(
        P_TGT,
        "fractional-flag-A-shared-seed",
        Text,
        "fallback",
        "clubs",
    )
    .fields(name!("nine")),
    s(
        P_TGT,
        "fractional-flag-A-shared-seed",
        Text,
        "fallback",
        "spades",
    )
    .fields(name!("two")),
    s(
        P_TGT,
        "fractional-flag-B-shared-seed",
        Text,
        "fallback",
        "ace-of-hearts",
    )
    .fields(name!("seven")),
    s(
        P_TGT,
        "fractional-flag-B-shared-seed",
        Text,
        "fallback",
        "ace-of-diamonds",
    )
    .fields(name!("eight")),
    s(
        P_TGT,
        "fractional-flag-B-shared-seed",
        Text,
        "fallback",
        "ace-of-clubs",
    )
    .fields(name!("nine")),
    s(
        P_TGT,
        "fractional-flag-B-shared-seed",
        Text,
        "fallback",
        "ace-of-spades",
    )
    .fields(name!("two")),
    s(
        P_TGT,
        "fractional-hash-edge-flag",
        Text,
        "fallback",
        "lower",
    )
    .key("ejOoVL"),
    s(
        P_TGT,
        "fractional-hash-edge-flag",
        Text,
        "fallback",
        "lower",
    )
    .key("bY9fO-"),
    s(
        P_TGT,
        "fractional-hash-edge-flag",
        Text,
        "fallback",
        "lower",
    )
    .key("SI7p-"),
    s(
        P_TGT,
        "fractional-hash-edge-flag",
        Text,
        "fallback",
        "upper",
    )
    .key("6LvT0"),
    s(
        P_TGT,
        "fractional-hash-edge-flag",
        Text,
        "fallback",
        "upper",
    )
    .key("ceQdGm"),
    s(
        P_TGT,
        "fractional-nested-if-flag",
        Text,
        "fallback",
        "premium",
    )
    .key("jon@company.com")
    .fields(&[("tier", S("premium"))]),
    s(
        P_TGT,
        "fractional-nested-if-flag",
        Text,
        "fallback",
        "standard",
    )
    .key("jon@company.com")
    .fields(&[("tier", S("basic"))]),
    s(
        P_TGT,
        "fractional-nested-if-flag",
        Text,
        "fallback",
        "standard",
    )
    .key("user1")
    .fields(&[("tier", S("premium"))]),
    s(
        P_TGT,
        "fractional-nested-if-flag",
        Text,
        "fallback",
        "standard",
    )
    .key("user1")
    .fields(&[("tier", S("basic"))]),
    s(P_TGT, "fractional-nested-var-flag", Text, "fallback", "red")
        .key("jon@company.com")
        .fields(&[("color", S("red"))]),
    s(
        P_TGT,
        "fractional-nested-var-flag",
        Text,
        "fallback",
        "green",
    )
    .key("jon@company.com")
    .fields(&[("color", S("green"))]),
    s(
        P_TGT,
        "fractional-nested-var-flag",
        Text,
        "fallback",
        "blue",
    )
    .key("user1")
    .fields(&[("color", S("red"))]),
    s(
        P_TGT,
        "fractional-nested-var-flag",
        Text,
        "fallback",
        "fallback",
    )
    .key("jon@company.com")
    .fields(&[("color", S("yellow"))])
    .error("GENERAL"),
    s(
        P_TGT,
        "fractional-nested-var-flag",
        Text,
        "fallback",
        "fallback",
    )
    .key("jon@company.com")
    .fields(&[("color", S(""))])
    .error("GENERAL"),
    s(
        P_TGT,
        "fractional-nested-weight-flag",
        Text,
        "fallback",
        "red",
    )
    .key("jon@company.com")
    .fields(&[("tier", S("premium"))]),
    s(
        P_TGT,
        "fractional-nested-weight-flag",
        Text,
        "fallback",
        "blue",
    )
    .key("jon@company.com")
    .fields(&[("tier", S("basic"))]),
    s(
        P_TGT,
        "fractional-nested-weight-flag",
        Text,
        "fallback",
        "red",
    )
    .key("user1")
    .fields(&[("tier", S("premium"))]),
    s(
        P_TGT,
        "fractional-nested-weight-flag",
        Text,
        "fallback",
        "blue",
    )
    .key("user1")
    .fields(&[("tier", S("basic"))]),
    s(
        P_TGT,
        "fractional-as-condition-flag",
        Text,
        "zero",
        "hundreds",
    )
    .key("some-targeting-key"),
    s(
        P_TGT,
        "fractional-as-condition-false-flag",
        Text,
        "zero",
        "ones",
    )
    .key("some-targeting-key"),
    s(P_TGT, "starts-ends-flag", Text, "fallback", "prefix").fields(&[("id", S("abcdef"))]),
    s(P_TGT, "starts-ends-flag", Text, "fallback", "postfix").fields(&[("id", S("uvwxyz"))]),
    s(P_TGT, "starts-ends-flag", Text, "fallback", "prefix").fields(&[("id", S("abcxyz"))]),
    s(P_TGT, "starts-ends-flag", Text, "fallback", "none").fields(&[("id", S("lmnopq"))]),
    s(P_TGT, "starts-ends-flag", Text, "fallback", "none").fields(&[("id", S("3"))]),
    s(
        P_TGT,
        "equal-greater-lesser-version-flag",
        Text,
        "fallback",
        "equal",
    )
    .fields(version!("2.0.0")),
    s(
        P_TGT,
        "equal-greater-lesser-version-flag",
        Text,
        "fallback",
        "greater",
    )
    .fields(version!("2.1.0")),
    s(
        P_TGT,
        "equal-greater-lesser-version-flag",
        Text,
        "fallback",
        "lesser",
    )
    .fields(version!("1.9.0")),
    s(
        P_TGT,
        "equal-greater-lesser-version-flag",
        Text,
        "fallback",
        "lesser",
    )
    .fields(version!("2.0.0-alpha")),
    s(
        P_TGT,
        "equal-greater-lesser-version-flag",
        Text,
        "fallback",
        "none",
    )
    .fields(version!("2.0.0.0")),
    s(P_TGT, "major-minor-version-flag", Text, "fallback", "minor").fields(version!("3.0.1")),
    s(P_TGT, "major-minor-version-flag", Text, "fallback", "major").fields(version!("3.1.0")),
    s(P_TGT, "major-minor-version-flag", Text, "fallback", "none").fields(version!("4.0.0")),
    s(P_TGT, "semver-v-prefix-flag", Text, "fallback", "match").fields(version!("1.0.0")),
    s(P_TGT, "semver-v-prefix-flag", Text, "fallback", "match").fields(version!("v1.0.0")),
    s(P_TGT, "semver-v-prefix-flag", Text, "fallback", "match").fields(version!("V1.0.0")),
    s(P_TGT, "semver-v-prefix-flag", Text, "fallback", "no-match").fields(version!("2.0.0")),
    s(
        P_TGT,
        "semver-partial-version-flag",
        Text,
        "fallback",
        "match",
    )
    .fields(version!("1.5.0")),
    s(
        P_TGT,
        "semver-partial-version-flag",
        Text,
        "fallback",
        "match",
    )
    .fields(version!("1.0.0")),
    s(
        P_TGT,
        "semver-partial-version-flag",
        Text,
        "fallback",
        "match",
    )
    .fields(version!("1.0")),
    s(
        P_TGT,
        "semver-partial-version-flag",
        Text,
        "fallback",
        "match",
    )
    .fields(version!("1")),
    s(
        P_TGT,
        "semver-partial-version-flag",
        Text,
        "fallback",
        "match",
    )
    .fields(&[("version", Field::Int(1))]),
    s(
        P_TGT,
        "semver-partial-version-flag",
        Text,
        "fallback",
        "no-match",
    )
    .fields(version!("2.0.0")),
    s(
        P_TGT,
        "semver-build-metadata-flag",
        Text,
        "fallback",
        "match",
    )
    .fields(version!("1.0.0")),
    s(
        P_TGT,
        "semver-build-metadata-flag",
        Text,
        "fallback",
        "match",
    )
    .fields(version!("1.0.0+other")),
    s(
        P_TGT,
        "semver-build-metadata-flag",
        Text,
        "fallback",
        "no-match",
    )
    .fields(version!("2.0.0")),
    s(P_TGT, "timestamp-flag", Integer, "0", "-1").fields(&[("time", Field::Int(1))]),
    s(P_TGT, "timestamp-flag", Integer, "0", "1").fields(&[("time", Field::Int(4_133_980_802))]),
    s(P_TGT, "targeting-key-flag", Text, "fallback", "hit")
        .key("5c3d8535-f81a-4478-a6d3-afaa4d51199e")
        .reason("TARGETING_MATCH"),
    s(P_TGT, "targeting-key-flag", Text, "fallback", "miss")
        .key("f20bd32d-703b-48b6-bc8e-79d53c85134a")
        .reason("DEFAULT"),
    s(P_TGT, "targeting-null-variant-flag", Integer, "3", "2"),
    s(P_TGT, "error-targeting-flag", Integer, "3", "3")
        .error("PARSE_ERROR")
        .instead(LOAD),
    s(P_TGT, "missing-variant-targeting-flag", Integer, "3", "3").error("GENERAL"),
    s(
        P_TGT,
        "non-string-variant-targeting-flag",
        Integer,
        "3",
        "2",
    ),
    s(P_TGT, "empty-targeting-flag", Integer, "3", "1"),
    s(
        P_TGT,
        "semver-invalid-version-flag",
        Text,
        "wrong",
        "fallback",
    )
    .fields(version!("not-a-version"))
    .reason("DEFAULT")
    .instead(Instead::Answers(
        "false",
        "TARGETING_MATCH",
        None,
        IF_NULL_ELSE,
    )),
    s(
        P_TGT,
        "semver-invalid-operator-flag",
        Text,
        "wrong",
        "fallback",
    )
    .fields(version!("1.0.0"))
    .reason("DEFAULT")
    .instead(Instead::Answers(
        "false",
        "TARGETING_MATCH",
        None,
        IF_NULL_ELSE,
    )),
    s(
        P_TGT,
        "fractional-null-bucket-key-flag",
        Text,
        "wrong",
        "fallback",
    )
    .reason("DEFAULT")
    .instead(Instead::Answers(
        "false",
        "TARGETING_MATCH",
        None,
        IF_NULL_ELSE,
    )),
    s(
        P_TGT,
        "starts-with-non-string-flag",
        Text,
        "wrong",
        "fallback",
    )
    .fields(NUM)
    .reason("DEFAULT")
    .instead(Instead::Answers(
        "false",
        "TARGETING_MATCH",
        None,
        IF_NULL_ELSE,
    )),
    s(
        P_TGT,
        "ends-with-non-string-flag",
        Text,
        "wrong",
        "fallback",
    )
    .fields(NUM)
    .reason("DEFAULT")
    .instead(Instead::Answers(
        "false",
        "TARGETING_MATCH",
        None,
        IF_NULL_ELSE,
    )),
    s(
        P_TGT,
        "starts-with-wrong-args-flag",
        Text,
        "wrong",
        "fallback",
    )
    .reason("DEFAULT")
    .instead(LOAD),
    s(
        P_TGT,
        "ends-with-wrong-args-flag",
        Text,
        "wrong",
        "fallback",
    )
    .reason("DEFAULT")
    .instead(LOAD),
    s(P_TGT, "semver-wrong-args-flag", Text, "wrong", "fallback")
        .fields(version!("1.0.0"))
        .reason("DEFAULT")
        .instead(LOAD),
    s(
        P_TGT,
        "fractional-zero-weights-flag",
        Text,
        "wrong",
        "fallback",
    )
    .key("any-user")
    .reason("DEFAULT")
    .instead(Instead::Answers(
        "false",
        "TARGETING_MATCH",
        None,
        IF_NULL_ELSE,
    )),
    s(
        P_TGT,
        "fractional-negative-weight-flag",
        Text,
        "wrong",
        "two",
    )
    .key("any-user"),
];

/// Scenarios of the provider suite that do not apply to an in-process
/// evaluator, with why.
const PROVIDER_NOT_APPLICABLE: &[(&str, usize, &str)] = &[
    (P_TGT, 15, "@fractional-v1 examples: the legacy float bucketing, superseded by v2"),
    (P_META, 1, "flag only-set-metadata-flag is in no stored version of the testbed's selector-flag-combined-metadata.json"),
    ("contextEnrichment.feature", 4, "the context flagd's sync stream injects (1), and connection loss and RPC caching (3)"),
];

fn error_name(code: &EvaluationErrorCode) -> &'static str {
    match code {
        EvaluationErrorCode::ProviderNotReady => "PROVIDER_NOT_READY",
        EvaluationErrorCode::FlagNotFound => "FLAG_NOT_FOUND",
        EvaluationErrorCode::ParseError => "PARSE_ERROR",
        EvaluationErrorCode::TypeMismatch => "TYPE_MISMATCH",
        EvaluationErrorCode::TargetingKeyMissing => "TARGETING_KEY_MISSING",
        EvaluationErrorCode::InvalidContext => "INVALID_CONTEXT",
        _ => "GENERAL",
    }
}

fn struct_json(value: &StructValue) -> serde_json::Value {
    fn one(v: &Value) -> serde_json::Value {
        match v {
            Value::Bool(b) => (*b).into(),
            Value::Int(i) => (*i).into(),
            Value::Float(f) => (*f).into(),
            Value::String(s) => s.as_str().into(),
            Value::Array(items) => items.iter().map(one).collect(),
            Value::Struct(s) => struct_json(s),
        }
    }
    value
        .fields
        .iter()
        .map(|(k, v)| (k.clone(), one(v)))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// Evaluates a scenario through the provider, as the OpenFeature SDK hands
/// it to the caller: an error is the caller's default with reason `ERROR`.
fn provider_evaluate(
    p: &GenesisProvider,
    sc: &Scenario,
) -> (Outcome, Option<open_feature::FlagMetadata>) {
    let mut ctx = EvaluationContext::default();
    if let Some(key) = sc.key {
        ctx = ctx.with_targeting_key(key);
    }
    for (k, f) in sc.fields {
        ctx = match *f {
            S(v) => ctx.with_custom_field(*k, v),
            Field::Int(i) => ctx.with_custom_field(*k, i),
            N(inner, v) => {
                let inner = StructValue {
                    fields: [(inner.to_owned(), Value::String(v.into()))].into(),
                };
                ctx.with_custom_field(
                    *k,
                    open_feature::EvaluationContextFieldValue::new_struct(inner),
                )
            }
        };
    }
    fn done<T>(
        r: open_feature::EvaluationResult<open_feature::provider::ResolutionDetails<T>>,
        show: impl Fn(T) -> String,
    ) -> Result<
        (
            String,
            Option<EvaluationReason>,
            Option<open_feature::FlagMetadata>,
        ),
        EvaluationErrorCode,
    > {
        r.map(|d| (show(d.value), d.reason, d.flag_metadata))
            .map_err(|e| e.code)
    }
    let flag = sc.flag;
    let answer = match sc.ty {
        Boolean => done(p.resolve(flag, &ctx), |v| v.to_string()),
        Text => done(p.resolve_string(flag, &ctx), |v| v),
        Integer => done(p.resolve_int(flag, &ctx), |v| v.to_string()),
        Flt => done(p.resolve_float(flag, &ctx), |v| format!("{v:?}")),
        Object => done(p.resolve_struct(flag, &ctx), |v| {
            struct_json(&v).to_string()
        }),
    };
    match answer {
        Ok((value, reason, metadata)) => (
            Outcome {
                value: Some(value),
                reason: reason.map_or_else(|| "NONE".into(), |r| r.to_string()),
                error: None,
            },
            metadata,
        ),
        Err(code) => (
            Outcome {
                value: Some(sc.default.to_owned()),
                reason: "ERROR".into(),
                error: Some(error_name(&code).into()),
            },
            None,
        ),
    }
}

fn check_metadata(
    got: Option<&open_feature::FlagMetadata>,
    want: &[(&str, Meta)],
) -> Result<(), String> {
    use open_feature::FlagMetadataValue as M;
    let empty = std::collections::HashMap::new();
    let got = got.map_or(&empty, |m| &m.values);
    if want.is_empty() && !got.is_empty() {
        return Err(format!("metadata {got:?}, expected none"));
    }
    for (key, value) in want {
        let ok = match (got.get(*key), value) {
            (Some(M::String(a)), Meta::Str(b)) => a == b,
            (Some(M::Int(a)), Meta::Int(b)) => a == b,
            (Some(M::Float(a)), Meta::Float(b)) => a == b,
            (Some(M::Bool(a)), Meta::Bool(b)) => a == b,
            _ => false,
        };
        if !ok {
            return Err(format!(
                "metadata {key}: {:?}, expected {value:?}",
                got.get(*key)
            ));
        }
    }
    Ok(())
}

/// A scenario as written: its value, reason, error code and metadata.
fn provider_check(p: &GenesisProvider, sc: &Scenario) -> Result<(), String> {
    let (outcome, metadata) = provider_evaluate(p, sc);
    check(&outcome, sc)?;
    match sc.metadata {
        Some(want) => check_metadata(metadata.as_ref(), want),
        None => Ok(()),
    }
}

#[test]
fn provider_suite_scenarios() {
    let provider_for = |doc: Doc| {
        let text = match doc {
            Doc::Provider => provider_document(),
            Doc::SelectorFlags => SELECTOR_FLAGS.to_owned(),
            Doc::CombinedMetadata => COMBINED_METADATA.to_owned(),
        };
        GenesisProvider::new(
            FlagStore::builder()
                .build(Snapshot::from_flagd_json(&text).unwrap_or_else(|e| panic!("{doc:?}: {e}"))),
        )
    };
    let providers: Vec<(Doc, GenesisProvider)> =
        [Doc::Provider, Doc::SelectorFlags, Doc::CombinedMetadata]
            .into_iter()
            .map(|d| (d, provider_for(d)))
            .collect();
    // feature -> (passing, applicable, met differently)
    let mut table: BTreeMap<&str, (usize, usize, usize)> = BTreeMap::new();
    let mut differently: BTreeMap<&str, usize> = BTreeMap::new();
    let mut failures = Vec::new();
    for sc in PROVIDER_SCENARIOS {
        let p = &providers.iter().find(|(d, _)| *d == sc.doc).unwrap().1;
        let entry = table.entry(sc.feature).or_default();
        let result = match sc.instead {
            None => {
                entry.1 += 1;
                let r = provider_check(p, sc);
                if r.is_ok() {
                    entry.0 += 1;
                }
                r
            }
            Some(instead) => {
                entry.2 += 1;
                // Met otherwise, by design: the scenario as written must
                // fail (else it belongs with the passing ones), and this
                // crate's documented answer must hold.
                let (why, r) = match instead {
                    Instead::RefusedAtLoad => (
                        "refused at load",
                        if refused_at_load(sc.flag) {
                            Ok(())
                        } else {
                            Err("the flag's document was not refused at load".to_owned())
                        },
                    ),
                    Instead::Answers(value, reason, error, why) => {
                        let ours = Scenario {
                            expect: Expect::Value(value),
                            reason: Some(reason),
                            error,
                            ..*sc
                        };
                        let r = if provider_check(p, sc).is_ok() {
                            Err("passes as written: drop its `instead`".to_owned())
                        } else {
                            provider_check(p, &ours)
                        };
                        (why, r)
                    }
                };
                *differently.entry(why).or_default() += 1;
                r
            }
        };
        if let Err(why) = result {
            failures.push(format!(
                "{} {} {:?} {:?} {:?}: {why}",
                sc.feature, sc.flag, sc.ty, sc.key, sc.fields
            ));
        }
    }
    println!(
        "flagd testbed provider suite (gherkin), through GenesisProvider, passing/applicable:"
    );
    for (feature, (pass, all, other)) in &table {
        let note = if *other > 0 {
            format!("  (+{other} met differently)")
        } else {
            String::new()
        };
        println!("  {feature:<28} {pass}/{all}{note}");
    }
    for (why, n) in &differently {
        println!("  met differently x{n}: {why}");
    }
    for (feature, n, why) in PROVIDER_NOT_APPLICABLE {
        println!("  not applicable: {feature} x{n}: {why}");
    }
    let (pass, all, other) = table
        .values()
        .fold((0, 0, 0), |(p, a, o), (x, y, z)| (p + x, a + y, o + z));
    println!("  {:<28} {pass}/{all}  (+{other} met differently)", "total");
    assert!(
        failures.is_empty(),
        "{} failing:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
