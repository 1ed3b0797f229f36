//! Presence: who is connected. A heartbeat from a connected client is not an event (it would flood the log),
//! so the last heartbeat of each client is kept here, in memory; the moves between `Registered`, `Connected`
//! and `Offline` are events. Every operation that connects, disconnects or deletes a client goes through
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

/// The last heartbeat of each connected client, and the feed whose connections a revocation closes.
pub struct Presence {
    /// A std mutex: held only to read or change the map, never across an await.
    last: Mutex<HashMap<Uuid, Instant>>,
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
        self.map().insert(id, Instant::now());
        Ok(beat == Heartbeat::Connected)
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
        cairn.execute(DisconnectClient { id, reason }, metadata).await?;
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
        metadata: Metadata,
    ) -> Result<Deleted, ServiceError> {
        let done = cairn.execute(DeleteClient { id, expected_version }, metadata).await?;
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
            for id in self.expired(timeout) {
                self.map().remove(&id);
                let command = DisconnectClient {
                    id,
                    reason: DisconnectReason::Timeout,
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
        self.map().extend(connected.into_iter().map(|id| (id, now)));
        Ok(())
    }

    fn expired(&self, timeout: Duration) -> Vec<Uuid> {
        self.map()
            .iter()
            .filter(|(_, t)| t.elapsed() >= timeout)
            .map(|(id, _)| *id)
            .collect()
    }

    fn map(&self) -> MutexGuard<'_, HashMap<Uuid, Instant>> {
        self.last.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// What deleting a client did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deleted {
    pub files_deleted: usize,
    pub positions: Vec<cairn_events::Position>,
}
