//! The `clients` read table: who is registered, their status, and what they store.

use cairn_events::{ApplyError, DomainEvent, RecordedEvent};
use rusqlite::types::Value;
use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;

use crate::query::{paged, Conditions, ListQuery, Page};
pub use crate::status::ClientStatus;

/// A row of `clients`, with the old server's field names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Client {
    pub id: String,
    pub client_id: String,
    pub name: String,
    pub status: ClientStatus,
    pub last_seen: Option<String>,
    pub files_count: i64,
    pub total_size: i64,
    pub ip_address: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    #[serde(skip)]
    pub token_hash: String,
    pub version: i64,
    /// When its last backup completed: the time its last backup run finished `ok` once it runs the agent, and
    /// until then the time its last file was stored.
    pub last_backup_at: Option<String>,
    /// How often a backup is expected, in seconds (24 h until set).
    pub backup_interval_seconds: i64,
    /// When its overdue backup was due, while it is overdue (the backup monitor records it).
    pub backup_overdue_since: Option<String>,
    /// When its last backup run finished `ok`, if it ever ran the agent.
    pub last_run_at: Option<String>,
}

const COLUMNS: &str = "id, client_id, name, status, last_seen, files_count, total_size, ip_address, created_at, \
     updated_at, token_hash, version, last_backup_at, backup_interval_seconds, backup_overdue_since, last_run_at";

fn from_row(r: &Row<'_>) -> rusqlite::Result<Client> {
    Ok(Client {
        id: r.get(0)?,
        client_id: r.get(1)?,
        name: r.get(2)?,
        status: r.get(3)?,
        last_seen: r.get(4)?,
        files_count: r.get(5)?,
        total_size: r.get(6)?,
        ip_address: r.get(7)?,
        created_at: r.get(8)?,
        updated_at: r.get(9)?,
        token_hash: r.get(10)?,
        version: r.get(11)?,
        last_backup_at: r.get(12)?,
        backup_interval_seconds: r.get(13)?,
        backup_overdue_since: r.get(14)?,
        last_run_at: r.get(15)?,
    })
}

pub fn apply(conn: &Connection, e: &RecordedEvent, event: &DomainEvent) -> Result<(), ApplyError> {
    let at = &e.recorded_at;
    match event {
        DomainEvent::ClientRegistered(c) => {
            conn.prepare_cached(
                "INSERT INTO clients (id, client_id, name, status, ip_address, created_at, updated_at, token_hash, version)
                 VALUES (?1, ?2, ?3, ?8, ?4, ?5, ?5, ?6, ?7)",
            )?
            .execute(params![
                c.client_id.to_string(),
                c.external_id,
                c.name,
                c.ip_address,
                at,
                c.token_hash,
                e.version,
                ClientStatus::Registered
            ])?;
        }
        DomainEvent::ClientUpdated(c) => {
            conn.prepare_cached(
                "UPDATE clients SET name = coalesce(?2, name), ip_address = coalesce(?3, ip_address),
                 backup_interval_seconds = coalesce(?6, backup_interval_seconds), updated_at = ?4, version = ?5
                 WHERE id = ?1",
            )?
            .execute(params![
                c.client_id.to_string(),
                c.name,
                c.ip_address,
                at,
                e.version,
                c.backup_interval_seconds.map(|s| s as i64)
            ])?;
        }
        DomainEvent::ClientConnected(c) => {
            conn.prepare_cached(
                "UPDATE clients SET status = ?5, last_seen = ?2, ip_address = coalesce(?3, ip_address),
                 updated_at = ?2, version = ?4 WHERE id = ?1",
            )?
            .execute(params![
                c.client_id.to_string(),
                at,
                c.ip_address,
                e.version,
                ClientStatus::Connected
            ])?;
        }
        DomainEvent::ClientDisconnected(c) => {
            conn.prepare_cached(
                "UPDATE clients SET status = ?4, last_seen = coalesce(?5, ?2), updated_at = ?2, version = ?3
                 WHERE id = ?1",
            )?
            .execute(params![
                c.client_id.to_string(),
                at,
                e.version,
                ClientStatus::Offline,
                c.last_seen
            ])?;
        }
        DomainEvent::ClientTokenRotated(c) => {
            conn.prepare_cached("UPDATE clients SET token_hash = ?2, updated_at = ?3, version = ?4 WHERE id = ?1")?
                .execute(params![c.client_id.to_string(), c.token_hash, at, e.version])?;
        }
        DomainEvent::ClientBackupOverdue(c) => {
            conn.prepare_cached(
                "UPDATE clients SET backup_overdue_since = ?2, updated_at = ?3, version = ?4 WHERE id = ?1",
            )?
            .execute(params![c.client_id.to_string(), c.due_at, at, e.version])?;
        }
        DomainEvent::ClientDeleted(c) => {
            conn.prepare_cached("DELETE FROM clients WHERE id = ?1")?
                .execute([c.client_id.to_string()])?;
        }
        // A file stored outside a run is a backup of a client that never ran the agent; once it does, only a
        // run that finishes ok is.
        DomainEvent::FileStored(f) => {
            conn.prepare_cached(
                "UPDATE clients SET files_count = files_count + 1, total_size = total_size + ?2,
                 last_backup_at = CASE WHEN ?4 AND last_run_at IS NULL THEN ?3 ELSE last_backup_at END,
                 backup_overdue_since = CASE WHEN ?4 AND last_run_at IS NULL THEN NULL ELSE backup_overdue_since END
                 WHERE id = ?1",
            )?
            .execute(params![f.client_id.to_string(), f.size as i64, at, f.run_id.is_none()])?;
        }
        DomainEvent::BackupRunFinished(r) if r.outcome == "ok" => {
            conn.prepare_cached(
                "UPDATE clients SET last_backup_at = ?2, last_run_at = ?2, backup_overdue_since = NULL WHERE id = ?1",
            )?
            .execute(params![r.client_id.to_string(), at])?;
        }
        DomainEvent::FileDeleted(f) => {
            conn.prepare_cached(
                "UPDATE clients SET files_count = files_count - 1, total_size = total_size - ?2 WHERE id = ?1",
            )?
            .execute(params![f.client_id.to_string(), f.size as i64])?;
        }
        _ => {}
    }
    Ok(())
}

