//! Invariants checked on arbitrary input, shared by the cargo-fuzz targets
//! (`fuzz/fuzz_targets/*.rs` include this file) and by `tests/fuzz_corpus.rs`,
//! which replays the committed corpus as an ordinary test.

#![allow(dead_code)]

use genesis_flags::{
    bucket, AttributeKey, ConfigError, Context, FlagStore, Percentage, Reason, Seed, Snapshot,
    VariantType,
};

/// Parses arbitrary bytes as a flag config. Never panics; on success every
/// flag evaluates consistently, on failure the error says where.
pub fn check_config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Snapshot::from_json(text) {
        Ok(snapshot) => check_snapshot(&snapshot, text),
        Err(e) => check_error(&e),
    }
}

fn check_snapshot(snapshot: &Snapshot, text: &str) {
    let production = FlagStore::from_json(text).expect("parsed once, parses again");
    let staging = FlagStore::builder()
        .allow_experimental(true)
        .from_json(text)
        .expect("parsed once, parses again");
    assert_eq!(production.snapshot().len(), snapshot.len());
    for flag in snapshot.flags() {
        let handle = production.handle(flag.name());
        for user in ["", "user-42", "qa-1", "ü"] {
            let e = production.evaluate(flag.name(), user);
            assert_eq!(
                e,
                production.evaluate(flag.name(), user),
                "not deterministic"
            );
            assert_eq!(e, handle.evaluate(user), "handle and name disagree");
            assert_eq!(e.enabled, production.is_enabled(flag.name(), user));
            assert_ne!(
                e.reason,
                Reason::UnknownFlag,
                "a flag of the snapshot is unknown"
            );
            // With attributes, rules read them: still total and deterministic.
            let (country, version, n) = (
                AttributeKey::new("country"),
                AttributeKey::new("version"),
                AttributeKey::new("n"),
            );
            let groups = ["beta", "staff"];
            let attrs = [
                country.string("DE"),
                version.string("1.2.3-rc.1"),
                n.number(5.0),
                AttributeKey::new("groups").list(&groups),
            ];
            let context = Context::new(user, &attrs);
            let t = production.evaluate_for(flag.name(), &context);
            assert_eq!(t, handle.evaluate_for(&context), "handle and name disagree");
            assert_eq!(t, production.for_context(context).evaluate(flag.name()));
            let view = production.view();
            let variation = view.variation(flag.name(), &context);
            assert!(variation.name().is_some() && variation.value().is_some());
            if !flag.is_enabled() {
                assert_eq!(e.reason, Reason::KillSwitch);
                assert!(!staging.is_enabled(flag.name(), user));
            }
            if let (Reason::InRollout | Reason::OutOfRollout, Some(p)) =
                (e.reason, flag.percentage())
            {
                match (e.bucket, flag.rollout()) {
                    // An empty (or missing) bucketing key is in no percentage.
                    (None, _) => assert_eq!(e.reason, Reason::OutOfRollout),
                    // A shared rollout's flags bucket by the key, salted by its id.
                    (Some(b), Some(id)) => {
                        assert_eq!(b, bucket(id, user));
                        assert_eq!(e.reason == Reason::InRollout, p.contains(b));
                    }
                    // An own percentage may carry a seed or another key.
                    (Some(b), None) => {
                        assert!(!user.is_empty() || !flag.buckets_by_key());
                        assert_eq!(e.reason == Reason::InRollout, p.contains(b));
                    }
                }
                if flag.variant_type() == VariantType::Bool
                    && flag.default_variant() == "on"
                    && flag.off_variant() == "off"
                {
                    assert_eq!(e.enabled, e.reason == Reason::InRollout);
                }
            }
        }
    }
    for rollout in snapshot.rollouts() {
        for name in &rollout.flags {
            let flag = snapshot.flag(name).expect("a bound flag exists");
            assert_eq!(flag.rollout(), Some(rollout.id.as_str()));
            assert_eq!(flag.percentage(), Some(rollout.percentage));
        }
    }
}

