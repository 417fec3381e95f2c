//! The same flagd document evaluated by this crate (`Snapshot::from_flagd_json`)
//! and by flagd's official Rust engine (`flagd-evaluation-engine` 0.1, with
//! the resolution steps `open-feature-flagd` wraps around it: the flag looked
//! up, `{}` targeting served statically, the rule applied, the variant looked
//! up), in one run, for four flags:
//!
//! - `static`: no targeting;
//! - `if3`: an `if` over three conditions (`in` a list, `>=` on a number,
//!   `ends_with`), every user matching;
//! - `fractional`: a three-way split bucketed on `$flagd.flagKey` + `email`;
//! - `semver`: `sem_ver` `>=` on the context's version.
//!
//! Contexts are prebuilt for both (ours: the attributes' strings, the
//! context built on the stack per evaluation; theirs: an
//! `EvaluationContext` per user). The engine's targeting is serialised once
//! up front, a saving its provider does not make. Each pair alternates in
//! chunks (see `support::paired`); the table gives criterion's medians and
//! the median paired ratio. Target: this crate >= 20x faster on each.
//!
//! `cargo bench --features flagd,openfeature --bench flagd`

mod support;

use std::hint::black_box;

use flagd_evaluation_engine::{FeatureFlag, FlagParser, Operator};
use genesis_flags::{AttributeKey, Context, FlagStore, Snapshot};
use open_feature::EvaluationContext;

const GROUP: &str = "flagd";
const USERS: usize = 1024;
const FLAGS: [&str; 4] = ["static", "if3", "fractional", "semver"];

const DOCUMENT: &str = r#"{
  "$schema": "https://flagd.dev/schema/v0/flags.json",
  "flags": {
    "static": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "on"},
    "if3": {
      "state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off",
      "targeting": {"if": [{"and": [
        {"in": [{"var": "country"}, ["DE", "FR", "IT", "ES"]]},
        {">=": [{"var": "age"}, 18]},
        {"ends_with": [{"var": "email"}, "@example.com"]}]}, "on", "off"]}
    },
    "fractional": {
      "state": "ENABLED", "variants": {"a": "A", "b": "B", "c": "C"}, "defaultVariant": "a",
      "targeting": {"fractional": [{"cat": [{"var": "$flagd.flagKey"}, {"var": "email"}]},
        ["a", 25], ["b", 25], ["c", 50]]}
    },
    "semver": {
      "state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off",
      "targeting": {"if": [{"sem_ver": [{"var": "version"}, ">=", "1.9.9"]}, "on", "off"]}
    }
  }
}"#;

struct User {
    key: String,
    country: &'static str,
    age: f64,
    email: String,
    version: String,
}

struct Cycle<T> {
    items: Vec<T>,
    next: usize,
}

impl<T> Cycle<T> {
    fn new(items: Vec<T>) -> Self {
        Cycle { items, next: 0 }
    }
    #[inline(always)]
    fn next(&mut self) -> &T {
        self.next = (self.next + 1) % self.items.len();
        &self.items[self.next]
    }
}

/// What the official in-process provider does per evaluation, on a parsed
/// flag: a static flag serves its default; otherwise the rule is applied
/// and its variant looked up.
fn official(
    operator: &Operator,
    key: &str,
    flag: &FeatureFlag,
    targeting: &str,
    ctx: &EvaluationContext,
) -> Option<serde_json::Value> {
    if flag.state == "DISABLED" {
        return None;
    }
    let variant = if targeting == "{}" {
        flag.default_variant.clone()
    } else {
        match operator.apply(key, targeting, ctx).ok()? {
            Some(v) => v,
            None => flag.default_variant.clone(),
        }
    };
    flag.variants.get(&variant).cloned()
}

fn main() {
    const COUNTRIES: [&str; 4] = ["DE", "FR", "IT", "ES"];
    let users: Vec<User> = (0..USERS)
        .map(|i| User {
            key: format!("user-{i:06}"),
            country: COUNTRIES[i % 4],
            age: 18.0 + (i % 60) as f64,
            email: format!("user-{i}@example.com"),
            version: format!("2.{}.{}", i % 7, i % 3),
        })
        .collect();
    let store = FlagStore::builder().build(Snapshot::from_flagd_json(DOCUMENT).unwrap());
    let (country, age, email, version) = (
        AttributeKey::new("country"),
        AttributeKey::new("age"),
        AttributeKey::new("email"),
        AttributeKey::new("version"),
    );

    let parsed = FlagParser::parse_string(DOCUMENT).unwrap();
    let operator = Operator::new();
    let contexts: Vec<EvaluationContext> = users
        .iter()
        .map(|u| {
            EvaluationContext::default()
                .with_targeting_key(u.key.as_str())
                .with_custom_field("country", u.country)
                .with_custom_field("age", u.age)
                .with_custom_field("email", u.email.as_str())
                .with_custom_field("version", u.version.as_str())
        })
        .collect();

    // Both answer every user alike where their algorithms agree.
    for (u, ctx) in users.iter().zip(&contexts) {
        let attrs = [
            country.string(u.country),
            age.number(u.age),
            email.string(&u.email),
            version.string(&u.version),
        ];
        let context = Context::new(&u.key, &attrs);
        let view = store.view();
        for flag in ["static", "if3", "semver"] {
            let ours = view.variation(flag, &context);
            let f = &parsed.flags[flag];
            let theirs = official(&operator, flag, f, &f.get_targeting(), ctx).unwrap();
            assert_eq!(
                ours.bool_or(false),
                theirs.as_bool().unwrap(),
                "{flag} {}",
                u.key
            );
        }
    }

    let mut c = support::criterion();
    let mut group = c.benchmark_group(GROUP);
    let mut ratios = Vec::new();
    for flag in FLAGS {
        let mut inputs = Cycle::new(users.iter().collect::<Vec<_>>());
        let store = store.clone();
        let mut ours = move || {
            let u = inputs.next();
            let attrs = [
                country.string(u.country),
                age.number(u.age),
                email.string(&u.email),
                version.string(&u.version),
            ];
            black_box(store.evaluate_for(black_box(flag), &Context::new(&u.key, &attrs)));
        };
        group.bench_function(format!("genesis_{flag}"), |b| b.iter(&mut ours));

        let f = &parsed.flags[flag];
        let targeting = f.get_targeting();
        let mut ctx = Cycle::new(contexts.iter().collect::<Vec<_>>());
        let mut r = Vec::new();
        group.bench_function(format!("official_{flag}"), |b| {
            support::paired(b, &mut r, &mut ours, || {
                black_box(official(
                    &operator,
                    black_box(flag),
                    f,
                    &targeting,
                    ctx.next(),
                ));
            })
        });
        ratios.push((flag, r));
    }
    group.finish();
    c.final_summary();

    let mut rows = Vec::new();
    for (flag, r) in ratios {
        let pairs = r.len();
        let ratio = support::median_of(r);
        rows.push((
            format!("{flag}: genesis-flags, ns"),
            support::median_ns(GROUP, &format!("genesis_{flag}")),
            String::new(),
        ));
        rows.push((
            format!("{flag}: flagd-evaluation-engine, ns"),
            support::median_ns(GROUP, &format!("official_{flag}")),
            String::new(),
        ));
        rows.push((
            format!("  {flag}: ratio official / genesis ({pairs} pairs)"),
            ratio,
            format!(
                "genesis >= 20x faster: {}",
                support::verdict(ratio, 20.0, false)
            ),
        ));
    }
    support::report(
        "flagd: median ns per evaluation, the same document, 1,024 users",
        &rows,
    );
}
