//! The server's other users, watched while an attack runs: `/api/health` on a fresh connection every 50 ms,
//! and an admin's live feed asked a question every 100 ms (and, where the disk is not the thing attacked, a
//! log line the admin writes, which must come back on the feed). Each must answer within a second, every time.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use crate::server::ADMIN;

/// The most an answer may take.
pub const WITHIN: Duration = Duration::from_secs(1);

pub type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

#[derive(Default, Debug)]
struct Seen {
    health: Vec<Duration>,
    feed: Vec<Duration>,
    written: Vec<Duration>,
    failures: Vec<String>,
}

pub struct Bystander {
    seen: Arc<Mutex<Seen>>,
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl Bystander {
    /// Starts watching `addr`; `writes`: also write a log line each round and wait for it on the feed.
    pub async fn watch(addr: SocketAddr, writes: bool) -> Bystander {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (ready, started) = tokio::sync::oneshot::channel();
        // Its own thread and runtime: the attack's load on the test's runtime must not slow the bystander down.
        let thread = std::thread::spawn({
            let (seen, stop) = (seen.clone(), stop.clone());
            move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("the bystander's runtime");
                runtime.block_on(Self::run(addr, writes, seen, stop, ready));
            }
        });
        started.await.expect("the bystander started");
        Bystander { seen, stop, thread }
    }

