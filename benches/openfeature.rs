//! What the OpenFeature provider costs over a direct `is_enabled`, in one
//! run: the Genesis flag set, `htdag_enabled` at 5 %, user ids varying over
//! 4,096 (evaluation contexts prebuilt, so only resolution is timed).
//!
//! - direct: `FlagStore::is_enabled`;
//! - provider: `GenesisProvider::resolve` (what `resolve_bool_value`
//!   answers: the evaluation plus the SDK's owned `ResolutionDetails`, its
//!   variant string and a flag-metadata map);
//! - client: the SDK's `Client::get_bool_value`, polled to completion on the
//!   calling thread (the provider never blocks): context merging, hooks, the
//!   provider registry's lock and the provider.
//!
//! Each is paired with direct in alternating chunks (see `support::paired`);
//! the table gives criterion's medians and the median paired ratio.
//!
//! `cargo bench --features openfeature --bench openfeature`

mod support;

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use genesis_flags::openfeature::GenesisProvider;
use genesis_flags::FlagStore;
use open_feature::{EvaluationContext, OpenFeature};

const GROUP: &str = "openfeature";
const USERS: usize = 4096;
const FLAG: &str = "htdag_enabled";

/// Runs a future that is ready without waiting on anything else.
fn ready<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(value) = future.as_mut().poll(&mut cx) {
            return value;
        }
        std::thread::yield_now();
    }
}

fn main() {
    let mut c = support::criterion();
    let store =
        FlagStore::from_json(include_str!("../examples/config/genesis.json")).expect("config");
    let provider = GenesisProvider::new(store.clone());
    let mut api = OpenFeature::default();
    ready(api.set_provider(provider.clone()));
    let client = api.create_client();
    let users = support::users(USERS);
    let contexts: Vec<EvaluationContext> = users
        .iter()
        .map(|u| EvaluationContext::default().with_targeting_key(u.as_str()))
        .collect();
    for (user, context) in users.iter().zip(&contexts) {
        let direct = store.is_enabled(FLAG, user);
        assert_eq!(
            provider.resolve(FLAG, context).expect("known").value,
            direct
        );
        assert_eq!(
            ready(client.get_bool_value(FLAG, Some(context), None)),
            Ok(direct)
        );
    }

    let mut provider_ratios = Vec::new();
    let mut client_ratios = Vec::new();
    let mut group = c.benchmark_group(GROUP);
    group.bench_function("direct_is_enabled", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % USERS;
            black_box(store.is_enabled(black_box(FLAG), &users[i]))
        })
    });
    group.bench_function("provider_resolve", |b| {
        let (mut i, mut j) = (0, 0);
        support::paired(
            b,
            &mut provider_ratios,
            || {
                i = (i + 1) % USERS;
                black_box(store.is_enabled(black_box(FLAG), &users[i]));
            },
            || {
                j = (j + 1) % USERS;
                black_box(provider.resolve(black_box(FLAG), &contexts[j]).is_ok());
            },
        )
    });
    group.bench_function("client_get_bool_value", |b| {
        let (mut i, mut j) = (0, 0);
        support::paired(
            b,
            &mut client_ratios,
            || {
                i = (i + 1) % USERS;
                black_box(store.is_enabled(black_box(FLAG), &users[i]));
            },
            || {
                j = (j + 1) % USERS;
                black_box(ready(client.get_bool_value(
                    black_box(FLAG),
                    Some(&contexts[j]),
                    None,
                )))
                .ok();
            },
        )
    });
    group.finish();
    c.final_summary();

    let direct = support::median_ns(GROUP, "direct_is_enabled");
    let resolve = support::median_ns(GROUP, "provider_resolve");
    let client = support::median_ns(GROUP, "client_get_bool_value");
    support::report(
        "openfeature: criterion medians, ns per evaluation",
        &[
            ("direct FlagStore::is_enabled".into(), direct, String::new()),
            ("GenesisProvider::resolve".into(), resolve, String::new()),
            (
                "OpenFeature Client::get_bool_value".into(),
                client,
                String::new(),
            ),
            (
                "ratio: provider / direct (median of paired samples)".into(),
                support::median_of(provider_ratios),
                String::new(),
            ),
            (
                "ratio: client / direct (median of paired samples)".into(),
                support::median_of(client_ratios),
                String::new(),
            ),
        ],
    );
}
