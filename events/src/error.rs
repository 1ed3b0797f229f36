//! The store's errors: what a caller can branch on.

use std::path::PathBuf;

use crate::envelope::Position;

/// A failure of the store itself (not of a command's rules).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path} is not a cairn database (SQLite says: {detail})")]
    NotADatabase { path: PathBuf, detail: String },
    #[error("{path} was written by a newer cairn (schema version {found}; this cairn knows up to {known}); upgrade cairn to open it")]
    TooNew { path: PathBuf, found: usize, known: usize },
    #[error("failed to migrate {path}: {detail}")]
    Migration { path: PathBuf, detail: String },
    #[error("database error: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("projection failed at position {position}: {detail}")]
    Projection { position: Position, detail: String },
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("the writer has stopped")]
    WriterStopped,
    #[error("the command panicked in the writer; its changes were rolled back")]
    CommandPanicked,
    #[error("commit failed, the whole batch was rolled back: {0}")]
    Commit(String),
    /// The Merkle tree over the log could not be built or read.
    #[error("the Merkle tree: {0}")]
    Tree(String),
    /// The disk holding the database is full: nothing of the batch was written.
    #[error("the disk is full, the whole batch was rolled back: {0}")]
    DiskFull(String),
}

impl StoreError {
    /// Whether the store failed because its disk (or the process's file-size limit) is full: a condition that
    /// passes once space is freed, unlike a broken database.
    pub fn is_disk_full(&self) -> bool {
        match self {
            Self::DiskFull(_) => true,
            Self::Sql(rusqlite::Error::SqliteFailure(e, _)) => e.code == rusqlite::ErrorCode::DiskFull,
            Self::Io(e) => is_disk_full(e),
            _ => false,
        }
    }
}

impl From<crate::merkle::ProofError> for StoreError {
    fn from(e: crate::merkle::ProofError) -> Self {
        match e {
            crate::merkle::ProofError::Sql(e) => Self::Sql(e),
            other => Self::Tree(other.to_string()),
        }
    }
}

/// Whether an I/O error says the disk is full (or the file-size limit is reached).
pub fn is_disk_full(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::FileTooLarge | std::io::ErrorKind::QuotaExceeded
    )
}

/// Why an append wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// The stream is not at the version the command expected: someone else wrote first.
    #[error("stream {stream} is at version {actual}, expected {expected}")]
    Conflict {
        stream: String,
        expected: String,
        actual: i64,
    },
    /// Some but not all of the event ids are already stored: a retry that does not match its first attempt.
    #[error("event {id} is already stored at position {position}, but the rest of the append is not")]
    PartialDuplicate { id: uuid::Uuid, position: Position },
    #[error("an append needs at least one event")]
    Empty,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<rusqlite::Error> for AppendError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Store(StoreError::Sql(e))
    }
}