pub fn get(conn: &Connection, id: &str) -> rusqlite::Result<Option<Client>> {
    conn.prepare_cached(&format!("SELECT {COLUMNS} FROM clients WHERE id = ?1"))?
        .query_row([id], from_row)
        .optional()
}

/// Names are unique without regard to case.
pub fn by_name(conn: &Connection, name: &str) -> rusqlite::Result<Option<Client>> {
    conn.prepare_cached(&format!("SELECT {COLUMNS} FROM clients WHERE name = ?1 COLLATE NOCASE"))?
        .query_row([name], from_row)
        .optional()
}

/// Filters of the clients list, besides paging.
#[derive(Debug, Clone, Default)]
pub struct ClientFilter {
    pub status: Option<ClientStatus>,
    /// Only the clients whose backup is overdue (`true`) or not (`false`).
    pub overdue: Option<bool>,
}

pub const SORTABLE: &[&str] = &[
    "name",
    "status",
    "last_seen",
    "files_count",
    "total_size",
    "created_at",
    "client_id",
    "last_backup_at",
];

pub fn list(conn: &Connection, query: &ListQuery, filter: &ClientFilter) -> Result<Page<Client>, crate::Error> {
    let order = query.order_by(SORTABLE, "created_at ASC, rowid ASC")?;
    let mut c = Conditions::default();
    if let Some(status) = filter.status {
        c.equals("status", status.as_str());
    }
    match filter.overdue {
        Some(true) => c.add("backup_overdue_since IS NOT NULL", Vec::new()),
        Some(false) => c.add("backup_overdue_since IS NULL", Vec::new()),
        None => {}
    }
    if let Some(like) = query.like() {
        c.add(
            "(name LIKE ? ESCAPE '\\' OR client_id LIKE ? ESCAPE '\\' OR ifnull(ip_address, '') LIKE ? ESCAPE '\\')",
            [Value::Text(like.clone()), Value::Text(like.clone()), Value::Text(like)],
        );
    }
    Ok(paged(conn, "clients", COLUMNS, &c, &order, query, from_row)?)
}

/// Counts by status, for `/api/status` and the overview.
pub fn counts(conn: &Connection) -> rusqlite::Result<(i64, i64)> {
    conn.query_row(
        "SELECT count(*), coalesce(sum(status = ?1), 0) FROM clients",
        [ClientStatus::Connected],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
}

/// A client whose backup is not (yet) marked overdue: what the backup monitor needs to tell when it is due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupClock {
    pub id: String,
    pub created_at: String,
    pub last_backup_at: Option<String>,
    pub interval_seconds: i64,
}

/// Every client not marked overdue, with its backup clock.
pub fn backup_clocks(conn: &Connection) -> rusqlite::Result<Vec<BackupClock>> {
    conn.prepare_cached(
        "SELECT id, created_at, last_backup_at, backup_interval_seconds FROM clients
         WHERE backup_overdue_since IS NULL",
    )?
    .query_map([], |r| {
        Ok(BackupClock {
            id: r.get(0)?,
            created_at: r.get(1)?,
            last_backup_at: r.get(2)?,
            interval_seconds: r.get(3)?,
        })
    })?
    .collect()
}

/// The client holding a token, by the token's hash: its id and the stored hash.
pub fn by_token_hash(conn: &Connection, hash: &str) -> rusqlite::Result<Option<(String, String)>> {
    conn.prepare_cached("SELECT id, token_hash FROM clients WHERE token_hash = ?1")?
        .query_row([hash], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
}
