//! The database itself: what it holds and how big it is, its health, a browser over its tables, row edits
//! that become the domain's events (never a write to a table), an online backup, and optimize. Backup and
//! optimize are recorded by commands, appended through the writer like every other change.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use cairn_events::catalogue::{DatabaseBackedUp, DatabaseOptimized};
use cairn_events::{reader, EventFilter, Metadata, Position};
use cairn_projections::{checkpoints, Page};
use rusqlite::Connection;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::console::{value, HIDDEN, TABLES};
use super::presence::Presence;
use super::ServiceError;
use crate::commands::client::UpdateClient;
use crate::commands::file::DeleteFile;
use crate::commands::server::RecordServerEvent;
use crate::Cairn;

/// The WAL size over which health warns.
pub const WAL_WARN: u64 = 256 << 20;

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct TableInfo {
    pub name: &'static str,
    pub rows: i64,
    /// Bytes of its pages (and its indexes'), as `dbstat` counts them.
    pub bytes: Option<i64>,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Info {
    pub path: PathBuf,
    pub size_bytes: u64,
    pub wal_bytes: u64,
    pub page_size: i64,
    pub page_count: i64,
    pub freelist_count: i64,
    pub schema_version: i64,
    pub sqlite_version: &'static str,
    pub journal_mode: String,
    pub tables: Vec<TableInfo>,
    /// The last `DatabaseBackedUp` event, as the audit trail shows it.
    pub last_backup: Option<Value>,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Check {
    pub name: &'static str,
    pub ok: bool,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Health {
    /// Every check passed.
    pub ok: bool,
    pub checks: Vec<Check>,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct TablePage {
    pub table: &'static str,
    pub columns: Vec<String>,
    pub page: Page<Map<String, Value>>,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Backup {
    pub path: PathBuf,
    /// The database's and the blobs' bytes.
    pub bytes: u64,
    pub snapshot: crate::snapshot::Snapshot,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Optimized {
    pub bytes_before: u64,
    pub bytes_after: u64,
}

fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

fn wal_size(db: &Path) -> u64 {
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    file_size(Path::new(&wal))
}

/// One of the tables the browser shows: only [`table`] makes one, so a name is checked once, where it comes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Table(&'static str);

impl Table {
    pub fn name(self) -> &'static str {
        self.0
    }
}

/// One of the tables the browser shows, by name.
pub fn table(name: &str) -> Result<Table, ServiceError> {
    TABLES.iter().find(|t| **t == name).map(|t| Table(t)).ok_or_else(|| {
        ServiceError::not_found(
            "TABLE_NOT_FOUND",
            format!("no table {name:?}; tables: {}", TABLES.join(", ")),
        )
    })
}

pub async fn info(cairn: &Cairn) -> Result<Info, ServiceError> {
    let db = crate::datadir::db_path(cairn.root());
    super::read(cairn, move |conn| {
        let pragma =
            |p: &str| -> Result<i64, ServiceError> { Ok(conn.query_row(&format!("PRAGMA {p}"), [], |r| r.get(0))?) };
        let sizes: HashMap<String, i64> = conn
            .prepare("SELECT name, sum(pgsize) FROM dbstat GROUP BY name")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        let mut tables = Vec::new();
        for name in TABLES.iter().copied() {
            let rows: i64 = conn.query_row(&format!("SELECT count(*) FROM {name}"), [], |r| r.get(0))?;
            tables.push(TableInfo {
                name,
                rows,
                bytes: sizes.get(name).copied(),
            });
        }
        let backups = EventFilter {
            event_type: Some("DatabaseBackedUp".into()),
            ..Default::default()
        };
        let last_backup = reader::query(conn, &backups)?;
        Ok(Info {
            size_bytes: file_size(&db),
            wal_bytes: wal_size(&db),
            path: db,
            page_size: pragma("page_size")?,
            page_count: pragma("page_count")?,
            freelist_count: pragma("freelist_count")?,
            schema_version: pragma("user_version")?,
            sqlite_version: rusqlite::version(),
            journal_mode: conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))?,
            tables,
            last_backup: last_backup.events.last().map(cairn_events::RecordedEvent::to_json),
        })
    })
    .await
}

/// integrity_check, foreign_key_check, the chain, projection checkpoints against the head, the WAL's size; and
/// the publication to NATS, when the site publishes.
pub async fn health(
    cairn: &Cairn,
    publication: Option<super::publish::PublicationStatus>,
) -> Result<Health, ServiceError> {
    let db = crate::datadir::db_path(cairn.root());
    let head = cairn.store().head();
    super::read(cairn, move |conn| {
        let mut checks = Vec::new();
        let integrity: Vec<String> = conn
            .prepare("PRAGMA integrity_check")?
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        checks.push(Check {
            name: "integrity_check",
            ok: integrity == ["ok"],
            detail: integrity.join("; "),
        });
        let fk: i64 = conn.query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| r.get(0))?;
        checks.push(Check {
            name: "foreign_key_check",
            ok: fk == 0,
            detail: format!("{fk} violations"),
        });
        let chain = reader::verify_chain(conn, |_| {})?;
        checks.push(Check {
            name: "chain",
            ok: chain.first_bad.is_none(),
            detail: chain
                .first_bad
                .as_ref()
                .map_or_else(|| format!("{} events verified", chain.checked), ToString::to_string),
        });
        let lowest = checkpoints::lowest(conn)?;
        checks.push(Check {
            name: "projections",
            ok: lowest >= head.min(reader::head(conn)?),
            detail: format!("checkpoint {lowest}, head {head}"),
        });
        let wal_bytes = wal_size(&db);
        checks.push(Check {
            name: "wal_size",
            ok: wal_bytes < WAL_WARN,
            detail: format!(
                "{} (warns at {})",
                super::activity::bytes(&wal_bytes.into()),
                super::activity::bytes(&WAL_WARN.into())
            ),
        });
        if let Some(p) = publication {
            checks.push(Check {
                name: "publication",
                ok: p.connected && p.error.is_none(),
                detail: match p.error {
                    Some(e) => format!("{}: acknowledged {}, lag {}: {e}", p.subject, p.acknowledged, p.lag),
                    None => format!("{}: acknowledged {}, lag {}", p.subject, p.acknowledged, p.lag),
                },
            });
        }
        Ok(Health {
            ok: checks.iter().all(|c| c.ok),
            checks,
        })
    })
    .await
}

/// A page of one table, every column but the hidden ones, sortable by any of them.
pub async fn browse(
    cairn: &Cairn,
    table: Table,
    query: cairn_projections::ListQuery,
) -> Result<TablePage, ServiceError> {
    let table = table.name();
    super::read(cairn, move |conn| {
        let columns: Vec<String> = conn
            .prepare(&format!("SELECT name FROM pragma_table_info('{table}') ORDER BY cid"))?
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<Vec<String>>>()?
            .into_iter()
            .filter(|c| !HIDDEN.contains(&c.as_str()))
            .collect();
        // `stats` is WITHOUT ROWID: ties break on the primary key there (its first column), on rowid elsewhere.
        let without_rowid: bool = conn.query_row(
            "SELECT sql LIKE '%WITHOUT ROWID%' FROM sqlite_schema WHERE type = 'table' AND name = ?1",
            [table],
            |r| r.get(0),
        )?;
        let tiebreak = if without_rowid { columns[0].as_str() } else { "rowid" };
        let order = query.order_by_then(
            &columns.iter().map(String::as_str).collect::<Vec<_>>(),
            &format!("{} ASC", columns[0]),
            tiebreak,
        )?;
        let total: i64 = conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))?;
        // The log's data is shown without its secret fields, as everywhere else.
        let select: Vec<String> = columns
            .iter()
            .map(|c| match (table, c.as_str()) {
                ("events", "data") => format!("{} AS data", super::console::readable_data()),
                _ => c.clone(),
            })
            .collect();
        let mut stmt = conn.prepare(&format!(
            "SELECT {} FROM {table} ORDER BY {order} LIMIT ?1 OFFSET ?2",
            select.join(", ")
        ))?;
        let mut rows = stmt.query(rusqlite::params![i64::from(query.per_page), query.offset()])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let mut obj = Map::new();
            for (i, c) in columns.iter().enumerate() {
                obj.insert(c.clone(), value(row.get_ref(i)?));
            }
            out.push(obj);
        }
        let page = Page::new(out, &query, total);
        Ok(TablePage { table, columns, page })
    })
    .await
}

