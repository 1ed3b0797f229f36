//! Opening the database file: connection settings, migrations, and the refusal of files cairn cannot own.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use rusqlite_migration::{Migrations, SchemaVersion, M};

use crate::error::StoreError;

/// The numbered files of `migrations/`, in order. Never edit a released one; add the next.
const MIGRATIONS: &[M<'static>] = &[
    M::up(include_str!("../../migrations/0001_events.sql")),
    M::up(include_str!("../../migrations/0002_read_tables.sql")),
    M::up(include_str!("../../migrations/0003_client_token_index.sql")),
    M::up(include_str!("../../migrations/0004_storage_totals.sql")),
    M::up(include_str!("../../migrations/0005_backup_health.sql")),
    M::up(include_str!("../../migrations/0006_alerts.sql")),
    M::up(include_str!("../../migrations/0007_retained_content.sql")),
    M::up(include_str!("../../migrations/0008_backup_runs.sql")),
    M::up(include_str!("../../migrations/0009_merkle_tree.sql")),
];

/// The schema version this build writes.
pub fn latest_version() -> usize {
    MIGRATIONS.len()
}

/// How hard a commit tries to survive power loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// `synchronous=FULL`: an acknowledged event survives power loss.
    #[default]
    Full,
    /// `synchronous=NORMAL`: an acknowledged event survives a crash of cairn, not of the machine.
    Normal,
}

impl std::str::FromStr for Durability {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "full" => Ok(Self::Full),
            "normal" => Ok(Self::Normal),
            other => Err(format!("durability is full or normal, not {other:?}")),
        }
    }
}

impl Durability {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Full => "full",
            Self::Normal => "normal",
        }
    }
}

/// Prepared statements kept per connection: more than every statement the writer and projections use.
pub const STATEMENT_CACHE: usize = 256;

/// Connection settings: set on every connection, outside the migrations, because they are not schema.
pub fn configure(conn: &Connection, durability: Durability) -> rusqlite::Result<()> {
    conn.busy_timeout(Duration::from_secs(10))?;
    // The projections use some forty statements; with rusqlite's default of 16 cached, every event re-prepared
    // most of them (42% of replay's time before this line).
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    let sync = match durability {
        Durability::Full => "FULL",
        Durability::Normal => "NORMAL",
    };
    conn.execute_batch(&format!(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = {sync};
         PRAGMA foreign_keys = ON;
         PRAGMA temp_store = MEMORY;
         PRAGMA cache_size = -65536;"
    ))
}

/// Opens (creating if needed) the read-write connection, checks the file is ours, and migrates it. (A log
/// without its Merkle tree, from before migration 9, gets it from `merkle::store::catch_up`, which the writer
/// runs as it starts and `cairn replay` after migrating: SQL cannot hash.)
pub fn open_writable(path: &Path, durability: Durability) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut conn = Connection::open_with_flags(path, flags).map_err(|e| classify(path, e))?;
    configure(&conn, durability).map_err(|e| classify(path, e))?;
    migrate(&mut conn, path)?;
    Ok(conn)
}

/// An empty, migrated database in memory: for building one entity's past state without touching the disk.
pub fn open_memory() -> Result<Connection, StoreError> {
    let mut conn = Connection::open_in_memory()?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    migrate(&mut conn, Path::new(":memory:"))?;
    Ok(conn)
}

/// Opens a read-only connection to an existing database, refusing foreign or newer files.
pub fn open_read_only(path: &Path) -> Result<Connection, StoreError> {
    if !path.exists() {
        return Err(StoreError::NotADatabase {
            path: path.to_owned(),
            detail: "no such file".into(),
        });
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(|e| classify(path, e))?;
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    let version = schema_version(&conn).map_err(|e| classify(path, e))?;
    check_not_newer(path, version)?;
    if version == 0 || !has_events_table(&conn)? {
        return Err(StoreError::NotADatabase {
            path: path.to_owned(),
            detail: "it has no cairn schema".into(),
        });
    }
    Ok(conn)
}

/// Whether the database at `path` was written by an older cairn and needs migrating before its read tables can
/// be compared with a rebuild (which always has the latest schema).
pub fn needs_migration(path: &Path) -> Result<bool, StoreError> {
    let conn = open_read_only(path)?;
    Ok(schema_version(&conn).map_err(|e| classify(path, e))? < latest_version())
}

fn schema_version(conn: &Connection) -> rusqlite::Result<usize> {
    let v: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    Ok(usize::try_from(v).unwrap_or(0))
}

fn has_events_table(conn: &Connection) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'events')",
        [],
        |r| r.get(0),
    )
}

fn check_not_newer(path: &Path, found: usize) -> Result<(), StoreError> {
    if found > latest_version() {
        return Err(StoreError::TooNew {
            path: path.to_owned(),
            found,
            known: latest_version(),
        });
    }
    Ok(())
}

/// SQLite reports a foreign file on the first read, as `SQLITE_NOTADB`; name it for what it is.
fn classify(path: &Path, e: rusqlite::Error) -> StoreError {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::NotADatabase) | Some(rusqlite::ErrorCode::DatabaseCorrupt) => {
            StoreError::NotADatabase {
                path: path.to_owned(),
                detail: e.to_string(),
            }
        }
        _ => StoreError::Sql(e),
    }
}

fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let found = schema_version(conn).map_err(|e| classify(path, e))?;
    check_not_newer(path, found)?;
    if found == 0 {
        // A file with tables but no schema version is someone else's database: do not write into it.
        let tables: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))
            .map_err(|e| classify(path, e))?;
        if tables > 0 {
            return Err(StoreError::NotADatabase {
                path: path.to_owned(),
                detail: format!("it holds {tables} schema objects but no cairn schema version"),
            });
        }
    }
    if found == latest_version() {
        return Ok(());
    }
    if found > 0 && has_events_table(conn)? {
        let events: i64 = conn.query_row("SELECT count(*) FROM events", [], |r| r.get(0))?;
        if events > 0 {
            let copy = backup_path(path, found);
            backup_to(conn, &copy)?;
            tracing::info!(from = found, to = latest_version(), backup = %copy.display(), "migrating a database that holds events");
        }
    }
    let migrations = Migrations::from_slice(MIGRATIONS);
    migrations.to_latest(conn).map_err(|e| StoreError::Migration {
        path: path.to_owned(),
        detail: e.to_string(),
    })?;
    match migrations.current_version(conn) {
        Ok(SchemaVersion::Inside(_)) => Ok(()),
        other => Err(StoreError::Migration {
            path: path.to_owned(),
            detail: format!("unexpected schema version after migrating: {other:?}"),
        }),
    }
}

/// Where the copy taken before a migration goes.
pub fn backup_path(path: &Path, from: usize) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(format!(".pre-migration-v{from}-to-v{}", latest_version()));
    path.with_file_name(name)
}

/// A consistent copy of the database through SQLite's online backup, page batch by page batch, so that a
/// writer on another connection is not held up. Returns the size of the copy in bytes.
pub fn backup_to(conn: &Connection, dest: &Path) -> Result<u64, StoreError> {
    // A copy holds what the database does (the clients' token hashes among it): readable by its owner only,
    // from before its first byte.
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(dest)?;
    }
    let mut target = Connection::open(dest)?;
    {
        let backup = rusqlite::backup::Backup::new(conn, &mut target)?;
        backup.run_to_completion(256, Duration::from_millis(5), None)?;
    }
    drop(target);
    Ok(std::fs::metadata(dest)?.len())
}
