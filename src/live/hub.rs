//! The relay: committed events encoded once and re-broadcast to every subscriber, plus `stats` and `progress`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use cairn_events::{reader, RecordedEvent};
use serde::Deserialize;
use tokio::sync::{broadcast, watch};
use uuid::Uuid;

use super::LiveConfig;
use crate::Cairn;

/// An event as the feed sends it, encoded once.
#[derive(Debug)]
pub struct Encoded {
    pub position: i64,
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
    let text = format!(
        r#"{{"kind":"event","position":{},"stream":{},"type":{},"version":{},"data":{},"metadata":{},"recorded_at":{}}}"#,
        e.position,
        serde_json::Value::from(e.stream.as_str()),
        serde_json::Value::from(e.event_type.as_str()),
        e.version,
        e.data,
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
pub struct Hub {
    pub config: LiveConfig,
    pub events: broadcast::Sender<Arc<Encoded>>,
    /// The latest `{"kind":"stats",…}`.
    pub stats: watch::Sender<Option<Arc<String>>>,
    /// `{"kind":"progress",…}` messages; transient, so a lagging subscriber simply skips some.
    pub progress: broadcast::Sender<Arc<String>>,
    pub connections: AtomicUsize,
    /// Set when the server shuts down: every connection closes (code 1001, with its resume position), since a
    /// graceful shutdown waits for connections to end and a feed never ends by itself.
    pub closing: watch::Sender<bool>,
}

impl Hub {
    pub fn new(config: LiveConfig) -> Self {
        Self {
            config,
            events: broadcast::channel(config.broadcast_capacity.max(1)).0,
            stats: watch::channel(None).0,
            progress: broadcast::channel(1_024).0,
            connections: AtomicUsize::new(0),
            closing: watch::channel(false).0,
        }
    }

    /// Tells every connection to close.
    pub fn close_all(&self) {
        self.closing.send_replace(true);
    }

    /// Publishes an upload's progress.
    pub fn progress(&self, transfer: Uuid, client: Uuid, filename: &str, bytes: u64, expected: Option<u64>) {
        let text = serde_json::json!({
            "kind": "progress", "transfer_id": transfer, "client_id": client, "filename": filename,
            "bytes": bytes, "expected_bytes": expected,
        })
        .to_string();
        // No subscriber is not a failure: nobody is watching.
        let _nobody_watching = self.progress.send(Arc::new(text));
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }
}

/// Reads committed events after `after` up to `until`, in order, in pages.
pub fn read_range(cairn: &Cairn, after: i64, until: i64) -> Result<Vec<RecordedEvent>, cairn_events::StoreError> {
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

/// Runs until the writer's broadcast closes: re-broadcasts every committed event, encoded, in order, with no gap
/// (a gap, from lag, is filled from the database).
pub async fn relay(cairn: Cairn, hub: Arc<Hub>) {
    let mut rx = cairn.store().writer().subscribe();
    let mut last = cairn.store().head();
    loop {
        let missing_until = match rx.recv().await {
            Ok(e) if e.position <= last => continue,
            Ok(e) if e.position == last + 1 => {
                publish(&hub, &e);
                last = e.position;
                continue;
            }
            Ok(e) => e.position,
            Err(broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!(missed = n, "the live relay lagged; catching up from the database");
                cairn.store().head()
            }
            Err(broadcast::error::RecvError::Closed) => break,
        };
        let cairn2 = cairn.clone();
        let from = last;
        match tokio::task::spawn_blocking(move || read_range(&cairn2, from, missing_until)).await {
            Ok(Ok(events)) => {
                for e in events {
                    if e.position > last {
                        publish(&hub, &e);
                        last = e.position;
                    }
                }
            }
            Ok(Err(e)) => tracing::error!(error = %e, "the live relay could not read the log to fill a gap"),
            Err(e) => tracing::error!(error = %e, "the live relay's catch-up task failed"),
        }
    }
}

fn publish(hub: &Hub, e: &RecordedEvent) {
    // No subscriber is not a failure.
    let _nobody_watching = hub.events.send(Arc::new(encode(e)));
}

/// Publishes `{"kind":"stats",…}` (the figures of `/api/status` and telemetry) every `stats_every`.
pub async fn stats(state: crate::http::AppState) {
    let mut tick = tokio::time::interval(state.live.config.stats_every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tick.tick().await;
        if state.live.stats.receiver_count() == 0 {
            continue;
        }
        let figures = crate::http::handlers::status_figures(&state).await;
        let telemetry = state.telemetry.clone();
        let root = state.cairn.root().to_owned();
        let sample = tokio::task::spawn_blocking(move || telemetry.sample_light(&root)).await;
        match (figures, sample) {
            (Ok(f), Ok(s)) => {
                let mut msg =
                    serde_json::json!({ "kind": "stats", "telemetry": s, "connections": state.live.connections() });
                if let (Some(m), Ok(serde_json::Value::Object(f))) = (msg.as_object_mut(), serde_json::to_value(f)) {
                    m.extend(f);
                }
                state.live.stats.send_replace(Some(Arc::new(msg.to_string())));
            }
            (Err(e), _) => tracing::warn!(error = %e, "could not compute the live stats"),
            (_, Err(e)) => tracing::warn!(error = %e, "could not sample telemetry"),
        }
    }
}
