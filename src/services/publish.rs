//! `serve --publish`: the site's log published to NATS JetStream, in order, exactly once, resuming where it
//! stopped.
//!
//! Each site has a stream of its own, `CAIRN_<site>`, whose one subject is `cairn.<site>.events`
//! ([0016](../../docs/decisions/0016-the-fleet-over-nats-jetstream.md)). Every event is one message: its JSON
//! (the stored fields, `data` and `metadata` as the stored text, so a consumer can recompute the chain) with the
//! headers `Nats-Msg-Id` (the event id: a resend is dropped by JetStream), `Cairn-Position` and `Cairn-Hash`, and
//! `Nats-Expected-Last-Sequence`: the stream's sequence of the event before it. The stream holds this site's
//! events only, so its sequence *is* the event's position, and JetStream refuses any message that does not follow
//! the last one stored: many may be in flight at once, and none can land out of order or after a gap.
//!
//! The last position JetStream acknowledged is the stream's own last message; it is kept in
//! `<data>/published` too, so that the lag is known while NATS is away. The log is the queue: while NATS or the
//! network is down the site works as before, and the backlog is published when it returns.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::{self, context::PublishAckFuture, stream};
use cairn_events::{reader, Position, RecordedEvent};
use serde::Serialize;

use crate::Cairn;

/// Messages in flight before the publisher waits for the oldest one's acknowledgement.
const WINDOW: usize = 256;

/// How long the publisher waits between two attempts after NATS failed it.
const RETRY: Duration = Duration::from_millis(500);

/// Where and as what a site publishes.
#[derive(Debug, Clone)]
pub struct PublishConfig {
    /// NATS servers, `nats://host:port` (any of a cluster's).
    pub servers: Vec<String>,
    /// The site's name: its subject's token and its stream's suffix.
    pub site: String,
    /// The stream's replicas (at most the cluster's size).
    pub replicas: usize,
}

/// Whether `name` can name a site: 1 to 64 letters, digits, `-` or `_` (a subject token and a stream name).
pub fn is_site_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl PublishConfig {
    pub fn subject(&self) -> String {
        subject(&self.site)
    }

    pub fn stream(&self) -> String {
        stream_name(&self.site)
    }
}

/// The subject a site publishes its events under.
pub fn subject(site: &str) -> String {
    format!("cairn.{site}.events")
}

/// The plain NATS subject a site's heartbeat goes to, once a second: `{"site", "head"}`.
pub fn heartbeat_subject(site: &str) -> String {
    format!("cairn.{site}.heartbeat")
}

/// How often a site says it is up.
pub const HEARTBEAT: Duration = Duration::from_secs(1);

/// A task aborted when its handle goes.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The stream that holds a site's events.
pub fn stream_name(site: &str) -> String {
    format!("CAIRN_{site}")
}

/// What the publisher has done, for `/api/status`, the health checks and `/metrics`.
#[derive(Debug, Default)]
pub struct Publication {
    acked: AtomicI64,
    connected: AtomicBool,
    error: Mutex<Option<String>>,
}

/// The publication as `/api/status` shows it.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct PublicationStatus {
    pub site: String,
    pub subject: String,
    pub connected: bool,
    /// The last position JetStream acknowledged.
    pub acknowledged: Position,
    /// The head less the last acknowledged position.
    pub lag: i64,
    /// Why the last attempt failed, while it does.
    pub error: Option<String>,
}

impl Publication {
    pub fn acknowledged(&self) -> Position {
        self.acked.load(Ordering::Acquire)
    }

    pub fn status(&self, config: &PublishConfig, head: Position) -> PublicationStatus {
        let acknowledged = self.acknowledged();
        PublicationStatus {
            site: config.site.clone(),
            subject: config.subject(),
            connected: self.connected.load(Ordering::Acquire),
            acknowledged,
            lag: (head - acknowledged).max(0),
            error: self.error.lock().unwrap_or_else(|p| p.into_inner()).clone(),
        }
    }

    fn failed(&self, e: impl std::fmt::Display) {
        self.connected.store(false, Ordering::Release);
        *self.error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.to_string());
    }
}

fn kept_path(data: &Path) -> PathBuf {
    data.join("published")
}

