//! Golden vectors: the bucketing contract, as computed by the reference C
//! xxHash through Python (`scripts/bucket_vectors.py`), must hold in Rust.

use genesis_flags::{bucket, FlagStore, Seed};
use serde::Deserialize;

#[derive(Deserialize)]
struct File {
    vectors: Vec<Vector>,
}

#[derive(Deserialize)]
struct Vector {
    salt: String,
    user: String,
    seed: String,
    hash: String,
    bucket: u32,
}

fn vectors() -> Vec<Vector> {
    let text = include_str!("data/bucket_vectors.json");
    serde_json::from_str::<File>(text).unwrap().vectors
}

#[test]
fn golden_vectors_cover_the_edge_cases() {
    let v = vectors();
    assert!(v.len() >= 500, "only {} vectors", v.len());
    assert!(v.iter().any(|x| x.user.is_empty()));
    assert!(v.iter().any(|x| x.salt.is_empty()));
    assert!(v.iter().any(|x| !x.user.is_ascii()));
    assert!(v.iter().any(|x| x.user.len() >= 1000));
}

#[test]
fn every_golden_vector_matches() {
    let mut mismatches = Vec::new();
    for (i, v) in vectors().iter().enumerate() {
        let seed = Seed::from_salt(&v.salt);
        assert_eq!(
            format!("{:016x}", seed.value()),
            v.seed,
            "seed of vector {i}"
        );
        let hash = xxhash_rust::xxh3::xxh3_64_with_seed(v.user.as_bytes(), seed.value());
        assert_eq!(format!("{hash:016x}"), v.hash, "hash of vector {i}");
        if bucket(&v.salt, &v.user) != v.bucket {
            mismatches.push(i);
        }
    }
    assert!(mismatches.is_empty(), "vectors {mismatches:?} disagree");
}

#[test]
fn the_store_agrees_with_the_vectors() {
    // A flag bound to rollout R at p% is on iff bucket(R, user) < p * 10_000.
    let store = FlagStore::from_json(
        r#"{"version":1,"rollouts":{"phase_4_deployment":{"percentage":37.5}},
            "flags":{"htdag_enabled":{"rollout":"phase_4_deployment"},
                     "new_checkout":{"percentage":37.5}}}"#,
    )
    .unwrap();
    let mut checked = 0;
    for v in vectors() {
        let expected = v.bucket < 375_000;
        if v.salt == "phase_4_deployment" {
            assert_eq!(store.is_enabled("htdag_enabled", &v.user), expected);
            checked += 1;
        }
        if v.salt == "new_checkout" {
            assert_eq!(store.is_enabled("new_checkout", &v.user), expected);
            checked += 1;
        }
    }
    assert!(checked >= 50, "only {checked} vectors for these salts");
}
