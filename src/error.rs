//! [`CommandError`]: why a command was refused or failed. Each variant has a stable code the HTTP edge
//! sends, and a status class.

use cairn_events::{AppendError, StoreError};
use uuid::Uuid;

use crate::blobs::BlobError;

/// Why a command wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// 400 `VALIDATION_ERROR`: a field is empty, too long, malformed or holds forbidden characters.
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    /// 404 `CLIENT_NOT_FOUND`.
    #[error("client {0} not found")]
    ClientNotFound(Uuid),
    /// 409 `CLIENT_DELETED`: the client existed and was deleted; nothing more can happen to it.
    #[error("client {0} was deleted")]
    ClientDeleted(Uuid),
    /// 409 `CLIENT_NAME_TAKEN`.
    #[error("a client named {0:?} already exists")]
    NameTaken(String),
    /// 409 `CLIENT_NOT_CONNECTED`.
    #[error("client {0} is not connected")]
    ClientNotConnected(Uuid),
    /// 404 `FILE_NOT_FOUND`.
    #[error("file {0} not found")]
    FileNotFound(Uuid),
    /// 404 `TRANSFER_NOT_FOUND`.
    #[error("transfer {0} not found")]
    TransferNotFound(Uuid),
    /// 409 `TRANSFER_FINISHED`: a transfer completes or fails once.
    #[error("transfer {id} is already {status}")]
    TransferFinished {
        id: Uuid,
        status: cairn_projections::TransferStatus,
    },
    /// 404 `RUN_NOT_FOUND`: no such backup run of this client.
    #[error("backup run {0} not found")]
    RunNotFound(Uuid),
    /// 409 `RUN_FINISHED`: a run finishes once, and nothing joins it after.
    #[error("backup run {id} already finished {outcome}")]
    RunFinished { id: Uuid, outcome: String },
    /// 404 `CONTENT_UNKNOWN`: this client never stored the content, or it is no longer kept; upload it.
    #[error("content {0} is not known for this client; upload it")]
    ContentUnknown(String),
    /// 404 `ALERT_TARGET_NOT_FOUND`.
    #[error("alert target {0} not found")]
    AlertTargetNotFound(Uuid),
    /// 404 `ALERT_RULE_NOT_FOUND`.
    #[error("alert rule {0} not found")]
    AlertRuleNotFound(Uuid),
    /// 409 `VERSION_CONFLICT`: the entity changed since the caller read it.
    #[error("{stream} is at version {actual}, expected {expected}")]
    VersionConflict {
        stream: String,
        expected: String,
        actual: i64,
    },
    /// 400 `CHECKSUM_MISMATCH`: the content does not match the checksum the client declared.
    #[error("declared {which} {declared} does not match the content's {actual}")]
    ChecksumMismatch {
        which: &'static str,
        declared: String,
        actual: String,
    },
    /// 413 `PAYLOAD_TOO_LARGE`.
    #[error("the upload is larger than the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    /// 500: the blob store failed (permissions, a broken disk); 507 `INSUFFICIENT_STORAGE` when it is full.
    #[error("blob store: {0}")]
    Blob(#[source] std::io::Error),
    /// 500: the event store failed; 507 `INSUFFICIENT_STORAGE` when its disk is full.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl CommandError {
    /// The stable error code of the HTTP API.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Invalid { .. } => "VALIDATION_ERROR",
            Self::ClientNotFound(_) => "CLIENT_NOT_FOUND",
            Self::ClientDeleted(_) => "CLIENT_DELETED",
            Self::NameTaken(_) => "CLIENT_NAME_TAKEN",
            Self::ClientNotConnected(_) => "CLIENT_NOT_CONNECTED",
            Self::FileNotFound(_) => "FILE_NOT_FOUND",
            Self::TransferNotFound(_) => "TRANSFER_NOT_FOUND",
            Self::TransferFinished { .. } => "TRANSFER_FINISHED",
            Self::RunNotFound(_) => "RUN_NOT_FOUND",
            Self::RunFinished { .. } => "RUN_FINISHED",
            Self::ContentUnknown(_) => "CONTENT_UNKNOWN",
            Self::AlertTargetNotFound(_) => "ALERT_TARGET_NOT_FOUND",
            Self::AlertRuleNotFound(_) => "ALERT_RULE_NOT_FOUND",
            Self::VersionConflict { .. } => "VERSION_CONFLICT",
            Self::ChecksumMismatch { .. } => "CHECKSUM_MISMATCH",
            Self::TooLarge { .. } => "PAYLOAD_TOO_LARGE",
            full if full.is_disk_full() => "INSUFFICIENT_STORAGE",
            Self::Blob(_) | Self::Store(_) => "INTERNAL_ERROR",
        }
    }

    /// Whether the command failed because the disk is full: nothing was written, and writing works again once
    /// space is freed.
    pub fn is_disk_full(&self) -> bool {
        match self {
            Self::Blob(e) => cairn_events::error::is_disk_full(e),
            Self::Store(e) => e.is_disk_full(),
            _ => false,
        }
    }

    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            reason: reason.into(),
        }
    }
}

impl From<AppendError> for CommandError {
    fn from(e: AppendError) -> Self {
        match e {
            AppendError::Conflict {
                stream,
                expected,
                actual,
            } => Self::VersionConflict {
                stream,
                expected,
                actual,
            },
            AppendError::Store(s) => Self::Store(s),
            other => Self::Store(StoreError::Commit(other.to_string())),
        }
    }
}

impl From<rusqlite::Error> for CommandError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Store(StoreError::Sql(e))
    }
}

impl From<BlobError> for CommandError {
    fn from(e: BlobError) -> Self {
        match e {
            BlobError::TooLarge { limit } => Self::TooLarge { limit },
            BlobError::Mismatch {
                which,
                declared,
                actual,
            } => Self::ChecksumMismatch {
                which,
                declared,
                actual,
            },
            BlobError::Io(io) => Self::Blob(io),
        }
    }
}