/// The last position acknowledged, as kept in the data directory (0 when never).
pub fn kept(data: &Path) -> Position {
    std::fs::read_to_string(kept_path(data))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

fn keep(data: &Path, position: Position) -> std::io::Result<()> {
    let temporary = data.join("published.partial");
    std::fs::write(&temporary, format!("{position}\n"))?;
    std::fs::rename(temporary, kept_path(data))
}

/// The message of one event: its stored fields, borrowed when sent, owned when received.
#[derive(Serialize, serde::Deserialize)]
struct Wire<'e> {
    position: Position,
    id: uuid::Uuid,
    #[serde(borrow)]
    stream: Cow<'e, str>,
    version: i64,
    #[serde(rename = "type", borrow)]
    event_type: Cow<'e, str>,
    schema: u32,
    #[serde(borrow)]
    data: Cow<'e, str>,
    #[serde(borrow)]
    metadata: Cow<'e, str>,
    #[serde(borrow)]
    recorded_at: Cow<'e, str>,
    crc: u32,
    hash: String,
}

/// The body of an event's message.
pub fn encode(e: &RecordedEvent) -> Vec<u8> {
    serde_json::to_vec(&Wire {
        position: e.position,
        id: e.id,
        stream: Cow::Borrowed(&e.stream),
        version: e.version,
        event_type: Cow::Borrowed(&e.event_type),
        schema: e.schema,
        data: Cow::Borrowed(&e.data),
        metadata: Cow::Borrowed(&e.metadata),
        recorded_at: Cow::Borrowed(&e.recorded_at),
        crc: e.crc,
        hash: hex::encode(e.hash),
    })
    .expect("an event serialises")
}

/// The event a message carries, as [`encode`] wrote it; `Err` says why it is not one.
pub fn decode(bytes: &[u8]) -> Result<RecordedEvent, String> {
    let w: Wire<'_> = serde_json::from_slice(bytes).map_err(|e| format!("not an event's message: {e}"))?;
    let hash = reader::decode_hash(w.hash.as_bytes()).ok_or("its hash is not 64 hex digits")?;
    Ok(RecordedEvent {
        position: w.position,
        id: w.id,
        stream: w.stream.into_owned(),
        version: w.version,
        event_type: w.event_type.into_owned(),
        schema: w.schema,
        data: w.data.into_owned(),
        metadata: w.metadata.into_owned(),
        recorded_at: w.recorded_at.into_owned(),
        crc: w.crc,
        hash,
    })
}

/// Publishes the log until the task is aborted: connects (again and again while NATS is away), finds where the
/// stream stops, sends what follows, and waits for commits.
pub async fn run(cairn: Cairn, config: PublishConfig, publication: Arc<Publication>) {
    publication.acked.store(kept(cairn.root()), Ordering::Release);
    loop {
        if let Err(e) = session(&cairn, &config, &publication).await {
            tracing::warn!(error = %e, site = %config.site, "publishing to NATS failed; trying again");
            publication.failed(&e);
        }
        tokio::time::sleep(RETRY).await;
    }
}

