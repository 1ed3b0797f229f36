//! [`ServiceError`]: why a service refused or failed, in the domain's words. The adapters map each variant to
//! their own answer (the HTTP API to a status and the envelope); a service never knows which adapter called it.

use crate::error::CommandError;

/// Why a service answered no.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// A command was refused or failed; its own code and class say which.
    #[error(transparent)]
    Command(#[from] CommandError),
    /// The input cannot be used (HTTP 400), with a stable code: `INVALID_QUERY`, `QUERY_REFUSED`, `INVALID_SQL`, ….
    #[error("{message}")]
    Invalid { code: &'static str, message: String },
    /// No token, or not a valid one (HTTP 401).
    #[error("{0}")]
    Unauthorized(String),
    /// A valid caller that may not do this (HTTP 403).
    #[error("{0}")]
    Forbidden(String),
    /// Nothing has this name (HTTP 404), with a stable code: `CLIENT_NOT_FOUND`, `TABLE_NOT_FOUND`, ….
    #[error("{message}")]
    NotFound { code: &'static str, message: String },
    /// The request conflicts with what is recorded (HTTP 409): `EVENTS_IMMUTABLE`, `NO_EVENT_FITS`, ….
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// The server is at a limit; try again later (HTTP 503): `TOO_MANY_CONNECTIONS`.
    #[error("{message}")]
    Unavailable { code: &'static str, message: String },
    /// The disk or the database failed, or a task panicked (HTTP 500): logged, never shown.
    #[error("{0}")]
    Internal(String),
}

impl ServiceError {
    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid {
            code,
            message: message.into(),
        }
    }

    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::NotFound {
            code,
            message: message.into(),
        }
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::Conflict {
            code,
            message: message.into(),
        }
    }

    pub fn internal(detail: impl std::fmt::Display) -> Self {
        Self::Internal(detail.to_string())
    }
}

impl From<cairn_projections::Error> for ServiceError {
    fn from(e: cairn_projections::Error) -> Self {
        match e {
            cairn_projections::Error::Query(q) => q.into(),
            cairn_projections::Error::Sql(s) => Self::internal(s),
        }
    }
}

impl From<cairn_projections::QueryError> for ServiceError {
    fn from(e: cairn_projections::QueryError) -> Self {
        Self::invalid("INVALID_QUERY", e.to_string())
    }
}

impl From<rusqlite::Error> for ServiceError {
    fn from(e: rusqlite::Error) -> Self {
        Self::internal(e)
    }
}

impl From<cairn_events::StoreError> for ServiceError {
    fn from(e: cairn_events::StoreError) -> Self {
        Self::internal(e)
    }
}

impl From<tokio::task::JoinError> for ServiceError {
    fn from(e: tokio::task::JoinError) -> Self {
        Self::internal(format!("a blocking task failed: {e}"))
    }
}
