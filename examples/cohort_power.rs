//! The cohort gate's false-alarm rate and detection delay, measured by
//! simulation with a seeded random generator: anyone can rerun it and get
//! the same figures.
//!
//! ```text
//! cargo run --release --example cohort_power -- --runs 1000 --detection-runs 200 --seed 1
//! ```
//!
//! A service of 200 requests per second with a 0.05% error rate is observed
//! every minute over a 5-minute window (Poisson counts per minute, errors
//! and slow requests Poisson among them), through the six-day plan and the
//! real policy (`decide` and `RolloutState::apply`, with every instance on
//! the rollout's percentage). Healthy runs measure how often a rollout is
//! wrongly rolled back; faulty runs give the in cohort twice or ten times
//! the out cohort's error rate from the start of the 5%, 10% or 25% stage
//! and measure the time from that stage's start to the rollback.

use std::time::Duration;

use genesis_flags::rollout::{
    decide, Action, CohortFigures, CohortObservation, FleetPercentage, Observation, Plan, Reading,
    RolloutState, Timestamp,
};
use genesis_flags::Percentage;

/// splitmix64: small, fast, and the same everywhere.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1).
    fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }

    /// A Poisson draw: Knuth's product below 50, a rounded normal above.
    fn poisson(&mut self, mean: f64) -> f64 {
        if mean <= 0.0 {
            return 0.0;
        }
        if mean < 50.0 {
            let limit = (-mean).exp();
            let mut k = 0.0;
            let mut p = self.uniform();
            while p > limit {
                k += 1.0;
                p *= self.uniform();
            }
            return k;
        }
        (mean + mean.sqrt() * self.normal()).round().max(0.0)
    }
}

const RPS: f64 = 200.0;
const ERROR_RATE: f64 = 0.0005;
/// Share of requests above the out cohort's P95 bucket bound.
const SLOW: f64 = 0.01;
const WINDOW_MINUTES: usize = 5;

/// One minute of traffic.
#[derive(Clone, Copy, Default)]
struct Minute {
    in_requests: f64,
    in_errors: f64,
    in_slow: f64,
    out_requests: f64,
    out_errors: f64,
    out_slow: f64,
}

/// The in cohort's error rate: `factor` times the out cohort's from the
/// moment the rollout reaches `from` (a fault on the flagged path).
#[derive(Clone, Copy)]
struct Fault {
    from: Percentage,
    factor: f64,
}

enum End {
    RolledBack { after_fault: Option<Duration> },
    Paused,
    Finished,
}

fn run(seed: u64, fault: Option<Fault>) -> End {
    let mut rng = Rng(seed);
    let start = Timestamp::from_unix_millis(1_761_210_000_000);
    let plan = Plan::six_day();
    let mut state = RolloutState::new("power", plan, start);
    if state.start(start, "simulation").is_err() {
        return End::Paused;
    }
    let mut window = [Minute::default(); WINDOW_MINUTES];
    let mut fault_since: Option<Timestamp> = None;
    let minute = Duration::from_secs(60);
    for m in 1..=(145 * 60u64) {
        let now = start + minute * m as u32;
        let share = state.percentage.as_percent() / 100.0;
        let faulty = fault.is_some_and(|f| state.percentage >= f.from);
        if faulty && fault_since.is_none() {
            fault_since = Some(state.since);
        }
        let in_rate = ERROR_RATE
            * if faulty {
                fault.map_or(1.0, |f| f.factor)
            } else {
                1.0
            };
        let n = RPS * 60.0;
        let in_requests = rng.poisson(n * share);
        let out_requests = rng.poisson(n * (1.0 - share));
        window[m as usize % WINDOW_MINUTES] = Minute {
            in_requests,
            in_errors: rng.poisson(in_requests * in_rate),
            in_slow: rng.poisson(in_requests * SLOW),
            out_requests,
            out_errors: rng.poisson(out_requests * ERROR_RATE),
            out_slow: rng.poisson(out_requests * SLOW),
        };
        let sum = |f: fn(&Minute) -> f64| window.iter().map(f).sum::<f64>();
        let figures = |requests: f64, errors: f64, slow: f64| CohortFigures {
            requests,
            errors,
            p95_ms: (requests > 0.0).then_some(120.0),
            slow,
        };
        let inn = figures(
            sum(|m| m.in_requests),
            sum(|m| m.in_errors),
            sum(|m| m.in_slow),
        );
        let out = figures(
            sum(|m| m.out_requests),
            sum(|m| m.out_errors),
            sum(|m| m.out_slow),
        );
        let requests = inn.requests + out.requests;
        let mut cohorts = CohortObservation::converged(
            "power",
            minute * WINDOW_MINUTES as u32,
            state.percentage,
            inn,
            out,
        );
        cohorts.slow_above_ms = Some(200.0);
        cohorts.fleet = Reading::Value(FleetPercentage {
            instances: 2,
            reports: Vec::new(),
            ..match cohorts.fleet {
                Reading::Value(f) => f,
                _ => return End::Paused,
            }
        });
        let mut obs = Observation::healthy()
            .with_error_rate((inn.errors + out.errors) / requests.max(1.0))
            .with_cohorts(cohorts);
        obs.requests = Reading::Value(requests);
        let decision = decide(&state, &obs, now);
        state.apply(&decision);
        match decision.action {
            Action::Rollback { .. } => {
                return End::RolledBack {
                    after_fault: fault_since.map(|t| now.since(t)),
                }
            }
            Action::Pause { .. } => return End::Paused,
            Action::Complete => return End::Finished,
            _ => {}
        }
    }
    End::Finished
}

