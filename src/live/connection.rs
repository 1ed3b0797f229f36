//! One subscriber of the live feed.
//!
//! A feeder turns the subscription into messages: it subscribes to the relay *before* reading history, sends the
//! history from the database, then the live events, dropping by position what it already passed, and filling
//! from the database whatever the relay's broadcast skipped when this subscriber lagged. A writer drains a
//! bounded queue into the socket and pings; a send that stalls past the configured time closes the connection
//! with [`CLOSE_BEHIND`] and `resume from <position>`, the last event it was handed. A reader takes the peer's
//! messages as they come, even while the feeder is deep in history: a close, an oversized message or a
//! revocation ends the connection at once, ahead of whatever is still queued (an [`Ending`]).

use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::sync::{broadcast, mpsc, watch};
use uuid::Uuid;
use warp::ws::{Message, WebSocket};

use super::{CLOSE_BEHIND, CLOSE_REVOKED, CLOSE_SHUTDOWN, CLOSE_TOO_BIG, MAX_MESSAGE};
use crate::services::auth::Caller;
use crate::services::feed::{encode, read_range, Encoded, Gapless, Next, Progress, Slot};
use crate::services::Services;

/// Messages from the peer queued for the feeder before the peer is closed with [`CLOSE_POLICY`].
const UNANSWERED: usize = 8;
/// The close code for a peer that breaks the protocol's rules (RFC 6455 §7.4.1).
const CLOSE_POLICY: u16 = 1008;

/// How long a close frame may wait for a slow subscriber to read what is ahead of it.
const CLOSE_GRACE: std::time::Duration = std::time::Duration::from_secs(30);

/// `{"op":"subscribe","from":P,"streams":[…],"types":[…]}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Subscribe {
    op: String,
    /// Send events after this position; absent: from the head at the moment of subscribing.
    #[serde(default)]
    from: Option<i64>,
    #[serde(default)]
    streams: Vec<String>,
    #[serde(default)]
    types: Vec<String>,
}

/// What a subscription lets through. A client token sees the events that name its client: those of its own
/// stream, and those whose data carries its `client_id` (its files' storage and deletion, its transfers' start,
/// its log lines).
struct Filter {
    streams: Vec<String>,
    types: Vec<String>,
    /// What the caller may see at all.
    scope: Scope,
}

impl Filter {
    /// Whether an event goes out: its stream and type asked for, and a client token's own.
    fn admits(&self, e: &Encoded) -> bool {
        (self.streams.is_empty()
            || self.streams.iter().any(|s| match s.strip_suffix('*') {
                Some(prefix) => e.stream.starts_with(prefix),
                None => *s == e.stream,
            }))
            && (self.types.is_empty() || self.types.contains(&e.event_type))
            && self.scope.sees_event(e)
    }
}

/// What a caller may see, decided once per connection: a client token sees the events that name its client;
/// the server-wide `stats` are the admin's (a client token is refused `/api/status` and `/api/system` over
/// HTTP too), and an upload's `progress` is its own client's and the admin's.
#[derive(Debug, Clone, Copy)]
struct Scope {
    /// A client token's own client; `None` for the admin.
    client: Option<Uuid>,
}

impl Scope {
    fn sees_event(self, e: &Encoded) -> bool {
        self.client.is_none_or(|c| e.client == Some(c))
    }

    fn sees_stats(self) -> bool {
        self.client.is_none()
    }

    fn sees_progress(self, p: &Progress) -> bool {
        self.client.is_none_or(|c| c == p.client)
    }
}

enum Outgoing {
    Event { position: i64, text: String },
    Other(String),
}

/// Why a connection ends before its queue is drained: set once (the first reason wins), seen by the writer
/// ahead of anything queued and by the feeder wherever it waits.
#[derive(Debug, Clone)]
enum Ending {
    /// Send this close frame now, dropping what is queued.
    Close(u16, String),
    /// The peer is gone (reset, or its stream ended): nothing more can be sent.
    Gone,
}

/// Sets the connection's ending unless one is set already.
fn end(ending: &watch::Sender<Option<Ending>>, why: Ending) {
    ending.send_if_modified(|e| {
        if e.is_some() {
            return false;
        }
        *e = Some(why);
        true
    });
}