    async fn run(
        addr: SocketAddr,
        writes: bool,
        seen: Arc<Mutex<Seen>>,
        stop: Arc<AtomicBool>,
        ready: tokio::sync::oneshot::Sender<()>,
    ) {
        let mut ws = connect(addr, ADMIN).await.expect("the admin's feed connects");
        ws.send(Message::text(r#"{"op":"subscribe","types":["LogRecorded"]}"#))
            .await
            .expect("subscribe");
        next_kind(&mut ws, "subscribed", Duration::from_secs(5))
            .await
            .expect("the subscription is acknowledged");
        let _ = ready.send(());
        let health = tokio::spawn({
            let (seen, stop) = (seen.clone(), stop.clone());
            async move {
                while !stop.load(Ordering::Acquire) {
                    let started = Instant::now();
                    let answer = tokio::time::timeout(Duration::from_secs(10), health(addr)).await;
                    {
                        let mut s = seen.lock().unwrap_or_else(|p| p.into_inner());
                        match answer {
                            Ok(Ok(())) => s.health.push(started.elapsed()),
                            Ok(Err(e)) => s.failures.push(format!("/api/health: {e}")),
                            Err(_) => s.failures.push("/api/health: no answer in 10 s".into()),
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        });
        let feed = tokio::spawn({
            let (seen, stop) = (seen.clone(), stop.clone());
            async move {
                let mut round = 0u64;
                while !stop.load(Ordering::Acquire) {
                    round += 1;
                    let started = Instant::now();
                    let asked = ws.send(Message::text(format!(r#"{{"op":"probe-{round}"}}"#))).await;
                    let answered = match asked {
                        Ok(()) => next_kind(&mut ws, "error", Duration::from_secs(10)).await,
                        Err(e) => Err(e.to_string()),
                    };
                    let mut failed = None;
                    match answered {
                        Ok(_) => seen
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .feed
                            .push(started.elapsed()),
                        Err(e) => failed = Some(format!("the admin's feed: {e}")),
                    }
                    if writes && failed.is_none() {
                        let marker = format!("bystander-{round}");
                        let started = Instant::now();
                        let written = match post_log(addr, &marker).await {
                            Ok(()) => arrives(&mut ws, &marker, Duration::from_secs(10)).await,
                            Err(e) => Err(e),
                        };
                        match written {
                            Ok(()) => seen
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .written
                                .push(started.elapsed()),
                            Err(e) => failed = Some(format!("the admin's log line: {e}")),
                        }
                    }
                    if let Some(f) = failed {
                        seen.lock().unwrap_or_else(|p| p.into_inner()).failures.push(f);
                        break; // the feed is gone: nothing more to ask it
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        });
        for task in [health, feed] {
            task.await.expect("a bystander task panicked");
        }
    }

    /// Stops watching and asserts every answer came, each within [`WITHIN`]; says what was seen.
    pub async fn assert_unaffected(self, attack: &str) {
        // A few answers after the attack too, however short it was.
        let (health, feed) = {
            let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
            (seen.health.len(), seen.feed.len())
        };
        for _ in 0..100 {
            let done = {
                let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
                seen.health.len() >= health + 3 && seen.feed.len() >= feed + 2 || !seen.failures.is_empty()
            };
            if done {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.stop.store(true, Ordering::Release);
        let thread = self.thread;
        tokio::task::spawn_blocking(move || thread.join())
            .await
            .expect("joined")
            .expect("the bystander panicked");
        let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        assert!(seen.failures.is_empty(), "{attack}: {:?}", seen.failures);
        for (what, times) in [("/api/health", &seen.health), ("the admin's feed", &seen.feed)] {
            assert!(!times.is_empty(), "{attack}: {what} was never asked");
            let slowest = times.iter().max().copied().unwrap_or_default();
            assert!(slowest < WITHIN, "{attack}: {what} took {slowest:?}");
        }
        if let Some(slowest) = seen.written.iter().max() {
            assert!(
                *slowest < WITHIN,
                "{attack}: the admin's log line took {slowest:?} to come back"
            );
        }
        eprintln!(
            "{attack}: {} health checks (slowest {:?}), {} feed answers (slowest {:?}), {} lines written",
            seen.health.len(),
            seen.health.iter().max().copied().unwrap_or_default(),
            seen.feed.len(),
            seen.feed.iter().max().copied().unwrap_or_default(),
            seen.written.len()
        );
    }
}

/// A WebSocket to the live feed with this token (an HTTP status when refused).
pub async fn connect(addr: SocketAddr, token: &str) -> Result<Socket, u16> {
    let mut req = format!("ws://{addr}/api/live")
        .into_client_request()
        .expect("a request");
    req.headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().expect("a header"));
    match tokio_tungstenite::connect_async(req).await {
        Ok((ws, _)) => Ok(ws),
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => Err(r.status().as_u16()),
        Err(_) => Err(0),
    }
}

/// The next message of this kind (others skipped); an error when the socket closed or time ran out.
pub async fn next_kind(ws: &mut Socket, kind: &str, wait: Duration) -> Result<Value, String> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let message = tokio::time::timeout_at(deadline, ws.next())
            .await
            .map_err(|_| format!("no {kind} message within {wait:?}"))?;
        match message {
            Some(Ok(Message::Text(t))) => {
                let v: Value = serde_json::from_str(&t).map_err(|e| e.to_string())?;
                if v["kind"] == kind {
                    return Ok(v);
                }
            }
            Some(Ok(Message::Close(frame))) => return Err(format!("closed: {frame:?}")),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e.to_string()),
            None => return Err("the socket ended".into()),
        }
    }
}

/// Waits for the `LogRecorded` event carrying `marker`.
async fn arrives(ws: &mut Socket, marker: &str, wait: Duration) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let e = next_kind(ws, "event", left).await?;
        if e["data"]["message"] == marker {
            return Ok(());
        }
    }
}

/// One raw HTTP/1.1 request on a fresh connection; the status and body of the answer.
pub async fn raw(addr: SocketAddr, head: &str, body: &[u8]) -> Result<(u16, String), String> {
    let mut s = tokio::net::TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    s.write_all(head.as_bytes()).await.map_err(|e| e.to_string())?;
    s.write_all(body).await.map_err(|e| e.to_string())?;
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).await.map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("not an HTTP answer: {text:?}"))?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

async fn health(addr: SocketAddr) -> Result<(), String> {
    let head = "GET /api/health HTTP/1.1\r\nHost: cairn\r\nConnection: close\r\n\r\n";
    match raw(addr, head, b"").await? {
        (200, _) => Ok(()),
        (status, body) => Err(format!("{status} {body}")),
    }
}

async fn post_log(addr: SocketAddr, message: &str) -> Result<(), String> {
    let body = serde_json::json!({ "level": "info", "message": message }).to_string();
    let head = format!(
        "POST /api/logs HTTP/1.1\r\nHost: cairn\r\nAuthorization: Bearer {ADMIN}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    match raw(addr, &head, body.as_bytes()).await? {
        (201, _) => Ok(()),
        (status, body) => Err(format!("POST /api/logs: {status} {body}")),
    }
}
