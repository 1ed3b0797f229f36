//! What a command gets inside the writer: [`Unit`], whose `append` checks the expected version and is
//! idempotent by event id, and what an append answers ([`Appended`], [`ExpectedVersion`]).

use rusqlite::{Connection, OptionalExtension};

use super::WriterState;
use crate::envelope::{NewEvent, Position};
use crate::error::{AppendError, StoreError};

/// The version a command expects its stream to be at when it appends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpectedVersion {
    /// Append whatever the stream's version.
    Any,
    /// The stream must not exist yet (creating an entity).
    NoStream,
    /// The stream must exist (acting on an entity).
    StreamExists,
    /// The stream must be at exactly this version (optimistic concurrency).
    Exact(i64),
}

impl ExpectedVersion {
    fn admits(self, actual: i64) -> bool {
        match self {
            Self::Any => true,
            Self::NoStream => actual == 0,
            Self::StreamExists => actual > 0,
            Self::Exact(v) => actual == v,
        }
    }

    fn describe(self) -> String {
        match self {
            Self::Any => "any".into(),
            Self::NoStream => "no stream".into(),
            Self::StreamExists => "an existing stream".into(),
            Self::Exact(v) => v.to_string(),
        }
    }
}

/// What an append did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    /// The positions of the events, in order.
    pub positions: Vec<Position>,
    /// The stream's version after the append.
    pub version: i64,
    /// True when every event id was already stored: nothing was written, the stored positions are returned.
    pub duplicate: bool,
}

/// Work run once, after the batch that holds its command committed, on the writer thread and before the next
/// batch begins: nothing else can commit in between. Removing an orphaned blob is one.
pub type AfterCommit = Box<dyn FnOnce(&Connection) + Send>;

/// Work that must be done before the batch of the command that asked commits, and whose failure fails the whole
/// batch (nothing of it is committed): making a renamed file's directory durable is one.
pub type BeforeCommit = Box<dyn FnOnce() -> std::io::Result<()> + Send>;

/// The most stream versions the writer remembers before it starts again from empty.
pub(super) const VERSION_CACHE: usize = 65_536;

/// What a command sees inside the writer: the connection (to read the read tables and the log) and `append`.
pub struct Unit<'w> {
    pub(super) state: &'w mut WriterState,
    pub(super) after_commit: Vec<AfterCommit>,
    pub(super) before_commit: Vec<BeforeCommit>,
    /// Set when an append failed halfway: the command's writes are then undone whatever it returns.
    pub(super) poisoned: bool,
    /// Set once the command began writing: undoing it then needs a rollback, otherwise nothing.
    pub(super) wrote: bool,
}

