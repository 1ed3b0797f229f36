//! Presence: who is connected, and when each client was last seen. A heartbeat from a connected client is not
//! an event (it would flood the log), nor is any other sign of life (an upload, a log line: every request a
//! client's token makes), so the last of them is kept here, in memory, and laid over the read table's
//! `last_seen` in every answer ([`Presence::overlay`]); the moves between `Registered`, `Connected` and
//! `Offline` are events, and `ClientDisconnected` records the last sign of life, so an offline client keeps it. Every operation that connects, disconnects or deletes a client goes through
//! [`Presence`], so the map and the log cannot disagree; [`Presence::monitor`] marks a client offline
//! (`ClientDisconnected`, reason timeout) once it has been silent for the configured time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use cairn_events::catalogue::DisconnectReason;
use cairn_events::Metadata;
use cairn_projections::clients::{self, ClientFilter, ClientStatus};
use cairn_projections::ListQuery;
use tokio::time::Instant;
use uuid::Uuid;

use super::auth::Caller;
use super::feed::Feed;
use super::ServiceError;
use crate::commands::client::{ConnectClient, DeleteClient, DisconnectClient, Heartbeat, RotateToken};
use crate::error::CommandError;
use crate::Cairn;

/// The live feed hears of a client's signs of life at most this often.
const PRESENCE_EVERY: Duration = Duration::from_secs(1);

/// When a client was last seen: the clock the timeout runs on, and the wall time answers show.
#[derive(Debug, Clone)]
struct Seen {
    at: Instant,
    /// When the live feed was last told (at most once a second per client, however busy it is).
    told: Option<Instant>,
    /// RFC 3339, as the log writes times; `None` for a client adopted at start, whose time only the table knows.
    wall: Option<String>,
}

impl Seen {
    fn now() -> Self {
        Self {
            at: Instant::now(),
            told: None,
            wall: Some(cairn_events::writer::now_rfc3339()),
        }
    }
}

/// The last sign of life of each client seen since start, and the feed whose connections a revocation closes.
pub struct Presence {
    /// A std mutex: held only to read or change the map, never across an await.
    last: Mutex<HashMap<Uuid, Seen>>,
    /// A client disconnected, deleted or given a new token loses its live connections at once.
    feed: Arc<Feed>,
}

impl Presence {
    pub fn new(feed: Arc<Feed>) -> Self {
        Self {
            last: Mutex::new(HashMap::new()),
            feed,
        }
    }

    /// Gives a client a new token: the old one stops working at once, and the live connections opened with
    /// it close.
    pub async fn rotate_token(
        &self,
        cairn: &Cairn,
        id: Uuid,
        token: String,
        metadata: Metadata,
    ) -> Result<(), ServiceError> {
        cairn.execute(RotateToken { id, token }, metadata).await?;
        self.feed.revoke(id);
        Ok(())
    }

    /// A client's heartbeat: connects it (an event) if it was not connected, and notes the time either way.
    /// Answers whether this heartbeat connected it.
    pub async fn heartbeat(
        &self,
        cairn: &Cairn,
        id: Uuid,
        ip_address: Option<String>,
        metadata: Metadata,
    ) -> Result<bool, ServiceError> {
        let beat = cairn.execute(ConnectClient { id, ip_address }, metadata).await?.output;
        self.seen(id);
        Ok(beat == Heartbeat::Connected)
    }

    /// A sign of life from a client that is not a heartbeat (any request its token makes): moves its last-seen
    /// time, and, if it is connected, restarts its timeout.
    pub fn seen(&self, id: Uuid) {
        let mut now = Seen::now();
        let tell = {
            let mut map = self.map();
            let told = map.get(&id).and_then(|s| s.told);
            let tell = told.is_none_or(|t| t.elapsed() >= PRESENCE_EVERY);
            now.told = if tell { Some(now.at) } else { told };
            let wall = now.wall.clone();
            map.insert(id, now);
            tell.then_some(wall).flatten()
        };
        if let Some(wall) = tell {
            self.feed.presence(id, &wall);
        }
    }

    /// The client's last sign of life, if this process saw one (RFC 3339).
    pub fn last_seen(&self, id: Uuid) -> Option<String> {
        self.map().get(&id).and_then(|s| s.wall.clone())
    }