fn check_error(e: &ConfigError) {
    let shown = e.to_string();
    assert!(!shown.is_empty());
    for p in e.problems() {
        assert!(!p.path.is_empty(), "a problem without a path: {p}");
        assert!(
            shown.contains(&p.path) || e.problems().len() > 20,
            "{shown}"
        );
    }
    if let Some((line, _column)) = e.line_column() {
        // serde_json reports column 0 for an error before the first byte.
        assert!(line >= 1, "{shown}");
        assert!(shown.contains(&format!("line {line}")), "{shown}");
    }
}

/// Splits arbitrary bytes into (salt, user, ppm) and checks the bucketing
/// contract: range, determinism, seed equivalence, monotonicity.
pub fn check_bucket(data: &[u8]) {
    let (ppm, rest) = match data {
        [a, b, c, rest @ ..] => (u32::from_le_bytes([*a, *b, *c, 0]) % 1_000_001, rest),
        _ => (0, data),
    };
    let split = rest.iter().position(|&b| b == 0xff).unwrap_or(rest.len());
    let salt = String::from_utf8_lossy(&rest[..split]);
    let user = String::from_utf8_lossy(rest.get(split + 1..).unwrap_or_default());
    let b = bucket(&salt, &user);
    assert!(b < 1_000_000);
    assert_eq!(b, Seed::from_salt(&salt).bucket(&user));
    let p = Percentage::from_ppm(ppm).expect("ppm in range");
    if p.contains(b) {
        let higher = Percentage::from_ppm((ppm + 1).min(1_000_000)).expect("in range");
        assert!(higher.contains(b), "monotonicity");
    }
    assert!(Percentage::HUNDRED.contains(b));
    assert!(!Percentage::ZERO.contains(b));
}

/// Feeds arbitrary text to every rollout parser (plan, state, duration,
/// timestamp). Never panics; whatever parses survives a round trip, and a
/// loaded state can be judged.
pub fn check_rollout_text(data: &[u8]) {
    use genesis_flags::rollout::simulation::Scenario;
    use genesis_flags::rollout::{
        decide, format_duration, parse_duration, HealthGate, Observation, Plan, RolloutState,
        Timestamp,
    };
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(d) = parse_duration(text) {
        assert_eq!(parse_duration(&format_duration(d)).ok(), Some(d));
    }
    if let Ok(t) = text.parse::<Timestamp>() {
        assert_eq!(t.to_string().parse::<Timestamp>().ok(), Some(t));
    }
    if let Ok(plan) = Plan::from_json(text) {
        let again = serde_json::to_string(&plan).expect("a plan serialises");
        assert_eq!(Plan::from_json(&again).expect("a saved plan loads"), plan);
        let _ = plan.estimated_duration();
    }
    if let Ok(scenario) = Scenario::from_json(text) {
        let again = serde_json::to_string(&scenario).expect("a scenario serialises");
        assert_eq!(
            Scenario::from_json(&again).expect("a saved scenario loads"),
            scenario
        );
        let _ = scenario.conditions_at(std::time::Duration::from_secs(3600));
        // Rendering is linear in the steps; keep fuzz iterations fast.
        if scenario.duration.as_secs() / scenario.step.as_secs().max(1) <= 2_000 {
            assert!(scenario.openmetrics().ends_with("# EOF\n"));
            let mut gate = scenario.gate(std::time::Duration::from_secs(300));
            let _ = gate.observe(scenario.start + std::time::Duration::from_secs(600));
        }
    }
    if let Ok(state) = RolloutState::from_json(text) {
        let again = serde_json::to_string(&state).expect("a state serialises");
        assert_eq!(
            RolloutState::from_json(&again).expect("a saved state loads"),
            state
        );
        for obs in [
            Observation::healthy(),
            Observation::no_data(),
            Observation::healthy().with_error_rate(0.5),
        ] {
            let at = state.since + std::time::Duration::from_secs(3600);
            let mut next = state.clone();
            next.apply(&decide(&state, &obs, at));
        }
    }
}

