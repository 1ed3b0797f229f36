//! The read tables as the writer sees them: the [`Projector`] it applies to every event it appends.

use rusqlite::Connection;

use crate::catalogue::{DecodeError, DomainEvent};
use crate::envelope::RecordedEvent;

/// Why a projection could not apply an event.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(transparent)]
    Sql(#[from] rusqlite::Error),
    #[error(transparent)]
    Decode(#[from] DecodeError),
}

/// The read tables, as the writer sees them: applied to every event in the transaction that appends it.
pub trait Projector: Send + 'static {
    /// Applies one event. Reads only the event and the read tables (never the clock, disk or network), so that
    /// replay is deterministic. `typed` is the event already decoded, when the appender had it.
    fn apply(
        &mut self,
        conn: &Connection,
        event: &RecordedEvent,
        typed: Option<&DomainEvent>,
    ) -> Result<(), ApplyError>;

    /// Records that the read tables now reflect the log up to `event` (called once per batch, before COMMIT).
    fn checkpoint(&mut self, conn: &Connection, event: &RecordedEvent) -> Result<(), ApplyError>;
}

/// For a log without read tables (the "log only" benchmark).
pub struct NoProjections;

impl Projector for NoProjections {
    fn apply(&mut self, _: &Connection, _: &RecordedEvent, _: Option<&DomainEvent>) -> Result<(), ApplyError> {
        Ok(())
    }
    fn checkpoint(&mut self, _: &Connection, _: &RecordedEvent) -> Result<(), ApplyError> {
        Ok(())
    }
}
