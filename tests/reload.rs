//! The file reloader: atomic renames, ConfigMap-style symlink swaps, bad
//! changes refused, and a thread that stops when the reloader is dropped.

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use genesis_flags::{FlagStore, Reloader};

const ON: &str = r#"{"version":1,"flags":{"f":{}}}"#;
const OFF: &str = r#"{"version":1,"flags":{"f":{"enabled":false}}}"#;
const BAD: &str = r#"{"version":1,"flags":{"f":{"percentage":150}}}"#;

/// Polls `cond` for up to 5 s.
fn eventually(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn write_atomically(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, text).unwrap();
    fs::rename(&tmp, path).unwrap();
}

#[test]
fn follows_atomic_renames_and_keeps_the_last_good_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flags.json");
    fs::write(&path, ON).unwrap();
    let store = FlagStore::from_file(&path).unwrap();
    let reloader = Reloader::builder(store.clone(), &path)
        .interval(Duration::from_millis(10))
        .spawn()
        .unwrap();
    assert_eq!(reloader.path(), Some(path.as_path()));

    write_atomically(&path, OFF);
    eventually("the store turns f off", || !store.is_enabled("f", "u"));

    write_atomically(&path, BAD);
    eventually("the bad change is refused", || {
        reloader.stats().rejections == 1
    });
    assert!(
        !store.is_enabled("f", "u"),
        "a bad file replaced the snapshot"
    );
    let error = reloader.stats().last_error.unwrap().to_string();
    assert!(
        error.contains("flags.f.percentage: 150 is outside 0..=100"),
        "{error}"
    );

    fs::remove_file(&path).unwrap();
    eventually("the missing file is refused", || {
        reloader.stats().rejections == 2
    });
    assert!(!store.is_enabled("f", "u"));

    write_atomically(&path, ON);
    eventually("the good change is installed", || {
        store.is_enabled("f", "u")
    });
    let stats = reloader.stats();
    assert!(stats.last_error.is_none());
    assert_eq!(stats.rejections, 2);
    assert!(stats.reloads >= 3, "{stats:?}");
    assert!(stats.last_reload.is_some());
}

#[cfg(unix)]
#[test]
fn follows_configmap_symlink_swaps() {
    use std::os::unix::fs::symlink;
    // Kubernetes layout: flags.json -> ..data/flags.json, ..data -> ..v1,
    // and an update swaps ..data to a new ..v2 with a rename.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    fs::create_dir(root.join("..v1")).unwrap();
    fs::write(root.join("..v1/flags.json"), ON).unwrap();
    symlink("..v1", root.join("..data")).unwrap();
    symlink("..data/flags.json", root.join("flags.json")).unwrap();

    let path = root.join("flags.json");
    let store = FlagStore::from_file(&path).unwrap();
    let reloader = Reloader::builder(store.clone(), &path)
        .interval(Duration::from_millis(10))
        .spawn()
        .unwrap();
    assert!(store.is_enabled("f", "u"));

    fs::create_dir(root.join("..v2")).unwrap();
    fs::write(root.join("..v2/flags.json"), OFF).unwrap();
    symlink("..v2", root.join("..data_tmp")).unwrap();
    fs::rename(root.join("..data_tmp"), root.join("..data")).unwrap();
    fs::remove_dir_all(root.join("..v1")).unwrap();

    eventually("the swapped config is installed", || {
        !store.is_enabled("f", "u")
    });
    assert_eq!(reloader.stats().rejections, 0);
}

#[test]
fn a_same_size_rewrite_within_the_same_second_is_seen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flags.json");
    let a = r#"{"version":1,"flags":{"f":{"percentage":100}}}"#;
    let b = r#"{"version":1,"flags":{"f":{"percentage":0.0}}}"#;
    assert_eq!(a.len(), b.len());
    fs::write(&path, a).unwrap();
    let store = FlagStore::from_json(ON).unwrap();
    let reloader = Reloader::builder(store.clone(), &path)
        .interval(Duration::from_secs(3600))
        .spawn()
        .unwrap();
    assert!(store.is_enabled("f", "u"));
    fs::write(&path, b).unwrap();
    assert!(
        reloader.check_now(),
        "an in-place rewrite of the same size was missed"
    );
    assert!(!store.is_enabled("f", "u"));
    assert!(
        !reloader.check_now(),
        "an unchanged file was installed again"
    );
}

#[test]
fn dropping_the_reloader_stops_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flags.json");
    fs::write(&path, ON).unwrap();
    let store = FlagStore::from_file(&path).unwrap();
    let reloader = Reloader::builder(store.clone(), &path)
        .interval(Duration::from_millis(5))
        .spawn()
        .unwrap();
    let started = Instant::now();
    drop(reloader);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "drop did not return promptly"
    );
    write_atomically(&path, OFF);
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        store.is_enabled("f", "u"),
        "a dropped reloader still reloaded"
    );
}