/// Whether a read failed because the peer's message or frame was over [`MAX_MESSAGE`].
fn too_big(e: &warp::Error) -> bool {
    use tokio_tungstenite::tungstenite::Error as WsError;
    std::error::Error::source(e)
        .and_then(|s| s.downcast_ref::<WsError>())
        .is_some_and(|w| matches!(w, WsError::Capacity(_)))
}

fn error_frame(code: &str, message: &str) -> String {
    serde_json::json!({ "kind": "error", "code": code, "message": message }).to_string()
}

/// Serves one upgraded connection until either side ends it; `slot` is its place in the feed, given back when
/// it ends.
pub async fn serve(state: Services, caller: Caller, slot: Slot, socket: WebSocket) {
    let hub = state.feed.clone();
    let (mut sink, mut incoming) = socket.split();
    let (queue, mut outgoing) = mpsc::channel::<Outgoing>(hub.config.queue.max(1));
    let (ending, mut ended) = watch::channel::<Option<Ending>>(None);
    let config = hub.config;

    // The reader: the peer's messages as they arrive, so that a close is seen at once. Requests go to the
    // feeder, a few at a time: a peer with more unanswered than that is closed (1008) rather than buffered.
    let (requests, mut control) = mpsc::channel::<String>(UNANSWERED);
    let reader = tokio::spawn({
        let ending = ending.clone();
        async move {
            loop {
                match incoming.next().await {
                    // Answer the peer's close with a close of our own, as the protocol asks (RFC 6455 §5.5.1).
                    Some(Ok(m)) if m.is_close() => {
                        end(&ending, Ending::Close(1000, "closed by the client".into()));
                        break;
                    }
                    Some(Ok(m)) if m.is_text() => {
                        let text = m.to_str().unwrap_or_default().to_owned();
                        match requests.try_send(text) {
                            Ok(()) => {}
                            Err(mpsc::error::TrySendError::Full(_)) => {
                                let reason = format!("more than {UNANSWERED} messages unanswered");
                                end(&ending, Ending::Close(CLOSE_POLICY, reason));
                                break;
                            }
                            Err(mpsc::error::TrySendError::Closed(_)) => break, // the feeder stopped
                        }
                    }
                    Some(Ok(_)) => {} // pings, pongs and binary frames are the socket's business
                    Some(Err(e)) if too_big(&e) => {
                        let reason = format!("a message is at most {} KiB", MAX_MESSAGE / 1024);
                        end(&ending, Ending::Close(CLOSE_TOO_BIG, reason));
                        break;
                    }
                    Some(Err(_)) | None => {
                        end(&ending, Ending::Gone);
                        break;
                    }
                }
            }
        }
    });

    // The writer: the only task that writes to the socket. `handed` is the last event given to the socket: a
    // send that timed out may still leave its frame in the socket's buffer, and frames go out in order, so a
    // close frame that arrives comes after it, and the resume position must count it.
    let writer = tokio::spawn(async move {
        let mut ping = tokio::time::interval(config.ping_every);
        ping.tick().await;
        let mut handed = 0i64;
        loop {
            let (message, position) = tokio::select! {
                biased;
                _ = ended.changed() => {
                    let why = ended.borrow_and_update().clone();
                    if let Some(Ending::Close(code, reason)) = why {
                        // After the peer's close the socket has queued its own reply, which close() flushes.
                        let closing = async {
                            if let Err(e) = sink.send(Message::close_with(code, reason)).await {
                                tracing::debug!(error = %e, "a close frame was not sent as such");
                            }
                            sink.close().await
                        };
                        let _closed = tokio::time::timeout(config.stall_timeout, closing).await;
                    }
                    return;
                }
                next = outgoing.recv() => match next {
                    Some(Outgoing::Event { position, text }) => (Message::text(text), Some(position)),
                    Some(Outgoing::Other(text)) => (Message::text(text), None),
                    None => {
                        let reason = format!("resume from {handed}");
                        let _closing = tokio::time::timeout(config.stall_timeout, sink.send(Message::close_with(CLOSE_SHUTDOWN, reason))).await;
                        return;
                    }
                },
                _ = ping.tick() => (Message::ping(Vec::new()), None),
            };
            if let Some(p) = position {
                handed = p;
            }
            // Everything already queued goes out with this message under one flush (one write, not one each).
            let mut batch = vec![message];
            while batch.len() < 64 {
                match outgoing.try_recv() {
                    Ok(Outgoing::Event { position, text }) => {
                        handed = position;
                        batch.push(Message::text(text));
                    }
                    Ok(Outgoing::Other(text)) => batch.push(Message::text(text)),
                    Err(_) => break,
                }
            }
            let mut items = futures_util::stream::iter(batch.into_iter().map(Ok));
            match tokio::time::timeout(config.stall_timeout, sink.send_all(&mut items)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "a live connection's socket failed");
                    // A close the peer began leaves our reply queued: flush it rather than reset the connection.
                    let _closed = tokio::time::timeout(config.stall_timeout, sink.close()).await;
                    return;
                }
                Err(_) => {
                    tracing::info!(handed, "closing a live subscriber that stayed too far behind");
                    let reason = format!("too far behind; resume from {handed}");
                    // The close frame waits behind what the subscriber has not read; give it time to get out.
                    let _closing =
                        tokio::time::timeout(CLOSE_GRACE, sink.send(Message::close_with(CLOSE_BEHIND, reason))).await;
                    return;
                }
            }
        }
    });

    // The feeder: waits for the subscription, then sends history and live events in order.
    let client = caller.client();
    let mut subscription: Option<(Filter, broadcast::Receiver<Arc<Encoded>>, Gapless)> = None;
    let scope = Scope { client };
    // A caller who may not see the stats does not subscribe to them (nor count as someone they are made for).
    let mut stats = scope.sees_stats().then(|| hub.stats.subscribe());
    let mut progress = hub.progress.subscribe();
    let mut closing = hub.closing.subscribe();
    let mut revoked = hub.revoked.subscribe();
    let mut stopped = ending.subscribe();
    'connection: loop {
        if *closing.borrow_and_update() {
            break;
        }
        tokio::select! {
            _ = closing.changed() => break,
            gone = revoked.recv(), if client.is_some() => {
                let reason = match gone {
                    Ok(id) if Some(id) != client => continue,
                    Ok(_) => "the token was revoked (rotated, or the client disconnected or deleted)",
                    // Revocations were missed: this one may be among them; a valid token reconnects at once.
                    Err(broadcast::error::RecvError::Lagged(_)) => "revocations overflowed; reconnect",
                    Err(broadcast::error::RecvError::Closed) => break, // the server is going away
                };
                end(&ending, Ending::Close(CLOSE_REVOKED, reason.into()));
                break;
            }
            request = control.recv() => {
                let Some(text) = request else { break }; // the reader ended: the connection is ending
                match serde_json::from_str::<Subscribe>(&text) {
                    Ok(s) if s.op != "subscribe" => {
                        let frame = error_frame("INVALID_MESSAGE", &format!("unknown op {:?}; send {{\"op\":\"subscribe\",…}}", s.op));
                        if queue.send(Outgoing::Other(frame)).await.is_err() { break }
                    }
                    Ok(_) if subscription.is_some() => {
                        if queue.send(Outgoing::Other(error_frame("ALREADY_SUBSCRIBED", "one subscription per connection"))).await.is_err() { break }
                    }
                    Ok(s) if s.from.is_some_and(|f| f < 0) => {
                        if queue.send(Outgoing::Other(error_frame("INVALID_MESSAGE", "from must be 0 or more"))).await.is_err() { break }
                    }
                    Ok(s) => {
                        let filter = Filter { streams: s.streams, types: s.types, scope };
                        // Subscribe before reading history, so that nothing falls between the two.
                        let rx = hub.events.subscribe();
                        let head = state.cairn.store().head();
                        let from = s.from.unwrap_or(head);
                        let ack = serde_json::json!({ "kind": "subscribed", "from": from, "head": head }).to_string();
                        if queue.send(Outgoing::Other(ack)).await.is_err() { break }
                        if scope.sees_stats() && queue.send(Outgoing::Other(hub.history_message())).await.is_err() { break }
                        let Some(last) = catch_up(&state, &filter, from, None, &queue, &mut stopped).await else { break 'connection };
                        subscription = Some((filter, rx, Gapless::after(last)));
                    }
                    Err(e) => {
                        if queue.send(Outgoing::Other(error_frame("INVALID_MESSAGE", &e.to_string()))).await.is_err() { break }
                    }
                }
            }
            event = async {
                match subscription.as_mut() {
                    Some((_, rx, _)) => rx.recv().await,
                    None => std::future::pending().await,
                }
            } => {
                let Some((filter, _, follower)) = subscription.as_mut() else { continue };
                let (until, then) = match follower.next(event) {
                    Next::Passed => continue,
                    Next::InOrder(e) => {
                        if !send(&queue, filter, &e).await {
                            break;
                        }
                        continue;
                    }
                    // This subscriber lagged: fill the gap from the log, then this event.
                    Next::Gap { until, then } => (Some(until), Some(then)),
                    Next::Lagged => (None, None),
                    Next::Closed => break,
                };
                let Some(caught) = catch_up(&state, filter, follower.last(), until, &queue, &mut stopped).await else { break };
                follower.filled(caught);
                if let Some(e) = then.and_then(|e| follower.after_fill(e)) {
                    if !send(&queue, filter, &e).await {
                        break;
                    }
                }
            }
            changed = async {
                match stats.as_mut() {
                    Some(s) => s.changed().await.map(|()| s.borrow_and_update().clone()),
                    None => std::future::pending().await,
                }
            } => {
                let Ok(text) = changed else {
                    stats = None; // the server is going away; nothing more will come
                    continue;
                };
                if let Some(text) = text {
                    // Transient: when the queue is full, this one is skipped.
                    let _skipped_when_busy = queue.try_send(Outgoing::Other((*text).clone()));
                }
            }
            update = progress.recv() => {
                if let Ok(p) = update {
                    if scope.sees_progress(&p) {
                        let _skipped_when_busy = queue.try_send(Outgoing::Other(p.text.clone()));
                    }
                }
            }
        }
    }
    drop(queue);
    drop(control);
    if let Err(e) = writer.await {
        tracing::debug!(error = %e, "a live connection's writer ended abnormally");
    }
    // The socket is closed (the writer's half dropped); a reader still waiting on the peer stops with it.
    reader.abort();
    drop(slot);
}

