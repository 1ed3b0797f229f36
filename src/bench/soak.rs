//! `cairn bench soak`: a `cairn serve` process under a steady mix for a fixed time: uploads, log lines,
//! subscribers connecting from old positions and leaving, slow readers the server has to close, oversized
//! messages it has to refuse, and one follower that must see every event. Prints the server's RSS at the start,
//! the middle and the end, the requests refused, and the events lost (which must be 0).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use super::live::{Server, TOKEN};
use crate::client::{Client, Method};

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub seconds: u32,
    pub uploads: u64,
    pub logs: u64,
    /// Subscribers that connected, read some history and left.
    pub cycles: u64,
    /// Stalled readers the server closed (4008 with their resume position, or cut off when even that could not
    /// get through).
    pub slow_closed: u64,
    /// Oversized messages answered with 1009.
    pub oversized_closed: u64,
    /// HTTP requests and feed connections refused (any answer but success).
    pub refused: u64,
    /// Events the follower never received.
    pub lost: u64,
    /// The server's RSS in bytes at the start, the middle and the end.
    pub rss: [u64; 3],
}

/// Counters the workers share.
#[derive(Default)]
struct Counts {
    uploads: AtomicU64,
    logs: AtomicU64,
    cycles: AtomicU64,
    slow_closed: AtomicU64,
    oversized_closed: AtomicU64,
    refused: AtomicU64,
}

pub fn run(seconds: u32, durability: &str) -> anyhow::Result<Outcome> {
    let server = Server::start(durability)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(soak(&server, seconds))
}

async fn soak(server: &Server, seconds: u32) -> anyhow::Result<Outcome> {
    let addr = server.addr.clone();
    let admin = Client::new(&format!("http://{addr}"), Some(TOKEN))?;
    let counts = Arc::new(Counts::default());
    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for i in 0..4 {
        let (status, data) = admin
            .json(Method::POST, "/api/clients", json!({ "name": format!("soak-{i}") }))
            .await?;
        anyhow::ensure!(status == 201, "registering a client answered {status}");
        let id = data["client"]["id"].as_str().unwrap_or_default().to_owned();
        let token = data["token"].as_str().unwrap_or_default().to_owned();
        clients.push((id, token));
    }

    let follower = tokio::spawn(follow(addr.clone(), stop.clone()));
    let mut workers = Vec::new();
    for (i, (id, token)) in clients.iter().enumerate() {
        let api = admin.with_token(Some(token));
        workers.push(tokio::spawn(uploads(
            api.clone(),
            id.clone(),
            i,
            counts.clone(),
            stop.clone(),
        )));
        workers.push(tokio::spawn(logs(api, counts.clone(), stop.clone())));
    }
    for i in 0..4 {
        workers.push(tokio::spawn(cycles(addr.clone(), i, counts.clone(), stop.clone())));
    }
    for _ in 0..2 {
        workers.push(tokio::spawn(slow_reader(addr.clone(), counts.clone(), stop.clone())));
    }
    let (_, token) = clients[0].clone();
    workers.push(tokio::spawn(oversized(
        addr.clone(),
        token,
        counts.clone(),
        stop.clone(),
    )));

    let started = Instant::now();
    let total = Duration::from_secs(u64::from(seconds));
    let start_rss = server.memory().1;
    tokio::time::sleep(total / 2).await;
    let middle_rss = server.memory().1;
    eprintln!("soak: half way, RSS {:.1} MiB", middle_rss as f64 / 1048576.0);
    tokio::time::sleep(total.saturating_sub(started.elapsed())).await;
    let end_rss = server.memory().1;
    stop.store(true, Ordering::Release);
    for w in workers {
        w.await?;
    }
    let (status, data) = admin.json(Method::GET, "/api/status", Value::Null).await?;
    anyhow::ensure!(status == 200, "/api/status answered {status}");
    let head = data["head_position"].as_i64().unwrap_or(0);
    let lost = follower.await??.lost_before(head).await;
    Ok(Outcome {
        seconds,
        uploads: counts.uploads.load(Ordering::Relaxed),
        logs: counts.logs.load(Ordering::Relaxed),
        cycles: counts.cycles.load(Ordering::Relaxed),
        slow_closed: counts.slow_closed.load(Ordering::Relaxed),
        oversized_closed: counts.oversized_closed.load(Ordering::Relaxed),
        refused: counts.refused.load(Ordering::Relaxed),
        lost,
        rss: [start_rss, middle_rss, end_rss],
    })
}

