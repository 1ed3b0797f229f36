//! `runs`: the backup agent's runs, one row per `BackupRunStarted`, closed by its `BackupRunFinished`; and
//! `client_contents`: the contents each client has stored, which `files/known` may record again without the
//! bytes (only for that client: a hash alone never claims another client's file).

use cairn_events::{ApplyError, DomainEvent, RecordedEvent};
use rusqlite::types::Value;
use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;

use crate::query::{paged, Conditions, ListQuery, Page};

/// A row of `runs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Run {
    pub id: String,
    pub client_id: String,
    /// `running`, `ok`, `partial` or `failed`.
    pub status: String,
    pub folders: Vec<String>,
    pub agent_version: String,
    pub host: String,
    pub started_at: String,
    /// The position of its `BackupRunStarted`.
    pub started_position: i64,
    pub finished_at: Option<String>,
    /// The position of its `BackupRunFinished`: an archive `at` it shows the folders as the run left them.
    pub finished_position: Option<i64>,
    pub duration_ms: Option<i64>,
    pub scanned: i64,
    pub new: i64,
    pub changed: i64,
    pub unchanged: i64,
    pub deleted: i64,
    pub failed: i64,
    pub bytes_sent: i64,
    pub bytes_skipped: i64,
    /// The first errors, one line each.
    pub errors: Vec<String>,
    pub version: i64,
}

const COLUMNS: &str = "id, client_id, status, folders, agent_version, host, started_at, started_position, \
                       finished_at, finished_position, duration_ms, scanned, new, changed, unchanged, deleted, \
                       failed, bytes_sent, bytes_skipped, errors, version";

fn strings(r: &Row<'_>, i: usize) -> rusqlite::Result<Vec<String>> {
    let text: String = r.get(i)?;
    serde_json::from_str(&text)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e)))
}

fn from_row(r: &Row<'_>) -> rusqlite::Result<Run> {
    Ok(Run {
        id: r.get(0)?,
        client_id: r.get(1)?,
        status: r.get(2)?,
        folders: strings(r, 3)?,
        agent_version: r.get(4)?,
        host: r.get(5)?,
        started_at: r.get(6)?,
        started_position: r.get(7)?,
        finished_at: r.get(8)?,
        finished_position: r.get(9)?,
        duration_ms: r.get(10)?,
        scanned: r.get(11)?,
        new: r.get(12)?,
        changed: r.get(13)?,
        unchanged: r.get(14)?,
        deleted: r.get(15)?,
        failed: r.get(16)?,
        bytes_sent: r.get(17)?,
        bytes_skipped: r.get(18)?,
        errors: strings(r, 19)?,
        version: r.get(20)?,
    })
}

fn json(v: &[String]) -> String {
    serde_json::to_string(v).expect("a list of strings serialises")
}

pub fn apply(conn: &Connection, e: &RecordedEvent, event: &DomainEvent) -> Result<(), ApplyError> {
    match event {
        DomainEvent::BackupRunStarted(r) => {
            conn.prepare_cached(
                "INSERT INTO runs (id, client_id, status, folders, agent_version, host, started_at, started_position,
                                   version)
                 VALUES (?1, ?2, 'running', ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![
                r.run_id.to_string(),
                r.client_id.to_string(),
                json(&r.folders),
                r.agent_version,
                r.host,
                e.recorded_at,
                e.position,
                e.version
            ])?;
        }
        DomainEvent::BackupRunFinished(r) => {
            let c = &r.counts;
            conn.prepare_cached(
                "UPDATE runs SET status = ?2, finished_at = ?3, finished_position = ?4, duration_ms = ?5,
                     scanned = ?6, new = ?7, changed = ?8, unchanged = ?9, deleted = ?10, failed = ?11,
                     bytes_sent = ?12, bytes_skipped = ?13, errors = ?14, version = ?15
                 WHERE id = ?1",
            )?
            .execute(params![
                r.run_id.to_string(),
                r.outcome,
                e.recorded_at,
                e.position,
                r.duration_ms as i64,
                c.scanned as i64,
                c.new as i64,
                c.changed as i64,
                c.unchanged as i64,
                c.deleted as i64,
                c.failed as i64,
                c.bytes_sent as i64,
                c.bytes_skipped as i64,
                json(&r.errors),
                e.version
            ])?;
        }
        DomainEvent::FileStored(f) => {
            conn.prepare_cached(
                "INSERT OR IGNORE INTO client_contents (client_id, sha256, size, crc32) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![f.client_id.to_string(), f.sha256, f.size as i64, f.crc32])?;
        }
        DomainEvent::ClientDeleted(c) => {
            conn.prepare_cached("DELETE FROM client_contents WHERE client_id = ?1")?
                .execute([c.client_id.to_string()])?;
        }
        _ => {}
    }
    Ok(())
}

pub fn get(conn: &Connection, id: &str) -> rusqlite::Result<Option<Run>> {
    conn.prepare_cached(&format!("SELECT {COLUMNS} FROM runs WHERE id = ?1"))?
        .query_row([id], from_row)
        .optional()
}

/// Filters of the runs list, besides paging.
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    pub client_id: Option<String>,
    pub status: Option<String>,
}

pub const SORTABLE: &[&str] = &["started_at", "finished_at", "duration_ms", "bytes_sent", "status"];

/// Runs, newest first unless sorted otherwise.
pub fn list(conn: &Connection, query: &ListQuery, filter: &RunFilter) -> Result<Page<Run>, crate::Error> {
    let order = query.order_by(SORTABLE, "started_position DESC")?;
    let mut c = Conditions::default();
    if let Some(client) = &filter.client_id {
        c.add("client_id = ?", [Value::Text(client.clone())]);
    }
    if let Some(status) = &filter.status {
        c.add("status = ?", [Value::Text(status.clone())]);
    }
    if let Some(like) = query.like() {
        c.add(
            "(host LIKE ? ESCAPE '\\' OR folders LIKE ? ESCAPE '\\')",
            [Value::Text(like.clone()), Value::Text(like)],
        );
    }
    Ok(paged(conn, "runs", COLUMNS, &c, &order, query, from_row)?)
}

/// Runs that finished `failed` or `partial` at or after `since` (RFC 3339), newest first, at most `limit`.
pub fn troubled_since(conn: &Connection, since: &str, limit: usize) -> rusqlite::Result<Vec<Run>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM runs WHERE status IN ('failed', 'partial') AND finished_at >= ?1
         ORDER BY finished_position DESC LIMIT ?2"
    ))?
    .query_map(params![since, limit as i64], from_row)?
    .collect()
}

/// The size and CRC-32 of a content this client stored, if it ever did (whether the content is still kept is
/// the caller's to check).
pub fn client_content(conn: &Connection, client_id: &str, sha256: &str) -> rusqlite::Result<Option<(u64, u32)>> {
    conn.prepare_cached("SELECT size, crc32 FROM client_contents WHERE client_id = ?1 AND sha256 = ?2")?
        .query_row([client_id, sha256], |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?)))
        .optional()
}
