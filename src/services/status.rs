//! The figures an operator watches: `GET /api/status`, and the live feed's `stats` every second.

use serde::Serialize;

use super::{ServiceError, Services};
use cairn_projections::{clients, stats, transfers};

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Status {
    pub running: bool,
    pub clients_connected: i64,
    pub total_clients: i64,
    pub total_files: i64,
    pub total_transfers: i64,
    pub active_transfers: i64,
    /// Bytes of all files as stored per file.
    pub storage_used_bytes: i64,
    pub storage_used_gb: f64,
    /// Bytes on disk after deduplication, of the content files hold.
    pub stored_bytes: i64,
    /// Content no file holds any more, kept until its retention ends (`--retain-deleted`): how many, and their
    /// bytes (on disk besides `stored_bytes`).
    pub retained_blobs: i64,
    pub retained_bytes: i64,
    pub uptime_seconds: u64,
    pub events_total: i64,
    pub head_position: i64,
    /// The publication of the log to NATS (`serve --publish`): null when the site does not publish.
    pub publication: Option<super::publish::PublicationStatus>,
    /// Whether this server is a hub (`cairn hub`), with a fleet to show.
    pub hub: bool,
}

/// The figures now: three small queries on a pooled read-only connection (the storage figures are running
/// totals, never an aggregate over `files`).
pub async fn figures(services: &Services) -> Result<Status, ServiceError> {
    let head = services.cairn.store().head();
    let uptime = services.started.elapsed().as_secs();
    let publication = services.publication_status();
    let hub = services.fleet.is_some();
    services
        .read(move |conn| {
            let (total_clients, clients_connected) = clients::counts(conn)?;
            let (total_files, bytes, stored) = stats::storage_totals(conn)?;
            let (total_transfers, active_transfers) = transfers::counts(conn)?;
            let (retained_blobs, retained_bytes) = cairn_projections::retained::totals(conn)?;
            Ok(Status {
                running: true,
                clients_connected,
                total_clients,
                total_files,
                total_transfers,
                active_transfers,
                storage_used_bytes: bytes,
                storage_used_gb: (bytes as f64 / 1e9 * 1000.0).round() / 1000.0,
                stored_bytes: stored,
                retained_blobs,
                retained_bytes,
                uptime_seconds: uptime,
                events_total: head,
                head_position: head,
                publication,
                hub,
            })
        })
        .await
}
