//! The README's examples say what the code does: the gate file it shows is
//! the default, field for field, so an operator who copies it knows which
//! jobs a default gate expects.

#![cfg(feature = "prometheus")]

use genesis_flags::rollout::prometheus::GateConfig;

/// The first fenced JSON block after `heading` in the README.
fn json_block_after(heading: &str) -> String {
    let readme = include_str!("../README.md");
    let start = readme
        .find(heading)
        .unwrap_or_else(|| panic!("the README lost the sentence {heading:?}"));
    let rest = &readme[start..];
    let open = rest.find("```json\n").expect("a JSON block follows") + "```json\n".len();
    let close = rest[open..].find("```").expect("the block is closed");
    rest[open..open + close].to_owned()
}

#[test]
fn the_readme_gate_file_is_the_default() {
    let text = json_block_after("The gate's config is JSON; every field has a default");
    let shown = GateConfig::from_json(&text).expect("the README's gate file loads");
    let default = GateConfig::default();
    assert_eq!(shown.queries, default.queries, "queries");
    assert_eq!(shown.health_checks, default.health_checks, "health checks");
    assert_eq!(shown.variables, default.variables, "variables");
    assert_eq!(shown.prometheus.url, default.prometheus.url);
    assert_eq!(
        shown.prometheus.connect_timeout,
        default.prometheus.connect_timeout
    );
    assert_eq!(
        shown.prometheus.read_timeout,
        default.prometheus.read_timeout
    );
    assert_eq!(shown.health_checks.len(), 5);
}
