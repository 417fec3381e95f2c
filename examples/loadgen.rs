//! A load generator for `examples/service`: `GET /work?user=ID` at a set
//! rate over many user ids, spread round-robin across the instances, on
//! keep-alive connections; prints what it sees every few seconds.
//!
//! ```text
//! cargo run --release --example loadgen -- --target 127.0.0.1:8080 --target 127.0.0.1:8081 --rate 400
//! ```
//!
//! The schedule is open-loop: request `n` is due at `n / rate` seconds, and
//! a worker that falls behind sends at once, so slow in-cohort requests (an
//! injected latency) do not slow the rate while workers are free.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use clap::Parser;
use genesis_flags::rollout::parse_duration;

/// Drives the example service with many users at a set rate.
#[derive(Debug, Parser)]
#[command(name = "loadgen")]
struct Cli {
    /// A service instance (repeat for several); requests alternate between them.
    #[arg(long = "target", required = true)]
    targets: Vec<SocketAddr>,
    /// Requests per second, across all targets.
    #[arg(long, default_value_t = 200.0)]
    rate: f64,
    /// Distinct user ids (`user-0` … `user-N-1`), visited in a scattered order.
    #[arg(long, default_value_t = 100_000)]
    users: u64,
    /// Requests in flight at most (one connection per worker and target).
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Stop after this long (default: run until Ctrl-C or SIGTERM).
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// How often to print a summary line.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    report_every: Duration,
}

#[derive(Default)]
struct Counts {
    sent: AtomicU64,
    ok: AtomicU64,
    server_errors: AtomicU64,
    unreachable: AtomicU64,
    inside: AtomicU64,
    inside_errors: AtomicU64,
}

/// One keep-alive HTTP/1.1 connection, reopened after any failure.
struct Connection {
    addr: SocketAddr,
    stream: Option<BufReader<TcpStream>>,
}

impl Connection {
    fn get(&mut self, path: &str) -> io::Result<(u16, String)> {
        match self.try_get(path) {
            Ok(answer) => Ok(answer),
            // A kept-alive connection the server closed: one fresh try.
            Err(_) => {
                self.stream = None;
                self.try_get(path)
            }
        }
    }

