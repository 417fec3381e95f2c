//! `FlagsFile`: one rollout's percentage set in place, with the file's mode,
//! owner and symlinks kept, and nothing changed when anything fails.

#![cfg(unix)]

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use genesis_flags::rollout::files::{FlagsFile, FlagsFileError};
use genesis_flags::Percentage;

const FLAGS: &str = "{\n  \"version\": 1,\n  \"rollouts\": {\n    \"phase_4_deployment\": {\n      \"percentage\": 5,\n      \"description\": \"Phase 4\"\n    }\n  },\n  \"flags\": {\n    \"htdag_enabled\": { \"class\": \"critical\", \"rollout\": \"phase_4_deployment\" },\n    \"new_checkout\":  { \"percentage\": 5 }\n  }\n}\n";
const ROLLOUT: &str = "phase_4_deployment";

fn pct(percent: f64) -> Percentage {
    Percentage::from_percent(percent).unwrap()
}

fn expected(percent: &str) -> String {
    FLAGS.replacen(
        "\"percentage\": 5,",
        &format!("\"percentage\": {percent},"),
        1,
    )
}

/// The names in a folder, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn is_root() -> bool {
    fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

#[test]
fn only_the_number_changes_and_the_value_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flags.json");
    fs::write(&path, FLAGS).unwrap();
    let file = FlagsFile::new(&path);
    assert_eq!(file.path(), path);
    assert_eq!(file.percentage(ROLLOUT).unwrap(), pct(5.0));

    assert!(file.write(ROLLOUT, pct(12.5)).unwrap());
    assert_eq!(fs::read_to_string(&path).unwrap(), expected("12.5"));
    assert_eq!(file.percentage(ROLLOUT).unwrap(), pct(12.5));
    assert_eq!(
        file.snapshot()
            .unwrap()
            .flag("new_checkout")
            .unwrap()
            .percentage(),
        Some(pct(5.0))
    );

    // Already there: nothing staged, nothing written.
    assert!(file.stage(ROLLOUT, pct(12.5)).unwrap().is_none());
    assert!(!file.write(ROLLOUT, pct(12.5)).unwrap());
    assert_eq!(names(dir.path()), ["flags.json"]);
}

#[test]
fn relative_paths_are_made_absolute_without_resolving_links() {
    let file = FlagsFile::new("some/flags.json");
    assert!(file.path().is_absolute());
    assert!(file.path().ends_with("some/flags.json"));
}

#[test]
fn mode_and_owner_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flags.json");
    fs::write(&path, FLAGS).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
    let owner = if is_root() {
        std::os::unix::fs::chown(&path, Some(65534), Some(65534)).unwrap();
        (65534, 65534)
    } else {
        let m = fs::metadata(&path).unwrap();
        (m.uid(), m.gid())
    };

    assert!(FlagsFile::new(&path).write(ROLLOUT, pct(25.0)).unwrap());
    let meta = fs::metadata(&path).unwrap();
    assert_eq!(meta.permissions().mode() & 0o7777, 0o640);
    assert_eq!((meta.uid(), meta.gid()), owner);
    assert_eq!(fs::read_to_string(&path).unwrap(), expected("25"));
}

fn linked(relative: bool) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("real")).unwrap();
    let real = dir.path().join("real/flags.json");
    fs::write(&real, FLAGS).unwrap();
    let link = dir.path().join("flags.json");
    if relative {
        std::os::unix::fs::symlink("real/flags.json", &link).unwrap();
    } else {
        std::os::unix::fs::symlink(&real, &link).unwrap();
    }
    (dir, link, real)
}

#[test]
fn a_symlink_stays_a_symlink_and_its_target_is_rewritten() {
    for relative in [false, true] {
        let (dir, link, real) = linked(relative);
        let before = fs::read_link(&link).unwrap();
        let file = FlagsFile::new(&link);
        assert_eq!(file.target().unwrap(), fs::canonicalize(&real).unwrap());

        assert!(file.write(ROLLOUT, pct(50.0)).unwrap());
        assert!(fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(fs::read_link(&link).unwrap(), before);
        assert_eq!(fs::read_to_string(&real).unwrap(), expected("50"));
        assert_eq!(names(dir.path()), ["flags.json", "real"]);
        assert_eq!(names(&dir.path().join("real")), ["flags.json"]);
    }
}

#[test]
fn a_swapped_link_is_followed() {
    let (dir, link, real) = linked(true);
    let file = FlagsFile::new(&link);
    fs::create_dir(dir.path().join("next")).unwrap();
    let next = dir.path().join("next/flags.json");
    fs::write(&next, FLAGS).unwrap();
    let swap = dir.path().join("flags.json.new");
    std::os::unix::fs::symlink("next/flags.json", &swap).unwrap();
    fs::rename(&swap, &link).unwrap();

    assert!(file.write(ROLLOUT, pct(75.0)).unwrap());
    assert_eq!(fs::read_to_string(&next).unwrap(), expected("75"));
    assert_eq!(fs::read_to_string(&real).unwrap(), FLAGS);
}

#[test]
fn stage_then_drop_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flags.json");
    fs::write(&path, FLAGS).unwrap();
    let staged = FlagsFile::new(&path)
        .stage(ROLLOUT, pct(10.0))
        .unwrap()
        .expect("a change to stage");
    assert_eq!(staged.target(), fs::canonicalize(&path).unwrap());
    assert_eq!(names(dir.path()).len(), 2, "the temp sits beside the file");
    assert_eq!(fs::read_to_string(&path).unwrap(), FLAGS);
    drop(staged);
    assert_eq!(names(dir.path()), ["flags.json"]);
    assert_eq!(fs::read_to_string(&path).unwrap(), FLAGS);
}

