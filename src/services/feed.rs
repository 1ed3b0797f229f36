//! The live feed's relay, shared by every subscriber: committed events encoded once and re-broadcast in order
//! with no gap (a gap, from lag, is filled from the log), the `stats` figures about once a second, uploads'
//! `progress`, and the count of connections. [`Gapless`] holds the rule that keeps a follower of a broadcast
//! free of gaps and duplicates; the relay follows the writer with it, and each live connection follows the relay
//! with it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cairn_events::{reader, Position, RecordedEvent, StoreError};
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, watch};
use uuid::Uuid;

use super::upload::UploadProgress;
use super::{ServiceError, Services};
use crate::Cairn;

/// The live feed's settings.
#[derive(Debug, Clone, Copy)]
pub struct LiveConfig {
    /// Connections past this are refused with 503 `TOO_MANY_CONNECTIONS`.
    pub max_connections: usize,
    /// Of `max_connections`, this many are the admin's alone: clients, however many, never take them.
    pub admin_reserve: usize,
    /// The most live connections one client token holds at once.
    pub per_client: usize,
    /// Messages queued for one connection before its feeder waits (and the relay's broadcast may lag it).
    pub queue: usize,
    /// A send that cannot complete for this long closes the connection, with its resume position.
    pub stall_timeout: Duration,
    pub ping_every: Duration,
    pub stats_every: Duration,
    /// Encoded events the relay's broadcast holds; a subscriber further behind is caught up from the log.
    pub broadcast_capacity: usize,
}

impl Default for LiveConfig {
    fn default() -> Self {
        Self {
            max_connections: 2_000,
            admin_reserve: 50,
            per_client: 8,
            queue: 1_024,
            stall_timeout: Duration::from_secs(30),
            ping_every: Duration::from_secs(15),
            stats_every: Duration::from_secs(1),
            broadcast_capacity: 16_384,
        }
    }
}

/// An event as the feed sends it, encoded once for every subscriber.
#[derive(Debug)]
pub struct Encoded {
    pub position: Position,
    pub stream: String,
    pub event_type: String,
    /// The client the event concerns, for client tokens (which see only their own client's events).
    pub client: Option<Uuid>,
    /// `{"kind":"event",…}`.
    pub text: String,
}

#[derive(Deserialize)]
struct ClientRef {
    client_id: Option<Uuid>,
}

/// Encodes an event message. `data` and `metadata` are embedded as stored (they are JSON already).
pub fn encode(e: &RecordedEvent) -> Encoded {
    let client = e
        .stream
        .strip_prefix("client-")
        .and_then(|id| Uuid::parse_str(id).ok())
        .or_else(|| {
            serde_json::from_str::<ClientRef>(&e.data)
                .ok()
                .and_then(|c| c.client_id)
        });
    // Data is embedded as stored, unless it holds a secret's hash (two event types do), which is left out.
    let redacted;
    let data = if cairn_events::SECRET_FIELDS.iter().any(|f| e.data.contains(f)) {
        redacted = cairn_events::readable_data(&e.data).to_string();
        redacted.as_str()
    } else {
        e.data.as_str()
    };
    let text = format!(
        r#"{{"kind":"event","position":{},"stream":{},"type":{},"version":{},"data":{},"metadata":{},"recorded_at":{}}}"#,
        e.position,
        serde_json::Value::from(e.stream.as_str()),
        serde_json::Value::from(e.event_type.as_str()),
        e.version,
        data,
        e.metadata,
        serde_json::Value::from(e.recorded_at.as_str()),
    );
    Encoded {
        position: e.position,
        stream: e.stream.clone(),
        event_type: e.event_type.clone(),
        client,
        text,
    }
}

