//! `cairn bench live`: subscribers on loopback while events are appended at a steady rate. Reports delivery
//! latency from commit to receipt (p50, p99, max), events lost (must be 0), messages delivered per second, and
//! the server's RSS. The server is a separate `cairn serve` process, so that its memory is its own; the
//! subscribers and the appenders run in this process, on the same cores.

use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use crate::client::{Client, Method};

pub(crate) const TOKEN: &str = "bench-live-admin-token-0123456789";

#[derive(Debug, Clone)]
pub struct Outcome {
    pub subscribers: usize,
    pub rate: u32,
    pub events: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Events some subscriber never received (summed over subscribers).
    pub lost: u64,
    pub duplicates: u64,
    pub delivered_per_sec: f64,
    /// The server's peak resident memory (VmHWM) and its RSS at the end.
    pub server_peak_rss: u64,
    pub server_rss: u64,
}

/// A `cairn serve` child on a fresh data directory; stopped (SIGTERM) on drop.
pub(crate) struct Server {
    child: Child,
    pub(crate) addr: String,
    _dir: tempfile::TempDir,
}

impl Server {
    pub(crate) fn start(durability: &str) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let mut child = Command::new(std::env::current_exe()?)
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--token",
                TOKEN,
                "--durability",
                durability,
                "--data",
            ])
            .arg(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let stdout = child.stdout.take().ok_or_else(|| anyhow::anyhow!("no stdout"))?;
        let mut reader = std::io::BufReader::new(stdout);
        let mut first = String::new();
        reader.read_line(&mut first)?;
        // Keep reading what it prints, so that it never writes into a closed pipe.
        std::thread::spawn(move || {
            let mut sink = String::new();
            while reader.read_line(&mut sink).is_ok_and(|n| n > 0) {
                sink.clear();
            }
        });
        let addr = first
            .split("http://")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .ok_or_else(|| anyhow::anyhow!("the server did not print its address: {first:?}"))?
            .to_owned();
        Ok(Self { child, addr, _dir: dir })
    }

    /// (VmHWM, VmRSS) in bytes.
    pub(crate) fn memory(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
                .map_or(0, |kb| kb * 1024)
        };
        (field("VmHWM:"), field("VmRSS:"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let stopped = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        if stopped.is_err() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// What one subscriber saw.
#[derive(Default)]
struct Seen {
    latencies_ms: Vec<f64>,
    received: u64,
    duplicates: u64,
    last: i64,
}

/// Cheap field extraction: the feed's messages are written by cairn, in a known order.
fn field<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    let start = text.find(name)? + name.len();
    let rest = &text[start..];
    let end = rest.find([',', '}', '"']).unwrap_or(rest.len());
    Some(&rest[..end])
}

async fn subscriber(
    addr: String,
    done: Arc<tokio::sync::Notify>,
    last_position: Arc<std::sync::atomic::AtomicI64>,
) -> anyhow::Result<Seen> {
    let mut req = format!("ws://{addr}/api/live").into_client_request()?;
    req.headers_mut()
        .insert("authorization", format!("Bearer {TOKEN}").parse()?);
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await?;
    ws.send(Message::text(r#"{"op":"subscribe","types":["LogRecorded"]}"#))
        .await?;
    let mut seen = Seen::default();
    let finished = done.notified();
    tokio::pin!(finished);
    let mut drain_until: Option<tokio::time::Instant> = None;
    loop {
        // Done once the last appended position has arrived (stats keep coming, so idling is no signal).
        let target = last_position.load(std::sync::atomic::Ordering::Acquire);
        if drain_until.is_some() && target > 0 && seen.last >= target {
            break;
        }
        let next = match drain_until {
            Some(deadline) => match tokio::time::timeout_at(deadline, ws.next()).await {
                Ok(n) => n,
                Err(_) => break, // what has not come by now is counted as lost
            },
            None => tokio::select! {
                n = ws.next() => n,
                _ = &mut finished => {
                    drain_until = Some(tokio::time::Instant::now() + Duration::from_secs(10));
                    continue;
                }
            },
        };
        let Some(Ok(Message::Text(text))) = next else {
            if next.is_none() {
                break;
            } else {
                continue;
            }
        };
        if field(&text, r#""kind":""#) == Some("subscribed") {
            seen.last = field(&text, r#""from":"#).and_then(|p| p.parse().ok()).unwrap_or(0);
            continue;
        }
        if field(&text, r#""kind":""#) != Some("event") {
            continue;
        }
        let received = chrono::Utc::now();
        let position: i64 = field(&text, r#""position":"#).and_then(|p| p.parse().ok()).unwrap_or(0);
        if position <= seen.last {
            seen.duplicates += 1;
            continue;
        }
        seen.last = position;
        seen.received += 1;
        if let Some(at) = field(&text, r#""recorded_at":""#).and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        {
            seen.latencies_ms.push(
                (received - at.with_timezone(&chrono::Utc))
                    .num_microseconds()
                    .unwrap_or(0) as f64
                    / 1000.0,
            );
        }
    }
    Ok(seen)
}

pub fn run(subscribers: usize, rate: u32, seconds: u32, durability: &str) -> anyhow::Result<Outcome> {
    let server = Server::start(durability)?;
    let addr = server.addr.clone();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let server_ref = &server;
    let outcome = runtime.block_on(async move {
        let done = Arc::new(tokio::sync::Notify::new());
        let last_position = Arc::new(std::sync::atomic::AtomicI64::new(0));
        let mut subs = Vec::with_capacity(subscribers);
        for _ in 0..subscribers {
            subs.push(tokio::spawn(subscriber(
                addr.clone(),
                done.clone(),
                last_position.clone(),
            )));
        }
        // Let every subscriber connect and subscribe before the load starts.
        tokio::time::sleep(Duration::from_millis(500 + subscribers as u64)).await;

        let events = (rate * seconds) as usize;
        let appenders = 8usize;
        let per = events.div_ceil(appenders);
        let interval = Duration::from_secs_f64(appenders as f64 / f64::from(rate));
        let started = Instant::now();
        let mut tasks = Vec::new();
        for a in 0..appenders {
            let addr = addr.clone();
            tasks.push(tokio::spawn(async move {
                let client = Client::new(&format!("http://{addr}"), Some(TOKEN))?;
                let mut tick = tokio::time::interval(interval);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
                let mut last = 0i64;
                for i in 0..per {
                    tick.tick().await;
                    let body = format!(r#"{{"level":"info","message":"live bench {a}/{i}","source":"bench"}}"#);
                    let req = client
                        .request(Method::POST, "/api/logs")
                        .header("content-type", "application/json")
                        .body(body);
                    let bytes = client.send(req).await?.body;
                    let text = String::from_utf8_lossy(&bytes);
                    last = last.max(field(&text, r#""id":"#).and_then(|p| p.parse().ok()).unwrap_or(0));
                }
                anyhow::Ok(last)
            }));
        }
        let mut last = 0;
        for t in tasks {
            last = last.max(t.await??);
        }
        let append_seconds = started.elapsed().as_secs_f64();
        let (peak, rss) = server_ref.memory();
        last_position.store(last, std::sync::atomic::Ordering::Release);
        done.notify_waiters();
        let mut latencies = Vec::new();
        let (mut received, mut duplicates) = (0u64, 0u64);
        for s in subs {
            let seen = s.await??;
            received += seen.received;
            duplicates += seen.duplicates;
            latencies.extend(seen.latencies_ms);
        }
        latencies.sort_by(f64::total_cmp);
        let pick = |q: f64| {
            latencies
                .get(((latencies.len() as f64 - 1.0) * q).round() as usize)
                .copied()
                .unwrap_or(f64::NAN)
        };
        let expected = (events * subscribers) as u64;
        anyhow::Ok(Outcome {
            subscribers,
            rate,
            events,
            p50_ms: pick(0.5),
            p99_ms: pick(0.99),
            max_ms: latencies.last().copied().unwrap_or(f64::NAN),
            lost: expected.saturating_sub(received),
            duplicates,
            delivered_per_sec: received as f64 / append_seconds,
            server_peak_rss: peak,
            server_rss: rss,
        })
    });
    drop(runtime);
    drop(server);
    outcome
}
