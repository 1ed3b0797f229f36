//! [`ApiError`]: every failure the API answers, with its status and stable code, and the response envelope
//! (only this adapter builds envelopes). A service's or a command's refusal keeps its own code; its status
//! follows from its kind, here and nowhere else. Database and unexpected errors become a 500 whose detail is
//! logged, never sent.

use std::convert::Infallible;

use serde::Serialize;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::Reply;

use crate::error::CommandError;
use crate::services::ServiceError;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A service or a command said no: 400, 401, 403, 404, 409, 413, 503 or 500 by its kind, with its code.
    #[error(transparent)]
    Service(#[from] ServiceError),
    /// 405 `METHOD_NOT_ALLOWED`.
    #[error("{0}")]
    MethodNotAllowed(String),
    /// 413 `PAYLOAD_TOO_LARGE`: a body over what the endpoint takes.
    #[error("{0}")]
    TooLarge(String),
    /// 416 `RANGE_NOT_SATISFIABLE`.
    #[error("{0}")]
    RangeNotSatisfiable(String),
}

impl From<CommandError> for ApiError {
    fn from(e: CommandError) -> Self {
        Self::Service(e.into())
    }
}

impl From<cairn_projections::QueryError> for ApiError {
    fn from(e: cairn_projections::QueryError) -> Self {
        Self::Service(e.into())
    }
}

/// A command's refusal as an HTTP status: by what kind of no it is.
fn command_status(e: &CommandError) -> StatusCode {
    match e {
        CommandError::Invalid { .. } | CommandError::ChecksumMismatch { .. } => StatusCode::BAD_REQUEST,
        CommandError::ClientNotFound(_)
        | CommandError::FileNotFound(_)
        | CommandError::TransferNotFound(_)
        | CommandError::RunNotFound(_)
        | CommandError::ContentUnknown(_)
        | CommandError::AlertTargetNotFound(_)
        | CommandError::AlertRuleNotFound(_) => StatusCode::NOT_FOUND,
        CommandError::ClientDeleted(_)
        | CommandError::NameTaken(_)
        | CommandError::ClientNotConnected(_)
        | CommandError::TransferFinished { .. }
        | CommandError::RunFinished { .. }
        | CommandError::VersionConflict { .. } => StatusCode::CONFLICT,
        CommandError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        full if full.is_disk_full() => StatusCode::INSUFFICIENT_STORAGE,
        CommandError::Blob(_) | CommandError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl ApiError {
    /// 400 with a specific code (`INVALID_JSON`, `INVALID_QUERY`, …).
    pub fn bad(code: &'static str, message: impl Into<String>) -> Self {
        Self::Service(ServiceError::invalid(code, message))
    }

    /// 400 `VALIDATION_ERROR`.
    pub fn validation(message: impl Into<String>) -> Self {
        Self::bad("VALIDATION_ERROR", message)
    }

    /// 404 with a specific code (`ROUTE_NOT_FOUND`, `EVENT_NOT_FOUND`, …).
    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::Service(ServiceError::not_found(code, message))
    }

    /// 500: the detail is logged with the request id, never sent.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        Self::Service(ServiceError::internal(detail))
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::Service(e) => match e {
                ServiceError::Command(c) => command_status(c),
                ServiceError::Invalid { .. } => StatusCode::BAD_REQUEST,
                ServiceError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
                ServiceError::Forbidden(_) => StatusCode::FORBIDDEN,
                ServiceError::NotFound { .. } => StatusCode::NOT_FOUND,
                ServiceError::Conflict { .. } => StatusCode::CONFLICT,
                ServiceError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
                ServiceError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            },
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::RangeNotSatisfiable(_) => StatusCode::RANGE_NOT_SATISFIABLE,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::Service(e) => match e {
                ServiceError::Command(c) => c.code(),
                ServiceError::Invalid { code, .. }
                | ServiceError::NotFound { code, .. }
                | ServiceError::Conflict { code, .. }
                | ServiceError::Unavailable { code, .. } => code,
                ServiceError::Unauthorized(_) => "UNAUTHORIZED",
                ServiceError::Forbidden(_) => "FORBIDDEN",
                ServiceError::Internal(_) => "INTERNAL_ERROR",
            },
            Self::MethodNotAllowed(_) => "METHOD_NOT_ALLOWED",
            Self::TooLarge(_) => "PAYLOAD_TOO_LARGE",
            Self::RangeNotSatisfiable(_) => "RANGE_NOT_SATISFIABLE",
        }
    }

    /// The error answer. A 500's detail goes to the log, tagged with the request id; the caller gets the id.
    pub fn into_response(self, request_id: &str) -> Response {
        let status = self.status();
        let message = if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(request_id, detail = %self, "internal error");
            format!("internal error; quote request id {request_id} to the operator")
        } else if status == StatusCode::INSUFFICIENT_STORAGE {
            tracing::warn!(request_id, detail = %self, "the data directory's disk is full");
            "the server's disk is full: nothing of this request was stored; try again once space is freed".to_owned()
        } else {
            self.to_string()
        };
        let body = serde_json::json!({
            "success": false,
            "error": { "code": self.code(), "message": message },
            "request_id": request_id,
            "timestamp": cairn_events::writer::now_rfc3339(),
        });
        warp::reply::with_status(warp::reply::json(&body), status).into_response()
    }
}

/// The success answer: `{"success": true, "data": …, "message": …, "timestamp": …}`.
pub fn ok<T: Serialize>(status: StatusCode, data: T, message: Option<&str>) -> Response {
    let body = serde_json::json!({
        "success": true,
        "data": data,
        "message": message,
        "timestamp": cairn_events::writer::now_rfc3339(),
    });
    warp::reply::with_status(warp::reply::json(&body), status).into_response()
}

/// Whatever warp rejects before a handler runs (an unreadable request line, say) still gets the envelope.
pub async fn recover(rejection: warp::Rejection) -> Result<Response, Infallible> {
    let error = if rejection.is_not_found() {
        ApiError::not_found("ROUTE_NOT_FOUND", "no such route")
    } else if rejection.find::<warp::reject::MethodNotAllowed>().is_some() {
        ApiError::MethodNotAllowed("method not allowed".into())
    } else if rejection.find::<warp::reject::PayloadTooLarge>().is_some() {
        ApiError::TooLarge("request body too large".into())
    } else {
        ApiError::bad("BAD_REQUEST", format!("{rejection:?}"))
    };
    Ok(error.into_response("-"))
}
