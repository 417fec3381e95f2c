//! The Genesis flag set, evaluated for a sample of users.
//!
//! ```text
//! cargo run --release --example quickstart                 # embedded default config
//! cargo run --release --example quickstart -- flags.json   # your own config
//! cargo run --release --example quickstart -- --users 1000000
//! ```
//!
//! Prints, for every flag, who gets it and the measured share against the
//! configured percentage, then a few users with the reason for each answer.

use std::process::ExitCode;
use std::time::Instant;

use genesis_flags::{FlagClass, FlagStore, Reason};

const DEFAULT_CONFIG: &str = include_str!("config/genesis.json");

struct Args {
    config: Option<String>,
    users: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        config: None,
        users: 100_000,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--users" => {
                let n = it.next().ok_or("--users needs a number")?;
                args.users = n
                    .parse()
                    .map_err(|_| format!("--users: {n:?} is not a number"))?;
            }
            "-h" | "--help" => {
                return Err("usage: quickstart [CONFIG.json] [--users N]".into());
            }
            path if args.config.is_none() && !path.starts_with('-') => {
                args.config = Some(path.to_owned());
            }
            other => return Err(format!("unexpected argument {other:?}")),
        }
    }
    if args.users == 0 {
        return Err("--users must be at least 1".into());
    }
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let (store, source) = match &args.config {
        Some(path) => (FlagStore::from_file(path), path.as_str()),
        None => (
            FlagStore::from_json(DEFAULT_CONFIG),
            "embedded Genesis config",
        ),
    };
    let store = match store {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let snapshot = store.snapshot();
    println!(
        "genesis-flags quickstart: {} flags from the {source}",
        snapshot.len()
    );
    for rollout in snapshot.rollouts() {
        println!(
            "rollout {} at {}: {} flags bound together",
            rollout.id,
            rollout.percentage,
            rollout.flags.len()
        );
    }

    let users: Vec<String> = (0..args.users).map(|i| format!("user-{i}")).collect();
    println!(
        "\n{:<34} {:<13} {:>10} {:>10}  {:>9}",
        "flag", "class", "on", "share", "target"
    );
    let started = Instant::now();
    let mut evaluations = 0u64;
    for flag in snapshot.flags() {
        let handle = store.handle(flag.name());
        let on = users.iter().filter(|u| handle.is_enabled(u)).count();
        evaluations += users.len() as u64;
        let share = on as f64 / users.len() as f64 * 100.0;
        let target = match (flag.is_enabled(), flag.percentage()) {
            (false, _) => "off (kill)".to_owned(),
            (true, _)
                if !store.allows_experimental() && flag.class() == FlagClass::Experimental =>
            {
                "off (exp.)".to_owned()
            }
            (true, Some(p)) => p.to_string(),
            (true, None) => "100%".to_owned(),
        };
        println!(
            "{:<34} {:<13} {:>10} {:>9.3}%  {:>9}",
            flag.name(),
            flag.class().as_str(),
            on,
            share,
            target
        );
    }
    let elapsed = started.elapsed();

    // All-or-nothing: a user has every flag of a rollout or none of them.
    let mut mixed = 0;
    for rollout in snapshot.rollouts() {
        for user in &users {
            let view = store.view();
            let on = rollout
                .flags
                .iter()
                .filter(|f| view.is_enabled(f, user))
                .count();
            if on != 0 && on != rollout.flags.len() {
                mixed += 1;
            }
        }
    }
    println!("\nusers with a partial bundle: {mixed} (must be 0)");

    // A few users inside the first rollout and a few outside it.
    let mut sample: Vec<&String> = Vec::new();
    if let Some(first) = snapshot
        .rollouts()
        .next()
        .and_then(|r| r.flags.first().cloned())
    {
        let inside = users.iter().filter(|u| store.is_enabled(&first, u)).take(3);
        let outside = users
            .iter()
            .filter(|u| !store.is_enabled(&first, u))
            .take(3);
        sample.extend(inside.chain(outside));
    } else {
        sample.extend(users.iter().take(6));
    }
    println!("\nsample users:");
    for user in sample {
        let mut on = Vec::new();
        let mut reasons = std::collections::BTreeMap::<Reason, usize>::new();
        for flag in snapshot.flags() {
            let e = store.evaluate(flag.name(), user);
            if e.enabled {
                on.push(flag.name());
            }
            *reasons.entry(e.reason).or_default() += 1;
        }
        let why: Vec<String> = reasons.iter().map(|(r, n)| format!("{r}×{n}")).collect();
        let bucket = match snapshot.rollouts().next() {
            Some(r) => format!(
                "bucket in {}: {:>6}",
                r.id,
                genesis_flags::bucket(&r.id, user)
            ),
            None => String::new(),
        };
        println!(
            "  {user:<10} {bucket}  on: {:>2} flags  ({})",
            on.len(),
            why.join(", ")
        );
    }
    println!(
        "\n{evaluations} evaluations in {:.1} ms ({:.1} ns each, single thread)",
        elapsed.as_secs_f64() * 1e3,
        elapsed.as_secs_f64() * 1e9 / evaluations as f64
    );
    if mixed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