/// Queues an event the filter admits; false when the connection is gone.
async fn send(queue: &mpsc::Sender<Outgoing>, filter: &Filter, e: &Encoded) -> bool {
    !filter.admits(e)
        || queue
            .send(Outgoing::Event {
                position: e.position,
                text: e.text.clone(),
            })
            .await
            .is_ok()
}

/// Queues an event, unless the connection ends first; false when it did.
async fn queue_event(
    queue: &mpsc::Sender<Outgoing>,
    stopped: &mut watch::Receiver<Option<Ending>>,
    position: i64,
    text: String,
) -> bool {
    tokio::select! {
        sent = queue.send(Outgoing::Event { position, text }) => sent.is_ok(),
        _ = stopped.wait_for(Option::is_some) => false,
    }
}

/// Sends every admitted event after `after` (up to `until`, or the head), in order; returns the last position
/// passed, or `None` when the connection is gone or ending.
async fn catch_up(
    state: &Services,
    filter: &Filter,
    after: i64,
    until: Option<i64>,
    queue: &mpsc::Sender<Outgoing>,
    stopped: &mut watch::Receiver<Option<Ending>>,
) -> Option<i64> {
    let mut last = after;
    loop {
        if stopped.borrow().is_some() {
            return None;
        }
        let until = until.unwrap_or_else(|| state.cairn.store().head());
        if last >= until {
            return Some(last);
        }
        let cairn = state.cairn.clone();
        let from = last;
        let page_end = until.min(from + 1000);
        let events = match tokio::task::spawn_blocking(move || read_range(&cairn, from, page_end)).await {
            Ok(Ok(events)) => events,
            Ok(Err(e)) => {
                tracing::error!(error = %e, "a live subscriber could not read the log");
                return None;
            }
            Err(_) => return None,
        };
        if events.is_empty() {
            return Some(last);
        }
        for e in events {
            last = e.position;
            let encoded = encode(&e);
            if filter.admits(&encoded) && !queue_event(queue, stopped, e.position, encoded.text).await {
                return None;
            }
        }
    }
}
