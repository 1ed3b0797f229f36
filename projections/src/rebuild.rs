//! Replaying the log into a fresh database: every read table and the Merkle tree rebuilt from position 1, the
//! chain verified as the events are read.

use std::ops::ControlFlow;

use cairn_events::merkle::{self, Frontier};
use cairn_events::reader;
use cairn_events::{ApplyError, ChainError, ChainVerifier, Position};
use rusqlite::{params, Connection};

use crate::{checkpoints, Projections};

/// Events per transaction on the target: large enough to amortise the commit, small enough to bound memory.
const CHUNK: i64 = 100_000;

/// What a rebuild did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RebuildReport {
    pub events: i64,
    /// The last position applied.
    pub head: Position,
    pub head_hash: [u8; 32],
}

#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    /// The log does not verify: nothing rebuilt from it should be trusted.
    #[error("the log does not verify: {0}")]
    Chain(#[from] ChainError),
    #[error("applying position {position} failed: {source}")]
    Apply {
        position: Position,
        #[source]
        source: ApplyError,
    },
    #[error("database error: {0}")]
    Sql(#[from] rusqlite::Error),
}

/// How much to rebuild.
#[derive(Debug, Clone, Copy, Default)]
pub struct RebuildOptions {
    /// Stop after this position (the state as it was then); the whole log when `None`.
    pub until: Option<Position>,
    /// Also copy the events into the target, so that it is a complete cairn database of its own.
    pub copy_events: bool,
}

/// Inserts an event row as it was recorded elsewhere (a copy of a log: `--until --into`, a hub's replica of a
/// site), its position, times and hashes unchanged.
pub fn insert_event(target: &Connection, event: &cairn_events::RecordedEvent) -> rusqlite::Result<()> {
    target
        .prepare_cached(
            "INSERT INTO events (position, id, stream, version, type, schema, data, metadata, recorded_at, crc, hash)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        )?
        .execute(params![
            event.position,
            event.id.to_string(),
            event.stream,
            event.version,
            event.event_type,
            event.schema,
            event.data,
            event.metadata,
            event.recorded_at,
            event.crc,
            hex::encode(event.hash),
        ])
        .map(drop)
}

/// Readies a fresh scratch database for [`rebuild`]: no journal and no syncing, since a crash or an error only
/// loses the scratch file, which is then removed. Call before any other connection opens or attaches it.
pub fn prepare_target(target: &Connection) -> rusqlite::Result<()> {
    target.execute_batch("PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;")
}

/// Makes a rebuilt database an ordinary cairn database again (WAL, full sync), for one that is kept.
pub fn finish_target(target: &Connection) -> rusqlite::Result<()> {
    target.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;")
}

/// Reads `source`'s log in order, verifying every CRC and the chain, and applies every projection to `target`
/// (a freshly migrated database with empty read tables, readied by [`prepare_target`]). `progress` gets the count every 100,000 events.
pub fn rebuild(
    source: &Connection,
    target: &Connection,
    options: RebuildOptions,
    mut progress: impl FnMut(i64),
) -> Result<RebuildReport, RebuildError> {
    let mut verifier = ChainVerifier::new();
    let mut failure: Option<RebuildError> = None;
    let mut last: Option<(Position, String)> = None;
    let mut expected: Position = 1;
    let mut tree = Frontier::default();
    target.execute_batch("BEGIN")?;
    reader::scan(source, 0, options.until, |row| {
        let position = expected;
        expected += 1;
        let step = || -> Result<(), RebuildError> {
            let event = row.map_err(|e| ChainError::Unreadable {
                position,
                detail: e.to_string(),
            })?;
            verifier.check(&event)?;
            if options.copy_events {
                insert_event(target, &event)?;
            }
            merkle::store::append(target, &mut tree, &event.hash)?;
            Projections::apply_event(target, &event, None).map_err(|source| RebuildError::Apply {
                position: event.position,
                source,
            })?;
            if event.position % CHUNK == 0 {
                target.execute_batch("COMMIT; BEGIN")?;
            }
            if event.position % 100_000 == 0 {
                progress(event.position);
            }
            last = Some((event.position, event.recorded_at));
            Ok(())
        };
        match step() {
            Ok(()) => ControlFlow::Continue(()),
            Err(e) => {
                failure = Some(e);
                ControlFlow::Break(())
            }
        }
    })?;
    if let Some(e) = failure {
        target.execute_batch("ROLLBACK")?;
        return Err(e);
    }
    if let Some((position, at)) = &last {
        checkpoints::record_all(target, *position, at)?;
    }
    target.execute_batch("COMMIT")?;
    Ok(RebuildReport {
        events: verifier.checked(),
        head: last.map(|(p, _)| p).unwrap_or(0),
        head_hash: verifier.head_hash(),
    })
}