/// Shared by every connection.
pub struct Feed {
    pub config: LiveConfig,
    pub events: broadcast::Sender<Arc<Encoded>>,
    /// The latest `{"kind":"stats",…}`.
    pub stats: watch::Sender<Option<Arc<String>>>,
    /// `{"kind":"progress",…}` messages; transient, so a lagging subscriber simply skips some.
    pub progress: broadcast::Sender<Arc<Progress>>,
    /// Open connections, counted by [`Slot`]s: taken on [`Feed::join`], given back when dropped.
    connections: AtomicUsize,
    /// Open connections of each client token, and of all of them (which the admin's reserve bounds). A std
    /// mutex: held only to count, never across an await.
    per_client: std::sync::Mutex<std::collections::HashMap<Uuid, usize>>,
    clients: AtomicUsize,
    /// Set when the server shuts down: every connection closes (with its resume position), since a graceful
    /// shutdown waits for connections to end and a feed never ends by itself.
    pub closing: watch::Sender<bool>,
    /// Clients whose live connections must close now: their token was rotated, or they were disconnected or
    /// deleted.
    pub revoked: broadcast::Sender<Uuid>,
    /// The last [`TELEMETRY_HISTORY`] telemetry samples (one per stats tick, kept whether anyone listens or
    /// not), sent to an admin's connection as it subscribes, so charts do not start empty on every page load.
    history: std::sync::Mutex<std::collections::VecDeque<serde_json::Value>>,
}

/// How many telemetry samples the feed keeps: five minutes at one a second.
pub const TELEMETRY_HISTORY: usize = 300;

/// An upload's progress as the feed sends it, with the client it belongs to (a client token sees only its own).
#[derive(Debug)]
pub struct Progress {
    pub client: Uuid,
    /// `{"kind":"progress",…}`.
    pub text: String,
}

/// One connection's place in the feed; dropping it frees the place.
pub struct Slot {
    feed: Arc<Feed>,
    /// The client token holding it; `None` for the admin.
    client: Option<Uuid>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.feed.connections.fetch_sub(1, Ordering::Relaxed);
        if let Some(c) = self.client {
            self.feed.clients.fetch_sub(1, Ordering::Relaxed);
            let mut counts = self.feed.client_counts();
            if let Some(n) = counts.get_mut(&c) {
                *n -= 1;
                if *n == 0 {
                    counts.remove(&c);
                }
            }
        }
    }
}

impl Feed {
    pub fn new(config: LiveConfig) -> Self {
        Self {
            config,
            events: broadcast::channel(config.broadcast_capacity.max(1)).0,
            stats: watch::channel(None).0,
            progress: broadcast::channel(1_024).0,
            connections: AtomicUsize::new(0),
            per_client: std::sync::Mutex::new(std::collections::HashMap::new()),
            clients: AtomicUsize::new(0),
            closing: watch::channel(false).0,
            revoked: broadcast::channel(256).0,
            history: std::sync::Mutex::new(std::collections::VecDeque::with_capacity(TELEMETRY_HISTORY)),
        }
    }

    /// Keeps one telemetry sample (its time, CPU, memory and RSS), dropping the oldest past the ring's size.
    pub fn remember(&self, sample: &crate::telemetry::Sample, at: &str) {
        let point = serde_json::json!({
            "at": at,
            "cpu_percent": sample.cpu_percent,
            "memory_percent": sample.memory_percent,
            "process_rss_bytes": sample.process_rss_bytes,
        });
        let mut ring = self.history.lock().unwrap_or_else(|p| p.into_inner());
        if ring.len() == TELEMETRY_HISTORY {
            ring.pop_front();
        }
        ring.push_back(point);
    }

    /// `{"kind":"history","telemetry":[…]}`: the samples kept, oldest first.
    pub fn history_message(&self) -> String {
        let ring = self.history.lock().unwrap_or_else(|p| p.into_inner());
        serde_json::json!({ "kind": "history", "telemetry": &*ring }).to_string()
    }

    /// Takes a place for one more connection of `client` (`None`: the admin), or refuses: past
    /// `max_connections`, past what clients may share (all but the admin's reserve), or past a client's own
    /// `per_client`.
    pub fn join(self: &Arc<Self>, client: Option<Uuid>) -> Result<Slot, ServiceError> {
        let refuse = |message: String| ServiceError::Unavailable {
            code: "TOO_MANY_CONNECTIONS",
            message,
        };
        if let Some(c) = client {
            let mut counts = self.client_counts();
            let mine = counts.entry(c).or_default();
            if *mine >= self.config.per_client {
                return Err(refuse(format!(
                    "a client token holds at most {} live connections",
                    self.config.per_client
                )));
            }
            *mine += 1;
        }
        let count = self.connections.fetch_add(1, Ordering::Relaxed);
        let clients = match client {
            Some(_) => self.clients.fetch_add(1, Ordering::Relaxed),
            None => 0,
        };
        let slot = Slot {
            feed: self.clone(),
            client,
        };
        let clients_room = self.config.max_connections.saturating_sub(self.config.admin_reserve);
        if count >= self.config.max_connections || (client.is_some() && clients >= clients_room) {
            // `slot` drops here and gives both places back.
            return Err(refuse(format!(
                "the live feed takes {} connections; try again later",
                self.config.max_connections
            )));
        }
        Ok(slot)
    }

