//! Real local receivers for the notification tests: a tiny HTTP server that
//! records every request (webhooks, Slack, PagerDuty) and can answer 5xx,
//! hang, or be down (connection refused); and a real SMTP server (Debian's
//! `python3-aiosmtpd`) writing what it receives to a maildir.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// One request received.
#[derive(Debug, Clone)]
pub struct Hit {
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The status answered; 0 when the receiver hung up without answering.
    pub status: u16,
}

impl Hit {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

struct Shared {
    ok_status: u16,
    down: AtomicBool,
    /// Answer the next N requests with this status.
    fail_next: Mutex<(usize, u16)>,
    /// Hang on the next N requests (until released).
    hang_next: AtomicUsize,
    /// Hang on every request.
    hang_all: AtomicBool,
    hanging: AtomicUsize,
    released: (Mutex<bool>, Condvar),
    hits: Mutex<Vec<Hit>>,
    stop: AtomicBool,
}

/// An HTTP receiver on 127.0.0.1.
pub struct Receiver {
    pub port: u16,
    shared: Arc<Shared>,
}

impl Receiver {
    /// Up, answering `ok_status` (200 for webhooks and Slack, 202 for
    /// PagerDuty).
    pub fn start(ok_status: u16) -> Receiver {
        Self::spawn(ok_status, false)
    }

    /// Down (connections refused) until [`up`](Self::up).
    pub fn start_down(ok_status: u16) -> Receiver {
        Self::spawn(ok_status, true)
    }

    fn spawn(ok_status: u16, down: bool) -> Receiver {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let shared = Arc::new(Shared {
            ok_status,
            down: AtomicBool::new(down),
            fail_next: Mutex::new((0, 500)),
            hang_next: AtomicUsize::new(0),
            hang_all: AtomicBool::new(false),
            hanging: AtomicUsize::new(0),
            released: (Mutex::new(false), Condvar::new()),
            hits: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
        });
        let s = Arc::clone(&shared);
        std::thread::spawn(move || accept_loop(port, &s));
        let r = Receiver { port, shared };
        if !down {
            r.wait_listening();
        }
        r
    }

