//! A Genesis-like HTTP service that links the crate: what a real service
//! does with genesis-flags, and what the live demo and tests run.
//!
//! ```text
//! cargo run --release --example service -- --listen 127.0.0.1:8080 --flags flags.json
//! cargo run --release --features http --example service -- --listen 127.0.0.1:8080 \
//!     --flags-url http://127.0.0.1:8081/flags.json --poll 5s
//! GET  /work?user=ID   evaluates the critical flags for ID; 200, or 500 when a fault hits
//! GET  /metrics        the cohort series (OpenMetrics text)
//! POST /admin/fault    {"error_ratio": 0.05, "latency_ms": 400}: in-cohort requests only; loopback only
//! GET  /admin/fault    the fault in force
//! ```
//!
//! The flags file (or URL, with the `http` feature) is followed with the
//! crate's `Reloader`: a valid change is applied within `--poll`, an invalid
//! document or a failed fetch is counted in `genesis_flags_reload_errors_total`
//! and the last good flags stay; `genesis_flags_source_info{version}` names the
//! document applied. Every
//! request is labelled with its user's cohort in `--rollout` (`in` when the
//! user's bucket is under the percentage this instance applies), so a gate
//! can judge the flagged users apart from the rest. SIGTERM or Ctrl-C stops
//! it gracefully: in-flight requests finish first.

mod fault;
mod metrics;
mod work;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use clap::Parser;
use genesis_flags::rollout::parse_duration;
use genesis_flags::{FlagHandle, FlagStore, Reloader};

use fault::Faults;
use metrics::Metrics;

/// A Genesis-like service: evaluates the critical flags per request and
/// exports request metrics labelled with the user's rollout cohort.
#[derive(Debug, Parser)]
#[command(name = "service")]
struct Cli {
    /// Address to serve on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// The flags file (JSON), followed while running.
    #[arg(
        long,
        required_unless_present = "flags_url",
        conflicts_with = "flags_url"
    )]
    flags: Option<PathBuf>,
    /// A URL serving the flags document, polled with ETag (feature `http`).
    #[arg(long)]
    flags_url: Option<String>,
    /// With `--flags-url`: a file keeping the last document fetched, so a
    /// start while the server is down begins from it.
    #[arg(long, requires = "flags_url")]
    flags_cache: Option<PathBuf>,
    /// How often to check the flags source.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    poll: Duration,
    /// The rollout whose cohorts label the request metrics.
    #[arg(long, default_value = "phase_4_deployment")]
    rollout: String,
    /// Share of every request (both cohorts) that fails anyway, in [0, 1]:
    /// the background error rate of a healthy service.
    #[arg(long, default_value_t = 0.0)]
    base_error_ratio: f64,
}

/// What every handler shares.
#[derive(Clone)]
pub struct App {
    store: FlagStore,
    rollout: Arc<str>,
    critical: Arc<[FlagHandle]>,
    faults: Arc<Faults>,
    metrics: Arc<Metrics>,
    reloader: Arc<Reloader>,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(false)
        .init();
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            tracing::error!("{message}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> Result<(), String> {
    if !(0.0..=1.0).contains(&cli.base_error_ratio) {
        return Err(format!(
            "--base-error-ratio {} is outside [0, 1]",
            cli.base_error_ratio
        ));
    }
    let (store, reloader) = follow_flags(&cli)?;
    if store.rollout_status(&cli.rollout).is_none() {
        tracing::warn!(rollout = %cli.rollout, "no such rollout in the flags file: every request is `out`");
    }
    let app = App {
        critical: work::CRITICAL.iter().map(|f| store.handle(f)).collect(),
        store,
        rollout: cli.rollout.as_str().into(),
        faults: Arc::new(Faults::new((cli.base_error_ratio * 1e6).round() as u64)),
        metrics: Arc::new(Metrics::new(&cli.rollout)),
        reloader: Arc::new(reloader),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(serve(cli.listen, app))
}

/// The store and the reloader that follows `--flags` or `--flags-url`.
fn follow_flags(cli: &Cli) -> Result<(FlagStore, Reloader), String> {
    if let Some(path) = &cli.flags {
        let store = FlagStore::builder()
            .count_exposures(true)
            .from_file(path)
            .map_err(|e| e.to_string())?;
        let reloader = Reloader::builder(store.clone(), path)
            .interval(cli.poll)
            .spawn()
            .map_err(|e| format!("cannot start the flags reloader: {e}"))?;
        return Ok((store, reloader));
    }
    let url = cli.flags_url.as_deref().unwrap_or_default();
    follow_url(cli, url)
}

#[cfg(feature = "http")]
fn follow_url(cli: &Cli, url: &str) -> Result<(FlagStore, Reloader), String> {
    // Not ready (every flag unknown) until the first document arrives.
    let store = FlagStore::builder().count_exposures(true).pending();
    let mut builder = Reloader::http(store.clone(), url).interval(cli.poll);
    if let Some(cache) = &cli.flags_cache {
        builder = builder.cache_file(cache);
    }
    let reloader = builder
        .spawn()
        .map_err(|e| format!("cannot follow --flags-url {url}: {e}"))?;
    let stats = reloader.stats();
    if stats.from_cache {
        tracing::warn!(
            url,
            "the flags server is down: started from the cached document"
        );
    }
    Ok((store, reloader))
}

#[cfg(not(feature = "http"))]
fn follow_url(_cli: &Cli, _url: &str) -> Result<(FlagStore, Reloader), String> {
    Err("--flags-url needs the `http` feature (cargo run --features http --example service)".into())
}

async fn serve(listen: SocketAddr, app: App) -> Result<(), String> {
    let router = Router::new()
        .route("/work", get(work::work))
        .route("/metrics", get(metrics))
        .route("/admin/fault", get(fault::get).post(fault::set))
        .with_state(app);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let bound = listener
        .local_addr()
        .map_err(|e| format!("cannot read the bound address: {e}"))?;
    tracing::info!(listen = %bound, "serving");
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown())
    .await
    .map_err(|e| format!("server failed: {e}"))?;
    tracing::info!("stopped");
    Ok(())
}

async fn metrics(State(app): State<App>) -> impl IntoResponse {
    let text = app.metrics.render(&app.store, &app.reloader);
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