/// Staging fails with an error naming the folder; the file is untouched and
/// no temp is left.
fn assert_stage_fails_cleanly(dir: &Path, path: &Path, why: &str) {
    let err = FlagsFile::new(path).stage(ROLLOUT, pct(10.0)).unwrap_err();
    assert!(matches!(err, FlagsFileError::Write { .. }), "{err}");
    let message = err.to_string();
    assert!(
        message.contains("cannot create a temporary file in the folder")
            && message.contains(&dir.display().to_string())
            && message.contains(why),
        "{message}"
    );
    assert_eq!(fs::read_to_string(path).unwrap(), FLAGS);
    assert_eq!(names(dir).len(), 1, "{:?}", names(dir));
}

#[test]
fn an_unwritable_folder_fails_at_stage() {
    let dir = tempfile::tempdir().unwrap();
    let real = fs::canonicalize(dir.path()).unwrap().join("folder");
    fs::create_dir(&real).unwrap();
    let path = real.join("flags.json");
    fs::write(&path, FLAGS).unwrap();
    fs::set_permissions(&real, fs::Permissions::from_mode(0o555)).unwrap();
    // Root ignores the folder's mode; then this case cannot be forced here
    // (the name-length case below covers root).
    let probe = real.join("probe");
    if fs::write(&probe, "").is_ok() {
        fs::remove_file(&probe).unwrap();
    } else {
        assert_stage_fails_cleanly(&real, &path, "ermission denied");
    }
    fs::set_permissions(&real, fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn a_temp_name_the_folder_refuses_fails_at_stage() {
    // The file's name is as long as a name may be, so the temp's name
    // (`.{name}.tmp-{pid}-{n}`) is too long: the creation fails, whoever runs
    // the test.
    let dir = tempfile::tempdir().unwrap();
    let real = fs::canonicalize(dir.path()).unwrap();
    let path = real.join(format!("{}.json", "f".repeat(250)));
    fs::write(&path, FLAGS).unwrap();
    assert_stage_fails_cleanly(&real, &path, "too long");
}

#[test]
fn an_invalid_result_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flags.json");
    // Invalid for another reason than the percentage: the edit cannot mend it.
    let text = FLAGS.replace("\"version\": 1", "\"version\": 2");
    fs::write(&path, &text).unwrap();
    let err = FlagsFile::new(&path).stage(ROLLOUT, pct(10.0)).unwrap_err();
    assert!(matches!(err, FlagsFileError::EditInvalid { .. }), "{err}");
    let message = err.to_string();
    assert!(
        message.contains("flags.json") && message.contains("version"),
        "{message}"
    );
    assert_eq!(fs::read_to_string(&path).unwrap(), text);
    assert_eq!(names(dir.path()), ["flags.json"]);
}

#[test]
fn errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flags.json");
    fs::write(&path, FLAGS).unwrap();
    let file = FlagsFile::new(&path);

    let err = file.percentage("nope").unwrap_err();
    assert!(matches!(err, FlagsFileError::NoRollout { .. }), "{err}");
    let message = err.to_string();
    assert!(
        message.contains("flags.json") && message.contains("phase_4_deployment"),
        "{message}"
    );
    let err = file.write("nope", pct(10.0)).unwrap_err();
    assert!(matches!(err, FlagsFileError::NoRollout { .. }), "{err}");

    fs::write(&path, "{ not json").unwrap();
    let err = file.snapshot().unwrap_err();
    assert!(matches!(err, FlagsFileError::Invalid { .. }), "{err}");
    assert!(err.to_string().contains("flags.json"), "{err}");

    let missing = FlagsFile::new(dir.path().join("missing.json"));
    let err = missing.write(ROLLOUT, pct(10.0)).unwrap_err().to_string();
    assert!(
        err.contains("cannot resolve") && err.contains("missing.json"),
        "{err}"
    );
}
