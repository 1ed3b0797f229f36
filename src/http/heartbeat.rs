//! Heartbeats: kept in memory (a heartbeat from a connected client is not an event), and a monitor that marks
//! a client offline (`ClientDisconnected`, reason timeout) once it has been silent for the configured time.

use std::collections::HashMap;
use std::sync::Mutex;

use cairn_events::catalogue::DisconnectReason;
use tokio::time::Instant;
use uuid::Uuid;

use super::AppState;
use crate::commands::client::DisconnectClient;
use crate::error::CommandError;

/// The last heartbeat of each connected client.
#[derive(Debug, Default)]
pub struct Heartbeats {
    /// A std mutex: held only to read or change the map, never across an await.
    last: Mutex<HashMap<Uuid, Instant>>,
}

impl Heartbeats {
    pub fn beat(&self, id: Uuid) {
        self.map().insert(id, Instant::now());
    }

    pub fn forget(&self, id: Uuid) {
        self.map().remove(&id);
    }

    /// Seconds since the client's last heartbeat, if it sent one since the server started.
    pub fn silent_for(&self, id: Uuid) -> Option<f64> {
        self.map().get(&id).map(|t| t.elapsed().as_secs_f64())
    }

    fn expired(&self, timeout: std::time::Duration) -> Vec<Uuid> {
        self.map()
            .iter()
            .filter(|(_, t)| t.elapsed() >= timeout)
            .map(|(id, _)| *id)
            .collect()
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Instant>> {
        self.last.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Runs until aborted: every quarter of the timeout, disconnects the clients silent for longer than it.
/// Clients found connected at start (from before a restart) get one full timeout to send a heartbeat.
pub async fn monitor(state: AppState) {
    match state.cairn.store().reader() {
        Ok(conn) => {
            let query = cairn_projections::ListQuery::new(Some(1), Some(500), None, None);
            let filter = cairn_projections::clients::ClientFilter {
                status: Some("Connected".into()),
            };
            if let Ok(q) = query {
                let mut page = 1;
                loop {
                    let q = cairn_projections::ListQuery { page, ..q.clone() };
                    let Ok(found) = cairn_projections::clients::list(&conn, &q, &filter) else {
                        break;
                    };
                    for c in &found.items {
                        if let Ok(id) = Uuid::parse_str(&c.id) {
                            state.heartbeats.beat(id);
                        }
                    }
                    if i64::from(page) >= found.pages {
                        break;
                    }
                    page += 1;
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "could not read the connected clients at start"),
    }
    let timeout = state.config.heartbeat_timeout;
    let period = (timeout / 4).max(std::time::Duration::from_millis(50));
    loop {
        tokio::time::sleep(period).await;
        for id in state.heartbeats.expired(timeout) {
            state.heartbeats.forget(id);
            let command = DisconnectClient {
                id,
                reason: DisconnectReason::Timeout,
            };
            match state.cairn.execute(command, cairn_events::Metadata::system()).await {
                Ok(_) | Err(CommandError::ClientNotFound(_)) | Err(CommandError::ClientDeleted(_)) => {}
                Err(e) => tracing::warn!(client = %id, error = %e, "could not mark a silent client offline"),
            }
        }
    }
}