    fn try_get(&mut self, path: &str) -> io::Result<(u16, String)> {
        if self.stream.is_none() {
            let stream = TcpStream::connect_timeout(&self.addr, Duration::from_secs(2))?;
            stream.set_read_timeout(Some(Duration::from_secs(30)))?;
            stream.set_nodelay(true)?;
            self.stream = Some(BufReader::new(stream));
        }
        let Some(reader) = self.stream.as_mut() else {
            return Err(io::Error::other("no connection"));
        };
        write!(
            reader.get_mut(),
            "GET {path} HTTP/1.1\r\nHost: {}\r\n\r\n",
            self.addr
        )?;
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let status = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse::<u16>().ok())
            .ok_or_else(|| io::Error::other(format!("bad status line {line:?}")))?;
        let mut length = None;
        loop {
            line.clear();
            if reader.read_line(&mut line)? == 0 {
                return Err(io::Error::other("connection closed in the headers"));
            }
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse::<usize>().ok();
                }
            }
        }
        let length = length.ok_or_else(|| io::Error::other("no Content-Length"))?;
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if !(cli.rate.is_finite() && cli.rate > 0.0) || cli.users == 0 || cli.concurrency == 0 {
        eprintln!("loadgen: --rate, --users and --concurrency must be positive");
        return ExitCode::from(2);
    }
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = Arc::clone(&stop);
        if let Err(e) = ctrlc::set_handler(move || stop.store(true, Ordering::SeqCst)) {
            eprintln!("loadgen: cannot handle signals: {e}");
        }
    }
    let counts = Arc::new(Counts::default());
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..cli.concurrency)
        .map(|_| {
            let (stop, counts, next) = (Arc::clone(&stop), Arc::clone(&counts), Arc::clone(&next));
            let targets = cli.targets.clone();
            let (rate, users) = (cli.rate, cli.users);
            thread::spawn(move || {
                let mut connections: Vec<Connection> = targets
                    .iter()
                    .map(|&addr| Connection { addr, stream: None })
                    .collect();
                while !stop.load(Ordering::Relaxed) {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    let due = started + Duration::from_secs_f64(n as f64 / rate);
                    // Sleep in short steps so a stop is seen promptly.
                    while let Some(wait) = due.checked_duration_since(Instant::now()) {
                        if stop.load(Ordering::Relaxed) {
                            return;
                        }
                        thread::sleep(wait.min(Duration::from_millis(100)));
                    }
                    // A scattered walk over the ids: 7919 is prime, so every id comes up.
                    let user = n.wrapping_mul(7919) % users;
                    let target = (n % connections.len() as u64) as usize;
                    let Some(connection) = connections.get_mut(target) else {
                        return;
                    };
                    counts.sent.fetch_add(1, Ordering::Relaxed);
                    match connection.get(&format!("/work?user=user-{user}")) {
                        Ok((status, body)) => {
                            let inside = body.contains(r#""cohort":"in""#);
                            if inside {
                                counts.inside.fetch_add(1, Ordering::Relaxed);
                            }
                            if status >= 500 {
                                counts.server_errors.fetch_add(1, Ordering::Relaxed);
                                if inside {
                                    counts.inside_errors.fetch_add(1, Ordering::Relaxed);
                                }
                            } else {
                                counts.ok.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        Err(_) => {
                            counts.unreachable.fetch_add(1, Ordering::Relaxed);
                            // Do not spin on a dead target.
                            thread::sleep(Duration::from_millis(50));
                        }
                    }
                }
            })
        })
        .collect();

    let mut last = Snapshot::default();
    let mut last_at = started;
    loop {
        let deadline = cli.duration.map(|d| started + d);
        let mut slept = Duration::ZERO;
        while slept < cli.report_every && !stop.load(Ordering::Relaxed) {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                stop.store(true, Ordering::SeqCst);
                break;
            }
            thread::sleep(Duration::from_millis(100));
            slept += Duration::from_millis(100);
        }
        let now = Snapshot::of(&counts);
        // A stop cuts the last interval short: under a second of requests
        // is too few for a share (the `done` line still counts them).
        if slept >= cli.report_every.min(Duration::from_secs(1)) {
            report(&last, &now, last_at.elapsed());
        }
        (last, last_at) = (now, Instant::now());
        if stop.load(Ordering::Relaxed) {
            break;
        }
    }
    for worker in workers {
        let _ = worker.join();
    }
    let total = Snapshot::of(&counts);
    println!(
        "loadgen: done: {} requests, {} errors, {} unreachable in {:.0?}",
        total.sent,
        total.server_errors,
        total.unreachable,
        started.elapsed()
    );
    ExitCode::SUCCESS
}

#[derive(Debug, Default, Clone, Copy)]
struct Snapshot {
    sent: u64,
    server_errors: u64,
    unreachable: u64,
    inside: u64,
    inside_errors: u64,
    ok: u64,
}

impl Snapshot {
    fn of(c: &Counts) -> Self {
        Snapshot {
            sent: c.sent.load(Ordering::Relaxed),
            server_errors: c.server_errors.load(Ordering::Relaxed),
            unreachable: c.unreachable.load(Ordering::Relaxed),
            inside: c.inside.load(Ordering::Relaxed),
            inside_errors: c.inside_errors.load(Ordering::Relaxed),
            ok: c.ok.load(Ordering::Relaxed),
        }
    }
}

fn report(last: &Snapshot, now: &Snapshot, over: Duration) {
    let answered = (now.ok + now.server_errors).saturating_sub(last.ok + last.server_errors);
    let inside = now.inside.saturating_sub(last.inside);
    let outside = answered.saturating_sub(inside);
    let inside_errors = now.inside_errors.saturating_sub(last.inside_errors);
    let outside_errors = now
        .server_errors
        .saturating_sub(last.server_errors)
        .saturating_sub(inside_errors);
    let share = |part: u64, of: u64| {
        if of == 0 {
            0.0
        } else {
            part as f64 * 100.0 / of as f64
        }
    };
    println!(
        "loadgen: {:.0} req/s | in cohort {:.1}% of requests, errors {:.2}% | out errors {:.2}% | unreachable {}",
        answered as f64 / over.as_secs_f64().max(1e-3),
        share(inside, answered),
        share(inside_errors, inside),
        share(outside_errors, outside),
        now.unreachable.saturating_sub(last.unreachable),
    );
}
