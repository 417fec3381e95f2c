//! Watching a rollout: `--metrics-listen` (the Prometheus text format at
//! `/metrics`), `--metrics-textfile` (the same, written atomically for
//! node-exporter's textfile collector) and `--ui-listen` (the status page
//! and its API, in `ui.rs`). The crate computes every value
//! (`genesis_flags::rollout::metrics`); this file only carries it.
//!
//! The servers run on a thread of their own and read the state file on each
//! request, so what they show is always what is committed; a GET changes
//! nothing.

use std::collections::VecDeque;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use genesis_flags::rollout::metrics::{ChannelFigures, GateMeter, MeteredGate, RolloutMetrics};
use genesis_flags::rollout::notify::Outbox;
use genesis_flags::rollout::{
    Action, Clock, Decision, HealthGate, RolloutState, RunEvent, SystemClock,
};

use crate::cli::ObserveArgs;
use crate::output::Failure;
use crate::Result;

/// How many ticks the status page keeps for its verdict history.
pub const RECENT_TICKS: usize = 30;

/// What the servers share with the run.
pub struct Shared {
    /// The state file.
    pub state: PathBuf,
    /// The rollout the run drives.
    pub rollout: String,
    /// The counters and the gate's figures.
    pub metrics: Mutex<RolloutMetrics>,
    /// The last ticks' decisions, newest last.
    pub recent: Mutex<VecDeque<Decision>>,
    /// The bearer token of the actions (`None`: the page is read-only).
    pub token: Option<String>,
    /// The notification channels configured (`--notify`), whose series
    /// exist before their first delivery.
    pub channels: Vec<String>,
}

impl Shared {
    /// The state as committed now.
    pub fn load_state(&self) -> Option<RolloutState> {
        RolloutState::load(&self.state).ok()
    }

    /// The metrics as of now.
    pub fn render(&self) -> String {
        let state = self.load_state();
        let outbox = Outbox::beside(&self.state);
        let channels = ChannelFigures::from_outbox(&outbox, &self.channels).unwrap_or_else(|e| {
            tracing::warn!("metrics: cannot read the outbox: {e}");
            Vec::new()
        });
        let metrics = self.metrics.lock().expect("metrics lock");
        metrics.render(state.as_ref(), SystemClock.now(), &channels)
    }
}

/// The servers and the textfile of one `run` or `deploy`.
pub struct Observer {
    shared: Arc<Shared>,
    meter: GateMeter,
    textfile: Option<PathBuf>,
}

/// `HOST:PORT`, or a bare `PORT` on loopback.
fn address(flag: &str, text: &str) -> Result<SocketAddr> {
    if let Ok(port) = text.parse::<u16>() {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    text.parse()
        .map_err(|e| Failure::input(format!("{flag}: {text:?} is not HOST:PORT or PORT ({e})")))
}

fn bind(flag: &str, text: &str) -> Result<TcpListener> {
    let addr = address(flag, text)?;
    let listener = TcpListener::bind(addr)
        .map_err(|e| Failure::input(format!("{flag}: cannot listen on {addr}: {e}")))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| Failure::input(format!("{flag}: {e}")))?;
    Ok(listener)
}

/// The token of `--ui-token-file`: its first line, at least 16 bytes.
fn read_token(path: &Path) -> Result<String> {
    let text = genesis_flags::rollout::read::read_text(path).map_err(|e| {
        Failure::input(format!(
            "--ui-token-file: cannot read {}: {e}",
            path.display()
        ))
    })?;
    let token = text.lines().next().unwrap_or("").trim().to_owned();
    if token.len() < 16 {
        return Err(Failure::input(format!(
            "--ui-token-file: {} must hold a token of at least 16 characters on its first line",
            path.display()
        )));
    }
    Ok(token)
}

