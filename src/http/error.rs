//! [`ApiError`]: every failure the API answers, with its status and stable code, and the response envelope.
//! Database and unexpected errors become a 500 whose detail is logged, never sent.

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
    /// 400, with a specific code (`VALIDATION_ERROR`, `INVALID_JSON`, `INVALID_QUERY`, `CHECKSUM_MISMATCH`, …).
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    /// 401 `UNAUTHORIZED`: no token, or not a valid one.
    #[error("{0}")]
    Unauthorized(String),
    /// 403 `FORBIDDEN`: a valid token that may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// 404, with a specific code (`CLIENT_NOT_FOUND`, `ROUTE_NOT_FOUND`, …).
    #[error("{message}")]
    NotFound { code: &'static str, message: String },
    /// 405 `METHOD_NOT_ALLOWED`.
    #[error("{0}")]
    MethodNotAllowed(String),
    /// 409, with a specific code (`VERSION_CONFLICT`, `CLIENT_NAME_TAKEN`, …).
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// 413 `PAYLOAD_TOO_LARGE`.
    #[error("{0}")]
    TooLarge(String),
    /// 416 `RANGE_NOT_SATISFIABLE`.
    #[error("{0}")]
    RangeNotSatisfiable(String),
    /// 503, with a specific code (`TOO_MANY_CONNECTIONS`): the server is at a limit; try again later.
    #[error("{message}")]
    Unavailable { code: &'static str, message: String },
    /// 500 `INTERNAL_ERROR`: the detail is logged with the request id, and not sent.
    #[error("{0}")]
    Internal(String),
}

impl warp::reject::Reject for ApiError {}

impl ApiError {
    pub fn bad(code: &'static str, message: impl Into<String>) -> Self {
        Self::BadRequest {
            code,
            message: message.into(),
        }
    }

    pub fn validation(message: impl Into<String>) -> Self {
        Self::bad("VALIDATION_ERROR", message)
    }

    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::NotFound {
            code,
            message: message.into(),
        }
    }

    pub fn internal(detail: impl std::fmt::Display) -> Self {
        Self::Internal(detail.to_string())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound { .. } => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::RangeNotSatisfiable(_) => StatusCode::RANGE_NOT_SATISFIABLE,
            Self::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::BadRequest { code, .. }
            | Self::NotFound { code, .. }
            | Self::Conflict { code, .. }
            | Self::Unavailable { code, .. } => code,
            Self::Unauthorized(_) => "UNAUTHORIZED",
            Self::Forbidden(_) => "FORBIDDEN",
            Self::MethodNotAllowed(_) => "METHOD_NOT_ALLOWED",
            Self::TooLarge(_) => "PAYLOAD_TOO_LARGE",
            Self::RangeNotSatisfiable(_) => "RANGE_NOT_SATISFIABLE",
            Self::Internal(_) => "INTERNAL_ERROR",
        }
    }

    /// The error answer. A 500's detail goes to the log, tagged with the request id; the caller gets the id.
    pub fn into_response(self, request_id: &str) -> Response {
        let message = match &self {
            Self::Internal(detail) => {
                tracing::error!(request_id, detail = %detail, "internal error");
                format!("internal error; quote request id {request_id} to the operator")
            }
            other => other.to_string(),
        };
        let body = serde_json::json!({
            "success": false,
            "error": { "code": self.code(), "message": message },
            "request_id": request_id,
            "timestamp": cairn_events::writer::now_rfc3339(),
        });
        warp::reply::with_status(warp::reply::json(&body), self.status()).into_response()
    }
}

impl From<CommandError> for ApiError {
    fn from(e: CommandError) -> Self {
        let code = e.code();
        let message = e.to_string();
        match e {
            CommandError::Invalid { .. } | CommandError::ChecksumMismatch { .. } => Self::BadRequest { code, message },
            CommandError::ClientNotFound(_) | CommandError::FileNotFound(_) | CommandError::TransferNotFound(_) => {
                Self::NotFound { code, message }
            }
            CommandError::ClientDeleted(_)
            | CommandError::NameTaken(_)
            | CommandError::ClientNotConnected(_)
            | CommandError::TransferFinished { .. }
            | CommandError::VersionConflict { .. } => Self::Conflict { code, message },
            CommandError::TooLarge { .. } => Self::TooLarge(message),
            CommandError::Blob(_) | CommandError::Store(_) => Self::Internal(message),
        }
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Command(c) => c.into(),
            ServiceError::Invalid { code, message } => Self::BadRequest { code, message },
            ServiceError::Unauthorized(m) => Self::Unauthorized(m),
            ServiceError::Forbidden(m) => Self::Forbidden(m),
            ServiceError::NotFound { code, message } => Self::NotFound { code, message },
            ServiceError::Conflict { code, message } => Self::Conflict { code, message },
            ServiceError::Unavailable { code, message } => Self::Unavailable { code, message },
            ServiceError::Internal(detail) => Self::Internal(detail),
        }
    }
}

impl From<cairn_projections::QueryError> for ApiError {
    fn from(e: cairn_projections::QueryError) -> Self {
        Self::bad("INVALID_QUERY", e.to_string())
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
    let error = if let Some(e) = rejection.find::<ApiError>() {
        return Ok(ApiError::clone_of(e).into_response("-"));
    } else if rejection.is_not_found() {
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

impl ApiError {
    fn clone_of(e: &ApiError) -> ApiError {
        match e {
            Self::BadRequest { code, message } => Self::BadRequest {
                code,
                message: message.clone(),
            },
            Self::Unauthorized(m) => Self::Unauthorized(m.clone()),
            Self::Forbidden(m) => Self::Forbidden(m.clone()),
            Self::NotFound { code, message } => Self::NotFound {
                code,
                message: message.clone(),
            },
            Self::MethodNotAllowed(m) => Self::MethodNotAllowed(m.clone()),
            Self::Conflict { code, message } => Self::Conflict {
                code,
                message: message.clone(),
            },
            Self::TooLarge(m) => Self::TooLarge(m.clone()),
            Self::RangeNotSatisfiable(m) => Self::RangeNotSatisfiable(m.clone()),
            Self::Unavailable { code, message } => Self::Unavailable {
                code,
                message: message.clone(),
            },
            Self::Internal(m) => Self::Internal(m.clone()),
        }
    }
}