    fn wait_listening(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "receiver on {} never listened",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        // That probe was a request-less connection: not recorded.
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Starts listening (after [`start_down`](Self::start_down)).
    pub fn up(&self) {
        self.shared.down.store(false, Ordering::SeqCst);
        self.wait_listening();
    }

    /// Answers the next `n` requests with `status`.
    pub fn fail_next(&self, n: usize, status: u16) {
        *self.shared.fail_next.lock().unwrap() = (n, status);
    }

    /// Hangs on the next `n` requests: reads them, never answers, until
    /// [`release`](Self::release).
    pub fn hang_next(&self, n: usize) {
        self.shared.hang_next.store(n, Ordering::SeqCst);
    }

    /// Hangs on every request until [`release`](Self::release).
    pub fn hang_all(&self, on: bool) {
        self.shared.hang_all.store(on, Ordering::SeqCst);
    }

    /// Requests being held right now.
    pub fn hanging(&self) -> usize {
        self.shared.hanging.load(Ordering::SeqCst)
    }

    /// Ends every hang (the connections close without an answer).
    pub fn release(&self) {
        let (lock, cv) = &self.shared.released;
        *lock.lock().unwrap() = true;
        cv.notify_all();
    }

    /// Every request received, in order.
    pub fn hits(&self) -> Vec<Hit> {
        self.shared.hits.lock().unwrap().clone()
    }

    /// The requests answered 2xx.
    pub fn accepted(&self) -> Vec<Hit> {
        self.hits()
            .into_iter()
            .filter(|h| (200..300).contains(&h.status))
            .collect()
    }

    /// Polls (every 50 ms, up to `secs`) until `ok` holds for the requests.
    pub fn wait_for(&self, secs: u64, ok: impl Fn(&[Hit]) -> bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if ok(&self.hits()) {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.release();
    }
}

fn accept_loop(port: u16, shared: &Arc<Shared>) {
    let mut listener: Option<TcpListener> = None;
    while !shared.stop.load(Ordering::SeqCst) {
        if shared.down.load(Ordering::SeqCst) {
            listener = None;
            std::thread::sleep(Duration::from_millis(10));
            continue;
        }
        if listener.is_none() {
            match TcpListener::bind(("127.0.0.1", port)) {
                Ok(l) => {
                    l.set_nonblocking(true).unwrap();
                    listener = Some(l);
                }
                Err(_) => {
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                }
            }
        }
        let Some(l) = &listener else { continue };
        match l.accept() {
            Ok((stream, _)) => {
                let s = Arc::clone(shared);
                std::thread::spawn(move || handle(stream, &s));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

/// A request's path, headers and body.
type Request = (String, Vec<(String, String)>, Vec<u8>);

fn read_request(stream: &mut TcpStream) -> Option<Request> {
    stream.set_nonblocking(false).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .ok()?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let path = lines.next()?.split(' ').nth(1)?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < len {
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some((path, headers, body))
}

fn handle(mut stream: TcpStream, shared: &Arc<Shared>) {
    let Some((path, headers, body)) = read_request(&mut stream) else {
        return;
    };
    let hang = shared.hang_all.load(Ordering::SeqCst)
        || shared
            .hang_next
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
    let status = if hang {
        0
    } else {
        let mut fail = shared.fail_next.lock().unwrap();
        if fail.0 > 0 {
            fail.0 -= 1;
            fail.1
        } else {
            shared.ok_status
        }
    };
    shared.hits.lock().unwrap().push(Hit {
        path,
        headers,
        body,
        status,
    });
    if hang {
        shared.hanging.fetch_add(1, Ordering::SeqCst);
        let (lock, cv) = &shared.released;
        let mut released = lock.lock().unwrap();
        while !*released {
            released = cv.wait(released).unwrap();
        }
        shared.hanging.fetch_sub(1, Ordering::SeqCst);
        return;
    }
    let body = if status == 202 {
        r#"{"status":"success","message":"Event processed"}"#
    } else {
        "ok"
    };
    let _ = write!(
        stream,
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

/// A real SMTP server (aiosmtpd) delivering to a maildir.
pub struct Smtp {
    pub port: u16,
    maildir: PathBuf,
    child: Child,
}

fn aiosmtpd() -> Option<Command> {
    for exe in ["/usr/bin/aiosmtpd", "/usr/local/bin/aiosmtpd"] {
        if Path::new(exe).exists() {
            return Some(Command::new(exe));
        }
    }
    for python in ["/usr/bin/python3", "python3"] {
        let ok = Command::new(python)
            .args(["-c", "import aiosmtpd"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            let mut c = Command::new(python);
            c.args(["-m", "aiosmtpd"]);
            return Some(c);
        }
    }
    None
}

impl Smtp {
    /// Starts aiosmtpd on a free port; `None` (with a note) when it is not
    /// installed, a failure under `CI=true`.
    pub fn start(dir: &Path) -> Option<Smtp> {
        let Some(mut command) = aiosmtpd() else {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "aiosmtpd is missing: apt-get install -y python3-aiosmtpd"
            );
            eprintln!("note: aiosmtpd is missing (apt-get install -y python3-aiosmtpd); skipping the SMTP part");
            return None;
        };
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let maildir = dir.join("maildir");
        let child = command
            .args([
                "-n",
                "-l",
                &format!("127.0.0.1:{port}"),
                "-c",
                "aiosmtpd.handlers.Mailbox",
            ])
            .arg(&maildir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let smtp = Smtp {
            port,
            maildir,
            child,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "aiosmtpd never listened on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(smtp)
    }

    /// Every message received (raw RFC 5322 text).
    pub fn messages(&self) -> Vec<String> {
        let mut out = Vec::new();
        for sub in ["new", "cur"] {
            if let Ok(entries) = std::fs::read_dir(self.maildir.join(sub)) {
                let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
                paths.sort();
                for p in paths {
                    if let Ok(text) = std::fs::read_to_string(p) {
                        out.push(text);
                    }
                }
            }
        }
        out
    }

    /// Polls (every 100 ms, up to `secs`) until `ok` holds for the messages.
    pub fn wait_for(&self, secs: u64, ok: impl Fn(&[String]) -> bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if ok(&self.messages()) {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// HMAC-SHA256 as the receivers check it, independent of the crate.
pub fn hmac_sha256_hex(key: &[u8], body: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
    mac.update(body);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