fn no_event_fits(table: &str, what: &str) -> ServiceError {
    ServiceError::conflict(
        "NO_EVENT_FITS",
        format!("{what} a row of {table} has no event; read tables change only through events"),
    )
}

fn row_id(table: &str, raw: &str) -> Result<Uuid, ServiceError> {
    Uuid::parse_str(raw)
        .map_err(|_| ServiceError::not_found("ROW_NOT_FOUND", format!("no {table} row has the id {raw:?}")))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientRowChange {
    name: Option<String>,
    ip_address: Option<String>,
    backup_interval_seconds: Option<u64>,
}

/// A row edit, as the domain's event: a client's name and address are `ClientUpdated`; nothing else of any
/// table has an event (409), and `events` never changes. Answers the positions recorded.
pub async fn change_row(
    cairn: &Cairn,
    table: Table,
    id: &str,
    change: Map<String, Value>,
    metadata: Metadata,
) -> Result<Vec<Position>, ServiceError> {
    match table.name() {
        "events" => Err(ServiceError::conflict("EVENTS_IMMUTABLE", "events are never changed")),
        "clients" => {
            let id = row_id("clients", id)?;
            let change: ClientRowChange = serde_json::from_value(Value::Object(change)).map_err(|e| {
                ServiceError::conflict(
                    "NO_EVENT_FITS",
                    format!("only name, ip_address and backup_interval_seconds of a client can change ({e})"),
                )
            })?;
            let command = UpdateClient {
                id,
                name: change.name,
                ip_address: change.ip_address,
                backup_interval_seconds: change.backup_interval_seconds,
                expected_version: None,
            };
            Ok(cairn.execute(command, metadata).await?.positions)
        }
        other => Err(no_event_fits(other, "changing")),
    }
}

/// A row deletion, as the domain's event: a client (`ClientDeleted`, its files with it) or a file
/// (`FileDeleted`); nothing else has one (409), and `events` never changes.
pub async fn delete_row(
    cairn: &Cairn,
    presence: &Presence,
    table: Table,
    id: &str,
    retain: bool,
    metadata: Metadata,
) -> Result<Vec<Position>, ServiceError> {
    match table.name() {
        "events" => Err(ServiceError::conflict("EVENTS_IMMUTABLE", "events are never deleted")),
        "clients" => {
            let id = row_id("clients", id)?;
            Ok(presence.delete(cairn, id, None, retain, metadata).await?.positions)
        }
        "files" => {
            let command = DeleteFile {
                file_id: row_id("files", id)?,
                expected_version: None,
                retain,
                run_id: None,
                owner: None,
            };
            Ok(cairn.execute(command, metadata).await?.positions)
        }
        other => Err(no_event_fits(other, "deleting")),
    }
}

/// Writes an online backup into `<data>/backups/` (safe while the server writes), then records it.
pub async fn backup(cairn: &Cairn, metadata: Metadata) -> Result<Backup, ServiceError> {
    let dir = cairn.root().join("backups");
    let name = format!("cairn-{}", chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ"));
    let path = dir.join(name);
    let (root, dest) = (cairn.root().to_owned(), path.clone());
    let snapshot = super::blocking(move || {
        crate::datadir::private_dir(&dir).map_err(ServiceError::internal)?;
        crate::snapshot::take(&root, &dest).map_err(ServiceError::internal)
    })
    .await?;
    let bytes = snapshot.database_bytes + snapshot.blob_bytes;
    let event = DatabaseBackedUp {
        destination: path.display().to_string(),
        bytes,
    };
    cairn.execute(RecordServerEvent(event.into()), metadata).await?;
    Ok(Backup { path, bytes, snapshot })
}

/// `ANALYZE` and `PRAGMA optimize`, run by the writer (which owns the only read-write connection), then
/// recorded as `DatabaseOptimized` by a command in the same transaction.
pub async fn optimize(cairn: &Cairn, metadata: Metadata) -> Result<Optimized, ServiceError> {
    fn bytes(conn: &Connection) -> rusqlite::Result<u64> {
        conn.query_row(
            "SELECT page_count * page_size FROM pragma_page_count, pragma_page_size",
            [],
            |r| r.get::<_, i64>(0),
        )
        .map(|b| b as u64)
    }
    let (optimized, _) = cairn
        .maintain(
            |conn| {
                let optimized = Optimized {
                    bytes_before: bytes(conn)?,
                    bytes_after: {
                        conn.execute_batch("ANALYZE; PRAGMA optimize;")?;
                        bytes(conn)?
                    },
                };
                let event = DatabaseOptimized {
                    bytes_before: optimized.bytes_before,
                    bytes_after: optimized.bytes_after,
                };
                Ok((optimized, RecordServerEvent(event.into())))
            },
            metadata,
        )
        .await?;
    Ok(optimized)
}

/// A snapshot in `<data>/backups/`, as its manifest and its last check say.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct BackupEntry {
    pub name: String,
    pub path: PathBuf,
    pub snapshot: crate::snapshot::Snapshot,
    /// The database's and the blobs' bytes.
    pub bytes: u64,
    /// The last check's outcome (`None`: never checked).
    pub verified: Option<Verified>,
}

/// What `verified.json` beside a snapshot's manifest says.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Verified {
    pub at: String,
    pub ok: bool,
    pub detail: String,
}