/// One connection's work, until it fails.
async fn session(cairn: &Cairn, config: &PublishConfig, publication: &Publication) -> anyhow::Result<()> {
    let servers = config
        .servers
        .iter()
        .map(|s| s.parse::<async_nats::ServerAddr>())
        .collect::<Result<Vec<_>, _>>()?;
    let client = async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(2))
        .connect(servers)
        .await?;
    // Once a second, on plain NATS, the site says it is up and where its head is: a hub tells a quiet site from
    // one that is down, and its lag from the head's distance.
    let heartbeat = {
        let (client, cairn, subject, site) = (
            client.clone(),
            cairn.clone(),
            heartbeat_subject(&config.site),
            config.site.clone(),
        );
        AbortOnDrop(tokio::spawn(async move {
            loop {
                let beat = serde_json::json!({ "site": site, "head": cairn.store().head() });
                if client.publish(subject.clone(), beat.to_string().into()).await.is_err() {
                    return;
                }
                tokio::time::sleep(HEARTBEAT).await;
            }
        }))
    };
    let js = jetstream::new(client);
    let mut stream = js
        .get_or_create_stream(stream::Config {
            name: config.stream(),
            subjects: vec![config.subject()],
            num_replicas: config.replicas.max(1),
            storage: stream::StorageType::File,
            duplicate_window: Duration::from_secs(120),
            deny_delete: true,
            deny_purge: true,
            ..Default::default()
        })
        .await?;
    // The stream's last sequence is the last position it holds (its sequence is the position).
    let mut acked = stream.info().await?.state.last_sequence as Position;
    let head = cairn.store().head();
    anyhow::ensure!(
        acked <= head,
        "the stream {} holds {acked} events, the log only {head}: it belongs to another log",
        config.stream()
    );
    publication.acked.store(acked, Ordering::Release);
    publication.connected.store(true, Ordering::Release);
    *publication.error.lock().unwrap_or_else(|p| p.into_inner()) = None;
    keep(cairn.root(), acked)?;
    let mut commits = cairn.store().writer().subscribe();
    let mut in_flight: VecDeque<(Position, PublishAckFuture)> = VecDeque::with_capacity(WINDOW);
    let mut sent = acked;
    loop {
        // Send what the log holds past what was sent, a window at a time.
        let batch = {
            let cairn = cairn.clone();
            tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<RecordedEvent>> {
                let conn = cairn.store().reader()?;
                Ok(reader::read_from(&conn, sent, WINDOW)?)
            })
            .await??
        };
        for event in &batch {
            let mut headers = async_nats::HeaderMap::new();
            headers.insert("Nats-Msg-Id", event.id.to_string().as_str());
            headers.insert("Nats-Expected-Last-Sequence", (event.position - 1).to_string().as_str());
            headers.insert("Cairn-Position", event.position.to_string().as_str());
            headers.insert("Cairn-Hash", hex::encode(event.hash).as_str());
            let ack = js
                .publish_with_headers(config.subject(), headers, encode(event).into())
                .await?;
            in_flight.push_back((event.position, ack));
            sent = event.position;
            if in_flight.len() >= WINDOW {
                acked = settle(&mut in_flight, 1, acked, publication).await?;
            }
        }
        let waiting = in_flight.len();
        acked = settle(&mut in_flight, waiting, acked, publication).await?;
        keep(cairn.root(), acked)?;
        if heartbeat.0.is_finished() {
            anyhow::bail!("the connection to NATS ended");
        }
        if batch.len() < WINDOW {
            // Caught up: wait for the next commit (or look again in a while, should a notice be missed).
            let _ = tokio::time::timeout(Duration::from_secs(1), commits.recv()).await;
        }
    }
}

/// Waits for the `count` oldest acknowledgements, in order; answers the last position acknowledged.
async fn settle(
    in_flight: &mut VecDeque<(Position, PublishAckFuture)>,
    count: usize,
    mut acked: Position,
    publication: &Publication,
) -> anyhow::Result<Position> {
    for _ in 0..count {
        let Some((position, ack)) = in_flight.pop_front() else {
            break;
        };
        let ack = ack.await?;
        anyhow::ensure!(
            ack.sequence as Position == position,
            "JetStream stored position {position} at sequence {}",
            ack.sequence
        );
        acked = position;
        publication.acked.store(acked, Ordering::Release);
    }
    Ok(acked)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn site_names_are_subject_tokens() {
        for good in ["paris", "dc-2", "site_03", "A"] {
            assert!(is_site_name(good), "{good}");
        }
        for bad in ["", "a.b", "a b", "a*", ">", "é", &"x".repeat(65)] {
            assert!(!is_site_name(bad), "{bad}");
        }
        assert_eq!(subject("paris"), "cairn.paris.events");
        assert_eq!(stream_name("paris"), "CAIRN_paris");
    }

    #[test]
    fn a_message_carries_the_event_as_stored() {
        let event = RecordedEvent {
            position: 7,
            id: uuid::Uuid::from_u128(7),
            stream: "log".into(),
            version: 3,
            event_type: "LogRecorded".into(),
            schema: 1,
            data: r#"{"message":"a \"quoted\" line"}"#.into(),
            metadata: r#"{"actor":"system"}"#.into(),
            recorded_at: "2026-12-01T10:00:00.000000Z".into(),
            crc: 42,
            hash: [9; 32],
        };
        assert_eq!(decode(&encode(&event)).unwrap(), event);
        assert!(decode(b"{}").unwrap_err().starts_with("not an event's message"));
    }
}