    /// Lays the in-memory last-seen time over a client's row, where it is later than the row's.
    pub fn overlay(&self, client: &mut clients::Client) {
        let Ok(id) = Uuid::parse_str(&client.id) else { return };
        if let Some(seen) = self.last_seen(id) {
            // Both are the writer's RFC 3339 form (UTC, fixed width), so they order as text.
            if client.last_seen.as_deref().is_none_or(|row| row < seen.as_str()) {
                client.last_seen = Some(seen);
            }
        }
    }

    /// Marks a connected client offline: by the admin, or by the client itself.
    pub async fn disconnect(
        &self,
        cairn: &Cairn,
        id: Uuid,
        by: Caller,
        metadata: Metadata,
    ) -> Result<(), ServiceError> {
        by.require_client(id)?;
        let reason = match by {
            Caller::Admin => DisconnectReason::Admin,
            Caller::Client(_) => DisconnectReason::Client,
        };
        let last_seen = self.last_seen(id);
        cairn
            .execute(DisconnectClient { id, reason, last_seen }, metadata)
            .await?;
        self.map().remove(&id);
        self.feed.revoke(id);
        Ok(())
    }

    /// Deletes a client and its files; answers how many files went with it.
    pub async fn delete(
        &self,
        cairn: &Cairn,
        id: Uuid,
        expected_version: Option<i64>,
        retain: bool,
        metadata: Metadata,
    ) -> Result<Deleted, ServiceError> {
        let command = DeleteClient {
            id,
            expected_version,
            retain,
        };
        let done = cairn.execute(command, metadata).await?;
        self.map().remove(&id);
        self.feed.revoke(id);
        Ok(Deleted {
            files_deleted: done.output,
            positions: done.positions,
        })
    }

    /// Runs until aborted: every quarter of the timeout, disconnects the clients silent for longer than it.
    /// Clients found connected at start (from before a restart) get one full timeout to send a heartbeat.
    pub async fn monitor(&self, cairn: Cairn, timeout: Duration) {
        if let Err(e) = self.adopt_connected(&cairn).await {
            tracing::warn!(error = %e, "could not read the connected clients at start");
        }
        let period = (timeout / 4).max(Duration::from_millis(50));
        loop {
            tokio::time::sleep(period).await;
            for (id, last_seen) in self.expired(timeout) {
                let command = DisconnectClient {
                    id,
                    reason: DisconnectReason::Timeout,
                    last_seen,
                };
                match cairn.execute(command, Metadata::system()).await {
                    Ok(_) | Err(CommandError::ClientNotFound(_)) | Err(CommandError::ClientDeleted(_)) => {}
                    Err(e) => tracing::warn!(client = %id, error = %e, "could not mark a silent client offline"),
                }
            }
        }
    }

    /// Starts the clock of every client the read tables show connected.
    async fn adopt_connected(&self, cairn: &Cairn) -> Result<(), ServiceError> {
        let connected = super::read(cairn, |conn| {
            let filter = ClientFilter {
                status: Some(ClientStatus::Connected),
                overdue: None,
            };
            let mut ids = Vec::new();
            let mut page = 1;
            loop {
                let query = ListQuery {
                    page,
                    ..ListQuery::new(Some(1), Some(500), None, None)?
                };
                let found = clients::list(conn, &query, &filter)?;
                ids.extend(found.items.iter().filter_map(|c| Uuid::parse_str(&c.id).ok()));
                if i64::from(page) >= found.pages {
                    return Ok(ids);
                }
                page += 1;
            }
        })
        .await?;
        let now = Instant::now();
        let mut map = self.map();
        for id in connected {
            // A client already seen since start (it raced the adoption) keeps its own time.
            map.entry(id).or_insert(Seen {
                at: now,
                told: None,
                wall: None,
            });
        }
        Ok(())
    }

    /// Takes out of the map the clients silent for `timeout`, with their last sign of life.
    fn expired(&self, timeout: Duration) -> Vec<(Uuid, Option<String>)> {
        let mut map = self.map();
        let silent: Vec<Uuid> = map
            .iter()
            .filter(|(_, s)| s.at.elapsed() >= timeout)
            .map(|(id, _)| *id)
            .collect();
        silent
            .into_iter()
            .filter_map(|id| map.remove(&id).map(|s| (id, s.wall)))
            .collect()
    }

    fn map(&self) -> MutexGuard<'_, HashMap<Uuid, Seen>> {
        self.last.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// What deleting a client did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deleted {
    pub files_deleted: usize,
    pub positions: Vec<cairn_events::Position>,
}