    fn client_counts(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<Uuid, usize>> {
        self.per_client.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }

    /// Closes every live connection of a client (whose token no longer holds).
    pub fn revoke(&self, client: Uuid) {
        // No connection is listening: none to close.
        let _none_open = self.revoked.send(client);
    }

    /// Tells every connection to close.
    pub fn close_all(&self) {
        self.closing.send_replace(true);
    }

    /// Publishes that a client was seen (a transient message, like progress: the admin and the client itself
    /// see it), so a dashboard's "last seen" moves with heartbeats that are not events.
    pub fn presence(&self, client: Uuid, last_seen: &str) {
        let text = serde_json::json!({ "kind": "presence", "client_id": client, "last_seen": last_seen }).to_string();
        let _nobody_watching = self.progress.send(Arc::new(Progress { client, text }));
    }

    /// Publishes an upload's progress.
    pub fn progress(&self, p: &UploadProgress) {
        let text = serde_json::json!({
            "kind": "progress", "transfer_id": p.transfer_id, "client_id": p.client_id, "filename": p.filename,
            "bytes": p.bytes, "expected_bytes": p.expected_bytes,
        })
        .to_string();
        // No subscriber is not a failure: nobody is watching.
        let _nobody_watching = self.progress.send(Arc::new(Progress {
            client: p.client_id,
            text,
        }));
    }
}

/// Something a broadcast carries in log order.
pub trait Positioned {
    fn position(&self) -> Position;
}

impl Positioned for Arc<RecordedEvent> {
    fn position(&self) -> Position {
        self.position
    }
}

impl Positioned for Arc<Encoded> {
    fn position(&self) -> Position {
        self.position
    }
}

/// What a follower does with what its broadcast gave.
#[derive(Debug)]
pub enum Next<T> {
    /// At or before the last position passed: a duplicate, dropped.
    Passed,
    /// The next position: pass it on (the follower has moved to it).
    InOrder(T),
    /// Positions after the last one up to `until` were skipped: fill them from the log, then offer `then`
    /// to [`Gapless::after_fill`].
    Gap { until: Position, then: T },
    /// The broadcast dropped an unknown number of items: fill from the log up to its head.
    Lagged,
    /// The broadcast ended.
    Closed,
}

/// The rule that keeps a follower of a broadcast of log positions free of gaps and duplicates: subscribe
/// before reading history, drop what was already passed, and fill from the log whatever the broadcast skipped.
#[derive(Debug, Clone, Copy)]
pub struct Gapless {
    last: Position,
}

impl Gapless {
    /// A follower that has passed everything up to `last`.
    pub fn after(last: Position) -> Self {
        Self { last }
    }

    pub fn last(&self) -> Position {
        self.last
    }

    pub fn next<T: Positioned>(&mut self, got: Result<T, RecvError>) -> Next<T> {
        match got {
            Ok(item) if item.position() <= self.last => Next::Passed,
            Ok(item) if item.position() == self.last + 1 => {
                self.last = item.position();
                Next::InOrder(item)
            }
            Ok(item) => Next::Gap {
                until: item.position() - 1,
                then: item,
            },
            Err(RecvError::Lagged(_)) => Next::Lagged,
            Err(RecvError::Closed) => Next::Closed,
        }
    }

    /// Records that everything up to `position` was passed (read from the log).
    pub fn filled(&mut self, position: Position) {
        self.last = self.last.max(position);
    }