impl Observer {
    /// Binds the listeners and reads the token (a bad flag changes
    /// nothing), then serves on a thread of its own. `None` when no flag
    /// asks for anything.
    pub fn start(
        args: &ObserveArgs,
        state: &Path,
        rollout: &str,
        channels: Vec<String>,
    ) -> Result<Option<Observer>> {
        if args.metrics_listen.is_none()
            && args.metrics_textfile.is_none()
            && args.ui_listen.is_none()
        {
            return Ok(None);
        }
        let metrics_listener = args
            .metrics_listen
            .as_deref()
            .map(|a| bind("--metrics-listen", a))
            .transpose()?;
        let ui_listener = args
            .ui_listen
            .as_deref()
            .map(|a| bind("--ui-listen", a))
            .transpose()?;
        let token = args.ui_token_file.as_deref().map(read_token).transpose()?;
        let meter = GateMeter::default();
        let shared = Arc::new(Shared {
            state: state.to_path_buf(),
            rollout: rollout.to_owned(),
            metrics: Mutex::new(RolloutMetrics::new(
                env!("CARGO_PKG_VERSION"),
                meter.clone(),
            )),
            recent: Mutex::new(VecDeque::new()),
            token,
            channels,
        });
        if metrics_listener.is_some() || ui_listener.is_some() {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .map_err(|e| Failure::input(format!("cannot start the HTTP servers: {e}")))?;
            let s = shared.clone();
            std::thread::Builder::new()
                .name("observe".into())
                .spawn(move || runtime.block_on(serve(s, metrics_listener, ui_listener)))
                .map_err(|e| Failure::input(format!("cannot start the HTTP servers: {e}")))?;
        }
        let observer = Observer {
            shared,
            meter,
            textfile: args.metrics_textfile.clone(),
        };
        observer.write_textfile();
        Ok(Some(observer))
    }

    /// `gate`, timed and counted for the metrics.
    pub fn meter(&self, mut gate: Box<dyn HealthGate + Send>) -> Box<dyn HealthGate + Send> {
        Box::new(MeteredGate::new(
            move |at| gate.observe(at),
            self.meter.clone(),
        ))
    }

    /// Counts `event`, keeps a tick's decision for the page, rewrites the
    /// textfile.
    pub fn event(&self, event: &RunEvent) {
        self.shared
            .metrics
            .lock()
            .expect("metrics lock")
            .observe(&self.shared.rollout, event);
        if let RunEvent::Tick(report) = event {
            let mut recent = self.shared.recent.lock().expect("recent lock");
            // A re-initialised rollout starts its history afresh.
            if recent.back().is_some_and(|d| d.at > report.decision.at) {
                recent.clear();
            }
            recent.push_back(report.decision.clone());
            while recent.len() > RECENT_TICKS {
                recent.pop_front();
            }
        }
        self.write_textfile();
    }

    /// The last write of the textfile, when the run ends.
    pub fn finish(&self) {
        self.write_textfile();
    }

    fn write_textfile(&self) {
        let Some(path) = &self.textfile else { return };
        let text = self.shared.render();
        if let Err(e) = genesis_flags::rollout::files::write_atomically(path, text.as_bytes()) {
            tracing::warn!("--metrics-textfile: cannot write {}: {e}", path.display());
        }
    }
}

async fn serve(shared: Arc<Shared>, metrics: Option<TcpListener>, ui: Option<TcpListener>) {
    let mut tasks = Vec::new();
    if let Some(listener) = metrics {
        let app = axum::Router::new()
            .route("/metrics", axum::routing::get(metrics_page))
            .with_state(shared.clone());
        tasks.push(spawn_server("--metrics-listen", listener, app));
    }
    if let Some(listener) = ui {
        tasks.push(spawn_server(
            "--ui-listen",
            listener,
            crate::ui::router(shared.clone()),
        ));
    }
    for t in tasks {
        let _ = t.await;
    }
}

fn spawn_server(
    flag: &'static str,
    listener: TcpListener,
    app: axum::Router,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let listener = match tokio::net::TcpListener::from_std(listener) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!("{flag}: {e}");
                return;
            }
        };
        if let Ok(addr) = listener.local_addr() {
            tracing::info!("{flag}: serving on http://{addr}");
        }
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!("{flag}: {e}");
        }
    })
}

async fn metrics_page(
    axum::extract::State(shared): axum::extract::State<Arc<Shared>>,
) -> impl axum::response::IntoResponse {
    let text = tokio::task::spawn_blocking(move || shared.render())
        .await
        .unwrap_or_default();
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
}

/// A decision's action in a few words, for the page.
pub fn action_text(action: &Action) -> String {
    match action {
        Action::Hold => "hold".into(),
        Action::Advance { stage, to } => format!("advance to stage {stage} ({to})"),
        Action::Pause { .. } => "pause".into(),
        Action::Rollback { .. } => "rollback".into(),
        Action::Complete => "complete".into(),
    }
}
