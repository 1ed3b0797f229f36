//! The `logs` read table: log lines from clients and the server, until cleared.

use cairn_events::{ApplyError, DomainEvent, RecordedEvent};
use rusqlite::types::Value;
use rusqlite::{params, Connection, Row};
use serde::Serialize;

use crate::query::{paged, time, Conditions, ListQuery, Page, QueryError};

/// The levels a log line may have, least severe first.
pub const LEVELS: &[&str] = &["debug", "info", "warning", "error", "critical"];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct LogEntry {
    /// The position of its `LogRecorded` event.
    pub id: i64,
    pub level: String,
    pub message: String,
    pub source: String,
    pub client_id: Option<String>,
    /// The client's name now (absent for the server's own lines, and once the client is deleted).
    pub client_name: Option<String>,
    pub file_id: Option<String>,
    pub recorded_at: String,
}

const COLUMNS: &str = "id, level, message, source, client_id, file_id, recorded_at, \
                       (SELECT name FROM clients WHERE clients.id = logs.client_id) AS client_name";

fn from_row(r: &Row<'_>) -> rusqlite::Result<LogEntry> {
    Ok(LogEntry {
        id: r.get(0)?,
        level: r.get(1)?,
        message: r.get(2)?,
        source: r.get(3)?,
        client_id: r.get(4)?,
        client_name: r.get(7)?,
        file_id: r.get(5)?,
        recorded_at: r.get(6)?,
    })
}

pub fn apply(conn: &Connection, e: &RecordedEvent, event: &DomainEvent) -> Result<(), ApplyError> {
    match event {
        DomainEvent::LogRecorded(l) => {
            conn.prepare_cached(
                "INSERT INTO logs (id, level, message, source, client_id, file_id, recorded_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                e.position,
                l.level,
                l.message,
                l.source,
                l.client_id.map(|c| c.to_string()),
                l.file_id.map(|f| f.to_string()),
                e.recorded_at
            ])?;
        }
        DomainEvent::LogsCleared(_) => {
            conn.prepare_cached("DELETE FROM logs WHERE id < ?1")?
                .execute([e.position])?;
        }
        _ => {}
    }
    Ok(())
}

/// Filters of the logs list and export.
#[derive(Debug, Clone, Default)]
pub struct LogFilter {
    pub level: Option<String>,
    pub source: Option<String>,
    pub client_id: Option<String>,
    /// RFC 3339, inclusive.
    pub from: Option<String>,
    /// RFC 3339, exclusive.
    pub to: Option<String>,
}

pub const SORTABLE: &[&str] = &["id", "recorded_at", "level", "source"];

fn conditions(query: &ListQuery, filter: &LogFilter) -> Result<Conditions, QueryError> {
    let mut c = Conditions::default();
    if let Some(level) = &filter.level {
        c.one_of("level", level, LEVELS)?;
    }
    if let Some(source) = &filter.source {
        c.add("source = ?", [Value::Text(source.clone())]);
    }
    if let Some(client) = &filter.client_id {
        c.add("client_id = ?", [Value::Text(client.clone())]);
    }
    if let Some(from) = &filter.from {
        c.add("recorded_at >= ?", [Value::Text(time("from", from)?)]);
    }
    if let Some(to) = &filter.to {
        c.add("recorded_at < ?", [Value::Text(time("to", to)?)]);
    }
    if let Some(like) = query.like() {
        c.add("message LIKE ? ESCAPE '\\'", [Value::Text(like)]);
    }
    Ok(c)
}

pub fn list(conn: &Connection, query: &ListQuery, filter: &LogFilter) -> Result<Page<LogEntry>, crate::Error> {
    let order = query.order_by(SORTABLE, "id DESC")?;
    let c = conditions(query, filter)?;
    Ok(paged(conn, "logs", COLUMNS, &c, &order, query, from_row)?)
}

/// Every matching entry in id order, one at a time, for streamed exports that keep memory flat.
pub fn for_each(
    conn: &Connection,
    query: &ListQuery,
    filter: &LogFilter,
    mut f: impl FnMut(LogEntry) -> std::ops::ControlFlow<()>,
) -> Result<(), crate::Error> {
    let c = conditions(query, filter)?;
    let mut stmt = conn.prepare(&format!("SELECT {COLUMNS} FROM logs {} ORDER BY id", c.sql()))?;
    let mut rows = stmt.query(rusqlite::params_from_iter(c.params.iter()))?;
    while let Some(row) = rows.next()? {
        if f(from_row(row)?).is_break() {
            break;
        }
    }
    Ok(())
}

pub fn count(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("SELECT count(*) FROM logs", [], |r| r.get(0))
}