async fn connect(addr: &str, token: &str) -> anyhow::Result<Socket> {
    let mut req = format!("ws://{addr}/api/live").into_client_request()?;
    req.headers_mut()
        .insert("authorization", format!("Bearer {token}").parse()?);
    Ok(tokio_tungstenite::connect_async(req).await?.0)
}

/// A feed connection with a small receive buffer, as a reader on a slow link has: what it does not read backs
/// up into the server's sends at once, not after megabytes of loopback buffers.
async fn connect_small(addr: &str) -> anyhow::Result<tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.set_recv_buffer_size(8 * 1024)?;
    let stream = socket.connect(addr.parse()?).await?;
    let mut req = format!("ws://{addr}/api/live").into_client_request()?;
    req.headers_mut()
        .insert("authorization", format!("Bearer {TOKEN}").parse()?);
    Ok(tokio_tungstenite::client_async(req, stream).await?.0)
}

/// The position of an event message, or `None` for any other message.
fn position(text: &str) -> Option<i64> {
    let v: Value = serde_json::from_str(text).ok()?;
    (v["kind"] == "event").then(|| v["position"].as_i64()).flatten()
}

/// One subscriber that follows the whole log from position 0, resuming where it was when it is cut off.
struct Follower {
    ws: Option<Socket>,
    addr: String,
    seen: std::collections::BTreeSet<i64>,
    last: i64,
}

async fn follow(addr: String, stop: Arc<AtomicBool>) -> anyhow::Result<Follower> {
    let mut f = Follower {
        ws: None,
        addr,
        seen: Default::default(),
        last: 0,
    };
    while !stop.load(Ordering::Acquire) {
        f.step(Duration::from_millis(200)).await;
    }
    Ok(f)
}

impl Follower {
    /// Reads for up to `wait`, connecting (from the last position seen) when it has no socket.
    async fn step(&mut self, wait: Duration) {
        if self.ws.is_none() {
            let Ok(mut ws) = connect(&self.addr, TOKEN).await else {
                tokio::time::sleep(Duration::from_millis(100)).await;
                return;
            };
            let subscribe = json!({ "op": "subscribe", "from": self.last }).to_string();
            if ws.send(Message::text(subscribe)).await.is_err() {
                return;
            }
            self.ws = Some(ws);
        }
        let Some(ws) = self.ws.as_mut() else { return };
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, ws.next()).await {
                Err(_) => return,
                Ok(Some(Ok(Message::Text(t)))) => {
                    if let Some(p) = position(&t) {
                        self.seen.insert(p);
                        self.last = self.last.max(p);
                    }
                }
                Ok(Some(Ok(_))) => {}
                Ok(Some(Err(_)) | None) => {
                    self.ws = None;
                    return;
                }
            }
        }
    }

    /// Reads until it has passed `head` (at most 30 s), then counts the positions up to it it never saw.
    async fn lost_before(mut self, head: i64) -> u64 {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.last < head && Instant::now() < deadline {
            self.step(Duration::from_millis(200)).await;
        }
        let seen = self.seen.range(1..=head).count() as u64;
        u64::try_from(head).unwrap_or(0).saturating_sub(seen)
    }
}

fn counted(counts: &Counts, ok: bool) {
    if !ok {
        counts.refused.fetch_add(1, Ordering::Relaxed);
    }
}