fn parse_args() -> (usize, usize, u64) {
    let mut args = std::env::args().skip(1);
    let (mut runs, mut detection, mut seed) = (1000, 200, 1);
    while let Some(flag) = args.next() {
        let value = args.next().and_then(|v| v.parse::<u64>().ok());
        match (flag.as_str(), value) {
            ("--runs", Some(v)) => runs = v as usize,
            ("--detection-runs", Some(v)) => detection = v as usize,
            ("--seed", Some(v)) => seed = v,
            _ => {
                eprintln!("usage: cohort_power [--runs N] [--detection-runs N] [--seed S]");
                std::process::exit(2);
            }
        }
    }
    (runs, detection, seed)
}

/// Runs `count` simulations on two threads; seeds derive from `seed`.
fn many(count: usize, seed: u64, fault: Option<Fault>) -> Vec<End> {
    let threads = 2;
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    (t..count)
                        .step_by(threads)
                        .map(|i| {
                            (
                                i,
                                run(seed.wrapping_mul(1_000_003).wrapping_add(i as u64), fault),
                            )
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut all: Vec<(usize, End)> = handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect();
        all.sort_by_key(|(i, _)| *i);
        all.into_iter().map(|(_, e)| e).collect()
    })
}

fn minutes(d: Duration) -> String {
    let m = d.as_secs() / 60;
    format!("{}h{:02}m", m / 60, m % 60)
}

fn main() {
    let (runs, detection, seed) = parse_args();
    let healthy = many(runs, seed, None);
    let wrongful = healthy
        .iter()
        .filter(|e| matches!(e, End::RolledBack { .. }))
        .count();
    let paused = healthy.iter().filter(|e| matches!(e, End::Paused)).count();
    println!(
        "seed {seed}; 200 rps, 0.05% errors, 1-minute ticks over a 5-minute window, six-day plan\n"
    );
    println!(
        "False alarms: {wrongful} wrongful rollbacks in {runs} healthy six-day runs ({:.2}%); {paused} paused\n",
        100.0 * wrongful as f64 / runs.max(1) as f64
    );
    // At the null hypothesis's boundary (the in cohort 1.25 times worse, the
    // margin): Ville's inequality bounds the share of runs the in-vs-out
    // test rolls back by alpha (1%).
    let boundary = many(
        runs,
        seed ^ 0xB0DA,
        Percentage::from_percent(5.0)
            .ok()
            .map(|from| Fault { from, factor: 1.25 }),
    );
    let tripped = boundary
        .iter()
        .filter(|e| matches!(e, End::RolledBack { .. }))
        .count();
    println!(
        "At the margin (in cohort 1.25x the out cohort's error rate from 5% on): {tripped} rollbacks in {runs} runs ({:.2}%; the method's bound is alpha = 1%)\n",
        100.0 * tripped as f64 / runs.max(1) as f64
    );
    println!("| stage | in-cohort error rate | detected | median delay | 90th percentile | max |");
    println!("|---|---|---|---|---|---|");
    for percent in [5.0, 10.0, 25.0] {
        for factor in [2.0, 10.0] {
            let Ok(from) = Percentage::from_percent(percent) else {
                continue;
            };
            let ends = many(detection, seed ^ 0xD1CE, Some(Fault { from, factor }));
            let mut delays: Vec<Duration> = ends
                .iter()
                .filter_map(|e| match e {
                    End::RolledBack { after_fault } => *after_fault,
                    _ => None,
                })
                .collect();
            delays.sort();
            let at = |q: f64| {
                delays
                    .get(((delays.len() as f64 * q).ceil() as usize).saturating_sub(1))
                    .map_or("-".to_owned(), |d| minutes(*d))
            };
            println!(
                "| {percent}% | {factor}x ({:.2}%) | {}/{} | {} | {} | {} |",
                ERROR_RATE * factor * 100.0,
                delays.len(),
                ends.len(),
                at(0.5),
                at(0.9),
                at(1.0)
            );
        }
    }
}
