//! The `files` read table: what each client stored, its checksums and whether it verified.

use cairn_events::{ApplyError, DomainEvent, RecordedEvent};
use rusqlite::types::Value;
use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;

use crate::query::{paged, Conditions, ListQuery, Page};

/// A row of `files`, with the old server's field names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct File {
    pub id: String,
    pub filename: String,
    pub original_path: String,
    pub size: i64,
    pub client_id: String,
    pub client_name: String,
    pub uploaded_at: String,
    pub verified: bool,
    pub verified_at: Option<String>,
    /// Hex SHA-256 of the content.
    pub checksum: String,
    pub crc32: u32,
    pub mime_type: String,
    pub downloads: i64,
    pub version: i64,
    /// Its modification time on the client (RFC 3339), when the client said.
    pub mtime: Option<String>,
    /// Its `st_mode` on the client (type and permission bits), when the client said.
    pub mode: Option<u32>,
    /// The backup run that stored it, if any.
    pub run_id: Option<String>,
}

const COLUMNS: &str = "id, filename, original_path, size, client_id, client_name, uploaded_at, verified, verified_at, \
                       checksum, crc32, mime_type, downloads, version, mtime, mode, run_id";

fn from_row(r: &Row<'_>) -> rusqlite::Result<File> {
    Ok(File {
        id: r.get(0)?,
        filename: r.get(1)?,
        original_path: r.get(2)?,
        size: r.get(3)?,
        client_id: r.get(4)?,
        client_name: r.get(5)?,
        uploaded_at: r.get(6)?,
        verified: r.get(7)?,
        verified_at: r.get(8)?,
        checksum: r.get(9)?,
        crc32: r.get(10)?,
        mime_type: r.get(11)?,
        downloads: r.get(12)?,
        version: r.get(13)?,
        mtime: r.get(14)?,
        mode: r.get(15)?,
        run_id: r.get(16)?,
    })
}

pub fn apply(conn: &Connection, e: &RecordedEvent, event: &DomainEvent) -> Result<(), ApplyError> {
    match event {
        DomainEvent::FileStored(f) => {
            conn.prepare_cached(
                "INSERT INTO files (id, filename, original_path, size, client_id, client_name, uploaded_at,
                                    checksum, crc32, mime_type, version, mtime, mode, run_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
            )?
            .execute(params![
                f.file_id.to_string(),
                f.filename,
                f.original_path,
                f.size as i64,
                f.client_id.to_string(),
                f.client_name,
                e.recorded_at,
                f.sha256,
                f.crc32,
                f.mime_type,
                e.version,
                f.mtime,
                f.mode,
                f.run_id.map(|r| r.to_string())
            ])?;
        }
        DomainEvent::FileVerified(v) => {
            conn.prepare_cached("UPDATE files SET verified = ?2, verified_at = ?3, version = ?4 WHERE id = ?1")?
                .execute(params![v.file_id.to_string(), v.ok, e.recorded_at, e.version])?;
        }
        DomainEvent::FileDownloaded(d) => {
            conn.prepare_cached("UPDATE files SET downloads = downloads + 1, version = ?2 WHERE id = ?1")?
                .execute(params![d.file_id.to_string(), e.version])?;
        }
        DomainEvent::FileDeleted(d) => {
            conn.prepare_cached("DELETE FROM files WHERE id = ?1")?
                .execute([d.file_id.to_string()])?;
        }
        DomainEvent::ClientUpdated(c) => {
            if let Some(name) = &c.name {
                conn.prepare_cached("UPDATE files SET client_name = ?2 WHERE client_id = ?1")?
                    .execute(params![c.client_id.to_string(), name])?;
            }
        }
        _ => {}
    }
    Ok(())
}

pub fn get(conn: &Connection, id: &str) -> rusqlite::Result<Option<File>> {
    conn.prepare_cached(&format!("SELECT {COLUMNS} FROM files WHERE id = ?1"))?
        .query_row([id], from_row)
        .optional()
}

/// Every file of a client, oldest first.
pub fn of_client(conn: &Connection, client_id: &str) -> rusqlite::Result<Vec<File>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM files WHERE client_id = ?1 ORDER BY uploaded_at, id"
    ))?
    .query_map([client_id], from_row)?
    .collect()
}

/// How many files hold this content: a blob is removed only when none does.
pub fn references(conn: &Connection, sha256: &str) -> rusqlite::Result<i64> {
    conn.prepare_cached("SELECT count(*) FROM files WHERE checksum = ?1")?
        .query_row([sha256], |r| r.get(0))
}

/// Filters of the files list, besides paging.
#[derive(Debug, Clone, Default)]
pub struct FileFilter {
    pub client_id: Option<String>,
    pub verified: Option<bool>,
    /// Only the files a backup run stored.
    pub run_id: Option<String>,
}

pub const SORTABLE: &[&str] = &[
    "filename",
    "size",
    "uploaded_at",
    "client_name",
    "verified",
    "mime_type",
    "downloads",
];

pub fn list(conn: &Connection, query: &ListQuery, filter: &FileFilter) -> Result<Page<File>, crate::Error> {
    let order = query.order_by(SORTABLE, "uploaded_at DESC, rowid DESC")?;
    let mut c = Conditions::default();
    if let Some(client) = &filter.client_id {
        c.add("client_id = ?", [Value::Text(client.clone())]);
    }
    if let Some(v) = filter.verified {
        c.add("verified = ?", [Value::Integer(i64::from(v))]);
    }
    if let Some(run) = &filter.run_id {
        c.add("run_id = ?", [Value::Text(run.clone())]);
    }
    if let Some(like) = query.like() {
        c.add(
            "(filename LIKE ? ESCAPE '\\' OR original_path LIKE ? ESCAPE '\\' OR client_name LIKE ? ESCAPE '\\')",
            [Value::Text(like.clone()), Value::Text(like.clone()), Value::Text(like)],
        );
    }
    Ok(paged(conn, "files", COLUMNS, &c, &order, query, from_row)?)
}

/// Files and bytes as stored per file, and bytes actually on disk after deduplication.
pub fn totals(conn: &Connection) -> rusqlite::Result<(i64, i64, i64)> {
    conn.query_row(
        "SELECT count(*), coalesce(sum(size), 0),
                (SELECT coalesce(sum(size), 0) FROM (SELECT max(size) AS size FROM files GROUP BY checksum))
         FROM files",
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
}
