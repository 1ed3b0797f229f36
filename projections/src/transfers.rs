//! The `transfers` read table: uploads and downloads, under way, completed or failed.

use cairn_events::{ApplyError, DomainEvent, RecordedEvent};
use rusqlite::types::Value;
use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;

use crate::query::{paged, Conditions, ListQuery, Page};
pub use crate::status::TransferStatus;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Transfer {
    pub id: String,
    pub client_id: Option<String>,
    pub file_id: Option<String>,
    pub filename: String,
    pub direction: String,
    pub status: TransferStatus,
    pub expected_bytes: Option<i64>,
    pub bytes: i64,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub duration_ms: Option<i64>,
    pub error: Option<String>,
    /// The backup run the upload belonged to, if any.
    pub run_id: Option<String>,
}

const COLUMNS: &str = "id, client_id, file_id, filename, direction, status, expected_bytes, bytes, started_at, \
                       finished_at, duration_ms, error, run_id";

fn from_row(r: &Row<'_>) -> rusqlite::Result<Transfer> {
    Ok(Transfer {
        id: r.get(0)?,
        client_id: r.get(1)?,
        file_id: r.get(2)?,
        filename: r.get(3)?,
        direction: r.get(4)?,
        status: r.get(5)?,
        expected_bytes: r.get(6)?,
        bytes: r.get(7)?,
        started_at: r.get(8)?,
        finished_at: r.get(9)?,
        duration_ms: r.get(10)?,
        error: r.get(11)?,
        run_id: r.get(12)?,
    })
}

pub fn apply(conn: &Connection, e: &RecordedEvent, event: &DomainEvent) -> Result<(), ApplyError> {
    match event {
        DomainEvent::TransferStarted(t) => {
            let direction = match t.direction {
                cairn_events::catalogue::Direction::Upload => "upload",
                cairn_events::catalogue::Direction::Download => "download",
            };
            conn.prepare_cached(
                "INSERT INTO transfers (id, client_id, file_id, filename, direction, status, expected_bytes, started_at,
                                        run_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?8, ?6, ?7, ?9)",
            )?
            .execute(params![
                t.transfer_id.to_string(),
                t.client_id.map(|c| c.to_string()),
                t.file_id.map(|f| f.to_string()),
                t.filename,
                direction,
                t.expected_bytes.map(|b| b as i64),
                e.recorded_at,
                TransferStatus::InProgress,
                t.run_id.map(|r| r.to_string())
            ])?;
        }
        DomainEvent::TransferCompleted(t) => {
            conn.prepare_cached(
                "UPDATE transfers SET status = ?6, file_id = coalesce(?2, file_id), bytes = ?3,
                 duration_ms = ?4, finished_at = ?5 WHERE id = ?1",
            )?
            .execute(params![
                t.transfer_id.to_string(),
                t.file_id.map(|f| f.to_string()),
                t.bytes as i64,
                t.duration_ms as i64,
                e.recorded_at,
                TransferStatus::Completed
            ])?;
        }
        DomainEvent::TransferFailed(t) => {
            conn.prepare_cached(
                "UPDATE transfers SET status = ?6, bytes = ?2, duration_ms = ?3, error = ?4, finished_at = ?5
                 WHERE id = ?1",
            )?
            .execute(params![
                t.transfer_id.to_string(),
                t.bytes as i64,
                t.duration_ms as i64,
                t.error,
                e.recorded_at,
                TransferStatus::Failed
            ])?;
        }
        _ => {}
    }
    Ok(())
}

pub fn get(conn: &Connection, id: &str) -> rusqlite::Result<Option<Transfer>> {
    conn.prepare_cached(&format!("SELECT {COLUMNS} FROM transfers WHERE id = ?1"))?
        .query_row([id], from_row)
        .optional()
}

#[derive(Debug, Clone, Default)]
pub struct TransferFilter {
    pub status: Option<TransferStatus>,
    pub client_id: Option<String>,
}

pub const SORTABLE: &[&str] = &[
    "started_at",
    "finished_at",
    "bytes",
    "status",
    "filename",
    "duration_ms",
];

pub fn list(conn: &Connection, query: &ListQuery, filter: &TransferFilter) -> Result<Page<Transfer>, crate::Error> {
    let order = query.order_by(SORTABLE, "started_at DESC, rowid DESC")?;
    let mut c = Conditions::default();
    if let Some(status) = filter.status {
        c.equals("status", status.as_str());
    }
    if let Some(client) = &filter.client_id {
        c.add("client_id = ?", [Value::Text(client.clone())]);
    }
    if let Some(like) = query.like() {
        c.add("filename LIKE ? ESCAPE '\\'", [Value::Text(like)]);
    }
    Ok(paged(conn, "transfers", COLUMNS, &c, &order, query, from_row)?)
}

/// All transfers and those under way.
pub fn counts(conn: &Connection) -> rusqlite::Result<(i64, i64)> {
    conn.query_row(
        "SELECT count(*), coalesce(sum(status = ?1), 0) FROM transfers",
        [TransferStatus::InProgress],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
}

/// Every transfer with a status, oldest first (for closing those a crash left under way).
pub fn with_status(conn: &Connection, status: TransferStatus) -> rusqlite::Result<Vec<Transfer>> {
    conn.prepare(&format!(
        "SELECT {COLUMNS} FROM transfers WHERE status = ?1 ORDER BY started_at, rowid"
    ))?
    .query_map([status], from_row)?
    .collect()
}