impl Unit<'_> {
    /// The writer's connection, inside the batch's transaction: it sees every earlier command of the batch.
    pub fn conn(&self) -> &Connection {
        &self.state.conn
    }

    /// The version of a stream (0 when it does not exist).
    pub fn stream_version(&self, stream: &str) -> Result<i64, StoreError> {
        if let Some(v) = self.state.versions.get(stream) {
            return Ok(*v);
        }
        Ok(self
            .state
            .conn
            .prepare_cached("SELECT coalesce(max(version), 0) FROM events WHERE stream = ?1")?
            .query_row([stream], |r| r.get(0))?)
    }

    /// Runs `f` just before this command's batch commits; its error fails the batch (every command of it refused,
    /// nothing committed).
    pub fn before_commit(&mut self, f: impl FnOnce() -> std::io::Result<()> + Send + 'static) {
        self.before_commit.push(Box::new(f));
    }

    /// Runs `f` after this command's batch commits (not at all if it does not).
    pub fn after_commit(&mut self, f: impl FnOnce(&Connection) + Send + 'static) {
        self.after_commit.push(Box::new(f));
    }

    /// Appends events to one stream and applies every projection to them.
    ///
    /// Idempotent by event id: when every id is already stored, nothing is written and the stored positions are
    /// returned. An error other than a conflict found before writing poisons the unit: its writes are undone
    /// (the transaction rolled back and the batch's earlier events rewritten) whatever the command then returns.
    pub fn append(
        &mut self,
        stream: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<Appended, AppendError> {
        let result = self.try_append(stream, expected, events);
        if let Err(AppendError::Store(_)) = result {
            self.poisoned = true;
        }
        result
    }

    fn try_append(
        &mut self,
        stream: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<Appended, AppendError> {
        if events.is_empty() {
            return Err(AppendError::Empty);
        }
        let actual = self.stream_version(stream)?;
        if !expected.admits(actual) {
            // A retry of an append that already succeeded sees its own write as a conflict: answer it as stored.
            if let Some(stored) = self.already_stored(&events)? {
                return Ok(stored);
            }
            return Err(AppendError::Conflict {
                stream: stream.to_owned(),
                expected: expected.describe(),
                actual,
            });
        }
        let count = events.len() as i64;
        let ids: Vec<uuid::Uuid> = events.iter().map(|e| e.id).collect();
        let mut positions = Vec::with_capacity(events.len());
        for (i, event) in events.into_iter().enumerate() {
            let version = actual + 1 + i as i64;
            let id = event.id;
            match self.insert(stream, version, event) {
                Ok(position) => positions.push(position),
                Err(e) if is_unique_violation(&e, "events.id") => {
                    if i == 0 {
                        if let Some(stored) = self.already_stored_ids(&ids)? {
                            return Ok(stored);
                        }
                    }
                    let position = self.position_of(id)?.unwrap_or_default();
                    self.poisoned = true;
                    return Err(AppendError::PartialDuplicate { id, position });
                }
                Err(e) if is_unique_violation(&e, "events.stream") => {
                    self.poisoned = true;
                    return Err(AppendError::Conflict {
                        stream: stream.to_owned(),
                        expected: expected.describe(),
                        actual: version,
                    });
                }
                Err(e) => return Err(AppendError::Store(e)),
            }
        }
        let version = actual + count;
        let versions = &mut self.state.versions;
        if versions.len() >= VERSION_CACHE {
            versions.clear();
        }
        versions.insert(stream.to_owned(), version);
        Ok(Appended {
            positions,
            version,
            duplicate: false,
        })
    }

    fn position_of(&self, id: uuid::Uuid) -> rusqlite::Result<Option<Position>> {
        self.state
            .conn
            .prepare_cached("SELECT position FROM events WHERE id = ?1")?
            .query_row([id.to_string()], |r| r.get(0))
            .optional()
    }

    /// When every id is stored, the stored positions and the stream's version; `None` when none is.
    fn already_stored(&self, events: &[NewEvent]) -> Result<Option<Appended>, AppendError> {
        let ids: Vec<uuid::Uuid> = events.iter().map(|e| e.id).collect();
        self.already_stored_ids(&ids)
    }

    fn already_stored_ids(&self, ids: &[uuid::Uuid]) -> Result<Option<Appended>, AppendError> {
        let mut positions = Vec::with_capacity(ids.len());
        let mut version = 0;
        for id in ids {
            let found: Option<(Position, i64)> = self
                .state
                .conn
                .prepare_cached("SELECT position, version FROM events WHERE id = ?1")?
                .query_row([id.to_string()], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            match found {
                Some((position, v)) => {
                    positions.push(position);
                    version = v;
                }
                None if positions.is_empty() => return Ok(None),
                None => {
                    return Err(AppendError::PartialDuplicate {
                        id: ids[0],
                        position: positions[0],
                    })
                }
            }
        }
        Ok(Some(Appended {
            positions,
            version,
            duplicate: true,
        }))
    }

    /// Writes one row, chains it, and applies the projections to it.
    fn insert(&mut self, stream: &str, version: i64, event: NewEvent) -> Result<Position, StoreError> {
        self.wrote = true;
        self.state.insert(stream, version, event)
    }
}

fn is_unique_violation(e: &StoreError, column_prefix: &str) -> bool {
    match e {
        StoreError::Sql(rusqlite::Error::SqliteFailure(f, Some(msg))) => {
            f.code == rusqlite::ErrorCode::ConstraintViolation && msg.contains(column_prefix)
        }
        _ => false,
    }
}
