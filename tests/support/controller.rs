//! The controller example's binary, built with every feature for the tests
//! that run it (`cargo test` builds examples, but `cargo test --test X` does
//! not, and a stale binary might lack the `prometheus` feature).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Once;

pub fn controller() -> PathBuf {
    static BUILD: Once = Once::new();
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().unwrap().parent().unwrap().to_path_buf();
    let release = profile_dir.file_name().is_some_and(|n| n == "release");
    BUILD.call_once(|| {
        let mut cargo = Command::new(env!("CARGO"));
        cargo.current_dir(env!("CARGO_MANIFEST_DIR")).args([
            "build",
            "--quiet",
            "--example",
            "controller",
            "--all-features",
        ]);
        if release {
            cargo.arg("--release");
        }
        let status = cargo.status().expect("run cargo");
        assert!(status.success(), "building the controller example failed");
    });
    let bin = profile_dir.join("examples").join(if cfg!(windows) {
        "controller.exe"
    } else {
        "controller"
    });
    assert!(bin.exists(), "{} is missing", bin.display());
    bin
}

/// Runs the controller in `dir` with `args` and collects its output.
pub fn run(dir: &Path, args: &[&str]) -> Output {
    Command::new(controller())
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap()
}
