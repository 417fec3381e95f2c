//! flagd: the testbed's scenarios (open-feature/flagd-testbed,
//! `evaluator/gherkin/*.feature`) over its flag documents
//! (`tests/data/flagd/`), as tables; load-time refusals; the OpenFeature
//! provider over a flagd document; property tests.
//!
//! Run with `cargo test --features flagd,openfeature --test flagd -- --nocapture`
//! to see the per-feature table (`passing/applicable`).
#![cfg(all(feature = "flagd", feature = "openfeature"))]

use std::collections::BTreeMap;

use genesis_flags::openfeature::GenesisProvider;
use genesis_flags::{
    AttributeKey, Context, FlagStore, ProblemKind, Reason, Snapshot, VariantType, VariantValue,
};
use open_feature::{EvaluationContext, EvaluationErrorCode, EvaluationReason, StructValue, Value};
use proptest::prelude::*;

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
    // The load-time refusal of the broken $ref is its feature's scenario.
    let refs = table.entry(REF).or_default();
    refs.1 += 1;
    if a_broken_ref_is_refused() {
        refs.0 += 1;
    } else {
        failures.push("evaluator-refs: the broken $ref was not refused".into());
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

fn a_broken_ref_is_refused() -> bool {
    let Err(e) = Snapshot::from_flagd_json(TESTKIT) else {
        return false;
    };
    let problems = e.problems();
    problems.len() == 1
        && problems[0].path.contains(BROKEN_REF_FLAG)
        && problems[0].path.ends_with("$ref\"]")
        && problems[0].kind == ProblemKind::UnknownEvaluator("nonexistent_evaluator".into())
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
            || matches!(e, genesis_flags::ConfigError::Syntax { .. }),
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