/// About ten uploads a second of 1 to 64 KiB, each a new content.
async fn uploads(api: Client, client: String, worker: usize, counts: Arc<Counts>, stop: Arc<AtomicBool>) {
    let mut i = 0u64;
    while !stop.load(Ordering::Acquire) {
        i += 1;
        let size = 1024 + (i as usize * 7919 + worker * 104_729) % (63 * 1024);
        let content: Vec<u8> = (0..size).map(|b| (b as u64 ^ i ^ worker as u64) as u8).collect();
        let path = format!("/api/clients/{client}/files?name=soak-{worker}-{i}.bin");
        let ok = api
            .status_of(api.request(Method::POST, &path).body(content))
            .await
            .is_ok_and(|s| s == 201);
        counted(&counts, ok);
        if ok {
            counts.uploads.fetch_add(1, Ordering::Relaxed);
        }
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
}

/// About a hundred log lines a second.
async fn logs(api: Client, counts: Arc<Counts>, stop: Arc<AtomicBool>) {
    let mut i = 0usize;
    while !stop.load(Ordering::Acquire) {
        i += 1;
        let line = super::sample_log(i);
        let body = json!({ "level": line.level, "message": line.message });
        let ok = api
            .json(Method::POST, "/api/logs", body)
            .await
            .is_ok_and(|(s, _)| s == 201);
        counted(&counts, ok);
        if ok {
            counts.logs.fetch_add(1, Ordering::Relaxed);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Subscribers that connect, read a page of history from an old position, and leave with a close.
async fn cycles(addr: String, worker: usize, counts: Arc<Counts>, stop: Arc<AtomicBool>) {
    let mut i = 0u64;
    while !stop.load(Ordering::Acquire) {
        i += 1;
        let Ok(mut ws) = connect(&addr, TOKEN).await else {
            counted(&counts, false);
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let from = if (i + worker as u64).is_multiple_of(2) {
            0
        } else {
            (i * 331) % 5000
        };
        let _ = ws
            .send(Message::text(json!({ "op": "subscribe", "from": from }).to_string()))
            .await;
        let mut events = 0;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        while events < 500 {
            match tokio::time::timeout_at(deadline, ws.next()).await {
                Ok(Some(Ok(Message::Text(t)))) if position(&t).is_some() => events += 1,
                Ok(Some(Ok(_))) => {}
                _ => break,
            }
        }
        let _ = ws.close(None).await;
        counts.cycles.fetch_add(1, Ordering::Relaxed);
    }
}

/// A subscriber from position 0 that reads a hundred messages, then stops reading for 90 s: long enough for
/// the socket's buffers to fill and the server's stall timeout (30 s) to pass, so the server closes it with its
/// resume position (4008); it reads up to that close, and comes back.
async fn slow_reader(addr: String, counts: Arc<Counts>, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::Acquire) {
        let Ok(mut ws) = connect_small(&addr).await else {
            counted(&counts, false);
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let _ = ws.send(Message::text(r#"{"op":"subscribe","from":0}"#)).await;
        let mut read = 0;
        while !stop.load(Ordering::Acquire) {
            let next = tokio::time::timeout(Duration::from_millis(500), ws.next()).await;
            match next {
                Err(_) => continue, // nothing yet; look at the clock again
                Ok(Some(Ok(Message::Close(Some(f))))) => {
                    if u16::from(f.code) == 4008 {
                        counts.slow_closed.fetch_add(1, Ordering::Relaxed);
                    }
                    break;
                }
                Ok(Some(Ok(_))) => {
                    read += 1;
                    if read == 100 {
                        // Stalled: the server's sends wait on this socket until it gives up on it.
                        for _ in 0..180 {
                            if stop.load(Ordering::Acquire) {
                                break;
                            }
                            tokio::time::sleep(Duration::from_millis(500)).await;
                        }
                    }
                }
                // Cut off: the server's close frame waited longer than its grace for this reader, so it dropped the
                // connection; that is the server closing it too.
                Ok(_) => {
                    if read >= 100 {
                        counts.slow_closed.fetch_add(1, Ordering::Relaxed);
                    }
                    break;
                }
            }
        }
    }
}

/// Once a second, a client token sends a 100 KiB message; the server must close with 1009.
async fn oversized(addr: String, token: String, counts: Arc<Counts>, stop: Arc<AtomicBool>) {
    let big = format!(r#"{{"op":"subscribe","streams":["{}"]}}"#, "x".repeat(100 * 1024));
    while !stop.load(Ordering::Acquire) {
        if let Ok(mut ws) = connect(&addr, &token).await {
            let _ = ws.send(Message::text(big.clone())).await;
            let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
            loop {
                match tokio::time::timeout_at(deadline, ws.next()).await {
                    Ok(Some(Ok(Message::Close(Some(f))))) => {
                        if u16::from(f.code) == 1009 {
                            counts.oversized_closed.fetch_add(1, Ordering::Relaxed);
                        }
                        break;
                    }
                    Ok(Some(Ok(_))) => {}
                    _ => break,
                }
            }
        } else {
            counted(&counts, false);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