/// Feeds arbitrary bytes to the Prometheus response parser (the first two
/// bytes pick the HTTP status) and to the template renderer. Never panics;
/// a success answers the gate's questions without panicking either.
pub fn check_prometheus_response(data: &[u8]) {
    use genesis_flags::rollout::prometheus::{
        parse_response, render_template, GateConfig, QueryResult,
    };
    let (status, body) = match data {
        [a, b, rest @ ..] => (u16::from_le_bytes([*a, *b]) % 600, rest),
        _ => (200, data),
    };
    match parse_response(status, body) {
        Ok(r) => {
            let single = r.single_value();
            match &r.result {
                QueryResult::Vector(v) if v.len() > 1 => assert!(single.is_err()),
                QueryResult::Vector(v) => assert_eq!(
                    single.as_ref().ok().map(Option::is_some),
                    Some(v.len() == 1)
                ),
                QueryResult::Scalar { .. } => assert!(single.is_ok()),
                _ => assert!(single.is_err()),
            }
            let _ = r.vector();
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
    if let Ok(text) = std::str::from_utf8(body) {
        // The gate's config file is a parser too.
        if let Ok(config) = GateConfig::from_json(text) {
            assert!(config.rendered_queries().is_ok());
        }
        let vars = std::collections::BTreeMap::from([
            ("window".to_owned(), "5m".to_owned()),
            ("service".to_owned(), text.to_owned()),
        ]);
        if let Ok(q) = render_template("fuzz", text, &vars) {
            assert!(!q.trim().is_empty());
        }
    }
}

/// Sets a rollout's percentage in arbitrary text. Never panics; on a valid
/// config with that rollout it succeeds, and whenever it succeeds on a valid
/// config the result is valid, gives the rollout exactly that percentage,
/// and differs from the input only in one number.
pub fn check_flags_edit(data: &[u8]) {
    use genesis_flags::rollout::files::set_rollout_percentage;
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // The percentage comes from the bytes, so the seeds are plain configs.
    let ppm = data.iter().fold(data.len() as u32, |h, &b| {
        h.wrapping_mul(31).wrapping_add(u32::from(b))
    }) % 1_000_001;
    let percentage = Percentage::from_ppm(ppm).expect("at most 1000000");
    let body = text.strip_prefix('\u{feff}').unwrap_or(text);
    let before = Snapshot::from_json(body).ok();
    let mut rollouts: Vec<String> = before
        .iter()
        .flat_map(|s| s.rollouts().map(|r| r.id))
        .collect();
    rollouts.push("phase_4_deployment".to_owned());
    for rollout in &rollouts {
        let exists = before
            .as_ref()
            .is_some_and(|s| s.rollout_status(rollout).is_some());
        let result = set_rollout_percentage(text, rollout, percentage);
        if exists {
            assert!(
                result.is_ok(),
                "a valid config with {rollout} was refused: {result:?}"
            );
        }
        let Ok(out) = result else { continue };
        let out_body = out.strip_prefix('\u{feff}').unwrap_or(&out);
        let after =
            Snapshot::from_json(out_body).expect("an edit succeeded into an invalid config");
        assert_eq!(
            after.rollout_status(rollout).map(|s| s.percentage),
            Some(percentage),
            "the edit does not give the percentage asked for"
        );
        if exists {
            // Only one number changed: what differs is a number in the output.
            let prefix = text
                .bytes()
                .zip(out.bytes())
                .take_while(|(a, b)| a == b)
                .count();
            let suffix = text[prefix..]
                .bytes()
                .rev()
                .zip(out[prefix..].bytes().rev())
                .take_while(|(a, b)| a == b)
                .count();
            let changed = &out.as_bytes()[prefix..out.len() - suffix];
            assert!(
                changed.iter().all(|b| b.is_ascii_digit() || *b == b'.'),
                "more than a number changed: {:?}",
                String::from_utf8_lossy(changed)
            );
        }
    }
}
