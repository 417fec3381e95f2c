//! A corpus of bad configs, each with the path (or line) its error must name.

use std::collections::BTreeMap;
use std::path::Path;

use genesis_flags::{ConfigError, FlagStore, Snapshot};
use serde::Deserialize;

#[derive(Deserialize)]
struct Expected {
    /// A JSON path, or `line N` for a syntax error.
    path: String,
    /// A fragment of the message at that path.
    contains: String,
}

#[test]
fn every_bad_config_names_where_it_is_wrong() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/bad_configs");
    let expected: BTreeMap<String, Expected> = serde_json::from_str(
        &std::fs::read_to_string(dir.with_file_name("bad_configs.expected.json")).unwrap(),
    )
    .unwrap();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    assert!(files.len() >= 25, "only {} bad configs", files.len());
    assert_eq!(
        files,
        expected.keys().cloned().collect::<Vec<_>>(),
        "corpus and expectations differ"
    );

    let store = FlagStore::from_json(r#"{"version":1,"flags":{"keep":{}}}"#).unwrap();
    for (file, want) in &expected {
        let err = store
            .replace_from_file(dir.join(file))
            .expect_err(&format!("{file} was accepted"));
        let shown = err.to_string();
        assert!(
            shown.contains(file.as_str()),
            "{file}: the error does not name the file: {shown}"
        );
        if let Some(line) = want.path.strip_prefix("line ") {
            let (l, _) = err
                .line_column()
                .unwrap_or_else(|| panic!("{file}: no line/column: {shown}"));
            assert_eq!(l.to_string(), line, "{file}: {shown}");
            assert!(shown.contains(&want.contains), "{file}: {shown}");
        } else {
            let hit = err
                .problems()
                .iter()
                .find(|p| p.path == want.path && p.to_string().contains(&want.contains));
            assert!(
                hit.is_some(),
                "{file}: wanted `{}: ..{}..`, got: {shown}",
                want.path,
                want.contains
            );
        }
        // The good snapshot stays.
        assert!(
            store.is_enabled("keep", "u"),
            "{file} replaced the snapshot"
        );
    }
}

#[test]
fn all_problems_of_a_document_are_listed_together() {
    let err = Snapshot::from_json(
        r#"{"version":3,"rollouts":{"r":{"percentage":101}},
            "flags":{"A B":{},"b":{"rollout":"zz"},"c":{"percentage":1.23456},"d":{"oops":1}}}"#,
    )
    .unwrap_err();
    let paths: Vec<&str> = err.problems().iter().map(|p| p.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "version",
            "rollouts.r.percentage",
            "flags[\"A B\"]",
            "flags.b.rollout",
            "flags.c.percentage",
            "flags.d.oops"
        ]
    );
    let shown = err.to_string();
    assert!(
        shown.starts_with("invalid flag config (6 problems):"),
        "{shown}"
    );
    assert!(matches!(err, ConfigError::Invalid { omitted: 0, .. }));
}

#[test]
fn problems_past_the_cap_are_counted() {
    let flags: Vec<String> = (0..1500).map(|i| format!(r#""F {i}":{{}}"#)).collect();
    let doc = format!(r#"{{"version":1,"flags":{{{}}}}}"#, flags.join(","));
    match Snapshot::from_json(&doc).unwrap_err() {
        ConfigError::Invalid { problems, omitted } => {
            assert_eq!(problems.len(), genesis_flags::config::MAX_REPORTED_PROBLEMS);
            assert_eq!(omitted, 500);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn documents_over_16_mib_are_refused() {
    let pad = " ".repeat(genesis_flags::MAX_CONFIG_BYTES);
    let doc = format!(r#"{{"version":1{pad}}}"#);
    assert!(matches!(
        Snapshot::from_json(&doc),
        Err(ConfigError::TooLarge { .. })
    ));
}
