//! `GET /api/status`: the figures an operator watches.

use serde::Serialize;
use warp::http::StatusCode;
use warp::reply::Response;

use super::read;
use crate::http::error::{ok, ApiError};
use crate::http::AppState;
use cairn_projections::{clients, transfers};

#[derive(Debug, Serialize)]
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
    /// Bytes on disk after deduplication.
    pub stored_bytes: i64,
    pub uptime_seconds: u64,
    pub events_total: i64,
    pub head_position: i64,
}

pub async fn status(state: &AppState) -> Result<Response, ApiError> {
    Ok(ok(StatusCode::OK, status_figures(state).await?, None))
}

/// The figures of `/api/status`, also sent on the live feed every second.
pub async fn status_figures(state: &AppState) -> Result<Status, ApiError> {
    let head = state.cairn.store().head();
    let uptime = state.started.elapsed().as_secs();
    let s = read(state, move |conn| {
        let (total_clients, clients_connected) = clients::counts(conn)?;
        let (total_files, bytes, stored) = cairn_projections::stats::storage_totals(conn)?;
        let (total_transfers, active_transfers) = transfers::counts(conn)?;
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
            uptime_seconds: uptime,
            events_total: head,
            head_position: head,
        })
    })
    .await?;
    Ok(s)
}