/// The snapshots in `<data>/backups/`, newest first.
pub async fn backups(cairn: &Cairn) -> Result<Vec<BackupEntry>, ServiceError> {
    let dir = cairn.root().join("backups");
    super::blocking(move || {
        let mut found = Vec::new();
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return Ok(found);
        };
        for e in entries.flatten() {
            let path = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            let Ok(text) = std::fs::read(path.join(crate::snapshot::MANIFEST)) else {
                continue;
            };
            let Ok(snapshot) = serde_json::from_slice::<crate::snapshot::Snapshot>(&text) else {
                continue;
            };
            let verified = std::fs::read(path.join("verified.json"))
                .ok()
                .and_then(|t| serde_json::from_slice::<Verified>(&t).ok());
            found.push(BackupEntry {
                name,
                bytes: snapshot.database_bytes + snapshot.blob_bytes,
                path,
                snapshot,
                verified,
            });
        }
        found.sort_by(|a, b| b.snapshot.taken_at.cmp(&a.snapshot.taken_at));
        Ok(found)
    })
    .await
}

/// Checks the snapshot `name` of `<data>/backups/`, keeps the outcome beside it and records it.
pub async fn verify_backup(cairn: &Cairn, name: String, metadata: Metadata) -> Result<Verified, ServiceError> {
    let plain = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
        && name != "."
        && name != "..";
    let path = cairn.root().join("backups").join(&name);
    if !plain || !path.join(crate::snapshot::MANIFEST).exists() {
        return Err(ServiceError::not_found(
            "BACKUP_NOT_FOUND",
            format!("no backup is named {name:?}"),
        ));
    }
    let at = path.clone();
    let verified = super::blocking(move || {
        let checked = crate::snapshot::verify(&at).map_err(ServiceError::internal)?;
        let detail = format!(
            "{} events, chain {}, {} blobs checked ({} bad), {} read-table differences",
            checked.events,
            if checked.chain_ok { "intact" } else { "broken" },
            checked.blobs_checked,
            checked.bad_blobs.len(),
            checked.differences.len()
        );
        let verified = Verified {
            at: cairn_events::writer::now_rfc3339(),
            ok: checked.ok(),
            detail,
        };
        let text = serde_json::to_vec_pretty(&verified).map_err(ServiceError::internal)?;
        std::fs::write(at.join("verified.json"), text).map_err(ServiceError::internal)?;
        Ok(verified)
    })
    .await?;
    let event = cairn_events::catalogue::DatabaseBackupVerified {
        destination: path.display().to_string(),
        ok: verified.ok,
        detail: verified.detail.clone(),
    };
    cairn.execute(RecordServerEvent(event.into()), metadata).await?;
    Ok(verified)
}