    /// After a fill: the item that revealed the gap, if it is now next in order.
    pub fn after_fill<T: Positioned>(&mut self, item: T) -> Option<T> {
        (item.position() == self.last + 1).then(|| {
            self.last = item.position();
            item
        })
    }
}

/// Reads committed events after `after` up to `until`, in order, in pages.
pub fn read_range(cairn: &Cairn, after: Position, until: Position) -> Result<Vec<RecordedEvent>, StoreError> {
    let conn = cairn.store().reader()?;
    let mut out = Vec::new();
    let mut last = after;
    while last < until {
        let page = reader::read_from(&conn, last, 1000.min((until - last) as usize))?;
        let Some(tail) = page.last() else { break };
        last = tail.position;
        out.extend(page);
    }
    Ok(out)
}

/// Runs until the writer's broadcast closes: re-broadcasts every committed event, encoded, in order, with no
/// gap.
pub async fn relay(cairn: Cairn, feed: Arc<Feed>) {
    let mut rx = cairn.store().writer().subscribe();
    let mut follower = Gapless::after(cairn.store().head());
    loop {
        let (until, then) = match follower.next(rx.recv().await) {
            Next::Passed => continue,
            Next::InOrder(e) => {
                publish(&feed, &e);
                continue;
            }
            Next::Gap { until, then } => (until, Some(then)),
            Next::Lagged => {
                tracing::warn!("the live relay lagged; catching up from the log");
                (cairn.store().head(), None)
            }
            Next::Closed => break,
        };
        let (c, from) = (cairn.clone(), follower.last());
        match tokio::task::spawn_blocking(move || read_range(&c, from, until)).await {
            Ok(Ok(events)) => {
                for e in &events {
                    if e.position > follower.last() {
                        publish(&feed, e);
                        follower.filled(e.position);
                    }
                }
            }
            Ok(Err(e)) => tracing::error!(error = %e, "the live relay could not read the log to fill a gap"),
            Err(e) => tracing::error!(error = %e, "the live relay's catch-up task failed"),
        }
        if let Some(e) = then.and_then(|e| follower.after_fill(e)) {
            publish(&feed, &e);
        }
    }
}

fn publish(feed: &Feed, e: &RecordedEvent) {
    // No subscriber is not a failure.
    let _nobody_watching = feed.events.send(Arc::new(encode(e)));
}

/// Runs until aborted: publishes `{"kind":"stats",…}` (the status figures, telemetry and the connection count)
/// every `stats_every`, while anyone listens.
pub async fn publish_stats(services: Services) {
    let feed = services.feed.clone();
    let mut tick = tokio::time::interval(feed.config.stats_every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tick.tick().await;
        let telemetry = services.telemetry.clone();
        let root = services.cairn.root().to_owned();
        let sample = tokio::task::spawn_blocking(move || telemetry.sample_light(&root)).await;
        if let Ok(s) = &sample {
            feed.remember(s, &cairn_events::writer::now_rfc3339());
        }
        if feed.stats.receiver_count() == 0 {
            continue;
        }
        let figures = super::status::figures(&services).await;
        match (figures, sample) {
            (Ok(f), Ok(s)) => {
                let mut msg = serde_json::json!({ "kind": "stats", "telemetry": s, "connections": feed.connections() });
                if let (Some(m), Ok(serde_json::Value::Object(f))) = (msg.as_object_mut(), serde_json::to_value(f)) {
                    m.extend(f);
                }
                feed.stats.send_replace(Some(Arc::new(msg.to_string())));
            }
            (Err(e), _) => tracing::warn!(error = %e, "could not compute the live stats"),
            (_, Err(e)) => tracing::warn!(error = %e, "could not sample telemetry"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct At(Position);
    impl Positioned for At {
        fn position(&self) -> Position {
            self.0
        }
    }

    #[test]
    fn a_follower_drops_duplicates_and_names_each_gap() {
        let mut f = Gapless::after(3);
        assert!(matches!(f.next(Ok(At(2))), Next::Passed));
        assert!(matches!(f.next(Ok(At(3))), Next::Passed));
        assert!(matches!(f.next(Ok(At(4))), Next::InOrder(At(4))));
        let Next::Gap { until, then } = f.next(Ok(At(9))) else {
            panic!("a gap")
        };
        assert_eq!((until, f.last()), (8, 4));
        assert!(f.after_fill(At(9)).is_none(), "not next until the gap is filled");
        f.filled(8);
        assert!(f.after_fill(then).is_some());
        assert_eq!(f.last(), 9);
        f.filled(5);
        assert_eq!(f.last(), 9, "a fill never moves a follower back");
        assert!(matches!(f.next::<At>(Err(RecvError::Lagged(3))), Next::Lagged));
        assert!(matches!(f.next::<At>(Err(RecvError::Closed)), Next::Closed));
    }
}
