//! Rebuilding the read tables from the log.
//!
//! Every mode reads the live log inside one read transaction, so it sees one consistent snapshot even while a
//! server appends, and rebuilds into a scratch database beside it, verifying every CRC and the chain as it reads:
//!
//! - [`Mode::Swap`] replaces the live read tables with the rebuilt ones in one transaction (it needs the data
//!   directory's lock: stop the server first);
//! - [`Mode::Verify`] compares the rebuilt tables with the live ones and reports each difference, changing nothing;
//! - [`Mode::Until`] builds a complete database (events and read tables) as it was at a position or a time into
//!   a new file, leaving the live database alone.

use std::path::{Path, PathBuf};
use std::time::Instant;

use cairn_events::{reader, schema, Durability, Position, StoreError};
use cairn_projections::diff::{self, Difference};
use cairn_projections::rebuild::{self, RebuildError, RebuildOptions};
use cairn_projections::rebuilt_tables;

use crate::datadir::{self, DataDir, DataDirError};

/// A moment of the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Until {
    Position(Position),
    /// RFC 3339; the last event recorded at or before it.
    Time(String),
}

impl std::str::FromStr for Until {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.parse::<i64>() {
            Ok(p) if p >= 0 => Ok(Self::Position(p)),
            Ok(p) => Err(format!("a position is 0 or more, not {p}")),
            Err(_) => cairn_events::normalize_time(s).map(Self::Time),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    Swap,
    Verify,
    Until { until: Until, into: PathBuf },
}

/// The most differences `--verify` lists.
pub const MAX_DIFFERENCES: usize = 1000;

#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub events: i64,
    pub head: Position,
    pub seconds: f64,
    /// With [`Mode::Verify`]: each row that differs.
    pub differences: Vec<Difference>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    DataDir(#[from] DataDirError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Rebuild(#[from] RebuildError),
    #[error("{0} already exists; --into writes a new file")]
    IntoExists(PathBuf),
    #[error("database error: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

/// The position a moment names: the position itself (at most the head), or the last event recorded at or
/// before the time (0 when there is none).
pub fn resolve(conn: &rusqlite::Connection, until: &Until) -> rusqlite::Result<Position> {
    Ok(match until {
        Until::Position(p) => (*p).min(reader::head(conn)?),
        Until::Time(t) => reader::position_at_time(conn, t)?,
    })
}

/// Runs a replay over the data directory `root`. `progress` gets the events rebuilt so far.
pub fn replay(root: &Path, mode: &Mode, progress: impl FnMut(i64)) -> Result<Report, ReplayError> {
    let started = Instant::now();
    let db = datadir::db_path(root);
    // Swapping writes the live tables: hold the lock so no server is writing meanwhile.
    let mut lock = match mode {
        Mode::Swap => Some(DataDir::open(root)?),
        _ => None,
    };
    // A database an older cairn left is migrated first (a copy beside it, as a server's start would), or its
    // tables could not be compared with a rebuild, which has the latest schema. That writes: it needs the lock.
    if schema::needs_migration(&db)? {
        if lock.is_none() {
            lock = Some(DataDir::open(root)?);
        }
        let conn = schema::open_writable(&db, Durability::Full)?;
        // Migration 9's tree is built from the log (SQL cannot hash), as the writer would as it starts.
        cairn_events::merkle::store::catch_up(&conn, reader::head(&conn)?).map_err(StoreError::from)?;
        drop(conn);
    }
    let _lock = lock;
    let live = schema::open_read_only(&db)?;
    let (scratch, copy_events, until) = match mode {
        Mode::Until { into, until } => {
            if into.exists() {
                return Err(ReplayError::IntoExists(into.clone()));
            }
            (into.clone(), true, Some(until.clone()))
        }
        _ => (scratch_path(&db), false, None),
    };
    remove_db_files(&scratch)?;
    let result = rebuild_and_finish(&live, &db, &scratch, mode, copy_events, until, progress);
    if !matches!(mode, Mode::Until { .. }) || result.is_err() {
        remove_db_files(&scratch)?;
    }
    let mut report = result?;
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

fn rebuild_and_finish(
    live: &rusqlite::Connection,
    db: &Path,
    scratch: &Path,
    mode: &Mode,
    copy_events: bool,
    until: Option<Until>,
    progress: impl FnMut(i64),
) -> Result<Report, ReplayError> {
    let target = schema::open_writable(scratch, Durability::Normal)?;
    rebuild::prepare_target(&target)?;
    live.execute("ATTACH DATABASE ?1 AS rebuilt", [scratch.to_string_lossy()])?;
    // One read transaction: the head, the rebuild's reads and the comparison all see one snapshot.
    live.execute_batch("BEGIN")?;
    let head = match &until {
        None => reader::head(live)?,
        Some(until) => resolve(live, until)?,
    };
    let built = rebuild::rebuild(
        live,
        &target,
        RebuildOptions {
            until: Some(head),
            copy_events,
        },
        progress,
    )?;
    let differences = match mode {
        Mode::Verify => diff::compare(live, "main", "rebuilt", MAX_DIFFERENCES)?,
        _ => Vec::new(),
    };
    live.execute_batch("COMMIT")?;
    live.execute_batch("DETACH DATABASE rebuilt")?;
    if let Mode::Until { .. } = mode {
        rebuild::finish_target(&target)?;
    }
    drop(target);
    if *mode == Mode::Swap {
        swap_in(db, scratch, built.head)?;
    }
    Ok(Report {
        events: built.events,
        head: built.head,
        seconds: 0.0,
        differences,
    })
}

/// Replaces every read table of the live database with the rebuilt one, in one transaction.
fn swap_in(db: &Path, scratch: &Path, rebuilt_head: Position) -> Result<(), ReplayError> {
    let conn = schema::open_writable(db, Durability::Full)?;
    conn.execute("ATTACH DATABASE ?1 AS rebuilt", [scratch.to_string_lossy()])?;
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let head = reader::head(&conn)?;
    if head != rebuilt_head {
        conn.execute_batch("ROLLBACK")?;
        return Err(ReplayError::Store(StoreError::Commit(format!(
            "the log moved from {rebuilt_head} to {head} during the replay; nothing was swapped"
        ))));
    }
    for table in rebuilt_tables() {
        conn.execute_batch(&format!(
            "DELETE FROM main.{table}; INSERT INTO main.{table} SELECT * FROM rebuilt.{table};"
        ))?;
    }
    conn.execute_batch("COMMIT; DETACH DATABASE rebuilt;")?;
    Ok(())
}

fn scratch_path(db: &Path) -> PathBuf {
    let mut name = db.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".replay");
    db.with_file_name(name)
}

/// Removes a database file with its WAL and shared-memory files.
fn remove_db_files(path: &Path) -> std::io::Result<()> {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        match std::fs::remove_file(PathBuf::from(p)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