/// Runs until aborted: every `every`, a snapshot into `<data>/backups/`, then the oldest past the newest `keep`
/// removed (each recorded).
pub async fn scheduled_backups(cairn: Cairn, every: std::time::Duration, keep: usize) {
    loop {
        tokio::time::sleep(every).await;
        if let Err(e) = backup(&cairn, Metadata::system()).await {
            tracing::warn!(error = %e, "the scheduled backup failed");
            continue;
        }
        match backups(&cairn).await {
            Ok(all) => {
                for old in all.into_iter().skip(keep.max(1)) {
                    let path = old.path.clone();
                    let removed =
                        super::blocking(move || std::fs::remove_dir_all(&path).map_err(ServiceError::internal)).await;
                    match removed {
                        Ok(()) => {
                            let event = cairn_events::catalogue::DatabaseBackupRemoved {
                                destination: old.path.display().to_string(),
                                reason: format!("the schedule keeps the newest {keep}"),
                            };
                            if let Err(e) = cairn.execute(RecordServerEvent(event.into()), Metadata::system()).await {
                                tracing::warn!(error = %e, "could not record a removed backup");
                            }
                        }
                        Err(e) => tracing::warn!(error = %e, backup = %old.name, "could not remove an old backup"),
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not list the backups"),
        }
    }
}
