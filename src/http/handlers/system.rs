//! `GET /api/system` (telemetry) and `GET /api/activity` (the latest events, described for people).

use cairn_events::{reader, EventFilter, RecordedEvent};
use serde_json::Value;
use warp::http::StatusCode;
use warp::reply::Response;

use super::read;
use crate::http::error::{ok, ApiError};
use crate::http::request::Request;
use crate::http::AppState;

pub async fn system(state: &AppState) -> Result<Response, ApiError> {
    let telemetry = state.telemetry.clone();
    let root = state.cairn.root().to_owned();
    let sample = tokio::task::spawn_blocking(move || telemetry.sample(&root))
        .await
        .map_err(ApiError::internal)?;
    Ok(ok(StatusCode::OK, sample, None))
}

/// One line about an event, for the activity list.
pub fn describe(e: &RecordedEvent) -> String {
    let data: Value = serde_json::from_str(&e.data).unwrap_or(Value::Null);
    let s = |k: &str| data[k].as_str().unwrap_or("?").to_owned();
    match e.event_type.as_str() {
        "ClientRegistered" => format!("client {} registered", s("name")),
        "ClientUpdated" => "client updated".into(),
        "ClientConnected" => "client connected".into(),
        "ClientDisconnected" => format!("client disconnected ({})", s("reason")),
        "ClientTokenRotated" => "client token rotated".into(),
        "ClientDeleted" => format!("client {} deleted", s("name")),
        "FileStored" => format!("{} stored {} ({} bytes)", s("client_name"), s("filename"), data["size"]),
        "FileVerified" if data["ok"] == true => "file verified".into(),
        "FileVerified" => format!("file verification failed: {}", s("detail")),
        "FileDownloaded" => format!("file downloaded by {}", s("by")),
        "FileDeleted" => format!("file deleted ({})", s("reason")),
        "TransferStarted" => format!("{} of {} started", s("direction"), s("filename")),
        "TransferCompleted" => format!("transfer completed ({} bytes)", data["bytes"]),
        "TransferFailed" => format!("transfer failed: {}", s("error")),
        "LogRecorded" => format!("[{}] {}", s("level"), s("message")),
        "LogsCleared" => format!("{} log lines cleared", data["cleared"]),
        other => other.to_owned(),
    }
}

pub async fn activity(state: &AppState, req: Request) -> Result<Response, ApiError> {
    let limit = req.query_i64("limit")?.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::bad("INVALID_QUERY", "limit must be from 1 to 500"));
    }
    let head = state.cairn.store().head();
    let filter = EventFilter {
        after: Some((head - limit).max(0)),
        limit: Some(limit as usize),
        ..EventFilter::default()
    };
    let page = read(state, move |conn| Ok(reader::query(conn, &filter)?)).await?;
    let items: Vec<Value> = page
        .events
        .iter()
        .rev()
        .map(|e| {
            serde_json::json!({
                "position": e.position,
                "type": e.event_type,
                "stream": e.stream,
                "actor": e.metadata().actor,
                "summary": describe(e),
                "recorded_at": e.recorded_at,
            })
        })
        .collect();
    Ok(ok(
        StatusCode::OK,
        serde_json::json!({ "items": items, "head": head }),
        None,
    ))
}
