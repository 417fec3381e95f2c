//! Replays the committed fuzz corpus (`fuzz/corpus/`) and the bad-config
//! corpus through the fuzz targets' checks, so every CI run exercises them.

#[path = "support/fuzz_checks.rs"]
mod fuzz_checks;

use std::path::Path;

fn files(dir: &str) -> Vec<std::path::PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

#[test]
fn config_corpus_replays_cleanly() {
    let corpus = files("fuzz/corpus/config");
    assert!(corpus.len() >= 5, "the config corpus is nearly empty");
    let mut parsed = 0;
    for path in corpus.iter().chain(&files("tests/data/bad_configs")) {
        let data = std::fs::read(path).unwrap();
        fuzz_checks::check_config(&data);
        let ok =
            std::str::from_utf8(&data).is_ok_and(|t| genesis_flags::Snapshot::from_json(t).is_ok());
        parsed += usize::from(ok);
    }
    // The seeds include valid documents, so the success path is exercised too.
    assert!(parsed >= 3, "only {parsed} corpus entries parse");
}

#[test]
fn bucket_corpus_replays_cleanly() {
    let corpus = files("fuzz/corpus/bucket");
    assert!(!corpus.is_empty());
    for path in corpus {
        fuzz_checks::check_bucket(&std::fs::read(path).unwrap());
    }
}

#[test]
fn rollout_corpus_replays_cleanly() {
    let corpus = files("fuzz/corpus/rollout");
    assert!(corpus.len() >= 4);
    let mut loaded = 0;
    for path in corpus
        .iter()
        .chain(&files("examples/plans"))
        .chain(&files("examples/scenarios"))
    {
        let data = std::fs::read(path).unwrap();
        fuzz_checks::check_rollout_text(&data);
        let text = String::from_utf8_lossy(&data);
        loaded += usize::from(genesis_flags::rollout::RolloutState::from_json(&text).is_ok());
        loaded += usize::from(genesis_flags::rollout::Plan::from_json(&text).is_ok());
        loaded +=
            usize::from(genesis_flags::rollout::simulation::Scenario::from_json(&text).is_ok());
    }
    assert!(
        loaded >= 3,
        "only {loaded} plans or states in the corpus load"
    );
}

#[test]
fn prometheus_response_corpus_replays_cleanly() {
    let corpus = files("fuzz/corpus/prometheus_response");
    assert!(corpus.len() >= 5);
    let mut parsed = 0;
    for path in corpus {
        let data = std::fs::read(path).unwrap();
        fuzz_checks::check_prometheus_response(&data);
        let status = u16::from_le_bytes([data[0], data[1]]) % 600;
        parsed += usize::from(
            genesis_flags::rollout::prometheus::parse_response(status, &data[2..]).is_ok(),
        );
    }
    assert!(parsed >= 4, "only {parsed} corpus responses parse");
}

#[test]
fn flags_edit_corpus_replays_cleanly() {
    let corpus = files("fuzz/corpus/flags_edit");
    assert!(corpus.len() >= 3);
    for path in corpus
        .iter()
        .chain(&files("examples/config"))
        .chain(&files("fuzz/corpus/config"))
        .chain(&files("tests/data/bad_configs"))
    {
        fuzz_checks::check_flags_edit(&std::fs::read(path).unwrap());
    }
}
