//! Statistical and algebraic properties of bucketing, through the public API.

use genesis_flags::{bucket, FlagStore, Percentage, BUCKETS};
use proptest::prelude::*;

fn store_with_rollout(salt: &str, ppm: u32) -> FlagStore {
    let percent = Percentage::from_ppm(ppm).unwrap().as_percent();
    FlagStore::from_json(&format!(
        r#"{{"version":1,"rollouts":{{"{salt}":{{"percentage":{percent}}}}},
            "flags":{{"f":{{"rollout":"{salt}"}}}}}}"#
    ))
    .unwrap()
}

proptest! {
    #[test]
    fn deterministic_and_in_range(salt in ".{0,64}", user in ".{0,256}") {
        let b = bucket(&salt, &user);
        prop_assert!(b < BUCKETS);
        prop_assert_eq!(b, bucket(&salt.clone(), &user.clone()));
    }

    #[test]
    fn monotonic_in_the_percentage(
        salt in "[a-z0-9_]{1,20}",
        user in ".{0,64}",
        p in 0u32..=1_000_000,
        q in 0u32..=1_000_000,
    ) {
        let (low, high) = (p.min(q), p.max(q));
        let store = store_with_rollout(&salt, low);
        let in_low = store.is_enabled("f", &user);
        store.replace(genesis_flags::Snapshot::from_json(&format!(
            r#"{{"version":1,"rollouts":{{"{salt}":{{"percentage":{}}}}},"flags":{{"f":{{"rollout":"{salt}"}}}}}}"#,
            Percentage::from_ppm(high).unwrap().as_percent()
        )).unwrap());
        let in_high = store.is_enabled("f", &user);
        prop_assert!(!in_low || in_high, "in at {low} ppm but out at {high} ppm");
        // An empty key is not a user: in no percentage.
        prop_assert_eq!(in_high, !user.is_empty() && bucket(&salt, &user) < high);
    }

    #[test]
    fn zero_holds_nobody_and_hundred_everybody(salt in "[a-z0-9_]{1,20}", user in ".{0,64}") {
        prop_assert!(!store_with_rollout(&salt, 0).is_enabled("f", &user));
        // Everybody who is somebody: an empty key is in no percentage.
        prop_assert_eq!(store_with_rollout(&salt, 1_000_000).is_enabled("f", &user), !user.is_empty());
    }
}

/// Chi-square of 10^6 sequential user ids over 100 equal bins (99 degrees of
/// freedom). The ids are fixed, so the statistic is too; 148.2 is the 0.1%
/// critical value.
#[test]
fn buckets_are_uniform() {
    for salt in ["phase_4_deployment", "new_checkout", ""] {
        let mut bins = [0u64; 100];
        let n = 1_000_000u64;
        for i in 0..n {
            let b = bucket(salt, &format!("user-{i}"));
            bins[(b / 10_000) as usize] += 1;
        }
        let expected = n as f64 / 100.0;
        let chi2: f64 = bins
            .iter()
            .map(|&o| (o as f64 - expected).powi(2) / expected)
            .sum();
        assert!(
            chi2 < 148.2,
            "salt {salt:?}: chi-square {chi2:.1} over 99 df"
        );
    }
}

/// Two unrelated 50% rollouts overlap on a quarter of users.
#[test]
fn salts_are_independent() {
    let n = 1_000_000u32;
    let both = (0..n)
        .filter(|i| {
            let user = format!("user-{i}");
            bucket("rollout_a", &user) < 500_000 && bucket("rollout_b", &user) < 500_000
        })
        .count();
    let share = both as f64 / f64::from(n);
    assert!(
        (share - 0.25).abs() <= 0.005,
        "overlap {share:.4}, expected 0.25 ± 0.005"
    );
}
